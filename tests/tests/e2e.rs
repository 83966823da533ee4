//! End to end: PostgreSQL → sluice → Kafka (tansu), read back with the independent
//! Python client through the bundled registry.

use serde_json::{json, Value};
use sluice_tests::broker::Broker;
use sluice_tests::pg::Postgres;
use sluice_tests::reader;
use sluice_tests::sluice::{Setup, Sluice};
use sluice_tests::wait_for;
use std::time::Duration;

const TOPIC: &str = "shop.public.orders";

fn create_orders(pg: &Postgres) {
    pg.psql(
        "CREATE TABLE orders (
            id int PRIMARY KEY,
            customer text NOT NULL,
            amount numeric(10,2) NOT NULL,
            note text,
            placed_at timestamptz,
            shipped boolean NOT NULL DEFAULT false,
            qty smallint,
            day date
         )",
    );
}

fn after(rec: &Value) -> &Value {
    &rec["value"]["after"]
}

#[test]
fn insert_update_delete_arrive_decoded_with_keys() {
    let pg = Postgres::start();
    let broker = Broker::start();
    create_orders(&pg);
    // A row that exists before sluice starts: the initial snapshot reads it.
    pg.psql("INSERT INTO orders VALUES (1, 'ada', 10.50, NULL, '2024-05-01 10:00:00+00', false, 3, '2024-05-01')");
    pg.psql("ANALYZE orders");

    let setup = Setup::new();
    let config = setup.write_config(&pg, &broker.bootstrap(), &["public.orders"], "");
    let mut sluice = Sluice::start(&config, setup.admin_port);
    sluice.wait_ready();

    pg.psql("INSERT INTO orders VALUES (2, 'bob', 99.99, 'gift', '2024-05-02 11:30:00.25+02', false, NULL, NULL)");
    pg.psql("UPDATE orders SET shipped = true, note = 'sent' WHERE id = 2");
    pg.psql("DELETE FROM orders WHERE id = 1");
    let lsn_after_workload = pg.current_lsn();

    // snapshot read + insert + update + delete + tombstone
    let recs = reader::read(&broker.bootstrap(), &setup.registry_url(), TOPIC, 5, None);
    let ops: Vec<&str> = recs
        .iter()
        .map(|r| r["value"]["op"].as_str().unwrap_or("tombstone"))
        .collect();
    assert_eq!(ops, ["r", "c", "u", "d", "tombstone"], "{recs:#?}");

    // Keys: the primary key, decoded through the registry.
    let keys: Vec<&Value> = recs.iter().map(|r| &r["key"]).collect();
    assert_eq!(
        keys,
        [
            &json!({"id": 1}),
            &json!({"id": 2}),
            &json!({"id": 2}),
            &json!({"id": 1}),
            &json!({"id": 1})
        ]
    );

    // Snapshot row: every field.
    assert_eq!(
        after(&recs[0]),
        &json!({"id": 1, "customer": "ada", "amount": "10.50", "note": null,
                "placed_at": "2024-05-01T10:00:00Z", "shipped": false, "qty": 3, "day": 19844})
    );
    assert_eq!(recs[0]["value"]["source"]["snapshot"], json!("last"));
    // source.sequence, Debezium's [lastCommitLsn, lsn]: null before the stream's first
    // commit (the snapshot), then the previous transaction's end and the change's own
    // LSN, increasing from change to change.
    let seq = |r: &Value| -> (Option<u64>, u64) {
        let s: Vec<Option<String>> =
            serde_json::from_str(r["value"]["source"]["sequence"].as_str().unwrap()).unwrap();
        let n = |v: &Option<String>| v.as_ref().map(|t| t.parse::<u64>().unwrap());
        (n(&s[0]), n(&s[1]).unwrap())
    };
    assert_eq!(seq(&recs[0]).0, None, "{}", recs[0]);
    let streamed: Vec<(Option<u64>, u64)> = recs[1..4].iter().map(seq).collect();
    for (i, (last, lsn)) in streamed.iter().enumerate() {
        assert_eq!(Some(*lsn), recs[i + 1]["value"]["source"]["lsn"].as_u64());
        assert!(last.is_some_and(|l| l <= *lsn), "{streamed:?}");
        if i > 0 {
            assert!(*last > Some(streamed[i - 1].1), "{streamed:?}");
        }
    }
    // Insert.
    assert_eq!(
        after(&recs[1]),
        &json!({"id": 2, "customer": "bob", "amount": "99.99", "note": "gift",
                "placed_at": "2024-05-02T09:30:00.250Z", "shipped": false, "qty": null, "day": null})
    );
    assert_eq!(recs[1]["value"]["before"], Value::Null);
    let src = &recs[1]["value"]["source"];
    assert_eq!(src["connector"], json!("postgresql"));
    assert_eq!(src["db"], json!("shop"));
    assert_eq!(src["schema"], json!("public"));
    assert_eq!(src["table"], json!("orders"));
    assert_eq!(src["snapshot"], json!("false"));
    assert!(src["txId"].as_i64().unwrap() > 0, "{src}");
    assert!(src["lsn"].as_i64().unwrap() > 0, "{src}");
    // Update.
    assert_eq!(after(&recs[2])["shipped"], json!(true));
    assert_eq!(after(&recs[2])["note"], json!("sent"));
    assert_eq!(after(&recs[2])["customer"], json!("bob"));
    // Delete: before carries the key; after is null; then a tombstone.
    assert_eq!(recs[3]["value"]["before"]["id"], json!(1));
    assert_eq!(recs[3]["value"]["after"], Value::Null);
    assert_eq!(recs[4]["value"], Value::Null);

    // Wire format: value schema ids match the registry's latest version of the subject.
    let (status, body) = sluice_tests::sluice::http_get(
        setup.registry_port,
        &format!("/subjects/{TOPIC}-value/versions/latest"),
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    let latest: Value = serde_json::from_str(&body).unwrap();
    for r in &recs[..4] {
        assert_eq!(r["value_schema_id"], latest["id"], "{r}");
    }

    // The slot is confirmed up to (at least) the end of the workload, and only after
    // Kafka acknowledged it: the events are all there, so it must get there.
    wait_for(
        "confirmed_flush_lsn to pass the workload",
        Duration::from_secs(30),
        || (pg.confirmed_flush("sluice") >= lsn_after_workload).then_some(()),
    );

    // Metrics count what was produced.
    let (_, metrics) = sluice.admin_get("/metrics").unwrap();
    assert!(
        metrics.contains("sluice_events_total{op=\"c\",table=\"public.orders\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("sluice_events_total{op=\"r\",table=\"public.orders\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("sluice_events_total{op=\"d\",table=\"public.orders\"} 1"),
        "{metrics}"
    );
    assert_eq!(sluice.admin_get("/healthz").map(|x| x.0), Some(200));
    assert!(metrics.contains("sluice_source_lag_seconds "), "{metrics}");
    for line in [
        // key and value schemas of `orders`
        "sluice_registry_requests_total{code=\"200\",op=\"register\"} 2",
        "sluice_queue_capacity_events 4096",
        "sluice_snapshot_running 0",
        // Per-table progress: one row read, as the planner estimated after ANALYZE.
        "sluice_snapshot_table_rows{table=\"public.orders\"} 1",
        "sluice_snapshot_table_rows_estimate{table=\"public.orders\"} 1",
        "sluice_schema_incompatible_total 0",
        "sluice_registry_skipped_records 0",
    ] {
        assert!(metrics.contains(line), "{line} missing:\n{metrics}");
    }
    assert!(
        metrics.contains("sluice_snapshot_duration_seconds "),
        "{metrics}"
    );
    sluice_tests::promtool_accepts(&metrics);

    let (status, took) = sluice.terminate();
    assert!(status.success(), "exit {status}:\n{}", sluice.log_text());
    assert!(took < Duration::from_secs(10), "stop took {took:?}");
}

#[test]
fn flat_envelope_events_decode_as_the_row_plus_added_fields() {
    let st = sluice_tests::Stack::new(
        "CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, note text)",
        &["public.items"],
    );
    let mut s = Sluice::start_with_env(
        &st.config,
        st.setup.admin_port,
        &[
            ("SLUICE__SINK__KAFKA__ENVELOPE", "flat"),
            ("SLUICE__SINK__KAFKA__TRANSACTION_METADATA", "true"),
        ],
    );
    s.wait_ready();
    st.pg.psql("INSERT INTO items VALUES (1, 'one', 'n')");
    st.pg.psql("UPDATE items SET name = 'uno' WHERE id = 1");
    st.pg.psql("DELETE FROM items WHERE id = 1");
    st.pg
        .psql("BEGIN; TRUNCATE items; INSERT INTO items VALUES (2, 'two', NULL); COMMIT");
    let recs = reader::read(
        &st.broker.bootstrap(),
        &st.setup.registry_url(),
        "shop.public.items",
        5,
        None,
    );
    let fields = |r: &Value| {
        let v = &r["value"];
        (
            v["id"].clone(),
            v["name"].clone(),
            v["__op"].clone(),
            v["__deleted"].clone(),
        )
    };
    assert_eq!(
        fields(&recs[0]),
        (json!(1), json!("one"), json!("c"), json!("false"))
    );
    assert_eq!(recs[0]["value"]["note"], json!("n"));
    assert!(recs[0]["value"]["__lsn"].as_i64().unwrap() > 0);
    assert!(recs[0]["value"]["__source_ts_ms"].as_i64().unwrap() > 1_700_000_000_000);
    assert!(recs[0]["value"].get("before").is_none(), "{}", recs[0]);
    assert_eq!(
        fields(&recs[1]),
        (json!(1), json!("uno"), json!("u"), json!("false"))
    );
    // The delete: the old row (key only without REPLICA IDENTITY FULL), then a tombstone.
    assert_eq!(recs[2]["value"]["id"], json!(1));
    assert_eq!(recs[2]["value"]["__op"], json!("d"));
    assert_eq!(recs[2]["value"]["__deleted"], json!("true"));
    assert_eq!(recs[3]["value"], Value::Null, "tombstone: {}", recs[3]);
    // The truncate is not produced.
    assert_eq!(
        fields(&recs[4]),
        (json!(2), json!("two"), json!("c"), json!("false"))
    );
    // END counts the events consumers get: the insert, not the dropped truncate.
    let txns = reader::read(
        &st.broker.bootstrap(),
        &st.setup.registry_url(),
        "shop.transaction",
        8,
        None,
    );
    assert_eq!(txns[7]["value"]["status"], json!("END"), "{txns:?}");
    assert_eq!(txns[7]["value"]["event_count"], json!(1), "{}", txns[7]);
    assert_eq!(
        txns[7]["value"]["data_collections"],
        json!([{"data_collection": "public.items", "event_count": 1}])
    );
    let (_, metrics) = s.admin_get("/metrics").unwrap();
    assert!(
        metrics.contains("sluice_truncates_not_produced_total 1"),
        "{metrics}"
    );
    let (status, _) = s.terminate();
    assert!(status.success(), "{}", s.log_text());
}

#[test]
fn transaction_metadata_orders_events_across_tables() {
    let st = sluice_tests::Stack::new(
        "CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id int PRIMARY KEY);",
        &["public.a", "public.b"],
    );
    let mut s = Sluice::start_with_env(
        &st.config,
        st.setup.admin_port,
        &[("SLUICE__SINK__KAFKA__TRANSACTION_METADATA", "true")],
    );
    s.wait_ready();
    st.pg.psql("BEGIN; INSERT INTO a VALUES (1); INSERT INTO b VALUES (1); INSERT INTO a VALUES (2); COMMIT;");
    let (bootstrap, registry) = (st.broker.bootstrap(), st.setup.registry_url());
    let a = reader::read(&bootstrap, &registry, "shop.public.a", 2, None);
    let b = reader::read(&bootstrap, &registry, "shop.public.b", 1, None);
    let block = |r: &Value| r["value"]["transaction"].clone();
    let id = block(&a[0])["id"].as_str().unwrap().to_string();
    let xid = a[0]["value"]["source"]["txId"].as_i64().unwrap();
    assert!(id.starts_with(&format!("{xid}:")), "{id}");
    for (rec, total, per_table) in [(&a[0], 1, 1), (&b[0], 2, 1), (&a[1], 3, 2)] {
        let t = block(rec);
        assert_eq!(t["id"], json!(id), "{rec}");
        assert_eq!(t["total_order"], json!(total), "{rec}");
        assert_eq!(t["data_collection_order"], json!(per_table), "{rec}");
    }
    // Debezium's BEGIN and END records on <prefix>.transaction, keyed by the id.
    let txns = reader::read(&bootstrap, &registry, "shop.transaction", 2, None);
    assert_eq!(txns[0]["key"], json!({"id": id}));
    let v = |i: usize| txns[i]["value"].clone();
    assert_eq!(
        (
            v(0)["status"].clone(),
            v(0)["id"].clone(),
            v(0)["event_count"].clone(),
            v(0)["data_collections"].clone()
        ),
        (json!("BEGIN"), json!(id), Value::Null, Value::Null)
    );
    assert_eq!(v(1)["status"], json!("END"));
    assert_eq!(v(1)["event_count"], json!(3));
    assert_eq!(
        v(1)["data_collections"],
        json!([{"data_collection": "public.a", "event_count": 2}, {"data_collection": "public.b", "event_count": 1}])
    );
    assert_eq!(v(0)["ts_ms"], a[0]["value"]["source"]["ts_ms"]);
    // After a restart: the next transaction's pair, nothing repeated.
    let (status, _) = s.terminate();
    assert!(status.success(), "{}", s.log_text());
    let mut s = Sluice::start_with_env(
        &st.config,
        st.setup.admin_port,
        &[("SLUICE__SINK__KAFKA__TRANSACTION_METADATA", "true")],
    );
    s.wait_ready();
    st.pg.psql("INSERT INTO b VALUES (2)");
    let txns = reader::read(&bootstrap, &registry, "shop.transaction", 4, None);
    let statuses: Vec<&Value> = txns.iter().map(|r| &r["value"]["status"]).collect();
    assert_eq!(
        statuses,
        [
            &json!("BEGIN"),
            &json!("END"),
            &json!("BEGIN"),
            &json!("END")
        ]
    );
    assert_eq!(txns[3]["value"]["event_count"], json!(1));
    reader::assert_at_most(&bootstrap, &registry, "shop.transaction", 4);
    let (status, _) = s.terminate();
    assert!(status.success(), "{}", s.log_text());
}

#[test]
fn record_name_strategy_names_subjects_after_the_records() {
    let st = sluice_tests::Stack::new(
        "CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL)",
        &["public.items"],
    );
    let mut s = Sluice::start_with_env(
        &st.config,
        st.setup.admin_port,
        &[("SLUICE__SINK__KAFKA__SUBJECT_NAME_STRATEGY", "record")],
    );
    s.wait_ready();
    st.pg.psql("INSERT INTO items VALUES (1, 'one')");
    let recs = reader::read(
        &st.broker.bootstrap(),
        &st.setup.registry_url(),
        "shop.public.items",
        1,
        None,
    );
    assert_eq!(recs[0]["value"]["after"], json!({"id": 1, "name": "one"}));
    let (code, body) = sluice_tests::sluice::http_get(st.setup.registry_port, "/subjects").unwrap();
    assert_eq!(code, 200, "{body}");
    let subjects: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        subjects,
        json!(["shop.public.items.Envelope", "shop.public.items.Key"]),
        "{body}"
    );
    let (status, _) = s.terminate();
    assert!(status.success(), "{}", s.log_text());
}
