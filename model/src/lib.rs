//! Domain types shared by every part of camtrail, free of wire and storage concerns.
//!
//! - [`plate`]: the one plate normaliser (ingest stores its output, query looks it up) and
//!   the table of characters plate readers confuse.
//! - [`misread`]: how plate readers misread plates, as one table of probabilities (the
//!   synthetic city draws misreads from it, track search enumerates and weighs them).
//! - [`camera`]: the camera registry and its CSV format.
//! - [`detection`]: a validated detection event.
//! - [`case`]: the case registry's cases and legal holds.
//! - [`audit`]: audit records and their per-node hash chain; [`checkpoint`]: signed
//!   checkpoints of those chains, verified against the stored log.
//! - [`error`]: the one list of error codes every transport reports.
//! - [`watchlist`]: watchlist entries (布控) and the matcher every accepted detection meets.
//! - [`text`]: which characters free text from outside may hold (no controls, no
//!   bidirectional overrides or other invisible formatting).

pub mod audit;
pub mod camera;
pub mod case;
pub mod checkpoint;
pub mod detection;
pub mod error;
pub mod misread;
pub mod plate;
pub mod text;
pub mod watchlist;

pub use camera::{Camera, CameraEntry, CameraRegistry, GatewayRef, RegistryError};
pub use detection::{Detection, EventId, ObjectClass, VehicleAttributes};
pub use error::{Error, ErrorCode};
