//! Change events as Avro: schemas derived from table shapes (Debezium's layout), a
//! buffer-reusing binary encoder, and the Confluent wire format.

pub mod binary;
pub mod decimal;
pub mod encode;
pub mod schema;

use std::sync::Arc;

use sluice_core::value::decimal;
use sluice_core::{Change, Table};

pub use encode::FieldError;
pub use schema::{DecimalHandling, FieldKind, FieldPlan, RecordKind, TimePrecision, TypeModes};

/// Confluent wire format: magic byte 0, then the schema id as 4 big-endian bytes.
pub fn write_header(buf: &mut Vec<u8>, schema_id: u32) {
    buf.push(0);
    buf.extend_from_slice(&schema_id.to_be_bytes());
}

/// Naming and source identity shared by every table.
#[derive(Clone, Debug)]
pub struct Naming {
    /// Topic prefix and Debezium's logical server name (`source.name`).
    pub topic_prefix: String,
    /// The database name (`source.db`).
    pub database: String,
    pub envelope: Envelope,
    pub subjects: SubjectNameStrategy,
    /// Debezium's decimal and time handling modes.
    pub types: TypeModes,
}

/// How registry subjects are named (Confluent's `*.subject.name.strategy`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SubjectNameStrategy {
    /// `<topic>-key` / `<topic>-value`.
    #[default]
    Topic,
    /// The record's full name (`<prefix>.<schema>.<table>.Key` / `...Envelope`).
    Record,
    /// `<topic>-<record full name>`.
    TopicRecord,
}

/// A change's place in its source transaction, for the envelope's `transaction` block
/// (Debezium's `provide.transaction.metadata`): both counts start at 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxnOrder {
    /// Among all the transaction's events.
    pub total_order: u64,
    /// Among the transaction's events of this table.
    pub data_collection_order: u64,
}

/// The shape of an event's value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Envelope {
    /// Debezium's envelope: before, after, source, transaction, op, ts_ms.
    #[default]
    Debezium,
    /// The row itself plus `__op`, `__lsn`, `__source_ts_ms` and `__deleted`, like
    /// Debezium's ExtractNewRecordState with `add.fields=op,lsn,source.ts_ms` and
    /// `delete.handling.mode=rewrite`: a delete carries the old row with `__deleted`
    /// "true". Truncates have no row and are not produced.
    Flat,
}

impl Naming {
    /// The topic of a table's events: `<prefix>.<schema>.<table>`.
    pub fn topic(&self, table: &sluice_core::TableName) -> String {
        format!("{}.{}.{}", self.topic_prefix, table.schema, table.name)
    }
}

/// A change that cannot be encoded: names table, column, type and value kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot encode a change of table {table}: {source}")]
pub struct EncodeError {
    pub table: String,
    pub source: FieldError,
}

/// Schemas and encoding plan of one table shape.
#[derive(Debug, Clone)]
pub struct TableCodec {
    pub table: Arc<Table>,
    pub topic: String,
    /// Registry subjects of the key and value schemas.
    pub key_subject: String,
    pub value_subject: String,
    pub key_schema: String,
    pub value_schema: String,
    key: Vec<FieldPlan>,
    value: Vec<FieldPlan>,
    server_name: String,
    database: String,
    envelope: Envelope,
}

pub const CONNECTOR_VERSION: &str = env!("CARGO_PKG_VERSION");

impl TableCodec {
    pub fn new(table: Arc<Table>, naming: &Naming) -> Self {
        let ns = schema::namespace(&naming.topic_prefix, &table);
        let key = schema::plan(&table, true, naming.types);
        let value = schema::plan(&table, false, naming.types);
        let topic = naming.topic(&table.name);
        let value_record = match naming.envelope {
            Envelope::Debezium => format!("{ns}.Envelope"),
            Envelope::Flat => format!("{ns}.Value"),
        };
        let key_record = format!("{ns}.Key");
        let (key_subject, value_subject) = subjects(naming, &topic, &key_record, &value_record);
        TableCodec {
            key_subject,
            value_subject,
            topic,
            key_schema: schema::key_schema(&ns, &key).to_string(),
            value_schema: match naming.envelope {
                Envelope::Debezium => schema::envelope_schema(&ns, &value),
                Envelope::Flat => schema::flat_schema(&ns, &value),
            }
            .to_string(),
            key,
            value,
            table,
            server_name: naming.topic_prefix.clone(),
            database: naming.database.clone(),
            envelope: naming.envelope,
        }
    }

