//! Watchlists (布控, a "disposition"): entries that say "alert me when this plate is seen",
//! each with an owner, a case, a reason and an end, and the [`Matcher`] every accepted
//! detection is checked against.
//!
//! An [`Entry`] is modelled on GA/T 1400's disposition object (`DispositionID`, `Title`,
//! `Reason`, `BeginTime`, `EndTime`, `Applicant`, `Priority`, `DispositionRange` …) so it can
//! be exported and imported in that shape. Its life: *requested* by an applicant, *approved*
//! by a supervisor who is not the applicant, *active* from its begin to its end time, then
//! *expired*; or *revoked* (with a reason) at any point. Active and expired are not stored:
//! [`Entry::status`] derives them from the clock, so an entry stops alerting at its end time
//! without anyone changing it.
//!
//! Matching cost does not grow with the number of entries: the matcher indexes exact plates
//! by key, fuzzy entries by every misreading of their plate (the shared [`MISREAD_MODEL`]),
//! and patterns by a piece of their longest literal run; one detection costs a few hash
//! look-ups (≈ 20 for an 8-character plate) and a glob check per pattern that shares a piece.

use rustc_hash::FxHashMap as HashMap;

use crate::misread::MISREAD_MODEL;
use crate::plate::{glob_matches, normalize, normalize_pattern};

/// One day in ms.
pub const DAY_MS: i64 = 86_400_000;
/// Longest an entry may run between approvals (renewable).
pub const MAX_VALIDITY_MS: i64 = 30 * DAY_MS;
/// Fewest literal characters a pattern entry must have.
pub const MIN_PATTERN_LITERALS: usize = 5;
/// Of them, at least this many in a row (the piece the matcher indexes it by).
pub const MIN_PATTERN_RUN: usize = 3;
/// Longest plate or pattern, in characters after normalisation.
pub const MAX_PLATE_CHARS: usize = 16;
/// Longest piece of a pattern's literal run the matcher indexes.
const GRAM: usize = 3;

/// The stored state of an entry (active and expired are derived from the clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryState {
    /// Asked for; not matching until a second person approves.
    Requested,
    /// Approved by a supervisor other than the applicant.
    Approved,
    /// Withdrawn (with a reason); never matches again.
    Revoked,
}

/// Where an entry is in its life at some instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Waiting for approval.
    Requested,
    /// Approved, before its begin time.
    Approved,
    /// Approved and within its window: matches.
    Active,
    /// Past its end time.
    Expired,
    /// Revoked.
    Revoked,
}

/// One watchlist entry.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Entry {
    /// `DispositionID`.
    pub entry_id: String,
    /// `Title`.
    pub title: String,
    /// Normalised plate key, or a pattern (`?` one character, `*` any run).
    pub plate: String,
    /// Also alert on likely misreadings of the plate (not for patterns).
    pub fuzzy: bool,
    /// The case it serves.
    pub case_id: String,
    /// `Reason`.
    pub reason: String,
    /// `Applicant`: who asked for it.
    pub applicant: String,
    /// `Priority`, 1 (highest) to 3.
    pub priority: u8,
    /// `BeginTime`, unix ms.
    pub valid_from_ms: i64,
    /// `EndTime`, unix ms (at most [`MAX_VALIDITY_MS`] after the begin).
    pub valid_until_ms: i64,
    /// Only these cameras (empty: every camera in scope of `districts`).
    pub cameras: Vec<String>,
    /// Only these districts (empty: everywhere).
    pub districts: Vec<String>,
    /// Who is told of a hit (user names).
    pub recipients: Vec<String>,
    /// Where hits are also POSTed, signed (a host on the node's allow-list).
    #[serde(default)]
    pub webhook_url: Option<String>,
    /// Stored state.
    pub state: EntryState,
    /// The approving supervisor.
    pub approved_by: Option<String>,
    /// Who revoked it, and why.
    pub revoked: Option<(String, String)>,
    /// When the latest change was made, unix ms.
    pub updated_at_ms: i64,
    /// 1 when requested, one more per change.
    pub version: u64,
}

