//! The records of the registry's log, and their JSON form.
//!
//! Every change is a keyed record; the state is the result of applying the
//! records in log order, the latest value of a key winning, so the log can be
//! compacted (a Kafka compacted topic keeps only the latest record per key).
//! Keys and values follow Confluent's `_schemas` topic where practical:
//!
//! ```text
//! {"keytype":"SCHEMA","subject":"s","version":1,"magic":1}
//!     {"subject":"s","version":1,"id":1,"schema":"...","deleted":false}
//!     null: the version was permanently deleted
//! {"keytype":"CONFIG","subject":"s","magic":0}   {"compatibilityLevel":"FULL"}
//! {"keytype":"CONFIG","magic":0}                 global level; null: deleted
//! {"keytype":"MODE","subject":"s","magic":0}     {"mode":"READONLY"}
//! {"keytype":"NOOP","magic":0}                   ignored
//! {"keytype":"ID_HIGH_WATER","magic":0}          {"maxId":7} (Sluice's own)
//! ```
//!
//! `ID_HIGH_WATER` records the highest id ever handed out; it is written with
//! every permanent delete, so that ids stay unique even once the versions
//! holding the highest id are gone from a compacted log.

use serde::{Deserialize, Serialize};

use crate::compat::CompatibilityLevel;
use crate::mode::Mode;
use crate::schema::SchemaType;

/// One change of the registry's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Record {
    /// A version of a subject; `None` once permanently deleted.
    Version {
        subject: String,
        version: u32,
        value: Option<VersionValue>,
    },
    /// The compatibility level of a subject, or the global one (`subject`
    /// `None`); `level` `None` once deleted.
    Config {
        subject: Option<String>,
        level: Option<CompatibilityLevel>,
    },
    /// The mode of a subject or the global one; `mode` `None` once deleted.
    Mode {
        subject: Option<String>,
        mode: Option<Mode>,
    },
    /// The highest schema id ever allocated.
    IdHighWater { max_id: u32 },
    /// No change (Confluent writes these to synchronize readers).
    Noop,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct VersionValue {
    pub id: u32,
    pub schema_type: SchemaType,
    pub schema: String,
    pub deleted: bool,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "keytype")]
enum KeyJson {
    #[serde(rename = "SCHEMA")]
    Schema {
        subject: String,
        version: u32,
        #[serde(default)]
        magic: u32,
    },
    #[serde(rename = "CONFIG")]
    Config {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        subject: Option<String>,
        #[serde(default)]
        magic: u32,
    },
    #[serde(rename = "MODE")]
    Mode {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        subject: Option<String>,
        #[serde(default)]
        magic: u32,
    },
    #[serde(rename = "NOOP")]
    Noop {
        #[serde(default)]
        magic: u32,
    },
    #[serde(rename = "ID_HIGH_WATER")]
    IdHighWater {
        #[serde(default)]
        magic: u32,
    },
}

#[derive(Serialize, Deserialize)]
struct SchemaValueJson {
    subject: String,
    version: u32,
    id: u32,
    #[serde(
        rename = "schemaType",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    schema_type: Option<String>,
    schema: String,
    #[serde(default)]
    deleted: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    references: Option<Vec<serde_json::Value>>,
}

#[derive(Serialize, Deserialize)]
struct ConfigValueJson {
    #[serde(rename = "compatibilityLevel")]
    compatibility_level: String,
}

#[derive(Serialize, Deserialize)]
struct ModeValueJson {
    mode: String,
}

#[derive(Serialize, Deserialize)]
struct HighWaterJson {
    #[serde(rename = "maxId")]
    max_id: u32,
}

/// A record in its stored form: key JSON and value JSON (`None`: tombstone).
pub(crate) struct Encoded {
    pub key: Vec<u8>,
    pub value: Option<Vec<u8>>,
}

fn to_vec<T: Serialize>(v: &T) -> Vec<u8> {
    // Serializing these plain structs cannot fail.
    serde_json::to_vec(v).unwrap_or_default()
}

