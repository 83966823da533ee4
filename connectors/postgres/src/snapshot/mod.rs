//! The snapshot: every configured table read inside a database snapshot exported by a
//! replication slot, so snapshot rows and streamed changes meet at exactly the slot's
//! consistent point.
//!
//! Rows are read in key order and every row carries its key, so the progress committed
//! with the rows says where the snapshot stopped. A crash mid-snapshot resumes after the
//! last committed row in a new snapshot (a new *piece*, read at a later point); the stream
//! then skips changes already contained in a piece's rows ([`crate::stream::filter`]).
//!
//! Several connections read at once, each inside the same exported snapshot: large
//! tables are split into key ranges ([`split`]), and the ranges (of one table, then the
//! next) are read in parallel while their rows are emitted in order, range after range,
//! so the progress stays one position in (table, key) order. A range read ahead waits
//! once its buffer (about one range) is full: memory is bounded by the number of
//! connections times the range size.

mod progress;
mod read;
mod reader;
mod split;

use std::collections::VecDeque;
use std::sync::Arc;

use sluice_core::{
    EventSender, KeyOrder, Lsn, Piece, RowKey, SnapshotMarker, SourceEvent, SourceInfo, TableName,
    TxnInfo, MAX_EVENT_BATCH,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::batch::BatchSender;
use crate::conn::ConnectParams;
use crate::error::PgError;
use crate::text::Notes;
use read::{Range, RangeBatch, TablePlan};
use reader::Reader;

/// Rows between updates of the snapshot's row counter.
const COUNT_EVERY: u64 = 5_000;

/// What one snapshot piece reads, and where its rows go in the snapshot transaction.
pub struct Plan<'a> {
    /// The exported snapshot to read in.
    pub snapshot_name: &'a str,
    /// The snapshot transaction's commit LSN: the first piece's point (the main slot's
    /// consistent point). Every piece's rows belong to this one source transaction.
    pub commit_lsn: Lsn,
    /// Ordinal of this piece's first row in the snapshot transaction.
    pub first_ordinal: u64,
    /// The point this piece reads at.
    pub piece_lsn: Lsn,
    /// Every table of the snapshot, in reading order.
    pub tables: &'a [TableName],
    /// The publication the stream reads: the snapshot reads the columns and rows it sends.
    pub publication: &'a str,
    /// Continue after this row; `None`: from the first table's start.
    pub after: Option<RowKey>,
    /// See [`crate::SourceConfig::keep_special_numerics`].
    pub keep_special_numerics: bool,
    /// Connections reading at once (at least 1).
    pub parallelism: usize,
    /// Rows per key range of a large table (0: never split).
    pub chunk_rows: u64,
    /// The key order rows are read in (a resumed snapshot keeps its own).
    pub key_order: KeyOrder,
}

/// One range to read, in emission order.
struct Chunk {
    table: usize,
    range: Range,
    first_of_table: bool,
    last_of_table: bool,
}

/// A range being read: its rows arrive on `rows`; the task gives back the connection.
struct InFlight {
    chunk: usize,
    rows: mpsc::Receiver<RangeBatch>,
    task: JoinHandle<Result<(Reader, Notes), PgError>>,
}

/// The ranges being read; their tasks stop with it (an error, or the sink gone).
#[derive(Default)]
struct Readers(VecDeque<InFlight>);

impl Drop for Readers {
    fn drop(&mut self) {
        for r in &self.0 {
            r.task.abort();
        }
    }
}

