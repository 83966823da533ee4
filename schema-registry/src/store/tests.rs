//! Registry tests on the directory backend (the Kafka backend is tested
//! against a broker in `tests/kafka.rs`).

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::sync::Arc;

use super::dir::log_file_name;
use super::*;
use crate::compat::CompatibilityLevel;
use crate::mode::Mode;
use crate::schema::{prepare, PreparedSchema};

fn avro(text: &str) -> PreparedSchema {
    prepare(SchemaType::Avro, text, false).unwrap()
}

const S1: &str = r#"{"type":"record","name":"A","fields":[{"name":"x","type":"int"}]}"#;
const S2: &str = r#"{"type":"record","name":"A","fields":[{"name":"x","type":"int"},{"name":"y","type":["null","string"],"default":null}]}"#;
const S3: &str = r#""string""#;
/// Adds a field without a default: not BACKWARD compatible with S1.
const S1_BAD: &str = r#"{"type":"record","name":"A","fields":[{"name":"x","type":"int"},{"name":"z","type":"long"}]}"#;

fn log_files(dir: &Path) -> usize {
    fs::read_dir(dir.join("log")).unwrap().count()
}

fn none_level(reg: &Registry) {
    reg.set_level(None, CompatibilityLevel::None).unwrap();
}

#[test]
fn same_schema_under_two_subjects_gets_the_same_id() {
    let dir = tempfile::tempdir().unwrap();
    let reg = Registry::open(dir.path()).unwrap();
    none_level(&reg);
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
        reg.usages(a, false).unwrap(),
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
    assert_eq!(reg.versions("s", Deleted::Exclude).unwrap(), vec![1, 2]);
    // Re-register both the latest and an older schema.
    assert_eq!(reg.register("s", &avro(S2)).unwrap(), id2);
    assert_eq!(reg.register("s", &avro(S1)).unwrap(), id1);
    assert_eq!(reg.versions("s", Deleted::Exclude).unwrap(), vec![1, 2]);
    assert_eq!(
        log_files(dir.path()),
        2,
        "nothing is written for a re-registration"
    );
}

#[test]
fn restart_keeps_ids_versions_config_and_modes_and_continues_numbering() {
    let dir = tempfile::tempdir().unwrap();
    {
        let reg = Registry::open(dir.path()).unwrap();
        assert_eq!(reg.register("s", &avro(S1)).unwrap(), 1);
        assert_eq!(reg.register("s", &avro(S2)).unwrap(), 2);
        assert_eq!(reg.register("t", &avro(S1)).unwrap(), 1);
        reg.set_level(Some("u"), CompatibilityLevel::Full).unwrap();
        reg.set_level(None, CompatibilityLevel::None).unwrap();
        reg.set_mode(Some("ro"), Mode::ReadOnly, false).unwrap();
    }
    // A crashed write leaves a temporary file; it is ignored and removed.
    let leftover = dir
        .path()
        .join("log")
        .join(".00000000000000000099.json.tmp");
    fs::write(&leftover, b"[{\"key\":").unwrap();

    let reg = Registry::open(dir.path()).unwrap();
    assert!(!leftover.exists());
    assert_eq!(reg.skipped_records(), 0);
    assert_eq!(
        reg.subjects("", Deleted::Exclude),
        vec!["s".to_string(), "t".to_string()]
    );
    assert_eq!(reg.versions("s", Deleted::Exclude).unwrap(), vec![1, 2]);
    let v2 = reg.version("s", VersionSpec::Latest, false).unwrap();
    assert_eq!((v2.version, v2.schema.id), (2, 2));
    assert_eq!(&*v2.schema.text, S2);
    assert_eq!(reg.subject_level("u").unwrap(), CompatibilityLevel::Full);
    assert_eq!(reg.global_level(), CompatibilityLevel::None);
    assert_eq!(reg.subject_mode("ro").unwrap(), Mode::ReadOnly);
    assert_eq!(reg.subject_mode("s").unwrap_err().code, 40409);
    assert_eq!(reg.subject_level("s").unwrap_err().code, 40408);
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
    assert_eq!(reg.versions("s", Deleted::Exclude).unwrap(), vec![1, 2, 3]);

    // And once more, to check the log's sequence continued too.
    drop(reg);
    let reg = Registry::open(dir.path()).unwrap();
    assert_eq!(reg.versions("s", Deleted::Exclude).unwrap(), vec![1, 2, 3]);
    assert_eq!(reg.versions("u", Deleted::Exclude).unwrap(), vec![1]);
}