impl Record {
    pub fn encode(&self) -> Encoded {
        match self {
            Record::Version {
                subject,
                version,
                value,
            } => Encoded {
                key: to_vec(&KeyJson::Schema {
                    subject: subject.clone(),
                    version: *version,
                    magic: 1,
                }),
                value: value.as_ref().map(|v| {
                    to_vec(&SchemaValueJson {
                        subject: subject.clone(),
                        version: *version,
                        id: v.id,
                        schema_type: match v.schema_type {
                            SchemaType::Avro => None,
                        },
                        schema: v.schema.clone(),
                        deleted: v.deleted,
                        references: None,
                    })
                }),
            },
            Record::Config { subject, level } => Encoded {
                key: to_vec(&KeyJson::Config {
                    subject: subject.clone(),
                    magic: 0,
                }),
                value: level.map(|l| {
                    to_vec(&ConfigValueJson {
                        compatibility_level: l.as_str().to_string(),
                    })
                }),
            },
            Record::Mode { subject, mode } => Encoded {
                key: to_vec(&KeyJson::Mode {
                    subject: subject.clone(),
                    magic: 0,
                }),
                value: mode.map(|m| {
                    to_vec(&ModeValueJson {
                        mode: m.as_str().to_string(),
                    })
                }),
            },
            Record::IdHighWater { max_id } => Encoded {
                key: to_vec(&KeyJson::IdHighWater { magic: 0 }),
                value: Some(to_vec(&HighWaterJson { max_id: *max_id })),
            },
            Record::Noop => Encoded {
                key: to_vec(&KeyJson::Noop { magic: 0 }),
                value: None,
            },
        }
    }