    /// Whether the table has key columns; without them events have a null key (and no
    /// key schema is registered).
    pub fn has_key(&self) -> bool {
        !self.key.is_empty()
    }

    fn err(&self, source: FieldError) -> EncodeError {
        EncodeError {
            table: self.table.name.to_string(),
            source,
        }
    }

    /// Appends the Confluent-framed key of `change` to `buf`.
    pub fn encode_key(
        &self,
        buf: &mut Vec<u8>,
        schema_id: u32,
        change: &Change,
    ) -> Result<(), EncodeError> {
        write_header(buf, schema_id);
        let row = change.key_row().ok_or_else(|| {
            self.err(FieldError {
                column: String::new(),
                kind: FieldKind::String,
                value_kind: "none",
                reason: "the change carries no row for its key".into(),
            })
        })?;
        encode::row(buf, &self.key, row).map_err(|e| self.err(e))
    }

    /// Appends the Confluent-framed envelope of `change` to `buf`. `now_ms` is the
    /// processing time (`ts_ms`); with `txn`, the `transaction` block is filled (id
    /// `<xid>:<commit LSN>`, as Debezium writes it) for streamed changes.
    pub fn encode_value(
        &self,
        buf: &mut Vec<u8>,
        schema_id: u32,
        change: &Change,
        now_ms: i64,
        txn: Option<TxnOrder>,
    ) -> Result<(), EncodeError> {
        write_header(buf, schema_id);
        if self.envelope == Envelope::Flat {
            return self.encode_flat(buf, change);
        }
        for r in [&change.before, &change.after] {
            match r {
                None => binary::branch(buf, 0),
                Some(r) => {
                    binary::branch(buf, 1);
                    encode::row(buf, &self.value, r).map_err(|e| self.err(e))?;
                }
            }
        }
        let s = &change.source;
        write_source(
            buf,
            &self.server_name,
            &self.database,
            (&self.table.name.schema, &self.table.name.name),
            s,
        );
        write_transaction(buf, txn, s);
        binary::string(buf, change.op.code());
        binary::branch(buf, 1);
        binary::long(buf, now_ms);
        binary::branch(buf, 1);
        binary::long(buf, now_ms.saturating_mul(1000));
        binary::branch(buf, 1);
        binary::long(buf, now_ms.saturating_mul(1_000_000));
        Ok(())
    }
}

/// Debezium's `source.sequence`: the JSON array `["<lastCommitLsn>","<lsn>"]` as a
/// string (`[null,"<lsn>"]` in the snapshot), LSNs as decimal numbers; ordered as
/// the stream is (consumers deduplicate and order PostgreSQL events by it).
fn write_sequence(buf: &mut Vec<u8>, s: &sluice_core::SourceInfo) {
    // Built on the stack without fmt: this runs for every event.
    let mut text = [0u8; 48];
    let mut len = 0;
    let mut put = |bytes: &[u8]| {
        text[len..len + bytes.len()].copy_from_slice(bytes);
        len += bytes.len();
    };
    let mut digits = [0u8; 20];
    match s.last_commit_lsn {
        Some(last) => {
            put(b"[\"");
            put(decimal(last.0, &mut digits));
        }
        None => put(b"[null"),
    }
    put(if s.last_commit_lsn.is_some() {
        b"\",\""
    } else {
        b",\""
    });
    put(decimal(s.lsn.0, &mut digits));
    put(b"\"]");
    binary::branch(buf, 1);
    binary::bytes(buf, &text[..len]);
}

