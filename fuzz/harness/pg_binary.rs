//! Shared by the `pg_binary` fuzz target and connectors/postgres/tests/fuzz_corpus.rs.
//!
//! Input: a selector byte, a flags byte, then bytes. Selectors below `types.len()` read
//! the bytes as that type's binary form with `binary::parse_binary` (flags bit 0:
//! nullable); the next two split the bytes into COPY rows (text, binary), pushed in
//! chunks of `flags + 1` bytes, and read every field of every row as text and binary
//! values of a type picked per field.

use sluice_core::TypeInfo;
use sluice_postgres::binary::{binary_capable, numeric_text, parse_binary};
use sluice_postgres::copy::{CopyDecoder, Format, Row};
use sluice_postgres::text::{parse_typed, Notes};

pub fn run_with(types: &[TypeInfo], data: &[u8]) {
    let [sel, flags, rest @ ..] = data else {
        return;
    };
    let sel = *sel as usize % (types.len() + 3);
    let mut notes = Notes::default();
    if let Some(t) = types.get(sel) {
        let _ = binary_capable(t);
        match parse_binary(t, rest, flags & 1 == 1, &mut notes) {
            Ok(v) => {
                let _ = format!("{v:?}");
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
        return;
    }
    if sel == types.len() + 2 {
        let _ = numeric_text(rest);
        return;
    }
    let format = if sel == types.len() {
        Format::Text
    } else {
        Format::Binary
    };
    let mut decoder = CopyDecoder::new(format);
    let mut row = Row::default();
    for chunk in rest.chunks(*flags as usize + 1) {
        decoder.push(chunk);
        loop {
            let row = match decoder.next_row(&mut row) {
                Ok(Some(r)) => r,
                Ok(None) => break,
                Err(e) => {
                    let _ = e.to_string();
                    return;
                }
            };
            for i in 0..row.len() {
                let Some(b) = row.get(i) else { continue };
                let t = &types[i % types.len()];
                match format {
                    Format::Binary => {
                        let _ = parse_binary(t, b, true, &mut notes);
                    }
                    Format::Text => {
                        if let Ok(s) = std::str::from_utf8(b) {
                            let _ = parse_typed(t, s, true, &mut notes, 0);
                        }
                    }
                }
            }
        }
    }
    let _ = decoder.finish();
}
