//! Request parsing shared by the handlers: path segments, query parameters
//! and JSON bodies, with errors in the registry's JSON shape.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::Path;
use axum::http::{header, HeaderMap, StatusCode};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::error::{codes, ApiError};
use crate::schema::{prepare, PreparedSchema, SchemaType};
use crate::store::{Deleted, Explicit, MAX_ID};

use super::MAX_BODY_BYTES;

pub(super) fn path<T>(p: Result<Path<T>, PathRejection>) -> Result<T, ApiError> {
    p.map(|Path(v)| v).map_err(|e| {
        ApiError::http(
            StatusCode::BAD_REQUEST,
            format!("invalid request path: {}", e.body_text()),
        )
    })
}

/// Query parameters, parsed by hand so that errors are JSON like every answer.
pub(super) struct Query(Vec<(String, String)>);

impl Query {
    pub fn new(raw: Option<String>) -> Self {
        let raw = raw.unwrap_or_default();
        Query(
            url::form_urlencoded::parse(raw.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A boolean parameter: `true`/`false` in any letter case (Python clients
    /// send `False`).
    pub fn flag(&self, name: &str) -> Result<bool, ApiError> {
        match self.get(name) {
            None => Ok(false),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(v) => Err(ApiError::http(
                StatusCode::BAD_REQUEST,
                format!(
                    "query parameter '{name}' must be true or false, not '{}'",
                    v.escape_debug()
                ),
            )),
        }
    }

    /// `deleted`, `deletedOnly` (Confluent) / `deleted_only` (Python client).
    pub fn deleted(&self) -> Result<Deleted, ApiError> {
        let include = self.flag("deleted")?;
        let only = self.flag("deletedOnly")? || self.flag("deleted_only")?;
        Ok(if only {
            Deleted::Only
        } else if include {
            Deleted::Include
        } else {
            Deleted::Exclude
        })
    }

    fn int(&self, name: &str, default: i64) -> Result<i64, ApiError> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v.trim().parse().map_err(|_| {
                ApiError::http(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "query parameter '{name}' must be an integer, not '{}'",
                        v.escape_debug()
                    ),
                )
            }),
        }
    }

    /// Apply Confluent's `offset` / `limit` paging (`limit` -1 or absent: all).
    pub fn page<T>(&self, items: Vec<T>) -> Result<Vec<T>, ApiError> {
        let offset = self.int("offset", 0)?;
        let limit = self.int("limit", -1)?;
        if offset < 0 {
            return Err(ApiError::http(
                StatusCode::BAD_REQUEST,
                "query parameter 'offset' must not be negative",
            ));
        }
        let offset = usize::try_from(offset).unwrap_or(usize::MAX);
        let limit = if limit < 0 {
            usize::MAX
        } else {
            usize::try_from(limit).unwrap_or(usize::MAX)
        };
        Ok(items.into_iter().skip(offset).take(limit).collect())
    }
}

const ACCEPTED_CONTENT_TYPES: &[&str] = &[
    "application/vnd.schemaregistry.v1+json",
    "application/vnd.schemaregistry+json",
    "application/json",
    "application/octet-stream",
];

/// Check the Content-Type and the size of a request body. An oversized body
/// is HTTP 413 with Confluent's error code 42209 (`SCHEMA_TOO_LARGE`), on every
/// endpoint that takes a body.
pub(super) fn body_bytes(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Bytes, ApiError> {
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or("");
        let essence = ct.split(';').next().unwrap_or("").trim();
        if !ACCEPTED_CONTENT_TYPES
            .iter()
            .any(|a| a.eq_ignore_ascii_case(essence))
        {
            return Err(ApiError::http(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "unsupported Content-Type '{}'; send application/vnd.schemaregistry.v1+json",
                    ct.escape_debug()
                ),
            ));
        }
    }
    body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError {
                status: StatusCode::PAYLOAD_TOO_LARGE,
                code: codes::SCHEMA_TOO_LARGE,
                message: format!(
                    "request body is larger than the {} MiB limit",
                    MAX_BODY_BYTES / (1024 * 1024)
                ),
            }
        } else {
            ApiError::http(
                StatusCode::BAD_REQUEST,
                format!("cannot read the request body: {}", e.body_text()),
            )
        }
    })
}

