//! PostgreSQL source behaviour against a real server: TOAST, truncate, replica
//! identity, WAL retention while only other tables change, and preflight errors.

use serde_json::{json, Value};
use sluice_tests::broker::Broker;
use sluice_tests::pg::Postgres;
use sluice_tests::reader;
use sluice_tests::sluice::{Setup, Sluice};
use sluice_tests::wait_for;
use std::time::Duration;

struct Env {
    pg: Postgres,
    broker: Broker,
    setup: Setup,
}

fn env(ddl: &str) -> Env {
    let pg = Postgres::start();
    let broker = Broker::start();
    pg.psql(ddl);
    Env {
        pg,
        broker,
        setup: Setup::new(),
    }
}

impl Env {
    /// A configuration for `tables`, with `extra_pg` lines in source.postgres.
    fn config(&self, tables: &[&str], extra_pg: &str) -> std::path::PathBuf {
        let config = self
            .setup
            .write_config(&self.pg, &self.broker.bootstrap(), tables, "");
        if !extra_pg.is_empty() {
            let text = std::fs::read_to_string(&config).unwrap();
            let text = text.replace(
                "    status_interval_secs: 1\n",
                &format!("    status_interval_secs: 1\n{extra_pg}"),
            );
            std::fs::write(&config, text).unwrap();
        }
        config
    }

    /// [`Self::config`] connecting as `role` with password `pw`.
    fn config_as(
        &self,
        role: &str,
        pw: &str,
        tables: &[&str],
        extra_pg: &str,
    ) -> std::path::PathBuf {
        let config = self.config(tables, extra_pg);
        let text = std::fs::read_to_string(&config)
            .unwrap()
            .replace("postgres://postgres@", &format!("postgres://{role}:{pw}@"));
        let text = text
            .lines()
            .filter(|l| !l.contains("password_file"))
            .collect::<Vec<_>>()
            .join("\n");
        std::fs::write(&config, text).unwrap();
        config
    }

    fn start(&self, tables: &[&str], extra_pg: &str) -> Sluice {
        let mut s = Sluice::start(&self.config(tables, extra_pg), self.setup.admin_port);
        s.wait_ready();
        s
    }

    fn read(&self, topic: &str, n: usize) -> Vec<Value> {
        reader::read(
            &self.broker.bootstrap(),
            &self.setup.registry_url(),
            topic,
            n,
            None,
        )
    }
}

/// The `id` of each record's row after the change.
fn ids(recs: &[Value]) -> Vec<i64> {
    recs.iter()
        .map(|r| r["value"]["after"]["id"].as_i64().unwrap())
        .collect()
}

/// The records' rows have these ids, in order, and each exactly these fields.
fn assert_rows(recs: &[Value], want_ids: &[i64], fields: &[&str]) {
    assert_eq!(ids(recs), want_ids);
    for r in recs {
        assert_eq!(reader::after_fields(r), fields, "{r}");
    }
}

/// A 200 kB value PostgreSQL cannot compress, stored out of line (TOAST).
const BIG: &str = "(SELECT string_agg(md5(i::text), '') FROM generate_series(1, 6250) i)";

#[test]
fn unchanged_toast_values_are_reselected_not_dropped() {
    let e = env("CREATE TABLE docs (id int PRIMARY KEY, title text NOT NULL, body text); ALTER TABLE docs ALTER COLUMN body SET STORAGE EXTERNAL");
    let mut s = e.start(&["public.docs"], "");
    e.pg.psql(&format!("INSERT INTO docs VALUES (1, 'a', {BIG})"));
    e.pg.psql("UPDATE docs SET title = 'b' WHERE id = 1");
    let want = e.pg.psql("SELECT body FROM docs WHERE id = 1");
    let recs = e.read("shop.public.docs", 2);
    let upd = &recs[1]["value"];
    assert_eq!(upd["op"], json!("u"));
    assert_eq!(upd["after"]["title"], json!("b"));
    let body = upd["after"]["body"]
        .as_str()
        .expect("body is a string, not null");
    assert_eq!(body.len(), 200_000);
    assert!(body == want, "body differs from the table's value");
    let (_, metrics) = s.admin_get("/metrics").unwrap();
    assert!(
        metrics.contains("sluice_toast_reselects_total 1"),
        "{metrics}"
    );
    s.terminate();
}

