//! The same end-to-end run on PostgreSQL 14, 17 and 18 (the rest of the suite runs on
//! the apt PostgreSQL 15): snapshot, insert/update/delete, truncate and a representative
//! set of types, read back with the independent Python reader; the pgoutput protocol
//! version Sluice asks for (2 on 14, 4 on 16 and later) as the server itself reports it.
//!
//! The servers come from `.tools/pg/<major>/`, installed by `scripts/setup.sh`; a missing
//! one fails the test (naming scripts/setup.sh), it is never skipped.

use serde_json::{json, Value};
use sluice_tests::pg::Postgres;
use sluice_tests::sluice::Sluice;
use sluice_tests::{reader, wait_for, Stack};
use std::time::Duration;

const TOPIC: &str = "shop.public.items";

const DDL: &str = "CREATE TABLE items (
    id int PRIMARY KEY,
    i8 bigint,
    n numeric(12,3),
    nu numeric,
    t text,
    b boolean,
    ts timestamptz,
    d date,
    u uuid,
    jb jsonb,
    a_i int[],
    a_t text[],
    by bytea
)";

/// Every column set, the same values at snapshot time (id 1) and while streaming (id 3).
fn insert_full(id: i32) -> String {
    format!(
        "INSERT INTO items VALUES ({id}, -9223372036854775808, -1234.5, -1.5, \
         E'ünïcødé 😀 \"q\" \\\\ back', true, '2024-02-29 12:00:00.123456+02', '2024-02-29', \
         'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', '{{\"b\": 1, \"a\": [1, 2.50, null]}}', \
         '{{1,NULL,-3}}', ARRAY['a b', NULL, 'q\"uote', ''], '\\x00ff5c22')"
    )
}

/// What the reader decodes for `insert_full(id)`.
fn full_row(id: i32) -> Value {
    json!({
        "id": id,
        "i8": i64::MIN,
        // numeric(p,s): Avro decimal, printed by the reader as Python's Decimal text.
        "n": "-1234.500",
        // Unconstrained numeric: VariableScaleDecimal {scale, big-endian two's complement}.
        "nu": {"scale": 1, "value": "hex:f1"},
        "t": "ünïcødé 😀 \"q\" \\ back",
        "b": true,
        "ts": "2024-02-29T10:00:00.123456Z",
        // Days since 1970-01-01.
        "d": 19782,
        "u": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        // io.debezium.data.Json: PostgreSQL's jsonb text (keys sorted, as jsonb stores them).
        "jb": "{\"a\": [1, 2.50, null], \"b\": 1}",
        "a_i": [1, null, -3],
        "a_t": ["a b", null, "q\"uote", ""],
        "by": "hex:00ff5c22",
    })
}

fn null_row(id: i32) -> Value {
    json!({
        "id": id, "i8": null, "n": null, "nu": null, "t": null, "b": null, "ts": null,
        "d": null, "u": null, "jb": null, "a_i": null, "a_t": null, "by": null,
    })
}

fn op(r: &Value) -> &str {
    if r["value"].is_null() {
        "tombstone"
    } else {
        r["value"]["op"].as_str().unwrap_or("?")
    }
}

