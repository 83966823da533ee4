//! Avro schemas derived from table shapes, in Debezium's PostgreSQL connector layout, and
//! the per-column encoding plan that goes with them.

use serde_json::{json, Map, Value as Json};
use sluice_core::table::oid;
use sluice_core::{Column, Table, TypeInfo, TypeKind};

/// How a column is represented in Avro: Debezium's PostgreSQL connector defaults
/// (`decimal.handling.mode=precise`, `time.precision.mode=adaptive_time_microseconds`,
/// `interval.handling.mode=numeric`, `binary.handling.mode=bytes`,
/// `hstore.handling.mode=json`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FieldKind {
    Boolean,
    /// `int` with connect.type int16.
    Int16,
    Int32,
    Int64,
    Float32,
    Float64,
    /// `bytes` logical decimal with a fixed scale (numeric(p, s); money with the scale of
    /// lc_monetary and no declared precision).
    Decimal {
        precision: Option<u32>,
        scale: u32,
    },
    /// io.debezium.data.VariableScaleDecimal record (unconstrained numeric).
    VariableDecimal,
    String,
    Bytes,
    Json,
    Uuid,
    /// io.debezium.data.Xml string.
    Xml,
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
    /// io.debezium.time.ZonedTime: ISO-8601 time of day in UTC (`08:00:00Z`).
    ZonedTime,
    /// org.apache.kafka.connect.data.Date (logical date): days since the epoch
    /// (`time_precision: connect`).
    ConnectDate,
    /// org.apache.kafka.connect.data.Time (logical time-millis): milliseconds since
    /// midnight (`time_precision: connect`).
    ConnectTime,
    /// org.apache.kafka.connect.data.Timestamp (logical timestamp-millis): milliseconds
    /// since the epoch (`time_precision: connect`).
    ConnectTimestamp,
    /// io.debezium.time.MicroDuration: microseconds, months of 30.4375 days.
    MicroDuration,
    /// io.debezium.data.Bits: the bit string as an unsigned number, little-endian bytes.
    Bits {
        length: u32,
    },
    /// io.debezium.data.Enum string with the allowed labels.
    Enum {
        allowed: Vec<String>,
    },
    /// io.debezium.data.geometry.Point record {x, y, wkb, srid}.
    Point,
    /// An Avro array of nullable items.
    Array(Box<FieldKind>),
    /// A composite type: an Avro record of nullable fields.
    Record(Box<RecordKind>),
}

/// The record a composite type becomes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordKind {
    pub name: String,
    pub namespace: String,
    pub fields: Vec<(String, FieldKind)>,
}

impl FieldKind {
    /// A short name for messages.
    pub fn name(&self) -> String {
        match self {
            FieldKind::Decimal {
                precision: Some(p),
                scale,
            } => format!("decimal({p},{scale})"),
            FieldKind::Decimal {
                precision: None,
                scale,
            } => format!("decimal(scale {scale})"),
            FieldKind::Bits { length } => format!("bits({length})"),
            FieldKind::Enum { .. } => "enum".into(),
            FieldKind::Array(item) => format!("array of {}", item.name()),
            FieldKind::Record(r) => format!("record {}.{}", r.namespace, r.name),
            other => format!("{other:?}"),
        }
    }
}

/// Debezium's `decimal.handling.mode`: how numeric and money columns are represented.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DecimalHandling {
    /// Avro decimals (fixed scale) or VariableScaleDecimal records: exact.
    #[default]
    Precise,
    /// `double`: approximate; NaN and ±Infinity are kept.
    Double,
    /// `string`: PostgreSQL's text of the number (`NaN`, `Infinity` kept).
    String,
}

/// Debezium's `time.precision.mode` for date, time and timestamp columns (timetz and
/// timestamptz are ZonedTime/ZonedTimestamp strings in every mode).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TimePrecision {
    /// Debezium's default: time is always MicroTime; timestamp(0-3) Timestamp (ms),
    /// else MicroTimestamp; date Date.
    #[default]
    AdaptiveTimeMicroseconds,
    /// As the column's precision: time(0-3) Time (ms), else MicroTime; timestamps as above.
    Adaptive,
    /// Kafka Connect's logical types, milliseconds (sub-millisecond digits are dropped).
    Connect,
}

/// How column types are represented: Debezium's handling modes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TypeModes {
    pub decimals: DecimalHandling,
    pub time: TimePrecision,
}