/// Write the directory layout of the registry before the log existed.
fn write_legacy(dir: &Path, schemas: &[(u32, &str)], versions: &[(u64, &str, u32, u32)]) {
    fs::create_dir_all(dir.join("schemas")).unwrap();
    fs::create_dir_all(dir.join("versions")).unwrap();
    for (id, text) in schemas {
        let body = serde_json::json!({"id": id, "schemaType": "AVRO", "schema": text});
        fs::write(dir.join(format!("schemas/{id}.json")), body.to_string()).unwrap();
    }
    for (seq, subject, version, id) in versions {
        let body = serde_json::json!({"subject": subject, "version": version, "id": id});
        fs::write(
            dir.join(format!("versions/{seq:020}.json")),
            body.to_string(),
        )
        .unwrap();
    }
}

#[test]
fn directories_written_before_the_log_still_load() {
    let dir = tempfile::tempdir().unwrap();
    // Id 3 has no version (a crash between the two files): it stays taken.
    write_legacy(
        dir.path(),
        &[(1, S1), (2, S2), (3, S3)],
        &[(1, "s", 1, 1), (2, "s", 2, 2), (3, "t", 1, 1)],
    );
    let reg = Registry::open(dir.path()).unwrap();
    assert_eq!(reg.skipped_records(), 0);
    assert_eq!(reg.versions("s", Deleted::Exclude).unwrap(), vec![1, 2]);
    assert_eq!(reg.versions("t", Deleted::Exclude).unwrap(), vec![1]);
    assert_eq!(&*reg.schema(3).unwrap().text, S3);
    assert_eq!(reg.max_id(), 3);
    none_level(&reg);
    assert_eq!(reg.register("u", &avro(S3)).unwrap(), 3);
    let s4 = r#""bytes""#;
    assert_eq!(reg.register("u", &avro(s4)).unwrap(), 4);
    // Deleting a legacy version works through the log.
    reg.delete_version("t", VersionSpec::Number(1), false)
        .unwrap();
    drop(reg);
    let reg = Registry::open(dir.path()).unwrap();
    assert_eq!(reg.versions("u", Deleted::Exclude).unwrap(), vec![1, 2]);
    assert_eq!(reg.versions("t", Deleted::Only).unwrap(), vec![1]);
    assert!(reg.schema(4).is_some());
}

