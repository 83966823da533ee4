//! The REST API beyond registration: compatibility, config, mode, deletes,
//! schema listings (directory backend).

mod common;

use common::{assert_error, Server};
use serde_json::{json, Value};

const A: &str = r#"{"type":"record","name":"A","fields":[{"name":"x","type":"int"}]}"#;
/// A plus an optional field: BACKWARD and FORWARD compatible with A.
const A2: &str = r#"{"type":"record","name":"A","fields":[{"name":"x","type":"int"},{"name":"y","type":["null","string"],"default":null}]}"#;
/// A plus a field without default: not BACKWARD compatible with A.
const A_BAD: &str = r#"{"type":"record","name":"A","fields":[{"name":"x","type":"int"},{"name":"z","type":"long"}]}"#;
/// A2 without x: BACKWARD compatible with A2 but not with A (FORWARD-wise).
const A3: &str = r#"{"type":"record","name":"A","fields":[{"name":"y","type":["null","string"],"default":null}]}"#;

fn schema(s: &str) -> Value {
    json!({ "schema": s })
}

#[tokio::test]
async fn registration_enforces_the_compatibility_level() {
    let srv = Server::start().await;
    assert_eq!(
        srv.post("/subjects/s/versions", &schema(A)).await.1,
        json!({"id": 1})
    );
    let r = srv.post("/subjects/s/versions", &schema(A_BAD)).await;
    assert_error(&r, 409, 40901);
    let msg = r.1["message"].as_str().unwrap();
    assert!(
        msg.starts_with("Schema being registered is incompatible with an earlier schema for subject \"s\", details: [{errorType:'READER_FIELD_MISSING_DEFAULT_VALUE'"),
        "{msg}"
    );
    assert!(msg.contains("compatibility: 'BACKWARD'"), "{msg}");
    assert_eq!(srv.get("/subjects/s/versions").await.1, json!([1]));
    assert_eq!(
        srv.post("/subjects/s/versions", &schema(A2)).await.1,
        json!({"id": 2})
    );

    // BACKWARD (non-transitive) checks the latest only: A3 reads A2.
    assert_eq!(
        srv.post("/subjects/s/versions", &schema(A3)).await.1,
        json!({"id": 3})
    );
    // FULL_TRANSITIVE refuses what FULL accepts: F3 is fully compatible with
    // F2 (whose field has a default) but F1 cannot read it.
    const F1: &str = r#"{"type":"record","name":"F","fields":[{"name":"a","type":"int"}]}"#;
    const F2: &str =
        r#"{"type":"record","name":"F","fields":[{"name":"a","type":"int","default":0}]}"#;
    const F3: &str = r#"{"type":"record","name":"F","fields":[{"name":"b","type":["null","string"],"default":null}]}"#;
    srv.put("/config/u", &json!({"compatibility": "FULL_TRANSITIVE"}))
        .await;
    srv.put("/config/v", &json!({"compatibility": "full"}))
        .await;
    for s in ["u", "v"] {
        let path = format!("/subjects/{s}/versions");
        assert!(srv.post(&path, &schema(F1)).await.0.is_success());
        assert!(srv.post(&path, &schema(F2)).await.0.is_success());
    }
    assert_error(
        &srv.post("/subjects/u/versions", &schema(F3)).await,
        409,
        40901,
    );
    assert!(srv
        .post("/subjects/v/versions", &schema(F3))
        .await
        .0
        .is_success());
    srv.stop().await;
}

