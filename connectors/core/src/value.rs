//! Column values as the change model carries them, independent of any wire format.

/// One row: a value per column, in the table's column order.
pub type Row = Vec<Value>;

/// A string held inline up to 24 bytes (text values are mostly short: no allocation
/// per value for those).
pub use compact_str::CompactString;

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
    Numeric(CompactString),
    /// Text; up to 24 bytes held inline (no allocation per value for short text).
    Text(CompactString),
    Bytes(Vec<u8>),
    /// JSON text (json and jsonb).
    Json(String),
    /// A UUID in canonical lower-case text form.
    Uuid(String),
    /// Days since 1970-01-01; `i32::MAX` / `i32::MIN` stand for `infinity` / `-infinity`.
    Date(i32),
    /// Microseconds since midnight.
    Time(i64),
    /// Microseconds since 1970-01-01T00:00:00 (no time zone); `i64::MAX` / `i64::MIN`
    /// stand for `infinity` / `-infinity`.
    Timestamp(i64),
    /// Microseconds since 1970-01-01T00:00:00Z; `i64::MAX` / `i64::MIN` stand for
    /// `infinity` / `-infinity`.
    TimestampTz(i64),
    /// A time of day with its UTC offset (seconds east of UTC, as ISO-8601 signs them).
    TimeTz {
        micros: i64,
        offset_secs: i32,
    },
    /// An interval in PostgreSQL's own fields.
    Interval {
        months: i32,
        days: i32,
        micros: i64,
    },
    /// A bit string of `len` bits, first bit most significant, packed 8 per byte (the
    /// last byte zero-padded on the right).
    Bits {
        len: usize,
        bytes: Vec<u8>,
    },
    /// A geometric point.
    Point {
        x: f64,
        y: f64,
    },
    /// An array; a multi-dimensional array nests `Array`s (row-major). Elements may be
    /// [`Value::Null`].
    Array(Vec<Value>),
    /// A composite (row) value: one value per field of the type, in order.
    Composite(Vec<Value>),
    /// A TOASTed value the source did not send because it did not change.
    Unchanged,
    /// A non-key column of an old row that carries only the key: not sent by the source.
    Absent,
}

/// An integer's decimal text (without the formatting machinery: this may run per row).
fn int_text(n: i64) -> String {
    let mut digits = [0u8; 20];
    let digits = decimal(n.unsigned_abs(), &mut digits);
    let mut s = String::with_capacity(digits.len() + 1);
    if n < 0 {
        s.push('-');
    }
    digits.iter().for_each(|&c| s.push(c as char));
    s
}

/// `n` in decimal, written at the end of `out` (no allocation, no formatting machinery).
pub fn decimal(mut n: u64, out: &mut [u8; 20]) -> &[u8] {
    let mut i = out.len();
    loop {
        i -= 1;
        out[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &out[i..];
        }
    }
}

/// Microseconds in Debezium's average month (365.25 / 12 days).
pub const MONTH_MICROS: i64 = 2_629_800_000_000;

/// An interval as Debezium's `MicroDuration`: months of 30.4375 days (365.25 / 12), days
/// of 24 hours, plus the microseconds; computed exactly. `None` when beyond an i64.
pub fn interval_micros(months: i32, days: i32, micros: i64) -> Option<i64> {
    let v = months as i128 * MONTH_MICROS as i128 + days as i128 * 86_400_000_000 + micros as i128;
    i64::try_from(v).ok()
}

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The text PostgreSQL prints for an integer, text or UUID value (the kinds a key
    /// column's text may be taken from); empty for any other kind.
    pub fn key_text(&self) -> String {
        match self {
            Value::Int16(n) => int_text(*n as i64),
            Value::Int32(n) => int_text(*n as i64),
            Value::Int64(n) => int_text(*n),
            Value::Text(s) => s.to_string(),
            Value::Uuid(s) => s.clone(),
            _ => String::new(),
        }
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
            Value::TimeTz { .. } => "timetz",
            Value::Interval { .. } => "interval",
            Value::Bits { .. } => "bits",
            Value::Point { .. } => "point",
            Value::Array(_) => "array",
            Value::Composite(_) => "composite",
            Value::Unchanged => "unchanged-toast",
            Value::Absent => "absent",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_text_prints_as_postgresql_does() {
        for n in [0, 7, -7, 10, 99, -100, i64::MAX, i64::MIN, 1234567890] {
            assert_eq!(Value::Int64(n).key_text(), n.to_string());
        }
        for (v, want) in [
            (Value::Int16(i16::MIN), "-32768"),
            (Value::Int32(i32::MAX), "2147483647"),
            (Value::Text("a\tb".into()), "a\tb"),
            (Value::Uuid("0b4c…".into()), "0b4c…"),
            (Value::Bool(true), ""),
        ] {
            assert_eq!(v.key_text(), want, "{v:?}");
        }
    }
}
