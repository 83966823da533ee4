//! End-to-end benchmark: rows/s from PostgreSQL's WAL to committed Kafka transactions
//! (release `sluice` against the local tansu broker, Avro events registered in the
//! bundled registry, exactly-once transactions), against `pg_recvlogical` reading the same
//! WAL (pgoutput, binary=true) from a slot created at the same LSN, in the same run.
//!
//! `cargo build --release -p sluice && SLUICE_BIN=target/release/sluice cargo run --release
//! -p sluice-tests --example pipeline_bench [rows] [transactions]` (`./dev bench` does
//! this); appends the figures to tests/BENCH.md.
//!
//! `... --example pipeline_bench large [rows]`: one transaction of `rows` (default
//! 1,000,000) written while Sluice runs, timed from its COMMIT to everything committed in
//! Kafka and confirmed, with in-progress streaming (staged by Sluice while the
//! transaction runs) against without (PostgreSQL spills it and sends it after the commit):
//! two alternating runs of each, the best of each compared.

use std::time::{Duration, Instant};

use sluice_tests::bench;
use sluice_tests::sluice::Sluice;
use sluice_tests::Stack;

fn main() {
    if std::env::args().nth(1).as_deref() == Some("large") {
        return large();
    }
    let (rows, txns) = bench::workload_args();
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
    // Kafka and confirmed to PostgreSQL (watched on one connection: a psql process every
    // 20 ms would take a seventh of the machine from Sluice).
    let mut watch = postgres_client(st.pg.port);
    let started = Instant::now();
    let mut s = Sluice::start_with_env(
        &st.config,
        st.setup.admin_port,
        &[
            ("SLUICE__SOURCE__POSTGRES__SNAPSHOT", "never"),
            ("RUST_LOG", "warn"),
        ],
    );
    wait_confirmed(&mut watch, &mut s, end);
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
    // Latency at a steady rate: PostgreSQL commit -> visible to a read_committed consumer.
    let lat = latency(&st, rows, LATENCY_RATE, LATENCY_SECS);
    let (status, _) = s.terminate();
    assert!(status.success(), "{}", s.log_text());

    let rate = |d: Duration| rows as f64 / d.as_secs_f64();
    bench::record(
        "tests/BENCH.md",
        &format!(
            "- {}: end to end, {rows} rows in {txns} transactions (6 columns) into Kafka, exactly once, {} ({txns_committed} Kafka transactions; startup included): sluice {:.0} rows/s ({:.2} s), pg_recvlogical binary {:.0} rows/s ({:.2} s), ratio {:.2}",
            bench::today(),
            batching(),
            rate(ours),
            ours.as_secs_f64(),
            rate(theirs),
            theirs.as_secs_f64(),
            theirs.as_secs_f64() / ours.as_secs_f64()
        ),
    );
    bench::record(
        "tests/BENCH.md",
        &format!(
            "- {}: latency, PostgreSQL commit to visible in Kafka (read_committed consumer), steady {LATENCY_RATE} rows/s for {LATENCY_SECS} s in {} ms transactions, {}: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} events)",
            bench::today(),
            1000 / TXNS_PER_SEC,
            batching(),
            lat.p50,
            lat.p99,
            lat.max,
            lat.count
        ),
    );
}

