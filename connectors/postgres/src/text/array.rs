//! PostgreSQL array text (`array_out`): `{1,2,NULL,"a b"}`, nested `{{1,2},{3,4}}`,
//! optional dimension decoration `[0:1]={7,8}`, a per-type delimiter (`;` for box).
//!
//! The parser follows `array_in`'s rules: elements are quoted (`"..."`, with `\` escaping
//! any character) or unquoted (backslash escapes allowed, surrounding whitespace
//! trimmed, an unquoted, unescaped `NULL` in any case is a null). It never panics: every
//! malformed input is an error.

/// A parsed array: a list of nodes, each a null, an element's text, or a sub-array.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    Null,
    Text(String),
    List(Vec<Node>),
}

/// PostgreSQL's MAXDIM.
pub const MAX_DIMS: usize = 6;

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }
    fn skip_ws(&mut self) {
        while self.peek().is_some_and(is_space) {
            self.i += 1;
        }
    }
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// Parses array text into its outermost list. `delim` is the element type's delimiter.
pub fn parse(s: &str, delim: u8) -> Result<Vec<Node>, &'static str> {
    if delim == b'"' || delim == b'\\' || delim == b'{' || delim == b'}' || is_space(delim) {
        return Err("unusable array delimiter");
    }
    let mut c = Cursor {
        b: s.as_bytes(),
        i: 0,
    };
    c.skip_ws();
    if c.peek() == Some(b'[') {
        skip_dimensions(&mut c)?;
    }
    c.skip_ws();
    if c.peek() != Some(b'{') {
        return Err("array text does not start with {");
    }
    c.i += 1;
    let top = list(&mut c, delim, 1)?;
    c.skip_ws();
    if c.i != c.b.len() {
        return Err("text after the array's closing brace");
    }
    check_shape(&top)?;
    Ok(top)
}

/// `[lb:ub][lb:ub]=` (lower bounds other than 1): validated and skipped, the bounds
/// themselves are not kept.
fn skip_dimensions(c: &mut Cursor) -> Result<(), &'static str> {
    let mut n = 0;
    while c.peek() == Some(b'[') {
        c.i += 1;
        let start = c.i;
        while c
            .peek()
            .is_some_and(|b| b.is_ascii_digit() || b == b':' || b == b'-' || b == b'+')
        {
            c.i += 1;
        }
        if c.i == start || c.peek() != Some(b']') {
            return Err("malformed array dimension decoration");
        }
        c.i += 1;
        n += 1;
        if n > MAX_DIMS {
            return Err("too many array dimensions");
        }
        c.skip_ws();
    }
    if c.peek() != Some(b'=') {
        return Err("array dimension decoration without =");
    }
    c.i += 1;
    Ok(())
}

/// After an opening brace: the list's items up to and including its closing brace.
fn list(c: &mut Cursor, delim: u8, depth: usize) -> Result<Vec<Node>, &'static str> {
    if depth > MAX_DIMS {
        return Err("array nested deeper than 6 dimensions");
    }
    let mut items = Vec::new();
    c.skip_ws();
    if c.peek() == Some(b'}') {
        c.i += 1;
        return Ok(items);
    }
    loop {
        c.skip_ws();
        match c.peek() {
            None => return Err("unterminated array"),
            Some(b'{') => {
                c.i += 1;
                items.push(Node::List(list(c, delim, depth + 1)?));
            }
            Some(_) => items.push(element(c, delim)?),
        }
        c.skip_ws();
        match c.peek() {
            Some(b'}') => {
                c.i += 1;
                return Ok(items);
            }
            Some(b) if b == delim => c.i += 1,
            None => return Err("unterminated array"),
            Some(_) => return Err("expected a delimiter or } after an array element"),
        }
    }
}

fn element(c: &mut Cursor, delim: u8) -> Result<Node, &'static str> {
    let mut out: Vec<u8> = Vec::new();
    if c.peek() == Some(b'"') {
        c.i += 1;
        loop {
            match c.peek() {
                None => return Err("unterminated quoted array element"),
                Some(b'"') => {
                    c.i += 1;
                    break;
                }
                Some(b'\\') => {
                    let b =
                        *c.b.get(c.i + 1)
                            .ok_or("backslash at the end of the array")?;
                    out.push(b);
                    c.i += 2;
                }
                Some(b) => {
                    out.push(b);
                    c.i += 1;
                }
            }
        }
        return String::from_utf8(out)
            .map(Node::Text)
            .map_err(|_| "array element is not UTF-8");
    }
    // Unquoted: up to the delimiter or a brace; trailing unescaped whitespace trimmed.
    let mut escaped = false;
    let mut keep = 0; // length of `out` up to the last escaped or non-space byte
    loop {
        match c.peek() {
            None => return Err("unterminated array"),
            Some(b) if b == delim || b == b'}' => break,
            Some(b'{') | Some(b'"') => return Err("unexpected { or \" inside an array element"),
            Some(b'\\') => {
                let b =
                    *c.b.get(c.i + 1)
                        .ok_or("backslash at the end of the array")?;
                out.push(b);
                keep = out.len();
                escaped = true;
                c.i += 2;
            }
            Some(b) => {
                out.push(b);
                if !is_space(b) {
                    keep = out.len();
                }
                c.i += 1;
            }
        }
    }
    out.truncate(keep);
    if out.is_empty() && !escaped {
        return Err("empty unquoted array element");
    }
    if !escaped && out.eq_ignore_ascii_case(b"NULL") {
        return Ok(Node::Null);
    }
    String::from_utf8(out)
        .map(Node::Text)
        .map_err(|_| "array element is not UTF-8")
}

