//! A series of scenes (area collision): the vehicles seen at at least `min_scenes` of 2–6
//! scenes, each scene an area and a window.
//!
//! **Links.** A vehicle is its subject key. With misread tolerance a key also reaches the
//! scenes where one of its plausible misreadings ([`crate::track::misread_variants`], the
//! shared model) was seen and the key itself was not: that scene's evidence is marked
//! [`LinkKind::Fuzzy`] and names the key read there. A hit needs at least one scene where
//! its own key was read.
//!
//! **Ranking.** By the number of scenes (more first), then by fuzzy links (fewer first), then
//! by closeness in time: at each scene the sighting nearest the middle of its window (the
//! incident time, when windows are centred on it), as a share of the half-window (0 at the
//! middle, 1 at the edge), averaged over the scenes; then by key. A key that a better-ranked
//! hit already took in as a fuzzy link is not listed again on its own, nor is one that
//! reaches the threshold only by borrowing a listed hit's scenes (a misreading of a listed
//! vehicle at a scene where the vehicle itself was read too).

use std::collections::{BTreeMap, HashMap, HashSet};

use camtrail_storage::StoredSighting;

use crate::track::misread_variants;

/// How a scene's evidence is linked to the hit's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkKind {
    /// The key itself was read there.
    Exact,
    /// A plausible misreading of the key was read there.
    Fuzzy,
}

impl LinkKind {
    /// `exact` or `fuzzy`, as answers name it.
    pub fn as_str(self) -> &'static str {
        match self {
            LinkKind::Exact => "exact",
            LinkKind::Fuzzy => "fuzzy",
        }
    }
}

/// What a series search asks beyond the scenes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SeriesParams {
    /// A vehicle must be seen at at least this many scenes.
    pub min_scenes: usize,
    /// Link misreadings of a key across scenes.
    pub fuzzy: bool,
    /// Most misreadings generated per key.
    pub max_variants: usize,
}

/// One scene's evidence for a hit.
#[derive(Debug, Clone, PartialEq)]
pub struct SceneEvidence {
    /// Index of the scene in the request.
    pub scene: usize,
    /// The key read there.
    pub key: String,
    /// Exact or through a misreading.
    pub link: LinkKind,
    /// Distance in time of the sighting nearest the window's middle, as a share of the
    /// half-window (0–1).
    pub offset: f64,
    /// The sightings there, in time order.
    pub sightings: Vec<StoredSighting>,
}

/// A vehicle seen at several scenes.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesHit {
    /// The vehicle's key.
    pub key: String,
    /// Its plate as most often read.
    pub plate: String,
    /// Scenes where it was seen.
    pub scenes: usize,
    /// Of those, scenes linked through a misreading.
    pub fuzzy_links: usize,
    /// Mean of the evidence offsets (0 = every sighting at its window's middle).
    pub time_offset: f64,
    /// One entry per scene, in scene order.
    pub evidence: Vec<SceneEvidence>,
}

