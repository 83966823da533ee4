//! The hstore extension's text (`"a"=>"1", "b"=>NULL`) to a JSON object (Debezium's
//! `hstore.handling.mode=json`). Never panics.

/// Parses hstore text into (key, value) pairs in the server's order.
pub fn parse(s: &str) -> Result<Vec<(String, Option<String>)>, &'static str> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    loop {
        skip_ws(b, &mut i);
        if i >= b.len() {
            return Ok(out);
        }
        let (key, _) = token(b, &mut i, false)?;
        skip_ws(b, &mut i);
        if b.get(i) != Some(&b'=') || b.get(i + 1) != Some(&b'>') {
            return Err("expected => in hstore text");
        }
        i += 2;
        skip_ws(b, &mut i);
        let (value, quoted) = token(b, &mut i, true)?;
        let value = (quoted || !value.eq_ignore_ascii_case("NULL")).then_some(value);
        out.push((key, value));
        skip_ws(b, &mut i);
        match b.get(i) {
            None => return Ok(out),
            Some(b',') => i += 1,
            Some(_) => return Err("expected , between hstore pairs"),
        }
    }
}

fn skip_ws(b: &[u8], i: &mut usize) {
    while b.get(*i).is_some_and(u8::is_ascii_whitespace) {
        *i += 1;
    }
}

/// A quoted or unquoted key or value; returns (text, was quoted).
fn token(b: &[u8], i: &mut usize, is_value: bool) -> Result<(String, bool), &'static str> {
    let mut out = Vec::new();
    let quoted = b.get(*i) == Some(&b'"');
    if quoted {
        *i += 1;
        loop {
            match b.get(*i) {
                None => return Err("unterminated quoted hstore string"),
                Some(b'"') => {
                    *i += 1;
                    break;
                }
                Some(b'\\') => {
                    out.push(*b.get(*i + 1).ok_or("backslash at the end of hstore text")?);
                    *i += 2;
                }
                Some(&c) => {
                    out.push(c);
                    *i += 1;
                }
            }
        }
    } else {
        loop {
            match b.get(*i) {
                None => break,
                Some(c) if c.is_ascii_whitespace() => break,
                Some(b',') if is_value => break,
                Some(b'=') if !is_value && b.get(*i + 1) == Some(&b'>') => break,
                Some(b'\\') => {
                    out.push(*b.get(*i + 1).ok_or("backslash at the end of hstore text")?);
                    *i += 2;
                }
                Some(&c) => {
                    out.push(c);
                    *i += 1;
                }
            }
        }
        if out.is_empty() {
            return Err("empty unquoted hstore string");
        }
    }
    String::from_utf8(out)
        .map(|s| (s, quoted))
        .map_err(|_| "hstore string is not UTF-8")
}

/// hstore text as a JSON object text (`{"a":"1","b":null}`).
pub fn to_json(s: &str) -> Result<String, &'static str> {
    let pairs = parse(s)?;
    let mut out = String::with_capacity(s.len() + 2);
    out.push('{');
    for (n, (k, v)) in pairs.iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        json_string(&mut out, k);
        out.push(':');
        match v {
            Some(v) => json_string(&mut out, v),
            None => out.push_str("null"),
        }
    }
    out.push('}');
    Ok(out)
}

/// Appends `s` as a JSON string literal.
pub fn json_string(out: &mut String, s: &str) {
    use std::fmt::Write as _;
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hstore_to_json_table() {
        for (text, want) in [
            ("", "{}"),
            ("\"a\"=>\"1\"", r#"{"a":"1"}"#),
            ("\"a\"=>\"1\", \"b\"=>NULL", r#"{"a":"1","b":null}"#),
            ("\"n\"=>\"NULL\"", r#"{"n":"NULL"}"#),
            (r#""q\"k"=>"back\\slash""#, r#"{"q\"k":"back\\slash"}"#),
            ("a=>b,c=>null", r#"{"a":"b","c":null}"#),
            ("\"ü\"=>\"\u{1}\"", "{\"ü\":\"\\u0001\"}"),
        ] {
            assert_eq!(to_json(text).as_deref(), Ok(want), "{text}");
        }
        for bad in [
            "\"a\"",
            "\"a\"=>",
            "\"a\"=\"b\"",
            "\"a\"=>\"b\" \"c\"=>\"d\"",
            "\"a",
        ] {
            assert!(to_json(bad).is_err(), "{bad:?} accepted");
        }
    }
}
