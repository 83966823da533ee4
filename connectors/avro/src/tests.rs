//! Cross-checks with the apache-avro crate: our schemas parse, and our bytes decode to
//! the values we meant.

use std::sync::Arc;

use apache_avro::types::Value as AV;
use apache_avro::Schema;
use sluice_core::{Change, Column, Lsn, Op, SnapshotMarker, SourceInfo, Table, TableName, Value};

use super::*;

fn col(name: &str, oid: u32, typmod: i32, nullable: bool, key: bool) -> Column {
    Column {
        name: name.into(),
        type_oid: oid,
        type_modifier: typmod,
        type_name: String::new(),
        nullable,
        key,
    }
}

fn table() -> Arc<Table> {
    Arc::new(Table {
        id: 1,
        name: TableName::new("public", "orders"),
        columns: vec![
            col("id", 23, -1, false, true),
            col("note", 25, -1, true, false),
            col("amount", 1700, ((10 << 16) | 2) + 4, false, false),
            col("raw", 1700, -1, true, false),
            col("at", 1184, -1, true, false),
            col("day", 1082, -1, true, false),
            col("small", 21, -1, true, false),
        ],
        replica_identity: 'd',
    })
}

fn change(op: Op, before: Option<Vec<Value>>, after: Option<Vec<Value>>) -> Change {
    Change {
        table: table(),
        op,
        before,
        after,
        source: SourceInfo {
            lsn: Lsn(0x1234),
            commit_lsn: Lsn(0x2000),
            ordinal: 0,
            xid: Some(77),
            commit_ts_us: 1_700_000_000_123_000,
            snapshot: SnapshotMarker::False,
        },
    }
}

fn naming() -> Naming {
    Naming {
        topic_prefix: "shop".into(),
        database: "db".into(),
    }
}

fn decode(schema: &str, framed: &[u8], id: u32) -> AV {
    assert_eq!(framed[0], 0, "magic byte");
    assert_eq!(u32::from_be_bytes(framed[1..5].try_into().unwrap()), id);
    let schema = Schema::parse_str(schema).expect("schema parses");
    let mut body = &framed[5..];
    let v = apache_avro::from_avro_datum(&schema, &mut body, None).expect("decodes");
    assert!(body.is_empty(), "trailing bytes");
    v
}

fn field<'a>(v: &'a AV, name: &str) -> &'a AV {
    match v {
        AV::Record(fields) => &fields.iter().find(|(n, _)| n == name).unwrap().1,
        other => panic!("not a record: {other:?}"),
    }
}

fn unwrap_union(v: &AV) -> &AV {
    match v {
        AV::Union(_, inner) => inner,
        other => other,
    }
}

#[test]
fn topic_and_names() {
    let c = TableCodec::new(table(), &naming());
    assert_eq!(c.topic, "shop.public.orders");
    assert!(c.value_schema.contains("\"name\":\"Envelope\""));
    assert!(c
        .key_schema
        .contains("\"connect.name\":\"shop.public.orders.Key\""));
}

#[test]
fn key_and_envelope_round_trip_through_apache_avro() {
    let c = TableCodec::new(table(), &naming());
    let row = vec![
        Value::Int32(7),
        Value::Text("hi".into()),
        Value::Numeric("12.30".into()),
        Value::Numeric("-0.5".into()),
        Value::TimestampTz(1_500_000),
        Value::Date(3),
        Value::Null,
    ];
    let ch = change(Op::Create, None, Some(row));
    let mut buf = Vec::new();
    c.encode_key(&mut buf, 5, &ch).unwrap();
    let key = decode(&c.key_schema, &buf, 5);
    assert_eq!(field(&key, "id"), &AV::Int(7));

    buf.clear();
    c.encode_value(&mut buf, 6, &ch, 1_700_000_001_000).unwrap();
    let v = decode(&c.value_schema, &buf, 6);
    assert_eq!(unwrap_union(field(&v, "before")), &AV::Null);
    let after = unwrap_union(field(&v, "after"));
    assert_eq!(unwrap_union(field(after, "note")), &AV::String("hi".into()));
    assert_eq!(
        field(after, "amount"),
        &AV::Decimal(apache_avro::Decimal::from(vec![0x04, 0xce]))
    );
    let raw = unwrap_union(field(after, "raw"));
    assert_eq!(field(raw, "scale"), &AV::Int(1));
    assert_eq!(field(raw, "value"), &AV::Bytes(vec![0xfb]));
    assert_eq!(
        unwrap_union(field(after, "at")),
        &AV::String("1970-01-01T00:00:01.500Z".into())
    );
    assert_eq!(unwrap_union(field(after, "day")), &AV::Int(3));
    assert_eq!(unwrap_union(field(after, "small")), &AV::Null);
    assert_eq!(field(&v, "op"), &AV::String("c".into()));
    let src = field(&v, "source");
    assert_eq!(field(src, "table"), &AV::String("orders".into()));
    assert_eq!(field(src, "ts_ms"), &AV::Long(1_700_000_000_123));
    assert_eq!(unwrap_union(field(src, "txId")), &AV::Long(77));
    assert_eq!(unwrap_union(field(src, "lsn")), &AV::Long(0x1234));
    assert_eq!(
        unwrap_union(field(src, "snapshot")),
        &AV::String("false".into())
    );
    assert_eq!(
        unwrap_union(field(&v, "ts_ms")),
        &AV::Long(1_700_000_001_000)
    );
}

#[test]
fn delete_with_key_only_old_row_fills_required_fields() {
    let c = TableCodec::new(table(), &naming());
    let before = vec![
        Value::Int32(7),
        Value::Absent,
        Value::Absent,
        Value::Absent,
        Value::Absent,
        Value::Absent,
        Value::Absent,
    ];
    let ch = change(Op::Delete, Some(before), None);
    let mut buf = Vec::new();
    c.encode_key(&mut buf, 1, &ch).unwrap();
    assert_eq!(field(&decode(&c.key_schema, &buf, 1), "id"), &AV::Int(7));
    buf.clear();
    c.encode_value(&mut buf, 2, &ch, 0).unwrap();
    let v = decode(&c.value_schema, &buf, 2);
    let before = unwrap_union(field(&v, "before"));
    assert_eq!(field(before, "id"), &AV::Int(7));
    assert_eq!(unwrap_union(field(before, "note")), &AV::Null);
    assert_eq!(unwrap_union(field(&v, "after")), &AV::Null);
}

#[test]
fn a_value_that_does_not_fit_names_table_and_column() {
    let c = TableCodec::new(table(), &naming());
    let mut row = vec![Value::Int32(1); 7];
    row[2] = Value::Numeric("NaN".into());
    row[1] = Value::Null;
    let e = c
        .encode_value(&mut Vec::new(), 1, &change(Op::Create, None, Some(row)), 0)
        .unwrap_err();
    assert_eq!(e.table, "public.orders");
    assert_eq!(e.source.column, "amount");
    assert!(e.to_string().contains("NaN"), "{e}");
}
