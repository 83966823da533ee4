//! Kafka sink: where events are committed. A transactional librdkafka producer that
//! writes events and the source position together ([`txn`], [`offsets`]), topic
//! administration, and a raw protocol reader that applies read_committed itself
//! ([`raw`]).

pub mod codes;
pub mod error;
pub mod offsets;
pub mod preflight;
pub mod raw;
pub mod security;
pub mod txn;

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::{BaseProducer, Producer as _};

pub use error::SinkError;
pub use security::Security;
pub use txn::TxnProducer;

/// Connection and topic settings. `Debug` names the properties but shows no value (they
/// may hold passwords and keys).
#[derive(Clone)]
pub struct KafkaConfig {
    pub bootstrap_servers: String,
    /// Passed through to librdkafka (override the defaults below).
    pub properties: BTreeMap<String, String>,
    /// Partitions of topics Sluice creates.
    pub topic_partitions: i32,
    /// Replication factor of topics Sluice creates.
    pub topic_replication_factor: i32,
    /// Compacted topic holding the committed source position per slot.
    pub offsets_topic: String,
    pub transaction_timeout: Duration,
    /// TLS and SASL, for every client (librdkafka and the raw reader).
    pub security: Security,
}

impl std::fmt::Debug for KafkaConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaConfig")
            .field("bootstrap_servers", &self.bootstrap_servers)
            .field("properties", &self.properties.keys().collect::<Vec<_>>())
            .field("topic_partitions", &self.topic_partitions)
            .field("topic_replication_factor", &self.topic_replication_factor)
            .field("offsets_topic", &self.offsets_topic)
            .field("transaction_timeout", &self.transaction_timeout)
            .field("security", &self.security)
            .finish()
    }
}

impl KafkaConfig {
    pub(crate) fn client_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.bootstrap_servers)
            .set("client.id", "sluice")
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "5")
            .set("compression.type", "none")
            .set("queue.buffering.max.messages", "1000000")
            .set("message.timeout.ms", "300000");
        for (k, v) in self.security.properties() {
            c.set(k, v);
        }
        for (k, v) in &self.properties {
            c.set(k, v);
        }
        c
    }
}

/// Topic administration: creation with the configured layout, and the offsets topic's
/// compaction check.
pub struct Topics {
    admin: AdminClient<DefaultClientContext>,
    cfg: KafkaConfig,
    known: std::collections::HashSet<String>,
}

impl Topics {
    pub fn new(cfg: &KafkaConfig) -> Result<Self, SinkError> {
        let mut cc = ClientConfig::new();
        cc.set("bootstrap.servers", &cfg.bootstrap_servers);
        for (k, v) in cfg.security.properties() {
            cc.set(k, v);
        }
        for (k, v) in &cfg.properties {
            if k.starts_with("security.") || k.starts_with("sasl.") || k.starts_with("ssl.") {
                cc.set(k, v);
            }
        }
        let admin = cc.create().map_err(|e| SinkError::Config(e.to_string()))?;
        Ok(Topics {
            admin,
            cfg: cfg.clone(),
            known: Default::default(),
        })
    }

    /// Creates a data topic if it does not exist yet (once per process and topic).
    pub async fn ensure(&mut self, topic: &str) -> Result<(), SinkError> {
        if self.known.contains(topic) {
            return Ok(());
        }
        let (p, r) = (self.cfg.topic_partitions, self.cfg.topic_replication_factor);
        self.create(topic, p, r, &[]).await?;
        self.known.insert(topic.to_string());
        Ok(())
    }

    /// Creates a topic of one partition if it does not exist yet (Debezium's transaction
    /// metadata: BEGIN/END records in one order).
    pub async fn ensure_single(&mut self, topic: &str) -> Result<(), SinkError> {
        if self.known.contains(topic) {
            return Ok(());
        }
        self.create(topic, 1, self.cfg.topic_replication_factor, &[])
            .await?;
        self.known.insert(topic.to_string());
        Ok(())
    }

    /// Creates the offsets topic (one partition, compacted) if missing, and checks that
    /// an existing one is compacted where the broker reports its configuration.
    pub async fn ensure_offsets_topic(&mut self) -> Result<(), SinkError> {
        let topic = self.cfg.offsets_topic.clone();
        self.create(
            &topic,
            1,
            self.cfg.topic_replication_factor,
            &[("cleanup.policy", "compact")],
        )
        .await?;
        match self.cleanup_policy(&topic).await {
            Ok(Some(policy)) if !policy.split(',').any(|p| p.trim() == "compact") => {
                return Err(SinkError::NotCompacted { topic, policy });
            }
            Ok(_) => {}
            // Brokers without DescribeConfigs (the test broker) cannot be checked.
            Err(e) => {
                tracing::warn!(topic, error = %e, "cannot read the offsets topic's configuration; compaction not verified")
            }
        }
        self.known.insert(topic);
        Ok(())
    }

    /// A topic's cleanup.policy as the broker describes it (`None`: not reported).
    pub async fn cleanup_policy(&self, topic: &str) -> Result<Option<String>, String> {
        let resource = ResourceSpecifier::Topic(topic);
        let opts = AdminOptions::new().request_timeout(Some(Duration::from_secs(30)));
        let results = self
            .admin
            .describe_configs([&resource], &opts)
            .await
            .map_err(|e| e.to_string())?;
        for r in results {
            let r = r.map_err(|e| e.to_string())?;
            if let Some(entry) = r.get("cleanup.policy") {
                return Ok(Some(entry.value.clone().unwrap_or_default()));
            }
        }
        Ok(None)
    }

    async fn create(
        &self,
        topic: &str,
        partitions: i32,
        replication: i32,
        config: &[(&str, &str)],
    ) -> Result<(), SinkError> {
        let mut new = NewTopic::new(topic, partitions, TopicReplication::Fixed(replication));
        for (k, v) in config {
            new = new.set(k, v);
        }
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
                Ok(_) => tracing::info!(topic, partitions, "created topic"),
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((_, code)) => {
                    return Err(SinkError::CreateTopic {
                        topic: topic.into(),
                        reason: code.to_string(),
                    })
                }
            }
        }
        Ok(())
    }
}

/// Checks that the brokers answer (a metadata request, on a blocking thread).
pub async fn check_connection(cfg: &KafkaConfig, timeout: Duration) -> Result<(), SinkError> {
    let p: BaseProducer = cfg
        .client_config()
        .create()
        .map_err(|e| SinkError::Config(e.to_string()))?;
    tokio::task::spawn_blocking(move || p.client().fetch_metadata(None, timeout).map(|_| ()))
        .await
        .map_err(|_| SinkError::Canceled)?
        .map_err(SinkError::Client)
}
