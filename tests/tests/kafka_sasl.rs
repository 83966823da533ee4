//! Kafka over SASL_PLAINTEXT with SCRAM-SHA-512, SCRAM-SHA-256 and PLAIN: the test
//! broker sits behind an authenticating proxy (`tests/py/sasl_proxy.py`: SCRAM and
//! PLAIN server side, every other request refused until authenticated) that offers
//! only the mechanism under test. Sluice's preflight, producer, topic admin, offsets
//! reader and registry storage all authenticate through it; an independent consumer
//! reads the events with the same credentials; a restart repeats nothing; a wrong
//! password is refused with a message naming the setting; the password is never logged.

use sluice_tests::broker::Broker;
use sluice_tests::pg::Postgres;
use sluice_tests::reader;
use sluice_tests::sluice::{run_to_exit_full, Setup};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const USER: &str = "sluice";

/// tansu (plain, in-memory) behind `sasl_proxy.py`: clients reach it only through
/// [`SaslBroker::bootstrap`] (tansu advertises the proxy's port) and must authenticate
/// as `USER` with `mechanism`.
struct SaslBroker {
    port: u16,
    _tansu: Broker,
    proxy: Child,
    proxy_log: PathBuf,
}

impl SaslBroker {
    fn start(dir: &Path, mechanism: &str, password: &str) -> SaslBroker {
        let port = sluice_tests::free_port();
        let upstream = sluice_tests::free_port();
        let tansu = Broker::start_advertising(upstream, port);
        let proxy_log = dir.join("sasl-proxy.log");
        let log = std::fs::File::create(&proxy_log).unwrap();
        let proxy = Command::new(reader::python())
            .arg(sluice_tests::repo_root().join("tests/py/sasl_proxy.py"))
            .args([&port.to_string(), &upstream.to_string(), USER, password])
            .args(["--mechanisms", mechanism])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start the SASL proxy");
        let b = SaslBroker {
            port,
            _tansu: tansu,
            proxy,
            proxy_log,
        };
        sluice_tests::wait_port("SASL proxy", port, Duration::from_secs(30));
        b
    }

    fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// One line per connection: who authenticated with what, or why it was closed.
    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.proxy_log).unwrap_or_default()
    }
}

impl Drop for SaslBroker {
    fn drop(&mut self) {
        let _ = self.proxy.kill();
        let _ = self.proxy.wait();
    }
}

fn sasl_end_to_end(mechanism: &str) {
    let dir = tempfile::tempdir().unwrap();
    let password = format!("Pw-{}-x7Qz9", mechanism.replace('-', ""));
    let broker = SaslBroker::start(dir.path(), mechanism, &password);
    let pw_file = dir.path().join("kafka-password");
    std::fs::write(&pw_file, format!("{password}\n")).unwrap();

    let pg = Postgres::start();
    pg.psql("CREATE TABLE t (id int PRIMARY KEY, v text)");
    let setup = Setup::new();
    let security = |pw_file: &Path| {
        format!(
            "    security:\n      protocol: sasl_plaintext\n      sasl:\n        mechanism: {mechanism}\n        username: {USER}\n        password_file: {}\n",
            pw_file.display()
        )
    };
    let config = setup.write_config(&pg, &broker.bootstrap(), &["public.t"], "");
    let text = std::fs::read_to_string(&config).unwrap();
    let good = text.replace(
        "    topic_prefix: shop\n",
        &format!("    topic_prefix: shop\n{}", security(&pw_file)),
    );
    assert_ne!(good, text, "the config has no topic_prefix line to extend");
    std::fs::write(&config, &good).unwrap();

    let props = [
        "security.protocol=SASL_PLAINTEXT".to_string(),
        format!("sasl.mechanisms={mechanism}"),
        format!("sasl.username={USER}"),
        format!("sasl.password={password}"),
    ];
    let logs = sluice_tests::secured::round_trip(&pg, &setup, &config, &broker.bootstrap(), &props);
    for log in logs {
        assert!(
            !log.contains(&password),
            "the password is in the log:\n{log}"
        );
    }

    // Both of Sluice's kinds of connection authenticated with the mechanism under test
    // (the proxy offers no other): librdkafka's start with ApiVersions, the raw
    // reader's with SaslHandshake.
    let proxy = broker.log_text();
    let authenticated = format!("authenticated '{USER}' with {mechanism} (");
    assert!(
        proxy.contains(&format!("{authenticated}ApiVersions"))
            && proxy.contains(&format!("{authenticated}SaslHandshake")),
        "{proxy}"
    );

    // A wrong password: refused by the broker, named as a SASL failure.
    let bad_file = dir.path().join("wrong-password");
    let wrong = format!("{password}-wrong");
    std::fs::write(&bad_file, &wrong).unwrap();
    let bad = good.replace(
        &format!("password_file: {}", pw_file.display()),
        &format!("password_file: {}", bad_file.display()),
    );
    assert_ne!(bad, good);
    let bad_path = dir.path().join("bad.yaml");
    std::fs::write(&bad_path, bad).unwrap();
    let (code, out, err) = run_to_exit_full(&["check", "--config", bad_path.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(
        out.contains("SASL authentication to Kafka broker")
            && out.contains("sink.kafka.security.sasl"),
        "{out}{err}"
    );
    assert!(
        !out.contains(&wrong) && !err.contains(&wrong),
        "the password is in the output:\n{out}{err}"
    );
    // (The proxy logs the closed connection when it notices it, maybe after `check`
    // exited.)
    let noticed = (0..100).any(|_| {
        let seen = broker.log_text().contains("closed before authentication");
        if !seen {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        seen
    });
    assert!(noticed, "{}", broker.log_text());
}

#[test]
fn scram_sha_512() {
    sasl_end_to_end("SCRAM-SHA-512");
}

#[test]
fn scram_sha_256() {
    sasl_end_to_end("SCRAM-SHA-256");
}

#[test]
fn plain() {
    sasl_end_to_end("PLAIN");
}
