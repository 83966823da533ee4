//! Parsing PostgreSQL's text output of a column into a [`Value`].
//!
//! The walsender runs with `DateStyle=ISO`, `TimeZone=UTC` and `extra_float_digits=3`
//! (set at connection start), so the formats below are the only ones to expect.

use sluice_core::table::oid as builtin;
use sluice_core::{Column, CompactString, TypeInfo, TypeKind, Value};

pub mod array;
pub mod composite;
pub mod hstore;
pub mod range;

/// Type OIDs with a dedicated mapping.
pub mod oid {
    pub use sluice_core::table::oid::*;
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

/// Values the parser had to change to fit the event format, counted per row and added
/// to [`crate::SourceStats`] by the caller.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Notes {
    /// An input, not a count: numeric NaN/±Infinity are kept as they are (the event
    /// format has a representation for them: `decimal_handling` double or string).
    pub keep_special_numeric: bool,
    /// numeric NaN/±Infinity replaced by null (nullable column, array element or field).
    pub special_numeric: u64,
    /// Values of a type without a faithful mapping, passed on as their text.
    pub fallback: u64,
    /// Values clamped to the event format's range (intervals beyond ±292 000 years).
    pub clamped: u64,
}

impl Notes {
    /// Counting from zero; with `keep_special_numeric`, numeric NaN/±Infinity stay.
    pub fn keeping(keep_special_numeric: bool) -> Self {
        Notes {
            keep_special_numeric,
            ..Default::default()
        }
    }

    pub fn is_empty(&self) -> bool {
        self.special_numeric == 0 && self.fallback == 0 && self.clamped == 0
    }

    /// Adds the counts to the source's statistics; logs a warning the first time each
    /// kind occurs in the process and at debug level afterwards.
    pub fn record(&self, stats: &crate::SourceStats, table: &sluice_core::TableName) {
        use std::sync::atomic::Ordering;
        for (n, counter, what) in [
            (
                self.special_numeric,
                &stats.special_numeric_values,
                "numeric NaN/Infinity replaced by null (Avro decimals cannot hold them)",
            ),
            (
                self.fallback,
                &stats.fallback_values,
                "values of a type without a faithful mapping passed on as text",
            ),
            (
                self.clamped,
                &stats.clamped_values,
                "values clamped to the event format's range",
            ),
        ] {
            if n == 0 {
                continue;
            }
            if counter.fetch_add(n, Ordering::Relaxed) == 0 {
                tracing::warn!(table = %table, count = n, "{what}");
            } else {
                tracing::debug!(table = %table, count = n, "{what}");
            }
        }
    }
}

/// Parses one column's text representation (the column's catalog type decides how).
pub fn parse_column(col: &Column, bytes: &[u8], notes: &mut Notes) -> Result<Value, ValueError> {
    let s = std::str::from_utf8(bytes).map_err(|_| ValueError {
        type_oid: col.type_oid,
        text: String::from_utf8_lossy(&bytes[..bytes.len().min(64)]).into_owned(),
        reason: "not UTF-8",
    })?;
    parse_typed(&col.pg_type, s, col.nullable, notes, 0)
}

/// Parses one value of a built-in scalar type known only by OID (compatibility helper;
/// [`parse_column`] is the full mapping).
pub fn parse_text(type_oid: u32, bytes: &[u8]) -> Result<Value, ValueError> {
    let s = std::str::from_utf8(bytes).map_err(|_| ValueError {
        type_oid,
        text: String::from_utf8_lossy(&bytes[..bytes.len().min(64)]).into_owned(),
        reason: "not UTF-8",
    })?;
    let ty = TypeInfo::base(type_oid, -1, "");
    parse_typed(&ty, s, true, &mut Notes::default(), 0)
}

/// Nesting bound for types inside types (arrays of composites of arrays...).
const MAX_TYPE_DEPTH: usize = 32;

