//! Against a real Kafka-protocol broker (tansu, from `.tools/`, see scripts/setup.sh):
//! transactions commit and abort as expected, our raw reader applies read_committed
//! itself, positions round-trip through the offsets topic, and a second producer with
//! the same transactional.id fences the first.

use std::collections::BTreeMap;
use std::time::Duration;

use sluice_core::{Lsn, Position, Resume};
use sluice_kafka::{offsets, raw, KafkaConfig, SinkError, Topics, TxnProducer};
use sluice_tests::broker::Broker;

fn config(port: u16) -> KafkaConfig {
    KafkaConfig {
        bootstrap_servers: format!("127.0.0.1:{port}"),
        properties: BTreeMap::new(),
        topic_partitions: 1,
        topic_replication_factor: 1,
        offsets_topic: "sluice.offsets".into(),
        transaction_timeout: Duration::from_secs(10),
        security: Default::default(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_and_aborted_transactions_and_positions() {
    let b = Broker::start();
    let cfg = config(b.port);
    let mut topics = Topics::new(&cfg).unwrap();
    topics.ensure("data").await.unwrap();
    topics.ensure_offsets_topic().await.unwrap();
    let p = TxnProducer::new(&cfg, "t1", Duration::from_secs(30))
        .await
        .unwrap();

    let pos = Position {
        end_lsn: Lsn(1000),
        resume: Some(Resume {
            commit_lsn: Lsn(2000),
            ordinal: 3,
        }),
        snapshot_pending: false,
        blocked: Vec::new(),
        snapshot: None,
    };
    p.begin().unwrap();
    p.send("data", Some(b"k1"), Some(b"a")).await.unwrap();
    p.send("data", Some(b"k2"), Some(b"b")).await.unwrap();
    p.send(
        "sluice.offsets",
        Some(b"slot"),
        Some(&offsets::encode(&pos.clone())),
    )
    .await
    .unwrap();
    p.commit().await.unwrap();

    p.begin().unwrap();
    p.send("data", Some(b"k3"), Some(b"aborted")).await.unwrap();
    let later = Position {
        end_lsn: Lsn(5000),
        ..Default::default()
    };
    p.send(
        "sluice.offsets",
        Some(b"slot"),
        Some(&offsets::encode(&later)),
    )
    .await
    .unwrap();
    // Make sure the aborted records reach the log (librdkafka would otherwise purge them
    // locally), so the reader has to drop them on the abort marker.
    p.flush().await.unwrap();
    p.abort().await.unwrap();

    let rc = raw::read_committed(&cfg.bootstrap_servers, &cfg.security, "data", 0)
        .await
        .unwrap();
    let values: Vec<Vec<u8>> = rc
        .committed
        .iter()
        .map(|r| r.value.clone().unwrap())
        .collect();
    assert_eq!(values, [b"a".to_vec(), b"b".to_vec()]);
    assert_eq!(
        rc.aborted_records, 1,
        "the aborted record is in the log and must be dropped by us"
    );

    // The aborted position must not win.
    let loaded = offsets::load(
        &cfg.bootstrap_servers,
        &cfg.security,
        "sluice.offsets",
        "slot",
    )
    .await
    .unwrap();
    assert_eq!(loaded, Some(pos));
    assert_eq!(
        offsets::load(
            &cfg.bootstrap_servers,
            &cfg.security,
            "sluice.offsets",
            "other"
        )
        .await
        .unwrap(),
        None
    );
    assert_eq!(
        offsets::load(
            &cfg.bootstrap_servers,
            &cfg.security,
            "no.such.topic",
            "slot"
        )
        .await
        .unwrap(),
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_producer_fences_the_first() {
    let b = Broker::start();
    let cfg = config(b.port);
    let mut topics = Topics::new(&cfg).unwrap();
    topics.ensure("data").await.unwrap();
    let first = TxnProducer::new(&cfg, "same-id", Duration::from_secs(3))
        .await
        .unwrap();
    first.begin().unwrap();
    first
        .send("data", Some(b"k"), Some(b"zombie"))
        .await
        .unwrap();
    let t0 = std::time::Instant::now();
    let _second = TxnProducer::new(&cfg, "same-id", Duration::from_secs(30))
        .await
        .unwrap();
    eprintln!("second init_transactions took {:?}", t0.elapsed());
    // Kafka answers the zombie with PRODUCER_FENCED; tansu lets its EndTxn time out.
    // Either way the commit must fail.
    let err = first.commit().await.unwrap_err();
    assert!(matches!(err, SinkError::Txn(_)), "{err}");
    let rc = raw::read_committed(&cfg.bootstrap_servers, &cfg.security, "data", 0)
        .await
        .unwrap();
    assert!(
        rc.committed.is_empty(),
        "the zombie's record became visible"
    );
}
