//! Shared by the `registry_api` fuzz target and schema-registry/tests/fuzz_corpus.rs:
//! turns fuzz input into a sequence of HTTP requests for the registry's REST API.
//!
//! Input: requests separated by `~REQ~`. Each request is one header byte (bits 0-2 the
//! method, bits 3-4 the Content-Type), the path and query up to the first `\n`, then
//! the body. The path is made a valid request target (a leading `/`, other bytes
//! percent-encoded) so that every request reaches the router.

pub const SEP: &[u8] = b"~REQ~";
pub const MAX_REQUESTS: usize = 8;

pub struct Req {
    pub method: &'static str,
    pub content_type: Option<&'static str>,
    pub target: String,
    pub body: Vec<u8>,
}

const METHODS: [&str; 8] = [
    "GET", "POST", "PUT", "DELETE", "POST", "GET", "PATCH", "HEAD",
];
const CONTENT_TYPES: [Option<&str>; 4] = [
    None,
    Some("application/vnd.schemaregistry.v1+json"),
    Some("application/json; charset=utf-8"),
    Some("text/plain"),
];

fn target(raw: &[u8]) -> String {
    let mut out = String::from("/");
    let raw = raw.strip_prefix(b"/").unwrap_or(raw);
    for (i, &b) in raw.iter().enumerate() {
        let keep = b.is_ascii_alphanumeric()
            || b"-._~!$&'()*+,;=:@/?".contains(&b)
            || b == b'%'
                && raw.len() > i + 2
                && raw[i + 1].is_ascii_hexdigit()
                && raw[i + 2].is_ascii_hexdigit();
        if keep {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub fn requests(mut data: &[u8]) -> Vec<Req> {
    let mut parts = Vec::new();
    while let Some(i) = data.windows(SEP.len()).position(|w| w == SEP) {
        parts.push(&data[..i]);
        data = &data[i + SEP.len()..];
    }
    parts.push(data);
    parts
        .into_iter()
        .take(MAX_REQUESTS)
        .filter_map(|p| {
            let (&head, rest) = p.split_first()?;
            let nl = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
            Some(Req {
                method: METHODS[(head & 7) as usize],
                content_type: CONTENT_TYPES[(head >> 3 & 3) as usize],
                target: target(&rest[..nl]),
                body: rest.get(nl + 1..).unwrap_or_default().to_vec(),
            })
        })
        .collect()
}
