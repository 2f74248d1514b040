//! Scatter and line plots: axes with chosen ticks, log axes, fitted lines, legends placed off the data.

use anyhow::{Result, ensure};
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::text::{
    AXIS_DESC_SIZE, GRID, LEGEND_SIZE, TEXT, TICK_SIZE, TITLE_SIZE, fit_text, fmt_number, font,
    linear_tick_format, rgb, style, text_size,
};
use super::{Draw, Line, Series, WIDTH};

pub(super) fn finite_range(vals: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    vals.filter(|v| v.is_finite())
        .fold(None, |acc, v| match acc {
            None => Some((v, v)),
            Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
        })
}

pub(super) fn padded((lo, hi): (f64, f64), frac: f64) -> (f64, f64) {
    if hi > lo {
        let p = (hi - lo) * frac;
        (lo - p, hi + p)
    } else {
        let p = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
        (lo - p, hi + p)
    }
}

/// Corner of the plot with the fewest data points, for the legend. Points are in [0,1]^2 with y up.
pub(super) fn legend_corner(points: &[(f64, f64)]) -> SeriesLabelPosition {
    let (bw, bh) = (0.45, 0.35);
    let count = |left: bool, top: bool| {
        points
            .iter()
            .filter(|(x, y)| {
                let in_x = if left { *x <= bw } else { *x >= 1.0 - bw };
                let in_y = if top { *y >= 1.0 - bh } else { *y <= bh };
                in_x && in_y
            })
            .count()
    };
    let corners = [
        (SeriesLabelPosition::UpperRight, count(false, true)),
        (SeriesLabelPosition::UpperLeft, count(true, true)),
        (SeriesLabelPosition::LowerRight, count(false, false)),
        (SeriesLabelPosition::LowerLeft, count(true, false)),
    ];
    let mut best = corners[0].clone();
    for c in corners.into_iter().skip(1) {
        if c.1 < best.1 {
            best = c;
        }
    }
    best.0
}

/// The part of y = a*x + b with x in [x0, x1] that lies within y in [y0, y1].
pub(super) fn clip_line(
    a: f64,
    b: f64,
    (x0, x1): (f64, f64),
    (y0, y1): (f64, f64),
) -> Option<[(f64, f64); 2]> {
    if !a.is_finite() || !b.is_finite() {
        return None;
    }
    let (mut lo, mut hi) = (x0, x1);
    if a == 0.0 {
        if b < y0 || b > y1 {
            return None;
        }
    } else {
        let (xa, xb) = ((y0 - b) / a, (y1 - b) / a);
        lo = lo.max(xa.min(xb));
        hi = hi.min(xa.max(xb));
    }
    (lo < hi).then_some([(lo, a * lo + b), (hi, a * hi + b)])
}

/// A linear f64 axis with ticks chosen here rather than by plotters.
pub(super) struct TickAxis {
    inner: RangedCoordf64,
    bold: Vec<f64>,
    light: Vec<f64>,
}

impl TickAxis {
    fn new(lo: f64, hi: f64, bold: Vec<f64>, light: Vec<f64>) -> Self {
        let keep = |v: &f64| *v >= lo.min(hi) && *v <= lo.max(hi);
        Self {
            inner: (lo..hi).into(),
            bold: bold.into_iter().filter(keep).collect(),
            light: light.into_iter().filter(keep).collect(),
        }
    }
}

impl Ranged for TickAxis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;
    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.inner.map(value, limit)
    }
    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            self.light.clone()
        } else {
            self.bold.clone()
        }
    }
    fn range(&self) -> std::ops::Range<f64> {
        self.inner.range()
    }
}

