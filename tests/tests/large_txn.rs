//! A huge source transaction streams through in bounded memory: the peak resident set of
//! the sluice process stays under a fixed ceiling however many rows the transaction has.
//! PostgreSQL streams it while it runs (Sluice stages it on disk until the commit); the
//! same with streaming off (PostgreSQL spills it and sends it after the commit) is the
//! second test.
//! Rows: SLUICE_BIG_TXN_ROWS (default 500,000; the figure is 5,000,000).

use std::time::{Duration, Instant};

use sluice_tests::sluice::Sluice;
use sluice_tests::{wait_for, Stack};

/// Peak RSS (VmHWM) of a process, in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

#[test]
fn a_huge_transaction_streams_in_bounded_memory() {
    huge_transaction(true);
}

#[test]
fn a_huge_transaction_spilled_by_postgres_streams_in_bounded_memory() {
    huge_transaction(false);
}

fn huge_transaction(streaming: bool) {
    let rows: u64 = std::env::var("SLUICE_BIG_TXN_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500_000);
    // Measured ~31 MiB for 500k rows (debug build). Holding the transaction would take
    // several hundred bytes per row decoded, far above this ceiling.
    const CEILING: u64 = 128 << 20;
    let st = Stack::new(
        "CREATE TABLE big (id bigint PRIMARY KEY, note text NOT NULL, n int NOT NULL)",
        &["public.big"],
    );
    let env = [(
        "SLUICE__SOURCE__POSTGRES__STREAMING",
        if streaming { "true" } else { "false" },
    )];
    let mut s = Sluice::start_with_env(&st.config, st.setup.admin_port, &env);
    s.wait_ready();
    let pid = s.pid().unwrap();
    let base = peak_rss(pid);
    let t0 = Instant::now();
    st.pg.psql(&format!(
        "INSERT INTO big SELECT i, 'row number ' || i || repeat('.', 60), i % 1000 FROM generate_series(1, {rows}) i"
    ));
    let inserted = t0.elapsed();
    let end = st.pg.current_lsn();
    wait_for(
        "the whole transaction to be committed to Kafka and confirmed",
        Duration::from_secs(900),
        || (st.pg.confirmed_flush("sluice") >= end).then_some(()),
    );
    let streamed = t0.elapsed();
    let peak = peak_rss(pid);
    let (_, metrics) = s.admin_get("/metrics").unwrap();
    let produced: u64 = metrics
        .lines()
        .find(|l| l.starts_with("sluice_events_total{op=\"c\",table=\"public.big\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    eprintln!(
        "{rows} rows: inserted in {inserted:?}, committed to Kafka after {streamed:?}; sluice peak RSS {} MiB (at start {} MiB)",
        peak >> 20,
        base >> 20
    );
    assert_eq!(produced, rows, "events committed for the transaction");
    // PostgreSQL's own accounting of the slot, refreshed with each status update.
    // Streamed while it ran (decoding memory is 64 MB by default) and passed on from
    // Sluice's staging file after the commit; or spilled by PostgreSQL.
    let (pg_side, sluice_side) = if streaming {
        ("sluice_slot_stream_transactions", 1)
    } else {
        ("sluice_slot_spill_transactions", 0)
    };
    wait_for(pg_side, Duration::from_secs(30), || {
        let (_, m) = s.admin_get("/metrics")?;
        m.lines()
            .any(|l| l.starts_with(&format!("{pg_side} ")) && !l.ends_with(" 0"))
            .then_some(())
    });
    let (_, metrics) = s.admin_get("/metrics").unwrap();
    let gauge = |name: &str| -> u64 {
        metrics
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    eprintln!(
        "slot statistics at the end: PostgreSQL spilled {} bytes in {} transactions, streamed {} bytes in {} transactions (staged by Sluice), decoded {} bytes",
        gauge("sluice_slot_spill_bytes"),
        gauge("sluice_slot_spill_transactions"),
        gauge("sluice_slot_stream_bytes"),
        gauge("sluice_slot_stream_transactions"),
        gauge("sluice_slot_decoded_bytes"),
    );
    assert_eq!(
        gauge("sluice_source_streamed_commits_total"),
        sluice_side,
        "{metrics}"
    );
    assert!(
        peak < CEILING,
        "peak RSS {} MiB above the {} MiB ceiling",
        peak >> 20,
        CEILING >> 20
    );
    let (status, _) = s.terminate();
    assert!(status.success(), "{}", s.log_text());
}
