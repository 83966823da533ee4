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
        let bin = crate::tools_dir().join("bin/tansu");
        assert!(
            bin.exists(),
            "{} is missing; run scripts/setup.sh",
            bin.display()
        );
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(&bin)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
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
