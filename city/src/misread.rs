//! How plate readers get plates wrong: a character swapped for one it is commonly confused
//! with ([`camtrail_model::plate::CONFUSION_GROUPS`]: 0/D/Q, 8/B, 5/S, 2/Z, 1/7, …), a
//! character dropped, or an extra character read (a doubled character or a stray "1").
//!
//! Every misread differs from the true plate after normalisation, so a measured misread
//! rate (read key ≠ true key) estimates the configured one.

use camtrail_model::plate::confusions;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Share of misreads that swap a character for a confusable one.
pub const SUBSTITUTION_SHARE: f64 = 0.7;
/// Share of misreads that drop a character (the rest add one).
pub const DROP_SHARE: f64 = 0.15;

/// Kinds of misread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MisreadKind {
    /// One character read as a confusable one.
    Substitution,
    /// One character missed.
    Dropped,
    /// One character too many.
    Extra,
}

/// Write a misreading of `plate` (display form, e.g. "粤B·12345") into `out` (cleared
/// first) and say what kind it was. The province abbreviation is never touched.
pub fn misread(plate: &str, rng: &mut ChaCha8Rng, out: &mut String) -> MisreadKind {
    out.clear();
    let roll: f64 = rng.random();
    if roll < SUBSTITUTION_SHARE && substitute(plate, rng, out) {
        return MisreadKind::Substitution;
    }
    out.clear();
    // Characters after the province that are not separators can be dropped or doubled.
    let readable = plate
        .chars()
        .skip(1)
        .filter(|c| c.is_ascii_alphanumeric())
        .count();
    if readable == 0 {
        out.push_str(plate);
        out.push('1');
        return MisreadKind::Extra;
    }
    let target = rng.random_range(0..readable);
    // A substitution that found nothing to swap becomes a drop or an extra, evenly.
    let drop = if roll < SUBSTITUTION_SHARE {
        rng.random_bool(0.5)
    } else {
        roll < SUBSTITUTION_SHARE + DROP_SHARE
    };
    let mut seen = 0;
    for (position, c) in plate.chars().enumerate() {
        let candidate = position > 0 && c.is_ascii_alphanumeric();
        if candidate && seen == target {
            if !drop {
                out.push(if rng.random_bool(0.5) { c } else { '1' });
                out.push(c);
            }
        } else {
            out.push(c);
        }
        seen += usize::from(candidate);
    }
    if drop {
        MisreadKind::Dropped
    } else {
        MisreadKind::Extra
    }
}

/// Swap one confusable character (after the province) for a confusion; false when the
/// plate has no confusable character.
fn substitute(plate: &str, rng: &mut ChaCha8Rng, out: &mut String) -> bool {
    let confusable = |c: char| confusions(c).next().is_some();
    let count = plate.chars().skip(1).filter(|&c| confusable(c)).count();
    if count == 0 {
        return false;
    }
    let target = rng.random_range(0..count);
    let mut seen = 0;
    for (position, c) in plate.chars().enumerate() {
        let candidate = position > 0 && confusable(c);
        if candidate && seen == target {
            let options = confusions(c).count();
            out.push(confusions(c).nth(rng.random_range(0..options)).unwrap_or(c));
        } else {
            out.push(c);
        }
        seen += usize::from(candidate);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plates::PlateGenerator;
    use camtrail_model::plate::normalize;
    use rand::SeedableRng;

    #[test]
    fn misreads_always_change_the_key() {
        let generator = PlateGenerator {
            home_province: '粤',
            home_authority: 'B',
            other_province_share: 0.1,
        };
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let (mut plate, mut read) = (String::new(), String::new());
        let mut kinds = [0usize; 3];
        for _ in 0..20_000 {
            plate.clear();
            generator.generate(&mut rng, &mut plate);
            let kind = misread(&plate, &mut rng, &mut read);
            assert_ne!(normalize(&read), normalize(&plate), "{plate} → {read}");
            assert_eq!(read.chars().next(), plate.chars().next());
            kinds[kind as usize] += 1;
            let length_change = read.chars().count() as i64 - plate.chars().count() as i64;
            let expected = match kind {
                MisreadKind::Substitution => 0,
                MisreadKind::Dropped => -1,
                MisreadKind::Extra => 1,
            };
            assert_eq!(length_change, expected, "{plate} → {read}");
        }
        let substitution_share = kinds[0] as f64 / 20_000.0;
        assert!(
            substitution_share > 0.6 && substitution_share < 0.72,
            "{kinds:?}"
        );
        assert!(kinds[1] > 1000 && kinds[2] > 1000, "{kinds:?}");
    }

    #[test]
    fn substitutions_use_the_confusion_groups() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut read = String::new();
        for _ in 0..200 {
            if misread("粤B·XXXX8", &mut rng, &mut read) == MisreadKind::Substitution {
                assert!(read == "粤8·XXXX8" || read == "粤B·XXXXB", "{read}");
            }
        }
    }
}
