//! The streaming phase: XLogData → pgoutput → change events, with standby status updates
//! that confirm only what the sink acknowledged.
//!
//! - [`decode`]: pgoutput messages to change events (relation cache, transaction state);
//! - [`spill`]: streamed in-progress transactions staged on disk until they commit;
//! - [`toast`]: unchanged TOASTed values re-read by key.

mod decode;
pub mod filter;
pub mod spill;
mod toast;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use sluice_core::{EventBatch, EventSender, Lsn, SourceEvent, TableName, MAX_EVENT_BATCH};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::conn::ReplicationConn;
use crate::error::PgError;
use crate::pgoutput::PgOutput;
use crate::{SourceStats, ToastMode};

pub use decode::State;

/// Microseconds between the Unix epoch and PostgreSQL's (2000-01-01).
pub const PG_EPOCH_OFFSET_US: i64 = 946_684_800_000_000;

/// What the decoding side needs besides the replication connection.
pub struct Context<'a> {
    pub sql: &'a tokio_postgres::Client,
    pub tables: HashSet<TableName>,
    pub toast: ToastMode,
    pub stats: Arc<SourceStats>,
    pub messages: crate::MessageCapture,
    /// Table shapes announced by the DDL capture trigger become schema events.
    pub ddl_capture: bool,
    /// The publication streamed: a captured shape keeps only the columns it publishes.
    pub publication: String,
    /// See [`crate::SourceConfig::keep_special_numerics`].
    pub keep_special_numerics: bool,
    /// The stream carries binary tuples.
    pub binary: bool,
}

/// Streaming state.
pub struct Streamer<'a> {
    pub conn: ReplicationConn,
    pub ctx: Context<'a>,
    pub slot: String,
    pub tx: EventSender,
    pub acked: watch::Receiver<Lsn>,
    pub shutdown: CancellationToken,
    pub status_interval: Duration,
    /// Emit a logical message at this interval so an idle database's slot advances.
    pub heartbeat_interval: Option<Duration>,
    /// Confirmed position at start; reported until the sink acknowledges more.
    pub start_lsn: Lsn,
    /// After a resumed snapshot: skips changes a later snapshot piece holds.
    pub filter: Option<filter::SnapshotFilter>,
    /// With streaming of in-progress transactions: where they wait for their commit.
    pub spill: Option<spill::Spill>,
    /// Streaming is `parallel` (protocol 4): Stream Abort carries the abort's LSN and time.
    pub parallel_streaming: bool,
}

