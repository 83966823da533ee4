//! What the benchmarks share: the workload, the `pg_recvlogical` baseline on the same
//! WAL, and recording a figure.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::pg::{Postgres, DATABASE, PASSWORD};

/// `[rows] [transactions]` from the command line (default 1,000,000 in 1,000).
pub fn workload_args() -> (u64, u64) {
    let mut args = std::env::args().skip(1);
    let mut next = |default| args.next().and_then(|a| a.parse().ok()).unwrap_or(default);
    let rows = next(1_000_000);
    (rows, next(1_000))
}

/// The benchmarks' table (6 columns) and a publication `publication` for it.
pub fn create_table(pg: &Postgres, publication: &str) {
    pg.psql(&format!(
        "CREATE TABLE bench (id bigint PRIMARY KEY, customer text NOT NULL, qty int NOT NULL, \
           price numeric(10,2) NOT NULL, created timestamptz NOT NULL, note text);
         CREATE PUBLICATION {publication} FOR TABLE bench;"
    ));
}

/// Inserts `rows` rows in `txns` transactions; returns the WAL position after them.
pub fn write_rows(pg: &Postgres, rows: u64, txns: u64) -> u64 {
    let per = rows / txns;
    eprintln!("writing {rows} rows in {txns} transactions");
    pg.psql(&format!(
        "DO $$ BEGIN FOR t IN 0..{last} LOOP \
           INSERT INTO bench SELECT g, 'customer-' || g, g % 100, (g % 100000) / 7.0, \
             now(), CASE WHEN g % 3 = 0 THEN NULL ELSE 'a note' END \
           FROM generate_series(t * {per} + 1, (t + 1) * {per}) g; \
           COMMIT; END LOOP; END $$",
        last = txns - 1
    ));
    pg.current_lsn()
}

/// How long `pg_recvlogical` (pgoutput, binary=true, to /dev/null) takes to read `slot`
/// up to `end`.
pub fn pg_recvlogical(pg: &Postgres, slot: &str, publication: &str, end: u64) -> Duration {
    let started = Instant::now();
    let out = pg
        .command("pg_recvlogical")
        .args(["-h", "127.0.0.1", "-p", &pg.port.to_string()])
        .args(["-U", "postgres", "-d", DATABASE, "--slot", slot])
        .args(["--start", "--no-loop", "-f", "/dev/null"])
        .args(["-o", "proto_version=3", "-o", "binary=true"])
        .args(["-o", &format!("publication_names={publication}")])
        .args(["-E", &format!("{:X}/{:X}", end >> 32, end & 0xffff_ffff)])
        .env("PGPASSWORD", PASSWORD)
        .output()
        .expect("run pg_recvlogical");
    assert!(
        out.status.success(),
        "pg_recvlogical failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    started.elapsed()
}

/// Prints `line` and appends it to `file` (relative to the repository root).
pub fn record(file: &str, line: &str) {
    println!("{line}");
    let path = crate::repo_root().join(file);
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(Path::new(&path))
        .expect("open the benchmark record");
    writeln!(f, "{line}").expect("write the benchmark record");
}

/// Today's date, for the record.
pub fn today() -> String {
    let out = std::process::Command::new("date")
        .arg("+%Y-%m-%d")
        .output()
        .expect("date");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Now, in microseconds since the Unix epoch.
pub fn unix_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}
