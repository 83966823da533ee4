//! HTTP client for a Confluent-compatible schema registry (the bundled one or
//! an external Confluent / Karapace / Apicurio-ccompat deployment).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use rand::Rng;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde::Deserialize;
use sluice_core::{Classify, ErrorClass};
use url::Url;

use crate::error::CONTENT_TYPE_V1;

/// Time allowed for one request, connection included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const ACCEPT_VALUE: &str =
    "application/vnd.schemaregistry.v1+json, application/vnd.schemaregistry+json; qs=0.9, application/json; qs=0.5";
/// How much of a non-JSON error body is quoted in an error.
const MAX_QUOTED_BODY: usize = 300;

/// A failed registry request. Messages name the registry, the operation
/// (including the subject) and the registry's error code and message.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("invalid schema registry URL '{url}': {detail}")]
    InvalidUrl { url: String, detail: String },
    #[error("schema registry {registry}: {op} failed{attempts}: {source}{hint}",
        attempts = attempts_note(*.attempts),
        hint = if is_tls_failure(source) { " (TLS failure: check the registry's certificate and the CA the client trusts)" } else { "" })]
    Http {
        registry: String,
        op: String,
        /// Attempts made (more than one when transient failures were retried).
        attempts: u32,
        #[source]
        source: reqwest::Error,
    },
    #[error("schema registry {registry}: {op} failed with HTTP {status}, error_code {error_code}: {message}{hint}{attempts}", hint = hint(*.status, *.error_code), attempts = attempts_note(*.attempts))]
    Registry {
        registry: String,
        op: String,
        /// Attempts made (more than one when transient failures were retried).
        attempts: u32,
        status: u16,
        error_code: i64,
        message: String,
    },
    #[error("schema registry {registry}: {op}: unexpected response (HTTP {status}): {detail}")]
    BadResponse {
        registry: String,
        op: String,
        status: u16,
        detail: String,
    },
}

fn attempts_note(attempts: u32) -> String {
    if attempts > 1 {
        format!(" (after {attempts} attempts)")
    } else {
        String::new()
    }
}

/// Whether the error comes from TLS (certificate not trusted, wrong name, no
/// common protocol): retrying does not help.
fn is_tls_failure(e: &reqwest::Error) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if err.is::<tokio_rustls::rustls::Error>() {
            return true;
        }
        // io::Error's source() skips the error it wraps: look inside.
        cur = match err.downcast_ref::<std::io::Error>() {
            Some(io) => match io.get_ref() {
                Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
                None => None,
            },
            None => err.source(),
        };
    }
    false
}

fn hint(status: u16, error_code: i64) -> &'static str {
    match (status, error_code) {
        (409, _) => " (the schema is incompatible with the subject's earlier versions under its compatibility level)",
        (401 | 403, _) => " (check the registry's credentials and permissions)",
        (_, 42201) => " (the registry rejected the schema as invalid)",
        _ => "",
    }
}

impl Classify for ClientError {
    fn class(&self) -> ErrorClass {
        match self {
            ClientError::InvalidUrl { .. } => ErrorClass::Permanent,
            ClientError::Http { source, .. } => {
                if source.is_builder() || source.is_redirect() || is_tls_failure(source) {
                    ErrorClass::Permanent
                } else {
                    // Connection refused/reset, timeouts, broken bodies.
                    ErrorClass::Transient
                }
            }
            ClientError::Registry {
                status, error_code, ..
            } => status_class(*status, *error_code),
            ClientError::BadResponse { status, .. } => {
                if *status >= 500 {
                    ErrorClass::Transient
                } else {
                    ErrorClass::Permanent
                }
            }
        }
    }
}

/// Confluent error codes 5xxxx (store error, timeout, forwarding, unknown
/// leader) and HTTP 5xx / 408 / 429 may clear by themselves; everything else
/// (invalid or incompatible schema, not found, unauthorized) will not.
fn status_class(status: u16, error_code: i64) -> ErrorClass {
    if status >= 500 || status == 408 || status == 429 || (50000..60000).contains(&error_code) {
        ErrorClass::Transient
    } else {
        ErrorClass::Permanent
    }
}

#[derive(Deserialize)]
struct ErrorBody {
    error_code: i64,
    message: String,
}

#[derive(Deserialize)]
struct IdBody {
    id: u32,
}