/// Debezium's `source` record. `object` is the (schema, table) the event is about.
fn write_source(
    buf: &mut Vec<u8>,
    server_name: &str,
    database: &str,
    object: (&str, &str),
    s: &sluice_core::SourceInfo,
) {
    binary::string(buf, CONNECTOR_VERSION);
    binary::string(buf, "postgresql");
    binary::string(buf, server_name);
    binary::long(buf, s.commit_ts_us.div_euclid(1000));
    binary::branch(buf, 0); // snapshot: string branch
    binary::string(buf, s.snapshot.as_str());
    binary::string(buf, database);
    write_sequence(buf, s);
    binary::branch(buf, 1);
    binary::long(buf, s.commit_ts_us);
    binary::branch(buf, 1);
    binary::long(buf, s.commit_ts_us.saturating_mul(1000));
    binary::string(buf, object.0);
    binary::string(buf, object.1);
    match s.xid {
        Some(x) => {
            binary::branch(buf, 1);
            binary::long(buf, x as i64);
        }
        None => binary::branch(buf, 0),
    }
    binary::branch(buf, 1);
    binary::long(buf, s.lsn.0 as i64);
    binary::branch(buf, 0); // xmin
}

/// The optional `transaction` block: filled with `txn` for a change in a transaction
/// (id `<xid>:<commit LSN>`, as Debezium writes it).
fn write_transaction(buf: &mut Vec<u8>, txn: Option<TxnOrder>, s: &sluice_core::SourceInfo) {
    match (txn, s.xid) {
        (Some(t), Some(xid)) => {
            binary::branch(buf, 1);
            // "<xid>:<lsn>" without allocating: at most 10 + 1 + 20 bytes.
            let mut id = [0u8; 32];
            let n = {
                use std::io::Write;
                let mut w = &mut id[..];
                let _ = write!(w, "{xid}:{}", s.commit_lsn.0);
                32 - w.len()
            };
            binary::long(buf, n as i64);
            buf.extend_from_slice(&id[..n]);
            binary::long(buf, t.total_order as i64);
            binary::long(buf, t.data_collection_order as i64);
        }
        _ => binary::branch(buf, 0),
    }
}

/// Registry subjects (key, value) for a topic and its records' full names.
fn subjects(
    naming: &Naming,
    topic: &str,
    key_record: &str,
    value_record: &str,
) -> (String, String) {
    match naming.subjects {
        SubjectNameStrategy::Topic => (format!("{topic}-key"), format!("{topic}-value")),
        SubjectNameStrategy::Record => (key_record.to_string(), value_record.to_string()),
        SubjectNameStrategy::TopicRecord => (
            format!("{topic}-{key_record}"),
            format!("{topic}-{value_record}"),
        ),
    }
}

/// Logical decoding messages as Debezium writes them: topic `<prefix>.message`, key
/// `MessageKey{prefix}`, value `MessageValue{op "m", ts_ms, source, transaction,
/// message{prefix, content}}` (source schema and table empty). The same with either
/// envelope setting.
#[derive(Debug, Clone)]
pub struct MessageCodec {
    pub topic: String,
    pub key_subject: String,
    pub value_subject: String,
    pub key_schema: String,
    pub value_schema: String,
    server_name: String,
    database: String,
}

impl MessageCodec {
    pub fn new(naming: &Naming) -> Self {
        let topic = format!("{}.message", naming.topic_prefix);
        let (key_subject, value_subject) = subjects(
            naming,
            &topic,
            "io.debezium.connector.postgresql.MessageKey",
            "io.debezium.connector.postgresql.MessageValue",
        );
        MessageCodec {
            topic,
            key_subject,
            value_subject,
            key_schema: schema::message_key_schema().to_string(),
            value_schema: schema::message_value_schema().to_string(),
            server_name: naming.topic_prefix.clone(),
            database: naming.database.clone(),
        }
    }

    pub fn encode_key(&self, buf: &mut Vec<u8>, schema_id: u32, m: &sluice_core::Message) {
        write_header(buf, schema_id);
        binary::branch(buf, 1);
        binary::string(buf, &m.prefix);
    }

