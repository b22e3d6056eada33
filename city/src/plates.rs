//! Chinese civil plates as they appear on the road: province abbreviation, issuing-authority
//! letter, "·", then five letters/digits (at most two letters, never I or O) or, for
//! new-energy vehicles, "D"/"F" and five digits. E.g. "粤B·3K7Q2", "粤B·D12345".

use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Province abbreviations of mainland China's 31 provincial divisions.
pub const PROVINCES: &[char] = &[
    '京', '津', '沪', '渝', '冀', '豫', '云', '辽', '黑', '湘', '皖', '鲁', '新', '苏', '浙', '赣',
    '鄂', '桂', '甘', '晋', '蒙', '陕', '吉', '闽', '贵', '粤', '青', '藏', '川', '宁', '琼',
];

/// Letters used on plates: A–Z without I and O (they look like 1 and 0).
pub const PLATE_LETTERS: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";

/// Separator between the authority letter and the serial, as printed.
pub const DISPLAY_SEPARATOR: char = '·';

/// Share of new-energy (6-character serial) plates.
const NEW_ENERGY_SHARE: f64 = 0.12;
/// Share of home-province plates issued by another authority of the same province.
const OTHER_AUTHORITY_SHARE: f64 = 0.15;

/// Draws plausible plates for a city's traffic.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlateGenerator {
    /// The city's province abbreviation, e.g. '粤'.
    pub home_province: char,
    /// The city's authority letter, e.g. 'B' (Shenzhen).
    pub home_authority: char,
    /// Share of plates from other provinces, in [0, 1].
    pub other_province_share: f64,
}

impl PlateGenerator {
    /// Append a plate in display form (e.g. "粤B·12345") to `out`.
    pub fn generate(&self, rng: &mut ChaCha8Rng, out: &mut String) {
        // A comparison, not `random_bool`, so a NaN or out-of-range share cannot panic.
        let (province, authority) = if rng.random::<f64>() < self.other_province_share {
            let others = PROVINCES.iter().filter(|&&p| p != self.home_province);
            let count = others.clone().count();
            let province = others.clone().nth(rng.random_range(0..count.max(1)));
            (
                province.copied().unwrap_or(self.home_province),
                common_authority(rng),
            )
        } else if rng.random_bool(OTHER_AUTHORITY_SHARE) {
            (self.home_province, common_authority(rng))
        } else {
            (self.home_province, self.home_authority)
        };
        out.push(province);
        out.push(authority);
        out.push(DISPLAY_SEPARATOR);
        if rng.random_bool(NEW_ENERGY_SHARE) {
            out.push(if rng.random_bool(0.7) { 'D' } else { 'F' });
            for _ in 0..5 {
                out.push(digit(rng));
            }
            return;
        }
        let letters = match rng.random_range(0..10) {
            0..6 => 0,
            6..9 => 1,
            _ => 2,
        };
        let mut letter_slots = [false; 5];
        for _ in 0..letters {
            letter_slots[rng.random_range(0..5)] = true;
        }
        for is_letter in letter_slots {
            out.push(if is_letter { letter(rng) } else { digit(rng) });
        }
    }
}

/// An authority letter, weighted to the early letters that most cities use.
fn common_authority(rng: &mut ChaCha8Rng) -> char {
    if rng.random_bool(0.8) {
        char::from(PLATE_LETTERS[rng.random_range(0..8)])
    } else {
        letter(rng)
    }
}

/// A random plate letter.
fn letter(rng: &mut ChaCha8Rng) -> char {
    char::from(PLATE_LETTERS[rng.random_range(0..PLATE_LETTERS.len())])
}

/// A random digit.
fn digit(rng: &mut ChaCha8Rng) -> char {
    char::from(b'0' + rng.random_range(0..10u8))
}

#[cfg(test)]
mod tests {
    use super::*;
    use camtrail_model::plate::{is_standard_chinese_plate, normalize};
    use proptest::prelude::*;
    use rand::SeedableRng;

    proptest! {
        #[test]
        fn every_plate_is_a_standard_chinese_plate(seed: u64, share in 0.0f64..=1.0) {
            let generator = PlateGenerator {
                home_province: '粤', home_authority: 'B', other_province_share: share,
            };
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            for _ in 0..50 {
                let mut plate = String::new();
                generator.generate(&mut rng, &mut plate);
                let key = normalize(&plate);
                prop_assert!(is_standard_chinese_plate(&key), "{plate}");
                prop_assert!(!key.contains('I') && !key.contains('O'), "{plate}");
                prop_assert_eq!(plate.chars().nth(2), Some(DISPLAY_SEPARATOR));
            }
        }
    }

    #[test]
    fn other_province_share_is_honoured() {
        let generator = PlateGenerator {
            home_province: '粤',
            home_authority: 'B',
            other_province_share: 0.2,
        };
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut other = 0;
        let mut plate = String::new();
        for _ in 0..20_000 {
            plate.clear();
            generator.generate(&mut rng, &mut plate);
            other += usize::from(!plate.starts_with('粤'));
        }
        let share = other as f64 / 20_000.0;
        assert!((share - 0.2).abs() < 0.015, "{share}");
    }
}
