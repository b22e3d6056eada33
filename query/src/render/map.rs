//! The track map (`/v1/track.png`): the cameras as a faint background, district outlines,
//! the path with numbered, time-labelled points coloured by district, impossible hops
//! marked, and a legend. Zoomed to the track, readable at a glance.
//!
//! What does not depend on the track is prepared once per registry ([`MapBackground`]):
//! each district's outline (the convex hull of its cameras; the projection is affine, so
//! the hull of the projected cameras is the projected hull) and a grid index of the
//! cameras, so a map draws the few dozen outline points and only the cameras in its view
//! instead of walking a 140,000-camera registry per request.

use std::collections::{BTreeMap, HashMap};

use camtrail_model::CameraRegistry;
use camtrail_render::{Canvas, fit_width, text_size};
use image::Rgb;

use super::basemap::{BasemapBytes, DistrictShape, RoadLine, basemap_bytes, road_lines};
use crate::track::{MatchKind, Track};

const MAP_SIZE: u32 = 900;
const LEGEND_WIDTH: u32 = 340;
const MARGIN: f64 = 40.0;
const BACKGROUND: Rgb<u8> = Rgb([250, 250, 247]);
const CAMERA_DOT: Rgb<u8> = Rgb([200, 200, 200]);
const ROAD: Rgb<u8> = Rgb([232, 228, 218]);
const DISTRICT_LINE: Rgb<u8> = Rgb([150, 150, 160]);
const INK: Rgb<u8> = Rgb([30, 30, 30]);
const IMPOSSIBLE: Rgb<u8> = Rgb([220, 20, 20]);
const LABEL_FILL: Rgb<u8> = Rgb([255, 255, 255]);
/// A cloned plate's second vehicle.
const SECOND_VEHICLE: Rgb<u8> = Rgb([90, 40, 140]);
/// Sightings attributed to a look-alike vehicle.
const ATTRIBUTED: Rgb<u8> = Rgb([120, 120, 120]);

/// Colours for districts, in the order they appear on the track.
const PALETTE: [Rgb<u8>; 10] = [
    Rgb([31, 119, 180]),
    Rgb([255, 127, 14]),
    Rgb([44, 160, 44]),
    Rgb([148, 103, 189]),
    Rgb([140, 86, 75]),
    Rgb([227, 119, 194]),
    Rgb([23, 190, 207]),
    Rgb([188, 189, 34]),
    Rgb([127, 127, 127]),
    Rgb([214, 39, 40]),
];

/// Text around the map.
#[derive(Debug, Clone)]
pub struct MapText {
    /// First legend line (e.g. the asked plate).
    pub title: String,
    /// Further legend lines (window, case, time zone).
    pub lines: Vec<String>,
    /// Formats a unix-ms instant as the point label (e.g. `14:03:22` in the display zone).
    pub time_label: fn(i64, &chrono_tz::Tz) -> String,
    /// The display time zone.
    pub zone: chrono_tz::Tz,
    /// Where sightings attributed to a look-alike vehicle were made (lat, lon): drawn as grey
    /// crosses, so the reader sees what was left out.
    pub attributed: Vec<(f64, f64)>,
}

/// Grid cell of the camera index, degrees (~1 km).
const CELL_DEG: f64 = 0.01;

/// One district's outline: its cameras' convex hull and their mean position, (lat, lon).
#[derive(Debug, Clone)]
struct DistrictOutline {
    name: String,
    hull: Vec<(f64, f64)>,
    center: (f64, f64),
}

/// The part of every track map that depends only on the camera registry; also the
/// workspace's offline base map.
#[derive(Debug, Clone)]
pub struct MapBackground {
    districts: Vec<DistrictOutline>,
    /// Camera positions (lat, lon) by grid cell.
    cells: HashMap<(i64, i64), Vec<(f64, f64)>>,
    /// The roads as far as the registry knows them.
    roads: Vec<RoadLine>,
    /// `/v1/basemap`'s answer, made once per registry.
    basemap: BasemapBytes,
}

fn cell_of(lat: f64, lon: f64) -> (i64, i64) {
    (
        (lat / CELL_DEG).floor() as i64,
        (lon / CELL_DEG).floor() as i64,
    )
}

