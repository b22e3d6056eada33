//! A deterministic synthetic city and its traffic, with ground truth, for load tests and
//! for scoring track reconstruction.
//!
//! Layout (one concept per module):
//! - [`geometry`]: the kilometre plane, its projection to lon/lat, polygons.
//! - [`districts`]: ~30 named districts tiling the city (Voronoi cells).
//! - [`roads`]: the road graph (jittered grid, arterials and local roads, named).
//! - `cameras`: camera placement, device ids, the per-road camera index.
//! - [`gateways`]: which gateway serves which cameras.
//! - [`plates`], [`misread`]: Chinese plates and how readers get them wrong.
//! - [`attributes`]: plate colour, make, direction, speed, per-character confidence.
//! - [`traffic`]: the event generator; [`truth`]: what really happened.
//! - [`scenario`]: the "hard city" for scoring tracks (multi-trip vehicles, look-alikes, clones).
//! - [`snapshot`], [`render`], `output`: JPEG snapshots, the city PNG, files on disk.
//!
//! Everything is a pure function of the seed: the same [`CityConfig`] gives the same bytes
//! of `cameras.csv` and `districts.geojson`.

pub mod attributes;
mod cameras;
pub mod districts;
pub mod gateways;
pub mod geometry;
pub mod investigation;
pub mod misread;
mod output;
pub mod plates;
pub mod render;
pub mod roads;
pub mod scenario;
pub mod snapshot;
mod subject;
pub mod traffic;
mod trip;
pub mod truth;

use camtrail_model::{Camera, CameraRegistry};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

pub use cameras::{CAMERA_TYPE_CODE, device_id};
pub use districts::{District, MAX_DISTRICTS};
pub use gateways::Gateway;
pub use traffic::{SyntheticEvent, Traffic, TrafficConfig};
pub use truth::{TruthStop, TruthVehicle, write_truth_jsonl};

use cameras::{CamerasOnRoads, Site};
use districts::DistrictLayout;
use geometry::{Point, Projection};
use roads::RoadGraph;

/// Width of the city box (west–east), km: about Shenzhen's extent.
pub const CITY_WIDTH_KM: f64 = 84.0;
/// Height of the city box (south–north), km.
pub const CITY_HEIGHT_KM: f64 = 40.0;
/// Largest camera count [`CityConfig::validate`] accepts.
pub const MAX_CAMERAS: usize = 5_000_000;

/// What city to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CityConfig {
    /// Seed; the whole city is a function of the config.
    pub seed: u64,
    /// Number of cameras (default 140,000).
    pub cameras: usize,
    /// Number of districts/towns (default 30, at most [`MAX_DISTRICTS`]).
    pub districts: usize,
    /// Number of gateways (default 300; at least one per district with cameras, at most one
    /// per camera).
    pub gateways: usize,
}

impl Default for CityConfig {
    fn default() -> Self {
        Self {
            seed: 7,
            cameras: 140_000,
            districts: 30,
            gateways: 300,
        }
    }
}

impl CityConfig {
    /// Check the numbers; [`City::generate`] clamps out-of-range values instead of failing,
    /// so call this first when they come from outside.
    pub fn validate(&self) -> Result<(), String> {
        if self.cameras == 0 || self.cameras > MAX_CAMERAS {
            return Err(format!(
                "cameras must be 1..={MAX_CAMERAS}, got {}",
                self.cameras
            ));
        }
        if self.districts == 0 || self.districts > MAX_DISTRICTS {
            return Err(format!(
                "districts must be 1..={MAX_DISTRICTS}, got {}",
                self.districts
            ));
        }
        if self.gateways < self.districts || self.gateways > self.cameras {
            return Err(format!(
                "gateways must be between districts ({}) and cameras ({}), got {}",
                self.districts, self.cameras, self.gateways
            ));
        }
        Ok(())
    }
}

/// A generated city: districts, roads, cameras and gateways.
#[derive(Debug, Clone)]
pub struct City {
    /// The camera registry (what `cameras.csv` holds), in generation order.
    pub registry: CameraRegistry,
    /// Districts, indexed by position; `registry` names them by [`District::name`].
    pub districts: Vec<District>,
    /// Gateways; every camera is served by exactly one.
    pub gateways: Vec<Gateway>,
    /// The road graph cameras stand on and traffic drives on.
    pub roads: RoadGraph,
    /// Projection from the road graph's kilometre plane to lon/lat.
    pub projection: Projection,
    /// District index of each camera (parallel to `registry.cameras()`).
    pub camera_district: Vec<u32>,
    /// Gateway index of each camera (parallel to `registry.cameras()`).
    pub camera_gateway: Vec<u32>,
    cameras_on_roads: CamerasOnRoads,
}

