//! Plausible misreadings of a plate key, for searches with misread tolerance.
//!
//! The misreadings and their probabilities come from the one misread table,
//! [`camtrail_model::misread::MISREAD_MODEL`], which the synthetic city also draws its
//! misreads from:
//!
//! - **substitution**: one character read as a confusable one (0/D/Q, 8/B, 5/S, 2/Z, 1/7,
//!   6/G, 4/A);
//! - **dropped**: one character missed;
//! - **extra**: one character too many — a doubled character, a stray `1` (plate frames,
//!   rivets and bolts read as a vertical stroke), or any other plate character.
//!
//! Only Latin letters and digits after the first character are touched: the first character
//! is the province abbreviation, which readers classify separately and rarely get wrong, and
//! changing it would jump to another province's plate population.

use camtrail_model::misread::{MISREAD_MODEL, MisreadKind};

/// Match confidence of a sighting stored under a one-character substitution of the key.
/// Substitutions are the most common misread (about 70% of them), hence the highest value.
pub const SUBSTITUTION_CONFIDENCE: f32 = 0.8;
/// Match confidence of a sighting stored with one character of the key missing.
pub const DROPPED_CONFIDENCE: f32 = 0.6;
/// Match confidence of a sighting stored with one character more than the key.
pub const EXTRA_CONFIDENCE: f32 = 0.6;

/// Variants shorter than this (in characters) are not searched: a province alone would
/// match far too much.
const MIN_VARIANT_CHARS: usize = 2;

/// Plausible misreadings of the normalised plate `key`, each with its match confidence
/// (by kind: [`SUBSTITUTION_CONFIDENCE`], [`DROPPED_CONFIDENCE`], [`EXTRA_CONFIDENCE`]), the
/// likeliest first by the misread table's probability (ties by key), at most `max_variants`.
///
/// The first (province) character is never changed, the result never contains `key` itself
/// and holds each variant once; the output is a pure function of the arguments.
///
/// ```
/// use camtrail_query::track::misread_variants;
/// let variants = misread_variants("粤S12345", 1_000);
/// assert!(variants.contains(&("粤S1Z345".to_string(), 0.8)));
/// assert!(variants.contains(&("粤S1345".to_string(), 0.6)));
/// assert!(variants.contains(&("粤S12K345".to_string(), 0.6)));
/// assert!(variants.iter().all(|(v, _)| v.starts_with('粤')));
/// ```
pub fn misread_variants(key: &str, max_variants: usize) -> Vec<(String, f32)> {
    MISREAD_MODEL
        .variants(key)
        .into_iter()
        .filter(|variant| variant.key.chars().count() >= MIN_VARIANT_CHARS)
        .take(max_variants)
        .map(|variant| (variant.key, kind_confidence(variant.kind)))
        .collect()
}

