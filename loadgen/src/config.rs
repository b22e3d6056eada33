//! What a load run does: target, pacing, limits, batching, timeouts, credentials.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::time::Duration;

use crate::LoadgenError;

/// Largest batch the ingest node accepts by default (`EventBatch` doc in ingest.proto).
pub const MAX_BATCH_SIZE: usize = 5_000;

/// How fast events are offered.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Throttle {
    /// As fast as the streams take them (backpressure is the only limit).
    Open,
    /// A fixed target rate, events per second, paced evenly.
    EventsPerSecond(f64),
}

/// Options of one load run. [`LoadgenConfig::default`] gives sane values for everything
/// except the limits, which default to 10,000 events.
#[derive(Debug, Clone)]
pub struct LoadgenConfig {
    /// Ingest endpoint, e.g. `http://127.0.0.1:50051`.
    pub target: String,
    /// Target rate or open throttle.
    pub throttle: Throttle,
    /// Stop offering events after this many (events of skipped gateways do not count).
    pub max_events: Option<u64>,
    /// Stop offering events after this long. With neither limit the run lasts until the
    /// event iterator ends or the shutdown token fires.
    pub duration: Option<Duration>,
    /// Events per batch (1..=5,000).
    pub batch_size: usize,
    /// Longest time a partial batch waits for more events before it is sent anyway (an
    /// edge gateway sends what it has at least this often).
    pub linger: Duration,
    /// A batch without an ack after this long is resent (same `batch_seq`).
    pub ack_timeout: Duration,
    /// Most batches sent and not yet acked per gateway stream; when the window is full the
    /// gateway stops sending until acks arrive.
    pub max_in_flight: usize,
    /// Use only the first N gateways (in order of first appearance in the registry); events
    /// of other gateways' cameras are given to these gateways' cameras (see
    /// [`crate::Routes`]). `None`: all gateways.
    pub gateways: Option<usize>,
    /// Bearer token per gateway id, sent as `authorization: Bearer <token>`; gateways
    /// without an entry send no authorization header.
    pub tokens: HashMap<String, String>,
    /// First delay before reconnecting a broken stream; doubled per failed attempt.
    pub reconnect_backoff_initial: Duration,
    /// Cap of the reconnect delay.
    pub reconnect_backoff_max: Duration,
    /// A gateway that has not managed to open a stream for this long fails the run.
    pub give_up_after: Duration,
    /// After the last event is offered, how long to wait for outstanding acks.
    pub drain_timeout: Duration,
    /// Add the time elapsed since the run started to every `captured_at_ms`. Traffic is
    /// simulated over a window ending at the start (e.g. `TrafficConfig::start_ms = now -
    /// span`); shifting keeps each event that far behind wall-clock time however long the
    /// run lasts, so an ingest node's "too old" / "in the future" checks accept it.
    pub shift_timestamps: bool,
}

impl Default for LoadgenConfig {
    fn default() -> Self {
        Self {
            target: "http://127.0.0.1:50051".to_string(),
            throttle: Throttle::EventsPerSecond(10_000.0),
            max_events: Some(10_000),
            duration: None,
            batch_size: 500,
            linger: Duration::from_millis(100),
            ack_timeout: Duration::from_secs(10),
            max_in_flight: 8,
            gateways: None,
            tokens: HashMap::new(),
            reconnect_backoff_initial: Duration::from_millis(100),
            reconnect_backoff_max: Duration::from_secs(5),
            give_up_after: Duration::from_secs(60),
            drain_timeout: Duration::from_secs(30),
            shift_timestamps: true,
        }
    }
}

