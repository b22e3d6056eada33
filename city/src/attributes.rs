//! The attributes a checkpoint camera reports besides the plate: plate colour, make,
//! direction of travel, speed and the reader's confidence per plate character.
//!
//! None of them draws from the traffic's random stream: they are pure functions of the
//! subject (its true plate and vehicle type), of the trip's movement, and of the event id,
//! so adding them left every existing field of the traffic (plates, cameras, times, ground
//! truth) exactly as it was.
//!
//! - **Plate colour** follows the plate and the vehicle type as in China: a new-energy plate
//!   (D/F + five digits, the [`crate::plates`] generator's 12 %) is green on small vehicles
//!   and yellow-green on buses and trucks; other plates are yellow on buses and trucks and
//!   blue on everything else.
//! - **Make**: one of a small fixed list of common makes per vehicle type (buses and trucks
//!   have their own), chosen by a hash of the true plate — the same vehicle is always the
//!   same make, in every run and every seed.
//! - **Per-character confidence** (0–100, separators excluded): the plate confidence is the
//!   lowest of them. A correct read has one character at that value and the others above
//!   it; a misread has its lowest value at the first character where the read departs from
//!   the true plate (the one the reader got wrong, or the gap of a dropped one), and the
//!   others confidently high (80–99).

use crate::plates::DISPLAY_SEPARATOR;
use crate::subject::mix64;

/// Proto `PlateColor` numbers.
pub mod plate_color {
    /// Not classified (no plate).
    pub const UNSPECIFIED: u8 = 0;
    /// Small vehicles.
    pub const BLUE: u8 = 1;
    /// Large vehicles (buses, trucks).
    pub const YELLOW: u8 = 2;
    /// Small new-energy vehicles.
    pub const GREEN: u8 = 5;
    /// Large new-energy vehicles.
    pub const YELLOW_GREEN: u8 = 6;
}

/// Proto `VehicleType` numbers of large vehicles (bus, truck): yellow plates.
const LARGE_TYPES: [u8; 2] = [4, 5];

/// Makes of cars, SUVs, vans and others, weighted by a rough share of a Chinese city's
/// traffic (percent).
const CAR_BRANDS: &[(&str, u32)] = &[
    ("Volkswagen", 16),
    ("Toyota", 12),
    ("Honda", 10),
    ("BYD", 10),
    ("Nissan", 8),
    ("Buick", 6),
    ("Geely", 8),
    ("Changan", 6),
    ("Mercedes-Benz", 6),
    ("BMW", 6),
    ("Audi", 5),
    ("Tesla", 4),
    ("Wuling", 3),
];
/// Makes of buses.
const BUS_BRANDS: &[(&str, u32)] = &[
    ("Yutong", 45),
    ("King Long", 25),
    ("BYD", 20),
    ("Golden Dragon", 10),
];
/// Makes of trucks.
const TRUCK_BRANDS: &[(&str, u32)] = &[
    ("FAW Jiefang", 30),
    ("Dongfeng", 25),
    ("Sinotruk", 20),
    ("Foton", 15),
    ("Shacman", 10),
];

/// Lowest per-character confidence of the correctly read characters of a misread plate.
const CONFIDENT_FLOOR: u8 = 80;

/// Whether a plate (display or normalised form) is a new-energy one: a six-character serial
/// starting with D or F.
pub fn is_new_energy(plate: &str) -> bool {
    let serial: Vec<char> = plate
        .chars()
        .skip(2)
        .filter(|&c| c != DISPLAY_SEPARATOR)
        .collect();
    serial.len() == 6
        && matches!(serial[0], 'D' | 'F')
        && serial[1..].iter().all(char::is_ascii_digit)
}

/// Proto `PlateColor` number of a vehicle with this true plate and proto `VehicleType`
/// number; unspecified without a plate.
pub fn plate_color_of(plate: &str, vehicle_type: u8) -> u8 {
    if plate.is_empty() {
        return plate_color::UNSPECIFIED;
    }
    let large = LARGE_TYPES.contains(&vehicle_type);
    match (is_new_energy(plate), large) {
        (true, false) => plate_color::GREEN,
        (true, true) => plate_color::YELLOW_GREEN,
        (false, true) => plate_color::YELLOW,
        (false, false) => plate_color::BLUE,
    }
}

/// The make of the vehicle with this true plate (normalised key) and proto `VehicleType`
/// number; empty without a plate.
pub fn brand_of(plate_key: &str, vehicle_type: u8) -> &'static str {
    if plate_key.is_empty() {
        return "";
    }
    let table = match vehicle_type {
        4 => BUS_BRANDS,
        5 => TRUCK_BRANDS,
        _ => CAR_BRANDS,
    };
    // FNV-1a over the key, then scrambled: stable across runs, platforms and seeds.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in plate_key.bytes() {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    let total: u32 = table.iter().map(|&(_, weight)| weight).sum();
    let mut roll = (mix64(hash) % u64::from(total.max(1))) as u32;
    for &(name, weight) in table {
        if roll < weight {
            return name;
        }
        roll -= weight;
    }
    ""
}

/// Compass heading (degrees clockwise from north, in [0, 360)) of a direction on the
/// city's plane given as (east, north); `None` for a zero vector.
pub fn heading_of(direction: (f64, f64)) -> Option<f32> {
    let (east, north) = direction;
    if !(east.is_finite() && north.is_finite()) || east.hypot(north) < 1e-9 {
        return None;
    }
    Some(east.atan2(north).to_degrees().rem_euclid(360.0) as f32)
}

