//! Which fuzzy (misread) candidates fit the track.
//!
//! A sighting found under a misreading of the plate may be the asked vehicle read wrongly —
//! or another vehicle whose plate is one character away. In a dense plate population the
//! second is common, so a candidate is kept only where the asked vehicle could have been:
//!
//! - **in time**: within `fuzzy_max_gap_ms` (default 10 min) of its nearest anchor (an exact
//!   or pattern sighting) before or after it — a misread inside a stretch of the asked
//!   vehicle's track, not a lone sighting long before or after it, where reachability at
//!   120 km/h would admit half the city;
//! - **in space**: between two anchors, the detour through the candidate — distance from
//!   the anchor before it plus distance to the anchor after it — is drivable at
//!   `fuzzy_max_speed_kmh` (80 km/h) in the time between the anchors plus `clock_slack_ms` (camera
//!   clocks disagree by seconds): the candidate lies inside the ellipse the vehicle could
//!   have covered, not merely within reach of each anchor separately, which in a dense
//!   plate population admits look-alike plates driving a few km away. Before the first or
//!   after the last anchor there is one side to judge from: the candidate must be within
//!   `fuzzy_max_edge_gap_ms` (default 2 min) of that anchor and reachable from it in the
//!   elapsed time plus slack (a look-alike whose trip ends near where the asked one starts
//!   is otherwise indistinguishable from a misread first sighting).
//!
//! Anchors are never filtered, so every candidate is judged against the same anchors and the
//! result does not depend on which other candidates exist. When there is no anchor at all
//! (only misreads were found) nothing can be judged and every candidate is kept.

use super::geo::{great_circle_km, reach_km};
use super::params::TrackParams;
use super::sighting::{DropReason, Dropped, TrackSighting};

/// Split time-ordered `sightings` into those that fit (still time-ordered) and the fuzzy
/// candidates that do not.
pub fn keep_fitting(
    sightings: Vec<TrackSighting>,
    params: &TrackParams,
) -> (Vec<TrackSighting>, Vec<Dropped>) {
    let keep = fitting_mask(&sightings, params);
    let dropped = sightings
        .iter()
        .zip(&keep)
        .filter(|(_, fitting)| !**fitting)
        .map(|(sighting, _)| Dropped::from_sighting(sighting, DropReason::FuzzyDoesNotFit))
        .collect();
    let out = sightings
        .into_iter()
        .zip(keep)
        .filter_map(|(sighting, fitting)| fitting.then_some(sighting))
        .collect();
    (out, dropped)
}

/// For each of the time-ordered `sightings`, whether it fits: anchors always, misread
/// candidates by the rules of the module documentation.
pub fn fitting_mask(sightings: &[TrackSighting], params: &TrackParams) -> Vec<bool> {
    if !sightings.iter().any(|s| s.match_kind.is_anchor()) {
        return vec![true; sightings.len()];
    }
    let previous = nearest_anchors(sightings.iter().enumerate());
    let mut next = nearest_anchors(sightings.iter().enumerate().rev());
    next.reverse();
    sightings
        .iter()
        .enumerate()
        .map(|(index, sighting)| {
            let before = previous[index].map(|i| &sightings[i]);
            let after = next[index].map(|i| &sightings[i]);
            sighting.match_kind.is_anchor() || fits(sighting, before, after, params)
        })
        .collect()
}

/// For each position in iteration order, the index of the nearest anchor strictly before it
/// in that order.
fn nearest_anchors<'a>(
    sightings: impl Iterator<Item = (usize, &'a TrackSighting)>,
) -> Vec<Option<usize>> {
    let mut nearest = Vec::new();
    let mut last_anchor = None;
    for (index, sighting) in sightings {
        nearest.push(last_anchor);
        if sighting.match_kind.is_anchor() {
            last_anchor = Some(index);
        }
    }
    nearest
}

/// Whether a fuzzy `candidate` fits between its nearest anchors (at least one exists).
fn fits(
    candidate: &TrackSighting,
    before: Option<&TrackSighting>,
    after: Option<&TrackSighting>,
    params: &TrackParams,
) -> bool {
    let close_in_time = [before, after]
        .into_iter()
        .flatten()
        .any(|anchor| elapsed_ms(anchor, candidate) <= params.fuzzy_max_gap_ms);
    if !close_in_time {
        return false;
    }
    match (before, after) {
        (Some(before), Some(after)) => {
            let detour_km = great_circle_km(before.lat, before.lon, candidate.lat, candidate.lon)
                + great_circle_km(candidate.lat, candidate.lon, after.lat, after.lon);
            let allowed_ms = elapsed_ms(before, after).saturating_add(params.clock_slack_ms);
            detour_km <= reach_km(params.fuzzy_max_speed_kmh, allowed_ms)
                && reachable(before, candidate, params)
                && reachable(candidate, after, params)
        }
        (Some(anchor), None) => {
            elapsed_ms(anchor, candidate) <= params.fuzzy_max_edge_gap_ms
                && reachable(anchor, candidate, params)
        }
        (None, Some(anchor)) => {
            elapsed_ms(candidate, anchor) <= params.fuzzy_max_edge_gap_ms
                && reachable(candidate, anchor, params)
        }
        (None, None) => true,
    }
}

/// Whether `to` can be reached from `from` at the plausible speed, allowing for clock slack.
fn reachable(from: &TrackSighting, to: &TrackSighting, params: &TrackParams) -> bool {
    let distance = great_circle_km(from.lat, from.lon, to.lat, to.lon);
    let allowed_ms = elapsed_ms(from, to).saturating_add(params.clock_slack_ms);
    distance <= reach_km(params.fuzzy_max_speed_kmh, allowed_ms)
}

