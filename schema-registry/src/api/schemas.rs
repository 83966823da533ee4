//! `/schemas/...`: schemas by id, and the list of all schemas.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use serde::Serialize;

use crate::error::{json_response, raw_json_response, ApiError};
use crate::store::Registry;

use super::request::{parse_id, path, Query};
use super::{non_default_type, ApiResult, Reg, VersionBody};

pub(super) async fn by_id(
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

pub(super) async fn raw_by_id(
    State(reg): Reg,
    id: Result<Path<String>, PathRejection>,
) -> ApiResult {
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
    let include_deleted = query.flag("deleted")?;
    reg.usages(parse_id(&id_text)?, include_deleted)
        .ok_or_else(|| ApiError::schema_id_not_found(&id_text))
}

#[derive(Serialize)]
struct SubjectVersion<'a> {
    subject: &'a str,
    version: u32,
}

pub(super) async fn versions(
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

pub(super) async fn subjects(
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

/// `GET /schemas`: every version of every subject (`subjectPrefix`,
/// `deleted`, `latestOnly`, `offset`, `limit`).
pub(super) async fn list(State(reg): Reg, RawQuery(query): RawQuery) -> ApiResult {
    let query = Query::new(query);
    let prefix = query.get("subjectPrefix").unwrap_or("");
    let versions = reg.list_versions(prefix, query.flag("deleted")?, query.flag("latestOnly")?);
    let versions = query.page(versions)?;
    let body: Vec<VersionBody<'_>> = versions.iter().map(VersionBody::from).collect();
    Ok(json_response(StatusCode::OK, &body))
}