impl LoadgenConfig {
    /// Check the values that come from outside; [`crate::run`] calls it first.
    pub fn validate(&self) -> Result<(), LoadgenError> {
        let invalid = |message: String| Err(LoadgenError::InvalidConfig(message));
        if self.target.parse::<tonic::transport::Uri>().is_err() {
            return invalid(format!("target is not a URI: {:?}", self.target));
        }
        if let Throttle::EventsPerSecond(rate) = self.throttle
            && !(rate.is_finite() && rate > 0.0)
        {
            return invalid(format!("rate must be a positive number, got {rate}"));
        }
        if self.batch_size == 0 || self.batch_size > MAX_BATCH_SIZE {
            return invalid(format!(
                "batch size must be 1..={MAX_BATCH_SIZE}, got {}",
                self.batch_size
            ));
        }
        if self.max_in_flight == 0 {
            return invalid("max in-flight batches must be at least 1".to_string());
        }
        if self.gateways == Some(0) {
            return invalid("gateways must be at least 1".to_string());
        }
        if self.ack_timeout.is_zero() || self.linger.is_zero() {
            return invalid("ack timeout and linger must be positive".to_string());
        }
        if self.reconnect_backoff_initial.is_zero()
            || self.reconnect_backoff_max < self.reconnect_backoff_initial
        {
            return invalid("reconnect backoff must be positive and initial <= max".to_string());
        }
        Ok(())
    }
}

/// Read gateway tokens from CSV `gateway_id,token` (the `gateway_tokens.csv` written by
/// `camtrail gateways issue`; a header line starting with `gateway_id` is skipped).
pub fn read_tokens(path: &Path) -> Result<HashMap<String, String>, LoadgenError> {
    let file = std::fs::File::open(path).map_err(|source| LoadgenError::Tokens {
        path: path.display().to_string(),
        message: source.to_string(),
    })?;
    parse_tokens(file).map_err(|message| LoadgenError::Tokens {
        path: path.display().to_string(),
        message,
    })
}

/// Parse `gateway_id,token` lines; errors name the offending line.
pub fn parse_tokens(reader: impl Read) -> Result<HashMap<String, String>, String> {
    let mut csv_reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .trim(csv::Trim::All)
        .from_reader(reader);
    let mut tokens = HashMap::new();
    for (line, record) in csv_reader.records().enumerate() {
        let record = record.map_err(|error| format!("line {}: {error}", line + 1))?;
        let (Some(gateway_id), Some(token), None) = (record.get(0), record.get(1), record.get(2))
        else {
            return Err(format!("line {}: expected gateway_id,token", line + 1));
        };
        if line == 0 && gateway_id == "gateway_id" {
            continue;
        }
        if gateway_id.is_empty() || token.is_empty() {
            return Err(format!("line {}: empty gateway id or token", line + 1));
        }
        tokens.insert(gateway_id.to_string(), token.to_string());
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_is_valid_and_bad_values_are_refused() {
        assert!(LoadgenConfig::default().validate().is_ok());
        let bad = [
            LoadgenConfig {
                batch_size: 0,
                ..LoadgenConfig::default()
            },
            LoadgenConfig {
                batch_size: MAX_BATCH_SIZE + 1,
                ..LoadgenConfig::default()
            },
            LoadgenConfig {
                throttle: Throttle::EventsPerSecond(f64::NAN),
                ..LoadgenConfig::default()
            },
            LoadgenConfig {
                max_in_flight: 0,
                ..LoadgenConfig::default()
            },
            LoadgenConfig {
                target: "not a uri at all".into(),
                ..LoadgenConfig::default()
            },
            LoadgenConfig {
                gateways: Some(0),
                ..LoadgenConfig::default()
            },
        ];
        for config in bad {
            assert!(config.validate().is_err(), "{config:?}");
        }
    }

    #[test]
    fn tokens_parse_with_or_without_header() {
        let with_header = "gateway_id,token\ngw-1,abc\n gw-2 , def \n";
        let tokens = parse_tokens(with_header.as_bytes()).expect("valid");
        assert_eq!(tokens.len(), 2);
        assert_eq!(tokens["gw-2"], "def");
        let without = parse_tokens("gw-1,abc\n".as_bytes()).expect("valid");
        assert_eq!(without["gw-1"], "abc");
        assert!(parse_tokens("gw-1\n".as_bytes()).is_err());
        assert!(parse_tokens("gw-1,abc,extra\n".as_bytes()).is_err());
        assert!(parse_tokens("gw-1,\n".as_bytes()).is_err());
    }
}
