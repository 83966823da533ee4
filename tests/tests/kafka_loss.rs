//! Kafka losing Sluice's state. A cluster that lost everything (here: the in-memory
//! broker restarted while Sluice was stopped) is rebuilt by a new snapshot; a lost position
//! while the event topics still hold events stops Sluice instead of delivering every row
//! again.

use std::collections::BTreeMap;
use std::time::Duration;

use sluice_tests::reader;
use sluice_tests::sluice::Sluice;
use sluice_tests::{wait_for, Stack};

const TOPIC: &str = "shop.public.items";

fn stack() -> Stack {
    Stack::new(
        "CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL);
         INSERT INTO items VALUES (1, 'one'), (2, 'two');",
        &["public.items"],
    )
}

#[test]
fn a_kafka_that_lost_everything_is_rebuilt_by_a_new_snapshot() {
    let Stack {
        pg,
        mut broker,
        setup,
        config,
    } = stack();
    let mut s = Sluice::start(&config, setup.admin_port);
    s.wait_ready();
    pg.psql("INSERT INTO items VALUES (3, 'three')");
    reader::read(&broker.bootstrap(), &setup.registry_url(), TOPIC, 3, None);

    let (status, _) = s.terminate();
    assert!(status.success(), "{}", s.log_text());
    // (Restarting the broker under a running Sluice is not exercised: tansu then answers
    // AddPartitionsToTxn with 105, unknown to librdkafka — handled since, see
    // connectors/kafka/tests/mock_faults.rs — and a metadata answer that crashes
    // librdkafka's own metadata cache (SIGSEGV in rd_kafka_metadata_cache_find, a topic
    // without a name), which no real Kafka sends.)
    broker.restart_empty();
    pg.psql("INSERT INTO items VALUES (4, 'four'); UPDATE items SET name = 'uno' WHERE id = 1");
    // No position and no events: Sluice snapshots again.
    let mut s = Sluice::start(&config, setup.admin_port);
    s.wait_ready();
    assert!(
        s.log_text()
            .contains("recreating the slot and taking a snapshot"),
        "{}",
        s.log_text()
    );
    assert!(s.exited().is_none(), "sluice stopped:\n{}", s.log_text());
    let events = reader::read(&broker.bootstrap(), &setup.registry_url(), TOPIC, 4, None);
    let mut rows = BTreeMap::new();
    for e in &events {
        let after = &e["value"]["after"];
        assert_eq!(e["value"]["op"], "r", "{e}");
        let prev = rows.insert(after["id"].as_i64().unwrap(), after["name"].clone());
        assert!(prev.is_none(), "row delivered twice: {events:?}");
    }
    assert_eq!(
        serde_json::to_value(&rows).unwrap(),
        serde_json::json!({"1": "uno", "2": "two", "3": "three", "4": "four"})
    );
    // And it streams again.
    pg.psql("INSERT INTO items VALUES (5, 'five')");
    let next = reader::read(
        &broker.bootstrap(),
        &setup.registry_url(),
        TOPIC,
        1,
        Some(4),
    );
    assert_eq!(next[0]["value"]["op"], "c");
    assert_eq!(next[0]["value"]["after"]["id"], 5);
    let (status, _) = s.terminate();
    assert!(status.success(), "{}", s.log_text());
}

#[test]
fn a_lost_position_with_events_in_kafka_stops_instead_of_snapshotting_again() {
    let Stack {
        pg,
        broker,
        setup,
        config,
    } = stack();
    let mut s = Sluice::start(&config, setup.admin_port);
    s.wait_ready();
    reader::read(&broker.bootstrap(), &setup.registry_url(), TOPIC, 2, None);
    let (status, _) = s.terminate();
    assert!(status.success(), "{}", s.log_text());
    let confirmed = pg.confirmed_flush("sluice");

    // The position is looked up in another topic: as if the offsets topic were lost.
    let mut s = Sluice::start_with_env(
        &config,
        setup.admin_port,
        &[("SLUICE__SINK__KAFKA__OFFSETS_TOPIC", "elsewhere.offsets")],
    );
    let status = wait_for("sluice to stop", Duration::from_secs(60), || s.exited());
    assert_eq!(status.code(), Some(1), "{}", s.log_text());
    let log = s.log_text();
    assert!(
        log.contains("already holds committed events") && log.contains("sink.kafka.offsets_topic"),
        "{log}"
    );
    // Nothing was dropped or re-read: the slot is where it was, no row came twice.
    assert_eq!(pg.confirmed_flush("sluice"), confirmed);
    assert!(!log.contains("recreating the slot"), "{log}");
}
