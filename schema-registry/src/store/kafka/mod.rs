//! The Kafka backend: the log is a compacted single-partition topic, like
//! Confluent's `_schemas` (keys and values as in `record.rs`).
//!
//! **Writer.** Each registry instance opens a transactional producer with a
//! fixed `transactional.id`; initializing it fences any older producer with
//! the same id, so the newest instance is the only writer. A fenced instance
//! keeps serving reads but refuses every write with error 50001 (restart it to
//! make it the writer again, which fences the other one). Every change is one
//! transaction; the blocking librdkafka calls happen on the calling thread,
//! which is always one of tokio's blocking threads (the REST API runs writes
//! through `spawn_blocking`, `open_kafka` does the same).
//!
//! **Readers.** A dedicated thread consumes the topic (`read_committed`) and
//! applies each record to the state. At open the registry waits until that
//! reader has reached the end of the topic (after fencing the previous
//! writer, so nothing it wrote can be missed) before serving. A write returns
//! once the reader has applied the written records, so a client reads its own
//! writes, and ids are allocated from a state that includes everything
//! committed before.
//!
//! **Aborted transactions.** Kafka hides the records of aborted transactions
//! from `read_committed` consumers; tansu (the test broker) does not. The
//! design does not depend on either: applying records is deterministic and
//! validating ("first writer wins", see `state.rs`), so every reader of one
//! topic reaches the same state whether or not aborted records are visible,
//! and a record that conflicts with an earlier one (same version or same id
//! with another schema) is rejected everywhere. A writer checks that its
//! records took effect, and after an abort it waits until its reader has
//! passed the aborted records before the next write, so it never decides on a
//! state that misses them. On a broker that shows aborted records, a write
//! that failed may thus still appear (like a write whose answer was lost):
//! retrying it returns the stored result.

mod client;
mod reader;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

use crate::error::RegistryError;

use super::record::Record;
use super::{lock, Backend, Shared};
use client::{ensure_topic, Ctx};
use reader::{tail_loop, Tail};

/// Where and how the Kafka backend stores the registry. `Debug` names the properties
/// but shows no value (they may hold passwords and keys).
#[derive(Clone)]
pub struct KafkaStorageConfig {
    /// `host:port,...` of the Kafka cluster.
    pub bootstrap_servers: String,
    /// The compacted topic holding the registry (created with one partition
    /// and `cleanup.policy=compact` if missing). Default `_sluice_schemas`.
    pub topic: String,
    /// The fixed transactional id that makes one instance the writer.
    /// Default `sluice-schema-registry`.
    pub transactional_id: String,
    /// Replication factor when creating the topic; -1: the broker's default.
    pub replication_factor: i32,
    /// Further librdkafka properties for every client (security, SASL, ...).
    pub properties: Vec<(String, String)>,
    /// Time allowed to become the writer and replay the topic at open.
    pub startup_timeout: Duration,
    /// Time allowed for one write (transaction plus reading it back).
    pub write_timeout: Duration,
    /// Become the writer (and fence the previous one) only on the first write, not at
    /// open: a standby instance that only serves reads then never fences the active one.
    pub lazy_writer: bool,
}

impl std::fmt::Debug for KafkaStorageConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys: Vec<&str> = self.properties.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("KafkaStorageConfig")
            .field("bootstrap_servers", &self.bootstrap_servers)
            .field("topic", &self.topic)
            .field("transactional_id", &self.transactional_id)
            .field("replication_factor", &self.replication_factor)
            .field("properties", &keys)
            .field("startup_timeout", &self.startup_timeout)
            .field("write_timeout", &self.write_timeout)
            .field("lazy_writer", &self.lazy_writer)
            .finish()
    }
}

impl KafkaStorageConfig {
    pub fn new(bootstrap_servers: impl Into<String>) -> Self {
        KafkaStorageConfig {
            bootstrap_servers: bootstrap_servers.into(),
            topic: "_sluice_schemas".into(),
            transactional_id: "sluice-schema-registry".into(),
            replication_factor: -1,
            properties: Vec::new(),
            startup_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(30),
            lazy_writer: false,
        }
    }

