//! The snapshot: every configured table read inside a database snapshot exported by a
//! replication slot, so snapshot rows and streamed changes meet at exactly the slot's
//! consistent point.
//!
//! Rows are read in key order and every row carries its key, so the progress committed
//! with the rows says where the snapshot stopped. A crash mid-snapshot resumes after the
//! last committed row in a new snapshot (a new *piece*, read at a later point); the stream
//! then skips changes already contained in a piece's rows ([`crate::stream::filter`]).

use std::sync::Arc;

use futures_util::StreamExt;
use sluice_core::{
    Change, EventSender, Lsn, Op, Piece, RowKey, SnapshotMarker, SourceEvent, SourceInfo,
    TableName, TxnInfo, Value,
};

use crate::batch::BatchSender;
use crate::binary;
use crate::catalog::{self, qualified, quote_ident, quote_literal};
use crate::copy::{self, CopyDecoder, Format};
use crate::error::PgError;
use crate::text::{parse_column, Notes};

/// Rows between updates of the snapshot's row counters and value notes.
const COUNT_EVERY: u64 = 5_000;
/// How often a long table's progress is logged.
const PROGRESS_LOG_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// Registers a table's progress entry; returns its index.
fn progress_start(stats: &crate::SourceStats, t: &TableName, estimate: Option<u64>) -> usize {
    let mut tables = stats
        .snapshot_tables
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    tables.retain(|p| p.table != *t);
    tables.push(crate::TableProgress {
        table: t.clone(),
        rows: 0,
        estimate,
        done: false,
    });
    tables.len() - 1
}

fn progress_set(stats: &crate::SourceStats, slot: usize, rows: u64, done: bool) {
    let mut tables = stats
        .snapshot_tables
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(p) = tables.get_mut(slot) {
        p.rows = rows;
        p.done = done;
    }
}

fn log_progress(t: &TableName, rows: u64, estimate: Option<u64>) {
    match estimate.filter(|&e| e > 0) {
        Some(e) => tracing::info!(
            table = %t,
            rows,
            estimate = e,
            percent = ((rows as f64 / e as f64) * 100.0).min(100.0).round() as u64,
            "snapshot progress"
        ),
        None => tracing::info!(table = %t, rows, "snapshot progress"),
    }
}