impl MapBackground {
    /// Outlines and the camera index of `registry`.
    pub fn new(registry: &CameraRegistry) -> Self {
        let mut by_district: BTreeMap<&str, Vec<(f64, f64)>> = BTreeMap::new();
        let mut cells: HashMap<(i64, i64), Vec<(f64, f64)>> = HashMap::new();
        for camera in registry.cameras() {
            let position = (camera.lat, camera.lon);
            by_district
                .entry(camera.district.as_str())
                .or_default()
                .push(position);
            cells
                .entry(cell_of(camera.lat, camera.lon))
                .or_default()
                .push(position);
        }
        let districts: Vec<DistrictOutline> = by_district
            .into_iter()
            .map(|(name, positions)| {
                let (sum_lat, sum_lon) = positions
                    .iter()
                    .fold((0.0, 0.0), |acc, p| (acc.0 + p.0, acc.1 + p.1));
                let count = positions.len() as f64;
                DistrictOutline {
                    name: name.to_string(),
                    center: (sum_lat / count, sum_lon / count),
                    hull: convex_hull(positions),
                }
            })
            .collect();
        let roads = road_lines(registry);
        let shapes: Vec<DistrictShape<'_>> = districts
            .iter()
            .map(|d: &DistrictOutline| DistrictShape {
                name: &d.name,
                center: d.center,
                hull: &d.hull,
            })
            .collect();
        let basemap = basemap_bytes(registry, &shapes, &roads);
        Self {
            districts,
            cells,
            roads,
            basemap,
        }
    }

    /// The offline base map's JSON (districts, roads, cameras).
    pub fn basemap(&self) -> &BasemapBytes {
        &self.basemap
    }

    /// Cameras (lat, lon) whose grid cell meets `view`'s square.
    fn cameras_in(&self, view: &View) -> impl Iterator<Item = (f64, f64)> + '_ {
        let ((north, west), (south, east)) = view.corners();
        let (south_cell, west_cell) = cell_of(south, west);
        let (north_cell, east_cell) = cell_of(north, east);
        let rows = south_cell..=north_cell;
        rows.flat_map(move |row| (west_cell..=east_cell).map(move |column| (row, column)))
            .filter_map(|cell| self.cells.get(&cell))
            .flatten()
            .copied()
    }
}

/// Equirectangular projection of a lat/lon box onto the map square.
struct View {
    min_lon: f64,
    max_lat: f64,
    scale: f64,
    lon_factor: f64,
    offset: (f64, f64),
}

impl View {
    fn fit(points: &[(f64, f64)]) -> Self {
        let (mut min_lat, mut max_lat) = (f64::MAX, f64::MIN);
        let (mut min_lon, mut max_lon) = (f64::MAX, f64::MIN);
        for (lat, lon) in points {
            min_lat = min_lat.min(*lat);
            max_lat = max_lat.max(*lat);
            min_lon = min_lon.min(*lon);
            max_lon = max_lon.max(*lon);
        }
        if points.is_empty() {
            (min_lat, max_lat, min_lon, max_lon) = (0.0, 0.01, 0.0, 0.01);
        }
        let lon_factor = ((min_lat + max_lat) / 2.0).to_radians().cos().max(0.1);
        // At least ~3 km across, and 15% padding around the track.
        let min_span = 0.027;
        let lat_span = (max_lat - min_lat).max(min_span) * 1.3;
        let lon_span = ((max_lon - min_lon) * lon_factor).max(min_span) * 1.3;
        let (center_lat, center_lon) = ((min_lat + max_lat) / 2.0, (min_lon + max_lon) / 2.0);
        let span = lat_span.max(lon_span);
        let drawable = f64::from(MAP_SIZE) - 2.0 * MARGIN;
        let scale = drawable / span;
        let min_lon = center_lon - span / 2.0 / lon_factor;
        let max_lat = center_lat + span / 2.0;
        Self {
            min_lon,
            max_lat,
            scale,
            lon_factor,
            offset: (MARGIN, MARGIN),
        }
    }

    fn pixel(&self, lat: f64, lon: f64) -> (f64, f64) {
        (
            self.offset.0 + (lon - self.min_lon) * self.lon_factor * self.scale,
            self.offset.1 + (self.max_lat - lat) * self.scale,
        )
    }

    fn inside(&self, (x, y): (f64, f64)) -> bool {
        (0.0..f64::from(MAP_SIZE)).contains(&x) && (0.0..f64::from(MAP_SIZE)).contains(&y)
    }

