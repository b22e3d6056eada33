//! The offline base map (`/v1/basemap`): what the workspace draws instead of tiles on a
//! police network with no internet — each district's outline, the road network as far as
//! the registry knows it, and every camera. Registry data only (no detection, no person):
//! any signed-in role may read it, unaudited, like `/v1/cameras/{id}`.
//!
//! The registry names each camera's road (`Fulin Dadao`) or crossing (`Honghai Dadao /
//! Qiaosheng Lu`); a road's line is its cameras ordered along the road's main axis, broken
//! where two neighbours are further apart than [`ROAD_GAP_KM`] (a road that stops and
//! starts again, or a name used twice across the city). Straight and gently curved roads,
//! which is what a grid city has, come out right; a road that doubles back would zig-zag.

use std::collections::BTreeMap;
use std::io::Write as _;

use camtrail_model::CameraRegistry;
use serde::Serialize;

/// Neighbouring cameras on one road further apart than this start a new line, km.
pub const ROAD_GAP_KM: f64 = 1.5;

/// Kilometres per degree of latitude.
const KM_PER_DEGREE: f64 = 111.195;

/// One drawn piece of a road: (lat, lon) points in order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoadLine {
    /// The road's name as the registry spells it.
    pub name: String,
    /// Points along it, `[lat, lon]`.
    pub points: Vec<(f64, f64)>,
}

/// The lines of every road the registry names, longest roads first.
pub fn road_lines(registry: &CameraRegistry) -> Vec<RoadLine> {
    let mut by_road: BTreeMap<&str, Vec<(f64, f64)>> = BTreeMap::new();
    for camera in registry.cameras() {
        for name in camera.road.split(" / ").map(str::trim) {
            if !name.is_empty() {
                by_road
                    .entry(name)
                    .or_default()
                    .push((camera.lat, camera.lon));
            }
        }
    }
    let mut lines = Vec::new();
    for (name, points) in by_road {
        for piece in order_along_axis(points) {
            if piece.len() >= 2 {
                lines.push(RoadLine {
                    name: name.to_string(),
                    points: piece,
                });
            }
        }
    }
    lines.sort_by_key(|line| std::cmp::Reverse(line.points.len()));
    lines
}

/// `points` ordered along their principal axis and cut where neighbours are more than
/// [`ROAD_GAP_KM`] apart; points within ~30 m of the previous one are dropped.
fn order_along_axis(mut points: Vec<(f64, f64)>) -> Vec<Vec<(f64, f64)>> {
    if points.len() < 2 {
        return vec![points];
    }
    let n = points.len() as f64;
    let (mean_lat, mean_lon) = points
        .iter()
        .fold((0.0, 0.0), |acc, p| (acc.0 + p.0 / n, acc.1 + p.1 / n));
    let lon_factor = mean_lat.to_radians().cos();
    // Covariance of the points in local km, then the angle of its main eigenvector.
    let local = |&(lat, lon): &(f64, f64)| {
        (
            (lon - mean_lon) * lon_factor * KM_PER_DEGREE,
            (lat - mean_lat) * KM_PER_DEGREE,
        )
    };
    let (mut sxx, mut syy, mut sxy) = (0.0, 0.0, 0.0);
    for point in &points {
        let (x, y) = local(point);
        sxx += x * x;
        syy += y * y;
        sxy += x * y;
    }
    let angle = 0.5 * (2.0 * sxy).atan2(sxx - syy);
    let (ux, uy) = (angle.cos(), angle.sin());
    let along = |point: &(f64, f64)| {
        let (x, y) = local(point);
        x * ux + y * uy
    };
    points.sort_by(|a, b| along(a).total_cmp(&along(b)));
    let km = |a: &(f64, f64), b: &(f64, f64)| {
        let (ax, ay) = local(a);
        let (bx, by) = local(b);
        (ax - bx).hypot(ay - by)
    };
    let mut pieces: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
    for point in points {
        let current = pieces.last_mut().expect("one piece at least");
        match current.last() {
            Some(last) if km(last, &point) < 0.03 => {}
            Some(last) if km(last, &point) > ROAD_GAP_KM => pieces.push(vec![point]),
            _ => current.push(point),
        }
    }
    pieces
}

/// One district as the base map draws it.
#[derive(Debug, Serialize)]
pub struct DistrictShape<'a> {
    /// The district's name.
    pub name: &'a str,
    /// Where its label goes, `[lat, lon]`.
    pub center: (f64, f64),
    /// Its outline, `[[lat, lon], ...]`.
    pub hull: &'a [(f64, f64)],
}

/// The cameras as columns (a fifth of the size of one object per camera).
#[derive(Debug, Serialize)]
struct CameraColumns<'a> {
    ids: Vec<&'a str>,
    lat: Vec<f64>,
    lon: Vec<f64>,
    /// Index into `districts`.
    district: Vec<u32>,
}

#[derive(Serialize)]
struct Basemap<'a> {
    districts: &'a [DistrictShape<'a>],
    roads: &'a [RoadLine],
    cameras: CameraColumns<'a>,
}

