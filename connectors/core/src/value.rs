//! Column values as the change model carries them, independent of any wire format.

/// One row: a value per column, in the table's column order.
pub type Row = Vec<Value>;

/// A column value.
///
/// Temporal values are kept as integers in the units the event formats use, so the
/// encoders never re-parse text on the hot path.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int16(i16),
    Int32(i32),
    Int64(i64),
    Float32(f32),
    Float64(f64),
    /// An arbitrary-precision decimal in PostgreSQL's text form (`-12.340`, `NaN`).
    Numeric(String),
    Text(String),
    Bytes(Vec<u8>),
    /// JSON text (json and jsonb).
    Json(String),
    /// A UUID in canonical lower-case text form.
    Uuid(String),
    /// Days since 1970-01-01.
    Date(i32),
    /// Microseconds since midnight.
    Time(i64),
    /// Microseconds since 1970-01-01T00:00:00 (no time zone).
    Timestamp(i64),
    /// Microseconds since 1970-01-01T00:00:00Z.
    TimestampTz(i64),
    /// A TOASTed value the source did not send because it did not change.
    Unchanged,
    /// A non-key column of an old row that carries only the key: not sent by the source.
    Absent,
}

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// A short name of the value's kind, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Int16(_) => "int16",
            Value::Int32(_) => "int32",
            Value::Int64(_) => "int64",
            Value::Float32(_) => "float32",
            Value::Float64(_) => "float64",
            Value::Numeric(_) => "numeric",
            Value::Text(_) => "text",
            Value::Bytes(_) => "bytes",
            Value::Json(_) => "json",
            Value::Uuid(_) => "uuid",
            Value::Date(_) => "date",
            Value::Time(_) => "time",
            Value::Timestamp(_) => "timestamp",
            Value::TimestampTz(_) => "timestamptz",
            Value::Unchanged => "unchanged-toast",
            Value::Absent => "absent",
        }
    }
}
