//! Debezium's handling modes, read back by an independent consumer:
//! `decimal_handling: double | string` (numeric and money columns as Avro doubles or
//! strings, NaN and ±Infinity kept instead of nulled, in the snapshot and in the stream
//! alike) and `time_precision: adaptive | connect`.

use serde_json::{json, Value};
use sluice_tests::reader;
use sluice_tests::sluice::{http_get, Sluice};
use sluice_tests::Stack;

const DDL: &str = "CREATE TABLE n (
    id int PRIMARY KEY,
    fixed numeric(10,2) NOT NULL,
    free numeric,
    cash money,
    many numeric(6,3)[]
);
INSERT INTO n VALUES (1, 12.34, 0.000001, 5.5, '{1.5,NULL}'), (2, -0.01, 'NaN', NULL, '{}');";

fn run(mode: &str) -> (Vec<Value>, String) {
    let st = Stack::new(DDL, &["public.n"]);
    let env = [("SLUICE__SINK__KAFKA__DECIMAL_HANDLING", mode)];
    run_on(
        &st,
        &env,
        "public.n",
        "INSERT INTO n VALUES (3, 99999999.99, 'Infinity', '-1234.56', '{-0.001}')",
    )
}

/// Starts Sluice with `env` on `st`, applies `sql` while it streams, and returns the
/// three events' after-rows and the first value schema.
fn run_on(st: &Stack, env: &[(&str, &str)], table: &str, sql: &str) -> (Vec<Value>, String) {
    let topic = format!("shop.{table}");
    let mut s = Sluice::start_with_env(&st.config, st.setup.admin_port, env);
    s.wait_ready();
    st.pg.psql(sql);
    let recs = reader::read(
        &st.broker.bootstrap(),
        &st.setup.registry_url(),
        &topic,
        3,
        None,
    );
    let (_, schema) = http_get(
        st.setup.registry_port,
        &format!("/subjects/{topic}-value/versions/1/schema"),
    )
    .unwrap();
    let (status, _) = s.terminate();
    assert!(status.success(), "{}", s.log_text());
    (
        recs.into_iter()
            .map(|r| r["value"]["after"].clone())
            .collect(),
        schema,
    )
}

#[test]
fn decimals_as_doubles() {
    let (rows, schema) = run("double");
    assert!(!schema.contains("Decimal"), "{schema}");
    assert_eq!(
        rows[0],
        json!({"id": 1, "fixed": 12.34, "free": 0.000001, "cash": 5.5, "many": [1.5, null]})
    );
    // NaN and Infinity are kept (the reader prints non-finite doubles as strings; the
    // schema has no string here).
    assert_eq!(rows[1]["fixed"], json!(-0.01));
    assert_eq!(rows[1]["free"], json!("NaN"));
    assert_eq!(rows[2]["free"], json!("Infinity"));
    assert_eq!(rows[2]["fixed"], json!(99999999.99));
    assert_eq!(rows[2]["cash"], json!(-1234.56));
    assert_eq!(rows[2]["many"], json!([-0.001]));
}

#[test]
fn decimals_as_strings_keep_nan_and_infinity() {
    let (rows, schema) = run("string");
    assert!(!schema.contains("Decimal"), "{schema}");
    assert_eq!(
        rows[0],
        json!({"id": 1, "fixed": "12.34", "free": "0.000001", "cash": "5.50", "many": ["1.500", null]})
    );
    assert_eq!(rows[1]["free"], json!("NaN"), "snapshot row keeps NaN");
    assert_eq!(
        rows[2]["free"],
        json!("Infinity"),
        "streamed row keeps Infinity"
    );
    assert_eq!(rows[2]["cash"], json!("-1234.56"));
}

const TIMES: &str = "CREATE TABLE t (
    id int PRIMARY KEY,
    d date,
    t3 time(3),
    t6 time,
    ts3 timestamp(3),
    ts6 timestamp
);
INSERT INTO t VALUES (1, '2024-02-29', '12:34:56.789', '01:02:03.456789', '2024-02-29 12:34:56.789', '2024-02-29 12:34:56.123456'),
                     (2, NULL, NULL, NULL, NULL, NULL);";

fn times(mode: &str) -> (Vec<Value>, String) {
    let st = Stack::new(TIMES, &["public.t"]);
    let env = [("SLUICE__SINK__KAFKA__TIME_PRECISION", mode)];
    run_on(&st, &env, "public.t", "INSERT INTO t VALUES (3, '1969-12-31', '00:00:00.001', '23:59:59.999999', '1969-12-31 23:59:59.999', '2000-01-01 00:00:00.000001')")
}

#[test]
fn time_precision_adaptive_follows_the_column_precision() {
    let (rows, schema) = times("adaptive");
    // time(3) as io.debezium.time.Time (int ms), time(6) as MicroTime (long µs).
    assert!(schema.contains("io.debezium.time.Time\""), "{schema}");
    assert_eq!(rows[0]["t3"], json!(45_296_789));
    assert_eq!(rows[0]["t6"], json!(3_723_456_789i64));
    assert_eq!(rows[0]["ts3"], json!(1_709_210_096_789i64));
    assert_eq!(rows[0]["ts6"], json!(1_709_210_096_123_456i64));
    assert_eq!(rows[0]["d"], json!(19_782));
    assert_eq!(rows[2]["d"], json!(-1));
}

#[test]
fn time_precision_connect_uses_kafka_connect_logical_types_in_milliseconds() {
    let (rows, schema) = times("connect");
    for logical in ["\"date\"", "\"time-millis\"", "\"timestamp-millis\""] {
        assert!(schema.contains(logical), "{logical} missing: {schema}");
    }
    assert!(!schema.contains("io.debezium.time"), "{schema}");
    // The consumer decodes the logical types (fastavro) to dates and times.
    assert_eq!(
        rows[0],
        json!({"id": 1, "d": "2024-02-29", "t3": "12:34:56.789000", "t6": "01:02:03.456000",
               "ts3": "2024-02-29T12:34:56.789000+00:00", "ts6": "2024-02-29T12:34:56.123000+00:00"})
    );
    assert_eq!(
        rows[1],
        json!({"id": 2, "d": null, "t3": null, "t6": null, "ts3": null, "ts6": null})
    );
    assert_eq!(rows[2]["d"], json!("1969-12-31"));
    assert_eq!(rows[2]["ts3"], json!("1969-12-31T23:59:59.999000+00:00"));
    assert_eq!(rows[2]["t6"], json!("23:59:59.999000"));
}
