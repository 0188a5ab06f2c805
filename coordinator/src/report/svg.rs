//! Inline SVG of the report: scale bars, the change ramp legend, grouped and simple bar
//! charts with value axes. Pure functions of numbers and labels.

use std::fmt::Write;

use super::html::esc;

/// Font of every chart.
const FONT: &str = "font-family=\"system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif\"";

/// A "nice" length (1, 2 or 5 times a power of ten) no longer than `max`.
pub fn nice_length(max: f64) -> f64 {
    if max <= 0.0 || !max.is_finite() {
        return 0.0;
    }
    let p = 10f64.powf(max.log10().floor());
    [5.0, 2.0, 1.0]
        .iter()
        .map(|m| m * p)
        .find(|&l| l <= max * (1.0 + 1e-9))
        .unwrap_or(p)
}

/// A length in metres as text: metres below 1 km, else km.
pub fn length_label(m: f64) -> String {
    if m >= 1000.0 {
        format!("{} km", trim(m / 1000.0))
    } else {
        format!("{} m", trim(m))
    }
}

fn trim(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// A scale bar for a map `ground_width` (CRS units) shown `display_width` pixels wide,
/// at most about a third of the map, in four alternating segments, with a north arrow.
pub fn scale_bar(ground_width: f64, display_width: f64, geographic: bool) -> String {
    let per_px = ground_width / display_width;
    let len = nice_length(ground_width / 3.0);
    let px = len / per_px;
    let label = if geographic {
        format!("{}°", trim(len))
    } else {
        length_label(len)
    };
    let mut s = String::new();
    let h = 34.0;
    let _ = write!(
        s,
        "<svg class=\"scale\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"scale bar {label}\">",
        w = display_width
    );
    let x0 = 4.0;
    for i in 0..4 {
        let seg = px / 4.0;
        let fill = if i % 2 == 0 { "#222" } else { "#fff" };
        let _ = write!(
            s,
            "<rect x=\"{:.1}\" y=\"6\" width=\"{seg:.1}\" height=\"6\" fill=\"{fill}\" stroke=\"#222\" stroke-width=\"1\"/>",
            x0 + i as f64 * seg
        );
    }
    let _ = write!(
        s,
        "<text x=\"{x0}\" y=\"26\" font-size=\"11\" {FONT} fill=\"#333\">0</text>\
         <text x=\"{:.1}\" y=\"26\" font-size=\"11\" {FONT} fill=\"#333\" text-anchor=\"middle\">{}</text>",
        x0 + px,
        esc(&label)
    );
    // north arrow (the grids are north-up)
    let ax = display_width - 14.0;
    let _ = write!(
        s,
        "<path d=\"M{ax} 2 L{} 18 L{ax} 14 L{} 18 Z\" fill=\"#222\"/>\
         <text x=\"{ax}\" y=\"31\" font-size=\"11\" font-weight=\"600\" {FONT} text-anchor=\"middle\" fill=\"#222\">N</text></svg>",
        ax + 6.0,
        ax - 6.0
    );
    s
}

/// The change ramp as a horizontal legend from `-max` to `max` t per cell.
pub fn ramp_legend(max: f64, width: f64) -> String {
    diverging_legend(max, width, "t C per cell (loss ← → gain)")
}

/// The diverging ramp as a horizontal legend from `-max` to `max` with `caption`.
pub fn diverging_legend(max: f64, width: f64, caption: &str) -> String {
    gradient_legend(width, caption, |t| {
        (super::png::ramp(t * 2.0 - 1.0), (t * 2.0 - 1.0) * max)
    })
}

/// The storage ramp as a horizontal legend from 0 to `max` with `caption`.
pub fn sequential_legend(max: f64, width: f64, caption: &str) -> String {
    gradient_legend(width, caption, |t| (super::png::storage_ramp(t), t * max))
}

/// A horizontal gradient legend: `at(t)` gives the colour and the value at t in [0, 1].
fn gradient_legend(width: f64, caption: &str, at: impl Fn(f64) -> ([u8; 3], f64)) -> String {
    let mut s = String::new();
    // an id from what the gradient shows (the same legend twice may share it)
    let id = {
        let key = format!("{caption}|{:?}|{:?}|{:?}", at(0.0), at(0.5), at(1.0));
        key.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
        })
    };
    let bar_w = width - 40.0;
    let _ = write!(
        s,
        "<svg class=\"ramp\" width=\"{width}\" height=\"46\" viewBox=\"0 0 {width} 46\" role=\"img\" aria-label=\"{}\">\
         <defs><linearGradient id=\"lg{id:016x}\" x1=\"0\" x2=\"1\" y1=\"0\" y2=\"0\">",
        esc_attr(caption)
    );
    for i in 0..=12 {
        let t = i as f64 / 12.0;
        let ([r, g, b], _) = at(t);
        let _ = write!(
            s,
            "<stop offset=\"{t:.4}\" stop-color=\"rgb({r},{g},{b})\"/>"
        );
    }
    let _ = write!(
        s,
        "</linearGradient></defs><rect x=\"20\" y=\"4\" width=\"{bar_w}\" height=\"12\" fill=\"url(#lg{id:016x})\" stroke=\"#999\" stroke-width=\"0.5\"/>"
    );
    for i in 0..=4 {
        let t = i as f64 / 4.0;
        let x = 20.0 + t * bar_w;
        let v = at(t).1;
        let _ = write!(
            s,
            "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"16\" y2=\"20\" stroke=\"#555\"/>\
             <text x=\"{x:.1}\" y=\"31\" font-size=\"10.5\" {FONT} text-anchor=\"middle\" fill=\"#333\">{}</text>",
            signed(v)
        );
    }
    let _ = write!(
        s,
        "<text x=\"{:.1}\" y=\"44\" font-size=\"10.5\" {FONT} text-anchor=\"middle\" fill=\"#666\">{}</text></svg>",
        20.0 + bar_w / 2.0,
        esc_attr(caption)
    );
    s
}