/// Parses `s` as a value of `ty`. `nullable`: whether the place the value goes to can
/// hold a null (numeric NaN/Infinity become null there).
pub fn parse_typed(
    ty: &TypeInfo,
    s: &str,
    nullable: bool,
    notes: &mut Notes,
    depth: usize,
) -> Result<Value, ValueError> {
    let err = |reason: &'static str| ValueError {
        type_oid: ty.oid,
        text: s.chars().take(64).collect(),
        reason,
    };
    if depth > MAX_TYPE_DEPTH {
        return Err(err("type nested too deeply"));
    }
    Ok(match &ty.kind {
        TypeKind::Domain { base } => return parse_typed(base, s, nullable, notes, depth + 1),
        TypeKind::Enum { .. } => Value::Text(s.into()),
        TypeKind::Money { fraction_digits } => Value::Numeric(
            parse_money(s, *fraction_digits)
                .ok_or_else(|| err("not a money amount"))?
                .into(),
        ),
        TypeKind::Range { .. } => {
            if range::parse(s).is_err() {
                notes.fallback += 1;
            }
            Value::Text(s.into())
        }
        TypeKind::Multirange { .. } => {
            if range::parse_multi(s).is_err() {
                notes.fallback += 1;
            }
            Value::Text(s.into())
        }
        TypeKind::Composite { fields } => {
            let texts = composite::parse(s, fields.len()).map_err(err)?;
            let mut out = Vec::with_capacity(fields.len());
            for ((_, fty), text) in fields.iter().zip(texts) {
                out.push(match text {
                    None => Value::Null,
                    Some(t) => parse_typed(fty, &t, true, notes, depth + 1)?,
                });
            }
            Value::Composite(out)
        }
        TypeKind::Array {
            element,
            dims,
            delimiter,
        } => {
            let items = array::parse(s, *delimiter).map_err(err)?;
            let want = (*dims).max(1) as usize;
            let have = array::ndims(&items);
            let items = if have == 0 || have == want {
                items
            } else {
                // The declared dimensions (the schema) differ from the value's: flatten
                // row-major, then nest in single-element arrays down to the declared depth.
                notes.fallback += 1;
                let mut flat = Vec::new();
                array::flatten(items, &mut flat);
                let mut v = flat;
                for _ in 1..want {
                    v = vec![array::Node::List(v)];
                }
                v
            };
            array_value(element, items, notes, depth)?
        }
        TypeKind::Base => base(ty, s, nullable, notes).map_err(err)?,
    })
}

fn array_value(
    element: &TypeInfo,
    items: Vec<array::Node>,
    notes: &mut Notes,
    depth: usize,
) -> Result<Value, ValueError> {
    let mut out = Vec::with_capacity(items.len());
    for n in items {
        out.push(match n {
            array::Node::Null => Value::Null,
            array::Node::Text(t) => parse_typed(element, &t, true, notes, depth + 1)?,
            array::Node::List(l) => array_value(element, l, notes, depth + 1)?,
        });
    }
    Ok(Value::Array(out))
}

/// Scalars, by OID (built-in) or name (extension types).
fn base(ty: &TypeInfo, s: &str, nullable: bool, notes: &mut Notes) -> Result<Value, &'static str> {
    Ok(match ty.oid {
        builtin::BOOL => match s {
            "t" => Value::Bool(true),
            "f" => Value::Bool(false),
            _ => return Err("expected t or f"),
        },
        builtin::INT2 => Value::Int16(s.parse().map_err(|_| "not a 16-bit integer")?),
        builtin::INT4 => Value::Int32(s.parse().map_err(|_| "not a 32-bit integer")?),
        builtin::INT8 | builtin::OID => {
            Value::Int64(s.parse().map_err(|_| "not a 64-bit integer")?)
        }
        builtin::FLOAT4 => Value::Float32(parse_float(s).ok_or("not a float")? as f32),
        builtin::FLOAT8 => Value::Float64(parse_float(s).ok_or("not a float")?),
        builtin::NUMERIC => numeric_value(s.into(), nullable, notes),
        builtin::BYTEA => Value::Bytes(parse_bytea(s).ok_or("not hex bytea")?),
        builtin::JSON | builtin::JSONB => Value::Json(s.to_string()),
        builtin::UUID => Value::Uuid(s.to_ascii_lowercase()),
        builtin::DATE => Value::Date(parse_date(s).ok_or("not an ISO date")?),
        builtin::TIME => Value::Time(parse_time(s).ok_or("not an ISO time")?),
        builtin::TIMETZ => {
            let (micros, offset_secs) = parse_timetz(s).ok_or("not an ISO time with time zone")?;
            Value::TimeTz {
                micros,
                offset_secs,
            }
        }
        builtin::TIMESTAMP => {
            Value::Timestamp(timestamp_value(s, false, notes).ok_or("not an ISO timestamp")?)
        }
        builtin::TIMESTAMPTZ => Value::TimestampTz(
            timestamp_value(s, true, notes).ok_or("not an ISO timestamp with time zone")?,
        ),
        builtin::INTERVAL => {
            let (months, days, micros) = parse_interval(s)
                .ok_or("not an interval (IntervalStyle postgres, postgres_verbose or iso_8601)")?;
            interval_value(months, days, micros, notes)
        }
        builtin::BIT | builtin::VARBIT => {
            let (len, bytes) = parse_bits(s).ok_or("not a bit string")?;
            Value::Bits { len, bytes }
        }
        builtin::POINT => {
            let (x, y) = parse_point(s).ok_or("not a point")?;
            Value::Point { x, y }
        }
        builtin::MONEY => Value::Numeric(parse_money(s, 2).ok_or("not a money amount")?.into()),
        builtin::XML => Value::Text(s.into()),
        o if builtin::is_textual(o) => Value::Text(s.into()),
        o if o >= builtin::FIRST_NORMAL_OBJECT_ID && ty.name == "hstore" => {
            Value::Json(hstore::to_json(s)?)
        }
        _ => {
            notes.fallback += 1;
            Value::Text(s.into())
        }
    })
}