    fn client_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.bootstrap_servers);
        c.set("allow.auto.create.topics", "false");
        for (k, v) in &self.properties {
            c.set(k, v);
        }
        c
    }
}

struct Writer {
    producer: Option<BaseProducer<Ctx>>,
    /// Why this instance no longer writes (fenced, or a fatal producer error).
    fenced: Option<String>,
    /// A transaction may still be open and must be aborted first.
    needs_abort: bool,
    /// The reader must reach the end of the topic before the next write.
    needs_sync: bool,
    /// Lazy: the producer is created and initialized on the first write.
    pending_init: bool,
}

pub(crate) struct KafkaBackend {
    config: KafkaStorageConfig,
    writer: Mutex<Writer>,
    tail: Arc<Tail>,
    tail_thread: Option<JoinHandle<()>>,
}

fn kafka_err(
    config: &KafkaStorageConfig,
    action: &str,
    e: impl std::fmt::Display,
) -> RegistryError {
    RegistryError::Kafka {
        topic: config.topic.clone(),
        action: action.to_string(),
        detail: e.to_string(),
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, RegistryError> + Send + 'static,
) -> Result<T, RegistryError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(RegistryError::Exhausted(format!("internal error: {e}"))))
}

fn is_fencing(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::Fenced
            | RDKafkaErrorCode::ProducerFenced
            | RDKafkaErrorCode::InvalidProducerEpoch
            | RDKafkaErrorCode::TransactionalIdAuthorizationFailed
    )
}

/// Why a producer can never write again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fatal {
    /// Another instance with the same transactional id took over.
    Fenced,
    /// Any other fatal librdkafka error.
    Other,
}

/// Whether `e` means this producer can never write again.
fn fatal_reason(e: &KafkaError) -> Option<Fatal> {
    if sluice_kafka::codes::code(e).is_some_and(is_fencing) {
        return Some(Fatal::Fenced);
    }
    match e {
        KafkaError::Transaction(t) if t.is_fatal() => Some(Fatal::Other),
        _ => None,
    }
}

fn create_producer(config: &KafkaStorageConfig) -> Result<BaseProducer<Ctx>, RegistryError> {
    config
        .client_config()
        .set("transactional.id", &config.transactional_id)
        .set("enable.idempotence", "true")
        .set("linger.ms", "0")
        .set("transaction.timeout.ms", "60000")
        .set(
            "message.timeout.ms",
            config
                .write_timeout
                .as_millis()
                .clamp(1000, 60000)
                .to_string(),
        )
        .create_with_context(Ctx::default())
        .map_err(|e| kafka_err(config, "creating the producer", e))
}

/// A `read_committed` consumer of the topic's only partition, from its
/// beginning. It joins no group and commits nothing.
fn create_consumer(config: &KafkaStorageConfig) -> Result<BaseConsumer<Ctx>, RegistryError> {
    let consumer: BaseConsumer<Ctx> = config
        .client_config()
        .set("group.id", format!("{}-reader", config.transactional_id))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", "50")
        .create_with_context(Ctx::default())
        .map_err(|e| kafka_err(config, "creating the consumer", e))?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&config.topic, 0, Offset::Beginning)
        .map_err(|e| kafka_err(config, "assigning the partition", e))?;
    consumer
        .assign(&tpl)
        .map_err(|e| kafka_err(config, "assigning the partition", e))?;
    Ok(consumer)
}

