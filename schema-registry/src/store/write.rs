//! Deletes, compatibility levels and modes. Each change is decided under the
//! writer lock from the current state and stored as one atomic batch.

use crate::compat::CompatibilityLevel;
use crate::error::{codes, ApiError};
use crate::mode::Mode;

use super::record::{Record, VersionValue};
use super::state::State;
use super::{read, Deleted, Registry, VersionSpec};

pub(super) fn read_only(subject: &str) -> ApiError {
    ApiError::operation_not_permitted(format!("Subject {subject} is in read-only mode"))
}

pub(super) fn not_permitted(message: String) -> ApiError {
    ApiError::operation_not_permitted(message)
}

fn version_record(st: &State, subject: &str, version: u32, deleted: bool) -> Option<Record> {
    let entry = st.subjects.get(subject)?.versions.get(&version)?;
    let schema = st.schemas.get(&entry.id)?;
    Some(Record::Version {
        subject: subject.to_string(),
        version,
        value: Some(VersionValue {
            id: entry.id,
            schema_type: schema.schema_type,
            schema: schema.text.to_string(),
            deleted,
        }),
    })
}

fn tombstone(subject: &str, version: u32) -> Record {
    Record::Version {
        subject: subject.to_string(),
        version,
        value: None,
    }
}

/// Records removing the subject's own compatibility level and mode, if set.
fn subject_settings_removal(st: &State, subject: &str) -> Vec<Record> {
    let mut out = Vec::new();
    if st.subject_levels.contains_key(subject) {
        out.push(Record::Config {
            subject: Some(subject.to_string()),
            level: None,
        });
    }
    if st.subject_modes.contains_key(subject) {
        out.push(Record::Mode {
            subject: Some(subject.to_string()),
            mode: None,
        });
    }
    out
}

impl Registry {
    /// Delete a subject: soft (its live versions are marked deleted and
    /// returned) or permanent (all versions, which must be soft-deleted
    /// first, are removed and returned). Either removes the subject's own
    /// compatibility level and mode.
    pub fn delete_subject(&self, subject: &str, permanent: bool) -> Result<Vec<u32>, ApiError> {
        let _writer = self.begin_write()?;
        let st = self.read();
        if st.effective_mode(subject).is_read_only() {
            return Err(read_only(subject));
        }
        let subj = read::subject(&st, subject, Deleted::Include)?;
        let mut batch = Vec::new();
        let versions: Vec<u32> = if permanent {
            if !subj.is_deleted() {
                return Err(ApiError::not_found(
                    codes::SUBJECT_NOT_SOFT_DELETED,
                    format!("Subject '{subject}' was not deleted first before being permanently deleted"),
                ));
            }
            let all: Vec<u32> = subj.versions.keys().copied().collect();
            batch.extend(all.iter().map(|v| tombstone(subject, *v)));
            batch.push(Record::IdHighWater { max_id: st.max_id });
            all
        } else {
            if subj.is_deleted() {
                return Err(ApiError::not_found(
                    codes::SUBJECT_SOFT_DELETED,
                    format!("Subject '{subject}' was soft deleted.Set permanent=true to delete permanently"),
                ));
            }
            let live: Vec<u32> = subj.live().map(|(v, _)| v).collect();
            batch.extend(
                live.iter()
                    .filter_map(|v| version_record(&st, subject, *v, true)),
            );
            live
        };
        batch.extend(subject_settings_removal(&st, subject));
        drop(st);
        self.commit(&batch)?;
        tracing::info!(subject, permanent, ?versions, "subject deleted");
        Ok(versions)
    }

