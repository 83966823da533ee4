//! Avro schemas derived from table shapes, in Debezium's PostgreSQL connector layout, and
//! the per-column encoding plan that goes with them.

use serde_json::{json, Map, Value as Json};
use sluice_core::{Column, Table};

/// How a column is represented in Avro (Debezium's default `precise` decimals and
/// `adaptive_time_microseconds` temporal mapping).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldKind {
    Boolean,
    /// `int` with connect.type int16.
    Int16,
    Int32,
    Int64,
    Float32,
    Float64,
    /// `bytes` logical decimal with a fixed scale (numeric(p, s)).
    Decimal {
        precision: u32,
        scale: u32,
    },
    /// io.debezium.data.VariableScaleDecimal record (unconstrained numeric).
    VariableDecimal,
    String,
    Bytes,
    Json,
    Uuid,
    /// io.debezium.time.Date: days since the epoch.
    Date,
    /// io.debezium.time.Time: milliseconds since midnight (time(0..3)).
    MilliTime,
    /// io.debezium.time.MicroTime: microseconds since midnight.
    MicroTime,
    /// io.debezium.time.Timestamp: milliseconds since the epoch (timestamp(0..3)).
    MilliTimestamp,
    /// io.debezium.time.MicroTimestamp: microseconds since the epoch.
    MicroTimestamp,
    /// io.debezium.time.ZonedTimestamp: ISO-8601 text in UTC.
    ZonedTimestamp,
}

impl FieldKind {
    pub fn for_column(c: &Column) -> FieldKind {
        let typmod = c.type_modifier;
        match c.type_oid {
            16 => FieldKind::Boolean,
            21 => FieldKind::Int16,
            23 => FieldKind::Int32,
            20 | 26 => FieldKind::Int64,
            700 => FieldKind::Float32,
            701 => FieldKind::Float64,
            1700 if typmod >= 4 => {
                let precision = ((typmod - 4) >> 16) as u32 & 0xffff;
                let scale = ((typmod - 4) & 0x7ff) as u32;
                if scale <= precision {
                    FieldKind::Decimal { precision, scale }
                } else {
                    FieldKind::VariableDecimal
                }
            }
            1700 => FieldKind::VariableDecimal,
            17 => FieldKind::Bytes,
            114 | 3802 => FieldKind::Json,
            2950 => FieldKind::Uuid,
            1082 => FieldKind::Date,
            1083 if (0..=3).contains(&typmod) => FieldKind::MilliTime,
            1083 => FieldKind::MicroTime,
            1114 if (0..=3).contains(&typmod) => FieldKind::MilliTimestamp,
            1114 => FieldKind::MicroTimestamp,
            1184 => FieldKind::ZonedTimestamp,
            _ => FieldKind::String,
        }
    }

    /// The Avro type of a non-null value. `defined` tracks named types already written
    /// in this schema (a named type is defined once, then referenced by name).
    fn avro_type(self, defined: &mut Vec<String>) -> Json {
        let semantic = |base: &str, name: &str| json!({"type": base, "connect.version": 1, "connect.name": name});
        match self {
            FieldKind::Boolean => json!("boolean"),
            FieldKind::Int16 => json!({"type": "int", "connect.type": "int16"}),
            FieldKind::Int32 => json!("int"),
            FieldKind::Int64 => json!("long"),
            FieldKind::Float32 => json!("float"),
            FieldKind::Float64 => json!("double"),
            FieldKind::Decimal { precision, scale } => json!({
                "type": "bytes",
                "scale": scale,
                "precision": precision,
                "connect.version": 1,
                "connect.parameters": {"scale": scale.to_string(), "connect.decimal.precision": precision.to_string()},
                "connect.name": "org.apache.kafka.connect.data.Decimal",
                "logicalType": "decimal"
            }),
            FieldKind::VariableDecimal => {
                let name = "io.debezium.data.VariableScaleDecimal".to_string();
                if defined.contains(&name) {
                    return json!(name);
                }
                defined.push(name);
                json!({
                    "type": "record",
                    "name": "VariableScaleDecimal",
                    "namespace": "io.debezium.data",
                    "fields": [{"name": "scale", "type": "int"}, {"name": "value", "type": "bytes"}],
                    "connect.doc": "Variable scaled decimal",
                    "connect.version": 1,
                    "connect.name": "io.debezium.data.VariableScaleDecimal"
                })
            }
            FieldKind::String => json!("string"),
            FieldKind::Bytes => json!("bytes"),
            FieldKind::Json => semantic("string", "io.debezium.data.Json"),
            FieldKind::Uuid => semantic("string", "io.debezium.data.Uuid"),
            FieldKind::Date => semantic("int", "io.debezium.time.Date"),
            FieldKind::MilliTime => semantic("int", "io.debezium.time.Time"),
            FieldKind::MicroTime => semantic("long", "io.debezium.time.MicroTime"),
            FieldKind::MilliTimestamp => semantic("long", "io.debezium.time.Timestamp"),
            FieldKind::MicroTimestamp => semantic("long", "io.debezium.time.MicroTimestamp"),
            FieldKind::ZonedTimestamp => semantic("string", "io.debezium.time.ZonedTimestamp"),
        }
    }
}

