//! The tunables of track reconstruction.

use serde::{Deserialize, Serialize};

/// Parameters of [`crate::track::TrackBuilder`]. Serde-ready so the query node's config can
/// embed them; every field has a default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrackParams {
    /// Consecutive sightings at one camera whose gaps are all at most this long collapse into
    /// one burst (a vehicle waiting at a light is read many times). Default 60 s.
    pub burst_window_ms: i64,
    /// A gap longer than this between consecutive sightings starts a new trip. Default 30 min.
    pub trip_gap_ms: i64,
    /// A gap between sightings (or a burst at one camera) at least this long is reported as
    /// a stop, with the camera before and after. Default 30 min (a stop per trip boundary);
    /// a request may ask for shorter or longer.
    pub stop_min_ms: i64,
    /// A hop faster than this (great-circle distance over elapsed time) is flagged impossible:
    /// probably a misread or a cloned plate. Default 200 km/h.
    pub max_speed_kmh: f64,
    /// The fastest ordinary urban travel, as the crow flies (a road detour only lowers it).
    /// A fuzzy (misread) candidate is kept only if its nearest exact neighbours are reachable
    /// at this speed, attribution ([`crate::track::attribution`]) measures where a vehicle
    /// could have been with it, and links faster than this lose confidence. Default 80 km/h:
    /// city traffic moves at 20–60 km/h, arterials allow 70.
    pub fuzzy_max_speed_kmh: f64,
    /// The share of reads that are misreads, assumed when weighing "read correctly" against
    /// "another vehicle, misread" ([`crate::track::attribution`]). Default 0.03.
    pub misread_rate: f64,
    /// A look-alike vehicle competes for a sighting only when it was itself seen within this
    /// of it, somewhere it could have driven from or to: a vehicle on the move in a dense
    /// camera network is read every minute or two, so a longer silence says it was not
    /// driving there. Default 3 min. At most `fuzzy_max_gap_ms`.
    pub look_alike_max_gap_ms: i64,
    /// A look-alike key counts as a separate vehicle near a sighting when it was read at least
    /// this often within `fuzzy_max_gap_ms` of it (or once where the asked vehicle could not
    /// have been). Default 3: the asked vehicle misread the same way twice is not another
    /// vehicle, while a vehicle on the move is read every minute or two.
    pub look_alike_min_reads: usize,
    /// The fewest sightings each of two vehicles must have before one plate's track is split
    /// into two (a cloned plate). Default 3.
    pub clone_min_sightings: usize,
    /// A fuzzy candidate must lie within this of its nearest exact sighting: a misread inside
    /// a stretch of the asked vehicle's track, not a lone sighting long before or after it,
    /// where reachability says little. Default 10 min (consecutive sightings of a moving
    /// vehicle are a minute or two apart).
    pub fuzzy_max_gap_ms: i64,
    /// Before the first or after the last anchor there is only one side to judge from, so a
    /// candidate there must be closer in time: within this of the anchor. Default 2 min (a
    /// misread first or last sighting is one camera away from the track; a look-alike plate
    /// whose trip merely ends near where the asked one starts is not). Must not exceed
    /// `fuzzy_max_gap_ms`.
    pub fuzzy_max_edge_gap_ms: i64,
    /// Camera clocks may be off by this much; added to the elapsed time when checking a fuzzy
    /// candidate's fit. Default 15 s (the synthetic city skews clocks by up to 2 s; NTP-synced
    /// cameras stay well inside, real gateways may drift more).
    pub clock_slack_ms: i64,
    /// Most sightings a track keeps (after burst collapse); later ones are dropped with
    /// [`crate::track::DropReason::BeyondLimit`] and the track is marked truncated.
    /// Default 10,000.
    pub max_sightings: usize,
}

impl Default for TrackParams {
    fn default() -> Self {
        Self {
            burst_window_ms: 60_000,
            trip_gap_ms: 30 * 60_000,
            stop_min_ms: 30 * 60_000,
            max_speed_kmh: 200.0,
            fuzzy_max_speed_kmh: 80.0,
            misread_rate: 0.03,
            look_alike_max_gap_ms: 3 * 60_000,
            look_alike_min_reads: 3,
            clone_min_sightings: 3,
            fuzzy_max_gap_ms: 10 * 60_000,
            fuzzy_max_edge_gap_ms: 2 * 60_000,
            clock_slack_ms: 15_000,
            max_sightings: 10_000,
        }
    }
}

