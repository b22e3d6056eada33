//! The camera registry: which cameras exist, where they are, and which gateway may publish
//! for each.
//!
//! Its exchange format is a CSV file with the header
//! `camera_id,district,lat,lon,heading_deg,road,gateway_id` (written by `camtrail city`,
//! loaded by `camtrail migrate --cameras` and by the ingest node).

use std::io::{Read, Write};
use std::path::Path;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

/// The CSV header, in order.
pub const CSV_HEADER: [&str; 7] = [
    "camera_id",
    "district",
    "lat",
    "lon",
    "heading_deg",
    "road",
    "gateway_id",
];

/// Longest camera id accepted anywhere (GB/T 28181 ids are 20 digits).
pub const MAX_CAMERA_ID_LEN: usize = 64;

/// One camera of the registry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Camera {
    /// Device id, e.g. a 20-digit GB/T 28181 id.
    pub camera_id: String,
    /// District or town the camera stands in.
    pub district: String,
    /// WGS84 latitude, degrees.
    pub lat: f64,
    /// WGS84 longitude, degrees.
    pub lon: f64,
    /// Direction the camera faces, degrees clockwise from north, in [0, 360).
    pub heading_deg: f32,
    /// Road or intersection name.
    pub road: String,
    /// Gateway allowed to publish for this camera.
    pub gateway_id: String,
}

/// Why a registry could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The file could not be opened or read.
    #[error("cannot read camera registry {path}: {source}")]
    Io {
        /// File that failed.
        path: String,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The CSV is malformed or a row does not parse.
    #[error("camera registry line {line}: {message}")]
    Row {
        /// 1-based line number in the file (header is line 1).
        line: u64,
        /// What is wrong.
        message: String,
    },
    /// The header is not the expected one.
    #[error("camera registry header must be {expected:?}, found {found:?}")]
    Header {
        /// Expected header.
        expected: String,
        /// Header found.
        found: String,
    },
}

impl Camera {
    /// Check one row's values; returns a description of the first problem.
    fn check(&self) -> Result<(), String> {
        if self.camera_id.is_empty() || self.camera_id.len() > MAX_CAMERA_ID_LEN {
            return Err(format!("camera_id must be 1–{MAX_CAMERA_ID_LEN} bytes"));
        }
        if !self.camera_id.chars().all(|c| c.is_ascii_graphic()) {
            return Err("camera_id must be printable ASCII".into());
        }
        if !(-90.0..=90.0).contains(&self.lat) || !(-180.0..=180.0).contains(&self.lon) {
            return Err(format!("lat/lon out of range: {}, {}", self.lat, self.lon));
        }
        if !(0.0..360.0).contains(&self.heading_deg) {
            return Err(format!("heading_deg out of [0, 360): {}", self.heading_deg));
        }
        if self.district.is_empty() || self.gateway_id.is_empty() {
            return Err("district and gateway_id must not be empty".into());
        }
        Ok(())
    }
}

/// All cameras, indexed by id. Cheap to share behind an `Arc`.
#[derive(Debug, Clone, Default)]
pub struct CameraRegistry {
    cameras: Vec<Camera>,
    // Looked up once per ingested event, so the common case follows no pointer: ids of up
    // to 24 bytes (the 20-digit national ids) are keys stored inline in the table, next to
    // the camera's index and its gateway's number; the lookup costs one cache miss instead
    // of four (bucket, key string, camera, gateway string: 12% of the ingest node's CPU in
    // the issue-14 profile). A fast non-cryptographic hash: ids come from the registry
    // file, not from attackers choosing collisions at run time.
    short_ids: FxHashMap<InlineId, CameraEntry>,
    long_ids: FxHashMap<String, CameraEntry>,
    gateways: FxHashMap<String, GatewayRef>,
    /// Area of the cameras' bounding box, km² (0 for fewer than two distinct positions).
    area_km2: f64,
}

/// Area in km² of the latitude/longitude box around `cameras` (an equirectangular
/// approximation at the box's mean latitude: a city is small against the Earth).
fn bounding_area_km2(cameras: &[Camera]) -> f64 {
    const KM_PER_DEGREE: f64 = 111.195;
    let mut lat = (f64::INFINITY, f64::NEG_INFINITY);
    let mut lon = (f64::INFINITY, f64::NEG_INFINITY);
    for camera in cameras {
        lat = (lat.0.min(camera.lat), lat.1.max(camera.lat));
        lon = (lon.0.min(camera.lon), lon.1.max(camera.lon));
    }
    if cameras.is_empty() {
        return 0.0;
    }
    let mean_lat = ((lat.0 + lat.1) / 2.0).to_radians();
    (lat.1 - lat.0) * KM_PER_DEGREE * (lon.1 - lon.0) * KM_PER_DEGREE * mean_lat.cos()
}

