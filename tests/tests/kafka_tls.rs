//! Kafka over mutual TLS: the test broker sits behind a TLS terminator that requires a
//! client certificate. Sluice's producer, topic admin, offsets reader and registry
//! storage all connect through it; an independent consumer reads the events over TLS;
//! a restart repeats nothing; a wrong CA is refused with a message naming the setting.

use sluice_tests::broker::TlsBroker;
use sluice_tests::pg::Postgres;
use sluice_tests::pki::Pki;
use sluice_tests::sluice::{run_to_exit_full, Setup};
use std::path::Path;

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

#[test]
fn every_kafka_client_speaks_mutual_tls() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(&["127.0.0.1", "localhost"]);
    let ca = write(dir.path(), "ca.pem", &pki.ca_pem);
    let cert = write(dir.path(), "server.pem", &pki.cert_pem);
    let key = write(dir.path(), "server.key", &pki.key_pem);
    let client_cert = write(dir.path(), "client.pem", &pki.client_cert_pem);
    let client_key = write(dir.path(), "client.key", &pki.client_key_pem);
    let broker = TlsBroker::start(Path::new(&cert), Path::new(&key), Path::new(&ca));

    let pg = Postgres::start();
    pg.psql("CREATE TABLE t (id int PRIMARY KEY, v text)");
    let setup = Setup::new();
    let security = |ca: &str| {
        format!(
            "    security:\n      protocol: ssl\n      tls:\n        ca_file: {ca}\n        cert_file: {client_cert}\n        key_file: {client_key}\n"
        )
    };
    let config = setup.write_config(&pg, &broker.bootstrap(), &["public.t"], "");
    let text = std::fs::read_to_string(&config).unwrap();
    let good = text.replace(
        "    topic_prefix: shop\n",
        &format!("    topic_prefix: shop\n{}", security(&ca)),
    );
    std::fs::write(&config, &good).unwrap();

    let tls = [
        "security.protocol=ssl".to_string(),
        format!("ssl.ca.location={ca}"),
        format!("ssl.certificate.location={client_cert}"),
        format!("ssl.key.location={client_key}"),
    ];
    sluice_tests::secured::round_trip(&pg, &setup, &config, &broker.bootstrap(), &tls);

    // A CA that did not sign the broker's certificate: refused, naming the setting.
    let other = Pki::new(&["127.0.0.1"]);
    let wrong_ca = write(dir.path(), "other-ca.pem", &other.ca_pem);
    let bad = good.replace(&format!("ca_file: {ca}"), &format!("ca_file: {wrong_ca}"));
    let bad_path = dir.path().join("bad.yaml");
    std::fs::write(&bad_path, bad).unwrap();
    let (code, out, err) = run_to_exit_full(&["check", "--config", bad_path.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(
        out.contains("TLS to Kafka broker") && out.contains("sink.kafka.security.tls"),
        "{out}{err}"
    );
}
