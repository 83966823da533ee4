//! Replays the raw record batch parser's fuzz corpus (fuzz/corpus/kafka_batches)
//! through the fuzz target's own harness: every seed and every crash ever found must
//! run without panicking.

use std::path::PathBuf;

#[path = "../../../fuzz/harness/kafka_batches.rs"]
mod harness;

#[test]
fn kafka_batches_corpus_parses_without_panic() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/kafka_batches");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "empty corpus {}", dir.display());
    for path in files {
        let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let outcome = std::panic::catch_unwind(|| harness::run(&data));
        assert!(outcome.is_ok(), "{} panicked", path.display());
    }
}
