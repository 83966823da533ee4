//! A throwaway PostgreSQL cluster: initdb in a temp dir (as user `postgres` when we
//! are root: the server refuses to run as root), loopback only, a free port,
//! `wal_level = logical`, SCRAM passwords. Stopped and deleted on drop.
//!
//! `Postgres::start()` uses the apt PostgreSQL 15; `Postgres::start_version(major)` the
//! server binaries `scripts/setup.sh` unpacks into `.tools/pg/<major>/` (14, 17, 18).
//! Those installs carry no client programs: `psql` and `program("pg_recvlogical")` then
//! come from the apt install (the client protocol is the same across versions).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

pub const PASSWORD: &str = "sluice-test-pw";
pub const DATABASE: &str = "shop";

pub struct Postgres {
    pub port: u16,
    dir: tempfile::TempDir,
    /// The server install's programs (initdb, pg_ctl, postgres, maybe client programs).
    bin: PathBuf,
    /// `LD_LIBRARY_PATH` for the programs in `bin`: the install's own lib dir when it is
    /// not a system install.
    lib: Option<PathBuf>,
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

/// The server install of one major version: `.tools/pg/<major>` (from scripts/setup.sh),
/// else the system's `/usr/lib/postgresql/<major>`. Returns (bin, lib dir to put on
/// `LD_LIBRARY_PATH`).
fn pg_install(major: u32) -> (PathBuf, Option<PathBuf>) {
    let tools = crate::tools_dir().join("pg").join(major.to_string());
    if tools.join("bin/initdb").exists() {
        return (tools.join("bin"), Some(tools.join("lib")));
    }
    let system = PathBuf::from(format!("/usr/lib/postgresql/{major}/bin"));
    if system.join("initdb").exists() {
        return (system, None);
    }
    panic!(
        "PostgreSQL {major} is not installed: neither {} nor {} exists; run scripts/setup.sh \
         (it unpacks PostgreSQL 14, 17 and 18 into .tools/pg/)",
        tools.join("bin/initdb").display(),
        system.join("initdb").display()
    );
}

impl Postgres {
    /// A cluster of the apt-installed PostgreSQL (15).
    pub fn start() -> Postgres {
        Self::start_with(pg_bin(), None)
    }

    /// A cluster of PostgreSQL `major`: `.tools/pg/<major>` from scripts/setup.sh (14, 17,
    /// 18), else the system's install of that major. Panics, naming scripts/setup.sh,
    /// when neither exists.
    pub fn start_version(major: u32) -> Postgres {
        let (bin, lib) = pg_install(major);
        Self::start_with(bin, lib)
    }

    fn start_with(bin: PathBuf, lib: Option<PathBuf>) -> Postgres {
        let dir = tempfile::Builder::new()
            .prefix("sluice-pg-")
            .tempdir()
            .expect("temp dir");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let pg = Postgres {
            port: crate::free_port(),
            dir,
            bin,
            lib,
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
        // runuser keeps the environment, so pg_ctl and the postgres it starts see it too.
        if let Some(lib) = &self.lib {
            cmd.env("LD_LIBRARY_PATH", lib);
        }
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
        let out = self
            .command("psql")
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

    /// A PostgreSQL client program (`pg_recvlogical`, ...): this server's own when its
    /// install has it, else the apt install's. Run it with [`Postgres::command`] (or set
    /// `LD_LIBRARY_PATH` from [`Postgres::library_path`]).
    pub fn program(&self, name: &str) -> PathBuf {
        let own = self.bin.join(name);
        if own.exists() {
            own
        } else {
            pg_bin().join(name)
        }
    }

    /// The lib dir the programs of this server's install need on `LD_LIBRARY_PATH`
    /// (None for a system install).
    pub fn library_path(&self) -> Option<&Path> {
        self.lib.as_deref()
    }

    /// A `Command` for [`Postgres::program`]`(name)`, with `LD_LIBRARY_PATH` set when the
    /// program comes from a non-system install.
    pub fn command(&self, name: &str) -> Command {
        let exe = self.program(name);
        let mut cmd = Command::new(&exe);
        if let Some(lib) = &self.lib {
            if exe.starts_with(&self.bin) {
                cmd.env("LD_LIBRARY_PATH", lib);
            }
        }
        cmd
    }

    /// The server's `server_version_num` (e.g. 180004).
    pub fn server_version_num(&self) -> u32 {
        let v = self.psql_db("postgres", "SHOW server_version_num");
        v.parse()
            .unwrap_or_else(|e| panic!("bad server_version_num {v:?}: {e}"))
    }

    /// The current WAL insert position as a number.
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
