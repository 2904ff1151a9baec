//! The soak's chart: stacked line charts over time in one self-contained
//! SVG (no fonts, scripts or styles from outside).

use std::fmt::Write;

use super::sample::Sample;

/// Width of the whole picture, px.
const WIDTH: f64 = 960.0;
/// Height of one panel's plot area, px.
const PLOT_HEIGHT: f64 = 150.0;
/// Space above a plot (its title and legend), px.
const PANEL_TOP: f64 = 34.0;
/// Space below a plot (the time axis' labels), px.
const PANEL_BOTTOM: f64 = 30.0;
/// Left margin (value labels), px.
const LEFT: f64 = 72.0;
/// Right margin, px.
const RIGHT: f64 = 24.0;
/// Height of the title block, px.
const TITLE_HEIGHT: f64 = 56.0;
/// Value ticks per axis, about.
const TICKS: f64 = 4.0;
/// Line colours, one per series of a panel.
const COLOURS: [&str; 3] = ["#1f77b4", "#d62728", "#2ca02c"];

/// One line: its name and its value at each sample.
struct Series {
    name: &'static str,
    values: Vec<f64>,
}

/// One chart: a title and its lines sharing a value axis from 0.
struct Panel {
    title: &'static str,
    series: Vec<Series>,
}

fn series(name: &'static str, samples: &[Sample], f: impl Fn(&Sample) -> f64) -> Series {
    Series {
        name,
        values: samples.iter().map(f).collect(),
    }
}

/// The SVG of a run: RSS, descriptors, command latency, WebSocket clients.
pub fn render(title: &str, subtitle: &str, samples: &[Sample], duration_s: f64) -> String {
    let panels = [
        Panel {
            title: "Server memory (MiB)",
            series: vec![
                series("RSS", samples, |s| s.rss_mib),
                series("live heap", samples, |s| s.heap_mib),
            ],
        },
        Panel {
            title: "Server open file descriptors",
            series: vec![series("fds", samples, |s| s.fds as f64)],
        },
        Panel {
            title: "Command latency (ms)",
            series: vec![
                series("p99", samples, |s| s.command_p99_ms),
                series("p50", samples, |s| s.command_p50_ms),
            ],
        },
        Panel {
            title: "WebSocket clients connected",
            series: vec![series("connected", samples, |s| s.ws_connected as f64)],
        },
    ];
    let times: Vec<f64> = samples.iter().map(|s| s.t_s).collect();
    // Samples land a few ms after their whole second: the axis ends at the
    // run's length, and the last point is drawn on it.
    let t_max = nice_ceiling(duration_s);
    let panel_height = PANEL_TOP + PLOT_HEIGHT + PANEL_BOTTOM;
    let height = TITLE_HEIGHT + panel_height * panels.len() as f64;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="#ffffff"/>
<text x="{LEFT}" y="24" font-size="16" font-weight="bold">{}</text>
<text x="{LEFT}" y="44" fill="#555555">{}</text>
"##,
        escape(title),
        escape(subtitle)
    );
    for (i, panel) in panels.iter().enumerate() {
        let top = TITLE_HEIGHT + panel_height * i as f64 + PANEL_TOP;
        draw_panel(&mut svg, panel, &times, t_max, top);
    }
    svg.push_str("</svg>\n");
    svg
}

