//! Decimal text to Avro `decimal` bytes (big-endian two's complement of the unscaled value).

/// Why a decimal cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecimalError {
    /// NaN or ±Infinity: no decimal representation.
    NotFinite,
    /// Not a decimal number.
    Syntax,
    /// More fraction digits than the schema's scale.
    ScaleOverflow,
}

/// Splits decimal text into (negative, digits without point, scale).
fn split(text: &str) -> Result<(bool, String, u32), DecimalError> {
    let t = text.trim();
    match t {
        "NaN" | "Infinity" | "-Infinity" | "inf" | "-inf" => return Err(DecimalError::NotFinite),
        _ => {}
    }
    let (neg, t) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    if int.is_empty() && frac.is_empty()
        || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
    {
        return Err(DecimalError::Syntax);
    }
    Ok((neg, format!("{int}{frac}"), frac.len() as u32))
}

/// Unscaled value bytes for a fixed `scale`, padding fraction digits as needed.
pub fn to_fixed_scale(text: &str, scale: u32) -> Result<Vec<u8>, DecimalError> {
    let (neg, mut digits, s) = split(text)?;
    if s > scale {
        // Only trailing zeros may be dropped.
        let extra = (s - scale) as usize;
        if !digits[digits.len() - extra..].bytes().all(|b| b == b'0') {
            return Err(DecimalError::ScaleOverflow);
        }
        digits.truncate(digits.len() - extra);
    }
    for _ in s..scale {
        digits.push('0');
    }
    Ok(twos_complement(neg, &digits))
}

/// (scale, unscaled bytes) keeping the text's own scale.
pub fn to_variable_scale(text: &str) -> Result<(i32, Vec<u8>), DecimalError> {
    let (neg, digits, s) = split(text)?;
    Ok((s as i32, twos_complement(neg, &digits)))
}

/// Minimal big-endian two's complement bytes of ±digits (base 10 text).
fn twos_complement(neg: bool, digits: &str) -> Vec<u8> {
    // Magnitude in base 256, little-endian, by repeated multiply-add.
    let mut mag: Vec<u8> = Vec::with_capacity(digits.len() / 2 + 1);
    for d in digits.bytes() {
        let mut carry = (d - b'0') as u32;
        for byte in mag.iter_mut() {
            let v = *byte as u32 * 10 + carry;
            *byte = v as u8;
            carry = v >> 8;
        }
        while carry > 0 {
            mag.push(carry as u8);
            carry >>= 8;
        }
    }
    if mag.is_empty() {
        return vec![0];
    }
    if neg {
        // Two's complement: invert and add one, over one extra byte for the sign.
        mag.push(0);
        let mut carry = 1u16;
        for byte in mag.iter_mut() {
            let v = (!*byte) as u16 + carry;
            *byte = v as u8;
            carry = v >> 8;
        }
        // Drop redundant sign bytes (0xff followed by a byte with the top bit set).
        while mag.len() > 1 && mag[mag.len() - 1] == 0xff && mag[mag.len() - 2] & 0x80 != 0 {
            mag.pop();
        }
    } else if mag[mag.len() - 1] & 0x80 != 0 {
        mag.push(0);
    }
    mag.reverse();
    mag
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_java_bigdecimal_unscaled_bytes() {
        let cases: &[(&str, u32, &[u8])] = &[
            ("0", 0, &[0]),
            ("1.00", 2, &[0x64]),
            ("-1.00", 2, &[0x9c]),
            ("1.28", 2, &[0x00, 0x80]),
            ("-1.28", 2, &[0x80]),
            ("-1.29", 2, &[0xff, 0x7f]),
            ("12.3", 2, &[0x04, 0xce]),
            ("255", 0, &[0x00, 0xff]),
            ("-256", 0, &[0xff, 0x00]),
            ("1.50", 1, &[0x0f]),
        ];
        for (text, scale, want) in cases {
            assert_eq!(to_fixed_scale(text, *scale).unwrap(), *want, "{text}");
        }
    }

    #[test]
    fn rejects_what_has_no_decimal_form() {
        assert_eq!(to_fixed_scale("NaN", 2), Err(DecimalError::NotFinite));
        assert_eq!(to_fixed_scale("1.234", 2), Err(DecimalError::ScaleOverflow));
        assert_eq!(to_fixed_scale("1e5", 0), Err(DecimalError::Syntax));
        assert_eq!(to_variable_scale("-0.5").unwrap(), (1, vec![0xfb]));
    }
}
