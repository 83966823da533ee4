//! PostgreSQL range and multirange text (`range_out`, `multirange_out`):
//! `empty`, `[1,5)`, `(,"2020-01-01 00:00:00+00"]`, `{[1,3), [5,7)}`.
//!
//! Bounds follow `range_in`'s quoting: `"..."` with `""` or `\` for a quote, `\`
//! escaping outside quotes; an empty unquoted bound is infinite. Never panics.

/// A parsed range: bounds as their subtype's text, `None` when infinite.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Range {
    pub empty: bool,
    pub lower: Option<String>,
    pub upper: Option<String>,
    pub lower_inclusive: bool,
    pub upper_inclusive: bool,
}

pub fn parse(s: &str) -> Result<Range, &'static str> {
    let b = s.as_bytes();
    let mut i = 0;
    let r = range_at(b, &mut i)?;
    if b[i..].iter().any(|c| !c.is_ascii_whitespace()) {
        return Err("text after the range");
    }
    Ok(r)
}

/// A multirange: its ranges in order.
pub fn parse_multi(s: &str) -> Result<Vec<Range>, &'static str> {
    let b = s.as_bytes();
    let mut i = 0;
    skip_ws(b, &mut i);
    if b.get(i) != Some(&b'{') {
        return Err("multirange text does not start with {");
    }
    i += 1;
    let mut out = Vec::new();
    skip_ws(b, &mut i);
    if b.get(i) == Some(&b'}') {
        i += 1;
    } else {
        loop {
            out.push(range_at(b, &mut i)?);
            skip_ws(b, &mut i);
            match b.get(i) {
                Some(b',') => i += 1,
                Some(b'}') => {
                    i += 1;
                    break;
                }
                _ => return Err("expected , or } in multirange text"),
            }
        }
    }
    if b[i..].iter().any(|c| !c.is_ascii_whitespace()) {
        return Err("text after the multirange");
    }
    Ok(out)
}

fn skip_ws(b: &[u8], i: &mut usize) {
    while b.get(*i).is_some_and(u8::is_ascii_whitespace) {
        *i += 1;
    }
}

fn range_at(b: &[u8], i: &mut usize) -> Result<Range, &'static str> {
    skip_ws(b, i);
    if b.len() >= *i + 5 && b[*i..*i + 5].eq_ignore_ascii_case(b"empty") {
        *i += 5;
        return Ok(Range {
            empty: true,
            lower: None,
            upper: None,
            lower_inclusive: false,
            upper_inclusive: false,
        });
    }
    let lower_inclusive = match b.get(*i) {
        Some(b'[') => true,
        Some(b'(') => false,
        _ => return Err("range text does not start with [ or ("),
    };
    *i += 1;
    let lower = bound(b, i, b",")?;
    if b.get(*i) != Some(&b',') {
        return Err("range text without a comma between its bounds");
    }
    *i += 1;
    let upper = bound(b, i, b"])")?;
    let upper_inclusive = match b.get(*i) {
        Some(b']') => true,
        Some(b')') => false,
        _ => return Err("unterminated range text"),
    };
    *i += 1;
    Ok(Range {
        empty: false,
        // An infinite bound is never inclusive.
        lower_inclusive: lower_inclusive && lower.is_some(),
        upper_inclusive: upper_inclusive && upper.is_some(),
        lower,
        upper,
    })
}

fn bound(b: &[u8], i: &mut usize, stops: &[u8]) -> Result<Option<String>, &'static str> {
    let mut out = Vec::new();
    let mut any = false;
    let mut in_quotes = false;
    loop {
        let Some(&ch) = b.get(*i) else {
            return Err("unterminated range text");
        };
        if !in_quotes && (stops.contains(&ch) || ch == b',' || ch == b']' || ch == b')') {
            if stops.contains(&ch) {
                break;
            }
            return Err("unexpected character in a range bound");
        }
        any = true;
        if ch == b'\\' {
            out.push(*b.get(*i + 1).ok_or("backslash at the end of range text")?);
            *i += 2;
            continue;
        }
        if ch == b'"' {
            if !in_quotes {
                in_quotes = true;
            } else if b.get(*i + 1) == Some(&b'"') {
                out.push(b'"');
                *i += 1;
            } else {
                in_quotes = false;
            }
        } else if !in_quotes && (ch == b'[' || ch == b'(') {
            return Err("unexpected bracket in a range bound");
        } else {
            out.push(ch);
        }
        *i += 1;
    }
    if !any {
        return Ok(None);
    }
    String::from_utf8(out)
        .map(Some)
        .map_err(|_| "range bound is not UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(lo: Option<&str>, hi: Option<&str>, li: bool, ui: bool) -> Range {
        Range {
            empty: false,
            lower: lo.map(String::from),
            upper: hi.map(String::from),
            lower_inclusive: li,
            upper_inclusive: ui,
        }
    }

    #[test]
    fn parses_ranges_table() {
        let cases = vec![
            ("[1,5)", r(Some("1"), Some("5"), true, false)),
            ("(,5]", r(None, Some("5"), false, true)),
            ("[,)", r(None, None, false, false)),
            (
                "[\"2020-01-01 00:00:00+00\",\"2021-01-01 00:00:00+00\")",
                r(
                    Some("2020-01-01 00:00:00+00"),
                    Some("2021-01-01 00:00:00+00"),
                    true,
                    false,
                ),
            ),
            (
                "[\"a\"\"b\",c\\,d]",
                r(Some("a\"b"), Some("c,d"), true, true),
            ),
            ("[\"\",x)", r(Some(""), Some("x"), true, false)),
        ];
        for (text, want) in cases {
            assert_eq!(parse(text), Ok(want), "{text}");
        }
        assert!(parse("empty").unwrap().empty);
        assert!(parse(" EMPTY ").unwrap().empty);
    }

    #[test]
    fn parses_multiranges() {
        assert_eq!(parse_multi("{}").unwrap(), vec![]);
        let m = parse_multi("{[1,3), [5,7)}").unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[1], r(Some("5"), Some("7"), true, false));
        assert!(parse_multi("{[1,3)").is_err());
        assert!(parse_multi("{[1,3) [5,7)}").is_err());
    }

    #[test]
    fn rejects_malformed_ranges() {
        for bad in [
            "", "[", "[1", "[1,", "[1,2", "1,2", "[1,2)x", "[1,2,3)", "(\"a,b)", "[a[b,c]",
            "emptyx",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
