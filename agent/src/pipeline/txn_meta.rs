//! Debezium's transaction metadata (`transaction_metadata: true`): the counts behind
//! each event's `transaction` block, and the BEGIN/END records of topic
//! `<prefix>.transaction`.
//!
//! Exactly once like the events: BEGIN goes with the first event of a source
//! transaction that is produced (not for one a restart skips whole), END with the
//! source commit; a transaction an earlier run committed in part (its resume point is in
//! the committed position) had its BEGIN committed then, and gets only its END.

use std::collections::HashMap;

use sluice_core::{Position, TableId, TableName, TxnInfo};

/// The `transaction` block's data collection of logical messages (no table has oid 0).
pub const MESSAGE_COLLECTION: TableId = 0;

/// Events of the current source transaction, in all and per table. Counted before a
/// restart's skipping, so a transaction replayed after a restart gets the same numbers;
/// changes a policy drops for good are not counted (END tells consumers how many events
/// to expect).
#[derive(Default)]
pub struct TxnCounts {
    pub total: u64,
    per_table: HashMap<TableId, u64>,
    names: HashMap<TableId, String>,
}

impl TxnCounts {
    pub fn reset(&mut self) {
        self.total = 0;
        self.per_table.clear();
    }

    /// Counts one event of `table` (`name`: its data collection, `None` for messages).
    pub fn next(&mut self, table: TableId, name: Option<&TableName>) -> sluice_avro::TxnOrder {
        self.total += 1;
        let n = self.per_table.entry(table).or_default();
        *n += 1;
        if let Some(name) = name {
            self.names.entry(table).or_insert_with(|| name.to_string());
        }
        sluice_avro::TxnOrder {
            total_order: self.total,
            data_collection_order: *n,
        }
    }

    /// Takes back the last [`TxnCounts::next`] of `table`: that event was not produced
    /// (its schema was refused).
    pub fn undo(&mut self, table: TableId) {
        if let Some(n) = self.per_table.get_mut(&table).filter(|n| **n > 0) {
            *n -= 1;
            self.total -= 1;
            if *n == 0 {
                self.per_table.remove(&table);
            }
        }
    }

    /// Events per table (`schema.table`, sorted), messages left out.
    fn collections(&self) -> Vec<(String, u64)> {
        let mut v: Vec<(String, u64)> = self
            .per_table
            .iter()
            .filter_map(|(id, n)| self.names.get(id).map(|name| (name.clone(), *n)))
            .collect();
        v.sort();
        v
    }
}

struct Current {
    id: String,
    commit_lsn: sluice_core::Lsn,
    ts_ms: i64,
    begin_sent: bool,
}

/// BEGIN/END bookkeeping of the current source transaction.
#[derive(Default)]
pub struct TxnMeta {
    current: Option<Current>,
}

/// An END record: id, event count, per data collection, commit time.
pub struct End {
    pub commit_lsn: sluice_core::Lsn,
    pub id: String,
    pub total: u64,
    pub collections: Vec<(String, u64)>,
    pub ts_ms: i64,
}

impl TxnMeta {
    /// A source transaction starts (the snapshot and non-transactional messages, xid 0,
    /// have no metadata).
    pub fn begin(&mut self, info: &TxnInfo) {
        self.current = (info.xid != 0).then(|| Current {
            id: format!("{}:{}", info.xid, info.final_lsn.0),
            commit_lsn: info.final_lsn,
            ts_ms: info.commit_ts_us.div_euclid(1000),
            begin_sent: false,
        });
    }

    /// The BEGIN record to produce before this transaction's first produced event, if
    /// it is due: (id, commit time).
    pub fn begin_due(&mut self, committed: &Position) -> Option<(String, i64)> {
        let c = self.current.as_mut()?;
        if std::mem::replace(&mut c.begin_sent, true) {
            return None;
        }
        // Committed whole by an earlier run (a blocked table catching up replays it):
        // its BEGIN and END are in Kafka already.
        if c.commit_lsn < committed.end_lsn {
            return None;
        }
        // Resumed inside: an earlier run committed the BEGIN with the first part.
        let resumed = committed
            .resume
            .is_some_and(|r| r.commit_lsn == c.commit_lsn);
        (!resumed).then(|| (c.id.clone(), c.ts_ms))
    }

    /// The END record at the source commit, if due.
    pub fn end_due(&mut self, committed: &Position, counts: &TxnCounts) -> Option<End> {
        let c = self.current.take()?;
        let resumed = committed
            .resume
            .is_some_and(|r| r.commit_lsn == c.commit_lsn);
        if counts.total == 0 || !(c.begin_sent || resumed) || c.commit_lsn < committed.end_lsn {
            return None;
        }
        Some(End {
            commit_lsn: c.commit_lsn,
            id: c.id,
            total: counts.total,
            collections: counts.collections(),
            ts_ms: c.ts_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_core::{Lsn, Resume};

    fn info() -> TxnInfo {
        TxnInfo {
            xid: 7,
            final_lsn: Lsn(100),
            commit_ts_us: 5_000,
        }
    }

    #[test]
    fn begin_and_end_once_per_transaction_and_restart() {
        let t = TableName::new("public", "a");
        let mut counts = TxnCounts::default();
        counts.next(1, Some(&t));
        counts.next(MESSAGE_COLLECTION, None);
        counts.next(1, Some(&t));
        // (committed position, BEGIN due, END due)
        let fresh = Position::default();
        let resumed = Position {
            resume: Some(Resume {
                commit_lsn: Lsn(100),
                ordinal: 1,
            }),
            ..Default::default()
        };
        let done = Position {
            end_lsn: Lsn(101),
            ..Default::default()
        };
        for (committed, begin, end) in [
            (fresh, true, true),
            (resumed, false, true),
            (done, false, false),
        ] {
            let mut m = TxnMeta::default();
            m.begin(&info());
            // Asked even for a transaction committed whole (a blocked table catching up
            // replays its events).
            assert_eq!(m.begin_due(&committed).is_some(), begin, "{committed:?}");
            assert!(m.begin_due(&committed).is_none(), "BEGIN twice");
            let e = m.end_due(&committed, &counts);
            assert_eq!(e.is_some(), end, "{committed:?}");
            if let Some(e) = e {
                assert_eq!((e.id.as_str(), e.total, e.ts_ms), ("7:100", 3, 5));
                assert_eq!(e.collections, vec![("public.a".to_string(), 2)]);
            }
        }
        // An event whose schema was refused is taken back; the others keep their order.
        let mut c = TxnCounts::default();
        c.next(1, Some(&t));
        c.next(2, Some(&TableName::new("public", "b")));
        c.undo(2);
        c.undo(3);
        assert_eq!(c.next(1, Some(&t)).total_order, 2);
        assert_eq!(
            (c.total, c.collections()),
            (2, vec![("public.a".to_string(), 2)])
        );
        // The snapshot has none.
        let mut m = TxnMeta::default();
        m.begin(&TxnInfo { xid: 0, ..info() });
        assert!(m.begin_due(&Position::default()).is_none());
        assert!(m.end_due(&Position::default(), &counts).is_none());
    }
}
