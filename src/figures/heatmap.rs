//! Heat maps: a matrix in viridis, with row and column labels, a colour bar and values in small cells.

use anyhow::{Result, bail, ensure};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::plot::finite_range;
use super::raster::{Raster, resample};
use super::text::{TEXT, TITLE_SIZE, fit_text, font, linear_tick_format, style, text_size};
use super::{Draw, HEIGHT, WIDTH, viridis};

pub(super) const HM_MARGIN: i32 = 24;
pub(super) const HM_LABEL_MAX_W: u32 = 260;
pub(super) const HM_NAN: RGBColor = RGBColor(205, 205, 205);

pub(super) fn heat_color(v: f64, lo: f64, hi: f64) -> RGBColor {
    if !v.is_finite() {
        return HM_NAN;
    }
    let t = if hi > lo { (v - lo) / (hi - lo) } else { 0.5 };
    let [r, g, b] = viridis(t as f32);
    RGBColor(r, g, b)
}

/// Formatter for the numbers printed in heat-map cells, shared by the whole matrix.
pub(super) fn cell_format(values: &[Vec<f64>]) -> impl Fn(f64) -> String + use<> {
    let finite: Vec<f64> = values
        .iter()
        .flatten()
        .copied()
        .filter(|v| v.is_finite())
        .collect();
    let max_abs = finite.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let integers = finite.iter().all(|v| v.fract() == 0.0) && max_abs < 1e6;
    move |v: f64| {
        if !v.is_finite() {
            String::new()
        } else if integers {
            format!("{v:.0}")
        } else if !(1e-2..1e4).contains(&max_abs) {
            if v == 0.0 {
                "0".to_string()
            } else {
                format!("{v:.1e}")
            }
        } else if max_abs < 10.0 {
            format!("{v:.2}")
        } else if max_abs < 100.0 {
            format!("{v:.1}")
        } else {
            format!("{v:.0}")
        }
    }
}

