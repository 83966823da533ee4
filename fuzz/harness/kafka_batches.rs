//! Shared by the `kafka_batches` fuzz target and connectors/kafka/tests/fuzz_corpus.rs.
//!
//! Input: the record-batch bytes of one Fetch response partition. Every visible record's
//! value is also read as an offsets-topic position, and the input as a broker's SCRAM
//! messages (outside bytes too).

use sluice_kafka::offsets;
use sluice_kafka::raw::batch::{parse_batches, ReadCommitted};

pub fn run(data: &[u8]) {
    scram(data);
    match parse_batches(data) {
        Ok(batches) => {
            let mut rc = ReadCommitted::default();
            for b in batches {
                rc.push(b);
            }
            let _ = rc.undecided();
            for r in &rc.committed {
                if let Some(v) = &r.value {
                    if let Ok(p) = offsets::decode(v) {
                        // What decodes must encode back to the same position.
                        assert_eq!(offsets::decode(&offsets::encode(&p)), Ok(p));
                    }
                }
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
}

/// The input as a SCRAM server-first message (then its tail as server-final). Iteration
/// counts above 10,000 are skipped to keep runs fast (the client accepts up to 16,384).
fn scram(data: &[u8]) {
    use sluice_kafka::raw::sasl::Scram;
    use sluice_kafka::security::Mechanism;
    let text = String::from_utf8_lossy(data);
    let (first, last) = text.split_once('\n').unwrap_or((&text, ""));
    let heavy = first
        .split(',')
        .filter_map(|p| p.strip_prefix("i="))
        .any(|i| i.parse::<u64>().is_ok_and(|n| n > 10_000));
    if heavy {
        return;
    }
    for m in [Mechanism::ScramSha256, Mechanism::ScramSha512] {
        let mut s = Scram::new(m, "user", "pencil", "rOprNGfwEbeRWgbNEkqO");
        if s.client_final(first).is_ok() {
            let _ = s.verify(last);
        }
    }
}
