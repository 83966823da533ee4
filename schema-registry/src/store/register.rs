//! Registration (with its compatibility check and IMPORT mode) and the
//! compatibility test, which shares the check.

use std::sync::Arc;

use crate::compat::{self, CompatibilityLevel};
use crate::error::{codes, ApiError, RegistryError};
use crate::mode::Mode;
use crate::schema::PreparedSchema;

use super::record::{Record, VersionValue};
use super::state::State;
use super::write::{not_permitted, read_only};
use super::{Registry, VersionSpec, MAX_ID};

/// An explicit id and/or version in a registration (IMPORT mode).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Explicit {
    pub id: Option<u32>,
    pub version: Option<u32>,
}

/// Run the compatibility checker on `new` against `previous` (version and
/// text, oldest first). Returns Confluent's messages, empty when compatible:
/// the checker's, with `{oldSchemaVersion: N}` before each `{oldSchema: ...}`
/// and `{validateFields: 'false', compatibility: 'LEVEL'}` at the end.
pub(crate) fn check_compatibility(
    level: CompatibilityLevel,
    new: &str,
    previous: &[(u32, Arc<str>)],
) -> Result<Vec<String>, ApiError> {
    let texts: Vec<&str> = previous.iter().map(|(_, s)| &**s).collect();
    // Never let a bug in the checker take the request down.
    let messages = match std::panic::catch_unwind(|| compat::check(level, new, &texts)) {
        Ok(Ok(messages)) => messages,
        Ok(Err(e)) => return Err(ApiError::invalid_schema(format!("Invalid schema: {e}"))),
        Err(_) => {
            return Err(ApiError::internal(
                "the compatibility checker failed on this schema",
            ))
        }
    };
    if messages.is_empty() {
        return Ok(messages);
    }
    let mut out = Vec::with_capacity(messages.len() + 2);
    for m in messages {
        if let Some((v, _)) = previous
            .iter()
            .rev()
            .find(|(_, text)| m == format!("{{oldSchema: '{text}'}}"))
        {
            out.push(format!("{{oldSchemaVersion: {v}}}"));
        }
        out.push(m);
    }
    out.push(format!(
        "{{validateFields: 'false', compatibility: '{}'}}",
        level.as_str()
    ));
    Ok(out)
}

/// The live versions of `subject` with their texts, oldest first.
fn live_texts(st: &State, subject: &str) -> Vec<(u32, Arc<str>)> {
    st.subjects
        .get(subject)
        .map(|s| {
            s.live()
                .filter_map(|(v, e)| st.schemas.get(&e.id).map(|s| (v, s.text.clone())))
                .collect()
        })
        .unwrap_or_default()
}

/// The outcome of a registration that changes nothing: refused by the
/// mode, or the schema is already a live version of the subject. `None`
/// when a version must be added.
fn existing_registration(
    st: &State,
    subject: &str,
    schema: &PreparedSchema,
    explicit: Explicit,
) -> Option<Result<u32, ApiError>> {
    let mode = st.effective_mode(subject);
    if mode.is_read_only() {
        return Some(Err(read_only(subject)));
    }
    if explicit.id.is_some() && mode != Mode::Import {
        return Some(Err(not_permitted(format!(
            "Subject {subject} is not in import mode: registering with an explicit \"id\" needs IMPORT mode"
        ))));
    }
    if explicit.id.is_none() && mode == Mode::Import {
        return Some(Err(not_permitted(format!(
            "Subject {subject} is not in read-write mode: in IMPORT mode registrations must carry an \"id\""
        ))));
    }
    let (_, e) = st
        .subjects
        .get(subject)?
        .live()
        .rev()
        .find(|(_, e)| st.schemas.get(&e.id).is_some_and(|x| x.key == schema.key))?;
    Some(match explicit.id.filter(|want| *want != e.id) {
        Some(want) => Err(ApiError::unprocessable(
            codes::ID_DOES_NOT_MATCH,
            format!(
                "Schema already registered with id {} instead of input id {want}",
                e.id
            ),
        )),
        None => Ok(e.id),
    })
}

impl Registry {
    /// Register `schema` under `subject`; returns its id. Registering a schema
    /// the subject already has (live) returns that id and adds no version.
    #[cfg(test)]
    pub(crate) fn register(&self, subject: &str, schema: &PreparedSchema) -> Result<u32, ApiError> {
        self.register_with(subject, schema, Explicit::default())
    }