pub(super) fn draw_heatmap<DB>(
    root: &Draw<DB>,
    title: &str,
    row_labels: &[String],
    col_labels: &[String],
    values: &[Vec<f64>],
) -> Result<Vec<Raster>>
where
    DB: DrawingBackend,
    DB::ErrorType: 'static,
{
    let nr = values.len();
    ensure!(nr > 0, "heat map \"{title}\" has no rows");
    let nc = values[0].len();
    ensure!(nc > 0, "heat map \"{title}\" has no columns");
    if let Some((i, r)) = values.iter().enumerate().find(|(_, r)| r.len() != nc) {
        bail!(
            "heat map \"{title}\": row {i} has {} values, row 0 has {nc}",
            r.len()
        );
    }
    ensure!(
        row_labels.is_empty() || row_labels.len() == nr,
        "heat map \"{title}\": {} row labels for {nr} rows",
        row_labels.len()
    );
    ensure!(
        col_labels.is_empty() || col_labels.len() == nc,
        "heat map \"{title}\": {} column labels for {nc} columns",
        col_labels.len()
    );
    let rows: Vec<String> = if row_labels.is_empty() {
        (0..nr).map(|i| i.to_string()).collect()
    } else {
        row_labels.to_vec()
    };
    let cols: Vec<String> = if col_labels.is_empty() {
        (0..nc).map(|i| i.to_string()).collect()
    } else {
        col_labels.to_vec()
    };
    let (lo, hi) = finite_range(values.iter().flatten().copied()).unwrap_or((0.0, 1.0));

    let (w, h) = (WIDTH as i32, HEIGHT as i32);
    let label_size = |n: usize| if n <= 20 { 24.0 } else { 18.0 };
    let (row_size, col_size) = (label_size(nr), label_size(nc));

    // Title.
    let mut top = HM_MARGIN;
    if !title.is_empty() {
        let t = fit_text(title, TITLE_SIZE, WIDTH - 2 * HM_MARGIN as u32);
        root.draw(&Text::new(
            t,
            (w / 2, top),
            style(TITLE_SIZE, TEXT, HPos::Center, VPos::Top),
        ))?;
        top += TITLE_SIZE as i32 + 24;
    }

    // Colour bar: ticks at nice values within the range.
    let ticks: Vec<f64> = if hi > lo {
        let mut k = RangedCoordf64::from(lo..hi).key_points(10);
        k.retain(|v| *v >= lo && *v <= hi);
        k
    } else {
        vec![lo]
    };
    let tick_fmt = linear_tick_format(&ticks);
    let tick_labels: Vec<String> = ticks.iter().map(&tick_fmt).collect();
    let bar_w = 28;
    let bar_label_w = tick_labels
        .iter()
        .map(|s| text_size(s, 22.0))
        .max()
        .unwrap_or(30) as i32;
    let bar_block = 30 + bar_w + 10 + bar_label_w;

    // Label areas.
    let row_w = rows
        .iter()
        .map(|s| text_size(s, row_size))
        .max()
        .unwrap_or(0)
        .min(HM_LABEL_MAX_W) as i32
        + 14;
    let avail_w = w - 2 * HM_MARGIN - row_w - bar_block;
    let col_text_w = cols
        .iter()
        .map(|s| text_size(s, col_size))
        .max()
        .unwrap_or(0)
        .min(HM_LABEL_MAX_W) as i32;
    let est_cell_w = avail_w as f64 / nc as f64;
    let vertical_cols = f64::from(col_text_w) > est_cell_w * 0.92;
    let col_h = if vertical_cols {
        col_text_w + 16
    } else {
        col_size as i32 + 18
    };
    let avail_h = h - top - HM_MARGIN - col_h;
    ensure!(
        avail_w > 20 && avail_h > 20,
        "heat map \"{title}\": labels leave no room for the cells"
    );

    let mut cell_w = avail_w as f64 / nc as f64;
    let mut cell_h = avail_h as f64 / nr as f64;
    cell_w = cell_w.min(cell_h * 1.5);
    cell_h = cell_h.min(cell_w * 1.5);
    let grid_w = cell_w * nc as f64;
    let grid_h = cell_h * nr as f64;
    let gx = HM_MARGIN + row_w + ((f64::from(avail_w) - grid_w) / 2.0) as i32;
    let gy = top + ((f64::from(avail_h) - grid_h) / 2.0) as i32;
    let xe = |c: usize| gx + (c as f64 * cell_w).round() as i32;
    let ye = |r: usize| gy + (r as f64 * cell_h).round() as i32;
    let (gw, gh) = (xe(nc) - gx, ye(nr) - gy);

    // Cells: rectangles when few, one raster when many (keeps the SVG small).
    let mut rasters = Vec::new();
    if nr * nc <= 4096 {
        for (r, row) in values.iter().enumerate() {
            for (c, &v) in row.iter().enumerate() {
                root.draw(&Rectangle::new(
                    [(xe(c), ye(r)), (xe(c + 1), ye(r + 1))],
                    heat_color(v, lo, hi).filled(),
                ))?;
            }
        }
    } else {
        let src: Vec<u8> = values
            .iter()
            .flatten()
            .flat_map(|&v| {
                let c = heat_color(v, lo, hi);
                [c.0, c.1, c.2]
            })
            .collect();
        rasters.push(Raster {
            x: gx,
            y: gy,
            w: gw as u32,
            h: gh as u32,
            rgb: resample(&src, nc, nr, gw as usize, gh as usize),
        });
    }
    root.draw(&Rectangle::new(
        [(gx - 1, gy - 1), (gx + gw, gy + gh)],
        RGBColor(60, 60, 60).stroke_width(1),
    ))?;

    // Values in the cells.
    if nr <= 20 && nc <= 20 {
        let fmt = cell_format(values);
        let texts: Vec<Vec<String>> = values
            .iter()
            .map(|r| r.iter().map(|&v| fmt(v)).collect())
            .collect();
        let widest = texts
            .iter()
            .flatten()
            .max_by_key(|s| s.chars().count())
            .cloned()
            .unwrap_or_default();
        let mut size = (cell_h * 0.42).min(24.0);
        while size >= 10.0 && f64::from(text_size(&widest, size)) > cell_w * 0.88 {
            size -= 1.0;
        }
        if size >= 10.0 {
            for (r, row) in values.iter().enumerate() {
                for (c, &v) in row.iter().enumerate() {
                    let cell = heat_color(v, lo, hi);
                    let lum = 0.299 * f64::from(cell.0)
                        + 0.587 * f64::from(cell.1)
                        + 0.114 * f64::from(cell.2);
                    let color = if lum > 140.0 {
                        RGBColor(0, 0, 0)
                    } else {
                        WHITE
                    };
                    let pos = ((xe(c) + xe(c + 1)) / 2, (ye(r) + ye(r + 1)) / 2);
                    root.draw(&Text::new(
                        texts[r][c].as_str(),
                        pos,
                        style(size, color, HPos::Center, VPos::Center),
                    ))?;
                }
            }
        }
    }

    // Row labels, thinned out so they never overlap.
    let step = |cell: f64, size: f64| {
        let need = ((size * 1.6) / cell).ceil().max(1.0) as usize;
        if need <= 1 {
            return 1;
        }
        let mut unit = 1;
        loop {
            for m in [1, 2, 5] {
                if m * unit >= need {
                    return m * unit;
                }
            }
            unit *= 10;
        }
    };
    let row_step = step(cell_h, row_size);
    for (r, s) in rows.iter().enumerate().filter(|(i, _)| i % row_step == 0) {
        let s = fit_text(s, row_size, HM_LABEL_MAX_W);
        let y = (ye(r) + ye(r + 1)) / 2;
        root.draw(&Text::new(
            s,
            (gx - 8, y),
            style(row_size, TEXT, HPos::Right, VPos::Center),
        ))?;
    }
    // Column labels: horizontal when they fit, else vertical (reading upwards).
    let col_step = if vertical_cols {
        step(cell_w, col_size)
    } else {
        1
    };
    for (c, s) in cols.iter().enumerate().filter(|(i, _)| i % col_step == 0) {
        let s = fit_text(s, col_size, HM_LABEL_MAX_W);
        let x = (xe(c) + xe(c + 1)) / 2;
        if vertical_cols {
            let f = font(col_size).transform(FontTransform::Rotate270);
            let st = TextStyle::from(f)
                .color(&TEXT)
                .pos(Pos::new(HPos::Right, VPos::Center));
            root.draw(&Text::new(s, (x, gy + gh + 8), st))?;
        } else {
            root.draw(&Text::new(
                s,
                (x, gy + gh + 8),
                style(col_size, TEXT, HPos::Center, VPos::Top),
            ))?;
        }
    }

    // Colour bar.
    let bx = gx + gw + 30;
    let bar_h = gh.max(1);
    let mut bar = Vec::with_capacity((bar_w * bar_h * 3) as usize);
    for i in 0..bar_h {
        let t = 1.0 - f64::from(i) / f64::from((bar_h - 1).max(1));
        let px = viridis(t as f32);
        for _ in 0..bar_w {
            bar.extend_from_slice(&px);
        }
    }
    rasters.push(Raster {
        x: bx,
        y: gy,
        w: bar_w as u32,
        h: bar_h as u32,
        rgb: bar,
    });
    root.draw(&Rectangle::new(
        [(bx - 1, gy - 1), (bx + bar_w, gy + bar_h)],
        RGBColor(60, 60, 60).stroke_width(1),
    ))?;
    for (v, label) in ticks.iter().zip(&tick_labels) {
        let t = if hi > lo { (v - lo) / (hi - lo) } else { 0.5 };
        let y = gy + ((1.0 - t) * f64::from(bar_h - 1)).round() as i32;
        root.draw(&PathElement::new(
            vec![(bx + bar_w, y), (bx + bar_w + 6, y)],
            BLACK.stroke_width(1),
        ))?;
        root.draw(&Text::new(
            label.as_str(),
            (bx + bar_w + 10, y),
            style(22.0, TEXT, HPos::Left, VPos::Center),
        ))?;
    }
    Ok(rasters)
}
