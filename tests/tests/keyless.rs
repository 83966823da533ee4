//! Tables without a primary key or replica identity: refused by default with the fix;
//! with `keyless_tables: null_key` streamed with a null event key (no key schema, no
//! tombstones) for an insert-only table.

use serde_json::{json, Value};
use sluice_tests::reader;
use sluice_tests::sluice::{http_get, run_to_exit_full, Sluice};
use sluice_tests::Stack;

#[test]
fn keyless_tables_are_refused_or_streamed_with_a_null_key() {
    let st = Stack::new("CREATE TABLE log (seq int, msg text)", &["public.log"]);
    let (code, out, err) = run_to_exit_full(&["check", "--config", st.config.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(
        out.contains("has no primary key") && out.contains("keyless_tables: null_key"),
        "{out}"
    );

    let env = [("SLUICE__SOURCE__POSTGRES__KEYLESS_TABLES", "null_key")];
    let mut s = Sluice::start_with_env(&st.config, st.setup.admin_port, &env);
    s.wait_ready();
    st.pg
        .psql("INSERT INTO log VALUES (1, 'started'), (2, 'stopped')");
    let recs = reader::read(
        &st.broker.bootstrap(),
        &st.setup.registry_url(),
        "shop.public.log",
        2,
        None,
    );
    for (r, (seq, msg)) in recs.iter().zip([(1, "started"), (2, "stopped")]) {
        assert_eq!(r["key"], Value::Null, "{r}");
        assert_eq!(r["value"]["after"], json!({"seq": seq, "msg": msg}));
    }
    let (code, _) = http_get(
        st.setup.registry_port,
        "/subjects/shop.public.log-key/versions",
    )
    .unwrap();
    assert_eq!(code, 404, "a key schema was registered for a keyless table");
    assert!(s.log_text().contains("no primary key"), "{}", s.log_text());
    let (status, _) = s.terminate();
    assert!(status.success(), "{}", s.log_text());
}