/// Tick positions for a log axis, in log10 units over [a, b]: decades when there are enough of
/// them, else 1-2-5 multiples, else every multiple, else plain linear ticks. Returns (labelled, minor).
pub(super) fn log_ticks(a: f64, b: f64) -> (Vec<f64>, Vec<f64>) {
    let within = |v: f64| v >= a - 1e-9 && v <= b + 1e-9;
    let (k0, k1) = (a.floor() as i32, b.ceil() as i32);
    let multiples = |ms: &[f64]| -> Vec<f64> {
        (k0..=k1)
            .flat_map(|k| ms.iter().map(move |m| (m * 10f64.powi(k)).log10()))
            .filter(|v| within(*v))
            .collect()
    };
    let all: Vec<f64> = multiples(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]);
    let decades: Vec<f64> = (k0..=k1).map(f64::from).filter(|v| within(*v)).collect();
    if decades.len() >= 3 {
        let every = decades.len().div_ceil(8);
        let bold: Vec<f64> = decades.iter().copied().step_by(every).collect();
        let minor = if decades.len() <= 6 { all } else { decades };
        return (bold, minor);
    }
    let one_two_five = multiples(&[1.0, 2.0, 5.0]);
    if one_two_five.len() >= 3 {
        return (one_two_five, all);
    }
    if all.len() >= 3 {
        return (all, Vec::new());
    }
    let (lo, hi) = (10f64.powf(a), 10f64.powf(b));
    let linear: Vec<f64> = RangedCoordf64::from(lo..hi)
        .key_points(6)
        .into_iter()
        .filter(|v| *v > 0.0)
        .map(f64::log10)
        .collect();
    (linear, Vec::new())
}