impl KafkaBackend {
    pub async fn open(
        config: KafkaStorageConfig,
        shared: Arc<Shared>,
    ) -> Result<Self, RegistryError> {
        ensure_topic(&config).await?;

        let started = Instant::now();
        // Everything below blocks (client creation, init_transactions, the
        // replay): all of it on a blocking thread.
        let (backend, high) = blocking(move || {
            let producer = if config.lazy_writer {
                None
            } else {
                let producer = create_producer(&config)?;
                // Become the writer: fences the previous instance and aborts its
                // open transaction, so replaying after this sees everything it
                // committed.
                producer
                    .init_transactions(config.startup_timeout)
                    .map_err(|e| kafka_err(&config, "initializing the transactional producer (is the broker reachable and does it support transactions?)", e))?;
                Some(producer)
            };
            let consumer = create_consumer(&config)?;
            let (_, high) = match &producer {
                Some(p) => p.client().fetch_watermarks(&config.topic, 0, config.startup_timeout),
                None => consumer.fetch_watermarks(&config.topic, 0, config.startup_timeout),
            }
            .map_err(|e| kafka_err(&config, "reading the end offset", e))?;
            let tail = Arc::new(Tail::default());
            let thread = {
                let tail = tail.clone();
                let topic = config.topic.clone();
                std::thread::Builder::new()
                    .name("registry-reader".into())
                    .spawn(move || tail_loop(consumer, &topic, &shared, &tail))
                    .map_err(|e| kafka_err(&config, "starting the reader thread", e))?
            };
            let backend = KafkaBackend {
                config,
                writer: Mutex::new(Writer {
                    pending_init: producer.is_none(),
                    producer,
                    fenced: None,
                    needs_abort: false,
                    needs_sync: false,
                }),
                tail,
                tail_thread: Some(thread),
            };
            let timeout = backend.config.startup_timeout;
            backend.wait_for(high, timeout, "replaying the topic")?;
            Ok((backend, high))
        })
        .await?;
        tracing::info!(
            topic = %backend.config.topic,
            end_offset = high,
            elapsed_ms = started.elapsed().as_millis() as u64,
            lazy_writer = backend.config.lazy_writer,
            "schema registry topic replayed; this instance is the writer (lazy: from its first write)"
        );
        Ok(backend)
    }

    /// Wait until the reader has applied every record before `target`.
    fn wait_for(&self, target: i64, timeout: Duration, what: &str) -> Result<(), RegistryError> {
        self.tail
            .wait_for(&self.config.topic, target, timeout, what)
    }

    /// Wait until the reader has reached the current end of the topic.
    fn sync_to_end(&self, producer: &BaseProducer<Ctx>) -> Result<(), RegistryError> {
        let timeout = self.config.write_timeout;
        let (_, high) = producer
            .client()
            .fetch_watermarks(&self.config.topic, 0, timeout)
            .map_err(|e| kafka_err(&self.config, "reading the end offset", e))?;
        self.wait_for(high, timeout, "catching up after an aborted write")
    }

    fn fence(&self, w: &mut Writer, why: Fatal, e: &KafkaError) -> RegistryError {
        let reason = if why == Fatal::Fenced {
            format!(
                "it was fenced: another registry instance started with transactional.id '{}' on topic '{}' and is now the writer; this instance only serves reads (restart it to make it the writer again) ({e})",
                self.config.transactional_id, self.config.topic
            )
        } else {
            format!("its Kafka producer failed fatally ({e}); restart the registry")
        };
        tracing::error!(topic = %self.config.topic, "schema registry instance stops writing: {reason}");
        w.fenced = Some(reason.clone());
        RegistryError::Fenced(reason)
    }

    /// Handle a failed transaction: give up writing for good, or abort it.
    fn failed(&self, w: &mut Writer, e: KafkaError) -> RegistryError {
        if let Some(why) = fatal_reason(&e) {
            return self.fence(w, why, &e);
        }
        let Some(producer) = w.producer.as_ref() else {
            return kafka_err(&self.config, "writing", e);
        };
        match producer.abort_transaction(self.config.write_timeout) {
            Ok(()) => {
                w.needs_abort = false;
                // Wait until the reader passed what this transaction wrote
                // (visible on brokers that do not hide aborted records).
                if let Err(sync) = self.sync_to_end(producer) {
                    tracing::warn!(error = %sync, "schema registry: cannot catch up after an aborted write; will retry before the next write");
                    w.needs_sync = true;
                }
            }
            Err(abort) => {
                if let Some(why) = fatal_reason(&abort) {
                    return self.fence(w, why, &abort);
                }
                w.needs_abort = true;
                w.needs_sync = true;
            }
        }
        kafka_err(&self.config, "writing (the transaction was aborted)", e)
    }

