//! Shared by the `kafka_batches` fuzz target and connectors/kafka/tests/fuzz_corpus.rs.
//!
//! Input: the record-batch bytes of one Fetch response partition.

use sluice_kafka::raw::batch::{parse_batches, ReadCommitted};

pub fn run(data: &[u8]) {
    match parse_batches(data) {
        Ok(batches) => {
            let mut rc = ReadCommitted::default();
            for b in batches {
                rc.push(b);
            }
            let _ = rc.undecided();
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
}