fn esc_attr(s: &str) -> String {
    super::html::esc(s)
}

fn signed(v: f64) -> String {
    if v.abs() < 1e-9 {
        "0".into()
    } else if v > 0.0 {
        format!("+{}", fmt_num(v))
    } else {
        format!("−{}", fmt_num(-v))
    }
}

/// A number with at most 3 significant decimals and thousands separators.
pub fn fmt_num(v: f64) -> String {
    let decimals = if v.abs() >= 100.0 {
        0
    } else if v.abs() >= 10.0 {
        1
    } else {
        2
    };
    let s = format!("{:.*}", decimals, v.abs());
    let (int, frac) = s.split_once('.').map_or((s.as_str(), ""), |(a, b)| (a, b));
    let mut grouped = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let mut out = if v < 0.0 {
        format!("-{grouped}")
    } else {
        grouped
    };
    if !frac.is_empty() {
        out.push('.');
        out.push_str(frac);
    }
    out
}

/// Axis ticks 0, step, 2 step, ... covering `max` with a 1/2/2.5/5 x 10^n step.
pub fn ticks(max: f64) -> Vec<f64> {
    if max <= 0.0 || !max.is_finite() {
        return vec![0.0, 1.0];
    }
    let raw = max / 5.0;
    let p = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * p)
        .find(|&s| s >= raw * (1.0 - 1e-9))
        .unwrap_or(10.0 * p);
    let n = (max / step - 1e-9).ceil() as usize;
    (0..=n).map(|i| i as f64 * step).collect()
}

/// One series of a grouped bar chart: a name (legend) and a colour.
pub struct Series<'a> {
    /// Legend name.
    pub name: &'a str,
    /// Fill colour (CSS).
    pub color: &'a str,
}

/// A `w` x `h` chart's opening `<svg>` tag, labelled `unit`.
fn open_svg(w: f64, h: f64, unit: &str) -> String {
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg class=\"chart\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"{}\">",
        esc(unit)
    );
    svg
}

/// The frame of a bar chart: the opened `<svg>` with its y axis, the plot width and
/// the value-to-y mapping.
struct Frame {
    svg: String,
    ymax: f64,
    top: f64,
    ph: f64,
    pw: f64,
}

