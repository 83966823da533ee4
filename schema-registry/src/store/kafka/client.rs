//! librdkafka client plumbing: the context routing logs and delivery
//! reports, and creating / checking the topic.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::{BaseProducer, Producer, ProducerContext};

use crate::error::RegistryError;

use super::{blocking, kafka_err, KafkaStorageConfig};
use crate::store::lock;

/// librdkafka logs and delivery reports, routed to `tracing`.
#[derive(Default)]
pub(super) struct Ctx {
    pub deliveries: Mutex<Vec<Result<i64, KafkaError>>>,
}

impl ClientContext for Ctx {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        use RDKafkaLogLevel::*;
        match level {
            Emerg | Alert | Critical | Error => {
                tracing::error!(facility = fac, "librdkafka: {log_message}")
            }
            Warning => tracing::warn!(facility = fac, "librdkafka: {log_message}"),
            Notice | Info => tracing::info!(facility = fac, "librdkafka: {log_message}"),
            Debug => tracing::debug!(facility = fac, "librdkafka: {log_message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(%error, reason, "schema registry Kafka client error");
    }
}

impl ConsumerContext for Ctx {}

impl ProducerContext for Ctx {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        lock(&self.deliveries).push(match result {
            Ok(m) => Ok(m.offset()),
            Err((e, _)) => Err(e.clone()),
        });
    }
}

/// Create the topic if missing and check it has exactly one partition.
pub(super) async fn ensure_topic(config: &KafkaStorageConfig) -> Result<(), RegistryError> {
    let partitions = {
        let config = config.clone();
        move || -> Result<Option<usize>, RegistryError> {
            let probe: BaseProducer<Ctx> = config
                .client_config()
                .create_with_context(Ctx::default())
                .map_err(|e| kafka_err(&config, "creating a client", e))?;
            let md = probe
                .client()
                .fetch_metadata(Some(&config.topic), config.startup_timeout)
                .map_err(|e| {
                    kafka_err(&config, "fetching metadata (is the broker reachable?)", e)
                })?;
            Ok(md
                .topics()
                .iter()
                .find(|t| t.name() == config.topic)
                .filter(|t| t.error().is_none())
                .map(|t| t.partitions().len()))
        }
    };
    let mut count = blocking(partitions.clone()).await?;
    if count.is_none() {
        let admin = {
            let config = config.clone();
            blocking(move || {
                config
                    .client_config()
                    .create_with_context::<_, AdminClient<Ctx>>(Ctx::default())
                    .map_err(|e| kafka_err(&config, "creating an admin client", e))
            })
            .await?
        };
        let topic = NewTopic::new(
            &config.topic,
            1,
            TopicReplication::Fixed(config.replication_factor),
        )
        .set("cleanup.policy", "compact");
        let results = admin.create_topics([&topic], &AdminOptions::new()).await;
        // Destroying a client waits for its threads: not on an async worker.
        tokio::task::spawn_blocking(move || drop(admin));
        let results = results.map_err(|e| kafka_err(config, "creating the topic", e))?;
        for r in results {
            match r {
                Ok(_) => tracing::info!(topic = %config.topic, "created the schema registry topic"),
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((_, code)) => return Err(kafka_err(config, "creating the topic", code)),
            }
        }
        let deadline = Instant::now() + config.startup_timeout;
        loop {
            count = blocking(partitions.clone()).await?;
            if count.is_some() || Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    match count {
        Some(1) => Ok(()),
        Some(n) => Err(kafka_err(
            config,
            "checking the topic",
            format!("it has {n} partitions; the registry needs a topic with exactly one (records must stay in order)"),
        )),
        None => Err(kafka_err(config, "checking the topic", "it does not exist and could not be created")),
    }
}
