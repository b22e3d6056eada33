//! A picture of the city: arterial roads in light grey, every camera as a dot coloured by
//! its district, district boundaries in dark grey and district centres as black squares.

use std::path::Path;

use image::{ImageFormat, Rgb, RgbImage};

use crate::geometry::Point;
use crate::{CITY_HEIGHT_KM, CITY_WIDTH_KM, City};

/// Width of the rendered PNG, px (height follows the city's aspect ratio).
pub const RENDER_WIDTH_PX: u32 = 2400;

/// Maps the kilometre plane to image pixels (north up).
struct Canvas {
    image: RgbImage,
    scale: f64,
}

impl Canvas {
    fn new(width: u32) -> Self {
        let height = (f64::from(width) * CITY_HEIGHT_KM / CITY_WIDTH_KM).round() as u32;
        Self {
            image: RgbImage::from_pixel(width, height.max(1), Rgb([250, 250, 246])),
            scale: f64::from(width) / CITY_WIDTH_KM,
        }
    }

    fn pixel(&self, point: Point) -> (f64, f64) {
        (
            point.x * self.scale,
            f64::from(self.image.height()) - point.y * self.scale,
        )
    }

    fn dot(&mut self, x: f64, y: f64, radius: i64, color: Rgb<u8>) {
        let (cx, cy) = (x.floor() as i64, y.floor() as i64);
        for py in cy - radius..=cy + radius {
            for px in cx - radius..=cx + radius {
                if px >= 0
                    && py >= 0
                    && px < i64::from(self.image.width())
                    && py < i64::from(self.image.height())
                {
                    self.image.put_pixel(px as u32, py as u32, color);
                }
            }
        }
    }

    fn line(&mut self, from: Point, to: Point, radius: i64, color: Rgb<u8>) {
        let (x0, y0) = self.pixel(from);
        let (x1, y1) = self.pixel(to);
        let steps = (x1 - x0).abs().max((y1 - y0).abs()).ceil().max(1.0) as usize;
        for step in 0..=steps {
            let t = step as f64 / steps as f64;
            self.dot(x0 + t * (x1 - x0), y0 + t * (y1 - y0), radius, color);
        }
    }
}

/// A distinct, medium-bright colour per district (golden-angle hues).
fn district_color(index: usize) -> Rgb<u8> {
    let hue = (index as f64 * 137.508) % 360.0;
    let (s, v) = (0.8, 0.75);
    let c = v * s;
    let x = c * (1.0 - ((hue / 60.0) % 2.0 - 1.0).abs());
    let (r, g, b) = match (hue / 60.0) as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let m = v - c;
    let channel = |value: f64| ((value + m) * 255.0).round() as u8;
    Rgb([channel(r), channel(g), channel(b)])
}

/// Render `city` to a PNG at `path`.
pub fn render_png(city: &City, path: &Path) -> Result<(), image::ImageError> {
    let mut canvas = Canvas::new(RENDER_WIDTH_PX);
    for edge in city.roads.edges.iter().filter(|edge| edge.arterial) {
        let (a, b) = (
            city.roads.nodes[edge.a as usize],
            city.roads.nodes[edge.b as usize],
        );
        canvas.line(a, b, 0, Rgb([205, 205, 200]));
    }
    for (camera, &district) in city.registry.cameras().iter().zip(&city.camera_district) {
        let (x, y) = canvas.pixel(city.projection.to_point(camera.lon, camera.lat));
        canvas.dot(x, y, 0, district_color(district as usize));
    }
    for district in &city.districts {
        let ring: Vec<Point> = district
            .polygon
            .iter()
            .map(|&(lon, lat)| city.projection.to_point(lon, lat))
            .collect();
        for (index, &a) in ring.iter().enumerate() {
            canvas.line(a, ring[(index + 1) % ring.len()], 1, Rgb([50, 50, 55]));
        }
    }
    for district in &city.districts {
        let (x, y) = canvas.pixel(
            city.projection
                .to_point(district.centre.0, district.centre.1),
        );
        canvas.dot(x, y, 3, Rgb([0, 0, 0]));
    }
    canvas.image.save_with_format(path, ImageFormat::Png)
}
