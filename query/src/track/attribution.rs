//! Attribution: a sighting belongs to the vehicle that explains it best.
//!
//! A search for plate K with misread tolerance reads K's sightings and those of every
//! look-alike key L (a misreading of K — [`crate::track::misread_variants`]) stored in the
//! window. A look-alike key is often a real vehicle, and the relation runs both ways: that
//! vehicle is sometimes read as K. So every sighting read as K or as a look-alike has more
//! than one possible author, and this module chooses one.
//!
//! ## The rule
//!
//! For a sighting *s* read as *r* and a vehicle *V* (K or a look-alike),
//!
//! `score(s, V) = P(read r | V) × L(s | V)`
//!
//! - `P(read r | V)` is `1 − m` when *r* is V's own plate, else `m × P_table(V → r)`: the
//!   assumed misread rate `m` ([`TrackParams::misread_rate`], 3%) times the probability the
//!   misread table ([`camtrail_model::misread::MISREAD_MODEL`]) gives to that misreading.
//! - `L(s | V)`, how well V's own track explains where and when *s* was seen, is one over the
//!   area (km²) V could have been in at that instant, judged from V's *other* sightings: the
//!   nearest one before and after *s* that lie within [`TrackParams::fuzzy_max_gap_ms`]
//!   (10 min) and from/to which *s* is reachable at [`TrackParams::fuzzy_max_speed_kmh`]
//!   (80 km/h as the crow flies, plus [`TrackParams::clock_slack_ms`]). Between two of them
//!   the area is the ellipse of points a vehicle could detour through; on one side only, the
//!   disc it could reach; the area is at least [`MIN_AREA_KM2`] and at most the city's (the
//!   cameras' bounding box). A vehicle with no such sighting is *not corroborated* there.
//!
//! Then:
//!
//! 1. **A sighting read as K** (exact) stays K's unless a corroborated look-alike scores
//!    higher; K itself, when not corroborated (not seen within reach and 10 minutes), is
//!    given the city's area: "could have been anywhere". So a single read of K in the middle
//!    of look-alike L's drive, far from anywhere K was seen, goes to L; a read of K next to
//!    K's own sightings stays K's (the misread prior, about 200 to 1, protects it). All reads
//!    of K are judged against the same set of K's reads, so the order does not matter.
//! 2. **A sighting read as a look-alike L** must first fit K's track as before
//!    ([`super::fit`], against K's reads that stayed K's); if L is corroborated there and
//!    scores higher, it is L's own sighting, not K misread.
//!
//! A sighting attributed elsewhere is listed in `dropped` as
//! [`DropReason::AttributedToLookAlike`] with the plate it went to. Ties stay with K. Every
//! quantity is a function of the set of sightings (never of their order or of which backend
//! returned them), so the same question gets the same answer.

use std::collections::{BTreeMap, HashSet};

use camtrail_model::EventId;
use camtrail_model::misread::MISREAD_MODEL;

use super::fit::{fitting_mask, keep_fitting};
use super::geo::{great_circle_km, reach_km};
use super::params::TrackParams;
use super::sighting::{DropReason, Dropped, MatchKind, TrackSighting};

/// The smallest area (km²) a vehicle is placed in: camera positions and clocks are not
/// precise enough to tell apart places closer than a few hundred metres.
pub const MIN_AREA_KM2: f64 = 0.25;

/// Where and when a sighting was made.
#[derive(Debug, Clone, Copy)]
struct Point {
    at_ms: i64,
    lat: f64,
    lon: f64,
    event: EventId,
}

impl Point {
    fn of(sighting: &TrackSighting) -> Self {
        Self {
            at_ms: sighting.captured_at_ms,
            lat: sighting.lat,
            lon: sighting.lon,
            event: sighting.event_id,
        }
    }

    fn km_to(&self, other: &Point) -> f64 {
        great_circle_km(self.lat, self.lon, other.lat, other.lon)
    }
}