#[tokio::test]
async fn compatibility_endpoints() {
    let srv = Server::start().await;
    // Nothing to compare with: compatible.
    for path in [
        "/compatibility/subjects/s/versions",
        "/compatibility/subjects/s/versions/latest",
        "/compatibility/subjects/s/versions/-1",
    ] {
        assert_eq!(
            srv.post(path, &schema(A)).await.1,
            json!({"is_compatible": true}),
            "{path}"
        );
    }
    assert_error(
        &srv.post("/compatibility/subjects/s/versions/1", &schema(A))
            .await,
        404,
        40401,
    );
    srv.post("/subjects/s/versions", &schema(A)).await;
    assert_error(
        &srv.post("/compatibility/subjects/s/versions/2", &schema(A))
            .await,
        404,
        40402,
    );
    assert_error(
        &srv.post("/compatibility/subjects/s/versions/zero", &schema(A))
            .await,
        422,
        42202,
    );
    assert_error(
        &srv.post("/compatibility/subjects/s/versions/1", &schema("{bad"))
            .await,
        422,
        42201,
    );

    let r = srv
        .post("/compatibility/subjects/s/versions/1", &schema(A2))
        .await;
    assert_eq!(r.1, json!({"is_compatible": true}));
    let r = srv
        .post(
            "/compatibility/subjects/s/versions/latest?verbose=true",
            &schema(A2),
        )
        .await;
    assert_eq!(r.1, json!({"is_compatible": true, "messages": []}));
    let r = srv
        .post("/compatibility/subjects/s/versions/latest", &schema(A_BAD))
        .await;
    assert_eq!(r.1, json!({"is_compatible": false}));
    let r = srv
        .post(
            "/compatibility/subjects/s/versions?verbose=True",
            &schema(A_BAD),
        )
        .await;
    assert_eq!(r.1["is_compatible"], json!(false));
    let messages: Vec<&str> = r.1["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    assert!(
        messages[0].starts_with("{errorType:'READER_FIELD_MISSING_DEFAULT_VALUE'"),
        "{messages:?}"
    );
    assert!(messages.contains(&"{oldSchemaVersion: 1}"), "{messages:?}");
    assert_eq!(
        messages.last().unwrap(),
        &"{validateFields: 'false', compatibility: 'BACKWARD'}"
    );
    // Level NONE: anything goes.
    srv.put("/config/s", &json!({"compatibility": "NONE"}))
        .await;
    let r = srv
        .post("/compatibility/subjects/s/versions", &schema(A_BAD))
        .await;
    assert_eq!(r.1, json!({"is_compatible": true}));
    srv.stop().await;
}

#[tokio::test]
async fn config_endpoints() {
    let srv = Server::start().await;
    assert_eq!(
        srv.get("/config").await.1,
        json!({"compatibilityLevel": "BACKWARD"})
    );
    assert_eq!(
        srv.put("/config", &json!({"compatibility": "full"}))
            .await
            .1,
        json!({"compatibility": "FULL"})
    );
    assert_eq!(
        srv.get("/config").await.1,
        json!({"compatibilityLevel": "FULL"})
    );
    assert_error(&srv.get("/config/s").await, 404, 40408);
    assert_eq!(
        srv.get("/config/s?defaultToGlobal=true").await.1,
        json!({"compatibilityLevel": "FULL"})
    );
    assert_eq!(
        srv.put(
            "/config/s",
            &json!({"compatibilityLevel": "FORWARD_TRANSITIVE"})
        )
        .await
        .1,
        json!({"compatibility": "FORWARD_TRANSITIVE"})
    );
    assert_eq!(
        srv.get("/config/s").await.1,
        json!({"compatibilityLevel": "FORWARD_TRANSITIVE"})
    );
    assert_eq!(
        srv.delete("/config/s").await.1,
        json!({"compatibilityLevel": "FORWARD_TRANSITIVE"})
    );
    assert_error(&srv.delete("/config/s").await, 404, 40401);
    assert_eq!(
        srv.delete("/config").await.1,
        json!({"compatibilityLevel": "FULL"})
    );
    assert_eq!(
        srv.get("/config").await.1,
        json!({"compatibilityLevel": "BACKWARD"})
    );

    for bad in [
        json!({"compatibility": "SIDEWAYS"}),
        json!({}),
        json!({"compatibility": 3}),
        json!({"compatibility": "FULL", "defaultMetadata": {"properties": {}}}),
        json!({"compatibility": "FULL", "normalize": true}),
    ] {
        assert_error(&srv.put("/config", &bad).await, 422, 42203);
        assert_error(&srv.put("/config/s", &bad).await, 422, 42203);
    }
    let r = srv
        .send_raw(
            srv.http
                .put(srv.url("/config"))
                .header("content-type", common::V1)
                .body("{"),
        )
        .await;
    assert_error(&r, 400, 400);
    assert_error(
        &srv.put("/config/a%01b", &json!({"compatibility": "FULL"}))
            .await,
        422,
        42208,
    );
    // Oversized bodies: 42209 on every endpoint that takes a body.
    let big = format!(
        "{{\"compatibility\": \"FULL\"{}}}",
        " ".repeat(sluice_schema_registry::MAX_BODY_BYTES)
    );
    for path in ["/config", "/mode"] {
        let r = srv
            .send_raw(
                srv.http
                    .put(srv.url(path))
                    .header("content-type", common::V1)
                    .body(big.clone()),
            )
            .await;
        assert_error(&r, 413, 42209);
    }
    srv.stop().await;
}