    /// (lat, lon) of the map square's top-left and bottom-right corners.
    fn corners(&self) -> ((f64, f64), (f64, f64)) {
        let at = |x: f64, y: f64| {
            (
                self.max_lat - (y - self.offset.1) / self.scale,
                self.min_lon + (x - self.offset.0) / (self.lon_factor * self.scale),
            )
        };
        let size = f64::from(MAP_SIZE);
        (at(0.0, 0.0), at(size, size))
    }
}

/// Convex hull (monotone chain) of pixel points, counter-clockwise.
fn convex_hull(mut points: Vec<(f64, f64)>) -> Vec<(f64, f64)> {
    points.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    points.dedup();
    if points.len() < 3 {
        return points;
    }
    let cross = |o: (f64, f64), a: (f64, f64), b: (f64, f64)| {
        (a.0 - o.0) * (b.1 - o.1) - (a.1 - o.1) * (b.0 - o.0)
    };
    let mut hull: Vec<(f64, f64)> = Vec::with_capacity(points.len() * 2);
    for pass in 0..2 {
        let start = hull.len();
        let iter: Box<dyn Iterator<Item = &(f64, f64)>> = if pass == 0 {
            Box::new(points.iter())
        } else {
            Box::new(points.iter().rev())
        };
        for &point in iter {
            while hull.len() >= start + 2
                && cross(hull[hull.len() - 2], hull[hull.len() - 1], point) <= 0.0
            {
                hull.pop();
            }
            hull.push(point);
        }
        hull.pop();
    }
    hull
}

