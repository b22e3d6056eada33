//! The code tables GA/T 1400 objects use, mapped to `camtrail.v1` enums, both ways.
//!
//! Written from the published field lists as we read them (colours: the GA/T 543 colour
//! code table; vehicle classes: the GA 24.4 vehicle type codes, `K33` a saloon car, `H1x` a
//! heavy truck, …; direction of travel: 1 east, 2 west, 3 south, 4 north, 5 north-east,
//! 6 north-west, 7 south-east, 8 south-west). An operator whose platforms use another
//! reading changes this one file. Codes we do not know map to OTHER (or UNSPECIFIED when
//! the field is empty), never to an error: a camera's classification is a hint, not a
//! reason to lose a sighting.

use crate::v1::{Direction, PlateColor, VehicleColor, VehicleType};

/// GA/T 543 colour codes, as sent in `VehicleColor` and `PlateColor`.
const COLORS: &[(&str, VehicleColor)] = &[
    ("1", VehicleColor::Black),
    ("2", VehicleColor::White),
    ("3", VehicleColor::Grey),
    ("4", VehicleColor::Red),
    ("5", VehicleColor::Blue),
    ("6", VehicleColor::Yellow),
    ("8", VehicleColor::Brown),
    ("9", VehicleColor::Green),
];

/// `VehicleColor` of a colour code (`"5"` blue); silver has no code of its own.
pub fn vehicle_color(code: &str) -> VehicleColor {
    let code = code.trim();
    if code.is_empty() {
        return VehicleColor::Unspecified;
    }
    COLORS
        .iter()
        .find(|(c, _)| *c == code)
        .map_or(VehicleColor::Other, |&(_, color)| color)
}

/// The colour code of a `VehicleColor` (silver is sent as grey, other as `99`).
pub fn vehicle_color_code(color: VehicleColor) -> &'static str {
    match color {
        VehicleColor::Unspecified => "",
        VehicleColor::Silver => "3",
        other => COLORS
            .iter()
            .find(|(_, c)| *c == other)
            .map_or("99", |&(code, _)| code),
    }
}

/// `PlateColor` of a colour code, as sent in `PlateColor`.
pub fn plate_color(code: &str) -> PlateColor {
    match code.trim() {
        "" => PlateColor::Unspecified,
        "1" => PlateColor::Black,
        "2" => PlateColor::White,
        "5" => PlateColor::Blue,
        "6" => PlateColor::Yellow,
        "9" => PlateColor::Green,
        _ => PlateColor::Other,
    }
}

/// The colour code of a `PlateColor` (yellow-green new-energy plates are sent as green).
pub fn plate_color_code(color: PlateColor) -> &'static str {
    match color {
        PlateColor::Unspecified => "",
        PlateColor::Black => "1",
        PlateColor::White => "2",
        PlateColor::Blue => "5",
        PlateColor::Yellow => "6",
        PlateColor::Green | PlateColor::YellowGreen => "9",
        PlateColor::Other => "99",
    }
}

/// `VehicleType` of a GA 24.4 vehicle class code (`K33` saloon, `K32` off-road, `H11` heavy
/// truck, `M21` motorcycle, …).
pub fn vehicle_type(code: &str) -> VehicleType {
    let code = code.trim().to_ascii_uppercase();
    if code.is_empty() {
        return VehicleType::Unspecified;
    }
    let bytes = code.as_bytes();
    match (bytes[0], bytes.get(1).copied(), bytes.get(2).copied()) {
        (b'K', Some(b'1' | b'2'), _) => VehicleType::Bus,
        (b'K', Some(b'3'), Some(b'2')) => VehicleType::Suv,
        (b'K', Some(b'3'), Some(b'4' | b'9')) => VehicleType::Van,
        (b'K', Some(b'3' | b'4'), _) => VehicleType::Car,
        (b'H' | b'Q', _, _) => VehicleType::Truck,
        (b'M', _, _) => VehicleType::Motorcycle,
        _ => VehicleType::Other,
    }
}

