//! Confluent-compatible schema registry, bundled in the Sluice agent and
//! usable standalone.
//!
//! - [`Registry`]: durable state, as an ordered log of records replayed at
//!   open, in a directory ([`Registry::open`]) or in a Kafka compacted topic
//!   ([`Registry::open_kafka`]).
//! - [`router`] / [`serve`]: the REST API (`/subjects/...`, `/schemas/...`,
//!   `/config/...`, `/mode/...`, `/compatibility/...`) that standard clients
//!   (confluent-kafka, Kafka Connect converters, kcat) talk to unchanged:
//!   compatibility levels enforced on registration ([`compat`]), modes
//!   (READWRITE, READONLY, READONLY_OVERRIDE, IMPORT), soft and permanent
//!   deletes.
//! - [`RegistryClient`]: HTTP client for the bundled or an external registry.
//!
//! Only Avro schemas without references are supported for now.

mod api;
mod client;
pub mod compat;
mod error;
mod mode;
mod schema;
mod store;

use std::future::Future;
use std::sync::Arc;

pub use api::{router, MAX_BODY_BYTES};
pub use client::{ClientError, RegistryClient, REQUEST_TIMEOUT};
pub use error::{ApiError, RegistryError, CONTENT_TYPE_V1};
pub use mode::Mode;
pub use schema::SchemaType;
pub use store::{Deleted, KafkaStorageConfig, Registry, SchemaInfo, VersionInfo, VersionSpec};

/// Serve the registry's REST API on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    reg: Arc<Registry>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, storage = %reg.storage(), "schema registry listening");
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
