//! End to end with a secured bundled registry: `schema_registry.tls` (a self-signed
//! certificate made with openssl) and `schema_registry.basic_auth.users_file`. Sluice's own
//! client must reach its registry over https with the first user's credentials and the
//! configured certificate as root; events are then read back by the independent Python
//! reader (confluent-kafka's SchemaRegistryClient over https with basic auth).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};
use sluice_tests::broker::Broker;
use sluice_tests::pg::Postgres;
use sluice_tests::reader::python;
use sluice_tests::sluice::{http_get, Setup, Sluice};
use sluice_tests::{repo_root, wait_for};

const TOPIC: &str = "shop.public.orders";

/// A self-signed certificate for localhost and 127.0.0.1 (not a CA: rustls refuses a CA
/// certificate as a server's).
fn make_cert(dir: &Path) {
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-addext",
            "basicConstraints=critical,CA:FALSE",
            "-keyout",
        ])
        .arg(dir.join("registry-key.pem"))
        .arg("-out")
        .arg(dir.join("registry-cert.pem"))
        .output()
        .expect("run openssl (apt-get install openssl)");
    assert!(
        out.status.success(),
        "openssl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs a Python snippet with the test venv; returns stdout.
fn py(code: &str, args: &[&str]) -> String {
    let out = Command::new(python())
        .arg("-c")
        .arg(code)
        .args(args)
        .current_dir(repo_root())
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "python failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// GET over https trusting `ca`: (status, WWW-Authenticate, body).
const HTTPS_GET: &str = r#"
import json, sys, httpx
url, ca, user, pw = sys.argv[1:5]
auth = (user, pw) if user else None
r = httpx.get(url, verify=ca, auth=auth)
print(json.dumps([r.status_code, r.headers.get("www-authenticate"), r.text]))
"#;

fn https_get(url: &str, ca: &Path, creds: Option<(&str, &str)>) -> (u16, Option<String>, String) {
    let (u, p) = creds.unwrap_or(("", ""));
    let out = py(HTTPS_GET, &[url, ca.to_str().unwrap(), u, p]);
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    (
        v[0].as_u64().unwrap() as u16,
        v[1].as_str().map(str::to_string),
        v[2].as_str().unwrap().to_string(),
    )
}

/// tests/py/consume.py with its SchemaRegistryClient given the CA and credentials.
const SECURE_READER: &str = r#"
import sys
sys.path.insert(0, "tests/py")
import consume
ca, userinfo = sys.argv[1], sys.argv[2]
plain_client = consume.SchemaRegistryClient
consume.SchemaRegistryClient = lambda conf: plain_client(
    {**conf, "ssl.ca.location": ca, "basic.auth.user.info": userinfo})
sys.argv = ["consume.py"] + sys.argv[3:]
consume.main()
"#;

fn read_secure(
    bootstrap: &str,
    registry: &str,
    ca: &Path,
    userinfo: &str,
    count: usize,
) -> Vec<Value> {
    let count = count.to_string();
    let out = py(
        SECURE_READER,
        &[
            ca.to_str().unwrap(),
            userinfo,
            "--bootstrap",
            bootstrap,
            "--registry",
            registry,
            "--topic",
            TOPIC,
            "--count",
            &count,
            "--timeout",
            "60",
        ],
    );
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad line {l:?}: {e}")))
        .collect()
}

#[test]
fn run_with_tls_and_basic_auth_on_the_bundled_registry() {
    let pg = Postgres::start();
    let broker = Broker::start();
    pg.psql("CREATE TABLE orders (id int PRIMARY KEY, customer text NOT NULL)");
    pg.psql("INSERT INTO orders VALUES (1, 'ada')");

    let setup = Setup::new();
    let dir = setup.dir.path();
    make_cert(dir);
    let ca = dir.join("registry-cert.pem");
    // The pipeline's own client uses the first user.
    std::fs::write(
        dir.join("registry-users"),
        "sluice:s3cret:pw\nreader:r3ad\n",
    )
    .unwrap();
    let config = setup.write_config(&pg, &broker.bootstrap(), &["public.orders"], "");
    let text = std::fs::read_to_string(&config).unwrap();
    let secured = text.replace(
        "  data_dir: registry\n",
        "  data_dir: registry\n  basic_auth:\n    users_file: registry-users\n  tls:\n    cert_file: registry-cert.pem\n    key_file: registry-key.pem\n",
    );
    assert_ne!(secured, text, "the registry section was found");
    std::fs::write(&config, secured).unwrap();

    let mut sluice = Sluice::start(&config, setup.admin_port);
    sluice.wait_ready();
    pg.psql("INSERT INTO orders VALUES (2, 'bob')");
    pg.psql("UPDATE orders SET customer = 'bea' WHERE id = 2");

    let registry = format!("https://127.0.0.1:{}", setup.registry_port);
    let recs = read_secure(&broker.bootstrap(), &registry, &ca, "reader:r3ad", 3);
    let ops: Vec<&str> = recs
        .iter()
        .map(|r| r["value"]["op"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(ops, ["r", "c", "u"], "{recs:#?}");
    assert_eq!(
        recs[2]["value"]["after"],
        json!({"id": 2, "customer": "bea"})
    );
    assert_eq!(recs[2]["key"], json!({"id": 2}));

    // The listener refuses what lacks credentials, and plain HTTP.
    let subjects = format!("{registry}/subjects");
    let (status, www, body) = https_get(&subjects, &ca, None);
    assert_eq!(status, 401, "{body}");
    assert_eq!(
        www.as_deref(),
        Some("Basic realm=\"schema-registry\""),
        "{body}"
    );
    let err: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(err["error_code"], 401, "{body}");
    let (status, _, body) = https_get(&subjects, &ca, Some(("reader", "wrong")));
    assert_eq!(status, 401, "{body}");
    let (status, _, body) = https_get(&subjects, &ca, Some(("sluice", "s3cret:pw")));
    assert_eq!(status, 200, "{body}");
    let names: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        names,
        json!([format!("{TOPIC}-key"), format!("{TOPIC}-value")]),
        "{body}"
    );
    assert!(
        !matches!(http_get(setup.registry_port, "/subjects"), Some((200, _))),
        "plain HTTP must not be served"
    );

    // The events flowed, so the slot moves on.
    let lsn = pg.current_lsn();
    wait_for(
        "confirmed_flush_lsn to pass the workload",
        Duration::from_secs(30),
        || (pg.confirmed_flush("sluice") >= lsn).then_some(()),
    );
    let (status, _) = sluice.terminate();
    assert!(status.success(), "exit {status}:\n{}", sluice.log_text());
    assert!(
        !sluice.log_text().contains("s3cret"),
        "the password never reaches the log"
    );
}

#[test]
fn check_config_names_unreadable_security_files() {
    let setup = Setup::new();
    let dir = setup.dir.path();
    let base = "source:\n  postgres:\n    url: postgres://u@127.0.0.1:5432/d\n    tables: [public.t]\nsink:\n  kafka:\n    bootstrap_servers: 127.0.0.1:9092\n    topic_prefix: p\n";
    for (registry, key) in [
        (
            "schema_registry:\n  basic_auth:\n    users_file: missing-users\n",
            "schema_registry.basic_auth.users_file",
        ),
        (
            "schema_registry:\n  tls:\n    cert_file: missing-cert.pem\n    key_file: missing-key.pem\n",
            "schema_registry.tls.cert_file",
        ),
    ] {
        let path = dir.join("sluice.yaml");
        std::fs::write(&path, format!("{base}{registry}")).unwrap();
        let (code, stderr) =
            sluice_tests::sluice::run_to_exit(&["check-config", "--config", path.to_str().unwrap()]);
        assert_eq!(code, Some(78), "{stderr}");
        assert!(stderr.contains(key), "{stderr}");
    }
}