#[test]
fn corrupt_and_foreign_records_are_skipped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    // Legacy: schema 2's file is truncated, a version refers to a missing
    // schema, one file has a foreign name.
    write_legacy(
        dir.path(),
        &[(1, S1), (2, S2)],
        &[(1, "s", 1, 1), (2, "s", 2, 9)],
    );
    fs::write(dir.path().join("schemas/2.json"), b"{\"id\":2,\"sche").unwrap();
    fs::write(dir.path().join("schemas/x.json"), b"{}").unwrap();
    {
        let reg = Registry::open(dir.path()).unwrap();
        assert_eq!(reg.skipped_records(), 3);
        assert_eq!(reg.versions("s", Deleted::Exclude).unwrap(), vec![1]);
        // The truncated schema's id is not handed out again.
        assert_eq!(reg.max_id(), 2);
        none_level(&reg);
        assert_eq!(reg.register("t", &avro(S3)).unwrap(), 3);
        reg.set_level(Some("t"), CompatibilityLevel::Full).unwrap();
    }
    // Log: a truncated batch, a batch with a foreign record next to a good
    // one, a file with a foreign name.
    let log = dir.path().join("log");
    fs::write(log.join(log_file_name(50)), b"[{\"key\": {\"keytype\"").unwrap();
    let good = Record::Config {
        subject: Some("z".into()),
        level: Some(CompatibilityLevel::Forward),
    }
    .encode();
    let batch = format!(
        r#"[{{"key": {{"keytype":"DELETE_SUBJECT","subject":"s","magic":0}}, "value": {{"subject":"s","version":1}}}},
            {{"key": {}, "value": {}}}]"#,
        String::from_utf8(good.key).unwrap(),
        String::from_utf8(good.value.unwrap()).unwrap()
    );
    fs::write(log.join(log_file_name(51)), batch).unwrap();
    fs::write(log.join("notes.json"), b"[]").unwrap();
    let reg = Registry::open(dir.path()).unwrap();
    assert_eq!(reg.skipped_records(), 3 + 3);
    assert_eq!(reg.subject_level("t").unwrap(), CompatibilityLevel::Full);
    assert_eq!(reg.subject_level("z").unwrap(), CompatibilityLevel::Forward);
    assert_eq!(reg.versions("t", Deleted::Exclude).unwrap(), vec![1]);
    // New writes go after the highest file.
    reg.set_level(Some("t"), CompatibilityLevel::None).unwrap();
    assert!(log.join(log_file_name(52)).exists());
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
    assert_eq!(reg.versions("s0", Deleted::Exclude).unwrap(), vec![1]);
    assert_eq!(reg.versions("s1", Deleted::Exclude).unwrap(), vec![1]);
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
    let found = reg.lookup("s", &avro(S1).key, false).unwrap();
    assert_eq!((found.version, found.schema.id), (1, 1));
    // S2 exists globally but not under "s".
    assert_eq!(
        reg.lookup("s", &avro(S2).key, false).unwrap_err().code,
        40403
    );
    assert_eq!(
        reg.lookup("nope", &avro(S1).key, false).unwrap_err().code,
        40401
    );
    assert_eq!(
        reg.version("s", VersionSpec::Number(2), false)
            .unwrap_err()
            .code,
        40402
    );
    assert_eq!(
        reg.versions("nope", Deleted::Exclude).unwrap_err().code,
        40401
    );
    assert!(reg.schema(3).is_none());
    assert_eq!(reg.subjects("t", Deleted::Exclude), vec!["t".to_string()]);
}