/// Render the map of `track` over `background` (the registry's cameras and districts).
pub fn render_track_map(track: &Track, background: &MapBackground, text: &MapText) -> Canvas {
    let points: Vec<(f64, f64)> = track.sightings.iter().map(|s| (s.lat, s.lon)).collect();
    let second = track.second_vehicle.as_deref();
    let mut all_points = points.clone();
    if let Some(second) = second {
        all_points.extend(second.sightings.iter().map(|s| (s.lat, s.lon)));
    }
    let view = View::fit(&all_points);
    let pixels: Vec<(f64, f64)> = points
        .iter()
        .map(|(lat, lon)| view.pixel(*lat, *lon))
        .collect();
    // Labels never overlap each other or a point: each tries eight places around its point
    // and is left out where none is free. A few points carry their time on the map; a
    // crowded track has numbers on the map and its times in a column beside the legend.
    let n = track.sightings.len();
    let second_pixels: Vec<(f64, f64)> = second
        .map(|second| {
            second
                .sightings
                .iter()
                .map(|s| view.pixel(s.lat, s.lon))
                .collect()
        })
        .unwrap_or_default();
    // Nothing drawn may be covered: both vehicles' points, the crosses of impossible hops
    // and of sightings attributed to look-alikes.
    let impossible_marks = track
        .links
        .iter()
        .filter(|link| link.impossible)
        .map(|link| {
            let (a, b) = (pixels[link.from_index], pixels[link.to_index]);
            ((a.0 + b.0) / 2.0, (a.1 + b.1) / 2.0)
        });
    let attributed_marks = text
        .attributed
        .iter()
        .map(|&(lat, lon)| view.pixel(lat, lon));
    let mut occupied: Vec<Rect> = pixels
        .iter()
        .chain(&second_pixels)
        .map(|p| Rect::around(*p, 8.0))
        .chain(
            impossible_marks
                .chain(attributed_marks)
                .map(|p| Rect::around(p, 7.0)),
        )
        .collect();
    let timed = |index: usize| {
        format!(
            "{} {}",
            index + 1,
            (text.time_label)(track.sightings[index].captured_at_ms, &text.zone)
        )
    };
    let with_times = n <= TIMED_LABELS_MAX
        && place_labels(&pixels, &occupied, timed)
            .iter()
            .all(Option::is_some);
    let times_column = if with_times || n == 0 { 0 } else { TIMES_WIDTH };
    let mut canvas = Canvas::new(MAP_SIZE + LEGEND_WIDTH + times_column, MAP_SIZE, BACKGROUND);

    // Background: the roads, the cameras in view, and the outline of every district around
    // its cameras.
    let ((north, west), (south, east)) = view.corners();
    let in_box =
        |&(lat, lon): &(f64, f64)| (south..=north).contains(&lat) && (west..=east).contains(&lon);
    for road in &background.roads {
        if road.points.iter().any(in_box) {
            for pair in road.points.windows(2) {
                let (a, b) = (
                    view.pixel(pair[0].0, pair[0].1),
                    view.pixel(pair[1].0, pair[1].1),
                );
                canvas.line(a, b, 2.0, ROAD, None);
            }
        }
    }
    for (lat, lon) in background.cameras_in(&view) {
        let pixel = view.pixel(lat, lon);
        if view.inside(pixel) {
            let (x, y) = (pixel.0.round() as i64, pixel.1.round() as i64);
            for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                canvas.blend(x + dx, y + dy, CAMERA_DOT, 0.9);
            }
        }
    }
    for district in &background.districts {
        let hull: Vec<(f64, f64)> = district
            .hull
            .iter()
            .map(|(lat, lon)| view.pixel(*lat, *lon))
            .collect();
        for pair in 0..hull.len() {
            let (a, b) = (hull[pair], hull[(pair + 1) % hull.len()]);
            canvas.line(a, b, 1.0, DISTRICT_LINE, Some((6.0, 4.0)));
        }
        let center = view.pixel(district.center.0, district.center.1);
        if view.inside(center) {
            let (w, _) = text_size(&district.name, 1);
            canvas.text(
                ((center.0 as i64) - w / 2, center.1 as i64),
                &district.name,
                1,
                DISTRICT_LINE,
            );
        }
    }

    // Colours by district in order of first appearance.
    let mut colors: Vec<(String, Rgb<u8>)> = Vec::new();
    let mut color_of = |district: &str| -> Rgb<u8> {
        if let Some((_, color)) = colors.iter().find(|(d, _)| d == district) {
            return *color;
        }
        let color = PALETTE[colors.len() % PALETTE.len()];
        colors.push((district.to_string(), color));
        color
    };
    let point_colors: Vec<Rgb<u8>> = track
        .sightings
        .iter()
        .map(|s| color_of(&s.district))
        .collect();

    // The path: one segment per link, impossible hops dashed red with a cross midway.
    for link in &track.links {
        let (a, b) = (pixels[link.from_index], pixels[link.to_index]);
        if link.impossible {
            canvas.line(a, b, 3.0, IMPOSSIBLE, Some((8.0, 6.0)));
            let mid = ((a.0 + b.0) / 2.0, (a.1 + b.1) / 2.0);
            cross(&mut canvas, mid, 7.0, 3.0, IMPOSSIBLE);
        } else {
            canvas.line(a, b, 3.0, point_colors[link.from_index], None);
        }
    }

    // Sightings attributed to look-alikes: small grey crosses under everything else.
    for &(lat, lon) in &text.attributed {
        let p = view.pixel(lat, lon);
        if view.inside(p) {
            cross(&mut canvas, p, 4.0, 1.5, ATTRIBUTED);
        }
    }
    // A cloned plate's second vehicle: its own dashed path, hollow points labelled B1, B2…
    if let Some(second) = second {
        for link in &second.links {
            let (a, b) = (second_pixels[link.from_index], second_pixels[link.to_index]);
            canvas.line(a, b, 3.0, SECOND_VEHICLE, Some((10.0, 4.0)));
        }
        for pixel in &second_pixels {
            canvas.disc(*pixel, 6.0, LABEL_FILL);
            canvas.ring(*pixel, 6.0, 2.5, SECOND_VEHICLE);
        }
    }

    // Points, numbered from 1, then their labels.
    for (index, sighting) in track.sightings.iter().enumerate() {
        let pixel = pixels[index];
        let color = point_colors[index];
        if sighting.match_kind == MatchKind::Fuzzy {
            canvas.disc(pixel, 7.0, LABEL_FILL);
            canvas.ring(pixel, 6.0, 2.5, color);
        } else {
            canvas.disc(pixel, 7.0, color);
            canvas.ring(pixel, 7.5, 1.0, INK);
        }
    }
    let labels: Vec<String> = (0..n)
        .map(|i| {
            if with_times {
                timed(i)
            } else {
                (i + 1).to_string()
            }
        })
        .collect();
    for (index, place) in place_labels(&pixels, &occupied, |i| labels[i].clone())
        .into_iter()
        .enumerate()
    {
        if let Some(rect) = place {
            canvas.label(
                (rect.x0 + 2, rect.y0 + 1),
                &labels[index],
                1,
                INK,
                LABEL_FILL,
            );
            occupied.push(rect);
        }
    }
    // The second vehicle's labels (B1, B2…) where there is room after the first's.
    let second_labels = place_labels(&second_pixels, &occupied, |i| format!("B{}", i + 1));
    for (index, place) in second_labels.into_iter().enumerate() {
        if let Some(rect) = place {
            let label = format!("B{}", index + 1);
            canvas.label(
                (rect.x0 + 2, rect.y0 + 1),
                &label,
                1,
                SECOND_VEHICLE,
                LABEL_FILL,
            );
        }
    }
    draw_scale_and_north(&mut canvas, &view);
    if times_column > 0 {
        draw_times(&mut canvas, track, text, &point_colors);
    }

    draw_legend(&mut canvas, track, text, &colors);
    canvas
}