#[tokio::test]
async fn mode_endpoints() {
    let srv = Server::start().await;
    assert_eq!(srv.get("/mode").await.1, json!({"mode": "READWRITE"}));
    srv.post("/subjects/s/versions", &schema(A)).await;
    assert_error(&srv.get("/mode/s").await, 404, 40409);
    assert_eq!(
        srv.get("/mode/s?defaultToGlobal=true").await.1,
        json!({"mode": "READWRITE"})
    );
    assert_eq!(
        srv.put("/mode/s", &json!({"mode": "readonly"})).await.1,
        json!({"mode": "READONLY"})
    );
    let r = srv.post("/subjects/s/versions", &schema(A2)).await;
    assert_error(&r, 422, 42205);
    assert!(
        r.1["message"].as_str().unwrap().contains("read-only"),
        "{r:?}"
    );
    assert_error(&srv.delete("/subjects/s").await, 422, 42205);
    assert_error(&srv.delete("/subjects/s/versions/1").await, 422, 42205);
    // Reads still work.
    assert_eq!(srv.get("/subjects/s/versions").await.1, json!([1]));
    assert_eq!(srv.delete("/mode/s").await.1, json!({"mode": "READONLY"}));
    assert_error(&srv.delete("/mode/s").await, 404, 40401);

    for bad in [json!({"mode": "WRITEONLY"}), json!({}), json!({"mode": 1})] {
        assert_error(&srv.put("/mode", &bad).await, 422, 42204);
        assert_error(&srv.put("/mode/s", &bad).await, 422, 42204);
    }

    // Global READONLY_OVERRIDE beats a subject's READWRITE.
    srv.put("/mode/s", &json!({"mode": "READWRITE"})).await;
    srv.put("/mode", &json!({"mode": "READONLY_OVERRIDE"}))
        .await;
    assert_error(
        &srv.post("/subjects/s/versions", &schema(A2)).await,
        422,
        42205,
    );
    srv.put("/mode", &json!({"mode": "READWRITE"})).await;

    // IMPORT needs force while subjects exist; then ids are explicit.
    assert_error(
        &srv.put("/mode", &json!({"mode": "IMPORT"})).await,
        422,
        42205,
    );
    assert_eq!(
        srv.put("/mode?force=true", &json!({"mode": "IMPORT"}))
            .await
            .1,
        json!({"mode": "IMPORT"})
    );
    srv.delete("/mode/s").await;
    assert_error(
        &srv.post("/subjects/t/versions", &schema(A)).await,
        422,
        42205,
    );
    let r = srv
        .post(
            "/subjects/t/versions",
            &json!({"schema": A2, "id": 42, "version": 7}),
        )
        .await;
    assert_eq!(r.1, json!({"id": 42}));
    assert_eq!(
        srv.get("/subjects/t/versions/7").await.1,
        json!({"subject": "t", "version": 7, "id": 42, "schema": A2})
    );
    // Same schema, other id: 42207; other schema, taken id: 42205.
    assert_error(
        &srv.post("/subjects/t/versions", &json!({"schema": A2, "id": 43}))
            .await,
        422,
        42207,
    );
    assert_error(
        &srv.post("/subjects/t/versions", &json!({"schema": A3, "id": 1}))
            .await,
        422,
        42205,
    );
    srv.put("/mode", &json!({"mode": "READWRITE"})).await;
    // Outside IMPORT, explicit ids are refused; new ids go above imported ones.
    assert_error(
        &srv.post("/subjects/t/versions", &json!({"schema": A3, "id": 50}))
            .await,
        422,
        42205,
    );
    assert_eq!(
        srv.post("/subjects/u/versions", &schema("\"int\"")).await.1,
        json!({"id": 43})
    );
    srv.stop().await;
}