/// A gateway of the registry, as a number: comparing two costs no string comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GatewayRef(u32);

/// Where a camera is in the registry, and which gateway it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CameraEntry {
    index: u32,
    /// The gateway the camera is assigned to.
    pub gateway: GatewayRef,
}

/// Longest id stored inline.
const INLINE_ID_BYTES: usize = 24;

/// A camera id of at most [`INLINE_ID_BYTES`] bytes, zero-padded. Ids are printable ASCII,
/// so padding never makes two ids equal; a key holding a NUL byte is never inline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct InlineId([u8; INLINE_ID_BYTES]);

impl InlineId {
    fn new(id: &str) -> Option<Self> {
        let bytes = id.as_bytes();
        if bytes.len() > INLINE_ID_BYTES || bytes.contains(&0) {
            return None;
        }
        let mut inline = [0; INLINE_ID_BYTES];
        inline[..bytes.len()].copy_from_slice(bytes);
        Some(Self(inline))
    }
}

impl CameraRegistry {
    /// Build from cameras; a later duplicate id is an error.
    pub fn new(cameras: Vec<Camera>) -> Result<Self, RegistryError> {
        let mut registry = Self::default();
        registry.short_ids.reserve(cameras.len());
        for (index, camera) in cameras.iter().enumerate() {
            let line = index as u64 + 2;
            camera
                .check()
                .map_err(|message| RegistryError::Row { line, message })?;
            let next_gateway = GatewayRef(registry.gateways.len() as u32);
            let gateway = *registry
                .gateways
                .entry(camera.gateway_id.clone())
                .or_insert(next_gateway);
            let entry = CameraEntry {
                index: u32::try_from(index).map_err(|_| RegistryError::Row {
                    line,
                    message: "more than 2^32 cameras".into(),
                })?,
                gateway,
            };
            let duplicate = match InlineId::new(&camera.camera_id) {
                Some(id) => registry.short_ids.insert(id, entry).is_some(),
                None => registry
                    .long_ids
                    .insert(camera.camera_id.clone(), entry)
                    .is_some(),
            };
            if duplicate {
                return Err(RegistryError::Row {
                    line,
                    message: format!("duplicate camera_id {}", camera.camera_id),
                });
            }
        }
        registry.area_km2 = bounding_area_km2(&cameras);
        registry.cameras = cameras;
        Ok(registry)
    }

    /// Area of the box around every camera, km²: where a vehicle seen nowhere nearby could
    /// be. 0 for an empty registry or one position.
    pub fn area_km2(&self) -> f64 {
        self.area_km2
    }