/// Why a [`TrackParams`] was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid track parameter {field}: {message}")]
pub struct ParamsError {
    /// The offending field.
    pub field: &'static str,
    /// What is wrong with it.
    pub message: String,
}

impl TrackParams {
    /// Check the parameters: non-negative windows, positive gaps, finite positive
    /// speeds with the fuzzy bound not above the impossible one, and room for one sighting.
    pub fn validate(&self) -> Result<(), ParamsError> {
        let fail = |field, message: &str| {
            Err(ParamsError {
                field,
                message: message.to_string(),
            })
        };
        if self.burst_window_ms < 0 {
            return fail("burst_window_ms", "must not be negative");
        }
        if self.trip_gap_ms <= 0 {
            return fail("trip_gap_ms", "must be positive");
        }
        if self.stop_min_ms <= 0 {
            return fail("stop_min_ms", "must be positive");
        }
        if self.fuzzy_max_gap_ms <= 0 {
            return fail("fuzzy_max_gap_ms", "must be positive");
        }
        if self.fuzzy_max_edge_gap_ms <= 0 || self.fuzzy_max_edge_gap_ms > self.fuzzy_max_gap_ms {
            return fail(
                "fuzzy_max_edge_gap_ms",
                "must be positive and at most fuzzy_max_gap_ms",
            );
        }
        if self.clock_slack_ms < 0 {
            return fail("clock_slack_ms", "must not be negative");
        }
        if !(self.max_speed_kmh.is_finite() && self.max_speed_kmh > 0.0) {
            return fail("max_speed_kmh", "must be a positive number");
        }
        if !(self.fuzzy_max_speed_kmh.is_finite() && self.fuzzy_max_speed_kmh > 0.0) {
            return fail("fuzzy_max_speed_kmh", "must be a positive number");
        }
        if self.fuzzy_max_speed_kmh > self.max_speed_kmh {
            return fail("fuzzy_max_speed_kmh", "must not exceed max_speed_kmh");
        }
        if !(self.misread_rate > 0.0 && self.misread_rate < 0.5) {
            return fail("misread_rate", "must be between 0 and 0.5");
        }
        if self.look_alike_max_gap_ms <= 0 || self.look_alike_max_gap_ms > self.fuzzy_max_gap_ms {
            return fail(
                "look_alike_max_gap_ms",
                "must be positive and at most fuzzy_max_gap_ms",
            );
        }
        if self.look_alike_min_reads < 2 {
            return fail("look_alike_min_reads", "must be at least 2");
        }
        if self.clone_min_sightings < 2 {
            return fail("clone_min_sightings", "must be at least 2");
        }
        if self.max_sightings == 0 {
            return fail("max_sightings", "must be at least 1");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(TrackParams::default().validate(), Ok(()));
    }

    /// Makes one field of valid parameters invalid.
    type Breaker = fn(&mut TrackParams);

    #[test]
    fn rejects_nonsense() {
        let cases: [(&str, Breaker); 13] = [
            ("look_alike_min_reads", |p| p.look_alike_min_reads = 1),
            ("look_alike_max_gap_ms", |p| p.look_alike_max_gap_ms = 0),
            ("misread_rate", |p| p.misread_rate = 0.0),
            ("clone_min_sightings", |p| p.clone_min_sightings = 1),
            ("burst_window_ms", |p| p.burst_window_ms = -1),
            ("trip_gap_ms", |p| p.trip_gap_ms = 0),
            ("stop_min_ms", |p| p.stop_min_ms = 0),
            ("max_speed_kmh", |p| p.max_speed_kmh = f64::NAN),
            ("fuzzy_max_speed_kmh", |p| p.fuzzy_max_speed_kmh = 300.0),
            ("fuzzy_max_gap_ms", |p| p.fuzzy_max_gap_ms = 0),
            ("fuzzy_max_edge_gap_ms", |p| p.fuzzy_max_edge_gap_ms = 0),
            ("clock_slack_ms", |p| p.clock_slack_ms = -5),
            ("max_sightings", |p| p.max_sightings = 0),
        ];
        for (field, break_it) in cases {
            let mut params = TrackParams::default();
            break_it(&mut params);
            let err = params.validate().expect_err(field);
            assert_eq!(err.field, field);
            assert!(
                err.to_string().starts_with("invalid track parameter"),
                "{err}"
            );
        }
    }
}
