//! Test harness: throwaway PostgreSQL and Kafka-protocol broker (tansu), the `sluice`
//! binary as a child process, and an independent Python reader of the topics.
//!
//! Every resource is torn down on `Drop`, so a failing (panicking) test cleans up too.
//! Tools come from `.tools/` (installed by `scripts/setup.sh`).

pub mod bench;
pub mod broker;
pub mod pg;
pub mod pki;
pub mod reader;
pub mod secured;
pub mod sluice;

use std::net::TcpListener;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// `.tools/` with the broker binary and the Python venv.
pub fn tools_dir() -> PathBuf {
    repo_root().join(".tools")
}

/// A currently free loopback port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral port")
}

/// Polls `f` until it returns `Some` or `timeout` passes.
pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until something accepts TCP connections on `port`.
pub fn wait_port(what: &str, port: u16, timeout: Duration) {
    wait_for(what, timeout, || {
        std::net::TcpStream::connect(("127.0.0.1", port))
            .ok()
            .map(|_| ())
    })
}

/// PostgreSQL with a schema, a broker, and a sluice config capturing `tables`.
pub struct Stack {
    pub pg: pg::Postgres,
    pub broker: broker::Broker,
    pub setup: sluice::Setup,
    pub config: PathBuf,
}

impl Stack {
    pub fn new(ddl: &str, tables: &[&str]) -> Stack {
        Self::with_postgres(pg::Postgres::start(), ddl, tables)
    }

    /// The same on a given cluster (e.g. `Postgres::start_version(18)`).
    pub fn with_postgres(pg: pg::Postgres, ddl: &str, tables: &[&str]) -> Stack {
        let broker = broker::Broker::start();
        pg.psql(ddl);
        let setup = sluice::Setup::new();
        let config = setup.write_config(&pg, &broker.bootstrap(), tables, "");
        Stack {
            pg,
            broker,
            setup,
            config,
        }
    }
}

/// `promtool check metrics` (from `.tools/bin`, see scripts/setup.sh) on a live scrape:
/// names, units, `_total` suffixes and help texts follow Prometheus' conventions.
pub fn promtool_accepts(scrape: &str) {
    use std::io::Write;
    let promtool = tools_dir().join("bin/promtool");
    assert!(
        promtool.exists(),
        "{} missing: run scripts/setup.sh",
        promtool.display()
    );
    let mut child = std::process::Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run promtool");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(scrape.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
