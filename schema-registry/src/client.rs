//! HTTP client for a Confluent-compatible schema registry (the bundled one or
//! an external Confluent / Karapace / Apicurio-ccompat deployment).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

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
    #[error("schema registry {registry}: {op} failed: {source}")]
    Http {
        registry: String,
        op: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("schema registry {registry}: {op} failed with HTTP {status}, error_code {error_code}: {message}{hint}", hint = hint(*.status, *.error_code))]
    Registry {
        registry: String,
        op: String,
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
                if source.is_builder() || source.is_redirect() {
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

/// Client of a Confluent-compatible registry, with caches so that repeated
/// registrations and lookups cost no request.
pub struct RegistryClient {
    http: reqwest::Client,
    base: Url,
    /// The base URL without credentials, for messages.
    display: String,
    registered: Mutex<HashMap<(String, String), u32>>,
    by_id: Mutex<HashMap<u32, String>>,
}

impl RegistryClient {
    /// A client for the registry at `base_url` (`http://host:8081`, possibly
    /// with a path prefix and `user:password@` for basic authentication).
    pub fn new(base_url: &str) -> Result<Self, ClientError> {
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
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| invalid(format!("cannot build the HTTP client: {e}")))?;
        Ok(RegistryClient {
            http,
            base,
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
        let body = serde_json::json!({ "schema": schema });
        let req = self
            .http
            .post(url)
            .header(CONTENT_TYPE, CONTENT_TYPE_V1)
            .body(body.to_string());
        let IdBody { id } = self.send(req, &op).await?;
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
        let SchemaBody { schema } = self.send(self.http.get(url), &op).await?;
        self.by_id
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, schema.clone());
        Ok(schema)
    }

    async fn send<T: for<'de> Deserialize<'de>>(
        &self,
        req: reqwest::RequestBuilder,
        op: &str,
    ) -> Result<T, ClientError> {
        let http_err = |source| ClientError::Http {
            registry: self.display.clone(),
            op: op.to_string(),
            source,
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
            status,
            error_code,
            message,
        })
    }
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

    #[tokio::test]
    async fn connection_refused_is_transient() {
        // A port that was just free: connecting is refused.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let c = RegistryClient::new(&format!("http://127.0.0.1:{port}")).unwrap();
        let e = c.register("s-value", r#""string""#).await.unwrap_err();
        assert!(matches!(e, ClientError::Http { .. }), "{e}");
        assert_eq!(e.class(), ErrorClass::Transient);
        assert!(e.to_string().contains("subject 's-value'"), "{e}");
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
            "http://u:secret@h:8081/registry/subjects/a%2Fb%20c%25%3F%23/versions"
        );
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
