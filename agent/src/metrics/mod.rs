//! Prometheus metrics. Base units, `_total` counters, bounded labels (never LSNs or keys).

mod ops;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry, TextEncoder,
};
use sluice_postgres::SourceStats;

/// Statuses pg_replication_slots.wal_status can take.
const WAL_STATUSES: [&str; 4] = ["reserved", "extended", "unreserved", "lost"];

pub struct Metrics {
    registry: Registry,
    /// Events produced to Kafka and acknowledged, by table and op.
    pub events: IntCounterVec,
    /// Tombstones produced after deletes.
    pub tombstones: IntCounter,
    /// The last LSN confirmed to PostgreSQL as flushed (as a number).
    pub confirmed_lsn: Gauge,
    /// 1 while the replication connection is open.
    pub source_connected: IntGauge,
    /// 1 while changes are streaming and the sink is producing.
    pub ready: IntGauge,
    /// Changes dropped because the committed position already covers them (replays).
    pub skipped: IntCounter,
    /// Truncates not produced (the flat envelope has no event for them).
    pub truncates_dropped: IntCounter,
    /// Kafka transactions by result (committed, aborted, failed, fenced).
    pub transactions: IntCounterVec,
    pub txn_duration: Histogram,
    pub txn_events: Histogram,
    /// Commit time of the last source transaction produced, in Unix seconds.
    pub last_source_ts: Gauge,
    /// Seconds from the newest source commit in the last Kafka transaction to its commit.
    pub source_lag: Gauge,
    /// Pipeline errors, by class (transient, permanent).
    pub errors: IntCounterVec,
    /// Schemas registered (or found) in the registry, by subject kind (key, value).
    pub schemas: IntCounterVec,
    /// Shared with the PostgreSQL source; copied into the metrics below at scrape time.
    pub source: Arc<SourceStats>,
    received_bytes: IntCounter,
    decode_errors: IntCounter,
    toast_reselects: IntCounter,
    toast_unavailable: IntCounter,
    retained_wal: IntGauge,
    flush_lag: IntGauge,
    spill_bytes: IntGauge,
    spill_txns: IntGauge,
    decoded_bytes: IntGauge,
    stream_bytes: IntGauge,
    stream_txns: IntGauge,
    binary_tuples: IntGauge,
    streaming: IntGauge,
    staged_bytes: IntGauge,
    staged_txns: IntGauge,
    streamed_committed: IntCounter,
    streamed_aborted: IntCounter,
    snapshot_table_rows: IntGaugeVec,
    snapshot_table_estimate: IntGaugeVec,
    wal_status: IntGaugeVec,
    snapshot_rows: IntCounter,
    snapshot_overlap_skipped: IntCounter,
    snapshot_tables_remaining: IntGauge,
    special_numeric: IntCounter,
    fallback_values: IntCounter,
    clamped_values: IntCounter,
    render_lock: Mutex<()>,
    /// Changes not produced because their table's stream is stopped.
    pub blocked_changes: IntCounter,
    blocked_gauge: IntGaugeVec,
    /// Tables whose stream is stopped, with the reason (for /readyz).
    pub blocked: Mutex<Vec<(String, String)>>,
    /// Registry requests, the source→sink queue, the snapshot's run.
    pub ops: ops::Ops,
    /// `sluice registry`: readiness means the registry serves.
    pub registry_only: std::sync::atomic::AtomicBool,
}

fn counter(name: &str, help: &str) -> IntCounter {
    IntCounter::new(name, help).expect("valid metric")
}

