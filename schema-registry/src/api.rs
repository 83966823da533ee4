//! The REST API: axum handlers for the Confluent-compatible endpoints.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde::{Deserialize, Serialize};

use crate::error::{codes, json_response, raw_json_response, ApiError};
use crate::schema::{prepare, PreparedSchema, SchemaType};
use crate::store::{Registry, VersionInfo, VersionSpec};

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

type Reg = State<Arc<Registry>>;
type ApiResult = Result<Response, ApiError>;

/// The registry's HTTP routes.
pub fn router(reg: Arc<Registry>) -> Router {
    Router::new()
        .route("/", get(root))
        .route("/schemas/types", get(schema_types))
        .route("/schemas/ids/{id}", get(schema_by_id))
        .route("/schemas/ids/{id}/schema", get(raw_schema_by_id))
        .route("/schemas/ids/{id}/versions", get(schema_versions))
        .route("/schemas/ids/{id}/subjects", get(schema_subjects))
        .route("/subjects", get(list_subjects))
        .route("/subjects/{subject}", post(lookup))
        .route(
            "/subjects/{subject}/versions",
            get(list_versions).post(register),
        )
        .route("/subjects/{subject}/versions/{version}", get(get_version))
        .route(
            "/subjects/{subject}/versions/{version}/schema",
            get(get_version_schema),
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

async fn schema_types() -> Response {
    let types: Vec<&str> = SchemaType::ALL.iter().map(|t| t.as_str()).collect();
    json_response(StatusCode::OK, &types)
}

// ---------------------------------------------------------------- extraction

fn path<T>(p: Result<Path<T>, PathRejection>) -> Result<T, ApiError> {
    p.map(|Path(v)| v).map_err(|e| {
        ApiError::http(
            StatusCode::BAD_REQUEST,
            format!("invalid request path: {}", e.body_text()),
        )
    })
}

/// Query parameters, parsed by hand so that errors are JSON like every answer.
struct Query(Vec<(String, String)>);

impl Query {
    fn new(raw: Option<String>) -> Self {
        let raw = raw.unwrap_or_default();
        Query(
            url::form_urlencoded::parse(raw.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A boolean parameter: `true`/`false` in any letter case (Python clients
    /// send `False`).
    fn flag(&self, name: &str) -> Result<bool, ApiError> {
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
    fn page<T>(&self, items: Vec<T>) -> Result<Vec<T>, ApiError> {
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

/// The body of a register or lookup request. Fields Confluent defines but this
/// registry does not implement are read so that they can be refused rather
/// than silently dropped; unknown fields are ignored, as Confluent does.
#[derive(Deserialize)]
struct SchemaRequest {
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

fn parse_body(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<SchemaRequest, ApiError> {
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
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                codes::SCHEMA_TOO_LARGE,
                format!(
                    "request body is larger than the {} MiB limit",
                    MAX_BODY_BYTES / (1024 * 1024)
                ),
            )
        } else {
            ApiError::http(
                StatusCode::BAD_REQUEST,
                format!("cannot read the request body: {}", e.body_text()),
            )
        }
    })?;
    let req: SchemaRequest = serde_json::from_slice(&body).map_err(|e| {
        use serde_json::error::Category;
        match e.classify() {
            Category::Syntax | Category::Eof | Category::Io => ApiError::http(
                StatusCode::BAD_REQUEST,
                format!("the request body is not valid JSON: {e}"),
            ),
            Category::Data => ApiError::invalid_schema(format!(
                "the request body is not a schema request ({{\"schema\": \"<schema text>\"}}): {e}"
            )),
        }
    })?;
    Ok(req)
}

/// Validate a register/lookup request into a schema.
fn prepare_request(req: SchemaRequest, normalize: bool) -> Result<PreparedSchema, ApiError> {
    let schema_type = SchemaType::from_request(req.schema_type.as_deref())?;
    if req.references.as_ref().is_some_and(|r| !r.is_empty()) {
        return Err(ApiError::invalid_schema(
            "schema references are not supported by this registry yet; \
             register a self-contained schema (no \"references\")",
        ));
    }
    if req.metadata.as_ref().is_some_and(|m| !m.is_null()) {
        return Err(ApiError::invalid_schema(
            "schema \"metadata\" (data contracts) is not supported by this registry",
        ));
    }
    if req.rule_set.as_ref().is_some_and(|r| !r.is_null()) {
        return Err(ApiError::invalid_schema(
            "schema \"ruleSet\" (data contract rules) is not supported by this registry",
        ));
    }
    // Confluent's Java client sends id -1 and version 0 for "unset".
    if req.id.is_some_and(|id| id >= 0) || req.version.is_some_and(|v| v != 0 && v != -1) {
        return Err(ApiError::operation_not_permitted(
            "registering with an explicit \"id\" or \"version\" needs IMPORT mode, \
             which this registry does not support",
        ));
    }
    let Some(text) = req.schema else {
        return Err(ApiError::invalid_schema(
            "Empty schema: the request body has no \"schema\" field",
        ));
    };
    prepare(schema_type, &text, normalize)
}

/// Run blocking work (schema parsing, fsync) off the async runtime.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(ApiError::internal(format!("internal error: {e}"))))
}

fn check_subject(subject: &str) -> Result<(), ApiError> {
    if subject.is_empty() || subject.chars().any(char::is_control) {
        return Err(ApiError::invalid_subject(subject));
    }
    Ok(())
}

fn parse_id(s: &str) -> Result<u32, ApiError> {
    s.parse::<u32>()
        .ok()
        .filter(|id| *id >= 1)
        .ok_or_else(|| ApiError::schema_id_not_found(s))
}

// ---------------------------------------------------------------- responses

#[derive(Serialize)]
struct RegisteredVersion<'a> {
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

fn version_response(v: &VersionInfo) -> Response {
    json_response(
        StatusCode::OK,
        &RegisteredVersion {
            subject: &v.subject,
            version: v.version,
            id: v.schema.id,
            schema_type: non_default_type(v.schema.schema_type),
            schema: &v.schema.text,
        },
    )
}

#[derive(Serialize)]
struct SubjectVersion<'a> {
    subject: &'a str,
    version: u32,
}

// ---------------------------------------------------------------- handlers

async fn register(
    State(reg): Reg,
    subject: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let subject = path(subject)?;
    let query = Query::new(query);
    let normalize = query.flag("normalize")?;
    check_subject(&subject)?;
    let req = parse_body(&headers, body)?;
    let id = blocking(move || {
        let schema = prepare_request(req, normalize)?;
        reg.register(&subject, &schema)
    })
    .await?;
    Ok(json_response(
        StatusCode::OK,
        &serde_json::json!({ "id": id }),
    ))
}

async fn lookup(
    State(reg): Reg,
    subject: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let subject = path(subject)?;
    let query = Query::new(query);
    let normalize = query.flag("normalize")?;
    // No version is ever deleted yet, so including deleted ones changes nothing.
    query.flag("deleted")?;
    let req = parse_body(&headers, body)?;
    let found = blocking(move || {
        // A subject that does not exist is reported before the schema is parsed.
        reg.versions(&subject)?;
        let schema = prepare_request(req, normalize)?;
        reg.lookup(&subject, &schema.key)
    })
    .await?;
    Ok(version_response(&found))
}

async fn list_subjects(State(reg): Reg, RawQuery(query): RawQuery) -> ApiResult {
    let query = Query::new(query);
    query.flag("deleted")?;
    let prefix = query.get("subjectPrefix").unwrap_or("");
    let subjects = query.page(reg.subjects(prefix))?;
    Ok(json_response(StatusCode::OK, &subjects))
}

async fn list_versions(
    State(reg): Reg,
    subject: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
) -> ApiResult {
    let subject = path(subject)?;
    let query = Query::new(query);
    query.flag("deleted")?;
    let versions = query.page(reg.versions(&subject)?)?;
    Ok(json_response(StatusCode::OK, &versions))
}

fn find_version(
    reg: &Registry,
    params: Result<Path<(String, String)>, PathRejection>,
    query: Option<String>,
) -> Result<VersionInfo, ApiError> {
    let (subject, version) = path(params)?;
    let spec = VersionSpec::parse(&version)?;
    Query::new(query).flag("deleted")?;
    reg.version(&subject, spec)
}

async fn get_version(
    State(reg): Reg,
    params: Result<Path<(String, String)>, PathRejection>,
    RawQuery(query): RawQuery,
) -> ApiResult {
    let v = find_version(&reg, params, query)?;
    Ok(version_response(&v))
}

async fn get_version_schema(
    State(reg): Reg,
    params: Result<Path<(String, String)>, PathRejection>,
    RawQuery(query): RawQuery,
) -> ApiResult {
    let v = find_version(&reg, params, query)?;
    Ok(raw_json_response(StatusCode::OK, v.schema.text.to_string()))
}

async fn schema_by_id(
    State(reg): Reg,
    id: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
) -> ApiResult {
    let id_text = path(id)?;
    let query = Query::new(query);
    let fetch_max_id = query.flag("fetchMaxId")?;
    let id = parse_id(&id_text)?;
    let schema = reg
        .schema(id)
        .ok_or_else(|| ApiError::schema_id_not_found(&id_text))?;
    let mut body = serde_json::Map::new();
    if let Some(t) = non_default_type(schema.schema_type) {
        body.insert("schemaType".into(), t.into());
    }
    body.insert("schema".into(), schema.text.to_string().into());
    if fetch_max_id {
        body.insert("maxId".into(), reg.max_id().into());
    }
    Ok(json_response(StatusCode::OK, &body))
}

async fn raw_schema_by_id(State(reg): Reg, id: Result<Path<String>, PathRejection>) -> ApiResult {
    let id_text = path(id)?;
    let schema = reg
        .schema(parse_id(&id_text)?)
        .ok_or_else(|| ApiError::schema_id_not_found(&id_text))?;
    Ok(raw_json_response(StatusCode::OK, schema.text.to_string()))
}

fn usages(
    reg: &Registry,
    id: Result<Path<String>, PathRejection>,
    query: &Query,
) -> Result<Vec<(String, u32)>, ApiError> {
    let id_text = path(id)?;
    query.flag("deleted")?;
    reg.usages(parse_id(&id_text)?)
        .ok_or_else(|| ApiError::schema_id_not_found(&id_text))
}

async fn schema_versions(
    State(reg): Reg,
    id: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
) -> ApiResult {
    let query = Query::new(query);
    let usages = query.page(usages(&reg, id, &query)?)?;
    let body: Vec<SubjectVersion<'_>> = usages
        .iter()
        .map(|(subject, version)| SubjectVersion {
            subject,
            version: *version,
        })
        .collect();
    Ok(json_response(StatusCode::OK, &body))
}

async fn schema_subjects(
    State(reg): Reg,
    id: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
) -> ApiResult {
    let query = Query::new(query);
    let mut subjects: Vec<String> = usages(&reg, id, &query)?
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    subjects.dedup();
    let subjects = query.page(subjects)?;
    Ok(json_response(StatusCode::OK, &subjects))
}
