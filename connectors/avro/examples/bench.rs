//! Encoder benchmark: a 10-column row to Confluent-framed Avro bytes, events/s on one
//! core, against apache-avro's `to_avro_datum` encoding the same row in the same run.
//!
//! `cargo run --release -p sluice-avro --example bench [events]`; appends the figures to
//! connectors/avro/BENCH.md.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use apache_avro::types::Value as AV;
use sluice_avro::{Naming, TableCodec};
use sluice_core::{Change, Column, Lsn, Op, SnapshotMarker, SourceInfo, Table, TableName, Value};

fn table() -> Arc<Table> {
    let cols = [
        ("id", 20, false, true),
        ("customer", 25, false, false),
        ("email", 25, true, false),
        ("qty", 23, false, false),
        ("price", 701, false, false),
        ("active", 16, false, false),
        ("created", 1114, false, false),
        ("note", 25, true, false),
        ("score", 20, true, false),
        ("tag", 25, true, false),
    ];
    Arc::new(Table {
        id: 1,
        name: TableName::new("public", "orders"),
        columns: cols
            .iter()
            .map(|(n, oid, nullable, key)| Column::new(*n, *oid, -1, "", *nullable, *key))
            .collect(),
        replica_identity: 'd',
    })
}

fn row(i: i64) -> Vec<Value> {
    vec![
        Value::Int64(i),
        Value::Text("customer-name".into()),
        Value::Text("someone@example.com".into()),
        Value::Int32(3),
        Value::Float64(19.99),
        Value::Bool(true),
        Value::Timestamp(1_700_000_000_000_000 + i),
        Value::Null,
        Value::Int64(i * 7),
        Value::Text("blue".into()),
    ]
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2_000_000);
    let table = table();
    let codec = TableCodec::new(
        table.clone(),
        &Naming {
            topic_prefix: "shop".into(),
            database: "db".into(),
            envelope: Default::default(),
            subjects: Default::default(),
            types: Default::default(),
        },
    );
    let change = Change {
        table: table.clone(),
        op: Op::Create,
        before: None,
        after: Some(row(1)),
        source: SourceInfo {
            lsn: Lsn(1),
            commit_lsn: Lsn(1),
            ordinal: 0,
            last_commit_lsn: Some(sluice_core::Lsn(1)),
            xid: Some(1),
            commit_ts_us: 1_700_000_000_000_000,
            snapshot: SnapshotMarker::False,
            row_key: None,
        },
    };

    // Sluice: key + envelope into reused buffers.
    let mut key = Vec::with_capacity(64);
    let mut value = Vec::with_capacity(512);
    let t = Instant::now();
    for _ in 0..n {
        key.clear();
        value.clear();
        codec.encode_key(&mut key, 1, &change).unwrap();
        codec
            .encode_value(&mut value, 2, &change, 1_700_000_000_000, None)
            .unwrap();
        black_box((&key, &value));
    }
    let ours = n as f64 / t.elapsed().as_secs_f64();

    // Baseline: apache-avro encoding the same envelope value from its Value model.
    let schema = apache_avro::Schema::parse_str(&codec.value_schema).unwrap();
    let mut framed = Vec::new();
    codec
        .encode_value(&mut framed, 2, &change, 1_700_000_000_000, None)
        .unwrap();
    let decoded = apache_avro::from_avro_datum(&schema, &mut &framed[5..], None).unwrap();
    let m = (n / 10).max(1);
    let t = Instant::now();
    for _ in 0..m {
        let v: AV = decoded.clone();
        black_box(apache_avro::to_avro_datum(&schema, v).unwrap());
    }
    let base = m as f64 / t.elapsed().as_secs_f64();

    let line = format!(
        "encoder, 10-column row, key + Debezium envelope: sluice {:.0} events/s, apache-avro {:.0} events/s, ratio {:.1}x ({} events, one core)",
        ours,
        base,
        ours / base,
        n
    );
    println!("{line}");
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/BENCH.md");
    let mut text = std::fs::read_to_string(path).unwrap_or_else(|_| {
        "# Encoder benchmark\n\n`cargo run --release -p sluice-avro --example bench`\n\n".into()
    });
    text.push_str(&format!(
        "- {}: {line}\n",
        std::env::var("BENCH_DATE").unwrap_or_else(|_| "run".into())
    ));
    std::fs::write(path, text).unwrap();
}
