//! Parsing PostgreSQL's text output of a column into a [`Value`].
//!
//! The walsender runs with `DateStyle=ISO`, `TimeZone=UTC` and `extra_float_digits=3`
//! (set at connection start), so the formats below are the only ones to expect.

use sluice_core::Value;

/// Type OIDs with a dedicated mapping.
pub mod oid {
    pub const BOOL: u32 = 16;
    pub const BYTEA: u32 = 17;
    pub const INT8: u32 = 20;
    pub const INT2: u32 = 21;
    pub const INT4: u32 = 23;
    pub const OID: u32 = 26;
    pub const JSON: u32 = 114;
    pub const FLOAT4: u32 = 700;
    pub const FLOAT8: u32 = 701;
    pub const DATE: u32 = 1082;
    pub const TIME: u32 = 1083;
    pub const TIMESTAMP: u32 = 1114;
    pub const TIMESTAMPTZ: u32 = 1184;
    pub const NUMERIC: u32 = 1700;
    pub const UUID: u32 = 2950;
    pub const JSONB: u32 = 3802;
}

/// A text value that does not parse as its column type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot read {text:?} as PostgreSQL type {type_oid}: {reason}")]
pub struct ValueError {
    pub type_oid: u32,
    pub text: String,
    pub reason: &'static str,
}

/// Microseconds in a day.
const DAY_US: i64 = 86_400_000_000;

/// Parses one column's text representation.
pub fn parse_text(type_oid: u32, bytes: &[u8]) -> Result<Value, ValueError> {
    let err = |reason: &'static str| ValueError {
        type_oid,
        text: String::from_utf8_lossy(&bytes[..bytes.len().min(64)]).into_owned(),
        reason,
    };
    let s = std::str::from_utf8(bytes).map_err(|_| err("not UTF-8"))?;
    Ok(match type_oid {
        oid::BOOL => match s {
            "t" => Value::Bool(true),
            "f" => Value::Bool(false),
            _ => return Err(err("expected t or f")),
        },
        oid::INT2 => Value::Int16(s.parse().map_err(|_| err("not a 16-bit integer"))?),
        oid::INT4 => Value::Int32(s.parse().map_err(|_| err("not a 32-bit integer"))?),
        oid::INT8 | oid::OID => Value::Int64(s.parse().map_err(|_| err("not a 64-bit integer"))?),
        oid::FLOAT4 => Value::Float32(parse_float(s).ok_or_else(|| err("not a float"))? as f32),
        oid::FLOAT8 => Value::Float64(parse_float(s).ok_or_else(|| err("not a float"))?),
        oid::NUMERIC => Value::Numeric(s.to_string()),
        oid::BYTEA => Value::Bytes(parse_bytea(s).ok_or_else(|| err("not hex bytea"))?),
        oid::JSON | oid::JSONB => Value::Json(s.to_string()),
        oid::UUID => Value::Uuid(s.to_ascii_lowercase()),
        oid::DATE => Value::Date(parse_date(s).ok_or_else(|| err("not an ISO date"))?),
        oid::TIME => Value::Time(parse_time(s).ok_or_else(|| err("not an ISO time"))?),
        oid::TIMESTAMP => {
            Value::Timestamp(parse_timestamp(s, false).ok_or_else(|| err("not an ISO timestamp"))?)
        }
        oid::TIMESTAMPTZ => Value::TimestampTz(
            parse_timestamp(s, true).ok_or_else(|| err("not an ISO timestamp with time zone"))?,
        ),
        _ => Value::Text(s.to_string()),
    })
}

fn parse_float(s: &str) -> Option<f64> {
    match s {
        "NaN" => Some(f64::NAN),
        "Infinity" => Some(f64::INFINITY),
        "-Infinity" => Some(f64::NEG_INFINITY),
        _ => s.parse().ok(),
    }
}

fn parse_bytea(s: &str) -> Option<Vec<u8>> {
    let hex = s.strip_prefix("\\x")?.as_bytes();
    if hex.len() % 2 != 0 {
        return None;
    }
    let nib = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    hex.chunks(2)
        .map(|p| Some(nib(p[0])? << 4 | nib(p[1])?))
        .collect()
}

/// Days from 1970-01-01 to the given proleptic Gregorian date.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `YYYY-MM-DD` with an optional ` BC`; `infinity` maps to the extreme values.
fn parse_date_days(s: &str) -> Option<i64> {
    let (s, bc) = match s.strip_suffix(" BC") {
        Some(rest) => (rest, true),
        None => (s, false),
    };
    let mut it = s.splitn(3, '-');
    let y: i64 = it.next()?.parse().ok()?;
    let m: u32 = it.next()?.parse().ok()?;
    let d: u32 = it.next()?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || y < 1 {
        return None;
    }
    // 1 BC is year 0 in ISO numbering.
    let y = if bc { 1 - y } else { y };
    Some(days_from_civil(y, m, d))
}

fn parse_date(s: &str) -> Option<i32> {
    match s {
        "infinity" => Some(i32::MAX),
        "-infinity" => Some(i32::MIN),
        _ => i32::try_from(parse_date_days(s)?).ok(),
    }
}