/// numeric text as a value: NaN/±Infinity become null where a null fits, unless they are
/// kept ([`Notes::keep_special_numeric`]).
pub fn numeric_value(s: CompactString, nullable: bool, notes: &mut Notes) -> Value {
    match s.as_str() {
        "NaN" | "Infinity" | "-Infinity" if nullable && !notes.keep_special_numeric => {
            notes.special_numeric += 1;
            Value::Null
        }
        _ => Value::Numeric(s),
    }
}

/// money text in any lc_monetary: the digits, of which the last `fraction_digits` are
/// the fraction (PostgreSQL always prints exactly that many); negative when a `-` or a
/// `(` appears. Returns decimal text (`-1234.50`).
pub fn parse_money(s: &str, fraction_digits: u32) -> Option<String> {
    let digits: String = s.chars().filter(char::is_ascii_digit).collect();
    if digits.is_empty() {
        return None;
    }
    let neg = s.contains('-') || s.contains('(');
    let f = fraction_digits as usize;
    let padded = if digits.len() <= f {
        format!("{}{digits}", "0".repeat(f + 1 - digits.len()))
    } else {
        digits
    };
    let (int, frac) = padded.split_at(padded.len() - f);
    let int = int.trim_start_matches('0');
    let int = if int.is_empty() { "0" } else { int };
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    out.push_str(int);
    if f > 0 {
        out.push('.');
        out.push_str(frac);
    }
    Some(out)
}

/// `0101` to (bit count, bytes packed most significant bit first).
fn parse_bits(s: &str) -> Option<(usize, Vec<u8>)> {
    let mut bytes = vec![0u8; s.len().div_ceil(8)];
    for (i, c) in s.bytes().enumerate() {
        match c {
            b'0' => {}
            b'1' => bytes[i / 8] |= 0x80 >> (i % 8),
            _ => return None,
        }
    }
    Some((s.len(), bytes))
}

/// `(x,y)`.
fn parse_point(s: &str) -> Option<(f64, f64)> {
    let inner = s.trim().strip_prefix('(')?.strip_suffix(')')?;
    let (x, y) = inner.split_once(',')?;
    Some((parse_float(x.trim())?, parse_float(y.trim())?))
}

/// `HH:MM:SS[.ffffff]±HH[:MM[:SS]]` to (local microseconds since midnight, offset seconds
/// east of UTC).
fn parse_timetz(s: &str) -> Option<(i64, i32)> {
    let pos = s.rfind(['+', '-'])?;
    let (t, off) = s.split_at(pos);
    let sign = if off.starts_with('-') { -1 } else { 1 };
    let mut parts = off.get(1..)?.split(':');
    let oh: i32 = parse_digits(parts.next()?)?;
    let om: i32 = parts.next().map_or(Some(0), parse_digits)?;
    let os: i32 = parts.next().map_or(Some(0), parse_digits)?;
    if parts.next().is_some() || oh > 15 || om > 59 || os > 59 {
        return None;
    }
    Some((parse_time(t)?, sign * ((oh * 60 + om) * 60 + os)))
}

fn parse_digits<T: std::str::FromStr>(s: &str) -> Option<T> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// An interval in the `postgres` (default), `postgres_verbose` or `iso_8601`
/// IntervalStyle to (months, days, microseconds).
/// An interval's value; one beyond the event format's range is counted as clamped.
pub fn interval_value(months: i32, days: i32, micros: i64, notes: &mut Notes) -> Value {
    if sluice_core::value::interval_micros(months, days, micros).is_none() {
        notes.clamped += 1;
    }
    Value::Interval {
        months,
        days,
        micros,
    }
}