#[tokio::test]
async fn soft_and_permanent_deletes() {
    let srv = Server::start().await;
    srv.post("/subjects/s/versions", &schema(A)).await;
    srv.post("/subjects/s/versions", &schema(A2)).await;
    srv.post("/subjects/t/versions", &schema(A)).await;

    assert_error(
        &srv.delete("/subjects/s/versions/1?permanent=true").await,
        404,
        40407,
    );
    assert_eq!(srv.delete("/subjects/s/versions/1").await.1, json!(1));
    assert_error(&srv.delete("/subjects/s/versions/1").await, 404, 40406);
    assert_error(&srv.delete("/subjects/s/versions/9").await, 404, 40402);
    assert_error(&srv.delete("/subjects/nope/versions/1").await, 404, 40401);
    assert_error(&srv.delete("/subjects/s/versions/x").await, 422, 42202);

    assert_eq!(srv.get("/subjects/s/versions").await.1, json!([2]));
    for q in ["deleted=true", "deleted=TRUE"] {
        assert_eq!(
            srv.get(&format!("/subjects/s/versions?{q}")).await.1,
            json!([1, 2])
        );
    }
    for q in [
        "deletedOnly=true",
        "deleted_only=true",
        "deleted=true&deleted_only=true",
    ] {
        assert_eq!(
            srv.get(&format!("/subjects/s/versions?{q}")).await.1,
            json!([1]),
            "{q}"
        );
    }
    assert_error(&srv.get("/subjects/s/versions/1").await, 404, 40402);
    assert_eq!(
        srv.get("/subjects/s/versions/1?deleted=true").await.1,
        json!({"subject": "s", "version": 1, "id": 1, "schema": A})
    );
    // Lookup sees the soft-deleted version only when asked; id 1 stays live via t.
    assert_error(&srv.post("/subjects/s", &schema(A)).await, 404, 40403);
    assert_eq!(
        srv.post("/subjects/s?deleted=true", &schema(A)).await.1["version"],
        json!(1)
    );
    assert_eq!(
        srv.get("/schemas/ids/1/versions").await.1,
        json!([{"subject": "t", "version": 1}])
    );
    assert_eq!(
        srv.get("/schemas/ids/1/versions?deleted=true").await.1,
        json!([{"subject": "s", "version": 1}, {"subject": "t", "version": 1}])
    );

    // Subject level.
    assert_error(&srv.delete("/subjects/s?permanent=true").await, 404, 40405);
    assert_eq!(srv.delete("/subjects/s").await.1, json!([2]));
    assert_error(&srv.delete("/subjects/s").await, 404, 40404);
    assert_error(&srv.delete("/subjects/nope").await, 404, 40401);
    assert_eq!(srv.get("/subjects").await.1, json!(["t"]));
    assert_eq!(srv.get("/subjects?deleted=true").await.1, json!(["s", "t"]));
    assert_eq!(srv.get("/subjects?deletedOnly=true").await.1, json!(["s"]));
    assert_eq!(srv.get("/subjects?deleted_only=true").await.1, json!(["s"]));
    assert_error(&srv.get("/subjects/s/versions").await, 404, 40401);
    assert_error(&srv.get("/subjects/s/versions/latest").await, 404, 40401);
    // A soft-deleted version's schema still resolves by id.
    assert_eq!(srv.get("/schemas/ids/2").await.1, json!({"schema": A2}));

    // Registering again: a new version (3), the same id.
    assert_eq!(
        srv.post("/subjects/s/versions", &schema(A2)).await.1,
        json!({"id": 2})
    );
    assert_eq!(srv.get("/subjects/s/versions").await.1, json!([3]));
    assert_eq!(srv.delete("/subjects/s/versions/latest").await.1, json!(3));
    assert_eq!(
        srv.delete("/subjects/s/versions/3?permanent=true").await.1,
        json!(3)
    );
    assert_eq!(
        srv.delete("/subjects/s?permanent=true").await.1,
        json!([1, 2])
    );
    assert_eq!(srv.get("/subjects?deleted=true").await.1, json!(["t"]));
    assert_error(&srv.get("/schemas/ids/2").await, 404, 40403);
    assert_eq!(
        srv.get("/schemas/ids/1?fetchMaxId=true").await.1,
        json!({"schema": A, "maxId": 2})
    );
    // The id of a permanently deleted schema is not reused.
    assert_eq!(
        srv.post("/subjects/s/versions", &schema(A3)).await.1,
        json!({"id": 3})
    );
    assert_eq!(srv.get("/subjects/s/versions").await.1, json!([1]));
    srv.stop().await;
}