/// `(from_ms, to_ms)` of each scene and the sightings inside each (its cameras, its window),
/// time-ordered → every hit, ranked.
pub fn collide(
    windows: &[(i64, i64)],
    per_scene: Vec<Vec<StoredSighting>>,
    params: SeriesParams,
) -> Vec<SeriesHit> {
    // key -> scene -> sightings
    let mut seen: BTreeMap<String, BTreeMap<usize, Vec<StoredSighting>>> = BTreeMap::new();
    for (scene, rows) in per_scene.into_iter().enumerate() {
        for row in rows {
            if !row.subject_key.is_empty() {
                seen.entry(row.subject_key.clone())
                    .or_default()
                    .entry(scene)
                    .or_default()
                    .push(row);
            }
        }
    }
    let offset = |scene: usize, sightings: &[StoredSighting]| {
        let (from, to) = windows[scene];
        let middle = (from as f64 + to as f64) / 2.0;
        let half = ((to - from) as f64 / 2.0).max(1.0);
        sightings
            .iter()
            .map(|s| ((s.captured_at_ms as f64 - middle).abs() / half).min(1.0))
            .fold(1.0, f64::min)
    };
    let mut hits = Vec::new();
    for (key, scenes) in &seen {
        let mut evidence: Vec<SceneEvidence> = scenes
            .iter()
            .map(|(&scene, sightings)| SceneEvidence {
                scene,
                key: key.clone(),
                link: LinkKind::Exact,
                offset: offset(scene, sightings),
                sightings: sightings.clone(),
            })
            .collect();
        // Cheap bound first: even every other scene linked cannot reach the threshold.
        if params.fuzzy && scenes.len() < windows.len() && windows.len() >= params.min_scenes {
            let mut linked: HashMap<usize, SceneEvidence> = HashMap::new();
            for (variant, _) in misread_variants(key, params.max_variants) {
                let Some(other) = seen.get(&variant) else {
                    continue;
                };
                for (&scene, sightings) in other {
                    if scenes.contains_key(&scene) {
                        continue;
                    }
                    let candidate = SceneEvidence {
                        scene,
                        key: variant.clone(),
                        link: LinkKind::Fuzzy,
                        offset: offset(scene, sightings),
                        sightings: sightings.clone(),
                    };
                    // Several misreadings at one scene: the one nearest the middle.
                    let better = linked.get(&scene).is_none_or(|kept| {
                        (candidate.offset, &candidate.key) < (kept.offset, &kept.key)
                    });
                    if better {
                        linked.insert(scene, candidate);
                    }
                }
            }
            evidence.extend(linked.into_values());
        }
        if evidence.len() < params.min_scenes {
            continue;
        }
        evidence.sort_by_key(|e| e.scene);
        let exact: Vec<StoredSighting> = scenes.values().flatten().cloned().collect();
        let fuzzy_links = evidence
            .iter()
            .filter(|e| e.link == LinkKind::Fuzzy)
            .count();
        hits.push(SeriesHit {
            key: key.clone(),
            plate: super::usual_plate(&exact),
            scenes: evidence.len(),
            fuzzy_links,
            time_offset: evidence.iter().map(|e| e.offset).sum::<f64>() / evidence.len() as f64,
            evidence,
        });
    }
    hits.sort_by(|a, b| {
        b.scenes
            .cmp(&a.scenes)
            .then(a.fuzzy_links.cmp(&b.fuzzy_links))
            .then(a.time_offset.total_cmp(&b.time_offset))
            .then_with(|| a.key.cmp(&b.key))
    });
    // A key already taken in by a better hit is that vehicle; so is a key that reaches the
    // threshold only through scenes it borrows from a better hit's key (a misreading of a
    // listed vehicle, read where the vehicle itself was read too).
    let mut taken: HashSet<String> = HashSet::new();
    let mut listed: HashSet<String> = HashSet::new();
    hits.retain(|hit| {
        if taken.contains(&hit.key) {
            return false;
        }
        let own = hit
            .evidence
            .iter()
            .filter(|e| e.link == LinkKind::Exact || !listed.contains(&e.key))
            .count();
        if own < params.min_scenes {
            return false;
        }
        taken.extend(hit.evidence.iter().map(|e| e.key.clone()));
        listed.insert(hit.key.clone());
        true
    });
    hits
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::test_support::seen;

    const HOUR_S: i64 = 3_600;

    fn params(min_scenes: usize, fuzzy: bool) -> SeriesParams {
        SeriesParams {
            min_scenes,
            fuzzy,
            max_variants: 400,
        }
    }

    /// Three scenes a day apart, each a 2-hour window; sightings given as (key, scene, minutes
    /// after the window opened).
    fn scenes(reads: &[(&str, usize, i64)]) -> (Vec<(i64, i64)>, Vec<Vec<StoredSighting>>) {
        let base = seen(0, "", "", 0).captured_at_ms;
        let windows: Vec<(i64, i64)> = (0..3)
            .map(|d| {
                let from = base + d * 24 * HOUR_S * 1_000;
                (from, from + 2 * HOUR_S * 1_000)
            })
            .collect();
        let mut per_scene = vec![Vec::new(); 3];
        for (n, &(key, scene, minute)) in reads.iter().enumerate() {
            let at_s = scene as i64 * 24 * HOUR_S + minute * 60;
            per_scene[scene].push(seen(n as u32 + 1, key, &format!("c{scene}"), at_s));
        }
        (windows, per_scene)
    }

    #[test]
    fn ranks_by_scenes_then_time_and_honours_the_threshold() {
        let (windows, per_scene) = scenes(&[
            ("粤B12345", 0, 60),
            ("粤B12345", 1, 55),
            ("粤B12345", 2, 65),
            // All three scenes too, but near the edges of the windows.
            ("粤B77777", 0, 2),
            ("粤B77777", 1, 118),
            ("粤B77777", 2, 5),
            // Two scenes only.
            ("粤B55555", 0, 60),
            ("粤B55555", 2, 60),
            ("粤B99999", 1, 60),
        ]);
        let all = collide(&windows, per_scene.clone(), params(3, false));
        let keys: Vec<&str> = all.iter().map(|h| h.key.as_str()).collect();
        assert_eq!(keys, ["粤B12345", "粤B77777"]);
        assert!(all[0].time_offset < 0.1 && all[1].time_offset > 0.9);
        assert_eq!(all[0].evidence.len(), 3);
        assert!(all[0].evidence.iter().all(|e| e.link == LinkKind::Exact));
        let two = collide(&windows, per_scene, params(2, false));
        let keys: Vec<&str> = two.iter().map(|h| h.key.as_str()).collect();
        assert_eq!(keys, ["粤B12345", "粤B77777", "粤B55555"]);
    }

    #[test]
    fn a_misread_at_one_scene_is_linked_once_and_marked_fuzzy() {
        // 粤B12345 read as 粤B1Z345 (2 → Z) at the second scene.
        let (windows, per_scene) = scenes(&[
            ("粤B12345", 0, 60),
            ("粤B1Z345", 1, 60),
            ("粤B12345", 2, 60),
        ]);
        assert!(collide(&windows, per_scene.clone(), params(3, false)).is_empty());
        let hits = collide(&windows, per_scene, params(3, true));
        assert_eq!(hits.len(), 1, "one vehicle, not two: {hits:?}");
        let hit = &hits[0];
        assert_eq!(hit.key, "粤B12345");
        assert_eq!((hit.scenes, hit.fuzzy_links), (3, 1));
        assert_eq!(hit.evidence[1].link, LinkKind::Fuzzy);
        assert_eq!(hit.evidence[1].key, "粤B1Z345");
    }

    #[test]
    fn a_misreading_beside_the_right_read_is_not_a_second_vehicle() {
        // Read right at every scene, and once misread at the second too.
        let (windows, per_scene) = scenes(&[
            ("粤B12345", 0, 60),
            ("粤B12345", 1, 60),
            ("粤B1Z345", 1, 61),
            ("粤B12345", 2, 60),
        ]);
        let hits = collide(&windows, per_scene, params(3, true));
        let keys: Vec<&str> = hits.iter().map(|h| h.key.as_str()).collect();
        assert_eq!(keys, ["粤B12345"]);
    }
}
