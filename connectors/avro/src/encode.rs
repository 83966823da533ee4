//! Encoding rows into Avro binary following a [`FieldPlan`].

use std::fmt::Write as _;

use sluice_core::{Row, Value};

use crate::binary;
use crate::decimal::{self, DecimalError};
use crate::schema::{FieldKind, FieldPlan};

/// Debezium's placeholder for unchanged TOASTed values it did not receive.
pub const UNAVAILABLE: &str = "__debezium_unavailable_value";

/// A value that does not fit its column's schema.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column {column} ({kind:?}) cannot hold a {value_kind} value: {reason}")]
pub struct FieldError {
    pub column: String,
    pub kind: FieldKind,
    pub value_kind: &'static str,
    pub reason: String,
}

pub fn row(buf: &mut Vec<u8>, plan: &[FieldPlan], row: &Row) -> Result<(), FieldError> {
    for f in plan {
        let v = row.get(f.column).unwrap_or(&Value::Absent);
        field(buf, f, v)?;
    }
    Ok(())
}

fn field(buf: &mut Vec<u8>, f: &FieldPlan, v: &Value) -> Result<(), FieldError> {
    let err = |reason: &str| FieldError {
        column: f.name.clone(),
        kind: f.kind,
        value_kind: v.kind(),
        reason: reason.to_string(),
    };
    let placeholder_kind = matches!(
        f.kind,
        FieldKind::String | FieldKind::Json | FieldKind::Bytes
    );
    match v {
        // An unchanged TOASTed text/bytes value keeps Debezium's explicit marker even in a
        // nullable column: a null would claim the value was erased.
        Value::Unchanged if placeholder_kind => {}
        Value::Null | Value::Absent | Value::Unchanged if f.nullable => {
            binary::branch(buf, 0);
            return Ok(());
        }
        Value::Null => return Err(err("NULL in a NOT NULL column")),
        _ => {}
    }
    if f.nullable {
        binary::branch(buf, 1);
    }
    match (f.kind, v) {
        // A required column the source did not send: the type's neutral value, as Debezium.
        (kind, Value::Absent | Value::Unchanged) => {
            neutral(buf, kind, matches!(v, Value::Unchanged))
        }
        (FieldKind::Boolean, Value::Bool(b)) => binary::boolean(buf, *b),
        (FieldKind::Int16, Value::Int16(i)) => binary::int(buf, *i as i32),
        (FieldKind::Int32, Value::Int32(i)) => binary::int(buf, *i),
        (FieldKind::Int64, Value::Int64(i)) => binary::long(buf, *i),
        (FieldKind::Float32, Value::Float32(x)) => binary::float(buf, *x),
        (FieldKind::Float64, Value::Float64(x)) => binary::double(buf, *x),
        (FieldKind::Decimal { scale, .. }, Value::Numeric(s)) => {
            let b = decimal::to_fixed_scale(s, scale).map_err(|e| err(decimal_reason(e)))?;
            binary::bytes(buf, &b)
        }
        (FieldKind::VariableDecimal, Value::Numeric(s)) => {
            let (scale, b) = decimal::to_variable_scale(s).map_err(|e| err(decimal_reason(e)))?;
            binary::int(buf, scale);
            binary::bytes(buf, &b)
        }
        (
            FieldKind::String,
            Value::Text(s) | Value::Numeric(s) | Value::Json(s) | Value::Uuid(s),
        ) => binary::string(buf, s),
        (FieldKind::Json, Value::Json(s) | Value::Text(s)) => binary::string(buf, s),
        (FieldKind::Uuid, Value::Uuid(s) | Value::Text(s)) => binary::string(buf, s),
        (FieldKind::Bytes, Value::Bytes(b)) => binary::bytes(buf, b),
        (FieldKind::Date, Value::Date(d)) => binary::int(buf, *d),
        (FieldKind::MicroTime, Value::Time(t)) => binary::long(buf, *t),
        (FieldKind::MilliTime, Value::Time(t)) => binary::int(buf, (*t / 1000) as i32),
        (FieldKind::MicroTimestamp, Value::Timestamp(t)) => binary::long(buf, *t),
        (FieldKind::MilliTimestamp, Value::Timestamp(t)) => binary::long(buf, t.div_euclid(1000)),
        (FieldKind::ZonedTimestamp, Value::TimestampTz(t)) => {
            let mut s = String::with_capacity(32);
            iso_utc(&mut s, *t);
            binary::string(buf, &s)
        }
        _ => return Err(err("the value's type does not match the column's schema")),
    }
    Ok(())
}

