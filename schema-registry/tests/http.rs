//! End-to-end tests: a real listener on 127.0.0.1, driven by `RegistryClient`
//! and by raw HTTP requests shaped like those of Confluent's clients.

use std::sync::Arc;

use reqwest::header::CONTENT_TYPE;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sluice_core::{Classify, ErrorClass};
use sluice_schema_registry::{serve, ClientError, Registry, RegistryClient};
use tokio::sync::oneshot;

const V1: &str = "application/vnd.schemaregistry.v1+json";
const ORDER: &str = r#"{"type":"record","name":"Value","namespace":"shop.public.orders","fields":[{"name":"id","type":"long"}],"connect.name":"shop.public.orders.Value"}"#;
const ORDER_V2: &str = r#"{"type":"record","name":"Value","namespace":"shop.public.orders","fields":[{"name":"id","type":"long"},{"name":"note","type":["null","string"],"default":null}],"connect.name":"shop.public.orders.Value"}"#;

struct Server {
    base: String,
    http: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    _dir: Option<tempfile::TempDir>,
}

impl Server {
    async fn start() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Server::start_in(dir.path()).await;
        s._dir = Some(dir);
        s
    }

    async fn start_in(path: &std::path::Path) -> Server {
        let reg = Arc::new(Registry::open(path).unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, reg, async {
            let _ = rx.await;
        }));
        Server {
            base,
            http: reqwest::Client::new(),
            stop: Some(tx),
            task: Some(task),
            _dir: None,
        }
    }

    async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn get(&self, path: &str) -> (StatusCode, String, Value) {
        let resp = self.http.get(self.url(path)).send().await.unwrap();
        read(resp).await
    }

    async fn post(
        &self,
        path: &str,
        content_type: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> (StatusCode, String, Value) {
        let mut req = self.http.post(self.url(path)).body(body);
        if let Some(ct) = content_type {
            req = req.header(CONTENT_TYPE, ct);
        }
        read(req.send().await.unwrap()).await
    }

    async fn post_json(&self, path: &str, body: &Value) -> (StatusCode, String, Value) {
        self.post(path, Some(V1), body.to_string()).await
    }
}