    /// [`Registry::register`] with an explicit id and/or version, as IMPORT
    /// mode allows.
    pub(crate) fn register_with(
        &self,
        subject: &str,
        schema: &PreparedSchema,
        explicit: Explicit,
    ) -> Result<u32, ApiError> {
        // Fast path, without waiting for other writers: refused by the mode,
        // or already a live version of the subject.
        if let Some(done) = existing_registration(&self.read(), subject, schema, explicit) {
            return done;
        }
        let _writer = self.begin_write()?;
        let st = self.read();
        if let Some(done) = existing_registration(&st, subject, schema, explicit) {
            return done;
        }
        let mode = st.effective_mode(subject);
        let subj = st.subjects.get(subject);

        let next_version = match subj.and_then(|s| s.versions.keys().next_back()) {
            None => 1,
            Some(v) if *v < MAX_ID => v + 1,
            Some(_) => {
                return Err(RegistryError::Exhausted(format!(
                    "subject '{subject}' has no versions left"
                ))
                .into())
            }
        };
        let version = match (mode, explicit.version) {
            (Mode::Import, Some(v)) => {
                if let Some(e) = subj.and_then(|s| s.versions.get(&v)) {
                    if Some(e.id) == explicit.id && !e.deleted {
                        return Ok(e.id);
                    }
                    return Err(not_permitted(format!(
                        "Overwrite new schema with version {v} is not permitted: subject {subject} already has version {v}"
                    )));
                }
                v
            }
            (_, Some(v)) if v != next_version => {
                return Err(ApiError::invalid_schema(format!(
                    "Version is not one more than previous version: subject {subject} would get version {next_version}, not {v}"
                )))
            }
            _ => next_version,
        };

        if mode != Mode::Import {
            let level = st.effective_level(subject);
            let previous = live_texts(&st, subject);
            drop(st);
            let messages = check_compatibility(level, &schema.text, &previous)?;
            if !messages.is_empty() {
                return Err(incompatible(subject, &messages));
            }
            return self.store_version(subject, version, schema, None);
        }
        drop(st);
        self.store_version(subject, version, schema, explicit.id)
    }

    fn store_version(
        &self,
        subject: &str,
        version: u32,
        schema: &PreparedSchema,
        explicit_id: Option<u32>,
    ) -> Result<u32, ApiError> {
        let (id, text) = {
            let st = self.read();
            let id = match explicit_id {
                Some(id) => {
                    if st.schemas.get(&id).is_some_and(|s| s.key != schema.key) {
                        return Err(not_permitted(format!(
                            "Overwrite new schema with id {id} is not permitted: id {id} holds another schema"
                        )));
                    }
                    id
                }
                None => match st.by_key.get(&schema.key) {
                    Some(id) => *id,
                    None if st.max_id < MAX_ID => st.max_id + 1,
                    None => {
                        return Err(RegistryError::Exhausted("no schema ids left".into()).into())
                    }
                },
            };
            // An id that exists keeps its text, so id -> text never changes.
            let text = st
                .schemas
                .get(&id)
                .map_or_else(|| schema.text.clone(), |s| s.text.to_string());
            (id, text)
        };
        self.commit(&[Record::Version {
            subject: subject.to_string(),
            version,
            value: Some(VersionValue {
                id,
                schema_type: schema.key.schema_type,
                schema: text,
                deleted: false,
            }),
        }])?;
        tracing::info!(subject, version, id, "schema registered");
        Ok(id)
    }

    /// Test `schema` against one version of `subject` (`Some(spec)`) or
    /// against the versions its level covers (`None`). Returns the
    /// incompatibilities (empty: compatible).
    pub(crate) fn test_compatibility(
        &self,
        subject: &str,
        spec: Option<VersionSpec>,
        schema: &PreparedSchema,
    ) -> Result<Vec<String>, ApiError> {
        let (level, previous) = {
            let st = self.read();
            let level = st.effective_level(subject);
            let previous = match spec {
                None => live_texts(&st, subject),
                // Nothing to be incompatible with.
                Some(VersionSpec::Latest)
                    if st.subjects.get(subject).is_none_or(|s| s.is_deleted()) =>
                {
                    Vec::new()
                }
                Some(spec) => {
                    drop(st);
                    let v = self.version(subject, spec, false)?;
                    vec![(v.version, v.schema.text)]
                }
            };
            (level, previous)
        };
        check_compatibility(level, &schema.text, &previous)
    }
}

fn incompatible(subject: &str, messages: &[String]) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::CONFLICT,
        codes::INCOMPATIBLE_SCHEMA,
        format!(
            "Schema being registered is incompatible with an earlier schema for subject \"{subject}\", details: [{}]",
            messages.join(", ")
        ),
    )
}
