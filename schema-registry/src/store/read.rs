//! Queries: answered from the in-memory state under a short read lock.

use crate::compat::CompatibilityLevel;
use crate::error::{codes, ApiError};
use crate::mode::Mode;
use crate::schema::SchemaKey;

use super::state::{State, Subject};
use super::{Deleted, Registry, SchemaInfo, VersionInfo, VersionSpec};

pub(crate) fn schema_info(st: &State, id: u32) -> Result<SchemaInfo, ApiError> {
    let s = st
        .schemas
        .get(&id)
        .ok_or_else(|| ApiError::internal(format!("schema id {id} is referenced but missing")))?;
    Ok(SchemaInfo {
        id,
        schema_type: s.schema_type,
        text: s.text.clone(),
    })
}

/// The subject, if it has a version `deleted` admits... or any version at all
/// for `Deleted::Include`/`Only`.
pub(crate) fn subject<'a>(
    st: &'a State,
    name: &str,
    deleted: Deleted,
) -> Result<&'a Subject, ApiError> {
    st.subjects
        .get(name)
        .filter(|s| deleted != Deleted::Exclude || !s.is_deleted())
        .ok_or_else(|| ApiError::subject_not_found(name))
}

fn version_info(st: &State, subject: &str, version: u32) -> Result<VersionInfo, ApiError> {
    let entry = st
        .subjects
        .get(subject)
        .and_then(|s| s.versions.get(&version))
        .ok_or_else(|| ApiError::version_not_found(version))?;
    Ok(VersionInfo {
        subject: subject.to_string(),
        version,
        deleted: entry.deleted,
        schema: schema_info(st, entry.id)?,
    })
}

impl Registry {
    /// Subject names, sorted, optionally only those starting with `prefix`.
    /// A subject counts as deleted when all its versions are soft-deleted.
    pub fn subjects(&self, prefix: &str, deleted: Deleted) -> Vec<String> {
        self.read()
            .subjects
            .range(prefix.to_string()..)
            .take_while(|(s, _)| s.starts_with(prefix))
            .filter(|(_, subj)| deleted.admits(subj.is_deleted()))
            .map(|(s, _)| s.clone())
            .collect()
    }

    pub fn versions(&self, subject: &str, deleted: Deleted) -> Result<Vec<u32>, ApiError> {
        let st = self.read();
        let subj = self::subject(&st, subject, deleted)?;
        Ok(subj
            .versions
            .iter()
            .filter(|(_, e)| deleted.admits(e.deleted))
            .map(|(v, _)| *v)
            .collect())
    }

    /// A version; soft-deleted ones only with `include_deleted`.
    pub fn version(
        &self,
        subject: &str,
        spec: VersionSpec,
        include_deleted: bool,
    ) -> Result<VersionInfo, ApiError> {
        let st = self.read();
        let filter = if include_deleted {
            Deleted::Include
        } else {
            Deleted::Exclude
        };
        let subj = self::subject(&st, subject, filter)?;
        let version = match spec {
            VersionSpec::Latest => subj
                .versions
                .iter()
                .rev()
                .find(|(_, e)| filter.admits(e.deleted))
                .map(|(v, _)| *v)
                .ok_or_else(|| ApiError::subject_not_found(subject))?,
            VersionSpec::Number(n) => match subj.versions.get(&n) {
                Some(e) if filter.admits(e.deleted) => n,
                _ => return Err(ApiError::version_not_found(n)),
            },
        };
        version_info(&st, subject, version)
    }

