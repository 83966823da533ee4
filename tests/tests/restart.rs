//! Restarts: what changes while sluice is down arrives after it comes back, nothing
//! confirmed is lost, and an unacknowledged change is never confirmed.

use serde_json::json;
use sluice_tests::reader;
use sluice_tests::sluice::Sluice;
use sluice_tests::wait_for;
use sluice_tests::Stack;
use std::time::Duration;

const TOPIC: &str = "shop.public.items";

#[test]
fn changes_made_while_down_arrive_after_restart_without_duplicates() {
    let Stack {
        pg,
        broker,
        setup,
        config,
    } = Stack::new(
        "CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL)",
        &["public.items"],
    );

    let mut s = Sluice::start(&config, setup.admin_port);
    s.wait_ready();
    pg.psql("INSERT INTO items VALUES (1, 'one')");
    let first = reader::read(&broker.bootstrap(), &setup.registry_url(), TOPIC, 1, None);
    assert_eq!(first[0]["value"]["after"], json!({"id": 1, "name": "one"}));
    let (status, took) = s.terminate();
    assert!(status.success(), "exit {status}:\n{}", s.log_text());
    assert!(took < Duration::from_secs(10), "stop took {took:?}");
    let confirmed_at_stop = pg.confirmed_flush("sluice");
    assert!(confirmed_at_stop > 0);

    // While down.
    pg.psql("INSERT INTO items VALUES (2, 'two')");
    pg.psql("UPDATE items SET name = 'uno' WHERE id = 1");

    let mut s = Sluice::start(&config, setup.admin_port);
    s.wait_ready();
    pg.psql("INSERT INTO items VALUES (3, 'three')");
    let all = reader::read(&broker.bootstrap(), &setup.registry_url(), TOPIC, 4, None);
    let seen: Vec<(String, i64, String)> = all
        .iter()
        .map(|r| {
            let v = &r["value"];
            (
                v["op"].as_str().unwrap().to_string(),
                v["after"]["id"].as_i64().unwrap(),
                v["after"]["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("c".to_string(), 1, "one".to_string()),
            ("c".to_string(), 2, "two".to_string()),
            ("u".to_string(), 1, "uno".to_string()),
            ("c".to_string(), 3, "three".to_string()),
        ],
        "exactly these, in order, no duplicate of the first insert"
    );
    let (status, _) = s.terminate();
    assert!(status.success(), "exit {status}:\n{}", s.log_text());
}

#[test]
fn a_change_kafka_has_not_acknowledged_is_never_confirmed() {
    let Stack {
        pg,
        broker,
        setup,
        config,
    } = Stack::new(
        "CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL)",
        &["public.items"],
    );
    let mut s = Sluice::start(&config, setup.admin_port);
    s.wait_ready();
    pg.psql("INSERT INTO items VALUES (1, 'one')");
    reader::read(&broker.bootstrap(), &setup.registry_url(), TOPIC, 1, None);
    let before = pg.current_lsn();
    wait_for(
        "the first insert to be confirmed",
        Duration::from_secs(30),
        || (pg.confirmed_flush("sluice") >= before).then_some(()),
    );
    let confirmed = pg.confirmed_flush("sluice");

    // Freeze the broker: the next change cannot be acknowledged.
    broker.pause();
    let after_insert = pg.exec_before_commit_lsn("INSERT INTO items VALUES (2, 'two')");
    std::thread::sleep(Duration::from_secs(4));
    assert!(
        pg.confirmed_flush("sluice") < after_insert,
        "confirmed past a change Kafka never acknowledged"
    );
    let (_, took) = s.terminate();
    assert!(
        took < Duration::from_secs(10),
        "stop took {took:?} with a frozen broker"
    );
    let after_stop = pg.confirmed_flush("sluice");
    assert!(after_stop >= confirmed);
    assert!(
        after_stop < after_insert,
        "shutdown confirmed an unacknowledged change"
    );

    // Broker back, sluice back: the change arrives.
    broker.resume();
    let mut s = Sluice::start(&config, setup.admin_port);
    s.wait_ready();
    let recs = reader::read(&broker.bootstrap(), &setup.registry_url(), TOPIC, 2, None);
    assert!(
        recs.iter().any(|r| r["value"]["after"]["id"] == json!(2)),
        "{recs:#?}"
    );
    s.terminate();
}
