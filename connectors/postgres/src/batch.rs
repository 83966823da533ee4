//! Handing events to the sink in batches ([`EventBatch`]): one channel operation per
//! batch, so a fast source and a fast sink do not wake each other for every row.

use sluice_core::{EventBatch, EventSender, SourceEvent, MAX_EVENT_BATCH};

use crate::error::PgError;

/// Collects events and sends them as a batch when it is full or on [`Self::flush`].
pub struct BatchSender<'a> {
    tx: &'a EventSender,
    batch: EventBatch,
}

impl<'a> BatchSender<'a> {
    pub fn new(tx: &'a EventSender) -> Self {
        BatchSender {
            tx,
            batch: Vec::with_capacity(MAX_EVENT_BATCH),
        }
    }

    /// Adds an event; waits for room in the queue when the batch is full (backpressure).
    pub async fn push(&mut self, ev: SourceEvent) -> Result<(), PgError> {
        self.batch.push(ev);
        if self.batch.len() >= MAX_EVENT_BATCH {
            self.flush().await?;
        }
        Ok(())
    }

    /// Sends what is collected, then `events` as a batch of its own.
    pub async fn send_batch(&mut self, events: EventBatch) -> Result<(), PgError> {
        self.flush().await?;
        self.tx
            .send(events)
            .await
            .map_err(|_| PgError::PipelineClosed)
    }

    /// Sends what is collected.
    pub async fn flush(&mut self) -> Result<(), PgError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let full = std::mem::replace(&mut self.batch, Vec::with_capacity(MAX_EVENT_BATCH));
        self.tx
            .send(full)
            .await
            .map_err(|_| PgError::PipelineClosed)
    }
}