/// Why an entry draft is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    /// Nothing left of the plate after normalisation.
    #[error("the plate is empty after normalisation")]
    EmptyPlate,
    /// A pattern with fewer than [`MIN_PATTERN_LITERALS`] literal characters, or without
    /// [`MIN_PATTERN_RUN`] of them in a row.
    #[error(
        "a pattern needs at least {MIN_PATTERN_LITERALS} characters that are not wildcards, \
         {MIN_PATTERN_RUN} of them in a row"
    )]
    PatternTooBroad,
    /// A plate or pattern longer than [`MAX_PLATE_CHARS`].
    #[error("plates and patterns are at most {MAX_PLATE_CHARS} characters")]
    TooLong,
    /// A fuzzy pattern (misreadings of a pattern would match too much).
    #[error("fuzzy matching is for exact plates, not patterns")]
    FuzzyPattern,
    /// End not after begin, or more than 30 days after it.
    #[error("the end must lie after the begin, at most 30 days later")]
    Window,
    /// Priority outside 1–3.
    #[error("priority is 1 (highest) to 3")]
    Priority,
    /// The applicant approving their own entry.
    #[error("an entry needs the approval of a supervisor other than its applicant")]
    SelfApproval,
}

impl Entry {
    /// Whether the plate is a pattern.
    pub fn is_pattern(&self) -> bool {
        self.plate.contains(['?', '*'])
    }

    /// Normalise and check a draft's plate, window and priority (scope and recipients are
    /// the service's, against the registry and the users).
    pub fn check(mut self) -> Result<Self, EntryError> {
        self.plate = if self.plate.contains(['?', '*', '？', '＊']) {
            normalize_pattern(&self.plate)
        } else {
            normalize(&self.plate)
        };
        if self.plate.is_empty() {
            return Err(EntryError::EmptyPlate);
        }
        if self.plate.chars().count() > MAX_PLATE_CHARS {
            return Err(EntryError::TooLong);
        }
        if self.is_pattern() {
            let literals = self
                .plate
                .chars()
                .filter(|c| !matches!(c, '?' | '*'))
                .count();
            let run = self
                .plate
                .split(['?', '*'])
                .map(|run| run.chars().count())
                .max()
                .unwrap_or(0);
            if literals < MIN_PATTERN_LITERALS || run < MIN_PATTERN_RUN {
                return Err(EntryError::PatternTooBroad);
            }
            if self.fuzzy {
                return Err(EntryError::FuzzyPattern);
            }
        }
        if self.valid_until_ms <= self.valid_from_ms
            || self.valid_until_ms - self.valid_from_ms > MAX_VALIDITY_MS
        {
            return Err(EntryError::Window);
        }
        if !(1..=3).contains(&self.priority) {
            return Err(EntryError::Priority);
        }
        Ok(self)
    }

    /// Approve as `supervisor` (who must not be the applicant).
    pub fn approve(&mut self, supervisor: &str) -> Result<(), EntryError> {
        if supervisor == self.applicant {
            return Err(EntryError::SelfApproval);
        }
        self.state = EntryState::Approved;
        self.approved_by = Some(supervisor.to_string());
        self.version += 1;
        Ok(())
    }

    /// Where the entry is at `now_ms`.
    pub fn status(&self, now_ms: i64) -> Status {
        match self.state {
            EntryState::Requested => Status::Requested,
            EntryState::Revoked => Status::Revoked,
            EntryState::Approved if now_ms < self.valid_from_ms => Status::Approved,
            EntryState::Approved if now_ms >= self.valid_until_ms => Status::Expired,
            EntryState::Approved => Status::Active,
        }
    }

    /// Whether a read at `camera_id` in `district` is within the entry's scope.
    pub fn in_scope(&self, camera_id: &str, district: &str) -> bool {
        (self.cameras.is_empty() || self.cameras.iter().any(|c| c == camera_id))
            && (self.districts.is_empty() || self.districts.iter().any(|d| d == district))
    }
}