    /// Delete one version: soft, or permanent once soft-deleted. `latest`
    /// names the highest version, soft-deleted or not (as Confluent does).
    pub fn delete_version(
        &self,
        subject: &str,
        spec: VersionSpec,
        permanent: bool,
    ) -> Result<u32, ApiError> {
        let _writer = self.begin_write()?;
        let st = self.read();
        if st.effective_mode(subject).is_read_only() {
            return Err(read_only(subject));
        }
        let subj = read::subject(&st, subject, Deleted::Include)?;
        let (version, entry) = match spec {
            VersionSpec::Latest => subj.versions.iter().next_back(),
            VersionSpec::Number(n) => subj.versions.get_key_value(&n),
        }
        .map(|(v, e)| (*v, *e))
        .ok_or_else(|| match spec {
            VersionSpec::Number(n) => ApiError::version_not_found(n),
            VersionSpec::Latest => ApiError::subject_not_found(subject),
        })?;
        let batch = match (permanent, entry.deleted) {
            (false, true) => {
                return Err(ApiError::not_found(
                    codes::VERSION_SOFT_DELETED,
                    format!("Subject '{subject}' Version {version} was soft deleted.Set permanent=true to delete permanently"),
                ))
            }
            (true, false) => {
                return Err(ApiError::not_found(
                    codes::VERSION_NOT_SOFT_DELETED,
                    format!("Subject '{subject}' Version {version} was not deleted first before being permanently deleted"),
                ))
            }
            (false, false) => version_record(&st, subject, version, true)
                .into_iter()
                .collect::<Vec<_>>(),
            (true, true) => vec![
                tombstone(subject, version),
                Record::IdHighWater { max_id: st.max_id },
            ],
        };
        drop(st);
        self.commit(&batch)?;
        tracing::info!(subject, version, permanent, "schema version deleted");
        Ok(version)
    }

    /// Set the compatibility level of `subject`, or the global one.
    pub fn set_level(
        &self,
        subject: Option<&str>,
        level: CompatibilityLevel,
    ) -> Result<(), ApiError> {
        let _writer = self.begin_write()?;
        self.commit(&[Record::Config {
            subject: subject.map(str::to_string),
            level: Some(level),
        }])
    }

    /// Remove the compatibility level of `subject` (40401 when it has none)
    /// or the global one (back to the default); returns the removed level.
    pub fn delete_level(&self, subject: Option<&str>) -> Result<CompatibilityLevel, ApiError> {
        let _writer = self.begin_write()?;
        let old = {
            let st = self.read();
            match subject {
                None => st.global_level.unwrap_or_default(),
                Some(s) => *st
                    .subject_levels
                    .get(s)
                    .ok_or_else(|| ApiError::subject_not_found(s))?,
            }
        };
        self.commit(&[Record::Config {
            subject: subject.map(str::to_string),
            level: None,
        }])?;
        Ok(old)
    }

    /// Set the mode of `subject`, or the global one. Switching to IMPORT
    /// while (the) subject(s) have live versions needs `force`.
    pub fn set_mode(&self, subject: Option<&str>, mode: Mode, force: bool) -> Result<(), ApiError> {
        let _writer = self.begin_write()?;
        {
            let st = self.read();
            let current = match subject {
                Some(s) => st.subject_modes.get(s).copied(),
                None => st.global_mode,
            };
            if mode == Mode::Import && current != Some(Mode::Import) && !force {
                let has_subjects = match subject {
                    Some(s) => st.subjects.get(s).is_some_and(|x| !x.is_deleted()),
                    None => st.subjects.values().any(|x| !x.is_deleted()),
                };
                if has_subjects {
                    return Err(not_permitted(
                        "Cannot import since found existing subjects (use force=true to switch to IMPORT anyway)"
                            .into(),
                    ));
                }
            }
        }
        self.commit(&[Record::Mode {
            subject: subject.map(str::to_string),
            mode: Some(mode),
        }])
    }

    /// Remove the mode of `subject` (40401 when it has none); returns it.
    pub fn delete_mode(&self, subject: &str) -> Result<Mode, ApiError> {
        let _writer = self.begin_write()?;
        let old = self
            .read()
            .subject_modes
            .get(subject)
            .copied()
            .ok_or_else(|| ApiError::subject_not_found(subject))?;
        self.commit(&[Record::Mode {
            subject: Some(subject.to_string()),
            mode: None,
        }])?;
        Ok(old)
    }
}
