//! PNG chart of a run: events/s (sent and answered) on top, ack latency (p50, p99, max per
//! second) below. Drawn with the `image` crate and a built-in 5×7 pixel font, so it needs no
//! font files.

use std::path::Path;

use image::{Rgb, RgbImage};

use crate::LoadgenError;
use crate::report::{LoadReport, SecondPoint};
use camtrail_render::font::glyph;

const WIDTH: u32 = 1_000;
const HEIGHT: u32 = 640;
const LEFT: i32 = 80;
const RIGHT: i32 = WIDTH as i32 - 20;
const TEXT_SCALE: i32 = 2;

const BACKGROUND: Rgb<u8> = Rgb([255, 255, 255]);
const AXIS: Rgb<u8> = Rgb([60, 60, 60]);
const GRID: Rgb<u8> = Rgb([225, 225, 225]);
const BLUE: Rgb<u8> = Rgb([31, 119, 180]);
const GREEN: Rgb<u8> = Rgb([44, 160, 44]);
const ORANGE: Rgb<u8> = Rgb([255, 127, 14]);
const RED: Rgb<u8> = Rgb([214, 39, 40]);

/// One plotted line.
struct Series<'a> {
    label: &'a str,
    color: Rgb<u8>,
    /// Drawn 3 px wide (else 1 px).
    thick: bool,
    values: Vec<Option<f64>>,
}

/// A panel's place on the image.
struct Panel {
    top: i32,
    bottom: i32,
}

/// Render the report's timeline and write it as PNG.
pub fn write_chart(report: &LoadReport, path: &Path) -> Result<(), LoadgenError> {
    render_chart(report)
        .save(path)
        .map_err(|error| LoadgenError::Output {
            path: path.display().to_string(),
            message: error.to_string(),
        })
}

/// Render the report's timeline.
pub fn render_chart(report: &LoadReport) -> RgbImage {
    let mut image = RgbImage::from_pixel(WIDTH, HEIGHT, BACKGROUND);
    let points = &report.timeline;
    // The last second is usually partial (the drain): scale it to a rate, or leave it out
    // when it is too short for the rate to mean anything.
    let last_second_share = points.last().map_or(1.0, |last| {
        (report.elapsed_s - last.second as f64).clamp(0.0, 1.0)
    });
    let per_second = |point: &SecondPoint, count: u64| {
        let is_last = points
            .last()
            .is_some_and(|last| last.second == point.second);
        match (is_last, last_second_share) {
            (false, _) => Some(count as f64),
            (true, share) if share >= 0.5 => Some(count as f64 / share),
            (true, _) => None,
        }
    };
    // Answered first and wide, sent on top and narrow: both stay visible when equal.
    let rates = [
        series("ACKED", GREEN, points, |p| {
            per_second(p, p.acked + p.rejected)
        }),
        Series {
            thick: false,
            ..series("SENT", BLUE, points, |p| per_second(p, p.sent))
        },
    ];
    draw_panel(
        &mut image,
        &Panel {
            top: 40,
            bottom: 280,
        },
        "EVENTS/S",
        &rates,
        points.len(),
    );
    let latencies = [
        series("P50", GREEN, points, |p| p.latency_p50_ms),
        series("P99", ORANGE, points, |p| p.latency_p99_ms),
        series("MAX", RED, points, |p| p.latency_max_ms),
    ];
    draw_panel(
        &mut image,
        &Panel {
            top: 340,
            bottom: 580,
        },
        "ACK LATENCY MS",
        &latencies,
        points.len(),
    );
    let title = "TIME S";
    draw_text(
        &mut image,
        ((LEFT + RIGHT - text_width(title)) / 2, 612),
        title,
        AXIS,
    );
    image
}

fn series<'a>(
    label: &'a str,
    color: Rgb<u8>,
    points: &[SecondPoint],
    value: impl Fn(&SecondPoint) -> Option<f64>,
) -> Series<'a> {
    Series {
        label,
        color,
        thick: true,
        values: points.iter().map(value).collect(),
    }
}

