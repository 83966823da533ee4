//! The sink loop: encode, produce, and advance the acknowledged position in order.

use std::sync::Arc;
use std::time::Duration;

use sluice_core::{Lsn, SourceEvent};
use sluice_kafka::{OrderedAcks, Producer, SinkError};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::encoder::Encoder;
use super::error::PipelineError;
use crate::metrics::Metrics;

/// Deliveries in flight before the sink stops reading from the source.
const MAX_IN_FLIGHT: usize = 20_000;
/// How long a stopping sink waits for in-flight deliveries.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Sink {
    pub producer: Producer,
    pub encoder: Encoder,
    pub metrics: Arc<Metrics>,
    pub tombstones: bool,
}

impl Sink {
    /// Runs until `stop` fires or the source's channel closes, then drains in-flight
    /// deliveries (bounded by a timeout) so their positions can still be confirmed.
    pub async fn run(
        mut self,
        mut rx: mpsc::Receiver<SourceEvent>,
        acked: watch::Sender<Lsn>,
        stop: CancellationToken,
    ) -> Result<(), PipelineError> {
        let mut acks = OrderedAcks::new();
        let result = loop {
            tokio::select! {
                biased;
                done = acks.next(), if !acks.is_empty() => {
                    if let Err(e) = self.on_ack(done, &acked) { break Err(e) }
                }
                _ = stop.cancelled() => break Ok(()),
                ev = rx.recv(), if acks.len() < MAX_IN_FLIGHT => match ev {
                    None => break Ok(()),
                    Some(ev) => if let Err(e) = self.on_event(ev, &mut acks).await { break Err(e) },
                },
            }
        };
        // Drain what is in flight so the source can confirm it before closing.
        let drain = async {
            while let Some(done) = acks.next().await {
                self.on_ack(Some(done), &acked)?;
            }
            Ok::<_, PipelineError>(())
        };
        match tokio::time::timeout(DRAIN_TIMEOUT, drain).await {
            Ok(Err(e)) if result.is_ok() => return Err(e),
            Err(_) => tracing::warn!("in-flight Kafka deliveries not acknowledged within {DRAIN_TIMEOUT:?}; their positions stay unconfirmed"),
            _ => {}
        }
        self.metrics.in_flight.set(0);
        result
    }

    fn on_ack(
        &self,
        done: Option<Result<Option<Lsn>, SinkError>>,
        acked: &watch::Sender<Lsn>,
    ) -> Result<(), PipelineError> {
        match done {
            Some(Ok(Some(lsn))) => {
                acked.send_if_modified(|cur| {
                    let newer = lsn > *cur;
                    if newer {
                        *cur = lsn;
                    }
                    newer
                });
            }
            Some(Ok(None)) => self.metrics.in_flight.dec(),
            Some(Err(e)) => return Err(e.into()),
            None => {}
        }
        Ok(())
    }

    async fn on_event(
        &mut self,
        ev: SourceEvent,
        acks: &mut OrderedAcks,
    ) -> Result<(), PipelineError> {
        match ev {
            SourceEvent::Begin(_) => {}
            SourceEvent::Commit {
                end_lsn,
                commit_ts_us,
                ..
            } => {
                acks.push_position(end_lsn);
                self.metrics.last_source_ts.set(commit_ts_us as f64 / 1e6);
            }
            SourceEvent::Heartbeat(lsn) => acks.push_position(lsn),
            SourceEvent::Change(change) => {
                let now_ms = now_ms();
                let topic = self.encoder.encode(&change, now_ms).await?;
                self.producer.ensure_topic(&topic).await?;
                let counter = self
                    .metrics
                    .events
                    .with_label_values(&[&change.table.name.to_string(), change.op.code()]);
                let key = (!self.encoder.key.is_empty()).then_some(self.encoder.key.as_slice());
                let delivery = self
                    .producer
                    .send(&topic, key, Some(&self.encoder.value))
                    .await?;
                acks.push_delivery(async move {
                    delivery.await?;
                    counter.inc();
                    Ok(())
                });
                self.metrics.in_flight.inc();
                if change.op == sluice_core::Op::Delete && self.tombstones {
                    let delivery = self.producer.send(&topic, key, None).await?;
                    let tomb = self.metrics.tombstones.clone();
                    acks.push_delivery(async move {
                        delivery.await?;
                        tomb.inc();
                        Ok(())
                    });
                    self.metrics.in_flight.inc();
                }
            }
        }
        Ok(())
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
