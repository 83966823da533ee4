//! Durable registry state.
//!
//! Layout of the storage directory:
//!
//! ```text
//! <dir>/schemas/<id>.json           {"id":1,"schemaType":"AVRO","schema":"<text>"}
//! <dir>/versions/<seq, 20 digits>.json  {"subject":"s","version":1,"id":1}
//! ```
//!
//! A schema file is written once per new id, a version file once per new
//! (subject, version); both are written atomically (temporary file, fsync,
//! rename, fsync of the directory) before the in-memory state changes, so what
//! a client was told survives a crash. Version files are named by a global
//! sequence number rather than by subject, so any subject name is storable.
//!
//! Writers are serialized by one mutex held across the disk writes, which
//! makes registration atomic; readers only take a short read lock on the
//! in-memory state and never wait for disk I/O.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{self, File};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard};

use serde::{Deserialize, Serialize};

use crate::error::{ApiError, RegistryError};
use crate::schema::{key_of_stored, PreparedSchema, SchemaKey, SchemaType};

const SCHEMAS_DIR: &str = "schemas";
const VERSIONS_DIR: &str = "versions";
/// Confluent ids and versions are Java ints.
const MAX_ID: u32 = i32::MAX as u32;

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
    pub schema: SchemaInfo,
}

/// The Confluent-compatible schema registry: state plus its storage directory.
pub struct Registry {
    dir: PathBuf,
    state: RwLock<State>,
    /// Serializes writers; held across disk writes.
    writer: Mutex<()>,
}

#[derive(Default)]
struct State {
    schemas: BTreeMap<u32, StoredSchema>,
    by_key: HashMap<SchemaKey, u32>,
    subjects: BTreeMap<String, Subject>,
    next_id: u32,
    next_seq: u64,
}

struct StoredSchema {
    schema_type: SchemaType,
    text: Arc<str>,
    /// (subject, version) pairs registered with this schema.
    usages: BTreeSet<(String, u32)>,
}

