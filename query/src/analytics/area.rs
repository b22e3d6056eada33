//! Where a broad search looks: a circle, a polygon or a list of cameras, checked before
//! anything is read, and the registry's cameras inside it.
//!
//! Distances are great-circle (haversine, [`crate::track::great_circle_km`]); a polygon is
//! tested on a local plane (equirectangular about its first vertex, metres), exact enough for
//! areas of a few kilometres. A polygon must be simple: its edges may meet only where
//! consecutive edges share a vertex, otherwise "inside" has no single meaning.

use camtrail_model::{CameraRegistry, Error, ErrorCode};
use serde::{Deserialize, Serialize};

use crate::track::great_circle_km;

/// Most vertices a polygon may have.
pub const MAX_POLYGON_VERTICES: usize = 500;

const M_PER_DEG_LAT: f64 = 111_194.926_644_558_7;

/// A scene's place.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Area {
    /// Every camera within `radius_m` of a point.
    Circle {
        /// WGS84 longitude, degrees.
        lon: f64,
        /// WGS84 latitude, degrees.
        lat: f64,
        /// Radius, metres.
        radius_m: f64,
    },
    /// Every camera inside a simple polygon: `[lon, lat]` vertices, closed or not.
    Polygon {
        /// The ring.
        ring: Vec<[f64; 2]>,
    },
    /// These cameras.
    Cameras {
        /// Camera ids.
        ids: Vec<String>,
    },
}

/// An [`Area`] that passed [`Area::check`]: what it selects and how large it is.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedArea {
    /// The area as asked (a closed polygon ring is stored open).
    pub area: Area,
    /// The farthest point of the area from its centre, metres (0 for a camera list): what
    /// the radius limits bound.
    pub radius_m: f64,
}

fn invalid(message: impl Into<String>) -> Error {
    Error::new(ErrorCode::InvalidArea, message)
}

fn valid_point(lon: f64, lat: f64) -> bool {
    lon.is_finite()
        && lat.is_finite()
        && (-180.0..=180.0).contains(&lon)
        && (-85.0..=85.0).contains(&lat)
}

impl Area {
    /// Check the area's shape (not the caller's tier): a circle with a real centre and a
    /// radius in `(0, max_radius_m]`; a simple polygon of 3–[`MAX_POLYGON_VERTICES`] distinct
    /// vertices enclosing some area, no vertex farther than `max_radius_m` from its centre;
    /// 1–`max_cameras` known camera ids.
    pub fn check(
        self,
        registry: &CameraRegistry,
        max_radius_m: f64,
        max_cameras: usize,
    ) -> Result<CheckedArea, Error> {
        let too_large = |radius_m: f64| {
            Error::new(
                ErrorCode::AreaTooLarge,
                format!(
                    "the area reaches {:.0} m from its centre; at most {max_radius_m:.0} m",
                    radius_m
                ),
            )
        };
        match self {
            Area::Circle { lon, lat, radius_m } => {
                if !valid_point(lon, lat) {
                    return Err(invalid(
                        "a circle's centre needs lon in -180..180 and lat in -85..85",
                    ));
                }
                if !(radius_m.is_finite() && radius_m > 0.0) {
                    return Err(invalid("a circle's radius_m must be more than 0"));
                }
                if radius_m > max_radius_m {
                    return Err(too_large(radius_m));
                }
                Ok(CheckedArea {
                    area: Area::Circle { lon, lat, radius_m },
                    radius_m,
                })
            }
            Area::Polygon { mut ring } => {
                if ring.len() > 1 && ring.first() == ring.last() {
                    ring.pop();
                }
                if ring.len() < 3 || ring.len() > MAX_POLYGON_VERTICES {
                    return Err(invalid(format!(
                        "a polygon needs 3-{MAX_POLYGON_VERTICES} vertices"
                    )));
                }
                if !ring.iter().all(|&[lon, lat]| valid_point(lon, lat)) {
                    return Err(invalid(
                        "polygon vertices are [lon, lat] with lon in -180..180 and lat in -85..85",
                    ));
                }
                let plane = Plane::new(&ring);
                let points: Vec<(f64, f64)> = ring.iter().map(|&v| plane.project(v)).collect();
                if points.windows(2).any(|w| w[0] == w[1]) || points.first() == points.last() {
                    return Err(invalid("a polygon repeats a vertex"));
                }
                if signed_area(&points).abs() < 1.0 {
                    return Err(invalid("the polygon encloses no area"));
                }
                if let Some((a, b)) = self_intersection(&points) {
                    return Err(invalid(format!(
                        "the polygon crosses itself (edges {a} and {b})"
                    )));
                }
                let (cx, cy) = centre(&points);
                let radius_m = points
                    .iter()
                    .map(|(x, y)| ((x - cx).powi(2) + (y - cy).powi(2)).sqrt())
                    .fold(0.0, f64::max);
                if radius_m > max_radius_m {
                    return Err(too_large(radius_m));
                }
                Ok(CheckedArea {
                    area: Area::Polygon { ring },
                    radius_m,
                })
            }
            Area::Cameras { ids } => {
                if ids.is_empty() || ids.len() > max_cameras {
                    return Err(Error::new(
                        ErrorCode::InvalidCameras,
                        format!("name 1-{max_cameras} cameras"),
                    ));
                }
                if let Some(unknown) = ids.iter().find(|id| registry.get(id).is_none()) {
                    return Err(Error::new(
                        ErrorCode::UnknownCamera,
                        format!("unknown camera {}", unknown.escape_debug()),
                    ));
                }
                Ok(CheckedArea {
                    area: Area::Cameras { ids },
                    radius_m: 0.0,
                })
            }
        }
    }
}