#[test]
fn soft_and_permanent_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let reg = Registry::open(dir.path()).unwrap();
    reg.register("s", &avro(S1)).unwrap();
    reg.register("s", &avro(S2)).unwrap();
    reg.set_level(Some("s"), CompatibilityLevel::Full).unwrap();

    // Version-level codes.
    let code = |r: Result<u32, ApiError>| r.unwrap_err().code;
    assert_eq!(
        code(reg.delete_version("s", VersionSpec::Number(1), true)),
        40407
    );
    assert_eq!(
        reg.delete_version("s", VersionSpec::Number(1), false)
            .unwrap(),
        1
    );
    assert_eq!(
        code(reg.delete_version("s", VersionSpec::Number(1), false)),
        40406
    );
    assert_eq!(
        code(reg.delete_version("s", VersionSpec::Number(7), false)),
        40402
    );
    assert_eq!(
        code(reg.delete_version("x", VersionSpec::Number(1), false)),
        40401
    );
    assert_eq!(reg.versions("s", Deleted::Exclude).unwrap(), vec![2]);
    assert_eq!(reg.versions("s", Deleted::Include).unwrap(), vec![1, 2]);
    assert_eq!(reg.versions("s", Deleted::Only).unwrap(), vec![1]);
    assert_eq!(
        reg.version("s", VersionSpec::Number(1), false)
            .unwrap_err()
            .code,
        40402
    );
    assert!(
        reg.version("s", VersionSpec::Number(1), true)
            .unwrap()
            .deleted
    );
    // The soft-deleted version's id still resolves.
    assert!(reg.schema(1).is_some());
    assert_eq!(reg.usages(1, false).unwrap(), vec![]);
    assert_eq!(reg.usages(1, true).unwrap(), vec![("s".to_string(), 1)]);
    assert_eq!(
        reg.lookup("s", &avro(S1).key, false).unwrap_err().code,
        40403
    );
    assert_eq!(reg.lookup("s", &avro(S1).key, true).unwrap().version, 1);

    // Subject-level: permanent needs soft first.
    let codes = |r: Result<Vec<u32>, ApiError>| r.unwrap_err().code;
    assert_eq!(codes(reg.delete_subject("s", true)), 40405);
    assert_eq!(reg.delete_subject("s", false).unwrap(), vec![2]);
    assert_eq!(codes(reg.delete_subject("s", false)), 40404);
    assert_eq!(codes(reg.delete_subject("nope", false)), 40401);
    assert!(reg.subjects("", Deleted::Exclude).is_empty());
    assert_eq!(reg.subjects("", Deleted::Only), vec!["s".to_string()]);
    assert_eq!(reg.versions("s", Deleted::Exclude).unwrap_err().code, 40401);
    // Deleting the subject removed its compatibility level.
    assert_eq!(reg.subject_level("s").unwrap_err().code, 40408);

    // Re-registering to the soft-deleted subject: a new version, same id.
    assert_eq!(reg.register("s", &avro(S1)).unwrap(), 1);
    assert_eq!(reg.versions("s", Deleted::Exclude).unwrap(), vec![3]);
    assert_eq!(reg.delete_subject("s", false).unwrap(), vec![3]);
    assert_eq!(reg.delete_subject("s", true).unwrap(), vec![1, 2, 3]);
    assert!(reg.subjects("", Deleted::Include).is_empty());
    assert!(reg.schema(1).is_none() && reg.schema(2).is_none());
    assert_eq!(reg.max_id(), 2);
    drop(reg);

    // Ids are never reused, even once every version holding them is gone.
    let reg = Registry::open(dir.path()).unwrap();
    assert!(reg.subjects("", Deleted::Include).is_empty());
    assert_eq!(reg.max_id(), 2);
    assert_eq!(reg.register("s", &avro(S1)).unwrap(), 3);
    assert_eq!(reg.versions("s", Deleted::Exclude).unwrap(), vec![1]);
}

#[test]
fn compatibility_is_enforced_per_effective_level() {
    let dir = tempfile::tempdir().unwrap();
    let reg = Registry::open(dir.path()).unwrap();
    reg.register("s", &avro(S1)).unwrap();
    // Default BACKWARD: a new field without default is refused.
    let e = reg.register("s", &avro(S1_BAD)).unwrap_err();
    assert_eq!((e.status.as_u16(), e.code), (409, 40901), "{e:?}");
    assert!(
        e.message.starts_with(
            "Schema being registered is incompatible with an earlier schema for subject \"s\", details: ["
        ),
        "{}",
        e.message
    );
    assert!(e.message.contains("{oldSchemaVersion: 1}"), "{}", e.message);
    assert!(
        e.message.contains("compatibility: 'BACKWARD'"),
        "{}",
        e.message
    );
    assert!(reg
        .test_compatibility("s", None, &avro(S2))
        .unwrap()
        .is_empty());
    assert!(!reg
        .test_compatibility("s", None, &avro(S1_BAD))
        .unwrap()
        .is_empty());
    // The subject's level wins over the global one.
    reg.set_level(None, CompatibilityLevel::Full).unwrap();
    reg.set_level(Some("s"), CompatibilityLevel::None).unwrap();
    assert_eq!(reg.register("s", &avro(S1_BAD)).unwrap(), 2);
    assert_eq!(
        reg.delete_level(Some("s")).unwrap(),
        CompatibilityLevel::None
    );
    assert_eq!(reg.delete_level(Some("s")).unwrap_err().code, 40401);
    // FULL now: S3 (a string) is neither.
    assert_eq!(reg.register("s", &avro(S3)).unwrap_err().code, 40901);
    // Soft-deleted versions are not checked against.
    reg.delete_subject("s", false).unwrap();
    assert_eq!(reg.register("s", &avro(S3)).unwrap(), 3);
    assert_eq!(reg.delete_level(None).unwrap(), CompatibilityLevel::Full);
    assert_eq!(reg.global_level(), CompatibilityLevel::Backward);
}

