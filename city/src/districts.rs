//! Districts: a Voronoi tiling of the city box around relaxed random sites, with names and
//! administrative codes.
//!
//! Each district is the set of points closer to its site than to any other (a convex
//! polygon), so the districts tile the box without gaps or overlaps up to rounding. Two
//! rounds of Lloyd relaxation make their sizes comparable, as real districts roughly are.

use rand::Rng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::geometry::{Point, Projection, centroid, clip_closer_to};

/// Largest number of districts: admin codes are 440301..=440399.
pub const MAX_DISTRICTS: usize = 99;

/// Prefecture part of the admin codes (Shenzhen, 4403).
const PREFECTURE_CODE: u32 = 440_300;

/// Pinyin-style names of districts and towns, shuffled per seed.
const NAMES: &[&str] = &[
    "Futian",
    "Luohu",
    "Nanshan",
    "Yantian",
    "Baoan",
    "Longgang",
    "Longhua",
    "Pingshan",
    "Guangming",
    "Dapeng",
    "Shekou",
    "Xixiang",
    "Fuyong",
    "Shajing",
    "Songgang",
    "Shiyan",
    "Guanlan",
    "Minzhi",
    "Dalang",
    "Buji",
    "Henggang",
    "Pingdi",
    "Kengzi",
    "Kuichong",
    "Nanao",
    "Meisha",
    "Liantang",
    "Xili",
    "Taoyuan",
    "Gongming",
    "Matian",
    "Fenghuang",
    "Yuanling",
    "Huaqiang",
    "Xiangmihu",
    "Shahe",
    "Zhaoshang",
    "Bantian",
    "Pinghu",
    "Longcheng",
    "Baolong",
    "Xinan",
    "Hangcheng",
    "Fuhai",
    "Xinqiao",
    "Yanluo",
    "Qinghu",
    "Guanhu",
    "Nanwan",
    "Jihua",
];

/// One district or town of the city.
#[derive(Debug, Clone, PartialEq)]
pub struct District {
    /// Name, e.g. "Futian" (unique within the city).
    pub name: String,
    /// Six-digit administrative division code, e.g. 440301; the first six digits of the
    /// device ids of the district's cameras.
    pub admin_code: u32,
    /// Boundary as an open ring of (lon, lat) vertices, counter-clockwise, the first vertex
    /// not repeated at the end (GeoJSON output closes it). Convex.
    pub polygon: Vec<(f64, f64)>,
    /// The district's centre (its Voronoi site), (lon, lat).
    pub centre: (f64, f64),
}

impl District {
    /// Whether (lon, lat) lies inside this district's boundary.
    pub fn contains(&self, lon: f64, lat: f64) -> bool {
        crate::geometry::point_in_ring(lon, lat, &self.polygon)
    }
}

/// Districts on the kilometre plane, before projection.
pub(crate) struct DistrictLayout {
    /// One site (centre) per district.
    pub sites: Vec<Point>,
    /// One convex cell per district, counter-clockwise.
    pub cells: Vec<Vec<Point>>,
}

impl DistrictLayout {
    /// Tile a `width_km` × `height_km` box into `count` districts.
    pub fn generate(rng: &mut ChaCha8Rng, count: usize, width_km: f64, height_km: f64) -> Self {
        let count = count.clamp(1, MAX_DISTRICTS);
        let mut sites: Vec<Point> = (0..count)
            .map(|_| {
                Point::new(
                    rng.random_range(0.05..0.95) * width_km,
                    rng.random_range(0.05..0.95) * height_km,
                )
            })
            .collect();
        let mut cells = voronoi_cells(&sites, width_km, height_km);
        for _ in 0..2 {
            sites = cells.iter().map(|cell| centroid(cell)).collect();
            cells = voronoi_cells(&sites, width_km, height_km);
        }
        Self { sites, cells }
    }

    /// Index of the site nearest to `point` (the cell that should contain it).
    pub fn nearest(&self, point: Point) -> usize {
        let mut best = 0;
        let mut best_distance = f64::INFINITY;
        for (index, site) in self.sites.iter().enumerate() {
            let distance = site.distance_sq(point);
            if distance < best_distance {
                best = index;
                best_distance = distance;
            }
        }
        best
    }

    /// Project to named [`District`]s; names are a seed-dependent shuffle of [`NAMES`].
    pub fn to_districts(&self, rng: &mut ChaCha8Rng, projection: &Projection) -> Vec<District> {
        let mut names: Vec<String> = NAMES.iter().map(|name| (*name).to_owned()).collect();
        names.shuffle(rng);
        for extra in names.len()..self.sites.len() {
            names.push(format!(
                "{} {}",
                NAMES[extra % NAMES.len()],
                extra / NAMES.len() + 1
            ));
        }
        let mut districts = Vec::with_capacity(self.sites.len());
        for (index, (site, cell)) in self.sites.iter().zip(&self.cells).enumerate() {
            districts.push(District {
                name: names[index].clone(),
                admin_code: PREFECTURE_CODE + index as u32 + 1,
                polygon: cell.iter().map(|&p| projection.to_lon_lat(p)).collect(),
                centre: projection.to_lon_lat(*site),
            });
        }
        districts
    }
}

/// The Voronoi cell of every site, clipped to the box; O(n²), fine for ≤ 99 sites.
fn voronoi_cells(sites: &[Point], width_km: f64, height_km: f64) -> Vec<Vec<Point>> {
    let bounds = vec![
        Point::new(0.0, 0.0),
        Point::new(width_km, 0.0),
        Point::new(width_km, height_km),
        Point::new(0.0, height_km),
    ];
    let mut cells = Vec::with_capacity(sites.len());
    for (index, &site) in sites.iter().enumerate() {
        let mut cell = bounds.clone();
        for (other_index, &other) in sites.iter().enumerate() {
            if other_index != index && other != site {
                cell = clip_closer_to(&cell, site, other);
            }
        }
        cells.push(cell);
    }
    cells
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn cells_tile_the_box() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let layout = DistrictLayout::generate(&mut rng, 30, 84.0, 40.0);
        let area: f64 = layout.cells.iter().map(|cell| polygon_area(cell)).sum();
        assert!((area - 84.0 * 40.0).abs() < 1e-6, "{area}");
        for cell in &layout.cells {
            assert!(polygon_area(cell) > 0.0, "counter-clockwise, non-empty");
        }
    }

    #[test]
    fn names_and_codes_are_unique() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let layout = DistrictLayout::generate(&mut rng, MAX_DISTRICTS, 84.0, 40.0);
        let districts = layout.to_districts(&mut rng, &Projection::default());
        let mut names: Vec<&str> = districts.iter().map(|d| d.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), MAX_DISTRICTS);
        assert_eq!(districts[98].admin_code, 440_399);
    }

    fn polygon_area(polygon: &[Point]) -> f64 {
        let mut area2 = 0.0;
        for (i, a) in polygon.iter().enumerate() {
            let b = polygon[(i + 1) % polygon.len()];
            area2 += a.x * b.y - b.x * a.y;
        }
        area2 / 2.0
    }
}
