//! `/config` (compatibility levels) and `/mode`, global and per subject.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::compat::CompatibilityLevel;
use crate::error::{codes, json_response, ApiError};
use crate::mode::Mode;

use super::request::{blocking, check_subject, json_body, path, Query};
use super::{ApiResult, Reg};

fn invalid_level(detail: &str) -> ApiError {
    ApiError::unprocessable(
        codes::INVALID_COMPATIBILITY_LEVEL,
        format!(
            "Invalid compatibility level. Valid values are none, backward, forward, full, \
             backward_transitive, forward_transitive, and full_transitive{detail}"
        ),
    )
}

fn invalid_mode(detail: &str) -> ApiError {
    ApiError::unprocessable(
        codes::INVALID_MODE,
        format!(
            "Invalid mode. Valid values are READWRITE, READONLY, READONLY_OVERRIDE and IMPORT{detail}"
        ),
    )
}

/// `PUT /config` body. Confluent's further settings (metadata, rule sets,
/// aliases, normalization) are not supported and refused when set.
#[derive(Deserialize)]
struct ConfigRequest {
    compatibility: Option<String>,
    #[serde(rename = "compatibilityLevel")]
    compatibility_level: Option<String>,
    normalize: Option<bool>,
    #[serde(rename = "validateFields")]
    validate_fields: Option<bool>,
    alias: Option<Value>,
    #[serde(rename = "compatibilityGroup")]
    compatibility_group: Option<Value>,
    #[serde(rename = "defaultMetadata")]
    default_metadata: Option<Value>,
    #[serde(rename = "overrideMetadata")]
    override_metadata: Option<Value>,
    #[serde(rename = "defaultRuleSet")]
    default_rule_set: Option<Value>,
    #[serde(rename = "overrideRuleSet")]
    override_rule_set: Option<Value>,
}

fn level_from_body(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<CompatibilityLevel, ApiError> {
    let req: ConfigRequest = json_body(headers, body, |e| invalid_level(&format!(": {e}")))?;
    let unsupported = [
        ("normalize", req.normalize == Some(true)),
        ("validateFields", req.validate_fields == Some(true)),
        ("alias", req.alias.as_ref().is_some_and(|v| !v.is_null())),
        (
            "compatibilityGroup",
            req.compatibility_group
                .as_ref()
                .is_some_and(|v| !v.is_null()),
        ),
        (
            "defaultMetadata",
            req.default_metadata.as_ref().is_some_and(|v| !v.is_null()),
        ),
        (
            "overrideMetadata",
            req.override_metadata.as_ref().is_some_and(|v| !v.is_null()),
        ),
        (
            "defaultRuleSet",
            req.default_rule_set.as_ref().is_some_and(|v| !v.is_null()),
        ),
        (
            "overrideRuleSet",
            req.override_rule_set.as_ref().is_some_and(|v| !v.is_null()),
        ),
    ];
    if let Some((name, _)) = unsupported.iter().find(|(_, set)| *set) {
        return Err(invalid_level(&format!(
            "; the config setting \"{name}\" is not supported by this registry"
        )));
    }
    let Some(text) = req.compatibility.or(req.compatibility_level) else {
        return Err(invalid_level(
            "; the request body has no \"compatibility\" field",
        ));
    };
    CompatibilityLevel::parse(text.trim())
        .ok_or_else(|| invalid_level(&format!("; got '{}'", text.escape_debug())))
}

fn level_body(level: CompatibilityLevel) -> axum::response::Response {
    json_response(
        StatusCode::OK,
        &json!({ "compatibilityLevel": level.as_str() }),
    )
}

pub(super) async fn get_global(State(reg): Reg) -> ApiResult {
    Ok(level_body(reg.global_level()))
}

pub(super) async fn put_global(
    State(reg): Reg,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let level = level_from_body(&headers, body)?;
    blocking(move || reg.set_level(None, level)).await?;
    Ok(json_response(
        StatusCode::OK,
        &json!({ "compatibility": level.as_str() }),
    ))
}

pub(super) async fn delete_global(State(reg): Reg) -> ApiResult {
    let old = blocking(move || reg.delete_level(None)).await?;
    Ok(level_body(old))
}

pub(super) async fn get_subject(
    State(reg): Reg,
    subject: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
) -> ApiResult {
    let subject = path(subject)?;
    let default_to_global = Query::new(query).flag("defaultToGlobal")?;
    let level = match reg.subject_level(&subject) {
        Ok(level) => level,
        Err(_) if default_to_global => reg.global_level(),
        Err(e) => return Err(e),
    };
    Ok(level_body(level))
}

pub(super) async fn put_subject(
    State(reg): Reg,
    subject: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let subject = path(subject)?;
    check_subject(&subject)?;
    let level = level_from_body(&headers, body)?;
    blocking(move || reg.set_level(Some(&subject), level)).await?;
    Ok(json_response(
        StatusCode::OK,
        &json!({ "compatibility": level.as_str() }),
    ))
}

pub(super) async fn delete_subject(
    State(reg): Reg,
    subject: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let subject = path(subject)?;
    let old = blocking(move || reg.delete_level(Some(&subject))).await?;
    Ok(level_body(old))
}

// ---------------------------------------------------------------- mode

#[derive(Deserialize)]
struct ModeRequest {
    mode: Option<String>,
}

fn mode_from_body(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Mode, ApiError> {
    let req: ModeRequest = json_body(headers, body, |e| invalid_mode(&format!(": {e}")))?;
    let Some(text) = req.mode else {
        return Err(invalid_mode("; the request body has no \"mode\" field"));
    };
    Mode::parse(&text).ok_or_else(|| invalid_mode(&format!("; got '{}'", text.escape_debug())))
}

fn mode_body(mode: Mode) -> axum::response::Response {
    json_response(StatusCode::OK, &json!({ "mode": mode.as_str() }))
}

pub(super) async fn get_global_mode(State(reg): Reg) -> ApiResult {
    Ok(mode_body(reg.global_mode()))
}

pub(super) async fn put_global_mode(
    State(reg): Reg,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let force = Query::new(query).flag("force")?;
    let mode = mode_from_body(&headers, body)?;
    blocking(move || reg.set_mode(None, mode, force)).await?;
    Ok(mode_body(mode))
}

pub(super) async fn get_subject_mode(
    State(reg): Reg,
    subject: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
) -> ApiResult {
    let subject = path(subject)?;
    let default_to_global = Query::new(query).flag("defaultToGlobal")?;
    let mode = match reg.subject_mode(&subject) {
        Ok(mode) => mode,
        Err(_) if default_to_global => reg.global_mode(),
        Err(e) => return Err(e),
    };
    Ok(mode_body(mode))
}

pub(super) async fn put_subject_mode(
    State(reg): Reg,
    subject: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let subject = path(subject)?;
    check_subject(&subject)?;
    let force = Query::new(query).flag("force")?;
    let mode = mode_from_body(&headers, body)?;
    blocking(move || reg.set_mode(Some(&subject), mode, force)).await?;
    Ok(mode_body(mode))
}

pub(super) async fn delete_subject_mode(
    State(reg): Reg,
    subject: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let subject = path(subject)?;
    let old = blocking(move || reg.delete_mode(&subject)).await?;
    Ok(mode_body(old))
}
