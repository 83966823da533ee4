//! The streaming phase: XLogData → pgoutput → change events, with standby status updates
//! that confirm only what the sink acknowledged.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use sluice_core::{
    Change, Lsn, Op, Row, SnapshotMarker, SourceEvent, SourceInfo, Table, TableName, TxnInfo, Value,
};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::catalog;
use crate::conn::ReplicationConn;
use crate::error::PgError;
use crate::pgoutput::{Decoder, OldKind, PgOutput, TupleValue};
use crate::text::parse_text;

/// Microseconds between the Unix epoch and PostgreSQL's (2000-01-01).
pub const PG_EPOCH_OFFSET_US: i64 = 946_684_800_000_000;

/// Streaming state.
pub struct Streamer<'a> {
    pub conn: ReplicationConn,
    pub sql: &'a tokio_postgres::Client,
    pub tables: HashSet<TableName>,
    pub tx: mpsc::Sender<SourceEvent>,
    pub acked: watch::Receiver<Lsn>,
    pub shutdown: CancellationToken,
    pub status_interval: Duration,
    /// Confirmed position at start; reported until the sink acknowledges more.
    pub start_lsn: Lsn,
}

struct State {
    decoder: Decoder,
    relations: HashMap<u32, Arc<Table>>,
    txn: Option<TxnInfo>,
    ordinal: u64,
    /// Highest WAL position received.
    received: Lsn,
    /// Highest position handed to the sink as an acknowledgement point.
    last_ack_point: Lsn,
    /// The server asked for an immediate status update.
    reply_requested: bool,
    /// WAL position of the record the current message decodes.
    record_lsn: Lsn,
}

impl Streamer<'_> {
    /// Streams until shutdown or error. On shutdown, sends a last status update and ends
    /// the copy cleanly so PostgreSQL records the final flush position.
    pub async fn run(mut self) -> Result<(), PgError> {
        let mut st = State {
            decoder: Decoder::new(),
            relations: HashMap::new(),
            txn: None,
            ordinal: 0,
            received: self.start_lsn,
            last_ack_point: self.start_lsn,
            reply_requested: false,
            record_lsn: Lsn::ZERO,
        };
        let mut flushed = self.start_lsn;
        let mut pending: Option<SourceEvent> = None;
        let mut ticker = tokio::time::interval(self.status_interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_status = Instant::now();
        loop {
            let mut reply_now = false;
            let tx = &self.tx;
            let shutdown = &self.shutdown;
            let acked = &mut self.acked;
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                permit = tx.reserve(), if pending.is_some() => {
                    // The sink has stopped: close cleanly, confirming what it acknowledged.
                    let Ok(permit) = permit else { break };
                    if let Some(ev) = pending.take() { permit.send(ev); }
                }
                changed = acked.changed() => {
                    if changed.is_err() { break }
                    let now = *acked.borrow_and_update();
                    if now > flushed {
                        flushed = now;
                        // Confirm promptly, but not more often than every 100 ms.
                        if last_status.elapsed() >= Duration::from_millis(100) {
                            reply_now = true;
                        }
                    }
                }
                _ = ticker.tick() => reply_now = true,
                msg = self.conn.recv_copy(), if pending.is_none() => {
                    let Some(msg) = msg? else {
                        return Err(PgError::protocol("replication", "server ended the replication stream"));
                    };
                    pending = handle(&self.tables, self.sql, &mut st, msg).await?;
                    reply_now |= std::mem::take(&mut st.reply_requested);
                }
            }
            if reply_now {
                self.send_status(st.received, flushed, false).await?;
                last_status = Instant::now();
            }
        }
        // Final acknowledgement: whatever the sink confirmed up to now.
        let final_flush = (*self.acked.borrow()).max(flushed);
        self.send_status(st.received.max(final_flush), final_flush, false)
            .await?;
        tracing::info!(flushed = %final_flush, "replication stopped; final position confirmed");
        self.conn.close_copy().await
    }

    async fn send_status(&mut self, write: Lsn, flush: Lsn, reply: bool) -> Result<(), PgError> {
        let mut buf = [0u8; 34];
        buf[0] = b'r';
        buf[1..9].copy_from_slice(&write.max(flush).0.to_be_bytes());
        buf[9..17].copy_from_slice(&flush.0.to_be_bytes());
        buf[17..25].copy_from_slice(&flush.0.to_be_bytes());
        let now = crate::snapshot::unix_micros_now() - PG_EPOCH_OFFSET_US;
        buf[25..33].copy_from_slice(&now.to_be_bytes());
        buf[33] = reply as u8;
        tracing::trace!(%write, %flush, "standby status update");
        self.conn.send_copy(&buf).await
    }
}

