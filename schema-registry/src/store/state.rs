//! The in-memory state: the result of applying the log's records in order.
//!
//! Applying is deterministic and validating ("first writer wins"): a record
//! that contradicts the state (a version that already exists with another
//! schema id, an id that already holds another schema) is rejected, so every
//! reader of the same log reaches the same state even when two writers raced
//! or a record of an aborted transaction is visible (see `kafka.rs`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use crate::compat::CompatibilityLevel;
use crate::mode::Mode;
use crate::schema::{key_of_stored, SchemaKey, SchemaType};

use super::record::{Record, VersionValue};

#[derive(Default)]
pub(crate) struct State {
    pub schemas: BTreeMap<u32, StoredSchema>,
    /// The id of each schema; the lowest when several ids hold it.
    pub by_key: HashMap<SchemaKey, u32>,
    pub subjects: BTreeMap<String, Subject>,
    /// The highest id ever allocated (0 when none).
    pub max_id: u32,
    pub global_level: Option<CompatibilityLevel>,
    pub subject_levels: BTreeMap<String, CompatibilityLevel>,
    pub global_mode: Option<Mode>,
    pub subject_modes: BTreeMap<String, Mode>,
    /// Records that could not be decoded or were rejected, since start.
    pub skipped: u64,
}

pub(crate) struct StoredSchema {
    pub schema_type: SchemaType,
    pub text: Arc<str>,
    pub key: SchemaKey,
    /// (subject, version) pairs holding this schema, soft-deleted ones included.
    pub usages: BTreeSet<(String, u32)>,
}

#[derive(Default)]
pub(crate) struct Subject {
    pub versions: BTreeMap<u32, VersionEntry>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct VersionEntry {
    pub id: u32,
    pub deleted: bool,
}

impl Subject {
    /// Whether every version is soft-deleted (a "deleted subject").
    pub fn is_deleted(&self) -> bool {
        self.versions.values().all(|v| v.deleted)
    }

    pub fn live(&self) -> impl DoubleEndedIterator<Item = (u32, VersionEntry)> + '_ {
        self.versions
            .iter()
            .filter(|(_, e)| !e.deleted)
            .map(|(v, e)| (*v, *e))
    }
}

impl State {
    /// Apply one record; `Err` says why it was rejected (the state is then unchanged).
    pub fn apply(&mut self, record: &Record) -> Result<(), String> {
        match record {
            Record::Version {
                subject,
                version,
                value: Some(value),
            } => self.put_version(subject, *version, value),
            Record::Version {
                subject,
                version,
                value: None,
            } => {
                self.remove_version(subject, *version);
                Ok(())
            }
            Record::Config { subject, level } => {
                match (subject, level) {
                    (None, l) => self.global_level = *l,
                    (Some(s), Some(l)) => {
                        self.subject_levels.insert(s.clone(), *l);
                    }
                    (Some(s), None) => {
                        self.subject_levels.remove(s);
                    }
                }
                Ok(())
            }
            Record::Mode { subject, mode } => {
                match (subject, mode) {
                    (None, m) => self.global_mode = *m,
                    (Some(s), Some(m)) => {
                        self.subject_modes.insert(s.clone(), *m);
                    }
                    (Some(s), None) => {
                        self.subject_modes.remove(s);
                    }
                }
                Ok(())
            }
            Record::IdHighWater { max_id } => {
                self.max_id = self.max_id.max(*max_id);
                Ok(())
            }
            Record::Noop => Ok(()),
        }
    }

    fn put_version(&mut self, subject: &str, version: u32, v: &VersionValue) -> Result<(), String> {
        if let Some(existing) = self
            .subjects
            .get_mut(subject)
            .and_then(|s| s.versions.get_mut(&version))
        {
            if existing.id != v.id {
                return Err(format!(
                    "subject '{subject}' version {version} already holds schema id {}, not {}",
                    existing.id, v.id
                ));
            }
            if existing.deleted && !v.deleted {
                return Err(format!(
                    "subject '{subject}' version {version} is soft-deleted and cannot come back"
                ));
            }
            existing.deleted = v.deleted;
            return Ok(());
        }
        let key = key_of_stored(v.schema_type, &v.schema)
            .map_err(|e| format!("schema id {} is not valid JSON: {e}", v.id))?;
        match self.schemas.get(&v.id) {
            Some(s) if s.key != key => {
                return Err(format!(
                    "schema id {} already holds another schema (subject '{subject}' version {version} claims it)",
                    v.id
                ))
            }
            Some(_) => {}
            None => self.insert_schema(v.id, v.schema_type, Arc::from(v.schema.as_str()), key),
        }
        if let Some(s) = self.schemas.get_mut(&v.id) {
            s.usages.insert((subject.to_string(), version));
        }
        self.subjects
            .entry(subject.to_string())
            .or_default()
            .versions
            .insert(
                version,
                VersionEntry {
                    id: v.id,
                    deleted: v.deleted,
                },
            );
        Ok(())
    }

    /// Make `id` known with `text`, with no version (yet).
    pub fn insert_schema(
        &mut self,
        id: u32,
        schema_type: SchemaType,
        text: Arc<str>,
        key: SchemaKey,
    ) {
        let slot = self.by_key.entry(key.clone()).or_insert(id);
        *slot = (*slot).min(id);
        self.schemas.insert(
            id,
            StoredSchema {
                schema_type,
                text,
                key,
                usages: BTreeSet::new(),
            },
        );
        self.max_id = self.max_id.max(id);
    }

