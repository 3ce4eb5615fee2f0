//! The ramp's charts as one SVG file: request→offer latency against the offered rate
//! (p50 and p99, the knee's 50 ms line), and the latency distribution of every step
//! on HdrHistogram's percentile scale. Pure: figures in, text out.
//!
//! Hand-written rather than a plotting crate: the charts are a few polylines on log
//! axes, and plotters' layout needs a font file that a server may not have.

use std::fmt::Write;

use super::ramp::RampReport;

const PANEL_WIDTH: f64 = 560.0;
const PANEL_HEIGHT: f64 = 380.0;
const GAP: f64 = 40.0;
/// Room for the axis labels and the title around each plot area.
const MARGIN_LEFT: f64 = 64.0;
const MARGIN_RIGHT: f64 = 16.0;
const MARGIN_TOP: f64 = 40.0;
const MARGIN_BOTTOM: f64 = 52.0;
const LEGEND_LINE: f64 = 16.0;
/// Distinguishable on white, in the order steps are drawn.
const PALETTE: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2",
];
/// The distribution's x axis ends at "max", drawn as if it were 99.999 %.
const MAX_NINES: f64 = 5.0;
/// Latencies below this are drawn at it: a log axis has no zero.
const FLOOR_MS: f64 = 0.1;

/// How a value becomes a fraction of an axis.
#[derive(Debug, Clone, Copy)]
enum Scale {
    Linear { min: f64, max: f64 },
    Log10 { min: f64, max: f64 },
}

impl Scale {
    fn fraction(self, value: f64) -> f64 {
        match self {
            Scale::Linear { min, max } => (value - min) / (max - min),
            Scale::Log10 { min, max } => {
                (value.max(min).log10() - min.log10()) / (max.log10() - min.log10())
            }
        }
    }
}

struct Series {
    label: String,
    colour: &'static str,
    points: Vec<(f64, f64)>,
}

struct Panel {
    title: String,
    x_label: &'static str,
    y_label: &'static str,
    x: Scale,
    y: Scale,
    x_ticks: Vec<(f64, String)>,
    y_ticks: Vec<(f64, String)>,
    series: Vec<Series>,
    /// Horizontal reference lines (value, label).
    rules: Vec<(f64, String)>,
}

/// The ramp's two charts, side by side.
pub fn render(report: &RampReport) -> String {
    let panels = [latency_against_rate(report), distribution(report)];
    let width = PANEL_WIDTH * 2.0 + GAP;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{PANEL_HEIGHT}" viewBox="0 0 {width} {PANEL_HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        svg,
        r##"<rect width="{width}" height="{PANEL_HEIGHT}" fill="#ffffff"/>"##
    );
    for (i, panel) in panels.iter().enumerate() {
        draw(&mut svg, panel, i as f64 * (PANEL_WIDTH + GAP));
    }
    svg.push_str("</svg>\n");
    svg
}

fn latency_ceiling(values: impl Iterator<Item = f64>) -> f64 {
    let top = values.fold(super::ramp::KNEE_P99_MS, f64::max);
    10f64.powf(top.log10().ceil())
}

fn decade_ticks(max: f64) -> Vec<(f64, String)> {
    let mut ticks = Vec::new();
    let mut value = FLOOR_MS;
    while value <= max * 1.0001 {
        let label = if value < 1.0 {
            format!("{value}")
        } else {
            format!("{value:.0}")
        };
        ticks.push((value, label));
        value *= 10.0;
    }
    ticks
}

