//! PostgreSQL source: where change events are born.
//!
//! - [`conn`]: our own replication connection (startup, auth, simple query, CopyBoth);
//! - [`pgoutput`]: the logical decoding protocol decoder;
//! - [`catalog`]: SQL-side checks, publication and table shapes;
//! - [`snapshot`]: the initial consistent snapshot;
//! - [`stream`]: the streaming loop and standby status updates.

pub mod batch;
pub mod binary;
pub mod catalog;
pub mod conn;
pub mod copy;
pub mod ddl;
pub mod error;
pub mod pgoutput;
pub mod preflight;
pub mod slot;
pub mod snapshot;
pub mod stream;
pub mod text;
pub mod tls;

use std::collections::HashSet;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sluice_core::{EventSender, Lsn, Position, TableName};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub use error::{PgError, ServerError};

/// When to read the existing rows of the tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SnapshotMode {
    /// When the slot is created (first start): snapshot, then stream.
    Initial,
    /// Never snapshot; stream changes from the slot's creation on.
    Never,
    /// Snapshot when the slot is created, then stop without streaming.
    InitialOnly,
    /// Snapshot whenever there is no position to resume from (the slot is missing).
    WhenNeeded,
}

impl SnapshotMode {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "initial" => SnapshotMode::Initial,
            "never" => SnapshotMode::Never,
            "initial_only" => SnapshotMode::InitialOnly,
            "when_needed" => SnapshotMode::WhenNeeded,
            _ => return None,
        })
    }
}

/// What to do with unchanged TOASTed values that the server does not send.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ToastMode {
    /// Read the current value by primary key.
    #[default]
    Reselect,
    /// Keep an explicit placeholder (`__debezium_unavailable_value`).
    Placeholder,
}

/// Counters and gauges the source keeps for the metrics endpoint.
#[derive(Debug, Default)]
pub struct SourceStats {
    pub bytes_received: AtomicU64,
    /// Binary replication met a column it cannot read: text mode from then on (kept
    /// across reconnects, so an old Relation message in the WAL cannot loop).
    pub binary_refused: std::sync::atomic::AtomicBool,
    /// Whether the running stream asked for binary tuples.
    pub binary_mode: std::sync::atomic::AtomicBool,
    pub decode_errors: AtomicU64,
    pub toast_reselects: AtomicU64,
    pub toast_unavailable: AtomicU64,
    /// Last position confirmed to PostgreSQL.
    pub confirmed_lsn: AtomicU64,
    /// WAL the slot holds back (current WAL position - restart_lsn).
    pub retained_wal_bytes: AtomicU64,
    /// current WAL position - confirmed_flush_lsn.
    pub flush_lag_bytes: AtomicU64,
    /// pg_stat_replication_slots: spill_bytes, spill_txns, total_bytes (cumulative).
    pub spill_bytes: AtomicU64,
    pub spill_txns: AtomicU64,
    pub decoded_bytes: AtomicU64,
    /// pg_stat_replication_slots: stream_bytes, stream_txns (cumulative).
    pub stream_bytes: AtomicU64,
    pub stream_txns: AtomicU64,
    /// Whether the running stream asked for in-progress transactions.
    pub streaming_mode: std::sync::atomic::AtomicBool,
    /// Staging a streamed transaction failed: streaming off from then on (kept across
    /// reconnects, like `binary_refused`).
    pub streaming_refused: std::sync::atomic::AtomicBool,
    /// Bytes of streamed, still open transactions staged on local disk now.
    pub spill_local_bytes: AtomicU64,
    /// Streamed transactions open (staged) now.
    pub streamed_open: AtomicU64,
    /// Streamed transactions committed (replayed) and aborted (dropped).
    pub streamed_txns: AtomicU64,
    pub streamed_aborts: AtomicU64,
    /// pg_replication_slots.wal_status (reserved, extended, unreserved, lost).
    pub wal_status: Mutex<String>,
    pub snapshot_rows: AtomicU64,
    /// Per table of the running (or last) snapshot: rows read and the planner's estimate.
    pub snapshot_tables: Mutex<Vec<TableProgress>>,
    pub snapshot_tables_remaining: AtomicU64,
    /// Streamed changes skipped because a resumed snapshot's later piece holds them.
    pub snapshot_overlap_skipped: AtomicU64,
    /// When the last snapshot (piece) started and finished, Unix µs; 0: never.
    pub snapshot_started_us: std::sync::atomic::AtomicI64,
    pub snapshot_finished_us: std::sync::atomic::AtomicI64,
    /// numeric NaN/±Infinity replaced by null (Avro decimals cannot hold them).
    pub special_numeric_values: AtomicU64,
    /// Values of a type without a faithful mapping, passed on as their text.
    pub fallback_values: AtomicU64,
    /// Values clamped to the event format's range (intervals beyond ±292 000 years).
    pub clamped_values: AtomicU64,
}

