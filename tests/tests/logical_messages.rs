//! Logical decoding messages: user messages become Debezium message events (exactly
//! once, transactional ones only when they commit); captured DDL registers a table's new
//! schema in stream order even when no row follows it.

use serde_json::{json, Value};
use sluice_tests::broker::Broker;
use sluice_tests::pg::Postgres;
use sluice_tests::reader;
use sluice_tests::sluice::{http_get, run_to_exit_full, Setup, Sluice};
use sluice_tests::wait_for;
use std::time::Duration;

#[test]
fn logical_messages_are_produced_exactly_once_and_only_when_committed() {
    let pg = Postgres::start();
    let broker = Broker::start();
    pg.psql("CREATE TABLE t (id int PRIMARY KEY)");
    let setup = Setup::new();
    let config = setup.write_config(&pg, &broker.bootstrap(), &["public.t"], "");
    let env = [
        ("SLUICE__SOURCE__POSTGRES__MESSAGES__ENABLED", "true"),
        ("SLUICE__SOURCE__POSTGRES__MESSAGES__PREFIXES", "[audit]"),
        ("SLUICE__SINK__KAFKA__TRANSACTION_METADATA", "true"),
    ];
    let mut s = Sluice::start_with_env(&config, setup.admin_port, &env);
    s.wait_ready();
    pg.psql("BEGIN; INSERT INTO t VALUES (1); SELECT pg_logical_emit_message(true, 'audit', 'in-txn'); COMMIT");
    pg.psql("BEGIN; SELECT pg_logical_emit_message(true, 'audit', 'rolled back'); ROLLBACK");
    pg.psql("SELECT pg_logical_emit_message(false, 'other', 'not wanted')");
    pg.psql("SELECT pg_logical_emit_message(false, 'audit', 'at once')");
    let read = |n| {
        reader::read(
            &broker.bootstrap(),
            &setup.registry_url(),
            "shop.message",
            n,
            None,
        )
    };
    let recs = read(2);
    let (a, b) = (&recs[0], &recs[1]);
    assert_eq!(a["key"], json!({"prefix": "audit"}));
    assert_eq!(a["value"]["op"], json!("m"));
    assert_eq!(
        a["value"]["message"],
        json!({"prefix": "audit", "content": format!("hex:{}", hex(b"in-txn"))})
    );
    let src = &a["value"]["source"];
    assert!(src["txId"].is_i64(), "{src}");
    assert_eq!((&src["schema"], &src["table"]), (&json!(""), &json!("")));
    // Debezium counts a transactional message among the transaction's events.
    assert_eq!(a["value"]["transaction"]["total_order"], json!(2), "{a}");
    assert_eq!(
        b["value"]["message"]["content"],
        json!(format!("hex:{}", hex(b"at once")))
    );
    assert_eq!(b["value"]["source"]["txId"], Value::Null);
    assert_eq!(b["value"]["transaction"], Value::Null);
    assert_eq!(
        setup.subject_versions("shop.message-value"),
        [1],
        "one message schema"
    );

    // A restart repeats nothing; a message written while Sluice is down comes once.
    let (st, _) = s.terminate();
    assert!(st.success(), "{}", s.log_text());
    pg.psql("SELECT pg_logical_emit_message(false, 'audit', 'while down')");
    let mut s = Sluice::start_with_env(&config, setup.admin_port, &env);
    s.wait_ready();
    pg.psql("SELECT pg_logical_emit_message(true, 'audit', 'after restart')");
    let recs = read(4);
    let contents: Vec<&Value> = recs
        .iter()
        .map(|r| &r["value"]["message"]["content"])
        .collect();
    assert_eq!(
        contents,
        [
            &json!(format!("hex:{}", hex(b"in-txn"))),
            &json!(format!("hex:{}", hex(b"at once"))),
            &json!(format!("hex:{}", hex(b"while down"))),
            &json!(format!("hex:{}", hex(b"after restart"))),
        ]
    );
    reader::assert_at_most(
        &broker.bootstrap(),
        &setup.registry_url(),
        "shop.message",
        4,
    );
    // The row of the first transaction came once too.
    let rows = reader::read(
        &broker.bootstrap(),
        &setup.registry_url(),
        "shop.public.t",
        1,
        None,
    );
    assert_eq!(rows[0]["value"]["after"], json!({"id": 1}));
    let (_, metrics) = s.admin_get("/metrics").unwrap();
    assert!(
        metrics.contains("sluice_events_total{op=\"m\",table=\"message\"} 2"),
        "{metrics}"
    );
    let (st, _) = s.terminate();
    assert!(st.success(), "{}", s.log_text());
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn ddl_without_following_rows_registers_only_with_capture() {
    let pg = Postgres::start();
    let broker = Broker::start();
    pg.psql("CREATE TABLE e (id int PRIMARY KEY, a text NOT NULL, n int)");
    let setup = Setup::new();
    let config = setup.write_config(&pg, &broker.bootstrap(), &["public.e"], "");
    let subject = "shop.public.e-value";

    // Without capture: a change with no row after it is not seen.
    let mut s = Sluice::start(&config, setup.admin_port);
    s.wait_ready();
    pg.psql("INSERT INTO e VALUES (1, 'v1', 1)");
    reader::read(
        &broker.bootstrap(),
        &setup.registry_url(),
        "shop.public.e",
        1,
        None,
    );
    pg.psql("ALTER TABLE e ADD COLUMN b text");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(setup.subject_versions(subject), [1]);
    let (st, _) = s.terminate();
    assert!(st.success(), "{}", s.log_text());

    // The SQL a superuser would run is printed for the case Sluice may not install it.
    let (code, sql, _) = run_to_exit_full(&["ddl-capture-sql"]);
    assert_eq!(code, Some(0));
    assert!(
        sql.contains("CREATE EVENT TRIGGER sluice_capture_ddl"),
        "{sql}"
    );

    // A role that may not create event triggers gets told what to run.
    pg.psql(&format!(
        "CREATE ROLE limited LOGIN REPLICATION PASSWORD '{}'; GRANT SELECT ON e TO limited",
        sluice_tests::pg::PASSWORD
    ));
    let limited_url = pg.url().replace("postgres@", "limited@");
    // `sluice check` says so before anything runs.
    let limited = config.with_file_name("limited.yaml");
    std::fs::write(
        &limited,
        std::fs::read_to_string(&config)
            .unwrap()
            .replace("postgres://postgres@", "postgres://limited@")
            .replace(
                "    status_interval_secs: 1\n",
                "    status_interval_secs: 1\n    ddl_capture: true\n",
            ),
    )
    .unwrap();
    let (code, out, err) = run_to_exit_full(&["check", "--config", limited.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{out}{err}");
    let line = out
        .lines()
        .find(|l| l.contains("ddl capture"))
        .unwrap_or_else(|| panic!("no ddl capture check: {out}"));
    assert!(
        line.starts_with("FAIL") && line.contains("sluice ddl-capture-sql"),
        "{out}"
    );
    let mut l = Sluice::start_with_env(
        &config,
        setup.admin_port,
        &[
            ("SLUICE__SOURCE__POSTGRES__DDL_CAPTURE", "true"),
            ("SLUICE__SOURCE__POSTGRES__URL", &limited_url),
        ],
    );
    let status = wait_for(
        "the limited role's run to stop",
        Duration::from_secs(60),
        || l.exited(),
    );
    assert_eq!(status.code(), Some(1), "{}", l.log_text());
    let log = l.log_text();
    assert!(
        log.contains("only a superuser can create it") && log.contains("sluice ddl-capture-sql"),
        "{log}"
    );

    // With capture (the test role is a superuser, so Sluice installs the trigger).
    let env = [("SLUICE__SOURCE__POSTGRES__DDL_CAPTURE", "true")];
    let mut s = Sluice::start_with_env(&config, setup.admin_port, &env);
    s.wait_ready();
    assert_eq!(
        pg.psql("SELECT count(*) FROM pg_event_trigger WHERE evtname = 'sluice_capture_ddl'")
            .trim(),
        "1"
    );
    pg.psql("ALTER TABLE e ADD COLUMN c int");
    wait_for(
        "the captured DDL to register a new version with no row after it",
        Duration::from_secs(30),
        || (setup.subject_versions(subject).len() == 2).then_some(()),
    );
    let (_, body) = http_get(
        setup.registry_port,
        &format!("/subjects/{subject}/versions/2/schema"),
    )
    .unwrap();
    assert!(
        body.contains("\"b\"") && body.contains("\"c\""),
        "new shape not registered: {body}"
    );
    // A row after it uses the same shape: no further version.
    pg.psql("INSERT INTO e VALUES (2, 'v2', 2, 'b', 3)");
    let recs = reader::read(
        &broker.bootstrap(),
        &setup.registry_url(),
        "shop.public.e",
        2,
        None,
    );
    assert_eq!(
        recs[1]["value"]["after"],
        json!({"id": 2, "a": "v2", "n": 2, "b": "b", "c": 3})
    );
    assert_eq!(setup.subject_versions(subject), [1, 2]);

    // An incompatible change with no row after it stops the table at the DDL.
    pg.psql("ALTER TABLE e ALTER COLUMN n TYPE text");
    // The refused transaction ends before this point.
    let after_ddl = pg.current_lsn();
    s.wait_table_blocked("public.e");
    assert_eq!(setup.subject_versions(subject), [1, 2]);
    std::thread::sleep(Duration::from_secs(3));
    let confirmed = pg.confirmed_flush("sluice");
    assert!(
        confirmed < after_ddl,
        "confirmed {confirmed} moved past the refused DDL (ends before {after_ddl})"
    );
    // The printed script applies cleanly over the installed trigger; DDL is never failed
    // by the trigger, whatever Sluice thinks of it.
    pg.psql(&sql);
    pg.psql("CREATE TABLE not_captured (x int)");
    // What is installed is recognised as this version's (owner, SECURITY DEFINER,
    // search_path and body checked).
    let captured = config.with_file_name("captured.yaml");
    std::fs::write(
        &captured,
        std::fs::read_to_string(&config).unwrap().replace(
            "    status_interval_secs: 1\n",
            "    status_interval_secs: 1\n    ddl_capture: true\n",
        ),
    )
    .unwrap();
    let (_, out, _) = run_to_exit_full(&["check", "--config", captured.to_str().unwrap()]);
    let line = out
        .lines()
        .find(|l| l.contains("ddl capture"))
        .unwrap_or_default();
    assert!(
        line.starts_with("PASS") && line.contains("installed and enabled"),
        "{out}"
    );
    let (st, _) = s.terminate();
    assert!(st.success(), "{}", s.log_text());
}