fn latency_against_rate(report: &RampReport) -> Panel {
    let steps = &report.steps;
    let top_rate = steps.iter().map(|s| s.rate_per_sec).fold(0.0, f64::max);
    let ceiling = latency_ceiling(steps.iter().map(|s| s.p99_ms));
    let tick_every = nice_step(top_rate);
    let x_ticks = (0..)
        .map(|i| i as f64 * tick_every)
        .take_while(|v| *v <= top_rate * 1.0001)
        .map(|v| (v, format!("{v:.0}")))
        .collect();
    let line = |label: &str, colour, pick: fn(&super::ramp::RampStep) -> f64| Series {
        label: label.to_string(),
        colour,
        points: steps.iter().map(|s| (s.rate_per_sec, pick(s))).collect(),
    };
    let knee = match report.knee_per_sec {
        Some(rate) => format!("knee {rate:.0} req/s"),
        None => "no rate held".to_string(),
    };
    Panel {
        title: format!("request → offer against rate ({}; {knee})", report.backend),
        x_label: "offered rate (requests/s)",
        y_label: "latency (ms, log)",
        x: Scale::Linear {
            min: 0.0,
            max: top_rate.max(1.0),
        },
        y: Scale::Log10 {
            min: FLOOR_MS,
            max: ceiling,
        },
        x_ticks,
        y_ticks: decade_ticks(ceiling),
        series: vec![
            line("p50", PALETTE[0], |s| s.p50_ms),
            line("p99", PALETTE[1], |s| s.p99_ms),
        ],
        rules: vec![(
            super::ramp::KNEE_P99_MS,
            format!("{} ms", super::ramp::KNEE_P99_MS),
        )],
    }
}

/// x position of a percentile: the number of nines (90 % → 1, 99 % → 2, …).
fn nines(percentile: f64) -> f64 {
    if percentile >= 100.0 {
        MAX_NINES
    } else {
        (-(1.0 - percentile / 100.0).log10()).min(MAX_NINES)
    }
}

fn distribution(report: &RampReport) -> Panel {
    let ceiling = latency_ceiling(
        report
            .steps
            .iter()
            .flat_map(|s| s.distribution.iter().map(|p| p.ms)),
    );
    let x_ticks = [
        (0.0, "0"),
        (90.0, "90"),
        (99.0, "99"),
        (99.9, "99.9"),
        (99.99, "99.99"),
        (100.0, "max"),
    ]
    .into_iter()
    .map(|(p, label)| (nines(p), label.to_string()))
    .collect();
    let series = report
        .steps
        .iter()
        .enumerate()
        .map(|(i, step)| Series {
            label: format!("{:.0} req/s", step.rate_per_sec),
            colour: PALETTE[i % PALETTE.len()],
            points: step
                .distribution
                .iter()
                .map(|p| (nines(p.percentile), p.ms))
                .collect(),
        })
        .collect();
    Panel {
        title: "request → offer latency by percentile, each step".to_string(),
        x_label: "percentile",
        y_label: "latency (ms, log)",
        x: Scale::Linear {
            min: 0.0,
            max: MAX_NINES,
        },
        y: Scale::Log10 {
            min: FLOOR_MS,
            max: ceiling,
        },
        x_ticks,
        y_ticks: decade_ticks(ceiling),
        series,
        rules: Vec::new(),
    }
}

