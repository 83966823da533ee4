//! Faults the test broker cannot produce, injected with librdkafka's mock cluster (which
//! ignores isolation levels, so only the producer's side is judged here):
//! - EndTxn errors Kafka documents as retriable are ridden out and the commit succeeds;
//! - a fenced producer epoch surfaces as "fenced", a permanent error (another instance
//!   took over; this one stops);
//! - an EndTxn that is not answered in time is a transient failure, and a new producer
//!   with the same transactional.id (what the pipeline does next) recovers and commits;
//! - an error code librdkafka does not know (a broker newer than it) is an abortable,
//!   transient failure, not a crash.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::mocking::{MockCluster, MockCoordinator};
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use sluice_core::{Classify, ErrorClass};
use sluice_kafka::{KafkaConfig, SinkError, TxnProducer};

const TXN_ID: &str = "sluice-mock";

fn config(bootstrap: String) -> KafkaConfig {
    KafkaConfig {
        bootstrap_servers: bootstrap,
        properties: BTreeMap::new(),
        topic_partitions: 1,
        topic_replication_factor: 1,
        offsets_topic: "sluice.offsets".into(),
        transaction_timeout: Duration::from_secs(30),
        security: Default::default(),
    }
}

fn cluster() -> MockCluster<'static, rdkafka::producer::DefaultProducerContext> {
    let mock = MockCluster::new(3).unwrap();
    mock.create_topic("data", 1, 3).unwrap();
    mock.coordinator(MockCoordinator::Transaction(TXN_ID.into()), 1)
        .unwrap();
    mock
}

async fn one_transaction(p: &TxnProducer) -> Result<(), SinkError> {
    p.begin()?;
    p.send("data", Some(b"k"), Some(b"v")).await?;
    p.commit().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retriable_end_txn_errors_are_ridden_out() {
    let mock = cluster();
    let cfg = config(mock.bootstrap_servers());
    let p = TxnProducer::new(&cfg, TXN_ID, Duration::from_secs(10))
        .await
        .unwrap();
    use RDKafkaRespErr::*;
    for err in [
        RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS,
        RD_KAFKA_RESP_ERR_NOT_COORDINATOR,
        RD_KAFKA_RESP_ERR_CONCURRENT_TRANSACTIONS,
        RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE,
    ] {
        mock.request_errors(RDKafkaApiKey::EndTxn, &[err, err]);
        one_transaction(&p)
            .await
            .unwrap_or_else(|e| panic!("EndTxn {err:?} twice: {e}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fenced_epoch_stops_the_instance() {
    let mock = cluster();
    let cfg = config(mock.bootstrap_servers());
    let p = TxnProducer::new(&cfg, TXN_ID, Duration::from_secs(10))
        .await
        .unwrap();
    mock.request_errors(
        RDKafkaApiKey::EndTxn,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_PRODUCER_FENCED],
    );
    let e = one_transaction(&p).await.expect_err("fenced commit");
    match &e {
        SinkError::Txn(f) => assert!(f.fenced(), "{f:?}"),
        other => panic!("not a transaction failure: {other:?}"),
    }
    assert_eq!(e.class(), ErrorClass::Permanent, "{e}");
    assert!(e.to_string().contains("another Sluice instance"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unanswered_end_txn_is_transient_and_a_new_producer_recovers() {
    let mock = cluster();
    let cfg = config(mock.bootstrap_servers());
    // Each commit attempt waits 1 s; the commit retries a few times.
    let p = TxnProducer::new(&cfg, TXN_ID, Duration::from_secs(1))
        .await
        .unwrap();
    p.begin().unwrap();
    p.send("data", Some(b"k"), Some(b"v")).await.unwrap();
    p.flush().await.unwrap();
    // The coordinator answers only after every attempt's timeout.
    mock.broker_round_trip_time(1, Duration::from_secs(12))
        .unwrap();
    let e = p
        .commit()
        .await
        .expect_err("commit without an answer in time");
    assert_eq!(e.class(), ErrorClass::Transient, "{e}");
    drop(p);
    mock.broker_round_trip_time(1, Duration::ZERO).unwrap();
    // What the pipeline does: a new producer (fencing the old one and completing its
    // transaction), then on from the committed position.
    let p = TxnProducer::new(&cfg, TXN_ID, Duration::from_secs(10))
        .await
        .unwrap();
    one_transaction(&p).await.unwrap();
}

/// Error codes as plain integers: `RDKafkaRespErr` cannot hold a code librdkafka does not
/// know, which is the point of the test.
mod raw {
    use rdkafka::bindings::{rd_kafka_mock_cluster_t, rd_kafka_t};
    extern "C" {
        pub fn rd_kafka_handle_mock_cluster(rk: *const rd_kafka_t) -> *mut rd_kafka_mock_cluster_t;
        pub fn rd_kafka_mock_cluster_bootstraps(
            mc: *const rd_kafka_mock_cluster_t,
        ) -> *const std::ffi::c_char;
        pub fn rd_kafka_mock_push_request_errors_array(
            mc: *mut rd_kafka_mock_cluster_t,
            api_key: i16,
            cnt: usize,
            errors: *const i32,
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_code_librdkafka_does_not_know_is_a_failure_not_a_crash() {
    use rdkafka::producer::{BaseProducer, Producer as _};
    // A mock cluster owned by this client, reached through its raw handle.
    let owner: BaseProducer = rdkafka::ClientConfig::new()
        .set("test.mock.num.brokers", "1")
        .create()
        .unwrap();
    let mc = unsafe { raw::rd_kafka_handle_mock_cluster(owner.client().native_ptr()) };
    assert!(!mc.is_null());
    let bootstrap = unsafe { std::ffi::CStr::from_ptr(raw::rd_kafka_mock_cluster_bootstraps(mc)) }
        .to_string_lossy()
        .into_owned();
    let cfg = config(bootstrap);
    let p = TxnProducer::new(&cfg, TXN_ID, Duration::from_secs(10))
        .await
        .unwrap();
    // 105 (TRANSACTIONAL_ID_NOT_FOUND, what the test broker answers after a restart) is
    // unknown to librdkafka 2.12; read through rust-rdkafka's code() it is an illegal
    // instruction.
    let unknown = [105i32];
    unsafe { raw::rd_kafka_mock_push_request_errors_array(mc, 24, 1, unknown.as_ptr()) };
    let e = one_transaction(&p)
        .await
        .expect_err("AddPartitionsToTxn refused");
    match &e {
        SinkError::Txn(f) => {
            assert!(f.abortable && !f.fenced(), "{f:?}");
            assert_eq!(f.code, rdkafka::error::RDKafkaErrorCode::Unknown, "{f:?}");
            assert!(f.message.contains("105"), "{f:?}");
        }
        other => panic!("not a transaction failure: {other:?}"),
    }
    assert_eq!(e.class(), ErrorClass::Transient, "{e}");
    // Aborted, the producer goes on.
    p.abort().await.unwrap();
    one_transaction(&p).await.unwrap();
}
