//! Shared by the crates' corpus replay tests (included with `#[path]`): reads a fuzz
//! target's corpus and runs every file through a harness, failing on any panic.

use std::path::PathBuf;

/// Every file of fuzz/corpus/`target`, sorted, with its bytes. The corpus is found
/// by walking up from the including crate's directory.
pub fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let mut root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = loop {
        let candidate = root.join("fuzz/corpus").join(target);
        if candidate.is_dir() {
            break candidate;
        }
        assert!(
            root.pop(),
            "no fuzz/corpus/{target} above {}",
            env!("CARGO_MANIFEST_DIR")
        );
    };
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

/// Runs `run` on every corpus file of `target`; a panic fails with the file's name.
pub fn replay(target: &str, run: impl Fn(&[u8])) {
    for (path, data) in corpus(target) {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&data)));
        assert!(outcome.is_ok(), "{target}: {} panicked", path.display());
    }
}