impl FieldKind {
    /// This kind under the type modes (arrays and composites included).
    pub fn with_modes(self, m: TypeModes) -> FieldKind {
        let k = self.with_decimals(m.decimals);
        k.with_time(m.time)
    }

    fn with_time(self, t: TimePrecision) -> FieldKind {
        self.map_leaves(&|k| match (t, k) {
            (TimePrecision::AdaptiveTimeMicroseconds, FieldKind::MilliTime) => FieldKind::MicroTime,
            (TimePrecision::Connect, FieldKind::Date) => FieldKind::ConnectDate,
            (TimePrecision::Connect, FieldKind::MilliTime | FieldKind::MicroTime) => {
                FieldKind::ConnectTime
            }
            (TimePrecision::Connect, FieldKind::MilliTimestamp | FieldKind::MicroTimestamp) => {
                FieldKind::ConnectTimestamp
            }
            (_, k) => k,
        })
    }

    /// This kind under a decimal handling mode (arrays and composites included).
    pub fn with_decimals(self, d: DecimalHandling) -> FieldKind {
        self.map_leaves(&|k| match (d, k) {
            (DecimalHandling::Double, FieldKind::Decimal { .. } | FieldKind::VariableDecimal) => {
                FieldKind::Float64
            }
            (DecimalHandling::String, FieldKind::Decimal { .. } | FieldKind::VariableDecimal) => {
                FieldKind::String
            }
            (_, k) => k,
        })
    }

    /// `f` applied to every kind that is not an array or a composite, inside them too.
    fn map_leaves(self, f: &impl Fn(FieldKind) -> FieldKind) -> FieldKind {
        match self {
            FieldKind::Array(item) => FieldKind::Array(Box::new(item.map_leaves(f))),
            FieldKind::Record(mut r) => {
                for field in &mut r.fields {
                    field.1 = std::mem::replace(&mut field.1, FieldKind::Boolean).map_leaves(f);
                }
                FieldKind::Record(r)
            }
            k => f(k),
        }
    }
}

/// Namespace of the records composite types become (`sluice.pg.<schema>.<type>`).
pub const COMPOSITE_NAMESPACE: &str = "sluice.pg";

/// Length parameter of an unconstrained varbit (the JDBC driver's "unknown length").
const UNKNOWN_LENGTH: u32 = i32::MAX as u32;

impl FieldKind {
    pub fn for_column(c: &Column) -> FieldKind {
        Self::for_type(&c.pg_type, 0)
    }

    /// The representation of a value of type `t`.
    pub fn for_type(t: &TypeInfo, depth: usize) -> FieldKind {
        if depth > 32 {
            return FieldKind::String;
        }
        match &t.kind {
            TypeKind::Domain { base } => Self::for_type(base, depth + 1),
            TypeKind::Enum { labels } => FieldKind::Enum {
                allowed: labels.clone(),
            },
            TypeKind::Money { fraction_digits } => FieldKind::Decimal {
                precision: None,
                scale: *fraction_digits,
            },
            TypeKind::Array { element, dims, .. } => {
                let mut k = Self::for_type(element, depth + 1);
                for _ in 0..(*dims).clamp(1, 6) {
                    k = FieldKind::Array(Box::new(k));
                }
                k
            }
            TypeKind::Composite { fields } => FieldKind::Record(Box::new(RecordKind {
                name: sanitize(&t.name),
                namespace: format!("{COMPOSITE_NAMESPACE}.{}", sanitize(&t.schema)),
                fields: fields
                    .iter()
                    .map(|(n, ft)| (sanitize(n), Self::for_type(ft, depth + 1)))
                    .collect(),
            })),
            TypeKind::Range { .. } | TypeKind::Multirange { .. } => FieldKind::String,
            TypeKind::Base => Self::for_base(t),
        }
    }

