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
    let mut extra: Vec<String> = Vec::new();
    if let Some(o) = offset {
        extra.extend(["--offset".into(), o.to_string()]);
    }
    for p in properties {
        extra.extend(["--property".into(), p.clone()]);
    }
    let out = consume(bootstrap, registry_url, topic, count, 60, &extra);
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

/// Reads `count` records decoding values with the subject's latest schema as the reader
/// schema (a consumer that upgraded its schema).
pub fn read_as_latest(
    bootstrap: &str,
    registry_url: &str,
    topic: &str,
    count: usize,
) -> Vec<Value> {
    let out = consume(
        bootstrap,
        registry_url,
        topic,
        count,
        60,
        &["--reader-latest".into()],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Asserts that `topic` holds no more than `n` committed records (waiting 5 s for one
/// more).
pub fn assert_at_most(bootstrap: &str, registry_url: &str, topic: &str, n: usize) {
    let out = consume(bootstrap, registry_url, topic, n + 1, 5, &[]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "more than {n} records on {topic}: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Runs consume.py; exit status 2: fewer than `count` records within `timeout_secs`.
fn consume(
    bootstrap: &str,
    registry_url: &str,
    topic: &str,
    count: usize,
    timeout_secs: u32,
    extra: &[String],
) -> std::process::Output {
    Command::new(python())
        .arg(crate::repo_root().join("tests/py/consume.py"))
        .args([
            "--bootstrap",
            bootstrap,
            "--registry",
            registry_url,
            "--topic",
            topic,
        ])
        .args([
            "--count",
            &count.to_string(),
            "--timeout",
            &timeout_secs.to_string(),
        ])
        .args(extra)
        .output()
        .expect("run consume.py")
}

/// The field names of a decoded record's `after`, sorted.
pub fn after_fields(rec: &serde_json::Value) -> Vec<String> {
    let mut fields: Vec<String> = rec["value"]["after"]
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    fields.sort();
    fields
}