/// Parse a JSON body; a body of the wrong shape is `invalid(message)`.
pub(super) fn json_body<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    invalid: impl FnOnce(String) -> ApiError,
) -> Result<T, ApiError> {
    let body = body_bytes(headers, body)?;
    serde_json::from_slice(&body).map_err(|e| {
        use serde_json::error::Category;
        match e.classify() {
            Category::Syntax | Category::Eof | Category::Io => ApiError::http(
                StatusCode::BAD_REQUEST,
                format!("the request body is not valid JSON: {e}"),
            ),
            Category::Data => invalid(e.to_string()),
        }
    })
}

/// The body of a register, lookup or compatibility request. Fields Confluent
/// defines but this registry does not implement are read so that they can be
/// refused rather than silently dropped; unknown fields are ignored, as
/// Confluent does.
#[derive(Deserialize)]
pub(super) struct SchemaRequest {
    schema: Option<String>,
    #[serde(rename = "schemaType")]
    schema_type: Option<String>,
    references: Option<Vec<serde_json::Value>>,
    metadata: Option<serde_json::Value>,
    #[serde(rename = "ruleSet")]
    rule_set: Option<serde_json::Value>,
    id: Option<i64>,
    version: Option<i64>,
}

pub(super) fn schema_body(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<SchemaRequest, ApiError> {
    json_body(headers, body, |e| {
        ApiError::invalid_schema(format!(
            "the request body is not a schema request ({{\"schema\": \"<schema text>\"}}): {e}"
        ))
    })
}

impl SchemaRequest {
    /// The explicit id and version (IMPORT mode). Confluent's Java client
    /// sends id -1 and version 0 for "unset".
    pub fn explicit(&self) -> Result<Explicit, ApiError> {
        let id = match self.id {
            None => None,
            Some(id) if id < 0 => None,
            Some(id) if (1..=i64::from(MAX_ID)).contains(&id) => Some(id as u32),
            Some(id) => {
                return Err(ApiError::invalid_schema(format!(
                    "invalid schema id {id}: ids are between 1 and 2^31-1"
                )))
            }
        };
        let version = match self.version {
            None => None,
            Some(v) if v <= 0 => None,
            Some(v) if v <= i64::from(MAX_ID) => Some(v as u32),
            Some(v) => return Err(ApiError::invalid_version(&v.to_string())),
        };
        Ok(Explicit { id, version })
    }

    /// Validate the schema of the request.
    pub fn prepare(self, normalize: bool) -> Result<PreparedSchema, ApiError> {
        let schema_type = SchemaType::from_request(self.schema_type.as_deref())?;
        if self.references.as_ref().is_some_and(|r| !r.is_empty()) {
            return Err(ApiError::invalid_schema(
                "schema references are not supported by this registry yet; \
                 register a self-contained schema (no \"references\")",
            ));
        }
        if self.metadata.as_ref().is_some_and(|m| !m.is_null()) {
            return Err(ApiError::invalid_schema(
                "schema \"metadata\" (data contracts) is not supported by this registry",
            ));
        }
        if self.rule_set.as_ref().is_some_and(|r| !r.is_null()) {
            return Err(ApiError::invalid_schema(
                "schema \"ruleSet\" (data contract rules) is not supported by this registry",
            ));
        }
        let Some(text) = self.schema else {
            return Err(ApiError::invalid_schema(
                "Empty schema: the request body has no \"schema\" field",
            ));
        };
        prepare(schema_type, &text, normalize)
    }
}

/// Run blocking work (schema parsing, compatibility checks, storage writes)
/// off the async runtime.
pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(ApiError::internal(format!("internal error: {e}"))))
}

pub(super) fn check_subject(subject: &str) -> Result<(), ApiError> {
    if subject.is_empty() || subject.chars().any(char::is_control) {
        return Err(ApiError::invalid_subject(subject));
    }
    Ok(())
}

pub(super) fn parse_id(s: &str) -> Result<u32, ApiError> {
    s.parse::<u32>()
        .ok()
        .filter(|id| (1..=MAX_ID).contains(id))
        .ok_or_else(|| ApiError::schema_id_not_found(s))
}
