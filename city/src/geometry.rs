//! Plane geometry for the synthetic city: a local kilometre grid, its projection to WGS84,
//! point-in-polygon and half-plane clipping.
//!
//! The city is laid out on a flat east/north kilometre plane whose origin is the south-west
//! corner of the city's bounding box; [`Projection`] maps it to longitude/latitude with a
//! fixed equirectangular approximation, which is exact enough at city scale (< 0.1 % error
//! over 80 km) and, being affine per axis, preserves polygon containment.

/// A point on the city's kilometre plane: `x` east, `y` north, from the south-west corner.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Kilometres east of the city's south-west corner.
    pub x: f64,
    /// Kilometres north of the city's south-west corner.
    pub y: f64,
}

impl Point {
    /// A point from its coordinates in kilometres.
    pub fn new(x: f64, y: f64) -> Self {
        Self { x, y }
    }

    /// Euclidean distance squared, km².
    pub fn distance_sq(self, other: Point) -> f64 {
        let dx = self.x - other.x;
        let dy = self.y - other.y;
        dx * dx + dy * dy
    }

    /// Euclidean distance, km.
    pub fn distance(self, other: Point) -> f64 {
        self.distance_sq(other).sqrt()
    }
}

/// Maps the kilometre plane to WGS84 longitude/latitude around Shenzhen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Projection {
    /// Longitude of the plane's origin (south-west corner), degrees.
    pub origin_lon: f64,
    /// Latitude of the plane's origin (south-west corner), degrees.
    pub origin_lat: f64,
}

/// Kilometres per degree of latitude (WGS84, mid latitudes).
const KM_PER_DEG_LAT: f64 = 110.75;
/// Kilometres per degree of longitude at 22.65° N (111.32 km × cos 22.65°).
const KM_PER_DEG_LON: f64 = 102.74;

impl Default for Projection {
    /// The south-west corner of a Shenzhen-sized box: 113.76° E, 22.45° N.
    fn default() -> Self {
        Self {
            origin_lon: 113.76,
            origin_lat: 22.45,
        }
    }
}

impl Projection {
    /// Longitude/latitude of a plane point, rounded to 6 decimals (≈ 0.1 m), the precision
    /// written to the registry and GeoJSON so that what is tested is what is written.
    pub fn to_lon_lat(&self, point: Point) -> (f64, f64) {
        (
            round6(self.origin_lon + point.x / KM_PER_DEG_LON),
            round6(self.origin_lat + point.y / KM_PER_DEG_LAT),
        )
    }

    /// The plane point of a longitude/latitude.
    pub fn to_point(&self, lon: f64, lat: f64) -> Point {
        Point::new(
            (lon - self.origin_lon) * KM_PER_DEG_LON,
            (lat - self.origin_lat) * KM_PER_DEG_LAT,
        )
    }
}

/// Round to 6 decimal places.
pub fn round6(value: f64) -> f64 {
    (value * 1e6).round() / 1e6
}

/// Whether `(x, y)` lies inside the ring (open or closed; even-odd rule). Points exactly on
/// an edge may fall either way, consistently for one ring.
pub fn point_in_ring(x: f64, y: f64, ring: &[(f64, f64)]) -> bool {
    let mut inside = false;
    let Some(&last) = ring.last() else {
        return false;
    };
    let mut previous = last;
    for &current in ring {
        let (x1, y1) = previous;
        let (x2, y2) = current;
        if (y1 > y) != (y2 > y) {
            let crossing_x = x1 + (y - y1) * (x2 - x1) / (y2 - y1);
            if x < crossing_x {
                inside = !inside;
            }
        }
        previous = current;
    }
    inside
}

