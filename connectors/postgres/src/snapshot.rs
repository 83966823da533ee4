//! The initial snapshot: every configured table read inside the snapshot the slot
//! exported at creation, so snapshot rows and streamed changes meet at exactly the slot's
//! consistent point.

use std::sync::Arc;

use sluice_core::{
    Change, Lsn, Op, SnapshotMarker, SourceEvent, SourceInfo, TableName, TxnInfo, Value,
};
use tokio::sync::mpsc;
use tokio_postgres::SimpleQueryMessage;

use crate::catalog::{self, qualified, quote_literal};
use crate::error::PgError;
use crate::text::{parse_column, Notes};

/// Rows fetched per round trip; bounds the memory a snapshot holds.
const FETCH_ROWS: usize = 5_000;

/// Reads `tables` in exported snapshot `snapshot_name` and emits them as one source
/// transaction at `consistent_point`, with op `r`.
pub async fn run(
    cfg: &tokio_postgres::Config,
    snapshot_name: &str,
    consistent_point: Lsn,
    tables: &[TableName],
    tx: &mpsc::Sender<SourceEvent>,
    stats: &crate::SourceStats,
) -> Result<u64, PgError> {
    use std::sync::atomic::Ordering;
    stats
        .snapshot_tables_remaining
        .store(tables.len() as u64, Ordering::Relaxed);
    let client = catalog::connect_sql(cfg).await?;
    client
        .batch_execute(&format!(
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT {}",
            quote_literal(snapshot_name)
        ))
        .await
        .map_err(PgError::sql("start snapshot transaction"))?;
    let now_us = unix_micros_now();
    let send = |ev| async { tx.send(ev).await.map_err(|_| PgError::PipelineClosed) };
    send(SourceEvent::Begin(TxnInfo {
        xid: 0,
        final_lsn: consistent_point,
        commit_ts_us: now_us,
    }))
    .await?;

    let mut ordinal = 0u64;
    // One row is held back so the very last can carry the `last` marker.
    let mut held: Option<Change> = None;
    for t in tables {
        let oid = catalog::table_oid(&client, t).await?;
        let table =
            Arc::new(catalog::table_by_oid(&client, oid).await?.ok_or_else(|| {
                PgError::Config(format!("table {t} vanished during the snapshot"))
            })?);
        let cols: Vec<String> = table
            .columns
            .iter()
            .map(|c| catalog::quote_ident(&c.name))
            .collect();
        client
            .batch_execute(&format!(
                "DECLARE sluice_snap NO SCROLL CURSOR FOR SELECT {} FROM {}",
                cols.join(", "),
                qualified(t)
            ))
            .await
            .map_err(PgError::sql(format!("declare snapshot cursor for {t}")))?;
        let mut rows_done = 0u64;
        loop {
            let msgs = client
                .simple_query(&format!("FETCH {FETCH_ROWS} FROM sluice_snap"))
                .await
                .map_err(PgError::sql(format!("read snapshot of {t}")))?;
            let mut got = 0;
            let mut notes = Notes::default();
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
                if let Some(prev) = held.take() {
                    send(SourceEvent::Change(prev)).await?;
                }
                held = Some(Change {
                    table: table.clone(),
                    op: Op::Read,
                    before: None,
                    after: Some(row),
                    source: SourceInfo {
                        lsn: consistent_point,
                        commit_lsn: consistent_point,
                        ordinal,
                        xid: None,
                        commit_ts_us: now_us,
                        snapshot: SnapshotMarker::True,
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
        tracing::info!(table = %t, rows = rows_done, "snapshot of table done");
    }
    if let Some(mut last) = held.take() {
        last.source.snapshot = SnapshotMarker::Last;
        send(SourceEvent::Change(last)).await?;
    }
    client
        .batch_execute("COMMIT")
        .await
        .map_err(PgError::sql("end snapshot transaction"))?;
    send(SourceEvent::Commit {
        commit_lsn: consistent_point,
        end_lsn: consistent_point,
        commit_ts_us: now_us,
    })
    .await?;
    Ok(ordinal)
}

pub fn unix_micros_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}
