//! `sluice check`: all pass on a good setup (exit 0); each failure, set up for real on
//! PostgreSQL, the broker or the registry's storage, is reported with its fix (exit 1);
//! a bad config file exits 78.

use sluice_tests::pg::PASSWORD;
use sluice_tests::sluice::run_to_exit_full;
use sluice_tests::{free_port, Stack};

fn check(config_text: &str, dir: &std::path::Path) -> (Option<i32>, String, String) {
    let path = dir.join(format!("check-{}.yaml", free_port()));
    std::fs::write(&path, config_text).unwrap();
    run_to_exit_full(&["check", "--config", path.to_str().unwrap()])
}

/// The report line of a check (`area`, `what`).
fn line<'a>(stdout: &'a str, area: &str, what: &str) -> &'a str {
    stdout
        .lines()
        .find(|l| {
            let mut parts = l.split_whitespace();
            let (_, a) = (parts.next(), parts.next());
            a == Some(area) && l.contains(what)
        })
        .unwrap_or_else(|| panic!("no {area} {what} line in:\n{stdout}"))
}

#[test]
fn check_passes_on_a_good_setup_and_names_each_failure_with_its_fix() {
    let st = Stack::new(
        "CREATE TABLE orders (id int PRIMARY KEY, note text); CREATE TABLE other (id int PRIMARY KEY);",
        &["public.orders"],
    );
    let dir = st.setup.dir.path();
    let good = std::fs::read_to_string(&st.config).unwrap();

    let (code, out, err) = check(&good, dir);
    assert_eq!(code, Some(0), "stdout:\n{out}\nstderr:\n{err}");
    assert!(!out.contains("FAIL"), "{out}");
    for (area, what) in [
        ("postgres", "connection"),
        ("postgres", "wal_level"),
        ("postgres", "privileges"),
        ("postgres", "publication sluice"),
        ("postgres", "slot sluice"),
        ("postgres", "replication connection"),
        ("kafka", "connection"),
        ("kafka", "transactions"),
        ("kafka", "offsets topic"),
        ("registry", "storage"),
        ("postgres", "spill_dir"),
    ] {
        assert!(
            line(&out, area, what).starts_with("PASS"),
            "{area} {what}:\n{out}"
        );
    }
    assert!(out.contains("checks passed"), "{out}");
    // A staging directory that cannot be used is a warning: streaming would fall back.
    let file = dir.join("a-file");
    std::fs::write(&file, b"").unwrap();
    assert!(good.contains("spill_dir: spill\n"));
    let unusable = good.replace(
        "spill_dir: spill\n",
        &format!("spill_dir: {}\n", file.join("spill").display()),
    );
    let (code, out, err) = check(&unusable, dir);
    assert_eq!(code, Some(0), "stdout:\n{out}\nstderr:\n{err}");
    let l = line(&out, "postgres", "spill_dir");
    assert!(
        l.starts_with("WARN") && l.contains("streaming off"),
        "{out}"
    );
    // Nothing was created by checking.
    assert_eq!(
        st.pg
            .psql("SELECT count(*) FROM pg_replication_slots")
            .trim(),
        "0"
    );
    assert_eq!(
        st.pg.psql("SELECT count(*) FROM pg_publication").trim(),
        "0"
    );

    // Each failure: (set-up SQL, config text, area, check, text the report must contain, undo SQL).
    st.pg.psql(&format!(
        "CREATE ROLE weak LOGIN PASSWORD '{PASSWORD}'; GRANT CONNECT ON DATABASE shop TO weak;"
    ));
    let weak = good.replace("postgres://postgres@", "postgres://weak@");
    let file = dir.join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let cases: Vec<(&str, String, &str, &str, &str, &str)> = vec![
        (
            "",
            weak,
            "postgres",
            "privileges",
            "ALTER ROLE \"weak\" REPLICATION",
            "",
        ),
        (
            "",
            good.replace(
                "tables: [public.orders]",
                "tables: [public.orders, public.nope]",
            ),
            "postgres",
            "tables",
            "public.nope does not exist",
            "",
        ),
        (
            "CREATE PUBLICATION sluice FOR TABLE other",
            good.clone(),
            "postgres",
            "publication sluice",
            "ALTER PUBLICATION \"sluice\" ADD TABLE \"public\".\"orders\"",
            "DROP PUBLICATION sluice",
        ),
        (
            "SELECT pg_create_logical_replication_slot('sluice', 'test_decoding')",
            good.clone(),
            "postgres",
            "slot sluice",
            "not pgoutput",
            "SELECT pg_drop_replication_slot('sluice')",
        ),
        (
            "",
            good.replace(
                &st.broker.bootstrap(),
                &format!("127.0.0.1:{}", free_port()),
            ),
            "kafka",
            "connection",
            "sink.kafka.bootstrap_servers",
            "",
        ),
        (
            "",
            good.replace(
                "data_dir: registry",
                &format!("data_dir: {}/sub\n  storage: directory", file.display()),
            ),
            "registry",
            "data_dir",
            "schema_registry.data_dir",
            "",
        ),
    ];
    for (setup, text, area, what, fix, undo) in cases {
        if !setup.is_empty() {
            st.pg.psql(setup);
        }
        let (code, out, err) = check(&text, dir);
        assert_eq!(
            code,
            Some(1),
            "{area} {what}: stdout:\n{out}\nstderr:\n{err}"
        );
        let l = line(&out, area, what);
        assert!(
            l.starts_with("FAIL") && l.contains(fix),
            "{area} {what}: expected FAIL with {fix:?}:\n{out}"
        );
        assert!(out.contains("checks failed"), "{out}");
        if !undo.is_empty() {
            st.pg.psql(undo);
        }
    }

    // wal_level below logical (needs a restart each way).
    st.pg.psql("ALTER SYSTEM SET wal_level = replica");
    st.pg.restart();
    let (code, out, _) = check(&good, dir);
    assert_eq!(code, Some(1), "{out}");
    let l = line(&out, "postgres", "wal_level");
    assert!(
        l.starts_with("FAIL") && l.contains("ALTER SYSTEM SET wal_level = logical"),
        "{out}"
    );
    st.pg.psql("ALTER SYSTEM RESET wal_level");
    st.pg.restart();

    // A bad config file is not a failed check: 78.
    let (code, _, err) = check(
        &good.replace("topic_prefix: shop", "topic_prefix: shop\n    colour: blue"),
        dir,
    );
    assert_eq!(code, Some(78), "{err}");
}