#[tokio::test]
async fn listings_references_contexts_and_metadata() {
    let srv = Server::start().await;
    srv.post("/subjects/s/versions", &schema(A)).await;
    srv.post("/subjects/s/versions", &schema(A2)).await;
    srv.post("/subjects/t/versions", &schema("\"int\"")).await;
    srv.delete("/subjects/s/versions/1").await;

    let r = srv.get("/schemas").await;
    assert_eq!(
        r.1,
        json!([
            {"subject": "s", "version": 2, "id": 2, "schema": A2},
            {"subject": "t", "version": 1, "id": 3, "schema": "\"int\""}
        ])
    );
    let r = srv.get("/schemas?deleted=true&subjectPrefix=s").await;
    assert_eq!(r.1.as_array().unwrap().len(), 2);
    let r = srv.get("/schemas?deleted=true&latestOnly=true").await;
    assert_eq!(r.1.as_array().unwrap().len(), 2);
    assert_eq!(
        srv.get("/schemas?offset=1&limit=1").await.1[0]["subject"],
        json!("t")
    );
    // The Python client sends the prefix as `subject`.
    assert_eq!(srv.get("/subjects?subject=t").await.1, json!(["t"]));

    assert_eq!(
        srv.get("/subjects/s/versions/2/referencedby").await.1,
        json!([])
    );
    assert_error(
        &srv.get("/subjects/s/versions/9/referencedby").await,
        404,
        40402,
    );
    assert_error(
        &srv.get("/subjects/x/versions/1/referencedby").await,
        404,
        40401,
    );
    assert_eq!(srv.get("/contexts").await.1, json!(["."]));
    assert_eq!(srv.get("/subjects/s/metadata").await.1["version"], json!(2));
    assert_error(
        &srv.get("/subjects/s/metadata?key=owner&value=me").await,
        404,
        40403,
    );
    assert_error(&srv.get("/subjects/x/metadata").await, 404, 40401);
    srv.stop().await;
}

#[tokio::test]
async fn hostile_requests_get_json_errors() {
    let srv = Server::start().await;
    srv.post("/subjects/s/versions", &schema(A)).await;
    let bodies = [
        "",
        "null",
        "[]",
        "\"x\"",
        "{\"schema\": null}",
        "{\"schema\": \"\\\"int\\\"\", \"id\": 99999999999}",
        "{\"schema\": \"\\\"int\\\"\", \"version\": 99999999999}",
        "{\"schema\": \"\\\"int\\\"\", \"id\": \"x\"}",
        "{\"mode\": [], \"compatibility\": {}}",
        "{\"schema\": \"[\\\"int\\\", \\\"int\\\"]\"}",
        "{\"schema\": \"{\\\"type\\\": \\\"array\\\"}\"}",
        "\u{0}",
    ];
    let paths = [
        ("POST", "/subjects/s/versions"),
        ("POST", "/subjects/s"),
        ("POST", "/compatibility/subjects/s/versions/latest"),
        ("POST", "/compatibility/subjects/s/versions"),
        ("PUT", "/config"),
        ("PUT", "/config/s"),
        ("PUT", "/mode"),
        ("PUT", "/mode/s"),
    ];
    for (method, path) in paths {
        for body in bodies {
            let req = match method {
                "POST" => srv.http.post(srv.url(path)),
                _ => srv.http.put(srv.url(path)),
            };
            let r = srv
                .send_raw(req.header("content-type", common::V1).body(body))
                .await;
            // Errors are 4xx JSON; a valid schema may get a compatibility answer.
            assert!(
                !r.0.is_server_error()
                    && (r.1["error_code"].is_u64() || r.1["is_compatible"].is_boolean()),
                "{method} {path} {body:?}: {r:?}"
            );
        }
    }
    // Nothing of that changed anything.
    assert_eq!(srv.get("/subjects").await.1, json!(["s"]));
    assert_eq!(
        srv.get("/config").await.1,
        json!({"compatibilityLevel": "BACKWARD"})
    );
    assert_eq!(srv.get("/mode").await.1, json!({"mode": "READWRITE"}));
    srv.stop().await;
}
