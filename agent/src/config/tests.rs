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
    assert!(s.streaming, "in-progress transactions streamed by default");
    assert_eq!(
        s.spill_dir,
        std::env::temp_dir().join("sluice-spill-shop-sluice"),
        "per database and slot"
    );
    assert_eq!(s.spill_max_bytes, 2048 << 20);
    let v = parse(
        &GOOD.replace(
            "tables: [public.orders]",
            "tables: [public.orders]\n    spill_dir: staging\n    streaming: false",
        ),
        &[],
        Path::new("/etc/sluice"),
    )
    .unwrap();
    let s2 = v.source.clone().unwrap();
    assert_eq!(
        s2.spill_dir,
        Path::new("/etc/sluice/staging"),
        "relative to the config"
    );
    assert!(!s2.streaming);
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
        // nothing may be staged with streaming on
        (&GOOD.replace("tables: [public.orders]", "tables: [public.orders]\n    spill_max_mb: 0"), &[], "source.postgres.spill_max_mb"),
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
        // registry security: unreadable or missing files, keys of the other mode
        (&format!("{GOOD}\nschema_registry: {{basic_auth: {{users_file: /nonexistent/users}}}}"), &[], "schema_registry.basic_auth.users_file"),
        (&format!("{GOOD}\nschema_registry: {{basic_auth: {{}}}}"), &[], "schema_registry.basic_auth.users_file"),
        (&format!("{GOOD}\nschema_registry: {{basic_auth: {{users_file: u, password: x}}}}"), &[], "schema_registry.basic_auth.password"),
        (&format!("{GOOD}\nschema_registry: {{basic_auth: {{username: u, password_file: /nonexistent/pw}}}}"), &[], "schema_registry.basic_auth.username"),
        (&format!("{GOOD}\nschema_registry: {{tls: {{cert_file: /nonexistent/cert.pem, key_file: /nonexistent/key.pem}}}}"), &[], "schema_registry.tls.cert_file"),
        (&format!("{GOOD}\nschema_registry: {{tls: {{cert_file: /nonexistent/cert.pem}}}}"), &[], "schema_registry.tls.key_file"),
        (&format!("{GOOD}\nschema_registry: {{tls: {{ca_file: /nonexistent/ca.pem}}}}"), &[], "schema_registry.tls.ca_file"),
        (&format!("{GOOD}\nschema_registry: {{tls: {{cert: c.pem}}}}"), &[], "schema_registry.tls.cert"),
        (&format!("{GOOD}\nschema_registry: {{mode: external, url: 'http://r:8081', basic_auth: {{username: u, password_file: /nonexistent/pw}}}}"), &[], "schema_registry.basic_auth.password_file"),
        (&format!("{GOOD}\nschema_registry: {{mode: external, url: 'http://r:8081', basic_auth: {{password_file: /nonexistent/pw}}}}"), &[], "schema_registry.basic_auth.username"),
        (&format!("{GOOD}\nschema_registry: {{mode: external, url: 'http://r:8081', basic_auth: {{users_file: /nonexistent/users}}}}"), &[], "schema_registry.basic_auth.users_file"),
        (&format!("{GOOD}\nschema_registry: {{mode: external, url: 'http://u:p@r:8081', basic_auth: {{username: u, password_file: pw}}}}"), &[], "schema_registry.basic_auth"),
        (&format!("{GOOD}\nschema_registry: {{mode: external, url: 'https://r:8081', tls: {{ca_file: /nonexistent/ca.pem}}}}"), &[], "schema_registry.tls.ca_file"),
        (&format!("{GOOD}\nschema_registry: {{mode: external, url: 'https://r:8081', tls: {{cert_file: /nonexistent/c.pem}}}}"), &[], "schema_registry.tls.cert_file"),
        // Kafka security
        (&GOOD.replace("topic_prefix: shop", "topic_prefix: shop\n    security: {protocol: tls}"), &[], "sink.kafka.security.protocol"),
        (&GOOD.replace("topic_prefix: shop", "topic_prefix: shop\n    security: {sasl: {mechanism: PLAIN, username: u, password: p}}"), &[], "sink.kafka.security.protocol"),
        (&GOOD.replace("topic_prefix: shop", "topic_prefix: shop\n    security: {protocol: sasl_ssl}"), &[], "sink.kafka.security.sasl"),
        (&GOOD.replace("topic_prefix: shop", "topic_prefix: shop\n    security: {protocol: sasl_ssl, sasl: {mechanism: GSSAPI, username: u, password: p}}"), &[], "sink.kafka.security.sasl.mechanism"),
        (&GOOD.replace("topic_prefix: shop", "topic_prefix: shop\n    security: {protocol: sasl_ssl, sasl: {mechanism: PLAIN, username: u}}"), &[], "sink.kafka.security.sasl.password_file"),
        (&GOOD.replace("topic_prefix: shop", "topic_prefix: shop\n    security: {protocol: sasl_ssl, sasl: {mechanism: PLAIN, username: u, password_file: /nonexistent/pw}}"), &[], "sink.kafka.security.sasl.password_file"),
        (&GOOD.replace("topic_prefix: shop", "topic_prefix: shop\n    security: {protocol: ssl, tls: {ca_file: /nonexistent/ca.pem}}"), &[], "sink.kafka.security.tls.ca_file"),
        (&GOOD.replace("topic_prefix: shop", "topic_prefix: shop\n    security: {protocol: ssl, tls: {cert_file: /etc/hostname}}"), &[], "sink.kafka.security.tls"),
        (&GOOD.replace("topic_prefix: shop", "topic_prefix: shop\n    security: {protocol: ssl, sasl: {mechanism: PLAIN, username: u, password: p}}"), &[], "sink.kafka.security.protocol"),
        (&GOOD.replace("topic_prefix: shop", "topic_prefix: shop\n    properties: {sasl.password: x}"), &[], "sink.kafka.properties.sasl.password"),
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