/// A GA 24.4 code for a `VehicleType`.
pub fn vehicle_type_code(kind: VehicleType) -> &'static str {
    match kind {
        VehicleType::Unspecified => "",
        VehicleType::Car => "K33",
        VehicleType::Suv => "K32",
        VehicleType::Van => "K39",
        VehicleType::Bus => "K11",
        VehicleType::Truck => "H11",
        VehicleType::Motorcycle => "M21",
        VehicleType::Other => "X99",
    }
}

const DIRECTIONS: &[(&str, Direction)] = &[
    ("1", Direction::East),
    ("2", Direction::West),
    ("3", Direction::South),
    ("4", Direction::North),
    ("5", Direction::Northeast),
    ("6", Direction::Northwest),
    ("7", Direction::Southeast),
    ("8", Direction::Southwest),
];

/// `Direction` of a direction-of-travel code; unknown codes are UNSPECIFIED.
pub fn direction(code: &str) -> Direction {
    let code = code.trim();
    DIRECTIONS
        .iter()
        .find(|(c, _)| *c == code)
        .map_or(Direction::Unspecified, |&(_, direction)| direction)
}

/// The direction-of-travel code of a `Direction` (empty when unknown).
pub fn direction_code(direction: Direction) -> &'static str {
    DIRECTIONS
        .iter()
        .find(|(_, d)| *d == direction)
        .map_or("", |&(code, _)| code)
}

/// The direction of travel nearest a compass heading in degrees (0 north, 90 east).
pub fn direction_of_heading(heading_deg: f32) -> Direction {
    const CLOCKWISE: [Direction; 8] = [
        Direction::North,
        Direction::Northeast,
        Direction::East,
        Direction::Southeast,
        Direction::South,
        Direction::Southwest,
        Direction::West,
        Direction::Northwest,
    ];
    if !heading_deg.is_finite() {
        return Direction::Unspecified;
    }
    let sector = ((heading_deg.rem_euclid(360.0) + 22.5) / 45.0) as usize % 8;
    CLOCKWISE[sector]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_enum_value_survives_a_round_trip_through_its_code() {
        for color in [
            VehicleColor::White,
            VehicleColor::Black,
            VehicleColor::Grey,
            VehicleColor::Red,
            VehicleColor::Blue,
            VehicleColor::Yellow,
            VehicleColor::Green,
            VehicleColor::Brown,
            VehicleColor::Other,
            VehicleColor::Unspecified,
        ] {
            assert_eq!(vehicle_color(vehicle_color_code(color)), color);
        }
        assert_eq!(
            vehicle_color(vehicle_color_code(VehicleColor::Silver)),
            VehicleColor::Grey
        );
        for color in [
            PlateColor::Blue,
            PlateColor::Yellow,
            PlateColor::White,
            PlateColor::Black,
            PlateColor::Green,
            PlateColor::Other,
            PlateColor::Unspecified,
        ] {
            assert_eq!(plate_color(plate_color_code(color)), color);
        }
        for kind in [
            VehicleType::Car,
            VehicleType::Suv,
            VehicleType::Van,
            VehicleType::Bus,
            VehicleType::Truck,
            VehicleType::Motorcycle,
            VehicleType::Other,
            VehicleType::Unspecified,
        ] {
            assert_eq!(vehicle_type(vehicle_type_code(kind)), kind);
        }
        for (_, direction) in DIRECTIONS {
            assert_eq!(super::direction(direction_code(*direction)), *direction);
        }
    }

    #[test]
    fn unknown_codes_are_other_not_errors() {
        assert_eq!(vehicle_color("12"), VehicleColor::Other);
        assert_eq!(plate_color("7"), PlateColor::Other);
        assert_eq!(vehicle_type("Z71"), VehicleType::Other);
        assert_eq!(vehicle_type("k31"), VehicleType::Car);
        assert_eq!(direction("9"), Direction::Unspecified);
    }

    #[test]
    fn headings_fall_into_their_compass_sector() {
        assert_eq!(direction_of_heading(0.0), Direction::North);
        assert_eq!(direction_of_heading(350.0), Direction::North);
        assert_eq!(direction_of_heading(91.0), Direction::East);
        assert_eq!(direction_of_heading(-90.0), Direction::West);
        assert_eq!(direction_of_heading(225.0), Direction::Southwest);
        assert_eq!(direction_of_heading(f32::NAN), Direction::Unspecified);
    }
}