/// Split time-ordered `sightings` of a search for plate `asked` into those that stay in the
/// track (time-ordered) and those dropped: exact reads attributed to a look-alike, misread
/// candidates that do not fit ([`keep_fitting`]) and misread candidates that are the
/// look-alike's own. `area_km2` is the city's area.
pub fn attribute(
    asked: &str,
    sightings: Vec<TrackSighting>,
    params: &TrackParams,
    area_km2: f64,
) -> (Vec<TrackSighting>, Vec<Dropped>) {
    let area_km2 = area_km2.max(MIN_AREA_KM2);
    // Every key's own reads, time-ordered (the input is).
    let mut own: BTreeMap<String, Vec<Point>> = BTreeMap::new();
    for sighting in &sightings {
        if sighting.match_kind != MatchKind::Pattern {
            own.entry(sighting.subject_key.clone())
                .or_default()
                .push(Point::of(sighting));
        }
    }
    // Reads of look-alike keys that do not fit the asked vehicle's track (every read of the
    // asked plate taken as an anchor): the asked vehicle cannot have made them.
    let separate: HashSet<EventId> = sightings
        .iter()
        .zip(fitting_mask(&sightings, params))
        .filter(|(sighting, fits)| sighting.match_kind == MatchKind::Fuzzy && !fits)
        .map(|(sighting, _)| sighting.event_id)
        .collect();
    // Each look-alike key with the table's probability of it being misread as the asked
    // plate, and of the asked plate being misread as it.
    let look_alikes: Vec<(&str, f64, f64)> = own
        .keys()
        .map(String::as_str)
        .filter(|key| *key != asked)
        .map(|key| {
            (
                key,
                MISREAD_MODEL.probability(key, asked),
                MISREAD_MODEL.probability(asked, key),
            )
        })
        .collect();
    let judge = Judge {
        params,
        area_km2,
        misread_rate: params.misread_rate,
        separate: &separate,
    };

    // 1. Reads of the asked plate, each judged against all of them.
    let no_points = Vec::new();
    let asked_points = own.get(asked).unwrap_or(&no_points);
    let mut moved: BTreeMap<EventId, String> = BTreeMap::new();
    for sighting in sightings
        .iter()
        .filter(|s| s.match_kind == MatchKind::Exact && s.subject_key == asked)
    {
        let point = Point::of(sighting);
        let stay = judge.read_as_own(&point, asked_points);
        let best = look_alikes
            .iter()
            .filter_map(|&(key, prior, _)| {
                let track = own.get(key)?;
                if !judge.separate_vehicle(&point, track) {
                    return None;
                }
                judge
                    .read_as_other(&point, track, prior, params.look_alike_max_gap_ms)
                    .map(|score| (score, key))
            })
            .max_by(|a, b| a.0.total_cmp(&b.0).then_with(|| b.1.cmp(a.1)));
        if let Some((score, key)) = best
            && score > stay
        {
            moved.insert(sighting.event_id, key.to_string());
        }
    }
    let mut dropped = Vec::new();
    let mut remaining = Vec::with_capacity(sightings.len());
    for sighting in sightings {
        match moved.get(&sighting.event_id) {
            Some(key) => dropped.push(attributed(&sighting, key)),
            None => remaining.push(sighting),
        }
    }

    // 2. Misread candidates that fit the asked vehicle's track, against the look-alike's own.
    let (fitting, misfits) = keep_fitting(remaining, params);
    dropped.extend(misfits);
    let anchors: Vec<Point> = fitting
        .iter()
        .filter(|s| s.match_kind.is_anchor())
        .map(Point::of)
        .collect();
    let mut theirs: HashSet<EventId> = HashSet::new();
    for sighting in fitting.iter().filter(|s| s.match_kind == MatchKind::Fuzzy) {
        let point = Point::of(sighting);
        let key = sighting.subject_key.as_str();
        let Some(points) = own.get(key) else { continue };
        if !judge.separate_vehicle(&point, points) {
            continue;
        }
        let Some(as_look_alike) = judge.likelihood(&point, points, params.look_alike_max_gap_ms)
        else {
            continue;
        };
        let prior = look_alikes
            .iter()
            .find(|(look_alike, _, _)| *look_alike == key)
            .map_or(0.0, |(_, _, prior)| *prior);
        let as_asked = judge.read_as_other(&point, &anchors, prior, params.fuzzy_max_gap_ms);
        let as_asked = as_asked.unwrap_or(0.0);
        if (1.0 - judge.misread_rate) * as_look_alike > as_asked {
            theirs.insert(sighting.event_id);
        }
    }
    let mut kept = Vec::with_capacity(fitting.len());
    for sighting in fitting {
        if theirs.contains(&sighting.event_id) {
            let key = sighting.subject_key.clone();
            dropped.push(attributed(&sighting, &key));
        } else {
            kept.push(sighting);
        }
    }
    (kept, dropped)
}

fn attributed(sighting: &TrackSighting, key: &str) -> Dropped {
    Dropped {
        attributed_to: Some(key.to_string()),
        ..Dropped::from_sighting(sighting, DropReason::AttributedToLookAlike)
    }
}

/// The scores of the module documentation.
struct Judge<'a> {
    params: &'a TrackParams,
    area_km2: f64,
    misread_rate: f64,
    /// Look-alike reads the asked vehicle cannot have made.
    separate: &'a HashSet<EventId>,
}