    /// Read a registry CSV file.
    pub fn from_csv_path(path: &Path) -> Result<Self, RegistryError> {
        let file = std::fs::File::open(path).map_err(|source| RegistryError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_csv_reader(std::io::BufReader::new(file))
    }

    /// Read a registry CSV from any reader.
    pub fn from_csv_reader(reader: impl Read) -> Result<Self, RegistryError> {
        let mut csv = csv::ReaderBuilder::new()
            .has_headers(true)
            .from_reader(reader);
        let header = csv.headers().map_err(|e| row_error(1, e))?.clone();
        if header.iter().ne(CSV_HEADER.iter().copied()) {
            return Err(RegistryError::Header {
                expected: CSV_HEADER.join(","),
                found: header.iter().collect::<Vec<_>>().join(","),
            });
        }
        let mut cameras = Vec::new();
        for (index, row) in csv.deserialize::<Camera>().enumerate() {
            cameras.push(row.map_err(|e| row_error(index as u64 + 2, e))?);
        }
        Self::new(cameras)
    }

    /// Write the registry as CSV (header first, in registry order).
    pub fn write_csv(&self, writer: impl Write) -> Result<(), csv::Error> {
        let mut csv = csv::Writer::from_writer(writer);
        for camera in &self.cameras {
            csv.serialize(camera)?;
        }
        if self.cameras.is_empty() {
            csv.write_record(CSV_HEADER)?;
        }
        csv.flush()?;
        Ok(())
    }

    /// Look a camera up by id.
    pub fn get(&self, camera_id: &str) -> Option<&Camera> {
        self.entry(camera_id)
            .map(|entry| &self.cameras[entry.index as usize])
    }

    /// Where a camera is and which gateway owns it, without touching the camera itself.
    pub fn entry(&self, camera_id: &str) -> Option<CameraEntry> {
        match InlineId::new(camera_id) {
            Some(id) => self.short_ids.get(&id).copied(),
            None => self.long_ids.get(camera_id).copied(),
        }
    }

    /// The number of a gateway that owns at least one camera; `None` for any other.
    pub fn gateway(&self, gateway_id: &str) -> Option<GatewayRef> {
        self.gateways.get(gateway_id).copied()
    }

    /// All cameras in registry order.
    pub fn cameras(&self) -> &[Camera] {
        &self.cameras
    }

    /// Number of cameras.
    pub fn len(&self) -> usize {
        self.cameras.len()
    }

    /// Whether the registry is empty.
    pub fn is_empty(&self) -> bool {
        self.cameras.is_empty()
    }
}

fn row_error(line: u64, error: csv::Error) -> RegistryError {
    RegistryError::Row {
        line,
        message: error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "camera_id,district,lat,lon,heading_deg,road,gateway_id\n\
        44030000001310000001,Futian,22.54,114.05,90.0,Shennan Rd,gw-001\n\
        44030000001310000002,Nanshan,22.53,113.93,270.5,\"Binhai Ave, east\",gw-002\n";

    #[test]
    fn reads_and_writes_the_same_csv() {
        let registry = CameraRegistry::from_csv_reader(SAMPLE.as_bytes()).expect("parse");
        assert_eq!(registry.len(), 2);
        let camera = registry.get("44030000001310000002").expect("camera");
        assert_eq!(camera.road, "Binhai Ave, east");
        assert_eq!(camera.gateway_id, "gw-002");
        let mut out = Vec::new();
        registry.write_csv(&mut out).expect("write");
        assert_eq!(String::from_utf8(out).expect("utf8"), SAMPLE);
    }

    #[test]
    fn rejects_a_wrong_header() {
        let err = CameraRegistry::from_csv_reader("id,district\n1,a\n".as_bytes()).unwrap_err();
        assert!(matches!(err, RegistryError::Header { .. }), "{err}");
    }

    #[test]
    fn rejects_duplicates_and_bad_rows_with_line_numbers() {
        let duplicate = format!("{SAMPLE}44030000001310000001,Futian,22.5,114.0,0,X,gw-001\n");
        let err = CameraRegistry::from_csv_reader(duplicate.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("line 4"), "{err}");
        let bad_lat = "camera_id,district,lat,lon,heading_deg,road,gateway_id\n1,a,95,0,0,r,g\n";
        let err = CameraRegistry::from_csv_reader(bad_lat.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
        let not_a_number =
            "camera_id,district,lat,lon,heading_deg,road,gateway_id\n1,a,x,0,0,r,g\n";
        assert!(CameraRegistry::from_csv_reader(not_a_number.as_bytes()).is_err());
    }

    #[test]
    fn short_and_long_ids_are_found_and_prefixes_are_not() {
        let long_id = "4403".repeat(10); // 40 bytes: not stored inline
        let csv = format!(
            "{SAMPLE}{long_id},Futian,22.5,114.0,0,X,gw-001\n\
             4403000000131000000,Futian,22.5,114.0,0,X,gw-003\n"
        );
        let registry = CameraRegistry::from_csv_reader(csv.as_bytes()).expect("parse");
        assert_eq!(
            registry.get(&long_id).expect("long id").gateway_id,
            "gw-001"
        );
        assert_eq!(
            registry
                .get("4403000000131000000")
                .expect("19 digits")
                .gateway_id,
            "gw-003"
        );
        for absent in [
            "",
            "4403000000131000000\0",
            "44030000001310000001\0",
            "4403000000131000000 ",
            &long_id[..39],
            "440300000013100000010000000",
        ] {
            assert!(registry.get(absent).is_none(), "{absent:?}");
        }
        let first = registry.entry("44030000001310000001").expect("first");
        let long = registry.entry(&long_id).expect("long");
        assert_eq!(first.gateway, long.gateway);
        assert_eq!(Some(first.gateway), registry.gateway("gw-001"));
        assert_ne!(Some(first.gateway), registry.gateway("gw-002"));
        assert_eq!(registry.gateway("gw-999"), None);
    }
}
