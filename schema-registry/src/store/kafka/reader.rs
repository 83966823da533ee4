//! The reader thread: consumes the topic and applies its records.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::Offset;

use crate::error::RegistryError;
use crate::store::record::Record;
use crate::store::{lock, Shared};

use super::client::Ctx;

/// Progress of the reader thread.
#[derive(Default)]
pub(super) struct Tail {
    pos: Mutex<TailPos>,
    moved: Condvar,
    pub stop: AtomicBool,
}

#[derive(Default)]
struct TailPos {
    /// Every record before this offset has been applied.
    next_offset: i64,
    last_error: Option<String>,
    stopped: bool,
}

impl Tail {
    /// Wait until the reader has applied every record of `topic` before `target`.
    pub fn wait_for(
        &self,
        topic: &str,
        target: i64,
        timeout: Duration,
        what: &str,
    ) -> Result<(), RegistryError> {
        let deadline = Instant::now() + timeout;
        let mut pos = lock(&self.pos);
        while pos.next_offset < target {
            let now = Instant::now();
            if pos.stopped || now >= deadline {
                return Err(RegistryError::Timeout(format!(
                    "Kafka topic '{topic}': {what}: the reader is at offset {} and has not reached offset {target} within {timeout:?}{}",
                    pos.next_offset,
                    pos.last_error
                        .as_deref()
                        .map(|e| format!(" (last error: {e})"))
                        .unwrap_or_default()
                )));
            }
            pos = self
                .moved
                .wait_timeout(pos, deadline - now)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
        Ok(())
    }
}

/// Consume `topic` and apply its records until `tail.stop` is set.
pub(super) fn tail_loop(consumer: BaseConsumer<Ctx>, topic: &str, shared: &Shared, tail: &Tail) {
    let mut last_warning: Option<Instant> = None;
    while !tail.stop.load(Ordering::SeqCst) {
        let mut error = None;
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(msg)) => {
                let origin = format!("Kafka topic '{topic}' offset {}", msg.offset());
                match msg.key() {
                    None => shared.skip(&origin, "the record has no key"),
                    Some(key) => match Record::decode(key, msg.payload()) {
                        Ok(r) => shared.apply(std::slice::from_ref(&r), &origin),
                        Err(reason) => shared.skip(&origin, &reason),
                    },
                }
            }
            Some(Err(KafkaError::PartitionEOF(_))) | None => {}
            Some(Err(e)) => {
                if last_warning.is_none_or(|t| t.elapsed() >= Duration::from_secs(30)) {
                    tracing::warn!(topic, error = %e, "schema registry reader: cannot read the topic");
                    last_warning = Some(Instant::now());
                }
                error = Some(e.to_string());
            }
        }
        let offset = consumer.position().ok().and_then(|tpl| {
            match tpl.find_partition(topic, 0).map(|p| p.offset()) {
                Some(Offset::Offset(o)) => Some(o),
                _ => None,
            }
        });
        let mut pos = lock(&tail.pos);
        if let Some(o) = offset.filter(|o| *o > pos.next_offset) {
            pos.next_offset = o;
            pos.last_error = None;
            tail.moved.notify_all();
        }
        if error.is_some() {
            pos.last_error = error;
        }
    }
    lock(&tail.pos).stopped = true;
    tail.moved.notify_all();
}
