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
#[error("column {column} ({}) cannot hold a {value_kind} value: {reason}", .kind.name())]
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

/// Kinds whose unchanged TOASTed values carry Debezium's explicit marker.
fn placeholder_kind(kind: &FieldKind) -> bool {
    match kind {
        FieldKind::String
        | FieldKind::Json
        | FieldKind::Bytes
        | FieldKind::Xml
        | FieldKind::Enum { .. } => true,
        FieldKind::Array(item) => matches!(
            **item,
            FieldKind::String | FieldKind::Json | FieldKind::Xml | FieldKind::Enum { .. }
        ),
        _ => false,
    }
}

fn field(buf: &mut Vec<u8>, f: &FieldPlan, v: &Value) -> Result<(), FieldError> {
    let err = |(value_kind, reason): (&'static str, String)| FieldError {
        column: f.name.clone(),
        kind: f.kind.clone(),
        value_kind,
        reason,
    };
    match v {
        // An unchanged TOASTed text/bytes value keeps Debezium's explicit marker even in a
        // nullable column: a null would claim the value was erased.
        Value::Unchanged if placeholder_kind(&f.kind) => {}
        Value::Null | Value::Absent | Value::Unchanged if f.nullable => {
            binary::branch(buf, 0);
            return Ok(());
        }
        Value::Null => {
            return Err(err((v.kind(), "NULL in a NOT NULL column".to_string())));
        }
        _ => {}
    }
    if f.nullable {
        binary::branch(buf, 1);
    }
    match v {
        // A required column the source did not send: the type's neutral value, as Debezium.
        Value::Absent | Value::Unchanged => {
            neutral(buf, &f.kind, matches!(v, Value::Unchanged));
            Ok(())
        }
        _ => value(buf, &f.kind, v).map_err(err),
    }
}

/// A nullable item (array element, composite field): the union branch, then the value.
fn nullable(buf: &mut Vec<u8>, kind: &FieldKind, v: &Value) -> Result<(), (&'static str, String)> {
    match v {
        Value::Null | Value::Absent | Value::Unchanged => {
            binary::branch(buf, 0);
            Ok(())
        }
        _ => {
            binary::branch(buf, 1);
            value(buf, kind, v)
        }
    }
}

/// Debezium's extreme values for ±infinity timestamps (PGStatement.DATE_POSITIVE_INFINITY
/// and DATE_NEGATIVE_INFINITY), emitted as-is in every timestamp representation.
pub const POSITIVE_INFINITY: i64 = 9_223_372_036_825_200_000;
pub const NEGATIVE_INFINITY: i64 = -9_223_372_036_832_400_000;

