use std::path::Path;

use super::*;

const GOOD: &str = r#"
source:
  postgres:
    url: postgres://app@127.0.0.1:5432/shop
    tables: [public.orders]
sink:
  kafka:
    bootstrap_servers: 127.0.0.1:9092
    topic_prefix: shop
"#;

fn vars(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

fn err(text: &str, env: &[(&str, &str)]) -> ConfigError {
    parse(text, &vars(env), Path::new("/tmp")).unwrap_err()
}

#[test]
fn minimal_config_gets_defaults() {
    let v = parse(GOOD, &[], Path::new("/etc/sluice")).unwrap();
    let s = v.source.clone().unwrap();
    assert_eq!(s.slot, "sluice");
    assert_eq!(s.publication, "sluice");
    assert_eq!(s.tables[0].to_string(), "public.orders");
    assert_eq!(v.topic_prefix, "shop");
    assert_eq!(v.registry_url(), "http://127.0.0.1:8081");
    assert_eq!(v.admin_listen.to_string(), "127.0.0.1:9187");
    match v.registry {
        validate::RegistrySettings::Bundled { data_dir, .. } => {
            assert_eq!(data_dir, Path::new("/etc/sluice/sluice-data/registry"))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn errors_name_the_key_table() {
    // (config text, environment, key the error must name)
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case] = &[
        // missing required key
        (
            "source: {postgres: {tables: [a.b]}}\nsink: {kafka: {bootstrap_servers: 'h:1', topic_prefix: p}}",
            &[],
            "source.postgres.url",
        ),
        // unknown key, nested
        (&format!("{GOOD}\nadmin: {{listen: '127.0.0.1:1', colour: red}}"), &[], "admin.colour"),
        // unknown top-level key
        (&format!("{GOOD}\nsinks: {{}}"), &[], "sinks"),
        // malformed URL
        (&GOOD.replace("postgres://app@127.0.0.1:5432/shop", "not a url"), &[], "source.postgres.url"),
        (&GOOD.replace("postgres://app@", "http://app@"), &[], "source.postgres.url"),
        // bad bootstrap servers
        (&GOOD.replace("127.0.0.1:9092", "nohost"), &[], "sink.kafka.bootstrap_servers"),
        // unset ${VAR}
        (&GOOD.replace("topic_prefix: shop", "topic_prefix: ${NOPE}"), &[], "sink.kafka.topic_prefix"),
        // wrong type
        (&GOOD.replace("tables: [public.orders]", "tables: 5"), &[], "source.postgres.tables"),
        // bad enum
        (&GOOD.replace("tables: [public.orders]", "tables: [a.b]\n    snapshot: sometimes"), &[], "source.postgres.snapshot"),
        // external registry without url
        (&format!("{GOOD}\nschema_registry: {{mode: external}}"), &[], "schema_registry.url"),
        // unreadable password file
        (&GOOD.replace("tables:", "password_file: /nonexistent/pw\n    tables:"), &[], "source.postgres.password_file"),
    ];
    for (text, env, key) in cases {
        let e = err(text, env);
        assert_eq!(e.key, *key, "for {text}\n got: {e}");
    }
}

#[test]
fn env_overrides_and_interpolation() {
    let text = GOOD.replace("topic_prefix: shop", "topic_prefix: ${PREFIX}");
    let v = parse(
        &text,
        &vars(&[
            ("PREFIX", "inventory"),
            ("SLUICE__SOURCE__POSTGRES__SLOT", "other_slot"),
            ("SLUICE__SOURCE__POSTGRES__TABLES", "[public.a, s.b]"),
            ("SLUICE__SINK__KAFKA__PROPERTIES__LINGER.MS", "20"),
            ("SLUICE__ADMIN__LISTEN", "0.0.0.0:9999"),
        ]),
        Path::new("/tmp"),
    )
    .unwrap();
    assert_eq!(v.topic_prefix, "inventory");
    let s = v.source.unwrap();
    assert_eq!(s.slot, "other_slot");
    assert_eq!(s.tables.len(), 2);
    assert_eq!(v.kafka.unwrap().properties["linger.ms"], "20");
    assert_eq!(v.admin_listen.to_string(), "0.0.0.0:9999");
}

#[test]
fn env_override_can_supply_a_missing_key() {
    let text = GOOD.replace("    url: postgres://app@127.0.0.1:5432/shop\n", "");
    let v = parse(
        &text,
        &vars(&[("SLUICE__SOURCE__POSTGRES__URL", "postgres://u@h:1/d")]),
        Path::new("/tmp"),
    )
    .unwrap();
    assert_eq!(v.source.unwrap().pg.get_dbname(), Some("d"));
}

#[test]
fn dollar_escape() {
    let text = GOOD.replace("topic_prefix: shop", "topic_prefix: a$$b");
    let e = err(&text, &[]);
    // "a$b" is not a valid topic prefix, which proves the escape produced a literal $.
    assert_eq!(e.key, "sink.kafka.topic_prefix");
    assert!(e.message.contains("a$b"), "{e}");
}

#[test]
fn password_file_is_read_and_trimmed() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pw"), "s3cret\n").unwrap();
    let text = GOOD.replace("tables:", "password_file: pw\n    tables:");
    let v = parse(&text, &[], dir.path()).unwrap();
    assert_eq!(v.source.unwrap().pg.get_password(), Some(&b"s3cret"[..]));
}

#[test]
fn garbage_never_panics() {
    for text in [
        "",
        ":",
        "- a",
        "source: [",
        "\u{0}",
        "source: {postgres: 1}",
        "a: {b: {c: {d: [1, {e: 2}]}}}",
    ] {
        let _ = parse(text, &[], Path::new("/tmp"));
    }
}
