//! The source position in the offsets topic: one record per slot (key = slot name), a
//! small JSON value, written in the same Kafka transaction as the events it covers.

use serde_json::{json, Value};
use std::sync::Arc;

use sluice_core::{
    Blocked, KeyOrder, Lsn, Piece, Position, Resume, RowKey, SnapshotProgress, TableName,
};

use crate::error::SinkError;
use crate::raw;

/// The partition positions are written to and read from.
pub const PARTITION: i32 = 0;

/// Serializes a position (format version 1).
pub fn encode(p: &Position) -> Vec<u8> {
    let resume = p
        .resume
        .map(|r| json!({"commit_lsn": r.commit_lsn.0, "ordinal": r.ordinal}));
    let blocked: Vec<Value> = p
        .blocked
        .iter()
        .map(|b| {
            json!({"schema": b.table.schema, "table": b.table.name,
                   "commit_lsn": b.commit_lsn.0, "ordinal": b.ordinal})
        })
        .collect();
    json!({
        "v": 1,
        "end_lsn": p.end_lsn.0,
        "end_lsn_text": p.end_lsn.to_string(),
        "resume": resume,
        "snapshot_pending": p.snapshot_pending,
        "blocked": blocked,
        "snapshot": p.snapshot.as_ref().map(encode_snapshot),
    })
    .to_string()
    .into_bytes()
}

fn encode_table(t: &TableName) -> Value {
    json!([t.schema, t.name])
}

fn encode_row_key(k: &RowKey) -> Value {
    json!({"table": encode_table(&k.table), "key": k.key.as_deref()})
}

fn encode_snapshot(s: &SnapshotProgress) -> Value {
    json!({
        "tables": s.tables.iter().map(encode_table).collect::<Vec<_>>(),
        "pieces": s.pieces.iter().map(|p| json!({
            "lsn": p.lsn.0,
            "after": p.after.as_ref().map(encode_row_key),
        })).collect::<Vec<_>>(),
        "cursor": s.cursor.as_ref().map(encode_row_key),
        "key_order": match s.key_order {
            KeyOrder::Index => "index",
            KeyOrder::Columns => "columns",
        },
    })
}

fn decode_table(v: &Value) -> Result<TableName, String> {
    match v.as_array().map(Vec::as_slice) {
        Some([Value::String(s), Value::String(n)]) => Ok(TableName::new(s, n)),
        _ => Err(format!("snapshot table {v} is not [schema, name]")),
    }
}

fn decode_row_key(v: &Value) -> Result<Option<RowKey>, String> {
    if v.is_null() {
        return Ok(None);
    }
    let key = match &v["key"] {
        Value::Null => None,
        Value::Array(parts) => Some(
            parts
                .iter()
                .map(|p| {
                    p.as_str()
                        .map(str::to_string)
                        .ok_or("snapshot key part is not a string")
                })
                .collect::<Result<Vec<_>, _>>()?
                .into(),
        ),
        other => return Err(format!("snapshot key {other} is not a list")),
    };
    let key: Option<Arc<[String]>> = key;
    Ok(Some(RowKey {
        table: decode_table(&v["table"])?,
        key,
    }))
}

fn decode_snapshot(v: &Value) -> Result<Option<SnapshotProgress>, String> {
    if v.is_null() {
        return Ok(None);
    }
    let tables = v["tables"]
        .as_array()
        .ok_or("snapshot.tables missing")?
        .iter()
        .map(decode_table)
        .collect::<Result<_, _>>()?;
    let pieces = v["pieces"]
        .as_array()
        .ok_or("snapshot.pieces missing")?
        .iter()
        .map(|p| {
            Ok(Piece {
                lsn: Lsn(p["lsn"].as_u64().ok_or("snapshot piece lsn missing")?),
                after: decode_row_key(&p["after"])?,
            })
        })
        .collect::<Result<_, String>>()?;
    Ok(Some(SnapshotProgress {
        tables,
        pieces,
        cursor: decode_row_key(&v["cursor"])?,
        // Records without it come from versions that read in table column order.
        key_order: match &v["key_order"] {
            Value::Null => KeyOrder::Columns,
            v if v == "index" => KeyOrder::Index,
            v if v == "columns" => KeyOrder::Columns,
            other => return Err(format!("unknown snapshot key order {other}")),
        },
    }))
}

pub fn decode(bytes: &[u8]) -> Result<Position, String> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    if v["v"] != json!(1) {
        return Err(format!("unknown position format {}", v["v"]));
    }
    let end = v["end_lsn"].as_u64().ok_or("end_lsn missing")?;
    let resume = match &v["resume"] {
        Value::Null => None,
        r => Some(Resume {
            commit_lsn: Lsn(r["commit_lsn"]
                .as_u64()
                .ok_or("resume.commit_lsn missing")?),
            ordinal: r["ordinal"].as_u64().ok_or("resume.ordinal missing")?,
        }),
    };
    let mut blocked = Vec::new();
    if let Some(list) = v["blocked"].as_array() {
        for b in list {
            blocked.push(Blocked {
                table: TableName::new(
                    b["schema"].as_str().ok_or("blocked.schema missing")?,
                    b["table"].as_str().ok_or("blocked.table missing")?,
                ),
                commit_lsn: Lsn(b["commit_lsn"]
                    .as_u64()
                    .ok_or("blocked.commit_lsn missing")?),
                ordinal: b["ordinal"].as_u64().ok_or("blocked.ordinal missing")?,
            });
        }
    }
    Ok(Position {
        end_lsn: Lsn(end),
        resume,
        snapshot_pending: v["snapshot_pending"].as_bool().unwrap_or(false),
        blocked,
        snapshot: decode_snapshot(&v["snapshot"])?,
    })
}

