//! The replication slot and the committed position: which to trust, when to (re)create
//! the slot, and when to snapshot.
//!
//! | slot | committed position | action |
//! |---|---|---|
//! | exists | present, snapshot finished | stream from max(slot's confirmed_flush, position) |
//! | exists | present, snapshot unfinished | resume: read the rest in a new piece (a temporary slot's exported snapshot), then stream from the first piece's point; a position without snapshot progress (older format): drop the slot, create it, snapshot again |
//! | exists | absent | snapshot modes: drop, create, snapshot (Kafka lost our progress, or the slot is foreign); `never`: stream from the slot |
//! | missing | absent | create; snapshot unless `never` |
//! | missing | present | `when_needed`: create and snapshot; `never`: create and stream (changes in between are lost, logged); `initial`/`initial_only`: stop with an error |

use sluice_core::{EventSender, Lsn, Piece, Position, SnapshotProgress};

use crate::catalog::{self, SlotInfo};
use crate::conn::ReplicationConn;
use crate::error::PgError;
use crate::{snapshot, SnapshotMode, SourceConfig, SourceStats};

/// What to do after preparing the slot.
pub enum Next {
    /// Stream from this position; with snapshot pieces read at different points, the
    /// stream must skip what later pieces already hold.
    Stream(Lsn, Option<SnapshotProgress>),
    /// `initial_only`: the snapshot is done; do not stream.
    Idle,
}

pub async fn prepare(
    cfg: &SourceConfig,
    repl: &mut ReplicationConn,
    sql: &tokio_postgres::Client,
    committed: Option<&Position>,
    tx: &EventSender,
    stats: &SourceStats,
) -> Result<Next, PgError> {
    let existing = catalog::find_slot(sql, &cfg.slot).await?;
    if let Some(info) = &existing {
        check_existing(cfg, info)?;
    }
    let snapshot_mode = cfg.snapshot != SnapshotMode::Never;
    let recreate = match (&existing, committed) {
        (Some(info), Some(p)) if !p.snapshot_pending => {
            let confirmed: Lsn = info
                .confirmed_flush
                .as_deref()
                .and_then(|s| s.parse().ok())
                .unwrap_or_default();
            // A blocked table lags behind the others: replay from its point.
            let start = confirmed.max(p.confirmable());
            tracing::info!(slot = %cfg.slot, %confirmed, committed = %p.end_lsn, from = %start, "resuming from the committed position");
            return Ok(Next::Stream(start, p.snapshot.clone()));
        }
        (Some(info), Some(p)) if p.snapshot.is_some() && p.resume.is_some() && snapshot_mode => {
            return resume_snapshot(cfg, info, p, tx, stats).await;
        }
        (Some(_), Some(_)) => {
            tracing::warn!(slot = %cfg.slot, "the snapshot did not finish before the last stop; taking it again (rows already delivered are delivered again with op r)");
            true
        }
        (Some(info), None) if snapshot_mode => {
            tracing::warn!(
                slot = %cfg.slot,
                "slot exists but Kafka holds no committed position for it (first run with a foreign slot, or the offsets topic was lost): recreating the slot and taking a snapshot"
            );
            let _ = info;
            true
        }
        (Some(info), None) => {
            let confirmed: Lsn = info
                .confirmed_flush
                .as_deref()
                .and_then(|s| s.parse().ok())
                .unwrap_or_default();
            tracing::warn!(slot = %cfg.slot, %confirmed, "no committed position in Kafka; snapshot: never, so streaming from the slot's position");
            return Ok(Next::Stream(confirmed, None));
        }
        (None, Some(p)) => match cfg.snapshot {
            SnapshotMode::WhenNeeded => {
                tracing::warn!(slot = %cfg.slot, "slot is missing although a position was committed: creating it and taking a new snapshot");
                false
            }
            SnapshotMode::Never => {
                tracing::warn!(slot = %cfg.slot, committed = %p.end_lsn, "slot is missing: creating it; changes made while it was missing are not captured");
                false
            }
            SnapshotMode::Initial | SnapshotMode::InitialOnly => {
                return Err(PgError::Config(format!(
                    "replication slot {:?} is missing, but Kafka holds a committed position ({}) for it: changes \
                     since then cannot be replayed. Fix: set source.postgres.snapshot: when_needed to take a new \
                     snapshot, or recreate the slot yourself if you accept the gap",
                    cfg.slot, p.end_lsn
                )))
            }
        },
        (None, None) => false,
    };
    let slot_q = catalog::quote_ident(&cfg.slot);
    if recreate {
        repl.simple_query(&format!("DROP_REPLICATION_SLOT {slot_q}"))
            .await?;
    }
    create_and_snapshot(cfg, repl, snapshot_mode, tx, stats).await
}