/// The text without ANSI colour sequences (`ESC [ ... m`): the log may be coloured.
fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn run_on(major: u32) {
    let pg = Postgres::start_version(major);
    let version = pg.server_version_num();
    assert_eq!(version / 10000, major, "server_version_num {version}");
    let expected_proto = match major {
        14 => 2,
        15 => 3,
        _ => 4,
    };

    let st = Stack::with_postgres(pg, DDL, &["public.items"]);
    let pg = &st.pg;
    // A few thousand rows make a transaction stream in progress (see streamed_part).
    pg.psql("ALTER DATABASE shop SET logical_decoding_work_mem = '64kB'");
    // Present before sluice starts: read by the snapshot.
    pg.psql(&insert_full(1));
    pg.psql("INSERT INTO items (id) VALUES (2)");

    let mut sluice = Sluice::start(&st.config, st.setup.admin_port);
    sluice.wait_ready();

    // Streamed.
    pg.psql(&insert_full(3));
    pg.psql(
        "UPDATE items SET t = 'changed', b = false, n = 0.001, a_i = '{}', jb = '[]', \
         by = '\\x', ts = '-infinity' WHERE id = 3",
    );
    pg.psql("DELETE FROM items WHERE id = 1");
    pg.psql("TRUNCATE items");
    pg.psql("INSERT INTO items (id) VALUES (4)");
    let lsn_after_workload = pg.current_lsn();

    let recs = reader::read(
        &st.broker.bootstrap(),
        &st.setup.registry_url(),
        TOPIC,
        8,
        None,
    );
    let ops: Vec<&str> = recs.iter().map(op).collect();
    assert_eq!(
        ops,
        ["r", "r", "c", "u", "d", "tombstone", "t", "c"],
        "PostgreSQL {major}: {recs:#?}\nsluice log:\n{}",
        sluice.log_text()
    );
    let after = |i: usize| &recs[i]["value"]["after"];
    let ctx = format!("PostgreSQL {major}");

    // Snapshot rows: every type through the snapshot path.
    assert_eq!(after(0), &full_row(1), "{ctx}: snapshot row");
    assert_eq!(after(1), &null_row(2), "{ctx}: snapshot row of NULLs");
    assert_eq!(recs[0]["key"], json!({"id": 1}), "{ctx}");
    assert_eq!(
        recs[1]["value"]["source"]["snapshot"],
        json!("last"),
        "{ctx}"
    );
    // Insert: every type through pgoutput.
    assert_eq!(after(2), &full_row(3), "{ctx}: streamed insert");
    assert_eq!(recs[2]["key"], json!({"id": 3}), "{ctx}");
    assert_eq!(recs[2]["value"]["before"], Value::Null, "{ctx}");
    let src = &recs[2]["value"]["source"];
    assert_eq!(src["snapshot"], json!("false"), "{ctx}: {src}");
    assert_eq!(src["db"], json!("shop"), "{ctx}: {src}");
    assert_eq!(src["table"], json!("items"), "{ctx}: {src}");
    assert!(src["txId"].as_i64().unwrap() > 0, "{ctx}: {src}");
    assert!(src["lsn"].as_i64().unwrap() > 0, "{ctx}: {src}");
    // Update: changed columns take their new values, the others keep theirs.
    let mut updated = full_row(3);
    for (k, v) in [
        ("t", json!("changed")),
        ("b", json!(false)),
        ("n", json!("0.001")),
        ("a_i", json!([])),
        ("jb", json!("[]")),
        ("by", json!("hex:")),
        ("ts", json!("-292275055-05-16T23:00:00Z")),
    ] {
        updated[k] = v;
    }
    assert_eq!(after(3), &updated, "{ctx}: streamed update");
    assert_eq!(recs[3]["key"], json!({"id": 3}), "{ctx}");
    // Delete: the key in `before`, no `after`, then a tombstone.
    assert_eq!(recs[4]["key"], json!({"id": 1}), "{ctx}");
    assert_eq!(recs[4]["value"]["before"]["id"], json!(1), "{ctx}");
    assert_eq!(recs[4]["value"]["after"], Value::Null, "{ctx}");
    assert_eq!(recs[5]["key"], json!({"id": 1}), "{ctx}: tombstone key");
    // Truncate: no key, no row.
    assert_eq!(recs[6]["key"], Value::Null, "{ctx}: truncate {}", recs[6]);
    assert_eq!(recs[6]["value"]["before"], Value::Null, "{ctx}");
    assert_eq!(recs[6]["value"]["after"], Value::Null, "{ctx}");
    assert_eq!(recs[6]["value"]["source"]["table"], json!("items"), "{ctx}");
    assert_eq!(after(7), &null_row(4), "{ctx}: insert after the truncate");

    // The protocol: Sluice logs the server version it saw, and the server reports the
    // START_REPLICATION command Sluice sent, with the pgoutput version chosen from it.
    let log = plain(&sluice.log_text());
    assert!(
        log.lines()
            .any(|l| l.contains("replication connection open")
                && l.contains(&format!("server_version={version}"))),
        "{ctx}: no `replication connection open server_version={version}` in the log:\n{log}"
    );
    let walsender = pg.psql(
        "SELECT query FROM pg_stat_activity WHERE backend_type = 'walsender' \
         AND query LIKE 'START_REPLICATION%'",
    );
    let streaming = if major >= 16 { "parallel" } else { "on" };
    assert!(
        walsender.contains(&format!("proto_version '{expected_proto}'"))
            && walsender.contains("publication_names")
            && walsender.contains(&format!("streaming '{streaming}'")),
        "{ctx}: expected pgoutput proto_version {expected_proto} with streaming '{streaming}'; the walsender runs {walsender:?}"
    );

    // Standby status updates work: the slot is confirmed past the workload.
    wait_for(
        &format!("{ctx}: confirmed_flush_lsn to pass the workload"),
        Duration::from_secs(30),
        || (pg.confirmed_flush("sluice") >= lsn_after_workload).then_some(()),
    );

    streamed_part(&st, &ctx);

    let (_, metrics) = sluice.admin_get("/metrics").unwrap();
    assert!(
        metrics.contains("sluice_source_streamed_commits_total 1")
            && metrics.contains("sluice_source_streamed_aborts_total 1"),
        "{ctx}: one streamed transaction committed and one aborted:\n{metrics}"
    );
    for (op, n) in [("r", 2), ("c", 3 + 2500), ("u", 1), ("d", 1), ("t", 1)] {
        let line = format!("sluice_events_total{{op=\"{op}\",table=\"public.items\"}} {n}");
        assert!(metrics.contains(&line), "{ctx}: no {line:?} in\n{metrics}");
    }

    let (status, took) = sluice.terminate();
    assert!(
        status.success(),
        "{ctx}: exit {status}:\n{}",
        sluice.log_text()
    );
    assert!(took < Duration::from_secs(10), "{ctx}: stop took {took:?}");
}