    fn for_base(t: &TypeInfo) -> FieldKind {
        let typmod = t.modifier;
        match t.oid {
            oid::BOOL => FieldKind::Boolean,
            oid::INT2 => FieldKind::Int16,
            oid::INT4 => FieldKind::Int32,
            oid::INT8 | oid::OID => FieldKind::Int64,
            oid::FLOAT4 => FieldKind::Float32,
            oid::FLOAT8 => FieldKind::Float64,
            oid::NUMERIC if typmod >= 4 => {
                let precision = ((typmod - 4) >> 16) as u32 & 0xffff;
                let scale = ((typmod - 4) & 0x7ff) as u32;
                if scale <= precision {
                    FieldKind::Decimal {
                        precision: Some(precision),
                        scale,
                    }
                } else {
                    FieldKind::VariableDecimal
                }
            }
            oid::NUMERIC => FieldKind::VariableDecimal,
            oid::MONEY => FieldKind::Decimal {
                precision: None,
                scale: 2,
            },
            oid::BYTEA => FieldKind::Bytes,
            oid::JSON | oid::JSONB => FieldKind::Json,
            oid::XML => FieldKind::Xml,
            oid::UUID => FieldKind::Uuid,
            oid::DATE => FieldKind::Date,
            oid::TIME if (0..=3).contains(&typmod) => FieldKind::MilliTime,
            oid::TIME => FieldKind::MicroTime,
            oid::TIMETZ => FieldKind::ZonedTime,
            oid::TIMESTAMP if (0..=3).contains(&typmod) => FieldKind::MilliTimestamp,
            oid::TIMESTAMP => FieldKind::MicroTimestamp,
            oid::TIMESTAMPTZ => FieldKind::ZonedTimestamp,
            oid::INTERVAL => FieldKind::MicroDuration,
            oid::BIT if typmod == 1 => FieldKind::Boolean,
            oid::BIT | oid::VARBIT => FieldKind::Bits {
                length: if typmod > 0 {
                    typmod as u32
                } else {
                    UNKNOWN_LENGTH
                },
            },
            oid::POINT => FieldKind::Point,
            o if o >= oid::FIRST_NORMAL_OBJECT_ID && t.name == "hstore" => FieldKind::Json,
            // Textual built-ins, and the text fallback of types without a mapping.
            _ => FieldKind::String,
        }
    }