impl Frame {
    /// Opens a `w` x `h` chart with margins `(left, right, top, bottom)` and a y axis up
    /// to `max` titled `unit`.
    fn open(w: f64, h: f64, margins: (f64, f64, f64, f64), max: f64, unit: &str) -> Frame {
        let (left, right, top, bottom) = margins;
        let t = ticks(max);
        let ymax = *t.last().unwrap_or(&1.0);
        let ph = h - top - bottom;
        let y = |v: f64| top + ph * (1.0 - v / ymax);
        let mut svg = open_svg(w, h, unit);
        axis(&mut svg, &t, y, left, w - right, unit, top + ph / 2.0);
        Frame {
            svg,
            ymax,
            top,
            ph,
            pw: w - left - right,
        }
    }

    /// The y coordinate of value `v`.
    fn y(&self, v: f64) -> f64 {
        self.top + self.ph * (1.0 - v / self.ymax)
    }
}

/// Grouped vertical bars: `values[g][s]` for group `g` (x label `groups[g]`) and
/// series `s`; y axis titled `unit`.
pub fn grouped_bars(
    groups: &[String],
    series: &[Series],
    values: &[Vec<f64>],
    unit: &str,
) -> String {
    let (w, h) = (640.0, 340.0);
    let left = 64.0;
    let max = values.iter().flatten().cloned().fold(0.0, f64::max);
    let f = Frame::open(w, h, (left, 16.0, 16.0, 78.0), max, unit);
    let y = |v: f64| f.y(v);
    let mut s = f.svg.clone();
    let gw = f.pw / groups.len().max(1) as f64;
    let bw = (gw * 0.8 / series.len().max(1) as f64).min(34.0);
    for (g, name) in groups.iter().enumerate() {
        let cx = left + gw * (g as f64 + 0.5);
        let x0 = cx - bw * series.len() as f64 / 2.0;
        for (k, se) in series.iter().enumerate() {
            let v = values.get(g).and_then(|r| r.get(k)).copied().unwrap_or(0.0);
            let _ = write!(
                s,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\" stroke=\"#fff\" stroke-width=\"0.5\"><title>{}: {} {} {}</title></rect>",
                x0 + bw * k as f64,
                y(v),
                bw,
                y(0.0) - y(v),
                esc(se.color),
                esc(name),
                esc(se.name),
                fmt_num(v),
                esc(unit)
            );
        }
        let _ = write!(
            s,
            "<text x=\"{cx:.1}\" y=\"{:.1}\" font-size=\"12\" {FONT} text-anchor=\"middle\" fill=\"#333\">{}</text>",
            y(0.0) + 18.0,
            esc(name)
        );
    }
    // legend
    let mut lx = left;
    for se in series {
        let _ = write!(
            s,
            "<rect x=\"{lx:.1}\" y=\"{:.1}\" width=\"12\" height=\"12\" fill=\"{}\"/><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\" {FONT} fill=\"#333\">{}</text>",
            h - 26.0,
            esc(se.color),
            lx + 17.0,
            h - 16.0,
            esc(se.name)
        );
        lx += 30.0 + 7.0 * se.name.chars().count() as f64;
    }
    s.push_str("</svg>");
    s
}

/// Simple vertical bars with the value (and an optional note) above each bar.
pub fn bars(
    labels: &[String],
    values: &[f64],
    notes: &[String],
    colors: &[&str],
    unit: &str,
) -> String {
    let (w, h) = (470.0, 340.0);
    let left = 64.0;
    let max = values.iter().cloned().fold(0.0, f64::max);
    let f = Frame::open(w, h, (left, 16.0, 30.0, 44.0), max, unit);
    let y = |v: f64| f.y(v);
    let mut s = f.svg.clone();
    let gw = f.pw / labels.len().max(1) as f64;
    let bw = (gw * 0.55).min(70.0);
    for (i, l) in labels.iter().enumerate() {
        let v = values.get(i).copied().unwrap_or(0.0);
        let cx = left + gw * (i as f64 + 0.5);
        let color = colors.get(i).copied().unwrap_or("#4c78a8");
        let _ = write!(
            s,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{bw:.1}\" height=\"{:.1}\" fill=\"{}\" rx=\"2\"><title>{}: {} {}</title></rect>\
             <text x=\"{cx:.1}\" y=\"{:.1}\" font-size=\"12\" font-weight=\"600\" {FONT} text-anchor=\"middle\" fill=\"#222\">{}</text>\
             <text x=\"{cx:.1}\" y=\"{:.1}\" font-size=\"12\" {FONT} text-anchor=\"middle\" fill=\"#333\">{}</text>",
            cx - bw / 2.0,
            y(v),
            y(0.0) - y(v),
            esc(color),
            esc(l),
            fmt_num(v),
            esc(unit),
            y(v) - 6.0,
            fmt_num(v),
            y(0.0) + 18.0,
            esc(l)
        );
        if let Some(n) = notes.get(i).filter(|n| !n.is_empty()) {
            let _ = write!(
                s,
                "<text x=\"{cx:.1}\" y=\"{:.1}\" font-size=\"11\" {FONT} text-anchor=\"middle\" fill=\"#666\">{}</text>",
                y(0.0) + 33.0,
                esc(n)
            );
        }
    }
    s.push_str("</svg>");
    s
}

