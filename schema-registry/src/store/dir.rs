//! The directory backend.
//!
//! ```text
//! <dir>/log/<seq, 20 digits>.json   [{"key": {...}, "value": {...} | null}, ...]
//! ```
//!
//! Each write is one file holding one batch of records (see `record.rs`),
//! written atomically (temporary file, fsync, rename, fsync of the directory)
//! before the in-memory state changes, so what a client was told survives a
//! crash. Files are replayed in sequence order at open.
//!
//! Directories written before the log existed hold `schemas/<id>.json`
//! (`{"id":1,"schemaType":"AVRO","schema":"..."}`) and `versions/<seq>.json`
//! (`{"subject":"s","version":1,"id":1}`); they are read (never written)
//! before the log, so old data stays valid.
//!
//! A file that cannot be parsed, or a record that cannot be used, is logged,
//! skipped and counted ([`crate::Registry::skipped_records`]); opening never
//! fails because of one. I/O errors (a file that cannot be read) do fail the
//! open: skipping what may be valid data could hand out its ids again.
//!
//! One process at a time: a second registry on the same directory would not
//! see the first one's writes (a clash on a file name is detected and refused).

use std::fs::{self, File};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::RegistryError;
use crate::schema::{key_of_stored, SchemaType};

use super::record::{Record, VersionValue};
use super::{lock, Backend, Shared, MAX_ID};

const LOG_DIR: &str = "log";
const LEGACY_SCHEMAS_DIR: &str = "schemas";
const LEGACY_VERSIONS_DIR: &str = "versions";