/// A non-null value.
fn value(buf: &mut Vec<u8>, kind: &FieldKind, v: &Value) -> Result<(), (&'static str, String)> {
    let fail = |reason: &str| Err((v.kind(), reason.to_string()));
    match (kind, v) {
        (FieldKind::Boolean, Value::Bool(b)) => binary::boolean(buf, *b),
        // bit(1)
        (FieldKind::Boolean, Value::Bits { len: 1, bytes }) => {
            binary::boolean(buf, bytes.first().is_some_and(|b| b & 0x80 != 0))
        }
        (FieldKind::Int16, Value::Int16(i)) => binary::int(buf, *i as i32),
        (FieldKind::Int32, Value::Int32(i)) => binary::int(buf, *i),
        (FieldKind::Int64, Value::Int64(i)) => binary::long(buf, *i),
        (FieldKind::Float32, Value::Float32(x)) => binary::float(buf, *x),
        (FieldKind::Float64, Value::Float64(x)) => binary::double(buf, *x),
        // decimal_handling: double (Rust reads NaN, Infinity and -Infinity as PostgreSQL
        // prints them).
        (FieldKind::Float64, Value::Numeric(s)) => match s.parse::<f64>() {
            Ok(x) => binary::double(buf, x),
            Err(_) => return fail("not a number"),
        },
        (FieldKind::Decimal { scale, .. }, Value::Numeric(s)) => {
            match decimal::to_fixed_scale(s, *scale) {
                Ok(b) => binary::bytes(buf, &b),
                Err(e) => return fail(decimal_reason(e)),
            }
        }
        (FieldKind::VariableDecimal, Value::Numeric(s)) => match decimal::to_variable_scale(s) {
            Ok((scale, b)) => {
                binary::int(buf, scale);
                binary::bytes(buf, &b)
            }
            Err(e) => return fail(decimal_reason(e)),
        },
        (FieldKind::String, Value::Text(s) | Value::Numeric(s)) => binary::string(buf, s),
        (FieldKind::String, Value::Json(s) | Value::Uuid(s)) => binary::string(buf, s),
        (FieldKind::Json, Value::Json(s)) => binary::string(buf, s),
        (FieldKind::Json, Value::Text(s)) => binary::string(buf, s),
        (FieldKind::Xml | FieldKind::Enum { .. }, Value::Text(s)) => binary::string(buf, s),
        (FieldKind::Uuid, Value::Uuid(s)) => binary::string(buf, s),
        (FieldKind::Uuid, Value::Text(s)) => binary::string(buf, s),
        (FieldKind::Bytes, Value::Bytes(b)) => binary::bytes(buf, b),
        (FieldKind::Date | FieldKind::ConnectDate, Value::Date(d)) => binary::int(buf, *d),
        (FieldKind::ConnectTime, Value::Time(t)) => binary::int(buf, t.div_euclid(1000) as i32),
        (FieldKind::ConnectTimestamp, Value::Timestamp(t)) => binary::long(buf, milli_ts(*t)),
        (FieldKind::MicroTime, Value::Time(t)) => binary::long(buf, *t),
        (FieldKind::MilliTime, Value::Time(t)) => binary::int(buf, (*t / 1000) as i32),
        (FieldKind::MicroTimestamp, Value::Timestamp(t)) => binary::long(buf, micro_ts(*t)),
        (FieldKind::MilliTimestamp, Value::Timestamp(t)) => binary::long(buf, milli_ts(*t)),
        (FieldKind::ZonedTimestamp, Value::TimestampTz(t)) => {
            let mut s = String::with_capacity(32);
            iso_utc(&mut s, *t);
            binary::string(buf, &s)
        }
        (
            FieldKind::ZonedTime,
            Value::TimeTz {
                micros,
                offset_secs,
            },
        ) => {
            let mut s = String::with_capacity(24);
            iso_time_utc(&mut s, *micros, *offset_secs);
            binary::string(buf, &s)
        }
        (
            FieldKind::MicroDuration,
            Value::Interval {
                months,
                days,
                micros,
            },
        ) => {
            // Beyond ±292 000 years: clamped (the source counts these).
            let v = sluice_core::value::interval_micros(*months, *days, *micros).unwrap_or(
                if (*months as i128) * sluice_core::value::MONTH_MICROS as i128
                    + (*days as i128) * 86_400_000_000
                    + *micros as i128
                    > 0
                {
                    i64::MAX
                } else {
                    i64::MIN
                },
            );
            binary::long(buf, v)
        }
        (FieldKind::Bits { .. }, Value::Bits { len, bytes }) => {
            binary::bytes(buf, &bits_le(*len, bytes))
        }
        (FieldKind::Point, Value::Point { x, y }) => {
            binary::double(buf, *x);
            binary::double(buf, *y);
            binary::branch(buf, 1);
            binary::bytes(buf, &wkb_point(*x, *y));
            binary::branch(buf, 0); // srid
        }
        (FieldKind::Array(item), Value::Array(items)) => {
            if !items.is_empty() {
                binary::long(buf, items.len() as i64);
                for it in items {
                    nullable(buf, item, it)?;
                }
            }
            binary::long(buf, 0);
        }
        (FieldKind::Record(r), Value::Composite(values)) => {
            let fields = &r.fields;
            if values.len() != fields.len() {
                return fail("the composite value has a different number of fields than its type");
            }
            for ((_, k), v) in fields.iter().zip(values) {
                nullable(buf, k, v)?;
            }
        }
        _ => return fail("the value's type does not match the column's schema"),
    }
    Ok(())
}

fn micro_ts(t: i64) -> i64 {
    match t {
        i64::MAX => POSITIVE_INFINITY,
        i64::MIN => NEGATIVE_INFINITY,
        t => t,
    }
}

fn milli_ts(t: i64) -> i64 {
    match t {
        i64::MAX => POSITIVE_INFINITY,
        i64::MIN => NEGATIVE_INFINITY,
        t => t.div_euclid(1000),
    }
}

/// A bit string (first bit most significant, packed MSB first) as Debezium's Bits: the
/// unsigned number it spells, little-endian, in ceil(len / 8) bytes.
pub fn bits_le(len: usize, packed: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; len.div_ceil(8)];
    for k in 0..len {
        let i = len - 1 - k; // bit i of the string is bit k of the number
        if packed
            .get(i / 8)
            .is_some_and(|b| b & (0x80 >> (i % 8)) != 0)
        {
            out[k / 8] |= 1 << (k % 8);
        }
    }
    out
}

/// Debezium's WKB of a point: little-endian byte order mark, type 1, x, y.
pub fn wkb_point(x: f64, y: f64) -> [u8; 21] {
    let mut w = [0u8; 21];
    w[0] = 1;
    w[1..5].copy_from_slice(&1u32.to_le_bytes());
    w[5..13].copy_from_slice(&x.to_le_bytes());
    w[13..21].copy_from_slice(&y.to_le_bytes());
    w
}