fn gauge(name: &str, help: &str) -> IntGauge {
    IntGauge::new(name, help).expect("valid metric")
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let events = IntCounterVec::new(
            Opts::new(
                "sluice_events_total",
                "Change events produced to Kafka and acknowledged by the broker",
            ),
            &["table", "op"],
        )
        .expect("valid metric");
        let tombstones = IntCounter::new(
            "sluice_tombstones_total",
            "Tombstones produced after deletes",
        )
        .expect("valid metric");
        let confirmed_lsn = Gauge::new(
            "sluice_source_confirmed_flush_lsn",
            "Last LSN confirmed to PostgreSQL as flushed (everything up to it is acknowledged by Kafka)",
        )
        .expect("valid metric");
        let source_connected = IntGauge::new(
            "sluice_source_connected",
            "1 while the replication connection is open",
        )
        .expect("valid metric");
        let ready = IntGauge::new("sluice_ready", "1 while replicating and producing")
            .expect("valid metric");
        let skipped = counter(
            "sluice_replayed_changes_skipped_total",
            "Changes PostgreSQL resent after a restart that Kafka already holds (dropped, not produced twice)",
        );
        let truncates_dropped = counter(
            "sluice_truncates_not_produced_total",
            "Truncates not produced because the flat envelope has no event for them",
        );
        let transactions = IntCounterVec::new(
            Opts::new(
                "sluice_kafka_transactions_total",
                "Kafka transactions by result",
            ),
            &["result"],
        )
        .expect("valid metric");
        for r in ["committed", "aborted", "failed", "fenced"] {
            transactions.with_label_values(&[r]);
        }
        let txn_duration = Histogram::with_opts(
            HistogramOpts::new(
                "sluice_kafka_transaction_duration_seconds",
                "Time from a Kafka transaction's first event to its commit",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
        )
        .expect("valid metric");
        let txn_events = Histogram::with_opts(
            HistogramOpts::new(
                "sluice_kafka_transaction_events",
                "Events per committed Kafka transaction",
            )
            .buckets(vec![0.0, 1.0, 10.0, 100.0, 1000.0, 10000.0, 100000.0]),
        )
        .expect("valid metric");
        let source_lag = Gauge::new(
            "sluice_source_lag_seconds",
            "Time from a source transaction's commit in PostgreSQL to its commit in Kafka (last batch; 0 when caught up)",
        )
        .expect("valid metric");
        let last_source_ts = Gauge::new(
            "sluice_last_event_source_timestamp_seconds",
            "Commit time of the last source transaction produced (Unix seconds)",
        )
        .expect("valid metric");
        let errors = IntCounterVec::new(
            Opts::new("sluice_errors_total", "Pipeline errors by class"),
            &["class"],
        )
        .expect("valid metric");
        let schemas = IntCounterVec::new(
            Opts::new(
                "sluice_schema_registrations_total",
                "Schemas registered or found in the registry",
            ),
            &["kind"],
        )
        .expect("valid metric");
        let build_info = IntGaugeVec::new(
            Opts::new("sluice_build_info", "Build information"),
            &["version"],
        )
        .expect("valid metric");
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        let received_bytes = counter(
            "sluice_source_received_bytes_total",
            "Replication stream bytes received from PostgreSQL",
        );
        let decode_errors = counter(
            "sluice_source_decode_errors_total",
            "pgoutput messages that could not be decoded",
        );
        let toast_reselects = counter(
            "sluice_toast_reselects_total",
            "Unchanged TOASTed values re-read from the table by key",
        );
        let toast_unavailable = counter(
            "sluice_toast_unavailable_total",
            "Unchanged TOASTed values that could not be re-read (row gone) and were emitted as the placeholder",
        );
        let retained_wal = gauge(
            "sluice_slot_retained_wal_bytes",
            "WAL the replication slot holds back (current WAL LSN - restart_lsn)",
        );
        let flush_lag = gauge(
            "sluice_slot_flush_lag_bytes",
            "current WAL LSN - the slot's confirmed_flush_lsn",
        );
        let spill_bytes = gauge(
            "sluice_slot_spill_bytes",
            "Bytes PostgreSQL's decoding spilled to disk for the slot (pg_stat_replication_slots.spill_bytes, cumulative since its statistics reset): large transactions wait on disk, not in memory",
        );
        let spill_txns = gauge(
            "sluice_slot_spill_transactions",
            "Transactions spilled to disk for the slot (pg_stat_replication_slots.spill_txns, cumulative)",
        );
        let decoded_bytes = gauge(
            "sluice_slot_decoded_bytes",
            "Bytes of transactions decoded for the slot (pg_stat_replication_slots.total_bytes, cumulative)",
        );
        let stream_bytes = gauge(
            "sluice_slot_stream_bytes",
            "Bytes of in-progress transactions PostgreSQL streamed for the slot (pg_stat_replication_slots.stream_bytes, cumulative)",
        );
        let stream_txns = gauge(
            "sluice_slot_stream_transactions",
            "In-progress transactions PostgreSQL streamed for the slot (pg_stat_replication_slots.stream_txns, cumulative)",
        );
        let streaming = gauge(
            "sluice_source_streaming",
            "1 while the replication stream receives in-progress transactions (staged on local disk until they commit), 0 when PostgreSQL sends them after commit",
        );
        let staged_bytes = gauge(
            "sluice_source_staged_bytes",
            "Bytes of streamed transactions still running, staged in source.postgres.spill_dir now",
        );
        let staged_txns = gauge(
            "sluice_source_staged_transactions",
            "Streamed transactions still running, staged in source.postgres.spill_dir now",
        );
        let streamed_committed = counter(
            "sluice_source_streamed_commits_total",
            "Streamed transactions that committed and were passed on from their staging file",
        );
        let streamed_aborted = counter(
            "sluice_source_streamed_aborts_total",
            "Streamed transactions that aborted: their staged changes were dropped, none reached Kafka",
        );
        let binary_tuples = gauge(
            "sluice_source_binary_tuples",
            "1 while the replication stream carries binary tuples (every captured column has a binary reader), 0 for text",
        );
        let per_table = |name: &str, help: &str| {
            IntGaugeVec::new(Opts::new(name, help), &["table"]).expect("valid metric")
        };
        let snapshot_table_rows = per_table(
            "sluice_snapshot_table_rows",
            "Rows the running (or last) snapshot read from the table",
        );
        let snapshot_table_estimate = per_table(
            "sluice_snapshot_table_rows_estimate",
            "The table's row estimate (pg_class.reltuples) when its snapshot started; absent before its first ANALYZE",
        );
        let wal_status = IntGaugeVec::new(
            Opts::new(
                "sluice_slot_wal_status",
                "1 for the slot's current wal_status (lost: the slot was invalidated)",
            ),
            &["status"],
        )
        .expect("valid metric");
        let special_numeric = counter(
            "sluice_special_numeric_values_total",
            "numeric NaN/Infinity values emitted as null (nullable columns): Avro decimals cannot hold them",
        );
        let fallback_values = counter(
            "sluice_fallback_values_total",
            "Values emitted in their text form because their type has no faithful mapping",
        );
        let clamped_values = counter(
            "sluice_clamped_values_total",
            "Temporal values beyond the event format's range, clamped to its limit",
        );
        let blocked_changes = counter(
            "sluice_blocked_changes_total",
            "Changes not produced because their table's new schema was refused by the registry",
        );
        let blocked_gauge = IntGaugeVec::new(
            Opts::new(
                "sluice_table_blocked",
                "1 while a table's stream is stopped by a refused schema",
            ),
            &["table"],
        )
        .expect("valid metric");
        let snapshot_rows = counter(
            "sluice_snapshot_rows_total",
            "Rows read by the initial snapshot",
        );
        let snapshot_overlap_skipped = counter(
            "sluice_snapshot_overlap_skipped_total",
            "Streamed changes not produced because a resumed snapshot's later piece already holds them",
        );
        let snapshot_tables_remaining = gauge(
            "sluice_snapshot_tables_remaining",
            "Tables the running snapshot has still to read",
        );
        for c in [
            Box::new(events.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(tombstones.clone()),
            Box::new(confirmed_lsn.clone()),
            Box::new(source_connected.clone()),
            Box::new(ready.clone()),
            Box::new(skipped.clone()),
            Box::new(truncates_dropped.clone()),
            Box::new(transactions.clone()),
            Box::new(txn_duration.clone()),
            Box::new(txn_events.clone()),
            Box::new(last_source_ts.clone()),
            Box::new(source_lag.clone()),
            Box::new(errors.clone()),
            Box::new(schemas.clone()),
            Box::new(build_info.clone()),
            Box::new(received_bytes.clone()),
            Box::new(decode_errors.clone()),
            Box::new(toast_reselects.clone()),
            Box::new(toast_unavailable.clone()),
            Box::new(retained_wal.clone()),
            Box::new(flush_lag.clone()),
            Box::new(spill_bytes.clone()),
            Box::new(spill_txns.clone()),
            Box::new(decoded_bytes.clone()),
            Box::new(binary_tuples.clone()),
            Box::new(stream_bytes.clone()),
            Box::new(stream_txns.clone()),
            Box::new(streaming.clone()),
            Box::new(staged_bytes.clone()),
            Box::new(staged_txns.clone()),
            Box::new(streamed_committed.clone()),
            Box::new(streamed_aborted.clone()),
            Box::new(snapshot_table_rows.clone()),
            Box::new(snapshot_table_estimate.clone()),
            Box::new(wal_status.clone()),
            Box::new(snapshot_rows.clone()),
            Box::new(snapshot_overlap_skipped.clone()),
            Box::new(blocked_changes.clone()),
            Box::new(blocked_gauge.clone()),
            Box::new(special_numeric.clone()),
            Box::new(fallback_values.clone()),
            Box::new(clamped_values.clone()),
            Box::new(snapshot_tables_remaining.clone()),
        ] {
            registry.register(c).expect("unique metric");
        }
        for class in ["transient", "permanent"] {
            errors.with_label_values(&[class]);
        }
        let ops = ops::Ops::new(&registry);
        Metrics {
            registry,
            events,
            tombstones,
            confirmed_lsn,
            source_connected,
            ready,
            skipped,
            truncates_dropped,
            transactions,
            txn_duration,
            txn_events,
            last_source_ts,
            source_lag,
            errors,
            schemas,
            source: Arc::new(SourceStats::default()),
            received_bytes,
            decode_errors,
            toast_reselects,
            toast_unavailable,
            retained_wal,
            flush_lag,
            spill_bytes,
            spill_txns,
            decoded_bytes,
            binary_tuples,
            stream_bytes,
            stream_txns,
            streaming,
            staged_bytes,
            staged_txns,
            streamed_committed,
            streamed_aborted,
            snapshot_table_rows,
            snapshot_table_estimate,
            wal_status,
            snapshot_rows,
            snapshot_overlap_skipped,
            snapshot_tables_remaining,
            special_numeric,
            fallback_values,
            clamped_values,
            render_lock: Mutex::new(()),
            blocked_changes,
            blocked_gauge,
            blocked: Mutex::new(Vec::new()),
            ops,
            registry_only: Default::default(),
        }
    }

    /// Records that `table`'s stream stopped (metric, /readyz).
    pub fn block_table(&self, table: &str, reason: &str) {
        self.blocked_gauge.with_label_values(&[table]).set(1);
        let mut b = self.blocked.lock().unwrap_or_else(|e| e.into_inner());
        if !b.iter().any(|(t, _)| t == table) {
            b.push((table.to_string(), reason.to_string()));
        }
    }

    /// Copies the source's atomics into the registered metrics.
    fn sync_source(&self) {
        let s = &self.source;
        let (started, finished) = (
            s.snapshot_started_us.load(Ordering::Relaxed),
            s.snapshot_finished_us.load(Ordering::Relaxed),
        );
        if started > 0 {
            let running = finished < started;
            let end = if running {
                sluice_postgres::snapshot::unix_micros_now()
            } else {
                finished
            };
            self.ops.snapshot_running.set(i64::from(running));
            self.ops
                .snapshot_duration
                .set((end - started).max(0) as f64 / 1e6);
        }
        let sync = |c: &IntCounter, v: u64| {
            let cur = c.get();
            if v > cur {
                c.inc_by(v - cur);
            }
        };
        sync(
            &self.received_bytes,
            s.bytes_received.load(Ordering::Relaxed),
        );
        sync(&self.decode_errors, s.decode_errors.load(Ordering::Relaxed));
        sync(
            &self.toast_reselects,
            s.toast_reselects.load(Ordering::Relaxed),
        );
        sync(
            &self.toast_unavailable,
            s.toast_unavailable.load(Ordering::Relaxed),
        );
        sync(&self.snapshot_rows, s.snapshot_rows.load(Ordering::Relaxed));
        sync(
            &self.snapshot_overlap_skipped,
            s.snapshot_overlap_skipped.load(Ordering::Relaxed),
        );
        sync(
            &self.special_numeric,
            s.special_numeric_values.load(Ordering::Relaxed),
        );
        sync(
            &self.fallback_values,
            s.fallback_values.load(Ordering::Relaxed),
        );
        sync(
            &self.clamped_values,
            s.clamped_values.load(Ordering::Relaxed),
        );
        for (gauge, value) in [
            (
                &self.snapshot_tables_remaining,
                &s.snapshot_tables_remaining,
            ),
            (&self.retained_wal, &s.retained_wal_bytes),
            (&self.flush_lag, &s.flush_lag_bytes),
            (&self.spill_bytes, &s.spill_bytes),
            (&self.spill_txns, &s.spill_txns),
            (&self.decoded_bytes, &s.decoded_bytes),
            (&self.stream_bytes, &s.stream_bytes),
            (&self.stream_txns, &s.stream_txns),
            (&self.staged_bytes, &s.spill_local_bytes),
            (&self.staged_txns, &s.streamed_open),
        ] {
            gauge.set(value.load(Ordering::Relaxed) as i64);
        }
        self.binary_tuples
            .set(i64::from(s.binary_mode.load(Ordering::Relaxed)));
        self.streaming
            .set(i64::from(s.streaming_mode.load(Ordering::Relaxed)));
        sync(
            &self.streamed_committed,
            s.streamed_txns.load(Ordering::Relaxed),
        );
        sync(
            &self.streamed_aborted,
            s.streamed_aborts.load(Ordering::Relaxed),
        );
        let tables = s
            .snapshot_tables
            .lock()
            .map(|g| g.clone())
            .unwrap_or_default();
        for p in tables {
            let label = p.table.to_string();
            self.snapshot_table_rows
                .with_label_values(&[label.as_str()])
                .set(p.rows as i64);
            if let Some(e) = p.estimate {
                self.snapshot_table_estimate
                    .with_label_values(&[label.as_str()])
                    .set(e as i64);
            }
        }
        let confirmed = s.confirmed_lsn.load(Ordering::Relaxed);
        if confirmed > 0 {
            self.confirmed_lsn.set(confirmed as f64);
        }
        let status = s.wal_status.lock().map(|g| g.clone()).unwrap_or_default();
        if !status.is_empty() {
            for st in WAL_STATUSES {
                self.wal_status
                    .with_label_values(&[st])
                    .set((st == status) as i64);
            }
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let _guard = self.render_lock.lock().unwrap_or_else(|e| e.into_inner());
        self.sync_source();
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn renders_counters_with_labels() {
        let m = super::Metrics::new();
        m.events
            .with_label_values(&["public.orders", "c"])
            .inc_by(3);
        let text = m.render();
        assert!(
            text.contains("sluice_events_total{op=\"c\",table=\"public.orders\"} 3"),
            "{text}"
        );
        assert!(text.contains("sluice_build_info{version="), "{text}");
    }
}