/// PostgreSQL 17's `infinity` / `-infinity` are every field at its maximum / minimum,
/// as in the binary form.
pub fn parse_interval(s: &str) -> Option<(i32, i32, i64)> {
    let s = s.trim();
    match s {
        "infinity" => return Some((i32::MAX, i32::MAX, i64::MAX)),
        "-infinity" => return Some((i32::MIN, i32::MIN, i64::MIN)),
        _ => {}
    }
    if let Some(iso) = s.strip_prefix('P') {
        return parse_interval_iso(iso);
    }
    let (verbose, s) = match s.strip_prefix('@') {
        Some(rest) => (true, rest.trim_start()),
        None => (false, s),
    };
    let mut months: i64 = 0;
    let mut days: i64 = 0;
    let mut micros: i64 = 0;
    let mut toks = s.split_ascii_whitespace().peekable();
    let mut ago = false;
    let mut any = false;
    while let Some(tok) = toks.next() {
        any = true;
        if tok == "ago" && verbose && toks.peek().is_none() {
            ago = true;
            continue;
        }
        if tok.contains(':') {
            micros = micros.checked_add(parse_clock(tok)?)?;
            continue;
        }
        let unit = toks.next()?;
        let unit = unit.strip_suffix('s').unwrap_or(unit);
        match unit {
            "year" | "mon" | "day" | "week" | "decade" | "century" | "millennium" => {
                let n: i64 = parse_signed(tok)?;
                match unit {
                    "year" => months = months.checked_add(n.checked_mul(12)?)?,
                    "decade" => months = months.checked_add(n.checked_mul(120)?)?,
                    "century" => months = months.checked_add(n.checked_mul(1200)?)?,
                    "millennium" => months = months.checked_add(n.checked_mul(12000)?)?,
                    "mon" => months = months.checked_add(n)?,
                    "week" => days = days.checked_add(n.checked_mul(7)?)?,
                    _ => days = days.checked_add(n)?,
                }
            }
            "hour" | "min" | "sec" if verbose => {
                let per: i64 = match unit {
                    "hour" => 3_600_000_000,
                    "min" => 60_000_000,
                    _ => 1_000_000,
                };
                micros = micros.checked_add(scaled(tok, per)?)?;
            }
            _ => return None,
        }
    }
    if !any {
        return None;
    }
    if ago {
        months = months.checked_neg()?;
        days = days.checked_neg()?;
        micros = micros.checked_neg()?;
    }
    Some((
        i32::try_from(months).ok()?,
        i32::try_from(days).ok()?,
        micros,
    ))
}

fn parse_signed(tok: &str) -> Option<i64> {
    let (neg, digits) = match tok.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, tok.strip_prefix('+').unwrap_or(tok)),
    };
    let n: i64 = parse_digits(digits)?;
    Some(if neg { -n } else { n })
}

/// `[-]12.345` times `per` (microseconds per unit), exactly, fraction up to microseconds.
fn scaled(tok: &str, per: i64) -> Option<i64> {
    let (neg, t) = match tok.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, tok.strip_prefix('+').unwrap_or(tok)),
    };
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    let whole: i64 = if int.is_empty() {
        0
    } else {
        parse_digits(int)?
    };
    if !frac.bytes().all(|b| b.is_ascii_digit()) || int.is_empty() && frac.is_empty() {
        return None;
    }
    // fraction * per, rounded to the microsecond (PostgreSQL keeps microseconds).
    let mut num: i128 = 0;
    let mut den: i128 = 1;
    for b in frac.bytes().take(18) {
        num = num * 10 + (b - b'0') as i128;
        den *= 10;
    }
    let frac_us = (num * per as i128 + den / 2) / den;
    let v = (whole as i128) * per as i128 + frac_us;
    let v = i64::try_from(v).ok()?;
    Some(if neg { -v } else { v })
}

/// `[-+]H+:MM:SS[.ffffff]` (hours unbounded) to microseconds.
fn parse_clock(tok: &str) -> Option<i64> {
    let (neg, t) = match tok.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, tok.strip_prefix('+').unwrap_or(tok)),
    };
    let mut it = t.splitn(3, ':');
    let h: i64 = parse_digits(it.next()?)?;
    let m: i64 = parse_digits(it.next()?)?;
    let sec = it.next().unwrap_or("0");
    if m > 59 {
        return None;
    }
    let secs = scaled(sec, 1_000_000)?;
    if !(0..60_000_000).contains(&secs) {
        return None;
    }
    let v = h
        .checked_mul(3_600_000_000)?
        .checked_add(m * 60_000_000)?
        .checked_add(secs)?;
    Some(if neg { -v } else { v })
}

