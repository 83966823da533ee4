//! Reading PostgreSQL's binary send format of a column into a [`Value`] — the same value
//! [`crate::text`] produces from the column's text output (a test compares the two for
//! every type below against a real server).
//!
//! Only types whose binary form is fixed and documented are read this way
//! ([`binary_capable`]); a table with any other column is read as text.

use sluice_core::table::oid as builtin;
use sluice_core::{CompactString, TypeInfo, TypeKind, Value};

use crate::text::{self, Notes, ValueError};

/// Microseconds between 1970-01-01 and PostgreSQL's epoch 2000-01-01.
const PG_EPOCH_US: i64 = 946_684_800_000_000;
/// Days between 1970-01-01 and 2000-01-01.
const PG_EPOCH_DAYS: i32 = 10_957;
/// Nesting bound, as for text.
const MAX_TYPE_DEPTH: usize = 32;
/// Array dimensions PostgreSQL allows (MAXDIM).
const MAX_DIMS: usize = 6;

/// Whether every value of `ty` can be read from its binary form here.
pub fn binary_capable(ty: &TypeInfo) -> bool {
    capable(ty, 0)
}

fn capable(ty: &TypeInfo, depth: usize) -> bool {
    if depth > MAX_TYPE_DEPTH {
        return false;
    }
    match &ty.kind {
        TypeKind::Base => matches!(
            ty.oid,
            builtin::BOOL
                | builtin::INT2
                | builtin::INT4
                | builtin::INT8
                | builtin::OID
                | builtin::FLOAT4
                | builtin::FLOAT8
                | builtin::NUMERIC
                | builtin::BYTEA
                | builtin::JSON
                | builtin::JSONB
                | builtin::UUID
                | builtin::DATE
                | builtin::TIME
                | builtin::TIMETZ
                | builtin::TIMESTAMP
                | builtin::TIMESTAMPTZ
                | builtin::INTERVAL
                | builtin::BIT
                | builtin::VARBIT
                | builtin::POINT
                | builtin::TEXT
                | builtin::VARCHAR
                | builtin::BPCHAR
                | builtin::NAME
        ),
        TypeKind::Enum { .. } => true,
        TypeKind::Domain { base } => capable(base, depth + 1),
        TypeKind::Array { element, .. } => capable(element, depth + 1),
        TypeKind::Money { .. }
        | TypeKind::Composite { .. }
        | TypeKind::Range { .. }
        | TypeKind::Multirange { .. } => false,
    }
}

/// Whether a value of `ty` read from binary prints as PostgreSQL prints the type
/// ([`Value::key_text`]): what a key column needs so that its text (for resume points, the
/// snapshot filter and TOAST re-reads) comes from the value.
pub fn value_is_key_text(ty: &TypeInfo) -> bool {
    match &ty.kind {
        TypeKind::Domain { base } => value_is_key_text(base),
        TypeKind::Enum { .. } => true,
        TypeKind::Base => matches!(
            ty.oid,
            builtin::INT2
                | builtin::INT4
                | builtin::INT8
                | builtin::OID
                | builtin::TEXT
                | builtin::VARCHAR
                | builtin::BPCHAR
                | builtin::NAME
                | builtin::UUID
        ),
        _ => false,
    }
}

/// Whether a table's rows can be read in binary: every column has a binary reader and
/// every key column's text comes from its value.
pub fn table_binary_capable(table: &sluice_core::Table) -> bool {
    table
        .columns
        .iter()
        .all(|c| binary_capable(&c.pg_type) && (!c.key || value_is_key_text(&c.pg_type)))
}

/// A key column's text from its binary form; `None` when the type does not allow it or
/// the bytes do not read.
pub fn key_text(ty: &TypeInfo, b: &[u8]) -> Option<String> {
    if !value_is_key_text(ty) {
        return None;
    }
    parse_binary(ty, b, false, &mut Notes::default())
        .ok()
        .map(|v| v.key_text())
}

/// Reads one value of `ty` from its binary form. `nullable`: whether the place the value
/// goes to can hold a null (numeric NaN/Infinity become null there, as for text).
pub fn parse_binary(
    ty: &TypeInfo,
    b: &[u8],
    nullable: bool,
    notes: &mut Notes,
) -> Result<Value, ValueError> {
    parse(ty, b, nullable, notes, 0)
}

