//! Conformance with Confluent's Python client (`tests/py/conformance.py`),
//! run against the registry on a free port, with each storage backend.
//! Skipped, with a note, when the Python venv (or tansu) is missing; set
//! `SLUICE_PYTHON` to use another interpreter.

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use common::{Server, Tansu};
use sluice_schema_registry::{KafkaStorageConfig, Registry};

fn python() -> Option<PathBuf> {
    let py = std::env::var_os("SLUICE_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.tools/venv/bin/python")
        });
    if py.exists() {
        Some(py)
    } else {
        eprintln!(
            "NOTE: skipping the Python conformance test: no interpreter at {} (set SLUICE_PYTHON to a Python with confluent-kafka, avro/fastavro)",
            py.display()
        );
        None
    }
}

async fn run_conformance(python: &PathBuf, srv: &Server) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/py/conformance.py");
    let out = tokio::time::timeout(
        Duration::from_secs(180),
        tokio::process::Command::new(python)
            .arg(&script)
            .arg(&srv.base)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the conformance script timed out")
    .expect("cannot run the conformance script");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "conformance script failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    assert!(stdout.contains("checks passed"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_client_conformance_directory_backend() {
    let Some(python) = python() else { return };
    let srv = Server::start().await;
    run_conformance(&python, &srv).await;
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_client_conformance_kafka_backend() {
    let Some(python) = python() else { return };
    let Some(tansu) = Tansu::start() else { return };
    let mut config = KafkaStorageConfig::new(&tansu.bootstrap);
    config.topic = "_schemas_python".into();
    let reg = Arc::new(Registry::open_kafka(config).await.unwrap());
    let srv = Server::serve(reg).await;
    run_conformance(&python, &srv).await;
    srv.stop().await;
}
