//! Camera placement: where on the road graph each camera stands, which way it faces, which
//! district it lies in, and its GB/T 28181-style device id.
//!
//! About 40 % of cameras stand at intersections (each facing one approach), the rest along
//! road segments; both are weighted towards arterials and towards district centres, as real
//! deployments are.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::districts::{District, DistrictLayout};
use crate::geometry::{Point, Projection, bearing_deg};
use crate::roads::RoadGraph;

/// Share of cameras placed at intersections.
const AT_INTERSECTION: f64 = 0.4;
/// Distance from the intersection centre to an intersection camera, km.
const INTERSECTION_OFFSET_KM: f64 = 0.012;
/// Lateral distance from the road centre line to a roadside camera, km.
const ROADSIDE_OFFSET_KM: f64 = 0.006;

/// Where on the road graph a camera stands.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Site {
    /// At an intersection.
    Node(u32),
    /// Along a segment, `fraction` of the way from its `a` end to its `b` end.
    Edge { edge: u32, fraction: f32 },
}

/// A placed camera before it is given an id and gateway.
pub(crate) struct Placement {
    pub site: Site,
    pub point: Point,
    pub heading_deg: f32,
}

/// Place `count` cameras on the graph.
pub(crate) fn place(
    rng: &mut ChaCha8Rng,
    graph: &RoadGraph,
    layout: &DistrictLayout,
    count: usize,
) -> Vec<Placement> {
    let density = |p: Point| {
        let nearest = layout.sites[layout.nearest(p)];
        0.35 + (-nearest.distance_sq(p) / 16.0).exp()
    };
    let node_weights =
        cumulative(
            graph.nodes.iter().enumerate().map(|(index, &p)| {
                (1.0 + 2.0 * f64::from(graph.node_arterials[index])) * density(p)
            }),
        );
    let edge_weights = cumulative(graph.edges.iter().map(|edge| {
        let (a, b) = (graph.nodes[edge.a as usize], graph.nodes[edge.b as usize]);
        let mid = Point::new((a.x + b.x) / 2.0, (a.y + b.y) / 2.0);
        let road_weight = if edge.arterial { 3.0 } else { 1.0 };
        road_weight * f64::from(edge.length_m) * density(mid)
    }));
    let mut placements = Vec::with_capacity(count);
    for _ in 0..count {
        let placement = if rng.random_bool(AT_INTERSECTION) {
            let node = sample(rng, &node_weights);
            at_intersection(rng, graph, node)
        } else {
            let edge = sample(rng, &edge_weights);
            along_road(rng, graph, edge)
        };
        placements.push(placement);
    }
    placements
}

/// A camera at intersection `node`, facing one of its approaches.
fn at_intersection(rng: &mut ChaCha8Rng, graph: &RoadGraph, node: u32) -> Placement {
    let centre = graph.nodes[node as usize];
    let neighbours = graph.neighbours(node);
    let toward = graph.nodes[neighbours[rng.random_range(0..neighbours.len())].node as usize];
    let length = centre.distance(toward).max(1e-9);
    let point = Point::new(
        centre.x + (toward.x - centre.x) / length * INTERSECTION_OFFSET_KM,
        centre.y + (toward.y - centre.y) / length * INTERSECTION_OFFSET_KM,
    );
    Placement {
        site: Site::Node(node),
        point,
        heading_deg: bearing_deg(centre, toward),
    }
}

/// A camera along segment `edge`, facing along the road one way or the other.
fn along_road(rng: &mut ChaCha8Rng, graph: &RoadGraph, edge: u32) -> Placement {
    let segment = graph.edges[edge as usize];
    let (a, b) = (
        graph.nodes[segment.a as usize],
        graph.nodes[segment.b as usize],
    );
    let fraction: f32 = rng.random_range(0.1..0.9);
    let t = f64::from(fraction);
    let length = a.distance(b).max(1e-9);
    let side = if rng.random_bool(0.5) { 1.0 } else { -1.0 };
    let (normal_x, normal_y) = (-(b.y - a.y) / length * side, (b.x - a.x) / length * side);
    let point = Point::new(
        a.x + t * (b.x - a.x) + normal_x * ROADSIDE_OFFSET_KM,
        a.y + t * (b.y - a.y) + normal_y * ROADSIDE_OFFSET_KM,
    );
    let heading_deg = if rng.random_bool(0.5) {
        bearing_deg(a, b)
    } else {
        bearing_deg(b, a)
    };
    Placement {
        site: Site::Edge { edge, fraction },
        point,
        heading_deg,
    }
}

/// Running sums of weights, for sampling by binary search.
fn cumulative(weights: impl Iterator<Item = f64>) -> Vec<f64> {
    let mut total = 0.0;
    weights
        .map(|weight| {
            total += weight;
            total
        })
        .collect()
}

/// Draw an index with probability proportional to its weight.
fn sample(rng: &mut ChaCha8Rng, cumulative: &[f64]) -> u32 {
    let total = cumulative.last().copied().unwrap_or(0.0);
    let target = rng.random_range(0.0..1.0) * total;
    let index = cumulative.partition_point(|&sum| sum <= target);
    index.min(cumulative.len().saturating_sub(1)) as u32
}