fn draw_legend(canvas: &mut Canvas, track: &Track, text: &MapText, colors: &[(String, Rgb<u8>)]) {
    let left = i64::from(MAP_SIZE) + 16;
    let bottom = i64::from(MAP_SIZE) - 12;
    canvas.fill_rect(
        i64::from(MAP_SIZE),
        0,
        i64::from(LEGEND_WIDTH),
        i64::from(MAP_SIZE),
        LABEL_FILL,
    );
    canvas.fill_rect(
        i64::from(MAP_SIZE),
        0,
        1,
        i64::from(MAP_SIZE),
        DISTRICT_LINE,
    );
    let (_, line) = text_size("0", 1);
    let step = line + 3;
    let line_room = i64::from(LEGEND_WIDTH) - 32;
    let mut y = 16;
    canvas.text((left, y), &fit_width(&text.title, 2, line_room), 2, INK);
    y += text_size(&text.title, 2).1 + 8;
    for text_line in &text.lines {
        canvas.text((left, y), &fit_width(text_line, 1, line_room), 1, INK);
        y += step;
    }
    y += 8;
    let fuzzy = track
        .sightings
        .iter()
        .filter(|s| s.match_kind == MatchKind::Fuzzy)
        .count();
    for text_line in [
        format!("Sightings: {}", track.sightings.len()),
        format!("Trips: {}", track.trips.len()),
        format!("District changes: {}", track.transitions.len()),
        format!("Impossible hops: {}", track.impossible_hops()),
        format!("Misread matches: {fuzzy}"),
        format!("Attributed to look-alikes: {}", text.attributed.len()),
        match &track.second_vehicle {
            Some(second) => format!(
                "Cloned plate: a 2nd vehicle, {} sightings",
                second.sightings.len()
            ),
            None => "One vehicle".to_string(),
        },
    ] {
        canvas.text((left, y), &text_line, 1, INK);
        y += step;
    }
    // The symbols, from the bottom up, so the district list above gets what is left.
    let symbols = 7;
    let symbols_top = bottom - symbols * (step + 2);
    let mut sy = symbols_top;
    let mut symbol = |canvas: &mut Canvas, label: &str, draw: &dyn Fn(&mut Canvas, (f64, f64))| {
        draw(canvas, ((left + 6) as f64, (sy + line / 2) as f64));
        canvas.text((left + 20, sy), label, 1, INK);
        sy += step + 2;
    };
    symbol(canvas, "Sighting n (colour: district)", &|c, at| {
        c.disc(at, 5.0, PALETTE[0]);
    });
    symbol(canvas, "Misread match (lower confidence)", &|c, at| {
        c.disc(at, 5.0, LABEL_FILL);
        c.ring(at, 4.5, 2.0, PALETTE[0]);
    });
    symbol(canvas, "Impossible hop (misread or clone?)", &|c, at| {
        c.line(
            (at.0 - 6.0, at.1),
            (at.0 + 6.0, at.1),
            3.0,
            IMPOSSIBLE,
            Some((4.0, 3.0)),
        );
    });
    symbol(canvas, "B n: second vehicle, same plate", &|c, at| {
        c.disc(at, 5.0, LABEL_FILL);
        c.ring(at, 4.5, 2.0, SECOND_VEHICLE);
    });
    symbol(canvas, "Read here, attributed to a look-alike", &|c, at| {
        cross(c, at, 4.0, 1.5, ATTRIBUTED);
    });
    symbol(canvas, "Camera", &|c, at| {
        c.fill_rect(at.0 as i64 - 1, at.1 as i64 - 1, 2, 2, CAMERA_DOT);
    });
    symbol(canvas, "Road (from the registry)", &|c, at| {
        c.line((at.0 - 6.0, at.1), (at.0 + 6.0, at.1), 2.0, ROAD, None);
    });
    y += 10;
    canvas.text((left, y), "Districts (point colour)", 1, INK);
    y += step + 2;
    let room = ((symbols_top - 12 - y) / step).max(0) as usize;
    let shown = if colors.len() > room {
        room.saturating_sub(1)
    } else {
        colors.len()
    };
    for (district, color) in colors.iter().take(shown) {
        canvas.disc(((left + 6) as f64, (y + line / 2) as f64), 5.0, *color);
        canvas.text(
            (left + 20, y),
            &fit_width(district, 1, line_room - 20),
            1,
            INK,
        );
        y += step;
    }
    if shown < colors.len() {
        canvas.text(
            (left + 20, y),
            &format!("… and {} more", colors.len() - shown),
            1,
            INK,
        );
    }
}

