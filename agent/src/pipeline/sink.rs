//! The sink loop: events of one or more source transactions and the source position go
//! to Kafka in one transaction; a position is confirmed to the source only after that
//! transaction committed.
//!
//! Skipping: after a restart PostgreSQL resends from its confirmed position, which may
//! be older than what Kafka holds; every change the committed [`Position`] covers is
//! dropped here, so nothing is produced twice.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_core::{
    Blocked, EventReceiver, Lsn, Op, Position, Resume, Row, RowKey, RowKeyText, SnapshotMarker,
    SourceEvent, TableId, TableName,
};
use sluice_kafka::{offsets, KafkaConfig, SinkError, Topics, TxnProducer};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::encoder::Encoder;
use super::error::PipelineError;
use super::txn_meta::{TxnCounts, TxnMeta, MESSAGE_COLLECTION};
use crate::config::BatchLimits;
use crate::metrics::Metrics;

/// A batch commits at the first source-transaction end after this age even when events
/// keep waiting (or after the linger, if that is longer).
const MAX_BATCH_AGE: Duration = Duration::from_secs(1);
/// How long a stopping sink may spend committing its open transaction.
const STOP_COMMIT_TIMEOUT: Duration = Duration::from_secs(4);
/// How long a stopping sink waits for the source transaction in progress to end, so it
/// commits whole; past this, the open Kafka transaction is aborted (and replayed later).
const STOP_DRAIN_TIMEOUT: Duration = Duration::from_secs(3);

pub struct Sink {
    pub kafka: KafkaConfig,
    pub transactional_id: String,
    pub slot: String,
    pub topics: Topics,
    pub encoder: Encoder,
    pub metrics: Arc<Metrics>,
    pub tombstones: bool,
    /// The flat envelope has no shape for a truncate: those are not produced.
    pub skip_truncates: bool,
    /// Fill the envelope's `transaction` block (counts per source transaction).
    pub transaction_metadata: bool,
    pub txn_counts: TxnCounts,
    /// BEGIN/END records of `<prefix>.transaction` (with `transaction_metadata`).
    pub txn_meta: TxnMeta,
    pub limits: BatchLimits,
    /// The position Kafka held when the pipeline started.
    pub committed: Position,
    pub on_incompatible: OnIncompatible,
    /// Where this run started (blocked tables from earlier runs clear once past it).
    pub restart_end: Lsn,
    /// Tables whose stream stopped in this run.
    pub runtime_blocked: HashSet<TableName>,
}

/// What to do when the registry refuses a table's new schema.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnIncompatible {
    /// Stop that table's stream; other tables flow; the position confirmed to
    /// PostgreSQL stays before the refused change until the table flows again.
    BlockTable,
    /// Stop the whole pipeline.
    Fail,
    /// Drop that table's changes from here on (they are lost downstream) and go on.
    SkipTable,
}

/// The open Kafka transaction.
#[derive(Default)]
struct Open {
    events: usize,
    bytes: usize,
    /// Events and bytes of the current source transaction in this Kafka transaction.
    txn_events: usize,
    txn_bytes: usize,
    /// Commit time (µs) of the newest source transaction completed in this batch.
    newest_commit_us: Option<i64>,
    since: Option<Instant>,
    /// Events per (table, op), counted into metrics on commit.
    counts: HashMap<(TableId, Op), (prometheus::IntCounter, u64)>,
    tombstones: u64,
    /// The snapshot cursor's key when it is to be made from the row: the key positions
    /// and the last snapshot row written (its text is made only at commit).
    cursor_row: Option<(Arc<[usize]>, Row)>,
}