/// Self-signed, for localhost and 127.0.0.1 (openssl, EC P-256, valid for 100 years).
const LOCAL_CERT: &str = "-----BEGIN CERTIFICATE-----\nMIIBmDCCAT6gAwIBAgIUFpMgX9ZPZg3CBDTo2JlBl6SfP8QwCgYIKoZIzj0EAwIw\nFDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTEyMzE2MTUxMloYDzIxMjYxMDMw\nMTYxNTEyWjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjO\nPQMBBwNCAAR1ETrBEaRmSAmpZU+3USFN9XMXt97A4l0w1wR1Xv9tF6cAB3vXKX5D\nvZ3qfPKg5h9acSRsEzNDWJt+2PLO9T42o2wwajAdBgNVHQ4EFgQUEwv04cGIGyUz\nwuOgvr9zdrcO7vcwHwYDVR0jBBgwFoAUEwv04cGIGyUzwuOgvr9zdrcO7vcwGgYD\nVR0RBBMwEYIJbG9jYWxob3N0hwR/AAABMAwGA1UdEwEB/wQCMAAwCgYIKoZIzj0E\nAwIDSAAwRQIhAL39Xqx7VquTbGgfGxe46Ot7Wdbn9UOuMD5rzqrFbXcbAiBoimAN\nKqvmUroJgCTjn5hOe8Lzmy8u6keeuF/9U8Ui7g==\n-----END CERTIFICATE-----\n";
const LOCAL_KEY: &str = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg6BMHxVZSrPulcm9+\ngNql+PAQe914p3lZwSDsPKT7Cn2hRANCAAR1ETrBEaRmSAmpZU+3USFN9XMXt97A\n4l0w1wR1Xv9tF6cAB3vXKX5DvZ3qfPKg5h9acSRsEzNDWJt+2PLO9T42\n-----END PRIVATE KEY-----\n";
/// Self-signed, for registry.example only.
const OTHER_CERT: &str = "-----BEGIN CERTIFICATE-----\nMIIBmTCCAT+gAwIBAgIUSg8KV+aSieD+TmoujgDLtJ/aaR8wCgYIKoZIzj0EAwIw\nFDESMBAGA1UEAwwJZWxzZXdoZXJlMCAXDTI2MTEyMzE2MTUxMloYDzIxMjYxMDMw\nMTYxNTEyWjAUMRIwEAYDVQQDDAllbHNld2hlcmUwWTATBgcqhkjOPQIBBggqhkjO\nPQMBBwNCAARn8A092/mOvu5mLvceyB2w2ka9o4QdEYFmgY7jW6ApRZ3qRA8t+7+q\nKyAV6JM6VmvUv1ge6BAZc/g4LPgXNT5To20wazAdBgNVHQ4EFgQUigV5ORvOYQE2\nyB/t+zc4cx5BEKwwHwYDVR0jBBgwFoAUigV5ORvOYQE2yB/t+zc4cx5BEKwwGwYD\nVR0RBBQwEoIQcmVnaXN0cnkuZXhhbXBsZTAMBgNVHRMBAf8EAjAAMAoGCCqGSM49\nBAMCA0gAMEUCIQCv50xML+DCLZ4B1bdJb+oaOCRz9q5ZlqN33+iJuVSGKwIgW6aY\nm6/i1tQv4HBVTGBG6XbO4z468uznFBBpy3auuDg=\n-----END CERTIFICATE-----\n";
const OTHER_KEY: &str = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgzruhg5OmfU6LQZ6v\np4rDzBE4zAH7iEfw9Mu7M8ydT7qhRANCAARn8A092/mOvu5mLvceyB2w2ka9o4Qd\nEYFmgY7jW6ApRZ3qRA8t+7+qKyAV6JM6VmvUv1ge6BAZc/g4LPgXNT5T\n-----END PRIVATE KEY-----\n";

