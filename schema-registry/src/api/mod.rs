//! The REST API: axum handlers for the Confluent-compatible endpoints, by
//! area: subjects (and their versions), schemas by id, config (compatibility
//! levels) and mode, compatibility tests.

mod compatibility;
mod config;
mod request;
mod schemas;
mod subjects;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde::Serialize;

use crate::error::{json_response, ApiError};
use crate::schema::SchemaType;
use crate::store::{Registry, VersionInfo};

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

type Reg = State<Arc<Registry>>;
type ApiResult = Result<Response, ApiError>;

/// The registry's HTTP routes, requiring basic authentication when `auth` is set.
pub fn router_with_auth(
    reg: Arc<Registry>,
    auth: Option<crate::security::BasicAuth>,
    observer: Option<crate::Observer>,
) -> Router {
    let mut app = router(reg);
    if let Some(obs) = observer {
        // A route layer: runs for matched routes, where the template is known.
        app = app.route_layer(axum::middleware::from_fn_with_state(obs, observe));
    }
    match auth {
        None => app,
        Some(auth) => app.layer(axum::middleware::from_fn_with_state(
            auth,
            crate::security::require_basic_auth,
        )),
    }
}

async fn observe(
    axum::extract::State(obs): axum::extract::State<crate::Observer>,
    matched: Option<axum::extract::MatchedPath>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let route = matched.map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string());
    let method = req.method().clone();
    let started = std::time::Instant::now();
    let resp = next.run(req).await;
    obs(
        &route,
        method.as_str(),
        resp.status().as_u16(),
        started.elapsed(),
    );
    resp
}

/// The registry's HTTP routes.
pub fn router(reg: Arc<Registry>) -> Router {
    Router::new()
        .route("/", get(root))
        .route("/contexts", get(contexts))
        .route("/schemas", get(schemas::list))
        .route("/schemas/types", get(schema_types))
        .route("/schemas/ids/{id}", get(schemas::by_id))
        .route("/schemas/ids/{id}/schema", get(schemas::raw_by_id))
        .route("/schemas/ids/{id}/versions", get(schemas::versions))
        .route("/schemas/ids/{id}/subjects", get(schemas::subjects))
        .route("/subjects", get(subjects::list))
        .route(
            "/subjects/{subject}",
            post(subjects::lookup).delete(subjects::delete),
        )
        .route(
            "/subjects/{subject}/versions",
            get(subjects::versions).post(subjects::register),
        )
        .route(
            "/subjects/{subject}/versions/{version}",
            get(subjects::version).delete(subjects::delete_version),
        )
        .route(
            "/subjects/{subject}/versions/{version}/schema",
            get(subjects::version_schema),
        )
        .route(
            "/subjects/{subject}/versions/{version}/referencedby",
            get(subjects::referenced_by),
        )
        .route("/subjects/{subject}/metadata", get(subjects::metadata))
        .route(
            "/config",
            get(config::get_global)
                .put(config::put_global)
                .delete(config::delete_global),
        )
        .route(
            "/config/{subject}",
            get(config::get_subject)
                .put(config::put_subject)
                .delete(config::delete_subject),
        )
        .route(
            "/mode",
            get(config::get_global_mode).put(config::put_global_mode),
        )
        .route(
            "/mode/{subject}",
            get(config::get_subject_mode)
                .put(config::put_subject_mode)
                .delete(config::delete_subject_mode),
        )
        .route(
            "/compatibility/subjects/{subject}/versions",
            post(compatibility::against_all),
        )
        .route(
            "/compatibility/subjects/{subject}/versions/{version}",
            post(compatibility::against_version),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(reg)
}

async fn not_found() -> ApiError {
    ApiError::http(StatusCode::NOT_FOUND, "HTTP 404 Not Found")
}

async fn method_not_allowed() -> ApiError {
    ApiError::http(
        StatusCode::METHOD_NOT_ALLOWED,
        "HTTP 405 Method Not Allowed",
    )
}

async fn root() -> Response {
    json_response(StatusCode::OK, &serde_json::json!({}))
}

/// Schema contexts are not supported: only the default one, as Confluent
/// lists it.
async fn contexts() -> Response {
    json_response(StatusCode::OK, &["."])
}

async fn schema_types() -> Response {
    let types: Vec<&str> = SchemaType::ALL.iter().map(|t| t.as_str()).collect();
    json_response(StatusCode::OK, &types)
}

// ---------------------------------------------------------------- responses

#[derive(Serialize)]
struct VersionBody<'a> {
    subject: &'a str,
    version: u32,
    id: u32,
    #[serde(rename = "schemaType", skip_serializing_if = "Option::is_none")]
    schema_type: Option<&'static str>,
    schema: &'a str,
}

/// Confluent omits `schemaType` for AVRO, the default.
fn non_default_type(t: SchemaType) -> Option<&'static str> {
    match t {
        SchemaType::Avro => None,
    }
}

impl<'a> From<&'a VersionInfo> for VersionBody<'a> {
    fn from(v: &'a VersionInfo) -> Self {
        VersionBody {
            subject: &v.subject,
            version: v.version,
            id: v.schema.id,
            schema_type: non_default_type(v.schema.schema_type),
            schema: &v.schema.text,
        }
    }
}

fn version_response(v: &VersionInfo) -> Response {
    json_response(StatusCode::OK, &VersionBody::from(v))
}