fn decimal_reason(e: DecimalError) -> &'static str {
    match e {
        DecimalError::NotFinite => "NaN and Infinity have no decimal representation",
        DecimalError::Syntax => "not a decimal number",
        DecimalError::ScaleOverflow => "more fraction digits than the column's scale",
    }
}

fn neutral(buf: &mut Vec<u8>, kind: FieldKind, unchanged_toast: bool) {
    match kind {
        FieldKind::Boolean => binary::boolean(buf, false),
        FieldKind::Int16 | FieldKind::Int32 | FieldKind::Date | FieldKind::MilliTime => {
            binary::int(buf, 0)
        }
        FieldKind::Int64
        | FieldKind::MicroTime
        | FieldKind::MilliTimestamp
        | FieldKind::MicroTimestamp => binary::long(buf, 0),
        FieldKind::Float32 => binary::float(buf, 0.0),
        FieldKind::Float64 => binary::double(buf, 0.0),
        FieldKind::Decimal { .. } => binary::bytes(buf, &[0]),
        FieldKind::VariableDecimal => {
            binary::int(buf, 0);
            binary::bytes(buf, &[0]);
        }
        FieldKind::Bytes if unchanged_toast => binary::bytes(buf, UNAVAILABLE.as_bytes()),
        FieldKind::Bytes => binary::bytes(buf, &[]),
        FieldKind::String | FieldKind::Json | FieldKind::Uuid | FieldKind::ZonedTimestamp => {
            binary::string(buf, if unchanged_toast { UNAVAILABLE } else { "" })
        }
    }
}

/// Days since 1970-01-01 to (year, month, day).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + (m <= 2) as i64;
    (y, m, d)
}

/// Formats microseconds since the epoch as ISO-8601 UTC (`2024-05-01T10:00:00.123Z`), with
/// fraction digits in groups of three as java.time prints them. ±infinity print as
/// `infinity` / `-infinity`.
pub fn iso_utc(out: &mut String, micros: i64) {
    if micros == i64::MAX {
        out.push_str("infinity");
        return;
    }
    if micros == i64::MIN {
        out.push_str("-infinity");
        return;
    }
    let days = micros.div_euclid(86_400_000_000);
    let rem = micros.rem_euclid(86_400_000_000);
    let (y, m, d) = civil_from_days(days);
    let secs = rem / 1_000_000;
    let frac = rem % 1_000_000;
    if (0..=9999).contains(&y) {
        let _ = write!(out, "{y:04}-{m:02}-{d:02}");
    } else {
        let _ = write!(out, "{y:+05}-{m:02}-{d:02}");
    }
    let _ = write!(
        out,
        "T{:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    );
    if frac != 0 {
        if frac % 1000 == 0 {
            let _ = write!(out, ".{:03}", frac / 1000);
        } else {
            let _ = write!(out, ".{frac:06}");
        }
    }
    out.push('Z');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_formatting_table() {
        for (us, want) in [
            (0, "1970-01-01T00:00:00Z"),
            (1_500_000, "1970-01-01T00:00:01.500Z"),
            (1_000_001, "1970-01-01T00:00:01.000001Z"),
            (-1, "1969-12-31T23:59:59.999999Z"),
            (1_700_000_000_000_000, "2023-11-14T22:13:20Z"),
            (i64::MAX, "infinity"),
        ] {
            let mut s = String::new();
            iso_utc(&mut s, us);
            assert_eq!(s, want, "{us}");
        }
    }

    #[test]
    fn null_in_required_column_is_named() {
        let f = FieldPlan {
            column: 0,
            name: "qty".into(),
            kind: FieldKind::Int32,
            nullable: false,
        };
        let e = row(&mut Vec::new(), &[f], &vec![Value::Null]).unwrap_err();
        assert_eq!(e.column, "qty");
        assert!(e.to_string().contains("NOT NULL"), "{e}");
    }
}
