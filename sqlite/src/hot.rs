//! The rows of the staging table, indexed in memory: what the embedded store has committed
//! but not yet sorted into a part. Readers consult it beside the parts; the writer fills it
//! after each commit and empties it when a flush turns the staging table into a part.

use std::collections::{HashMap, HashSet};

use camtrail_model::EventId;
// Keys are plates and camera ids sent by gateways: a seeded hash, but a fast one (the
// writer inserts every committed event here; SipHash was 10% of its time).
use foldhash::quality::RandomState;

use camtrail_storage::{PassCursor, PassFilter, StoredSighting};

/// Staged sightings by subject key and by camera, each event id once.
#[derive(Debug, Default)]
pub(super) struct Hot {
    rows: Vec<StoredSighting>,
    by_key: HashMap<String, Vec<u32>, RandomState>,
    by_camera: HashMap<String, Vec<u32>, RandomState>,
    ids: HashSet<EventId, RandomState>,
}

impl Hot {
    /// Add a sighting; false (nothing added) when its event id is already staged.
    pub(super) fn insert(&mut self, sighting: StoredSighting) -> bool {
        if !self.ids.insert(sighting.event_id) {
            return false;
        }
        let index = self.rows.len() as u32;
        self.by_key
            .entry(sighting.subject_key.clone())
            .or_default()
            .push(index);
        self.by_camera
            .entry(sighting.camera_id.clone())
            .or_default()
            .push(index);
        self.rows.push(sighting);
        true
    }

    /// Staged sightings.
    pub(super) fn len(&self) -> usize {
        self.rows.len()
    }

    /// Room for `rows` sightings, made once: growing by doubling copied the rows and
    /// rehashed the ids again and again (8% of the writer's time in the issue-14 profile).
    pub(super) fn with_capacity(rows: usize) -> Self {
        let mut hot = Self::default();
        hot.rows.reserve(rows);
        hot.ids.reserve(rows);
        hot
    }

    /// Forget everything (the staging table became a part).
    pub(super) fn clear(&mut self) {
        *self = Self::default();
    }

    /// Keep only the rows `keep` accepts (retention).
    pub(super) fn retain(&mut self, keep: impl Fn(&StoredSighting) -> bool) {
        let rows = std::mem::take(&mut self.rows);
        self.clear();
        for row in rows.into_iter().filter(|r| keep(r)) {
            self.insert(row);
        }
    }

    /// Staged rows retention would remove.
    pub(super) fn count_removed(&self, keep: &super::parts::Keep) -> usize {
        self.rows
            .iter()
            .filter(|r| !keep.keeps(r.captured_at_ms, &r.event_id.0))
            .count()
    }

    /// Every staged event id.
    pub(super) fn event_ids(&self) -> impl Iterator<Item = &EventId> {
        self.ids.iter()
    }

    fn lookup<'a>(
        &'a self,
        index: &'a HashMap<String, Vec<u32>, RandomState>,
        values: &'a [String],
        from_ms: i64,
        to_ms: i64,
    ) -> impl Iterator<Item = &'a StoredSighting> + 'a {
        values
            .iter()
            .filter_map(|value| index.get(value))
            .flatten()
            .map(|&i| &self.rows[i as usize])
            .filter(move |s| s.captured_at_ms >= from_ms && s.captured_at_ms < to_ms)
    }

    /// Staged sightings of `keys` in `[from_ms, to_ms)`.
    pub(super) fn sightings(
        &self,
        keys: &[String],
        from_ms: i64,
        to_ms: i64,
    ) -> Vec<StoredSighting> {
        self.lookup(&self.by_key, keys, from_ms, to_ms)
            .cloned()
            .collect()
    }

    /// Staged sightings at `cameras` in `[from_ms, to_ms)` after `after`.
    pub(super) fn passes(
        &self,
        cameras: &[String],
        from_ms: i64,
        to_ms: i64,
        filter: &PassFilter,
        after: Option<PassCursor>,
    ) -> Vec<StoredSighting> {
        self.lookup(&self.by_camera, cameras, from_ms, to_ms)
            .filter(|s| filter.matches(s))
            .filter(|s| {
                after
                    .is_none_or(|c| (s.captured_at_ms, s.event_id) > (c.captured_at_ms, c.event_id))
            })
            .cloned()
            .collect()
    }

    /// Which of `keys` are staged with a sighting in `[from_ms, to_ms)`.
    pub(super) fn keys_seen(&self, keys: &[String], from_ms: i64, to_ms: i64) -> Vec<String> {
        keys.iter()
            .filter(|key| {
                self.lookup(&self.by_key, std::slice::from_ref(key), from_ms, to_ms)
                    .next()
                    .is_some()
            })
            .cloned()
            .collect()
    }

    /// Staged keys starting with `prefix` that match the SQL `LIKE` pattern `like` (escape
    /// `\`) with a sighting in `[from_ms, to_ms)`.
    pub(super) fn keys_like(
        &self,
        prefix: &str,
        like: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Vec<String> {
        self.by_key
            .iter()
            .filter(|(key, _)| key.starts_with(prefix) && like_matches(like, key))
            .filter(|(_, rows)| {
                rows.iter().any(|&i| {
                    let s = &self.rows[i as usize];
                    s.captured_at_ms >= from_ms && s.captured_at_ms < to_ms
                })
            })
            .map(|(key, _)| key.clone())
            .collect()
    }
}