#[test]
fn toast_placeholder_mode_is_explicit() {
    let e = env("CREATE TABLE docs (id int PRIMARY KEY, title text NOT NULL, body text); ALTER TABLE docs ALTER COLUMN body SET STORAGE EXTERNAL");
    let mut s = e.start(&["public.docs"], "    toast: placeholder\n");
    e.pg.psql(&format!("INSERT INTO docs VALUES (1, 'a', {BIG})"));
    e.pg.psql("UPDATE docs SET title = 'b' WHERE id = 1");
    let recs = e.read("shop.public.docs", 2);
    assert_eq!(
        recs[1]["value"]["after"]["body"],
        json!("__debezium_unavailable_value")
    );
    s.terminate();
}

#[test]
fn truncate_emits_keyless_events_per_table() {
    let e = env("CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id int PRIMARY KEY); INSERT INTO a VALUES (1); INSERT INTO b VALUES (1)");
    let mut s = e.start(&["public.a", "public.b"], "");
    e.pg.psql("TRUNCATE a, b");
    for topic in ["shop.public.a", "shop.public.b"] {
        // snapshot row, then the truncate
        let recs = e.read(topic, 2);
        assert_eq!(recs[0]["value"]["op"], json!("r"), "{recs:#?}");
        assert_eq!(recs[1]["value"]["op"], json!("t"), "{recs:#?}");
        assert_eq!(recs[1]["key"], Value::Null);
        assert_eq!(recs[1]["value"]["before"], Value::Null);
        assert_eq!(recs[1]["value"]["after"], Value::Null);
    }
    s.terminate();
}

#[test]
fn replica_identity_full_carries_the_whole_before_image() {
    let e = env("CREATE TABLE t (id int PRIMARY KEY, v text NOT NULL, n int); ALTER TABLE t REPLICA IDENTITY FULL");
    let mut s = e.start(&["public.t"], "");
    e.pg.psql("INSERT INTO t VALUES (1, 'x', 5)");
    e.pg.psql("UPDATE t SET v = 'y' WHERE id = 1");
    e.pg.psql("DELETE FROM t WHERE id = 1");
    let recs = e.read("shop.public.t", 3);
    assert_eq!(
        recs[1]["value"]["before"],
        json!({"id": 1, "v": "x", "n": 5})
    );
    assert_eq!(
        recs[1]["value"]["after"],
        json!({"id": 1, "v": "y", "n": 5})
    );
    assert_eq!(
        recs[2]["value"]["before"],
        json!({"id": 1, "v": "y", "n": 5})
    );
    // The key is the primary key, not every column.
    assert_eq!(recs[2]["key"], json!({"id": 1}));
    s.terminate();
}

#[test]
fn slot_advances_while_only_other_tables_change() {
    let e = env("CREATE TABLE captured (id int PRIMARY KEY); CREATE TABLE noise (id serial PRIMARY KEY, pad text)");
    let mut s = e.start(&["public.captured"], "");
    for _ in 0..20 {
        e.pg.psql("INSERT INTO noise (pad) SELECT repeat('x', 1000) FROM generate_series(1, 500)");
    }
    let after_noise = e.pg.current_lsn();
    wait_for(
        "the slot to confirm past WAL of non-captured tables",
        Duration::from_secs(30),
        || (e.pg.confirmed_flush("sluice") >= after_noise).then_some(()),
    );
    let retained: i64 = e
        .pg
        .psql("SELECT (pg_current_wal_lsn() - confirmed_flush_lsn)::bigint FROM pg_replication_slots WHERE slot_name = 'sluice'")
        .parse()
        .unwrap();
    assert!(
        retained < 1_000_000,
        "slot still holds {retained} bytes of WAL"
    );
    let (_, metrics) = s.admin_get("/metrics").unwrap();
    assert!(
        metrics.contains("sluice_slot_wal_status{status=\"reserved\"} 1"),
        "{metrics}"
    );
    s.terminate();
}

