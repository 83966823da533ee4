//! The committed source position: what the sink wrote, atomically with the events, to
//! the offsets topic, and what a restart resumes from.

use crate::Lsn;

/// Everything up to `end_lsn` is committed downstream: every source transaction whose
/// commit record starts before `end_lsn`. A source transaction split across several
/// downstream commits adds `resume`: its commit LSN and the ordinal of its last change
/// already committed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Position {
    pub end_lsn: Lsn,
    pub resume: Option<Resume>,
    /// A snapshot was being committed in pieces and had not finished.
    pub snapshot_pending: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resume {
    pub commit_lsn: Lsn,
    pub ordinal: u64,
}

impl Position {
    /// Whether the change at (`commit_lsn`, `ordinal`) is already committed downstream.
    pub fn covers(&self, commit_lsn: Lsn, ordinal: u64) -> bool {
        if commit_lsn < self.end_lsn {
            return true;
        }
        matches!(self.resume, Some(r) if r.commit_lsn == commit_lsn && ordinal <= r.ordinal)
    }

    /// Whether the whole transaction committing at `commit_lsn` is committed downstream.
    pub fn covers_txn(&self, commit_lsn: Lsn) -> bool {
        commit_lsn < self.end_lsn
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn covers_table() {
        let p = Position {
            end_lsn: Lsn(100),
            resume: Some(Resume {
                commit_lsn: Lsn(150),
                ordinal: 4,
            }),
            snapshot_pending: false,
        };
        let cases = [
            (Lsn(99), 1000, true), // earlier transaction: done
            (Lsn(100), 0, false),  // commit record at the end position: not done
            (Lsn(150), 4, true),   // split transaction, already committed part
            (Lsn(150), 5, false),  // split transaction, the rest
            (Lsn(200), 0, false),  // later transaction
        ];
        for (lsn, ord, want) in cases {
            assert_eq!(p.covers(lsn, ord), want, "{lsn} #{ord}");
        }
        assert!(p.covers_txn(Lsn(99)));
        assert!(!p.covers_txn(Lsn(150)));
        assert!(!Position::default().covers(Lsn(0), 0));
    }
}