/// 1, 2 or 5 times a power of ten, giving about five ticks up to `max`.
fn nice_step(max: f64) -> f64 {
    let raw = (max / 5.0).max(1.0);
    let power = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|step| *step >= raw)
        .unwrap_or(power * 10.0)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn draw(svg: &mut String, panel: &Panel, left: f64) {
    let plot_left = left + MARGIN_LEFT;
    let plot_right = left + PANEL_WIDTH - MARGIN_RIGHT;
    let plot_top = MARGIN_TOP;
    let plot_bottom = PANEL_HEIGHT - MARGIN_BOTTOM;
    let px = |x: f64| plot_left + panel.x.fraction(x).clamp(0.0, 1.0) * (plot_right - plot_left);
    let py = |y: f64| plot_bottom - panel.y.fraction(y).clamp(0.0, 1.0) * (plot_bottom - plot_top);
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="22" font-size="14" font-weight="bold">{}</text>"#,
        plot_left,
        escape(&panel.title)
    );
    for (value, label) in &panel.y_ticks {
        let y = py(*value);
        let _ = writeln!(
            svg,
            r##"<line x1="{plot_left}" y1="{y:.1}" x2="{plot_right}" y2="{y:.1}" stroke="#e6e6e6"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            plot_left - 6.0,
            y + 4.0,
            escape(label)
        );
    }
    for (value, label) in &panel.x_ticks {
        let x = px(*value);
        let _ = writeln!(
            svg,
            r##"<line x1="{x:.1}" y1="{plot_top}" x2="{x:.1}" y2="{plot_bottom}" stroke="#e6e6e6"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
            plot_bottom + 16.0,
            escape(label)
        );
    }
    let _ = writeln!(
        svg,
        r##"<rect x="{plot_left}" y="{plot_top}" width="{:.1}" height="{:.1}" fill="none" stroke="#444444"/>"##,
        plot_right - plot_left,
        plot_bottom - plot_top
    );
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
        (plot_left + plot_right) / 2.0,
        PANEL_HEIGHT - 14.0,
        escape(panel.x_label)
    );
    let _ = writeln!(
        svg,
        r#"<text transform="translate({:.1},{:.1}) rotate(-90)" text-anchor="middle">{}</text>"#,
        left + 16.0,
        (plot_top + plot_bottom) / 2.0,
        escape(panel.y_label)
    );
    for (value, label) in &panel.rules {
        let y = py(*value);
        let _ = writeln!(
            svg,
            r##"<line x1="{plot_left}" y1="{y:.1}" x2="{plot_right}" y2="{y:.1}" stroke="#888888" stroke-dasharray="6 4"/><text x="{:.1}" y="{:.1}" text-anchor="end" fill="#666666">{}</text>"##,
            plot_right - 4.0,
            y - 4.0,
            escape(label)
        );
    }
    for (i, series) in panel.series.iter().enumerate() {
        let points: Vec<String> = series
            .points
            .iter()
            .map(|(x, y)| format!("{:.1},{:.1}", px(*x), py(*y)))
            .collect();
        let _ = writeln!(
            svg,
            r#"<polyline fill="none" stroke="{}" stroke-width="2" points="{}"/>"#,
            series.colour,
            points.join(" ")
        );
        for point in &points {
            if let Some((x, y)) = point.split_once(',') {
                let _ = writeln!(
                    svg,
                    r#"<circle cx="{x}" cy="{y}" r="2.5" fill="{}"/>"#,
                    series.colour
                );
            }
        }
        let legend_y = plot_top + 14.0 + i as f64 * LEGEND_LINE;
        let _ = writeln!(
            svg,
            r#"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{}" stroke-width="2"/><text x="{:.1}" y="{:.1}">{}</text>"#,
            plot_left + 8.0,
            legend_y - 4.0,
            plot_left + 26.0,
            legend_y - 4.0,
            series.colour,
            plot_left + 30.0,
            legend_y,
            escape(&series.label)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loadgen::ramp::{RampReport, RampStep};
    use crate::loadgen::stats::Percentile;

    fn step(rate: f64, p99: f64) -> RampStep {
        RampStep {
            rate_per_sec: rate,
            throughput_per_sec: rate,
            p50_ms: p99 / 4.0,
            p90_ms: p99 / 2.0,
            p99_ms: p99,
            p999_ms: p99 * 2.0,
            errors: 0,
            error_kinds: Default::default(),
            server_ms_per_call: None,
            waited_offers: 0,
            offers_measured: 1000,
            distribution: vec![
                Percentile {
                    percentile: 50.0,
                    ms: p99 / 4.0,
                },
                Percentile {
                    percentile: 99.0,
                    ms: p99,
                },
                Percentile {
                    percentile: 100.0,
                    ms: p99 * 3.0,
                },
            ],
            breaks: None,
        }
    }

    #[test]
    fn both_charts_have_a_line_per_series_and_escape_their_text() {
        let report = RampReport {
            target: "http://127.0.0.1:1".into(),
            backend: "sqlite <&>".into(),
            steps: vec![step(100.0, 3.0), step(200.0, 9.0), step(300.0, 400.0)],
            knee_per_sec: Some(200.0),
        };
        let svg = render(&report);
        assert!(svg.starts_with("<svg "));
        assert!(svg.trim_end().ends_with("</svg>"));
        // p50 and p99 against rate, then one curve per step.
        assert_eq!(svg.matches("<polyline").count(), 2 + 3);
        assert!(svg.contains("knee 200 req/s"));
        assert!(svg.contains("sqlite &lt;&amp;&gt;"));
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
    }

    #[test]
    fn percentiles_sit_by_their_nines_and_steps_are_round() {
        assert_eq!(nines(0.0), 0.0);
        assert!((nines(90.0) - 1.0).abs() < 1e-9);
        assert!((nines(99.9) - 3.0).abs() < 1e-9);
        assert_eq!(nines(100.0), MAX_NINES);
        assert_eq!(nice_step(1000.0), 200.0);
        assert_eq!(nice_step(300.0), 100.0);
        assert_eq!(nice_step(0.0), 1.0);
    }
}