/// A local plane about one point: x east, y north, metres.
struct Plane {
    lon0: f64,
    lat0: f64,
    m_per_deg_lon: f64,
}

impl Plane {
    fn new(ring: &[[f64; 2]]) -> Self {
        let [lon0, lat0] = ring[0];
        Self {
            lon0,
            lat0,
            m_per_deg_lon: M_PER_DEG_LAT * lat0.to_radians().cos(),
        }
    }

    fn project(&self, [lon, lat]: [f64; 2]) -> (f64, f64) {
        (
            (lon - self.lon0) * self.m_per_deg_lon,
            (lat - self.lat0) * M_PER_DEG_LAT,
        )
    }
}

fn signed_area(points: &[(f64, f64)]) -> f64 {
    let n = points.len();
    (0..n)
        .map(|i| {
            let (x1, y1) = points[i];
            let (x2, y2) = points[(i + 1) % n];
            x1 * y2 - x2 * y1
        })
        .sum::<f64>()
        / 2.0
}

fn centre(points: &[(f64, f64)]) -> (f64, f64) {
    let n = points.len() as f64;
    let (sx, sy) = points
        .iter()
        .fold((0.0, 0.0), |(sx, sy), (x, y)| (sx + x, sy + y));
    (sx / n, sy / n)
}

fn orientation(a: (f64, f64), b: (f64, f64), c: (f64, f64)) -> f64 {
    (b.0 - a.0) * (c.1 - a.1) - (b.1 - a.1) * (c.0 - a.0)
}

fn on_segment(a: (f64, f64), b: (f64, f64), p: (f64, f64)) -> bool {
    p.0 >= a.0.min(b.0) && p.0 <= a.0.max(b.0) && p.1 >= a.1.min(b.1) && p.1 <= a.1.max(b.1)
}

/// Whether segments `ab` and `cd` share any point (touching counts).
fn segments_meet(a: (f64, f64), b: (f64, f64), c: (f64, f64), d: (f64, f64)) -> bool {
    let (o1, o2) = (orientation(a, b, c), orientation(a, b, d));
    let (o3, o4) = (orientation(c, d, a), orientation(c, d, b));
    if ((o1 > 0.0 && o2 < 0.0) || (o1 < 0.0 && o2 > 0.0))
        && ((o3 > 0.0 && o4 < 0.0) || (o3 < 0.0 && o4 > 0.0))
    {
        return true;
    }
    (o1 == 0.0 && on_segment(a, b, c))
        || (o2 == 0.0 && on_segment(a, b, d))
        || (o3 == 0.0 && on_segment(c, d, a))
        || (o4 == 0.0 && on_segment(c, d, b))
}

