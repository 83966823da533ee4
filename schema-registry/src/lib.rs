//! Confluent-compatible schema registry, bundled in the Sluice agent and
//! usable standalone.
//!
//! - [`Registry`]: durable state in a directory ([`Registry::open`]).
//! - [`router`] / [`serve`]: the REST API (`/subjects/...`, `/schemas/ids/...`)
//!   that standard clients (confluent-kafka, Kafka Connect converters, kcat)
//!   talk to unchanged.
//! - [`RegistryClient`]: HTTP client for the bundled or an external registry.
//!
//! Only Avro schemas without references are supported for now; there are no
//! compatibility checks, modes or deletes yet.

mod api;
mod client;
mod error;
mod schema;
mod store;

use std::future::Future;
use std::sync::Arc;

pub use api::{router, MAX_BODY_BYTES};
pub use client::{ClientError, RegistryClient, REQUEST_TIMEOUT};
pub use error::{ApiError, RegistryError, CONTENT_TYPE_V1};
pub use schema::SchemaType;
pub use store::Registry;

/// Serve the registry's REST API on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    reg: Arc<Registry>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, dir = %reg.dir().display(), "schema registry listening");
    }
    axum::serve(listener, router(reg))
        .with_graceful_shutdown(shutdown)
        .await
}

#[cfg(test)]
mod tests {
    #[test]
    fn public_types_are_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<super::Registry>();
        check::<super::RegistryClient>();
        check::<super::ClientError>();
    }
}