/// Random-looking bits of an event, from its id (no draw from the traffic's stream).
pub(crate) fn event_bits(event_id: &[u8; 16]) -> u64 {
    let mut low = [0u8; 8];
    low.copy_from_slice(&event_id[8..]);
    mix64(u64::from_be_bytes(low) ^ 0x6368_6172_636f_6e66)
}

/// The reader's confidence per character of `read` (separators excluded), 0–100, into
/// `out` (cleared first); see the module doc. `truth` is the true plate (display form),
/// `confidence` the plate confidence in [0, 1], `bits` random bits of the event.
pub fn char_confidences(read: &str, truth: &str, confidence: f32, bits: u64, out: &mut Vec<u8>) {
    out.clear();
    let read_chars: Vec<char> = read.chars().filter(|&c| c != DISPLAY_SEPARATOR).collect();
    if read_chars.is_empty() {
        return;
    }
    let truth_chars: Vec<char> = truth.chars().filter(|&c| c != DISPLAY_SEPARATOR).collect();
    let lowest = (confidence.clamp(0.0, 1.0) * 100.0).round() as u8;
    let misread_at = (read_chars != truth_chars).then(|| {
        read_chars
            .iter()
            .zip(&truth_chars)
            .position(|(r, t)| r != t)
            .unwrap_or(read_chars.len().min(truth_chars.len()))
            .min(read_chars.len() - 1)
    });
    let (lowest_at, floor) = match misread_at {
        Some(at) => (at, lowest.saturating_add(10).clamp(CONFIDENT_FLOOR, 99)),
        None => ((bits % read_chars.len() as u64) as usize, lowest),
    };
    let ceiling = 99u8.max(floor);
    for index in 0..read_chars.len() {
        if index == lowest_at {
            out.push(lowest);
            continue;
        }
        // Four bits per character (at most 16 characters).
        let nibble = ((bits >> (4 * (index % 16))) & 0xF) as u32;
        let spread = u32::from(ceiling - floor);
        out.push(floor + (nibble * spread / 15) as u8);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plate_colours_follow_plate_and_size() {
        assert_eq!(plate_color_of("粤B·12345", 1), plate_color::BLUE);
        assert_eq!(plate_color_of("粤B·12345", 5), plate_color::YELLOW);
        assert_eq!(plate_color_of("粤B·D12345", 2), plate_color::GREEN);
        assert_eq!(plate_color_of("粤BF12345", 4), plate_color::YELLOW_GREEN);
        // Six characters but not D/F + digits: not new-energy.
        assert_eq!(plate_color_of("粤B·DA2345", 1), plate_color::BLUE);
        assert_eq!(plate_color_of("", 1), plate_color::UNSPECIFIED);
    }

    #[test]
    fn brands_are_per_vehicle_and_per_type() {
        assert_eq!(brand_of("粤B12345", 1), brand_of("粤B12345", 1));
        assert!(
            BUS_BRANDS
                .iter()
                .any(|&(b, _)| b == brand_of("粤B12345", 4))
        );
        assert!(
            TRUCK_BRANDS
                .iter()
                .any(|&(b, _)| b == brand_of("粤B12345", 5))
        );
        assert_eq!(brand_of("", 1), "");
        let distinct: std::collections::HashSet<&str> = (0..500)
            .map(|n| brand_of(&format!("粤B{n:05}"), 1))
            .collect();
        assert_eq!(distinct.len(), CAR_BRANDS.len());
    }

    #[test]
    fn headings_are_compass_degrees() {
        assert_eq!(heading_of((0.0, 1.0)), Some(0.0));
        assert_eq!(heading_of((1.0, 0.0)), Some(90.0));
        assert_eq!(heading_of((0.0, -1.0)), Some(180.0));
        assert_eq!(heading_of((-1.0, 0.0)), Some(270.0));
        assert_eq!(heading_of((0.0, 0.0)), None);
    }

    #[test]
    fn char_confidences_bottom_out_at_the_plate_confidence() {
        let mut out = Vec::new();
        for bits in [0u64, 1, 0xDEAD_BEEF, u64::MAX, 0x0123_4567_89AB_CDEF] {
            char_confidences("粤B·12345", "粤B·12345", 0.87, bits, &mut out);
            assert_eq!(out.len(), 7);
            assert_eq!(out.iter().min(), Some(&87));
            assert!(out.iter().all(|&v| v <= 100));
        }
        // A substitution: the swapped character is the lowest, the others confident.
        char_confidences("粤B·12845", "粤B·12345", 0.52, 0xFFFF_FFFF, &mut out);
        assert_eq!(out.len(), 7);
        assert_eq!(out[4], 52);
        assert!(out.iter().enumerate().all(|(i, &v)| i == 4 || v >= 80));
        // A dropped and an extra character: one value per character read.
        char_confidences("粤B·1245", "粤B·12345", 0.6, 7, &mut out);
        assert_eq!((out.len(), out[4]), (6, 60));
        char_confidences("粤B·123455", "粤B·12345", 0.6, 7, &mut out);
        assert_eq!((out.len(), out[7]), (8, 60));
        char_confidences("", "", 0.0, 7, &mut out);
        assert!(out.is_empty());
    }
}