/// ISO 8601 `P1Y2M3DT4H5M6.5S` (after the `P`), each part optionally negative.
fn parse_interval_iso(s: &str) -> Option<(i32, i32, i64)> {
    let (date, time) = match s.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (s, None),
    };
    let mut months: i64 = 0;
    let mut days: i64 = 0;
    let mut micros: i64 = 0;
    let mut any = false;
    let mut rest = date;
    while !rest.is_empty() {
        let end = rest.find(|c: char| c.is_ascii_alphabetic())?;
        let n = parse_signed(&rest[..end])?;
        match rest.as_bytes()[end] {
            b'Y' => months = months.checked_add(n.checked_mul(12)?)?,
            b'M' => months = months.checked_add(n)?,
            b'W' => days = days.checked_add(n.checked_mul(7)?)?,
            b'D' => days = days.checked_add(n)?,
            _ => return None,
        }
        any = true;
        rest = &rest[end + 1..];
    }
    if let Some(t) = time {
        let mut rest = t;
        if rest.is_empty() {
            return None;
        }
        while !rest.is_empty() {
            let end = rest.find(|c: char| c.is_ascii_alphabetic())?;
            let per = match rest.as_bytes()[end] {
                b'H' => 3_600_000_000,
                b'M' => 60_000_000,
                b'S' => 1_000_000,
                _ => return None,
            };
            micros = micros.checked_add(scaled(&rest[..end], per)?)?;
            any = true;
            rest = &rest[end + 1..];
        }
    }
    if !any {
        return None;
    }
    Some((
        i32::try_from(months).ok()?,
        i32::try_from(days).ok()?,
        micros,
    ))
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

/// The largest year PostgreSQL accepts in any date or timestamp.
const MAX_YEAR: i64 = 5_874_897;