/// Most points whose labels may carry their time on the map.
const TIMED_LABELS_MAX: usize = 15;
/// Width of the column of times of a crowded track.
const TIMES_WIDTH: u32 = 250;

/// A label's box on the canvas, px (inclusive-exclusive).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Rect {
    x0: i64,
    y0: i64,
    x1: i64,
    y1: i64,
}

impl Rect {
    fn around((x, y): (f64, f64), half: f64) -> Self {
        Self {
            x0: (x - half) as i64,
            y0: (y - half) as i64,
            x1: (x + half) as i64,
            y1: (y + half) as i64,
        }
    }

    fn overlaps(&self, other: &Rect) -> bool {
        self.x0 < other.x1 && other.x0 < self.x1 && self.y0 < other.y1 && other.y0 < self.y1
    }

    fn inside_map(&self) -> bool {
        let size = i64::from(MAP_SIZE);
        self.x0 >= 0 && self.y0 >= 0 && self.x1 <= size && self.y1 <= size
    }
}

/// Rectangles by the 64-px grid cells they meet, so checking a label against thousands of
/// points and labels looks at its neighbours only (a 10,000-sighting track stays linear).
#[derive(Default)]
struct RectIndex {
    cells: HashMap<(i64, i64), Vec<Rect>>,
}

impl RectIndex {
    const CELL: i64 = 64;

    fn cells_of(rect: &Rect) -> impl Iterator<Item = (i64, i64)> {
        let (x0, x1) = (
            rect.x0.div_euclid(Self::CELL),
            rect.x1.div_euclid(Self::CELL),
        );
        let (y0, y1) = (
            rect.y0.div_euclid(Self::CELL),
            rect.y1.div_euclid(Self::CELL),
        );
        (x0..=x1).flat_map(move |x| (y0..=y1).map(move |y| (x, y)))
    }

    fn insert(&mut self, rect: Rect) {
        for cell in Self::cells_of(&rect) {
            self.cells.entry(cell).or_default().push(rect);
        }
    }

    fn overlaps(&self, rect: &Rect) -> bool {
        Self::cells_of(rect).any(|cell| {
            self.cells
                .get(&cell)
                .is_some_and(|rects| rects.iter().any(|r| r.overlaps(rect)))
        })
    }
}

/// A place for each point's label (its text from `label`) that overlaps no point, no
/// label placed before it and nothing in `occupied`; `None` where the eight candidate
/// places around the point are all taken. Points are placed in order.
fn place_labels(
    pixels: &[(f64, f64)],
    occupied: &[Rect],
    label: impl Fn(usize) -> String,
) -> Vec<Option<Rect>> {
    let mut taken = RectIndex::default();
    for rect in occupied {
        taken.insert(*rect);
    }
    let mut places = Vec::with_capacity(pixels.len());
    for (index, &(x, y)) in pixels.iter().enumerate() {
        let (width, height) = text_size(&label(index), 1);
        let (w, h) = (width + 4, height + 2);
        let (x, y) = (x as i64, y as i64);
        let gap = 10;
        let candidates = [
            (x + gap, y - h / 2),
            (x - gap - w, y - h / 2),
            (x - w / 2, y - gap - h),
            (x - w / 2, y + gap),
            (x + gap - 2, y - gap - h + 2),
            (x - gap - w + 2, y - gap - h + 2),
            (x + gap - 2, y + gap - 2),
            (x - gap - w + 2, y + gap - 2),
        ];
        let place = candidates
            .iter()
            .map(|&(x0, y0)| Rect {
                x0,
                y0,
                x1: x0 + w,
                y1: y0 + h,
            })
            .find(|rect| rect.inside_map() && !taken.overlaps(rect));
        if let Some(rect) = place {
            taken.insert(rect);
        }
        places.push(place);
    }
    places
}