/// The first pair of edges (by index, edge `i` from vertex `i` to `i + 1`) that meet other
/// than at the vertex two consecutive edges share.
fn self_intersection(points: &[(f64, f64)]) -> Option<(usize, usize)> {
    let n = points.len();
    let edge = |i: usize| (points[i], points[(i + 1) % n]);
    for i in 0..n {
        for j in i + 1..n {
            let adjacent = j == i + 1 || (i == 0 && j == n - 1);
            let ((a, b), (c, d)) = (edge(i), edge(j));
            if adjacent {
                // Consecutive edges share one vertex; they must not fold back over each other
                // (collinear, both far ends on the same side of the shared vertex).
                let (p, shared, q) = if j == i + 1 { (a, b, d) } else { (b, a, c) };
                let same_side =
                    (p.0 - shared.0) * (q.0 - shared.0) + (p.1 - shared.1) * (q.1 - shared.1) > 0.0;
                if orientation(p, shared, q) == 0.0 && same_side {
                    return Some((i, j));
                }
                continue;
            }
            if segments_meet(a, b, c, d) {
                return Some((i, j));
            }
        }
    }
    None
}

/// The registry's cameras by latitude, for area look-ups without visiting every camera.
#[derive(Debug, Clone, Default)]
pub struct CameraIndex {
    /// `(lat, lon, index into registry.cameras())`, sorted by latitude.
    by_lat: Vec<(f64, f64, u32)>,
}

impl CameraIndex {
    /// Index `registry`.
    pub fn new(registry: &CameraRegistry) -> Self {
        let mut by_lat: Vec<(f64, f64, u32)> = registry
            .cameras()
            .iter()
            .enumerate()
            .map(|(i, c)| (c.lat, c.lon, i as u32))
            .collect();
        by_lat.sort_by(|a, b| a.0.total_cmp(&b.0));
        Self { by_lat }
    }

    fn band(&self, lat_min: f64, lat_max: f64) -> &[(f64, f64, u32)] {
        let start = self.by_lat.partition_point(|c| c.0 < lat_min);
        let end = self.by_lat.partition_point(|c| c.0 <= lat_max);
        &self.by_lat[start..end.max(start)]
    }

    /// The ids of `registry`'s cameras inside `area` (which this index was built from), in
    /// registry order.
    pub fn cameras_in(&self, registry: &CameraRegistry, area: &Area) -> Vec<String> {
        let cameras = registry.cameras();
        let mut inside: Vec<u32> = match area {
            Area::Cameras { ids } => return ids.clone(),
            Area::Circle { lon, lat, radius_m } => {
                let dlat = radius_m / M_PER_DEG_LAT;
                self.band(lat - dlat, lat + dlat)
                    .iter()
                    .filter(|(clat, clon, _)| {
                        great_circle_km(*lat, *lon, *clat, *clon) * 1_000.0 <= *radius_m
                    })
                    .map(|c| c.2)
                    .collect()
            }
            Area::Polygon { ring } => {
                let (lat_min, lat_max) = ring.iter().fold((f64::MAX, f64::MIN), |(lo, hi), v| {
                    (lo.min(v[1]), hi.max(v[1]))
                });
                let plane = Plane::new(ring);
                let points: Vec<(f64, f64)> = ring.iter().map(|&v| plane.project(v)).collect();
                self.band(lat_min, lat_max)
                    .iter()
                    .filter(|(clat, clon, _)| inside_ring(plane.project([*clon, *clat]), &points))
                    .map(|c| c.2)
                    .collect()
            }
        };
        inside.sort_unstable();
        inside
            .into_iter()
            .map(|i| cameras[i as usize].camera_id.clone())
            .collect()
    }
}