/// `HH:MM:SS[.ffffff]` to microseconds.
fn parse_time(s: &str) -> Option<i64> {
    let mut it = s.splitn(3, ':');
    let h: i64 = it.next()?.parse().ok()?;
    let m: i64 = it.next()?.parse().ok()?;
    let sec = it.next()?;
    let (whole, frac) = match sec.split_once('.') {
        Some((w, f)) => (w, f),
        None => (sec, ""),
    };
    let sec: i64 = whole.parse().ok()?;
    if frac.len() > 6 || !frac.bytes().all(|b| b.is_ascii_digit()) || h > 24 || m > 59 || sec > 60 {
        return None;
    }
    let mut micros: i64 = 0;
    for (i, b) in frac.bytes().enumerate() {
        micros += (b - b'0') as i64 * 10i64.pow(5 - i as u32);
    }
    Some(((h * 60 + m) * 60 + sec) * 1_000_000 + micros)
}

/// `YYYY-MM-DD HH:MM:SS[.ffffff][+HH[:MM[:SS]]][ BC]` to microseconds since the epoch (UTC
/// when an offset is present). `infinity` maps to i64::MAX / i64::MIN.
fn parse_timestamp(s: &str, with_tz: bool) -> Option<i64> {
    match s {
        "infinity" => return Some(i64::MAX),
        "-infinity" => return Some(i64::MIN),
        _ => {}
    }
    let (s, bc) = match s.strip_suffix(" BC") {
        Some(rest) => (rest, true),
        None => (s, false),
    };
    let (date, rest) = s.split_once(' ')?;
    let (time, offset_us) = if with_tz {
        let pos = rest.rfind(['+', '-'])?;
        let (t, off) = rest.split_at(pos);
        let sign = if off.starts_with('-') { -1 } else { 1 };
        let mut parts = off[1..].split(':');
        let oh: i64 = parts.next()?.parse().ok()?;
        let om: i64 = parts.next().map_or(Some(0), |p| p.parse().ok())?;
        let os: i64 = parts.next().map_or(Some(0), |p| p.parse().ok())?;
        (t, sign * ((oh * 60 + om) * 60 + os) * 1_000_000)
    } else {
        (rest, 0)
    };
    let date = if bc {
        format!("{date} BC")
    } else {
        date.to_string()
    };
    let days = parse_date_days(&date)?;
    let t = parse_time(time)?;
    days.checked_mul(DAY_US)?
        .checked_add(t)?
        .checked_sub(offset_us)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_scalars_table() {
        let cases: Vec<(u32, &str, Value)> = vec![
            (oid::BOOL, "t", Value::Bool(true)),
            (oid::INT2, "-7", Value::Int16(-7)),
            (oid::INT4, "2147483647", Value::Int32(i32::MAX)),
            (oid::INT8, "-9", Value::Int64(-9)),
            (oid::FLOAT8, "1.5", Value::Float64(1.5)),
            (oid::FLOAT8, "-Infinity", Value::Float64(f64::NEG_INFINITY)),
            (oid::NUMERIC, "12.340", Value::Numeric("12.340".into())),
            (oid::BYTEA, "\\x00ff", Value::Bytes(vec![0, 255])),
            (
                oid::UUID,
                "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11",
                Value::Uuid("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11".into()),
            ),
            (oid::DATE, "1970-01-02", Value::Date(1)),
            (oid::DATE, "2000-03-01", Value::Date(11017)),
            (oid::DATE, "0001-01-01 BC", Value::Date(-719528)),
            (oid::TIME, "01:02:03.5", Value::Time(3_723_500_000)),
            (
                oid::TIMESTAMP,
                "1970-01-01 00:00:01.000001",
                Value::Timestamp(1_000_001),
            ),
            (
                oid::TIMESTAMPTZ,
                "1970-01-01 02:00:00+02",
                Value::TimestampTz(0),
            ),
            (
                oid::TIMESTAMPTZ,
                "1970-01-01 00:00:00-00:30",
                Value::TimestampTz(1_800_000_000),
            ),
            (oid::TIMESTAMPTZ, "infinity", Value::TimestampTz(i64::MAX)),
            (25, "hello", Value::Text("hello".into())),
        ];
        for (oid, text, want) in cases {
            assert_eq!(
                parse_text(oid, text.as_bytes()).unwrap(),
                want,
                "{oid} {text}"
            );
        }
    }

    #[test]
    fn rejects_garbage_with_reason() {
        for (oid, text) in [
            (oid::BOOL, "yes"),
            (oid::INT2, "70000"),
            (oid::BYTEA, "\\x0"),
            (oid::DATE, "2020-13-01"),
            (oid::TIME, "10:00:00.1234567"),
            (oid::TIMESTAMPTZ, "2020-01-01 00:00:00"),
        ] {
            let e = parse_text(oid, text.as_bytes()).unwrap_err();
            assert_eq!(e.type_oid, oid);
        }
    }
}