impl Streamer<'_> {
    /// Streams until shutdown, the sink stopping, or an error. Then sends a last status
    /// update and ends the copy cleanly so PostgreSQL records the final flush position.
    pub async fn run(mut self) -> Result<(), PgError> {
        let mut st = State::new(self.start_lsn);
        st.filter = self.filter.take();
        st.decoder.parallel_abort_info = self.parallel_streaming;
        let mut flushed = self.start_lsn;
        let mut pending: EventBatch = Vec::new();
        let mut ticker = tokio::time::interval(self.status_interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut heartbeat =
            tokio::time::interval(self.heartbeat_interval.unwrap_or(Duration::from_secs(3600)));
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        heartbeat.tick().await;
        let mut last_status = Instant::now();
        let mut heartbeat_on = self.heartbeat_interval.is_some();
        // A committed streamed transaction being passed on: the socket is not read
        // until it is through (as with a whole transaction, PostgreSQL waits).
        let mut replay: Option<spill::Replay> = None;
        loop {
            if let (Some(r), true) = (replay.as_mut(), pending.is_empty()) {
                if self.shutdown.is_cancelled() {
                    break;
                }
                if r.next(&self.ctx, &mut st, &mut pending).await? {
                    replay = None;
                }
                if last_status.elapsed() >= self.status_interval {
                    flushed = flushed.max(*self.acked.borrow());
                    self.send_status(st.received, flushed).await?;
                    last_status = Instant::now();
                }
                if pending.is_empty() {
                    continue;
                }
            }
            let mut reply_now = false;
            let tx = &self.tx;
            let shutdown = &self.shutdown;
            let acked = &mut self.acked;
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                // What the messages already read produced goes on as one batch (never
                // waiting for more): one hand-over, one wake-up of the sink, per socket
                // read rather than per row.
                room = tx.reserve(pending.len()), if !pending.is_empty() => {
                    // The sink has stopped: close cleanly, confirming what it acknowledged.
                    let Ok(room) = room else { break };
                    if room.send(std::mem::take(&mut pending)).is_err() { break }
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
                _ = ticker.tick() => {
                    reply_now = true;
                    self.refresh_slot_stats().await;
                }
                _ = heartbeat.tick(), if heartbeat_on => heartbeat_on = emit_heartbeat(self.ctx.sql).await,
                // Read only when everything decoded so far has been handed on: a slow
                // sink stops the reading (backpressure), while status updates continue.
                msg = self.conn.recv_copy(), if pending.is_empty() && replay.is_none() => {
                    let mut msg = msg?;
                    // Messages already read from the socket join the batch (no waiting
                    // for more): fewer hand-overs when the stream is busy.
                    loop {
                        let Some(m) = msg else {
                            return Err(PgError::protocol("replication", "server ended the replication stream"));
                        };
                        self.ctx.stats.bytes_received.fetch_add(m.len() as u64, std::sync::atomic::Ordering::Relaxed);
                        replay = handle(&self.ctx, &mut st, self.spill.as_mut(), m, &mut pending).await?;
                        if replay.is_some()
                            || pending.len() >= MAX_EVENT_BATCH
                            || !self.conn.message_buffered()
                        {
                            break;
                        }
                        msg = self.conn.recv_copy().await?;
                    }
                    reply_now |= std::mem::take(&mut st.reply_requested);
                }
            }
            if reply_now {
                self.send_status(st.received, flushed).await?;
                last_status = Instant::now();
            }
        }
        // Final acknowledgement: whatever the sink confirmed up to now.
        let final_flush = (*self.acked.borrow()).max(flushed);
        self.send_status(st.received.max(final_flush), final_flush)
            .await?;
        tracing::info!(flushed = %final_flush, "replication stopped; final position confirmed");
        self.conn.close_copy().await
    }

    async fn send_status(&mut self, write: Lsn, flush: Lsn) -> Result<(), PgError> {
        let now = crate::snapshot::unix_micros_now() - PG_EPOCH_OFFSET_US;
        let buf = status_update(write, flush, now);
        tracing::trace!(%write, %flush, "standby status update");
        self.ctx
            .stats
            .confirmed_lsn
            .store(flush.0, std::sync::atomic::Ordering::Relaxed);
        self.conn.send_copy(&buf).await
    }

    /// Reads the slot's WAL retention from the catalog (best effort: a failure only
    /// leaves the metrics stale).
    async fn refresh_slot_stats(&self) {
        let r = self
            .ctx
            .sql
            .query_opt(
                "SELECT coalesce((pg_current_wal_lsn() - restart_lsn)::bigint, 0), \
                        coalesce((pg_current_wal_lsn() - confirmed_flush_lsn)::bigint, 0), \
                        coalesce(wal_status, '') FROM pg_replication_slots WHERE slot_name = $1",
                &[&self.slot],
            )
            .await;
        match r {
            Ok(Some(row)) => {
                let s = &self.ctx.stats;
                s.retained_wal_bytes.store(
                    row.get::<_, i64>(0).max(0) as u64,
                    std::sync::atomic::Ordering::Relaxed,
                );
                s.flush_lag_bytes.store(
                    row.get::<_, i64>(1).max(0) as u64,
                    std::sync::atomic::Ordering::Relaxed,
                );
                *s.wal_status.lock().unwrap_or_else(|e| e.into_inner()) = row.get(2);
            }
            Ok(None) => {
                tracing::warn!(slot = %self.slot, "replication slot vanished from pg_replication_slots")
            }
            Err(e) => tracing::debug!(error = %e, "cannot read slot statistics"),
        }
        let r = self
            .ctx
            .sql
            .query_opt(
                "SELECT spill_bytes, spill_txns, total_bytes, stream_bytes, stream_txns \
                 FROM pg_stat_replication_slots WHERE slot_name = $1",
                &[&self.slot],
            )
            .await;
        if let Ok(Some(row)) = r {
            let s = &self.ctx.stats;
            let gauges = [
                &s.spill_bytes,
                &s.spill_txns,
                &s.decoded_bytes,
                &s.stream_bytes,
                &s.stream_txns,
            ];
            for (i, a) in gauges.into_iter().enumerate() {
                if let Ok(v) = row.try_get::<_, i64>(i) {
                    a.store(v.max(0) as u64, std::sync::atomic::Ordering::Relaxed);
                }
            }
        }
    }
}

