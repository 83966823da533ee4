//! The registry's REST API through `router()` with `tower::ServiceExt::oneshot`: a fresh
//! directory-backed Registry (in /dev/shm when it exists) per input, then the input's
//! requests in order. A 500 answer is a failure: handlers run blocking work with
//! `spawn_blocking` and turn its panics into 500 "internal error".
#![no_main]

use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use http_body_util::BodyExt;
use sluice_schema_registry::{router, Registry};
use tower::ServiceExt;

#[path = "../harness/registry_api.rs"]
mod harness;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    })
}

fn scratch() -> &'static std::path::Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let shm = std::path::Path::new("/dev/shm");
        if shm.is_dir() {
            tempfile::tempdir_in(shm).expect("tempdir")
        } else {
            tempfile::tempdir().expect("tempdir")
        }
    })
    .path()
}

/// apache-avro 0.20 panics on some invalid names (`Name::parse` unwraps); the registry
/// runs its parser under `catch_unwind` and answers 422, so those panics are not
/// failures. Every other panic still aborts (libFuzzer's hook).
fn tolerate_caught_avro_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let fuzzer_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_avro = info
                .location()
                .is_some_and(|l| l.file().contains("apache-avro"));
            if !in_avro {
                fuzzer_hook(info);
            }
        }));
    });
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    tolerate_caught_avro_panics();
    let reqs = harness::requests(data);
    if reqs.is_empty() {
        return;
    }
    let dir = tempfile::tempdir_in(scratch()).expect("tempdir");
    let reg = Arc::new(Registry::open(dir.path()).expect("open registry"));
    let app = router(reg);
    runtime().block_on(async move {
        for r in reqs {
            let mut b = Request::builder().method(r.method).uri(r.target.as_str());
            if let Some(ct) = r.content_type {
                b = b.header(header::CONTENT_TYPE, ct);
            }
            let req = b.body(Body::from(r.body)).expect("valid request");
            let resp = app.clone().oneshot(req).await.expect("infallible");
            let status = resp.status();
            let body = resp.into_body().collect().await.expect("body").to_bytes();
            assert_ne!(
                status,
                StatusCode::INTERNAL_SERVER_ERROR,
                "{} {}: {}",
                r.method,
                r.target,
                String::from_utf8_lossy(&body)
            );
        }
    });
});
