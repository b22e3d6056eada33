//! How plate readers get plates wrong, drawn from the one misread table
//! ([`camtrail_model::misread::MISREAD_MODEL`]) that track search also uses: a character
//! swapped for one it is commonly confused with (0/D/Q, 8/B, 5/S, 2/Z, 1/7, …), a character
//! dropped, or an extra one read (a doubled character, a stray "1", or any other character).
//!
//! Every misread differs from the true plate after normalisation, so a measured misread
//! rate (read key ≠ true key) estimates the configured one.

pub use camtrail_model::misread::MisreadKind;
use camtrail_model::misread::{MISREAD_MODEL, apply};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Write a misreading of `plate` (display form, e.g. "粤B·12345") into `out` (cleared
/// first) and say what kind it was. The province abbreviation is never touched; the edit is
/// drawn with the probabilities of the shared misread table.
pub fn misread(plate: &str, rng: &mut ChaCha8Rng, out: &mut String) -> MisreadKind {
    out.clear();
    let chars: Vec<char> = plate.chars().collect();
    let mut roll: f64 = rng.random();
    let mut chosen = None;
    MISREAD_MODEL.for_each_edit(&chars, |edit, kind, probability| {
        if chosen.is_none() && probability > 0.0 {
            if roll < probability {
                chosen = Some((edit, kind));
            }
            roll -= probability;
        }
    });
    // Rounding may leave the roll a hair above the total: take the last edit then.
    let (edit, kind) = match chosen {
        Some(found) => found,
        None => {
            let mut last = None;
            MISREAD_MODEL.for_each_edit(&chars, |edit, kind, probability| {
                if probability > 0.0 {
                    last = Some((edit, kind));
                }
            });
            match last {
                Some(found) => found,
                None => {
                    out.push_str(plate);
                    out.push(MISREAD_MODEL.stray);
                    return MisreadKind::Insertion;
                }
            }
        }
    };
    out.push_str(&apply(&chars, edit));
    kind
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
                MisreadKind::Deletion => -1,
                MisreadKind::Insertion => 1,
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
