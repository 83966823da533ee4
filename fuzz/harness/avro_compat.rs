//! Shared by the `avro_compat` fuzz target and schema-registry/tests/fuzz_corpus.rs.
//!
//! Input: one level byte, then up to three schema texts separated by NUL bytes. The
//! first is the new schema, the others the subject's previous ones (oldest first).
//! Runs `compat::check` at the chosen level and `compat::can_read` both ways between
//! the first two.

use sluice_schema_registry::compat::{can_read, check, CompatibilityLevel};

pub fn run(data: &[u8]) {
    let Some((&level, rest)) = data.split_first() else {
        return;
    };
    let level = CompatibilityLevel::ALL[level as usize % CompatibilityLevel::ALL.len()];
    let texts: Vec<String> = rest
        .splitn(3, |&b| b == 0)
        .map(|t| String::from_utf8_lossy(t).into_owned())
        .collect();
    let new = texts[0].as_str();
    let previous: Vec<&str> = texts[1..].iter().map(String::as_str).collect();
    let _ = check(level, new, &previous);
    if let Some(old) = previous.last() {
        let _ = can_read(new, old);
        let _ = can_read(old, new);
    } else {
        let _ = can_read(new, new);
    }
}