/// Every list at one depth holds either only sub-lists or only elements, and sibling
/// sub-lists have the same shape (PostgreSQL arrays are rectangular).
fn check_shape(items: &[Node]) -> Result<(), &'static str> {
    shape(items).map(|_| ())
}

fn shape(items: &[Node]) -> Result<Vec<usize>, &'static str> {
    let mut dims = vec![items.len()];
    let mut inner: Option<Vec<usize>> = None;
    let lists = items.iter().filter(|n| matches!(n, Node::List(_))).count();
    if lists != 0 && lists != items.len() {
        return Err("array mixes elements and sub-arrays");
    }
    for n in items {
        if let Node::List(l) = n {
            let s = shape(l)?;
            match &inner {
                None => inner = Some(s),
                Some(prev) if *prev == s => {}
                Some(_) => return Err("sub-arrays of different sizes"),
            }
        }
    }
    if let Some(s) = inner {
        if s.first() == Some(&0) {
            return Err("empty sub-array");
        }
        dims.extend(s);
    }
    Ok(dims)
}

/// Number of dimensions of a parsed array (0 for the empty array).
pub fn ndims(items: &[Node]) -> usize {
    match items.first() {
        None => 0,
        Some(Node::List(l)) => 1 + ndims(l).max(1),
        Some(_) => 1,
    }
}

/// All elements in row-major order.
pub fn flatten(items: Vec<Node>, out: &mut Vec<Node>) {
    for n in items {
        match n {
            Node::List(l) => flatten(l, out),
            other => out.push(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Node {
        Node::Text(s.into())
    }

    #[test]
    fn parses_tricky_arrays_table() {
        let l = Node::List;
        let cases: Vec<(&str, u8, Vec<Node>)> = vec![
            ("{}", b',', vec![]),
            ("  { }  ", b',', vec![]),
            ("{1,2,3}", b',', vec![t("1"), t("2"), t("3")]),
            (
                "{NULL,null,\"NULL\"}",
                b',',
                vec![Node::Null, Node::Null, t("NULL")],
            ),
            ("{\"a b\",\"\"}", b',', vec![t("a b"), t("")]),
            (
                r#"{"q\"uote","back\\slash","c,d","{x}"}"#,
                b',',
                vec![t("q\"uote"), t("back\\slash"), t("c,d"), t("{x}")],
            ),
            ("{ a , b }", b',', vec![t("a"), t("b")]),
            (r"{a\ ,\N\U\L\L}", b',', vec![t("a "), t("NULL")]),
            (
                "{{1,2},{3,4}}",
                b',',
                vec![l(vec![t("1"), t("2")]), l(vec![t("3"), t("4")])],
            ),
            (
                "{{{1}},{{NULL}}}",
                b',',
                vec![l(vec![l(vec![t("1")])]), l(vec![l(vec![Node::Null])])],
            ),
            ("[0:1]={7,8}", b',', vec![t("7"), t("8")]),
            ("[1:1][-2:-1]={{7,8}}", b',', vec![l(vec![t("7"), t("8")])]),
            (
                "{(1,1),(0,0);(2,2),(1,1)}",
                b';',
                vec![t("(1,1),(0,0)"), t("(2,2),(1,1)")],
            ),
            ("{\"ünï\",€}", b',', vec![t("ünï"), t("€")]),
        ];
        for (text, delim, want) in cases {
            assert_eq!(parse(text, delim), Ok(want), "{text}");
        }
    }

    #[test]
    fn rejects_malformed_arrays() {
        for bad in [
            "",
            "{",
            "}",
            "{1,2",
            "{1,,2}",
            "{,}",
            "{1}x",
            "{\"a}",
            "{a\"b}",
            "{{1},2}",
            "{{1,2},{3}}",
            "{{}}",
            "[1:2]{1,2}",
            "[]={1}",
            "{a\\",
            "{{{{{{{1}}}}}}}",
            "1,2",
            "{1 2 {3}}",
        ] {
            assert!(parse(bad, b',').is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn dimensions_and_flattening() {
        let a = parse("{{1,2},{3,4}}", b',').unwrap();
        assert_eq!(ndims(&a), 2);
        let mut flat = Vec::new();
        flatten(a, &mut flat);
        assert_eq!(flat, vec![t("1"), t("2"), t("3"), t("4")]);
        assert_eq!(ndims(&parse("{}", b',').unwrap()), 0);
        assert_eq!(ndims(&parse("{1}", b',').unwrap()), 1);
    }
}