impl Sink {
    pub async fn run(
        mut self,
        mut rx: EventReceiver,
        acked: watch::Sender<Lsn>,
        stop: CancellationToken,
    ) -> Result<(), PipelineError> {
        let mut producer: Option<TxnProducer> = None;
        // What the next commit writes: advanced by every event handed over.
        let mut next = self.committed.clone();
        let mut open = Open::default();
        // A position to write even without events (empty transactions, heartbeats).
        let mut dirty_since: Option<Instant> = None;
        let mut in_source_txn = false;
        // Stopped while a commit was in flight: its outcome is unknown, so nothing more
        // is committed or confirmed (the next start replays from the committed position).
        let mut abandoned = false;
        // Stopping inside a source transaction: until when its end is awaited.
        let mut draining: Option<tokio::time::Instant> = None;
        // Under input that never pauses a batch still commits (at a source transaction's
        // end) once this old: well within the transaction timeout, which validation keeps
        // above the linger.
        let max_age = self.limits.linger.max(MAX_BATCH_AGE);
        let result: Result<(), PipelineError> = loop {
            // When the open batch (or a position without events) is due: `linger` after
            // it opened. Commits happen at source-transaction boundaries only: a source
            // transaction is split across Kafka transactions only when it alone exceeds
            // a limit.
            let due = (!in_source_txn)
                .then(|| open.since.or(dirty_since))
                .flatten()
                .map(|t| tokio::time::Instant::from_std(t + self.limits.linger));
            tokio::select! {
                biased;
                _ = stop.cancelled(), if draining.is_none() => {
                    if in_source_txn && open.since.is_some() {
                        draining = Some(tokio::time::Instant::now() + STOP_DRAIN_TIMEOUT);
                    } else {
                        break Ok(());
                    }
                }
                _ = tokio::time::sleep_until(draining.unwrap_or_else(tokio::time::Instant::now)), if draining.is_some() => break Ok(()),
                // Events already waiting go before a due commit: while the source has
                // more (catching up), a batch grows to its limits; once the input pauses,
                // it commits as soon as it is due.
                batch = rx.recv() => {
                    let Some(batch) = batch else { break Ok(()) };
                    // Events after a stop point in the batch are dropped: nothing after
                    // it is committed, and the next start replays them.
                    let mut stopped: Option<Result<(), PipelineError>> = None;
                    for ev in batch {
                        let r = self.on_event(ev, &mut producer, &mut open, &mut next, &mut in_source_txn, &mut dirty_since).await;
                        if let Err(e) = r { stopped = Some(Err(e)); break }
                        let full = if in_source_txn {
                            open.txn_events >= self.limits.max_events || open.txn_bytes >= self.limits.max_bytes
                        } else {
                            open.events >= self.limits.max_events || open.bytes >= self.limits.max_bytes
                                || open.since.is_some_and(|t| t.elapsed() >= max_age)
                        };
                        if full {
                            tokio::select! {
                                r = self.commit(&mut producer, &mut open, &mut next, &acked) => if let Err(e) = r { stopped = Some(Err(e)); break },
                                _ = stop.cancelled(), if draining.is_none() => { abandoned = true; stopped = Some(Ok(())); break }
                            }
                            dirty_since = None;
                        }
                        if draining.is_some() && !in_source_txn {
                            stopped = Some(Ok(()));
                            break;
                        }
                    }
                    if let Some(r) = stopped { break r }
                }
                _ = tokio::time::sleep_until(due.unwrap_or_else(tokio::time::Instant::now)), if due.is_some() => {
                    tokio::select! {
                        r = self.commit(&mut producer, &mut open, &mut next, &acked) => if let Err(e) = r { break Err(e) },
                        _ = stop.cancelled(), if draining.is_none() => { abandoned = true; break Ok(()) }
                    }
                    dirty_since = None;
                }
            }
        };
        match result {
            Ok(()) if abandoned => {
                tracing::warn!("stopped while a Kafka commit was in flight; its events are not confirmed and will be replayed if it did not commit");
                Ok(())
            }
            Ok(()) if in_source_txn && open.since.is_some() => {
                // A source transaction is committed whole (or in pieces only when it alone
                // exceeds a limit): its unfinished part is aborted, and the next start
                // replays it from the committed position.
                tracing::warn!("stopped inside a source transaction: the open Kafka transaction is aborted; the next start replays it");
                if let Some(p) = &producer {
                    let _ = tokio::time::timeout(Duration::from_secs(2), p.abort()).await;
                    self.metrics
                        .transactions
                        .with_label_values(&["aborted"])
                        .inc();
                }
                Ok(())
            }
            Ok(()) if open.since.is_some() || dirty_since.is_some() => {
                // Stopping: commit what is open, within a bound; if the broker does not
                // answer, nothing is confirmed and the next start replays it.
                let commit = self.commit(&mut producer, &mut open, &mut next, &acked);
                match tokio::time::timeout(STOP_COMMIT_TIMEOUT, commit).await {
                    Ok(r) => r,
                    Err(_) => {
                        tracing::warn!("the last Kafka transaction did not commit within {STOP_COMMIT_TIMEOUT:?}; its events are not confirmed and will be replayed");
                        Ok(())
                    }
                }
            }
            Err(e) => {
                if let Some(p) = &producer {
                    if open.since.is_some() {
                        let _ = tokio::time::timeout(Duration::from_secs(2), p.abort()).await;
                        self.metrics
                            .transactions
                            .with_label_values(&["aborted"])
                            .inc();
                    }
                }
                Err(e)
            }
            ok => ok,
        }
    }

