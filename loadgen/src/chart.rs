//! PNG chart of a run: events/s (sent and answered) on top, ack latency (p50, p99, max per
//! second) below. Drawn with `plotters` (axes, ticks, legends); text in the embedded font
//! of `camtrail-render` ([`crate::chart_text`]), so it needs no font files on the machine.

use std::path::Path;
use std::sync::OnceLock;

use image::{Rgb, RgbImage};
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

use crate::LoadgenError;
use crate::chart_text::TextFixed;
use crate::report::{LoadReport, SecondPoint};

const WIDTH: u32 = 1_000;
const HEIGHT: u32 = 640;

const BLUE: RGBColor = RGBColor(31, 119, 180);
const GREEN: RGBColor = RGBColor(44, 160, 44);
const ORANGE: RGBColor = RGBColor(255, 127, 14);
const RED: RGBColor = RGBColor(214, 39, 40);
const FONT: &str = "sans-serif";

/// One plotted line: `None` values are gaps.
struct Series<'a> {
    label: &'a str,
    color: RGBColor,
    /// Drawn 3 px wide (else 1 px).
    thick: bool,
    values: Vec<Option<f64>>,
}

/// Render the report's timeline and write it as PNG.
pub fn write_chart(report: &LoadReport, path: &Path) -> Result<(), LoadgenError> {
    let failed = |message: String| LoadgenError::Output {
        path: path.display().to_string(),
        message,
    };
    try_render_chart(report)
        .map_err(failed)?
        .save(path)
        .map_err(|error| failed(error.to_string()))
}

/// Render the report's timeline (a blank image if drawing failed, which it does not with
/// the embedded font).
pub fn render_chart(report: &LoadReport) -> RgbImage {
    try_render_chart(report)
        .unwrap_or_else(|_| RgbImage::from_pixel(WIDTH, HEIGHT, Rgb([255, 255, 255])))
}

/// The embedded font, registered with plotters once.
fn register() -> Result<(), String> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            register_font(FONT, FontStyle::Normal, camtrail_render::font::FONT_BYTES)
                .map_err(|_| "the embedded font does not load".to_string())
        })
        .clone()
}

fn try_render_chart(report: &LoadReport) -> Result<RgbImage, String> {
    register()?;
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
        series("answered", GREEN, points, |p| {
            per_second(p, p.acked + p.rejected)
        }),
        Series {
            thick: false,
            ..series("sent", BLUE, points, |p| per_second(p, p.sent))
        },
    ];
    let latencies = [
        series("p50", GREEN, points, |p| p.latency_p50_ms),
        series("p99", ORANGE, points, |p| p.latency_p99_ms),
        series("max", RED, points, |p| p.latency_max_ms),
    ];
    let mut buffer = vec![255u8; (WIDTH * HEIGHT * 3) as usize];
    {
        let root =
            TextFixed(BitMapBackend::with_buffer(&mut buffer, (WIDTH, HEIGHT))).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let (top, bottom) = root.split_vertically(HEIGHT / 2);
        draw_panel(&top, "events/s", &rates, points.len(), false)?;
        draw_panel(&bottom, "ack latency, ms", &latencies, points.len(), true)?;
        root.present().map_err(|e| e.to_string())?;
    }
    RgbImage::from_raw(WIDTH, HEIGHT, buffer).ok_or_else(|| "buffer size".to_string())
}

fn series<'a>(
    label: &'a str,
    color: RGBColor,
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

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    lines: &[Series<'_>],
    span: usize,
    time_axis: bool,
) -> Result<(), String> {
    let error = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let top_value = nice_ceiling(
        lines
            .iter()
            .flat_map(|line| line.values.iter().flatten())
            .fold(0.0_f64, |a, &b| a.max(b)),
    );
    let x_end = span.max(1) as f64;
    let mut chart = ChartBuilder::on(area)
        .caption(title, (FONT, 20))
        .margin(10)
        .x_label_area_size(if time_axis { 40 } else { 24 })
        .y_label_area_size(64)
        .build_cartesian_2d(0.0..x_end, 0.0..top_value)
        .map_err(error)?;
    let mut mesh = chart.configure_mesh();
    mesh.label_style((FONT, 13))
        .axis_desc_style((FONT, 14))
        .y_label_formatter(&|v| format_value(*v))
        .x_labels(span.clamp(1, 12) + 1)
        .x_label_formatter(&|v| format!("{v:.0}"))
        .light_line_style(RGBColor(240, 240, 240));
    if time_axis {
        mesh.x_desc("time since the run started, s");
    }
    mesh.draw().map_err(error)?;
    for line in lines {
        let style = line.color.stroke_width(if line.thick { 3 } else { 1 });
        // One path per run of known values: a second without acks is a gap, not a zero.
        let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
        for (second, value) in line.values.iter().enumerate() {
            match value {
                Some(v) => runs
                    .last_mut()
                    .expect("one run at least")
                    .push((second as f64 + 0.5, *v)),
                None => runs.push(Vec::new()),
            }
        }
        let mut labelled = false;
        for run in runs.into_iter().filter(|run| !run.is_empty()) {
            // A lone second is a dot, so it is not lost.
            let drawn = if run.len() == 1 {
                chart.draw_series(run.iter().map(|&p| Circle::new(p, 2, style.filled())))
            } else {
                chart.draw_series(LineSeries::new(run, style))
            }
            .map_err(error)?;
            if !labelled {
                let color = line.color;
                drawn.label(line.label).legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(3))
                });
                labelled = true;
            }
        }
    }
    chart
        .configure_series_labels()
        .label_font((FONT, 13))
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(200, 200, 200))
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(error)
}

/// The smallest 1, 2 or 5 × 10^k at or above `value` (1 for nothing to show).
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
        let colored = |top: u32, bottom: u32, color: RGBColor| {
            let color = Rgb([color.0, color.1, color.2]);
            (top..bottom).any(|y| (0..WIDTH).any(|x| *image.get_pixel(x, y) == color))
        };
        assert!(colored(0, HEIGHT / 2, BLUE));
        assert!(colored(HEIGHT / 2, HEIGHT, RED));
        let ink = image.pixels().filter(|p| p.0 != [255, 255, 255]).count();
        assert!(ink > 5_000, "axes, labels and lines drawn: {ink} pixels");
        // An empty report still renders (flat axes).
        let empty = render_chart(&LoadReport::default());
        assert_eq!(empty.dimensions(), (WIDTH, HEIGHT));
    }
}