/// The match confidence shown for a misread of `kind`.
pub fn kind_confidence(kind: MisreadKind) -> f32 {
    match kind {
        MisreadKind::Substitution => SUBSTITUTION_CONFIDENCE,
        MisreadKind::Deletion => DROPPED_CONFIDENCE,
        MisreadKind::Insertion => EXTRA_CONFIDENCE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use camtrail_model::plate::{CONFUSION_GROUPS, confusions, normalize};
    use proptest::prelude::*;

    fn keys(variants: &[(String, f32)]) -> Vec<&str> {
        variants.iter().map(|(v, _)| v.as_str()).collect()
    }

    #[test]
    fn substitutions_come_from_the_confusion_table() {
        let variants = misread_variants("粤S12345", usize::MAX);
        let found = keys(&variants);
        for expected in ["粤S1Z345", "粤S72345", "粤S123A5", "粤S1234S", "粤512345"] {
            assert!(
                found.contains(&expected),
                "{expected} missing from {found:?}"
            );
        }
        // 'I' looks like '1' but is not in the table (and never on Chinese plates).
        assert!(!found.contains(&"粤SI2345"));
        assert!(!found.contains(&"粤S12345"), "never the key itself");
    }

    #[test]
    fn drops_and_extras_have_lower_confidence() {
        let variants = misread_variants("粤B12345", usize::MAX);
        let confidence = |key: &str| variants.iter().find(|(v, _)| v == key).map(|(_, c)| *c);
        assert_eq!(confidence("粤B1Z345"), Some(SUBSTITUTION_CONFIDENCE));
        assert_eq!(confidence("粤B1345"), Some(DROPPED_CONFIDENCE));
        assert_eq!(confidence("粤B122345"), Some(EXTRA_CONFIDENCE), "doubled");
        assert_eq!(confidence("粤B123145"), Some(EXTRA_CONFIDENCE), "stray 1");
        assert_eq!(
            confidence("粤B123K45"),
            Some(EXTRA_CONFIDENCE),
            "any character"
        );
        assert_eq!(
            confidence("粤12345"),
            Some(DROPPED_CONFIDENCE),
            "authority letter"
        );
        assert_eq!(confidence("B12345"), None, "province never dropped");
    }

    #[test]
    fn best_first_and_capped() {
        let variants = misread_variants("粤B12345", 3);
        assert_eq!(variants.len(), 3);
        assert!(variants.iter().all(|&(_, c)| c == SUBSTITUTION_CONFIDENCE));
        let all = misread_variants("粤B12345", usize::MAX);
        assert!(
            all.windows(2).all(|w| w[0].1 >= w[1].1),
            "substitutions first"
        );
        assert_eq!(&all[..3], &variants[..]);
    }

    #[test]
    fn short_and_empty_keys() {
        assert!(misread_variants("", 10).is_empty());
        assert!(misread_variants("粤", 10).is_empty());
        let short = misread_variants("粤8", 100);
        assert_eq!(short[0], ("粤B".to_string(), SUBSTITUTION_CONFIDENCE));
        assert!(
            short.iter().all(|(v, _)| v.chars().count() >= 2),
            "{short:?}"
        );
        assert!(misread_variants("粤B12345", 0).is_empty());
    }

    #[test]
    fn non_ascii_suffixes_are_left_alone() {
        let variants = misread_variants("粤B1234学", usize::MAX);
        assert!(variants.iter().all(|(v, _)| v.ends_with('学')));
    }

    proptest! {
        #[test]
        fn variants_keep_the_province_and_differ_from_the_key(
            raw in "[粤京沪A][A-Z0-9]{1,7}", max in 0usize..64,
        ) {
            let key = normalize(&raw);
            let variants = misread_variants(&key, max);
            prop_assert!(variants.len() <= max);
            let province = key.chars().next();
            for (i, (variant, confidence)) in variants.iter().enumerate() {
                prop_assert_eq!(variant.chars().next(), province);
                prop_assert_ne!(variant, &key);
                prop_assert!(*confidence > 0.0 && *confidence < 1.0);
                prop_assert!(!variants[..i].iter().any(|(v, _)| v == variant), "duplicate");
                let length_change = variant.chars().count() as i64 - key.chars().count() as i64;
                prop_assert!(length_change.abs() <= 1);
            }
        }

        #[test]
        fn every_single_substitution_is_found(raw in "粤[A-Z0-9]{6}", position in 1usize..7) {
            let key = normalize(&raw);
            let chars: Vec<char> = key.chars().collect();
            let variants = misread_variants(&key, usize::MAX);
            for other in confusions(chars[position]) {
                let mut swapped = chars.clone();
                swapped[position] = other;
                let swapped: String = swapped.into_iter().collect();
                prop_assert!(variants.iter().any(|(v, _)| *v == swapped), "{}", swapped);
            }
            let in_table = CONFUSION_GROUPS.iter().any(|g| g.contains(&chars[position]));
            prop_assert_eq!(in_table, confusions(chars[position]).next().is_some());
        }
    }
}