/// Independent random stream for one generation stage, so stages do not disturb each other.
fn stage_rng(seed: u64, stage: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stage);
    rng
}

impl City {
    /// Generate a city. Out-of-range numbers are clamped (see [`CityConfig::validate`]).
    pub fn generate(config: &CityConfig) -> City {
        let projection = Projection::default();
        let camera_count = config.cameras.clamp(1, MAX_CAMERAS);
        let layout = DistrictLayout::generate(
            &mut stage_rng(config.seed, 1),
            config.districts,
            CITY_WIDTH_KM,
            CITY_HEIGHT_KM,
        );
        let districts = layout.to_districts(&mut stage_rng(config.seed, 2), &projection);
        let roads = RoadGraph::generate(
            &mut stage_rng(config.seed, 3),
            CITY_WIDTH_KM,
            CITY_HEIGHT_KM,
            camera_count / 3,
        );
        let placements = cameras::place(
            &mut stage_rng(config.seed, 4),
            &roads,
            &layout,
            camera_count,
        );
        let mut camera_district = Vec::with_capacity(placements.len());
        let mut lon_lat = Vec::with_capacity(placements.len());
        let mut points = Vec::with_capacity(placements.len());
        for placement in &placements {
            let (district, lon, lat) =
                cameras::locate(placement.point, &layout, &districts, &projection);
            camera_district.push(district);
            lon_lat.push((lon, lat));
            points.push(placement.point);
        }
        let admin_codes: Vec<u32> = districts.iter().map(|d| d.admin_code).collect();
        let (gateways, camera_gateway) =
            gateways::assign(config.gateways, &camera_district, &points, &admin_codes);
        let mut serials = vec![0u32; districts.len()];
        let mut cameras = Vec::with_capacity(placements.len());
        for (index, placement) in placements.iter().enumerate() {
            let district = camera_district[index];
            serials[district] += 1;
            cameras.push(Camera {
                camera_id: device_id(admin_codes[district], CAMERA_TYPE_CODE, serials[district]),
                district: districts[district].name.clone(),
                lat: lon_lat[index].1,
                lon: lon_lat[index].0,
                heading_deg: placement.heading_deg,
                road: road_label(&roads, placement.site),
                gateway_id: gateways[camera_gateway[index] as usize].id.clone(),
            });
        }
        // Invariant: ids are unique (admin code + per-district serial) and values in range.
        let registry = CameraRegistry::new(cameras).expect("generated registry is valid");
        let sites: Vec<Site> = placements.iter().map(|p| p.site).collect();
        let cameras_on_roads = CamerasOnRoads::new(&sites, roads.nodes.len(), roads.edges.len());
        City {
            registry,
            districts,
            gateways,
            roads,
            projection,
            camera_district: camera_district.into_iter().map(|d| d as u32).collect(),
            camera_gateway,
            cameras_on_roads,
        }
    }

    /// Write `cameras.csv` (the registry) and `districts.geojson` into `dir`, creating it.
    pub fn write_to_dir(&self, dir: &std::path::Path) -> std::io::Result<()> {
        output::write_to_dir(self, dir)
    }

    /// Render cameras, arterials and district boundaries to a PNG file.
    pub fn render_png(&self, path: &std::path::Path) -> Result<(), image::ImageError> {
        render::render_png(self, path)
    }

    /// The district whose boundary contains (lon, lat), if any.
    pub fn district_of(&self, lon: f64, lat: f64) -> Option<&District> {
        self.districts
            .iter()
            .find(|district| district.contains(lon, lat))
    }

    /// Cameras at each intersection and along each segment.
    pub(crate) fn cameras_on_roads(&self) -> &CamerasOnRoads {
        &self.cameras_on_roads
    }

    /// A camera's position on the kilometre plane.
    pub fn camera_point(&self, camera_index: u32) -> Option<Point> {
        let camera = self.registry.cameras().get(camera_index as usize)?;
        Some(self.projection.to_point(camera.lon, camera.lat))
    }
}

/// The registry's road column: the road's name, or "A Lu / B Jie" at an intersection.
fn road_label(roads: &RoadGraph, site: Site) -> String {
    match site {
        Site::Edge { edge, .. } => roads.road_name(edge).to_owned(),
        Site::Node(node) => {
            let mut names: Vec<&str> = Vec::with_capacity(2);
            for neighbour in roads.neighbours(node) {
                let name = roads.road_name(neighbour.edge);
                if !names.contains(&name) {
                    names.push(name);
                }
            }
            names.join(" / ")
        }
    }
}

#[cfg(test)]
mod tests;
