//! Shared by the `pgoutput` fuzz target and connectors/postgres/tests/fuzz_corpus.rs.
//!
//! Input: one flags byte, then pgoutput messages separated by `~MSG~`, decoded in order
//! by one `Decoder` (so Stream Start/Stop state carries over). Bit `i % 8` of the flags
//! byte sets `parallel_abort_info` for message `i`. Each message is also read as the
//! content of a captured-DDL logical message (JSON from the stream, outside bytes too).

use bytes::Bytes;
use sluice_postgres::pgoutput::Decoder;

pub const SEP: &[u8] = b"~MSG~";

pub fn split(mut data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while let Some(i) = data.windows(SEP.len()).position(|w| w == SEP) {
        out.push(&data[..i]);
        data = &data[i + SEP.len()..];
    }
    out.push(data);
    out
}

pub fn run(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let mut d = Decoder::new();
    for (i, msg) in split(rest).into_iter().enumerate().take(64) {
        d.parallel_abort_info = flags >> (i % 8) & 1 == 1;
        if let Ok(rel) = sluice_postgres::ddl::parse(msg) {
            let _ = format!("{rel:?}");
        }
        match d.decode(&Bytes::copy_from_slice(msg)) {
            Ok(m) => {
                let _ = format!("{m:?}");
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
}