/// Everything a data message needs besides the connection.
async fn handle(
    tables: &HashSet<TableName>,
    sql: &tokio_postgres::Client,
    st: &mut State,
    mut msg: Bytes,
) -> Result<Option<SourceEvent>, PgError> {
    let bad = |detail: &str| PgError::protocol("replication", detail.to_string());
    if msg.is_empty() {
        return Err(bad("empty CopyData"));
    }
    match msg.get_u8() {
        b'w' => {
            if msg.len() < 24 {
                return Err(bad("short XLogData header"));
            }
            st.record_lsn = Lsn(msg.get_u64());
            let end = Lsn(msg.get_u64());
            let _ts = msg.get_i64();
            st.received = st.received.max(end);
            let out = st.decoder.decode(&msg)?;
            on_message(tables, sql, st, out).await
        }
        b'k' => {
            if msg.len() < 17 {
                return Err(bad("short keepalive"));
            }
            let wal_end = Lsn(msg.get_u64());
            let _ts = msg.get_i64();
            st.reply_requested |= msg.get_u8() == 1;
            st.received = st.received.max(wal_end);
            // Idle between transactions: everything before wal_end has been seen, so
            // it can be confirmed once the sink has committed what came before.
            if st.txn.is_none() && wal_end > st.last_ack_point {
                st.last_ack_point = wal_end;
                return Ok(Some(SourceEvent::Heartbeat(wal_end)));
            }
            Ok(None)
        }
        other => Err(bad(&format!("unknown CopyData kind {:?}", other as char))),
    }
}

async fn on_message(
    tables: &HashSet<TableName>,
    sql: &tokio_postgres::Client,
    st: &mut State,
    m: PgOutput,
) -> Result<Option<SourceEvent>, PgError> {
    let ev = match m {
        PgOutput::Begin { final_lsn, ts, xid } => {
            let info = TxnInfo {
                xid,
                final_lsn,
                commit_ts_us: ts + PG_EPOCH_OFFSET_US,
            };
            st.txn = Some(info.clone());
            st.ordinal = 0;
            SourceEvent::Begin(info)
        }
        PgOutput::Commit {
            commit_lsn,
            end_lsn,
            ts,
            ..
        } => {
            st.txn = None;
            st.last_ack_point = st.last_ack_point.max(end_lsn);
            SourceEvent::Commit {
                commit_lsn,
                end_lsn,
                commit_ts_us: ts + PG_EPOCH_OFFSET_US,
            }
        }
        PgOutput::Relation(rel) => {
            let catalog = catalog::table_by_oid(sql, rel.id).await?;
            let table = catalog::relation_to_table(&rel, catalog.as_ref());
            tracing::debug!(table = %table.name, columns = table.columns.len(), "relation");
            st.relations.insert(rel.id, table);
            return Ok(None);
        }
        PgOutput::Insert { relation, new, .. } => {
            let Some(table) = table_for(tables, st, relation)? else {
                return Ok(None);
            };
            let after = tuple_to_row(&table, &new, false)?;
            change(st, table, Op::Create, None, Some(after))
        }
        PgOutput::Update {
            relation, old, new, ..
        } => {
            let Some(table) = table_for(tables, st, relation)? else {
                return Ok(None);
            };
            let before = match old {
                Some((kind, t)) => Some(tuple_to_row(&table, &t, kind == OldKind::Key)?),
                None => None,
            };
            let after = tuple_to_row(&table, &new, false)?;
            change(st, table, Op::Update, before, Some(after))
        }
        PgOutput::Delete {
            relation,
            kind,
            old,
            ..
        } => {
            let Some(table) = table_for(tables, st, relation)? else {
                return Ok(None);
            };
            let before = tuple_to_row(&table, &old, kind == OldKind::Key)?;
            change(st, table, Op::Delete, Some(before), None)
        }
        PgOutput::Origin { .. } | PgOutput::Type { .. } | PgOutput::Message { .. } => {
            return Ok(None)
        }
        PgOutput::Truncate { relations, .. } => {
            for r in relations {
                if let Some(t) = st.relations.get(&r) {
                    if tables.contains(&t.name) {
                        tracing::warn!(table = %t.name, "TRUNCATE is not yet propagated as an event");
                    }
                }
            }
            return Ok(None);
        }
        other => {
            // Streaming and two-phase options are not requested, so the server never
            // sends these; receiving one means a protocol mismatch.
            return Err(PgError::protocol(
                "replication",
                format!("message not expected without streaming/two-phase: {other:?}"),
            ));
        }
    };
    Ok(Some(ev))
}

