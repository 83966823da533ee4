//! The transactional producer: events and the source position go to Kafka in one
//! transaction. librdkafka's transaction calls block, so they run on tokio's blocking
//! threads, never on async workers.

use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode as Code};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};

use crate::error::SinkError;
use crate::KafkaConfig;

/// A Kafka transaction call that failed, with librdkafka's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnFailure {
    pub op: &'static str,
    pub code: Code,
    pub message: String,
    pub fatal: bool,
    pub retriable: bool,
    pub abortable: bool,
}

impl TxnFailure {
    /// Another producer with the same transactional.id took over. librdkafka reports
    /// the broker's PRODUCER_FENCED as its local `Fenced` code.
    pub fn fenced(&self) -> bool {
        matches!(
            self.code,
            Code::ProducerFenced | Code::InvalidProducerEpoch | Code::Fenced
        )
    }

    fn from(op: &'static str, e: KafkaError) -> TxnFailure {
        match &e {
            KafkaError::Transaction(t) => TxnFailure {
                op,
                code: crate::codes::txn_code(t),
                message: t.to_string(),
                fatal: t.is_fatal(),
                retriable: t.is_retriable(),
                abortable: t.txn_requires_abort(),
            },
            other => TxnFailure {
                op,
                code: crate::codes::code(other).unwrap_or(Code::Fail),
                message: other.to_string(),
                fatal: false,
                retriable: false,
                abortable: true,
            },
        }
    }
}

pub struct TxnProducer {
    inner: FutureProducer,
    timeout: Duration,
    pub transactional_id: String,
}

impl TxnProducer {
    /// Creates the producer and initializes transactions, which fences any older
    /// producer with the same transactional.id and completes its open transaction.
    pub async fn new(
        cfg: &KafkaConfig,
        transactional_id: &str,
        timeout: Duration,
    ) -> Result<Self, SinkError> {
        let mut cc: ClientConfig = cfg.client_config();
        let txn_ms = cfg.transaction_timeout.as_millis().to_string();
        cc.set("transactional.id", transactional_id)
            .set("transaction.timeout.ms", &txn_ms);
        if !cfg.properties.contains_key("message.timeout.ms") {
            // librdkafka requires message.timeout.ms <= transaction.timeout.ms.
            cc.set("message.timeout.ms", &txn_ms);
        }
        let inner: FutureProducer = cc.create().map_err(|e| SinkError::Config(e.to_string()))?;
        let p = inner.clone();
        blocking(move || p.init_transactions(timeout))
            .await?
            .map_err(|e| SinkError::Txn(TxnFailure::from("init_transactions", e)))?;
        Ok(TxnProducer {
            inner,
            timeout,
            transactional_id: transactional_id.to_string(),
        })
    }

    pub fn begin(&self) -> Result<(), SinkError> {
        // Local state change only: no network round trip.
        self.inner
            .begin_transaction()
            .map_err(|e| SinkError::Txn(TxnFailure::from("begin_transaction", e)))
    }

    /// Enqueues a record in the open transaction (librdkafka copies key and value).
    /// Delivery failures surface at commit.
    pub async fn send(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
    ) -> Result<(), SinkError> {
        self.send_to(topic, None, key, value).await
    }

    /// Like [`send`](Self::send), to a fixed partition (`None`: by key).
    pub async fn send_to(
        &self,
        topic: &str,
        partition: Option<i32>,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
    ) -> Result<(), SinkError> {
        loop {
            let mut rec = FutureRecord::<[u8], [u8]>::to(topic);
            if let Some(p) = partition {
                rec = rec.partition(p);
            }
            if let Some(k) = key {
                rec = rec.key(k);
            }
            if let Some(v) = value {
                rec = rec.payload(v);
            }
            match self.inner.send_result(rec) {
                Ok(_delivery) => return Ok(()),
                Err((KafkaError::MessageProduction(Code::QueueFull), _)) => {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err((KafkaError::MessageProduction(Code::MessageSizeTooLarge), _)) => {
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

    /// Commits the open transaction: flushes every record, then commits. Retriable
    /// failures are retried here; others are returned.
    pub async fn commit(&self) -> Result<(), SinkError> {
        self.flush().await?;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let p = self.inner.clone();
            let t = self.timeout;
            match blocking(move || p.commit_transaction(t)).await? {
                Ok(()) => return Ok(()),
                Err(e) => {
                    let f = TxnFailure::from("commit_transaction", e);
                    if f.retriable && !f.abortable && !f.fatal && attempts < 5 {
                        tracing::warn!(error = %f.message, "commit_transaction retriable failure; retrying");
                        continue;
                    }
                    return Err(SinkError::Txn(f));
                }
            }
        }
    }

    /// Waits until every enqueued record is delivered or failed (its report served),
    /// with librdkafka's own flush: it sends what lingers at once
    /// and wakes when the last report is served. Then the flush inside rust-rdkafka's
    /// `commit_transaction` returns at once — when records are still in flight, that one
    /// waits in 100 ms polls the producer's own polling thread leaves empty, which made
    /// every commit take at least 100 ms. Records still undelivered after the call
    /// timeout fail the commit (abortable) without waiting a second timeout in it.
    pub async fn flush(&self) -> Result<(), SinkError> {
        if self.inner.in_flight_count() == 0 {
            return Ok(());
        }
        let p = self.inner.clone();
        let ms = i32::try_from(self.timeout.as_millis()).unwrap_or(i32::MAX);
        let done = blocking(move || {
            // SAFETY: the handle is alive (`p` holds it); rd_kafka_flush returns one of
            // the codes librdkafka knows (NO_ERROR or _TIMED_OUT).
            unsafe { rdkafka::bindings::rd_kafka_flush(p.client().native_ptr(), ms) }
        })
        .await?;
        if done == rdkafka::types::RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR {
            return Ok(());
        }
        Err(SinkError::Txn(TxnFailure {
            op: "commit_transaction",
            code: Code::from(done),
            message: format!(
                "records not delivered within {:?} ({})",
                self.timeout,
                Code::from(done)
            ),
            fatal: false,
            retriable: false,
            abortable: true,
        }))
    }

    /// Aborts the open transaction (best effort).
    pub async fn abort(&self) -> Result<(), SinkError> {
        let p = self.inner.clone();
        let t = self.timeout;
        blocking(move || p.abort_transaction(t))
            .await?
            .map_err(|e| SinkError::Txn(TxnFailure::from("abort_transaction", e)))
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, SinkError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| SinkError::Canceled)
}
