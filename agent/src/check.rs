//! `sluice check --config FILE`: a preflight a person runs before deploying. Every check
//! runs (one failure does not hide the next); each failure names its cause and fix.
//! Exit status: 0 all pass (warnings allowed), 1 any failure, 78 a bad config file.

use std::io::Write;

use sluice_core::{CheckResult, Verdict};
use sluice_schema_registry::RegistryClient;

use crate::config::{RegistrySettings, Validated};

const AREA: &str = "registry";

pub async fn run(cfg: &Validated) -> Vec<CheckResult> {
    let mut out = Vec::new();
    if let Some(source) = &cfg.source {
        out.extend(sluice_postgres::preflight::run(source).await);
    }
    if let Some(kafka) = &cfg.kafka {
        out.extend(sluice_kafka::preflight::run(kafka, &cfg.transactional_id).await);
    }
    out.extend(registry(cfg).await);
    out
}

/// Prints one line per check and a summary; true when nothing failed.
pub fn report(results: &[CheckResult], mut w: impl Write) -> std::io::Result<bool> {
    for r in results {
        writeln!(
            w,
            "{}  {:<9} {:<28} {}",
            r.verdict.label(),
            r.area,
            r.what,
            r.detail
        )?;
    }
    let failed = results
        .iter()
        .filter(|r| r.verdict == Verdict::Fail)
        .count();
    let warned = results
        .iter()
        .filter(|r| r.verdict == Verdict::Warn)
        .count();
    if failed == 0 {
        writeln!(
            w,
            "all {} checks passed ({warned} warning(s))",
            results.len()
        )?;
    } else {
        writeln!(
            w,
            "{failed} of {} checks failed ({warned} warning(s)); fix them and run sluice check again",
            results.len()
        )?;
    }
    Ok(failed == 0)
}

async fn registry(cfg: &Validated) -> Vec<CheckResult> {
    match &cfg.registry {
        RegistrySettings::Bundled {
            listen,
            kafka_storage: Some(k),
            ..
        } => vec![
            CheckResult::pass(
                AREA,
                "storage",
                format!(
                    "Kafka topic {} (created compacted at start if missing; the registry becomes its writer on its first write)",
                    k.topic
                ),
            ),
            listen_check(listen).await,
        ],
        RegistrySettings::Bundled {
            listen, data_dir, ..
        } => {
            let mut out = Vec::new();
            let probe = data_dir.join(".sluice-check");
            let writable = std::fs::create_dir_all(data_dir)
                .and_then(|()| std::fs::write(&probe, b"check"))
                .and_then(|()| std::fs::remove_file(&probe));
            out.push(match writable {
                Ok(()) => CheckResult::pass(AREA, "data_dir", format!("{} is writable", data_dir.display())),
                Err(e) => CheckResult::fail(
                    AREA,
                    "data_dir",
                    format!(
                        "{}: {e}. Fix: make schema_registry.data_dir a directory the user running Sluice can write (a persistent volume in Kubernetes)",
                        data_dir.display()
                    ),
                ),
            });
            out.push(listen_check(listen).await);
            out
        }
        RegistrySettings::External { url, .. } => {
            let what = "reachable";
            let client = match RegistryClient::with_options(url, cfg.registry_client_options()) {
                Ok(c) => c,
                Err(e) => return vec![CheckResult::fail(AREA, what, e.to_string())],
            };
            vec![match client.global_compatibility().await {
                Ok(level) => CheckResult::pass(
                    AREA,
                    what,
                    format!("{url}: global compatibility {level}"),
                ),
                Err(e) => CheckResult::fail(
                    AREA,
                    what,
                    format!("{e}. Fix: check schema_registry.url, its credentials (schema_registry.basic_auth) and CA (schema_registry.tls.ca_file)"),
                ),
            }]
        }
    }
}

async fn listen_check(listen: &std::net::SocketAddr) -> CheckResult {
    match tokio::net::TcpListener::bind(listen).await {
        Ok(_) => CheckResult::pass(AREA, "listen", format!("{listen} is free")),
        Err(e) => CheckResult::warn(
            AREA,
            "listen",
            format!("{listen}: {e} (a running Sluice holds it, or another process does: then set schema_registry.listen)"),
        ),
    }
}
