//! Burst collapse: a vehicle waiting at a light, or crawling past, is read many times by one
//! camera. Consecutive sightings (in track order) at the same camera, each within
//! `burst_window_ms` of the previous one, become one sighting.
//!
//! The sighting that stands for a burst is its best one (exact before pattern before fuzzy,
//! then higher match confidence, then one with a snapshot, then higher reader confidence,
//! then the earliest); it records how many detections it stands for and when the burst began
//! and ended. The others are dropped as [`DropReason::MergedIntoBurst`], naming it.
//!
//! Bursts are contiguous runs of the time-ordered sightings, so their representatives stay
//! in time order.

use super::sighting::{DropReason, Dropped, TrackSighting};

/// Collapse bursts in time-ordered `sightings`; returns the representatives (time-ordered)
/// and the merged sightings.
pub fn collapse_bursts(
    sightings: Vec<TrackSighting>,
    burst_window_ms: i64,
) -> (Vec<TrackSighting>, Vec<Dropped>) {
    let mut kept = Vec::with_capacity(sightings.len());
    let mut dropped = Vec::new();
    let mut burst: Vec<TrackSighting> = Vec::new();
    for sighting in sightings {
        let joins = burst.last().is_some_and(|last| {
            last.camera_id == sighting.camera_id
                && sighting.captured_at_ms.saturating_sub(last.captured_at_ms) <= burst_window_ms
        });
        if !joins {
            kept.extend(close_burst(std::mem::take(&mut burst), &mut dropped));
        }
        burst.push(sighting);
    }
    kept.extend(close_burst(burst, &mut dropped));
    (kept, dropped)
}

/// Pick the representative of a time-ordered burst and record the others; `None` only for
/// an empty burst.
fn close_burst(mut burst: Vec<TrackSighting>, dropped: &mut Vec<Dropped>) -> Option<TrackSighting> {
    let best = (0..burst.len()).min_by(|&a, &b| burst[a].representative_order(&burst[b]))?;
    let start_ms = burst.first()?.burst_start_ms;
    let end_ms = burst.last()?.burst_end_ms;
    let count = burst.iter().map(|s| s.burst_count).sum();
    let mut representative = burst.remove(best);
    for merged in &burst {
        dropped.push(Dropped {
            merged_into: Some(representative.event_id),
            ..Dropped::from_sighting(merged, DropReason::MergedIntoBurst)
        });
    }
    representative.burst_count = count;
    representative.burst_start_ms = start_ms;
    representative.burst_end_ms = end_ms;
    Some(representative)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::track::sighting::MatchKind;
    use crate::track::test_support::{at, event, sighting};

    const HERE: (f64, f64) = (22.54, 114.05);
    const THERE: (f64, f64) = (22.55, 114.06);

    #[test]
    fn collapses_consecutive_reads_at_one_camera() {
        let input = vec![
            sighting(1, at(0), HERE, MatchKind::Exact),
            sighting(2, at(20), HERE, MatchKind::Exact),
            sighting(3, at(70), HERE, MatchKind::Exact),
            sighting(4, at(200), THERE, MatchKind::Exact),
        ];
        let (kept, dropped) = collapse_bursts(input, 60_000);
        assert_eq!(kept.len(), 2);
        assert_eq!(
            kept[0].burst_count, 3,
            "chained: each read within 60 s of the previous"
        );
        assert_eq!(
            (kept[0].burst_start_ms, kept[0].burst_end_ms),
            (at(0), at(70))
        );
        assert_eq!(kept[1].burst_count, 1);
        assert_eq!(
            (kept[1].burst_start_ms, kept[1].burst_end_ms),
            (at(200), at(200))
        );
        assert_eq!(dropped.len(), 2);
        for merged in &dropped {
            assert_eq!(merged.reason, DropReason::MergedIntoBurst);
            assert_eq!(merged.merged_into, Some(kept[0].event_id));
        }
    }

    #[test]
    fn a_long_pause_or_another_camera_ends_a_burst() {
        let input = vec![
            sighting(1, at(0), HERE, MatchKind::Exact),
            sighting(2, at(61), HERE, MatchKind::Exact),
            sighting(3, at(62), THERE, MatchKind::Exact),
            sighting(4, at(63), HERE, MatchKind::Exact),
        ];
        let (kept, dropped) = collapse_bursts(input, 60_000);
        assert_eq!(kept.len(), 4);
        assert!(dropped.is_empty());
    }

    #[test]
    fn the_best_match_represents_the_burst() {
        let mut with_snapshot = sighting(3, at(20), HERE, MatchKind::Exact);
        with_snapshot.has_snapshot = true;
        let input = vec![
            sighting(1, at(0), HERE, MatchKind::Fuzzy),
            sighting(2, at(10), HERE, MatchKind::Exact),
            with_snapshot,
            sighting(4, at(30), HERE, MatchKind::Fuzzy),
        ];
        let (kept, dropped) = collapse_bursts(input, 60_000);
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].event_id, event(3));
        assert_eq!(kept[0].match_kind, MatchKind::Exact);
        assert_eq!(
            (kept[0].burst_start_ms, kept[0].burst_end_ms),
            (at(0), at(30))
        );
        assert_eq!(kept[0].burst_count, 4);
        let mut merged: Vec<_> = dropped.iter().map(|d| d.event_id).collect();
        merged.sort();
        assert_eq!(merged, [event(1), event(2), event(4)]);
    }

    #[test]
    fn zero_window_only_merges_simultaneous_reads() {
        let input = vec![
            sighting(1, at(0), HERE, MatchKind::Exact),
            sighting(2, at(0), HERE, MatchKind::Exact),
            sighting(3, at(1), HERE, MatchKind::Exact),
        ];
        let (kept, _) = collapse_bursts(input, 0);
        assert_eq!(kept.len(), 2);
        assert_eq!(kept[0].burst_count, 2);
    }

    #[test]
    fn empty_input() {
        let (kept, dropped) = collapse_bursts(Vec::new(), 60_000);
        assert!(kept.is_empty() && dropped.is_empty());
    }
}
