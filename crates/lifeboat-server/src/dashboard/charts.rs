//! Charts as inline SVG, drawn on the server: no script, no library, readable by screen
//! readers through their labels and the tables beside them.

use std::fmt::Write;

use jiff::Timestamp;
use maud::{Markup, PreEscaped};

const W: f64 = 720.0;
const H: f64 = 200.0;
const LEFT: f64 = 70.0;
const BOTTOM: f64 = 24.0;
const TOP: f64 = 10.0;

fn esc(s: &str) -> String {
    maud::html! { (s) }.into_string()
}

fn x_of(t: Timestamp, from: i64, to: i64) -> f64 {
    let span = (to - from).max(1) as f64;
    LEFT + (W - LEFT - 10.0) * (t.as_second() - from) as f64 / span
}

fn y_of(v: f64, max: f64) -> f64 {
    TOP + (H - TOP - BOTTOM) * (1.0 - v / max.max(f64::MIN_POSITIVE))
}

fn frame(label: &str, max_text: &str, from: Timestamp, to: Timestamp) -> String {
    let mut svg = format!(
        "<svg viewBox=\"0 0 {W} {H}\" width=\"{W}\" height=\"{H}\" role=\"img\" aria-label=\"{}\" xmlns=\"http://www.w3.org/2000/svg\">",
        esc(label)
    );
    let _ = write!(
        svg,
        "<line x1=\"{LEFT}\" y1=\"{TOP}\" x2=\"{LEFT}\" y2=\"{b}\" stroke=\"#999\"/>\
         <line x1=\"{LEFT}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" stroke=\"#999\"/>\
         <text x=\"{tx}\" y=\"{ty}\" font-size=\"11\" text-anchor=\"end\">{}</text>\
         <text x=\"{tx}\" y=\"{b}\" font-size=\"11\" text-anchor=\"end\">0</text>\
         <text x=\"{LEFT}\" y=\"{H}\" font-size=\"11\" dy=\"-4\">{}</text>\
         <text x=\"{r}\" y=\"{H}\" font-size=\"11\" dy=\"-4\" text-anchor=\"end\">{}</text>",
        esc(max_text),
        from.strftime("%Y-%m-%d %H:%M"),
        to.strftime("%Y-%m-%d %H:%M"),
        b = H - BOTTOM,
        r = W - 10.0,
        tx = LEFT - 4.0,
        ty = TOP + 10.0,
    );
    svg
}

/// Snapshot sizes over time as a line; anomalies (as `verify` judges them) as red circles.
/// `points` are (time, bytes, anomaly), oldest first.
pub fn sizes(points: &[(Timestamp, u64, bool)]) -> Markup {
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        return PreEscaped(String::new());
    };
    let (from, to) = (first.0.as_second(), last.0.as_second());
    let max = points.iter().map(|p| p.1).max().unwrap_or(1).max(1) as f64 * 1.1;
    let anomalies = points.iter().filter(|p| p.2).count();
    let mut svg = frame(
        &format!(
            "size of {} snapshots over time, {anomalies} marked as anomalies",
            points.len()
        ),
        &lifeboat_engine::human_bytes(max as u64),
        first.0,
        last.0,
    );
    // Each snapshot's place on the chart, computed once for the line, the dots and the marks.
    let at: Vec<(f64, f64)> = points
        .iter()
        .map(|(t, v, _)| (x_of(*t, from, to), y_of(*v as f64, max)))
        .collect();
    let mut line = String::new();
    for (x, y) in &at {
        let _ = write!(line, "{x:.1},{y:.1} ");
    }
    let _ = write!(
        svg,
        "<polyline points=\"{line}\" fill=\"none\" stroke=\"#0f5fa8\" stroke-width=\"1.5\"/>"
    );
    // Few points: each one visible (a single snapshot draws no line).
    if points.len() <= 100 {
        for (x, y) in &at {
            let _ = write!(
                svg,
                "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"2.5\" fill=\"#0f5fa8\"/>"
            );
        }
    }
    for ((t, v, _), (x, y)) in points.iter().zip(&at).filter(|(p, _)| p.2) {
        let _ = write!(
            svg,
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"5\" fill=\"#c62828\" class=\"anomaly\"><title>{} at {}: anomaly</title></circle>",
            x,
            y,
            lifeboat_engine::human_bytes(*v),
            t.strftime("%Y-%m-%d %H:%M"),
        );
    }
    svg.push_str("</svg>");
    PreEscaped(svg)
}