/// A scale bar (bottom left) and a north arrow (top left) on the map square.
fn draw_scale_and_north(canvas: &mut Canvas, view: &View) {
    const KM_PER_DEGREE: f64 = 111.195;
    let px_per_m = view.scale / KM_PER_DEGREE / 1_000.0;
    // The longest round length (1, 2 or 5 × 10^k m) up to 160 px.
    let mut metres = 10.0_f64;
    for exponent in 1..6 {
        for factor in [1.0, 2.0, 5.0] {
            let candidate = factor * 10f64.powi(exponent);
            if candidate * px_per_m <= 160.0 {
                metres = candidate;
            }
        }
    }
    let length = metres * px_per_m;
    let (x, y) = (20.0, f64::from(MAP_SIZE) - 24.0);
    let label = if metres >= 1_000.0 {
        format!("{} km", metres / 1_000.0)
    } else {
        format!("{metres} m")
    };
    let (width, height) = text_size(&label, 1);
    canvas.fill_rect(
        x as i64 - 6,
        y as i64 - height - 10,
        (length as i64 + 12).max(width + 12),
        height + 20,
        LABEL_FILL,
    );
    canvas.line((x, y), (x + length, y), 2.0, INK, None);
    for tick in [x, x + length] {
        canvas.line((tick, y - 5.0), (tick, y + 3.0), 2.0, INK, None);
    }
    canvas.text((x as i64, y as i64 - height - 7), &label, 1, INK);
    // North: the map's up (an equirectangular view, north at the top).
    let (nx, ny) = (34.0, 30.0);
    for row in 0..22 {
        let half = f64::from(row) * 0.4;
        let yy = ny + f64::from(row);
        canvas.line((nx - half, yy), (nx, yy), 1.0, INK, None);
        canvas.line((nx, yy), (nx + half, yy), 1.0, CAMERA_DOT, None);
    }
    canvas.ring((nx, ny + 11.0), 16.0, 1.0, INK);
    let (nw, _) = text_size("N", 1);
    canvas.text((nx as i64 - nw / 2, ny as i64 + 26), "N", 1, INK);
}

/// The column of times of a crowded track: "n  hh:mm:ss  district", as many as fit.
fn draw_times(canvas: &mut Canvas, track: &Track, text: &MapText, colors: &[Rgb<u8>]) {
    let left = i64::from(MAP_SIZE + LEGEND_WIDTH);
    canvas.fill_rect(
        left,
        0,
        i64::from(TIMES_WIDTH),
        i64::from(MAP_SIZE),
        LABEL_FILL,
    );
    canvas.fill_rect(left, 0, 1, i64::from(MAP_SIZE), DISTRICT_LINE);
    let (_, line) = text_size("0", 1);
    let step = line + 3;
    let mut y = 20;
    canvas.text((left + 12, y), "Sightings (n, time, district)", 1, INK);
    y += step + 6;
    let room = ((i64::from(MAP_SIZE) - y - 20) / step).max(1) as usize;
    let n = track.sightings.len();
    let shown = if n > room { room - 1 } else { n };
    for (index, sighting) in track.sightings.iter().take(shown).enumerate() {
        canvas.disc(
            ((left + 16) as f64, (y + line / 2) as f64),
            4.0,
            colors[index],
        );
        let row = format!(
            "{:>3}  {}  {}",
            index + 1,
            (text.time_label)(sighting.captured_at_ms, &text.zone),
            sighting.district
        );
        canvas.text(
            (left + 26, y),
            &fit_width(&row, 1, i64::from(TIMES_WIDTH) - 36),
            1,
            INK,
        );
        y += step;
    }
    if shown < n {
        canvas.text(
            (left + 26, y),
            &format!("… {} more in the table", n - shown),
            1,
            INK,
        );
    }
}

