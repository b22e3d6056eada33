//! The alert role's records, taken from librdkafka many at a time.
//!
//! The role reads every record of the detections topic and matches nearly none, so what
//! it costs per record is mostly the client's: `rdkafka`'s `poll` hands out one record per
//! call, and each call reads the clock about three times, takes the queue's lock, wraps
//! the record in an event and a reference count and frees them again (about a third of
//! the role's CPU at 400k records/s, measured with `perf`). librdkafka's own batch call,
//! `rd_kafka_consume_batch_queue`, returns up to N records for one clock reading, but on
//! the consumer's queue it would also serve the group's rebalance events, which `rdkafka`
//! handles itself. So the role gives the topic's partitions a queue of their own: each
//! partition's fetch queue is forwarded to it (librdkafka keeps an application's
//! forwarding when the partition is assigned), its records are taken from it in batches,
//! and everything else (rebalances, errors, commits) stays on the consumer's queue, which
//! the role still polls. `rdkafka` has no safe call for this, hence the `unsafe` blocks,
//! each on librdkafka's documented contract; nothing here outlives the consumer.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::marker::PhantomData;
use std::time::Duration;

use anyhow::Context as _;
use rdkafka::bindings as rd;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
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

/// The role's queue that the partitions of one topic forward their records to.
pub struct Partitions<'c> {
    queue: *mut rd::rd_kafka_queue_t,
    client: *mut rd::rd_kafka_t,
    topic: CString,
    forwarded: Vec<i32>,
    taken: Vec<*mut rd::rd_kafka_message_t>,
    consumer: PhantomData<&'c BaseConsumer>,
}

impl<'c> Partitions<'c> {
    /// Forward partitions `0..count` of `topic` of `consumer` to a new queue. Call it before
    /// the consumer is assigned any of them (records fetched before would stay on the
    /// consumer's queue; [`super`] reads those too).
    pub fn forward(consumer: &'c BaseConsumer, topic: &str, count: i32) -> anyhow::Result<Self> {
        let topic = CString::new(topic).context("a topic name with a NUL byte")?;
        let client = consumer.client().native_ptr();
        // SAFETY: `client` is the live consumer's handle (borrowed for 'c); the new queue is
        // owned here and destroyed in `drop`, before the consumer can be.
        let queue = unsafe { rd::rd_kafka_queue_new(client) };
        anyhow::ensure!(!queue.is_null(), "librdkafka made no queue");
        let mut partitions = Self {
            queue,
            client,
            topic,
            forwarded: Vec::new(),
            taken: Vec::new(),
            consumer: PhantomData,
        };
        for partition in 0..count {
            anyhow::ensure!(
                partitions.forward_one(partition, queue),
                "partition {partition} has no fetch queue"
            );
            partitions.forwarded.push(partition);
        }
        Ok(partitions)
    }

    /// Whether no partition is forwarded (the records all stay on the consumer's queue).
    pub fn is_empty(&self) -> bool {
        self.forwarded.is_empty()
    }

    /// Point `partition`'s fetch queue at `to` (null: back to none). `false` if librdkafka
    /// has no such partition handle.
    fn forward_one(&self, partition: i32, to: *mut rd::rd_kafka_queue_t) -> bool {
        // SAFETY: the client is live; the topic is a NUL-terminated string; the partition
        // queue handle returned is released right after forwarding (the forwarding stays
        // with the partition, and holds its own reference to `to`).
        unsafe {
            let fetch =
                rd::rd_kafka_queue_get_partition(self.client, self.topic.as_ptr(), partition);
            if fetch.is_null() {
                return false;
            }
            rd::rd_kafka_queue_forward(fetch, to);
            rd::rd_kafka_queue_destroy(fetch);
        }
        true
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
        for &partition in &self.forwarded {
            self.forward_one(partition, std::ptr::null_mut());
        }
        // SAFETY: the queue was made in `forward`, no partition forwards to it any more,
        // and it is destroyed once, while the consumer (borrowed for 'c) still lives.
        unsafe { rd::rd_kafka_queue_destroy(self.queue) };
    }
}