fn decimal_reason(e: DecimalError) -> &'static str {
    match e {
        DecimalError::NotFinite => "NaN and Infinity have no decimal representation",
        DecimalError::Syntax => "not a decimal number",
        DecimalError::ScaleOverflow => "more fraction digits than the column's scale",
    }
}

fn neutral(buf: &mut Vec<u8>, kind: &FieldKind, unchanged_toast: bool) {
    match kind {
        FieldKind::Boolean => binary::boolean(buf, false),
        FieldKind::Int16
        | FieldKind::Int32
        | FieldKind::Date
        | FieldKind::MilliTime
        | FieldKind::ConnectDate
        | FieldKind::ConnectTime => binary::int(buf, 0),
        FieldKind::Int64
        | FieldKind::MicroTime
        | FieldKind::MilliTimestamp
        | FieldKind::MicroTimestamp
        | FieldKind::ConnectTimestamp
        | FieldKind::MicroDuration => binary::long(buf, 0),
        FieldKind::Float32 => binary::float(buf, 0.0),
        FieldKind::Float64 => binary::double(buf, 0.0),
        FieldKind::Decimal { .. } => binary::bytes(buf, &[0]),
        FieldKind::VariableDecimal => {
            binary::int(buf, 0);
            binary::bytes(buf, &[0]);
        }
        FieldKind::Bytes if unchanged_toast => binary::bytes(buf, UNAVAILABLE.as_bytes()),
        FieldKind::Bytes | FieldKind::Bits { .. } => binary::bytes(buf, &[]),
        FieldKind::String
        | FieldKind::Json
        | FieldKind::Xml
        | FieldKind::Enum { .. }
        | FieldKind::Uuid
        | FieldKind::ZonedTimestamp
        | FieldKind::ZonedTime => {
            binary::string(buf, if unchanged_toast { UNAVAILABLE } else { "" })
        }
        FieldKind::Point => {
            binary::double(buf, 0.0);
            binary::double(buf, 0.0);
            binary::branch(buf, 0);
            binary::branch(buf, 0);
        }
        FieldKind::Array(item) => {
            if unchanged_toast && placeholder_kind(kind) {
                binary::long(buf, 1);
                binary::branch(buf, 1);
                neutral(buf, item, true);
            }
            binary::long(buf, 0);
        }
        FieldKind::Record(r) => {
            for _ in &r.fields {
                binary::branch(buf, 0);
            }
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
/// fraction digits in groups of three as java.time prints them. ±infinity (`i64::MAX` /
/// `i64::MIN`) print as Debezium's extreme instants ([`POSITIVE_INFINITY`] /
/// [`NEGATIVE_INFINITY`] milliseconds, proleptic Gregorian): `+292278994-08-16T23:00:00Z`
/// and `-292275055-05-16T23:00:00Z`.
pub fn iso_utc(out: &mut String, micros: i64) {
    let micros: i128 = match micros {
        i64::MAX => POSITIVE_INFINITY as i128 * 1000,
        i64::MIN => NEGATIVE_INFINITY as i128 * 1000,
        m => m as i128,
    };
    let day = 86_400_000_000i128;
    let days = micros.div_euclid(day) as i64;
    let rem = micros.rem_euclid(day) as i64;
    let (y, m, d) = civil_from_days(days);
    if (0..=9999).contains(&y) {
        let _ = write!(out, "{y:04}-{m:02}-{d:02}");
    } else {
        let _ = write!(out, "{y:+05}-{m:02}-{d:02}");
    }
    out.push('T');
    clock(out, rem);
    out.push('Z');
}

/// `HH:MM:SS[.fff|.ffffff]` of microseconds since midnight (0 <= rem < a day).
fn clock(out: &mut String, rem: i64) {
    let secs = rem / 1_000_000;
    let frac = rem % 1_000_000;
    let _ = write!(
        out,
        "{:02}:{:02}:{:02}",
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
}

/// A time with time zone as Debezium's ZonedTime: the same instant's time of day in UTC
/// (`10:00:00+02` is `08:00:00Z`).
pub fn iso_time_utc(out: &mut String, micros: i64, offset_secs: i32) {
    let utc = (micros as i128 - offset_secs as i128 * 1_000_000).rem_euclid(86_400_000_000);
    clock(out, utc as i64);
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
            (i64::MAX, "+292278994-08-16T23:00:00Z"),
            (i64::MIN, "-292275055-05-16T23:00:00Z"),
            (
                -62_135_596_800_000_000 - 86_400_000_000,
                "0000-12-31T00:00:00Z",
            ),
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
            default: None,
        };
        let e = row(&mut Vec::new(), &[f], &vec![Value::Null]).unwrap_err();
        assert_eq!(e.column, "qty");
        assert!(e.to_string().contains("NOT NULL"), "{e}");
    }
}
