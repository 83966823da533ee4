//! `/subjects/...`: registration, lookup, versions and deletes.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::json;

use crate::error::{json_response, raw_json_response, ApiError};
use crate::store::{Deleted, Registry, VersionInfo, VersionSpec};

use super::request::{blocking, check_subject, path, schema_body, Query};
use super::{version_response, ApiResult, Reg};

pub(super) async fn register(
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
    let req = schema_body(&headers, body)?;
    let explicit = req.explicit()?;
    let id = blocking(move || {
        let schema = req.prepare(normalize)?;
        reg.register_with(&subject, &schema, explicit)
    })
    .await?;
    Ok(json_response(StatusCode::OK, &json!({ "id": id })))
}

pub(super) async fn lookup(
    State(reg): Reg,
    subject: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let subject = path(subject)?;
    let query = Query::new(query);
    let normalize = query.flag("normalize")?;
    let include_deleted = query.flag("deleted")?;
    let req = schema_body(&headers, body)?;
    let found = blocking(move || {
        // A subject that does not exist is reported before the schema is parsed.
        let filter = if include_deleted {
            Deleted::Include
        } else {
            Deleted::Exclude
        };
        reg.versions(&subject, filter)?;
        let schema = req.prepare(normalize)?;
        reg.lookup(&subject, &schema.key, include_deleted)
    })
    .await?;
    Ok(version_response(&found))
}

pub(super) async fn list(State(reg): Reg, RawQuery(query): RawQuery) -> ApiResult {
    let query = Query::new(query);
    let deleted = query.deleted()?;
    // Confluent's parameter, and the one the Python client sends.
    let prefix = query
        .get("subjectPrefix")
        .or_else(|| query.get("subject"))
        .unwrap_or("");
    let subjects = query.page(reg.subjects(prefix, deleted))?;
    Ok(json_response(StatusCode::OK, &subjects))
}

pub(super) async fn versions(
    State(reg): Reg,
    subject: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
) -> ApiResult {
    let subject = path(subject)?;
    let query = Query::new(query);
    let versions = query.page(reg.versions(&subject, query.deleted()?)?)?;
    Ok(json_response(StatusCode::OK, &versions))
}

fn find_version(
    reg: &Registry,
    params: Result<Path<(String, String)>, PathRejection>,
    query: Option<String>,
) -> Result<VersionInfo, ApiError> {
    let (subject, version) = path(params)?;
    let spec = VersionSpec::parse(&version)?;
    let include_deleted = Query::new(query).flag("deleted")?;
    reg.version(&subject, spec, include_deleted)
}

pub(super) async fn version(
    State(reg): Reg,
    params: Result<Path<(String, String)>, PathRejection>,
    RawQuery(query): RawQuery,
) -> ApiResult {
    let v = find_version(&reg, params, query)?;
    Ok(version_response(&v))
}

pub(super) async fn version_schema(
    State(reg): Reg,
    params: Result<Path<(String, String)>, PathRejection>,
    RawQuery(query): RawQuery,
) -> ApiResult {
    let v = find_version(&reg, params, query)?;
    Ok(raw_json_response(StatusCode::OK, v.schema.text.to_string()))
}

/// Schema references are not supported, so nothing references a version.
pub(super) async fn referenced_by(
    State(reg): Reg,
    params: Result<Path<(String, String)>, PathRejection>,
    RawQuery(query): RawQuery,
) -> ApiResult {
    find_version(&reg, params, query)?;
    Ok(json_response(StatusCode::OK, &Vec::<u32>::new()))
}

/// `GET /subjects/{s}/metadata`: the latest version whose metadata has the
/// requested `key`/`value` pairs. Schemas here never carry metadata, so that
/// is the latest version when no pair is requested, and none otherwise.
pub(super) async fn metadata(
    State(reg): Reg,
    subject: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
) -> ApiResult {
    let subject = path(subject)?;
    let query = Query::new(query);
    let include_deleted = query.flag("deleted")?;
    let v = reg.version(&subject, VersionSpec::Latest, include_deleted)?;
    if query.get("key").is_some() {
        return Err(ApiError::schema_not_found());
    }
    Ok(version_response(&v))
}

pub(super) async fn delete(
    State(reg): Reg,
    subject: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
) -> ApiResult {
    let subject = path(subject)?;
    let permanent = Query::new(query).flag("permanent")?;
    let versions = blocking(move || reg.delete_subject(&subject, permanent)).await?;
    Ok(json_response(StatusCode::OK, &versions))
}

pub(super) async fn delete_version(
    State(reg): Reg,
    params: Result<Path<(String, String)>, PathRejection>,
    RawQuery(query): RawQuery,
) -> ApiResult {
    let (subject, version) = path(params)?;
    let spec = VersionSpec::parse(&version)?;
    let permanent = Query::new(query).flag("permanent")?;
    let version = blocking(move || reg.delete_version(&subject, spec, permanent)).await?;
    Ok(json_response(StatusCode::OK, &version))
}