fn parse(
    ty: &TypeInfo,
    b: &[u8],
    nullable: bool,
    notes: &mut Notes,
    depth: usize,
) -> Result<Value, ValueError> {
    let err = |reason: &'static str| ValueError {
        type_oid: ty.oid,
        text: hex_prefix(b),
        reason,
    };
    if depth > MAX_TYPE_DEPTH {
        return Err(err("type nested too deeply"));
    }
    match &ty.kind {
        TypeKind::Domain { base } => parse(base, b, nullable, notes, depth + 1),
        TypeKind::Enum { .. } => Ok(Value::Text(utf8(b).map_err(err)?.into())),
        TypeKind::Array { element, dims, .. } => {
            array(element, *dims, b, notes, depth).map_err(|e| match e {
                Nested::Value(v) => v,
                Nested::Malformed(r) => err(r),
            })
        }
        TypeKind::Base => base(ty, b, nullable, notes).map_err(err),
        _ => Err(err("no binary reader for this type")),
    }
}

enum Nested {
    Value(ValueError),
    Malformed(&'static str),
}

/// `ndim, has_null, element oid, (length, lower bound) per dimension, elements`.
fn array(
    element: &TypeInfo,
    declared: u32,
    b: &[u8],
    notes: &mut Notes,
    depth: usize,
) -> Result<Value, Nested> {
    let mut r = Reader(b);
    let ndim = r.i32().map_err(Nested::Malformed)?;
    let _has_null = r.i32().map_err(Nested::Malformed)?;
    let _elem = r.i32().map_err(Nested::Malformed)?;
    if ndim == 0 {
        return if r.0.is_empty() {
            Ok(Value::Array(Vec::new()))
        } else {
            Err(Nested::Malformed("bytes after an empty array"))
        };
    }
    let ndim = usize::try_from(ndim)
        .ok()
        .filter(|&n| n <= MAX_DIMS)
        .ok_or(Nested::Malformed("array dimensions out of range"))?;
    let mut dims = [0usize; MAX_DIMS];
    for d in dims.iter_mut().take(ndim) {
        *d = usize::try_from(r.i32().map_err(Nested::Malformed)?)
            .map_err(|_| Nested::Malformed("negative array length"))?;
        r.i32().map_err(Nested::Malformed)?;
    }
    // Every element takes at least its 4-byte length: bounds the count by the input.
    let total = dims[..ndim]
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .filter(|&n| n <= r.0.len() / 4)
        .ok_or(Nested::Malformed("array longer than its bytes"))?;
    let mut flat = Vec::with_capacity(total);
    for _ in 0..total {
        flat.push(match r.field().map_err(Nested::Malformed)? {
            None => Value::Null,
            Some(e) => parse(element, e, true, notes, depth + 1).map_err(Nested::Value)?,
        });
    }
    if !r.0.is_empty() {
        return Err(Nested::Malformed("bytes after the array's elements"));
    }
    let want = declared.max(1) as usize;
    if ndim == want {
        return Ok(nest(&dims[..ndim], &mut flat.into_iter()));
    }
    // The declared dimensions (the schema) differ from the value's: flattened row-major,
    // then nested in single-element arrays down to the declared depth (as for text).
    notes.fallback += 1;
    let mut v = Value::Array(flat);
    for _ in 1..want {
        v = Value::Array(vec![v]);
    }
    Ok(v)
}

/// Row-major elements into nested arrays, one level per dimension.
fn nest(dims: &[usize], items: &mut impl Iterator<Item = Value>) -> Value {
    match dims {
        [] | [_] => Value::Array(items.take(dims.first().copied().unwrap_or(0)).collect()),
        [n, rest @ ..] => Value::Array((0..*n).map(|_| nest(rest, items)).collect()),
    }
}

fn base(ty: &TypeInfo, b: &[u8], nullable: bool, notes: &mut Notes) -> Result<Value, &'static str> {
    let mut r = Reader(b);
    let v = match ty.oid {
        builtin::BOOL => Value::Bool(r.u8()? != 0),
        builtin::INT2 => Value::Int16(i16::from_be_bytes(r.take()?)),
        builtin::INT4 => Value::Int32(r.i32()?),
        builtin::INT8 => Value::Int64(r.i64()?),
        builtin::OID => Value::Int64(u32::from_be_bytes(r.take()?) as i64),
        builtin::FLOAT4 => Value::Float32(f32::from_be_bytes(r.take()?)),
        builtin::FLOAT8 => Value::Float64(f64::from_be_bytes(r.take()?)),
        builtin::NUMERIC => {
            return Ok(text::numeric_value(numeric_text(b)?, nullable, notes));
        }
        builtin::BYTEA => return Ok(Value::Bytes(b.to_vec())),
        builtin::JSON => return Ok(Value::Json(utf8(b)?.to_string())),
        builtin::JSONB => match b.split_first() {
            Some((1, rest)) => return Ok(Value::Json(utf8(rest)?.to_string())),
            _ => return Err("unknown jsonb version"),
        },
        builtin::UUID => return Ok(Value::Uuid(uuid_text(b)?)),
        builtin::DATE => Value::Date(match r.i32()? {
            d @ (i32::MAX | i32::MIN) => d,
            d => d.checked_add(PG_EPOCH_DAYS).ok_or("date out of range")?,
        }),
        builtin::TIME => Value::Time(r.i64()?),
        builtin::TIMETZ => {
            let micros = r.i64()?;
            // PostgreSQL keeps the zone as seconds west of UTC.
            let zone = r.i32()?;
            Value::TimeTz {
                micros,
                offset_secs: zone.checked_neg().ok_or("time zone out of range")?,
            }
        }
        builtin::TIMESTAMP => Value::Timestamp(timestamp(r.i64()?, notes)),
        builtin::TIMESTAMPTZ => Value::TimestampTz(timestamp(r.i64()?, notes)),
        builtin::INTERVAL => {
            let micros = r.i64()?;
            let days = r.i32()?;
            let months = r.i32()?;
            crate::text::interval_value(months, days, micros, notes)
        }
        builtin::BIT | builtin::VARBIT => {
            let len = usize::try_from(r.i32()?).map_err(|_| "negative bit length")?;
            let bytes = std::mem::take(&mut r.0);
            if bytes.len() != len.div_ceil(8) {
                return Err("bit string length does not match its bytes");
            }
            Value::Bits {
                len,
                bytes: bytes.to_vec(),
            }
        }
        builtin::POINT => {
            let x = f64::from_be_bytes(r.take()?);
            let y = f64::from_be_bytes(r.take()?);
            Value::Point { x, y }
        }
        builtin::TEXT | builtin::VARCHAR | builtin::BPCHAR | builtin::NAME => {
            return Ok(Value::Text(utf8(b)?.into()))
        }
        _ => return Err("no binary reader for this type"),
    };
    if !r.0.is_empty() {
        return Err("bytes after the value");
    }
    Ok(v)
}