/// How a detection matched an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchKind {
    /// The plate read is the entry's plate.
    Exact,
    /// The plate read is a likely misreading of the entry's plate.
    Fuzzy,
    /// The plate read matches the entry's pattern.
    Pattern,
}

/// One entry a detection matched.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit<'a> {
    /// The entry.
    pub entry: &'a Entry,
    /// How.
    pub kind: MatchKind,
    /// 1.0 for exact and pattern hits; for fuzzy ones the misread model's probability of
    /// this misreading, relative to the likeliest one.
    pub confidence: f32,
}

/// The entries, indexed for matching. Built once per change of the list (changes are
/// rare), shared by every matching thread.
#[derive(Debug, Default)]
pub struct Matcher {
    entries: Vec<Entry>,
    /// Plate key → the entries it hits: exact plates and every misreading of fuzzy ones,
    /// in one table (one look-up, one cache miss, per detection).
    keys: HashMap<String, Vec<(usize, MatchKind, f32)>>,
    patterns: HashMap<String, Vec<usize>>,
}

impl Matcher {
    /// Index the entries that may still match (not revoked, not requested, not expired at
    /// `now_ms`; whether one is active is checked again at each match).
    pub fn new(entries: impl IntoIterator<Item = Entry>, now_ms: i64) -> Self {
        let mut matcher = Self::default();
        for entry in entries {
            if !matches!(entry.status(now_ms), Status::Approved | Status::Active) {
                continue;
            }
            let at = matcher.entries.len();
            if entry.is_pattern() {
                matcher
                    .patterns
                    .entry(gram_of(&entry.plate))
                    .or_default()
                    .push(at);
            } else {
                matcher.keys.entry(entry.plate.clone()).or_default().push((
                    at,
                    MatchKind::Exact,
                    1.0,
                ));
                if entry.fuzzy {
                    let variants = MISREAD_MODEL.variants(&entry.plate);
                    let best = variants.first().map_or(1.0, |v| v.probability);
                    for variant in variants {
                        let confidence = (variant.probability / best) as f32;
                        matcher.keys.entry(variant.key).or_default().push((
                            at,
                            MatchKind::Fuzzy,
                            confidence,
                        ));
                    }
                }
            }
            matcher.entries.push(entry);
        }
        matcher
    }

    /// Entries indexed.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no entry is indexed.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether an entry might match a read of `key`: its key is listed, or a pattern is in
    /// force. One look-up, before the caller finds the read's district for [`Self::matches`].
    pub fn may_match(&self, key: &str) -> bool {
        !key.is_empty() && (!self.patterns.is_empty() || self.keys.contains_key(key))
    }

    /// The entries active at `now_ms` whose window holds `captured_at_ms` that the
    /// normalised plate `key`, read at `camera_id` in `district`, matches; pushed onto
    /// `hits` (cleared first), at most one hit per entry (exact before fuzzy before
    /// pattern). Both times count: an entry alerts only while it runs, and only on reads
    /// made while it ran.
    pub fn matches<'a>(&'a self, read: &Read<'_>, now_ms: i64, hits: &mut Vec<Hit<'a>>) {
        let Read {
            key,
            camera_id,
            district,
            captured_at_ms,
        } = *read;
        hits.clear();
        if key.is_empty() || self.entries.is_empty() {
            return;
        }
        let mut push = |at: usize, kind: MatchKind, confidence: f32| {
            let entry = &self.entries[at];
            if entry.status(now_ms) == Status::Active
                && (entry.valid_from_ms..entry.valid_until_ms).contains(&captured_at_ms)
                && entry.in_scope(camera_id, district)
                && !hits.iter().any(|h: &Hit<'_>| std::ptr::eq(h.entry, entry))
            {
                hits.push(Hit {
                    entry,
                    kind,
                    confidence,
                });
            }
        };
        if let Some(listed) = self.keys.get(key) {
            // Exact hits first, so an entry both exact and fuzzy here counts as exact.
            for &(at, kind, confidence) in listed.iter().filter(|l| l.1 == MatchKind::Exact) {
                push(at, kind, confidence);
            }
            for &(at, kind, confidence) in listed.iter().filter(|l| l.1 != MatchKind::Exact) {
                push(at, kind, confidence);
            }
        }
        if self.patterns.is_empty() {
            return;
        }
        let chars: Vec<char> = key.chars().collect();
        let mut gram = String::with_capacity(GRAM * 4);
        for start in 0..chars.len() {
            for len in 1..=GRAM.min(chars.len() - start) {
                gram.clear();
                gram.extend(&chars[start..start + len]);
                for &at in self.patterns.get(gram.as_str()).into_iter().flatten() {
                    if glob_matches(&self.entries[at].plate, key) {
                        push(at, MatchKind::Pattern, 1.0);
                    }
                }
            }
        }
    }
}