#[derive(Deserialize)]
struct SchemaBody {
    schema: String,
}

#[derive(Deserialize)]
struct ConfigBody {
    #[serde(rename = "compatibilityLevel")]
    compatibility_level: String,
}

/// How transient failures (connection refused or reset, timeouts, HTTP 5xx,
/// 408, 429) are retried: exponential backoff with jitter, bounded both in
/// attempts and in total time. Other errors (409, 422, 401, 403, 404, ...)
/// fail at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1: no retry).
    pub max_attempts: u32,
    /// Wait before the first retry; doubled each time, up to `max_backoff`.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// No retry starts once this much time has passed since the first attempt.
    pub max_elapsed: Duration,
}

impl Default for RetryPolicy {
    /// 5 attempts, waits of about 0.25, 0.5, 1 and 2 s (±50 % jitter), within 10 s.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(4),
            max_elapsed: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// No retries.
    pub fn none() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// The wait before retry number `retry` (1-based), without jitter.
    fn backoff(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.saturating_sub(1).min(16));
        self.initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }
}

/// How a [`RegistryClient`] connects.
#[derive(Clone, Default)]
pub struct ClientOptions {
    /// HTTP basic authentication (user, password); overrides credentials in the URL.
    pub basic_auth: Option<(String, String)>,
    /// PEM certificates to trust as roots, in addition to the built-in ones
    /// (e.g. a private CA, or a self-signed registry certificate).
    pub root_ca_pem: Option<Vec<u8>>,
    pub retry: RetryPolicy,
    /// Time allowed for one request, connection included (default [`REQUEST_TIMEOUT`]).
    pub timeout: Option<Duration>,
}

impl std::fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientOptions")
            .field("basic_auth_user", &self.basic_auth.as_ref().map(|x| &x.0))
            .field("root_ca_pem", &self.root_ca_pem.as_ref().map(Vec::len))
            .field("retry", &self.retry)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Whether a failed request is worth repeating: transient failures only.
pub(crate) fn should_retry(e: &ClientError) -> bool {
    e.class() == ErrorClass::Transient
}

/// Client of a Confluent-compatible registry, with caches so that repeated
/// registrations and lookups cost no request.
pub struct RegistryClient {
    http: reqwest::Client,
    base: Url,
    basic_auth: Option<(String, String)>,
    retry: RetryPolicy,
    /// The base URL without credentials, for messages.
    display: String,
    registered: Mutex<HashMap<(String, String), u32>>,
    by_id: Mutex<HashMap<u32, String>>,
}

impl RegistryClient {
    /// A client for the registry at `base_url` (`http://host:8081`, possibly
    /// with a path prefix and `user:password@` for basic authentication).
    pub fn new(base_url: &str) -> Result<Self, ClientError> {
        Self::with_options(base_url, ClientOptions::default())
    }