pub(crate) fn check_existing(cfg: &SourceConfig, info: &SlotInfo) -> Result<(), PgError> {
    if info.plugin.as_deref() != Some("pgoutput") {
        return Err(PgError::Config(format!(
            "replication slot {:?} exists but uses plugin {:?}, not pgoutput. Fix: choose another \
             source.postgres.slot, or drop it with SELECT pg_drop_replication_slot('{}')",
            cfg.slot,
            info.plugin.clone().unwrap_or_default(),
            cfg.slot
        )));
    }
    let our_db = cfg.pg.get_dbname().unwrap_or_default();
    if info.database.as_deref().is_some_and(|d| d != our_db) {
        return Err(PgError::Config(format!(
            "replication slot {:?} belongs to database {:?}, not {our_db:?}; choose another source.postgres.slot",
            cfg.slot,
            info.database.clone().unwrap_or_default()
        )));
    }
    if let Some(pid) = info.active_pid {
        // Transient: a previous instance may still be shutting down.
        return Err(PgError::SlotBusy {
            slot: cfg.slot.clone(),
            pid,
        });
    }
    if info.wal_status.as_deref() == Some("lost") {
        return Err(PgError::Config(format!(
            "replication slot {:?} was invalidated: PostgreSQL removed WAL it still needed \
             (max_slot_wal_keep_size), so changes were lost. Fix: drop it with \
             SELECT pg_drop_replication_slot('{}') and start again (a new snapshot is taken)",
            cfg.slot, cfg.slot
        )));
    }
    Ok(())
}

async fn create_and_snapshot(
    cfg: &SourceConfig,
    repl: &mut ReplicationConn,
    want_snapshot: bool,
    tx: &EventSender,
    stats: &SourceStats,
) -> Result<Next, PgError> {
    let slot_q = catalog::quote_ident(&cfg.slot);
    let new_syntax = repl.server_version() >= 150000;
    let sql_create = match (new_syntax, want_snapshot) {
        (true, true) => {
            format!("CREATE_REPLICATION_SLOT {slot_q} LOGICAL pgoutput (SNAPSHOT 'export')")
        }
        (true, false) => {
            format!("CREATE_REPLICATION_SLOT {slot_q} LOGICAL pgoutput (SNAPSHOT 'nothing')")
        }
        (false, true) => {
            format!("CREATE_REPLICATION_SLOT {slot_q} LOGICAL pgoutput EXPORT_SNAPSHOT")
        }
        (false, false) => {
            format!("CREATE_REPLICATION_SLOT {slot_q} LOGICAL pgoutput NOEXPORT_SNAPSHOT")
        }
    };
    let rows = repl.simple_query(&sql_create).await.map_err(|e| match e {
        PgError::Server { error, .. } if error.code == "53400" => PgError::Config(format!(
            "cannot create replication slot {:?}: all replication slots are in use. Fix: raise \
             max_replication_slots in postgresql.conf (restart needed) or drop unused slots",
            cfg.slot
        )),
        e => e,
    })?;
    let row = rows
        .first()
        .ok_or_else(|| PgError::protocol("CREATE_REPLICATION_SLOT", "no result row"))?;
    let consistent: Lsn = row
        .get(1)
        .cloned()
        .flatten()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| PgError::protocol("CREATE_REPLICATION_SLOT", "no consistent point"))?;
    tracing::info!(slot = %cfg.slot, consistent_point = %consistent, "created replication slot");
    if want_snapshot {
        let name = row.get(2).cloned().flatten().ok_or_else(|| {
            PgError::protocol("CREATE_REPLICATION_SLOT", "no exported snapshot name")
        })?;
        let plan = snapshot::Plan {
            snapshot_name: &name,
            commit_lsn: consistent,
            first_ordinal: 0,
            piece_lsn: consistent,
            tables: &cfg.tables,
            publication: &cfg.publication,
            after: None,
            keep_special_numerics: cfg.keep_special_numerics,
            parallelism: cfg.snapshot_parallelism,
            chunk_rows: cfg.snapshot_chunk_rows,
            key_order: sluice_core::KeyOrder::Index,
        };
        if let Err(e) = snapshot::run(&cfg.pg, &cfg.tls, plan, tx, stats).await {
            // Without the slot, the next start snapshots again instead of silently
            // missing the rows not yet read.
            let _ = repl
                .simple_query(&format!("DROP_REPLICATION_SLOT {slot_q}"))
                .await;
            return Err(e);
        }
        if cfg.snapshot == SnapshotMode::InitialOnly {
            return Ok(Next::Idle);
        }
    }
    Ok(Next::Stream(consistent, None))
}

