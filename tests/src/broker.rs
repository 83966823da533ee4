//! A tansu 0.6.0 broker (Kafka protocol, in-memory storage) on a free loopback port.
//! Killed on drop.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Broker {
    pub port: u16,
    child: Child,
}

impl Broker {
    pub fn start() -> Broker {
        Self::start_on(crate::free_port())
    }

    /// Kills the broker and starts a new one on the same port: with in-memory storage,
    /// every topic, record and transaction is gone.
    pub fn restart_empty(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let fresh = Self::start_on(self.port);
        let old = std::mem::replace(self, fresh);
        std::mem::forget(old);
    }

    fn start_on(port: u16) -> Broker {
        Self::start_advertising(port, port)
    }

    /// Listens on `port`, tells clients (in metadata) to connect to `advertised` (a
    /// proxy in front of it).
    pub fn start_advertising(port: u16, advertised: u16) -> Broker {
        let bin = crate::tools_dir().join("bin/tansu");
        assert!(
            bin.exists(),
            "{} is missing; run scripts/setup.sh",
            bin.display()
        );
        let url = format!("tcp://127.0.0.1:{port}");
        let advertised = format!("tcp://127.0.0.1:{advertised}");
        let child = Command::new(&bin)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &advertised,
            ])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tansu");
        let b = Broker { port, child };
        crate::wait_port("tansu broker", port, Duration::from_secs(30));
        b
    }

    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Freezes the broker (SIGSTOP): connections stay open, nothing is answered.
    pub fn pause(&self) {
        signal(self.child.id(), "STOP");
    }

    pub fn resume(&self) {
        signal(self.child.id(), "CONT");
    }
}

/// The test broker behind a TLS terminator that requires a client certificate: clients
/// reach it only through [`TlsBroker::bootstrap`] (the broker advertises that port).
pub struct TlsBroker {
    pub tls_port: u16,
    _broker: Broker,
    proxy: Child,
}

impl TlsBroker {
    /// Server certificate and key, and the CA clients' certificates must chain to, are
    /// PEM files.
    pub fn start(
        cert: &std::path::Path,
        key: &std::path::Path,
        client_ca: &std::path::Path,
    ) -> TlsBroker {
        let tls_port = crate::free_port();
        let broker = Broker::start_advertising(crate::free_port(), tls_port);
        let proxy = Command::new(crate::reader::python())
            .arg(crate::repo_root().join("tests/py/tls_proxy.py"))
            .arg(tls_port.to_string())
            .arg(broker.port.to_string())
            .args([cert, key, client_ca])
            .stdin(Stdio::null())
            .spawn()
            .expect("start the TLS proxy");
        crate::wait_port("TLS proxy", tls_port, Duration::from_secs(30));
        TlsBroker {
            tls_port,
            _broker: broker,
            proxy,
        }
    }

    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.tls_port)
    }
}

impl Drop for TlsBroker {
    fn drop(&mut self) {
        let _ = self.proxy.kill();
        let _ = self.proxy.wait();
    }
}

pub fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .expect("kill");
    assert!(ok.success(), "kill -{sig} {pid} failed");
}

impl Drop for Broker {
    fn drop(&mut self) {
        signal(self.child.id(), "CONT");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
