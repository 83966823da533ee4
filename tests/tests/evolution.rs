//! Schema evolution: compatible table changes register new versions before the first
//! event that uses them; an incompatible change stops only that table, visibly, and
//! nothing is produced under a refused schema; the documented way out resumes it
//! without losing or repeating events.

use serde_json::{json, Value};
use sluice_tests::broker::Broker;
use sluice_tests::pg::Postgres;
use sluice_tests::reader;
use sluice_tests::sluice::{http_get, http_request, Setup, Sluice};
use sluice_tests::wait_for;
use std::time::Duration;

#[test]
fn compatible_changes_evolve_and_an_incompatible_one_stops_only_its_table() {
    let pg = Postgres::start();
    let broker = Broker::start();
    pg.psql("CREATE TABLE e (id int PRIMARY KEY, a text NOT NULL); CREATE TABLE other (id int PRIMARY KEY)");
    let setup = Setup::new();
    let config = setup.write_config(&pg, &broker.bootstrap(), &["public.e", "public.other"], "");
    let mut s = Sluice::start(&config, setup.admin_port);
    s.wait_ready();
    let topic = "shop.public.e";
    let read = |n| reader::read(&broker.bootstrap(), &setup.registry_url(), topic, n, None);

    pg.psql("INSERT INTO e VALUES (1, 'v1')");
    pg.psql("ALTER TABLE e ADD COLUMN b text; INSERT INTO e VALUES (2, 'v2', 'b')");
    pg.psql(
        "ALTER TABLE e ADD COLUMN c int NOT NULL DEFAULT 7; INSERT INTO e (id, a) VALUES (3, 'v3')",
    );
    pg.psql("ALTER TABLE e DROP COLUMN b; INSERT INTO e (id, a, c) VALUES (4, 'v4', 8)");
    pg.psql(
        "ALTER TABLE e ALTER COLUMN c TYPE bigint; INSERT INTO e (id, a, c) VALUES (5, 'v5', 9)",
    );
    let recs = read(5);
    let afters: Vec<&Value> = recs.iter().map(|r| &r["value"]["after"]).collect();
    assert_eq!(afters[0], &json!({"id": 1, "a": "v1"}));
    assert_eq!(afters[1], &json!({"id": 2, "a": "v2", "b": "b"}));
    assert_eq!(afters[2], &json!({"id": 3, "a": "v3", "b": null, "c": 7}));
    assert_eq!(afters[3], &json!({"id": 4, "a": "v4", "c": 8}));
    assert_eq!(afters[4], &json!({"id": 5, "a": "v5", "c": 9}));
    // One value schema version per shape, each event written with its own.
    assert_eq!(
        setup.subject_versions("shop.public.e-value"),
        [1, 2, 3, 4, 5]
    );
    let ids: std::collections::BTreeSet<i64> = recs
        .iter()
        .map(|r| r["value_schema_id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids.len(), 5, "{recs:#?}");

    // Incompatible: int column becomes text (BACKWARD: a string reader cannot read int).
    pg.psql("ALTER TABLE e ALTER COLUMN c TYPE text USING c::text; INSERT INTO e (id, a, c) VALUES (6, 'v6', 'ten')");
    // The refused transaction ends before this point.
    let after_block = pg.current_lsn();
    s.wait_table_blocked("public.e");
    let (_, metrics) = s.admin_get("/metrics").unwrap();
    assert!(
        metrics.contains("sluice_table_blocked{table=\"public.e\"} 1"),
        "{metrics}"
    );
    assert_eq!(
        setup.subject_versions("shop.public.e-value"),
        [1, 2, 3, 4, 5],
        "the refused schema was registered"
    );

    // Other tables keep flowing.
    pg.psql("INSERT INTO other VALUES (1)");
    let other = reader::read(
        &broker.bootstrap(),
        &setup.registry_url(),
        "shop.public.other",
        1,
        None,
    );
    assert_eq!(other[0]["value"]["after"], json!({"id": 1}));
    // The confirmed position stays before the refused change.
    std::thread::sleep(Duration::from_secs(3));
    let confirmed = pg.confirmed_flush("sluice");
    assert!(
        confirmed < after_block,
        "confirmed {confirmed} moved past the refused transaction (ends before {after_block})"
    );
    // Nothing was produced under the refused schema.
    let (_, body) = http_get(
        setup.registry_port,
        "/subjects/shop.public.e-value/versions/latest",
    )
    .unwrap();
    let latest: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(latest["version"], json!(5));

    // The way out: relax the subject's compatibility, restart. The stopped table resumes
    // where it stopped; the other table's event is not produced again.
    let (code, body) = http_request(
        setup.registry_port,
        "PUT",
        "/config/shop.public.e-value",
        r#"{"compatibility": "NONE"}"#,
    );
    assert_eq!(code, 200, "{body}");
    let (st, _) = s.terminate();
    assert!(st.success(), "{}", s.log_text());
    let mut s = Sluice::start(&config, setup.admin_port);
    s.wait_ready();
    pg.psql("INSERT INTO other VALUES (2)");
    let recs = read(6);
    assert_eq!(
        recs[5]["value"]["after"],
        json!({"id": 6, "a": "v6", "c": "ten"})
    );
    let other = reader::read(
        &broker.bootstrap(),
        &setup.registry_url(),
        "shop.public.other",
        2,
        None,
    );
    assert_eq!(other[1]["value"]["after"], json!({"id": 2}), "{other:#?}");
    assert_eq!(
        setup.subject_versions("shop.public.e-value"),
        [1, 2, 3, 4, 5, 6]
    );
    wait_for(
        "the table to flow again and the position to move on",
        Duration::from_secs(30),
        || (pg.confirmed_flush("sluice") >= after_block).then_some(()),
    );
    // Exactly the events expected: no duplicate of e's or other's rows.
    let all_e = read(6);
    assert_eq!(all_e.len(), 6);
    reader::assert_at_most(
        &broker.bootstrap(),
        &setup.registry_url(),
        "shop.public.other",
        2,
    );
    let (st, _) = s.terminate();
    assert!(st.success(), "{}", s.log_text());
}

#[test]
fn register_anyway_registers_a_refused_schema_and_restores_the_subject_level() {
    let pg = Postgres::start();
    let broker = Broker::start();
    pg.psql("CREATE TABLE e (id int PRIMARY KEY, c int)");
    let setup = Setup::new();
    let config = setup.write_config(&pg, &broker.bootstrap(), &["public.e"], "");
    let mut s = Sluice::start_with_env(
        &config,
        setup.admin_port,
        &[(
            "SLUICE__SCHEMA_REGISTRY__ON_INCOMPATIBLE",
            "register_anyway",
        )],
    );
    s.wait_ready();
    pg.psql("INSERT INTO e VALUES (1, 5)");
    let topic = "shop.public.e";
    reader::read(&broker.bootstrap(), &setup.registry_url(), topic, 1, None);
    // A subject-level setting, to be put back afterwards.
    let (code, body) = http_request(
        setup.registry_port,
        "PUT",
        "/config/shop.public.e-value",
        r#"{"compatibility": "FULL"}"#,
    );
    assert_eq!(code, 200, "{body}");

    pg.psql(
        "ALTER TABLE e ALTER COLUMN c TYPE text USING c::text; INSERT INTO e VALUES (2, 'ten')",
    );
    let recs = reader::read(&broker.bootstrap(), &setup.registry_url(), topic, 2, None);
    assert_eq!(recs[1]["value"]["after"], json!({"id": 2, "c": "ten"}));
    assert_eq!(setup.subject_versions("shop.public.e-value"), [1, 2]);
    let (_, body) = http_get(setup.registry_port, "/config/shop.public.e-value").unwrap();
    let level: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(level["compatibilityLevel"], json!("FULL"), "{body}");
    let (_, metrics) = s.admin_get("/metrics").unwrap();
    assert!(
        metrics.contains("sluice_schema_registered_anyway_total 1"),
        "{metrics}"
    );
    assert!(s.admin_get("/readyz").is_some_and(|(c, _)| c == 200));
    let (st, _) = s.terminate();
    assert!(st.success(), "{}", s.log_text());
}

#[test]
fn rename_and_numeric_scale_change_evolve_and_old_events_read_with_the_latest_schema() {
    let pg = Postgres::start();
    let broker = Broker::start();
    pg.psql("CREATE TABLE r (id int PRIMARY KEY, a text, n numeric(10,2))");
    let setup = Setup::new();
    let config = setup.write_config(&pg, &broker.bootstrap(), &["public.r"], "");
    let mut s = Sluice::start(&config, setup.admin_port);
    s.wait_ready();
    let topic = "shop.public.r";
    let subject = "shop.public.r-value";
    pg.psql("INSERT INTO r VALUES (1, 'x', 1.50)");
    // A rename is a drop plus an add: BACKWARD-compatible for a nullable column.
    pg.psql("ALTER TABLE r RENAME COLUMN a TO b; INSERT INTO r VALUES (2, 'y', 2.25)");
    let recs = reader::read(&broker.bootstrap(), &setup.registry_url(), topic, 2, None);
    assert_eq!(
        recs[0]["value"]["after"],
        json!({"id": 1, "a": "x", "n": "1.50"})
    );
    assert_eq!(
        recs[1]["value"]["after"],
        json!({"id": 2, "b": "y", "n": "2.25"})
    );
    assert_eq!(setup.subject_versions(subject), [1, 2]);
    // A consumer reading with the latest schema still reads the older event: the
    // renamed column's old name is dropped, the new one takes its default.
    let latest = reader::read_as_latest(&broker.bootstrap(), &setup.registry_url(), topic, 2);
    assert_eq!(
        latest[0]["value"]["after"],
        json!({"id": 1, "b": null, "n": "1.50"})
    );
    assert_eq!(
        latest[1]["value"]["after"],
        json!({"id": 2, "b": "y", "n": "2.25"})
    );

    // numeric(10,2) -> numeric(12,4): the same Avro type (bytes), new decimal
    // parameters; the registry accepts it as a new version and each event carries its own.
    pg.psql(
        "ALTER TABLE r ALTER COLUMN n TYPE numeric(12,4); INSERT INTO r VALUES (3, 'z', 3.1234)",
    );
    let recs = reader::read(&broker.bootstrap(), &setup.registry_url(), topic, 3, None);
    assert_eq!(
        recs[2]["value"]["after"],
        json!({"id": 3, "b": "z", "n": "3.1234"})
    );
    assert_eq!(
        recs[0]["value"]["after"]["n"],
        json!("1.50"),
        "old event keeps its scale"
    );
    assert_eq!(setup.subject_versions(subject), [1, 2, 3]);
    let (_, v3) = http_get(
        setup.registry_port,
        &format!("/subjects/{subject}/versions/3/schema"),
    )
    .unwrap();
    assert!(
        v3.contains("\"scale\":4") && v3.contains("\"precision\":12"),
        "{v3}"
    );
    let (st, _) = s.terminate();
    assert!(st.success(), "{}", s.log_text());
}
