//! Exactly-once under faults, judged by the independent auditor (tests/audit/audit.py):
//! a mixed workload (small, large and rolled-back transactions touching two tables)
//! runs while sluice is killed with SIGKILL at random moments, again and again.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use sluice_tests::broker::Broker;
use sluice_tests::pg::{Postgres, DATABASE, PASSWORD};
use sluice_tests::sluice::{Setup, Sluice};
use sluice_tests::{wait_for, Stack};

const KEYS: i32 = 20;
const MAX_EVENTS: &str = "300";

struct Workload {
    stop: Arc<AtomicBool>,
    committed: Arc<AtomicU64>,
    rolled_back: Arc<AtomicU64>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Workload {
    /// `first_txn`: workload transaction numbers start after it (unique across workloads).
    fn start(port: u16, first_txn: i64) -> Workload {
        let stop = Arc::new(AtomicBool::new(false));
        let committed = Arc::new(AtomicU64::new(0));
        let rolled_back = Arc::new(AtomicU64::new(0));
        let (s, c, r) = (stop.clone(), committed.clone(), rolled_back.clone());
        let handle = std::thread::spawn(move || {
            let rt = runtime();
            rt.block_on(async move {
                let conn = format!("host=127.0.0.1 port={port} user=postgres password={PASSWORD} dbname={DATABASE}");
                let (mut client, connection) = tokio_postgres::connect(&conn, tokio_postgres::NoTls).await.unwrap();
                tokio::spawn(connection);
                let mut t: i64 = first_txn;
                while !s.load(Ordering::Relaxed) {
                    t += 1;
                    let (n_keys, rows_per_key, rollback) = {
                        let mut rng = rand::rng();
                        let roll: u32 = rng.random_range(0..100);
                        match roll {
                            // large: 1200 updates + 1200 inserts (rolled back now and then)
                            0..=4 => (KEYS, 60, roll == 0),
                            5..=14 => (rng.random_range(1..5), 1, true), // rolled back
                            _ => (rng.random_range(1..5), 1, false),
                        }
                    };
                    let tx = client.transaction().await.unwrap();
                    let first: i32 = rand::rng().random_range(1..=KEYS);
                    // Large ones sometimes carry a logical message (it takes an ordinal
                    // whether captured or not) and roll a savepoint back (its rows, and a
                    // message in it, must never reach Kafka).
                    let (message, savepoint, message_in_savepoint) = {
                        let mut rng = rand::rng();
                        let large = n_keys == KEYS;
                        (large && rng.random_bool(0.5), large && rng.random_bool(0.5), rng.random_bool(0.3))
                    };
                    if message {
                        tx.execute("SELECT pg_logical_emit_message(true, 'workload', 'large')", &[]).await.unwrap();
                    }
                    for i in 0..n_keys {
                        if savepoint && i == n_keys / 2 {
                            tx.batch_execute("SAVEPOINT sp").await.unwrap();
                            tx.execute(
                                "INSERT INTO ledger (k, seq, txn, pad) SELECT 1, -1, $1, 'rolled back' FROM generate_series(1, 200)",
                                &[&t],
                            )
                            .await
                            .unwrap();
                            if message_in_savepoint {
                                tx.execute("SELECT pg_logical_emit_message(true, 'workload', 'rolled back')", &[]).await.unwrap();
                            }
                            tx.batch_execute("ROLLBACK TO SAVEPOINT sp").await.unwrap();
                        }
                        let k = (first + i - 1) % KEYS + 1;
                        for _ in 0..rows_per_key {
                            let row = tx
                                .query_one("UPDATE acct SET seq = seq + 1, txn = $1 WHERE k = $2 RETURNING seq", &[&t, &k])
                                .await
                                .unwrap();
                            let seq: i64 = row.get(0);
                            tx.execute(
                                "INSERT INTO ledger (k, seq, txn, pad) VALUES ($1, $2, $3, repeat('x', 50))",
                                &[&k, &seq, &t],
                            )
                            .await
                            .unwrap();
                        }
                    }
                    if rollback {
                        tx.rollback().await.unwrap();
                        r.fetch_add(1, Ordering::Relaxed);
                    } else {
                        tx.commit().await.unwrap();
                        c.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        });
        Workload {
            stop,
            committed,
            rolled_back,
            handle: Some(handle),
        }
    }

    fn finish(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            h.join().expect("workload thread");
        }
    }
}

impl Drop for Workload {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn audit(pg: &Postgres, broker: &Broker, setup: &Setup) -> serde_json::Value {
    let out = std::process::Command::new(sluice_tests::reader::python())
        .arg(sluice_tests::repo_root().join("tests/audit/audit.py"))
        .args([
            "--bootstrap",
            &broker.bootstrap(),
            "--registry",
            &setup.registry_url(),
        ])
        .args([
            "--prefix",
            "shop",
            "--offsets-topic",
            "sluice.offsets",
            "--slot",
            "sluice",
        ])
        .args([
            "--pg",
            &format!(
                "host=127.0.0.1 port={} user=postgres password={PASSWORD} dbname={DATABASE}",
                pg.port
            ),
        ])
        .args(["--max-events", MAX_EVENTS, "--json"])
        .output()
        .expect("run the auditor");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "auditor output is not JSON ({e}):\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    report
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The committed position, read as a restart would.
fn load(
    broker: &Broker,
    rt: &tokio::runtime::Runtime,
) -> Result<Option<sluice_core::Position>, sluice_kafka::SinkError> {
    rt.block_on(sluice_kafka::offsets::load(
        &broker.bootstrap(),
        &Default::default(),
        "sluice.offsets",
        "sluice",
    ))
}

/// The committed position; `None` also while it cannot be read.
fn committed(broker: &Broker, rt: &tokio::runtime::Runtime) -> Option<sluice_core::Position> {
    load(broker, rt).ok().flatten()
}

/// After every kill nothing runs, so the check is exact: PostgreSQL's confirmed
/// position is never ahead of what Kafka committed.
fn check_confirmed_not_ahead(pg: &Postgres, broker: &Broker, rt: &tokio::runtime::Runtime) {
    let confirmed = pg.confirmed_flush("sluice");
    let committed = load(broker, rt)
        .expect("read offsets")
        .map(|p| p.end_lsn.0)
        .unwrap_or(0);
    // With no committed record yet, the slot still sits where PostgreSQL created it.
    assert!(
        committed == 0 || confirmed <= committed,
        "confirmed_flush_lsn {confirmed} is ahead of the committed position {committed}"
    );
}

/// The audited workload's tables: per-key sequences in `acct`, one `ledger` row per change
/// (its key declared out of column order: a snapshot reads it in the key index's order).
fn ledger_stack() -> Stack {
    Stack::new(
        "CREATE TABLE acct (k int PRIMARY KEY, seq bigint NOT NULL, txn bigint NOT NULL);
         CREATE TABLE ledger (k int NOT NULL, id bigserial, seq bigint NOT NULL, txn bigint NOT NULL, pad text, PRIMARY KEY (id, k));
         INSERT INTO acct SELECT k, 0, 0 FROM generate_series(1, 20) k;",
        &["public.acct", "public.ledger"],
    )
}

/// Decoding memory at its minimum (64 kB): the workload's large transactions are
/// streamed in progress, so the faults also hit staging and replay. (Not for the frozen
/// broker: it needs a commit in flight during the freeze, and staging changes when
/// commits happen.)
fn stream_large_transactions(pg: &Postgres) {
    pg.psql("ALTER DATABASE shop SET logical_decoding_work_mem = '64kB'");
}

/// Waits until sluice confirmed everything written, audits the log while sluice (and
/// its bundled registry) is up and idle, stops it cleanly and asserts the audit is clean.
fn catch_up_audit_and_stop(pg: &Postgres, broker: &Broker, setup: &Setup, mut s: Sluice) {
    let end = pg.current_lsn();
    wait_for(
        "sluice to confirm the whole workload",
        Duration::from_secs(120),
        || (pg.confirmed_flush("sluice") >= end).then_some(()),
    );
    let report = audit(pg, broker, setup);
    eprintln!("audit: {}", report["stats"]);
    let (status, _) = s.terminate();
    assert!(status.success(), "{}", s.log_text());
    assert_eq!(
        report["ok"],
        serde_json::json!(true),
        "auditor found problems: {report:#}"
    );
}

#[test]
fn kill_9_at_random_moments_loses_and_duplicates_nothing() {
    let Stack {
        pg,
        broker,
        setup,
        config,
    } = ledger_stack();
    // Each start picks streaming on or off at random: a transaction half committed by
    // one mode is resumed by the other, so both must give the same events and ordinals.
    stream_large_transactions(&pg);
    let env = |streaming: bool| {
        [
            ("SLUICE__SINK__KAFKA__BATCH__MAX_EVENTS", MAX_EVENTS),
            ("SLUICE__SINK__KAFKA__BATCH__LINGER_MS", "30"),
            ("SLUICE__SINK__KAFKA__TRANSACTION_TIMEOUT_SECS", "10"),
            (
                "SLUICE__SOURCE__POSTGRES__STREAMING",
                if streaming { "true" } else { "false" },
            ),
        ]
    };
    let start = || {
        Sluice::start_with_env(
            &config,
            setup.admin_port,
            &env(rand::rng().random_bool(0.5)),
        )
    };
    let rt = runtime();
    let kills: usize = std::env::var("SLUICE_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);

    let mut s = Sluice::start_with_env(&config, setup.admin_port, &env(true));
    s.wait_ready();
    // The initial snapshot is committed before the first kill: kills during a snapshot
    // are the subject of snapshot_killed_mid_table_resumes_and_loses_and_duplicates_nothing.
    wait_for(
        "the snapshot to be committed",
        Duration::from_secs(60),
        || committed(&broker, &rt).filter(|p| !p.snapshot_pending),
    );
    let mut workload = Workload::start(pg.port, 0);
    let t0 = Instant::now();
    for i in 0..kills {
        // Let it run a random while: before, during and after commits.
        let ms = rand::rng().random_range(50..1500);
        std::thread::sleep(Duration::from_millis(ms));
        if let Some(status) = s.exited() {
            panic!(
                "sluice exited on its own ({status}) before kill {i}:\n{}",
                s.log_text()
            );
        }
        s.kill9();
        check_confirmed_not_ahead(&pg, &broker, &rt);
        s = start();
        // Sometimes kill it again before it is even ready.
        if rand::rng().random_range(0..4) == 0 {
            std::thread::sleep(Duration::from_millis(rand::rng().random_range(0..400)));
            s.kill9();
            check_confirmed_not_ahead(&pg, &broker, &rt);
            s = start();
        }
        s.wait_ready();
    }
    workload.finish();
    eprintln!(
        "{kills} kills in {:?}; {} transactions committed, {} rolled back",
        t0.elapsed(),
        workload.committed.load(Ordering::Relaxed),
        workload.rolled_back.load(Ordering::Relaxed)
    );
    catch_up_audit_and_stop(&pg, &broker, &setup, s);
    assert!(workload.committed.load(Ordering::Relaxed) > 50);
    let streamed: i64 = pg
        .psql("SELECT stream_txns FROM pg_stat_replication_slots WHERE slot_name = 'sluice'")
        .parse()
        .unwrap_or(0);
    eprintln!("transactions streamed in progress: {streamed}");
    assert!(streamed > 0, "no transaction was streamed in progress");
}

#[test]
fn a_second_instance_on_the_same_slot_stops_and_the_first_keeps_running() {
    let pg = Postgres::start();
    let broker = Broker::start();
    pg.psql("CREATE TABLE items (id int PRIMARY KEY, v text NOT NULL)");
    let first = Setup::new();
    let config = first.write_config(&pg, &broker.bootstrap(), &["public.items"], "");
    let mut a = Sluice::start(&config, first.admin_port);
    a.wait_ready();

    // Same slot, same transactional.id; its own ports and registry directory.
    let second = Setup::new();
    let config_b = second.write_config(&pg, &broker.bootstrap(), &["public.items"], "");
    let mut b = Sluice::start_with_env(
        &config_b,
        second.admin_port,
        &[("SLUICE__SOURCE__POSTGRES__SLOT_BUSY_TIMEOUT_SECS", "3")],
    );
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = b.exited() {
            break s;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "the second instance kept running:\n{}",
            b.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status.code(), Some(75), "{}", b.log_text());
    assert!(
        b.log_text().contains("in use by another connection"),
        "{}",
        b.log_text()
    );

    // The first one still delivers, exactly once.
    pg.psql("INSERT INTO items VALUES (1, 'after')");
    let recs = sluice_tests::reader::read(
        &broker.bootstrap(),
        &first.registry_url(),
        "shop.public.items",
        1,
        None,
    );
    assert_eq!(recs[0]["value"]["after"]["v"], serde_json::json!("after"));
    assert!(
        a.exited().is_none(),
        "the first instance stopped:\n{}",
        a.log_text()
    );
    let (st, _) = a.terminate();
    assert!(st.success());
}

#[test]
fn postgres_restarts_and_sigterm_mid_batch_lose_and_duplicate_nothing() {
    let Stack {
        pg,
        broker,
        setup,
        config,
    } = ledger_stack();
    stream_large_transactions(&pg);
    let env = [
        ("SLUICE__SINK__KAFKA__BATCH__MAX_EVENTS", MAX_EVENTS),
        ("SLUICE__SINK__KAFKA__BATCH__LINGER_MS", "200"),
    ];
    let mut s = Sluice::start_with_env(&config, setup.admin_port, &env);
    s.wait_ready();
    for round in 0..3 {
        // The workload cannot survive a server restart: one per round.
        let mut workload = Workload::start(pg.port, round * 2_000_000);
        std::thread::sleep(Duration::from_millis(1500));
        workload.finish();
        // PostgreSQL goes away under sluice: it must reconnect and resume by itself.
        pg.restart();
        wait_for(
            "sluice to stream again after the PostgreSQL restart",
            Duration::from_secs(60),
            || matches!(s.admin_get("/readyz"), Some((200, _))).then_some(()),
        );
        assert!(
            s.exited().is_none(),
            "sluice exited after a PostgreSQL restart:\n{}",
            s.log_text()
        );
        // SIGTERM while a batch is open: it commits what it has, within the limit.
        let mut workload = Workload::start(pg.port, round * 2_000_000 + 1_000_000);
        std::thread::sleep(Duration::from_millis(700));
        let (status, took) = s.terminate();
        assert!(status.success(), "round {round}: {}", s.log_text());
        assert!(took < Duration::from_secs(10), "stop took {took:?}");
        workload.finish();
        s = Sluice::start_with_env(&config, setup.admin_port, &env);
        s.wait_ready();
    }
    catch_up_audit_and_stop(&pg, &broker, &setup, s);
}

/// The broker stops answering under load, once for less than the transaction calls'
/// timeout (the commit waits it out) and once for longer (the commit fails; the pipeline
/// restarts inside the process from the committed position, with a new producer that
/// fences the old one), while Sluice keeps running: the audit finds every change once, and PostgreSQL was never told
/// more than Kafka held.
#[test]
fn a_frozen_broker_under_load_loses_and_duplicates_nothing() {
    let Stack {
        pg,
        broker,
        setup,
        config,
    } = ledger_stack();
    let env = [
        ("SLUICE__SINK__KAFKA__BATCH__MAX_EVENTS", MAX_EVENTS),
        // Transaction calls time out after half of it: 5 s.
        ("SLUICE__SINK__KAFKA__TRANSACTION_TIMEOUT_SECS", "10"),
    ];
    let rt = runtime();
    let mut s = Sluice::start_with_env(&config, setup.admin_port, &env);
    s.wait_ready();
    let mut workload = Workload::start(pg.port, 0);
    for freeze in [Duration::from_secs(3), Duration::from_secs(16)] {
        std::thread::sleep(Duration::from_millis(1500));
        let before = committed(&broker, &rt).expect("a committed position");
        broker.pause();
        std::thread::sleep(freeze);
        // Nothing can commit now; what PostgreSQL was told must be in Kafka.
        let confirmed = pg.confirmed_flush("sluice");
        broker.resume();
        let after = wait_for(
            "a commit after the broker came back",
            Duration::from_secs(90),
            || {
                assert!(
                    s.exited().is_none(),
                    "sluice stopped after a {freeze:?} broker freeze:\n{}",
                    s.log_text()
                );
                committed(&broker, &rt).filter(|p| p.end_lsn > before.end_lsn)
            },
        );
        assert!(
            confirmed <= after.end_lsn.0,
            "confirmed {confirmed} during the freeze, beyond anything committed"
        );
    }
    std::thread::sleep(Duration::from_millis(1500));
    workload.finish();
    let log = s.log_text();
    let failed: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("commit_transaction"))
        .collect();
    eprintln!("{}", failed.join("\n"));
    assert!(
        !failed.is_empty(),
        "the long freeze did not fail a commit: the test proves less than it says\n{log}"
    );
    catch_up_audit_and_stop(&pg, &broker, &setup, s);
}

#[test]
fn snapshot_killed_mid_table_resumes_and_loses_and_duplicates_nothing() {
    let Stack {
        pg,
        broker,
        setup,
        config,
    } = ledger_stack();
    // Small key ranges read by three connections: kills land inside ranges read ahead.
    // Small Kafka transactions: the snapshot of this small table takes many commits, so
    // kills land inside it.
    let env = [
        ("SLUICE__SINK__KAFKA__BATCH__MAX_EVENTS", "50"),
        ("SLUICE__SINK__KAFKA__BATCH__LINGER_MS", "30"),
        ("SLUICE__SOURCE__POSTGRES__SNAPSHOT_PARALLELISM", "3"),
        ("SLUICE__SOURCE__POSTGRES__SNAPSHOT_CHUNK_ROWS", "300"),
    ];
    let rt = runtime();
    // Rows to snapshot, then writes that go on through the snapshot and every kill: rows
    // inserted between two pieces' points must come once, from the stream or the later
    // piece, never both.
    let mut workload = Workload::start(pg.port, 0);
    std::thread::sleep(Duration::from_secs(12));
    let ledger = sluice_core::TableName::new("public", "ledger");
    let mut s = Sluice::start_with_env(&config, setup.admin_port, &env);
    let mut resumed = 0;
    let mut last_resumed = false;
    let mut last_ordinal = None;
    for kill in 0..3 {
        // Kill once a part of `ledger` beyond the previous kill's point is committed.
        let reached = wait_for(
            "snapshot progress inside the ledger table",
            Duration::from_secs(120),
            || {
                if s.exited().is_some() {
                    panic!("sluice exited during the snapshot:\n{}", s.log_text());
                }
                let p = committed(&broker, &rt)?;
                if !p.snapshot_pending {
                    return Some(None); // finished before this kill
                }
                let cursor = p.snapshot.as_ref()?.cursor.as_ref()?;
                let ordinal = p.resume?.ordinal;
                // The committed cursor names the last row written by its key (made from
                // the row's value at commit).
                let key = cursor.key.as_deref().unwrap_or_default();
                assert!(
                    cursor.table != ledger
                        || (key.len() == 2 && key.iter().all(|k| k.parse::<i64>().is_ok())),
                    "the snapshot cursor's key is not a ledger row's (id, k): {key:?}"
                );
                (cursor.table == ledger && Some(ordinal) > last_ordinal).then_some(Some(ordinal))
            },
        );
        let Some(ordinal) = reached else { break };
        last_ordinal = Some(ordinal);
        std::thread::sleep(Duration::from_millis(rand::rng().random_range(0..100)));
        s.kill9();
        eprintln!("kill {kill} after {ordinal} snapshot rows committed");
        check_confirmed_not_ahead(&pg, &broker, &rt);
        s = Sluice::start_with_env(&config, setup.admin_port, &env);
        wait_for(
            "the restarted instance to decide",
            Duration::from_secs(60),
            || {
                let log = s.log_text();
                if log.contains("continuing after the last committed row") {
                    resumed += 1;
                    last_resumed = true;
                    Some(())
                } else {
                    last_resumed = false;
                    log.contains("resuming from the committed position")
                        .then_some(())
                }
            },
        );
    }
    assert!(
        resumed >= 1,
        "no kill landed inside the snapshot; the test proves nothing"
    );
    s.wait_ready();
    std::thread::sleep(Duration::from_secs(2));
    workload.finish();
    if last_resumed {
        // Inserts committed between two pieces' points were read by the later piece:
        // the stream must have skipped them (the audit proves none is missing).
        let (_, metrics) = s.admin_get("/metrics").expect("metrics");
        let skipped: f64 = metrics
            .lines()
            .find_map(|l| l.strip_prefix("sluice_snapshot_overlap_skipped_total "))
            .and_then(|v| v.trim().parse().ok())
            .expect("sluice_snapshot_overlap_skipped_total");
        assert!(
            skipped > 0.0,
            "no streamed change was skipped after the resumed snapshot"
        );
    }
    eprintln!(
        "snapshot resumed {resumed} times; {} workload transactions committed",
        workload.committed.load(Ordering::Relaxed)
    );
    catch_up_audit_and_stop(&pg, &broker, &setup, s);
}
