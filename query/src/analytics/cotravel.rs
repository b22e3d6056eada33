//! Travelling together: the vehicles seen at the target's cameras within ±Δt of the target,
//! at enough distinct cameras, in the same order.
//!
//! For each other key, each of the target's sightings is paired with that key's sighting at
//! the same camera nearest in time within ±Δt. Of those pairs, the longest run in which both
//! the target's and the other vehicle's times increase (a longest increasing subsequence)
//! is the evidence: a vehicle crossing the target's path now and then, or passing the same
//! cameras in another order, does not line up. It is a companion when that run covers at
//! least `min_cameras` distinct cameras over at least `min_span_ms` of the target's time
//! (first to last shared sighting, default 10 minutes): a stranger who drove the same
//! arterial right behind the target passes many of its cameras in order, but only for the few
//! minutes the roads coincide; a companion stays. Ranking: more shared cameras first, then
//! the smaller mean |Δt|, then key.

use std::collections::HashMap;

use camtrail_storage::{CameraWindow, StoredSighting};

/// Thresholds of a co-travel search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoTravelParams {
    /// Distinct shared cameras needed.
    pub min_cameras: usize,
    /// Largest time difference at one camera, ms.
    pub delta_ms: i64,
    /// Shortest time from the first to the last shared sighting, ms.
    pub min_span_ms: i64,
}

/// One sighting the two vehicles share.
#[derive(Debug, Clone, PartialEq)]
pub struct SharedSighting {
    /// The target's sighting.
    pub target: StoredSighting,
    /// The other vehicle's, at the same camera.
    pub other: StoredSighting,
    /// `other` minus `target` capture time, ms (positive: it came after).
    pub dt_ms: i64,
}

/// A vehicle that travelled with the target.
#[derive(Debug, Clone, PartialEq)]
pub struct Companion {
    /// Its key.
    pub key: String,
    /// Its plate as most often read in the evidence.
    pub plate: String,
    /// Distinct cameras in the evidence.
    pub shared_cameras: usize,
    /// Mean |Δt| over the evidence, ms.
    pub mean_abs_dt_ms: f64,
    /// Time from the first to the last shared sighting (the target's clock), ms.
    pub span_ms: i64,
    /// The shared sightings, in time order.
    pub evidence: Vec<SharedSighting>,
}

/// The camera windows to read around `target`'s sightings: ±`delta_ms` at each sighting's
/// camera, overlapping windows at one camera merged. Ordered by camera, then time.
pub fn windows_around(target: &[StoredSighting], delta_ms: i64) -> Vec<CameraWindow> {
    let mut by_camera: HashMap<&str, Vec<(i64, i64)>> = HashMap::new();
    for sighting in target {
        by_camera.entry(&sighting.camera_id).or_default().push((
            sighting.captured_at_ms.saturating_sub(delta_ms),
            sighting
                .captured_at_ms
                .saturating_add(delta_ms)
                .saturating_add(1),
        ));
    }
    let mut cameras: Vec<(&str, Vec<(i64, i64)>)> = by_camera.into_iter().collect();
    cameras.sort_by_key(|(camera, _)| *camera);
    let mut windows = Vec::new();
    for (camera, mut ranges) in cameras {
        ranges.sort_unstable();
        let mut merged: Vec<(i64, i64)> = Vec::new();
        for (from, to) in ranges {
            match merged.last_mut() {
                Some(last) if from <= last.1 => last.1 = last.1.max(to),
                _ => merged.push((from, to)),
            }
        }
        windows.extend(merged.into_iter().map(|(from_ms, to_ms)| CameraWindow {
            cameras: vec![camera.to_string()],
            from_ms,
            to_ms,
        }));
    }
    windows
}