/// One field of a derived record: which column, how it is encoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldPlan {
    pub column: usize,
    pub name: String,
    pub kind: FieldKind,
    pub nullable: bool,
}

/// Replaces characters Avro names do not allow with `_` (and a leading digit).
pub fn sanitize(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// The namespace of a table's records: `<prefix>.<schema>.<table>`, sanitized.
pub fn namespace(prefix: &str, table: &Table) -> String {
    prefix
        .split('.')
        .chain([table.name.schema.as_str(), table.name.name.as_str()])
        .map(sanitize)
        .collect::<Vec<_>>()
        .join(".")
}

pub fn plan(table: &Table, key_only: bool) -> Vec<FieldPlan> {
    table
        .columns
        .iter()
        .enumerate()
        .filter(|(_, c)| !key_only || c.key)
        .map(|(i, c)| FieldPlan {
            column: i,
            name: sanitize(&c.name),
            kind: FieldKind::for_column(c),
            nullable: c.nullable,
        })
        .collect()
}

fn record(name: &str, namespace: &str, fields: &[FieldPlan], defined: &mut Vec<String>) -> Json {
    let fields: Vec<Json> = fields
        .iter()
        .map(|f| {
            let t = f.kind.avro_type(defined);
            if f.nullable {
                json!({"name": f.name, "type": ["null", t], "default": null})
            } else {
                json!({"name": f.name, "type": t})
            }
        })
        .collect();
    json!({
        "type": "record",
        "name": name,
        "namespace": namespace,
        "fields": fields,
        "connect.name": format!("{namespace}.{name}")
    })
}

/// The key schema: the key columns.
pub fn key_schema(ns: &str, key: &[FieldPlan]) -> Json {
    record("Key", ns, key, &mut Vec::new())
}

fn optional(name: &str, t: &str) -> Json {
    json!({"name": name, "type": ["null", t], "default": null})
}

/// The envelope schema (before/after/source/transaction/op/ts_ms).
pub fn envelope_schema(ns: &str, value: &[FieldPlan]) -> Json {
    let mut defined = Vec::new();
    let value_record = record("Value", ns, value, &mut defined);
    let source = json!({
        "type": "record",
        "name": "Source",
        "namespace": "io.debezium.connector.postgresql",
        "fields": [
            {"name": "version", "type": "string"},
            {"name": "connector", "type": "string"},
            {"name": "name", "type": "string"},
            {"name": "ts_ms", "type": "long"},
            {"name": "snapshot", "type": [{
                "type": "string",
                "connect.version": 1,
                "connect.parameters": {"allowed": "true,last,false,incremental"},
                "connect.default": "false",
                "connect.name": "io.debezium.data.Enum"
            }, "null"], "default": "false"},
            {"name": "db", "type": "string"},
            optional("sequence", "string"),
            optional("ts_us", "long"),
            optional("ts_ns", "long"),
            {"name": "schema", "type": "string"},
            {"name": "table", "type": "string"},
            optional("txId", "long"),
            optional("lsn", "long"),
            optional("xmin", "long")
        ],
        "connect.name": "io.debezium.connector.postgresql.Source"
    });
    let block = json!({
        "type": "record",
        "name": "block",
        "namespace": "event",
        "fields": [
            {"name": "id", "type": "string"},
            {"name": "total_order", "type": "long"},
            {"name": "data_collection_order", "type": "long"}
        ],
        "connect.version": 1,
        "connect.name": "event.block"
    });
    let mut env = Map::new();
    env.insert("type".into(), json!("record"));
    env.insert("name".into(), json!("Envelope"));
    env.insert("namespace".into(), json!(ns));
    env.insert(
        "fields".into(),
        json!([
            {"name": "before", "type": ["null", value_record], "default": null},
            {"name": "after", "type": ["null", "Value"], "default": null},
            {"name": "source", "type": source},
            {"name": "transaction", "type": ["null", block], "default": null},
            {"name": "op", "type": "string"},
            optional("ts_ms", "long"),
            optional("ts_us", "long"),
            optional("ts_ns", "long")
        ]),
    );
    env.insert("connect.version".into(), json!(2));
    env.insert("connect.name".into(), json!(format!("{ns}.Envelope")));
    Json::Object(env)
}
