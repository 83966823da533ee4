//! From a change to Kafka-ready bytes: per-table Avro codecs, schemas registered before
//! the first event that uses them, buffers reused across events.

use std::collections::HashMap;
use std::sync::Arc;

use sluice_avro::{MessageCodec, Naming, TableCodec, TransactionCodec, TxnOrder};
use sluice_core::{Change, Message, Table, TableId};
use sluice_schema_registry::RegistryClient;

use super::error::PipelineError;
use crate::metrics::Metrics;

struct Entry {
    table: Arc<Table>,
    codec: TableCodec,
    /// The codec's topic, shared so each event does not copy the name.
    topic: Arc<str>,
    key_id: u32,
    value_id: u32,
}

pub struct Encoder {
    naming: Naming,
    registry: RegistryClient,
    metrics: Arc<Metrics>,
    codecs: HashMap<TableId, Entry>,
    /// Logical decoding messages: codec, topic and schema ids once registered.
    messages: Option<(MessageCodec, Arc<str>, u32, u32)>,
    /// Transaction metadata (BEGIN/END): codec, topic and schema ids once registered.
    transactions: Option<(TransactionCodec, Arc<str>, u32, u32)>,
    /// `on_incompatible: register_anyway`: a refused schema is registered under NONE.
    register_anyway: bool,
    /// The last encoded key (empty: no key) and value, Confluent framed.
    pub key: Vec<u8>,
    pub value: Vec<u8>,
}

impl Encoder {
    pub fn new(naming: Naming, registry: RegistryClient, metrics: Arc<Metrics>) -> Self {
        Encoder {
            naming,
            registry,
            metrics,
            codecs: HashMap::new(),
            messages: None,
            transactions: None,
            register_anyway: false,
            key: Vec::with_capacity(256),
            value: Vec::with_capacity(4096),
        }
    }

    /// Sets `on_incompatible: register_anyway`.
    pub fn register_anyway(mut self, on: bool) -> Self {
        self.register_anyway = on;
        self
    }

    async fn register(&self, subject: &str, schema: &str) -> Result<u32, PipelineError> {
        let started = std::time::Instant::now();
        let r = self.registry.register(subject, schema).await;
        self.metrics
            .ops
            .registry_call("register", &r, started.elapsed());
        match r {
            Err(sluice_schema_registry::ClientError::Registry { status: 409, .. })
                if self.register_anyway =>
            {
                self.register_under_none(subject, schema).await
            }
            r => Ok(r?),
        }
    }

    /// Registers a schema the subject's compatibility level refused: the subject's level
    /// is set to NONE for this one registration, then put back as it was. Consumers
    /// reading with the latest schema may break: this is the policy's explicit trade.
    async fn register_under_none(&self, subject: &str, schema: &str) -> Result<u32, PipelineError> {
        let before = self.registry.subject_compatibility(subject).await?;
        tracing::warn!(
            subject,
            level = before.as_deref().unwrap_or("(global)"),
            "schema_registry.on_incompatible: register_anyway: registering an incompatible schema under compatibility NONE; consumers reading with the latest schema may fail on older events"
        );
        self.registry
            .set_subject_compatibility(subject, Some("NONE"))
            .await?;
        let started = std::time::Instant::now();
        let r = self.registry.register(subject, schema).await;
        self.metrics
            .ops
            .registry_call("register", &r, started.elapsed());
        // Put the level back whatever the outcome.
        let restored = self
            .registry
            .set_subject_compatibility(subject, before.as_deref())
            .await;
        let id = r?;
        restored?;
        self.metrics.ops.registered_anyway.inc();
        Ok(id)
    }

    /// Checks and registers the schemas of a table shape ahead of its first event (a
    /// shape announced by captured DDL). Fails like [`Self::encode`] when the registry
    /// refuses them.
    pub async fn prepare(&mut self, table: &Arc<Table>) -> Result<(), PipelineError> {
        self.entry(table).await.map(|_| ())
    }

