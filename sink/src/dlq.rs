//! Dead-lettering with retries: records the sink cannot decode go to the dead-letter topic
//! (`camtrail_kafka::DeadLetterProducer`, `acks=all`) before their offset may be committed
//! (ARCHITECTURE.md, Guarantees 2: never dropped). A failed produce is retried with the sink's
//! backoff until it is acked or shutdown begins.

use std::time::Duration;

use camtrail_common::Backoff;
use camtrail_kafka::{DeadLetter, DeadLetterProducer};
use tokio_util::sync::CancellationToken;

use super::metrics::SinkMetrics;
use super::writer::Abandoned;

/// The dead-letter producer with the sink's retry policy and metrics.
pub(crate) struct DeadLetters {
    producer: DeadLetterProducer,
    backoff: Backoff,
    metrics: SinkMetrics,
}

impl DeadLetters {
    pub(crate) fn new(
        producer: DeadLetterProducer,
        backoff: Backoff,
        metrics: SinkMetrics,
    ) -> Self {
        Self {
            producer,
            backoff,
            metrics,
        }
    }

    /// Produce `letter` and wait for the broker's ack, retrying with capped backoff until it
    /// is acked. Gives up only when `shutdown` is cancelled and an attempt after that failed.
    pub(crate) async fn send(
        &mut self,
        letter: DeadLetter<'_>,
        shutdown: &CancellationToken,
    ) -> Result<(), Abandoned> {
        let mut attempts = 0u64;
        self.backoff.reset();
        loop {
            let error = match self.producer.send(letter).await {
                Ok(()) => {
                    self.metrics.dead_letter_records.inc();
                    tracing::warn!(
                        topic = letter.topic,
                        partition = letter.partition,
                        offset = letter.offset,
                        error = letter.error,
                        "undecodable record sent to the dead-letter topic"
                    );
                    return Ok(());
                }
                Err(error) => error,
            };
            attempts += 1;
            if shutdown.is_cancelled() {
                return Err(Abandoned {
                    attempts,
                    last_error: error.to_string(),
                });
            }
            self.metrics.retry("dead_letter", "transient");
            let pause = self.backoff.next_pause();
            tracing::warn!(%error, attempts, "dead-letter produce failed; retrying");
            sleep_or_shutdown(pause, shutdown).await;
        }
    }
}

async fn sleep_or_shutdown(pause: Duration, shutdown: &CancellationToken) {
    tokio::select! {
        () = tokio::time::sleep(pause) => {}
        () = shutdown.cancelled() => {}
    }
}