/// Clip a convex polygon to the half-plane of points at least as close to `keep` as to
/// `other` (one step of building a Voronoi cell). Sutherland–Hodgman; keeps orientation.
pub fn clip_closer_to(polygon: &[Point], keep: Point, other: Point) -> Vec<Point> {
    let normal = Point::new(other.x - keep.x, other.y - keep.y);
    let mid = Point::new((keep.x + other.x) / 2.0, (keep.y + other.y) / 2.0);
    // side(p) <= 0 means p is on keep's side of the bisector.
    let side = |p: Point| (p.x - mid.x) * normal.x + (p.y - mid.y) * normal.y;
    let mut clipped = Vec::with_capacity(polygon.len() + 1);
    let Some(&last) = polygon.last() else {
        return clipped;
    };
    let mut previous = last;
    for &current in polygon {
        let (side_previous, side_current) = (side(previous), side(current));
        if side_current <= 0.0 {
            if side_previous > 0.0 {
                clipped.push(intersect(previous, current, side_previous, side_current));
            }
            clipped.push(current);
        } else if side_previous <= 0.0 {
            clipped.push(intersect(previous, current, side_previous, side_current));
        }
        previous = current;
    }
    clipped
}

/// Where segment a→b crosses the line whose signed distances at a and b are given.
fn intersect(a: Point, b: Point, side_a: f64, side_b: f64) -> Point {
    let t = side_a / (side_a - side_b);
    Point::new(a.x + t * (b.x - a.x), a.y + t * (b.y - a.y))
}

/// Area centroid of a simple polygon (falls back to the vertex mean when degenerate).
pub fn centroid(polygon: &[Point]) -> Point {
    let mut area2 = 0.0;
    let (mut cx, mut cy) = (0.0, 0.0);
    for (i, &a) in polygon.iter().enumerate() {
        let b = polygon[(i + 1) % polygon.len()];
        let cross = a.x * b.y - b.x * a.y;
        area2 += cross;
        cx += (a.x + b.x) * cross;
        cy += (a.y + b.y) * cross;
    }
    if area2.abs() < 1e-12 {
        let n = polygon.len().max(1) as f64;
        let sum_x: f64 = polygon.iter().map(|p| p.x).sum();
        let sum_y: f64 = polygon.iter().map(|p| p.y).sum();
        return Point::new(sum_x / n, sum_y / n);
    }
    Point::new(cx / (3.0 * area2), cy / (3.0 * area2))
}

/// Compass bearing from `from` to `to`, degrees clockwise from north, in [0, 360), rounded
/// to 0.1°.
pub fn bearing_deg(from: Point, to: Point) -> f32 {
    let degrees = (to.x - from.x).atan2(to.y - from.y).to_degrees();
    let rounded = (degrees.rem_euclid(360.0) * 10.0).round() / 10.0;
    if rounded >= 360.0 {
        0.0
    } else {
        rounded as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_containment() {
        let square = [(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)];
        assert!(point_in_ring(0.5, 0.5, &square));
        assert!(!point_in_ring(1.5, 0.5, &square));
        assert!(!point_in_ring(0.5, -0.1, &square));
        assert!(!point_in_ring(0.5, 0.5, &[]));
    }

    #[test]
    fn clipping_halves_a_square() {
        let square = [
            Point::new(0.0, 0.0),
            Point::new(2.0, 0.0),
            Point::new(2.0, 2.0),
            Point::new(0.0, 2.0),
        ];
        let left = clip_closer_to(&square, Point::new(0.5, 1.0), Point::new(1.5, 1.0));
        let c = centroid(&left);
        assert!(
            (c.x - 0.5).abs() < 1e-9 && (c.y - 1.0).abs() < 1e-9,
            "{c:?}"
        );
    }

    #[test]
    fn bearings() {
        let o = Point::new(0.0, 0.0);
        assert_eq!(bearing_deg(o, Point::new(0.0, 1.0)), 0.0);
        assert_eq!(bearing_deg(o, Point::new(1.0, 0.0)), 90.0);
        assert_eq!(bearing_deg(o, Point::new(-1.0, 0.0)), 270.0);
    }

    #[test]
    fn projection_round_trips() {
        let projection = Projection::default();
        let (lon, lat) = projection.to_lon_lat(Point::new(40.0, 20.0));
        assert!((lon - 114.149).abs() < 0.01 && (lat - 22.63).abs() < 0.01);
        let back = projection.to_point(lon, lat);
        assert!(back.distance(Point::new(40.0, 20.0)) < 0.001);
    }
}
