//! How plate readers get plates wrong, as one table of probabilities: the synthetic city draws
//! its misreads from it (`camtrail_city::misread`) and track search enumerates and weighs the
//! misreadings of an asked plate with it (`camtrail_query::track`), so both sides agree on
//! what a misread is and how likely each one is.
//!
//! A misread changes exactly one character after the province abbreviation (readers classify
//! the province separately and rarely get it wrong):
//!
//! - **substitution** (share [`MisreadModel::substitution`]): a character in a confusion group
//!   ([`crate::plate::CONFUSION_GROUPS`]: 0/D/Q, 8/B, 5/S, 2/Z, 1/7, 6/G, 4/A) read as another
//!   member of its group — the position uniformly among the confusable ones, the replacement
//!   uniformly among the group's other members;
//! - **deletion** (share [`MisreadModel::deletion`]): one Latin letter or digit missed, the
//!   position uniform;
//! - **insertion** (the rest): one character read before a Latin letter or digit, the position
//!   uniform; the character is the one it stands before (a doubled character) with
//!   [`MisreadModel::insert_doubled`], the stray [`MisreadModel::stray`] (a bolt or frame
//!   edge read as a vertical stroke) with [`MisreadModel::insert_stray`], else any character of
//!   [`PLATE_ALPHABET`] uniformly.
//!
//! A plate with no confusable character cannot be substituted: that share goes to deletion and
//! insertion evenly. [`MisreadModel::variants`] gives every possible misreading with its
//! probability *given that a misread happened*; the probabilities of one plate's variants add
//! up to 1 (paths that give the same text are summed).

use std::collections::HashMap;

use crate::plate::confusions;

/// Characters of Chinese civil plates after the province: digits and Latin capitals without I
/// and O (34 characters). An inserted "any character" is drawn from these.
pub const PLATE_ALPHABET: &str = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ";

/// The shares and choices of the misread catalogue (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MisreadModel {
    /// Share of misreads that substitute a confusable character.
    pub substitution: f64,
    /// Share of misreads that drop a character; insertion takes `1 − substitution − deletion`.
    pub deletion: f64,
    /// Among insertions, the share that doubles the following character.
    pub insert_doubled: f64,
    /// Among insertions, the share that inserts [`MisreadModel::stray`].
    pub insert_stray: f64,
    /// The character readers most often add out of nothing.
    pub stray: char,
}

/// The one model camtrail uses.
pub const MISREAD_MODEL: MisreadModel = MisreadModel {
    substitution: 0.70,
    deletion: 0.15,
    insert_doubled: 0.4,
    insert_stray: 0.3,
    stray: '1',
};

/// Kinds of misread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MisreadKind {
    /// One character read as a confusable one.
    Substitution,
    /// One character missed.
    Deletion,
    /// One character too many.
    Insertion,
}

/// One misreading of a plate key.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    /// The key as misread.
    pub key: String,
    /// The likeliest kind of misread that produces it.
    pub kind: MisreadKind,
    /// Probability of reading exactly this key, given that the plate was misread.
    pub probability: f64,
}

/// One step of a misread: what to do at which character position.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Edit {
    /// Replace the character at `position` with `with`.
    Substitute {
        /// Index of the character (in chars, not bytes).
        position: usize,
        /// The replacement.
        with: char,
    },
    /// Remove the character at `position`.
    Delete {
        /// Index of the character.
        position: usize,
    },
    /// Insert `char` before the character at `position`.
    Insert {
        /// Index of the character the new one goes before.
        position: usize,
        /// The inserted character.
        char: char,
    },
}

impl MisreadModel {
    /// Share of insertions that insert a uniformly chosen alphabet character.
    pub fn insert_any(&self) -> f64 {
        (1.0 - self.insert_doubled - self.insert_stray).max(0.0)
    }

    /// The shares of (substitution, deletion, insertion) for a plate with or without a
    /// confusable character.
    pub fn shares(&self, has_confusable: bool) -> (f64, f64, f64) {
        let insertion = (1.0 - self.substitution - self.deletion).max(0.0);
        if has_confusable {
            (self.substitution, self.deletion, insertion)
        } else {
            let half = self.substitution / 2.0;
            (0.0, self.deletion + half, insertion + half)
        }
    }

