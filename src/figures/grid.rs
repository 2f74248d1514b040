//! Image grids: tiles scaled to a common cell, with captions and row and column headers.

use anyhow::{Result, bail, ensure};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::raster::{Raster, resample};
use super::text::{TEXT, fit_text, style, text_size};
use super::{Draw, Figure};

pub(super) const GRID_MARGIN: u32 = 24;
pub(super) const GRID_GAP: u32 = 10;
pub(super) const GRID_TITLE_SIZE: f64 = 36.0;
pub(super) const GRID_CAPTION_SIZE: f64 = 20.0;
pub(super) const GRID_HEADER_SIZE: f64 = 22.0;

/// Display size of one tile in a grid of `cols` x `rows` cells.
///
/// The grid aims at about 800x700 px of tiles (never less than 96 px on a tile's long side) and
/// at most 1600x1200 px (never less than 256 px per cell): tiles are upscaled by the largest
/// whole factor that reaches the aim within the limit, or shrunk to the limit. Then the short
/// side is stretched to at least half the long side, to a whole multiple of its source pixels
/// when that side is upscaled, so a 5x513 spectrogram gets a readable width.
pub(super) fn tile_cell(w: usize, h: usize, cols: usize, rows: usize) -> (u32, u32) {
    let (wf, hf) = (w as f64, h as f64);
    let (cols, rows) = (cols.max(1) as f64, rows.max(1) as f64);
    let max_w = (1600.0 / cols).floor().max(256.0);
    let max_h = (1200.0 / rows).floor().max(256.0);
    let aim_long = (800.0 / cols).min(700.0 / rows).max(96.0);
    let fits = |s: f64| wf * s <= max_w && hf * s <= max_h;
    let mut s = (aim_long / wf.max(hf)).ceil().max(1.0);
    while s > 1.0 && !fits(s) {
        s -= 1.0;
    }
    if !fits(s) {
        s = (max_w / wf).min(max_h / hf);
    }
    let (mut dw, mut dh) = ((wf * s).round().max(1.0), (hf * s).round().max(1.0));
    let stretch = |short: f64, long: f64, src: f64, cap: f64| {
        let target = (long / 2.0).ceil().min(cap);
        if short >= target {
            short
        } else if target >= src && (target / src).ceil() * src <= cap {
            (target / src).ceil() * src
        } else {
            target
        }
    };
    if dw < dh / 2.0 {
        dw = stretch(dw, dh, wf, max_w);
    } else if dh < dw / 2.0 {
        dh = stretch(dh, dw, hf, max_h);
    }
    (dw as u32, dh as u32)
}

pub(super) struct GridLayout {
    pub(super) size: (u32, u32),
    pub(super) title: Option<(String, i32)>,
    pub(super) cell: (u32, u32),
    /// top-left corner of every tile
    pub(super) origins: Vec<(i32, i32)>,
    pub(super) tile_captions: Vec<String>,
    pub(super) caption_h: u32,
    pub(super) col_headers: Vec<(String, i32, i32)>,
    pub(super) row_headers: Vec<(String, i32, i32)>,
}