    /// A client for the registry at `base_url` with authentication, trusted
    /// roots and retries as `options` say.
    pub fn with_options(base_url: &str, options: ClientOptions) -> Result<Self, ClientError> {
        let invalid = |detail: String| ClientError::InvalidUrl {
            url: redact(base_url),
            detail,
        };
        let base = Url::parse(base_url).map_err(|e| invalid(e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(invalid(format!(
                "scheme '{}' is not supported; use http or https",
                base.scheme()
            )));
        }
        if base.cannot_be_a_base() || base.host().is_none() {
            return Err(invalid("the URL has no host".into()));
        }
        if base.query().is_some() || base.fragment().is_some() {
            return Err(invalid("the URL must not have a query or fragment".into()));
        }
        let mut display = base.clone();
        let _ = display.set_username("");
        let _ = display.set_password(None);
        let timeout = options.timeout.unwrap_or(REQUEST_TIMEOUT);
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout);
        if let Some(pem) = &options.root_ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| invalid(format!("cannot use the CA certificates: {e}")))?;
            if certs.is_empty() {
                return Err(invalid("no PEM certificate in the CA certificates".into()));
            }
            for c in certs {
                builder = builder.add_root_certificate(c);
            }
        }
        let http = builder
            .build()
            .map_err(|e| invalid(format!("cannot build the HTTP client: {e}")))?;
        let basic_auth = options.basic_auth.or_else(|| {
            (!base.username().is_empty()).then(|| {
                (
                    percent_decode(base.username()),
                    percent_decode(base.password().unwrap_or_default()),
                )
            })
        });
        let mut base = base;
        let _ = base.set_username("");
        let _ = base.set_password(None);
        Ok(RegistryClient {
            http,
            base,
            basic_auth,
            retry: options.retry,
            display: display.as_str().trim_end_matches('/').to_string(),
            registered: Mutex::new(HashMap::new()),
            by_id: Mutex::new(HashMap::new()),
        })
    }

    /// The registry's base URL, without credentials.
    pub fn base_url(&self) -> &str {
        &self.display
    }

    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            // Each segment is percent-encoded, `/` included.
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// Register `schema` (Avro JSON text) under `subject`; returns its id.
    /// Cached per (subject, schema): repeated calls make no request.
    pub async fn register(&self, subject: &str, schema: &str) -> Result<u32, ClientError> {
        let key = (subject.to_string(), schema.to_string());
        if let Some(id) = self
            .registered
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
        {
            return Ok(*id);
        }
        let op = format!("registering a schema under subject '{subject}'");
        let url = self.url(&["subjects", subject, "versions"]);
        let body = serde_json::json!({ "schema": schema }).to_string();
        let IdBody { id } = self
            .send(
                || {
                    self.http
                        .post(url.clone())
                        .header(CONTENT_TYPE, CONTENT_TYPE_V1)
                        .body(body.clone())
                },
                &op,
            )
            .await?;
        self.registered
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key, id);
        self.by_id
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(id)
            .or_insert_with(|| schema.to_string());
        Ok(id)
    }

    /// The registry's global compatibility level (`GET /config`).
    pub async fn global_compatibility(&self) -> Result<String, ClientError> {
        let url = self.url(&["config"]);
        let ConfigBody {
            compatibility_level,
        } = self
            .send(
                || self.http.get(url.clone()),
                "reading the global compatibility level",
            )
            .await?;
        Ok(compatibility_level)
    }

    /// A subject's own compatibility level (`GET /config/{subject}`), `None` when it has
    /// none (40408: it follows the global level).
    pub async fn subject_compatibility(
        &self,
        subject: &str,
    ) -> Result<Option<String>, ClientError> {
        let url = self.url(&["config", subject]);
        let op = format!("reading the compatibility level of subject '{subject}'");
        match self
            .send::<ConfigBody>(|| self.http.get(url.clone()), &op)
            .await
        {
            Ok(c) => Ok(Some(c.compatibility_level)),
            Err(ClientError::Registry {
                error_code: 40408, ..
            }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Sets a subject's compatibility level (`PUT /config/{subject}`); `None` removes the
    /// subject's own level (`DELETE /config/{subject}`), so it follows the global one.
    pub async fn set_subject_compatibility(
        &self,
        subject: &str,
        level: Option<&str>,
    ) -> Result<(), ClientError> {
        let url = self.url(&["config", subject]);
        let op = format!("setting the compatibility level of subject '{subject}'");
        #[derive(Deserialize)]
        struct Any {}
        match level {
            Some(level) => {
                let body = serde_json::json!({ "compatibility": level }).to_string();
                self.send::<Any>(
                    || {
                        self.http
                            .put(url.clone())
                            .header(CONTENT_TYPE, CONTENT_TYPE_V1)
                            .body(body.clone())
                    },
                    &op,
                )
                .await?;
            }
            None => {
                self.send::<Any>(|| self.http.delete(url.clone()), &op)
                    .await?;
            }
        }
        Ok(())
    }

    /// The schema text registered with `id`. Cached.
    pub async fn schema_by_id(&self, id: u32) -> Result<String, ClientError> {
        if let Some(s) = self
            .by_id
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
        {
            return Ok(s.clone());
        }
        let op = format!("fetching schema id {id}");
        let url = self.url(&["schemas", "ids", &id.to_string()]);
        let SchemaBody { schema } = self.send(|| self.http.get(url.clone()), &op).await?;
        self.by_id
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, schema.clone());
        Ok(schema)
    }

    /// Sends the request `make` builds, retrying transient failures as the
    /// retry policy says.
    async fn send<T: for<'de> Deserialize<'de>>(
        &self,
        make: impl Fn() -> reqwest::RequestBuilder,
        op: &str,
    ) -> Result<T, ClientError> {
        let started = Instant::now();
        let mut attempt = 1;
        loop {
            let result = self.send_once(make(), op, attempt).await;
            let err = match result {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            if attempt >= self.retry.max_attempts || !should_retry(&err) {
                return Err(err);
            }
            let wait = self
                .retry
                .backoff(attempt)
                .mul_f64(rand::rng().random_range(0.5..1.5));
            if started.elapsed() + wait > self.retry.max_elapsed {
                return Err(err);
            }
            tracing::debug!(error = %err, retry_in = ?wait, attempt, "schema registry request failed; retrying");
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    async fn send_once<T: for<'de> Deserialize<'de>>(
        &self,
        req: reqwest::RequestBuilder,
        op: &str,
        attempts: u32,
    ) -> Result<T, ClientError> {
        let http_err = |source| ClientError::Http {
            registry: self.display.clone(),
            op: op.to_string(),
            attempts,
            source,
        };
        let req = match &self.basic_auth {
            Some((user, password)) => req.basic_auth(user, Some(password)),
            None => req,
        };
        let resp = req
            .header(ACCEPT, ACCEPT_VALUE)
            .send()
            .await
            .map_err(http_err)?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.map_err(http_err)?;
        if (200..300).contains(&status) {
            return serde_json::from_slice(&bytes).map_err(|e| ClientError::BadResponse {
                registry: self.display.clone(),
                op: op.to_string(),
                status,
                detail: format!("{e}; body: {}", quote(&bytes)),
            });
        }
        let (error_code, message) = match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(b) => (b.error_code, b.message),
            // A proxy or a non-registry server: use the status as the code, as
            // the registry itself does for HTTP-level errors.
            Err(_) => (i64::from(status), quote(&bytes)),
        };
        Err(ClientError::Registry {
            registry: self.display.clone(),
            op: op.to_string(),
            attempts,
            status,
            error_code,
            message,
        })
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn quote(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    if text.is_empty() {
        return "(empty body)".into();
    }
    match text.char_indices().nth(MAX_QUOTED_BODY) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

/// `base_url` with any password replaced, for error messages.
fn redact(base_url: &str) -> String {
    match Url::parse(base_url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(_) => base_url.to_string(),
        // Unparseable: cut anything that may be userinfo.
        Err(_) => match base_url.rfind('@') {
            Some(i) => format!("***{}", &base_url[i..]),
            None => base_url.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry_error(status: u16, error_code: i64) -> ClientError {
        ClientError::Registry {
            registry: "http://r:8081".into(),
            op: "registering a schema under subject 'shop.public.orders-value'".into(),
            attempts: 1,
            status,
            error_code,
            message: "msg".into(),
        }
    }

    #[test]
    fn classification_table() {
        use ErrorClass::*;
        let table: &[(u16, i64, ErrorClass)] = &[
            (500, 50001, Transient),
            (500, 50002, Transient),
            (500, 50003, Transient),
            (500, 50004, Transient),
            (500, 500, Transient),
            (502, 502, Transient),
            (503, 503, Transient),
            (504, 504, Transient),
            (408, 408, Transient),
            (429, 429, Transient),
            (409, 409, Permanent),
            (409, 40901, Permanent),
            (422, 42201, Permanent),
            (422, 42202, Permanent),
            (422, 42209, Permanent),
            (401, 401, Permanent),
            (403, 40301, Permanent),
            (404, 40401, Permanent),
            (404, 40403, Permanent),
            (404, 404, Permanent),
            (400, 400, Permanent),
            (415, 415, Permanent),
        ];
        for &(status, code, want) in table {
            assert_eq!(
                registry_error(status, code).class(),
                want,
                "HTTP {status} error_code {code}"
            );
        }
        let invalid = ClientError::InvalidUrl {
            url: "x".into(),
            detail: "y".into(),
        };
        assert_eq!(invalid.class(), Permanent);
        let bad = |status| ClientError::BadResponse {
            registry: "r".into(),
            op: "o".into(),
            status,
            detail: "d".into(),
        };
        assert_eq!(bad(200).class(), Permanent);
        assert_eq!(bad(503).class(), Transient);
    }

    fn fast_retries(max_attempts: u32) -> ClientOptions {
        ClientOptions {
            retry: RetryPolicy {
                max_attempts,
                initial_backoff: Duration::from_millis(10),
                max_backoff: Duration::from_millis(40),
                max_elapsed: Duration::from_secs(10),
            },
            ..ClientOptions::default()
        }
    }

    #[tokio::test]
    async fn connection_refused_is_transient_and_retried() {
        // A port that was just free: connecting is refused.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let c = RegistryClient::with_options(&format!("http://127.0.0.1:{port}"), fast_retries(3))
            .unwrap();
        let e = c.register("s-value", r#""string""#).await.unwrap_err();
        assert!(matches!(e, ClientError::Http { attempts: 3, .. }), "{e}");
        assert_eq!(e.class(), ErrorClass::Transient);
        assert!(e.to_string().contains("subject 's-value'"), "{e}");
        assert!(e.to_string().contains("after 3 attempts"), "{e}");
    }

    #[test]
    fn retry_classification_table() {
        // (HTTP status, error_code, retried?)
        let table: &[(u16, i64, bool)] = &[
            (500, 50001, true),
            (500, 50002, true),
            (500, 500, true),
            (502, 502, true),
            (503, 503, true),
            (504, 504, true),
            (408, 408, true),
            (429, 429, true),
            (409, 409, false),
            (409, 40901, false),
            (422, 42201, false),
            (422, 42202, false),
            (401, 401, false),
            (403, 403, false),
            (403, 40301, false),
            (404, 40401, false),
            (404, 40403, false),
            (404, 404, false),
            (400, 400, false),
        ];
        for &(status, code, want) in table {
            assert_eq!(
                should_retry(&registry_error(status, code)),
                want,
                "HTTP {status} error_code {code}"
            );
        }
        let bad = |status| ClientError::BadResponse {
            registry: "r".into(),
            op: "o".into(),
            status,
            detail: "d".into(),
        };
        assert!(
            !should_retry(&bad(200)),
            "an unparseable 200 is not retried"
        );
        assert!(should_retry(&bad(502)));
        assert!(!should_retry(&ClientError::InvalidUrl {
            url: "u".into(),
            detail: "d".into()
        }));
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = RetryPolicy::default();
        let waits: Vec<u128> = (1..=6).map(|r| p.backoff(r).as_millis()).collect();
        assert_eq!(waits, [250, 500, 1000, 2000, 4000, 4000]);
        // The default bounds the whole: attempts and (jittered) waits fit in ~10 s.
        let worst: Duration = (1..p.max_attempts).map(|r| p.backoff(r).mul_f64(1.5)).sum();
        assert!(worst <= p.max_elapsed, "{worst:?}");
    }

    /// A registry stand-in on a real listener that answers `failures` requests
    /// with `fail_status` first, then succeeds. Returns its URL and the request count.
    async fn flaky_server(
        failures: usize,
        fail_status: u16,
    ) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use axum::http::StatusCode;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let count = std::sync::Arc::new(AtomicUsize::new(0));
        let c = count.clone();
        let handler = move || {
            let c = c.clone();
            async move {
                let n = c.fetch_add(1, Ordering::SeqCst);
                if n < failures {
                    let status = StatusCode::from_u16(fail_status).unwrap();
                    (
                        status,
                        format!(r#"{{"error_code":{fail_status},"message":"failure {n}"}}"#),
                    )
                } else {
                    (
                        StatusCode::OK,
                        r#"{"id":7,"schema":"\"string\""}"#.to_string(),
                    )
                }
            }
        };
        let app = axum::Router::new()
            .route(
                "/subjects/{s}/versions",
                axum::routing::post(handler.clone()),
            )
            .route("/schemas/ids/{id}", axum::routing::get(handler));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (url, count)
    }

    #[tokio::test]
    async fn transient_failures_are_retried_until_success() {
        use std::sync::atomic::Ordering;
        for status in [500, 503, 429] {
            let (url, count) = flaky_server(3, status).await;
            let c = RegistryClient::with_options(&url, fast_retries(5)).unwrap();
            assert_eq!(c.register("s-value", r#""string""#).await.unwrap(), 7);
            assert_eq!(
                count.load(Ordering::SeqCst),
                4,
                "HTTP {status}: 3 failures + 1 success"
            );
            // Cached: no further request.
            assert_eq!(c.register("s-value", r#""string""#).await.unwrap(), 7);
            assert_eq!(count.load(Ordering::SeqCst), 4);
        }
        // Lookups by id too.
        let (url, count) = flaky_server(2, 502).await;
        let c = RegistryClient::with_options(&url, fast_retries(5)).unwrap();
        assert_eq!(c.schema_by_id(7).await.unwrap(), r#""string""#);
        assert_eq!(count.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn retries_are_bounded() {
        use std::sync::atomic::Ordering;
        let (url, count) = flaky_server(100, 503).await;
        let c = RegistryClient::with_options(&url, fast_retries(4)).unwrap();
        let e = c.register("s-value", r#""string""#).await.unwrap_err();
        assert_eq!(count.load(Ordering::SeqCst), 4);
        assert!(
            matches!(
                e,
                ClientError::Registry {
                    status: 503,
                    attempts: 4,
                    ..
                }
            ),
            "{e}"
        );
        assert_eq!(e.class(), ErrorClass::Transient);
        assert!(
            e.to_string().contains("failure 3"),
            "the last answer is reported: {e}"
        );
    }

    #[tokio::test]
    async fn permanent_failures_are_not_retried() {
        use std::sync::atomic::Ordering;
        for status in [409, 422, 401, 403, 404] {
            let (url, count) = flaky_server(100, status).await;
            let c = RegistryClient::with_options(&url, fast_retries(5)).unwrap();
            let t0 = Instant::now();
            let e = c.register("s-value", r#""string""#).await.unwrap_err();
            assert_eq!(
                count.load(Ordering::SeqCst),
                1,
                "HTTP {status} is not retried"
            );
            assert!(t0.elapsed() < Duration::from_secs(2));
            assert!(
                matches!(e, ClientError::Registry { attempts: 1, .. }),
                "{e}"
            );
            assert_eq!(e.class(), ErrorClass::Permanent, "HTTP {status}");
            assert!(e.to_string().contains(&format!("HTTP {status}")), "{e}");
        }
    }

    #[tokio::test]
    async fn timeouts_are_retried() {
        // Accepts connections and never answers.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let a = accepted.clone();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = listener.accept().await {
                a.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                held.push(s);
            }
        });
        let mut opts = fast_retries(3);
        opts.timeout = Some(Duration::from_millis(200));
        let c = RegistryClient::with_options(&url, opts).unwrap();
        let e = c.schema_by_id(1).await.unwrap_err();
        match &e {
            ClientError::Http {
                source, attempts, ..
            } => {
                assert!(source.is_timeout(), "{e}");
                assert_eq!(*attempts, 3);
            }
            other => panic!("{other}"),
        }
        assert_eq!(e.class(), ErrorClass::Transient);
        assert!(accepted.load(std::sync::atomic::Ordering::SeqCst) >= 2);
    }

    #[test]
    fn messages_carry_code_message_and_subject() {
        let e = registry_error(409, 409);
        let s = e.to_string();
        assert!(s.contains("error_code 409"), "{s}");
        assert!(s.contains("msg"), "{s}");
        assert!(s.contains("shop.public.orders-value"), "{s}");
        assert!(s.contains("incompatible"), "{s}");
    }

    #[test]
    fn urls_encode_subjects_and_keep_path_prefixes() {
        let c = RegistryClient::new("http://u:secret@h:8081/registry/").unwrap();
        assert_eq!(c.base_url(), "http://h:8081/registry");
        assert_eq!(
            c.url(&["subjects", "a/b c%?#", "versions"]).as_str(),
            "http://h:8081/registry/subjects/a%2Fb%20c%25%3F%23/versions"
        );
        assert_eq!(
            c.basic_auth,
            Some(("u".to_string(), "secret".to_string())),
            "credentials in the URL become basic authentication"
        );
        let c = RegistryClient::new("http://u%40x:p%3Aw@h:8081").unwrap();
        assert_eq!(c.basic_auth, Some(("u@x".to_string(), "p:w".to_string())));
        let c = RegistryClient::new("http://h:8081").unwrap();
        assert_eq!(
            c.url(&["schemas", "ids", "7"]).as_str(),
            "http://h:8081/schemas/ids/7"
        );
    }

    #[test]
    fn invalid_urls_are_rejected_without_leaking_passwords() {
        for bad in ["not a url", "ftp://h/", "http://h:8081/?x=1", "mailto:a@b"] {
            let e = RegistryClient::new(bad).err().expect(bad);
            assert_eq!(e.class(), ErrorClass::Permanent);
        }
        let e = RegistryClient::new("ftp://u:hunter2@h/").err().unwrap();
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }
}
