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
//! - [`serve_with`] / [`ServeOptions`]: optional HTTP basic authentication
//!   ([`BasicAuth`], users from a `user:password` file; 401 with Confluent's
//!   error shape and `WWW-Authenticate: Basic` otherwise) and TLS
//!   ([`TlsIdentity`], rustls, PEM certificate and key).
//! - [`RegistryClient`]: HTTP client for the bundled or an external registry,
//!   with basic authentication, extra trusted roots and bounded retries of
//!   transient failures ([`ClientOptions`], [`RetryPolicy`]).
//!
//! Only Avro schemas without references are supported for now.

mod api;
mod client;
pub mod compat;
mod error;
mod mode;
mod schema;
mod security;
mod store;

use std::future::Future;
use std::sync::Arc;

pub use api::{router, router_with_auth, MAX_BODY_BYTES};
pub use client::{ClientError, ClientOptions, RegistryClient, RetryPolicy, REQUEST_TIMEOUT};
pub use error::{ApiError, RegistryError, CONTENT_TYPE_V1};
pub use mode::Mode;
pub use schema::SchemaType;
pub use security::{check_pem_certificates, BasicAuth, SecurityError, SecurityFile, TlsIdentity};
pub use store::{Deleted, KafkaStorageConfig, Registry, SchemaInfo, VersionInfo, VersionSpec};

/// Called once per answered request matching a route: (route template, method, HTTP
/// status, time taken). Route templates (`/subjects/{subject}/versions`) keep metric
/// labels bounded.
pub type Observer = Arc<dyn Fn(&str, &str, u16, std::time::Duration) + Send + Sync>;

/// Optional security and observation of the REST listener.
#[derive(Clone, Default)]
pub struct ServeOptions {
    /// Require HTTP basic authentication by one of these users.
    pub basic_auth: Option<BasicAuth>,
    /// Serve HTTPS with this identity instead of plain HTTP.
    pub tls: Option<TlsIdentity>,
    pub observer: Option<Observer>,
}

impl std::fmt::Debug for ServeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeOptions")
            .field("basic_auth", &self.basic_auth)
            .field("tls", &self.tls)
            .field("observer", &self.observer.is_some())
            .finish()
    }
}

/// Serve the registry's REST API on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    reg: Arc<Registry>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, reg, ServeOptions::default(), shutdown).await
}

/// Serve the registry's REST API on `listener`, with basic authentication
/// and/or TLS as `options` say, until `shutdown` completes.
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    reg: Arc<Registry>,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(
            %addr,
            storage = %reg.storage(),
            tls = options.tls.is_some(),
            basic_auth = options.basic_auth.is_some(),
            "schema registry listening"
        );
    }
    let app = api::router_with_auth(reg, options.basic_auth, options.observer);
    match options.tls {
        None => {
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
        }
        Some(tls) => serve_tls(listener, app, tls, shutdown).await,
    }
}

async fn serve_tls(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    tls: TlsIdentity,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use hyper_util::server::conn::auto;
    use hyper_util::service::TowerToHyperService;

    let acceptor = tokio_rustls::TlsAcceptor::from(tls.config.clone());
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let builder = auto::Builder::new(TokioExecutor::new());
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    tracing::warn!(error = %e, "schema registry: accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let service = TowerToHyperService::new(app.clone());
        let builder = builder.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let stream =
                match tokio::time::timeout(security::HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await
                {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "schema registry: TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "schema registry: TLS handshake timed out");
                        return;
                    }
                };
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            if let Err(e) = watcher.watch(conn).await {
                tracing::debug!(%peer, error = %e, "schema registry: connection ended with an error");
            }
        });
    }
    drop(listener);
    // In-flight requests finish; idle keep-alive connections close.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), graceful.shutdown()).await;
    Ok(())
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
