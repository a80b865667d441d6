//! Small inline-SVG charts for the HTML reports: no JavaScript, no network, readable when
//! the file is opened from disk.
//!
//! One module for every HTML report navbat and its tools write: the load generator's run,
//! simulation and planning reports (`loadgen`) and the monthly statistics (`report`, D20).
//! [`chart`] draws numeric x axes (lines or stacked bars); [`category_chart`] draws bars over
//! named categories (topics, outcomes, days).

use std::fmt::Write;

/// One named series of (x, y) points drawn in one colour.
pub struct Series<'a> {
    /// Legend text.
    pub name: &'a str,
    /// CSS colour.
    pub colour: &'a str,
    /// The points, x ascending.
    pub points: Vec<(f64, f64)>,
}

/// How the series of a chart are drawn.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Polylines.
    Lines,
    /// Stacked bars, one per x (series stacked in order).
    StackedBars,
}

const W: f64 = 860.0;
const H: f64 = 300.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 30.0;
const BOTTOM: f64 = 44.0;

/// `s` made safe for HTML text and attribute values (`&`, `<`, `>`, `"`, `'`).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A "nice" step for about `ticks` axis ticks over `span`.
fn nice_step(span: f64, ticks: f64) -> f64 {
    let raw = (span / ticks).max(f64::MIN_POSITIVE);
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let nice = if norm <= 1.0 {
        1.0
    } else if norm <= 2.0 {
        2.0
    } else if norm <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

fn label(v: f64) -> String {
    if v.abs() >= 10_000.0 {
        format!("{:.0}k", v / 1000.0)
    } else if v.fract().abs() < 1e-9 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// An SVG chart with axes, grid, title, axis labels and a legend.
pub fn chart(title: &str, x_label: &str, y_label: &str, style: Style, series: &[Series]) -> String {
    let xs = series.iter().flat_map(|s| s.points.iter().map(|p| p.0));
    let (mut x0, mut x1) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
        (a.min(x), b.max(x))
    });
    if !x0.is_finite() {
        (x0, x1) = (0.0, 1.0);
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    let y_max = match style {
        Style::Lines => series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .filter(|y| y.is_finite())
            .fold(0.0, f64::max),
        Style::StackedBars => {
            let n = series.iter().map(|s| s.points.len()).max().unwrap_or(0);
            (0..n)
                .map(|i| {
                    series
                        .iter()
                        .map(|s| s.points.get(i).map_or(0.0, |p| p.1))
                        .sum::<f64>()
                })
                .fold(0.0, f64::max)
        }
    };
    let y_step = nice_step(if y_max > 0.0 { y_max } else { 1.0 }, 5.0);
    let y_top = (y_max / y_step).ceil().max(1.0) * y_step;
    let pw = W - LEFT - RIGHT;
    let ph = H - TOP - BOTTOM;
    let sx = |x: f64| LEFT + (x - x0) / (x1 - x0) * pw;
    let sy = |y: f64| TOP + ph - (y / y_top) * ph;
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="100%" style="max-width:{W}px;font:12px sans-serif" role="img" aria-label="{t}">"#,
        t = escape(title)
    );
    let _ = write!(
        out,
        r#"<text x="{LEFT}" y="18" font-weight="bold" font-size="14">{}</text>"#,
        escape(title)
    );
    let mut y = 0.0;
    while y <= y_top + y_step / 2.0 {
        let py = sy(y);
        let _ = write!(
            out,
            r##"<line x1="{LEFT}" x2="{}" y1="{py:.1}" y2="{py:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
            W - RIGHT,
            LEFT - 6.0,
            py + 4.0,
            label(y)
        );
        y += y_step;
    }
    let x_step = nice_step(x1 - x0, 8.0);
    let mut x = (x0 / x_step).ceil() * x_step;
    while x <= x1 + 1e-9 {
        let px = sx(x);
        let _ = write!(
            out,
            r##"<line x1="{px:.1}" x2="{px:.1}" y1="{TOP}" y2="{:.1}" stroke="#eee"/><text x="{px:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
            TOP + ph,
            TOP + ph + 16.0,
            label(x)
        );
        x += x_step;
    }
    let _ = write!(
        out,
        r##"<line x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{:.1}" stroke="#333"/><line x1="{LEFT}" x2="{}" y1="{:.1}" y2="{:.1}" stroke="#333"/>"##,
        TOP + ph,
        W - RIGHT,
        TOP + ph,
        TOP + ph
    );
    let _ = write!(
        out,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text><text transform="translate(14,{:.1}) rotate(-90)" text-anchor="middle">{}</text>"#,
        LEFT + pw / 2.0,
        H - 6.0,
        escape(x_label),
        TOP + ph / 2.0,
        escape(y_label)
    );
    match style {
        Style::Lines => {
            for s in series {
                let mut d = String::new();
                for (i, (x, y)) in s.points.iter().enumerate() {
                    if !y.is_finite() {
                        continue;
                    }
                    let _ = write!(
                        d,
                        "{}{:.1},{:.1}",
                        if i == 0 { "M" } else { " L" },
                        sx(*x),
                        sy(*y)
                    );
                }
                let _ = write!(
                    out,
                    r#"<path d="{d}" fill="none" stroke="{}" stroke-width="1.6"/>"#,
                    s.colour
                );
            }
        }
        Style::StackedBars => {
            let n = series.iter().map(|s| s.points.len()).max().unwrap_or(0);
            let bar = (pw / n.max(1) as f64 * 0.8).max(1.0);
            for i in 0..n {
                let mut base = 0.0;
                for s in series {
                    if let Some(&(x, y)) = s.points.get(i) {
                        if y > 0.0 {
                            let (top, bottom) = (sy(base + y), sy(base));
                            let px = sx(x) - bar / 2.0;
                            let _ = write!(
                                out,
                                r#"<rect x="{px:.1}" y="{top:.1}" width="{bar:.1}" height="{:.1}" fill="{}"><title>{}: {}</title></rect>"#,
                                (bottom - top).max(0.0),
                                s.colour,
                                escape(s.name),
                                label(y)
                            );
                            base += y;
                        }
                    }
                }
            }
        }
    }
    let mut lx = LEFT + 8.0;
    for s in series {
        let _ = write!(
            out,
            r#"<rect x="{lx:.1}" y="{:.1}" width="12" height="12" fill="{}"/><text x="{:.1}" y="{:.1}">{}</text>"#,
            TOP + 4.0,
            s.colour,
            lx + 16.0,
            TOP + 14.0,
            escape(s.name)
        );
        lx += 24.0 + 7.0 * s.name.chars().count() as f64;
    }
    out.push_str("</svg>");
    out
}

