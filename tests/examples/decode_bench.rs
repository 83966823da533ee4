//! Source decoding benchmark: rows/s Sluice's PostgreSQL source decodes from a replication
//! slot into typed change events, against `pg_recvlogical` (pgoutput, binary=true) reading
//! the same WAL from a slot created at the same LSN, in the same run. pg_recvlogical only
//! copies the raw messages to /dev/null: it is the floor set by the server's decoding and
//! the wire, so the ratio says how much Sluice's own work costs on top of it.
//!
//! `cargo run --release -p sluice-tests --example decode_bench [rows] [transactions]`
//! (default 1,000,000 rows in 1,000 transactions); appends the figures to
//! connectors/postgres/BENCH.md.
//!
//! `... --example decode_bench snapshot [rows]`: the snapshot instead — rows/s Sluice's
//! initial snapshot reads into typed events, against `COPY (SELECT * FROM bench) TO
//! STDOUT (FORMAT binary)` of the same table, in the same run: each side three times,
//! alternately, the best of each compared (the two cores are shared with the server, and
//! single runs vary by a third).

use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_core::{Lsn, SourceEvent, TableName};
use sluice_postgres::{SnapshotMode, SourceConfig, SourceStats, ToastMode};
use sluice_tests::bench;
use sluice_tests::pg::Postgres;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

fn main() {
    if std::env::args().nth(1).as_deref() == Some("snapshot") {
        return snapshot();
    }
    let (rows, txns) = bench::workload_args();
    let pg = Postgres::start();
    bench::create_table(&pg, "bench");
    // Both slots before any row: they decode the same WAL.
    pg.psql("SELECT pg_create_logical_replication_slot('theirs', 'pgoutput')");
    pg.psql("SELECT pg_create_logical_replication_slot('ours', 'pgoutput')");
    let end = bench::write_rows(&pg, rows, txns);
    let theirs = bench::pg_recvlogical(&pg, "theirs", "bench", end);

    // Sluice's source: decoded into typed events, counted by a consumer.
    let (ours, decoded, _) = run_source(
        &pg,
        SnapshotMode::Never,
        |ev| matches!(ev, SourceEvent::Commit { end_lsn, .. } if end_lsn.0 >= end),
    );
    assert_eq!(
        decoded, rows,
        "Sluice decoded {decoded} rows, expected {rows}"
    );

    let rate = |d: Duration| rows as f64 / d.as_secs_f64();
    bench::record(
        "connectors/postgres/BENCH.md",
        &format!(
            "- {}: decode, {rows} rows in {txns} transactions (6 columns): sluice {:.0} rows/s ({:.2} s), pg_recvlogical binary {:.0} rows/s ({:.2} s), ratio {:.2}",
            bench::today(),
            rate(ours),
            ours.as_secs_f64(),
            rate(theirs),
            theirs.as_secs_f64(),
            theirs.as_secs_f64() / ours.as_secs_f64()
        ),
    );
}

