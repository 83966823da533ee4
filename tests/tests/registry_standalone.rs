//! `sluice registry`: the bundled registry alone, with its admin endpoint — readiness,
//! and the server-side request metrics (by route template, method and status) on a live
//! scrape that `promtool check metrics` accepts.

use sluice_tests::sluice::{http_get, http_request, Setup, Sluice};

#[test]
fn standalone_registry_serves_metrics_and_readiness() {
    let setup = Setup::new();
    let config = setup.dir.path().join("registry.yaml");
    std::fs::write(
        &config,
        format!(
            "schema_registry:\n  listen: 127.0.0.1:{}\n  data_dir: registry\n  storage: directory\nadmin:\n  listen: 127.0.0.1:{}\n",
            setup.registry_port, setup.admin_port
        ),
    )
    .unwrap();
    let mut s = Sluice::start_command("registry", &config, setup.admin_port, &[]);
    s.wait_ready();
    let (_, ready) = s.admin_get("/readyz").unwrap();
    assert!(ready.contains("serving the schema registry"), "{ready}");

    let schema = r#"{"schema": "{\"type\":\"record\",\"name\":\"r\",\"fields\":[{\"name\":\"a\",\"type\":\"int\"}]}"}"#;
    let (code, body) = http_request(
        setup.registry_port,
        "POST",
        "/subjects/t-value/versions",
        schema,
    );
    assert_eq!(code, 200, "{body}");
    let (code, _) = http_get(setup.registry_port, "/subjects/nope/versions").unwrap();
    assert_eq!(code, 404);

    let (code, metrics) = s.admin_get("/metrics").unwrap();
    assert_eq!(code, 200);
    for want in [
        r#"sluice_registry_server_requests_total{code="200",method="POST",route="/subjects/{subject}/versions"} 1"#,
        r#"sluice_registry_server_requests_total{code="404",method="GET",route="/subjects/{subject}/versions"} 1"#,
        r#"sluice_registry_server_request_duration_seconds_count{route="/subjects/{subject}/versions"} 2"#,
    ] {
        assert!(metrics.contains(want), "missing {want}:\n{metrics}");
    }
    // Labels stay bounded: no subject name in any label.
    assert!(!metrics.contains("t-value"), "{metrics}");
    sluice_tests::promtool_accepts(&metrics);
    let (st, _) = s.terminate();
    assert!(st.success(), "{}", s.log_text());
}