/// PostgreSQL microseconds since 2000 to microseconds since 1970, as the text reader
/// maps them (infinities kept; the last years before PostgreSQL's limit clamped).
fn timestamp(pg: i64, notes: &mut Notes) -> i64 {
    match pg {
        i64::MAX | i64::MIN => pg,
        _ => match pg.checked_add(PG_EPOCH_US) {
            Some(v) if v != i64::MAX => v,
            _ => {
                notes.clamped += 1;
                text::TIMESTAMP_CLAMPED_MAX
            }
        },
    }
}

/// numeric's binary form (`ndigits, weight, sign, dscale, base-10000 digits`) as the text
/// PostgreSQL prints for it.
pub fn numeric_text(b: &[u8]) -> Result<CompactString, &'static str> {
    let mut r = Reader(b);
    let ndigits = usize::try_from(i16::from_be_bytes(r.take()?)).map_err(|_| "negative ndigits")?;
    let weight = i16::from_be_bytes(r.take()?) as i32;
    let sign = u16::from_be_bytes(r.take()?);
    let dscale = u16::from_be_bytes(r.take()?);
    match sign {
        0xC000 => return Ok(CompactString::const_new("NaN")),
        0xD000 => return Ok(CompactString::const_new("Infinity")),
        0xF000 => return Ok(CompactString::const_new("-Infinity")),
        0x0000 | 0x4000 => {}
        _ => return Err("unknown numeric sign"),
    }
    if dscale > 0x3FFF {
        return Err("numeric scale out of range");
    }
    if r.0.len() != ndigits * 2 {
        return Err("numeric digit count does not match its bytes");
    }
    // The base-10000 digits, read in place (no allocation per value).
    let digits = r.0;
    if digits
        .chunks_exact(2)
        .any(|c| u16::from_be_bytes([c[0], c[1]]) > 9999)
    {
        return Err("numeric digit out of range");
    }
    let digit = |i: i32| -> u16 {
        usize::try_from(i)
            .ok()
            .and_then(|i| digits.get(i * 2..i * 2 + 2))
            .map_or(0, |c| u16::from_be_bytes([c[0], c[1]]))
    };
    // Written into a stack buffer when it fits (the result is then inline: no allocation
    // up to 24 bytes); the fractional part is written in whole groups, then cut.
    let max_len = 1 + (weight.max(0) as usize + 1) * 4 + 1 + dscale as usize + 4;
    let mut small = [0u8; 64];
    let mut large = Vec::new();
    let out: &mut [u8] = if max_len <= small.len() {
        &mut small
    } else {
        large.resize(max_len, 0);
        &mut large
    };
    let mut n = 0;
    let mut put = |out: &mut [u8], bytes: &[u8]| {
        out[n..n + bytes.len()].copy_from_slice(bytes);
        n += bytes.len();
        n
    };
    if sign == 0x4000 {
        put(out, b"-");
    }
    let mut end = if weight < 0 {
        put(out, b"0")
    } else {
        // The first group without leading zeros, the others as 4 digits.
        let first = group(digit(0));
        let skip = first.iter().take(3).take_while(|&&c| c == b'0').count();
        let mut end = put(out, &first[skip..]);
        for i in 1..=weight {
            end = put(out, &group(digit(i)));
        }
        end
    };
    if dscale > 0 {
        let start = put(out, b".");
        let mut i = weight + 1;
        end = start;
        while end - start < dscale as usize {
            end = put(out, &group(digit(i)));
            i += 1;
        }
        end = start + dscale as usize;
    }
    let text = std::str::from_utf8(&out[..end]).map_err(|_| "numeric text is not ASCII")?;
    Ok(CompactString::from(text))
}

