//! Wiring: PostgreSQL source → bounded channel → encoder + Kafka sink → acknowledged
//! position back to the source. Restarts the pipeline on transient errors with backoff
//! and jitter; stops on permanent ones.

mod encoder;
mod error;
mod sink;
mod txn_meta;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use rand::Rng;
use sluice_avro::Naming;
use sluice_core::{Classify, ErrorClass, Lsn};
use sluice_kafka::{offsets, Topics};
use sluice_postgres::SourceStatus;
use sluice_schema_registry::{Registry, RegistryClient};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub use error::PipelineError;

use crate::config::{OnIncompatibleSetting, RegistrySettings, Validated};
use crate::metrics::Metrics;

/// Events buffered between source and sink (handed over in batches).
const QUEUE_EVENTS: usize = 4096;

/// Starts the bundled registry if configured; returns its task.
async fn start_registry(
    cfg: &Validated,
    metrics: Option<Arc<Metrics>>,
    shutdown: CancellationToken,
) -> anyhow::Result<Option<tokio::task::JoinHandle<std::io::Result<()>>>> {
    let RegistrySettings::Bundled {
        listen,
        data_dir,
        kafka_storage,
        basic_auth,
        tls,
    } = &cfg.registry
    else {
        return Ok(None);
    };
    let registry = match kafka_storage {
        Some(k) => Arc::new(Registry::open_kafka((**k).clone()).await.with_context(|| {
            format!(
                "schema_registry: cannot open its Kafka storage (topic {}); check sink.kafka, or set schema_registry.storage: directory",
                k.topic
            )
        })?),
        None => {
            std::fs::create_dir_all(data_dir).with_context(|| {
                format!(
                    "schema_registry.data_dir: cannot create {}",
                    data_dir.display()
                )
            })?;
            Arc::new(Registry::open(data_dir).with_context(|| {
                format!(
                    "schema_registry.data_dir: cannot open {}",
                    data_dir.display()
                )
            })?)
        }
    };
    let observer = metrics.as_ref().map(|m| m.ops.registry_observer());
    if let Some(m) = metrics {
        // Unreadable, foreign or conflicting records in the store (logged, skipped).
        let reg = registry.clone();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            loop {
                m.ops.registry_skipped.set(reg.skipped_records() as i64);
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                }
            }
        });
    }
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| {
        format!("schema_registry.listen: cannot listen on {listen} (is another process using the port?)")
    })?;
    tracing::info!(%listen, storage = %registry.storage(), tls = tls.is_some(), basic_auth = basic_auth.is_some(), "bundled schema registry listening");
    let options = sluice_schema_registry::ServeOptions {
        basic_auth: basic_auth.clone(),
        tls: tls.clone(),
        observer,
    };
    Ok(Some(tokio::spawn(sluice_schema_registry::serve_with(
        listener,
        registry,
        options,
        async move { shutdown.cancelled().await },
    ))))
}

/// `sluice registry`: only the bundled registry.
pub async fn run_registry_only(cfg: &Validated, shutdown: CancellationToken) -> anyhow::Result<()> {
    if !matches!(cfg.registry, RegistrySettings::Bundled { .. }) {
        anyhow::bail!(
            "schema_registry.mode: `sluice registry` runs the bundled registry; set mode: bundled"
        );
    }
    let metrics = Arc::new(Metrics::new());
    metrics
        .registry_only
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let admin = serve_admin(cfg, &metrics, &shutdown).await?;
    let task = start_registry(cfg, Some(metrics.clone()), shutdown.clone())
        .await?
        .expect("bundled");
    metrics.ready.set(1);
    let served = task.await;
    metrics.ready.set(0);
    shutdown.cancel();
    let _ = admin.await;
    served
        .context("registry task")?
        .context("registry server")?;
    Ok(())
}

/// The admin endpoint (`/metrics`, `/healthz`, `/readyz`) on `admin.listen`.
async fn serve_admin(
    cfg: &Validated,
    metrics: &Arc<Metrics>,
    shutdown: &CancellationToken,
) -> anyhow::Result<tokio::task::JoinHandle<std::io::Result<()>>> {
    let listener = tokio::net::TcpListener::bind(cfg.admin_listen)
        .await
        .with_context(|| {
            format!(
                "admin.listen: cannot listen on {} (is another process using the port?)",
                cfg.admin_listen
            )
        })?;
    tracing::info!(listen = %cfg.admin_listen, "admin endpoint listening (/metrics /healthz /readyz)");
    Ok(tokio::spawn(crate::admin::serve(
        listener,
        metrics.clone(),
        shutdown.clone(),
    )))
}

