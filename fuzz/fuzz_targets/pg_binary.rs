#![no_main]

use std::sync::OnceLock;

#[path = "../harness/pg_text.rs"]
mod types;
#[path = "../harness/pg_binary.rs"]
mod harness;

static TYPES: OnceLock<Vec<sluice_core::TypeInfo>> = OnceLock::new();

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    harness::run_with(TYPES.get_or_init(types::types), data)
});