/// A transaction streamed in progress (with a rolled-back savepoint) commits after a
/// whole one, and another streamed one aborts (with protocol 4 and `parallel`, Stream
/// Abort carries the abort's position and time). The aborted one still runs when it is
/// streamed: PostgreSQL 18 does not stream a transaction it already knows aborted.
fn streamed_part(st: &Stack, ctx: &str) {
    let pg = &st.pg;
    std::thread::scope(|sc| {
        sc.spawn(|| {
            pg.psql(
                "BEGIN; INSERT INTO items (id, t) SELECT i, repeat('s', 50) FROM generate_series(100, 1099) i; \
                 SAVEPOINT a; INSERT INTO items (id, t) SELECT i, 'gone' FROM generate_series(5000, 6999) i; \
                 ROLLBACK TO a; SELECT pg_sleep(3); \
                 INSERT INTO items (id, t) SELECT i, repeat('s', 50) FROM generate_series(1100, 2599) i; COMMIT",
            )
        });
        std::thread::sleep(Duration::from_millis(1000));
        pg.psql("INSERT INTO items (id) VALUES (50)");
        pg.psql(
            "BEGIN; INSERT INTO items (id, t) SELECT i, repeat('r', 50) FROM generate_series(10000, 12999) i; \
             SELECT pg_sleep(2); ROLLBACK",
        );
    });
    let recs = reader::read(
        &st.broker.bootstrap(),
        &st.setup.registry_url(),
        TOPIC,
        1 + 2500,
        Some(8),
    );
    let ids: Vec<i64> = recs
        .iter()
        .map(|r| r["value"]["after"]["id"].as_i64().unwrap_or(-1))
        .collect();
    let want: Vec<i64> = [50].into_iter().chain(100..2600).collect();
    assert_eq!(
        ids, want,
        "{ctx}: the whole one first, then the streamed one"
    );
    reader::assert_at_most(
        &st.broker.bootstrap(),
        &st.setup.registry_url(),
        TOPIC,
        8 + 1 + 2500,
    );
}

#[test]
fn postgres_14() {
    run_on(14);
}

#[test]
fn postgres_17() {
    run_on(17);
}

#[test]
fn postgres_18() {
    run_on(18);
}

/// Generated columns on the servers whose publications treat them differently: pgoutput
/// never sends them on 14 (the catalog view has no column lists there), and on 18 sends
/// stored ones when the publication says `publish_generated_columns = stored`. The
/// snapshot reads what the stream sends, so both rows have the same fields.
fn generated_columns_on(major: u32, publish: bool) {
    let pg = Postgres::start_version(major);
    let ddl = format!(
        "CREATE TABLE g (id int PRIMARY KEY, a int NOT NULL, \
           doubled int GENERATED ALWAYS AS (a * 2) STORED); \
         CREATE PUBLICATION sluice FOR TABLE g{}; \
         INSERT INTO g (id, a) VALUES (1, 10)",
        if publish {
            " WITH (publish_generated_columns = stored)"
        } else {
            ""
        }
    );
    let st = Stack::with_postgres(pg, &ddl, &["public.g"]);
    let mut sluice = Sluice::start(&st.config, st.setup.admin_port);
    sluice.wait_ready();
    st.pg.psql("INSERT INTO g (id, a) VALUES (2, 20)");
    let recs = reader::read(
        &st.broker.bootstrap(),
        &st.setup.registry_url(),
        "shop.public.g",
        2,
        None,
    );
    let want: &[&str] = if publish {
        &["a", "doubled", "id"]
    } else {
        &["a", "id"]
    };
    for (r, op) in recs.iter().zip(["r", "c"]) {
        assert_eq!(r["value"]["op"], op, "PostgreSQL {major}: {r}");
        assert_eq!(reader::after_fields(r), want, "PostgreSQL {major}: {r}");
    }
    sluice.terminate();
}

#[test]
fn postgres_14_never_sends_generated_columns() {
    generated_columns_on(14, false);
}

#[test]
fn postgres_18_sends_stored_generated_columns_when_the_publication_says_so() {
    generated_columns_on(18, true);
}
