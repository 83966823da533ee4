//! The Kafka backend against a real broker: tansu 0.6 (in memory), started
//! per test on a free port. Skipped, with a note, when tansu is missing.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{assert_error, Server, Tansu};
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

use serde_json::json;
use sluice_schema_registry::{Deleted, KafkaStorageConfig, Registry, RegistryError, VersionSpec};

const A: &str = r#"{"type":"record","name":"A","fields":[{"name":"x","type":"int"}]}"#;
const A2: &str = r#"{"type":"record","name":"A","fields":[{"name":"x","type":"int"},{"name":"y","type":["null","string"],"default":null}]}"#;
const B: &str = r#"{"type":"record","name":"B","fields":[{"name":"s","type":"string"}]}"#;

fn config(tansu: &Tansu, topic: &str) -> KafkaStorageConfig {
    let mut c = KafkaStorageConfig::new(&tansu.bootstrap);
    c.topic = topic.to_string();
    c.transactional_id = format!("{topic}-writer");
    c.startup_timeout = Duration::from_secs(30);
    c.write_timeout = Duration::from_secs(15);
    c
}

async fn open(tansu: &Tansu, topic: &str) -> Arc<Registry> {
    Arc::new(Registry::open_kafka(config(tansu, topic)).await.unwrap())
}