/// The evidence one other vehicle's sightings give against the target's (both time-ordered),
/// or `None` when nothing lines up.
pub fn line_up(
    target: &[StoredSighting],
    other: &[StoredSighting],
    delta_ms: i64,
) -> Option<Companion> {
    let mut at_camera: HashMap<&str, Vec<&StoredSighting>> = HashMap::new();
    for sighting in other {
        at_camera
            .entry(&sighting.camera_id)
            .or_default()
            .push(sighting);
    }
    // Each target sighting with the other's nearest at the same camera.
    let pairs: Vec<(&StoredSighting, &StoredSighting)> = target
        .iter()
        .filter_map(|t| {
            let nearest = at_camera
                .get(t.camera_id.as_str())?
                .iter()
                .filter(|o| (o.captured_at_ms - t.captured_at_ms).abs() <= delta_ms)
                .min_by_key(|o| ((o.captured_at_ms - t.captured_at_ms).abs(), o.event_id))?;
            Some((t, *nearest))
        })
        .collect();
    if pairs.is_empty() {
        return None;
    }
    let chain = longest_increasing(&pairs);
    let evidence: Vec<SharedSighting> = chain
        .into_iter()
        .map(|i| {
            let (t, o) = pairs[i];
            SharedSighting {
                target: t.clone(),
                other: o.clone(),
                dt_ms: o.captured_at_ms - t.captured_at_ms,
            }
        })
        .collect();
    let mut cameras: Vec<&str> = evidence
        .iter()
        .map(|e| e.target.camera_id.as_str())
        .collect();
    cameras.sort_unstable();
    cameras.dedup();
    let others: Vec<StoredSighting> = evidence.iter().map(|e| e.other.clone()).collect();
    Some(Companion {
        key: others[0].subject_key.clone(),
        plate: super::usual_plate(&others),
        shared_cameras: cameras.len(),
        mean_abs_dt_ms: evidence.iter().map(|e| e.dt_ms.abs() as f64).sum::<f64>()
            / evidence.len() as f64,
        span_ms: evidence[evidence.len() - 1].target.captured_at_ms
            - evidence[0].target.captured_at_ms,
        evidence,
    })
}

/// Indices of the longest subsequence of `pairs` (already in target order) whose other
/// sightings strictly increase in `(captured_at_ms, event_id)`; the earliest such on ties.
fn longest_increasing(pairs: &[(&StoredSighting, &StoredSighting)]) -> Vec<usize> {
    let key = |i: usize| (pairs[i].1.captured_at_ms, pairs[i].1.event_id);
    // tails[k]: index of the smallest tail of an increasing run of length k + 1.
    let mut tails: Vec<usize> = Vec::new();
    let mut previous: Vec<Option<usize>> = vec![None; pairs.len()];
    for (i, back) in previous.iter_mut().enumerate() {
        let at = tails.partition_point(|&j| key(j) < key(i));
        *back = at.checked_sub(1).map(|k| tails[k]);
        if at == tails.len() {
            tails.push(i);
        } else {
            tails[at] = i;
        }
    }
    let mut chain = Vec::with_capacity(tails.len());
    let mut cursor = tails.last().copied();
    while let Some(i) = cursor {
        chain.push(i);
        cursor = previous[i];
    }
    chain.reverse();
    chain
}

