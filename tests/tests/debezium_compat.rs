//! Debezium compatibility, field by field: the documented `customers` create event
//! (tests/fixtures/debezium_customers.json, Kafka Connect schemas and payloads as
//! Debezium's PostgreSQL connector documents them) against what Sluice registers and
//! produces for the same table and row — record names, field names and order, types,
//! optionality, connect.name of semantic types, and the decoded values (read by
//! confluent-kafka's AvroDeserializer).

use std::collections::HashMap;

use serde_json::Value;
use sluice_tests::reader;
use sluice_tests::sluice::{http_get, Sluice};
use sluice_tests::Stack;

const PRIMITIVES: [(&str, &str); 5] = [
    ("int32", "int"),
    ("int64", "long"),
    ("string", "string"),
    ("boolean", "boolean"),
    ("bytes", "bytes"),
];

/// Checks the Avro type `avro` (as registered) against the Connect schema `connect`
/// the way Confluent's AvroConverter maps one to the other. `named` collects records
/// defined so far (a later use is a reference by name).
fn compare(
    path: &str,
    connect: &Value,
    avro: &Value,
    named: &mut HashMap<String, Value>,
    problems: &mut Vec<String>,
) {
    let optional = connect["optional"].as_bool().unwrap_or(false);
    // Unwrap a nullable union.
    let inner = match avro {
        Value::Array(branches) => {
            if !optional {
                problems.push(format!("{path}: a union, but Debezium's field is required"));
            }
            if !branches.iter().any(|b| b == "null") {
                problems.push(format!("{path}: optional without a null branch"));
            }
            match branches.iter().find(|b| *b != "null") {
                Some(b) => b.clone(),
                None => return problems.push(format!("{path}: union of null only")),
            }
        }
        other => {
            if optional {
                problems.push(format!(
                    "{path}: required, but Debezium's field is optional"
                ));
            }
            other.clone()
        }
    };
    // A reference to a record defined earlier.
    let inner = match inner.as_str() {
        Some(n) if !PRIMITIVES.iter().any(|(_, a)| *a == n) => {
            match named
                .iter()
                .find(|(full, _)| full.ends_with(&format!(".{n}")) || *full == n)
            {
                Some((_, def)) => def.clone(),
                None => return problems.push(format!("{path}: reference to unknown {n}")),
            }
        }
        _ => inner,
    };
    let ctype = connect["type"].as_str().unwrap_or_default();
    if ctype == "struct" {
        let full = match (inner["namespace"].as_str(), inner["name"].as_str()) {
            (Some(ns), Some(n)) => format!("{ns}.{n}"),
            (None, Some(n)) => n.to_string(),
            _ => return problems.push(format!("{path}: not a record: {inner}")),
        };
        if let Some(want) = connect["name"].as_str() {
            if full != want {
                problems.push(format!("{path}: record {full}, Debezium's is {want}"));
            }
        }
        named.insert(full, inner.clone());
        let ours: Vec<&Value> = inner["fields"]
            .as_array()
            .map(|f| f.iter().collect())
            .unwrap_or_default();
        let theirs = connect["fields"].as_array().cloned().unwrap_or_default();
        let our_names: Vec<&str> = ours
            .iter()
            .map(|f| f["name"].as_str().unwrap_or_default())
            .collect();
        let their_names: Vec<&str> = theirs
            .iter()
            .map(|f| f["field"].as_str().unwrap_or_default())
            .collect();
        if our_names != their_names {
            problems.push(format!(
                "{path}: fields {our_names:?}, Debezium's {their_names:?}"
            ));
        }
        for t in &theirs {
            let name = t["field"].as_str().unwrap_or_default();
            if let Some(o) = ours.iter().find(|f| f["name"] == name) {
                compare(&format!("{path}.{name}"), t, &o["type"], named, problems);
            }
        }
        return;
    }
    let want = PRIMITIVES
        .iter()
        .find(|(c, _)| *c == ctype)
        .map(|(_, a)| *a);
    let got = inner.as_str().or_else(|| inner["type"].as_str());
    if want != got {
        problems.push(format!(
            "{path}: Avro {got:?}, Debezium's {ctype} maps to {want:?}"
        ));
    }
    if let Some(semantic) = connect["name"].as_str() {
        if inner["connect.name"].as_str() != Some(semantic) {
            problems.push(format!(
                "{path}: connect.name {:?}, Debezium's {semantic}",
                inner["connect.name"]
            ));
        }
    }
}

/// Placeholders ("<int64>", "<string>", "<optional string>") stand for run-dependent
/// values of that type.
fn compare_payload(path: &str, want: &Value, got: &Value, problems: &mut Vec<String>) {
    match (want, want.as_str()) {
        (_, Some("<int64>")) if got.is_i64() => {}
        (_, Some("<string>")) if got.is_string() => {}
        (_, Some("<optional string>")) if got.is_string() || got.is_null() => {}
        (Value::Object(w), _) => {
            for (k, v) in w {
                compare_payload(&format!("{path}.{k}"), v, &got[k], problems);
            }
            if let Some(g) = got.as_object() {
                for k in g.keys().filter(|k| !w.contains_key(*k)) {
                    problems.push(format!("{path}.{k}: not in Debezium's event"));
                }
            }
        }
        _ if want == got => {}
        _ => problems.push(format!("{path}: {got}, Debezium's {want}")),
    }
}

fn latest_schema(port: u16, subject: &str) -> Value {
    let (code, body) = http_get(port, &format!("/subjects/{subject}/versions/latest")).unwrap();
    assert_eq!(code, 200, "{subject}: {body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    serde_json::from_str(v["schema"].as_str().unwrap()).unwrap()
}

#[test]
fn the_documented_customers_event_matches_field_by_field() {
    let fixture: Value = serde_json::from_str(
        &std::fs::read_to_string(
            sluice_tests::repo_root().join("tests/fixtures/debezium_customers.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let st = Stack::new(fixture["ddl"].as_str().unwrap(), &["public.customers"]);
    let env = [("SLUICE__SINK__KAFKA__TOPIC_PREFIX", "PostgreSQL_server")];
    let mut s = Sluice::start_with_env(&st.config, st.setup.admin_port, &env);
    s.wait_ready();
    st.pg.psql(fixture["insert"].as_str().unwrap());
    let topic = "PostgreSQL_server.public.customers";
    let rec = reader::read(
        &st.broker.bootstrap(),
        &st.setup.registry_url(),
        topic,
        1,
        None,
    )
    .remove(0);

    let mut problems = Vec::new();
    let mut named = HashMap::new();
    let key_schema = latest_schema(st.setup.registry_port, &format!("{topic}-key"));
    compare(
        "key",
        &fixture["key"]["schema"],
        &key_schema,
        &mut named,
        &mut problems,
    );
    let value_schema = latest_schema(st.setup.registry_port, &format!("{topic}-value"));
    compare(
        "value",
        &fixture["value"]["schema"],
        &value_schema,
        &mut named,
        &mut problems,
    );
    compare_payload(
        "key",
        &fixture["key"]["payload"],
        &rec["key"],
        &mut problems,
    );
    compare_payload(
        "value",
        &fixture["value"]["payload"],
        &rec["value"],
        &mut problems,
    );
    assert!(
        problems.is_empty(),
        "differences from Debezium's documented event:\n  {}\nkey schema: {key_schema}\nvalue schema: {value_schema}\nrecord: {rec}",
        problems.join("\n  ")
    );
    let (st_code, _) = s.terminate();
    assert!(st_code.success(), "{}", s.log_text());
}
