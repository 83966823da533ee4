//! In-order acknowledgement: a source position is confirmed only once every event
//! before it has been acknowledged by the broker.

use std::future::Future;
use std::pin::Pin;

use futures_util::stream::{FuturesOrdered, StreamExt};
use sluice_core::Lsn;

use crate::error::SinkError;

type Pending = Pin<Box<dyn Future<Output = Result<Option<Lsn>, SinkError>> + Send>>;

/// Deliveries in flight, in the order they were produced. Each may carry a source
/// position that becomes confirmable when it and all before it are delivered.
#[derive(Default)]
pub struct OrderedAcks {
    pending: FuturesOrdered<Pending>,
}

impl OrderedAcks {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Tracks a delivery.
    pub fn push_delivery(
        &mut self,
        delivery: impl Future<Output = Result<(), SinkError>> + Send + 'static,
    ) {
        self.pending
            .push_back(Box::pin(async move { delivery.await.map(|()| None) }));
    }

    /// Marks a position that becomes confirmable after everything pushed before it.
    pub fn push_position(&mut self, lsn: Lsn) {
        self.pending
            .push_back(Box::pin(async move { Ok(Some(lsn)) }));
    }

    /// The next completed entry in order: `Some(Ok(Some(lsn)))` when a position became
    /// confirmable. `None` when nothing is pending.
    pub async fn next(&mut self) -> Option<Result<Option<Lsn>, SinkError>> {
        self.pending.next().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::oneshot;

    #[tokio::test]
    async fn a_position_waits_for_earlier_deliveries() {
        let mut acks = OrderedAcks::new();
        let (tx1, rx1) = oneshot::channel::<()>();
        let (tx2, rx2) = oneshot::channel::<()>();
        acks.push_delivery(async move { rx1.await.map_err(|_| SinkError::Canceled) });
        acks.push_position(Lsn(10));
        acks.push_delivery(async move { rx2.await.map_err(|_| SinkError::Canceled) });
        acks.push_position(Lsn(20));
        // The later delivery completes first: nothing may be confirmed yet.
        tx2.send(()).unwrap();
        let early = tokio::time::timeout(std::time::Duration::from_millis(50), acks.next()).await;
        assert!(early.is_err(), "confirmed before the first delivery");
        tx1.send(()).unwrap();
        assert!(matches!(acks.next().await, Some(Ok(None))));
        assert!(matches!(acks.next().await, Some(Ok(Some(Lsn(10))))));
        assert!(matches!(acks.next().await, Some(Ok(None))));
        assert!(matches!(acks.next().await, Some(Ok(Some(Lsn(20))))));
        assert!(acks.next().await.is_none());
    }

    #[tokio::test]
    async fn a_failed_delivery_surfaces_before_later_positions() {
        let mut acks = OrderedAcks::new();
        acks.push_delivery(async { Err(SinkError::Canceled) });
        acks.push_position(Lsn(5));
        assert!(matches!(acks.next().await, Some(Err(SinkError::Canceled))));
    }
}
