//! The bounded queue between source and sink, counted in events but crossed in batches.
//!
//! A source hands over [`EventBatch`]es (one channel operation and at most one wake-up
//! per batch instead of per event), while the bound is a number of events: a batch takes
//! one permit per event from a semaphore and gives them back when the sink takes its
//! events out (or drops it). When the sink is slow the source waits for permits, and stops
//! reading (backpressure). What is held between source and sink is therefore at most the
//! capacity in the queue plus the one batch the sink is working through (a batch larger
//! than the whole queue takes every permit and passes alone).

use std::sync::Arc;

use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

use crate::{EventBatch, SourceEvent};

/// A queue for at most `capacity` events (at least 1) waiting for the sink.
pub fn event_queue(capacity: usize) -> (EventSender, EventReceiver) {
    let capacity = capacity.max(1);
    let (tx, rx) = mpsc::unbounded_channel();
    let permits = Arc::new(Semaphore::new(capacity));
    (
        EventSender {
            tx,
            permits: permits.clone(),
            capacity,
        },
        EventReceiver { rx, permits },
    )
}

/// The sink has stopped: nothing more can be handed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the sink stopped taking events")]
pub struct QueueClosed;

/// The source's end.
#[derive(Clone)]
pub struct EventSender {
    tx: mpsc::UnboundedSender<Batch>,
    permits: Arc<Semaphore>,
    capacity: usize,
}

impl EventSender {
    /// Waits for room for `n` events (a batch larger than the queue waits for all of it).
    /// Cancel-safe: dropping the future takes nothing.
    pub async fn reserve(&self, n: usize) -> Result<Room<'_>, QueueClosed> {
        let n = n.clamp(1, self.capacity) as u32;
        let permit = self
            .permits
            .clone()
            .acquire_many_owned(n)
            .await
            .map_err(|_| QueueClosed)?;
        Ok(Room { tx: self, permit })
    }

    /// Hands over a batch, waiting for room.
    pub async fn send(&self, events: EventBatch) -> Result<(), QueueClosed> {
        self.reserve(events.len()).await?.send(events)
    }

    /// How full the queue is; readable without keeping it open.
    pub fn gauge(&self) -> QueueGauge {
        QueueGauge {
            permits: self.permits.clone(),
            capacity: self.capacity,
        }
    }
}

/// Room reserved in the queue for one batch.
pub struct Room<'a> {
    tx: &'a EventSender,
    permit: OwnedSemaphorePermit,
}

impl Room<'_> {
    pub fn send(self, events: EventBatch) -> Result<(), QueueClosed> {
        self.tx
            .tx
            .send(Batch {
                events,
                _permit: self.permit,
            })
            .map_err(|_| QueueClosed)
    }
}

/// A batch in the queue; its room is given back when it is dropped.
pub struct Batch {
    pub events: EventBatch,
    _permit: OwnedSemaphorePermit,
}

impl IntoIterator for Batch {
    type Item = SourceEvent;
    type IntoIter = std::vec::IntoIter<SourceEvent>;
    /// The events; the room is given back now: events the sink holds no longer count.
    fn into_iter(self) -> Self::IntoIter {
        self.events.into_iter()
    }
}

/// The sink's end. Dropping it closes the queue (a waiting source gets [`QueueClosed`]).
pub struct EventReceiver {
    rx: mpsc::UnboundedReceiver<Batch>,
    permits: Arc<Semaphore>,
}

impl EventReceiver {
    /// The next batch; `None` once every sender is gone and the queue is empty.
    pub async fn recv(&mut self) -> Option<Batch> {
        self.rx.recv().await
    }
}

impl Drop for EventReceiver {
    fn drop(&mut self) {
        self.permits.close();
    }
}

/// Reads the queue's fill level.
#[derive(Clone)]
pub struct QueueGauge {
    permits: Arc<Semaphore>,
    capacity: usize,
}

impl QueueGauge {
    /// Events in the queue (or reserved for a batch being handed over).
    pub fn depth(&self) -> usize {
        self.capacity
            .saturating_sub(self.permits.available_permits())
    }
    pub fn capacity(&self) -> usize {
        self.capacity
    }
    /// Whether the sink's end is gone.
    pub fn is_closed(&self) -> bool {
        self.permits.is_closed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Lsn;

    fn batch(n: usize) -> EventBatch {
        (0..n)
            .map(|i| SourceEvent::Heartbeat(Lsn(i as u64)))
            .collect()
    }

    #[tokio::test]
    async fn bounded_in_events_and_room_returns_when_a_batch_is_dropped() {
        let (tx, mut rx) = event_queue(10);
        let gauge = tx.gauge();
        tx.send(batch(6)).await.unwrap();
        tx.send(batch(4)).await.unwrap();
        assert_eq!(gauge.depth(), 10);
        // Full: a third batch waits.
        let third = tokio::time::timeout(std::time::Duration::from_millis(50), tx.send(batch(1)));
        assert!(
            third.await.is_err(),
            "a full queue must make the source wait"
        );
        let first = rx.recv().await.unwrap();
        assert_eq!(first.events.len(), 6);
        assert_eq!(
            gauge.depth(),
            10,
            "room comes back only when the batch is dropped"
        );
        drop(first);
        assert_eq!(gauge.depth(), 4);
        tx.send(batch(1)).await.unwrap();
        assert_eq!(gauge.depth(), 5);
        // A batch larger than the queue waits for all of it, then passes.
        drop(rx.recv().await);
        drop(rx.recv().await);
        tx.send(batch(25)).await.unwrap();
        assert_eq!(rx.recv().await.unwrap().into_iter().count(), 25);
    }

    #[tokio::test]
    async fn a_waiting_source_learns_that_the_sink_stopped() {
        let (tx, rx) = event_queue(2);
        tx.send(batch(2)).await.unwrap();
        let gauge = tx.gauge();
        let waiting = tokio::spawn(async move { tx.send(batch(1)).await });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        drop(rx);
        assert_eq!(waiting.await.unwrap(), Err(QueueClosed));
        assert!(gauge.is_closed());
    }
}
