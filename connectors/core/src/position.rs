//! The committed source position: what the sink wrote, atomically with the events, to
//! the offsets topic, and what a restart resumes from.

use std::sync::Arc;

use crate::{Lsn, TableName};

/// Everything up to `end_lsn` is committed downstream: every source transaction whose
/// commit record starts before `end_lsn`. A source transaction split across several
/// downstream commits adds `resume`: its commit LSN and the ordinal of its last change
/// already committed. A table whose stream is stopped (its new schema was refused) lags
/// behind at its own point, in `blocked`.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Position {
    pub end_lsn: Lsn,
    pub resume: Option<Resume>,
    /// A snapshot was being committed in pieces and had not finished.
    pub snapshot_pending: bool,
    pub blocked: Vec<Blocked>,
    /// How far the snapshot got and at which points its pieces were read; kept after
    /// the snapshot finished until the stream passed the last piece's point.
    pub snapshot: Option<SnapshotProgress>,
}

/// A snapshot row's place: its table and its key as PostgreSQL prints it, key columns in
/// table column order (`None` for a table without a key, whose place within the table is
/// unknown).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowKey {
    pub table: TableName,
    pub key: Option<Arc<[String]>>,
}

/// One part of a snapshot: the rows after `after` (in table order, then key order) up to
/// the next piece's start were read in a database snapshot taken at `lsn`. The first
/// piece is the slot's exported snapshot; each resumption after a crash adds one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Piece {
    pub lsn: Lsn,
    pub after: Option<RowKey>,
}

/// The snapshot's progress, committed with its rows.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct SnapshotProgress {
    /// The tables in the order the snapshot reads them.
    pub tables: Vec<TableName>,
    pub pieces: Vec<Piece>,
    /// The last row committed downstream.
    pub cursor: Option<RowKey>,
    /// The order rows of a table follow (and their keys compare in).
    pub key_order: KeyOrder,
}

/// Which order of its key columns a snapshot reads a table's rows in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum KeyOrder {
    /// The key index's column order: the snapshot walks the index (a key declared as
    /// `PRIMARY KEY (b, a)` sorts by b, then a).
    #[default]
    Index,
    /// The table's column order. Snapshots started before Sluice read by the index's
    /// order used it; kept so that one of those resumes where it stopped.
    Columns,
}

impl SnapshotProgress {
    /// The newest piece's point: streamed changes committed before it may already be
    /// contained in rows a later piece read.
    pub fn last_lsn(&self) -> Lsn {
        self.pieces.iter().map(|p| p.lsn).max().unwrap_or_default()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resume {
    pub commit_lsn: Lsn,
    pub ordinal: u64,
}

/// A table whose changes from (`commit_lsn`, `ordinal`) on are not committed downstream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blocked {
    pub table: TableName,
    pub commit_lsn: Lsn,
    pub ordinal: u64,
}

impl Position {
    /// Whether the change at (`commit_lsn`, `ordinal`) of `table` is already committed
    /// downstream.
    pub fn covers(&self, table: &TableName, commit_lsn: Lsn, ordinal: u64) -> bool {
        let global = commit_lsn < self.end_lsn
            || matches!(self.resume, Some(r) if r.commit_lsn == commit_lsn && ordinal <= r.ordinal);
        global
            && self
                .blocked
                .iter()
                .filter(|b| &b.table == table)
                .all(|b| (commit_lsn, ordinal) < (b.commit_lsn, b.ordinal))
    }

    /// The position PostgreSQL may be told is flushed: the end, held back to the first
    /// transaction of any blocked table.
    pub fn confirmable(&self) -> Lsn {
        self.blocked
            .iter()
            .map(|b| b.commit_lsn)
            .fold(self.end_lsn, Lsn::min)
    }

    pub fn is_blocked(&self, table: &TableName) -> bool {
        self.blocked.iter().any(|b| &b.table == table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn covers_table() {
        let t = TableName::new("public", "t");
        let p = Position {
            end_lsn: Lsn(100),
            resume: Some(Resume {
                commit_lsn: Lsn(150),
                ordinal: 4,
            }),
            snapshot_pending: false,
            blocked: Vec::new(),
            snapshot: None,
        };
        let cases = [
            (Lsn(99), 1000, true), // earlier transaction: done
            (Lsn(100), 0, false),  // commit record at the end position: not done
            (Lsn(150), 4, true),   // split transaction, already committed part
            (Lsn(150), 5, false),  // split transaction, the rest
            (Lsn(200), 0, false),  // later transaction
        ];
        for (lsn, ord, want) in cases {
            assert_eq!(p.covers(&t, lsn, ord), want, "{lsn} #{ord}");
        }
        assert!(!Position::default().covers(&t, Lsn(0), 0));
        assert_eq!(p.confirmable(), Lsn(100));
    }

    #[test]
    fn a_blocked_table_lags_behind_the_others() {
        let a = TableName::new("public", "a");
        let b = TableName::new("public", "b");
        let p = Position {
            end_lsn: Lsn(500),
            resume: None,
            snapshot_pending: false,
            blocked: vec![Blocked {
                table: a.clone(),
                commit_lsn: Lsn(200),
                ordinal: 3,
            }],
            snapshot: None,
        };
        assert!(p.covers(&b, Lsn(300), 0), "other tables: up to the end");
        assert!(p.covers(&a, Lsn(150), 9));
        assert!(
            p.covers(&a, Lsn(200), 2),
            "before the refused change, same transaction"
        );
        assert!(!p.covers(&a, Lsn(200), 3), "the refused change itself");
        assert!(!p.covers(&a, Lsn(300), 0));
        assert_eq!(
            p.confirmable(),
            Lsn(200),
            "PostgreSQL must resend from the blocked transaction"
        );
        assert!(p.is_blocked(&a) && !p.is_blocked(&b));
    }
}
