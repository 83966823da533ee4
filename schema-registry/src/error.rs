//! Error types of the registry server: [`RegistryError`] for storage (opening
//! the directory or topic, writing records) and [`ApiError`], the
//! Confluent-style `{"error_code": N, "message": "..."}` answer of the REST API.

use std::path::PathBuf;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// The media type every response carries, as Confluent's registry answers.
pub const CONTENT_TYPE_V1: &str = "application/vnd.schemaregistry.v1+json";

/// Confluent's error codes (`io.confluent.kafka.schemaregistry.rest.exceptions.Errors`).
pub mod codes {
    pub const SUBJECT_NOT_FOUND: u32 = 40401;
    pub const VERSION_NOT_FOUND: u32 = 40402;
    pub const SCHEMA_NOT_FOUND: u32 = 40403;
    pub const SUBJECT_SOFT_DELETED: u32 = 40404;
    pub const SUBJECT_NOT_SOFT_DELETED: u32 = 40405;
    pub const VERSION_SOFT_DELETED: u32 = 40406;
    pub const VERSION_NOT_SOFT_DELETED: u32 = 40407;
    pub const SUBJECT_COMPATIBILITY_NOT_CONFIGURED: u32 = 40408;
    pub const SUBJECT_MODE_NOT_CONFIGURED: u32 = 40409;
    pub const INCOMPATIBLE_SCHEMA: u32 = 40901;
    pub const INVALID_SCHEMA: u32 = 42201;
    pub const INVALID_VERSION: u32 = 42202;
    pub const INVALID_COMPATIBILITY_LEVEL: u32 = 42203;
    pub const INVALID_MODE: u32 = 42204;
    pub const OPERATION_NOT_PERMITTED: u32 = 42205;
    pub const ID_DOES_NOT_MATCH: u32 = 42207;
    pub const INVALID_SUBJECT: u32 = 42208;
    pub const SCHEMA_TOO_LARGE: u32 = 42209;
    pub const STORE_ERROR: u32 = 50001;
    pub const OPERATION_TIMEOUT: u32 = 50002;
}

/// Failure to open or write the registry's storage (directory or Kafka topic).
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("schema registry storage: {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("schema registry storage: file {path} is corrupt: {detail}; restore it from a backup or remove it (ids it held are then lost)")]
    Corrupt { path: PathBuf, detail: String },
    #[error("schema registry storage: {0}")]
    Exhausted(String),
    /// A Kafka operation failed.
    #[error("schema registry storage: Kafka topic '{topic}': {action}: {detail}")]
    Kafka {
        topic: String,
        action: String,
        detail: String,
    },
    /// Another registry instance took over the storage: this one only serves
    /// reads from now on.
    #[error("schema registry storage: this registry instance no longer accepts writes: {0}")]
    Fenced(String),
    /// The storage did not answer in time; the write may or may not have happened.
    #[error("schema registry storage: timed out: {0}")]
    Timeout(String),
    /// The write was stored, but a conflicting write by another registry
    /// instance came first and won.
    #[error("schema registry storage: {0}")]
    Conflict(String),
}

impl RegistryError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| RegistryError::Io {
            action,
            path,
            source,
        }
    }
}

/// An error answer of the REST API: HTTP status plus Confluent error code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: u32,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: u32, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn not_found(code: u32, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    pub fn unprocessable(code: u32, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    pub fn subject_not_found(subject: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            codes::SUBJECT_NOT_FOUND,
            format!("Subject '{subject}' not found."),
        )
    }

    pub fn version_not_found(version: u32) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            codes::VERSION_NOT_FOUND,
            format!("Version {version} not found."),
        )
    }

    pub fn schema_id_not_found(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            codes::SCHEMA_NOT_FOUND,
            format!("Schema {id} not found"),
        )
    }

    pub fn schema_not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            codes::SCHEMA_NOT_FOUND,
            "Schema not found",
        )
    }

    pub fn invalid_schema(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            codes::INVALID_SCHEMA,
            message,
        )
    }

    pub fn invalid_version(version: &str) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            codes::INVALID_VERSION,
            format!(
                "The specified version '{version}' is not a valid version id. \
                 Allowed values are between [1, 2^31-1] and the string \"latest\""
            ),
        )
    }

    pub fn invalid_subject(subject: &str) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            codes::INVALID_SUBJECT,
            format!(
                "The specified subject '{}' is not valid: a subject must be non-empty \
                 and contain no control characters",
                subject.escape_debug()
            ),
        )
    }

    pub fn operation_not_permitted(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            codes::OPERATION_NOT_PERMITTED,
            message,
        )
    }

    /// A generic HTTP-level error; like Confluent, the error code is the status.
    pub fn http(status: StatusCode, message: impl Into<String>) -> Self {
        Self::new(status, u32::from(status.as_u16()), message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            codes::STORE_ERROR,
            message,
        )
    }
}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> Self {
        match e {
            RegistryError::Timeout(_) => Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                codes::OPERATION_TIMEOUT,
                format!("Error while writing to the schema registry storage: {e}"),
            ),
            e => ApiError::internal(format!(
                "Error while writing to the schema registry storage: {e}"
            )),
        }
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error_code: u32,
    message: &'a str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(error_code = self.code, message = %self.message, "schema registry request failed");
        }
        json_response(
            self.status,
            &ErrorBody {
                error_code: self.code,
                message: &self.message,
            },
        )
    }
}

/// Serialize `body` as the response, with the registry's media type.
pub fn json_response<T: Serialize + ?Sized>(status: StatusCode, body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => raw_json_response(status, bytes),
        // Serializing plain structs, strings and numbers cannot fail; answer
        // something sane all the same rather than panic.
        Err(e) => raw_json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!(
                "{{\"error_code\":50001,\"message\":{}}}",
                serde_json::Value::String(format!("cannot serialize the response: {e}"))
            )
            .into_bytes(),
        ),
    }
}

/// A response whose body is already JSON text (e.g. a stored schema).
pub fn raw_json_response(status: StatusCode, body: impl Into<axum::body::Body>) -> Response {
    let mut resp = (status, body.into()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(CONTENT_TYPE_V1),
    );
    resp
}