/// Time between two sightings, ms, whichever comes first.
fn elapsed_ms(a: &TrackSighting, b: &TrackSighting) -> i64 {
    b.captured_at_ms
        .abs_diff(a.captured_at_ms)
        .try_into()
        .unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::track::sighting::MatchKind;
    use crate::track::test_support::{BASE_MS, at, event, sighting};

    fn kinds(sightings: &[TrackSighting]) -> Vec<(i64, MatchKind)> {
        sightings
            .iter()
            .map(|s| ((s.captured_at_ms - BASE_MS) / 1_000, s.match_kind))
            .collect()
    }

    /// A point about `km` east of a fixed origin (a degree of longitude is 102.7 km at 22.5°N).
    fn east(km: f64) -> (f64, f64) {
        (22.5, 114.0 + km / 102.8)
    }

    #[test]
    fn keeps_a_candidate_between_reachable_anchors() {
        let params = TrackParams::default();
        let input = vec![
            sighting(1, at(0), east(0.0), MatchKind::Exact),
            sighting(2, at(60), east(1.0), MatchKind::Fuzzy),
            sighting(3, at(120), east(2.0), MatchKind::Exact),
        ];
        let (kept, dropped) = keep_fitting(input, &params);
        assert_eq!(kept.len(), 3);
        assert!(dropped.is_empty());
    }

    #[test]
    fn drops_a_candidate_each_anchor_could_reach_but_not_on_the_way() {
        let params = TrackParams::default();
        // Anchors 1 km apart, 2 min apart; the candidate is 3 km off to the side: reachable
        // from each anchor alone (3 min at 80 km/h with slack is over 4 km), but the detour
        // through it (6+ km) does not fit in the 3 minutes between them (with slack).
        let input = vec![
            sighting(1, at(0), east(0.0), MatchKind::Exact),
            sighting(
                2,
                at(60),
                (22.5 + 3.0 / 111.0, 114.0 + 0.5 / 102.8),
                MatchKind::Fuzzy,
            ),
            sighting(3, at(120), east(1.0), MatchKind::Exact),
        ];
        let (kept, dropped) = keep_fitting(input, &params);
        assert_eq!(kinds(&kept).len(), 2);
        assert_eq!(dropped.len(), 1);
    }

    #[test]
    fn drops_a_candidate_too_far_from_the_track() {
        let params = TrackParams::default();
        // 30 km away one minute after the vehicle was seen: 30 km in 2 min (with slack) is
        // 900 km/h.
        let input = vec![
            sighting(1, at(0), east(0.0), MatchKind::Exact),
            sighting(2, at(60), east(30.0), MatchKind::Fuzzy),
            sighting(3, at(120), east(1.0), MatchKind::Exact),
        ];
        let (kept, dropped) = keep_fitting(input, &params);
        assert_eq!(
            kinds(&kept),
            [(0, MatchKind::Exact), (120, MatchKind::Exact)]
        );
        assert_eq!(dropped.len(), 1);
        assert_eq!(dropped[0].reason, DropReason::FuzzyDoesNotFit);
        assert_eq!(dropped[0].event_id, event(2));
    }

    #[test]
    fn must_reach_the_following_anchor_too() {
        let params = TrackParams::default();
        // Reachable from the first exact sighting (long ago), not on to the next one.
        let input = vec![
            sighting(1, at(0), east(0.0), MatchKind::Exact),
            sighting(2, at(1_200), east(20.0), MatchKind::Fuzzy),
            sighting(3, at(1_230), east(0.0), MatchKind::Exact),
        ];
        let (kept, _) = keep_fitting(input, &params);
        assert_eq!(kept.len(), 2);
    }

    #[test]
    fn clock_slack_allows_small_disagreements() {
        let params = TrackParams::default();
        // 300 m "at the same instant": impossible without slack, fine with 15 s of it.
        let input = vec![
            sighting(1, at(0), east(0.0), MatchKind::Exact),
            sighting(2, at(0), east(0.3), MatchKind::Fuzzy),
        ];
        assert_eq!(keep_fitting(input.clone(), &params).0.len(), 2);
        let strict = TrackParams {
            clock_slack_ms: 0,
            ..TrackParams::default()
        };
        assert_eq!(keep_fitting(input, &strict).0.len(), 1);
    }

    #[test]
    fn drops_a_candidate_far_in_time_from_every_anchor() {
        let params = TrackParams::default();
        let input = vec![
            sighting(1, at(0), east(0.0), MatchKind::Exact),
            sighting(2, at(11 * 60), east(1.0), MatchKind::Fuzzy),
        ];
        let (kept, dropped) = keep_fitting(input, &params);
        assert_eq!(kept.len(), 1);
        assert_eq!(dropped.len(), 1);
    }

    #[test]
    fn without_anchors_every_candidate_stays() {
        let params = TrackParams::default();
        let input = vec![
            sighting(1, at(0), east(0.0), MatchKind::Fuzzy),
            sighting(2, at(1), east(500.0), MatchKind::Fuzzy),
        ];
        assert_eq!(keep_fitting(input, &params).0.len(), 2);
    }

    #[test]
    fn pattern_matches_are_anchors() {
        let params = TrackParams::default();
        let input = vec![
            sighting(1, at(0), east(0.0), MatchKind::Pattern),
            sighting(2, at(10), east(300.0), MatchKind::Pattern),
            sighting(3, at(20), east(600.0), MatchKind::Fuzzy),
        ];
        let (kept, dropped) = keep_fitting(input, &params);
        assert_eq!(kept.len(), 2, "patterns kept whatever their speed");
        assert_eq!(dropped.len(), 1);
    }
}