#[test]
fn kafka_security_reaches_every_kafka_client() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("kpw"), "k-s3cret\n").unwrap();
    std::fs::write(dir.path().join("ca.pem"), LOCAL_CERT).unwrap();
    let text = GOOD.replace(
        "topic_prefix: shop",
        "topic_prefix: shop\n    security: {protocol: sasl_ssl, sasl: {mechanism: SCRAM-SHA-256, username: sluice, password_file: kpw}, tls: {ca_file: ca.pem}}",
    );
    let v = parse(&text, &[], dir.path()).unwrap();
    let k = v.kafka.clone().unwrap();
    let sasl = k.security.sasl.clone().unwrap();
    assert_eq!(sasl.password, "k-s3cret");
    assert_eq!(k.security.tls.ca_pem.as_deref(), Some(LOCAL_CERT));
    assert!(
        !format!("{v:?}").contains("k-s3cret"),
        "password in Debug output"
    );
    // The bundled registry's Kafka storage gets the same settings.
    match &v.registry {
        validate::RegistrySettings::Bundled {
            kafka_storage: Some(s),
            ..
        } => {
            let get = |key: &str| {
                s.properties
                    .iter()
                    .find(|(k, _)| k == key)
                    .map(|(_, v)| v.as_str())
            };
            assert_eq!(get("security.protocol"), Some("sasl_ssl"));
            assert_eq!(get("sasl.mechanisms"), Some("SCRAM-SHA-256"));
            assert_eq!(get("ssl.ca.pem"), Some(LOCAL_CERT));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn registry_security_files_are_read_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    write("users", "sluice:s3cret\nother:pw\n");
    write("cert.pem", LOCAL_CERT);
    write("key.pem", LOCAL_KEY);
    write("other-cert.pem", OTHER_CERT);
    write("other-key.pem", OTHER_KEY);
    write("pw", "ext-pw\n");
    let with = |registry: &str| format!("{GOOD}\nschema_registry: {registry}");

    // Bundled: TLS and users; the pipeline's client uses https, the cert as root, the first user.
    let v = parse(
        &with("{basic_auth: {users_file: users}, tls: {cert_file: cert.pem, key_file: key.pem}}"),
        &[],
        dir.path(),
    )
    .unwrap();
    assert_eq!(v.registry_url(), "https://127.0.0.1:8081");
    let opts = v.registry_client_options();
    assert_eq!(opts.basic_auth, Some(("sluice".into(), "s3cret".into())));
    assert_eq!(opts.root_ca_pem.as_deref(), Some(LOCAL_CERT.as_bytes()));
    assert!(!format!("{v:?}").contains("s3cret"));
    // Listening on all interfaces: reached through the loopback address.
    let v = parse(
        &with("{listen: '0.0.0.0:9000', tls: {cert_file: cert.pem, key_file: key.pem}}"),
        &[],
        dir.path(),
    )
    .unwrap();
    assert_eq!(v.registry_url(), "https://127.0.0.1:9000");

    // (config, key the error names, text the message contains)
    let cases: &[(&str, &str, &str)] = &[
        // key file unreadable while the cert is fine
        (
            "{tls: {cert_file: cert.pem, key_file: nokey.pem}}",
            "schema_registry.tls.key_file",
            "nokey.pem",
        ),
        // a key where the cert belongs, and the reverse
        (
            "{tls: {cert_file: key.pem, key_file: key.pem}}",
            "schema_registry.tls.cert_file",
            "certificate",
        ),
        (
            "{tls: {cert_file: cert.pem, key_file: cert.pem}}",
            "schema_registry.tls.key_file",
            "private key",
        ),
        // key of another certificate
        (
            "{tls: {cert_file: cert.pem, key_file: other-key.pem}}",
            "schema_registry.tls.key_file",
            "does not fit",
        ),
        // a certificate Sluice's own client cannot verify by name
        (
            "{tls: {cert_file: other-cert.pem, key_file: other-key.pem}}",
            "schema_registry.tls.cert_file",
            "localhost",
        ),
        // an empty users file
        (
            "{basic_auth: {users_file: pw}}",
            "schema_registry.basic_auth.users_file",
            "user:password",
        ),
        (
            "{mode: external, url: 'https://r:8081', tls: {ca_file: users}}",
            "schema_registry.tls.ca_file",
            "no certificate",
        ),
    ];
    for (registry, key, text) in cases {
        let e = parse(&with(registry), &[], dir.path()).unwrap_err();
        assert_eq!(e.key, *key, "for {registry}: {e}");
        assert!(e.message.contains(text), "for {registry}: {e}");
    }

    // External: credentials from the password file, the CA as an extra root.
    let v = parse(
        &with("{mode: external, url: 'https://r:8081', basic_auth: {username: app, password_file: pw}, tls: {ca_file: cert.pem}}"),
        &[],
        dir.path(),
    )
    .unwrap();
    assert_eq!(v.registry_url(), "https://r:8081");
    let opts = v.registry_client_options();
    assert_eq!(opts.basic_auth, Some(("app".into(), "ext-pw".into())));
    assert_eq!(opts.root_ca_pem.as_deref(), Some(LOCAL_CERT.as_bytes()));
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
