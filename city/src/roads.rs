//! The road graph: a jittered grid of intersections joined by named roads, every sixth
//! row and column an arterial ("Dadao"), the rest local roads ("Lu" east–west, "Jie"
//! north–south).
//!
//! Stored compactly (flat arrays, CSR adjacency) because the traffic generator walks it at
//! millions of steps per second.

use rand::Rng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::geometry::Point;

/// Every how many rows/columns a road is an arterial.
const ARTERIAL_EVERY: usize = 6;

/// Syllables combined into road names ("Xin" + "hai" → "Xinhai Lu").
const FIRST: &[&str] = &[
    "Xin", "Bin", "Hong", "Long", "Fu", "Hua", "Jin", "Qiao", "Shen", "Nan", "Bei", "Dong", "Xi",
    "Zhong", "Ping", "Kang", "Min", "Ren", "He", "Tai", "Bao", "Guang", "Yue", "Chun",
];
/// Second syllables of road names.
const SECOND: &[&str] = &[
    "hai", "an", "li", "hua", "tian", "shan", "he", "feng", "xing", "ming", "cheng", "yuan", "lin",
    "gang", "sheng", "fu", "qiao", "jing", "yang", "yun", "tong", "hu", "ling", "de",
];

/// One road segment between two adjacent intersections.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Edge {
    /// One end (intersection index).
    pub a: u32,
    /// The other end.
    pub b: u32,
    /// Length, metres.
    pub length_m: f32,
    /// Index into [`RoadGraph::road_names`].
    pub road: u32,
    /// Whether the segment is part of an arterial (faster, more cameras).
    pub arterial: bool,
}

/// One entry of an intersection's neighbour list.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Neighbour {
    /// The adjacent intersection.
    pub node: u32,
    /// The segment leading there.
    pub edge: u32,
    /// Unit direction towards it (east, north).
    pub direction: (f32, f32),
}

/// Intersections and road segments of the city.
#[derive(Debug, Clone)]
pub struct RoadGraph {
    /// Intersection positions on the kilometre plane.
    pub nodes: Vec<Point>,
    /// Road segments.
    pub edges: Vec<Edge>,
    /// Road names, indexed by [`Edge::road`].
    pub road_names: Vec<String>,
    /// Number of arterials crossing at each intersection (0, 1 or 2).
    pub node_arterials: Vec<u8>,
    /// Mean distance between adjacent intersections, km.
    pub spacing_km: f64,
    neighbour_offsets: Vec<u32>,
    neighbours: Vec<Neighbour>,
}

impl RoadGraph {
    /// A grid over a `width_km` × `height_km` box with about `target_nodes` intersections.
    pub fn generate(
        rng: &mut ChaCha8Rng,
        width_km: f64,
        height_km: f64,
        target_nodes: usize,
    ) -> Self {
        let spacing = (width_km * height_km / target_nodes.max(4) as f64).sqrt();
        let cols = ((width_km / spacing).round() as usize).max(2);
        let rows = ((height_km / spacing).round() as usize).max(2);
        let (step_x, step_y) = (width_km / cols as f64, height_km / rows as f64);
        let mut nodes = Vec::with_capacity(cols * rows);
        let mut node_arterials = Vec::with_capacity(cols * rows);
        for row in 0..rows {
            for col in 0..cols {
                let x = (col as f64 + 0.5 + rng.random_range(-0.3..0.3)) * step_x;
                let y = (row as f64 + 0.5 + rng.random_range(-0.3..0.3)) * step_y;
                nodes.push(Point::new(x, y));
                node_arterials.push(u8::from(is_arterial(row)) + u8::from(is_arterial(col)));
            }
        }
        let road_names = road_names(rng, rows, cols);
        let mut edges = Vec::with_capacity(2 * cols * rows);
        let id = |row: usize, col: usize| (row * cols + col) as u32;
        for row in 0..rows {
            for col in 0..cols {
                if col + 1 < cols {
                    edges.push(edge(
                        &nodes,
                        id(row, col),
                        id(row, col + 1),
                        row,
                        is_arterial(row),
                    ));
                }
                if row + 1 < rows {
                    let road = rows + col;
                    edges.push(edge(
                        &nodes,
                        id(row, col),
                        id(row + 1, col),
                        road,
                        is_arterial(col),
                    ));
                }
            }
        }
        let (neighbour_offsets, neighbours) = adjacency(&nodes, &edges);
        Self {
            nodes,
            edges,
            road_names,
            node_arterials,
            spacing_km: (step_x + step_y) / 2.0,
            neighbour_offsets,
            neighbours,
        }
    }