/// The district containing `point` and its rounded (lon, lat). Points on a shared boundary
/// (or in a rounding sliver between two polygons) are nudged towards the nearest district
/// centre until some polygon contains them, so every camera lies inside its district.
pub(crate) fn locate(
    point: Point,
    layout: &DistrictLayout,
    districts: &[District],
    projection: &Projection,
) -> (usize, f64, f64) {
    let nearest = layout.nearest(point);
    let mut current = point;
    for _ in 0..100 {
        let (lon, lat) = projection.to_lon_lat(current);
        if districts[nearest].contains(lon, lat) {
            return (nearest, lon, lat);
        }
        if let Some(index) = districts.iter().position(|d| d.contains(lon, lat)) {
            return (index, lon, lat);
        }
        let site = layout.sites[nearest];
        // One metre towards the centre.
        let length = site.distance(current).max(1e-9);
        current = Point::new(
            current.x + (site.x - current.x) / length * 0.001,
            current.y + (site.y - current.y) / length * 0.001,
        );
    }
    let (lon, lat) = projection.to_lon_lat(layout.sites[nearest]);
    (nearest, lon, lat)
}

/// A 20-digit GB/T 28181-style device id: 6-digit admin code of the district, 2-digit
/// grassroots unit ("00"), 2-digit industry code ("00", public security road network),
/// 3-digit type code and a 7-digit serial.
pub fn device_id(admin_code: u32, type_code: u16, serial: u32) -> String {
    format!(
        "{admin_code:06}0000{type_code:03}{:07}",
        serial % 10_000_000
    )
}

/// GB/T 28181 type code of a camera.
pub const CAMERA_TYPE_CODE: u16 = 131;

/// Cameras standing at each intersection and along each segment, for the traffic walker.
#[derive(Debug, Clone, Default)]
pub(crate) struct CamerasOnRoads {
    node_offsets: Vec<u32>,
    node_cameras: Vec<u32>,
    edge_offsets: Vec<u32>,
    /// (camera index, fraction from the segment's `a` end), sorted by fraction per segment.
    edge_cameras: Vec<(u32, f32)>,
}

impl CamerasOnRoads {
    /// Index cameras by where they stand.
    pub fn new(sites: &[Site], nodes: usize, edges: usize) -> Self {
        let mut per_node: Vec<Vec<u32>> = vec![Vec::new(); nodes];
        let mut per_edge: Vec<Vec<(u32, f32)>> = vec![Vec::new(); edges];
        for (camera, site) in sites.iter().enumerate() {
            match *site {
                Site::Node(node) => per_node[node as usize].push(camera as u32),
                Site::Edge { edge, fraction } => {
                    per_edge[edge as usize].push((camera as u32, fraction));
                }
            }
        }
        for list in &mut per_edge {
            list.sort_by(|x, y| x.1.total_cmp(&y.1).then(x.0.cmp(&y.0)));
        }
        let (node_offsets, node_cameras) = flatten(per_node);
        let (edge_offsets, edge_cameras) = flatten(per_edge);
        Self {
            node_offsets,
            node_cameras,
            edge_offsets,
            edge_cameras,
        }
    }

    /// Cameras at intersection `node`.
    pub fn at_node(&self, node: u32) -> &[u32] {
        let (start, end) = (
            self.node_offsets[node as usize],
            self.node_offsets[node as usize + 1],
        );
        &self.node_cameras[start as usize..end as usize]
    }

    /// Cameras along segment `edge`, ordered from its `a` end to its `b` end.
    pub fn on_edge(&self, edge: u32) -> &[(u32, f32)] {
        let (start, end) = (
            self.edge_offsets[edge as usize],
            self.edge_offsets[edge as usize + 1],
        );
        &self.edge_cameras[start as usize..end as usize]
    }
}

/// Concatenate lists into CSR form.
fn flatten<T>(lists: Vec<Vec<T>>) -> (Vec<u32>, Vec<T>) {
    let mut offsets = Vec::with_capacity(lists.len() + 1);
    let mut flat = Vec::new();
    offsets.push(0);
    for list in lists {
        flat.extend(list);
        offsets.push(flat.len() as u32);
    }
    (offsets, flat)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_ids_have_twenty_digits() {
        let id = device_id(440_305, CAMERA_TYPE_CODE, 42);
        assert_eq!(id, "44030500001310000042");
        assert_eq!(id.len(), 20);
    }

    #[test]
    fn csr_index_orders_edge_cameras() {
        let sites = [
            Site::Edge {
                edge: 1,
                fraction: 0.8,
            },
            Site::Node(0),
            Site::Edge {
                edge: 1,
                fraction: 0.2,
            },
        ];
        let index = CamerasOnRoads::new(&sites, 2, 2);
        assert_eq!(index.at_node(0), &[1]);
        assert!(index.at_node(1).is_empty() && index.on_edge(0).is_empty());
        assert_eq!(index.on_edge(1), &[(2, 0.2), (0, 0.8)]);
    }
}
