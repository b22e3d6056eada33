//! What a load run does: target, pacing, limits, batching, timeouts, credentials.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::time::Duration;

use crate::LoadgenError;

/// Largest batch the ingest node accepts by default (`EventBatch` doc in ingest.proto).
pub const MAX_BATCH_SIZE: usize = 5_000;

/// What the gateway streams speak.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Protocol {
    /// One gRPC `Publish` stream per gateway (`camtrail.v1.Ingest`).
    #[default]
    Grpc,
    /// One GA/T 1400 platform per gateway: Digest-authenticated JSON over HTTP
    /// (`POST /VIID/MotorVehicles`); only vehicles are sent.
    Gat1400,
}

impl Protocol {
    /// `grpc` or `gat1400`, as the CLI and the report name it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Grpc => "grpc",
            Self::Gat1400 => "gat1400",
        }
    }
}

/// A GA/T 1400 platform's credential: its device id (the Digest username and
/// `User-Identify`) and password.
#[derive(Clone, PartialEq, Eq)]
pub struct PlatformCredential {
    /// Device id of the platform (the registry's gateway id when minted by `camtrail gat1400
    /// issue`).
    pub device_id: String,
    /// Digest password.
    pub password: String,
}

impl std::fmt::Debug for PlatformCredential {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("PlatformCredential")
            .field("device_id", &self.device_id)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Settings of the GA/T 1400 mode ([`Protocol::Gat1400`]).
#[derive(Debug, Clone)]
pub struct Gat1400Settings {
    /// Base URL of the node's GA/T 1400 endpoints, e.g. `http://127.0.0.1:8083` (plain
    /// HTTP/1.1).
    pub url: String,
    /// Credential per gateway id; every gateway used needs one.
    pub credentials: HashMap<String, PlatformCredential>,
    /// Zone the `PassTime`s are written in (the node must be configured with the same one
    /// for the device).
    pub time_zone: chrono_tz::Tz,
    /// How often a platform sends `/VIID/System/Keepalive`.
    pub keepalive: Duration,
}

impl Default for Gat1400Settings {
    fn default() -> Self {
        Self {
            url: "http://127.0.0.1:8083".to_string(),
            credentials: HashMap::new(),
            time_zone: chrono_tz::Asia::Shanghai,
            keepalive: Duration::from_secs(60),
        }
    }
}

/// Parse an IANA zone name (`Asia/Shanghai`) for [`Gat1400Settings::time_zone`].
pub fn parse_time_zone(name: &str) -> Result<chrono_tz::Tz, LoadgenError> {
    name.trim()
        .parse()
        .map_err(|_| LoadgenError::InvalidConfig(format!("{name:?} is not an IANA time zone")))
}

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
    /// What the gateways speak.
    pub protocol: Protocol,
    /// Ingest endpoint of the gRPC mode, e.g. `http://127.0.0.1:50051`, or several,
    /// comma-separated: gateway `i` starts on endpoint `i mod n` and moves to the next when
    /// its stream fails.
    pub target: String,
    /// The GA/T 1400 mode's endpoint, credentials and zone.
    pub gat1400: Gat1400Settings,
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
            protocol: Protocol::Grpc,
            target: "http://127.0.0.1:50051".to_string(),
            gat1400: Gat1400Settings::default(),
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
    /// The gRPC endpoints of [`Self::target`], in order (empty parts skipped).
    pub fn targets(&self) -> Vec<&str> {
        let targets: Vec<&str> = self
            .target
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .collect();
        if targets.is_empty() {
            vec![self.target.as_str()]
        } else {
            targets
        }
    }

