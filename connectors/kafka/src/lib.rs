//! Kafka sink: where events are committed. A librdkafka producer (idempotent,
//! acks=all), topic creation, and in-order acknowledgement of source positions.

pub mod acks;
pub mod error;

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};
use rdkafka::types::RDKafkaErrorCode as Code;

pub use acks::OrderedAcks;
pub use error::SinkError;

/// Connection and topic settings.
#[derive(Clone, Debug)]
pub struct KafkaConfig {
    pub bootstrap_servers: String,
    /// Passed through to librdkafka (override the defaults below).
    pub properties: BTreeMap<String, String>,
    /// Partitions of topics Sluice creates.
    pub topic_partitions: i32,
    /// Replication factor of topics Sluice creates.
    pub topic_replication_factor: i32,
}

impl KafkaConfig {
    fn client_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.bootstrap_servers)
            .set("client.id", "sluice")
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "5")
            .set("compression.type", "none")
            .set("queue.buffering.max.messages", "1000000")
            .set("message.timeout.ms", "300000");
        for (k, v) in &self.properties {
            c.set(k, v);
        }
        c
    }
}

/// The producer.
pub struct Producer {
    inner: FutureProducer,
    admin: AdminClient<DefaultClientContext>,
    cfg: KafkaConfig,
    known_topics: std::collections::HashSet<String>,
}

impl Producer {
    pub fn new(cfg: &KafkaConfig) -> Result<Self, SinkError> {
        let cc = cfg.client_config();
        let inner: FutureProducer = cc.create().map_err(|e| SinkError::Config(e.to_string()))?;
        let mut admin_cc = ClientConfig::new();
        admin_cc.set("bootstrap.servers", &cfg.bootstrap_servers);
        for (k, v) in &cfg.properties {
            if k.starts_with("security.") || k.starts_with("sasl.") || k.starts_with("ssl.") {
                admin_cc.set(k, v);
            }
        }
        let admin = admin_cc
            .create()
            .map_err(|e| SinkError::Config(e.to_string()))?;
        Ok(Producer {
            inner,
            admin,
            cfg: cfg.clone(),
            known_topics: Default::default(),
        })
    }

    /// Creates `topic` if it does not exist yet (once per process and topic).
    pub async fn ensure_topic(&mut self, topic: &str) -> Result<(), SinkError> {
        if self.known_topics.contains(topic) {
            return Ok(());
        }
        let replication = TopicReplication::Fixed(self.cfg.topic_replication_factor);
        let new = NewTopic::new(topic, self.cfg.topic_partitions, replication);
        let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
        let results =
            self.admin
                .create_topics([&new], &opts)
                .await
                .map_err(|e| SinkError::CreateTopic {
                    topic: topic.into(),
                    reason: e.to_string(),
                })?;
        for r in results {
            match r {
                Ok(_) => tracing::info!(topic, "created topic"),
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((_, code)) => {
                    return Err(SinkError::CreateTopic {
                        topic: topic.into(),
                        reason: code.to_string(),
                    })
                }
            }
        }
        self.known_topics.insert(topic.to_string());
        Ok(())
    }

    /// Enqueues one record (librdkafka copies key and value, so the caller's buffers are
    /// free again on return) and returns its delivery report. Waits while the local
    /// queue is full.
    pub async fn send(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
    ) -> Result<impl std::future::Future<Output = Result<(), SinkError>> + Send + 'static, SinkError>
    {
        loop {
            let mut rec = FutureRecord::<[u8], [u8]>::to(topic);
            if let Some(k) = key {
                rec = rec.key(k);
            }
            if let Some(v) = value {
                rec = rec.payload(v);
            }
            match self.inner.send_result(rec) {
                Ok(fut) => {
                    let topic = topic.to_string();
                    return Ok(async move {
                        match fut.await {
                            Ok(Ok(_)) => Ok(()),
                            Ok(Err((source, _))) => Err(SinkError::Delivery { topic, source }),
                            Err(_) => Err(SinkError::Canceled),
                        }
                    });
                }
                Err((rdkafka::error::KafkaError::MessageProduction(Code::QueueFull), _)) => {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err((
                    rdkafka::error::KafkaError::MessageProduction(Code::MessageSizeTooLarge),
                    _,
                )) => {
                    return Err(SinkError::TooLarge {
                        topic: topic.to_string(),
                        bytes: key.map_or(0, <[u8]>::len) + value.map_or(0, <[u8]>::len),
                    })
                }
                Err((source, _)) => {
                    return Err(SinkError::Delivery {
                        topic: topic.to_string(),
                        source,
                    })
                }
            }
        }
    }

    /// Waits (on a blocking thread) until everything enqueued is delivered or `timeout`.
    pub async fn flush(&self, timeout: Duration) -> Result<(), SinkError> {
        let p = self.inner.clone();
        tokio::task::spawn_blocking(move || p.flush(timeout))
            .await
            .map_err(|_| SinkError::Canceled)?
            .map_err(SinkError::Client)
    }

    /// Checks that the brokers answer (metadata request on a blocking thread).
    pub async fn check_connection(&self, timeout: Duration) -> Result<(), SinkError> {
        let p = self.inner.clone();
        tokio::task::spawn_blocking(move || p.client().fetch_metadata(None, timeout).map(|_| ()))
            .await
            .map_err(|_| SinkError::Canceled)?
            .map_err(SinkError::Client)
    }
}
