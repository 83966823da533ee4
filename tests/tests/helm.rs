//! The Helm chart (helm/sluice), its alert rules and dashboard, and the Dockerfile.
//!
//! The checks live in `tests/helm/check_chart.py` (Helm v4 lint and offline render through
//! helm-python-sdk, Kubernetes schema validation, yamllint, security settings, the rendered
//! config accepted by `sluice check-config`, promtool on the alert rules, metric names of
//! the alerts and the dashboard against `agent/src/metrics/`, hadolint). They run with the
//! Python of `.tools/helm-venv`, which `scripts/setup.sh` creates (`./dev test` runs it
//! first); without that venv the test is skipped with a note.

use std::path::PathBuf;
use std::process::Command;

use sluice_tests::repo_root;

/// `target/debug/sluice`, honouring CARGO_TARGET_DIR (built by `cargo build -p sluice`).
fn sluice_binary() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"))
        .join("debug/sluice")
}

#[test]
fn helm_chart_lints_renders_validates_and_its_config_is_accepted() {
    let root = repo_root();
    let python = root.join(".tools/helm-venv/bin/python");
    if !python.exists() {
        eprintln!(
            "SKIPPED helm chart checks: {} is missing; run ./scripts/setup.sh to create it",
            python.display()
        );
        return;
    }
    let out = Command::new(&python)
        .arg(root.join("tests/helm/check_chart.py"))
        .arg("--sluice")
        .arg(sluice_binary())
        .current_dir(&root)
        .output()
        .expect("run tests/helm/check_chart.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(
        out.status.success(),
        "tests/helm/check_chart.py failed ({}):\n{}",
        out.status,
        stdout
            .lines()
            .filter(|l| l.starts_with("FAIL")
                || l.starts_with("chart checks")
                || l.starts_with("  - "))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
