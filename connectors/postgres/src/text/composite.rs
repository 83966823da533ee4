//! PostgreSQL composite (row) text (`record_out`): `(1,"a b",,"say ""hi""")`.
//!
//! `record_in`'s rules: a field with no characters at all is NULL; `""` is an empty
//! string; inside quotes `""` is a quote and `\` escapes the next character; outside
//! quotes `\` escapes too and whitespace is kept. Never panics.

/// Parses a composite value with `n` fields into their texts (`None` for NULL).
pub fn parse(s: &str, n: usize) -> Result<Vec<Option<String>>, &'static str> {
    let b = s.as_bytes();
    let mut i = 0;
    while b.get(i).is_some_and(u8::is_ascii_whitespace) {
        i += 1;
    }
    if b.get(i) != Some(&b'(') {
        return Err("composite text does not start with (");
    }
    i += 1;
    let mut fields = Vec::with_capacity(n);
    for k in 0..n {
        if k > 0 {
            if b.get(i) != Some(&b',') {
                return Err("composite text has fewer fields than its type");
            }
            i += 1;
        }
        if matches!(b.get(i), Some(b',') | Some(b')')) {
            fields.push(None);
            continue;
        }
        let mut out = Vec::new();
        let mut in_quotes = false;
        loop {
            let Some(&ch) = b.get(i) else {
                return Err("unterminated composite text");
            };
            if ch == b'\\' {
                out.push(
                    *b.get(i + 1)
                        .ok_or("backslash at the end of composite text")?,
                );
                i += 2;
            } else if ch == b'"' {
                if !in_quotes {
                    in_quotes = true;
                } else if b.get(i + 1) == Some(&b'"') {
                    out.push(b'"');
                    i += 1;
                } else {
                    in_quotes = false;
                }
                i += 1;
            } else if !in_quotes && (ch == b',' || ch == b')') {
                break;
            } else {
                out.push(ch);
                i += 1;
            }
        }
        fields.push(Some(
            String::from_utf8(out).map_err(|_| "composite field is not UTF-8")?,
        ));
    }
    if b.get(i) != Some(&b')') {
        return Err("composite text has more fields than its type");
    }
    i += 1;
    if b[i..].iter().any(|c| !c.is_ascii_whitespace()) {
        return Err("text after the composite's closing parenthesis");
    }
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> Option<String> {
        Some(x.to_string())
    }

    #[test]
    fn parses_tricky_composites_table() {
        let cases: Vec<(&str, usize, Vec<Option<String>>)> = vec![
            ("()", 0, vec![]),
            ("()", 1, vec![None]),
            ("(,)", 2, vec![None, None]),
            ("(1,\"a b\",)", 3, vec![s("1"), s("a b"), None]),
            ("(\"\")", 1, vec![s("")]),
            (
                r#"("say ""hi""","back\\slash")"#,
                2,
                vec![s("say \"hi\""), s("back\\slash")],
            ),
            (r#"("{1,2}","(x,y)")"#, 2, vec![s("{1,2}"), s("(x,y)")]),
            ("( a ,b)", 2, vec![s(" a "), s("b")]),
            ("(a\\,b)", 1, vec![s("a,b")]),
            ("(\"x\"y\"z\")", 1, vec![s("xyz")]),
            ("(ü,€)", 2, vec![s("ü"), s("€")]),
        ];
        for (text, n, want) in cases {
            assert_eq!(parse(text, n), Ok(want), "{text}");
        }
    }

    #[test]
    fn rejects_malformed_composites() {
        for (bad, n) in [
            ("", 1),
            ("(", 1),
            ("(1", 1),
            ("(1,2)", 1),
            ("(1)", 2),
            ("(\"a)", 1),
            ("(1)x", 1),
            ("1,2", 2),
            ("(a\\", 1),
        ] {
            assert!(parse(bad, n).is_err(), "{bad:?} accepted for {n} fields");
        }
    }
}