/// Writes a non-transactional logical message: WAL in this database, so the slot moves
/// even when nothing captured changes. Returns false (heartbeats off) after a failure.
async fn emit_heartbeat(sql: &tokio_postgres::Client) -> bool {
    let r = sql
        .execute(
            "SELECT pg_logical_emit_message(false, 'sluice.heartbeat', '')",
            &[],
        )
        .await;
    match r {
        Ok(_) => true,
        Err(e) => {
            tracing::warn!(
                error = %e,
                "heartbeat disabled: cannot call pg_logical_emit_message (grant EXECUTE on it to the Sluice role, or set source.postgres.heartbeat_interval_secs: 0)"
            );
            false
        }
    }
}

/// The 34-byte standby status update ('r'): write, flush and apply positions. Flush and
/// apply are both the acknowledged position; write is never below it.
pub fn status_update(write: Lsn, flush: Lsn, now_pg_us: i64) -> [u8; 34] {
    let mut buf = [0u8; 34];
    buf[0] = b'r';
    buf[1..9].copy_from_slice(&write.max(flush).0.to_be_bytes());
    buf[9..17].copy_from_slice(&flush.0.to_be_bytes());
    buf[17..25].copy_from_slice(&flush.0.to_be_bytes());
    buf[25..33].copy_from_slice(&now_pg_us.to_be_bytes());
    buf
}

/// One CopyData message from the server: XLogData or a keepalive. Returns the replay of
/// a streamed transaction that committed.
async fn handle(
    ctx: &Context<'_>,
    st: &mut State,
    spill: Option<&mut spill::Spill>,
    mut msg: Bytes,
    out: &mut EventBatch,
) -> Result<Option<spill::Replay>, PgError> {
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
            st.send_ts_us = msg.get_i64() + PG_EPOCH_OFFSET_US;
            st.received = st.received.max(end);
            st.arrival += 1;
            let m = st.decoder.decode(&msg).inspect_err(|_| {
                ctx.stats
                    .decode_errors
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            })?;
            let Some(spill) = spill else {
                decode::on_message(ctx, st, m, out).await?;
                return Ok(None);
            };
            match m {
                PgOutput::StreamStart { xid, first } => spill.start(xid, first).await?,
                PgOutput::StreamStop => spill.stop().await?,
                // The first block of a transaction from a replication origin starts with
                // its Origin (no transaction id); like outside streams, nothing to keep.
                PgOutput::Origin { .. } => {}
                PgOutput::StreamAbort { xid, subxid, .. } => spill.abort(xid, subxid).await?,
                PgOutput::StreamCommit {
                    xid,
                    flags,
                    commit_lsn,
                    end_lsn,
                    ts,
                } => {
                    let end = spill::StreamEnd {
                        xid,
                        flags,
                        commit_lsn,
                        end_lsn,
                        ts,
                    };
                    return spill.commit(end).await.map(Some);
                }
                m if st.decoder.in_stream() => {
                    let subxid = m.stream_xid().ok_or_else(|| {
                        bad(&format!(
                            "message not expected inside a stream block: {m:?}"
                        ))
                    })?;
                    spill
                        .append(subxid, st.record_lsn, st.arrival, &msg)
                        .await?;
                }
                m => decode::on_message(ctx, st, m, out).await?,
            }
            Ok(None)
        }
        b'k' => {
            if msg.len() < 17 {
                return Err(bad("short keepalive"));
            }
            let wal_end = Lsn(msg.get_u64());
            let _ts = msg.get_i64();
            st.reply_requested |= msg.get_u8() == 1;
            st.received = st.received.max(wal_end);
            // Idle between transactions: every transaction committed before wal_end has
            // been seen, so wal_end can be confirmed once the sink has committed what
            // came before (PostgreSQL resends any transaction committing after it).
            // (A stream block is a transaction still running: not idle.)
            if st.txn.is_none() && !st.decoder.in_stream() && wal_end > st.last_ack_point {
                st.last_ack_point = wal_end;
                out.push(SourceEvent::Heartbeat(wal_end));
            }
            Ok(None)
        }
        other => Err(bad(&format!("unknown CopyData kind {:?}", other as char))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_update_layout() {
        let b = status_update(Lsn(5), Lsn(7), 9);
        assert_eq!(b[0], b'r');
        // write is raised to flush: never report writing less than flushed
        assert_eq!(u64::from_be_bytes(b[1..9].try_into().unwrap()), 7);
        assert_eq!(u64::from_be_bytes(b[9..17].try_into().unwrap()), 7);
        assert_eq!(u64::from_be_bytes(b[17..25].try_into().unwrap()), 7);
        assert_eq!(i64::from_be_bytes(b[25..33].try_into().unwrap()), 9);
        assert_eq!(b[33], 0);
    }
}