#[test]
fn preflight_errors_say_what_to_do() {
    let e = env("CREATE TABLE t (id int PRIMARY KEY); CREATE TABLE nokey (v int); CREATE PUBLICATION sluice FOR TABLE t");
    let cases: [(&[&str], &str); 3] = [
        (&["public.missing"], "does not exist"),
        (&["public.nokey"], "REPLICA IDENTITY FULL"),
        // The publication exists and does not cover the table.
        (&["public.t", "public.nokey2"], "does not exist"),
    ];
    for (tables, needle) in cases {
        let config = e.config(tables, "");
        let (code, stderr) =
            sluice_tests::sluice::run_to_exit(&["run", "--config", config.to_str().unwrap()]);
        assert_eq!(code, Some(1), "{stderr}");
        assert!(stderr.contains(needle), "expected {needle:?} in:\n{stderr}");
    }
    e.pg.psql("CREATE TABLE other (id int PRIMARY KEY)");
    let config = e.config(&["public.other"], "");
    let (code, stderr) =
        sluice_tests::sluice::run_to_exit(&["run", "--config", config.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("ALTER PUBLICATION \"sluice\" ADD TABLE \"public\".\"other\""),
        "{stderr}"
    );

    // A role without REPLICATION.
    e.pg.psql("CREATE ROLE app LOGIN PASSWORD 'pw'; GRANT SELECT ON t TO app");
    let config = e.config_as("app", "pw", &["public.t"], "");
    let (code, stderr) =
        sluice_tests::sluice::run_to_exit(&["run", "--config", config.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("ALTER ROLE \"app\" REPLICATION"),
        "{stderr}"
    );
}

#[test]
fn binary_tuples_until_a_ddl_adds_a_column_they_cannot_carry_then_text() {
    let e = env("CREATE TABLE t (id int PRIMARY KEY, v text, n numeric(8,2), ts timestamptz, a int[]); INSERT INTO t VALUES (1, 'snap', 1.50, '2020-01-01 00:00:00+00', '{1,NULL}')");
    let mut s = e.start(&["public.t"], "");
    let metric = |s: &Sluice| {
        let (_, m) = s.admin_get("/metrics").unwrap();
        m.lines()
            .find(|l| l.starts_with("sluice_source_binary_tuples "))
            .map(str::to_string)
    };
    assert_eq!(
        metric(&s).as_deref(),
        Some("sluice_source_binary_tuples 1"),
        "every column has a binary reader: binary tuples"
    );
    e.pg.psql("INSERT INTO t VALUES (2, 'bin', -0.01, '2020-01-01 10:00:00.5+02', '{1,NULL,3}')");
    // A range column has no binary reader: the stream reconnects in text mode at the
    // transaction that first carries it, and nothing is lost or repeated.
    e.pg.psql("BEGIN; ALTER TABLE t ADD COLUMN r int4range; INSERT INTO t VALUES (3, 'text', 2, '2021-06-01 12:00:00+00', NULL, '[1,5)'); COMMIT");
    e.pg.psql("INSERT INTO t VALUES (4, 'after', 3, NULL, '{}', 'empty')");
    let recs = e.read("shop.public.t", 4);
    assert_eq!(ids(&recs), [1, 2, 3, 4], "{recs:#?}");
    let row2 = &recs[1]["value"]["after"];
    assert_eq!(row2["v"], json!("bin"));
    assert_eq!(row2["ts"], json!("2020-01-01T08:00:00.500Z"), "{row2}");
    assert_eq!(row2["a"], json!([1, null, 3]), "{row2}");
    assert_eq!(recs[2]["value"]["after"]["r"], json!("[1,5)"), "{recs:#?}");
    wait_for("text mode", Duration::from_secs(20), || {
        (metric(&s).as_deref() == Some("sluice_source_binary_tuples 0")).then_some(())
    });
    assert!(
        s.log_text().contains("reconnecting in text mode"),
        "{}",
        s.log_text()
    );
    // Exactly four events: the reconnect repeated nothing.
    sluice_tests::reader::assert_at_most(
        &e.broker.bootstrap(),
        &e.setup.registry_url(),
        "shop.public.t",
        4,
    );
    s.terminate();
}

/// A table without a key under REPLICA IDENTITY FULL: PostgreSQL flags every column as
/// key, so a column type whose key text is not its value (float8 here) rules binary tuples
/// out. The start-up check must agree with the stream (no needless reconnect), the
/// snapshot's rows carry the same key as the stream's, and a null in the row is a null
/// in the key.
#[test]
fn keyless_full_identity_tables_are_judged_for_binary_as_the_stream_sees_them() {
    let e = env("CREATE TABLE f (a int, x float8); ALTER TABLE f REPLICA IDENTITY FULL; INSERT INTO f VALUES (1, 1.5)");
    let mut s = e.start(&["public.f"], "");
    let (_, m) = s.admin_get("/metrics").unwrap();
    assert!(
        m.contains("sluice_source_binary_tuples 0"),
        "every column is a key column and float8's key text is not its value: text tuples\n{m}"
    );
    e.pg.psql("INSERT INTO f VALUES (2, 2.5); UPDATE f SET x = 3.5 WHERE a = 1; INSERT INTO f VALUES (3, NULL)");
    let recs = e.read("shop.public.f", 4);
    assert!(
        !s.log_text().contains("reconnecting in text mode"),
        "{}",
        s.log_text()
    );
    let keys: Vec<&serde_json::Value> = recs.iter().map(|r| &r["key"]).collect();
    assert_eq!(
        keys,
        [
            &json!({"a": 1, "x": 1.5}),
            &json!({"a": 2, "x": 2.5}),
            &json!({"a": 1, "x": 3.5}),
            &json!({"a": 3, "x": null})
        ],
        "{recs:#?}"
    );
    s.terminate();
}

/// A primary key with INCLUDE columns: only its key columns make the event key, in the
/// snapshot as in the stream (PostgreSQL's replica identity leaves included columns out).
#[test]
fn included_columns_of_a_primary_key_are_not_key_columns() {
    let e = env(
        "CREATE TABLE inc (id int, name text, PRIMARY KEY (id) INCLUDE (name)); \
         INSERT INTO inc VALUES (1, 'one')",
    );
    let mut s = e.start(&["public.inc"], "");
    e.pg.psql("INSERT INTO inc VALUES (2, 'two'); UPDATE inc SET name = 'uno' WHERE id = 1");
    let recs = e.read("shop.public.inc", 3);
    let keys: Vec<&serde_json::Value> = recs.iter().map(|r| &r["key"]).collect();
    assert_eq!(
        keys,
        [&json!({"id": 1}), &json!({"id": 2}), &json!({"id": 1})],
        "{recs:#?}"
    );
    s.terminate();
}

/// Large tables split into key ranges read by several connections: every row arrives
/// once, in key order, the last one marked, for an integer key (ranges between minimum
/// and maximum), a text key (ranges at the histogram's bounds), a two-column key declared
/// out of column order whose first column has its own collation (read in the index's
/// order, split on its leading column), and a table too small to split; rows written
/// meanwhile come from the stream.
#[test]
fn parallel_snapshot_of_key_ranges_emits_every_row_once_in_key_order() {
    let e = env("CREATE TABLE ints (id bigint PRIMARY KEY, v text); \
         INSERT INTO ints SELECT i * 3, 'v' || i FROM generate_series(1, 3000) i; \
         CREATE TABLE names (name text PRIMARY KEY, n int); \
         INSERT INTO names SELECT md5(i::text), i FROM generate_series(1, 2000) i; \
         CREATE TABLE mc (b int, a text COLLATE \"C\", PRIMARY KEY (a, b)); \
         INSERT INTO mc (a, b) SELECT chr(65 + i % 7 + (i % 2) * 32) || (i % 200), i FROM generate_series(1, 1500) i; \
         CREATE TABLE small (id int PRIMARY KEY); INSERT INTO small VALUES (1), (2); \
         ANALYZE");
    let mut s = e.start(
        &["public.ints", "public.names", "public.mc", "public.small"],
        "    snapshot_parallelism: 3\n    snapshot_chunk_rows: 250\n",
    );
    e.pg.psql("INSERT INTO ints VALUES (1, 'streamed'); INSERT INTO names VALUES ('0', 0)");
    let ints = e.read("shop.public.ints", 3001);
    let want: Vec<i64> = (1..=3000).map(|i| i * 3).chain([1]).collect();
    assert_eq!(
        ids(&ints),
        want,
        "integer key ranges: once each, in key order, then the insert"
    );
    let names = e.read("shop.public.names", 2001);
    let got: Vec<&str> = names
        .iter()
        .map(|r| r["value"]["after"]["name"].as_str().unwrap())
        .collect();
    let order =
        e.pg.psql("SELECT name FROM names WHERE n > 0 ORDER BY name");
    let mut want: Vec<&str> = order.lines().collect();
    want.push("0");
    assert_eq!(
        got, want,
        "text key ranges: once each, in the database's key order"
    );
    let mc = e.read("shop.public.mc", 1500);
    let got: Vec<String> = mc
        .iter()
        .map(|r| {
            format!(
                "{}|{}",
                r["value"]["after"]["a"].as_str().unwrap(),
                r["value"]["after"]["b"]
            )
        })
        .collect();
    let order = e.pg.psql("SELECT a || '|' || b FROM mc ORDER BY a, b");
    let want: Vec<&str> = order.lines().collect();
    assert_eq!(
        got, want,
        "two-column key (a, b) of columns (b, a): once each, in the key's order"
    );
    let small = e.read("shop.public.small", 2);
    assert_eq!(
        small[1]["value"]["source"]["snapshot"],
        json!("last"),
        "{small:#?}"
    );
    for (i, r) in ints[..3000].iter().chain(&names[..2000]).enumerate() {
        assert_eq!(r["value"]["op"], json!("r"), "record {i}: {r}");
    }
    let log = s.log_text();
    let ranges: u64 = log
        .lines()
        .find(|l| l.contains("snapshot started"))
        .and_then(|l| l.split("ranges=").nth(1))
        .and_then(|v| v.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|d| d.parse().ok())
        .unwrap_or_else(|| panic!("no snapshot start line in:\n{log}"));
    assert!(
        ranges >= 25,
        "3000, 2000 and 1500 rows in ranges of 250 rows, and a small table: expected about 12 + 8 + 6 + 1 ranges, got {ranges}"
    );
    s.terminate();
}

/// A DDL statement issued while several connections read: every reader took the tables'
/// ACCESS SHARE locks when it joined the snapshot, so the DDL waits for the whole
/// snapshot. With locks taken at each range's start, the DDL on `big` (queued behind the
/// reader of its first range) would stop the other reader at its first range of `big`
/// once it is done with `s`, while the DDL waits for the first reader's transaction,
/// which ends only after the blocked range is emitted: a cycle PostgreSQL cannot see.
#[test]
fn a_ddl_during_a_parallel_snapshot_waits_for_it_instead_of_wedging_it() {
    let e = env(
        "CREATE TABLE s (k text PRIMARY KEY, v text) WITH (autovacuum_enabled = false); \
         INSERT INTO s SELECT md5(i::text), repeat('y', 100) FROM generate_series(1, 100000) i; \
         CREATE TABLE big (id bigint PRIMARY KEY, v text); \
         INSERT INTO big SELECT i, repeat('x', 100) FROM generate_series(1, 100000) i; \
         ANALYZE big",
    );
    let config = e.config(
        &["public.s", "public.big"],
        "    snapshot_parallelism: 2\n    snapshot_chunk_rows: 2000\n",
    );
    let mut s = Sluice::start(&config, e.setup.admin_port);
    wait_for("the snapshot to start", Duration::from_secs(60), || {
        s.log_text()
            .contains("snapshot of table started")
            .then_some(())
    });
    let started = std::time::Instant::now();
    e.pg.psql("SET lock_timeout = '60s'; ALTER TABLE big ADD COLUMN extra int");
    let waited = started.elapsed();
    s.wait_ready();
    let (_, m) = s.admin_get("/metrics").unwrap();
    assert!(
        m.contains("sluice_snapshot_rows_total 200000"),
        "the snapshot did not read every row:\n{m}"
    );
    assert!(
        waited > Duration::from_millis(200),
        "the DDL did not wait ({waited:?}): the snapshot ended before it, and the test proves nothing"
    );
    assert!(
        !s.log_text().contains("fewer connections"),
        "{}",
        s.log_text()
    );
    s.terminate();
}

/// A snapshot of 5,000 rows by a role allowed `limit` connections, with `parallelism`
/// reading connections asked for: every row arrives once, in key order, and the log
/// says `warning`.
fn snapshot_under_connection_limit(limit: u32, parallelism: u32, warning: &str) {
    let e = env(&format!(
        "CREATE TABLE t (id int PRIMARY KEY, v text); \
         INSERT INTO t SELECT i, 'v' || i FROM generate_series(1, 5000) i; ANALYZE t; \
         CREATE ROLE capped LOGIN REPLICATION PASSWORD 'pw' CONNECTION LIMIT {limit}; \
         GRANT SELECT ON t TO capped; CREATE PUBLICATION sluice FOR TABLE t"
    ));
    let config = e.config_as(
        "capped",
        "pw",
        &["public.t"],
        &format!("    snapshot_parallelism: {parallelism}\n    snapshot_chunk_rows: 500\n"),
    );
    let mut s = Sluice::start(&config, e.setup.admin_port);
    s.wait_ready();
    assert_eq!(
        ids(&e.read("shop.public.t", 5000)),
        (1..=5000).collect::<Vec<i64>>()
    );
    assert!(s.log_text().contains(warning), "{}", s.log_text());
    s.terminate();
}

/// More snapshot connections than the role may open: the snapshot goes on with the ones
/// it got (a warning says so) instead of retrying forever.
#[test]
fn a_snapshot_reads_with_fewer_connections_when_the_server_gives_no_more() {
    snapshot_under_connection_limit(4, 6, "fewer connections than snapshot_parallelism");
}

/// No reading connection left under the role's limit: the planning connection reads the
/// snapshot itself (through tokio-postgres), every row once, in key order.
#[test]
fn the_planning_connection_reads_when_no_reader_can_open() {
    snapshot_under_connection_limit(2, 2, "the planning connection reads the snapshot alone");
}

/// A stored generated column: pgoutput does not send it (unless a PostgreSQL 18
/// publication says `publish_generated_columns = stored`), so snapshot rows must not carry
/// it either: the table keeps one shape from its snapshot to its stream.
#[test]
fn generated_columns_are_left_out_of_snapshot_and_stream_alike() {
    let e = env("CREATE TABLE g (id int PRIMARY KEY, a int NOT NULL, \
           doubled int GENERATED ALWAYS AS (a * 2) STORED); \
         INSERT INTO g (id, a) VALUES (1, 10)");
    let mut s = e.start(&["public.g"], "");
    e.pg.psql("INSERT INTO g (id, a) VALUES (2, 20)");
    assert_rows(&e.read("shop.public.g", 2), &[1, 2], &["a", "id"]);
    s.terminate();
}

/// A publication with a column list and a row filter (PostgreSQL 15+): the snapshot reads
/// the columns and rows the stream sends, no more.
#[test]
fn a_publications_column_list_and_row_filter_shape_the_snapshot_too() {
    let e = env(
        "CREATE TABLE p (id int PRIMARY KEY, a int NOT NULL, secret text); \
         INSERT INTO p SELECT i, i * 10, 'hidden' FROM generate_series(1, 6) i; \
         CREATE PUBLICATION sluice FOR TABLE p (id, a) WHERE (id > 3)",
    );
    let mut s = e.start(&["public.p"], "");
    e.pg.psql("INSERT INTO p VALUES (0, 0, 'hidden'), (7, 70, 'hidden')");
    // Snapshot rows 4, 5, 6, then streamed 7 (rows 1-3 and 0 fail the filter).
    assert_rows(&e.read("shop.public.p", 4), &[4, 5, 6, 7], &["a", "id"]);
    s.terminate();
}

/// With DDL capture, an ALTER TABLE on a table whose publication has a column list: the
/// captured shape keeps the published columns only, so no schema version ever names a
/// column the stream does not send.
#[test]
fn a_captured_ddl_shape_keeps_only_the_publications_columns() {
    let e = env(
        "CREATE TABLE p (id int PRIMARY KEY, a int NOT NULL, secret text); \
         CREATE PUBLICATION sluice FOR TABLE p (id, a)",
    );
    let mut s = e.start(&["public.p"], "    ddl_capture: true\n");
    e.pg.psql("INSERT INTO p VALUES (1, 10, 'hidden')");
    e.read("shop.public.p", 1);
    e.pg.psql("ALTER TABLE p ADD COLUMN b int");
    wait_for("the captured shape", Duration::from_secs(30), || {
        s.log_text()
            .contains("table shape from captured DDL")
            .then_some(())
    });
    e.pg.psql("INSERT INTO p VALUES (2, 20, 'hidden', 5)");
    assert_rows(&e.read("shop.public.p", 2), &[1, 2], &["a", "id"]);
    for v in e.setup.subject_versions("shop.public.p-value") {
        let (_, body) = sluice_tests::sluice::http_get(
            e.setup.registry_port,
            &format!("/subjects/shop.public.p-value/versions/{v}"),
        )
        .unwrap();
        assert!(
            !body.contains("secret") && !body.contains(r#"\"name\":\"b\""#),
            "version {v} names an unpublished column: {body}"
        );
    }
    s.terminate();
}
