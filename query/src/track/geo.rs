//! Great-circle distance between cameras and the speed a hop implies.
//!
//! Straight-line distance underestimates the road distance, so a speed computed from it is a
//! lower bound on the real one: a hop flagged as too fast is too fast on any road.

/// Mean Earth radius in km (IUGG mean radius R1), the usual sphere for haversine distances.
pub const EARTH_MEAN_RADIUS_KM: f64 = 6_371.008_8;

const MS_PER_HOUR: f64 = 3_600_000.0;

/// Great-circle distance in km between two WGS84 points given in degrees (haversine formula;
/// within 0.5% of the ellipsoidal distance, far below camera-position error).
pub fn great_circle_km(lat1_deg: f64, lon1_deg: f64, lat2_deg: f64, lon2_deg: f64) -> f64 {
    let (lat1, lat2) = (lat1_deg.to_radians(), lat2_deg.to_radians());
    let half_dlat = (lat2 - lat1) / 2.0;
    let half_dlon = (lon2_deg - lon1_deg).to_radians() / 2.0;
    let h = half_dlat.sin().powi(2) + lat1.cos() * lat2.cos() * half_dlon.sin().powi(2);
    // Rounding can push h a hair outside [0, 1] for antipodal or identical points.
    2.0 * EARTH_MEAN_RADIUS_KM * h.clamp(0.0, 1.0).sqrt().asin()
}

/// Speed in km/h needed to cover `distance_km` in `elapsed_ms`; `None` when no time passed
/// (or the clock went backwards), where a speed is undefined rather than infinite.
pub fn implied_speed_kmh(distance_km: f64, elapsed_ms: i64) -> Option<f64> {
    if elapsed_ms <= 0 {
        return None;
    }
    Some(distance_km / (elapsed_ms as f64 / MS_PER_HOUR))
}

/// The farthest a subject can travel in `elapsed_ms` at `speed_kmh`, km.
pub fn reach_km(speed_kmh: f64, elapsed_ms: i64) -> f64 {
    speed_kmh * (elapsed_ms.max(0) as f64 / MS_PER_HOUR)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_distances() {
        assert_eq!(great_circle_km(22.54, 114.05, 22.54, 114.05), 0.0);
        // One degree of latitude is about 111.2 km on the mean sphere.
        let degree = great_circle_km(22.0, 114.0, 23.0, 114.0);
        assert!((degree - 111.195).abs() < 0.01, "{degree}");
        // Shenzhen Futian to Guangzhou Tianhe: about 104 km as the crow flies.
        let sz_gz = great_circle_km(22.5431, 114.0579, 23.1291, 113.2644);
        assert!((100.0..108.0).contains(&sz_gz), "{sz_gz}");
        let antipodes = great_circle_km(0.0, 0.0, 0.0, 180.0);
        assert!((antipodes - std::f64::consts::PI * EARTH_MEAN_RADIUS_KM).abs() < 1e-6);
    }

    #[test]
    fn speeds() {
        assert_eq!(implied_speed_kmh(10.0, 3_600_000), Some(10.0));
        assert_eq!(implied_speed_kmh(1.0, 30_000), Some(120.0));
        assert_eq!(implied_speed_kmh(1.0, 0), None);
        assert_eq!(implied_speed_kmh(0.0, -5), None);
        assert_eq!(reach_km(120.0, 60_000), 2.0);
        assert_eq!(reach_km(120.0, -60_000), 0.0);
    }

    proptest! {
        #[test]
        fn distance_is_a_symmetric_non_negative_metric(
            a in (-89.0f64..89.0, -179.0f64..179.0),
            b in (-89.0f64..89.0, -179.0f64..179.0),
            c in (-89.0f64..89.0, -179.0f64..179.0),
        ) {
            let ab = great_circle_km(a.0, a.1, b.0, b.1);
            let ba = great_circle_km(b.0, b.1, a.0, a.1);
            let ac = great_circle_km(a.0, a.1, c.0, c.1);
            let cb = great_circle_km(c.0, c.1, b.0, b.1);
            prop_assert!(ab >= 0.0 && ab.is_finite());
            prop_assert!((ab - ba).abs() < 1e-9);
            prop_assert!(ab <= ac + cb + 1e-6, "triangle inequality");
            prop_assert!(ab <= std::f64::consts::PI * EARTH_MEAN_RADIUS_KM + 1e-6);
        }
    }
}
