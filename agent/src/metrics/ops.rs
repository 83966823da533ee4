//! Metrics of the pipeline's moving parts: registry requests, the source→sink queue and
//! the snapshot's run.

use std::time::Duration;

use prometheus::{Gauge, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts};
use sluice_schema_registry::ClientError;

pub struct Ops {
    registry_requests: IntCounterVec,
    registry_latency: HistogramVec,
    /// Requests the bundled registry answered (server side).
    registry_served: IntCounterVec,
    registry_serve_time: HistogramVec,
    /// Schemas the registry refused as incompatible (HTTP 409).
    pub incompatible: IntCounter,
    /// Refused schemas registered anyway (`on_incompatible: register_anyway`).
    pub registered_anyway: IntCounter,
    /// Events waiting between source and sink, and the queue's capacity.
    pub queue_depth: IntGauge,
    pub queue_capacity: IntGauge,
    pub snapshot_running: IntGauge,
    pub snapshot_duration: Gauge,
    /// Records of the bundled registry's store that were skipped (unreadable, foreign).
    pub registry_skipped: IntGauge,
}

impl Ops {
    pub fn new(registry: &prometheus::Registry) -> Ops {
        let ops = Ops {
            registry_requests: IntCounterVec::new(
                Opts::new(
                    "sluice_registry_requests_total",
                    "Schema registry requests by operation and HTTP status (`error`: no answer)",
                ),
                &["op", "code"],
            )
            .expect("valid metric"),
            registry_latency: HistogramVec::new(
                HistogramOpts::new(
                    "sluice_registry_request_duration_seconds",
                    "Schema registry request time, retries included",
                )
                .buckets(vec![0.001, 0.005, 0.02, 0.1, 0.5, 2.0, 10.0]),
                &["op"],
            )
            .expect("valid metric"),
            registry_served: IntCounterVec::new(
                Opts::new(
                    "sluice_registry_server_requests_total",
                    "Requests the bundled schema registry answered, by route template, method and HTTP status",
                ),
                &["route", "method", "code"],
            )
            .expect("valid metric"),
            registry_serve_time: HistogramVec::new(
                HistogramOpts::new(
                    "sluice_registry_server_request_duration_seconds",
                    "Time the bundled schema registry took to answer, by route template",
                )
                .buckets(vec![0.0005, 0.002, 0.01, 0.05, 0.25, 1.0, 5.0]),
                &["route"],
            )
            .expect("valid metric"),
            incompatible: IntCounter::new(
                "sluice_schema_incompatible_total",
                "New schemas the registry refused as incompatible",
            )
            .expect("valid metric"),
            registered_anyway: IntCounter::new(
                "sluice_schema_registered_anyway_total",
                "Incompatible schemas registered anyway under compatibility NONE (on_incompatible: register_anyway)",
            )
            .expect("valid metric"),
            queue_depth: IntGauge::new(
                "sluice_queue_events",
                "Events decoded and waiting for the sink (bounded: at capacity the source stops reading)",
            )
            .expect("valid metric"),
            queue_capacity: IntGauge::new(
                "sluice_queue_capacity_events",
                "Capacity of the queue between source and sink",
            )
            .expect("valid metric"),
            snapshot_running: IntGauge::new(
                "sluice_snapshot_running",
                "1 while a snapshot is being read",
            )
            .expect("valid metric"),
            registry_skipped: IntGauge::new(
                "sluice_registry_skipped_records",
                "Records of the bundled registry's store skipped as unreadable, foreign or conflicting (logged)",
            )
            .expect("valid metric"),
            snapshot_duration: Gauge::new(
                "sluice_snapshot_duration_seconds",
                "Duration of the running snapshot, or of the last one",
            )
            .expect("valid metric"),
        };
        for c in [
            Box::new(ops.registry_requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(ops.registry_latency.clone()),
            Box::new(ops.registry_served.clone()),
            Box::new(ops.registry_serve_time.clone()),
            Box::new(ops.incompatible.clone()),
            Box::new(ops.registered_anyway.clone()),
            Box::new(ops.queue_depth.clone()),
            Box::new(ops.queue_capacity.clone()),
            Box::new(ops.snapshot_running.clone()),
            Box::new(ops.snapshot_duration.clone()),
            Box::new(ops.registry_skipped.clone()),
        ] {
            registry.register(c).expect("unique metric");
        }
        ops
    }

    /// The bundled registry's observer: counts and times each answered request.
    pub fn registry_observer(&self) -> sluice_schema_registry::Observer {
        let served = self.registry_served.clone();
        let time = self.registry_serve_time.clone();
        std::sync::Arc::new(move |route, method, code, took| {
            served
                .with_label_values(&[route, method, &code.to_string()])
                .inc();
            time.with_label_values(&[route]).observe(took.as_secs_f64());
        })
    }

    /// Counts one registry call by its outcome.
    pub fn registry_call<T>(&self, op: &str, r: &Result<T, ClientError>, took: Duration) {
        let code = match r {
            Ok(_) => "200".to_string(),
            Err(ClientError::Registry { status, .. }) => status.to_string(),
            Err(ClientError::BadResponse { status, .. }) => status.to_string(),
            Err(_) => "error".to_string(),
        };
        if code == "409" {
            self.incompatible.inc();
        }
        self.registry_requests.with_label_values(&[op, &code]).inc();
        self.registry_latency
            .with_label_values(&[op])
            .observe(took.as_secs_f64());
    }
}
