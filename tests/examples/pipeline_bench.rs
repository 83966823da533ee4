//! End-to-end benchmark: rows/s from PostgreSQL's WAL to committed Kafka transactions
//! (release `sluice` against the local tansu broker, Avro events registered in the
//! bundled registry, exactly-once transactions), against `pg_recvlogical` reading the same
//! WAL (pgoutput, binary=true) from a slot created at the same LSN, in the same run.
//!
//! `cargo build --release -p sluice && SLUICE_BIN=target/release/sluice cargo run --release
//! -p sluice-tests --example pipeline_bench [rows] [transactions]` (`./dev bench` does
//! this); appends the figures to tests/BENCH.md.

use std::time::{Duration, Instant};

use sluice_tests::bench;
use sluice_tests::sluice::Sluice;
use sluice_tests::Stack;

fn main() {
    let mut args = std::env::args().skip(1);
    let rows: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let txns: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1_000);
    assert!(
        std::env::var_os("SLUICE_BIN").is_some(),
        "set SLUICE_BIN to a release build of sluice (see the header of this file)"
    );
    let st = Stack::new("", &["public.bench"]);
    bench::create_table(&st.pg, "sluice");
    // Both slots before any row: they decode the same WAL.
    st.pg
        .psql("SELECT pg_create_logical_replication_slot('theirs', 'pgoutput')");
    st.pg
        .psql("SELECT pg_create_logical_replication_slot('sluice', 'pgoutput')");
    let end = bench::write_rows(&st.pg, rows, txns);
    let theirs = bench::pg_recvlogical(&st.pg, "theirs", "sluice", end);

    // Sluice streams the existing slot (no snapshot) until every row is committed in
    // Kafka and confirmed to PostgreSQL.
    let started = Instant::now();
    let mut s = Sluice::start_with_env(
        &st.config,
        st.setup.admin_port,
        &[
            ("SLUICE__SOURCE__POSTGRES__SNAPSHOT", "never"),
            ("RUST_LOG", "warn"),
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(1800);
    while st.pg.confirmed_flush("sluice") < end {
        assert!(Instant::now() < deadline, "sluice did not catch up in time");
        if let Some(status) = s.exited() {
            panic!("sluice exited ({status}):\n{}", s.log_text());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let ours = started.elapsed();
    let (_, metrics) = s.admin_get("/metrics").expect("metrics");
    let produced: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("sluice_events_total{op=\"c\",table=\"public.bench\"} "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    assert_eq!(produced, rows, "events committed to Kafka");
    let txns_committed: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("sluice_kafka_transactions_total{result=\"committed\"} "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let (status, _) = s.terminate();
    assert!(status.success(), "{}", s.log_text());

    let rate = |d: Duration| rows as f64 / d.as_secs_f64();
    bench::record(
        "tests/BENCH.md",
        &format!(
            "- {}: end to end, {rows} rows in {txns} transactions (6 columns) into Kafka, exactly once, default batching ({txns_committed} Kafka transactions; startup included): sluice {:.0} rows/s ({:.2} s), pg_recvlogical binary {:.0} rows/s ({:.2} s), ratio {:.2}",
            bench::today(),
            rate(ours),
            ours.as_secs_f64(),
            rate(theirs),
            theirs.as_secs_f64(),
            theirs.as_secs_f64() / ours.as_secs_f64()
        ),
    );
}