#[derive(Clone, Debug)]
pub struct SourceConfig {
    /// Parsed from `source.postgres.url`, with the password from `password_file` applied.
    pub pg: tokio_postgres::Config,
    pub slot: String,
    pub publication: String,
    pub tables: Vec<TableName>,
    pub snapshot: SnapshotMode,
    /// How often a standby status update is sent even when nothing changed.
    pub status_interval: Duration,
    pub toast: ToastMode,
    /// Interval of `pg_logical_emit_message` heartbeats; `None` disables them.
    pub heartbeat_interval: Option<Duration>,
    pub tls: tls::TlsSettings,
    /// Logical decoding messages passed on as events.
    pub messages: MessageCapture,
    /// Capture DDL through an event trigger (see [`ddl`]).
    pub ddl_capture: bool,
    /// Keep numeric NaN/±Infinity (the sink represents them: decimals as double or
    /// string) instead of nulling them where a null fits.
    pub keep_special_numerics: bool,
    pub keyless_tables: KeylessTables,
    /// Connections reading the snapshot at once ([`default_snapshot_parallelism`]).
    pub snapshot_parallelism: usize,
    /// Rows per key range of a large table in the snapshot (0: never split).
    pub snapshot_chunk_rows: u64,
    /// Ask for in-progress transactions (pgoutput streaming), staged in `spill_dir`
    /// until they commit (see [`stream::spill`]).
    pub streaming: bool,
    pub spill_dir: std::path::PathBuf,
    /// Most bytes staged at once; beyond, streaming is turned off.
    pub spill_max_bytes: u64,
}

/// The snapshot's reading connections by default: half the CPUs this process may use,
/// 1 to 4. Each range read costs about one core on each side (the server's COPY output,
/// Sluice's parsing), and Sluice usually shares its machine with the server or with
/// other pods: on two cores, two readers read slower than one (connectors/postgres/BENCH.md).
pub fn default_snapshot_parallelism() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get() / 2)
        .clamp(1, 4)
}

/// Tables with neither a primary key nor a replica identity index (nor REPLICA
/// IDENTITY FULL).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KeylessTables {
    /// Refuse to start, saying how to give the table a key.
    #[default]
    Refuse,
    /// Stream them with a null event key, with a warning (fits insert-only tables:
    /// PostgreSQL refuses their updates and deletes while they are published).
    NullKey,
}

/// Which logical decoding messages (`pg_logical_emit_message`) become events.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MessageCapture {
    pub enabled: bool,
    /// Only messages with one of these prefixes (empty: every prefix). Prefixes starting
    /// with `sluice.` are Sluice's own (heartbeats, captured DDL) and never events.
    pub prefixes: Vec<String>,
}

impl MessageCapture {
    pub fn wants(&self, prefix: &str) -> bool {
        self.enabled
            && !prefix.starts_with(ddl::OWN_PREFIX)
            && (self.prefixes.is_empty() || self.prefixes.iter().any(|p| p == prefix))
    }
}

/// The pgoutput protocol version for a server version: 1 before 14, then 2 (14), 3 (15),
/// 4 (16 and later).
pub fn proto_version(server_version: u32) -> u32 {
    match server_version / 10000 {
        0..=13 => 1,
        14 => 2,
        15 => 3,
        _ => 4,
    }
}

/// Oldest supported server.
pub const MIN_SERVER_VERSION: u32 = 140000;

/// What the source tells the pipeline about its progress.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourceStatus {
    pub connected: bool,
    pub streaming: bool,
}

/// How far the snapshot of one table got.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableProgress {
    pub table: TableName,
    /// Rows read by this run (a resumed table counts from where it resumed).
    pub rows: u64,
    /// `pg_class.reltuples` when the table was started; `None` if never analyzed.
    pub estimate: Option<u64>,
}