#[allow(clippy::too_many_arguments)]
pub(super) fn draw_xy<DB>(
    root: &Draw<DB>,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    line: Option<&Line>,
    log_y: bool,
    scatter: bool,
) -> Result<()>
where
    DB: DrawingBackend,
    DB::ErrorType: 'static,
{
    let kind = if scatter { "scatter" } else { "line" };
    ensure!(
        !series.is_empty(),
        "{kind} figure \"{title}\" has no series"
    );
    let usable = |&(x, y): &(f64, f64)| x.is_finite() && y.is_finite() && (!log_y || y > 0.0);
    // On a log axis everything is drawn in log10(y) on a linear axis with hand-picked ticks.
    let ty = |(x, y): (f64, f64)| if log_y { (x, y.log10()) } else { (x, y) };
    let data: Vec<Vec<Option<(f64, f64)>>> = series
        .iter()
        .map(|s| s.points.iter().map(|p| usable(p).then(|| ty(*p))).collect())
        .collect();
    let all = || data.iter().flatten().flatten().copied();
    ensure!(
        all().next().is_some(),
        "{kind} figure \"{title}\" has no {} points to draw",
        if log_y {
            "finite, positive-y"
        } else {
            "finite"
        }
    );
    let xr = finite_range(all().map(|p| p.0)).unwrap_or((0.0, 1.0));
    let yr = finite_range(all().map(|p| p.1)).unwrap_or((0.0, 1.0));
    let (x0, x1) = if scatter {
        padded(xr, 0.05)
    } else {
        padded(xr, 0.0)
    };
    let (y0, y1) = if log_y && yr.1 - yr.0 < 1e-9 {
        (yr.0 - 0.5, yr.1 + 0.5)
    } else {
        padded(yr, 0.06)
    };

    // Points in [0,1]^2 to find an empty corner for the legend.
    let norm = |(x, y): (f64, f64)| ((x - x0) / (x1 - x0), (y - y0) / (y1 - y0));
    let mut occupied: Vec<(f64, f64)> = Vec::new();
    for pts in &data {
        let pts: Vec<(f64, f64)> = pts.iter().flatten().copied().collect();
        occupied.extend(pts.iter().map(|&p| norm(p)));
        if !scatter {
            for w in pts.windows(2) {
                let (a, b) = (norm(w[0]), norm(w[1]));
                for k in 1..8 {
                    let t = f64::from(k) / 8.0;
                    occupied.push((a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t));
                }
            }
        }
    }
    let ends = line.and_then(|l| clip_line(l.slope, l.intercept, (x0, x1), (y0, y1)));
    if let Some([p, q]) = ends {
        for k in 0..=32 {
            let t = f64::from(k) / 32.0;
            occupied.push(norm((p.0 + (q.0 - p.0) * t, p.1 + (q.1 - p.1) * t)));
        }
    }
    let corner = legend_corner(&occupied);

    // Ticks, their labels, and room for them.
    let x_keys = RangedCoordf64::from(x0..x1).key_points(8);
    let x_fmt = linear_tick_format(&x_keys);
    let (y_keys, y_minor) = if log_y {
        log_ticks(y0, y1)
    } else {
        (RangedCoordf64::from(y0..y1).key_points(8), Vec::new())
    };
    let y_fmt: Box<dyn Fn(&f64) -> String> = if log_y {
        Box::new(|v: &f64| fmt_number(10f64.powf(*v)))
    } else {
        Box::new(linear_tick_format(&y_keys))
    };
    let widest_y = y_keys
        .iter()
        .map(|v| text_size(&y_fmt(v), TICK_SIZE))
        .max()
        .unwrap_or(40);
    let y_area = widest_y + AXIS_DESC_SIZE as u32 + 30;
    let x_area = (TICK_SIZE + AXIS_DESC_SIZE) as u32 + 28;
    let widest_x = x_keys
        .iter()
        .map(|v| text_size(&x_fmt(v), TICK_SIZE))
        .max()
        .unwrap_or(40);
    let right_margin = (widest_x / 2 + 12).max(30);
    let title = fit_text(title, TITLE_SIZE, WIDTH - 40);

    let mut chart = ChartBuilder::on(root)
        .caption(&title, style(TITLE_SIZE, TEXT, HPos::Center, VPos::Top))
        .margin(16)
        .margin_top(20)
        .margin_right(right_margin)
        .x_label_area_size(x_area)
        .y_label_area_size(y_area)
        .build_cartesian_2d(
            TickAxis::new(x0, x1, x_keys.clone(), Vec::new()),
            TickAxis::new(y0, y1, y_keys.clone(), y_minor),
        )?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(y_label)
        .axis_desc_style(font(AXIS_DESC_SIZE).color(&TEXT))
        .label_style(font(TICK_SIZE).color(&TEXT))
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .bold_line_style(GRID.stroke_width(1))
        .light_line_style(RGBColor(242, 242, 242).stroke_width(1))
        .axis_style(BLACK.stroke_width(2))
        .set_all_tick_mark_size(6)
        .draw()?;

    let total: usize = data.iter().map(|s| s.iter().flatten().count()).sum();
    for (s, pts) in series.iter().zip(&data) {
        let color = rgb(s.color);
        let legend_line = move |(x, y): (i32, i32)| {
            PathElement::new(vec![(x, y), (x + 28, y)], color.stroke_width(4))
        };
        let legend_dot = move |(x, y): (i32, i32)| Circle::new((x + 14, y), 7, color.filled());
        if scatter {
            let (r, c) = if total > 2000 {
                (3, color.mix(0.6).filled())
            } else {
                (5, color.filled())
            };
            let drawn = chart.draw_series(pts.iter().flatten().map(|&p| Circle::new(p, r, c)))?;
            if !s.name.is_empty() {
                drawn.label(s.name.as_str()).legend(legend_dot);
            }
        } else {
            // Unusable points break the line.
            let runs: Vec<Vec<(f64, f64)>> = pts
                .split(Option::is_none)
                .map(|run| run.iter().flatten().copied().collect::<Vec<_>>())
                .filter(|run| !run.is_empty())
                .collect();
            let mut labelled = s.name.is_empty();
            for run in runs {
                let drawn = chart.draw_series(LineSeries::new(run, color.stroke_width(3)))?;
                if !labelled {
                    drawn.label(s.name.as_str()).legend(legend_line);
                    labelled = true;
                }
            }
            let n = pts.iter().flatten().count();
            if n <= 40 {
                chart.draw_series(
                    pts.iter()
                        .flatten()
                        .map(|&p| Circle::new(p, 5, color.filled())),
                )?;
            }
        }
    }
    if let Some(Line { label, .. }) = line {
        let label = label.as_str();
        let line_style = RGBColor(30, 30, 30).stroke_width(3);
        let legend = move |(x, y): (i32, i32)| {
            EmptyElement::at((x, y))
                + PathElement::new(vec![(0, 0), (11, 0)], line_style)
                + PathElement::new(vec![(17, 0), (28, 0)], line_style)
        };
        match ends {
            Some(line) => {
                chart
                    .draw_series(DashedLineSeries::new(line, 14, 8, line_style))?
                    .label(label)
                    .legend(legend);
            }
            None => {
                // The line misses the plotted range: still name it in the legend.
                chart
                    .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())?
                    .label(label)
                    .legend(legend);
            }
        }
    }
    if series.iter().any(|s| !s.name.is_empty()) || line.is_some() {
        chart
            .configure_series_labels()
            .position(corner)
            .margin(16)
            .legend_area_size(40)
            .label_font(font(LEGEND_SIZE).color(&TEXT))
            .background_style(WHITE.mix(0.9))
            .border_style(RGBColor(150, 150, 150))
            .draw()?;
    }
    Ok(())
}