/// A base-10000 digit as 4 ASCII digits.
fn group(d: u16) -> [u8; 4] {
    [
        b'0' + (d / 1000) as u8,
        b'0' + (d / 100 % 10) as u8,
        b'0' + (d / 10 % 10) as u8,
        b'0' + (d % 10) as u8,
    ]
}

fn uuid_text(b: &[u8]) -> Result<String, &'static str> {
    if b.len() != 16 {
        return Err("a uuid has 16 bytes");
    }
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(36);
    for (i, byte) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push(HEX[(byte >> 4) as usize] as char);
        s.push(HEX[(byte & 15) as usize] as char);
    }
    Ok(s)
}

fn utf8(b: &[u8]) -> Result<&str, &'static str> {
    std::str::from_utf8(b).map_err(|_| "not UTF-8")
}

fn hex_prefix(b: &[u8]) -> String {
    b.iter().take(32).map(|x| format!("{x:02x}")).collect()
}

/// Big-endian reads that fail instead of panicking on short input.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], &'static str> {
        if self.0.len() < N {
            return Err("value shorter than its type");
        }
        let (head, rest) = self.0.split_at(N);
        self.0 = rest;
        Ok(head.try_into().expect("split at N"))
    }
    fn u8(&mut self) -> Result<u8, &'static str> {
        Ok(self.take::<1>()?[0])
    }
    fn i32(&mut self) -> Result<i32, &'static str> {
        Ok(i32::from_be_bytes(self.take()?))
    }
    fn i64(&mut self) -> Result<i64, &'static str> {
        Ok(i64::from_be_bytes(self.take()?))
    }
    /// A length-prefixed field; `None` for length -1 (NULL).
    fn field(&mut self) -> Result<Option<&'a [u8]>, &'static str> {
        let len = self.i32()?;
        if len == -1 {
            return Ok(None);
        }
        let len = usize::try_from(len).map_err(|_| "negative field length")?;
        if self.0.len() < len {
            return Err("field longer than its bytes");
        }
        let (head, rest) = self.0.split_at(len);
        self.0 = rest;
        Ok(Some(head))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_text_table() {
        // (ndigits, weight, sign, dscale, digits) -> text
        type Case = (i16, i16, u16, u16, &'static [u16], &'static str);
        let cases: &[Case] = &[
            (0, 0, 0, 0, &[], "0"),
            (0, 0, 0, 2, &[], "0.00"),
            (1, 0, 0, 0, &[12], "12"),
            (2, 1, 0x4000, 0, &[1, 2345], "-12345"),
            (2, 0, 0, 3, &[12, 3400], "12.340"),
            (1, -1, 0, 4, &[5], "0.0005"),
            (1, -2, 0, 8, &[7], "0.00000007"),
            (1, 2, 0, 0, &[1], "100000000"),
            (0, 0, 0xC000, 0, &[], "NaN"),
            (0, 0, 0xD000, 0, &[], "Infinity"),
            (0, 0, 0xF000, 0, &[], "-Infinity"),
        ];
        for (n, w, s, d, digits, want) in cases {
            let mut b = Vec::new();
            b.extend(n.to_be_bytes());
            b.extend(w.to_be_bytes());
            b.extend(s.to_be_bytes());
            b.extend(d.to_be_bytes());
            for x in *digits {
                b.extend(x.to_be_bytes());
            }
            assert_eq!(
                numeric_text(&b).as_deref(),
                Ok(*want),
                "{n} {w} {s} {d} {digits:?}"
            );
        }
    }

    #[test]
    fn malformed_values_are_errors_not_panics() {
        let int4 = TypeInfo::base(builtin::INT4, -1, "int4");
        let numeric = TypeInfo::base(builtin::NUMERIC, -1, "numeric");
        let arr = TypeInfo {
            kind: TypeKind::Array {
                element: Box::new(int4.clone()),
                dims: 1,
                delimiter: b',',
            },
            ..TypeInfo::base(1007, -1, "_int4")
        };
        let mut notes = Notes::default();
        for (ty, bytes) in [
            (&int4, &[0u8, 1][..]),
            (&int4, &[0, 0, 0, 1, 9][..]),
            (&numeric, &[0, 1, 0, 0, 0, 0, 0, 0][..]),
            (&numeric, &[0, 1, 0, 0, 0, 0, 0, 0, 0xff, 0xff][..]),
            (&numeric, &[0, 0, 0, 0, 0x12, 0x34, 0, 0][..]),
            // 2^31 elements claimed in a few bytes.
            (
                &arr,
                &[
                    0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 23, 0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 1,
                ][..],
            ),
            (&arr, &[0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 23][..]),
        ] {
            assert!(
                parse_binary(ty, bytes, true, &mut notes).is_err(),
                "{} {bytes:?}",
                ty.name
            );
        }
    }

    #[test]
    fn reads_a_two_dimensional_array() {
        let int4 = TypeInfo::base(builtin::INT4, -1, "int4");
        let arr = TypeInfo {
            kind: TypeKind::Array {
                element: Box::new(int4),
                dims: 2,
                delimiter: b',',
            },
            ..TypeInfo::base(1007, -1, "_int4")
        };
        let mut b = Vec::new();
        for x in [2i32, 1, 23, 2, 1, 2, 1] {
            b.extend(x.to_be_bytes());
        }
        for v in [Some(1i32), None, Some(3), Some(4)] {
            match v {
                Some(v) => {
                    b.extend(4i32.to_be_bytes());
                    b.extend(v.to_be_bytes());
                }
                None => b.extend((-1i32).to_be_bytes()),
            }
        }
        let v = parse_binary(&arr, &b, true, &mut Notes::default()).unwrap();
        assert_eq!(
            v,
            Value::Array(vec![
                Value::Array(vec![Value::Int32(1), Value::Null]),
                Value::Array(vec![Value::Int32(3), Value::Int32(4)]),
            ])
        );
    }
}
