#![no_main]

#[path = "../harness/kafka_batches.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::run(data));