fn draw_panel(svg: &mut String, panel: &Panel, times: &[f64], t_max: f64, top: f64) {
    let right = WIDTH - RIGHT;
    let bottom = top + PLOT_HEIGHT;
    let v_max = nice_ceiling(
        panel
            .series
            .iter()
            .flat_map(|s| s.values.iter().copied())
            .fold(0.0, f64::max),
    );
    let x = |t: f64| LEFT + (right - LEFT) * t.min(t_max) / t_max;
    let y = |v: f64| bottom - PLOT_HEIGHT * v / v_max;
    let _ = writeln!(
        svg,
        r##"<text x="{LEFT}" y="{}" font-weight="bold">{}</text>"##,
        top - 10.0,
        escape(panel.title)
    );
    // Value axis: grid lines and labels.
    let step = nice_step(v_max);
    for k in 0..=ticks(v_max, step) {
        let v = f64::from(k) * step;
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{right}" y2="{y:.1}" stroke="#e5e5e5"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
            LEFT - 6.0,
            y(v) + 4.0,
            label(v),
            y = y(v)
        );
    }
    // Time axis: ticks and labels.
    let t_step = nice_step(t_max);
    for k in 0..=ticks(t_max, t_step) {
        let t = f64::from(k) * t_step;
        let _ = writeln!(
            svg,
            r##"<line x1="{x:.1}" y1="{bottom}" x2="{x:.1}" y2="{}" stroke="#333333"/><text x="{x:.1}" y="{}" text-anchor="middle">{}</text>"##,
            bottom + 4.0,
            bottom + 16.0,
            label(t),
            x = x(t)
        );
    }
    let _ = writeln!(
        svg,
        r##"<text x="{right}" y="{}" text-anchor="end" fill="#555555">time (s)</text>"##,
        bottom + 28.0
    );
    let _ = writeln!(
        svg,
        r##"<path d="M{LEFT} {top} V{bottom} H{right}" fill="none" stroke="#333333"/>"##
    );
    for (k, s) in panel.series.iter().enumerate() {
        let colour = COLOURS[k % COLOURS.len()];
        let points: Vec<String> = times
            .iter()
            .zip(&s.values)
            .map(|(t, v)| format!("{:.1},{:.1}", x(*t), y(*v)))
            .collect();
        let _ = writeln!(
            svg,
            r##"<polyline fill="none" stroke="{colour}" stroke-width="1.8" points="{}"><title>{}</title></polyline>"##,
            points.join(" "),
            escape(s.name)
        );
        let lx = right - 110.0 * (panel.series.len() - k) as f64;
        let _ = writeln!(
            svg,
            r##"<line x1="{lx}" y1="{ly}" x2="{}" y2="{ly}" stroke="{colour}" stroke-width="3"/><text x="{}" y="{}">{}</text>"##,
            lx + 18.0,
            lx + 24.0,
            top - 6.0,
            escape(s.name),
            ly = top - 10.0
        );
    }
}

/// A round step giving about [`TICKS`] ticks up to `max`.
fn nice_step(max: f64) -> f64 {
    let raw = (max / TICKS).max(f64::MIN_POSITIVE);
    let magnitude = 10f64.powf(raw.log10().floor());
    let norm = raw / magnitude;
    let nice = if norm <= 1.0 {
        1.0
    } else if norm <= 2.0 {
        2.0
    } else if norm <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * magnitude
}

/// Ticks after 0 up to `max` (never past it).
fn ticks(max: f64, step: f64) -> u32 {
    (max / step + 1e-9).floor() as u32
}

/// The first multiple of the step at or above `max` (1 for nothing).
fn nice_ceiling(max: f64) -> f64 {
    if !max.is_finite() || max <= 0.0 {
        return 1.0;
    }
    let step = nice_step(max);
    (max / step).ceil() * step
}

fn label(v: f64) -> String {
    if v == v.round() {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_numbers() {
        assert_eq!(nice_step(600.0), 200.0);
        assert_eq!(nice_ceiling(530.0), 600.0);
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_step(2.0), 0.5);
        assert_eq!(label(0.5), "0.50");
        assert_eq!(label(200.0), "200");
    }

    #[test]
    fn one_polyline_per_series_and_escaped_text() {
        let svg = render("a < b", "x & y", &[], 20.0);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        assert_eq!(svg.matches("<polyline").count(), 6);
        assert!(svg.contains("a &lt; b") && svg.contains("x &amp; y"));
    }
}