/// The last committed position for `key`, reading the topic's raw log and applying
/// read_committed ourselves. `None` when the topic or the key has none.
pub async fn load(
    bootstrap: &str,
    security: &crate::Security,
    topic: &str,
    key: &str,
) -> Result<Option<Position>, SinkError> {
    read(bootstrap, security, topic, key, true).await
}

/// Like [`load`] for a topic known to exist (just created or checked): a broker that
/// answers "unknown topic" is a transient error, never "no position" — taking it for
/// one would make the next start drop the slot and snapshot again.
pub async fn load_existing(
    bootstrap: &str,
    security: &crate::Security,
    topic: &str,
    key: &str,
) -> Result<Option<Position>, SinkError> {
    read(bootstrap, security, topic, key, false).await
}

async fn read(
    bootstrap: &str,
    security: &crate::Security,
    topic: &str,
    key: &str,
    missing_is_none: bool,
) -> Result<Option<Position>, SinkError> {
    let err = |reason: String| SinkError::Offsets {
        topic: topic.to_string(),
        reason,
    };
    let rc = match raw::read_committed(bootstrap, security, topic, PARTITION).await {
        Ok(rc) => rc,
        Err(e) if missing_is_none && e.is_unknown_topic() => return Ok(None),
        Err(e) => return Err(err(e.to_string())),
    };
    if rc.undecided() > 0 {
        // Only our transactional.id writes here, and initializing it completed any
        // open transaction; undecided records mean another writer is active.
        tracing::warn!(
            topic,
            records = rc.undecided(),
            "offsets topic has records of a still-open transaction; ignoring them"
        );
    }
    let mut last = None;
    for r in rc.committed.iter().rev() {
        if r.key.as_deref() == Some(key.as_bytes()) {
            last = Some(r);
            break;
        }
    }
    match last {
        None => Ok(None),
        Some(r) => match &r.value {
            // A tombstone: the position was deliberately reset.
            None => Ok(None),
            Some(v) => decode(v)
                .map(Some)
                .map_err(|e| err(format!("record at offset {}: {e}", r.offset))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_bad_input() {
        for p in [
            Position::default(),
            Position {
                end_lsn: Lsn(0x1_0000_0010),
                resume: Some(Resume {
                    commit_lsn: Lsn(77),
                    ordinal: 9,
                }),
                snapshot_pending: true,
                blocked: vec![Blocked {
                    table: TableName::new("s", "t"),
                    commit_lsn: Lsn(5),
                    ordinal: 1,
                }],
                snapshot: Some(SnapshotProgress {
                    tables: vec![TableName::new("s", "t"), TableName::new("s", "u")],
                    pieces: vec![
                        Piece {
                            lsn: Lsn(10),
                            after: None,
                        },
                        Piece {
                            lsn: Lsn(20),
                            after: Some(RowKey {
                                table: TableName::new("s", "t"),
                                key: Some(vec!["1".to_string(), "a\"b".to_string()].into()),
                            }),
                        },
                    ],
                    cursor: Some(RowKey {
                        table: TableName::new("s", "u"),
                        key: None,
                    }),
                    key_order: KeyOrder::Index,
                }),
            },
        ] {
            assert_eq!(decode(&encode(&p)).unwrap(), p);
        }
        // A snapshot started by a version that read in table column order resumes in it.
        let old =
            b"{\"v\":1,\"end_lsn\":1,\"snapshot\":{\"tables\":[],\"pieces\":[],\"cursor\":null}}";
        let p = decode(old).unwrap();
        assert_eq!(p.snapshot.unwrap().key_order, KeyOrder::Columns);
        let p = Position {
            snapshot: Some(SnapshotProgress {
                key_order: KeyOrder::Columns,
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(decode(&encode(&p)).unwrap(), p);
        for bad in [
            &b""[..],
            b"{}",
            b"{\"v\":2}",
            b"{\"v\":1}",
            b"[1]",
            b"\xff",
            b"{\"v\":1,\"end_lsn\":1,\"snapshot\":{\"tables\":[1],\"pieces\":[]}}",
            b"{\"v\":1,\"end_lsn\":1,\"snapshot\":{\"tables\":[],\"pieces\":[{}]}}",
            b"{\"v\":1,\"end_lsn\":1,\"snapshot\":{\"tables\":[],\"pieces\":[],\"key_order\":\"random\"}}",
        ] {
            assert!(decode(bad).is_err(), "{bad:?}");
        }
    }
}