/// Every other vehicle among `nearby` (sightings inside the windows around the target, any
/// order) that lines up with `target` (time-ordered) at `params.min_cameras` or more cameras,
/// ranked. The target's own key is never its own companion.
pub fn companions(
    target_key: &str,
    target: &[StoredSighting],
    nearby: Vec<StoredSighting>,
    params: CoTravelParams,
) -> Vec<Companion> {
    let mut by_key: HashMap<String, Vec<StoredSighting>> = HashMap::new();
    for sighting in nearby {
        if !sighting.subject_key.is_empty() && sighting.subject_key != target_key {
            by_key
                .entry(sighting.subject_key.clone())
                .or_default()
                .push(sighting);
        }
    }
    let mut found: Vec<Companion> = by_key
        .into_values()
        .filter_map(|mut sightings| {
            sightings.sort_by(|a, b| {
                (a.captured_at_ms, a.event_id).cmp(&(b.captured_at_ms, b.event_id))
            });
            line_up(target, &sightings, params.delta_ms)
        })
        .filter(|c| c.shared_cameras >= params.min_cameras && c.span_ms >= params.min_span_ms)
        .collect();
    found.sort_by(|a, b| {
        b.shared_cameras
            .cmp(&a.shared_cameras)
            .then(a.mean_abs_dt_ms.total_cmp(&b.mean_abs_dt_ms))
            .then_with(|| a.key.cmp(&b.key))
    });
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::test_support::seen;

    const P: CoTravelParams = CoTravelParams {
        min_cameras: 4,
        delta_ms: 60_000,
        min_span_ms: 0,
    };

    /// The target passes c0..c7, one camera a minute.
    fn target() -> Vec<StoredSighting> {
        (0..8)
            .map(|i| seen(i, "粤T00001", &format!("c{i}"), i64::from(i) * 60))
            .collect()
    }

    #[test]
    fn a_follower_lines_up_a_crosser_and_a_reverse_driver_do_not() {
        let target = target();
        let mut nearby = Vec::new();
        // Follows 20-50 s behind through c1..c6, missed at c3.
        for i in [1, 2, 4, 5, 6] {
            nearby.push(seen(
                100 + i,
                "粤F00001",
                &format!("c{i}"),
                i64::from(i) * 60 + 20 + i64::from(i) * 5,
            ));
        }
        // Crosses the path at c2 and c5 only.
        nearby.push(seen(200, "粤X00001", "c2", 130));
        nearby.push(seen(201, "粤X00001", "c5", 290));
        // Drives the route backwards: c6..c1, each within 60 s of the target at that camera
        // only where the times happen to meet, never in order.
        for (k, i) in [6, 5, 4, 3, 2, 1].into_iter().enumerate() {
            nearby.push(seen(
                300 + i,
                "粤R00001",
                &format!("c{i}"),
                150 + k as i64 * 20,
            ));
        }
        // The target's own key is not a companion of itself.
        nearby.push(seen(400, "粤T00001", "c3", 181));
        let found = companions("粤T00001", &target, nearby, P);
        assert_eq!(found.len(), 1, "{found:?}");
        let follower = &found[0];
        assert_eq!(follower.key, "粤F00001");
        assert_eq!(follower.shared_cameras, 5);
        assert!(
            follower
                .evidence
                .iter()
                .all(|e| (20..=60).contains(&(e.dt_ms / 1_000)))
        );
        assert!(follower.mean_abs_dt_ms > 20_000.0 && follower.mean_abs_dt_ms < 60_000.0);
    }

    #[test]
    fn ranking_prefers_more_cameras_then_tighter_timing() {
        let target = target();
        let mut nearby = Vec::new();
        for i in 0..8 {
            nearby.push(seen(
                100 + i,
                "粤A00001",
                &format!("c{i}"),
                i64::from(i) * 60 + 50,
            ));
            nearby.push(seen(
                200 + i,
                "粤A00002",
                &format!("c{i}"),
                i64::from(i) * 60 + 5,
            ));
        }
        for i in 0..5 {
            nearby.push(seen(
                300 + i,
                "粤A00003",
                &format!("c{i}"),
                i64::from(i) * 60 + 1,
            ));
        }
        let keys: Vec<String> = companions("粤T00001", &target, nearby, P)
            .into_iter()
            .map(|c| c.key)
            .collect();
        assert_eq!(keys, ["粤A00002", "粤A00001", "粤A00003"]);
    }

    #[test]
    fn a_short_stretch_together_is_not_travelling_together() {
        let target = target();
        // Right behind the target at c0..c4: four minutes together.
        let nearby: Vec<StoredSighting> = (0..5)
            .map(|i| {
                seen(
                    100 + i,
                    "粤A00001",
                    &format!("c{i}"),
                    i64::from(i) * 60 + 10,
                )
            })
            .collect();
        let found = |min_span_ms| {
            companions(
                "粤T00001",
                &target,
                nearby.clone(),
                CoTravelParams { min_span_ms, ..P },
            )
        };
        assert_eq!(found(4 * 60_000).len(), 1);
        assert_eq!(found(4 * 60_000)[0].span_ms, 4 * 60_000);
        assert!(found(4 * 60_000 + 1).is_empty());
    }

    #[test]
    fn windows_merge_per_camera() {
        let mut target = target();
        // Back at c0 90 s after the first pass: the two ±60 s windows overlap.
        target.push(seen(50, "粤T00001", "c0", 90));
        let windows = windows_around(&target, 60_000);
        assert_eq!(windows.len(), 8);
        let c0 = &windows[0];
        assert_eq!(c0.cameras, ["c0"]);
        assert_eq!(c0.to_ms - c0.from_ms, 90_000 + 120_000 + 1);
    }
}
