//! Helpers shared by the integration tests: a registry served on a free
//! port, JSON requests, and a throw-away tansu broker.
#![allow(dead_code)]

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;
use sluice_schema_registry::{serve, Registry};
use tokio::sync::oneshot;

pub const V1: &str = "application/vnd.schemaregistry.v1+json";

pub struct Server {
    pub base: String,
    pub http: reqwest::Client,
    pub reg: Arc<Registry>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    _dir: Option<tempfile::TempDir>,
}

pub type Answer = (StatusCode, Value);

impl Server {
    /// A registry in a fresh temporary directory.
    pub async fn start() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let reg = Arc::new(Registry::open(dir.path()).unwrap());
        let mut s = Server::serve(reg).await;
        s._dir = Some(dir);
        s
    }

    pub async fn serve(reg: Arc<Registry>) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, reg.clone(), async {
            let _ = rx.await;
        }));
        Server {
            base,
            http: reqwest::Client::new(),
            reg,
            stop: Some(tx),
            task: Some(task),
            _dir: None,
        }
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn send_raw(&self, req: reqwest::RequestBuilder) -> Answer {
        let resp = req.send().await.unwrap();
        let status = resp.status();
        if let Some(ct) = resp.headers().get(reqwest::header::CONTENT_TYPE) {
            assert_eq!(ct.to_str().unwrap(), V1);
        }
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send_raw(self.http.get(self.url(path))).await
    }

    pub async fn delete(&self, path: &str) -> Answer {
        self.send_raw(self.http.delete(self.url(path))).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Answer {
        self.send_raw(
            self.http
                .post(self.url(path))
                .header(reqwest::header::CONTENT_TYPE, V1)
                .body(body.to_string()),
        )
        .await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Answer {
        self.send_raw(
            self.http
                .put(self.url(path))
                .header(reqwest::header::CONTENT_TYPE, V1)
                .body(body.to_string()),
        )
        .await
    }
}

/// Assert an error answer: status, Confluent code, message present.
#[track_caller]
pub fn assert_error(got: &Answer, status: u16, code: u64) {
    assert_eq!(got.0.as_u16(), status, "{got:?}");
    assert_eq!(got.1["error_code"].as_u64(), Some(code), "{got:?}");
    assert!(
        got.1["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{got:?}"
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A tansu broker (in memory) on a free port; killed on drop.
pub struct Tansu {
    pub bootstrap: String,
    child: Child,
}

impl Tansu {
    /// `None` (with a note on stderr) when the tansu binary is not available.
    pub fn start() -> Option<Tansu> {
        let bin = std::env::var_os("TANSU_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.tools/bin/tansu")
            });
        if !bin.exists() {
            eprintln!(
                "NOTE: skipping: tansu broker not found at {} (set TANSU_BIN)",
                bin.display()
            );
            return None;
        }
        let port = free_port();
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(&bin)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
                "--silent",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let tansu = Tansu {
            bootstrap: format!("127.0.0.1:{port}"),
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(&tansu.bootstrap).is_err() {
            assert!(Instant::now() < deadline, "tansu did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(tansu)
    }
}

impl Tansu {
    /// Stop the broker now (its in-memory data is lost).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
