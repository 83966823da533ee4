//! Cross-checks with the apache-avro crate: our schemas parse, and our bytes decode to
//! the values we meant.

use std::sync::Arc;

use apache_avro::types::Value as AV;
use apache_avro::Schema;
use sluice_core::{Change, Column, Lsn, Op, SnapshotMarker, SourceInfo, Table, TableName, Value};

use super::*;

fn col(name: &str, oid: u32, typmod: i32, nullable: bool, key: bool) -> Column {
    Column::new(name, oid, typmod, "", nullable, key)
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
            last_commit_lsn: Some(Lsn(0x1000)),
            xid: Some(77),
            commit_ts_us: 1_700_000_000_123_000,
            snapshot: SnapshotMarker::False,
            row_key: None,
        },
    }
}

fn naming() -> Naming {
    Naming {
        topic_prefix: "shop".into(),
        database: "db".into(),
        envelope: Default::default(),
        subjects: Default::default(),
        types: Default::default(),
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
    c.encode_value(&mut buf, 6, &ch, 1_700_000_001_000, None)
        .unwrap();
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
    // Debezium's [lastCommitLsn, lsn], LSNs in decimal.
    assert_eq!(
        unwrap_union(field(src, "sequence")),
        &AV::String(r#"["4096","4660"]"#.into())
    );
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
    c.encode_value(&mut buf, 2, &ch, 0, None).unwrap();
    let v = decode(&c.value_schema, &buf, 2);
    let before = unwrap_union(field(&v, "before"));
    assert_eq!(field(before, "id"), &AV::Int(7));
    assert_eq!(unwrap_union(field(before, "note")), &AV::Null);
    assert_eq!(unwrap_union(field(&v, "after")), &AV::Null);
}

#[test]
fn transaction_block_carries_id_and_orders() {
    let c = TableCodec::new(table(), &naming());
    let row = vec![Value::Int32(1); 7];
    let mut row = row;
    row[1] = Value::Null;
    row[2] = Value::Numeric("1".into());
    row[3] = Value::Numeric("1".into());
    row[4] = Value::Null;
    row[5] = Value::Null;
    row[6] = Value::Null;
    let ch = change(Op::Create, None, Some(row));
    let order = crate::TxnOrder {
        total_order: 3,
        data_collection_order: 2,
    };
    let mut buf = Vec::new();
    c.encode_value(&mut buf, 6, &ch, 0, Some(order)).unwrap();
    let v = decode(&c.value_schema, &buf, 6);
    let t = unwrap_union(field(&v, "transaction"));
    assert_eq!(field(t, "id"), &AV::String(format!("77:{}", 0x2000)));
    assert_eq!(field(t, "total_order"), &AV::Long(3));
    assert_eq!(field(t, "data_collection_order"), &AV::Long(2));
    // Without metadata, or for a snapshot row (no xid): null.
    buf.clear();
    c.encode_value(&mut buf, 6, &ch, 0, None).unwrap();
    assert_eq!(
        unwrap_union(field(&decode(&c.value_schema, &buf, 6), "transaction")),
        &AV::Null
    );
    let mut snap = ch.clone();
    snap.source.xid = None;
    buf.clear();
    c.encode_value(&mut buf, 6, &snap, 0, Some(order)).unwrap();
    assert_eq!(
        unwrap_union(field(&decode(&c.value_schema, &buf, 6), "transaction")),
        &AV::Null
    );
}

#[test]
fn flat_envelope_is_the_row_plus_added_fields() {
    let flat = Naming {
        envelope: crate::Envelope::Flat,
        ..naming()
    };
    let c = TableCodec::new(table(), &flat);
    assert!(c.value_schema.contains("\"name\":\"Value\""));
    assert!(!c.value_schema.contains("Envelope"));
    let row = vec![
        Value::Int32(7),
        Value::Text("hi".into()),
        Value::Numeric("12.30".into()),
        Value::Numeric("-0.5".into()),
        Value::TimestampTz(1_500_000),
        Value::Date(3),
        Value::Null,
    ];
    let mut buf = Vec::new();
    c.encode_value(&mut buf, 6, &change(Op::Update, None, Some(row)), 0, None)
        .unwrap();
    let v = decode(&c.value_schema, &buf, 6);
    assert_eq!(field(&v, "id"), &AV::Int(7));
    assert_eq!(unwrap_union(field(&v, "note")), &AV::String("hi".into()));
    assert_eq!(unwrap_union(field(&v, "__op")), &AV::String("u".into()));
    assert_eq!(unwrap_union(field(&v, "__lsn")), &AV::Long(0x1234));
    assert_eq!(
        unwrap_union(field(&v, "__source_ts_ms")),
        &AV::Long(1_700_000_000_123)
    );
    assert_eq!(
        unwrap_union(field(&v, "__deleted")),
        &AV::String("false".into())
    );
    // A delete: the old row, marked deleted.
    let mut before = vec![Value::Absent; 7];
    before[0] = Value::Int32(9);
    buf.clear();
    c.encode_value(
        &mut buf,
        6,
        &change(Op::Delete, Some(before), None),
        0,
        None,
    )
    .unwrap();
    let v = decode(&c.value_schema, &buf, 6);
    assert_eq!(field(&v, "id"), &AV::Int(9));
    assert_eq!(unwrap_union(field(&v, "__op")), &AV::String("d".into()));
    assert_eq!(
        unwrap_union(field(&v, "__deleted")),
        &AV::String("true".into())
    );
    // A truncate has no row.
    buf.clear();
    assert!(c
        .encode_value(&mut buf, 6, &change(Op::Truncate, None, None), 0, None)
        .is_err());
}

#[test]
fn a_value_that_does_not_fit_names_table_and_column() {
    let c = TableCodec::new(table(), &naming());
    let mut row = vec![Value::Int32(1); 7];
    row[2] = Value::Numeric("NaN".into());
    row[1] = Value::Null;
    let e = c
        .encode_value(
            &mut Vec::new(),
            1,
            &change(Op::Create, None, Some(row)),
            0,
            None,
        )
        .unwrap_err();
    assert_eq!(e.table, "public.orders");
    assert_eq!(e.source.column, "amount");
    assert!(e.to_string().contains("NaN"), "{e}");
}

mod every_kind {
    use super::*;
    use sluice_core::table::oid;
    use sluice_core::{TypeInfo, TypeKind};

    fn t(o: u32, typmod: i32) -> TypeInfo {
        TypeInfo::base(o, typmod, "")
    }

    fn array_of(element: TypeInfo, dims: u32) -> TypeInfo {
        TypeInfo {
            oid: 1,
            name: "_e".into(),
            schema: "pg_catalog".into(),
            modifier: -1,
            kind: TypeKind::Array {
                element: Box::new(element),
                dims,
                delimiter: b',',
            },
        }
    }

    fn typed(name: &str, ty: TypeInfo, nullable: bool) -> Column {
        Column {
            pg_type: ty.clone(),
            ..Column::new(name, ty.oid, ty.modifier, ty.name.clone(), nullable, false)
        }
    }

    fn composite() -> TypeInfo {
        TypeInfo {
            oid: 90000,
            name: "addr".into(),
            schema: "public".into(),
            modifier: -1,
            kind: TypeKind::Composite {
                fields: vec![
                    ("street".into(), t(oid::TEXT, -1)),
                    ("no".into(), t(oid::INT4, -1)),
                    ("tags".into(), array_of(t(oid::TEXT, -1), 1)),
                ],
            },
        }
    }

    fn table() -> Arc<Table> {
        let mood = TypeInfo {
            oid: 90001,
            name: "mood".into(),
            schema: "public".into(),
            modifier: -1,
            kind: TypeKind::Enum {
                labels: vec!["sad".into(), "ok".into(), "happy".into()],
            },
        };
        let price = TypeInfo {
            oid: 90002,
            name: "price".into(),
            schema: "public".into(),
            modifier: -1,
            kind: TypeKind::Domain {
                base: Box::new(t(oid::NUMERIC, ((10 << 16) | 2) + 4)),
            },
        };
        let mut key = Column::new("id", oid::INT4, -1, "int4", false, true);
        key.key = true;
        Arc::new(Table {
            id: 2,
            name: TableName::new("public", "kinds"),
            columns: vec![
                key,
                typed("tz", t(oid::TIMETZ, -1), true),
                typed("iv", t(oid::INTERVAL, -1), false),
                typed("b1", t(oid::BIT, 1), false),
                typed("b9", t(oid::BIT, 9), false),
                typed("vb", t(oid::VARBIT, -1), true),
                typed("pt", t(oid::POINT, -1), true),
                typed("pt2", t(oid::POINT, -1), true),
                typed("money", t(oid::MONEY, -1), true),
                typed("x", t(oid::XML, -1), true),
                typed("mood", mood.clone(), true),
                typed("moods", array_of(mood, 1), true),
                typed("price", price, true),
                typed("grid", array_of(t(oid::INT4, -1), 2), true),
                typed("addr", composite(), true),
                typed("addrs", array_of(composite(), 1), true),
                typed("hs", TypeInfo::base(90003, -1, "hstore"), true),
                typed("ts_inf", t(oid::TIMESTAMP, -1), true),
                typed("ts3_inf", t(oid::TIMESTAMP, 3), true),
                typed(
                    "nums",
                    array_of(t(oid::NUMERIC, ((5 << 16) | 2) + 4), 1),
                    true,
                ),
                typed("rng", t(oid::INT4RANGE, -1), true),
            ],
            replica_identity: 'd',
        })
    }

    fn rec(v: &AV) -> &AV {
        unwrap_union(v)
    }

    #[test]
    fn every_kind_round_trips_through_apache_avro() {
        let c = TableCodec::new(table(), &naming());
        let addr = Value::Composite(vec![
            Value::Text("Main \"St\"".into()),
            Value::Null,
            Value::Array(vec![Value::Text("a".into()), Value::Null]),
        ]);
        let row = vec![
            Value::Int32(1),
            Value::TimeTz {
                micros: 3_600_000_000,
                offset_secs: 7200,
            },
            Value::Interval {
                months: 1,
                days: 2,
                micros: 3,
            },
            Value::Bits {
                len: 1,
                bytes: vec![0x80],
            },
            Value::Bits {
                len: 9,
                bytes: vec![0b1000_0000, 0b1000_0000],
            },
            Value::Bits {
                len: 0,
                bytes: vec![],
            },
            Value::Point { x: 1.5, y: -2.0 },
            Value::Null,
            Value::Numeric("-12.30".into()),
            Value::Text("<a/>".into()),
            Value::Text("ok".into()),
            Value::Array(vec![Value::Text("sad".into()), Value::Null]),
            Value::Numeric("7.5".into()),
            Value::Array(vec![
                Value::Array(vec![Value::Int32(1), Value::Int32(2)]),
                Value::Array(vec![Value::Null, Value::Int32(4)]),
            ]),
            addr.clone(),
            Value::Array(vec![addr, Value::Null]),
            Value::Json("{\"a\":\"1\"}".into()),
            Value::Timestamp(i64::MAX),
            Value::Timestamp(i64::MIN),
            Value::Array(vec![]),
            Value::Text("[1,5)".into()),
        ];
        let ch = Change {
            table: table(),
            ..change(Op::Create, None, Some(row))
        };
        let mut buf = Vec::new();
        c.encode_value(&mut buf, 9, &ch, 0, None).unwrap();
        let v = decode(&c.value_schema, &buf, 9);
        let a = unwrap_union(field(&v, "after"));
        assert_eq!(rec(field(a, "tz")), &AV::String("23:00:00Z".into()));
        assert_eq!(
            field(a, "iv"),
            &AV::Long(2_629_800_000_000 + 2 * 86_400_000_000 + 3)
        );
        assert_eq!(field(a, "b1"), &AV::Boolean(true));
        // 100000001 = 257, little-endian.
        assert_eq!(field(a, "b9"), &AV::Bytes(vec![0x01, 0x01]));
        assert_eq!(rec(field(a, "vb")), &AV::Bytes(vec![]));
        let pt = rec(field(a, "pt"));
        assert_eq!(field(pt, "x"), &AV::Double(1.5));
        assert_eq!(field(pt, "y"), &AV::Double(-2.0));
        let mut wkb = vec![1u8, 1, 0, 0, 0];
        wkb.extend(1.5f64.to_le_bytes());
        wkb.extend((-2.0f64).to_le_bytes());
        assert_eq!(rec(field(pt, "wkb")), &AV::Bytes(wkb));
        assert_eq!(rec(field(pt, "srid")), &AV::Null);
        assert_eq!(rec(field(a, "pt2")), &AV::Null);
        assert_eq!(
            rec(field(a, "money")),
            &AV::Decimal(apache_avro::Decimal::from(
                (-1230i64).to_be_bytes()[6..].to_vec()
            ))
        );
        assert_eq!(rec(field(a, "x")), &AV::String("<a/>".into()));
        assert_eq!(rec(field(a, "mood")), &AV::String("ok".into()));
        let AV::Array(moods) = rec(field(a, "moods")) else {
            panic!()
        };
        assert_eq!(rec(&moods[0]), &AV::String("sad".into()));
        assert_eq!(rec(&moods[1]), &AV::Null);
        assert_eq!(
            rec(field(a, "price")),
            &AV::Decimal(apache_avro::Decimal::from(vec![0x02, 0xee]))
        );
        let AV::Array(grid) = rec(field(a, "grid")) else {
            panic!()
        };
        let AV::Array(row1) = rec(&grid[1]) else {
            panic!()
        };
        assert_eq!(rec(&row1[0]), &AV::Null);
        assert_eq!(rec(&row1[1]), &AV::Int(4));
        let addr = rec(field(a, "addr"));
        assert_eq!(
            rec(field(addr, "street")),
            &AV::String("Main \"St\"".into())
        );
        assert_eq!(rec(field(addr, "no")), &AV::Null);
        let AV::Array(addrs) = rec(field(a, "addrs")) else {
            panic!()
        };
        assert_eq!(addrs.len(), 2);
        assert_eq!(rec(&addrs[0]), addr);
        assert_eq!(rec(field(a, "hs")), &AV::String("{\"a\":\"1\"}".into()));
        assert_eq!(
            rec(field(a, "ts_inf")),
            &AV::Long(encode::POSITIVE_INFINITY)
        );
        assert_eq!(
            rec(field(a, "ts3_inf")),
            &AV::Long(encode::NEGATIVE_INFINITY)
        );
        assert_eq!(rec(field(a, "nums")), &AV::Array(vec![]));
        assert_eq!(rec(field(a, "rng")), &AV::String("[1,5)".into()));

        // Schema details a Debezium consumer relies on.
        let schema: serde_json::Value = serde_json::from_str(&c.value_schema).unwrap();
        let s = schema.to_string();
        for needle in [
            r#""connect.name":"io.debezium.time.ZonedTime""#,
            r#""connect.name":"io.debezium.time.MicroDuration""#,
            r#""connect.parameters":{"length":"9"}"#,
            r#""connect.parameters":{"length":"2147483647"}"#,
            r#""connect.parameters":{"allowed":"sad,ok,happy"}"#,
            r#""connect.name":"io.debezium.data.Xml""#,
            r#""connect.name":"io.debezium.data.geometry.Point""#,
            r#""connect.parameters":{"scale":"2"}"#,
            r#""connect.name":"sluice.pg.public.addr""#,
        ] {
            assert!(s.contains(needle), "{needle} missing from {s}");
        }
    }

    #[test]
    fn deletes_fill_required_new_kinds_with_neutral_values() {
        let c = TableCodec::new(table(), &naming());
        let mut before = vec![Value::Absent; table().columns.len()];
        before[0] = Value::Int32(3);
        let ch = Change {
            table: table(),
            ..change(Op::Delete, Some(before), None)
        };
        let mut buf = Vec::new();
        c.encode_value(&mut buf, 1, &ch, 0, None).unwrap();
        let v = decode(&c.value_schema, &buf, 1);
        let b = unwrap_union(field(&v, "before"));
        assert_eq!(field(b, "iv"), &AV::Long(0));
        assert_eq!(field(b, "b1"), &AV::Boolean(false));
        assert_eq!(rec(field(b, "addr")), &AV::Null);
    }

    #[test]
    fn mismatched_values_are_named_errors() {
        let c = TableCodec::new(table(), &naming());
        let mut row = vec![Value::Null; table().columns.len()];
        row[0] = Value::Int32(1);
        row[2] = Value::Interval {
            months: 0,
            days: 0,
            micros: 0,
        };
        row[3] = Value::Bits {
            len: 1,
            bytes: vec![0],
        };
        row[4] = Value::Bits {
            len: 9,
            bytes: vec![0, 0],
        };
        row[13] = Value::Array(vec![Value::Text("x".into())]);
        let e = c
            .encode_value(
                &mut Vec::new(),
                1,
                &Change {
                    table: table(),
                    ..change(Op::Create, None, Some(row))
                },
                0,
                None,
            )
            .unwrap_err();
        assert_eq!(e.source.column, "grid");
        assert!(e.to_string().contains("array of array of Int32"), "{e}");
    }
}

#[test]
fn logical_messages_are_debezium_message_events() {
    let codec = MessageCodec::new(&naming());
    assert_eq!(codec.topic, "shop.message");
    assert_eq!(codec.value_subject, "shop.message-value");
    let m = sluice_core::Message {
        prefix: "audit".into(),
        content: b"\x00who=alice".to_vec(),
        transactional: true,
        source: SourceInfo {
            lsn: Lsn(0x100),
            commit_lsn: Lsn(0x200),
            ordinal: 3,
            last_commit_lsn: None,
            xid: Some(77),
            commit_ts_us: 1_700_000_000_123_456,
            snapshot: SnapshotMarker::False,
            row_key: None,
        },
    };
    let mut key = Vec::new();
    codec.encode_key(&mut key, 9, &m);
    let k = decode(&codec.key_schema, &key, 9);
    assert_eq!(
        unwrap_union(field(&k, "prefix")),
        &AV::String("audit".into())
    );
    let order = TxnOrder {
        total_order: 4,
        data_collection_order: 1,
    };
    let mut value = Vec::new();
    codec.encode_value(&mut value, 10, &m, 5, Some(order));
    let v = decode(&codec.value_schema, &value, 10);
    assert_eq!(field(&v, "op"), &AV::String("m".into()));
    let source = field(&v, "source");
    assert_eq!(field(source, "table"), &AV::String(String::new()));
    assert_eq!(unwrap_union(field(source, "txId")), &AV::Long(77));
    assert_eq!(unwrap_union(field(source, "lsn")), &AV::Long(0x100));
    assert_eq!(
        unwrap_union(field(source, "sequence")),
        &AV::String(r#"[null,"256"]"#.into())
    );
    let block = unwrap_union(field(&v, "transaction"));
    assert_eq!(field(block, "id"), &AV::String(format!("77:{}", 0x200)));
    let msg = field(&v, "message");
    assert_eq!(
        unwrap_union(field(msg, "prefix")),
        &AV::String("audit".into())
    );
    assert_eq!(
        unwrap_union(field(msg, "content")),
        &AV::Bytes(b"\x00who=alice".to_vec())
    );
}

#[test]
fn transaction_metadata_begin_and_end() {
    let codec = TransactionCodec::new(&naming());
    assert_eq!(codec.topic, "shop.transaction");
    let mut key = Vec::new();
    codec.encode_key(&mut key, 1, "77:512");
    let k = decode(&codec.key_schema, &key, 1);
    assert_eq!(field(&k, "id"), &AV::String("77:512".into()));
    let mut v = Vec::new();
    codec.encode_value(&mut v, 2, "77:512", None, 9);
    let begin = decode(&codec.value_schema, &v, 2);
    assert_eq!(field(&begin, "status"), &AV::String("BEGIN".into()));
    assert_eq!(unwrap_union(field(&begin, "event_count")), &AV::Null);
    assert_eq!(field(&begin, "ts_ms"), &AV::Long(9));
    v.clear();
    let counts = [("public.a".to_string(), 2), ("public.b".to_string(), 1)];
    codec.encode_value(&mut v, 2, "77:512", Some((3, &counts)), 9);
    let end = decode(&codec.value_schema, &v, 2);
    assert_eq!(field(&end, "status"), &AV::String("END".into()));
    assert_eq!(unwrap_union(field(&end, "event_count")), &AV::Long(3));
    let AV::Array(items) = unwrap_union(field(&end, "data_collections")) else {
        panic!("{end:?}")
    };
    assert_eq!(items.len(), 2);
    let first = unwrap_union(&items[0]);
    assert_eq!(
        field(first, "data_collection"),
        &AV::String("public.a".into())
    );
    assert_eq!(field(first, "event_count"), &AV::Long(2));
}

#[test]
fn sequence_lsns_in_decimal_at_the_extremes() {
    let mut d = [0u8; 20];
    for n in [0, 7, 10, 4660, u64::MAX] {
        assert_eq!(super::decimal(n, &mut d), n.to_string().as_bytes());
    }
    let mut c = change(Op::Create, None, Some(vec![]));
    c.source.lsn = Lsn(u64::MAX);
    c.source.last_commit_lsn = Some(Lsn(u64::MAX));
    let mut buf = Vec::new();
    super::write_sequence(&mut buf, &c.source);
    let text = format!("[\"{0}\",\"{0}\"]", u64::MAX);
    assert_eq!(&buf[buf.len() - text.len()..], text.as_bytes());
}
