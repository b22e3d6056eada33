//! The camtrail wire protocol, package `camtrail.v1`.
//!
//! - [`v1`]: prost messages and tonic clients/servers generated from `camtrail/v1/*.proto`.
//! - [`record`]: the versioned Kafka record (`StoredDetection`) — the one place that encodes
//!   and decodes it.
//! - [`convert`]: conversions between wire types and `camtrail-model` domain types, so no
//!   prost type leaks into track or storage logic.
//! - [`wire`] / [`lenient_ingest_server`]: the ingest server's lenient batch decoding.
//! - [`gat1400`]: GA/T 1400 view-library JSON objects and their mapping onto
//!   `DetectionEvent` (the cameras' own protocol).
//! - [`FILE_DESCRIPTOR_SET`]: descriptors for gRPC server reflection.

pub mod convert;
pub mod gat1400;
pub mod record;
pub mod wire;

/// Generated code for package `camtrail.v1`.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod v1 {
    tonic::include_proto!("camtrail.v1");
}

/// Server for `camtrail.v1.Ingest` that decodes requests leniently ([`wire`]); routes are
/// identical to [`v1::ingest_server`].
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod lenient_ingest_server {
    include!(concat!(env!("OUT_DIR"), "/camtrail.v1.Ingest.rs"));
}

/// Encoded `FileDescriptorSet` of every camtrail.v1 file, for `tonic-reflection`.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    tonic::include_file_descriptor_set!("camtrail_v1_descriptor");
