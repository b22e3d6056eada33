//! GA/T 1400 devices and platforms: their stored credentials and whether they registered.
//!
//! The node reads `device_id,gateway_id,time_zone,ha1_sha256,ha1_md5` (header first): the
//! Digest username, the registry gateway whose cameras it may publish for (the same rule
//! as a gRPC gateway), the zone of times it sends without an offset (empty: it must send
//! offsets), and its hashed credentials ([`super::digest`]; `ha1_md5` may be empty to
//! refuse MD5 for it). `camtrail gat1400 issue` mints passwords and writes both files.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use chrono_tz::Tz;

use super::digest::{Algorithm, CredentialLookup};

/// Header of the node's device file.
pub const DEVICES_HEADER: &str = "device_id,gateway_id,time_zone,ha1_sha256,ha1_md5";
/// Header of the file handed to platforms (passwords; keep it secret).
pub const CREDENTIALS_HEADER: &str = "device_id,gateway_id,password";

/// One device or platform.
#[derive(Debug, Clone, PartialEq)]
pub struct Device {
    /// Digest username and `User-Identify`.
    pub device_id: String,
    /// The gateway it publishes as.
    pub gateway_id: String,
    /// Zone of its times without offset.
    pub time_zone: Option<Tz>,
    ha1_sha256: String,
    ha1_md5: String,
}

