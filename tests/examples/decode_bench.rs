//! Source decoding benchmark: rows/s Sluice's PostgreSQL source decodes from a replication
//! slot into typed change events, against `pg_recvlogical` (pgoutput, binary=true) reading
//! the same WAL from a slot created at the same LSN, in the same run. pg_recvlogical only
//! copies the raw messages to /dev/null: it is the floor set by the server's decoding and
//! the wire, so the ratio says how much Sluice's own work costs on top of it.
//!
//! `cargo run --release -p sluice-tests --example decode_bench [rows] [transactions]`
//! (default 1,000,000 rows in 1,000 transactions); appends the figures to
//! connectors/postgres/BENCH.md.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_core::{Lsn, SourceEvent, TableName};
use sluice_postgres::{SnapshotMode, SourceConfig, SourceStats, ToastMode};
use sluice_tests::bench;
use sluice_tests::pg::Postgres;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

fn main() {
    let (rows, txns) = bench::workload_args();
    let pg = Postgres::start();
    bench::create_table(&pg, "bench");
    // Both slots before any row: they decode the same WAL.
    pg.psql("SELECT pg_create_logical_replication_slot('theirs', 'pgoutput')");
    pg.psql("SELECT pg_create_logical_replication_slot('ours', 'pgoutput')");
    let end = bench::write_rows(&pg, rows, txns);
    let theirs = bench::pg_recvlogical(&pg, "theirs", "bench", end);

    // Sluice's source: decoded into typed events, counted by a consumer.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (ours, decoded) = rt.block_on(async {
        let cfg = SourceConfig {
            pg: pg.url_with_password().parse().unwrap(),
            slot: "ours".into(),
            publication: "bench".into(),
            tables: vec![TableName::new("public", "bench")],
            snapshot: SnapshotMode::Never,
            status_interval: Duration::from_secs(10),
            toast: ToastMode::Reselect,
            heartbeat_interval: None,
            tls: Default::default(),
            messages: Default::default(),
            ddl_capture: false,
            keep_special_numerics: false,
        };
        let (tx, mut rx) = mpsc::channel(4096);
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
        while let Some(ev) = rx.recv().await {
            match ev {
                SourceEvent::Change(_) => changes += 1,
                SourceEvent::Commit { end_lsn, .. } if end_lsn.0 >= end => break,
                _ => {}
            }
        }
        let took = started.elapsed();
        stop.cancel();
        drop(rx);
        let _ = source.await;
        (took, changes)
    });
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