    /// The Avro type of a non-null value. `defined` tracks named types already written
    /// in this schema (a named type is defined once, then referenced by name).
    fn avro_type(&self, defined: &mut Vec<String>) -> Json {
        let semantic = |base: &str, name: &str| json!({"type": base, "connect.version": 1, "connect.name": name});
        match self {
            FieldKind::Boolean => json!("boolean"),
            FieldKind::Int16 => json!({"type": "int", "connect.type": "int16"}),
            FieldKind::Int32 => json!("int"),
            FieldKind::Int64 => json!("long"),
            FieldKind::Float32 => json!("float"),
            FieldKind::Float64 => json!("double"),
            FieldKind::Decimal {
                precision: Some(precision),
                scale,
            } => json!({
                "type": "bytes",
                "scale": scale,
                "precision": precision,
                "connect.version": 1,
                "connect.parameters": {"scale": scale.to_string(), "connect.decimal.precision": precision.to_string()},
                "connect.name": "org.apache.kafka.connect.data.Decimal",
                "logicalType": "decimal"
            }),
            // No declared precision (money): Confluent's AvroData default precision, 64.
            FieldKind::Decimal {
                precision: None,
                scale,
            } => json!({
                "type": "bytes",
                "scale": scale,
                "precision": 64,
                "connect.version": 1,
                "connect.parameters": {"scale": scale.to_string()},
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
            FieldKind::Xml => semantic("string", "io.debezium.data.Xml"),
            FieldKind::Uuid => semantic("string", "io.debezium.data.Uuid"),
            FieldKind::Date => semantic("int", "io.debezium.time.Date"),
            FieldKind::MilliTime => semantic("int", "io.debezium.time.Time"),
            FieldKind::MicroTime => semantic("long", "io.debezium.time.MicroTime"),
            FieldKind::MilliTimestamp => semantic("long", "io.debezium.time.Timestamp"),
            FieldKind::MicroTimestamp => semantic("long", "io.debezium.time.MicroTimestamp"),
            FieldKind::ConnectDate => connect_logical("int", "Date", "date"),
            FieldKind::ConnectTime => connect_logical("int", "Time", "time-millis"),
            FieldKind::ConnectTimestamp => connect_logical("long", "Timestamp", "timestamp-millis"),
            FieldKind::ZonedTimestamp => semantic("string", "io.debezium.time.ZonedTimestamp"),
            FieldKind::ZonedTime => semantic("string", "io.debezium.time.ZonedTime"),
            FieldKind::MicroDuration => semantic("long", "io.debezium.time.MicroDuration"),
            FieldKind::Bits { length } => json!({
                "type": "bytes",
                "connect.version": 1,
                "connect.parameters": {"length": length.to_string()},
                "connect.name": "io.debezium.data.Bits"
            }),
            FieldKind::Enum { allowed } => json!({
                "type": "string",
                "connect.version": 1,
                "connect.parameters": {"allowed": allowed.join(",")},
                "connect.name": "io.debezium.data.Enum"
            }),
            FieldKind::Point => {
                let name = "io.debezium.data.geometry.Point".to_string();
                if defined.contains(&name) {
                    return json!(name);
                }
                defined.push(name);
                json!({
                    "type": "record",
                    "name": "Point",
                    "namespace": "io.debezium.data.geometry",
                    "fields": [
                        {"name": "x", "type": "double"},
                        {"name": "y", "type": "double"},
                        {"name": "wkb", "type": ["null", "bytes"], "default": null},
                        {"name": "srid", "type": ["null", "int"], "default": null}
                    ],
                    "connect.doc": "Geometry (POINT)",
                    "connect.version": 1,
                    "connect.name": "io.debezium.data.geometry.Point"
                })
            }
            FieldKind::Array(item) => json!({
                "type": "array",
                "items": ["null", item.avro_type(defined)]
            }),
            FieldKind::Record(r) => {
                let RecordKind {
                    name,
                    namespace,
                    fields,
                } = &**r;
                let full = format!("{namespace}.{name}");
                if defined.contains(&full) {
                    return json!(full);
                }
                defined.push(full.clone());
                let fields: Vec<Json> = fields
                    .iter()
                    .map(|(n, k)| json!({"name": n, "type": ["null", k.avro_type(defined)], "default": null}))
                    .collect();
                json!({
                    "type": "record",
                    "name": name,
                    "namespace": namespace,
                    "fields": fields,
                    "connect.name": full
                })
            }
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
    /// The Avro default of a NOT NULL column with a constant default, so adding such a
    /// column stays backward compatible (as Debezium does).
    pub default: Option<Json>,
}

/// The Avro JSON default for a column's constant default, where the mapping is plain.
/// A Kafka Connect logical type as Confluent's AvroConverter writes it.
fn connect_logical(avro: &str, name: &str, logical: &str) -> Json {
    json!({
        "type": avro,
        "connect.version": 1,
        "connect.name": format!("org.apache.kafka.connect.data.{name}"),
        "logicalType": logical
    })
}

fn avro_default(kind: &FieldKind, text: &str) -> Option<Json> {
    match kind {
        FieldKind::Boolean => match text {
            "true" | "t" => Some(json!(true)),
            "false" | "f" => Some(json!(false)),
            _ => None,
        },
        FieldKind::Int16 | FieldKind::Int32 | FieldKind::Int64 => {
            text.parse::<i64>().ok().map(|v| json!(v))
        }
        FieldKind::Float32 | FieldKind::Float64 => text
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .map(|v| json!(v)),
        FieldKind::String | FieldKind::Json | FieldKind::Uuid => Some(json!(text)),
        _ => None,
    }
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

pub fn plan(table: &Table, key_only: bool, modes: TypeModes) -> Vec<FieldPlan> {
    table
        .columns
        .iter()
        .enumerate()
        .filter(|(_, c)| !key_only || c.key)
        .map(|(i, c)| {
            let kind = FieldKind::for_column(c).with_modes(modes);
            FieldPlan {
                column: i,
                name: sanitize(&c.name),
                default: c
                    .default_text
                    .as_deref()
                    .and_then(|t| avro_default(&kind, t)),
                kind,
                nullable: c.nullable,
            }
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
            } else if let Some(d) = &f.default {
                json!({"name": f.name, "type": t, "default": d})
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

/// The flat value schema: the row's fields, then `__op`, `__lsn`, `__source_ts_ms` and
/// `__deleted` (optional, as Debezium's ExtractNewRecordState adds them).
pub fn flat_schema(ns: &str, value: &[FieldPlan]) -> Json {
    let mut defined = Vec::new();
    let mut rec = record("Value", ns, value, &mut defined);
    if let Some(Json::Array(fields)) = rec.get_mut("fields") {
        fields.push(optional("__op", "string"));
        fields.push(optional("__lsn", "long"));
        fields.push(optional("__source_ts_ms", "long"));
        fields.push(optional("__deleted", "string"));
    }
    rec
}

/// The envelope schema (before/after/source/transaction/op/ts_ms).
pub fn envelope_schema(ns: &str, value: &[FieldPlan]) -> Json {
    let mut defined = Vec::new();
    let value_record = record("Value", ns, value, &mut defined);
    let source = source_schema();
    let block = transaction_schema();
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

/// Debezium's `source` record for PostgreSQL.
pub fn source_schema() -> Json {
    json!({
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
    })
}

/// Debezium's `transaction` block (`provide.transaction.metadata`).
pub fn transaction_schema() -> Json {
    json!({
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
    })
}

/// Debezium's transaction metadata key (topic `<prefix>.transaction`): the id.
pub fn transaction_key_schema() -> Json {
    json!({
        "type": "record",
        "name": "TransactionMetadataKey",
        "namespace": "io.debezium.connector.common",
        "fields": [{"name": "id", "type": "string"}],
        "connect.version": 1,
        "connect.name": "io.debezium.connector.common.TransactionMetadataKey"
    })
}

/// Debezium's transaction metadata value: status BEGIN or END, id, and at the end the
/// event count in all and per data collection.
pub fn transaction_value_schema() -> Json {
    json!({
        "type": "record",
        "name": "TransactionMetadataValue",
        "namespace": "io.debezium.connector.common",
        "fields": [
            {"name": "status", "type": "string"},
            {"name": "id", "type": "string"},
            optional("event_count", "long"),
            {"name": "data_collections", "type": ["null", {
                "type": "array",
                "items": ["null", {
                    "type": "record",
                    "name": "collection",
                    "namespace": "event",
                    "fields": [
                        {"name": "data_collection", "type": "string"},
                        {"name": "event_count", "type": "long"}
                    ],
                    "connect.version": 1,
                    "connect.name": "event.collection"
                }]
            }], "default": null},
            {"name": "ts_ms", "type": "long"}
        ],
        "connect.version": 1,
        "connect.name": "io.debezium.connector.common.TransactionMetadataValue"
    })
}

/// Debezium's logical decoding message key: the message's prefix.
pub fn message_key_schema() -> Json {
    json!({
        "type": "record",
        "name": "MessageKey",
        "namespace": "io.debezium.connector.postgresql",
        "fields": [optional("prefix", "string")],
        "connect.version": 1,
        "connect.name": "io.debezium.connector.postgresql.MessageKey"
    })
}

/// Debezium's logical decoding message value: op "m", ts_ms, source, transaction and
/// the message (prefix, content as bytes).
pub fn message_value_schema() -> Json {
    json!({
        "type": "record",
        "name": "MessageValue",
        "namespace": "io.debezium.connector.postgresql",
        "fields": [
            {"name": "op", "type": "string"},
            optional("ts_ms", "long"),
            {"name": "source", "type": source_schema()},
            {"name": "transaction", "type": ["null", transaction_schema()], "default": null},
            {"name": "message", "type": {
                "type": "record",
                "name": "Message",
                "namespace": "io.debezium.connector.postgresql",
                "fields": [optional("prefix", "string"), optional("content", "bytes")],
                "connect.version": 1,
                "connect.name": "io.debezium.connector.postgresql.Message"
            }}
        ],
        "connect.version": 1,
        "connect.name": "io.debezium.connector.postgresql.MessageValue"
    })
}

#[cfg(test)]
mod decimal_tests {
    use super::*;

    #[test]
    fn decimal_handling_reaches_arrays_and_composites() {
        let nested = FieldKind::Array(Box::new(FieldKind::Record(Box::new(RecordKind {
            name: "r".into(),
            namespace: "ns".into(),
            fields: vec![
                ("d".into(), FieldKind::VariableDecimal),
                ("i".into(), FieldKind::Int32),
            ],
        }))));
        let as_string = nested.clone().with_decimals(DecimalHandling::String);
        let FieldKind::Array(item) = &as_string else {
            panic!("{as_string:?}")
        };
        let FieldKind::Record(r) = &**item else {
            panic!("{item:?}")
        };
        assert_eq!(r.fields[0].1, FieldKind::String);
        assert_eq!(r.fields[1].1, FieldKind::Int32);
        let fixed = FieldKind::Decimal {
            precision: Some(10),
            scale: 2,
        };
        assert_eq!(
            fixed.clone().with_decimals(DecimalHandling::Double),
            FieldKind::Float64
        );
        assert_eq!(fixed.clone().with_decimals(DecimalHandling::Precise), fixed);
        assert_eq!(
            nested.clone().with_decimals(DecimalHandling::Precise),
            nested
        );
    }
}