    /// Every single-edit misreading of `chars` (the first is the province and never changes)
    /// with its probability given a misread, one entry per path (several paths may give the
    /// same text). Calls `visit(edit, kind, probability)`.
    pub fn for_each_edit(&self, chars: &[char], mut visit: impl FnMut(Edit, MisreadKind, f64)) {
        let confusable: Vec<usize> = (1..chars.len())
            .filter(|&p| confusions(chars[p]).next().is_some())
            .collect();
        let readable: Vec<usize> = (1..chars.len())
            .filter(|&p| chars[p].is_ascii_alphanumeric())
            .collect();
        let (substitution, deletion, insertion) = self.shares(!confusable.is_empty());
        for &position in &confusable {
            let options = confusions(chars[position]).count() as f64;
            for with in confusions(chars[position]) {
                let p = substitution / confusable.len() as f64 / options;
                visit(
                    Edit::Substitute { position, with },
                    MisreadKind::Substitution,
                    p,
                );
            }
        }
        if readable.is_empty() {
            // Nothing to drop or insert before: the reader adds a stray at the end.
            visit(
                Edit::Insert {
                    position: chars.len(),
                    char: self.stray,
                },
                MisreadKind::Insertion,
                1.0,
            );
            return;
        }
        let per_position = 1.0 / readable.len() as f64;
        let alphabet = PLATE_ALPHABET.chars().count() as f64;
        for &position in &readable {
            visit(
                Edit::Delete { position },
                MisreadKind::Deletion,
                deletion * per_position,
            );
            // The alphabet, plus the doubled and stray characters when they are not in it.
            let mut inserted: Vec<char> = PLATE_ALPHABET.chars().collect();
            for extra in [chars[position], self.stray] {
                if !inserted.contains(&extra) {
                    inserted.push(extra);
                }
            }
            for char in inserted {
                let mut share = if PLATE_ALPHABET.contains(char) {
                    self.insert_any() / alphabet
                } else {
                    0.0
                };
                if char == chars[position] {
                    share += self.insert_doubled;
                }
                if char == self.stray {
                    share += self.insert_stray;
                }
                visit(
                    Edit::Insert { position, char },
                    MisreadKind::Insertion,
                    insertion * per_position * share,
                );
            }
        }
    }

    /// Every misreading of the normalised plate `key`, likeliest first (ties by key), each
    /// once with the summed probability of the paths that give it. Never contains `key`.
    pub fn variants(&self, key: &str) -> Vec<Variant> {
        let chars: Vec<char> = key.chars().collect();
        if chars.len() < 2 {
            return Vec::new();
        }
        let mut found: HashMap<String, (MisreadKind, f64, f64)> = HashMap::new();
        self.for_each_edit(&chars, |edit, kind, probability| {
            if probability <= 0.0 {
                return;
            }
            let text = apply(&chars, edit);
            if text == key {
                return;
            }
            let entry = found.entry(text).or_insert((kind, 0.0, 0.0));
            entry.1 += probability;
            if probability > entry.2 {
                entry.0 = kind;
                entry.2 = probability;
            }
        });
        let mut variants: Vec<Variant> = found
            .into_iter()
            .map(|(key, (kind, probability, _))| Variant {
                key,
                kind,
                probability,
            })
            .collect();
        variants.sort_by(|a, b| {
            b.probability
                .total_cmp(&a.probability)
                .then_with(|| a.key.cmp(&b.key))
        });
        variants
    }

    /// Probability that a reader who misreads `true_key` reads exactly `read_key` (0 when no
    /// single misread turns one into the other).
    pub fn probability(&self, true_key: &str, read_key: &str) -> f64 {
        let chars: Vec<char> = true_key.chars().collect();
        let length_change = read_key.chars().count() as i64 - chars.len() as i64;
        if chars.len() < 2 || length_change.abs() > 1 || read_key == true_key {
            return 0.0;
        }
        let mut total = 0.0;
        self.for_each_edit(&chars, |edit, _, probability| {
            if apply(&chars, edit) == read_key {
                total += probability;
            }
        });
        total
    }
}

