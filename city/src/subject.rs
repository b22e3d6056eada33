//! Who travels: the subject of one trip (vehicle, person or non-motor vehicle), its plate or
//! re-identification key, attributes and speeds.

use camtrail_model::ObjectClass;
use camtrail_model::plate::normalize;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::attributes;
use crate::plates::PlateGenerator;
use crate::traffic::TrafficConfig;
use crate::trip::Motion;

/// Proto `VehicleColor` numbers with their rough share of city traffic (percent).
const VEHICLE_COLORS: &[(u8, u32)] = &[
    (1, 30),
    (2, 20),
    (3, 15),
    (4, 12),
    (5, 7),
    (6, 7),
    (7, 2),
    (8, 2),
    (9, 2),
    (15, 3),
];
/// Proto `VehicleType` numbers with their rough share (percent).
const VEHICLE_TYPES: &[(u8, u32)] = &[(1, 60), (2, 22), (3, 6), (4, 3), (5, 7), (15, 2)];

/// Frame size the bounding boxes refer to, px.
const FRAME: (u32, u32) = (1920, 1080);

/// One simulated subject.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Subject {
    pub class: ObjectClass,
    /// True plate in display form ("粤B·12345"); empty without a plate.
    pub plate_display: String,
    /// Normalised true plate ("粤B12345"); empty without a plate.
    pub plate_key: String,
    /// Re-identification key for persons and non-motor vehicles; empty for vehicles.
    pub subject_key: String,
    pub color: u8,
    pub kind: u8,
    /// Proto `PlateColor` number (0 without a plate); see [`crate::attributes`].
    pub plate_color: u8,
    /// Make (empty without a plate); see [`crate::attributes`].
    pub brand: &'static str,
}

impl Subject {
    /// Draw subject number `index` of a traffic run.
    pub fn draw(
        rng: &mut ChaCha8Rng,
        config: &TrafficConfig,
        plates: &PlateGenerator,
        index: u64,
    ) -> Self {
        let roll: f64 = rng.random();
        let person = config.person_share.clamp(0.0, 1.0);
        let class = if roll < person {
            ObjectClass::Person
        } else if roll < person + config.non_motor_share.clamp(0.0, 1.0) {
            ObjectClass::NonMotor
        } else {
            ObjectClass::Vehicle
        };
        if class != ObjectClass::Vehicle {
            let subject_key = format!("reid-{:016x}", mix64(config.seed.rotate_left(17) ^ index));
            let color = if class == ObjectClass::NonMotor {
                rng.random_range(1..=9)
            } else {
                0
            };
            return Self {
                class,
                plate_display: String::new(),
                plate_key: String::new(),
                subject_key,
                color,
                kind: 0,
                plate_color: 0,
                brand: "",
            };
        }
        let mut plate_display = String::with_capacity(12);
        plates.generate(rng, &mut plate_display);
        let plate_key = normalize(&plate_display);
        // Drawn in this order, as before the derived attributes existed.
        let color = weighted(rng, VEHICLE_COLORS);
        let kind = weighted(rng, VEHICLE_TYPES);
        Self {
            class,
            plate_color: attributes::plate_color_of(&plate_display, kind),
            brand: attributes::brand_of(&plate_key, kind),
            plate_key,
            plate_display,
            subject_key: String::new(),
            color,
            kind,
        }
    }

    /// Speeds and trip length: cars 20–40 km/h on local roads and 40–70 on arterials,
    /// 2–30 km; bicycles 12–20 km/h, 1–8 km; pedestrians 4–6 km/h, 0.3–3 km.
    pub fn motion(&self, rng: &mut ChaCha8Rng, spacing_km: f64) -> Motion {
        let (local_kmh, arterial_kmh, distance_km) = match self.class {
            ObjectClass::Vehicle => (
                rng.random_range(20.0..40.0),
                rng.random_range(40.0..70.0),
                rng.random_range(2.0..30.0),
            ),
            ObjectClass::NonMotor => {
                let speed = rng.random_range(12.0..20.0);
                (speed, speed, rng.random_range(1.0..8.0))
            }
            ObjectClass::Person => {
                let speed = rng.random_range(4.0..6.0);
                (speed, speed, rng.random_range(0.3..3.0))
            }
        };
        Motion {
            // km/h → m/ms: × 1000 / 3_600_000.
            arterial_m_per_ms: arterial_kmh / 3600.0,
            local_m_per_ms: local_kmh / 3600.0,
            max_steps: (distance_km / spacing_km.max(0.01)).ceil().max(1.0) as u32,
        }
    }

    /// A plausible box for this subject in a 1920×1080 frame, from random `bits`.
    pub fn bbox(&self, bits: u64) -> [u32; 4] {
        let r = bits as u32;
        let (width, height) = match self.class {
            ObjectClass::Vehicle => {
                let width = 260 + r % 160;
                (width, width * 3 / 4)
            }
            ObjectClass::NonMotor => {
                let width = 90 + r % 60;
                (width, width * 3 / 2)
            }
            ObjectClass::Person => {
                let width = 60 + r % 60;
                (width, width * 5 / 2)
            }
        };
        let x = (r >> 8) % (FRAME.0 - width);
        let top = 200;
        let y = top + (r >> 20) % (FRAME.1 - top - height);
        [x, y, width, height]
    }
}

/// Pick a value by percentage weights.
fn weighted(rng: &mut ChaCha8Rng, table: &[(u8, u32)]) -> u8 {
    let total: u32 = table.iter().map(|&(_, weight)| weight).sum();
    let mut roll = rng.random_range(0..total.max(1));
    for &(value, weight) in table {
        if roll < weight {
            return value;
        }
        roll -= weight;
    }
    0
}

/// SplitMix64 finaliser: a bijection on u64 that scatters bits, so distinct inputs give
/// distinct outputs (event ids stay unique) that look random.
pub(crate) fn mix64(value: u64) -> u64 {
    let mut z = value.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
