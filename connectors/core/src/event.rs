//! What a source emits: transaction boundaries, row changes and heartbeats.
//!
//! Contract between a source and a sink:
//! - events arrive in source commit order; the changes of one source transaction lie
//!   between its `Begin` and `Commit`;
//! - a sink reports a position back (see [`crate::Lsn`]) only once every event up to and
//!   including that transaction's `Commit` is durably committed downstream; the source
//!   confirms to the database nothing beyond what the sink reported.

use std::sync::Arc;

use crate::{Lsn, Row, Table};

/// The kind of change, with Debezium's one-letter codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    Create,
    Update,
    Delete,
    /// A row read by the initial snapshot.
    Read,
    /// The table was truncated (no rows, no key).
    Truncate,
    /// A logical decoding message (`pg_logical_emit_message`).
    Message,
}

impl Op {
    pub fn code(self) -> &'static str {
        match self {
            Op::Create => "c",
            Op::Update => "u",
            Op::Delete => "d",
            Op::Read => "r",
            Op::Truncate => "t",
            Op::Message => "m",
        }
    }

    pub const ALL: [Op; 6] = [
        Op::Create,
        Op::Update,
        Op::Delete,
        Op::Read,
        Op::Truncate,
        Op::Message,
    ];
}

/// Whether a change comes from the snapshot, and where in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SnapshotMarker {
    /// Streamed from the replication log.
    #[default]
    False,
    /// Read by the snapshot.
    True,
    /// The last row of the snapshot.
    Last,
}

impl SnapshotMarker {
    pub fn as_str(self) -> &'static str {
        match self {
            SnapshotMarker::False => "false",
            SnapshotMarker::True => "true",
            SnapshotMarker::Last => "last",
        }
    }
}

/// A source transaction as announced by its first message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxnInfo {
    pub xid: u32,
    /// LSN of the transaction's commit record.
    pub final_lsn: Lsn,
    /// Commit time, microseconds since the Unix epoch.
    pub commit_ts_us: i64,
}

/// Where a change happened in the source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceInfo {
    /// LSN of the change's WAL record (for snapshot rows: the snapshot's consistent point).
    pub lsn: Lsn,
    /// LSN of the transaction's commit record. `(commit_lsn, ordinal)` is the change's
    /// unique, ordered position (LSNs alone are not unique).
    pub commit_lsn: Lsn,
    /// Position of the change within its transaction, from 0.
    pub ordinal: u64,
    /// End LSN of the source transaction committed before this change's (Debezium's
    /// `lastCommitLsn`: `source.sequence` is `[lastCommitLsn, lsn]`); for the first
    /// transaction after a (re)connection, the position streaming started from; `None`
    /// in the snapshot.
    pub last_commit_lsn: Option<Lsn>,
    pub xid: Option<u32>,
    /// Commit time of the source transaction, microseconds since the Unix epoch.
    pub commit_ts_us: i64,
    pub snapshot: SnapshotMarker,
    /// For snapshot rows of a table with a key: the key columns as PostgreSQL prints
    /// them, so the snapshot's progress can be committed with the row.
    pub row_key: Option<RowKeyText>,
}

/// A snapshot row's key columns as PostgreSQL prints them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RowKeyText {
    /// The text, read with the row.
    Text(Arc<[String]>),
    /// The values of the row's (`after`'s) columns at these positions print as
    /// PostgreSQL prints them ([`crate::Value::key_text`]): the text is made only for the
    /// rows whose position is committed, not for every row.
    Columns(Arc<[usize]>),
}

impl RowKeyText {
    /// The text, taking it from `row` (the change's `after`) where needed.
    pub fn resolve(&self, row: Option<&[crate::Value]>) -> Arc<[String]> {
        match self {
            RowKeyText::Text(t) => t.clone(),
            RowKeyText::Columns(cols) => cols
                .iter()
                .map(|&i| {
                    row.and_then(|r| r.get(i))
                        .map(crate::Value::key_text)
                        .unwrap_or_default()
                })
                .collect(),
        }
    }
}

/// One row change.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    pub table: Arc<Table>,
    pub op: Op,
    /// The old row: key columns only, or the whole row with REPLICA IDENTITY FULL.
    pub before: Option<Row>,
    pub after: Option<Row>,
    pub source: SourceInfo,
}

impl Change {
    /// The row that carries the key: `after` for inserts and updates, `before` for deletes.
    pub fn key_row(&self) -> Option<&Row> {
        match self.op {
            Op::Delete => self.before.as_ref(),
            _ => self.after.as_ref(),
        }
    }
}

/// A logical decoding message written with `pg_logical_emit_message`.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    pub prefix: String,
    pub content: Vec<u8>,
    /// Written in a transaction (delivered at its commit, with its changes) or not
    /// (delivered at once, alone).
    pub transactional: bool,
    /// For a non-transactional message `xid` is `None` and `commit_lsn` is the
    /// message's own LSN.
    pub source: SourceInfo,
}

/// What a source emits.
#[derive(Clone, Debug, PartialEq)]
pub enum SourceEvent {
    Begin(TxnInfo),
    Change(Change),
    Commit {
        commit_lsn: Lsn,
        /// End of the commit record: the position to confirm once this transaction is
        /// committed downstream.
        end_lsn: Lsn,
        commit_ts_us: i64,
    },
    Message(Message),
    /// A table's new shape, announced by captured DDL before any row uses it, so its
    /// schemas are checked and registered in stream order. Takes a position like a
    /// change (`source.commit_lsn`, `source.ordinal`) but produces no event.
    Schema {
        table: Arc<Table>,
        source: SourceInfo,
    },
    /// The source has nothing pending up to `lsn` (for example a keepalive while idle, or
    /// a transaction with no published changes). It may be confirmed once everything
    /// before it is committed downstream.
    Heartbeat(Lsn),
    /// A snapshot piece starts: the rows that follow (until the snapshot's `Commit`) were
    /// read at `piece.lsn`, in the order of `tables`.
    SnapshotPiece {
        piece: crate::Piece,
        tables: Vec<crate::TableName>,
    },
}

/// Events handed from source to sink together, in stream order: one channel operation
/// (and at most one wake-up) per batch instead of per event.
pub type EventBatch = Vec<SourceEvent>;

/// The most events a source puts in one [`EventBatch`]; the queue between source and sink
/// holds a bounded number of batches, so this also bounds its memory.
pub const MAX_EVENT_BATCH: usize = 256;

impl SourceEvent {
    /// The position to confirm once this event and all before it are committed, if any.
    pub fn ack_position(&self) -> Option<Lsn> {
        match self {
            SourceEvent::Commit { end_lsn, .. } => Some(*end_lsn),
            SourceEvent::Heartbeat(lsn) => Some(*lsn),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Value;

    #[test]
    fn row_key_text_from_columns_or_text() {
        let row = vec![
            Value::Text("a".into()),
            Value::Int64(-42),
            Value::Null,
            Value::Uuid("u".into()),
        ];
        let cols = RowKeyText::Columns(Arc::from([3usize, 1]));
        assert_eq!(&*cols.resolve(Some(&row)), ["u", "-42"]);
        // Text is the text, whatever the row.
        let text = RowKeyText::Text(Arc::from(["7".to_string()]));
        assert_eq!(&*text.resolve(Some(&row)), ["7"]);
        assert_eq!(&*text.resolve(None), ["7"]);
    }
}