/// Colours of the lines of [`lines`], one per series in turn (ColorBrewer Dark2).
pub const LINE_COLORS: [&str; 8] = [
    "#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666",
];

/// One line of [`lines`]: its legend name and its points (x, y), in x order.
pub struct Line<'a> {
    /// Legend name.
    pub name: &'a str,
    /// Points (x, y).
    pub points: Vec<(f64, f64)>,
    /// Error bars (x, low, high), drawn in the line's colour (e.g. an ensemble's 2.5th
    /// and 97.5th percentiles).
    pub bars: Vec<(f64, f64, f64)>,
}

/// The y range of [`lines`]: round ticks (a 1/2/2.5/5 x 10^n step, [`ticks`] of the
/// span) from below the smallest value to above the largest, so that changes small
/// beside the values show.
fn line_range(min: f64, max: f64) -> Vec<f64> {
    let span = if max > min {
        max - min
    } else {
        max.abs().max(1.0)
    };
    let t = ticks(span);
    let step = if t.len() > 1 { t[1] - t[0] } else { 1.0 };
    let lo = (min / step).floor() * step;
    let n = ((max - lo) / step - 1e-9).ceil().max(1.0) as usize;
    (0..=n).map(|i| lo + i as f64 * step).collect()
}

/// The plot area of a [`lines`] chart: values `lo` to `hi` up the y axis, `xmin` to
/// `xmax` along the x axis.
struct LinePlot {
    lo: f64,
    hi: f64,
    xmin: f64,
    xmax: f64,
}

impl LinePlot {
    const W: f64 = 470.0;
    const H: f64 = 340.0;
    const LEFT: f64 = 64.0;
    const RIGHT: f64 = 110.0;
    const TOP: f64 = 16.0;
    const BOTTOM: f64 = 34.0;

    /// The plot's height.
    fn ph() -> f64 {
        Self::H - Self::TOP - Self::BOTTOM
    }

    /// The y coordinate of value `v`.
    fn y(&self, v: f64) -> f64 {
        Self::TOP + Self::ph() * (1.0 - (v - self.lo) / (self.hi - self.lo).max(f64::MIN_POSITIVE))
    }

    /// The x coordinate of x value `v` (the middle when every point has the same x).
    fn x(&self, v: f64) -> f64 {
        let pw = Self::W - Self::LEFT - Self::RIGHT;
        if self.xmax > self.xmin {
            Self::LEFT + pw * (v - self.xmin) / (self.xmax - self.xmin)
        } else {
            Self::LEFT + pw / 2.0
        }
    }
}

/// The smallest and largest y (points and error bars) and x (points) of `series`, as
/// `((ymin, ymax), (xmin, xmax))`; none without points.
fn line_bounds(series: &[Line<'_>]) -> Option<((f64, f64), (f64, f64))> {
    let pts = || series.iter().flat_map(|l| l.points.iter());
    let (ymin, ymax) = pts().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
        (a.min(p.1), b.max(p.1))
    });
    let (ymin, ymax) = series
        .iter()
        .flat_map(|l| l.bars.iter())
        .fold((ymin, ymax), |(a, b), e| (a.min(e.1), b.max(e.2)));
    let (xmin, xmax) = pts().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
        (a.min(p.0), b.max(p.0))
    });
    if !ymin.is_finite() || !xmin.is_finite() {
        return None;
    }
    Some(((ymin, ymax), (xmin, xmax)))
}

