//! The alert role's records, taken from librdkafka many at a time.
//!
//! The role reads every record of the detections topic and matches nearly none, so what
//! it costs per record is mostly the client's: `rdkafka`'s `poll` hands out one record per
//! call, and each call reads the clock about three times, takes the queue's lock, wraps
//! the record in an event and a reference count and frees them again (about a third of
//! the role's CPU at 400k records/s, measured with `perf`). librdkafka's own batch call,
//! `rd_kafka_consume_batch_queue`, returns up to N records for one clock reading, but on
//! the consumer's queue it would also serve the group's rebalance events, which `rdkafka`
//! handles itself. So the role gives the topic's partitions a queue of their own: as each
//! partition is assigned ([`Forwarding`], just before `rd_kafka_assign`), its fetch queue
//! is forwarded to that queue, whose records are taken in batches ([`Partitions`]), and
//! everything else (rebalances, errors, commits) stays on the consumer's queue, which the
//! role still polls. librdkafka drops a partition's forwarding when the partition is
//! revoked and does not restore an application's on the next assignment, hence forwarding
//! at every assignment rather than once. `rdkafka` has no safe call for any of this, hence
//! the `unsafe` blocks, each on librdkafka's documented contract; nothing here outlives the
//! consumer.
#![allow(unsafe_code)]

use std::collections::BTreeSet;
use std::ffi::CString;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use rdkafka::ClientContext;
use rdkafka::bindings as rd;
use rdkafka::consumer::{BaseConsumer, Consumer as _, ConsumerContext, Rebalance};
use rdkafka::error::RDKafkaErrorCode;

/// One record as librdkafka holds it, borrowed for one call of [`Partitions::take`]'s
/// closure.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Value (empty when the record has none).
    pub payload: &'a [u8],
}

/// The role's queue while it lives.
struct Queue(*mut rd::rd_kafka_queue_t);

// SAFETY: librdkafka's queues may be used from any thread; the pointer is only handed to
// librdkafka calls.
unsafe impl Send for Queue {}

/// The alert consumer's context: forwards each assigned partition of `topic` to the
/// role's queue, if there is one yet.
pub struct Forwarding {
    topic: String,
    queue: Mutex<Option<Queue>>,
    /// Partitions forwarded so far (un-forwarded when the queue goes).
    forwarded: Mutex<BTreeSet<i32>>,
}

impl Forwarding {
    /// A context for a consumer of `topic`.
    pub fn new(topic: &str) -> Self {
        Self {
            topic: topic.to_string(),
            queue: Mutex::new(None),
            forwarded: Mutex::new(BTreeSet::new()),
        }
    }
}

impl ClientContext for Forwarding {}

impl ConsumerContext for Forwarding {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(list) => {
                let queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
                let mut forwarded = self
                    .forwarded
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                let mut partitions = 0;
                for element in list.elements_for_topic(&self.topic) {
                    partitions += 1;
                    if let Some(queue) = queue.as_ref() {
                        if forward(consumer, &self.topic, element.partition(), queue.0) {
                            forwarded.insert(element.partition());
                        } else {
                            tracing::warn!(
                                partition = element.partition(),
                                "a partition could not be forwarded; it is read record by record"
                            );
                        }
                    }
                }
                tracing::info!(partitions, "alert consumer assigned partitions");
            }
            Rebalance::Revoke(list) => {
                tracing::info!(
                    partitions = list.count(),
                    "alert consumer's partitions revoked"
                );
            }
            Rebalance::Error(error) => tracing::warn!(%error, "alert consumer rebalance failed"),
        }
    }
}

/// Point `partition`'s fetch queue of `topic` at `to` (null: back to none). `false` if
/// librdkafka has no such partition handle.
fn forward<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    topic: &str,
    partition: i32,
    to: *mut rd::rd_kafka_queue_t,
) -> bool {
    let Ok(topic) = CString::new(topic) else {
        return false;
    };
    let client = consumer.client().native_ptr();
    // SAFETY: the client is live (borrowed); the topic is a NUL-terminated string; the
    // partition queue handle returned is released right after forwarding (the forwarding
    // stays with the partition, and holds its own reference to `to`).
    unsafe {
        let fetch = rd::rd_kafka_queue_get_partition(client, topic.as_ptr(), partition);
        if fetch.is_null() {
            return false;
        }
        rd::rd_kafka_queue_forward(fetch, to);
        rd::rd_kafka_queue_destroy(fetch);
    }
    true
}

