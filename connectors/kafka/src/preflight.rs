//! `sluice check`, Kafka side: the brokers answer, transactions work for the configured
//! principal, and the offsets topic is usable. Nothing is created; the real
//! transactional.id is never initialized (that would fence a running instance).

use std::time::Duration;

use sluice_core::CheckResult;

use crate::{raw, KafkaConfig, Topics, TxnProducer};

const AREA: &str = "kafka";

pub async fn run(cfg: &KafkaConfig, transactional_id: &str) -> Vec<CheckResult> {
    let mut out = Vec::new();
    // Our own connection first: its TLS and SASL errors say exactly what is wrong.
    let first = cfg
        .bootstrap_servers
        .split(',')
        .next()
        .unwrap_or_default()
        .trim();
    if let Err(e) = raw::Conn::connect(first, &cfg.security).await {
        let text = match e {
            // These name the setting to fix themselves.
            raw::RawError::Tls { .. } | raw::RawError::Auth { .. } => e.to_string(),
            e => format!(
                "{e}. Fix: check sink.kafka.bootstrap_servers, that the brokers are up and reachable from here, and sink.kafka.security (protocol, tls, sasl)"
            ),
        };
        out.push(CheckResult::fail(AREA, "connection", text));
        return out;
    }
    match crate::check_connection(cfg, Duration::from_secs(10)).await {
        Ok(()) => out.push(CheckResult::pass(
            AREA,
            "connection",
            cfg.bootstrap_servers.clone(),
        )),
        Err(e) => {
            out.push(CheckResult::fail(
                AREA,
                "connection",
                format!(
                    "{}: {e}. Fix: check sink.kafka.bootstrap_servers, that the brokers are up and reachable from here, and the security settings in sink.kafka.security (protocol, tls, sasl)",
                    cfg.bootstrap_servers
                ),
            ));
            return out;
        }
    }
    out.push(transactions(cfg, transactional_id).await);
    out.push(offsets_topic(cfg).await);
    out
}

async fn transactions(cfg: &KafkaConfig, transactional_id: &str) -> CheckResult {
    let probe = format!("{transactional_id}-check");
    let what = "transactions";
    let r = async {
        let p = TxnProducer::new(cfg, &probe, Duration::from_secs(15)).await?;
        p.begin()?;
        p.abort().await
    }
    .await;
    match r {
        Ok(()) => CheckResult::pass(
            AREA,
            what,
            format!("initialized, began and aborted a transaction as transactional.id {probe:?} (the configured id {transactional_id:?} is left alone)"),
        ),
        Err(e) => CheckResult::fail(
            AREA,
            what,
            format!(
                "{e}. Fix: Sluice needs Kafka transactions (brokers 0.11+, transaction.state.log settings that fit the cluster) and, with ACLs, WRITE and DESCRIBE on transactional ids starting with {transactional_id:?} plus IDEMPOTENT_WRITE on the cluster"
            ),
        ),
    }
}

async fn offsets_topic(cfg: &KafkaConfig) -> CheckResult {
    let topic = &cfg.offsets_topic;
    let what = format!("offsets topic {topic}");
    let first = cfg
        .bootstrap_servers
        .split(',')
        .next()
        .unwrap_or_default()
        .trim()
        .to_string();
    let exists = async {
        let mut conn = raw::Conn::connect(&first, &cfg.security).await?;
        conn.leader(topic, crate::offsets::PARTITION).await
    }
    .await;
    match exists {
        Err(e) if e.is_unknown_topic() => {
            return CheckResult::pass(
                AREA,
                what,
                "missing; Sluice creates it at start (one partition, cleanup.policy=compact)",
            )
        }
        Err(e) => return CheckResult::fail(AREA, what, format!("cannot read its metadata: {e}")),
        Ok(_) => {}
    }
    let topics = match Topics::new(cfg) {
        Ok(t) => t,
        Err(e) => return CheckResult::fail(AREA, what, e.to_string()),
    };
    match topics.cleanup_policy(topic).await {
        Ok(Some(p)) if p.split(',').any(|x| x.trim() == "compact") => {
            CheckResult::pass(AREA, what, format!("exists, cleanup.policy={p}"))
        }
        Ok(Some(p)) => CheckResult::fail(
            AREA,
            what,
            format!(
                "cleanup.policy={p}: positions would be deleted by retention. Fix: kafka-configs --alter --entity-type topics --entity-name {topic} --add-config cleanup.policy=compact, or choose another sink.kafka.offsets_topic"
            ),
        ),
        Ok(None) => CheckResult::warn(
            AREA,
            what,
            "exists; the broker does not report cleanup.policy, so compaction is not verified",
        ),
        Err(e) => CheckResult::warn(
            AREA,
            what,
            format!("exists; its configuration cannot be read ({e}), so compaction is not verified"),
        ),
    }
}
