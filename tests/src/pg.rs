//! A throwaway PostgreSQL 15 cluster: initdb in a temp dir (as user `postgres` when we
//! are root: the server refuses to run as root), loopback only, a free port,
//! `wal_level = logical`, SCRAM passwords. Stopped and deleted on drop.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

pub const PASSWORD: &str = "sluice-test-pw";
pub const DATABASE: &str = "shop";

pub struct Postgres {
    pub port: u16,
    dir: tempfile::TempDir,
    bin: PathBuf,
}

fn is_root() -> bool {
    // SAFETY-free check: `id -u`.
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn pg_bin() -> PathBuf {
    for v in ["15", "16", "17", "18", "14"] {
        let p = PathBuf::from(format!("/usr/lib/postgresql/{v}/bin"));
        if p.join("initdb").exists() {
            return p;
        }
    }
    panic!("no PostgreSQL server binaries under /usr/lib/postgresql; run scripts/setup.sh");
}

impl Postgres {
    pub fn start() -> Postgres {
        let dir = tempfile::Builder::new()
            .prefix("sluice-pg-")
            .tempdir()
            .expect("temp dir");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let bin = pg_bin();
        let pg = Postgres {
            port: crate::free_port(),
            dir,
            bin,
        };
        let pwfile = pg.dir.path().join("pw");
        std::fs::write(&pwfile, PASSWORD).unwrap();
        if is_root() {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(pg.dir.path())
                .status()
                .expect("chown");
            assert!(ok.success(), "chown of the PostgreSQL temp dir failed");
        }
        let data = pg.data();
        let out = pg.run_as_postgres(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "--auth=scram-sha-256",
                "--pwfile",
                pwfile.to_str().unwrap(),
                "--encoding=UTF8",
                "--no-instructions",
            ],
        );
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let conf = format!(
            "\nlisten_addresses = '127.0.0.1'\nport = {}\nunix_socket_directories = '{}'\nwal_level = logical\n\
             max_wal_senders = 10\nmax_replication_slots = 10\nfsync = off\nsynchronous_commit = off\n\
             full_page_writes = off\nshared_buffers = 64MB\nwal_sender_timeout = 60s\n",
            pg.port,
            pg.dir.path().display()
        );
        append(&data.join("postgresql.conf"), &conf);
        // Logical replication connections match on the database name, so `all` covers them.
        std::fs::write(
            data.join("pg_hba.conf"),
            "host all all 127.0.0.1/32 scram-sha-256\nhost replication all 127.0.0.1/32 scram-sha-256\n\
             local all all scram-sha-256\n",
        )
        .unwrap();
        let log = pg.dir.path().join("server.log");
        let out = pg.run_as_postgres(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-l",
                log.to_str().unwrap(),
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
        assert!(
            out.status.success(),
            "pg_ctl start failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        crate::wait_port("PostgreSQL", pg.port, Duration::from_secs(30));
        pg.psql_db("postgres", &format!("CREATE DATABASE {DATABASE}"));
        pg
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn run_as_postgres(&self, tool: &str, args: &[&str]) -> Output {
        let exe = self.bin.join(tool);
        let mut cmd = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        cmd.args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", exe.display()))
    }

    /// Restarts the server (fast shutdown: connections are cut, as in a failover).
    pub fn restart(&self) {
        let data = self.data();
        let log = self.dir.path().join("server.log");
        let out = self.run_as_postgres(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-l",
                log.to_str().unwrap(),
                "-m",
                "fast",
                "-w",
                "-t",
                "60",
                "restart",
            ],
        );
        assert!(
            out.status.success(),
            "pg_ctl restart failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        crate::wait_port("PostgreSQL", self.port, Duration::from_secs(30));
    }

    /// URL for the test database (no password: pass it via password_file or env).
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{DATABASE}", self.port)
    }

    pub fn url_with_password(&self) -> String {
        format!(
            "postgres://postgres:{PASSWORD}@127.0.0.1:{}/{DATABASE}",
            self.port
        )
    }

    /// Runs SQL in the test database with psql; panics on error. Returns stdout
    /// (unaligned, tuples only).
    pub fn psql(&self, sql: &str) -> String {
        self.psql_db(DATABASE, sql)
    }

    pub fn psql_db(&self, db: &str, sql: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                db,
            ])
            .args(["-v", "ON_ERROR_STOP=1", "-X", "-q", "-A", "-t", "-c", sql])
            .env("PGPASSWORD", PASSWORD)
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "psql failed for {sql:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// The slot's confirmed_flush_lsn as a number (0 if the slot is missing).
    pub fn confirmed_flush(&self, slot: &str) -> u64 {
        let s = self.psql(&format!(
            "SELECT coalesce((confirmed_flush_lsn - '0/0')::bigint, 0) FROM pg_replication_slots WHERE slot_name = '{slot}'"
        ));
        s.parse().unwrap_or(0)
    }

    /// The current WAL insert position as a number.
    /// A PostgreSQL client program of this server's version (`pg_recvlogical`, ...).
    pub fn program(&self, name: &str) -> PathBuf {
        self.bin.join(name)
    }

    pub fn current_lsn(&self) -> u64 {
        self.psql("SELECT (pg_current_wal_insert_lsn() - '0/0')::bigint")
            .parse()
            .expect("lsn")
    }

    /// Runs `sql` in a transaction and returns the WAL insert position just before its
    /// commit: a lower bound of the transaction's commit LSN.
    pub fn exec_before_commit_lsn(&self, sql: &str) -> u64 {
        let out = self.psql(&format!(
            "BEGIN; {sql}; SELECT (pg_current_wal_insert_lsn() - '0/0')::bigint; COMMIT;"
        ));
        out.lines()
            .rev()
            .find_map(|l| l.trim().parse().ok())
            .unwrap_or_else(|| panic!("no LSN in {out:?}"))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// Writes a password file readable by the test process and returns its path.
    pub fn password_file(&self, dir: &Path) -> PathBuf {
        let p = dir.join("pg-password");
        std::fs::write(&p, format!("{PASSWORD}\n")).unwrap();
        p
    }
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.data();
        let _ = self.run_as_postgres(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
    }
}
