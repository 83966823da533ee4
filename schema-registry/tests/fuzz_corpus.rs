//! Replays the fuzz corpora of the schema registry (fuzz/corpus/avro_compat,
//! fuzz/corpus/registry_api) through the fuzz targets' own harness: every seed and
//! every crash ever found must run without panicking. The API requests go over HTTP to
//! a served registry (a fresh one per corpus file); a dropped connection or a 500
//! answer (what a panic in a handler's blocking work becomes) fails.

use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[path = "../../fuzz/harness/avro_compat.rs"]
mod avro_compat_harness;
#[path = "../../fuzz/harness/corpus.rs"]
mod corpus;
#[path = "../../fuzz/harness/registry_api.rs"]
mod registry_api_harness;

#[test]
fn avro_compat_corpus_checks_without_panic() {
    corpus::replay("avro_compat", avro_compat_harness::run);
}

/// One HTTP/1.1 request on its own connection; the status code.
async fn send(addr: std::net::SocketAddr, r: &registry_api_harness::Req) -> u16 {
    let mut head = format!(
        "{} {} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n",
        r.method,
        r.target,
        r.body.len()
    );
    if let Some(ct) = r.content_type {
        head.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    head.push_str("\r\n");
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(head.as_bytes()).await.expect("write head");
    s.write_all(&r.body).await.expect("write body");
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).await.expect("read response");
    let line = resp.split(|&b| b == b'\r').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    line.strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "{} {}: no HTTP response (connection dropped: a panic?), got {:?}",
                r.method,
                r.target,
                String::from_utf8_lossy(&resp)
            )
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_api_corpus_answers_without_panic_or_500() {
    for (path, data) in corpus::corpus("registry_api") {
        let reqs = registry_api_harness::requests(&data);
        if reqs.is_empty() {
            continue;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let reg = Arc::new(sluice_schema_registry::Registry::open(dir.path()).expect("open"));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(sluice_schema_registry::serve(listener, reg, async {
            let _ = stopped.await;
        }));
        for r in &reqs {
            let status = send(addr, r).await;
            assert_ne!(
                status,
                500,
                "{}: {} {} answered 500",
                path.display(),
                r.method,
                r.target
            );
        }
        let _ = stop.send(());
        server.await.expect("server task").expect("serve");
    }
}
