//! TLS to PostgreSQL: the server gets a certificate from a CA made here; Sluice connects
//! with each mode and the outcome matches libpq's sslmode semantics. Both the SQL and the
//! replication connections are encrypted (pg_stat_ssl says so).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use sluice_tests::pki::Pki;
use sluice_tests::reader;
use sluice_tests::sluice::{run_to_exit_full, Sluice};
use sluice_tests::Stack;

/// Turns TLS on with this certificate (the key owned by the server's user, mode 0600) and
/// lets only TLS connections in when `only_tls`.
fn enable_tls(st: &Stack, p: &Pki, dir: &Path, only_tls: bool) {
    let cert = dir.join("server.crt");
    let key = dir.join("server.key");
    std::fs::write(&cert, &p.cert_pem).unwrap();
    std::fs::write(&key, &p.key_pem).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::set_permissions(&cert, std::fs::Permissions::from_mode(0o644)).unwrap();
    let _ = Command::new("chown")
        .arg("postgres:postgres")
        .args([&cert, &key])
        .status();
    for sql in [
        "ALTER SYSTEM SET ssl = on".to_string(),
        format!("ALTER SYSTEM SET ssl_cert_file = '{}'", cert.display()),
        format!("ALTER SYSTEM SET ssl_key_file = '{}'", key.display()),
    ] {
        st.pg.psql(&sql);
    }
    if only_tls {
        let hba = st.pg.psql("SHOW hba_file");
        std::fs::write(
            hba.trim(),
            "hostssl all all 127.0.0.1/32 scram-sha-256\nlocal all all scram-sha-256\n",
        )
        .unwrap();
    }
    let reloaded = st.pg.psql("SELECT pg_reload_conf()");
    assert_eq!(reloaded.trim(), "t");
}

fn with_tls(config: &str, block: &str) -> String {
    config.replace(
        "    status_interval_secs: 1\n",
        &format!("    status_interval_secs: 1\n    tls:\n{block}"),
    )
}

fn check(config_text: &str, dir: &Path, name: &str) -> (Option<i32>, String) {
    let path = dir.join(name);
    std::fs::write(&path, config_text).unwrap();
    let (code, out, err) = run_to_exit_full(&["check", "--config", path.to_str().unwrap()]);
    (code, format!("{out}{err}"))
}

#[test]
fn every_mode_behaves_like_libpq_and_both_connections_are_encrypted() {
    let st = Stack::new(
        "CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL)",
        &["public.items"],
    );
    let dir = st.setup.dir.path().join("tls");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let good = Pki::new(&["127.0.0.1", "localhost"]);
    enable_tls(&st, &good, &dir, true);
    let ca = dir.join("ca.crt");
    std::fs::write(&ca, &good.ca_pem).unwrap();
    let other = Pki::new(&["127.0.0.1"]);
    let other_ca = dir.join("other-ca.crt");
    std::fs::write(&other_ca, &other.ca_pem).unwrap();
    let base = std::fs::read_to_string(&st.config).unwrap();

    // verify-full with the right CA: the pipeline runs, encrypted.
    let full = with_tls(
        &base,
        &format!("      mode: verify-full\n      ca_file: {}\n", ca.display()),
    );
    std::fs::write(&st.config, &full).unwrap();
    let mut s = Sluice::start(&st.config, st.setup.admin_port);
    s.wait_ready();
    st.pg.psql("INSERT INTO items VALUES (1, 'one')");
    let recs = reader::read(
        &st.broker.bootstrap(),
        &st.setup.registry_url(),
        "shop.public.items",
        1,
        None,
    );
    assert_eq!(recs[0]["value"]["after"]["name"], "one");
    let encrypted = st.pg.psql(
        "SELECT a.backend_type, s.ssl FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) \
         WHERE a.application_name = 'sluice' ORDER BY 1, 2",
    );
    assert!(encrypted.contains("walsender|t"), "{encrypted}");
    assert!(encrypted.contains("client backend|t"), "{encrypted}");
    assert!(!encrypted.contains("|f"), "{encrypted}");
    let (status, _) = s.terminate();
    assert!(status.success(), "{}", s.log_text());
    let (code, out) = check(&full, &dir, "full.yaml");
    assert_eq!(code, Some(0), "{out}");

    // (config block, expected exit, text the report must contain)
    let cases = [
        // Another CA: refused, naming the certificate problem.
        (
            format!(
                "      mode: verify-full\n      ca_file: {}\n",
                other_ca.display()
            ),
            1,
            "invalid peer certificate",
        ),
        // No TLS while the server only accepts TLS: pg_hba says so.
        ("      mode: disable\n".to_string(), 1, "no encryption"),
        // require without a CA: encrypted, certificate not checked.
        ("      mode: require\n".to_string(), 0, "all"),
        // verify-full without a CA file is a configuration error.
        ("      mode: verify-full\n".to_string(), 78, "ca_file"),
        (
            "      mode: sometimes\n".to_string(),
            78,
            "source.postgres.tls.mode",
        ),
    ];
    for (i, (block, want, text)) in cases.iter().enumerate() {
        let (code, out) = check(&with_tls(&base, block), &dir, &format!("case{i}.yaml"));
        assert_eq!(code, Some(*want), "{block}:\n{out}");
        assert!(out.contains(text), "{block}: expected {text:?} in:\n{out}");
    }

    // A certificate for another name: verify-ca accepts it, verify-full does not.
    let renamed = Pki::new(&["db.example.com"]);
    enable_tls(&st, &renamed, &dir, true);
    std::fs::write(&ca, &renamed.ca_pem).unwrap();
    let (code, out) = check(
        &with_tls(
            &base,
            &format!("      mode: verify-ca\n      ca_file: {}\n", ca.display()),
        ),
        &dir,
        "ca.yaml",
    );
    assert_eq!(code, Some(0), "verify-ca:\n{out}");
    let (code, out) = check(
        &with_tls(
            &base,
            &format!("      mode: verify-full\n      ca_file: {}\n", ca.display()),
        ),
        &dir,
        "full2.yaml",
    );
    assert_eq!(code, Some(1), "verify-full:\n{out}");
    assert!(out.contains("not valid for name"), "{out}");
}