/// `chars` with `edit` applied.
pub fn apply(chars: &[char], edit: Edit) -> String {
    let mut out = String::with_capacity(chars.len() * 4 + 4);
    for (index, &c) in chars.iter().enumerate() {
        match edit {
            Edit::Substitute { position, with } if position == index => out.push(with),
            Edit::Delete { position } if position == index => {}
            Edit::Insert { position, char } if position == index => {
                out.push(char);
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    if let Edit::Insert { position, char } = edit
        && position >= chars.len()
    {
        out.push(char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn probability_of(variants: &[Variant], key: &str) -> Option<f64> {
        variants
            .iter()
            .find(|v| v.key == key)
            .map(|v| v.probability)
    }

    #[test]
    fn a_plates_variants_add_up_to_one() {
        for key in ["粤B12345", "粤BXXXXX", "粤B", "京AD12345", "粤B1234学"] {
            let variants = MISREAD_MODEL.variants(key);
            let total: f64 = variants.iter().map(|v| v.probability).sum();
            // Only paths that give the key itself are left out (none: every edit changes it).
            assert!((total - 1.0).abs() < 1e-9, "{key}: {total}");
        }
    }

    #[test]
    fn substitutions_are_likeliest_and_insertions_take_any_character() {
        let variants = MISREAD_MODEL.variants("粤B12345");
        assert_eq!(variants[0].kind, MisreadKind::Substitution);
        // Five confusable positions (B, 1, 2, 4, 5), each with one partner except none here
        // with two: 0.7 / 5 each.
        let swap = probability_of(&variants, "粤B1Z345").expect("2→Z");
        assert!((swap - 0.7 / 5.0).abs() < 1e-12, "{swap}");
        // Any character may be inserted, not only a stray 1 or a doubled one.
        let any = probability_of(&variants, "粤B12X345").expect("X inserted");
        let stray = probability_of(&variants, "粤B123145").expect("stray 1 before 4");
        assert!(any > 0.0 && stray > any * 5.0, "{any} {stray}");
        assert!(probability_of(&variants, "粤B1345").is_some(), "deletion");
        assert!(
            probability_of(&variants, "粤B12345").is_none(),
            "never the key"
        );
        assert!(variants.iter().all(|v| v.key.starts_with('粤')));
    }

    #[test]
    fn probability_agrees_with_variants() {
        let variants = MISREAD_MODEL.variants("粤B12370");
        for variant in &variants {
            let direct = MISREAD_MODEL.probability("粤B12370", &variant.key);
            assert!(
                (direct - variant.probability).abs() < 1e-12,
                "{}",
                variant.key
            );
        }
        assert_eq!(MISREAD_MODEL.probability("粤B12370", "粤B99999"), 0.0);
        assert_eq!(MISREAD_MODEL.probability("粤B12370", "粤B12370"), 0.0);
    }

    #[test]
    fn a_plate_without_confusable_characters_is_dropped_or_extended() {
        let variants = MISREAD_MODEL.variants("粤XXXXX");
        assert!(variants.iter().all(|v| v.kind != MisreadKind::Substitution));
        assert!(!variants.is_empty());
    }

    proptest! {
        #[test]
        fn variants_are_one_edit_away_and_sum_to_one(raw in "[粤京][A-Z0-9]{1,7}") {
            let variants = MISREAD_MODEL.variants(&raw);
            let total: f64 = variants.iter().map(|v| v.probability).sum();
            prop_assert!((total - 1.0).abs() < 1e-9);
            for v in &variants {
                prop_assert_ne!(&v.key, &raw);
                let change = v.key.chars().count() as i64 - raw.chars().count() as i64;
                prop_assert!(change.abs() <= 1);
                prop_assert_eq!(v.key.chars().next(), raw.chars().next());
            }
        }
    }
}