/// The base map's JSON and its gzip form.
#[derive(Debug, Clone)]
pub struct BasemapBytes {
    /// `application/json`.
    pub json: bytes::Bytes,
    /// The same, gzip-compressed (what browsers ask for).
    pub gzip: bytes::Bytes,
}

/// The base map of `registry` with `districts` and `roads` (prepared by the map background).
pub fn basemap_bytes(
    registry: &CameraRegistry,
    districts: &[DistrictShape<'_>],
    roads: &[RoadLine],
) -> BasemapBytes {
    let index: BTreeMap<&str, u32> = districts
        .iter()
        .enumerate()
        .map(|(i, d)| (d.name, i as u32))
        .collect();
    let cameras = registry.cameras();
    let round = |degrees: f64| (degrees * 1e6).round() / 1e6;
    let columns = CameraColumns {
        ids: cameras.iter().map(|c| c.camera_id.as_str()).collect(),
        lat: cameras.iter().map(|c| round(c.lat)).collect(),
        lon: cameras.iter().map(|c| round(c.lon)).collect(),
        district: cameras
            .iter()
            .map(|c| index.get(c.district.as_str()).copied().unwrap_or(u32::MAX))
            .collect(),
    };
    let json = serde_json::to_vec(&Basemap {
        districts,
        roads,
        cameras: columns,
    })
    .expect("the base map serialises");
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let gzip = encoder
        .write_all(&json)
        .and_then(|()| encoder.finish())
        .expect("gzip into memory");
    BasemapBytes {
        json: json.into(),
        gzip: gzip.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn camera(id: u32, road: &str, lat: f64, lon: f64) -> camtrail_model::Camera {
        camtrail_model::Camera {
            camera_id: format!("4403000000131{id:07}"),
            district: "D".into(),
            lat,
            lon,
            heading_deg: 0.0,
            road: road.into(),
            gateway_id: "gw".into(),
        }
    }

    #[test]
    fn a_road_is_its_cameras_in_order_and_breaks_at_gaps() {
        // An east-west road given out of order, with a 5 km gap after the third camera,
        // and a crossing that belongs to two roads.
        let cameras = vec![
            camera(1, "East Rd", 22.5, 114.02),
            camera(2, "East Rd", 22.5, 114.00),
            camera(3, "East Rd / North Rd", 22.5, 114.01),
            camera(4, "East Rd", 22.5, 114.08),
            camera(5, "East Rd", 22.5, 114.09),
            camera(6, "North Rd", 22.51, 114.01),
        ];
        let registry = CameraRegistry::new(cameras).expect("registry");
        let lines = road_lines(&registry);
        let east: Vec<&RoadLine> = lines.iter().filter(|l| l.name == "East Rd").collect();
        assert_eq!(east.len(), 2, "{lines:?}");
        let lons = |line: &RoadLine| line.points.iter().map(|p| p.1).collect::<Vec<_>>();
        let mut pieces: Vec<Vec<f64>> = east.iter().map(|l| lons(l)).collect();
        pieces.sort_by(|a, b| a[0].total_cmp(&b[0]));
        let ascending = |v: &Vec<f64>| v.windows(2).all(|w| w[0] < w[1]);
        let descending = |v: &Vec<f64>| v.windows(2).all(|w| w[0] > w[1]);
        assert!(pieces.iter().all(|p| ascending(p) || descending(p)));
        assert_eq!(pieces[0].len(), 3);
        assert_eq!(pieces[1].len(), 2);
        let north: Vec<&RoadLine> = lines.iter().filter(|l| l.name == "North Rd").collect();
        assert_eq!(north.len(), 1);
        assert_eq!(north[0].points.len(), 2);
    }

    #[test]
    fn the_basemap_has_every_camera_once_with_its_district() {
        let cameras = (0..50)
            .map(|i| camera(i, "A Rd", 22.5 + f64::from(i) * 0.001, 114.0))
            .collect();
        let registry = CameraRegistry::new(cameras).expect("registry");
        let hull = [(22.5, 114.0), (22.55, 114.0)];
        let districts = [DistrictShape {
            name: "D",
            center: (22.52, 114.0),
            hull: &hull,
        }];
        let bytes = basemap_bytes(&registry, &districts, &road_lines(&registry));
        let value: serde_json::Value = serde_json::from_slice(&bytes.json).expect("json");
        assert_eq!(value["cameras"]["ids"].as_array().map(Vec::len), Some(50));
        assert!(
            value["cameras"]["district"]
                .as_array()
                .is_some_and(|d| d.iter().all(|i| i == 0))
        );
        assert_eq!(value["districts"][0]["name"], "D");
        let mut decoder = flate2::read::GzDecoder::new(&bytes.gzip[..]);
        let mut unzipped = Vec::new();
        std::io::Read::read_to_end(&mut decoder, &mut unzipped).expect("gunzip");
        assert_eq!(unzipped, bytes.json);
    }
}