/// Whether every column of every table can be read from pgoutput's binary tuples.
async fn all_binary_capable(
    sql: &tokio_postgres::Client,
    tables: &[TableName],
) -> Result<bool, PgError> {
    for t in tables {
        let oid = catalog::table_oid(sql, t).await?;
        let Some(mut table) = catalog::table_by_oid(sql, oid).await? else {
            return Ok(false);
        };
        catalog::key_as_streamed(&mut table);
        if !binary::table_binary_capable(&table) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Runs the source until `shutdown` fires or an error occurs. Events go to `tx` (bounded:
/// when the sink is slow the source stops reading); `acked` carries the position up to
/// which the sink has durably committed everything, and is the only position ever
/// confirmed to PostgreSQL.
pub async fn run(
    cfg: &SourceConfig,
    committed: Option<Position>,
    tx: EventSender,
    acked: watch::Receiver<Lsn>,
    status: watch::Sender<SourceStatus>,
    stats: Arc<SourceStats>,
    shutdown: CancellationToken,
) -> Result<(), PgError> {
    let sql = catalog::connect_sql(&cfg.pg, &cfg.tls).await?;
    catalog::check_server(&sql).await?;
    catalog::check_privileges(&sql, &cfg.tables).await?;
    catalog::check_tables(&sql, &cfg.tables, cfg.keyless_tables).await?;
    catalog::ensure_publication(&sql, &cfg.publication, &cfg.tables).await?;
    if cfg.ddl_capture {
        ddl::ensure(&sql, cfg.pg.get_dbname().unwrap_or("postgres")).await?;
    }

    let params = conn::ConnectParams::from_config(&cfg.pg, &cfg.tls)?;
    let mut repl = conn::ReplicationConn::connect(&params).await?;
    status.send_modify(|s| s.connected = true);
    let version = repl.server_version();
    tracing::info!(server_version = version, "replication connection open");
    if version < MIN_SERVER_VERSION {
        return Err(PgError::Config(format!(
            "PostgreSQL {}.{} is not supported; Sluice needs PostgreSQL 14 or newer",
            version / 10000,
            version % 10000
        )));
    }

    let slot_q = catalog::quote_ident(&cfg.slot);
    let (start_lsn, progress) =
        match slot::prepare(cfg, &mut repl, &sql, committed.as_ref(), &tx, &stats).await? {
            slot::Next::Stream(lsn, progress) => (lsn, progress),
            slot::Next::Idle => {
                tracing::info!("snapshot: initial_only: snapshot done, not streaming");
                let _ = repl.terminate().await;
                shutdown.cancelled().await;
                return Ok(());
            }
        };

    // Binary tuples when every captured column can be read from them (cheaper for the
    // server and here); text otherwise, or for good once binary met a column it cannot
    // read (a DDL added one).
    let binary = !stats
        .binary_refused
        .load(std::sync::atomic::Ordering::Relaxed)
        && all_binary_capable(&sql, &cfg.tables).await?;
    stats
        .binary_mode
        .store(binary, std::sync::atomic::Ordering::Relaxed);
    let mode = Arc::clone(&stats);
    let pubs = catalog::quote_literal(&catalog::quote_ident(&cfg.publication));
    // In-progress transactions (protocol 2+) are staged on local disk until they commit
    // (stream::spill), so PostgreSQL does not spill them on its side; they reach Kafka
    // only once committed. Off by configuration or after staging failed (no room).
    let streaming = cfg.streaming
        && !stats
            .streaming_refused
            .load(std::sync::atomic::Ordering::Relaxed);
    let spill = if streaming {
        Some(
            stream::spill::Spill::open(&cfg.spill_dir, cfg.spill_max_bytes, Arc::clone(&stats))
                .await?,
        )
    } else {
        None
    };
    stats
        .streaming_mode
        .store(streaming, std::sync::atomic::Ordering::Relaxed);
    let proto = proto_version(version);
    let parallel_streaming = streaming && proto >= 4;
    // Logical messages are always asked for, whatever uses them: a transactional one
    // takes an ordinal in its transaction, so ordinals (and the committed resume points
    // built on them) must not depend on the configuration. Unwanted ones are dropped.
    let start = format!(
        "START_REPLICATION SLOT {slot_q} LOGICAL {start_lsn} (proto_version '{proto}', publication_names {pubs}, messages 'true'{}{})",
        if binary { ", binary 'true'" } else { "" },
        match (streaming, parallel_streaming) {
            (false, _) => "",
            (true, false) => ", streaming 'on'",
            (true, true) => ", streaming 'parallel'",
        }
    );
    repl.start_copy_both(&start).await.map_err(|e| match e {
        // Another connection took the slot between our check and START_REPLICATION.
        PgError::Server { error, .. } if error.code == "55006" => PgError::SlotBusy {
            slot: cfg.slot.clone(),
            pid: 0,
        },
        e => e,
    })?;
    status.send_modify(|s| s.streaming = true);
    tracing::info!(slot = %cfg.slot, from = %start_lsn, binary, in_progress = streaming, "streaming changes");
    let result = stream::Streamer {
        conn: repl,
        ctx: stream::Context {
            sql: &sql,
            tables: cfg.tables.iter().cloned().collect::<HashSet<_>>(),
            toast: cfg.toast,
            stats,
            messages: cfg.messages.clone(),
            ddl_capture: cfg.ddl_capture,
            publication: cfg.publication.clone(),
            keep_special_numerics: cfg.keep_special_numerics,
            binary,
        },
        slot: cfg.slot.clone(),
        tx,
        acked,
        shutdown,
        status_interval: cfg.status_interval,
        heartbeat_interval: cfg.heartbeat_interval,
        start_lsn,
        filter: progress.and_then(stream::filter::SnapshotFilter::new),
        spill,
        parallel_streaming,
    }
    .run()
    .await;
    status.send_modify(|s| *s = SourceStatus::default());
    // No stream, no binary tuples (the gauge reads 0 until the next stream starts).
    mode.binary_mode
        .store(false, std::sync::atomic::Ordering::Relaxed);
    result
}
