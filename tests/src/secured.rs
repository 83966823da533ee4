//! The scenario every secured Kafka setup (TLS, SASL) must pass.

use std::path::Path;

use crate::sluice::{run_to_exit_full, Setup, Sluice};
use crate::{pg, reader};

/// With `config` pointing at a secured broker: `sluice check` passes, two rows of
/// `public.t (id int PRIMARY KEY, v text)` arrive for an independent consumer using
/// `props`, and after a restart (the committed position read over the same security) a
/// third arrives with nothing repeated. Returns the check output and both runs' logs.
pub fn round_trip(
    pg: &pg::Postgres,
    setup: &Setup,
    config: &Path,
    bootstrap: &str,
    props: &[String],
) -> Vec<String> {
    let (code, out, err) = run_to_exit_full(&["check", "--config", config.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}{err}");
    let mut logs = vec![format!("{out}{err}")];
    let read = |n| {
        reader::read_with(
            bootstrap,
            &setup.registry_url(),
            "shop.public.t",
            n,
            None,
            props,
        )
    };
    let mut s = Sluice::start(config, setup.admin_port);
    s.wait_ready();
    pg.psql("INSERT INTO t VALUES (1, 'a'), (2, 'b')");
    let recs = read(2);
    assert_eq!(recs[1]["value"]["after"]["v"], "b");
    let (st, _) = s.terminate();
    assert!(st.success(), "{}", s.log_text());
    logs.push(s.log_text());
    let mut s = Sluice::start(config, setup.admin_port);
    s.wait_ready();
    pg.psql("INSERT INTO t VALUES (3, 'c')");
    let ids: Vec<i64> = read(3)
        .iter()
        .map(|r| r["value"]["after"]["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [1, 2, 3]);
    let (st, _) = s.terminate();
    assert!(st.success(), "{}", s.log_text());
    logs.push(s.log_text());
    logs
}