/// Why a device file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DevicesError {
    /// I/O error.
    #[error("cannot read GA/T 1400 devices {path}: {source}")]
    Io {
        /// File.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// Bad content.
    #[error("GA/T 1400 devices line {line}: {message}")]
    Line {
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

/// The known devices.
#[derive(Debug, Clone, Default)]
pub struct DeviceTable {
    devices: HashMap<String, Device>,
}

impl DeviceTable {
    /// Load the node's device file.
    pub fn from_path(path: &Path) -> Result<Self, DevicesError> {
        let text = std::fs::read_to_string(path).map_err(|source| DevicesError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text)
    }

    /// Parse the device file's text.
    pub fn parse(text: &str) -> Result<Self, DevicesError> {
        let mut devices = HashMap::new();
        let line_error = |line: usize, message: &str| DevicesError::Line {
            line,
            message: message.to_string(),
        };
        for (index, line) in text.lines().enumerate() {
            let number = index + 1;
            let line = line.trim();
            if index == 0 {
                if line != DEVICES_HEADER {
                    return Err(line_error(
                        number,
                        &format!("header must be {DEVICES_HEADER}"),
                    ));
                }
                continue;
            }
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = line.split(',').map(str::trim).collect();
            let [device_id, gateway_id, zone, sha256, md5] = fields[..] else {
                return Err(line_error(number, "expected 5 comma-separated fields"));
            };
            if device_id.is_empty() || gateway_id.is_empty() {
                return Err(line_error(number, "device_id and gateway_id are required"));
            }
            let is_hex = |text: &str, len: usize| {
                text.len() == len && text.bytes().all(|b| b.is_ascii_hexdigit())
            };
            if !is_hex(sha256, 64) || !(md5.is_empty() || is_hex(md5, 32)) {
                return Err(line_error(
                    number,
                    "ha1_sha256 must be 64 hex digits and ha1_md5 32 hex digits or empty",
                ));
            }
            let time_zone = if zone.is_empty() {
                None
            } else {
                Some(zone.parse::<Tz>().map_err(|_| {
                    line_error(
                        number,
                        "time_zone is not an IANA zone name (e.g. Asia/Shanghai)",
                    )
                })?)
            };
            let device = Device {
                device_id: device_id.to_string(),
                gateway_id: gateway_id.to_string(),
                time_zone,
                ha1_sha256: sha256.to_ascii_lowercase(),
                ha1_md5: md5.to_ascii_lowercase(),
            };
            if devices.insert(device_id.to_string(), device).is_some() {
                return Err(line_error(number, "device_id listed twice"));
            }
        }
        Ok(Self { devices })
    }

    /// The device of a Digest username.
    pub fn get(&self, device_id: &str) -> Option<&Device> {
        self.devices.get(device_id)
    }

    /// Number of devices.
    pub fn len(&self) -> usize {
        self.devices.len()
    }

    /// Whether no device is known.
    pub fn is_empty(&self) -> bool {
        self.devices.is_empty()
    }
}

impl CredentialLookup for DeviceTable {
    fn ha1(&self, username: &str, algorithm: Algorithm) -> Option<&str> {
        let device = self.devices.get(username)?;
        let ha1 = match algorithm {
            Algorithm::Sha256 => &device.ha1_sha256,
            Algorithm::Md5 => &device.ha1_md5,
        };
        (!ha1.is_empty()).then_some(ha1.as_str())
    }
}

/// One line of the node's device file for a device with `password`.
pub fn device_line(
    device_id: &str,
    gateway_id: &str,
    zone: &str,
    realm: &str,
    password: &str,
) -> String {
    format!(
        "{device_id},{gateway_id},{zone},{},{}",
        Algorithm::Sha256.ha1(device_id, realm, password),
        Algorithm::Md5.ha1(device_id, realm, password)
    )
}

/// Mint a password for each of `gateways` (one platform credential per gateway, the
/// device id being the gateway id) and render the two files: the one handed to platforms
/// (`device_id,gateway_id,password`) and the node's (`DEVICES_HEADER`).
pub fn issue(gateways: &[&str], realm: &str, zone: &str) -> (String, String) {
    let mut credentials = format!("{CREDENTIALS_HEADER}\n");
    let mut devices = format!("{DEVICES_HEADER}\n");
    for gateway in gateways {
        let password = camtrail_common::token::mint("");
        credentials.push_str(&format!("{gateway},{gateway},{password}\n"));
        devices.push_str(&device_line(gateway, gateway, zone, realm, &password));
        devices.push('\n');
    }
    (credentials, devices)
}

/// Which devices registered, and when they were last heard from. Per node: a device that
/// moves to another ingest node registers there.
#[derive(Debug, Default)]
pub struct Registrations {
    last_seen_ms: Mutex<HashMap<String, i64>>,
}

impl Registrations {
    /// Register (or keep alive) `device_id` at `now_ms`.
    pub fn touch(&self, device_id: &str, now_ms: i64) {
        self.lock().insert(device_id.to_string(), now_ms);
    }

    /// Forget a device (UnRegister).
    pub fn remove(&self, device_id: &str) -> bool {
        self.lock().remove(device_id).is_some()
    }

    /// Whether `device_id` registered and was heard from within `expiry_ms`; a request
    /// from it counts as hearing from it.
    pub fn check(&self, device_id: &str, now_ms: i64, expiry_ms: i64) -> bool {
        let mut seen = self.lock();
        match seen.get_mut(device_id) {
            Some(last) if now_ms.saturating_sub(*last) <= expiry_ms => {
                *last = now_ms;
                true
            }
            Some(_) => {
                seen.remove(device_id);
                false
            }
            None => false,
        }
    }

    /// Number of registered devices.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether none is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, i64>> {
        self.last_seen_ms
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_files_are_read_strictly() {
        let line = device_line("dev-1", "gw-001", "Asia/Shanghai", "camtrail", "pw");
        let table = DeviceTable::parse(&format!("{DEVICES_HEADER}\n{line}\n")).expect("valid");
        let device = table.get("dev-1").expect("known");
        assert_eq!(device.gateway_id, "gw-001");
        assert_eq!(device.time_zone, Some(chrono_tz::Asia::Shanghai));
        assert_eq!(
            table.ha1("dev-1", Algorithm::Md5),
            Some(Algorithm::Md5.ha1("dev-1", "camtrail", "pw").as_str())
        );
        for bad in [
            "device_id,gateway_id\n".to_string(),
            format!("{DEVICES_HEADER}\ndev,gw,,abc,\n"),
            format!(
                "{DEVICES_HEADER}\ndev,gw,Mars/Olympus,{},\n",
                "a".repeat(64)
            ),
            format!("{DEVICES_HEADER}\n{line}\n{line}\n"),
        ] {
            assert!(DeviceTable::parse(&bad).is_err(), "{bad}");
        }
        let no_md5 = format!("{DEVICES_HEADER}\ndev-2,gw,,{},\n", "b".repeat(64));
        let table = DeviceTable::parse(&no_md5).expect("md5 optional");
        assert_eq!(table.ha1("dev-2", Algorithm::Md5), None);
        assert_eq!(table.get("dev-2").and_then(|d| d.time_zone), None);
    }

    #[test]
    fn issued_files_authenticate_what_they_hand_out() {
        let (credentials, devices) = issue(&["gw-001", "gw-002"], "camtrail", "Asia/Shanghai");
        let table = DeviceTable::parse(&devices).expect("node file");
        assert_eq!(table.len(), 2);
        let line = credentials.lines().nth(1).expect("first credential");
        let [device, gateway, password] = line.split(',').collect::<Vec<_>>()[..] else {
            panic!("three fields");
        };
        assert_eq!((device, gateway), ("gw-001", "gw-001"));
        assert!(password.len() >= 32);
        assert_eq!(
            table.ha1("gw-001", Algorithm::Sha256),
            Some(
                Algorithm::Sha256
                    .ha1("gw-001", "camtrail", password)
                    .as_str()
            )
        );
        assert!(
            !devices.contains(password),
            "the node file holds no password"
        );
    }

    #[test]
    fn registrations_expire_without_keepalive() {
        let registrations = Registrations::default();
        assert!(!registrations.check("d", 0, 1_000));
        registrations.touch("d", 0);
        assert!(registrations.check("d", 900, 1_000));
        assert!(
            registrations.check("d", 1_800, 1_000),
            "a request keeps it alive"
        );
        assert!(!registrations.check("d", 3_000, 1_000));
        assert!(
            !registrations.check("d", 3_001, 1_000),
            "expired means registering again"
        );
        registrations.touch("d", 4_000);
        assert!(registrations.remove("d"));
        assert!(registrations.is_empty());
    }
}