/// Reads the plan's rows and emits them as one source transaction at `commit_lsn`, with
/// op `r`, preceded by the piece's description. Returns the number of rows read.
pub async fn run(
    cfg: &tokio_postgres::Config,
    tls: &crate::tls::TlsSettings,
    plan: Plan<'_>,
    tx: &EventSender,
    stats: &crate::SourceStats,
) -> Result<u64, PgError> {
    use std::sync::atomic::Ordering;
    // Tables before the resume point's table are done. A resume point in a table no
    // longer configured says nothing about the others: read them all.
    let resume_at = plan
        .after
        .as_ref()
        .and_then(|a| plan.tables.iter().position(|t| *t == a.table));
    if plan.after.is_some() && resume_at.is_none() {
        tracing::warn!("the snapshot stopped in a table no longer configured: reading every configured table from its start (rows already delivered are delivered again)");
    }
    let todo = &plan.tables[resume_at.unwrap_or(0)..];
    stats
        .snapshot_tables_remaining
        .store(todo.len() as u64, Ordering::Relaxed);
    stats
        .snapshot_started_us
        .store(unix_micros_now(), Ordering::Relaxed);
    let planner = reader::open_planner(cfg, tls, plan.snapshot_name, todo).await?;

    // Every table's shape and ranges, read in the snapshot before any row.
    let mut tables: Vec<Arc<TablePlan>> = Vec::with_capacity(todo.len());
    let mut chunks: Vec<Chunk> = Vec::new();
    for (i, t) in todo.iter().enumerate() {
        let resume_key = match &plan.after {
            Some(a) if i == 0 && resume_at.is_some() => a.key.as_deref(),
            _ => None,
        };
        let tp = TablePlan::new(&planner, plan.publication, t, resume_key, plan.key_order).await?;
        if i == 0 && resume_at.is_some() && !tp.resumed() {
            tracing::warn!(table = %t, "the snapshot stopped inside a table without a key: reading it again from its start (rows already delivered are delivered again)");
        }
        let bounds = match tp.first_key() {
            Some(k) if plan.parallelism > 1 => {
                split::bounds(&planner, t, k, tp.estimate, plan.chunk_rows).await?
            }
            _ => Vec::new(),
        };
        let n = bounds.len() + 1;
        for r in 0..n {
            chunks.push(Chunk {
                table: i,
                range: Range {
                    lower: r.checked_sub(1).map(|p| bounds[p].clone()),
                    upper: bounds.get(r).cloned(),
                },
                first_of_table: r == 0,
                last_of_table: r + 1 == n,
            });
        }
        tables.push(Arc::new(tp));
    }
    // Fewer readers when the server has no more to give (max_connections, a role's
    // limit) or a DDL statement waits for a table; none: the planner reads.
    let want = plan.parallelism.clamp(1, chunks.len().max(1));
    let mut idle: Vec<Reader> = Vec::with_capacity(want);
    let params = ConnectParams::from_config(cfg, tls)?;
    for _ in 0..want {
        match reader::open_reader(&params, plan.snapshot_name, todo).await {
            Ok(r) => idle.push(r),
            Err(e) => {
                tracing::warn!(error = %e, connections = idle.len().max(1), "the snapshot reads with fewer connections than snapshot_parallelism");
                break;
            }
        }
    }
    // The planner holds its locks until the end, reading only when no reader opened.
    let mut planner = Some(planner);
    if idle.is_empty() {
        tracing::warn!(
            "no reading connection could open: the planning connection reads the snapshot alone"
        );
        idle.extend(planner.take().map(Reader::Planner));
    }
    let parallelism = idle.len();
    // A range read ahead buffers about one range.
    let buffer = (plan.chunk_rows as usize)
        .div_ceil(MAX_EVENT_BATCH)
        .clamp(2, 4096);
    tracing::info!(
        tables = todo.len(),
        ranges = chunks.len(),
        connections = parallelism,
        "snapshot started"
    );

    let now_us = unix_micros_now();
    let mut out = BatchSender::new(tx);
    out.push(SourceEvent::Begin(TxnInfo {
        xid: 0,
        final_lsn: plan.commit_lsn,
        commit_ts_us: now_us,
    }))
    .await?;
    out.push(SourceEvent::SnapshotPiece {
        piece: Piece {
            lsn: plan.piece_lsn,
            after: plan.after.clone(),
        },
        tables: plan.tables.to_vec(),
    })
    .await?;

    let mut ordinal = plan.first_ordinal;
    // What every row's event says of its source (its ordinal and key set per row).
    let source = SourceInfo {
        lsn: plan.piece_lsn,
        commit_lsn: plan.commit_lsn,
        ordinal: 0,
        last_commit_lsn: None,
        xid: None,
        commit_ts_us: now_us,
        snapshot: SnapshotMarker::True,
        row_key: None,
    };
    // One batch is held back so the very last row can carry the `last` marker.
    let mut held: Option<RangeBatch> = None;
    let mut readers = Readers::default();
    let mut next = 0;
    let mut started = usize::MAX; // the chunk whose table start was recorded
    let mut slot = 0;
    let mut rows_done = 0u64;
    let mut counted = 0u64;
    let mut last_log = std::time::Instant::now();
    loop {
        while next < chunks.len() {
            let Some(r) = idle.pop() else { break };
            let (rows_tx, rows) = mpsc::channel(buffer);
            let task = tokio::spawn(read::read_range(
                r,
                tables[chunks[next].table].clone(),
                chunks[next].range.clone(),
                plan.keep_special_numerics,
                source.clone(),
                rows_tx,
            ));
            readers.0.push_back(InFlight {
                chunk: next,
                rows,
                task,
            });
            next += 1;
        }
        let Some(head) = readers.0.front_mut() else {
            break;
        };
        let chunk = &chunks[head.chunk];
        let tp = &tables[chunk.table];
        let t = &tp.name;
        if chunk.first_of_table && started != head.chunk {
            started = head.chunk;
            tracing::info!(table = %t, estimate = ?tp.estimate, format = ?tp.format(), "snapshot of table started");
            slot = progress::start(stats, t, tp.estimate);
            rows_done = 0;
            counted = 0;
            last_log = std::time::Instant::now();
        }
        match head.rows.recv().await {
            Some(mut batch) => {
                // Ordinals in emission order (ranges are read in parallel, emitted in
                // turn); the batch goes on whole.
                for ev in &mut batch.events {
                    if let SourceEvent::Change(c) = ev {
                        c.source.ordinal = ordinal;
                        ordinal += 1;
                        rows_done += 1;
                    }
                }
                if batch.events.is_empty() {
                    continue;
                }
                if let Some(mut prev) = held.replace(batch) {
                    out.send_batch(std::mem::take(&mut prev.events)).await?;
                }
                if rows_done - counted >= COUNT_EVERY {
                    stats
                        .snapshot_rows
                        .fetch_add(rows_done - counted, Ordering::Relaxed);
                    counted = rows_done;
                    progress::set(stats, slot, rows_done);
                    if last_log.elapsed() >= progress::LOG_EVERY {
                        last_log = std::time::Instant::now();
                        progress::log(t, rows_done, tp.estimate);
                    }
                }
            }
            None => {
                let done = readers.0.pop_front().expect("the head range");
                let (r, notes) = done.task.await.map_err(|e| {
                    PgError::Internal(format!("reading the snapshot of {t}: {e}"))
                })??;
                notes.record(stats, t);
                if next < chunks.len() {
                    idle.push(r);
                } else {
                    // Nothing left to hand out: not kept idle in its transaction while
                    // the last ranges drain.
                    reader::close(r).await;
                }
                if chunk.last_of_table {
                    stats
                        .snapshot_rows
                        .fetch_add(rows_done - counted, Ordering::Relaxed);
                    counted = rows_done;
                    progress::set(stats, slot, rows_done);
                    stats
                        .snapshot_tables_remaining
                        .fetch_sub(1, Ordering::Relaxed);
                    tracing::info!(table = %t, rows = rows_done, resumed = chunk.table == 0 && tp.resumed(), "snapshot of table done");
                }
            }
        }
    }
    if let Some(mut last) = held.take() {
        if let Some(SourceEvent::Change(c)) = last.events.last_mut() {
            c.source.snapshot = SnapshotMarker::Last;
        }
        out.send_batch(std::mem::take(&mut last.events)).await?;
    }
    for r in idle.into_iter().chain(planner.map(Reader::Planner)) {
        reader::close(r).await;
    }
    stats
        .snapshot_finished_us
        .store(unix_micros_now(), Ordering::Relaxed);
    out.push(SourceEvent::Commit {
        commit_lsn: plan.commit_lsn,
        end_lsn: plan.commit_lsn,
        commit_ts_us: now_us,
    })
    .await?;
    out.flush().await?;
    Ok(ordinal - plan.first_ordinal)
}

pub fn unix_micros_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}
