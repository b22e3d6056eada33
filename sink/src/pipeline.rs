//! The insert pipeline: one thread of its own inserts batches into ClickHouse while the
//! polling thread reads and decodes the next one, so consuming and inserting overlap.
//!
//! Batches go to the writer thread through a channel of one slot and come back, inserted (or
//! abandoned at shutdown), in the order they were sent: a single writer handles them one at
//! a time. The polling thread commits each batch's offsets when it comes back, so commits
//! stay in order and never pass a batch that is not durable. At most three batches exist:
//! one being inserted, one queued, one filling; when the queue is full the polling thread
//! pauses its partitions and keeps polling (group membership stays alive) until the writer
//! catches up.

use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TryRecvError, TrySendError};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use super::batch::Batch;
use super::writer::{Abandoned, ClickhouseWriter};

/// A batch back from the writer thread, with how its insert ended.
pub(crate) type Completed = (Batch, Result<(), Abandoned>);

/// The polling thread's end of the pipeline.
pub(crate) struct InsertPipeline {
    to_writer: Option<SyncSender<Batch>>,
    from_writer: Receiver<Completed>,
    in_flight: usize,
    thread: Option<JoinHandle<()>>,
}

impl InsertPipeline {
    /// Start the writer thread (with its own current-thread runtime for the async client).
    pub(crate) fn start(
        writer: ClickhouseWriter,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Self> {
        let (to_writer, batches) = std::sync::mpsc::sync_channel::<Batch>(1);
        let (done, from_writer) = std::sync::mpsc::channel::<Completed>();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("building the insert runtime")?;
        let thread = std::thread::Builder::new()
            .name("camtrail-sink-insert".into())
            .spawn(move || {
                let mut writer = writer;
                let mut abandoned: Option<Abandoned> = None;
                while let Ok(batch) = batches.recv() {
                    // After one batch was abandoned, later ones must not become durable
                    // ahead of it: they are all handed back abandoned.
                    let result = match &abandoned {
                        Some(earlier) => Err(earlier.clone()),
                        None => runtime.block_on(writer.write(&batch, &shutdown)),
                    };
                    if let Err(error) = &result {
                        abandoned.get_or_insert_with(|| error.clone());
                    }
                    if done.send((batch, result)).is_err() {
                        break;
                    }
                }
            })
            .context("spawning the insert thread")?;
        Ok(Self {
            to_writer: Some(to_writer),
            from_writer,
            in_flight: 0,
            thread: Some(thread),
        })
    }

    /// Hand `batch` to the writer if its queue has room; otherwise give it back.
    pub(crate) fn try_send(&mut self, batch: Batch) -> Result<(), Batch> {
        let Some(to_writer) = &self.to_writer else {
            return Err(batch);
        };
        match to_writer.try_send(batch) {
            Ok(()) => {
                self.in_flight += 1;
                Ok(())
            }
            Err(TrySendError::Full(batch) | TrySendError::Disconnected(batch)) => Err(batch),
        }
    }

    /// Hand `batch` to the writer, waiting for room.
    pub(crate) fn send(&mut self, batch: Batch) -> Result<(), Abandoned> {
        let sent = match &self.to_writer {
            Some(to_writer) => to_writer.send(batch).is_ok(),
            None => false,
        };
        if !sent {
            return Err(Abandoned {
                attempts: 0,
                last_error: "the insert thread is gone".into(),
            });
        }
        self.in_flight += 1;
        Ok(())
    }

    /// Batches sent and not yet back.
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// The next batch back from the writer: waits up to `wait` (zero: only if one is ready).
    pub(crate) fn next_completed(&mut self, wait: Duration) -> Option<Completed> {
        if self.in_flight == 0 {
            return None;
        }
        // `recv_timeout` reads the clock even for a zero wait; this runs once per record.
        let received = if wait.is_zero() {
            self.from_writer.try_recv().map_err(|error| match error {
                TryRecvError::Empty => RecvTimeoutError::Timeout,
                TryRecvError::Disconnected => RecvTimeoutError::Disconnected,
            })
        } else {
            self.from_writer.recv_timeout(wait)
        };
        let completed = match received {
            Ok(completed) => completed,
            Err(RecvTimeoutError::Timeout) => return None,
            Err(RecvTimeoutError::Disconnected) => {
                // The thread ended without handing back what it held (it panicked).
                self.in_flight = 0;
                return Some((
                    Batch::default(),
                    Err(Abandoned {
                        attempts: 0,
                        last_error: "the insert thread ended unexpectedly".into(),
                    }),
                ));
            }
        };
        self.in_flight -= 1;
        Some(completed)
    }
}

impl Drop for InsertPipeline {
    fn drop(&mut self) {
        // Closing the channel ends the writer's loop once it has handed back what it holds.
        self.to_writer = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