/// Waits (up to 30 min) until the slot is confirmed at `end`, failing if sluice exits.
fn wait_confirmed(watch: &mut SyncClient, s: &mut Sluice, end: u64) {
    let deadline = Instant::now() + Duration::from_secs(1800);
    while watch.confirmed_flush("sluice") < end {
        assert!(Instant::now() < deadline, "sluice did not catch up in time");
        if let Some(status) = s.exited() {
            panic!("sluice exited ({status}):\n{}", s.log_text());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The batch limits in effect: Sluice's defaults unless the environment sets them
/// (`SLUICE__SINK__KAFKA__BATCH__MAX_EVENTS`, `..._LINGER_MS`; the child inherits them).
fn batching() -> String {
    let get = |k: &str, default: &str| std::env::var(k).unwrap_or_else(|_| default.to_string());
    format!(
        "batches of at most {} events, linger {} ms",
        get("SLUICE__SINK__KAFKA__BATCH__MAX_EVENTS", "10000"),
        get("SLUICE__SINK__KAFKA__BATCH__LINGER_MS", "10")
    )
}

const LATENCY_RATE: u64 = 10_000;
const LATENCY_SECS: u64 = 10;
const TXNS_PER_SEC: u64 = 100;

struct Latency {
    p50: f64,
    p99: f64,
    max: f64,
    count: usize,
}

/// Writes `rate` rows/s for `secs` s (ids after `first`) and measures, for every event, the
/// time from its source commit (`source.ts_us`) to its arrival at a read_committed
/// consumer.
fn latency(st: &Stack, first: u64, rate: u64, secs: u64) -> Latency {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::Message;
    let topic = "shop.public.bench";
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", st.broker.bootstrap())
        .set("group.id", "latency-bench")
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "5")
        .create()
        .expect("consumer");
    let mut tpl = rdkafka::TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, rdkafka::Offset::End)
        .unwrap();
    consumer.assign(&tpl).expect("assign");
    // Let the assignment settle at the end before writing.
    consumer.poll(Duration::from_millis(500));
    let total = rate * secs;
    let per_txn = rate / TXNS_PER_SEC;
    let port = st.pg.port;
    let writer = std::thread::spawn(move || {
        let mut client = postgres_client(port);
        // The test cluster runs with synchronous_commit off, where a commit's WAL waits
        // for the WAL writer (up to wal_writer_delay, 200 ms) before a walsender may send
        // it; measure from commits as a production database makes them.
        client
            .batch_execute("SET synchronous_commit = on")
            .expect("synchronous_commit");
        let started = Instant::now();
        for t in 0..(total / per_txn) {
            let due = started + Duration::from_micros(t * 1_000_000 / TXNS_PER_SEC);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            let from = first + t * per_txn + 1;
            client
                .batch_execute(&format!(
                    "INSERT INTO bench SELECT g, 'customer-' || g, g % 100, 1.5, now(), NULL \
                     FROM generate_series({from}, {}) g",
                    from + per_txn - 1
                ))
                .expect("insert");
        }
    });
    let mut schemas: std::collections::HashMap<u32, apache_avro::Schema> = Default::default();
    let mut lat = Vec::with_capacity(total as usize);
    let deadline = Instant::now() + Duration::from_secs(secs + 120);
    while (lat.len() as u64) < total && Instant::now() < deadline {
        let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let now_us = bench::unix_micros();
        let Some(v) = m.payload() else { continue };
        let id = u32::from_be_bytes(v[1..5].try_into().unwrap());
        let schema = schemas.entry(id).or_insert_with(|| {
            let (_, body) = sluice_tests::sluice::http_get(
                st.setup.registry_port,
                &format!("/schemas/ids/{id}"),
            )
            .expect("registry");
            let text: serde_json::Value = serde_json::from_str(&body).unwrap();
            apache_avro::Schema::parse_str(text["schema"].as_str().unwrap()).unwrap()
        });
        let value = apache_avro::from_avro_datum(schema, &mut &v[5..], None).expect("decode");
        lat.push((now_us - commit_us(&value)) as f64 / 1000.0);
    }
    writer.join().expect("writer");
    assert_eq!(lat.len() as u64, total, "events seen by the consumer");
    lat.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| lat[((lat.len() as f64 - 1.0) * q) as usize];
    Latency {
        p50: at(0.5),
        p99: at(0.99),
        max: at(1.0),
        count: lat.len(),
    }
}

/// `source.ts_us` of a Debezium envelope.
fn commit_us(v: &apache_avro::types::Value) -> i64 {
    use apache_avro::types::Value as V;
    let field = |v: &V, name: &str| -> V {
        match v {
            V::Record(fields) => fields
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
                .unwrap_or(V::Null),
            _ => V::Null,
        }
    };
    match field(&field(v, "source"), "ts_us") {
        V::Union(_, b) => match *b {
            V::Long(us) => us,
            _ => panic!("source.ts_us is not a long"),
        },
        other => panic!("source.ts_us: {other:?}"),
    }
}

fn postgres_client(port: u16) -> SyncClient {
    SyncClient::connect(port)
}

/// A blocking PostgreSQL client over tokio-postgres (the benchmark's writer thread).
struct SyncClient {
    rt: tokio::runtime::Runtime,
    client: tokio_postgres::Client,
}

impl SyncClient {
    fn connect(port: u16) -> SyncClient {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let client = rt.block_on(async {
            let (client, conn) = tokio_postgres::connect(
                &format!(
                    "host=127.0.0.1 port={port} user=postgres password={} dbname={}",
                    sluice_tests::pg::PASSWORD,
                    sluice_tests::pg::DATABASE
                ),
                tokio_postgres::NoTls,
            )
            .await
            .expect("connect");
            tokio::spawn(conn);
            client
        });
        SyncClient { rt, client }
    }

    fn batch_execute(&mut self, sql: &str) -> Result<(), tokio_postgres::Error> {
        self.rt.block_on(self.client.batch_execute(sql))
    }

    /// The slot's confirmed_flush_lsn as a number (0 if the slot is missing).
    fn confirmed_flush(&mut self, slot: &str) -> u64 {
        let row = self
            .rt
            .block_on(self.client.query_one(
                "SELECT coalesce((confirmed_flush_lsn - '0/0')::bigint, 0) \
                 FROM pg_replication_slots WHERE slot_name = $1",
                &[&slot],
            ))
            .expect("confirmed_flush_lsn");
        row.get::<_, i64>(0) as u64
    }
}

/// One large transaction: COMMIT to committed in Kafka, streaming on and off.
fn large() {
    let rows: u64 = std::env::args()
        .nth(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    assert!(
        std::env::var_os("SLUICE_BIN").is_some(),
        "set SLUICE_BIN to a release build of sluice (see the header of this file)"
    );
    let st = Stack::new("", &["public.bench"]);
    bench::create_table(&st.pg, "sluice");
    let mut watch = postgres_client(st.pg.port);
    let mut best = [Duration::MAX, Duration::MAX];
    let mut first: u64 = 0;
    for round in 0..4 {
        let streaming = round % 2 == 1;
        let mut s = Sluice::start_with_env(
            &st.config,
            st.setup.admin_port,
            &[
                (
                    "SLUICE__SOURCE__POSTGRES__STREAMING",
                    if streaming { "true" } else { "false" },
                ),
                ("RUST_LOG", "info"),
            ],
        );
        s.wait_ready();
        st.pg.psql(&format!(
            "INSERT INTO bench SELECT g, 'customer-' || g, g % 100, (g % 100000) / 7.0, now(), \
               CASE WHEN g % 3 = 0 THEN NULL ELSE 'a note' END \
             FROM generate_series({}, {}) g",
            first + 1,
            first + rows
        ));
        let committed = Instant::now();
        first += rows;
        let end = st.pg.current_lsn();
        wait_confirmed(&mut watch, &mut s, end);
        let took = committed.elapsed();
        let (_, metrics) = s.admin_get("/metrics").expect("metrics");
        let streamed = metrics.contains("sluice_source_streamed_commits_total 1");
        assert_eq!(streamed, streaming, "streamed as configured:\n{metrics}");
        eprintln!(
            "round {round}: streaming {streaming}: COMMIT to committed in Kafka {:.2} s",
            took.as_secs_f64()
        );
        for l in s
            .log_text()
            .lines()
            .filter(|l| l.contains("streamed transaction"))
        {
            eprintln!("  {l}");
        }
        let i = usize::from(streaming);
        best[i] = best[i].min(took);
        let (status, _) = s.terminate();
        assert!(status.success(), "{}", s.log_text());
    }
    let [off, on] = best;
    bench::record(
        "tests/BENCH.md",
        &format!(
            "- {}: one transaction of {rows} rows (6 columns), its COMMIT to everything committed in Kafka and confirmed, best of 2 each: streamed in progress (staged by Sluice) {:.2} s, not streamed (spilled by PostgreSQL, sent after the commit) {:.2} s, ratio {:.2}",
            bench::today(),
            on.as_secs_f64(),
            off.as_secs_f64(),
            off.as_secs_f64() / on.as_secs_f64()
        ),
    );
}