#[test]
fn modes() {
    let dir = tempfile::tempdir().unwrap();
    let reg = Registry::open(dir.path()).unwrap();
    reg.register("s", &avro(S1)).unwrap();
    reg.set_mode(Some("s"), Mode::ReadOnly, false).unwrap();
    let e = reg.register("s", &avro(S2)).unwrap_err();
    assert_eq!((e.code, e.status.as_u16()), (42205, 422));
    assert_eq!(reg.delete_subject("s", false).unwrap_err().code, 42205);
    assert_eq!(
        reg.delete_version("s", VersionSpec::Latest, false)
            .unwrap_err()
            .code,
        42205
    );
    // Other subjects are unaffected, until READONLY_OVERRIDE globally.
    reg.register("t", &avro(S1)).unwrap();
    reg.set_mode(None, Mode::ReadOnlyOverride, false).unwrap();
    assert_eq!(reg.register("t", &avro(S2)).unwrap_err().code, 42205);
    reg.set_mode(None, Mode::ReadWrite, false).unwrap();
    assert_eq!(reg.delete_mode("s").unwrap(), Mode::ReadOnly);
    assert_eq!(reg.delete_mode("s").unwrap_err().code, 40401);
    assert_eq!(reg.register("s", &avro(S2)).unwrap(), 2);

    // IMPORT: only with existing subjects when forced; ids are explicit.
    assert_eq!(
        reg.set_mode(None, Mode::Import, false).unwrap_err().code,
        42205
    );
    reg.set_mode(Some("imp"), Mode::Import, false).unwrap();
    let explicit = |id, version| Explicit {
        id: Some(id),
        version,
    };
    assert_eq!(reg.register("imp", &avro(S3)).unwrap_err().code, 42205);
    assert_eq!(
        reg.register_with("imp", &avro(S3), explicit(100, Some(5)))
            .unwrap(),
        100
    );
    assert_eq!(reg.versions("imp", Deleted::Exclude).unwrap(), vec![5]);
    // Same again: idempotent; same schema with another id: 42207.
    assert_eq!(
        reg.register_with("imp", &avro(S3), explicit(100, Some(5)))
            .unwrap(),
        100
    );
    assert_eq!(
        reg.register_with("imp", &avro(S3), explicit(101, None))
            .unwrap_err()
            .code,
        42207
    );
    // An id holding another schema cannot be overwritten.
    assert_eq!(
        reg.register_with("imp", &avro(r#""bytes""#), explicit(1, None))
            .unwrap_err()
            .code,
        42205
    );
    // An id holding the same schema can be reused.
    assert_eq!(
        reg.register_with("imp", &avro(S1), explicit(1, None))
            .unwrap(),
        1
    );
    assert_eq!(reg.versions("imp", Deleted::Exclude).unwrap(), vec![5, 6]);
    // Outside IMPORT an explicit id is refused; ids continue above imports.
    assert_eq!(
        reg.register_with("t", &avro(S2), explicit(200, None))
            .unwrap_err()
            .code,
        42205
    );
    assert_eq!(reg.register("u", &avro(r#""bytes""#)).unwrap(), 101);
}