/// The table for a relation id, or `None` if the table is not configured.
fn table_for(
    tables: &HashSet<TableName>,
    st: &State,
    relation: u32,
) -> Result<Option<Arc<Table>>, PgError> {
    let t = st.relations.get(&relation).ok_or_else(|| {
        PgError::protocol(
            "replication",
            format!("row change for relation {relation} before its Relation message"),
        )
    })?;
    Ok(tables.contains(&t.name).then(|| t.clone()))
}

fn change(
    st: &mut State,
    table: Arc<Table>,
    op: Op,
    before: Option<Row>,
    after: Option<Row>,
) -> SourceEvent {
    let txn = st.txn.as_ref();
    let ordinal = st.ordinal;
    st.ordinal += 1;
    SourceEvent::Change(Change {
        table,
        op,
        before,
        after,
        source: SourceInfo {
            lsn: st.record_lsn,
            commit_lsn: txn.map(|t| t.final_lsn).unwrap_or_default(),
            ordinal,
            xid: txn.map(|t| t.xid),
            commit_ts_us: txn.map(|t| t.commit_ts_us).unwrap_or_default(),
            snapshot: SnapshotMarker::False,
        },
    })
}

/// With `key_only` (an old tuple of the replica identity key), non-key columns are
/// [`Value::Absent`]: the source did not send them.
fn tuple_to_row(table: &Table, tuple: &[TupleValue], key_only: bool) -> Result<Row, PgError> {
    if tuple.len() != table.columns.len() {
        return Err(PgError::protocol(
            "replication",
            format!(
                "tuple for {} has {} columns, relation has {}",
                table.name,
                tuple.len(),
                table.columns.len()
            ),
        ));
    }
    tuple
        .iter()
        .zip(&table.columns)
        .map(|(v, c)| match v {
            TupleValue::Null if key_only && !c.key => Ok(Value::Absent),
            TupleValue::Null => Ok(Value::Null),
            TupleValue::Unchanged => Ok(Value::Unchanged),
            TupleValue::Text(b) => parse_text(c.type_oid, b).map_err(|e| {
                PgError::Config(format!(
                    "table {}, column {} ({}): {e}",
                    table.name, c.name, c.type_name
                ))
            }),
            TupleValue::Binary(_) => Err(PgError::protocol(
                "replication",
                "binary tuple data received but binary mode was not requested",
            )),
        })
        .collect()
}