impl Judge<'_> {
    /// Whether the reads of a look-alike key in `track` show a separate vehicle near `point`:
    /// among its other reads within `look_alike_max_gap_ms` that `point` can be reached from
    /// or to, one the asked vehicle cannot have made, or at least `look_alike_min_reads − 1`
    /// of them (the asked vehicle misread the same way twice is not another vehicle).
    fn separate_vehicle(&self, point: &Point, track: &[Point]) -> bool {
        let gap = self.params.look_alike_max_gap_ms.unsigned_abs();
        let near: Vec<&Point> = track
            .iter()
            .filter(|p| p.event != point.event && p.at_ms.abs_diff(point.at_ms) <= gap)
            .filter(|p| {
                if p.at_ms <= point.at_ms {
                    self.reachable(p, point)
                } else {
                    self.reachable(point, p)
                }
            })
            .collect();
        near.len() + 1 >= self.params.look_alike_min_reads
            || near.iter().any(|p| self.separate.contains(&p.event))
    }

    /// Score of "the vehicle whose plate was read is the author": its own track, or the
    /// whole city when its track says nothing here.
    fn read_as_own(&self, point: &Point, track: &[Point]) -> f64 {
        let likelihood = self
            .likelihood(point, track, self.params.fuzzy_max_gap_ms)
            .unwrap_or(1.0 / self.area_km2);
        (1.0 - self.misread_rate) * likelihood
    }

    /// Score of "a vehicle whose plate is `prior`-likely misread as what was read", only
    /// where its track corroborates it within `gap_ms`.
    fn read_as_other(
        &self,
        point: &Point,
        track: &[Point],
        prior: f64,
        gap_ms: i64,
    ) -> Option<f64> {
        if prior <= 0.0 {
            return None;
        }
        Some(self.misread_rate * prior * self.likelihood(point, track, gap_ms)?)
    }

    /// One over the area the vehicle of `track` could have been in at `point`, from its
    /// nearest reachable sightings (other than `point`'s event) within `gap_ms` on each side;
    /// `None` when there is none.
    fn likelihood(&self, point: &Point, track: &[Point], gap_ms: i64) -> Option<f64> {
        let split = track.partition_point(|p| p.at_ms <= point.at_ms);
        let before = track[..split]
            .iter()
            .rev()
            .filter(|p| p.event != point.event)
            .take_while(|p| point.at_ms - p.at_ms <= gap_ms)
            .find(|p| self.reachable(p, point));
        let after = track[split..]
            .iter()
            .filter(|p| p.event != point.event)
            .take_while(|p| p.at_ms - point.at_ms <= gap_ms)
            .find(|p| self.reachable(point, p));
        let area = match (before, after) {
            (None, None) => return None,
            (Some(one), None) | (None, Some(one)) => self.disc_km2(one, point),
            (Some(before), Some(after)) => {
                self.ellipse_km2(before, point, after).unwrap_or_else(|| {
                    self.disc_km2(before, point)
                        .min(self.disc_km2(after, point))
                })
            }
        };
        Some(1.0 / area.clamp(MIN_AREA_KM2, self.area_km2))
    }

    /// Reach in the time between two instants, plus clock slack, km.
    fn reach(&self, from_ms: i64, to_ms: i64) -> f64 {
        let elapsed = to_ms.abs_diff(from_ms).min(i64::MAX as u64) as i64;
        reach_km(
            self.params.fuzzy_max_speed_kmh,
            elapsed.saturating_add(self.params.clock_slack_ms),
        )
    }

    fn reachable(&self, from: &Point, to: &Point) -> bool {
        from.km_to(to) <= self.reach(from.at_ms, to.at_ms)
    }

    /// The disc reachable from `anchor` in the time to `point`.
    fn disc_km2(&self, anchor: &Point, point: &Point) -> f64 {
        let radius = self.reach(anchor.at_ms, point.at_ms);
        std::f64::consts::PI * radius * radius
    }

    /// The ellipse of places a vehicle seen at `before` and `after` could have passed through,
    /// when `point` lies in it.
    fn ellipse_km2(&self, before: &Point, point: &Point, after: &Point) -> Option<f64> {
        let total = self.reach(before.at_ms, after.at_ms);
        if before.km_to(point) + point.km_to(after) > total {
            return None;
        }
        let semi_major = total / 2.0;
        let focal = before.km_to(after) / 2.0;
        let semi_minor = (semi_major * semi_major - focal * focal).max(0.0).sqrt();
        Some(std::f64::consts::PI * semi_major * semi_minor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::track::test_support::{at, sighting_of};

    /// A point about `km` east of a fixed origin.
    fn east(km: f64) -> (f64, f64) {
        (22.5, 114.0 + km / 102.8)
    }

    const ASKED: &str = "粤B12310";
    const OTHER: &str = "粤B12370";
    const CITY_KM2: f64 = 3_000.0;

    fn keys(sightings: &[TrackSighting]) -> Vec<u32> {
        sightings
            .iter()
            .map(|s| u32::from_be_bytes(s.event_id.0[12..].try_into().expect("4 bytes")))
            .collect()
    }

    #[test]
    fn a_lone_exact_read_inside_a_look_alikes_drive_goes_to_it() {
        // Car B (粤B12370) drives east past 1, 2, 3 km, once read as the asked plate; the
        // asked car is seen 30 km away an hour earlier.
        let input = vec![
            sighting_of(1, at(0), east(30.0), ASKED, MatchKind::Exact),
            sighting_of(2, at(3_600), east(1.0), OTHER, MatchKind::Fuzzy),
            sighting_of(3, at(3_660), east(2.0), ASKED, MatchKind::Exact),
            sighting_of(4, at(3_720), east(3.0), OTHER, MatchKind::Fuzzy),
        ];
        let (kept, dropped) = attribute(ASKED, input, &TrackParams::default(), CITY_KM2);
        assert_eq!(keys(&kept), [1]);
        let to_other: Vec<_> = dropped
            .iter()
            .filter(|d| d.reason == DropReason::AttributedToLookAlike)
            .map(|d| d.attributed_to.as_deref())
            .collect();
        assert_eq!(to_other.len(), 1, "{dropped:?}");
        assert_eq!(to_other[0], Some(OTHER));
    }

    #[test]
    fn an_exact_read_next_to_the_asked_cars_own_reads_stays() {
        // Both cars drive the same street a minute apart: the read of the asked plate fits
        // the asked car as well as the look-alike, and the misread prior keeps it.
        let input = vec![
            sighting_of(1, at(0), east(0.0), ASKED, MatchKind::Exact),
            sighting_of(2, at(60), east(1.0), ASKED, MatchKind::Exact),
            sighting_of(3, at(120), east(2.0), ASKED, MatchKind::Exact),
            sighting_of(4, at(50), east(0.9), OTHER, MatchKind::Fuzzy),
            sighting_of(5, at(110), east(1.9), OTHER, MatchKind::Fuzzy),
            sighting_of(6, at(170), east(2.9), OTHER, MatchKind::Fuzzy),
        ];
        let mut input = input;
        input.sort_by(TrackSighting::time_order);
        let (kept, dropped) = attribute(ASKED, input, &TrackParams::default(), CITY_KM2);
        assert!(keys(&kept).starts_with(&[1]));
        assert!(keys(&kept).contains(&2) && keys(&kept).contains(&3));
        // The look-alike's own reads are its own.
        assert!(
            dropped
                .iter()
                .filter(|d| d.reason == DropReason::AttributedToLookAlike)
                .count()
                == 3,
            "{dropped:?}"
        );
    }

    #[test]
    fn a_lone_misread_inside_the_asked_track_is_kept() {
        // The look-alike key was seen once, here: nothing corroborates another car.
        let input = vec![
            sighting_of(1, at(0), east(0.0), ASKED, MatchKind::Exact),
            sighting_of(2, at(60), east(1.0), OTHER, MatchKind::Fuzzy),
            sighting_of(3, at(120), east(2.0), ASKED, MatchKind::Exact),
        ];
        let (kept, dropped) = attribute(ASKED, input, &TrackParams::default(), CITY_KM2);
        assert_eq!(keys(&kept), [1, 2, 3]);
        assert!(dropped.is_empty());
    }

    #[test]
    fn the_asked_car_misread_the_same_way_twice_is_not_another_car() {
        let input = vec![
            sighting_of(1, at(0), east(0.0), ASKED, MatchKind::Exact),
            sighting_of(2, at(60), east(1.0), OTHER, MatchKind::Fuzzy),
            sighting_of(3, at(120), east(2.0), OTHER, MatchKind::Fuzzy),
            sighting_of(4, at(180), east(3.0), ASKED, MatchKind::Exact),
        ];
        let (kept, dropped) = attribute(ASKED, input, &TrackParams::default(), CITY_KM2);
        assert_eq!(keys(&kept), [1, 2, 3, 4]);
        assert!(dropped.is_empty());
    }

    #[test]
    fn the_answer_does_not_depend_on_the_input_order() {
        let mut input = vec![
            sighting_of(1, at(0), east(30.0), ASKED, MatchKind::Exact),
            sighting_of(2, at(3_600), east(1.0), OTHER, MatchKind::Fuzzy),
            sighting_of(3, at(3_660), east(2.0), ASKED, MatchKind::Exact),
            sighting_of(4, at(3_720), east(3.0), OTHER, MatchKind::Fuzzy),
            sighting_of(5, at(3_700), east(30.5), ASKED, MatchKind::Exact),
        ];
        input.sort_by(TrackSighting::time_order);
        let first = attribute(ASKED, input.clone(), &TrackParams::default(), CITY_KM2);
        input.reverse();
        input.sort_by(TrackSighting::time_order);
        let second = attribute(ASKED, input, &TrackParams::default(), CITY_KM2);
        assert_eq!(first, second);
    }
}