/// A line chart: one line per series (colours [`LINE_COLORS`] in turn) over numeric x
/// (e.g. years, labelled as whole numbers at every x of a point), y axis titled `unit`
/// over a range round around the values.
pub fn lines(series: &[Line<'_>], unit: &str) -> String {
    let Some(((ymin, ymax), (xmin, xmax))) = line_bounds(series) else {
        return String::new();
    };
    let t = line_range(ymin, ymax);
    let p = LinePlot {
        lo: t[0],
        hi: *t.last().unwrap_or(&1.0),
        xmin,
        xmax,
    };
    let (w, h) = (LinePlot::W, LinePlot::H);
    let mut s = open_svg(w, h, unit);
    let mid = LinePlot::TOP + LinePlot::ph() / 2.0;
    axis(
        &mut s,
        &t,
        |v| p.y(v),
        LinePlot::LEFT,
        w - LinePlot::RIGHT,
        unit,
        mid,
    );
    let mut xs: Vec<f64> = series
        .iter()
        .flat_map(|l| l.points.iter())
        .map(|p| p.0)
        .collect();
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    for v in xs {
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" {FONT} text-anchor=\"middle\" fill=\"#555\">{}</text>",
            p.x(v),
            h - LinePlot::BOTTOM + 16.0,
            v.round()
        );
    }
    for (i, l) in series.iter().enumerate() {
        line(&mut s, &p, (i, l), unit);
    }
    s.push_str("</svg>");
    s
}