fn draw_panel(
    image: &mut RgbImage,
    panel: &Panel,
    title: &str,
    lines: &[Series<'_>],
    seconds: usize,
) {
    let max = lines
        .iter()
        .flat_map(|line| line.values.iter().flatten())
        .fold(0.0f64, |max, &value| max.max(value));
    let top_value = nice_ceiling(max);
    draw_text(image, (LEFT, panel.top - 24), title, AXIS);
    let mut legend_x = LEFT + 20 + text_width(title);
    for line in lines {
        fill_rect(image, legend_x, panel.top - 20, 16, 6, line.color);
        draw_text(image, (legend_x + 22, panel.top - 24), line.label, AXIS);
        legend_x += 40 + text_width(line.label);
    }
    let steps = grid_steps(top_value);
    for step in 0..=steps {
        let y = panel.bottom - (panel.bottom - panel.top) * step / steps;
        draw_line(
            image,
            (LEFT, y),
            (RIGHT, y),
            if step == 0 { AXIS } else { GRID },
        );
        let label = format_value(top_value * f64::from(step) / f64::from(steps));
        draw_text(image, (LEFT - 8 - text_width(&label), y - 7), &label, AXIS);
    }
    draw_line(image, (LEFT, panel.top), (LEFT, panel.bottom), AXIS);
    let span = seconds.max(2) - 1;
    let ticks = span.min(5);
    for step in 0..=ticks {
        let second = span * step / ticks;
        let x = x_of(second, span);
        draw_line(image, (x, panel.bottom), (x, panel.bottom + 4), AXIS);
        let label = second.to_string();
        draw_text(
            image,
            (x - text_width(&label) / 2, panel.bottom + 8),
            &label,
            AXIS,
        );
    }
    for line in lines {
        plot(image, panel, line, top_value, span);
    }
}

fn x_of(second: usize, span: usize) -> i32 {
    LEFT + ((RIGHT - LEFT) as f64 * second as f64 / span as f64).round() as i32
}

fn plot(image: &mut RgbImage, panel: &Panel, line: &Series<'_>, top_value: f64, span: usize) {
    let height = f64::from(panel.bottom - panel.top);
    let mut previous: Option<(i32, i32)> = None;
    for (second, value) in line.values.iter().enumerate() {
        let Some(value) = value else {
            previous = None;
            continue;
        };
        let point = (
            x_of(second, span),
            panel.bottom - (value / top_value * height).round() as i32,
        );
        match previous {
            Some(from) if line.thick => draw_thick_line(image, from, point, line.color),
            Some(from) => draw_line(image, from, point, line.color),
            None => fill_rect(image, point.0 - 1, point.1 - 1, 3, 3, line.color),
        }
        previous = Some(point);
    }
}

/// The smallest 1, 2 or 5 × 10^k at or above `value` (1 for zero or less).
pub(crate) fn nice_ceiling(value: f64) -> f64 {
    if value.is_nan() || value <= 0.0 || value.is_infinite() {
        return 1.0;
    }
    let magnitude = 10f64.powf(value.log10().floor());
    for factor in [1.0, 2.0, 5.0, 10.0] {
        if factor * magnitude >= value * (1.0 - 1e-12) {
            return factor * magnitude;
        }
    }
    10.0 * magnitude
}

/// Gridline count that puts labels on round values: tops of 1 and 5 × 10^k get five
/// steps, 2 × 10^k four.
fn grid_steps(top_value: f64) -> i32 {
    let leading = top_value / 10f64.powf(top_value.log10().floor());
    if (leading - 2.0).abs() < 1e-9 { 4 } else { 5 }
}

/// Compact axis label: 950, 1.5K, 12K, 2.5M, 0.25.
pub(crate) fn format_value(value: f64) -> String {
    let trim = |text: String| {
        if text.contains('.') {
            text.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            text
        }
    };
    if value >= 1e6 {
        format!("{}M", trim(format!("{:.2}", value / 1e6)))
    } else if value >= 1e4 {
        format!("{}K", trim(format!("{:.1}", value / 1e3)))
    } else if value >= 100.0 {
        format!("{value:.0}")
    } else {
        trim(format!("{value:.2}"))
    }
}

fn put(image: &mut RgbImage, x: i32, y: i32, color: Rgb<u8>) {
    if x >= 0 && y >= 0 && (x as u32) < image.width() && (y as u32) < image.height() {
        image.put_pixel(x as u32, y as u32, color);
    }
}

fn fill_rect(image: &mut RgbImage, x: i32, y: i32, width: i32, height: i32, color: Rgb<u8>) {
    for dy in 0..height {
        for dx in 0..width {
            put(image, x + dx, y + dy, color);
        }
    }
}

/// Bresenham line.
fn draw_line(image: &mut RgbImage, from: (i32, i32), to: (i32, i32), color: Rgb<u8>) {
    let (mut x, mut y) = from;
    let dx = (to.0 - x).abs();
    let dy = -(to.1 - y).abs();
    let step_x = if x < to.0 { 1 } else { -1 };
    let step_y = if y < to.1 { 1 } else { -1 };
    let mut error = dx + dy;
    loop {
        put(image, x, y, color);
        if x == to.0 && y == to.1 {
            break;
        }
        let doubled = 2 * error;
        if doubled >= dy {
            error += dy;
            x += step_x;
        }
        if doubled <= dx {
            error += dx;
            y += step_y;
        }
    }
}

fn draw_thick_line(image: &mut RgbImage, from: (i32, i32), to: (i32, i32), color: Rgb<u8>) {
    for (dx, dy) in [(0, 0), (1, 0), (0, 1), (-1, 0), (0, -1)] {
        draw_line(
            image,
            (from.0 + dx, from.1 + dy),
            (to.0 + dx, to.1 + dy),
            color,
        );
    }
}

fn text_width(text: &str) -> i32 {
    text.chars().count() as i32 * 6 * TEXT_SCALE
}

fn draw_text(image: &mut RgbImage, at: (i32, i32), text: &str, color: Rgb<u8>) {
    for (index, character) in text.chars().enumerate() {
        let origin_x = at.0 + index as i32 * 6 * TEXT_SCALE;
        for (row, bits) in glyph(character).iter().enumerate() {
            for column in 0..5 {
                if bits & (0b10000 >> column) != 0 {
                    let x = origin_x + column * TEXT_SCALE;
                    let y = at.1 + row as i32 * TEXT_SCALE;
                    fill_rect(image, x, y, TEXT_SCALE, TEXT_SCALE, color);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_tops_are_round() {
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(7.0), 10.0);
        assert_eq!(nice_ceiling(10.0), 10.0);
        assert_eq!(nice_ceiling(11.0), 20.0);
        assert_eq!(nice_ceiling(1_234.0), 2_000.0);
        assert_eq!(nice_ceiling(0.3), 0.5);
    }

    #[test]
    fn labels_are_compact() {
        assert_eq!(format_value(0.0), "0");
        assert_eq!(format_value(0.25), "0.25");
        assert_eq!(format_value(950.0), "950");
        assert_eq!(format_value(15_000.0), "15K");
        assert_eq!(format_value(12_500.0), "12.5K");
        assert_eq!(format_value(2_500_000.0), "2.5M");
    }

    #[test]
    fn a_chart_has_ink_in_both_panels() {
        let timeline = (0..10)
            .map(|second| SecondPoint {
                second,
                sent: 100 * second,
                acked: 90 * second,
                rejected: 0,
                latency_p50_ms: Some(2.0),
                latency_p99_ms: Some(8.0),
                latency_max_ms: (second % 3 != 0).then_some(12.0),
            })
            .collect();
        let report = LoadReport {
            timeline,
            ..LoadReport::default()
        };
        let image = render_chart(&report);
        let colored = |top: u32, bottom: u32, color: Rgb<u8>| {
            (top..bottom).any(|y| (0..WIDTH).any(|x| *image.get_pixel(x, y) == color))
        };
        assert!(colored(40, 280, BLUE));
        assert!(colored(340, 580, RED));
        // An empty report still renders (flat axes).
        let empty = render_chart(&LoadReport::default());
        assert_eq!(empty.dimensions(), (WIDTH, HEIGHT));
    }
}