/// Bars over named categories: one group per category, the series' values side by side
/// (`stacked = false`) or on top of each other (`stacked = true`). Each series holds one
/// value per category, in the order of `categories` (missing values count as 0). Long
/// category names are shortened on the axis and given in full in the bar's tooltip.
pub fn category_chart(
    title: &str,
    y_label: &str,
    categories: &[String],
    series: &[Series],
    stacked: bool,
) -> String {
    let n = categories.len();
    let value = |s: &Series, i: usize| {
        s.points
            .get(i)
            .map(|p| p.1)
            .filter(|v| v.is_finite() && *v > 0.0)
            .unwrap_or(0.0)
    };
    let y_max = (0..n)
        .map(|i| {
            if stacked {
                series.iter().map(|s| value(s, i)).sum::<f64>()
            } else {
                series.iter().map(|s| value(s, i)).fold(0.0, f64::max)
            }
        })
        .fold(0.0, f64::max);
    let y_step = nice_step(if y_max > 0.0 { y_max } else { 1.0 }, 5.0);
    let y_top = (y_max / y_step).ceil().max(1.0) * y_step;
    // The legend wraps onto as many lines as it needs, under the title.
    let mut legend: Vec<(f64, f64, &Series)> = Vec::new();
    let (mut lx, mut ly) = (LEFT + 8.0, 42.0);
    for s in series {
        let width = 24.0 + 7.0 * s.name.chars().count() as f64;
        if lx > LEFT + 8.0 && lx + width > W - RIGHT {
            lx = LEFT + 8.0;
            ly += 16.0;
        }
        legend.push((lx, ly, s));
        lx += width;
    }
    let top = if series.is_empty() { TOP } else { ly + 22.0 };
    // Axis labels turn when there are many categories or long names.
    let longest = categories
        .iter()
        .map(|c| c.chars().count().min(18))
        .max()
        .unwrap_or(0);
    let pw = W - LEFT - RIGHT;
    let slot = pw / n.max(1) as f64;
    let rotate = n > 12 || slot < 6.5 * longest as f64;
    let bottom = if rotate { 100.0 } else { BOTTOM };
    let h = H + (top - TOP) + (bottom - BOTTOM);
    let ph = h - top - bottom;
    let sy = |y: f64| top + ph - (y / y_top) * ph;
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {h}" width="100%" style="max-width:{W}px;font:12px sans-serif" role="img" aria-label="{t}">"#,
        t = escape(title)
    );
    let _ = write!(
        out,
        r#"<text x="{LEFT}" y="18" font-weight="bold" font-size="14">{}</text>"#,
        escape(title)
    );
    let mut y = 0.0;
    while y <= y_top + y_step / 2.0 {
        let py = sy(y);
        let _ = write!(
            out,
            r##"<line x1="{LEFT}" x2="{}" y1="{py:.1}" y2="{py:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
            W - RIGHT,
            LEFT - 6.0,
            py + 4.0,
            label(y)
        );
        y += y_step;
    }
    let _ = write!(
        out,
        r##"<line x1="{LEFT}" x2="{LEFT}" y1="{top}" y2="{:.1}" stroke="#333"/><line x1="{LEFT}" x2="{}" y1="{:.1}" y2="{:.1}" stroke="#333"/>"##,
        top + ph,
        W - RIGHT,
        top + ph,
        top + ph
    );
    let _ = write!(
        out,
        r#"<text transform="translate(14,{:.1}) rotate(-90)" text-anchor="middle">{}</text>"#,
        top + ph / 2.0,
        escape(y_label)
    );
    let groups = if stacked { 1 } else { series.len().max(1) };
    let bar = (slot * 0.8 / groups as f64).max(1.0);
    for (i, name) in categories.iter().enumerate() {
        let x0 = LEFT + slot * i as f64 + slot * 0.1;
        let mut base = 0.0;
        for (k, s) in series.iter().enumerate() {
            let v = value(s, i);
            if v <= 0.0 {
                continue;
            }
            let (top, bottom_y, px) = if stacked {
                let r = (sy(base + v), sy(base), x0);
                base += v;
                r
            } else {
                (sy(v), sy(0.0), x0 + bar * k as f64)
            };
            let _ = write!(
                out,
                r#"<rect x="{px:.1}" y="{top:.1}" width="{bar:.1}" height="{:.1}" fill="{}"><title>{} · {}: {}</title></rect>"#,
                (bottom_y - top).max(0.0),
                s.colour,
                escape(name),
                escape(s.name),
                label(v)
            );
        }
        let short: String = if name.chars().count() > 18 {
            name.chars().take(17).chain(['…']).collect()
        } else {
            name.clone()
        };
        let cx = LEFT + slot * (i as f64 + 0.5);
        let ty = top + ph + 14.0;
        if rotate {
            let _ = write!(
                out,
                r#"<text transform="translate({cx:.1},{ty:.1}) rotate(-45)" text-anchor="end">{}</text>"#,
                escape(&short)
            );
        } else {
            let _ = write!(
                out,
                r#"<text x="{cx:.1}" y="{ty:.1}" text-anchor="middle">{}</text>"#,
                escape(&short)
            );
        }
    }
    for (lx, ly, s) in legend {
        let _ = write!(
            out,
            r#"<rect x="{lx:.1}" y="{:.1}" width="12" height="12" fill="{}"/><text x="{:.1}" y="{ly:.1}">{}</text>"#,
            ly - 10.0,
            s.colour,
            lx + 16.0,
            escape(s.name)
        );
    }
    out.push_str("</svg>");
    out
}