/// `sluice run`.
pub async fn run(
    cfg: &Validated,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let admin = serve_admin(cfg, &metrics, &shutdown).await?;
    let registry = start_registry(cfg, Some(metrics.clone()), shutdown.clone()).await?;

    let mut backoff = Duration::from_secs(1);
    // Since when another instance has been holding the slot.
    let mut busy_since: Option<Instant> = None;
    let result = loop {
        let started = Instant::now();
        let r = run_once(cfg, &metrics, shutdown.clone()).await;
        metrics.ready.set(0);
        metrics.source_connected.set(0);
        if started.elapsed() > Duration::from_secs(60) {
            busy_since = None;
        }
        match r {
            Ok(()) => break Ok(()),
            Err(e) if e.other_instance() => {
                let since = *busy_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= cfg.slot_busy_timeout || matches!(&e, PipelineError::Sink(_))
                {
                    metrics.errors.with_label_values(&["permanent"]).inc();
                    break Err(anyhow::Error::new(e));
                }
                tracing::warn!(error = %e, "another instance holds the slot; waiting (up to source.postgres.slot_busy_timeout_secs) for it to stop");
                tokio::select! {
                    _ = shutdown.cancelled() => break Ok(()),
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
            Err(e) if e.class() == ErrorClass::Permanent => {
                metrics.errors.with_label_values(&["permanent"]).inc();
                break Err(anyhow::Error::new(e));
            }
            Err(e) => {
                metrics.errors.with_label_values(&["transient"]).inc();
                if started.elapsed() > Duration::from_secs(60) {
                    backoff = Duration::from_secs(1);
                }
                let jitter = rand::rng().random_range(0.5..1.5);
                let wait = backoff.mul_f64(jitter);
                tracing::warn!(error = %e, retry_in = ?wait, "transient error; restarting the pipeline from the last confirmed position");
                tokio::select! {
                    _ = shutdown.cancelled() => break Ok(()),
                    _ = tokio::time::sleep(wait) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(60));
            }
        }
    };
    shutdown.cancel();
    let _ = admin.await;
    if let Some(r) = registry {
        let _ = r.await;
    }
    result
}

/// Without a committed position a snapshot is taken; if the event topics already hold
/// committed events, the position was lost rather than never written, and a snapshot
/// would deliver every row again: stop and say so. (A Kafka that lost everything, like
/// a restarted in-memory broker, holds nothing: a new snapshot rebuilds it.)
async fn refuse_lost_position(
    source: &sluice_postgres::SourceConfig,
    kafka: &sluice_kafka::KafkaConfig,
    naming: &Naming,
) -> Result<(), PipelineError> {
    if source.snapshot == sluice_postgres::SnapshotMode::Never {
        return Ok(());
    }
    for t in &source.tables {
        let topic = naming.topic(t);
        let has = sluice_kafka::raw::has_committed_records(
            &kafka.bootstrap_servers,
            &kafka.security,
            &topic,
        )
        .await
        .map_err(|e| {
            PipelineError::Sink(sluice_kafka::SinkError::Offsets {
                topic: topic.clone(),
                reason: format!("cannot check it for committed events: {e}"),
            })
        })?;
        if has {
            return Err(PipelineError::Startup(format!(
                "Kafka holds no committed position for slot {slot:?} in {offsets:?}, but topic {topic:?} already holds committed events: \
                 the position was lost (the offsets topic was deleted, or sink.kafka.offsets_topic or the cluster changed), and a new \
                 snapshot would deliver every row again. Fix: point sink.kafka.offsets_topic at the topic holding the position; or, \
                 to start over on purpose, delete the event topics (or choose another sink.kafka.topic_prefix) and restart",
                slot = source.slot,
                offsets = kafka.offsets_topic,
            )));
        }
    }
    Ok(())
}

async fn run_once(
    cfg: &Validated,
    metrics: &Arc<Metrics>,
    shutdown: CancellationToken,
) -> Result<(), PipelineError> {
    let (source_cfg, kafka_cfg) = cfg
        .require_pipeline()
        .map_err(|e| PipelineError::Startup(e.to_string()))?;
    sluice_kafka::check_connection(kafka_cfg, Duration::from_secs(10)).await?;
    let mut topics = Topics::new(kafka_cfg)?;
    topics.ensure_offsets_topic().await?;
    let committed = offsets::load_existing(
        &kafka_cfg.bootstrap_servers,
        &kafka_cfg.security,
        &kafka_cfg.offsets_topic,
        &source_cfg.slot,
    )
    .await?;
    let naming = Naming {
        topic_prefix: cfg.topic_prefix.clone(),
        database: source_cfg.pg.get_dbname().unwrap_or_default().to_string(),
        envelope: cfg.envelope,
        subjects: cfg.subjects,
        types: sluice_avro::TypeModes {
            decimals: cfg.decimal_handling,
            time: cfg.time_precision,
        },
    };
    match &committed {
        Some(p) => {
            tracing::info!(position = ?p, topic = %kafka_cfg.offsets_topic, "committed position")
        }
        None => {
            refuse_lost_position(source_cfg, kafka_cfg, &naming).await?;
            tracing::info!(topic = %kafka_cfg.offsets_topic, "no committed position yet")
        }
    }
    let registry =
        RegistryClient::with_options(&cfg.registry_url(), cfg.registry_client_options())?;
    let sink = sink::Sink {
        kafka: kafka_cfg.clone(),
        transactional_id: cfg.transactional_id.clone(),
        slot: source_cfg.slot.clone(),
        topics,
        encoder: encoder::Encoder::new(naming, registry, metrics.clone())
            .register_anyway(cfg.on_incompatible == OnIncompatibleSetting::RegisterAnyway),
        metrics: metrics.clone(),
        tombstones: cfg.tombstones,
        skip_truncates: cfg.envelope == sluice_avro::Envelope::Flat,
        transaction_metadata: cfg.transaction_metadata,
        txn_counts: Default::default(),
        txn_meta: Default::default(),
        limits: cfg.batch,
        restart_end: committed.as_ref().map(|p| p.end_lsn).unwrap_or_default(),
        committed: committed.clone().unwrap_or_default(),
        on_incompatible: match cfg.on_incompatible {
            OnIncompatibleSetting::BlockTable => sink::OnIncompatible::BlockTable,
            OnIncompatibleSetting::Fail => sink::OnIncompatible::Fail,
            OnIncompatibleSetting::SkipTable => sink::OnIncompatible::SkipTable,
            // Only reached if registering under NONE fails too.
            OnIncompatibleSetting::RegisterAnyway => sink::OnIncompatible::Fail,
        },
        runtime_blocked: Default::default(),
    };

    let (tx, rx) = sluice_core::event_queue(QUEUE_EVENTS);
    // Queue depth, sampled without keeping the queue open.
    let gauge = tx.gauge();
    metrics.ops.queue_capacity.set(gauge.capacity() as i64);
    let m = metrics.clone();
    let queue_task = tokio::spawn(async move {
        while !gauge.is_closed() {
            m.ops.queue_depth.set(gauge.depth() as i64);
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        m.ops.queue_depth.set(0);
    });
    let (ack_tx, ack_rx) = watch::channel(Lsn::ZERO);
    let (status_tx, mut status_rx) = watch::channel(SourceStatus::default());
    let source_stop = CancellationToken::new();
    let sink_stop = CancellationToken::new();

    let source_cfg = source_cfg.clone();
    let stop = source_stop.clone();
    let stats = metrics.source.clone();
    let mut source = tokio::spawn(async move {
        sluice_postgres::run(&source_cfg, committed, tx, ack_rx, status_tx, stats, stop)
            .await
            .map_err(PipelineError::from)
    });
    let mut sink = tokio::spawn(sink.run(rx, ack_tx, sink_stop.clone()));
    let m = metrics.clone();
    let status_task = tokio::spawn(async move {
        while status_rx.changed().await.is_ok() {
            let s = status_rx.borrow_and_update().clone();
            m.source_connected.set(s.connected as i64);
            m.ready.set(s.streaming as i64);
        }
    });

    let joined = |r: Result<Result<(), PipelineError>, tokio::task::JoinError>| {
        r.unwrap_or_else(|e| Err(PipelineError::Startup(format!("task failed: {e}"))))
    };
    let result = tokio::select! {
        _ = shutdown.cancelled() => {
            // Sink first: let in-flight deliveries be acknowledged, then the source sends
            // its final confirmation and closes the replication stream.
            sink_stop.cancel();
            let sink_r = joined(sink.await);
            source_stop.cancel();
            let source_r = joined(source.await);
            sink_r.and(source_r)
        }
        r = &mut source => {
            let source_r = joined(r);
            // The channel is closed: the sink drains what it has and stops.
            let sink_r = match tokio::time::timeout(Duration::from_secs(10), &mut sink).await {
                Ok(r) => joined(r),
                Err(_) => { sink_stop.cancel(); joined(sink.await) }
            };
            source_r.and(sink_r)
        }
        r = &mut sink => {
            let sink_r = joined(r);
            source_stop.cancel();
            let source_r = joined(source.await);
            sink_r.and(source_r)
        }
    };
    status_task.abort();
    queue_task.abort();
    result
}