/// The snapshot against COPY binary of the same table.
fn snapshot() {
    let rows: u64 = std::env::args()
        .nth(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let pg = Postgres::start();
    bench::create_table(&pg, "bench");
    bench::write_rows(&pg, rows, 100);
    pg.psql("VACUUM ANALYZE bench");
    let mut theirs = Duration::MAX;
    let mut ours = Duration::MAX;
    let mut first_row = Duration::MAX;
    let mut best_cpu = 0.0;
    let mut bytes = 0;
    for round in 0..3 {
        let (t, b) = copy_binary(&pg);
        theirs = theirs.min(t);
        bytes = b;
        if round > 0 {
            pg.psql("SELECT pg_drop_replication_slot('ours')");
        }
        let cpu_before = cpu_seconds();
        let (o, read, f) = run_source(&pg, SnapshotMode::Initial, |ev| {
            matches!(ev, SourceEvent::Commit { .. })
        });
        let cpu = cpu_seconds() - cpu_before;
        assert_eq!(
            read, rows,
            "Sluice's snapshot read {read} rows, expected {rows}"
        );
        eprintln!(
            "round {round}: COPY {:.2} s, Sluice {:.2} s ({cpu:.2} s of CPU)",
            t.as_secs_f64(),
            o.as_secs_f64()
        );
        if o < ours {
            ours = o;
            first_row = f;
            best_cpu = cpu;
        }
    }
    let rate = |d: Duration| rows as f64 / d.as_secs_f64();
    let parallelism = snapshot_parallelism();
    bench::record(
        "connectors/postgres/BENCH.md",
        &format!(
            "- {}: snapshot, {rows} rows (6 columns) into typed events, best of 3: sluice {:.0} rows/s ({:.2} s, {best_cpu:.2} s of CPU, {parallelism} reading connection(s); the first row after {:.2} s: connection, checks, slot creation), COPY (FORMAT binary) {:.0} rows/s ({:.2} s, {} MiB), ratio {:.2}",
            bench::today(),
            rate(ours),
            ours.as_secs_f64(),
            first_row.as_secs_f64(),
            rate(theirs),
            theirs.as_secs_f64(),
            bytes >> 20,
            theirs.as_secs_f64() / ours.as_secs_f64()
        ),
    );
}

/// The snapshot's reading connections: `SNAPSHOT_PARALLELISM`, else Sluice's default.
fn snapshot_parallelism() -> usize {
    std::env::var("SNAPSHOT_PARALLELISM")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(sluice_postgres::default_snapshot_parallelism)
}

/// CPU time (user and system) this process has used, in seconds (Linux: from
/// /proc/self/stat, in clock ticks of 1/100 s).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

/// `COPY (SELECT * FROM bench) TO STDOUT (FORMAT binary)`, drained by a client that
/// counts the bytes: time and bytes.
fn copy_binary(pg: &Postgres) -> (Duration, usize) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use futures_util::StreamExt;
        let (client, conn) =
            tokio_postgres::connect(&pg.url_with_password(), tokio_postgres::NoTls)
                .await
                .unwrap();
        tokio::spawn(conn);
        let started = Instant::now();
        let stream = client
            .copy_out("COPY (SELECT * FROM bench) TO STDOUT (FORMAT binary)")
            .await
            .unwrap();
        let mut stream = std::pin::pin!(stream);
        let mut bytes = 0usize;
        while let Some(chunk) = stream.next().await {
            bytes += chunk.unwrap().len();
        }
        (started.elapsed(), bytes)
    })
}

/// Runs Sluice's source on table `bench` (slot `ours`) until `done` says so; returns the
/// time taken and the row changes seen.
fn run_source(
    pg: &Postgres,
    snapshot: SnapshotMode,
    done: impl Fn(&SourceEvent) -> bool,
) -> (Duration, u64, Duration) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let cfg = SourceConfig {
            pg: pg.url_with_password().parse().unwrap(),
            slot: "ours".into(),
            publication: "bench".into(),
            tables: vec![TableName::new("public", "bench")],
            snapshot,
            status_interval: Duration::from_secs(10),
            toast: ToastMode::Reselect,
            heartbeat_interval: None,
            tls: Default::default(),
            messages: Default::default(),
            ddl_capture: false,
            keep_special_numerics: false,
            keyless_tables: Default::default(),
            snapshot_parallelism: snapshot_parallelism(),
            snapshot_chunk_rows: 20_000,
            // The default (1,000-row transactions stay under PostgreSQL's 64 MB of
            // decoding memory, so nothing is streamed in progress).
            streaming: true,
            spill_dir: std::env::temp_dir().join("sluice-decode-bench-spill"),
            spill_max_bytes: 1 << 30,
        };
        let (tx, mut rx) = sluice_core::event_queue(4096);
        let (_ack_tx, ack_rx) = watch::channel(Lsn::ZERO);
        let (status_tx, _status_rx) = watch::channel(Default::default());
        let stop = CancellationToken::new();
        let source_stop = stop.clone();
        let started = Instant::now();
        let source = tokio::spawn(async move {
            sluice_postgres::run(
                &cfg,
                None,
                tx,
                ack_rx,
                status_tx,
                Arc::new(SourceStats::default()),
                source_stop,
            )
            .await
        });
        let mut changes = 0u64;
        let mut first = None;
        'recv: while let Some(batch) = rx.recv().await {
            for ev in batch {
                if matches!(ev, SourceEvent::Change(_)) {
                    changes += 1;
                    first.get_or_insert_with(|| started.elapsed());
                }
                if done(&ev) {
                    break 'recv;
                }
            }
        }
        let took = started.elapsed();
        stop.cancel();
        drop(rx);
        let _ = source.await;
        (took, changes, first.unwrap_or(took))
    })
}
