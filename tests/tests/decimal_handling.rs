//! `decimal_handling: double | string` (Debezium's `decimal.handling.mode`): numeric and
//! money columns as Avro doubles or strings, read back by an independent consumer, with
//! NaN and ±Infinity kept instead of nulled, in the snapshot and in the stream alike.

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
    let mut s = Sluice::start_with_env(&st.config, st.setup.admin_port, &env);
    s.wait_ready();
    st.pg
        .psql("INSERT INTO n VALUES (3, 99999999.99, 'Infinity', '-1234.56', '{-0.001}')");
    let recs = reader::read(
        &st.broker.bootstrap(),
        &st.setup.registry_url(),
        "shop.public.n",
        3,
        None,
    );
    let (_, schema) = http_get(
        st.setup.registry_port,
        "/subjects/shop.public.n-value/versions/1/schema",
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