    pub fn encode_value(
        &self,
        buf: &mut Vec<u8>,
        schema_id: u32,
        m: &sluice_core::Message,
        now_ms: i64,
        txn: Option<TxnOrder>,
    ) {
        write_header(buf, schema_id);
        binary::string(buf, sluice_core::Op::Message.code());
        binary::branch(buf, 1);
        binary::long(buf, now_ms);
        write_source(buf, &self.server_name, &self.database, ("", ""), &m.source);
        write_transaction(buf, txn, &m.source);
        binary::branch(buf, 1);
        binary::string(buf, &m.prefix);
        binary::branch(buf, 1);
        binary::long(buf, m.content.len() as i64);
        buf.extend_from_slice(&m.content);
    }
}

/// Debezium's transaction metadata events (`provide.transaction.metadata`): BEGIN and
/// END records on topic `<prefix>.transaction`, keyed by the transaction id
/// (`<xid>:<commit LSN>`, as in the events' `transaction` block).
#[derive(Debug, Clone)]
pub struct TransactionCodec {
    pub topic: String,
    pub key_subject: String,
    pub value_subject: String,
    pub key_schema: String,
    pub value_schema: String,
}

impl TransactionCodec {
    pub fn new(naming: &Naming) -> Self {
        let topic = format!("{}.transaction", naming.topic_prefix);
        let (key_subject, value_subject) = subjects(
            naming,
            &topic,
            "io.debezium.connector.common.TransactionMetadataKey",
            "io.debezium.connector.common.TransactionMetadataValue",
        );
        TransactionCodec {
            topic,
            key_subject,
            value_subject,
            key_schema: schema::transaction_key_schema().to_string(),
            value_schema: schema::transaction_value_schema().to_string(),
        }
    }

    pub fn encode_key(&self, buf: &mut Vec<u8>, schema_id: u32, id: &str) {
        write_header(buf, schema_id);
        binary::string(buf, id);
    }

    /// BEGIN (`end: None`) or END with the event count, in all and per data collection.
    pub fn encode_value(
        &self,
        buf: &mut Vec<u8>,
        schema_id: u32,
        id: &str,
        end: Option<(u64, &[(String, u64)])>,
        ts_ms: i64,
    ) {
        write_header(buf, schema_id);
        binary::string(buf, if end.is_some() { "END" } else { "BEGIN" });
        binary::string(buf, id);
        match end {
            None => {
                binary::branch(buf, 0);
                binary::branch(buf, 0);
            }
            Some((total, collections)) => {
                binary::branch(buf, 1);
                binary::long(buf, total as i64);
                binary::branch(buf, 1);
                if !collections.is_empty() {
                    binary::long(buf, collections.len() as i64);
                    for (name, n) in collections {
                        binary::branch(buf, 1);
                        binary::string(buf, name);
                        binary::long(buf, *n as i64);
                    }
                }
                binary::long(buf, 0);
            }
        }
        binary::long(buf, ts_ms);
    }
}

impl TableCodec {
    /// The flat value: the row (the old one for a delete), then the added fields.
    fn encode_flat(&self, buf: &mut Vec<u8>, change: &Change) -> Result<(), EncodeError> {
        let row = change.key_row().ok_or_else(|| {
            self.err(FieldError {
                column: String::new(),
                kind: FieldKind::String,
                value_kind: "none",
                reason: "the flat envelope needs a row; a truncate has none".into(),
            })
        })?;
        encode::row(buf, &self.value, row).map_err(|e| self.err(e))?;
        let s = &change.source;
        binary::branch(buf, 1);
        binary::string(buf, change.op.code());
        binary::branch(buf, 1);
        binary::long(buf, s.lsn.0 as i64);
        binary::branch(buf, 1);
        binary::long(buf, s.commit_ts_us.div_euclid(1000));
        binary::branch(buf, 1);
        binary::string(
            buf,
            if change.op == sluice_core::Op::Delete {
                "true"
            } else {
                "false"
            },
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests;