pub(crate) struct DirBackend {
    dir: PathBuf,
    shared: Arc<Shared>,
    next_seq: Mutex<u64>,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    key: Value,
    value: Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LegacySchemaFile {
    id: u32,
    #[serde(rename = "schemaType")]
    schema_type: SchemaType,
    schema: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LegacyVersionFile {
    subject: String,
    version: u32,
    id: u32,
}

pub(crate) fn log_file_name(seq: u64) -> String {
    format!("{seq:020}.json")
}

impl DirBackend {
    pub fn open(dir: &Path, shared: Arc<Shared>) -> Result<Self, RegistryError> {
        let log = dir.join(LOG_DIR);
        fs::create_dir_all(&log).map_err(RegistryError::io("cannot create directory", &log))?;
        // Make the log directory itself durable before anything is written in it.
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(RegistryError::io("cannot sync directory", dir))?;
        load_legacy(dir, &shared)?;
        let next_seq = replay_log(&log, &shared)?;
        Ok(DirBackend {
            dir: dir.to_path_buf(),
            shared,
            next_seq: Mutex::new(next_seq),
        })
    }
}

impl Backend for DirBackend {
    fn describe(&self) -> String {
        format!("directory {}", self.dir.display())
    }

    fn append(&self, batch: &[Record]) -> Result<(), RegistryError> {
        let mut seq = lock(&self.next_seq);
        let entries: Vec<Entry> = batch
            .iter()
            .map(|r| {
                let e = r.encode();
                Entry {
                    key: serde_json::from_slice(&e.key).unwrap_or(Value::Null),
                    value: e
                        .value
                        .and_then(|v| serde_json::from_slice(&v).ok())
                        .unwrap_or(Value::Null),
                }
            })
            .collect();
        let dir = self.dir.join(LOG_DIR);
        let name = log_file_name(*seq);
        write_file(&dir, &name, &entries)?;
        *seq += 1;
        self.shared.apply(batch, &dir.join(&name).display());
        Ok(())
    }
}

/// Write `name` in `dir` atomically and durably; never replaces a file.
fn write_file<T: Serialize>(dir: &Path, name: &str, value: &T) -> Result<(), RegistryError> {
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.tmp"));
    let bytes = serde_json::to_vec(value).map_err(|e| RegistryError::Corrupt {
        path: path.clone(),
        detail: format!("cannot serialize: {e}"),
    })?;
    if path.exists() {
        return Err(RegistryError::Io {
            action:
                "refusing to overwrite existing file (is another registry using this directory?)",
            path,
            source: std::io::Error::from(std::io::ErrorKind::AlreadyExists),
        });
    }
    let mut f = File::create(&tmp).map_err(RegistryError::io("cannot create", &tmp))?;
    f.write_all(&bytes)
        .and_then(|()| f.sync_all())
        .map_err(RegistryError::io("cannot write", &tmp))?;
    drop(f);
    fs::rename(&tmp, &path).map_err(RegistryError::io("cannot rename into place", &path))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(RegistryError::io("cannot sync directory", dir))?;
    Ok(())
}

/// The `.json` files of `dir` with their stems, removing leftover temporary files.
fn json_files(dir: &Path) -> Result<Vec<(String, PathBuf)>, RegistryError> {
    let mut out = Vec::new();
    let entries = fs::read_dir(dir).map_err(RegistryError::io("cannot list", dir))?;
    for entry in entries {
        let entry = entry.map_err(RegistryError::io("cannot list", dir))?;
        let path = entry.path();
        let Some(name) = path
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_string)
        else {
            tracing::warn!(path = %path.display(), "ignoring file with a non-UTF-8 name in schema registry storage");
            continue;
        };
        if name.starts_with('.') && name.ends_with(".tmp") {
            // A write that crashed before its rename: it was never acknowledged.
            fs::remove_file(&path).map_err(RegistryError::io("cannot remove leftover", &path))?;
            continue;
        }
        match name.strip_suffix(".json") {
            Some(stem) => out.push((stem.to_string(), path)),
            None => {
                tracing::warn!(path = %path.display(), "ignoring unexpected file in schema registry storage")
            }
        }
    }
    Ok(out)
}

fn read(path: &Path) -> Result<Vec<u8>, RegistryError> {
    fs::read(path).map_err(RegistryError::io("cannot read", path))
}

/// Replay `log`; returns the next sequence number.
fn replay_log(log: &Path, shared: &Shared) -> Result<u64, RegistryError> {
    let mut files = Vec::new();
    for (stem, path) in json_files(log)? {
        match stem.parse::<u64>() {
            Ok(seq) if seq >= 1 => files.push((seq, path)),
            _ => shared.skip(
                &path.display(),
                "the file name is not <sequence number>.json",
            ),
        }
    }
    files.sort();
    let next = files.last().map_or(1, |(seq, _)| seq + 1);
    for (_, path) in files {
        let bytes = read(&path)?;
        let entries: Vec<Entry> = match serde_json::from_slice(&bytes) {
            Ok(e) => e,
            Err(e) => {
                shared.skip(&path.display(), &format!("not a batch of records: {e}"));
                continue;
            }
        };
        let mut records = Vec::with_capacity(entries.len());
        for entry in entries {
            let key = serde_json::to_vec(&entry.key).unwrap_or_default();
            let value = (!entry.value.is_null())
                .then(|| serde_json::to_vec(&entry.value).unwrap_or_default());
            match Record::decode(&key, value.as_deref()) {
                Ok(r) => records.push(r),
                Err(reason) => shared.skip(&path.display(), &reason),
            }
        }
        shared.apply(&records, &path.display());
    }
    Ok(next)
}

/// Load the pre-log layout, if present.
fn load_legacy(dir: &Path, shared: &Shared) -> Result<(), RegistryError> {
    let schemas_dir = dir.join(LEGACY_SCHEMAS_DIR);
    if schemas_dir.is_dir() {
        for (stem, path) in json_files(&schemas_dir)? {
            let Some(id) = stem
                .parse::<u32>()
                .ok()
                .filter(|id| (1..=MAX_ID).contains(id))
            else {
                shared.skip(&path.display(), "the file name is not <schema id>.json");
                continue;
            };
            // Whatever the content, the id was handed out: never reuse it.
            {
                let mut st = shared.write();
                st.max_id = st.max_id.max(id);
            }
            let file: LegacySchemaFile = match serde_json::from_slice(&read(&path)?) {
                Ok(f) => f,
                Err(e) => {
                    shared.skip(&path.display(), &format!("not a schema file: {e}"));
                    continue;
                }
            };
            if file.id != id {
                shared.skip(
                    &path.display(),
                    &format!("it holds id {} but is named for id {id}", file.id),
                );
                continue;
            }
            match key_of_stored(file.schema_type, &file.schema) {
                Ok(key) => {
                    shared
                        .write()
                        .insert_schema(id, file.schema_type, Arc::from(file.schema), key)
                }
                Err(e) => shared.skip(
                    &path.display(),
                    &format!("the schema is not valid JSON: {e}"),
                ),
            }
        }
    }
    let versions_dir = dir.join(LEGACY_VERSIONS_DIR);
    if versions_dir.is_dir() {
        let mut files = Vec::new();
        for (stem, path) in json_files(&versions_dir)? {
            match stem.parse::<u64>() {
                Ok(seq) if seq >= 1 => files.push((seq, path)),
                _ => shared.skip(
                    &path.display(),
                    "the file name is not <sequence number>.json",
                ),
            }
        }
        files.sort();
        for (_, path) in files {
            let file: LegacyVersionFile = match serde_json::from_slice(&read(&path)?) {
                Ok(f) => f,
                Err(e) => {
                    shared.skip(&path.display(), &format!("not a version file: {e}"));
                    continue;
                }
            };
            if file.version == 0 || file.version > MAX_ID {
                shared.skip(
                    &path.display(),
                    &format!("invalid version {}", file.version),
                );
                continue;
            }
            let schema = shared
                .read()
                .schemas
                .get(&file.id)
                .map(|s| (s.schema_type, s.text.to_string()));
            let Some((schema_type, text)) = schema else {
                shared.skip(
                    &path.display(),
                    &format!(
                        "it refers to schema id {}, which has no file in {LEGACY_SCHEMAS_DIR}/",
                        file.id
                    ),
                );
                continue;
            };
            let duplicate = shared
                .read()
                .subjects
                .get(&file.subject)
                .is_some_and(|s| s.versions.contains_key(&file.version));
            if duplicate {
                shared.skip(
                    &path.display(),
                    &format!(
                        "subject '{}' version {} is stored twice",
                        file.subject, file.version
                    ),
                );
                continue;
            }
            shared.apply(
                &[Record::Version {
                    subject: file.subject,
                    version: file.version,
                    value: Some(VersionValue {
                        id: file.id,
                        schema_type,
                        schema: text,
                        deleted: false,
                    }),
                }],
                &path.display(),
            );
        }
    }
    Ok(())
}
