//! Reads topics with the independent Python client (`tests/py/consume.py`).

use std::process::Command;

use serde_json::Value;

pub fn python() -> std::path::PathBuf {
    let p = crate::tools_dir().join("venv/bin/python");
    assert!(
        p.exists(),
        "{} is missing; run scripts/setup.sh",
        p.display()
    );
    p
}

/// Reads `count` records of `topic` from `offset` (default: the beginning), decoded with
/// confluent-kafka's AvroDeserializer through the registry at `registry_url`.
pub fn read(
    bootstrap: &str,
    registry_url: &str,
    topic: &str,
    count: usize,
    offset: Option<i64>,
) -> Vec<Value> {
    read_with(bootstrap, registry_url, topic, count, offset, &[])
}

/// [`read`] with librdkafka properties for the consumer (`KEY=VALUE`, e.g. TLS).
pub fn read_with(
    bootstrap: &str,
    registry_url: &str,
    topic: &str,
    count: usize,
    offset: Option<i64>,
    properties: &[String],
) -> Vec<Value> {
    let script = crate::repo_root().join("tests/py/consume.py");
    let mut cmd = Command::new(python());
    cmd.arg(&script)
        .args([
            "--bootstrap",
            bootstrap,
            "--registry",
            registry_url,
            "--topic",
            topic,
        ])
        .args(["--count", &count.to_string(), "--timeout", "60"]);
    if let Some(o) = offset {
        cmd.args(["--offset", &o.to_string()]);
    }
    for p in properties {
        cmd.args(["--property", p]);
    }
    let out = cmd.output().expect("run consume.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "reader failed ({}):\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad reader line {l:?}: {e}")))
        .collect()
}