    /// Encodes a logical decoding message into `self.key` / `self.value`; returns the
    /// topic.
    pub async fn encode_message(
        &mut self,
        m: &Message,
        now_ms: i64,
        txn: Option<TxnOrder>,
    ) -> Result<Arc<str>, PipelineError> {
        if self.messages.is_none() {
            let codec = MessageCodec::new(&self.naming);
            let key_id = self.register(&codec.key_subject, &codec.key_schema).await?;
            let value_id = self
                .register(&codec.value_subject, &codec.value_schema)
                .await?;
            let topic = Arc::from(codec.topic.as_str());
            self.messages = Some((codec, topic, key_id, value_id));
        }
        let (codec, topic, key_id, value_id) = self.messages.as_ref().expect("set above");
        self.key.clear();
        self.value.clear();
        codec.encode_key(&mut self.key, *key_id, m);
        codec.encode_value(&mut self.value, *value_id, m, now_ms, txn);
        Ok(topic.clone())
    }

    /// Encodes a transaction metadata record (BEGIN, or END with the event count in all
    /// and per data collection): topic, key and value (in buffers of their own: one per
    /// source transaction, and the change in `self.key`/`self.value` stays intact).
    pub async fn encode_transaction(
        &mut self,
        id: &str,
        end: Option<(u64, &[(String, u64)])>,
        ts_ms: i64,
    ) -> Result<(Arc<str>, Vec<u8>, Vec<u8>), PipelineError> {
        if self.transactions.is_none() {
            let codec = TransactionCodec::new(&self.naming);
            let key_id = self.register(&codec.key_subject, &codec.key_schema).await?;
            let value_id = self
                .register(&codec.value_subject, &codec.value_schema)
                .await?;
            let topic = Arc::from(codec.topic.as_str());
            self.transactions = Some((codec, topic, key_id, value_id));
        }
        let (codec, topic, key_id, value_id) = self.transactions.as_ref().expect("set above");
        let (mut key, mut value) = (Vec::new(), Vec::new());
        codec.encode_key(&mut key, *key_id, id);
        codec.encode_value(&mut value, *value_id, id, end, ts_ms);
        Ok((topic.clone(), key, value))
    }

    /// The codec for the change's table shape, registering its schemas when the shape is
    /// new.
    async fn entry(&mut self, table: &Arc<Table>) -> Result<&Entry, PipelineError> {
        let fresh = match self.codecs.get(&table.id) {
            Some(e) => !(Arc::ptr_eq(&e.table, table) || *e.table == **table),
            None => true,
        };
        if fresh {
            let codec = TableCodec::new(table.clone(), &self.naming);
            let key_id = if codec.has_key() {
                self.register(&codec.key_subject, &codec.key_schema).await?
            } else {
                tracing::warn!(table = %table.name, "the table has no key columns: its events have a null key");
                0
            };
            let value_id = self
                .register(&codec.value_subject, &codec.value_schema)
                .await?;
            if codec.has_key() {
                self.metrics.schemas.with_label_values(&["key"]).inc();
            }
            self.metrics.schemas.with_label_values(&["value"]).inc();
            tracing::info!(table = %table.name, topic = %codec.topic, key_id, value_id, "schemas registered");
            self.codecs.insert(
                table.id,
                Entry {
                    table: table.clone(),
                    topic: Arc::from(codec.topic.as_str()),
                    codec,
                    key_id,
                    value_id,
                },
            );
        }
        Ok(self.codecs.get(&table.id).expect("inserted above"))
    }

    /// Encodes `change` into `self.key` / `self.value`; returns the topic. With `txn`,
    /// the envelope's `transaction` block is filled.
    pub async fn encode(
        &mut self,
        change: &Change,
        now_ms: i64,
        txn: Option<TxnOrder>,
    ) -> Result<Arc<str>, PipelineError> {
        // Borrow juggling: take the buffers out while the codec is borrowed.
        let mut key = std::mem::take(&mut self.key);
        let mut value = std::mem::take(&mut self.value);
        key.clear();
        value.clear();
        let result = async {
            let e = self.entry(&change.table).await?;
            // A truncate concerns the whole table: no key; nor has a keyless table.
            if change.op != sluice_core::Op::Truncate && e.codec.has_key() {
                e.codec.encode_key(&mut key, e.key_id, change)?;
            }
            e.codec
                .encode_value(&mut value, e.value_id, change, now_ms, txn)?;
            Ok::<_, PipelineError>(e.topic.clone())
        }
        .await;
        self.key = key;
        self.value = value;
        result
    }
}
