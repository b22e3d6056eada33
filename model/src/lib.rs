//! Domain types shared by every part of camtrail, free of wire and storage concerns.
//!
//! - [`plate`]: the one plate normaliser (ingest stores its output, query looks it up) and
//!   the table of characters plate readers confuse.
//! - [`camera`]: the camera registry and its CSV format.
//! - [`detection`]: a validated detection event.
//! - [`audit`]: audit records and their per-node hash chain.
//! - [`error`]: the one list of error codes every transport reports.

pub mod audit;
pub mod camera;
pub mod detection;
pub mod error;
pub mod plate;

pub use camera::{Camera, CameraRegistry, RegistryError};
pub use detection::{Detection, EventId, ObjectClass, VehicleAttributes};
pub use error::{Error, ErrorCode};