    /// The version of `subject` holding the schema `key`: a live one if any
    /// (the latest), else with `include_deleted` the latest soft-deleted one.
    pub(crate) fn lookup(
        &self,
        subject: &str,
        key: &SchemaKey,
        include_deleted: bool,
    ) -> Result<VersionInfo, ApiError> {
        let st = self.read();
        let filter = if include_deleted {
            Deleted::Include
        } else {
            Deleted::Exclude
        };
        let subj = self::subject(&st, subject, filter)?;
        let matching = |deleted: bool| {
            subj.versions
                .iter()
                .rev()
                .filter(|(_, e)| e.deleted == deleted)
                .find(|(_, e)| st.schemas.get(&e.id).is_some_and(|s| &s.key == key))
                .map(|(v, _)| *v)
        };
        let version = matching(false)
            .or_else(|| include_deleted.then(|| matching(true)).flatten())
            .ok_or_else(ApiError::schema_not_found)?;
        version_info(&st, subject, version)
    }

    /// The schema with `id`, also when only soft-deleted versions hold it.
    pub fn schema(&self, id: u32) -> Option<SchemaInfo> {
        schema_info(&self.read(), id).ok()
    }

    /// (subject, version) pairs using schema `id`, sorted; `None` for an unknown id.
    pub fn usages(&self, id: u32, include_deleted: bool) -> Option<Vec<(String, u32)>> {
        let st = self.read();
        let schema = st.schemas.get(&id)?;
        Some(
            schema
                .usages
                .iter()
                .filter(|(s, v)| {
                    include_deleted
                        || st
                            .subjects
                            .get(s)
                            .and_then(|subj| subj.versions.get(v))
                            .is_some_and(|e| !e.deleted)
                })
                .cloned()
                .collect(),
        )
    }

    /// The highest id allocated so far (0 when none).
    pub fn max_id(&self) -> u32 {
        self.read().max_id
    }

    /// Every version of every subject starting with `prefix` (only each
    /// subject's latest with `latest_only`), by subject then version.
    pub fn list_versions(
        &self,
        prefix: &str,
        include_deleted: bool,
        latest_only: bool,
    ) -> Vec<VersionInfo> {
        let st = self.read();
        let mut out = Vec::new();
        for (name, subj) in st
            .subjects
            .range(prefix.to_string()..)
            .take_while(|(s, _)| s.starts_with(prefix))
        {
            let admitted: Vec<u32> = subj
                .versions
                .iter()
                .filter(|(_, e)| include_deleted || !e.deleted)
                .map(|(v, _)| *v)
                .collect();
            let chosen = if latest_only {
                admitted.last().copied().into_iter().collect()
            } else {
                admitted
            };
            out.extend(
                chosen
                    .into_iter()
                    .filter_map(|v| version_info(&st, name, v).ok()),
            );
        }
        out
    }

    /// The global compatibility level (BACKWARD unless set).
    pub fn global_level(&self) -> CompatibilityLevel {
        self.read().global_level.unwrap_or_default()
    }

    /// The subject's own compatibility level; 40408 when it has none.
    pub fn subject_level(&self, subject: &str) -> Result<CompatibilityLevel, ApiError> {
        self.read()
            .subject_levels
            .get(subject)
            .copied()
            .ok_or_else(|| {
                ApiError::not_found(
                    codes::SUBJECT_COMPATIBILITY_NOT_CONFIGURED,
                    format!(
                        "Subject '{subject}' does not have subject-level compatibility configured"
                    ),
                )
            })
    }

    /// The level compatibility checks of `subject` use.
    pub fn effective_level(&self, subject: &str) -> CompatibilityLevel {
        self.read().effective_level(subject)
    }

    /// The global mode (READWRITE unless set).
    pub fn global_mode(&self) -> Mode {
        self.read().global_mode.unwrap_or_default()
    }

    /// The subject's own mode; 40409 when it has none.
    pub fn subject_mode(&self, subject: &str) -> Result<Mode, ApiError> {
        self.read()
            .subject_modes
            .get(subject)
            .copied()
            .ok_or_else(|| {
                ApiError::not_found(
                    codes::SUBJECT_MODE_NOT_CONFIGURED,
                    format!("Subject '{subject}' does not have subject-level mode configured"),
                )
            })
    }
}
