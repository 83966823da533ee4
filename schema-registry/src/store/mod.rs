//! Durable registry state: an ordered log of [`Record`]s, replayed into an
//! in-memory [`State`] at open and appended to by every change.
//!
//! The log lives in a [`Backend`]: a directory ([`dir`]) or a Kafka compacted
//! topic ([`kafka`]). A write builds a batch of records under the registry's
//! writer lock, hands it to the backend, which stores it atomically and
//! durably and applies it to the shared state, and then checks that the
//! state shows what was written (another instance's conflicting write may
//! have come first). Readers only take a short read lock on the state and
//! never wait for I/O.

mod dir;
mod kafka;
mod read;
pub(crate) mod record;
mod register;
pub(crate) mod state;
mod write;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::error::{ApiError, RegistryError};
use crate::schema::SchemaType;

pub use kafka::KafkaStorageConfig;
pub(crate) use record::Record;
pub use register::Explicit;
use state::State;

/// Confluent ids and versions are Java ints.
pub(crate) const MAX_ID: u32 = i32::MAX as u32;

/// Which version of a subject a request names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VersionSpec {
    Latest,
    Number(u32),
}

impl VersionSpec {
    /// Parse a version path segment: `latest`, `-1`, or 1..=2^31-1.
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        if s.eq_ignore_ascii_case("latest") {
            return Ok(VersionSpec::Latest);
        }
        match s.parse::<i32>() {
            Ok(-1) => Ok(VersionSpec::Latest),
            Ok(n) if n >= 1 => Ok(VersionSpec::Number(n as u32)),
            _ => Err(ApiError::invalid_version(s)),
        }
    }
}

/// Which versions (or subjects) a query covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Deleted {
    /// Only live ones (the default).
    #[default]
    Exclude,
    /// Live and soft-deleted ones.
    Include,
    /// Only soft-deleted ones.
    Only,
}

impl Deleted {
    pub(crate) fn admits(self, deleted: bool) -> bool {
        match self {
            Deleted::Exclude => !deleted,
            Deleted::Include => true,
            Deleted::Only => deleted,
        }
    }
}

/// One registered schema, as stored.
#[derive(Clone, Debug)]
pub struct SchemaInfo {
    pub id: u32,
    pub schema_type: SchemaType,
    pub text: Arc<str>,
}

/// One version of a subject.
#[derive(Clone, Debug)]
pub struct VersionInfo {
    pub subject: String,
    pub version: u32,
    pub deleted: bool,
    pub schema: SchemaInfo,
}

/// Where the log is kept.
pub(crate) trait Backend: Send + Sync {
    /// For logs and messages, e.g. "directory /var/lib/sluice/registry".
    fn describe(&self) -> String;

    /// Store `batch` atomically and durably, and apply it to the shared
    /// state (in log order with the records of any other writer) before
    /// returning `Ok`.
    fn append(&self, batch: &[Record]) -> Result<(), RegistryError>;

    /// Called before a change is computed, with the writer lock held: a backend that
    /// becomes the writer only on its first write does so here, and catches up with
    /// what another writer committed, so the change is computed from the latest state.
    fn prepare_write(&self) -> Result<(), RegistryError> {
        Ok(())
    }
}

/// The state shared by the registry and its backend.
#[derive(Default)]
pub(crate) struct Shared {
    state: RwLock<State>,
}

impl Shared {
    pub fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Apply `records` (read from `origin`, for messages), logging and
    /// counting the ones that are rejected.
    pub fn apply(&self, records: &[Record], origin: &dyn std::fmt::Display) {
        let mut st = self.write();
        for r in records {
            if let Err(reason) = st.apply(r) {
                st.skipped += 1;
                tracing::warn!(%origin, %reason, "schema registry: record rejected");
            }
        }
    }

    /// Count a record that could not be read at all.
    pub fn skip(&self, origin: &dyn std::fmt::Display, reason: &str) {
        self.write().skipped += 1;
        tracing::error!(%origin, reason, "schema registry storage: skipping an unreadable record");
    }
}

/// The Confluent-compatible schema registry: state plus its storage.
///
/// Queries only read memory. Changes (registration, deletes, levels, modes)
/// block on the storage (fsync, or a Kafka transaction read back by the
/// reader): call them from a blocking context, as the REST API does with
/// `spawn_blocking`.
pub struct Registry {
    shared: Arc<Shared>,
    backend: Box<dyn Backend>,
    dir: Option<PathBuf>,
    /// Serializes writers; held across storage writes.
    writer: Mutex<()>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Registry {
    /// Open (creating if needed) the registry stored in directory `dir` and load it.
    /// Unreadable records are logged, skipped and counted
    /// ([`Registry::skipped_records`]), never fatal.
    pub fn open(dir: &Path) -> Result<Self, RegistryError> {
        let shared = Arc::new(Shared::default());
        let backend = dir::DirBackend::open(dir, shared.clone())?;
        Ok(Registry::with_backend(
            shared,
            Box::new(backend),
            Some(dir.to_path_buf()),
        ))
    }

    /// Open the registry stored in a Kafka compacted topic (created if
    /// missing): become its writer (fencing any other instance using the same
    /// `transactional_id`) and replay the topic to its end. Blocking librdkafka
    /// calls run on tokio's blocking threads.
    pub async fn open_kafka(config: KafkaStorageConfig) -> Result<Self, RegistryError> {
        let shared = Arc::new(Shared::default());
        let backend = kafka::KafkaBackend::open(config, shared.clone()).await?;
        Ok(Registry::with_backend(shared, Box::new(backend), None))
    }

    fn with_backend(shared: Arc<Shared>, backend: Box<dyn Backend>, dir: Option<PathBuf>) -> Self {
        let reg = Registry {
            shared,
            backend,
            dir,
            writer: Mutex::new(()),
        };
        {
            let st = reg.shared.read();
            tracing::info!(
                storage = %reg.backend.describe(),
                schemas = st.schemas.len(),
                subjects = st.subjects.len(),
                skipped = st.skipped,
                "schema registry storage loaded"
            );
        }
        reg
    }

    /// The storage directory, for a directory-backed registry.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// Where the registry's state is stored, for messages.
    pub fn storage(&self) -> String {
        self.backend.describe()
    }

    /// Records that were skipped (unreadable, foreign or conflicting) since open.
    pub fn skipped_records(&self) -> u64 {
        self.shared.read().skipped
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.shared.read()
    }

    /// Takes the writer lock and readies the storage for a change.
    fn begin_write(&self) -> Result<MutexGuard<'_, ()>, ApiError> {
        let guard = lock(&self.writer);
        self.backend.prepare_write()?;
        Ok(guard)
    }

    /// Write `batch` and check that it took effect.
    fn commit(&self, batch: &[Record]) -> Result<(), ApiError> {
        self.backend.append(batch)?;
        let st = self.read();
        if batch.iter().any(|r| !st.reflects(r)) {
            return Err(RegistryError::Conflict(
                "another registry instance wrote a conflicting change first; retry the request"
                    .into(),
            )
            .into());
        }
        Ok(())
    }
}