/// Wait (up to 10 s) until `f` holds.
async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_survives_a_restart() {
    let Some(tansu) = Tansu::start() else { return };
    let srv = Server::serve(open(&tansu, "_schemas_restart").await).await;
    assert_eq!(
        srv.post("/subjects/s/versions", &json!({"schema": A}))
            .await
            .1,
        json!({"id": 1})
    );
    assert_eq!(
        srv.post("/subjects/s/versions", &json!({"schema": A2}))
            .await
            .1,
        json!({"id": 2})
    );
    assert_eq!(
        srv.post("/subjects/t/versions", &json!({"schema": B}))
            .await
            .1,
        json!({"id": 3})
    );
    srv.put("/config", &json!({"compatibility": "FULL"})).await;
    srv.put("/config/s", &json!({"compatibility": "NONE"}))
        .await;
    srv.put("/mode/t", &json!({"mode": "READONLY"})).await;
    // Soft-delete s v1; permanently delete the subject holding the highest id.
    assert_eq!(srv.delete("/subjects/s/versions/1").await.1, json!(1));
    srv.put("/mode/t", &json!({"mode": "READWRITE"})).await;
    assert_eq!(srv.delete("/subjects/t").await.1, json!([1]));
    assert_eq!(srv.delete("/subjects/t?permanent=true").await.1, json!([1]));
    let storage = srv.reg.storage();
    assert!(storage.contains("_schemas_restart"), "{storage}");
    srv.stop().await;

    let srv = Server::serve(open(&tansu, "_schemas_restart").await).await;
    assert_eq!(srv.reg.skipped_records(), 0);
    assert_eq!(srv.get("/subjects").await.1, json!(["s"]));
    assert_eq!(srv.get("/subjects/s/versions").await.1, json!([2]));
    assert_eq!(
        srv.get("/subjects/s/versions?deleted=true").await.1,
        json!([1, 2])
    );
    assert_eq!(srv.get("/schemas/ids/1").await.1, json!({"schema": A}));
    assert_error(&srv.get("/schemas/ids/3").await, 404, 40403);
    assert_eq!(
        srv.get("/config").await.1,
        json!({"compatibilityLevel": "FULL"})
    );
    assert_eq!(
        srv.get("/config/s").await.1,
        json!({"compatibilityLevel": "NONE"})
    );
    assert_error(&srv.get("/mode/t").await, 404, 40409);
    // Id 3 is gone with its subject but never handed out again.
    assert_eq!(
        srv.post("/subjects/u/versions", &json!({"schema": "\"int\""}))
            .await
            .1,
        json!({"id": 4})
    );
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_instance_fences_the_first_and_ids_stay_unique() {
    let Some(tansu) = Tansu::start() else { return };
    let topic = "_schemas_fence";
    let first = Server::serve(open(&tansu, topic).await).await;
    assert_eq!(
        first
            .post("/subjects/s/versions", &json!({"schema": A}))
            .await
            .1,
        json!({"id": 1})
    );

    // The second instance becomes the writer and sees what the first wrote.
    let second = Server::serve(open(&tansu, topic).await).await;
    assert_eq!(second.get("/subjects/s/versions").await.1, json!([1]));

    // The first one refuses writes, clearly, and keeps serving reads.
    let r = first
        .post("/subjects/t/versions", &json!({"schema": B}))
        .await;
    assert_error(&r, 500, 50001);
    let msg = r.1["message"].as_str().unwrap();
    assert!(msg.contains("fenced"), "{msg}");
    assert!(msg.contains("_schemas_fence-writer"), "{msg}");
    // Config and mode writes too.
    assert_error(
        &first
            .put("/config", &json!({"compatibility": "NONE"}))
            .await,
        500,
        50001,
    );

    assert_eq!(
        second
            .post("/subjects/t/versions", &json!({"schema": B}))
            .await
            .1,
        json!({"id": 2})
    );
    assert_eq!(
        second
            .post("/subjects/s/versions", &json!({"schema": A2}))
            .await
            .1,
        json!({"id": 3})
    );
    // The fenced instance's reader follows the new writer.
    let reg = first.reg.clone();
    eventually("the fenced instance to see id 3", || {
        reg.schema(3).is_some()
    })
    .await;
    assert_eq!(first.get("/schemas/ids/2").await.1, json!({"schema": B}));
    assert_eq!(first.get("/subjects/s/versions").await.1, json!([1, 2]));
    first.stop().await;

    // A third instance fences the second; ids continue.
    let third = Server::serve(open(&tansu, topic).await).await;
    assert_error(
        &second
            .post("/subjects/u/versions", &json!({"schema": "\"long\""}))
            .await,
        500,
        50001,
    );
    assert_eq!(
        third
            .post("/subjects/u/versions", &json!({"schema": "\"long\""}))
            .await
            .1,
        json!({"id": 4})
    );
    let mut ids: Vec<u32> = (1..=4)
        .map(|id| third.reg.schema(id).map(|s| s.text.to_string()))
        .map(|t| t.map(|_| 1).unwrap_or(0))
        .collect();
    ids.dedup();
    assert_eq!(ids, vec![1], "ids 1..=4 all exist");
    second.stop().await;
    third.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lazy_standby_fences_the_writer_only_when_it_writes() {
    let Some(tansu) = Tansu::start() else { return };
    let topic = "_schemas_lazy";
    let active = Server::serve(open(&tansu, topic).await).await;
    let mut lazy = config(&tansu, topic);
    lazy.lazy_writer = true;
    let standby = Server::serve(Arc::new(Registry::open_kafka(lazy).await.unwrap())).await;

    // The standby only reads: the active instance keeps writing, and the standby sees it.
    for (subject, schema, id) in [("s", A, 1), ("t", B, 2)] {
        assert_eq!(
            active
                .post(
                    &format!("/subjects/{subject}/versions"),
                    &json!({"schema": schema})
                )
                .await
                .1,
            json!({ "id": id })
        );
    }
    let reg = standby.reg.clone();
    eventually("the standby to see id 2", || reg.schema(2).is_some()).await;

    // Its first write makes it the writer: it continues the ids and fences the other.
    assert_eq!(
        standby
            .post("/subjects/s/versions", &json!({"schema": A2}))
            .await
            .1,
        json!({"id": 3})
    );
    let r = active
        .post("/subjects/u/versions", &json!({"schema": "\"long\""}))
        .await;
    assert_error(&r, 500, 50001);
    assert!(r.1["message"].as_str().unwrap().contains("fenced"), "{r:?}");
    assert_eq!(standby.get("/subjects/s/versions").await.1, json!([1, 2]));
    active.stop().await;
    standby.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_registrations_of_one_schema_get_one_id() {
    let Some(tansu) = Tansu::start() else { return };
    let srv = Server::serve(open(&tansu, "_schemas_concurrent").await).await;
    let base = srv.base.clone();
    let http = reqwest::Client::new();
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let (base, http) = (base.clone(), http.clone());
            tokio::spawn(async move {
                let subject = if i % 2 == 0 { "s" } else { "t" };
                let resp = http
                    .post(format!("{base}/subjects/{subject}/versions"))
                    .header("content-type", common::V1)
                    .body(json!({"schema": A}).to_string())
                    .send()
                    .await
                    .unwrap();
                assert!(resp.status().is_success());
                resp.json::<serde_json::Value>().await.unwrap()["id"]
                    .as_u64()
                    .unwrap()
            })
        })
        .collect();
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap());
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids, vec![1]);
    assert_eq!(srv.get("/subjects/s/versions").await.1, json!([1]));
    assert_eq!(srv.get("/subjects/t/versions").await.1, json!([1]));
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_records_and_aborted_transactions_do_not_break_the_registry() {
    let Some(tansu) = Tansu::start() else { return };
    let topic = "_schemas_foreign";
    // The registry creates the topic.
    drop(open(&tansu, topic).await);

    let bootstrap = tansu.bootstrap.clone();
    tokio::task::spawn_blocking(move || {
        let p: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("transactional.id", "foreign-writer")
            .create()
            .unwrap();
        p.init_transactions(Duration::from_secs(10)).unwrap();
        // Garbage, committed.
        p.begin_transaction().unwrap();
        p.send(
            BaseRecord::<[u8], [u8]>::to(topic)
                .partition(0)
                .key(b"not json")
                .payload(b"x"),
        )
        .map_err(|(e, _)| e)
        .unwrap();
        p.commit_transaction(Duration::from_secs(10)).unwrap();
        // A record claiming id 1 for schema B, in an aborted transaction:
        // Kafka hides it from read_committed readers, tansu does not.
        p.begin_transaction().unwrap();
        let key = br#"{"keytype":"SCHEMA","subject":"ghost","version":1,"magic":1}"#;
        let value =
            json!({"subject":"ghost","version":1,"id":1,"schema":B,"deleted":false}).to_string();
        p.send(
            BaseRecord::<[u8], [u8]>::to(topic)
                .partition(0)
                .key(&key[..])
                .payload(value.as_bytes()),
        )
        .map_err(|(e, _)| e)
        .unwrap();
        p.flush(Duration::from_secs(10)).unwrap();
        p.abort_transaction(Duration::from_secs(10)).unwrap();
    })
    .await
    .unwrap();

    let reg = open(&tansu, topic).await;
    assert!(
        reg.skipped_records() >= 1,
        "the garbage record is skipped and counted"
    );
    let aborted_visible = reg.schema(1).is_some();
    eprintln!("tansu shows aborted records to read_committed readers: {aborted_visible}");
    let srv = Server::serve(reg.clone()).await;
    let id = srv
        .post("/subjects/s/versions", &json!({"schema": A}))
        .await
        .1["id"]
        .as_u64()
        .unwrap() as u32;
    // Whatever the broker showed, the id is A's alone.
    assert_eq!(&*reg.schema(id).unwrap().text, A);
    if aborted_visible {
        assert_eq!(id, 2);
        assert_eq!(&*reg.schema(1).unwrap().text, B);
    } else {
        assert_eq!(id, 1);
    }
    // Another instance replaying the topic reaches the same state.
    srv.stop().await;
    drop(reg);
    let again = open(&tansu, topic).await;
    assert_eq!(&*again.schema(id).unwrap().text, A);
    assert!(again.schema(1).is_some());
    assert_eq!(
        again
            .subjects("", Deleted::Exclude)
            .contains(&"ghost".to_string()),
        aborted_visible
    );
    assert_eq!(
        again
            .version("s", VersionSpec::Latest, false)
            .unwrap()
            .schema
            .id,
        id
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_broker_fails_open_with_a_clear_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut c = KafkaStorageConfig::new(format!("127.0.0.1:{port}"));
    c.startup_timeout = Duration::from_secs(2);
    let err = Registry::open_kafka(c).await.err().expect("must fail");
    assert!(matches!(err, RegistryError::Kafka { .. }), "{err}");
    assert!(err.to_string().contains("_sluice_schemas"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_with_several_partitions_is_refused() {
    let Some(tansu) = Tansu::start() else { return };
    let bootstrap = tansu.bootstrap.clone();
    let admin: rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext> =
        ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .create()
            .unwrap();
    let topic = rdkafka::admin::NewTopic::new(
        "_schemas_wide",
        3,
        rdkafka::admin::TopicReplication::Fixed(1),
    );
    let created = admin
        .create_topics([&topic], &rdkafka::admin::AdminOptions::new())
        .await
        .unwrap();
    assert!(created[0].is_ok(), "{created:?}");
    tokio::task::spawn_blocking(move || drop(admin));
    let err = Registry::open_kafka(config(&tansu, "_schemas_wide"))
        .await
        .err()
        .expect("must fail");
    assert!(err.to_string().contains("3 partitions"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_fail_cleanly_when_the_broker_is_gone() {
    let Some(mut tansu) = Tansu::start() else {
        return;
    };
    let mut c = config(&tansu, "_schemas_gone");
    c.write_timeout = Duration::from_secs(3);
    let srv = Server::serve(Arc::new(Registry::open_kafka(c).await.unwrap())).await;
    assert_eq!(
        srv.post("/subjects/s/versions", &json!({"schema": A}))
            .await
            .1,
        json!({"id": 1})
    );
    tansu.kill();
    let started = Instant::now();
    let r = srv
        .post("/subjects/t/versions", &json!({"schema": B}))
        .await;
    assert!(r.0.is_server_error(), "{r:?}");
    let code = r.1["error_code"].as_u64().unwrap();
    assert!(code == 50001 || code == 50002, "{r:?}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    // Reads are served from memory.
    assert_eq!(srv.get("/subjects").await.1, json!(["s"]));
    assert_eq!(srv.get("/schemas/ids/1").await.1, json!({"schema": A}));
    srv.stop().await;
}