/// The piece of a pattern the matcher indexes it by: the last [`GRAM`] characters of its
/// longest literal run, the later run on a tie (any plate it matches contains that piece;
/// the end of a plate varies more than its province-and-city start, so few patterns share
/// a piece).
fn gram_of(pattern: &str) -> String {
    let run: Vec<char> = pattern
        .split(['?', '*'])
        .fold("", |best, run| {
            if run.chars().count() >= best.chars().count() {
                run
            } else {
                best
            }
        })
        .chars()
        .collect();
    run[run.len().saturating_sub(GRAM)..].iter().collect()
}

/// One plate read, as the matcher needs it.
#[derive(Debug, Clone, Copy)]
pub struct Read<'a> {
    /// The normalised plate key.
    pub key: &'a str,
    /// Where.
    pub camera_id: &'a str,
    /// The camera's district.
    pub district: &'a str,
    /// When it was captured, unix ms.
    pub captured_at_ms: i64,
}

/// What a subscriber receives for one hit.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Alert {
    /// The entry (`DispositionID`).
    pub entry_id: String,
    /// Its title.
    pub title: String,
    /// Its case.
    pub case_id: String,
    /// Its priority (1 highest).
    pub priority: u8,
    /// The entry's applicant and recipients: who may see the hit.
    pub audience: Vec<String>,
    /// How the read matched.
    pub kind: MatchKind,
    /// 1.0, or the misreading's relative likelihood.
    pub confidence: f32,
    /// The detection (32 hex digits): its snapshot is `/v1/snapshots/{event_id}.jpg`.
    pub event_id: String,
    /// The plate as read (normalised).
    pub plate_read: String,
    /// Where.
    pub camera_id: String,
    /// The camera's district.
    pub district: String,
    /// The camera's position.
    pub lat: f64,
    /// The camera's position.
    pub lon: f64,
    /// Capture time, unix ms.
    pub captured_at_ms: i64,
    /// Whether a snapshot is stored.
    pub has_snapshot: bool,
    /// When the hit was found, unix ms.
    pub matched_at_ms: i64,
    /// Found by the check of stored reads when the entry was approved, not live.
    pub past: bool,
    /// The entry's webhook (delivery only: not sent to subscribers, not stored).
    #[serde(skip)]
    pub webhook_url: Option<String>,
}

/// Whether a person has looked at a hit's snapshot and what they found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Nobody has looked yet: a lead, not grounds to act.
    Unconfirmed,
    /// The snapshot shows the listed vehicle.
    Confirmed,
    /// It does not (a misread, a look-alike, a cloned plate).
    Rejected,
}