/// Where a key column's text (for the progress a row carries) comes from.
enum KeyText {
    /// A field of the COPY row, as text.
    Field(usize),
    /// The column's value, whose text is exactly PostgreSQL's.
    Value(usize),
}

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
    /// Continue after this row; `None`: from the first table's start.
    pub after: Option<RowKey>,
    /// See [`crate::SourceConfig::keep_special_numerics`].
    pub keep_special_numerics: bool,
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
    // Tables before the resume point's table are done.
    let start = match &plan.after {
        Some(a) => plan.tables.iter().position(|t| *t == a.table).unwrap_or(0),
        None => 0,
    };
    let todo = &plan.tables[start..];
    stats
        .snapshot_tables_remaining
        .store(todo.len() as u64, Ordering::Relaxed);
    stats
        .snapshot_started_us
        .store(unix_micros_now(), Ordering::Relaxed);
    let client = catalog::connect_sql(cfg, tls).await?;
    client
        .batch_execute(&format!(
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT {}",
            quote_literal(plan.snapshot_name)
        ))
        .await
        .map_err(PgError::sql("start snapshot transaction"))?;
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
    // One row is held back so the very last can carry the `last` marker.
    let mut held: Option<Change> = None;
    for (i, t) in todo.iter().enumerate() {
        let oid = catalog::table_oid(&client, t).await?;
        let mut table = catalog::table_by_oid(&client, oid)
            .await?
            .ok_or_else(|| PgError::Config(format!("table {t} vanished during the snapshot")))?;
        // Events keyed as the stream keys them; the order (and resume point) only by a
        // key of the table's own: a whole row may hold types without an order.
        let own_key = catalog::key_as_streamed(&mut table);
        let table = Arc::new(table);
        let cols: Vec<String> = table.columns.iter().map(|c| quote_ident(&c.name)).collect();
        let key_idx: Vec<usize> = (0..table.columns.len())
            .filter(|&i| own_key && table.columns[i].key)
            .collect();
        let key_cols: Vec<&str> = key_idx.iter().map(|&i| cols[i].as_str()).collect();
        // Binary when every column has a binary reader (cheaper for both sides); the key
        // text a row's progress carries comes from the value when its text is the value's,
        // else from an extra `CAST(key AS text)` column.
        let format = if table
            .columns
            .iter()
            .all(|c| binary::binary_capable(&c.pg_type))
        {
            Format::Binary
        } else {
            Format::Text
        };
        let mut select = cols.clone();
        let key_text: Vec<KeyText> = key_idx
            .iter()
            .map(|&i| {
                if format == Format::Text {
                    KeyText::Field(i)
                } else if binary::value_is_key_text(&table.columns[i].pg_type) {
                    KeyText::Value(i)
                } else {
                    select.push(format!("CAST({} AS text)", cols[i]));
                    KeyText::Field(select.len() - 1)
                }
            })
            .collect();
        let mut query = format!("SELECT {} FROM {}", select.join(", "), qualified(t));
        // The resume point's table continues after its key (untyped literals take the
        // columns' types and collations, so the order is the index's).
        let resume_key = match &plan.after {
            Some(a) if i == 0 => a.key.clone(),
            _ => None,
        };
        if let Some(k) = &resume_key {
            if k.len() != key_cols.len() {
                return Err(PgError::Config(format!(
                    "cannot resume the snapshot of {t}: its key changed from {} to {} columns since the snapshot started. Fix: reset the position (delete the offsets record) to take a new snapshot",
                    k.len(),
                    key_cols.len()
                )));
            }
            let lits: Vec<String> = k.iter().map(|v| quote_literal(v)).collect();
            query.push_str(&format!(
                " WHERE ({}) > ({})",
                key_cols.join(", "),
                lits.join(", ")
            ));
        } else if i == 0 && plan.after.is_some() {
            tracing::warn!(table = %t, "the snapshot stopped inside a table without a key: reading it again from its start (rows already delivered are delivered again)");
        }
        if !key_cols.is_empty() {
            query.push_str(&format!(" ORDER BY {}", key_cols.join(", ")));
        }
        let copy = match format {
            Format::Binary => format!("COPY ({query}) TO STDOUT (FORMAT binary)"),
            Format::Text => format!("COPY ({query}) TO STDOUT"),
        };
        let stream = client
            .copy_out(&copy)
            .await
            .map_err(PgError::sql(format!("read snapshot of {t}")))?;
        let mut stream = std::pin::pin!(stream);
        let mut decoder = CopyDecoder::new(format);
        let mut raw = copy::Row::default();
        let mut notes = Notes::keeping(plan.keep_special_numerics);
        let estimate = catalog::row_estimate(&client, oid).await?;
        tracing::info!(table = %t, estimate = ?estimate, format = ?format, "snapshot of table started");
        let progress_slot = progress_start(stats, t, estimate);
        let mut last_log = std::time::Instant::now();
        let mut rows_done = 0u64;
        let mut counted = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(PgError::sql(format!("read snapshot of {t}")))?;
            decoder.push(&chunk);
            while decoder.next_row(&mut raw).map_err(|e| PgError::Malformed {
                context: format!("the snapshot of {t}"),
                detail: e.to_string(),
            })? {
                if raw.fields.len() != select.len() {
                    return Err(PgError::Malformed {
                        context: format!("the snapshot of {t}"),
                        detail: format!(
                            "a row has {} fields, the query selects {}",
                            raw.fields.len(),
                            select.len()
                        ),
                    });
                }
                let mut row = Vec::with_capacity(table.columns.len());
                for (i, c) in table.columns.iter().enumerate() {
                    row.push(match raw.get(i) {
                        None => Value::Null,
                        Some(b) => match format {
                            Format::Binary => {
                                binary::parse_binary(&c.pg_type, b, c.nullable, &mut notes)
                            }
                            Format::Text => parse_column(c, b, &mut notes),
                        }
                        .map_err(|e| PgError::Malformed {
                            context: format!("the snapshot of {t}, column {}", c.name),
                            detail: e.to_string(),
                        })?,
                    });
                }
                let row_key: Option<Arc<[String]>> = (!key_text.is_empty()).then(|| {
                    key_text
                        .iter()
                        .map(|k| match *k {
                            KeyText::Field(f) => {
                                String::from_utf8_lossy(raw.get(f).unwrap_or_default()).into_owned()
                            }
                            KeyText::Value(i) => binary::value_text(&row[i]),
                        })
                        .collect()
                });
                if let Some(prev) = held.take() {
                    out.push(SourceEvent::Change(prev)).await?;
                }
                held = Some(Change {
                    table: table.clone(),
                    op: Op::Read,
                    before: None,
                    after: Some(row),
                    source: SourceInfo {
                        lsn: plan.piece_lsn,
                        commit_lsn: plan.commit_lsn,
                        ordinal,
                        xid: None,
                        commit_ts_us: now_us,
                        snapshot: SnapshotMarker::True,
                        row_key,
                    },
                });
                ordinal += 1;
                rows_done += 1;
                if rows_done - counted == COUNT_EVERY {
                    stats
                        .snapshot_rows
                        .fetch_add(COUNT_EVERY, Ordering::Relaxed);
                    counted = rows_done;
                    notes.record(stats, t);
                    notes = Notes::keeping(plan.keep_special_numerics);
                    progress_set(stats, progress_slot, rows_done, false);
                    if last_log.elapsed() >= PROGRESS_LOG_EVERY {
                        last_log = std::time::Instant::now();
                        log_progress(t, rows_done, estimate);
                    }
                }
            }
        }
        decoder.finish().map_err(|e| PgError::Malformed {
            context: format!("the snapshot of {t}"),
            detail: e.to_string(),
        })?;
        stats
            .snapshot_rows
            .fetch_add(rows_done - counted, Ordering::Relaxed);
        notes.record(stats, t);
        progress_set(stats, progress_slot, rows_done, true);
        stats
            .snapshot_tables_remaining
            .fetch_sub(1, Ordering::Relaxed);
        tracing::info!(table = %t, rows = rows_done, resumed = resume_key.is_some(), "snapshot of table done");
    }
    if let Some(mut last) = held.take() {
        last.source.snapshot = SnapshotMarker::Last;
        out.push(SourceEvent::Change(last)).await?;
    }
    client
        .batch_execute("COMMIT")
        .await
        .map_err(PgError::sql("end snapshot transaction"))?;
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