/// Status, Content-Type and JSON body (Null when the body is not JSON).
async fn read(resp: reqwest::Response) -> (StatusCode, String, Value) {
    let status = resp.status();
    let ct = resp
        .headers()
        .get(CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let text = resp.text().await.unwrap();
    (
        status,
        ct,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

fn assert_error(got: &(StatusCode, String, Value), status: u16, code: u64) {
    assert_eq!(got.0.as_u16(), status, "{got:?}");
    assert_eq!(got.1, V1, "{got:?}");
    assert_eq!(got.2["error_code"].as_u64(), Some(code), "{got:?}");
    assert!(
        got.2["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{got:?}"
    );
    assert_eq!(got.2.as_object().unwrap().len(), 2, "{got:?}");
}

#[tokio::test]
async fn register_and_read_back_with_client_and_raw_requests() {
    let srv = Server::start().await;
    let client = RegistryClient::new(&srv.base).unwrap();

    let id = client
        .register("shop.public.orders-value", ORDER)
        .await
        .unwrap();
    assert_eq!(id, 1);
    // Same schema, other subject: same id.
    assert_eq!(client.register("other-value", ORDER).await.unwrap(), 1);
    let id2 = client
        .register("shop.public.orders-value", ORDER_V2)
        .await
        .unwrap();
    assert_eq!(id2, 2);
    assert_eq!(client.schema_by_id(2).await.unwrap(), ORDER_V2);

    // A fresh client (empty cache) fetches from the registry.
    let fresh = RegistryClient::new(&format!("{}/", srv.base)).unwrap();
    assert_eq!(fresh.schema_by_id(1).await.unwrap(), ORDER);

    let r = srv.get("/").await;
    assert_eq!((r.0, r.1.as_str(), &r.2), (StatusCode::OK, V1, &json!({})));

    let r = srv.get("/subjects").await;
    assert_eq!(r.2, json!(["other-value", "shop.public.orders-value"]));
    assert_eq!(r.1, V1);
    let r = srv.get("/subjects?subjectPrefix=shop.&deleted=False").await;
    assert_eq!(r.2, json!(["shop.public.orders-value"]));

    let r = srv.get("/subjects/shop.public.orders-value/versions").await;
    assert_eq!(r.2, json!([1, 2]));

    let want_v1 =
        json!({"subject": "shop.public.orders-value", "version": 1, "id": 1, "schema": ORDER});
    let want_v2 =
        json!({"subject": "shop.public.orders-value", "version": 2, "id": 2, "schema": ORDER_V2});
    assert_eq!(
        srv.get("/subjects/shop.public.orders-value/versions/1")
            .await
            .2,
        want_v1
    );
    for latest in ["latest", "-1"] {
        let r = srv
            .get(&format!(
                "/subjects/shop.public.orders-value/versions/{latest}?deleted=false"
            ))
            .await;
        assert_eq!((r.0, r.2), (StatusCode::OK, want_v2.clone()), "{latest}");
    }
    // No schemaType for AVRO, as Confluent.
    let r = srv
        .get("/subjects/shop.public.orders-value/versions/2")
        .await;
    assert!(r.2.get("schemaType").is_none());

    // Raw schema endpoints return the schema JSON itself.
    let r = srv
        .get("/subjects/shop.public.orders-value/versions/latest/schema")
        .await;
    assert_eq!((r.0, r.1.as_str()), (StatusCode::OK, V1));
    assert_eq!(r.2, serde_json::from_str::<Value>(ORDER_V2).unwrap());
    let r = srv.get("/schemas/ids/1/schema").await;
    assert_eq!(r.2, serde_json::from_str::<Value>(ORDER).unwrap());

    let r = srv.get("/schemas/ids/1").await;
    assert_eq!(r.2, json!({"schema": ORDER}));
    let r = srv.get("/schemas/ids/1?fetchMaxId=true&subject=x").await;
    assert_eq!(r.2, json!({"schema": ORDER, "maxId": 2}));
    let r = srv.get("/schemas/ids/1/versions").await;
    assert_eq!(
        r.2,
        json!([{"subject": "other-value", "version": 1}, {"subject": "shop.public.orders-value", "version": 1}])
    );
    let r = srv.get("/schemas/ids/1/subjects").await;
    assert_eq!(r.2, json!(["other-value", "shop.public.orders-value"]));
    let r = srv.get("/schemas/ids/1/subjects?offset=1&limit=1").await;
    assert_eq!(r.2, json!(["shop.public.orders-value"]));
    let r = srv.get("/schemas/types").await;
    assert_eq!(r.2, json!(["AVRO"]));

    srv.stop().await;
}

#[tokio::test]
async fn register_is_idempotent_and_lookup_works() {
    let srv = Server::start().await;
    // Python's confluent-kafka sends normalize=False and an empty references list.
    let body = json!({"schema": ORDER, "schemaType": "AVRO", "references": []});
    let r = srv
        .post_json("/subjects/s-value/versions?normalize=False", &body)
        .await;
    assert_eq!(
        (r.0, r.1.as_str(), &r.2),
        (StatusCode::OK, V1, &json!({"id": 1}))
    );
    // Reformatted text of the same schema: same id, no new version.
    let pretty =
        serde_json::to_string_pretty(&serde_json::from_str::<Value>(ORDER).unwrap()).unwrap();
    let r = srv
        .post_json("/subjects/s-value/versions", &json!({"schema": pretty}))
        .await;
    assert_eq!(r.2, json!({"id": 1}));
    assert_eq!(srv.get("/subjects/s-value/versions").await.2, json!([1]));

    // Lookup, with Java-client style unset id/version and other content types.
    for ct in [
        Some(V1),
        Some("application/vnd.schemaregistry+json"),
        Some("application/json; charset=utf-8"),
        None,
    ] {
        let r = srv
            .post(
                "/subjects/s-value?normalize=false&deleted=TRUE",
                ct,
                json!({"schema": pretty, "id": -1, "version": 0}).to_string(),
            )
            .await;
        assert_eq!(r.0, StatusCode::OK, "{ct:?} {r:?}");
        assert_eq!(r.1, V1);
        assert_eq!(
            r.2,
            json!({"subject": "s-value", "version": 1, "id": 1, "schema": ORDER}),
            "{ct:?}"
        );
    }
    // Lookup misses.
    let r = srv
        .post_json("/subjects/nope", &json!({"schema": ORDER}))
        .await;
    assert_error(&r, 404, 40401);
    let r = srv
        .post_json("/subjects/s-value", &json!({"schema": ORDER_V2}))
        .await;
    assert_error(&r, 404, 40403);

    // normalize=true stores the canonical form.
    let r = srv
        .post_json(
            "/subjects/n/versions?normalize=TRUE",
            &json!({"schema": "{ \"type\" : \"int\" }"}),
        )
        .await;
    assert_eq!(r.2, json!({"id": 2}));
    assert_eq!(
        srv.get("/schemas/ids/2").await.2,
        json!({"schema": "{\"type\":\"int\"}"})
    );

    srv.stop().await;
}

#[tokio::test]
async fn subjects_with_slashes_and_special_characters() {
    let srv = Server::start().await;
    let subject = "tenant/a b%c?-value";
    let client = RegistryClient::new(&srv.base).unwrap();
    let id = client.register(subject, ORDER).await.unwrap();
    assert_eq!(srv.get("/subjects").await.2, json!([subject]));
    let r = srv
        .get("/subjects/tenant%2Fa%20b%25c%3F-value/versions/1")
        .await;
    assert_eq!(r.2["subject"], json!(subject));
    assert_eq!(r.2["id"], json!(id));
    srv.stop().await;
}

#[tokio::test]
async fn error_codes_and_shapes() {
    let srv = Server::start().await;
    srv.post_json("/subjects/s/versions", &json!({"schema": ORDER}))
        .await;

    // 40401 / 40402 / 40403
    assert_error(&srv.get("/subjects/missing/versions").await, 404, 40401);
    assert_error(&srv.get("/subjects/missing/versions/1").await, 404, 40401);
    assert_error(
        &srv.get("/subjects/missing/versions/latest").await,
        404,
        40401,
    );
    assert_error(&srv.get("/subjects/s/versions/2").await, 404, 40402);
    assert_error(&srv.get("/subjects/s/versions/2/schema").await, 404, 40402);
    for path in [
        "/schemas/ids/99",
        "/schemas/ids/99/schema",
        "/schemas/ids/99/versions",
        "/schemas/ids/99/subjects",
        "/schemas/ids/0",
        "/schemas/ids/abc",
        "/schemas/ids/99999999999",
    ] {
        assert_error(&srv.get(path).await, 404, 40403);
    }
    let r = srv.get("/schemas/ids/99").await;
    assert_eq!(r.2["message"], json!("Schema 99 not found"));

    // 42202
    for v in ["0", "-2", "abc", "1.0", "99999999999"] {
        assert_error(
            &srv.get(&format!("/subjects/s/versions/{v}")).await,
            422,
            42202,
        );
    }

    // 42201: invalid Avro, with the parser's message.
    let r = srv
        .post_json(
            "/subjects/s/versions",
            &json!({"schema": r#"{"type":"record","name":"R"}"#}),
        )
        .await;
    assert_error(&r, 422, 42201);
    let r = srv
        .post_json("/subjects/s/versions", &json!({"schema": "{not json"}))
        .await;
    assert_error(&r, 422, 42201);
    for (body, needle) in [
        (
            json!({"schema": "{}", "schemaType": "PROTOBUF"}),
            "only supports AVRO",
        ),
        (
            json!({"schema": "{}", "schemaType": "JSON"}),
            "only supports AVRO",
        ),
        (
            json!({"schema": ORDER, "references": [{"name": "x", "subject": "y", "version": 1}]}),
            "references",
        ),
        (
            json!({"schema": ORDER, "metadata": {"properties": {"a": "b"}}}),
            "metadata",
        ),
        (json!({"schemaType": "AVRO"}), "schema"),
        (json!({"schema": 5}), "schema"),
    ] {
        let r = srv.post_json("/subjects/s/versions", &body).await;
        assert_error(&r, 422, 42201);
        let msg = r.2["message"].as_str().unwrap();
        assert!(msg.contains(needle), "{body}: {msg}");
    }
    // Nothing of the above was registered.
    assert_eq!(srv.get("/subjects/s/versions").await.2, json!([1]));

    // An explicit id needs IMPORT mode.
    let r = srv
        .post_json(
            "/subjects/s/versions",
            &json!({"schema": ORDER_V2, "id": 100}),
        )
        .await;
    assert_error(&r, 422, 42205);

    // Malformed JSON body.
    let r = srv
        .post("/subjects/s/versions", Some(V1), "{\"schema\": ")
        .await;
    assert_error(&r, 400, 400);
    assert!(r.2["message"].as_str().unwrap().contains("not valid JSON"));

    // Unsupported content type.
    let r = srv
        .post("/subjects/s/versions", Some("text/plain"), "{}")
        .await;
    assert_error(&r, 415, 415);

    // Invalid boolean.
    let r = srv.get("/subjects?deleted=maybe").await;
    assert_error(&r, 400, 400);

    // Invalid subject.
    let r = srv
        .post_json("/subjects/a%01b/versions", &json!({"schema": ORDER}))
        .await;
    assert_error(&r, 422, 42208);

    // A subject that is not UTF-8 once decoded.
    let r = srv.get("/subjects/%FF/versions").await;
    assert_error(&r, 400, 400);

    // Unknown route and method.
    assert_error(&srv.get("/nope").await, 404, 404);
    assert_error(&srv.get("/subjects/s").await, 405, 405);
    let r = read(
        srv.http
            .put(srv.url("/subjects/s/versions"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(&r, 405, 405);

    srv.stop().await;
}

#[tokio::test]
async fn oversized_body_is_rejected_clearly() {
    let srv = Server::start().await;
    let padding = " ".repeat(sluice_schema_registry::MAX_BODY_BYTES);
    let body = format!("{{\"schema\": \"\\\"int\\\"\"{padding}}}");
    let r = srv.post("/subjects/s/versions", Some(V1), body).await;
    assert_error(&r, 413, 42209);
    assert!(r.2["message"].as_str().unwrap().contains("16 MiB"), "{r:?}");
    // Just under the limit is fine.
    let padding = " ".repeat(1024 * 1024);
    let body = format!("{{\"schema\": \"\\\"int\\\"\"{padding}}}");
    let r = srv.post("/subjects/s/versions", Some(V1), body).await;
    assert_eq!(r.2, json!({"id": 1}));
    srv.stop().await;
}

#[tokio::test]
async fn client_errors_carry_code_subject_and_class() {
    let srv = Server::start().await;
    let client = RegistryClient::new(&srv.base).unwrap();

    let e = client
        .register("bad-value", r#"{"type":"record","name":"R"}"#)
        .await
        .unwrap_err();
    match &e {
        ClientError::Registry {
            status, error_code, ..
        } => assert_eq!((*status, *error_code), (422, 42201)),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(e.class(), ErrorClass::Permanent);
    let msg = e.to_string();
    assert!(msg.contains("42201") && msg.contains("bad-value"), "{msg}");

    let e = client.schema_by_id(42).await.unwrap_err();
    assert!(
        matches!(
            e,
            ClientError::Registry {
                error_code: 40403,
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(e.class(), ErrorClass::Permanent);
    assert!(e.to_string().contains("Schema 42 not found"), "{e}");

    srv.stop().await;
}

#[tokio::test]
async fn client_caches_registrations() {
    let srv = Server::start().await;
    let client = RegistryClient::new(&srv.base).unwrap();
    assert_eq!(client.register("s", ORDER).await.unwrap(), 1);
    // Stop the registry: cached answers need no request.
    let base = srv.base.clone();
    srv.stop().await;
    assert_eq!(client.register("s", ORDER).await.unwrap(), 1);
    assert_eq!(client.schema_by_id(1).await.unwrap(), ORDER);
    // Not cached: a request, which fails with a transient error.
    let e = client.register("s", ORDER_V2).await.unwrap_err();
    assert_eq!(e.class(), ErrorClass::Transient, "{e}");
    assert!(e.to_string().contains(&base), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_registrations_get_one_id_and_survive_restart() {
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start_in(dir.path()).await;
    let base = srv.base.clone();
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let base = base.clone();
            tokio::spawn(async move {
                let client = RegistryClient::new(&base).unwrap();
                let schema = if i % 2 == 0 { ORDER } else { ORDER_V2 };
                client
                    .register(&format!("s{}", i % 4), schema)
                    .await
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
    assert_eq!(ids.len(), 2, "two distinct schemas, two ids: {ids:?}");
    srv.stop().await;

    // Restart on the same directory: everything is still there.
    let srv = Server::start_in(dir.path()).await;
    for s in ["s0", "s1", "s2", "s3"] {
        assert_eq!(
            srv.get(&format!("/subjects/{s}/versions")).await.2,
            json!([1])
        );
    }
    // A new subject: "bytes" under s0 would be BACKWARD-incompatible.
    let r = srv
        .post_json("/subjects/s4/versions", &json!({"schema": "\"bytes\""}))
        .await;
    assert_eq!(r.2, json!({"id": 3}));
    srv.stop().await;
}
