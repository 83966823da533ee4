//! Bad configuration: exit status 78 and a message naming the key.

use sluice_tests::sluice::run_to_exit;

const GOOD: &str = "source:\n  postgres:\n    url: postgres://app@127.0.0.1:5432/shop\n    tables: [public.orders]\n\
sink:\n  kafka:\n    bootstrap_servers: 127.0.0.1:9092\n    topic_prefix: shop\n";

fn run_with(text: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sluice.yaml");
    std::fs::write(&path, text).unwrap();
    run_to_exit(&["run", "--config", path.to_str().unwrap()])
}

#[test]
fn bad_configs_exit_78_naming_the_key() {
    let cases = [
        (
            GOOD.replace("    url: postgres://app@127.0.0.1:5432/shop\n", ""),
            "source.postgres.url",
        ),
        (format!("{GOOD}    colour: blue\n"), "sink.kafka.colour"),
        (
            GOOD.replace("postgres://app@127.0.0.1:5432/shop", "postgres//nohost"),
            "source.postgres.url",
        ),
        (
            GOOD.replace(
                "    tables:",
                "    password_file: /nonexistent/secret\n    tables:",
            ),
            "source.postgres.password_file",
        ),
        (
            GOOD.replace(
                "sink:\n  kafka:\n    bootstrap_servers: 127.0.0.1:9092\n    topic_prefix: shop\n",
                "",
            ),
            "sink",
        ),
    ];
    for (text, key) in cases {
        let (code, stderr) = run_with(&text);
        assert_eq!(code, Some(78), "config:\n{text}\nstderr:\n{stderr}");
        assert!(
            stderr.contains(key),
            "message does not name {key}:\n{stderr}"
        );
    }
}

#[test]
fn unreadable_password_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    // A directory is not a readable file.
    let text = GOOD.replace(
        "    tables:",
        &format!("    password_file: {}\n    tables:", dir.path().display()),
    );
    let (code, stderr) = run_with(&text);
    assert_eq!(code, Some(78), "{stderr}");
    assert!(stderr.contains("source.postgres.password_file"), "{stderr}");
}

#[test]
fn missing_config_file_is_a_config_error() {
    let (code, stderr) = run_to_exit(&["run", "--config", "/nonexistent/sluice.yaml"]);
    assert_eq!(code, Some(78), "{stderr}");
    assert!(stderr.contains("/nonexistent/sluice.yaml"), "{stderr}");
}

#[test]
fn env_override_fixes_a_missing_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sluice.yaml");
    std::fs::write(
        &path,
        GOOD.replace("    url: postgres://app@127.0.0.1:5432/shop\n", ""),
    )
    .unwrap();
    let out = std::process::Command::new(sluice_tests::sluice::binary())
        .args(["check-config", "--config", path.to_str().unwrap()])
        .env(
            "SLUICE__SOURCE__POSTGRES__URL",
            "postgres://app@127.0.0.1:5432/shop",
        )
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