    /// The intersections adjacent to `node`.
    pub fn neighbours(&self, node: u32) -> &[Neighbour] {
        let start = self.neighbour_offsets[node as usize] as usize;
        let end = self.neighbour_offsets[node as usize + 1] as usize;
        &self.neighbours[start..end]
    }

    /// Whether a road segment joins `a` and `b` directly.
    pub fn are_adjacent(&self, a: u32, b: u32) -> bool {
        (a as usize) < self.nodes.len() && self.neighbours(a).iter().any(|n| n.node == b)
    }

    /// Name of the road an edge belongs to.
    pub fn road_name(&self, edge: u32) -> &str {
        &self.road_names[self.edges[edge as usize].road as usize]
    }
}

/// Whether grid line `index` is an arterial.
fn is_arterial(index: usize) -> bool {
    index % ARTERIAL_EVERY == ARTERIAL_EVERY / 2
}

/// Build one edge between nodes `a` and `b`.
fn edge(nodes: &[Point], a: u32, b: u32, road: usize, arterial: bool) -> Edge {
    let length_km = nodes[a as usize].distance(nodes[b as usize]);
    Edge {
        a,
        b,
        length_m: (length_km * 1000.0) as f32,
        road: road as u32,
        arterial,
    }
}

/// Names for `rows` east–west roads followed by `cols` north–south roads, all distinct.
fn road_names(rng: &mut ChaCha8Rng, rows: usize, cols: usize) -> Vec<String> {
    let mut stems: Vec<String> = FIRST
        .iter()
        .flat_map(|first| SECOND.iter().map(move |second| format!("{first}{second}")))
        .collect();
    stems.shuffle(rng);
    let combos = stems.len();
    let mut names = Vec::with_capacity(rows + cols);
    for index in 0..rows + cols {
        let (line, east_west) = if index < rows {
            (index, true)
        } else {
            (index - rows, false)
        };
        let kind = match (is_arterial(line), east_west) {
            (true, _) => "Dadao",
            (false, true) => "Lu",
            (false, false) => "Jie",
        };
        let stem = &stems[index % combos];
        match index / combos {
            0 => names.push(format!("{stem} {kind}")),
            round => names.push(format!("{stem} {kind} {}", round + 1)),
        }
    }
    names
}

/// CSR adjacency lists (neighbours of node i at offsets[i]..offsets[i+1]).
fn adjacency(nodes: &[Point], edges: &[Edge]) -> (Vec<u32>, Vec<Neighbour>) {
    let mut degree = vec![0u32; nodes.len() + 1];
    for edge in edges {
        degree[edge.a as usize + 1] += 1;
        degree[edge.b as usize + 1] += 1;
    }
    for i in 1..degree.len() {
        degree[i] += degree[i - 1];
    }
    let offsets = degree;
    let mut fill = offsets.clone();
    let empty = Neighbour {
        node: 0,
        edge: 0,
        direction: (0.0, 0.0),
    };
    let mut neighbours = vec![empty; edges.len() * 2];
    for (index, edge) in edges.iter().enumerate() {
        for (from, to) in [(edge.a, edge.b), (edge.b, edge.a)] {
            let (p, q) = (nodes[from as usize], nodes[to as usize]);
            let length = p.distance(q).max(1e-9);
            let direction = (((q.x - p.x) / length) as f32, ((q.y - p.y) / length) as f32);
            let slot = &mut fill[from as usize];
            neighbours[*slot as usize] = Neighbour {
                node: to,
                edge: index as u32,
                direction,
            };
            *slot += 1;
        }
    }
    (offsets, neighbours)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn grid_is_connected_and_symmetric() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let graph = RoadGraph::generate(&mut rng, 84.0, 40.0, 2000);
        assert!(graph.nodes.len() > 1500 && graph.nodes.len() < 2500);
        for (index, edge) in graph.edges.iter().enumerate() {
            assert!(graph.are_adjacent(edge.a, edge.b) && graph.are_adjacent(edge.b, edge.a));
            assert!(edge.length_m > 0.0, "edge {index}");
        }
        let mut seen = vec![false; graph.nodes.len()];
        let mut stack = vec![0u32];
        seen[0] = true;
        while let Some(node) = stack.pop() {
            for n in graph.neighbours(node) {
                if !seen[n.node as usize] {
                    seen[n.node as usize] = true;
                    stack.push(n.node);
                }
            }
        }
        assert!(seen.iter().all(|&s| s));
        let mut names = graph.road_names.clone();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), graph.road_names.len());
    }
}