/// The role's queue that the assigned partitions forward their records to.
pub struct Partitions<'c> {
    consumer: &'c BaseConsumer<Forwarding>,
    queue: *mut rd::rd_kafka_queue_t,
    taken: Vec<*mut rd::rd_kafka_message_t>,
}

impl<'c> Partitions<'c> {
    /// A queue for `consumer`'s partitions, forwarded to as they are assigned. Make it
    /// before the consumer's first poll (the first assignment is served in a poll).
    pub fn new(consumer: &'c BaseConsumer<Forwarding>) -> anyhow::Result<Self> {
        // SAFETY: the consumer's handle is live (borrowed for 'c); the new queue is owned
        // here and destroyed in `drop`, before the consumer can be.
        let queue = unsafe { rd::rd_kafka_queue_new(consumer.client().native_ptr()) };
        anyhow::ensure!(!queue.is_null(), "librdkafka made no queue");
        *consumer
            .context()
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Queue(queue));
        Ok(Self {
            consumer,
            queue,
            taken: Vec::new(),
        })
    }

    /// Wait up to `wait` for records, then hand each of those waiting (up to `max`) to
    /// `each`, in order per partition: a record, or the error librdkafka reported for a
    /// partition in its place. Returns how many were handed over.
    pub fn take(
        &mut self,
        wait: Duration,
        max: usize,
        mut each: impl FnMut(Result<Record<'_>, RDKafkaErrorCode>),
    ) -> usize {
        let timeout = i32::try_from(wait.as_millis()).unwrap_or(i32::MAX);
        self.taken.clear();
        self.taken.reserve(max);
        // SAFETY: `taken` has room for `max` pointers; librdkafka writes `n` ≤ `max` of them
        // (or returns -1 and writes none) and each is then ours until destroyed below.
        let n = unsafe {
            rd::rd_kafka_consume_batch_queue(self.queue, timeout, self.taken.as_mut_ptr(), max)
        };
        let n = usize::try_from(n).unwrap_or(0).min(max);
        // SAFETY: the first `n` slots were written just now.
        unsafe { self.taken.set_len(n) };
        for &message in &self.taken {
            // SAFETY: a message returned by librdkafka stays valid until destroyed; its
            // payload is `len` bytes (or null) for as long as the message lives, and the
            // slice does not leave this loop's closure call.
            let item = unsafe {
                let message = &*message;
                if message.err == rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
                    let payload = if message.payload.is_null() {
                        &[][..]
                    } else {
                        std::slice::from_raw_parts(message.payload.cast::<u8>(), message.len)
                    };
                    Ok(Record {
                        partition: message.partition,
                        offset: message.offset,
                        payload,
                    })
                } else {
                    Err(RDKafkaErrorCode::from(message.err))
                }
            };
            each(item);
        }
        self.release();
        n
    }

    /// Destroy the messages of the last [`Self::take`].
    fn release(&mut self) {
        for message in self.taken.drain(..) {
            // SAFETY: each pointer came from `rd_kafka_consume_batch_queue` and is destroyed
            // once (drained).
            unsafe { rd::rd_kafka_message_destroy(message) };
        }
    }
}

impl Drop for Partitions<'_> {
    fn drop(&mut self) {
        self.release();
        let context = self.consumer.context();
        // No assignment forwards to the queue from now on...
        context
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        // ... and none forwards to it any more.
        let forwarded = std::mem::take(
            &mut *context
                .forwarded
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        for partition in forwarded {
            forward(
                self.consumer,
                &context.topic,
                partition,
                std::ptr::null_mut(),
            );
        }
        // SAFETY: the queue was made in `new`, no partition forwards to it any more, and it
        // is destroyed once, while the consumer (borrowed for 'c) still lives.
        unsafe { rd::rd_kafka_queue_destroy(self.queue) };
    }
}
