//! The exactly-once auditor's own self-tests (`tests/audit/test_audit.py`): the pure
//! checker on synthetic logs (one fault at a time, and a clean log), the record batch
//! parser, and an end-to-end read of committed and aborted transactions from a real
//! tansu broker (skipped by the script, with a note, when the tansu binary is absent).

use std::process::Command;

#[test]
fn auditor_self_tests_pass() {
    let script = sluice_tests::repo_root().join("tests/audit/test_audit.py");
    let out = Command::new(sluice_tests::reader::python())
        .arg(&script)
        .current_dir(sluice_tests::repo_root())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("run tests/audit/test_audit.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "auditor self-tests failed ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    // unittest reports on stderr; make sure tests actually ran.
    assert!(stderr.contains("\nOK"), "no unittest OK line:\n{stderr}");
    eprintln!("{stderr}");
}