#[derive(Default)]
struct Subject {
    /// version -> schema id
    versions: BTreeMap<u32, u32>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SchemaFile {
    id: u32,
    #[serde(rename = "schemaType")]
    schema_type: SchemaType,
    schema: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct VersionFile {
    subject: String,
    version: u32,
    id: u32,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Registry {
    /// Open (creating if needed) the registry stored in `dir` and load it.
    pub fn open(dir: &Path) -> Result<Self, RegistryError> {
        for sub in [SCHEMAS_DIR, VERSIONS_DIR] {
            let p = dir.join(sub);
            fs::create_dir_all(&p).map_err(RegistryError::io("cannot create directory", &p))?;
        }
        // Make the subdirectories themselves durable before anything is written in them.
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(RegistryError::io("cannot sync directory", dir))?;
        let mut state = State {
            next_id: 1,
            next_seq: 1,
            ..State::default()
        };
        load_schemas(&dir.join(SCHEMAS_DIR), &mut state)?;
        load_versions(&dir.join(VERSIONS_DIR), &mut state)?;
        tracing::info!(
            dir = %dir.display(),
            schemas = state.schemas.len(),
            subjects = state.subjects.len(),
            "schema registry storage loaded"
        );
        Ok(Registry {
            dir: dir.to_path_buf(),
            state: RwLock::new(state),
            writer: Mutex::new(()),
        })
    }

    /// The storage directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Register `schema` under `subject`; returns its id. Registering a schema
    /// the subject already has returns that id and adds no version.
    pub(crate) fn register(&self, subject: &str, schema: &PreparedSchema) -> Result<u32, ApiError> {
        let _writer = lock(&self.writer);

        // Decide under the read lock; nothing else writes while we hold `writer`.
        let (existing_id, next_version, new_id, seq) = {
            let st = self.read();
            let existing_id = st.by_key.get(&schema.key).copied();
            if let (Some(id), Some(subj)) = (existing_id, st.subjects.get(subject)) {
                if subj.versions.values().any(|&v| v == id) {
                    return Ok(id);
                }
            }
            let next_version = st
                .subjects
                .get(subject)
                .and_then(|s| s.versions.keys().next_back())
                .map_or(Ok(1), |v| {
                    v.checked_add(1).filter(|v| *v <= MAX_ID).ok_or_else(|| {
                        RegistryError::Exhausted(format!(
                            "subject '{subject}' has no versions left"
                        ))
                    })
                })?;
            if existing_id.is_none() && st.next_id > MAX_ID {
                return Err(RegistryError::Exhausted("no schema ids left".into()).into());
            }
            (existing_id, next_version, st.next_id, st.next_seq)
        };

        let id = match existing_id {
            Some(id) => id,
            None => {
                let file = SchemaFile {
                    id: new_id,
                    schema_type: schema.key.schema_type,
                    schema: schema.text.clone(),
                };
                write_json_file(
                    &self.dir.join(SCHEMAS_DIR),
                    &format!("{new_id}.json"),
                    &file,
                )?;
                let mut st = self.state.write().unwrap_or_else(PoisonError::into_inner);
                st.schemas.insert(
                    new_id,
                    StoredSchema {
                        schema_type: schema.key.schema_type,
                        text: Arc::from(schema.text.as_str()),
                        usages: BTreeSet::new(),
                    },
                );
                st.by_key.insert(schema.key.clone(), new_id);
                st.next_id = new_id + 1;
                new_id
            }
        };

        let file = VersionFile {
            subject: subject.to_string(),
            version: next_version,
            id,
        };
        write_json_file(&self.dir.join(VERSIONS_DIR), &version_file_name(seq), &file)?;
        let mut st = self.state.write().unwrap_or_else(PoisonError::into_inner);
        st.next_seq = seq + 1;
        add_version(&mut st, subject, next_version, id);
        tracing::info!(subject, version = next_version, id, "schema registered");
        Ok(id)
    }

    /// Subject names, sorted, optionally only those starting with `prefix`.
    pub(crate) fn subjects(&self, prefix: &str) -> Vec<String> {
        self.read()
            .subjects
            .range(prefix.to_string()..)
            .take_while(|(s, _)| s.starts_with(prefix))
            .map(|(s, _)| s.clone())
            .collect()
    }

    pub(crate) fn versions(&self, subject: &str) -> Result<Vec<u32>, ApiError> {
        let st = self.read();
        let subj = st
            .subjects
            .get(subject)
            .ok_or_else(|| ApiError::subject_not_found(subject))?;
        Ok(subj.versions.keys().copied().collect())
    }

    pub(crate) fn version(
        &self,
        subject: &str,
        spec: VersionSpec,
    ) -> Result<VersionInfo, ApiError> {
        let st = self.read();
        let subj = st
            .subjects
            .get(subject)
            .ok_or_else(|| ApiError::subject_not_found(subject))?;
        let (version, id) = match spec {
            VersionSpec::Latest => subj.versions.iter().next_back(),
            VersionSpec::Number(n) => subj.versions.get_key_value(&n),
        }
        .map(|(v, id)| (*v, *id))
        .ok_or_else(|| match spec {
            VersionSpec::Number(n) => ApiError::version_not_found(n),
            VersionSpec::Latest => ApiError::subject_not_found(subject),
        })?;
        let schema = schema_info(&st, id)?;
        Ok(VersionInfo {
            subject: subject.to_string(),
            version,
            schema,
        })
    }

    /// The version of `subject` holding `key`, if any.
    pub(crate) fn lookup(&self, subject: &str, key: &SchemaKey) -> Result<VersionInfo, ApiError> {
        let st = self.read();
        let subj = st
            .subjects
            .get(subject)
            .ok_or_else(|| ApiError::subject_not_found(subject))?;
        let id = st
            .by_key
            .get(key)
            .copied()
            .ok_or_else(ApiError::schema_not_found)?;
        let version = subj
            .versions
            .iter()
            .find(|(_, v)| **v == id)
            .map(|(version, _)| *version)
            .ok_or_else(ApiError::schema_not_found)?;
        Ok(VersionInfo {
            subject: subject.to_string(),
            version,
            schema: schema_info(&st, id)?,
        })
    }

    pub(crate) fn schema(&self, id: u32) -> Option<SchemaInfo> {
        schema_info(&self.read(), id).ok()
    }

    /// (subject, version) pairs using schema `id`, sorted.
    pub(crate) fn usages(&self, id: u32) -> Option<Vec<(String, u32)>> {
        let st = self.read();
        st.schemas
            .get(&id)
            .map(|s| s.usages.iter().cloned().collect())
    }

    /// The highest id allocated so far (0 when empty).
    pub(crate) fn max_id(&self) -> u32 {
        self.read().next_id - 1
    }
}

fn schema_info(st: &State, id: u32) -> Result<SchemaInfo, ApiError> {
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

fn add_version(st: &mut State, subject: &str, version: u32, id: u32) {
    st.subjects
        .entry(subject.to_string())
        .or_default()
        .versions
        .insert(version, id);
    if let Some(s) = st.schemas.get_mut(&id) {
        s.usages.insert((subject.to_string(), version));
    }
}

fn version_file_name(seq: u64) -> String {
    format!("{seq:020}.json")
}

/// Write `name` in `dir` atomically and durably; never replaces a file.
fn write_json_file<T: Serialize>(dir: &Path, name: &str, value: &T) -> Result<(), RegistryError> {
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

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, RegistryError> {
    let bytes = fs::read(path).map_err(RegistryError::io("cannot read", path))?;
    serde_json::from_slice(&bytes).map_err(|e| RegistryError::Corrupt {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })
}

fn corrupt(path: &Path, detail: impl Into<String>) -> RegistryError {
    RegistryError::Corrupt {
        path: path.to_path_buf(),
        detail: detail.into(),
    }
}

fn load_schemas(dir: &Path, st: &mut State) -> Result<(), RegistryError> {
    for (stem, path) in json_files(dir)? {
        let id: u32 = stem
            .parse()
            .ok()
            .filter(|id| (1..=MAX_ID).contains(id))
            .ok_or_else(|| corrupt(&path, "the file name is not <schema id>.json"))?;
        let file: SchemaFile = read_json(&path)?;
        if file.id != id {
            return Err(corrupt(
                &path,
                format!("it holds id {} but is named for id {id}", file.id),
            ));
        }
        let key = key_of_stored(file.schema_type, &file.schema)
            .map_err(|e| corrupt(&path, format!("the schema is not valid JSON: {e}")))?;
        // Should two ids hold the same schema (not produced by this code),
        // keep answering with the lower one.
        let slot = st.by_key.entry(key).or_insert(id);
        *slot = (*slot).min(id);
        st.schemas.insert(
            id,
            StoredSchema {
                schema_type: file.schema_type,
                text: Arc::from(file.schema),
                usages: BTreeSet::new(),
            },
        );
        st.next_id = st.next_id.max(id + 1);
    }
    Ok(())
}

fn load_versions(dir: &Path, st: &mut State) -> Result<(), RegistryError> {
    let mut files = Vec::new();
    for (stem, path) in json_files(dir)? {
        let seq: u64 = stem
            .parse()
            .ok()
            .filter(|s| *s >= 1)
            .ok_or_else(|| corrupt(&path, "the file name is not <sequence number>.json"))?;
        files.push((seq, path));
    }
    files.sort();
    for (seq, path) in files {
        let file: VersionFile = read_json(&path)?;
        if file.version == 0 || file.version > MAX_ID {
            return Err(corrupt(&path, format!("invalid version {}", file.version)));
        }
        if !st.schemas.contains_key(&file.id) {
            return Err(corrupt(
                &path,
                format!(
                    "it refers to schema id {}, which has no file in {SCHEMAS_DIR}/",
                    file.id
                ),
            ));
        }
        if st
            .subjects
            .get(&file.subject)
            .is_some_and(|s| s.versions.contains_key(&file.version))
        {
            return Err(corrupt(
                &path,
                format!(
                    "subject '{}' version {} is stored twice",
                    file.subject, file.version
                ),
            ));
        }
        add_version(st, &file.subject, file.version, file.id);
        st.next_seq = st.next_seq.max(seq + 1);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::prepare;

    fn avro(text: &str) -> PreparedSchema {
        prepare(SchemaType::Avro, text, false).unwrap()
    }

    const S1: &str = r#"{"type":"record","name":"A","fields":[{"name":"x","type":"int"}]}"#;
    const S2: &str = r#"{"type":"record","name":"A","fields":[{"name":"x","type":"int"},{"name":"y","type":["null","string"],"default":null}]}"#;
    const S3: &str = r#""string""#;

    #[test]
    fn same_schema_under_two_subjects_gets_the_same_id() {
        let dir = tempfile::tempdir().unwrap();
        let reg = Registry::open(dir.path()).unwrap();
        let a = reg.register("a-value", &avro(S1)).unwrap();
        let b = reg.register("b-value", &avro(S1)).unwrap();
        assert_eq!(a, 1);
        assert_eq!(a, b);
        // Whitespace differences are the same schema too.
        let c = reg
            .register("c-value", &avro(&S1.replace(',', " , ")))
            .unwrap();
        assert_eq!(c, a);
        assert_eq!(
            reg.usages(a).unwrap(),
            vec![
                ("a-value".to_string(), 1),
                ("b-value".to_string(), 1),
                ("c-value".to_string(), 1)
            ]
        );
        assert_eq!(reg.register("a-value", &avro(S3)).unwrap(), 2);
    }

    #[test]
    fn re_registering_returns_the_existing_id_without_a_new_version() {
        let dir = tempfile::tempdir().unwrap();
        let reg = Registry::open(dir.path()).unwrap();
        let id1 = reg.register("s", &avro(S1)).unwrap();
        let id2 = reg.register("s", &avro(S2)).unwrap();
        assert_ne!(id1, id2);
        assert_eq!(reg.versions("s").unwrap(), vec![1, 2]);
        // Re-register both the latest and an older schema.
        assert_eq!(reg.register("s", &avro(S2)).unwrap(), id2);
        assert_eq!(reg.register("s", &avro(S1)).unwrap(), id1);
        assert_eq!(reg.versions("s").unwrap(), vec![1, 2]);
        let files = fs::read_dir(dir.path().join(VERSIONS_DIR)).unwrap().count();
        assert_eq!(files, 2, "no version file is written for a re-registration");
    }

    #[test]
    fn restart_keeps_ids_and_versions_and_continues_numbering() {
        let dir = tempfile::tempdir().unwrap();
        {
            let reg = Registry::open(dir.path()).unwrap();
            assert_eq!(reg.register("s", &avro(S1)).unwrap(), 1);
            assert_eq!(reg.register("s", &avro(S2)).unwrap(), 2);
            assert_eq!(reg.register("t", &avro(S1)).unwrap(), 1);
        }
        // A crashed write leaves a temporary file; it is ignored and removed.
        let leftover = dir.path().join(SCHEMAS_DIR).join(".3.json.tmp");
        fs::write(&leftover, b"{\"id\":3,\"sche").unwrap();

        let reg = Registry::open(dir.path()).unwrap();
        assert!(!leftover.exists());
        assert_eq!(reg.subjects(""), vec!["s".to_string(), "t".to_string()]);
        assert_eq!(reg.versions("s").unwrap(), vec![1, 2]);
        let v2 = reg.version("s", VersionSpec::Latest).unwrap();
        assert_eq!((v2.version, v2.schema.id), (2, 2));
        assert_eq!(&*v2.schema.text, S2);
        assert_eq!(
            reg.register("s", &avro(S2)).unwrap(),
            2,
            "still known after restart"
        );
        assert_eq!(reg.max_id(), 2);
        assert_eq!(
            reg.register("u", &avro(S3)).unwrap(),
            3,
            "next id continues"
        );
        assert_eq!(reg.register("s", &avro(S3)).unwrap(), 3);
        assert_eq!(reg.versions("s").unwrap(), vec![1, 2, 3]);

        // And once more, to check the sequence of version files continued too.
        drop(reg);
        let reg = Registry::open(dir.path()).unwrap();
        assert_eq!(reg.versions("s").unwrap(), vec![1, 2, 3]);
        assert_eq!(reg.versions("u").unwrap(), vec![1]);
    }

    #[test]
    fn ids_are_not_reused_after_an_orphan_schema_file() {
        // A crash between the schema file and the version file leaves an id
        // with no version; that id must stay taken.
        let dir = tempfile::tempdir().unwrap();
        {
            let reg = Registry::open(dir.path()).unwrap();
            reg.register("s", &avro(S1)).unwrap();
        }
        fs::remove_file(dir.path().join(VERSIONS_DIR).join(version_file_name(1))).unwrap();
        let reg = Registry::open(dir.path()).unwrap();
        assert!(reg.subjects("").is_empty());
        assert_eq!(reg.register("t", &avro(S2)).unwrap(), 2);
        assert_eq!(reg.register("s", &avro(S1)).unwrap(), 1);
    }

    #[test]
    fn corrupt_files_are_reported_by_name() {
        let dir = tempfile::tempdir().unwrap();
        {
            let reg = Registry::open(dir.path()).unwrap();
            reg.register("s", &avro(S1)).unwrap();
        }
        let schema_file = dir.path().join(SCHEMAS_DIR).join("1.json");
        let good = fs::read(&schema_file).unwrap();

        fs::write(&schema_file, b"{\"id\":1,\"schemaT").unwrap();
        let err = Registry::open(dir.path()).err().expect("must fail");
        assert!(matches!(err, RegistryError::Corrupt { ref path, .. } if *path == schema_file));
        assert!(err.to_string().contains("1.json"), "{err}");

        // Valid JSON, wrong id for its name.
        fs::write(
            &schema_file,
            br#"{"id":7,"schemaType":"AVRO","schema":"\"int\""}"#,
        )
        .unwrap();
        let err = Registry::open(dir.path()).err().expect("must fail");
        assert!(err.to_string().contains("id 7"), "{err}");

        // A version pointing at a missing schema.
        fs::write(&schema_file, &good).unwrap();
        let vfile = dir.path().join(VERSIONS_DIR).join(version_file_name(1));
        fs::write(&vfile, br#"{"subject":"s","version":1,"id":9}"#).unwrap();
        let err = Registry::open(dir.path()).err().expect("must fail");
        assert!(matches!(err, RegistryError::Corrupt { ref path, .. } if *path == vfile));
        assert!(err.to_string().contains("schema id 9"), "{err}");
    }

    #[test]
    fn concurrent_registrations_of_one_schema_get_one_id() {
        let dir = tempfile::tempdir().unwrap();
        let reg = Arc::new(Registry::open(dir.path()).unwrap());
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let reg = reg.clone();
                std::thread::spawn(move || {
                    let subject = format!("s{}", i % 2);
                    reg.register(&subject, &avro(S2)).unwrap()
                })
            })
            .collect();
        let ids: BTreeSet<u32> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(ids, BTreeSet::from([1]));
        assert_eq!(reg.versions("s0").unwrap(), vec![1]);
        assert_eq!(reg.versions("s1").unwrap(), vec![1]);
    }

    #[test]
    fn version_spec_parsing() {
        assert_eq!(VersionSpec::parse("latest").unwrap(), VersionSpec::Latest);
        assert_eq!(VersionSpec::parse("-1").unwrap(), VersionSpec::Latest);
        assert_eq!(VersionSpec::parse("3").unwrap(), VersionSpec::Number(3));
        for bad in ["0", "-2", "abc", "", "2147483648", "1.5"] {
            assert_eq!(VersionSpec::parse(bad).unwrap_err().code, 42202, "{bad:?}");
        }
    }

    #[test]
    fn lookup_and_not_found_codes() {
        let dir = tempfile::tempdir().unwrap();
        let reg = Registry::open(dir.path()).unwrap();
        reg.register("s", &avro(S1)).unwrap();
        reg.register("t", &avro(S2)).unwrap();
        let found = reg.lookup("s", &avro(S1).key).unwrap();
        assert_eq!((found.version, found.schema.id), (1, 1));
        // S2 exists globally but not under "s".
        assert_eq!(reg.lookup("s", &avro(S2).key).unwrap_err().code, 40403);
        assert_eq!(reg.lookup("nope", &avro(S1).key).unwrap_err().code, 40401);
        assert_eq!(
            reg.version("s", VersionSpec::Number(2)).unwrap_err().code,
            40402
        );
        assert_eq!(reg.versions("nope").unwrap_err().code, 40401);
        assert!(reg.schema(3).is_none());
        assert_eq!(reg.subjects("t"), vec!["t".to_string()]);
    }
}
