//! The admin HTTP listener: `/metrics`, `/healthz`, `/readyz`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

pub fn router(metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready_handler))
        .with_state(metrics)
}

async fn metrics_handler(State(m): State<Arc<Metrics>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        m.render(),
    )
}

async fn ready_handler(State(m): State<Arc<Metrics>>) -> (StatusCode, String) {
    let blocked = m.blocked.lock().map(|b| b.clone()).unwrap_or_default();
    if !blocked.is_empty() {
        let mut msg = String::from("not ready: table streams stopped by refused schemas:\n");
        for (t, reason) in blocked {
            msg.push_str(&format!("  {t}: {reason}\n"));
        }
        return (StatusCode::SERVICE_UNAVAILABLE, msg);
    }
    if m.registry_only.load(std::sync::atomic::Ordering::Relaxed) {
        return if m.ready.get() == 1 {
            (
                StatusCode::OK,
                "ready: serving the schema registry\n".into(),
            )
        } else {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "not ready: the schema registry is opening its storage\n".into(),
            )
        };
    }
    if m.ready.get() == 1 {
        (StatusCode::OK, "ready: replicating and producing\n".into())
    } else if m.source_connected.get() == 1 {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: connected to PostgreSQL, not streaming yet\n".into(),
        )
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: not connected to PostgreSQL\n".into(),
        )
    }
}

pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router(metrics))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}
