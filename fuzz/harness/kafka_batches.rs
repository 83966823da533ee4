//! Shared by the `kafka_batches` fuzz target and connectors/kafka/tests/fuzz_corpus.rs.
//!
//! Input: the record-batch bytes of one Fetch response partition. Every visible record's
//! value is also read as an offsets-topic position (outside bytes too).

use sluice_kafka::offsets;
use sluice_kafka::raw::batch::{parse_batches, ReadCommitted};

pub fn run(data: &[u8]) {
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
