//! The `sluice` binary as a child process with a generated config.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Path of the built binary (`SLUICE_BIN` overrides it, e.g. a release build for the
/// benchmarks). `./dev test` builds it before the tests run.
pub fn binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("SLUICE_BIN") {
        return PathBuf::from(bin);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::repo_root().join("target"));
    let p = target.join("debug/sluice");
    assert!(
        p.exists(),
        "{} is missing: build it first with `cargo build -p sluice` (./dev test does)",
        p.display()
    );
    p
}

/// Ports and paths of one sluice instance.
pub struct Setup {
    pub dir: tempfile::TempDir,
    pub registry_port: u16,
    pub admin_port: u16,
}

impl Setup {
    pub fn new() -> Setup {
        Setup {
            dir: tempfile::Builder::new()
                .prefix("sluice-run-")
                .tempdir()
                .unwrap(),
            registry_port: crate::free_port(),
            admin_port: crate::free_port(),
        }
    }

    /// The registered versions of `subject` in the bundled registry.
    pub fn subject_versions(&self, subject: &str) -> Vec<i64> {
        let (status, body) =
            http_get(self.registry_port, &format!("/subjects/{subject}/versions")).unwrap();
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    pub fn registry_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.registry_port)
    }

    /// Writes a config for the given database and broker; returns its path.
    pub fn write_config(
        &self,
        pg: &crate::pg::Postgres,
        bootstrap: &str,
        tables: &[&str],
        extra: &str,
    ) -> PathBuf {
        let pw = pg.password_file(self.dir.path());
        let text = format!(
            "source:\n  postgres:\n    url: {url}\n    password_file: {pw}\n    slot: sluice\n    publication: sluice\n    tables: [{tables}]\n    spill_dir: spill\n    status_interval_secs: 1\n\
             sink:\n  kafka:\n    bootstrap_servers: {bootstrap}\n    topic_prefix: shop\n\
             schema_registry:\n  listen: 127.0.0.1:{reg}\n  data_dir: registry\n\
             admin:\n  listen: 127.0.0.1:{admin}\n{extra}",
            url = pg.url(),
            pw = pw.display(),
            tables = tables.join(", "),
            reg = self.registry_port,
            admin = self.admin_port,
        );
        let path = self.dir.path().join("sluice.yaml");
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Default for Setup {
    fn default() -> Self {
        Self::new()
    }
}

/// A running `sluice run`. Killed on drop (if still running).
pub struct Sluice {
    child: Option<Child>,
    pub log: PathBuf,
    pub admin_port: u16,
}

impl Sluice {
    pub fn start(config: &Path, admin_port: u16) -> Sluice {
        Self::start_with_env(config, admin_port, &[])
    }

    /// Starts with extra environment (e.g. `SLUICE__SINK__KAFKA__BATCH__MAX_EVENTS`).
    pub fn start_with_env(config: &Path, admin_port: u16, env: &[(&str, &str)]) -> Sluice {
        Self::start_command("run", config, admin_port, env)
    }

    /// `sluice <command> --config <config>` (e.g. `registry`).
    pub fn start_command(
        command: &str,
        config: &Path,
        admin_port: u16,
        env: &[(&str, &str)],
    ) -> Sluice {
        let log = config.with_extension(format!(
            "{}.log",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        let f = std::fs::File::create(&log).unwrap();
        let child = Command::new(binary())
            .args([command, "--config"])
            .arg(config)
            .env(
                "RUST_LOG",
                std::env::var("SLUICE_TEST_LOG").unwrap_or_else(|_| "info,sluice=debug".into()),
            )
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(f.try_clone().unwrap())
            .stderr(f)
            .spawn()
            .expect("start sluice");
        Sluice {
            child: Some(child),
            log,
            admin_port,
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// GET on the admin port: (status, body), or None when nothing answers.
    pub fn admin_get(&self, path: &str) -> Option<(u16, String)> {
        http_get(self.admin_port, path)
    }

    /// Waits until `/readyz` answers 200.
    /// Waits until `/readyz` reports `table`'s stream stopped by a refused schema.
    pub fn wait_table_blocked(&self, table: &str) {
        crate::wait_for(
            "/readyz to report the stopped table",
            Duration::from_secs(30),
            || {
                let (code, body) = self.admin_get("/readyz")?;
                (code == 503 && body.contains(table)).then_some(())
            },
        );
    }

    pub fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some((200, _)) = self.admin_get("/readyz") {
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "sluice exited ({status}) before ready:\n{}",
                    self.log_text()
                );
            }
            if Instant::now() > deadline {
                panic!("sluice not ready within 60 s:\n{}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGKILL: no chance to commit, confirm or close anything.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Exit status if it has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        let s = self.child.as_mut()?.try_wait().ok().flatten();
        if s.is_some() {
            self.child = None;
        }
        s
    }

    /// Sends SIGTERM and waits for exit; returns the status and how long it took.
    pub fn terminate(&mut self) -> (ExitStatus, Duration) {
        let child = self.child.as_mut().expect("running");
        let t0 = Instant::now();
        crate::broker::signal(child.id(), "TERM");
        loop {
            if let Some(s) = child.try_wait().unwrap() {
                self.child = None;
                return (s, t0.elapsed());
            }
            if t0.elapsed() > Duration::from_secs(30) {
                panic!(
                    "sluice did not stop within 30 s of SIGTERM:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Sluice {
    fn drop(&mut self) {
        // For debugging: SLUICE_TEST_LOG_DIR keeps every instance's log.
        if let Some(dir) = std::env::var_os("SLUICE_TEST_LOG_DIR") {
            let name = self
                .log
                .file_name()
                .map(|n| n.to_os_string())
                .unwrap_or_default();
            let _ = std::fs::create_dir_all(&dir);
            let _ = std::fs::copy(&self.log, std::path::Path::new(&dir).join(name));
        }
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Minimal HTTP/1.1 GET over a plain socket (keeps the harness free of HTTP clients).
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let status = buf.split_whitespace().nth(1)?.parse().ok()?;
    let body = buf
        .split_once("\r\n\r\n")
        .map(|x| x.1.to_string())
        .unwrap_or_default();
    Some((status, body))
}

/// Runs `sluice` with arguments to completion: (exit code, stdout, stderr).
pub fn run_to_exit_full(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(binary())
        .args(args)
        .output()
        .expect("run sluice");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `sluice` with arguments to completion: (exit code, stderr).
pub fn run_to_exit(args: &[&str]) -> (Option<i32>, String) {
    let (code, _, stderr) = run_to_exit_full(args);
    (code, stderr)
}

/// One HTTP/1.1 request with a registry JSON body: (status, body).
pub fn http_request(port: u16, method: &str, path: &str, body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/vnd.schemaregistry.v1+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out.split_whitespace().nth(1).unwrap().parse().unwrap();
    (
        status,
        out.split_once("\r\n\r\n")
            .map(|x| x.1.to_string())
            .unwrap_or_default(),
    )
}