/// `YYYY-MM-DD` with an optional ` BC`; `infinity` maps to the extreme values.
fn parse_date_days(s: &str) -> Option<i64> {
    let (s, bc) = match s.strip_suffix(" BC") {
        Some(rest) => (rest, true),
        None => (s, false),
    };
    let mut it = s.splitn(3, '-');
    let y: i64 = parse_digits(it.next()?)?;
    let m: u32 = parse_digits(it.next()?)?;
    let d: u32 = parse_digits(it.next()?)?;
    // Years beyond PostgreSQL's (5874897 AD for dates) would overflow days_from_civil.
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || !(1..=MAX_YEAR).contains(&y) {
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
    let h: i64 = parse_digits(it.next()?)?;
    let m: i64 = parse_digits(it.next()?)?;
    let sec = it.next()?;
    let (whole, frac) = match sec.split_once('.') {
        Some((w, f)) => (w, f),
        None => (sec, ""),
    };
    let sec: i64 = parse_digits(whole)?;
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
        let oh: i64 = parse_digits(parts.next()?)?;
        let om: i64 = parts.next().map_or(Some(0), parse_digits)?;
        let os: i64 = parts.next().map_or(Some(0), parse_digits)?;
        // PostgreSQL's offsets are at most 15:59:59 (also keeps the arithmetic in range).
        if parts.next().is_some() || oh > 15 || om > 59 || os > 59 {
            return None;
        }
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
    let v = days as i128 * DAY_US as i128 + t as i128 - offset_us as i128;
    // Years 294247 to 294276 (PostgreSQL's upper limit) are beyond i64 microseconds
    // since 1970: the caller clamps them.
    Some(i64::try_from(v).unwrap_or(if v > 0 { i64::MAX } else { i64::MIN }))
}

/// Microseconds since the epoch of a finite timestamp beyond the i64 range (only the
/// last 30 years before PostgreSQL's upper limit), clamped to the largest value that is
/// not the `infinity` sentinel.
pub const TIMESTAMP_CLAMPED_MAX: i64 = i64::MAX - 1;

fn timestamp_value(s: &str, with_tz: bool, notes: &mut Notes) -> Option<i64> {
    match parse_timestamp(s, with_tz)? {
        i64::MAX if s != "infinity" => {
            notes.clamped += 1;
            Some(TIMESTAMP_CLAMPED_MAX)
        }
        i64::MIN if s != "-infinity" => None,
        v => Some(v),
    }
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

    fn ty(oid: u32) -> TypeInfo {
        TypeInfo::base(oid, -1, "")
    }

    fn arr(element: TypeInfo, dims: u32) -> TypeInfo {
        TypeInfo {
            oid: 1,
            name: "_x".into(),
            schema: String::new(),
            modifier: -1,
            kind: TypeKind::Array {
                element: Box::new(element),
                dims,
                delimiter: b',',
            },
        }
    }

    fn typed(t: &TypeInfo, s: &str, nullable: bool) -> (Value, Notes) {
        let mut n = Notes::default();
        let v = parse_typed(t, s, nullable, &mut n, 0).unwrap_or_else(|e| panic!("{s}: {e}"));
        (v, n)
    }

    #[test]
    fn parses_new_scalars_table() {
        let cases: Vec<(u32, &str, Value)> = vec![
            (
                oid::TIMETZ,
                "10:00:00.5+02",
                Value::TimeTz {
                    micros: 36_000_500_000,
                    offset_secs: 7200,
                },
            ),
            (
                oid::TIMETZ,
                "00:00:00-05:30:15",
                Value::TimeTz {
                    micros: 0,
                    offset_secs: -(5 * 3600 + 30 * 60 + 15),
                },
            ),
            (
                oid::INTERVAL,
                "1 year 2 mons 3 days 04:05:06.789",
                Value::Interval {
                    months: 14,
                    days: 3,
                    micros: 14_706_789_000,
                },
            ),
            (
                oid::INTERVAL,
                "-1 days +02:03:00",
                Value::Interval {
                    months: 0,
                    days: -1,
                    micros: 7_380_000_000,
                },
            ),
            (
                oid::INTERVAL,
                "-00:00:00.000001",
                Value::Interval {
                    months: 0,
                    days: 0,
                    micros: -1,
                },
            ),
            (
                oid::INTERVAL,
                "2562047788:00:54.775807",
                Value::Interval {
                    months: 0,
                    days: 0,
                    micros: i64::MAX,
                },
            ),
            (
                oid::INTERVAL,
                "infinity",
                Value::Interval {
                    months: i32::MAX,
                    days: i32::MAX,
                    micros: i64::MAX,
                },
            ),
            (
                oid::INTERVAL,
                "-infinity",
                Value::Interval {
                    months: i32::MIN,
                    days: i32::MIN,
                    micros: i64::MIN,
                },
            ),
            (
                oid::INTERVAL,
                "P-1Y-2M3DT-4H-5M-6.5S",
                Value::Interval {
                    months: -14,
                    days: 3,
                    micros: -(4 * 3600 + 5 * 60) * 1_000_000 - 6_500_000,
                },
            ),
            (
                oid::INTERVAL,
                "@ 1 year 2 mons -3 days 4 hours 5 mins 6.5 secs ago",
                Value::Interval {
                    months: -14,
                    days: 3,
                    micros: -((4 * 3600 + 5 * 60) * 1_000_000 + 6_500_000),
                },
            ),
            (
                oid::BIT,
                "101000001",
                Value::Bits {
                    len: 9,
                    bytes: vec![0b1010_0000, 0b1000_0000],
                },
            ),
            (
                oid::VARBIT,
                "",
                Value::Bits {
                    len: 0,
                    bytes: vec![],
                },
            ),
            (oid::POINT, "(1.5,-2)", Value::Point { x: 1.5, y: -2.0 }),
            (oid::MONEY, "$1,234.56", Value::Numeric("1234.56".into())),
            (oid::MONEY, "-$0.07", Value::Numeric("-0.07".into())),
            (oid::MONEY, "($5.00)", Value::Numeric("-5.00".into())),
            (oid::XML, "<a>x</a>", Value::Text("<a>x</a>".into())),
            (oid::INET, "10.0.0.1/8", Value::Text("10.0.0.1/8".into())),
            (oid::NUMERIC, "-0.000", Value::Numeric("-0.000".into())),
            (oid::DATE, "infinity", Value::Date(i32::MAX)),
            (oid::TIMESTAMP, "-infinity", Value::Timestamp(i64::MIN)),
            (
                oid::TIMESTAMP,
                "0044-03-15 12:00:00.000001 BC",
                Value::Timestamp(
                    (days_from_civil(-43, 3, 15) * 86_400 + 12 * 3600) * 1_000_000 + 1,
                ),
            ),
        ];
        for (oid, text, want) in cases {
            assert_eq!(
                parse_text(oid, text.as_bytes()).unwrap(),
                want,
                "{oid} {text}"
            );
        }
        // -0 keeps its sign.
        let Value::Float64(z) = parse_text(oid::FLOAT8, b"-0").unwrap() else {
            panic!()
        };
        assert!(z == 0.0 && z.is_sign_negative());
        for bad in ["1 year 2", "1 parsec", "", "P", "PT", "10:61:00", "P1X"] {
            assert!(parse_text(oid::INTERVAL, bad.as_bytes()).is_err(), "{bad}");
        }
        assert!(parse_text(oid::BIT, b"012").is_err());
        // Beyond i64 microseconds since 1970 (PostgreSQL goes up to 294276 AD): clamped.
        let (v, n) = typed(&ty(oid::TIMESTAMP), "294276-12-31 23:59:59.999999", true);
        assert_eq!((v, n.clamped), (Value::Timestamp(TIMESTAMP_CLAMPED_MAX), 1));
        let (v, n) = typed(&ty(oid::TIMESTAMPTZ), "294246-12-31 23:59:59+00", true);
        assert!(matches!(v, Value::TimestampTz(t) if t < TIMESTAMP_CLAMPED_MAX) && n.is_empty());
        assert!(parse_text(oid::TIMETZ, b"10:00:00").is_err());
    }

    #[test]
    fn special_numerics_become_null_only_where_null_fits() {
        let (v, n) = typed(&ty(oid::NUMERIC), "NaN", true);
        assert_eq!((v, n.special_numeric), (Value::Null, 1));
        let (v, n) = typed(&ty(oid::NUMERIC), "-Infinity", false);
        assert_eq!(
            (v, n.special_numeric),
            (Value::Numeric("-Infinity".into()), 0)
        );
        let (v, n) = typed(&arr(ty(oid::NUMERIC), 1), "{1.5,NaN,Infinity,NULL}", false);
        assert_eq!(
            v,
            Value::Array(vec![
                Value::Numeric("1.5".into()),
                Value::Null,
                Value::Null,
                Value::Null
            ])
        );
        assert_eq!(n.special_numeric, 2);
    }

    #[test]
    fn arrays_composites_domains_enums() {
        let (v, n) = typed(&arr(ty(oid::INT4), 2), "{{1,2},{NULL,4}}", true);
        assert!(n.is_empty());
        assert_eq!(
            v,
            Value::Array(vec![
                Value::Array(vec![Value::Int32(1), Value::Int32(2)]),
                Value::Array(vec![Value::Null, Value::Int32(4)]),
            ])
        );
        // Value dimensions differ from the declared ones: flattened, counted.
        let (v, n) = typed(&arr(ty(oid::INT4), 1), "{{1,2},{3,4}}", true);
        assert_eq!(n.fallback, 1);
        assert_eq!(
            v,
            Value::Array((1..=4).map(Value::Int32).collect::<Vec<_>>())
        );
        let (v, n) = typed(&arr(ty(oid::INT4), 2), "{1,2}", true);
        assert_eq!(n.fallback, 1);
        assert_eq!(
            v,
            Value::Array(vec![Value::Array(vec![Value::Int32(1), Value::Int32(2)])])
        );
        assert_eq!(
            typed(&arr(ty(oid::INT4), 2), "{}", true).0,
            Value::Array(vec![])
        );

        let comp = TypeInfo {
            oid: 90000,
            name: "pair".into(),
            schema: "public".into(),
            modifier: -1,
            kind: TypeKind::Composite {
                fields: vec![
                    ("a".into(), ty(oid::INT4)),
                    ("b".into(), ty(oid::TEXT)),
                    ("c".into(), arr(ty(oid::TEXT), 1)),
                    ("d".into(), ty(oid::NUMERIC)),
                ],
            },
        };
        let (v, n) = typed(&comp, r#"(7,"x ""y""",,NaN)"#, false);
        assert_eq!(n.special_numeric, 1);
        assert_eq!(
            v,
            Value::Composite(vec![
                Value::Int32(7),
                Value::Text("x \"y\"".into()),
                Value::Null,
                Value::Null
            ])
        );
        let (v, _) = typed(
            &arr(comp.clone(), 1),
            r#"{"(1,a,\"{\"\"b c\"\"}\",2)",NULL}"#,
            true,
        );
        assert_eq!(
            v,
            Value::Array(vec![
                Value::Composite(vec![
                    Value::Int32(1),
                    Value::Text("a".into()),
                    Value::Array(vec![Value::Text("b c".into())]),
                    Value::Numeric("2".into())
                ]),
                Value::Null
            ])
        );
        let dom = TypeInfo {
            oid: 90001,
            name: "posint".into(),
            schema: "public".into(),
            modifier: -1,
            kind: TypeKind::Domain {
                base: Box::new(ty(oid::INT4)),
            },
        };
        assert_eq!(typed(&dom, "5", false).0, Value::Int32(5));
        let en = TypeInfo {
            oid: 90002,
            name: "mood".into(),
            schema: "public".into(),
            modifier: -1,
            kind: TypeKind::Enum {
                labels: vec!["sad".into(), "ok".into()],
            },
        };
        assert_eq!(typed(&en, "ok", false).0, Value::Text("ok".into()));
        let money = TypeInfo {
            kind: TypeKind::Money { fraction_digits: 0 },
            ..ty(oid::MONEY)
        };
        assert_eq!(
            typed(&money, "¥1,234", false).0,
            Value::Numeric("1234".into())
        );
        let hs = TypeInfo::base(90003, -1, "hstore");
        assert_eq!(
            typed(&hs, r#""a"=>"1", "b"=>NULL"#, false).0,
            Value::Json(r#"{"a":"1","b":null}"#.into())
        );
        let unknown = TypeInfo::base(90004, -1, "ltree");
        let (v, n) = typed(&unknown, "a.b", false);
        assert_eq!((v, n.fallback), (Value::Text("a.b".into()), 1));
        let range = TypeInfo {
            kind: TypeKind::Range {
                subtype: Box::new(ty(oid::INT4)),
            },
            ..ty(oid::INT4RANGE)
        };
        let (v, n) = typed(&range, "[1,5)", false);
        assert_eq!((v, n.fallback), (Value::Text("[1,5)".into()), 0));
    }

    /// Random bytes and random mutations of valid texts never panic, whatever the type.
    #[test]
    fn arbitrary_input_never_panics() {
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let comp = TypeInfo {
            oid: 90000,
            name: "c".into(),
            schema: String::new(),
            modifier: -1,
            kind: TypeKind::Composite {
                fields: vec![
                    ("a".into(), arr(ty(oid::INT4), 2)),
                    ("b".into(), ty(oid::TEXT)),
                ],
            },
        };
        let types = vec![
            arr(ty(oid::TEXT), 1),
            arr(ty(oid::INT4), 3),
            arr(comp.clone(), 1),
            comp,
            ty(oid::INTERVAL),
            ty(oid::TIMETZ),
            ty(oid::TIMESTAMPTZ),
            ty(oid::TIMESTAMP),
            ty(oid::DATE),
            ty(oid::TIME),
            ty(oid::BIT),
            ty(oid::POINT),
            ty(oid::MONEY),
            ty(oid::BYTEA),
            ty(oid::NUMERIC),
            ty(oid::FLOAT8),
            TypeInfo::base(90003, -1, "hstore"),
            TypeInfo {
                kind: TypeKind::Range {
                    subtype: Box::new(ty(oid::INT4)),
                },
                ..ty(oid::INT4RANGE)
            },
            TypeInfo {
                kind: TypeKind::Multirange {
                    range: Box::new(ty(oid::INT4RANGE)),
                },
                ..ty(oid::INT4MULTIRANGE)
            },
        ];
        let seeds: &[&[u8]] = &[
            b"{{1,2},{3,NULL}}",
            br#"{"a\"b",NULL,"{}"}"#,
            br#"("{{1}}","x ""y""")"#,
            b"[0:1]={7,8}",
            b"1 year -2 mons 3 days -04:05:06.5",
            b"P1Y2M3DT4H5M6.5S",
            b"10:00:00.5+02:30",
            b"2020-01-01 10:00:00.123456+05:30 BC",
            b"\\x00ff",
            b"\"a\"=>\"b\", \"c\"=>NULL",
            b"{[1,3), [5,7)}",
            b"[\"a\",b)",
            b"($1,234.56)",
            b"(1.5,2)",
            b"0101",
        ];
        let alphabet = b"{}[](),;:\"\\ NUL=>-+.0123456789abPTYMDHS\xc3\xa9";
        for round in 0..20_000 {
            let mut input: Vec<u8> = if round % 3 == 0 {
                (0..next() % 24).map(|_| next() as u8).collect()
            } else {
                seeds[next() as usize % seeds.len()].to_vec()
            };
            for _ in 0..next() % 4 {
                let pos = if input.is_empty() {
                    0
                } else {
                    next() as usize % input.len()
                };
                match next() % 3 {
                    0 if !input.is_empty() => {
                        input.remove(pos);
                    }
                    1 => input.insert(pos, alphabet[next() as usize % alphabet.len()]),
                    _ if !input.is_empty() => {
                        input[pos] = alphabet[next() as usize % alphabet.len()]
                    }
                    _ => {}
                }
            }
            let t = &types[next() as usize % types.len()];
            let col = Column {
                pg_type: t.clone(),
                ..Column::new("c", t.oid, -1, "", true, false)
            };
            let _ = parse_column(&col, &input, &mut Notes::default());
        }
    }
}
