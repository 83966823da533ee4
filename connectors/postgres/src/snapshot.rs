//! The snapshot: every configured table read inside a database snapshot exported by a
//! replication slot, so snapshot rows and streamed changes meet at exactly the slot's
//! consistent point.
//!
//! Rows are read in key order and every row carries its key, so the progress committed
//! with the rows says where the snapshot stopped. A crash mid-snapshot resumes after the
//! last committed row in a new snapshot (a new *piece*, read at a later point); the stream
//! then skips changes already contained in a piece's rows ([`crate::stream::filter`]).

use std::sync::Arc;

use sluice_core::{
    Change, Lsn, Op, Piece, RowKey, SnapshotMarker, SourceEvent, SourceInfo, TableName, TxnInfo,
    Value,
};
use tokio::sync::mpsc;
use tokio_postgres::SimpleQueryMessage;

use crate::catalog::{self, qualified, quote_ident, quote_literal};
use crate::error::PgError;
use crate::text::{parse_column, Notes};

/// Rows fetched per round trip; bounds the memory a snapshot holds.
const FETCH_ROWS: usize = 5_000;

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
    tx: &mpsc::Sender<SourceEvent>,
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
    let send = |ev| async { tx.send(ev).await.map_err(|_| PgError::PipelineClosed) };
    send(SourceEvent::Begin(TxnInfo {
        xid: 0,
        final_lsn: plan.commit_lsn,
        commit_ts_us: now_us,
    }))
    .await?;
    send(SourceEvent::SnapshotPiece {
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
        let table =
            Arc::new(catalog::table_by_oid(&client, oid).await?.ok_or_else(|| {
                PgError::Config(format!("table {t} vanished during the snapshot"))
            })?);
        let cols: Vec<String> = table.columns.iter().map(|c| quote_ident(&c.name)).collect();
        let key_idx: Vec<usize> = (0..table.columns.len())
            .filter(|&i| table.columns[i].key)
            .collect();
        let key_cols: Vec<&str> = key_idx.iter().map(|&i| cols[i].as_str()).collect();
        let mut query = format!("SELECT {} FROM {}", cols.join(", "), qualified(t));
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
        client
            .batch_execute(&format!("DECLARE sluice_snap NO SCROLL CURSOR FOR {query}"))
            .await
            .map_err(PgError::sql(format!("declare snapshot cursor for {t}")))?;
        let mut rows_done = 0u64;
        loop {
            let msgs = client
                .simple_query(&format!("FETCH {FETCH_ROWS} FROM sluice_snap"))
                .await
                .map_err(PgError::sql(format!("read snapshot of {t}")))?;
            let mut got = 0;
            let mut notes = Notes::keeping(plan.keep_special_numerics);
            for m in msgs {
                let SimpleQueryMessage::Row(r) = m else {
                    continue;
                };
                got += 1;
                let mut row = Vec::with_capacity(table.columns.len());
                for (i, c) in table.columns.iter().enumerate() {
                    row.push(match r.get(i) {
                        None => Value::Null,
                        Some(s) => parse_column(c, s.as_bytes(), &mut notes).map_err(|e| {
                            PgError::Config(format!("snapshot of {t}, column {}: {e}", c.name))
                        })?,
                    });
                }
                let row_key: Option<Arc<[String]>> = (!key_idx.is_empty()).then(|| {
                    key_idx
                        .iter()
                        .map(|&i| r.get(i).unwrap_or_default().to_string())
                        .collect()
                });
                if let Some(prev) = held.take() {
                    send(SourceEvent::Change(prev)).await?;
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
            }
            notes.record(stats, t);
            rows_done += got;
            stats.snapshot_rows.fetch_add(got, Ordering::Relaxed);
            if got < FETCH_ROWS as u64 {
                break;
            }
        }
        client
            .batch_execute("CLOSE sluice_snap")
            .await
            .map_err(PgError::sql("close snapshot cursor"))?;
        stats
            .snapshot_tables_remaining
            .fetch_sub(1, Ordering::Relaxed);
        tracing::info!(table = %t, rows = rows_done, resumed = resume_key.is_some(), "snapshot of table done");
    }
    if let Some(mut last) = held.take() {
        last.source.snapshot = SnapshotMarker::Last;
        send(SourceEvent::Change(last)).await?;
    }
    client
        .batch_execute("COMMIT")
        .await
        .map_err(PgError::sql("end snapshot transaction"))?;
    stats
        .snapshot_finished_us
        .store(unix_micros_now(), Ordering::Relaxed);
    send(SourceEvent::Commit {
        commit_lsn: plan.commit_lsn,
        end_lsn: plan.commit_lsn,
        commit_ts_us: now_us,
    })
    .await?;
    Ok(ordinal - plan.first_ordinal)
}

pub fn unix_micros_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}