/// Point in polygon by ray casting (a point on an edge may fall either way).
fn inside_ring((x, y): (f64, f64), ring: &[(f64, f64)]) -> bool {
    let mut inside = false;
    let n = ring.len();
    let mut j = n - 1;
    for i in 0..n {
        let (xi, yi) = ring[i];
        let (xj, yj) = ring[j];
        if (yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi {
            inside = !inside;
        }
        j = i;
    }
    inside
}

#[cfg(test)]
mod tests {
    use super::*;
    use camtrail_model::Camera;
    use proptest::prelude::*;

    fn registry() -> CameraRegistry {
        // A 21 x 21 grid of cameras 100 m apart around (114.0, 22.5).
        let mut cameras = Vec::new();
        for i in 0..21 {
            for j in 0..21 {
                cameras.push(Camera {
                    camera_id: format!("cam-{i:02}-{j:02}"),
                    district: "D".into(),
                    lat: 22.5 + f64::from(i - 10) * 100.0 / M_PER_DEG_LAT,
                    lon: 114.0
                        + f64::from(j - 10) * 100.0 / (M_PER_DEG_LAT * 22.5f64.to_radians().cos()),
                    heading_deg: 0.0,
                    road: "R".into(),
                    gateway_id: "gw".into(),
                });
            }
        }
        CameraRegistry::new(cameras).expect("registry")
    }

    fn code(result: Result<CheckedArea, Error>) -> ErrorCode {
        result.expect_err("refused").code
    }

    fn square(half_deg: f64) -> Vec<[f64; 2]> {
        vec![
            [114.0 - half_deg, 22.5 - half_deg],
            [114.0 + half_deg, 22.5 - half_deg],
            [114.0 + half_deg, 22.5 + half_deg],
            [114.0 - half_deg, 22.5 + half_deg],
        ]
    }

    #[test]
    fn circles_select_the_cameras_within_the_radius() {
        let registry = registry();
        let index = CameraIndex::new(&registry);
        let area = Area::Circle {
            lon: 114.0,
            lat: 22.5,
            radius_m: 150.0,
        }
        .check(&registry, 10_000.0, 100)
        .expect("valid");
        let mut ids = index.cameras_in(&registry, &area.area);
        ids.sort();
        // The centre, its 4 neighbours at 100 m and the 4 diagonals at 141 m.
        assert_eq!(ids.len(), 9, "{ids:?}");
        assert!(ids.contains(&"cam-10-10".to_string()));
        assert!(!ids.contains(&"cam-10-12".to_string()));
    }

    #[test]
    fn polygons_select_the_cameras_inside() {
        let registry = registry();
        let index = CameraIndex::new(&registry);
        // A thin triangle over the centre row: at its latitude the hypotenuse crosses half
        // way, about 525 m east of the western end, so the row's six westmost cameras.
        let ring = vec![[113.99, 22.4995], [114.0005, 22.4995], [113.99, 22.5005]];
        let area = Area::Polygon { ring }
            .check(&registry, 10_000.0, 100)
            .expect("valid");
        let ids = index.cameras_in(&registry, &area.area);
        let expected: Vec<String> = (0..6).map(|j| format!("cam-10-{j:02}")).collect();
        assert_eq!(ids, expected);
    }

    #[test]
    fn bad_areas_are_refused_with_a_code() {
        let registry = registry();
        let check = |area: Area| area.check(&registry, 20_000.0, 3);
        let circle = |radius_m: f64| Area::Circle {
            lon: 114.0,
            lat: 22.5,
            radius_m,
        };
        assert_eq!(code(check(circle(0.0))), ErrorCode::InvalidArea);
        assert_eq!(code(check(circle(-5.0))), ErrorCode::InvalidArea);
        assert_eq!(code(check(circle(f64::NAN))), ErrorCode::InvalidArea);
        assert_eq!(code(check(circle(1_000_000.0))), ErrorCode::AreaTooLarge);
        assert_eq!(
            code(check(Area::Circle {
                lon: 200.0,
                lat: 22.5,
                radius_m: 100.0
            })),
            ErrorCode::InvalidArea
        );
        assert_eq!(
            code(check(Area::Polygon { ring: vec![] })),
            ErrorCode::InvalidArea
        );
        assert_eq!(
            code(check(Area::Polygon {
                ring: square(0.01)[..2].to_vec()
            })),
            ErrorCode::InvalidArea
        );
        // A bow tie: edges 0 and 2 cross.
        let mut bow = square(0.01);
        bow.swap(2, 3);
        assert_eq!(
            code(check(Area::Polygon { ring: bow })),
            ErrorCode::InvalidArea
        );
        // Collinear: no area.
        let line = vec![[114.0, 22.5], [114.01, 22.5], [114.02, 22.5]];
        assert_eq!(
            code(check(Area::Polygon { ring: line })),
            ErrorCode::InvalidArea
        );
        // A repeated vertex.
        let mut repeated = square(0.01);
        repeated.insert(1, repeated[0]);
        assert_eq!(
            code(check(Area::Polygon { ring: repeated })),
            ErrorCode::InvalidArea
        );
        assert_eq!(
            code(check(Area::Polygon { ring: square(1.0) })),
            ErrorCode::AreaTooLarge
        );
        assert_eq!(
            code(check(Area::Cameras { ids: vec![] })),
            ErrorCode::InvalidCameras
        );
        assert_eq!(
            code(check(Area::Cameras {
                ids: vec!["nope".into()]
            })),
            ErrorCode::UnknownCamera
        );
        // A closed ring is the same polygon as the open one.
        let mut closed = square(0.01);
        closed.push(closed[0]);
        let checked = check(Area::Polygon { ring: closed }).expect("closed ring");
        assert_eq!(checked.area, Area::Polygon { ring: square(0.01) });
        let half_diagonal =
            0.01 * M_PER_DEG_LAT * (1.0 + 22.5f64.to_radians().cos().powi(2)).sqrt();
        assert!((checked.radius_m - half_diagonal).abs() < 0.02 * half_diagonal);
    }

    proptest! {
        /// A convex polygon (points on a circle, in angle order) is simple, and every camera
        /// it selects lies within its radius of its centre.
        #[test]
        fn convex_polygons_are_simple(
            n in 3usize..40,
            radius_m in 50.0f64..2_000.0,
            phase in 0.0f64..std::f64::consts::TAU,
        ) {
            let ring: Vec<[f64; 2]> = (0..n)
                .map(|k| {
                    let angle = phase + k as f64 * std::f64::consts::TAU / n as f64;
                    [
                        114.0 + radius_m * angle.cos() / (M_PER_DEG_LAT * 22.5f64.to_radians().cos()),
                        22.5 + radius_m * angle.sin() / M_PER_DEG_LAT,
                    ]
                })
                .collect();
            let registry = registry();
            let checked = Area::Polygon { ring }.check(&registry, 10_000.0, 10).expect("simple");
            prop_assert!(checked.radius_m <= radius_m * 1.01);
            let index = CameraIndex::new(&registry);
            for id in index.cameras_in(&registry, &checked.area) {
                let camera = registry.get(&id).expect("known");
                prop_assert!(great_circle_km(22.5, 114.0, camera.lat, camera.lon) * 1_000.0 <= radius_m * 1.01);
            }
        }

        /// Any ring of finite points is either refused with `invalid_area` / `area_too_large`
        /// or accepted; never a panic.
        #[test]
        fn arbitrary_rings_never_panic(ring in proptest::collection::vec((113.9f64..114.1, 22.4f64..22.6), 0..12)) {
            let registry = registry();
            let ring = ring.into_iter().map(|(lon, lat)| [lon, lat]).collect();
            match (Area::Polygon { ring }).check(&registry, 10_000.0, 10) {
                Ok(_) => {}
                Err(error) => prop_assert!(matches!(error.code, ErrorCode::InvalidArea | ErrorCode::AreaTooLarge)),
            }
        }
    }
}
