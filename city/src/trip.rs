//! One subject's trip: a biased random walk over the road graph, yielding the cameras it
//! passes and when.
//!
//! The walker keeps a preferred heading that drifts slowly and, at each intersection, takes
//! the exit that best matches it plus some noise, never turning back unless it must. That
//! gives long, plausible, district-crossing routes at the cost of a few random numbers per
//! intersection — no shortest-path search.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::City;

/// Marks "no segment" for the first step of a trip (standing at the start intersection).
const NO_EDGE: u32 = u32::MAX;
/// Weight of noise against the preferred heading when choosing an exit.
const WANDER: f32 = 0.9;
/// Largest heading drift per intersection, radians (small-angle rotation).
const DRIFT: f64 = 0.12;

/// Speeds and trip length of one subject.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Motion {
    /// Speed on arterials, metres per millisecond.
    pub arterial_m_per_ms: f64,
    /// Speed on local roads, metres per millisecond.
    pub local_m_per_ms: f64,
    /// Number of segments to travel at most.
    pub max_steps: u32,
}

/// The state of a trip in progress.
#[derive(Debug, Clone)]
pub(crate) struct Trip {
    motion: Motion,
    heading: (f64, f64),
    previous_node: u32,
    node: u32,
    end_ms: f64,
    steps_left: u32,
    step_edge: u32,
    step_reversed: bool,
    step_start_ms: f64,
    step_duration_ms: f64,
    edge_position: usize,
    node_position: usize,
    /// Direction of the segment being travelled (east, north); zero before the first one.
    step_direction: (f64, f64),
    /// Intersections visited so far, when recording truth.
    pub nodes: Option<Vec<u32>>,
}

impl Trip {
    /// A trip starting at intersection `start_node` at `start_ms`, ending by `end_ms`.
    pub fn new(
        rng: &mut ChaCha8Rng,
        start_node: u32,
        start_ms: f64,
        end_ms: f64,
        motion: Motion,
        record_nodes: bool,
    ) -> Self {
        let angle = rng.random_range(0.0..std::f64::consts::TAU);
        Self {
            motion,
            heading: (angle.cos(), angle.sin()),
            previous_node: start_node,
            node: start_node,
            end_ms,
            steps_left: motion.max_steps,
            step_edge: NO_EDGE,
            step_reversed: false,
            step_start_ms: start_ms,
            step_duration_ms: 0.0,
            edge_position: 0,
            node_position: 0,
            step_direction: (0.0, 0.0),
            nodes: record_nodes.then(|| vec![start_node]),
        }
    }

    /// The next camera passed (camera index, true time in ms), or `None` when the trip is
    /// over (its length is used up or the simulated window has ended). Passes come in time
    /// order.
    pub fn next_pass(&mut self, city: &City, rng: &mut ChaCha8Rng) -> Option<(u32, f64)> {
        let on_roads = city.cameras_on_roads();
        loop {
            if self.step_edge != NO_EDGE {
                let along = on_roads.on_edge(self.step_edge);
                if self.edge_position < along.len() {
                    let k = self.edge_position;
                    self.edge_position += 1;
                    let (camera, fraction) = if self.step_reversed {
                        let (camera, fraction) = along[along.len() - 1 - k];
                        (camera, 1.0 - fraction)
                    } else {
                        along[k]
                    };
                    let at = self.step_start_ms + f64::from(fraction) * self.step_duration_ms;
                    return (at < self.end_ms).then_some((camera, at));
                }
            }
            let at_node = on_roads.at_node(self.node);
            if self.node_position < at_node.len() {
                let camera = at_node[self.node_position];
                self.node_position += 1;
                let at = self.step_start_ms + self.step_duration_ms;
                return (at < self.end_ms).then_some((camera, at));
            }
            if !self.advance(city, rng) {
                return None;
            }
        }
    }

    /// Move on to the next intersection; false when the trip is over.
    fn advance(&mut self, city: &City, rng: &mut ChaCha8Rng) -> bool {
        let arrival_ms = self.step_start_ms + self.step_duration_ms;
        if self.steps_left == 0 || arrival_ms >= self.end_ms {
            return false;
        }
        let neighbours = city.roads.neighbours(self.node);
        let heading = (self.heading.0 as f32, self.heading.1 as f32);
        let mut best = None;
        let mut best_score = f32::NEG_INFINITY;
        for neighbour in neighbours {
            if neighbour.node == self.previous_node && neighbours.len() > 1 {
                continue;
            }
            let alignment = neighbour.direction.0 * heading.0 + neighbour.direction.1 * heading.1;
            let score = alignment + rng.random::<f32>() * WANDER;
            if score > best_score {
                best_score = score;
                best = Some(*neighbour);
            }
        }
        let Some(next) = best else {
            return false;
        };
        self.steer(next.direction, rng);
        let edge = city.roads.edges[next.edge as usize];
        let speed = if edge.arterial {
            self.motion.arterial_m_per_ms
        } else {
            self.motion.local_m_per_ms
        };
        // Traffic lights and congestion: ±15 % per segment.
        let slowdown = rng.random_range(0.85..1.15);
        self.step_start_ms = arrival_ms;
        self.step_duration_ms = f64::from(edge.length_m) / speed.max(1e-6) * slowdown;
        self.step_edge = next.edge;
        self.step_reversed = edge.a != self.node;
        self.previous_node = self.node;
        self.node = next.node;
        self.edge_position = 0;
        self.node_position = 0;
        self.steps_left -= 1;
        self.step_direction = (f64::from(next.direction.0), f64::from(next.direction.1));
        if let Some(nodes) = &mut self.nodes {
            nodes.push(next.node);
        }
        true
    }

    /// How the subject is moving at its latest pass: compass heading of travel (degrees,
    /// 0 north, 90 east) and speed (km/h). On the current segment, its direction and the
    /// speed it is travelled at (with the segment's slowdown); before the first segment
    /// (cameras at the start intersection), the trip's preferred heading and local speed.
    /// Draws no random numbers.
    pub fn movement(&self, city: &City) -> (f32, f32) {
        let local_kmh = self.motion.local_m_per_ms * 3600.0;
        if self.step_edge == NO_EDGE || self.step_duration_ms <= 0.0 {
            let heading = crate::attributes::heading_of(self.heading).unwrap_or(0.0);
            return (heading, local_kmh as f32);
        }
        let heading = crate::attributes::heading_of(self.step_direction)
            .or_else(|| crate::attributes::heading_of(self.heading))
            .unwrap_or(0.0);
        let length_m = city
            .roads
            .edges
            .get(self.step_edge as usize)
            .map_or(0.0, |edge| f64::from(edge.length_m));
        let speed_kmh = if length_m > 0.0 {
            length_m / self.step_duration_ms * 3600.0
        } else {
            local_kmh
        };
        (heading, speed_kmh as f32)
    }

    /// Let the preferred heading drift, and turn it round when the road network forced the
    /// walker against it (the city edge).
    fn steer(&mut self, taken: (f32, f32), rng: &mut ChaCha8Rng) {
        let (hx, hy) = self.heading;
        if f64::from(taken.0) * hx + f64::from(taken.1) * hy < -0.3 {
            self.heading = (f64::from(taken.0), f64::from(taken.1));
            return;
        }
        let turn = rng.random_range(-DRIFT..DRIFT);
        let (x, y) = (hx - turn * hy, hy + turn * hx);
        let length = (x * x + y * y).sqrt().max(1e-9);
        self.heading = (x / length, y / length);
    }
}