/// Series `i`, `l`, of a [`lines`] chart: its line, error bars, points (with their
/// values as titles in `unit`) and legend entry, in colour `i` of [`LINE_COLORS`].
fn line(s: &mut String, p: &LinePlot, (i, l): (usize, &Line<'_>), unit: &str) {
    let color = LINE_COLORS[i % LINE_COLORS.len()];
    let path: Vec<String> = l
        .points
        .iter()
        .map(|&(a, b)| format!("{:.1},{:.1}", p.x(a), p.y(b)))
        .collect();
    let _ = write!(
        s,
        "<polyline points=\"{}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"2\"/>",
        path.join(" ")
    );
    for &(a, lo, hi) in &l.bars {
        let (xa, ylo, yhi) = (p.x(a), p.y(lo), p.y(hi));
        let _ = write!(
            s,
            "<path class=\"errorbar\" d=\"M{:.1},{ylo:.1}V{yhi:.1}M{:.1},{ylo:.1}h8M{:.1},{yhi:.1}h8\" stroke=\"{color}\" stroke-width=\"1.5\" fill=\"none\"><title>{} {}: {} to {} {}</title></path>",
            xa,
            xa - 4.0,
            xa - 4.0,
            esc(l.name),
            a.round(),
            fmt_num(lo),
            fmt_num(hi),
            esc(unit)
        );
    }
    for &(a, b) in &l.points {
        let _ = write!(
            s,
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3.5\" fill=\"{color}\"><title>{} {}: {} {}</title></circle>",
            p.x(a),
            p.y(b),
            esc(l.name),
            a.round(),
            fmt_num(b),
            esc(unit)
        );
    }
    let ly = LinePlot::TOP + 14.0 + 18.0 * i as f64;
    let right = LinePlot::W - LinePlot::RIGHT;
    let _ = write!(
        s,
        "<line x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{ly:.1}\" y2=\"{ly:.1}\" stroke=\"{color}\" stroke-width=\"2\"/>\
         <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\" {FONT} fill=\"#333\">{}</text>",
        right + 10.0,
        right + 28.0,
        right + 32.0,
        ly + 4.0,
        esc(l.name)
    );
}

/// A tick value with the decimals its step needs (0 for whole steps).
pub fn tick_label(v: f64, step: f64) -> String {
    let d = (0..=4)
        .find(|&d| {
            let x = step * 10f64.powi(d);
            (x - x.round()).abs() < 1e-6 * x.abs().max(1.0)
        })
        .unwrap_or(4) as usize;
    if d == 0 {
        fmt_num(v.round())
            .split('.')
            .next()
            .unwrap_or("0")
            .to_string()
    } else {
        format!("{v:.d$}")
    }
}

fn axis(s: &mut String, t: &[f64], y: impl Fn(f64) -> f64, x0: f64, x1: f64, unit: &str, mid: f64) {
    let step = if t.len() > 1 { t[1] - t[0] } else { 1.0 };
    for &v in t {
        let yv = y(v);
        let _ = write!(
            s,
            "<line x1=\"{x0}\" x2=\"{x1}\" y1=\"{yv:.1}\" y2=\"{yv:.1}\" stroke=\"{}\" stroke-width=\"1\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" {FONT} text-anchor=\"end\" fill=\"#555\">{}</text>",
            if v == 0.0 { "#888" } else { "#e6e6e6" },
            x0 - 6.0,
            yv + 4.0,
            tick_label(v, step),
        );
    }
    let _ = write!(
        s,
        "<text transform=\"translate(14 {mid:.1}) rotate(-90)\" font-size=\"12\" {FONT} text-anchor=\"middle\" fill=\"#333\">{}</text>",
        esc(unit)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_lengths_are_round_and_fit() {
        assert_eq!(nice_length(8366.0), 5000.0);
        assert_eq!(nice_length(1999.0), 1000.0);
        assert_eq!(nice_length(2000.0), 2000.0);
        assert_eq!(nice_length(450.0), 200.0);
        assert_eq!(length_label(5000.0), "5 km");
        assert_eq!(length_label(2500.0), "2.5 km");
        assert_eq!(length_label(200.0), "200 m");
    }

    #[test]
    fn a_scale_bar_is_drawn_to_the_display_scale() {
        // 1004 cells of 25 m = 25,100 m shown 300 px wide: 83.67 m/px; a third of the
        // map is 8,367 m -> 5 km bar = 5000 / 83.667 = 59.76 px, segments of 14.94 px
        let s = scale_bar(25_100.0, 300.0, false);
        assert!(s.contains(">5 km<"), "{s}");
        assert!(s.contains("width=\"14.9\""), "{s}");
    }

    #[test]
    fn axis_ticks_cover_the_maximum_with_round_steps() {
        assert_eq!(ticks(455.8), vec![0.0, 100.0, 200.0, 300.0, 400.0, 500.0]);
        // 13.96 / 5 = 2.79: the next round step is 5
        assert_eq!(ticks(13.96), vec![0.0, 5.0, 10.0, 15.0]);
        assert_eq!(
            ticks(1.0),
            vec![0.0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0]
        );
    }

    #[test]
    fn line_charts_put_points_on_a_round_range_around_the_values() {
        // 19.62 .. 20.41: span 0.79, ticks(0.79) step 0.2 -> 19.6, 19.8, ..., 20.6
        let t = line_range(19.62, 20.41);
        assert_eq!(t.len(), 6);
        assert!(
            (t[0] - 19.6).abs() < 1e-9 && (t[5] - 20.6).abs() < 1e-9,
            "{t:?}"
        );
        let svg = lines(
            &[Line {
                bars: Vec::new(),
                name: "urbanized",
                points: vec![(2020.0, 20.41), (2030.0, 19.62)],
            }],
            "storage, Mt C",
        );
        // plot 470 - 64 - 110 = 296 px wide, 340 - 16 - 34 = 290 px high over 19.6..20.6:
        // 2020 at x = 64, y = 16 + 290 (1 - 0.81) = 71.1; 2030 at x = 360,
        // y = 16 + 290 (1 - 0.02) = 300.2
        assert!(svg.contains("points=\"64.0,71.1 360.0,300.2\""), "{svg}");
        assert!(
            svg.contains("<title>urbanized 2030: 19.6 storage, Mt C</title>"),
            "{svg}"
        );
        assert!(lines(&[], "t").is_empty());
    }

    #[test]
    fn numbers_get_thousands_separators_and_few_decimals() {
        assert_eq!(fmt_num(1_234_567.0), "1,234,567");
        assert_eq!(fmt_num(-8136.8), "-8,137");
        assert_eq!(fmt_num(13.96), "14.0");
        assert_eq!(fmt_num(0.6183), "0.62");
        assert_eq!(signed(-2.5), "−2.50");
        assert_eq!(tick_label(0.0, 100.0), "0");
        assert_eq!(tick_label(1500.0, 500.0), "1,500");
        assert_eq!(tick_label(7.5, 2.5), "7.5");
        assert_eq!(tick_label(0.5, 0.25), "0.50");
        assert_eq!(tick_label(0.2, 0.2), "0.2");
    }
}