/// A stored hit and its review.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HitRecord {
    /// `{entry_id}/{event_id}`: one hit per entry and detection, however often the
    /// detection was delivered.
    pub hit_id: String,
    /// The hit as sent.
    #[serde(flatten)]
    pub alert: Alert,
    /// The review.
    pub outcome: Outcome,
    /// Who reviewed it.
    pub reviewed_by: Option<String>,
    /// Why (what the snapshot showed).
    pub review_reason: Option<String>,
    /// When, unix ms.
    pub reviewed_at_ms: Option<i64>,
    /// 1 when found, 2 once reviewed.
    pub version: u64,
}

impl HitRecord {
    /// The id of `alert`'s hit: `{entry_id}/{event_id}`.
    pub fn id(alert: &Alert) -> String {
        format!("{}/{}", alert.entry_id, alert.event_id)
    }

    /// A new, unconfirmed hit.
    pub fn new(alert: Alert) -> Self {
        Self {
            hit_id: Self::id(&alert),
            alert,
            outcome: Outcome::Unconfirmed,
            reviewed_by: None,
            review_reason: None,
            reviewed_at_ms: None,
            version: 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NOW: i64 = 1_764_158_400_000;

    fn draft(plate: &str) -> Entry {
        Entry {
            entry_id: format!("W-{plate}"),
            title: "stolen car".into(),
            plate: plate.into(),
            fuzzy: false,
            case_id: "C-1".into(),
            reason: "stolen on 1 March".into(),
            applicant: "ivy".into(),
            priority: 2,
            valid_from_ms: NOW,
            valid_until_ms: NOW + 7 * DAY_MS,
            cameras: Vec::new(),
            districts: Vec::new(),
            recipients: vec!["ivy".into()],
            webhook_url: None,
            state: EntryState::Requested,
            approved_by: None,
            revoked: None,
            updated_at_ms: NOW,
            version: 1,
        }
    }

    fn approved(plate: &str) -> Entry {
        let mut entry = draft(plate).check().expect("valid");
        entry.approve("sam").expect("approve");
        entry
    }

    fn kinds(matcher: &Matcher, key: &str, at: i64) -> Vec<(String, MatchKind)> {
        let mut hits = Vec::new();
        let read = Read {
            key,
            camera_id: "cam-1",
            district: "Futian",
            captured_at_ms: at,
        };
        matcher.matches(&read, at, &mut hits);
        // The pre-check never turns away a read that hits.
        assert!(
            hits.is_empty() || matcher.may_match(key),
            "may_match({key})"
        );
        hits.iter()
            .map(|h| (h.entry.entry_id.clone(), h.kind))
            .collect()
    }

    #[test]
    fn an_entry_matches_only_once_approved_by_someone_else_and_within_its_window() {
        let requested = draft("粤B12345").check().expect("valid");
        assert_eq!(requested.plate, "粤B12345");
        let matcher = Matcher::new([requested.clone()], NOW);
        assert!(kinds(&matcher, "粤B12345", NOW + 1).is_empty(), "requested");
        let mut own = requested.clone();
        assert_eq!(own.approve("ivy"), Err(EntryError::SelfApproval));
        let matcher = Matcher::new([approved("粤B·12345")], NOW);
        assert_eq!(
            kinds(&matcher, "粤B12345", NOW + 1),
            [("W-粤B·12345".to_string(), MatchKind::Exact)]
        );
        assert!(
            kinds(&matcher, "粤B12345", NOW - 1).is_empty(),
            "before begin"
        );
        assert!(
            kinds(&matcher, "粤B12345", NOW + 7 * DAY_MS).is_empty(),
            "expired at its end time"
        );
        let mut revoked = approved("粤B12345");
        revoked.state = EntryState::Revoked;
        assert!(kinds(&Matcher::new([revoked], NOW), "粤B12345", NOW + 1).is_empty());
    }

    #[test]
    fn drafts_are_refused_for_broad_patterns_long_windows_and_bad_priorities() {
        assert_eq!(draft("粤B1*").check(), Err(EntryError::PatternTooBroad));
        assert_eq!(
            draft("粤B?2?4?6").check(),
            Err(EntryError::PatternTooBroad),
            "five literals but no three in a row"
        );
        assert_eq!(
            draft("粤B123456789012345").check(),
            Err(EntryError::TooLong)
        );
        assert_eq!(gram_of("粤B12*45"), "B12");
        assert_eq!(gram_of("粤B*12345"), "345");
        assert_eq!(draft("··").check(), Err(EntryError::EmptyPlate));
        let mut fuzzy = draft("粤B12*5");
        fuzzy.fuzzy = true;
        assert_eq!(fuzzy.check(), Err(EntryError::FuzzyPattern));
        let mut long = draft("粤B12345");
        long.valid_until_ms = NOW + 31 * DAY_MS;
        assert_eq!(long.check(), Err(EntryError::Window));
        let mut backwards = draft("粤B12345");
        backwards.valid_until_ms = NOW;
        assert_eq!(backwards.check(), Err(EntryError::Window));
        let mut priority = draft("粤B12345");
        priority.priority = 0;
        assert_eq!(priority.check(), Err(EntryError::Priority));
    }

    #[test]
    fn fuzzy_entries_match_misreadings_and_patterns_their_plates_in_scope() {
        let mut fuzzy = draft("粤B12345");
        fuzzy.fuzzy = true;
        let mut fuzzy = fuzzy.check().expect("valid");
        fuzzy.approve("sam").expect("approve");
        let mut scoped = approved("粤S1?34*");
        scoped.entry_id = "W-scoped".into();
        scoped.districts = vec!["Nanshan".into()];
        let matcher = Matcher::new([fuzzy, approved("粤A*789"), scoped], NOW);
        assert_eq!(
            kinds(&matcher, "粤B1Z345", NOW + 1),
            [("W-粤B12345".to_string(), MatchKind::Fuzzy)],
            "2 read as Z"
        );
        assert_eq!(
            kinds(&matcher, "粤B12345", NOW + 1),
            [("W-粤B12345".to_string(), MatchKind::Exact)],
            "exact wins over fuzzy, one hit per entry"
        );
        assert_eq!(
            kinds(&matcher, "粤A56789", NOW + 1),
            [("W-粤A*789".to_string(), MatchKind::Pattern)]
        );
        assert!(kinds(&matcher, "粤A56788", NOW + 1).is_empty());
        assert!(
            kinds(&matcher, "粤S12345", NOW + 1).is_empty(),
            "out of its district"
        );
        // With patterns in force any read may match; without, only listed keys.
        assert!(matcher.may_match("粤Z00000"));
        let plain = Matcher::new([approved("粤B12345")], NOW);
        assert!(plain.may_match("粤B12345"));
        assert!(!plain.may_match("粤B12346"));
        assert!(!plain.may_match(""));
    }

    proptest! {
        /// The index finds exactly what checking every active entry one by one finds.
        #[test]
        fn the_index_agrees_with_a_scan(
            patterns in proptest::collection::vec("[AB12]{1,3}[?*][AB12]{3,5}", 1..20),
            keys in proptest::collection::vec("[AB12]{4,8}", 1..50),
        ) {
            let entries: Vec<Entry> = patterns
                .iter()
                .enumerate()
                .filter_map(|(i, p)| {
                    let mut e = draft(p);
                    e.entry_id = format!("W{i}");
                    let mut e = e.check().ok()?;
                    e.approve("sam").ok()?;
                    Some(e)
                })
                .collect();
            let matcher = Matcher::new(entries.clone(), NOW);
            for key in &keys {
                let mut found: Vec<String> =
                    kinds(&matcher, key, NOW + 1).into_iter().map(|(id, _)| id).collect();
                found.sort();
                let mut expected: Vec<String> = entries
                    .iter()
                    .filter(|e| e.plate == *key || (e.is_pattern() && glob_matches(&e.plate, key)))
                    .map(|e| e.entry_id.clone())
                    .collect();
                expected.sort();
                prop_assert_eq!(found, expected, "key {}", key);
            }
        }
    }
}
