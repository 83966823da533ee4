//! The change model shared by every Sluice connector, and the contracts between
//! a source (where an event is born) and a sink (where it is committed).
//!
//! This crate does no I/O: it is the vocabulary the other crates speak.

pub mod check;
pub mod error;
pub mod event;
pub mod lsn;
pub mod position;
pub mod queue;
pub mod table;
pub mod value;

pub use check::{CheckResult, Verdict};
pub use error::{Classify, ErrorClass};
pub use event::{
    Change, EventBatch, Message, Op, RowKeyText, SnapshotMarker, SourceEvent, SourceInfo, TxnInfo,
    MAX_EVENT_BATCH,
};
pub use lsn::{Lsn, ParseLsnError};
pub use position::{Blocked, KeyOrder, Piece, Position, Resume, RowKey, SnapshotProgress};
pub use queue::{event_queue, Batch, EventReceiver, EventSender, QueueClosed, QueueGauge};
pub use table::{Column, Table, TableId, TableName, TypeInfo, TypeKind};
pub use value::{CompactString, Row, Value};