/// Continues an unfinished snapshot after its last committed row. The slot's exported
/// snapshot died with the connection that created it, so the rest is read in a new one,
/// exported by a temporary slot (dropped when its connection closes); the stream then
/// starts at the first piece's point and skips changes a later piece already holds.
async fn resume_snapshot(
    cfg: &SourceConfig,
    slot: &SlotInfo,
    p: &Position,
    tx: &EventSender,
    stats: &SourceStats,
) -> Result<Next, PgError> {
    let (Some(progress), Some(resume)) = (&p.snapshot, p.resume) else {
        return Err(PgError::protocol("snapshot", "resume without progress"));
    };
    let params = crate::conn::ConnectParams::from_config(&cfg.pg, &cfg.tls)?;
    let mut temp = ReplicationConn::connect(&params).await?;
    let name = temp_slot_name(&cfg.slot);
    let name_q = catalog::quote_ident(&name);
    let sql_create = if temp.server_version() >= 150000 {
        format!("CREATE_REPLICATION_SLOT {name_q} TEMPORARY LOGICAL pgoutput (SNAPSHOT 'export')")
    } else {
        format!("CREATE_REPLICATION_SLOT {name_q} TEMPORARY LOGICAL pgoutput EXPORT_SNAPSHOT")
    };
    let rows = temp.simple_query(&sql_create).await.map_err(|e| match e {
        PgError::Server { error, .. } if error.code == "53400" => PgError::Config(
            "cannot resume the snapshot: it needs one more replication slot for a moment, and all \
             are in use. Fix: raise max_replication_slots in postgresql.conf (restart needed) or \
             drop unused slots"
                .to_string(),
        ),
        e => e,
    })?;
    let row = rows
        .first()
        .ok_or_else(|| PgError::protocol("CREATE_REPLICATION_SLOT", "no result row"))?;
    let point: Lsn = row
        .get(1)
        .cloned()
        .flatten()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| PgError::protocol("CREATE_REPLICATION_SLOT", "no consistent point"))?;
    let snapshot_name =
        row.get(2).cloned().flatten().ok_or_else(|| {
            PgError::protocol("CREATE_REPLICATION_SLOT", "no exported snapshot name")
        })?;
    // Tables no longer configured are not read; new ones were never part of it.
    let tables: Vec<_> = progress
        .tables
        .iter()
        .filter(|t| cfg.tables.contains(t))
        .cloned()
        .collect();
    let after = progress.cursor.clone();
    tracing::warn!(
        slot = %cfg.slot,
        after = ?after,
        committed_rows = resume.ordinal + 1,
        piece_point = %point,
        "the snapshot did not finish before the last stop: continuing after the last committed row in a new snapshot"
    );
    let plan = snapshot::Plan {
        snapshot_name: &snapshot_name,
        commit_lsn: resume.commit_lsn,
        first_ordinal: resume.ordinal + 1,
        piece_lsn: point,
        tables: &tables,
        publication: &cfg.publication,
        after: after.clone(),
        keep_special_numerics: cfg.keep_special_numerics,
        parallelism: cfg.snapshot_parallelism,
        chunk_rows: cfg.snapshot_chunk_rows,
        key_order: progress.key_order,
    };
    let read = snapshot::run(&cfg.pg, &cfg.tls, plan, tx, stats).await;
    let _ = temp.terminate().await;
    let n = read?;
    tracing::info!(rows = n, "snapshot resumed and finished");
    if cfg.snapshot == SnapshotMode::InitialOnly {
        return Ok(Next::Idle);
    }
    let mut progress = progress.clone();
    progress.pieces.push(Piece { lsn: point, after });
    let confirmed: Lsn = slot
        .confirmed_flush
        .as_deref()
        .and_then(|s| s.parse().ok())
        .unwrap_or_default();
    // Nothing after the first piece's point was confirmed while the snapshot ran.
    Ok(Next::Stream(confirmed.max(p.confirmable()), Some(progress)))
}

/// A temporary slot's name: the slot's, a suffix, and a random part (a crashed run's
/// temporary slot may linger until its connection is noticed gone).
fn temp_slot_name(slot: &str) -> String {
    let base: String = slot.chars().take(40).collect();
    format!("{base}_resume_{:08x}", rand::random::<u32>())
}