/// Colours that stay distinct for most readers.
pub const PALETTE: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#17becf", "#7f7f7f",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chart_is_well_formed_svg() {
        let s = chart(
            "t <&>",
            "x",
            "y",
            Style::Lines,
            &[Series {
                name: "a",
                colour: PALETTE[0],
                points: vec![(0.0, 1.0), (1.0, 3.0), (2.0, f64::NAN)],
            }],
        );
        assert!(s.starts_with("<svg") && s.ends_with("</svg>"));
        assert!(s.contains("t &lt;&amp;&gt;"));
        let empty = chart("e", "x", "y", Style::StackedBars, &[]);
        assert!(empty.ends_with("</svg>"));
    }

    #[test]
    fn category_chart_escapes_names_and_survives_odd_values() {
        let cats = vec![
            "a<b".to_owned(),
            "Натижалар ва шикоятлар узун ном".to_owned(),
        ];
        for stacked in [true, false] {
            let s = category_chart(
                "t",
                "y",
                &cats,
                &[
                    Series {
                        name: "x\"y",
                        colour: PALETTE[0],
                        points: vec![(0.0, 3.0), (1.0, f64::NAN)],
                    },
                    Series {
                        name: "z",
                        colour: PALETTE[1],
                        points: vec![(0.0, -1.0)],
                    },
                ],
                stacked,
            );
            assert!(s.starts_with("<svg") && s.ends_with("</svg>"));
            assert!(s.contains("a&lt;b") && s.contains("x&quot;y"));
            assert!(!s.contains("NaN"));
        }
        assert!(category_chart("e", "y", &[], &[], true).ends_with("</svg>"));
    }
}