    fn send_all(&self, producer: &BaseProducer<Ctx>, batch: &[Record]) -> Result<(), KafkaError> {
        producer.begin_transaction()?;
        for r in batch {
            let e = r.encode();
            let deadline = Instant::now() + self.config.write_timeout;
            loop {
                let mut rec = BaseRecord::<[u8], [u8]>::to(&self.config.topic)
                    .partition(0)
                    .key(&e.key[..]);
                if let Some(v) = e.value.as_deref() {
                    rec = rec.payload(v);
                }
                match producer.send(rec) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _))
                        if Instant::now() < deadline =>
                    {
                        producer.poll(Duration::from_millis(10));
                    }
                    Err((err, _)) => return Err(err),
                }
            }
        }
        producer.commit_transaction(self.config.write_timeout)
    }
}

impl Backend for KafkaBackend {
    fn prepare_write(&self) -> Result<(), RegistryError> {
        let mut guard = lock(&self.writer);
        let w: &mut Writer = &mut guard;
        if !w.pending_init || w.fenced.is_some() {
            return Ok(());
        }
        let producer = create_producer(&self.config)?;
        producer
            .init_transactions(self.config.startup_timeout)
            .map_err(|e| {
                kafka_err(
                    &self.config,
                    "becoming the writer (initializing the transactional producer)",
                    e,
                )
            })?;
        // What another writer committed since the replay is applied before the change
        // is computed.
        self.sync_to_end(&producer)?;
        tracing::info!(topic = %self.config.topic, "schema registry: this instance is now the writer");
        w.producer = Some(producer);
        w.pending_init = false;
        Ok(())
    }

    fn describe(&self) -> String {
        format!(
            "Kafka topic '{}' at {}",
            self.config.topic, self.config.bootstrap_servers
        )
    }

    fn append(&self, batch: &[Record]) -> Result<(), RegistryError> {
        let mut guard = lock(&self.writer);
        let w: &mut Writer = &mut guard;
        if let Some(reason) = &w.fenced {
            return Err(RegistryError::Fenced(reason.clone()));
        }
        let Some(producer) = w.producer.as_ref() else {
            return Err(RegistryError::Fenced(
                "the registry is shutting down".into(),
            ));
        };
        if w.needs_abort {
            if let Err(e) = producer.abort_transaction(self.config.write_timeout) {
                return Err(self.failed(w, e));
            }
            w.needs_abort = false;
        }
        if w.needs_sync {
            self.sync_to_end(producer)?;
            w.needs_sync = false;
        }
        lock(&producer.context().deliveries).clear();
        if let Err(e) = self.send_all(producer, batch) {
            // A fencing error may show only in a delivery report.
            let fenced = lock(&producer.context().deliveries)
                .iter()
                .filter_map(|d| d.as_ref().err())
                .find(|d| fatal_reason(d) == Some(Fatal::Fenced))
                .cloned();
            return Err(match fenced {
                Some(f) => self.fence(w, Fatal::Fenced, &f),
                None => self.failed(w, e),
            });
        }
        let last = lock(&producer.context().deliveries)
            .iter()
            .filter_map(|d| d.as_ref().ok().copied())
            .max();
        drop(guard);
        match last {
            Some(offset) => self.wait_for(
                offset + 1,
                self.config.write_timeout,
                "reading back the write (it was committed)",
            ),
            None => Ok(()),
        }
    }
}

impl Drop for KafkaBackend {
    fn drop(&mut self) {
        self.tail.stop.store(true, Ordering::SeqCst);
        let producer = lock(&self.writer).producer.take();
        let thread = self.tail_thread.take();
        // Joining the reader (up to one poll interval) and destroying the
        // producer block: keep that off async workers.
        let finish = move || {
            drop(producer);
            if let Some(t) = thread {
                let _ = t.join();
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn_blocking(finish);
            }
            Err(_) => finish(),
        }
    }
}
