//! The query side of camtrail: what an investigator asks and how the answer is put together.
//!
//! - [`track`]: track reconstruction as pure functions with no I/O — plate misread variants
//!   and wildcard patterns ([`track::misread_variants`], [`track::pattern_to_like`]), great-circle
//!   geometry, and [`track::TrackBuilder`], which turns the sightings storage returned into
//!   an ordered track with bursts, trips, district transitions and flagged hops.
//!
//! Storage reads, the gRPC/HTTP service, audit and map rendering build on this module and
//! live beside it.

pub mod track;