/// An × of half-size `half` centred on `at`.
fn cross(canvas: &mut Canvas, at: (f64, f64), half: f64, width: f64, color: Rgb<u8>) {
    for dy in [-half, half] {
        canvas.line(
            (at.0 - half, at.1 - dy),
            (at.0 + half, at.1 + dy),
            width,
            color,
            None,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hull_of_a_square_with_an_inner_point_is_the_square() {
        let hull = convex_hull(vec![
            (0.0, 0.0),
            (1.0, 0.0),
            (1.0, 1.0),
            (0.0, 1.0),
            (0.5, 0.5),
        ]);
        assert_eq!(hull.len(), 4);
        assert!(!hull.contains(&(0.5, 0.5)));
    }

    fn camera(id: u32, district: &str, lat: f64, lon: f64) -> camtrail_model::Camera {
        camtrail_model::Camera {
            camera_id: format!("4403000000131{id:07}"),
            district: district.into(),
            lat,
            lon,
            heading_deg: 0.0,
            road: "Road".into(),
            gateway_id: "gw".into(),
        }
    }

    #[test]
    fn the_background_finds_exactly_the_cameras_in_view() {
        let mut cameras = Vec::new();
        // A 60 × 60 grid every ~1.1 km, two districts split down the middle.
        for row in 0..60u32 {
            for column in 0..60u32 {
                let district = if column < 30 { "West" } else { "East" };
                let (lat, lon) = (
                    22.4 + f64::from(row) * 0.01,
                    113.8 + f64::from(column) * 0.01,
                );
                cameras.push(camera(row * 60 + column, district, lat, lon));
            }
        }
        let registry = CameraRegistry::new(cameras).expect("registry");
        let background = MapBackground::new(&registry);
        assert_eq!(background.districts.len(), 2);
        assert!(
            background.districts.iter().all(|d| d.hull.len() == 4),
            "rectangles"
        );
        let view = View::fit(&[(22.6, 114.0), (22.62, 114.02)]);
        let listed: Vec<(f64, f64)> = background.cameras_in(&view).collect();
        assert!(
            listed.len() < registry.len() / 10,
            "{} listed",
            listed.len()
        );
        let inside = |&(lat, lon): &(f64, f64)| view.inside(view.pixel(lat, lon));
        let expected = registry
            .cameras()
            .iter()
            .map(|c| (c.lat, c.lon))
            .filter(inside)
            .count();
        assert!(expected > 0);
        assert_eq!(listed.iter().filter(|p| inside(p)).count(), expected);
    }

    #[test]
    fn labels_never_cover_a_point_or_each_other() {
        // A dense knot of 60 points 12 px apart: some labels must be left out.
        let pixels: Vec<(f64, f64)> = (0..60)
            .map(|i| {
                (
                    400.0 + f64::from(i % 6) * 12.0,
                    400.0 + f64::from(i / 6) * 12.0,
                )
            })
            .collect();
        let occupied: Vec<Rect> = pixels.iter().map(|p| Rect::around(*p, 8.0)).collect();
        let places = place_labels(&pixels, &occupied, |i| format!("{} 12:34:56", i + 1));
        let placed: Vec<Rect> = places.iter().flatten().copied().collect();
        assert!(
            !placed.is_empty() && placed.len() < pixels.len(),
            "{}",
            placed.len()
        );
        for (i, a) in placed.iter().enumerate() {
            assert!(a.inside_map());
            assert!(placed[i + 1..].iter().all(|b| !a.overlaps(b)));
            assert!(occupied.iter().all(|o| !a.overlaps(o)));
        }
        // Points far apart all get a label.
        let apart: Vec<(f64, f64)> = (0..10)
            .map(|i| (100.0 + f64::from(i) * 70.0, 300.0))
            .collect();
        let free: Vec<Rect> = apart.iter().map(|p| Rect::around(*p, 8.0)).collect();
        assert!(
            place_labels(&apart, &free, |i| (i + 1).to_string())
                .iter()
                .all(Option::is_some)
        );
    }

    #[test]
    fn the_view_keeps_every_track_point_inside_the_map() {
        let points = [(22.5, 114.0), (22.7, 114.3), (22.6, 114.1)];
        let view = View::fit(&points);
        for (lat, lon) in points {
            let (x, y) = view.pixel(lat, lon);
            assert!(
                (MARGIN - 1.0..f64::from(MAP_SIZE) - MARGIN + 1.0).contains(&x),
                "{x}"
            );
            assert!(
                (MARGIN - 1.0..f64::from(MAP_SIZE) - MARGIN + 1.0).contains(&y),
                "{y}"
            );
        }
    }
}