    fn remove_version(&mut self, subject: &str, version: u32) {
        let Some(subj) = self.subjects.get_mut(subject) else {
            return;
        };
        let Some(entry) = subj.versions.remove(&version) else {
            return;
        };
        if subj.versions.is_empty() {
            self.subjects.remove(subject);
        }
        let Some(schema) = self.schemas.get_mut(&entry.id) else {
            return;
        };
        schema.usages.remove(&(subject.to_string(), version));
        if !schema.usages.is_empty() {
            return;
        }
        // No version holds the schema any more: it is gone, but its id stays
        // taken (`max_id` is not lowered).
        if let Some(gone) = self.schemas.remove(&entry.id) {
            if self.by_key.get(&gone.key) == Some(&entry.id) {
                self.by_key.remove(&gone.key);
                let other = self
                    .schemas
                    .iter()
                    .find(|(_, s)| s.key == gone.key)
                    .map(|(id, _)| *id);
                if let Some(other) = other {
                    self.by_key.insert(gone.key, other);
                }
            }
        }
    }

    /// Whether the state shows what `record` wrote (used to detect that a
    /// conflicting write of another instance won).
    pub fn reflects(&self, record: &Record) -> bool {
        match record {
            Record::Version {
                subject,
                version,
                value,
            } => {
                let entry = self
                    .subjects
                    .get(subject)
                    .and_then(|s| s.versions.get(version));
                match (entry, value) {
                    (None, None) => true,
                    (Some(e), Some(v)) => e.id == v.id && e.deleted == v.deleted,
                    _ => false,
                }
            }
            _ => true,
        }
    }

    /// The mode that applies to `subject`: a global READONLY_OVERRIDE, else
    /// the subject's own, else the global one (default READWRITE).
    pub fn effective_mode(&self, subject: &str) -> Mode {
        let global = self.global_mode.unwrap_or_default();
        if global == Mode::ReadOnlyOverride {
            return global;
        }
        self.subject_modes.get(subject).copied().unwrap_or(global)
    }

    /// The compatibility level for `subject`: its own, else the global one
    /// (default BACKWARD).
    pub fn effective_level(&self, subject: &str) -> CompatibilityLevel {
        self.subject_levels
            .get(subject)
            .copied()
            .or(self.global_level)
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(subject: &str, version: u32, id: u32, schema: &str, deleted: bool) -> Record {
        Record::Version {
            subject: subject.into(),
            version,
            value: Some(VersionValue {
                id,
                schema_type: SchemaType::Avro,
                schema: schema.into(),
                deleted,
            }),
        }
    }

    #[test]
    fn first_writer_wins_and_conflicts_are_rejected() {
        let mut st = State::default();
        st.apply(&version("s", 1, 1, "\"int\"", false)).unwrap();
        // Same record again: idempotent.
        st.apply(&version("s", 1, 1, "\"int\"", false)).unwrap();
        // Same version, other id.
        assert!(st.apply(&version("s", 1, 2, "\"long\"", false)).is_err());
        // Other version, id 1 with another schema.
        assert!(st.apply(&version("t", 1, 1, "\"long\"", false)).is_err());
        // Id 1 with the same schema, differently formatted: fine.
        st.apply(&version("t", 1, 1, " \"int\" ", false)).unwrap();
        assert_eq!(st.schemas[&1].usages.len(), 2);
        // Soft delete, then no way back.
        st.apply(&version("s", 1, 1, "\"int\"", true)).unwrap();
        assert!(st.apply(&version("s", 1, 1, "\"int\"", false)).is_err());
        assert!(st.subjects["s"].is_deleted());
        assert_eq!(st.max_id, 1);
    }

    #[test]
    fn permanent_delete_forgets_the_schema_but_not_the_id() {
        let mut st = State::default();
        st.apply(&version("s", 1, 1, "\"int\"", false)).unwrap();
        st.apply(&version("s", 2, 2, "\"long\"", false)).unwrap();
        st.apply(&Record::Version {
            subject: "s".into(),
            version: 2,
            value: None,
        })
        .unwrap();
        assert!(!st.schemas.contains_key(&2));
        assert!(st.by_key.values().all(|id| *id == 1));
        assert_eq!(st.max_id, 2);
        st.apply(&Record::Version {
            subject: "s".into(),
            version: 1,
            value: None,
        })
        .unwrap();
        assert!(st.subjects.is_empty());
        // Tombstones of unknown versions are no-ops.
        st.apply(&Record::Version {
            subject: "x".into(),
            version: 9,
            value: None,
        })
        .unwrap();
    }

    #[test]
    fn effective_mode_and_level() {
        let mut st = State::default();
        assert_eq!(st.effective_mode("s"), Mode::ReadWrite);
        assert_eq!(st.effective_level("s"), CompatibilityLevel::Backward);
        st.apply(&Record::Mode {
            subject: Some("s".into()),
            mode: Some(Mode::Import),
        })
        .unwrap();
        st.apply(&Record::Mode {
            subject: None,
            mode: Some(Mode::ReadOnly),
        })
        .unwrap();
        assert_eq!(st.effective_mode("s"), Mode::Import);
        assert_eq!(st.effective_mode("t"), Mode::ReadOnly);
        st.apply(&Record::Mode {
            subject: None,
            mode: Some(Mode::ReadOnlyOverride),
        })
        .unwrap();
        assert_eq!(st.effective_mode("s"), Mode::ReadOnlyOverride);
        st.apply(&Record::Config {
            subject: None,
            level: Some(CompatibilityLevel::Full),
        })
        .unwrap();
        st.apply(&Record::Config {
            subject: Some("s".into()),
            level: Some(CompatibilityLevel::None),
        })
        .unwrap();
        assert_eq!(st.effective_level("s"), CompatibilityLevel::None);
        assert_eq!(st.effective_level("t"), CompatibilityLevel::Full);
    }
}