    /// Creates the producer on first use: only once the source holds the slot, so an
    /// instance waiting for the slot never fences the one running. Initializing fences
    /// older producers; the position is then read again, since a fenced zombie may have
    /// committed after it was first read.
    async fn producer<'a>(
        &mut self,
        producer: &'a mut Option<TxnProducer>,
        next: &mut Position,
    ) -> Result<&'a TxnProducer, PipelineError> {
        if producer.is_none() {
            let p = TxnProducer::new(
                &self.kafka,
                &self.transactional_id,
                self.kafka.transaction_timeout / 2,
            )
            .await?;
            if let Some(latest) = offsets::load_existing(
                &self.kafka.bootstrap_servers,
                &self.kafka.security,
                &self.kafka.offsets_topic,
                &self.slot,
            )
            .await?
            {
                if latest != self.committed {
                    tracing::warn!(before = ?self.committed, now = ?latest, "the committed position moved while starting (a previous instance committed late); using the newer one");
                    if latest.end_lsn > next.end_lsn {
                        *next = latest.clone();
                    }
                    self.committed = latest;
                }
            }
            tracing::info!(transactional_id = %self.transactional_id, "Kafka transactional producer ready");
            *producer = Some(p);
        }
        Ok(producer.as_ref().expect("set above"))
    }

    #[allow(clippy::too_many_arguments)]
    async fn on_event(
        &mut self,
        ev: SourceEvent,
        producer: &mut Option<TxnProducer>,
        open: &mut Open,
        next: &mut Position,
        in_source_txn: &mut bool,
        dirty_since: &mut Option<Instant>,
    ) -> Result<(), PipelineError> {
        match ev {
            SourceEvent::Begin(info) => {
                self.txn_counts.reset();
                if self.transaction_metadata {
                    self.txn_meta.begin(&info);
                }
                *in_source_txn = true;
                open.txn_events = 0;
                open.txn_bytes = 0;
            }
            SourceEvent::Commit {
                end_lsn,
                commit_ts_us,
                ..
            } => {
                self.end_record(producer, open, next).await?;
                *in_source_txn = false;
                if end_lsn > next.end_lsn {
                    next.end_lsn = end_lsn;
                }
                // A table blocked in an earlier run that produces again has caught up
                // once the stream passes where this run started.
                if end_lsn > self.restart_end && !next.blocked.is_empty() {
                    let runtime = &self.runtime_blocked;
                    let before = next.blocked.len();
                    next.blocked.retain(|b| runtime.contains(&b.table));
                    if next.blocked.len() != before {
                        tracing::info!("tables blocked in an earlier run caught up and flow again");
                    }
                }
                next.resume = None;
                next.snapshot_pending = false;
                // Snapshot pieces matter until the stream is past the newest one's point.
                if next
                    .snapshot
                    .as_ref()
                    .is_some_and(|s| end_lsn >= s.last_lsn())
                {
                    next.snapshot = None;
                }
                dirty_since.get_or_insert_with(Instant::now);
                open.newest_commit_us = Some(commit_ts_us);
            }
            SourceEvent::SnapshotPiece { piece, tables } => {
                // A snapshot's first piece (it starts at the first table's start) begins
                // new progress: nothing of an earlier snapshot (its pieces, its key order)
                // applies to it.
                if piece.after.is_none() {
                    next.snapshot = None;
                }
                let progress = next.snapshot.get_or_insert_with(Default::default);
                progress.tables = tables;
                if !progress.pieces.contains(&piece) {
                    progress.pieces.push(piece);
                }
                next.snapshot_pending = true;
            }
            SourceEvent::Heartbeat(lsn) => {
                if !*in_source_txn && lsn > next.end_lsn {
                    next.end_lsn = lsn;
                    dirty_since.get_or_insert_with(Instant::now);
                }
            }
            SourceEvent::Schema { table, source } => {
                if self
                    .committed
                    .covers(&table.name, source.commit_lsn, source.ordinal)
                    || self.runtime_blocked.contains(&table.name)
                {
                    return Ok(());
                }
                if let Err(e) = self.encoder.prepare(&table).await {
                    return self.refused(&table.name, &source, e, next);
                }
            }
            SourceEvent::Message(m) => {
                let src = &m.source;
                let order = (self.transaction_metadata && m.transactional)
                    .then(|| self.txn_counts.next(MESSAGE_COLLECTION, None));
                let name = TableName::new("", "message");
                if self.committed.covers(&name, src.commit_lsn, src.ordinal) {
                    self.metrics.skipped.inc();
                    return Ok(());
                }
                let topic = self.encoder.encode_message(&m, now_ms(), order).await?;
                self.topics.ensure(&topic).await?;
                let Some(p) = self.ready(producer, open, next, &name, src).await? else {
                    return Ok(());
                };
                p.send(&topic, Some(&self.encoder.key), Some(&self.encoder.value))
                    .await?;
                let size = self.encoder.key.len() + self.encoder.value.len();
                open.bytes += size;
                open.events += 1;
                open.txn_bytes += size;
                open.txn_events += 1;
                let metrics = &self.metrics;
                open.counts
                    .entry((MESSAGE_COLLECTION, Op::Message))
                    .or_insert_with(|| (metrics.events.with_label_values(&["message", "m"]), 0))
                    .1 += 1;
                next.resume = Some(Resume {
                    commit_lsn: src.commit_lsn,
                    ordinal: src.ordinal,
                });
            }
            SourceEvent::Change(mut change) => {
                let src = &change.source;
                // Changes a policy drops for good (a skipped table, a truncate the flat
                // envelope cannot carry) are not events of the transaction: END counts
                // what consumers get. A blocked table's changes are only delayed (they
                // come when it catches up, in a replay that counts them again): counted.
                let dropped = (self.on_incompatible == OnIncompatible::SkipTable
                    && self.runtime_blocked.contains(&change.table.name))
                    || (self.skip_truncates && change.op == Op::Truncate);
                let order = (self.transaction_metadata
                    && src.snapshot == SnapshotMarker::False
                    && !dropped)
                    .then(|| {
                        self.txn_counts
                            .next(change.table.id, Some(&change.table.name))
                    });
                if self
                    .committed
                    .covers(&change.table.name, src.commit_lsn, src.ordinal)
                {
                    self.metrics.skipped.inc();
                    return Ok(());
                }
                if self.runtime_blocked.contains(&change.table.name) {
                    self.metrics.blocked_changes.inc();
                    return Ok(());
                }
                if self.skip_truncates && change.op == Op::Truncate {
                    tracing::warn!(table = %change.table.name, "truncate not produced: the flat envelope has no event for it");
                    self.metrics.truncates_dropped.inc();
                    return Ok(());
                }
                let topic = match self.encoder.encode(&change, now_ms(), order).await {
                    Ok(t) => t,
                    Err(e) => {
                        if order.is_some() && self.on_incompatible == OnIncompatible::SkipTable {
                            self.txn_counts.undo(change.table.id);
                        }
                        return self.refused(&change.table.name, src, e, next);
                    }
                };
                self.topics.ensure(&topic).await?;
                let Some(p) = self
                    .ready(producer, open, next, &change.table.name, src)
                    .await?
                else {
                    return Ok(());
                };
                let key = (!self.encoder.key.is_empty()).then_some(self.encoder.key.as_slice());
                p.send(&topic, key, Some(&self.encoder.value)).await?;
                let size = self.encoder.key.len() + self.encoder.value.len();
                open.bytes += size;
                open.events += 1;
                open.txn_bytes += size;
                open.txn_events += 1;
                // A tombstone compacts a key away: none for a keyless table.
                if change.op == Op::Delete && self.tombstones && key.is_some() {
                    p.send(&topic, key, None).await?;
                    open.tombstones += 1;
                }
                let entry = open
                    .counts
                    .entry((change.table.id, change.op))
                    .or_insert_with(|| {
                        let c = self
                            .metrics
                            .events
                            .with_label_values(&[&change.table.name.to_string(), change.op.code()]);
                        (c, 0)
                    });
                entry.1 += 1;
                next.resume = Some(Resume {
                    commit_lsn: src.commit_lsn,
                    ordinal: src.ordinal,
                });
                next.snapshot_pending = src.snapshot == SnapshotMarker::True;
                if src.snapshot != SnapshotMarker::False {
                    if let Some(progress) = next.snapshot.as_mut() {
                        let key = match &src.row_key {
                            Some(RowKeyText::Columns(cols)) => {
                                // Written: the row is not needed any more but for its key.
                                open.cursor_row =
                                    Some((cols.clone(), change.after.take().unwrap_or_default()));
                                None
                            }
                            Some(RowKeyText::Text(t)) => {
                                open.cursor_row = None;
                                Some(t.clone())
                            }
                            None => {
                                open.cursor_row = None;
                                None
                            }
                        };
                        match &mut progress.cursor {
                            Some(c) if c.table == change.table.name => c.key = key,
                            c => {
                                *c = Some(RowKey {
                                    table: change.table.name.clone(),
                                    key,
                                })
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// The producer, ready for an event at (`table`, `src`): a Kafka transaction open and
    /// the source transaction's BEGIN record written. `None` when the committed position
    /// (which the producer's start may have raised) covers the event.
    async fn ready<'a>(
        &mut self,
        producer: &'a mut Option<TxnProducer>,
        open: &mut Open,
        next: &mut Position,
        table: &TableName,
        src: &sluice_core::SourceInfo,
    ) -> Result<Option<&'a TxnProducer>, PipelineError> {
        let p = self.producer(producer, next).await?;
        if self.committed.covers(table, src.commit_lsn, src.ordinal) {
            self.metrics.skipped.inc();
            return Ok(None);
        }
        if open.since.is_none() {
            p.begin()?;
            open.since = Some(Instant::now());
        }
        self.begin_record(p, open).await?;
        Ok(Some(p))
    }

    /// Debezium's BEGIN record, right before the first produced event of a source
    /// transaction (with `transaction_metadata`).
    async fn begin_record(
        &mut self,
        p: &TxnProducer,
        open: &mut Open,
    ) -> Result<(), PipelineError> {
        let Some((id, ts_ms)) = self.txn_meta.begin_due(&self.committed) else {
            return Ok(());
        };
        let (topic, key, value) = self.encoder.encode_transaction(&id, None, ts_ms).await?;
        self.topics.ensure_single(&topic).await?;
        p.send(&topic, Some(&key), Some(&value)).await?;
        open.events += 1;
        open.bytes += key.len() + value.len();
        Ok(())
    }

    /// Debezium's END record at the source commit, in the Kafka transaction that
    /// commits the source transaction's end.
    async fn end_record(
        &mut self,
        producer: &mut Option<TxnProducer>,
        open: &mut Open,
        next: &mut Position,
    ) -> Result<(), PipelineError> {
        let Some(end) = self.txn_meta.end_due(&self.committed, &self.txn_counts) else {
            return Ok(());
        };
        let (topic, key, value) = self
            .encoder
            .encode_transaction(&end.id, Some((end.total, &end.collections)), end.ts_ms)
            .await?;
        self.topics.ensure_single(&topic).await?;
        let p = self.producer(producer, next).await?;
        // The producer's start may have raised the committed position past it.
        if end.commit_lsn < self.committed.end_lsn {
            return Ok(());
        }
        if open.since.is_none() {
            p.begin()?;
            open.since = Some(Instant::now());
        }
        p.send(&topic, Some(&key), Some(&value)).await?;
        open.events += 1;
        open.bytes += key.len() + value.len();
        Ok(())
    }

    /// The registry refused a table's new schema (or another encoding error `e`): by
    /// policy, stop that table here (other tables flow), drop its changes, or fail.
    fn refused(
        &mut self,
        table: &TableName,
        src: &sluice_core::SourceInfo,
        e: PipelineError,
        next: &mut Position,
    ) -> Result<(), PipelineError> {
        if !e.is_incompatible_schema() || self.on_incompatible == OnIncompatible::Fail {
            return Err(e);
        }
        tracing::error!(
            table = %table,
            error = %e,
            policy = ?self.on_incompatible,
            "the registry refused the table's new schema: its changes stop here while other tables flow. Ways out: make the change compatible, or change the subject's compatibility (PUT /config/<subject>), then restart; or set schema_registry.on_incompatible"
        );
        self.metrics.block_table(&table.to_string(), &e.to_string());
        if self.on_incompatible == OnIncompatible::BlockTable && !next.is_blocked(table) {
            next.blocked.push(Blocked {
                table: table.clone(),
                commit_lsn: src.commit_lsn,
                ordinal: src.ordinal,
            });
        }
        self.runtime_blocked.insert(table.clone());
        self.metrics.blocked_changes.inc();
        Ok(())
    }

    /// Writes the position and commits. On success the position's end is confirmed to
    /// the source.
    async fn commit(
        &mut self,
        producer: &mut Option<TxnProducer>,
        open: &mut Open,
        next: &mut Position,
        acked: &watch::Sender<Lsn>,
    ) -> Result<(), PipelineError> {
        if open.since.is_none() && *next == self.committed {
            return Ok(());
        }
        // Creating the producer may raise `next` (a late commit of a previous instance).
        let p = self.producer(producer, next).await?;
        let started = open.since.unwrap_or_else(Instant::now);
        if open.since.is_none() {
            p.begin()?;
        }
        // The cursor's key, when it is to be made from the last snapshot row written.
        if let Some((cols, row)) = open.cursor_row.take() {
            if let Some(c) = next.snapshot.as_mut().and_then(|s| s.cursor.as_mut()) {
                c.key = Some(RowKeyText::Columns(cols).resolve(Some(&row)));
            }
        }
        let value = offsets::encode(next);
        // Partition 0, whatever the topic's partition count: that is where a restart
        // reads the position.
        p.send_to(
            &self.kafka.offsets_topic,
            Some(offsets::PARTITION),
            Some(self.slot.as_bytes()),
            Some(&value),
        )
        .await?;
        let commit = p.commit().await;
        if let Err(e) = commit {
            self.metrics
                .transactions
                .with_label_values(&[if matches!(&e, SinkError::Txn(f) if f.fenced()) {
                    "fenced"
                } else {
                    "failed"
                }])
                .inc();
            return Err(e.into());
        }
        self.metrics
            .transactions
            .with_label_values(&["committed"])
            .inc();
        self.metrics
            .txn_duration
            .observe(started.elapsed().as_secs_f64());
        self.metrics.txn_events.observe(open.events as f64);
        for (_, (counter, n)) in open.counts.drain() {
            counter.inc_by(n);
        }
        self.metrics.tombstones.inc_by(open.tombstones);
        // Source lag: from the newest committed source transaction's commit to now. A
        // commit with no source transaction (heartbeat) means nothing is pending.
        match open.newest_commit_us {
            Some(ts) => {
                self.metrics.last_source_ts.set(ts as f64 / 1e6);
                let lag = (now_ms() as f64 / 1e3 - ts as f64 / 1e6).max(0.0);
                self.metrics.source_lag.set(lag);
            }
            None => self.metrics.source_lag.set(0.0),
        }
        *open = Open::default();
        let confirmable = next.confirmable();
        self.committed = next.clone();
        acked.send_if_modified(|cur| {
            let adv = confirmable > *cur;
            if adv {
                *cur = confirmable;
            }
            adv
        });
        Ok(())
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
