//! GA/T 1400 view-library ingest over HTTP: what checkpoint cameras and platforms push, on
//! a port of its own (default 8082).
//!
//! - `POST /VIID/System/Register`, `/Keepalive`, `/UnRegister` and `GET /VIID/System/Time`;
//! - `POST /VIID/MotorVehicles`: records mapped by [`camtrail_proto::gat1400`] onto
//!   `DetectionEvent`s, then **the same path as a gRPC `PublishBatch`** (gateway permits,
//!   validation, publish, and an answer only once the accepted ones are durable), answered
//!   with one `ResponseStatusObject` per record;
//! - `POST /VIID/Tollgates` and `/VIID/Lanes`: checkpoint locations, merged into the camera
//!   registry and written through [`registry::RegistryUpdater`] (file, then any backend
//!   copy, then the validator), one update at a time.
//!
//! Every request but `Time` is authenticated with HTTP Digest ([`digest`]) against the
//! device file ([`devices`]); records and checkpoints also need the device registered
//! (and heard from within `registration_expiry_s`). A device publishes as the registry
//! gateway its credential names, so the ownership rule of gRPC gateways applies unchanged.

pub mod devices;
pub mod digest;
#[cfg(test)]
mod fuzz;
mod http;
pub mod registry;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use http::{Gat1400Server, Gat1400State};

/// The `[ingest.gat1400]` configuration section.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Gat1400Config {
    /// Serve the GA/T 1400 endpoints (off by default: it needs a device file).
    pub enabled: bool,
    /// Listen address (TLS as the node's `tls` section says).
    pub addr: SocketAddr,
    /// The node's device file (`device_id,gateway_id,time_zone,ha1_sha256,ha1_md5`).
    pub devices_path: PathBuf,
    /// Digest realm; the stored HA1 values depend on it.
    pub realm: String,
    /// How long a nonce is valid; an older one is answered `stale=true`.
    pub nonce_lifetime_s: u64,
    /// A registered device not heard from for this long must register again.
    pub registration_expiry_s: u64,
    /// Largest request body; larger ones are answered 413 before being read whole.
    pub max_body_bytes: usize,
    /// `VIIDServerID` answered by `/VIID/System/Time`.
    pub server_id: String,
    /// Zone of the `LocalTime` in answers.
    pub time_zone: String,
    /// District names of `PlaceCode`s for `/VIID/Tollgates` (a code not listed is used as
    /// the district name itself).
    pub districts: BTreeMap<String, String>,
}

impl Default for Gat1400Config {
    fn default() -> Self {
        Self {
            enabled: false,
            addr: SocketAddr::from(([0, 0, 0, 0], 8082)),
            devices_path: PathBuf::from("gat1400_devices.csv"),
            realm: "camtrail".into(),
            nonce_lifetime_s: 300,
            registration_expiry_s: 180,
            max_body_bytes: 16 * 1024 * 1024,
            server_id: "camtrail".into(),
            time_zone: "Asia/Shanghai".into(),
            districts: BTreeMap::new(),
        }
    }
}

impl Gat1400Config {
    /// The answer zone, checked.
    pub fn zone(&self) -> anyhow::Result<chrono_tz::Tz> {
        self.time_zone.parse().map_err(|_| {
            anyhow::anyhow!(
                "[ingest.gat1400] time_zone {:?} is not an IANA zone name",
                self.time_zone
            )
        })
    }
}