/// Achieved RTO per drill as bars, the target as a dashed line. `points` are (time, secs).
pub fn rto(points: &[(Timestamp, f64)], target: f64) -> Markup {
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        return PreEscaped(String::new());
    };
    let max = points.iter().map(|p| p.1).fold(target, f64::max) * 1.15;
    let mut svg = frame(
        &format!(
            "achieved RTO of {} drills against a target of {}",
            points.len(),
            lifeboat_engine::human_secs(target)
        ),
        &lifeboat_engine::human_secs(max),
        first.0,
        last.0,
    );
    let slot = (W - LEFT - 10.0) / points.len() as f64;
    let bar = (slot * 0.6).clamp(2.0, 40.0);
    for (i, (t, v)) in points.iter().enumerate() {
        let x = LEFT + slot * (i as f64 + 0.5) - bar / 2.0;
        let y = y_of(*v, max);
        let colour = if *v > target { "#c62828" } else { "#2e7d32" };
        let _ = write!(
            svg,
            "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bar:.1}\" height=\"{:.1}\" fill=\"{colour}\"><title>{}: {}</title></rect>",
            (H - BOTTOM - y).max(0.5),
            t.strftime("%Y-%m-%d %H:%M"),
            lifeboat_engine::human_secs(*v),
        );
    }
    let ty = y_of(target, max);
    let _ = write!(
        svg,
        "<line x1=\"{LEFT}\" y1=\"{ty:.1}\" x2=\"{}\" y2=\"{ty:.1}\" stroke=\"#555\" stroke-dasharray=\"5 3\"/>\
         <text x=\"{}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\">target {}</text></svg>",
        W - 10.0,
        W - 12.0,
        ty - 3.0,
        lifeboat_engine::human_secs(target)
    );
    PreEscaped(svg)
}

/// A PITR window from `from` to `to` as a band, base backups as ticks.
pub fn window(from: Timestamp, to: Timestamp, bases: &[Timestamp], gaps: usize) -> Markup {
    let (f, t) = (from.as_second(), to.as_second());
    let h = 70.0;
    let mut svg = format!(
        "<svg viewBox=\"0 0 {W} {h}\" width=\"{W}\" height=\"{h}\" role=\"img\" aria-label=\"recoverable from {} to {}, {gaps} gaps\" xmlns=\"http://www.w3.org/2000/svg\">",
        from.strftime("%Y-%m-%d %H:%M:%S"),
        to.strftime("%Y-%m-%d %H:%M:%S"),
    );
    let colour = if gaps == 0 { "#2e7d32" } else { "#b26a00" };
    let _ = write!(
        svg,
        "<rect x=\"{LEFT}\" y=\"15\" width=\"{:.1}\" height=\"22\" fill=\"{colour}\" opacity=\"0.8\"/>",
        W - LEFT - 10.0
    );
    for b in bases
        .iter()
        .filter(|b| b.as_second() >= f && b.as_second() <= t)
    {
        let x = x_of(*b, f, t);
        let _ = write!(
            svg,
            "<line x1=\"{x:.1}\" y1=\"8\" x2=\"{x:.1}\" y2=\"44\" stroke=\"#0f2a44\" stroke-width=\"2\"><title>base backup {}</title></line>",
            b.strftime("%Y-%m-%d %H:%M:%S")
        );
    }
    let _ = write!(
        svg,
        "<text x=\"{LEFT}\" y=\"62\" font-size=\"11\">{}</text><text x=\"{}\" y=\"62\" font-size=\"11\" text-anchor=\"end\">{}</text></svg>",
        from.strftime("%Y-%m-%d %H:%M:%S"),
        W - 10.0,
        to.strftime("%Y-%m-%d %H:%M:%S"),
    );
    PreEscaped(svg)
}
