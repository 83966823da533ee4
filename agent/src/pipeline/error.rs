//! Pipeline errors: one type over every stage, classified for the retry policy.

use sluice_avro::EncodeError;
use sluice_core::{Classify, ErrorClass};
use sluice_kafka::SinkError;
use sluice_postgres::PgError;
use sluice_schema_registry::ClientError;

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("PostgreSQL source: {0}")]
    Source(#[from] PgError),
    #[error("Kafka sink: {0}")]
    Sink(#[from] SinkError),
    #[error("schema registry: {0}")]
    Registry(#[from] ClientError),
    #[error("{0}. The event is not produced and its position is not confirmed; fix the data or the column type, then restart")]
    Encode(#[from] EncodeError),
    #[error("{0}")]
    Startup(String),
}

impl PipelineError {
    /// The registry refused a schema as incompatible (HTTP 409).
    pub fn is_incompatible_schema(&self) -> bool {
        matches!(
            self,
            PipelineError::Registry(ClientError::Registry { status: 409, .. })
        )
    }

    /// Another instance holds the replication slot or took over the transactional.id.
    pub fn other_instance(&self) -> bool {
        match self {
            PipelineError::Source(PgError::SlotBusy { .. }) => true,
            PipelineError::Sink(SinkError::Txn(f)) => f.fenced(),
            _ => false,
        }
    }
}

impl Classify for PipelineError {
    fn class(&self) -> ErrorClass {
        match self {
            PipelineError::Source(e) => e.class(),
            PipelineError::Sink(e) => e.class(),
            PipelineError::Registry(e) => e.class(),
            PipelineError::Encode(_) | PipelineError::Startup(_) => ErrorClass::Permanent,
        }
    }
}
