//! Track reconstruction: from the sightings storage returned for one subject to the track an
//! investigator reads. Pure functions and types — no I/O, no clock, no global state — so the
//! same code serves the embedded and the distributed mode and is tested without services.
//!
//! Layout, in the order a request uses it:
//!
//! - [`fuzzy`]: plausible misreadings of a plate key (one confusable substitution, one dropped
//!   or one extra character), each with a match confidence.
//! - [`pattern`]: investigator wildcard patterns (`粤S1?3*`) as SQL `LIKE` patterns, with
//!   limits so a pattern cannot scan everything, and the same matching in memory.
//! - [`geo`]: great-circle distance and implied speed.
//! - [`sighting`]: what storage hands in ([`RawSighting`]) and what a track holds
//!   ([`TrackSighting`], [`Dropped`]).
//! - [`params`]: the tunables ([`TrackParams`]).
//! - [`builder`]: [`TrackBuilder::build`], the pipeline: dedup → camera join → order →
//!   attribution ([`attribution`], plate searches) and fuzzy fit ([`fit`]) → burst collapse
//!   ([`burst`]) → limit → clone split ([`clones`], plate searches) → links ([`links`]),
//!   trips ([`trips`]), stops ([`stops`]) and district transitions.
//!
//! Every input sighting ends up either in [`Track::sightings`] (possibly standing for a
//! burst), in the second vehicle's sightings of a cloned plate, or in [`Track::dropped`] with
//! a [`DropReason`]; property tests hold the builder to that.

pub mod attribution;
pub mod builder;
pub mod burst;
pub mod clones;
pub mod fit;
pub mod fuzzy;
pub mod geo;
pub mod links;
pub mod params;
pub mod pattern;
pub mod sighting;
pub mod stops;
pub mod trips;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod test_support;

pub use builder::{Track, TrackBuilder};
pub use fuzzy::misread_variants;
pub use geo::{great_circle_km, implied_speed_kmh};
pub use links::{DistrictTransition, Link};
pub use params::{ParamsError, TrackParams};
pub use pattern::{LikePattern, PatternError, matches_pattern, pattern_to_like};
pub use sighting::{DropReason, Dropped, MatchKind, RawSighting, TrackSighting};
pub use stops::Stop;
pub use trips::Trip;
