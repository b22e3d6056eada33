//! Live progress bar on stderr: events sent / acked / rejected, resends, current ack rate.
//! Hidden when stderr is not a terminal.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::report::Stats;

/// How often the bar is redrawn.
const TICK: Duration = Duration::from_millis(250);

/// A running progress display; call [`Progress::finish`] to stop and clear it.
#[derive(Debug)]
pub struct Progress {
    stop: CancellationToken,
    ticker: Option<JoinHandle<()>>,
}

impl Progress {
    /// Start drawing (only when `enabled` and stderr is a terminal). `total_events` sizes
    /// the bar when the run has an event limit; otherwise a spinner is shown.
    pub fn start(stats: Arc<Stats>, total_events: Option<u64>, enabled: bool) -> Self {
        let stop = CancellationToken::new();
        if !enabled || !std::io::stderr().is_terminal() {
            return Self { stop, ticker: None };
        }
        let bar = match total_events {
            Some(total) => ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr()),
            None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
        };
        let template = if total_events.is_some() {
            "{elapsed_precise} [{bar:30}] {msg}"
        } else {
            "{elapsed_precise} {spinner} {msg}"
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        let ticker = tokio::spawn(tick(stats, bar, stop.clone()));
        Self {
            stop,
            ticker: Some(ticker),
        }
    }

    /// Stop the display, clear the bar and wait for its task.
    pub async fn finish(mut self) {
        self.stop.cancel();
        if let Some(ticker) = self.ticker.take()
            && let Err(error) = ticker.await
        {
            tracing::warn!(%error, "progress task failed");
        }
    }
}

async fn tick(stats: Arc<Stats>, bar: ProgressBar, stop: CancellationToken) {
    let mut interval = tokio::time::interval(TICK);
    let mut last = (Instant::now(), 0u64);
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = interval.tick() => {}
        }
        let (sent, acked, rejected, resends) = stats.counters.snapshot();
        let now = Instant::now();
        let answered = acked + rejected;
        let seconds = now.duration_since(last.0).as_secs_f64();
        let rate = if seconds > 0.0 {
            (answered - last.1.min(answered)) as f64 / seconds
        } else {
            0.0
        };
        last = (now, answered);
        bar.set_position(answered);
        bar.set_message(format!(
            "sent {sent} acked {acked} rejected {rejected} resends {resends} | {rate:.0} ev/s"
        ));
    }
    bar.finish_and_clear();
}