/// SQL `LIKE` with `%` (any run), `_` (one character) and `\` escaping the next character;
/// ASCII letters compare case-insensitively, as SQLite's `LIKE` does.
pub(super) fn like_matches(pattern: &str, text: &str) -> bool {
    #[derive(Clone, Copy)]
    enum Token {
        Any,
        One,
        Char(char),
    }
    let mut tokens = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        tokens.push(match c {
            '%' => Token::Any,
            '_' => Token::One,
            '\\' => Token::Char(chars.next().unwrap_or('\\')),
            c => Token::Char(c),
        });
    }
    let text: Vec<char> = text.chars().collect();
    // matched[j]: the tokens so far can consume exactly text[..j].
    let mut matched = vec![false; text.len() + 1];
    matched[0] = true;
    for token in tokens {
        let mut next = vec![false; text.len() + 1];
        match token {
            Token::Any => {
                let mut reachable = false;
                for j in 0..=text.len() {
                    reachable |= matched[j];
                    next[j] = reachable;
                }
            }
            Token::One => {
                next[1..].copy_from_slice(&matched[..text.len()]);
            }
            Token::Char(c) => {
                for j in 0..text.len() {
                    next[j + 1] = matched[j] && text[j].eq_ignore_ascii_case(&c);
                }
            }
        }
        matched = next;
    }
    matched[text.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use camtrail_model::ObjectClass;
    use proptest::prelude::*;

    fn sighting(id: u8, key: &str, camera: &str, at: i64) -> StoredSighting {
        StoredSighting {
            event_id: EventId([id; 16]),
            camera_id: camera.into(),
            captured_at_ms: at,
            subject_key: key.into(),
            plate: key.into(),
            plate_confidence: 0.9,
            object_class: ObjectClass::Vehicle,
            has_snapshot: false,
            attributes: Default::default(),
            plate_char_confidence: Vec::new(),
        }
    }

    #[test]
    fn like_follows_sql() {
        assert!(like_matches("粤B1_34%", "粤B12345"));
        assert!(like_matches("粤B1%", "粤B1"));
        assert!(!like_matches("粤B1_", "粤B1"));
        assert!(like_matches("a\\%b", "a%b"));
        assert!(!like_matches("a\\%b", "axb"));
        assert!(like_matches("%", ""));
        assert!(like_matches("AB%", "abc"));
        assert!(!like_matches("ab", "abc"));
    }

    proptest! {
        #[test]
        fn literal_patterns_match_only_themselves(text in "[A-Z0-9粤]{0,8}", other in "[A-Z0-9粤]{0,8}") {
            prop_assert!(like_matches(&text, &text));
            prop_assert_eq!(like_matches(&text, &other), text.eq_ignore_ascii_case(&other));
            let prefix_pattern = format!("{text}%");
            let longer = format!("{text}{other}");
            prop_assert!(like_matches(&prefix_pattern, &longer));
        }
    }

    #[test]
    fn lookups_respect_window_cursor_and_dedup() {
        let mut hot = Hot::default();
        assert!(hot.insert(sighting(1, "K1", "C1", 100)));
        assert!(!hot.insert(sighting(1, "K1", "C1", 100)));
        assert!(hot.insert(sighting(2, "K1", "C2", 200)));
        assert!(hot.insert(sighting(3, "K2", "C1", 300)));
        assert_eq!(hot.len(), 3);
        assert_eq!(hot.sightings(&["K1".into()], 0, 200).len(), 1);
        assert_eq!(
            hot.keys_seen(&["K1".into(), "K9".into()], 0, 1000),
            vec!["K1".to_string()]
        );
        let cursor = PassCursor {
            captured_at_ms: 100,
            event_id: EventId([1; 16]),
        };
        let passes = hot.passes(
            &["C1".into()],
            0,
            1000,
            &PassFilter::default(),
            Some(cursor),
        );
        assert_eq!(passes.len(), 1);
        assert_eq!(passes[0].subject_key, "K2");
        let mut keys = hot.keys_like("K", "K_", 0, 1000);
        keys.sort();
        assert_eq!(keys, vec!["K1".to_string(), "K2".to_string()]);
        hot.retain(|s| s.captured_at_ms >= 200);
        assert_eq!(hot.len(), 2);
        assert!(!hot.event_ids().any(|id| *id == EventId([1; 16])));
    }
}
