//! Replays the fuzz corpora of the pgoutput decoder and the text value parsers
//! (fuzz/corpus/pgoutput, fuzz/corpus/pg_text) through the fuzz targets' own harness:
//! every seed and every crash ever found must run without panicking.

use std::path::PathBuf;

#[path = "../../../fuzz/harness/pg_text.rs"]
mod pg_text_harness;
#[path = "../../../fuzz/harness/pgoutput.rs"]
mod pgoutput_harness;

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_file())
        .map(|p| {
            let data = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p, data)
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "empty corpus {}", dir.display());
    files
}

fn replay(target: &str, run: impl Fn(&[u8])) {
    for (path, data) in corpus(target) {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&data)));
        assert!(outcome.is_ok(), "{target}: {} panicked", path.display());
    }
}

#[test]
fn pgoutput_corpus_decodes_without_panic() {
    replay("pgoutput", pgoutput_harness::run);
}

#[test]
fn pg_text_corpus_parses_without_panic() {
    let types = pg_text_harness::types();
    replay("pg_text", |data| pg_text_harness::run_with(&types, data));
}
