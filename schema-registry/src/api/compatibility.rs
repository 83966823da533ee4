//! `/compatibility/subjects/{s}/versions[/{v}]`: would a schema be accepted?

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::json;

use crate::store::VersionSpec;

use super::request::{blocking, path, schema_body, Query};
use super::{ApiResult, Reg};

fn answer(messages: Vec<String>, verbose: bool) -> Response {
    let is_compatible = messages.is_empty();
    let body = if verbose {
        json!({ "is_compatible": is_compatible, "messages": messages })
    } else {
        json!({ "is_compatible": is_compatible })
    };
    crate::error::json_response(StatusCode::OK, &body)
}

/// Against one version (`latest`/`-1` or a number); `latest` of a subject
/// without versions is compatible, a missing numbered version is 40401/40402.
pub(super) async fn against_version(
    State(reg): Reg,
    params: Result<Path<(String, String)>, PathRejection>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let (subject, version) = path(params)?;
    let spec = VersionSpec::parse(&version)?;
    let query = Query::new(query);
    let normalize = query.flag("normalize")?;
    let verbose = query.flag("verbose")?;
    let req = schema_body(&headers, body)?;
    let messages = blocking(move || {
        if let VersionSpec::Number(_) = spec {
            // Report a missing subject or version before parsing the schema.
            reg.version(&subject, spec, false)?;
        }
        let schema = req.prepare(normalize)?;
        reg.test_compatibility(&subject, Some(spec), &schema)
    })
    .await?;
    Ok(answer(messages, verbose))
}

/// Against the versions the subject's level covers (the latest, or all for a
/// transitive level); a subject without versions is compatible.
pub(super) async fn against_all(
    State(reg): Reg,
    subject: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let subject = path(subject)?;
    let query = Query::new(query);
    let normalize = query.flag("normalize")?;
    let verbose = query.flag("verbose")?;
    let req = schema_body(&headers, body)?;
    let messages = blocking(move || {
        let schema = req.prepare(normalize)?;
        reg.test_compatibility(&subject, None, &schema)
    })
    .await?;
    Ok(answer(messages, verbose))
}