pub(super) fn grid_layout(figure: &Figure) -> Result<GridLayout> {
    let Figure::ImageGrid {
        title,
        tile_w,
        tile_h,
        cols,
        tiles,
        captions,
    } = figure
    else {
        bail!("internal error: not an image grid");
    };
    let (tw, th, cols) = (*tile_w, *tile_h, *cols);
    ensure!(
        tw > 0 && th > 0,
        "image grid \"{title}\": tile size {tw}x{th} is empty"
    );
    ensure!(cols > 0, "image grid \"{title}\": cols must be at least 1");
    ensure!(!tiles.is_empty(), "image grid \"{title}\" has no tiles");
    let expected = tw * th * 3;
    if let Some((i, t)) = tiles.iter().enumerate().find(|(_, t)| t.len() != expected) {
        bail!(
            "image grid \"{title}\": tile {i} has {} bytes, expected {tw}x{th}x3 = {expected}",
            t.len()
        );
    }
    let n = tiles.len();
    let rows = n.div_ceil(cols);
    let shown_cols = cols.min(n);
    let (tile_caps, col_caps, row_caps): (Vec<String>, Vec<String>, Vec<String>) = match captions
        .len()
    {
        0 => (Vec::new(), Vec::new(), Vec::new()),
        l if l == n => (captions.clone(), Vec::new(), Vec::new()),
        l if l == cols => (Vec::new(), captions.clone(), Vec::new()),
        l if l == cols + rows => (
            Vec::new(),
            captions[..cols].to_vec(),
            captions[cols..].to_vec(),
        ),
        l => bail!(
            "image grid \"{title}\": {l} captions; expected 0, {n} (one per tile), {cols} (column headers) \
             or {} (column headers then row headers)",
            cols + rows
        ),
    };
    let (cw, ch) = tile_cell(tw, th, shown_cols, rows);
    let caption_h = if tile_caps.iter().any(|c| !c.is_empty()) {
        GRID_CAPTION_SIZE as u32 + 10
    } else {
        0
    };
    let header_h = if col_caps.iter().any(|c| !c.is_empty()) {
        GRID_HEADER_SIZE as u32 + 14
    } else {
        0
    };
    let row_header_w = row_caps
        .iter()
        .map(|c| text_size(c, GRID_HEADER_SIZE))
        .max()
        .map_or(0, |w| w.min(260) + 14);
    let title_h = if title.is_empty() {
        0
    } else {
        GRID_TITLE_SIZE as u32 + 20
    };

    let content_w = row_header_w + shown_cols as u32 * cw + (shown_cols as u32 - 1) * GRID_GAP;
    let title_w = if title.is_empty() {
        0
    } else {
        text_size(title, GRID_TITLE_SIZE)
    };
    let width = (content_w + 2 * GRID_MARGIN)
        .max(title_w.min(1600) + 2 * GRID_MARGIN)
        .max(320);
    let row_pitch = ch + caption_h + GRID_GAP;
    let height =
        GRID_MARGIN + title_h + header_h + rows as u32 * row_pitch - GRID_GAP + GRID_MARGIN;

    let left = ((width - content_w) / 2 + row_header_w) as i32;
    let top = (GRID_MARGIN + title_h + header_h) as i32;
    let pitch_x = (cw + GRID_GAP) as i32;
    let origins: Vec<(i32, i32)> = (0..n)
        .map(|i| {
            (
                left + (i % cols) as i32 * pitch_x,
                top + (i / cols) as i32 * row_pitch as i32,
            )
        })
        .collect();
    let title = (!title.is_empty()).then(|| {
        (
            fit_text(title, GRID_TITLE_SIZE, width - 2 * GRID_MARGIN),
            GRID_MARGIN as i32,
        )
    });
    let tile_captions = tile_caps
        .iter()
        .map(|c| fit_text(c, GRID_CAPTION_SIZE, cw + GRID_GAP - 2))
        .collect();
    let col_headers = col_caps
        .iter()
        .take(shown_cols)
        .enumerate()
        .map(|(c, s)| {
            let x = left + c as i32 * pitch_x + cw as i32 / 2;
            (
                fit_text(s, GRID_HEADER_SIZE, cw + GRID_GAP - 2),
                x,
                top - header_h as i32 / 2,
            )
        })
        .collect();
    let row_headers = row_caps
        .iter()
        .enumerate()
        .map(|(r, s)| {
            let y = top + r as i32 * row_pitch as i32 + ch as i32 / 2;
            (fit_text(s, GRID_HEADER_SIZE, 260), left - 12, y)
        })
        .collect();
    Ok(GridLayout {
        size: (width, height),
        title,
        cell: (cw, ch),
        origins,
        tile_captions,
        caption_h,
        col_headers,
        row_headers,
    })
}

pub(super) fn draw_grid<DB>(root: &Draw<DB>, figure: &Figure) -> Result<Vec<Raster>>
where
    DB: DrawingBackend,
    DB::ErrorType: 'static,
{
    let Figure::ImageGrid {
        tile_w,
        tile_h,
        tiles,
        ..
    } = figure
    else {
        bail!("internal error: not an image grid");
    };
    let layout = grid_layout(figure)?;
    let (width, _) = layout.size;
    let (cw, ch) = layout.cell;
    if let Some((t, y)) = &layout.title {
        root.draw(&Text::new(
            t.as_str(),
            (width as i32 / 2, *y),
            style(GRID_TITLE_SIZE, TEXT, HPos::Center, VPos::Top),
        ))?;
    }
    // Column headers centre over their tiles; row headers end where the row begins.
    let headers = [
        (&layout.col_headers, HPos::Center),
        (&layout.row_headers, HPos::Right),
    ];
    for (labels, h) in headers {
        for (s, x, y) in labels {
            root.draw(&Text::new(
                s.as_str(),
                (*x, *y),
                style(GRID_HEADER_SIZE, TEXT, h, VPos::Center),
            ))?;
        }
    }
    let frame = RGBColor(190, 190, 190);
    let mut rasters = Vec::with_capacity(tiles.len());
    for (i, (tile, &(x, y))) in tiles.iter().zip(&layout.origins).enumerate() {
        root.draw(&Rectangle::new(
            [(x - 1, y - 1), (x + cw as i32, y + ch as i32)],
            frame.stroke_width(1),
        ))?;
        if let Some(c) = layout.tile_captions.get(i).filter(|c| !c.is_empty()) {
            let pos = (
                x + cw as i32 / 2,
                y + ch as i32 + layout.caption_h as i32 / 2 + 2,
            );
            root.draw(&Text::new(
                c.as_str(),
                pos,
                style(GRID_CAPTION_SIZE, TEXT, HPos::Center, VPos::Center),
            ))?;
        }
        rasters.push(Raster {
            x,
            y,
            w: cw,
            h: ch,
            rgb: resample(tile, *tile_w, *tile_h, cw as usize, ch as usize),
        });
    }
    Ok(rasters)
}
