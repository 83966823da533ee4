//! Kafka errors, classified.

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use sluice_core::{Classify, ErrorClass};

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("invalid Kafka client setting: {0}. Check sink.kafka.bootstrap_servers and sink.kafka.properties")]
    Config(String),
    #[error("Kafka did not accept an event for topic {topic}: {source}")]
    Delivery { topic: String, source: KafkaError },
    #[error("an event of {bytes} bytes for topic {topic} is larger than the producer allows. Fix: raise sink.kafka.properties.\"message.max.bytes\" (and the topic's max.message.bytes / the broker's message.max.bytes)")]
    TooLarge { topic: String, bytes: usize },
    #[error("cannot create Kafka topic {topic}: {reason}")]
    CreateTopic { topic: String, reason: String },
    #[error("Kafka client error: {0}")]
    Client(#[from] KafkaError),
    #[error("delivery report lost: the Kafka producer was dropped")]
    Canceled,
    #[error("{}", txn_message(.0))]
    Txn(crate::txn::TxnFailure),
    #[error("cannot read the committed position from Kafka topic {topic}: {reason}")]
    Offsets { topic: String, reason: String },
    #[error("Kafka topic {topic} must be compacted (cleanup.policy=compact) to hold positions safely; it is {policy:?}. Fix: kafka-configs --alter --entity-type topics --entity-name {topic} --add-config cleanup.policy=compact, or choose another sink.kafka.offsets_topic")]
    NotCompacted { topic: String, policy: String },
}

fn txn_message(f: &crate::txn::TxnFailure) -> String {
    if f.fenced() {
        format!(
            "another Sluice instance with the same transactional.id took over ({} failed: {}); this instance stops. Run one instance per slot, or give each its own sink.kafka.transactional_id",
            f.op, f.message
        )
    } else {
        format!("Kafka transaction {} failed: {}", f.op, f.message)
    }
}

/// Codes that retrying (after re-creating the client and replaying from the last
/// committed position) cannot fix.
pub fn code_class(code: RDKafkaErrorCode) -> ErrorClass {
    use RDKafkaErrorCode as C;
    match code {
        C::MessageSizeTooLarge
        | C::InvalidMessageSize
        | C::TopicAuthorizationFailed
        | C::ClusterAuthorizationFailed
        | C::TransactionalIdAuthorizationFailed
        | C::SaslAuthenticationFailed
        | C::Authentication
        | C::InvalidConfig
        | C::InvalidArgument
        | C::InvalidReplicationFactor
        | C::InvalidPartitions
        | C::InvalidTopic
        | C::PolicyViolation
        | C::UnsupportedVersion
        | C::UnsupportedFeature
        | C::InvalidRequiredAcks
        | C::InvalidRecord => ErrorClass::Permanent,
        _ => ErrorClass::Transient,
    }
}

fn kafka_class(e: &KafkaError) -> ErrorClass {
    match crate::codes::code(e) {
        Some(code) => code_class(code),
        None => match e {
            KafkaError::ClientConfig(..) | KafkaError::ClientCreation(_) => ErrorClass::Permanent,
            _ => ErrorClass::Transient,
        },
    }
}

impl Classify for SinkError {
    fn class(&self) -> ErrorClass {
        match self {
            SinkError::Config(_) | SinkError::TooLarge { .. } => ErrorClass::Permanent,
            SinkError::Delivery { source, .. } | SinkError::Client(source) => kafka_class(source),
            SinkError::CreateTopic { .. } => ErrorClass::Transient,
            SinkError::Canceled => ErrorClass::Transient,
            // Fenced: another instance owns the transactional.id; stop. Anything else:
            // abort, drop the producer, start over from the committed position.
            SinkError::Txn(f) if f.fenced() => ErrorClass::Permanent,
            SinkError::Txn(_) => ErrorClass::Transient,
            SinkError::Offsets { .. } => ErrorClass::Transient,
            SinkError::NotCompacted { .. } => ErrorClass::Permanent,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn txn(code: RDKafkaErrorCode, fatal: bool, abortable: bool) -> SinkError {
        SinkError::Txn(crate::txn::TxnFailure {
            op: "commit_transaction",
            code,
            message: "m".into(),
            fatal,
            retriable: false,
            abortable,
        })
    }

    #[test]
    fn classification_table() {
        let delivery = |code| SinkError::Delivery {
            topic: "t".into(),
            source: KafkaError::MessageProduction(code),
        };
        let cases = [
            (
                delivery(RDKafkaErrorCode::MessageTimedOut),
                ErrorClass::Transient,
            ),
            (
                delivery(RDKafkaErrorCode::BrokerTransportFailure),
                ErrorClass::Transient,
            ),
            (
                delivery(RDKafkaErrorCode::NotLeaderForPartition),
                ErrorClass::Transient,
            ),
            (
                delivery(RDKafkaErrorCode::RequestTimedOut),
                ErrorClass::Transient,
            ),
            (
                delivery(RDKafkaErrorCode::MessageSizeTooLarge),
                ErrorClass::Permanent,
            ),
            (
                delivery(RDKafkaErrorCode::TopicAuthorizationFailed),
                ErrorClass::Permanent,
            ),
            (
                delivery(RDKafkaErrorCode::SaslAuthenticationFailed),
                ErrorClass::Permanent,
            ),
            (SinkError::Config("x".into()), ErrorClass::Permanent),
            (SinkError::Canceled, ErrorClass::Transient),
            (
                txn(RDKafkaErrorCode::ProducerFenced, true, false),
                ErrorClass::Permanent,
            ),
            (
                txn(RDKafkaErrorCode::InvalidProducerEpoch, false, true),
                ErrorClass::Permanent,
            ),
            // librdkafka's local code for a broker's PRODUCER_FENCED (seen with the
            // mock cluster): without it a fenced instance would restart and fence back.
            (
                txn(RDKafkaErrorCode::Fenced, true, false),
                ErrorClass::Permanent,
            ),
            (
                txn(RDKafkaErrorCode::RequestTimedOut, false, true),
                ErrorClass::Transient,
            ),
            (
                txn(RDKafkaErrorCode::InvalidTransactionalState, true, false),
                ErrorClass::Transient,
            ),
            (
                SinkError::NotCompacted {
                    topic: "o".into(),
                    policy: "delete".into(),
                },
                ErrorClass::Permanent,
            ),
        ];
        for (err, want) in cases {
            assert_eq!(err.class(), want, "{err}");
        }
    }
}