    /// Check the values that come from outside; [`crate::run`] calls it first.
    pub fn validate(&self) -> Result<(), LoadgenError> {
        let invalid = |message: String| Err(LoadgenError::InvalidConfig(message));
        for target in self.targets() {
            if target.parse::<tonic::transport::Uri>().is_err() {
                return invalid(format!("target is not a URI: {target:?}"));
            }
        }
        if self.protocol == Protocol::Gat1400 {
            match self.gat1400.url.parse::<hyper::Uri>() {
                Ok(uri) if uri.scheme_str() == Some("http") && uri.authority().is_some() => {}
                Ok(uri) if uri.scheme_str() == Some("https") => {
                    return invalid(format!(
                        "GA/T 1400 URL {uri}: https is not supported yet, use http"
                    ));
                }
                _ => {
                    return invalid(format!(
                        "GA/T 1400 URL is not an http://HOST:PORT URL: {:?}",
                        self.gat1400.url
                    ));
                }
            }
            if self.gat1400.keepalive.is_zero() {
                return invalid("GA/T 1400 keepalive interval must be positive".to_string());
            }
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

/// Header of the platform credential file, exactly.
pub const CREDENTIALS_HEADER: &str = "device_id,gateway_id,password";

/// Read GA/T 1400 platform credentials from CSV `device_id,gateway_id,password` (header
/// line exactly that, as `camtrail gat1400 issue` writes it), keyed by gateway id.
pub fn read_gat1400_credentials(
    path: &Path,
) -> Result<HashMap<String, PlatformCredential>, LoadgenError> {
    let error = |message: String| LoadgenError::Tokens {
        path: path.display().to_string(),
        message,
    };
    let file = std::fs::File::open(path).map_err(|source| error(source.to_string()))?;
    parse_gat1400_credentials(file).map_err(error)
}

/// Parse `device_id,gateway_id,password` lines after the header; errors name the line and
/// never quote a password.
pub fn parse_gat1400_credentials(
    reader: impl Read,
) -> Result<HashMap<String, PlatformCredential>, String> {
    let mut csv_reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .trim(csv::Trim::All)
        .from_reader(reader);
    let mut credentials = HashMap::new();
    for (line, record) in csv_reader.records().enumerate() {
        let record = record.map_err(|error| format!("line {}: {error}", line + 1))?;
        if line == 0 {
            let header: Vec<&str> = record.iter().collect();
            if header.join(",") != CREDENTIALS_HEADER {
                return Err(format!("line 1: expected the header {CREDENTIALS_HEADER}"));
            }
            continue;
        }
        let (Some(device_id), Some(gateway_id), Some(password), None) =
            (record.get(0), record.get(1), record.get(2), record.get(3))
        else {
            return Err(format!(
                "line {}: expected device_id,gateway_id,password",
                line + 1
            ));
        };
        if device_id.is_empty() || gateway_id.is_empty() || password.is_empty() {
            return Err(format!("line {}: empty field", line + 1));
        }
        let credential = PlatformCredential {
            device_id: device_id.to_string(),
            password: password.to_string(),
        };
        if credentials
            .insert(gateway_id.to_string(), credential)
            .is_some()
        {
            return Err(format!(
                "line {}: gateway {gateway_id} listed twice",
                line + 1
            ));
        }
    }
    if credentials.is_empty() {
        return Err("no credentials".to_string());
    }
    Ok(credentials)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_targets_are_split_on_commas() {
        let config = LoadgenConfig {
            target: " http://10.0.0.1:50051, http://10.0.0.2:50051,".into(),
            ..LoadgenConfig::default()
        };
        assert_eq!(
            config.targets(),
            ["http://10.0.0.1:50051", "http://10.0.0.2:50051"]
        );
        assert!(config.validate().is_ok());
        assert_eq!(
            LoadgenConfig::default().targets(),
            ["http://127.0.0.1:50051"]
        );
    }

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
                target: "http://127.0.0.1:50051,not a uri".into(),
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
    fn gat1400_credentials_need_the_header_and_three_fields() {
        let text = "device_id,gateway_id,password\n 44030100001180000001 ,gw-1, s3cret \n";
        let credentials = parse_gat1400_credentials(text.as_bytes()).expect("valid");
        assert_eq!(credentials["gw-1"].device_id, "44030100001180000001");
        assert_eq!(credentials["gw-1"].password, "s3cret");
        assert!(!format!("{:?}", credentials["gw-1"]).contains("s3cret"));
        for bad in [
            "gw-1,s3cret\n",
            "device_id,gateway_id,password\nd,gw-1\n",
            "device_id,gateway_id,password\nd,gw-1,p,extra\n",
            "device_id,gateway_id,password\nd,gw-1,\n",
            "device_id,gateway_id,password\nd,gw-1,p\ne,gw-1,q\n",
            "device_id,gateway_id,password\n",
        ] {
            assert!(parse_gat1400_credentials(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn gat1400_urls_are_checked() {
        let with_url = |url: &str| LoadgenConfig {
            protocol: Protocol::Gat1400,
            gat1400: Gat1400Settings {
                url: url.into(),
                ..Gat1400Settings::default()
            },
            ..LoadgenConfig::default()
        };
        assert!(with_url("http://127.0.0.1:8083").validate().is_ok());
        assert!(with_url("https://127.0.0.1:8083").validate().is_err());
        assert!(with_url("127.0.0.1:8083").validate().is_err());
        assert!(parse_time_zone("Asia/Shanghai").is_ok());
        assert!(parse_time_zone("Mars/Olympus").is_err());
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