    /// Decode a stored record; the error says why it cannot be used.
    pub fn decode(key: &[u8], value: Option<&[u8]>) -> Result<Record, String> {
        let key: KeyJson = serde_json::from_slice(key).map_err(|e| {
            format!(
                "the key is not a registry record key: {e}: {}",
                String::from_utf8_lossy(&key[..key.len().min(200)])
            )
        })?;
        fn value_of<'a, T: Deserialize<'a>>(what: &str, v: &'a [u8]) -> Result<T, String> {
            serde_json::from_slice(v).map_err(|e| format!("invalid {what} value: {e}"))
        }
        match key {
            KeyJson::Schema {
                subject, version, ..
            } => {
                if version == 0 || version > super::MAX_ID {
                    return Err(format!("invalid version {version}"));
                }
                let value = match value {
                    None => None,
                    Some(v) => {
                        let v: SchemaValueJson = value_of("schema", v)?;
                        if v.subject != subject || v.version != version {
                            return Err(format!(
                                "the value is for subject '{}' version {} but the key for subject '{subject}' version {version}",
                                v.subject, v.version
                            ));
                        }
                        if v.id == 0 || v.id > super::MAX_ID {
                            return Err(format!("invalid schema id {}", v.id));
                        }
                        if v.references.as_ref().is_some_and(|r| !r.is_empty()) {
                            return Err("schema references are not supported".into());
                        }
                        let schema_type = match v.schema_type.as_deref() {
                            None => SchemaType::Avro,
                            Some(t) if t.eq_ignore_ascii_case("AVRO") => SchemaType::Avro,
                            Some(t) => return Err(format!("unsupported schemaType {t}")),
                        };
                        Some(VersionValue {
                            id: v.id,
                            schema_type,
                            schema: v.schema,
                            deleted: v.deleted,
                        })
                    }
                };
                Ok(Record::Version {
                    subject,
                    version,
                    value,
                })
            }
            KeyJson::Config { subject, .. } => {
                let level = match value {
                    None => None,
                    Some(v) => {
                        let v: ConfigValueJson = value_of("config", v)?;
                        Some(
                            CompatibilityLevel::parse(&v.compatibility_level).ok_or_else(|| {
                                format!("unknown compatibility level {}", v.compatibility_level)
                            })?,
                        )
                    }
                };
                Ok(Record::Config { subject, level })
            }
            KeyJson::Mode { subject, .. } => {
                let mode = match value {
                    None => None,
                    Some(v) => {
                        let v: ModeValueJson = value_of("mode", v)?;
                        Some(
                            Mode::parse(&v.mode)
                                .ok_or_else(|| format!("unknown mode {}", v.mode))?,
                        )
                    }
                };
                Ok(Record::Mode { subject, mode })
            }
            KeyJson::IdHighWater { .. } => {
                let v: HighWaterJson = value_of(
                    "id high-water",
                    value.ok_or("the id high-water mark is null")?,
                )?;
                Ok(Record::IdHighWater { max_id: v.max_id })
            }
            KeyJson::Noop { .. } => Ok(Record::Noop),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(r: Record) {
        let e = r.encode();
        let back = Record::decode(&e.key, e.value.as_deref()).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn records_round_trip() {
        round_trip(Record::Version {
            subject: "s/ü".into(),
            version: 3,
            value: Some(VersionValue {
                id: 7,
                schema_type: SchemaType::Avro,
                schema: r#""int""#.into(),
                deleted: true,
            }),
        });
        round_trip(Record::Version {
            subject: "s".into(),
            version: 1,
            value: None,
        });
        for subject in [None, Some("s".to_string())] {
            round_trip(Record::Config {
                subject: subject.clone(),
                level: Some(CompatibilityLevel::FullTransitive),
            });
            round_trip(Record::Config {
                subject: subject.clone(),
                level: None,
            });
            round_trip(Record::Mode {
                subject: subject.clone(),
                mode: Some(Mode::ReadOnlyOverride),
            });
            round_trip(Record::Mode {
                subject,
                mode: None,
            });
        }
        round_trip(Record::IdHighWater { max_id: 9 });
        round_trip(Record::Noop);
    }

    #[test]
    fn keys_look_like_confluents() {
        let e = Record::Version {
            subject: "s".into(),
            version: 1,
            value: Some(VersionValue {
                id: 1,
                schema_type: SchemaType::Avro,
                schema: "\"int\"".into(),
                deleted: false,
            }),
        }
        .encode();
        assert_eq!(
            String::from_utf8(e.key).unwrap(),
            r#"{"keytype":"SCHEMA","subject":"s","version":1,"magic":1}"#
        );
        assert_eq!(
            String::from_utf8(e.value.unwrap()).unwrap(),
            r#"{"subject":"s","version":1,"id":1,"schema":"\"int\"","deleted":false}"#
        );
        let e = Record::Config {
            subject: None,
            level: Some(CompatibilityLevel::Full),
        }
        .encode();
        assert_eq!(
            String::from_utf8(e.key).unwrap(),
            r#"{"keytype":"CONFIG","magic":0}"#
        );
        assert_eq!(
            String::from_utf8(e.value.unwrap()).unwrap(),
            r#"{"compatibilityLevel":"FULL"}"#
        );
    }

    #[test]
    fn foreign_and_broken_records_are_errors_not_panics() {
        let cases: &[(&[u8], Option<&[u8]>)] = &[
            (b"", None),
            (b"{", None),
            (b"[]", None),
            (
                br#"{"keytype":"DELETE_SUBJECT","subject":"s","magic":0}"#,
                None,
            ),
            (
                br#"{"keytype":"SCHEMA","subject":"s","version":1,"magic":1}"#,
                Some(b"{}"),
            ),
            (
                br#"{"keytype":"SCHEMA","subject":"s","version":1,"magic":1}"#,
                Some(br#"{"subject":"t","version":1,"id":1,"schema":"x"}"#),
            ),
            (
                br#"{"keytype":"SCHEMA","subject":"s","version":1,"magic":1}"#,
                Some(br#"{"subject":"s","version":1,"id":1,"schema":"x","schemaType":"PROTOBUF"}"#),
            ),
            (
                br#"{"keytype":"SCHEMA","subject":"s","version":0,"magic":1}"#,
                None,
            ),
            (
                br#"{"keytype":"CONFIG","magic":0}"#,
                Some(br#"{"compatibilityLevel":"SIDEWAYS"}"#),
            ),
            (br#"{"keytype":"MODE","magic":0}"#, Some(br#"{"mode":7}"#)),
            (br#"{"keytype":"ID_HIGH_WATER","magic":0}"#, None),
        ];
        for (k, v) in cases {
            assert!(
                Record::decode(k, *v).is_err(),
                "{:?}",
                String::from_utf8_lossy(k)
            );
        }
        // Confluent's global config key carries "subject": null.
        let r = Record::decode(
            br#"{"keytype":"CONFIG","subject":null,"magic":0}"#,
            Some(br#"{"compatibilityLevel":"forward"}"#),
        )
        .unwrap();
        assert_eq!(
            r,
            Record::Config {
                subject: None,
                level: Some(CompatibilityLevel::Forward)
            }
        );
    }
}
