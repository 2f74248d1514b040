//! Figures for papers: scatter + fitted line, line plots, image grids, heat maps; PNG or SVG by extension.
//!
//! One exporter shared by every model family. [`save`] picks the format from the output path's
//! extension (`.png` or `.svg`, case-insensitive; anything else is an error naming the path),
//! renders the whole figure in memory first, then writes `<path>.tmp` and renames it over
//! `<path>`, so a failed save never leaves a half-written figure or a stray `.tmp` behind and
//! never touches an existing file when rendering fails.
//!
//! Defaults aim at papers: white background, 1200x800 px for plots and heat maps (the SVG has the
//! same logical size), text large enough to survive being shrunk to a column width, axis labels
//! and a title. Image grids size themselves to their content (see [`figure_size`]).
//!
//! Text is laid out with the Ubuntu-Light face bundled by `epaint_default_fonts`, registered with
//! plotters as `"sans-serif"` on first use; SVG files name the `sans-serif` family, so viewers use
//! their own sans-serif face.

mod grid;
mod heatmap;
mod pair;
mod plot;
mod raster;
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
mod text;

pub use pair::{labels, save_each, side_by_side};

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use plotters::coord::Shift;
use plotters::prelude::*;

use grid::{draw_grid, grid_layout};
use heatmap::draw_heatmap;
use plot::draw_xy;
use raster::{Raster, blit, svg_image};
use text::ensure_font;

/// Size of scatter, line and heat-map figures, in pixels (the SVG's logical size too).
const WIDTH: u32 = 1200;
const HEIGHT: u32 = 800;

/// One named set of points drawn in one colour.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    pub color: (u8, u8, u8),
}

impl Series {
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>, color: (u8, u8, u8)) -> Self {
        Self {
            name: name.into(),
            points,
            color,
        }
    }
}

/// Colour-blind-friendly default colours for series (Okabe-Ito, without yellow and black).
pub const PALETTE: [(u8, u8, u8); 7] = [
    (0, 114, 178),
    (230, 159, 0),
    (0, 158, 115),
    (213, 94, 0),
    (86, 180, 233),
    (204, 121, 167),
    (120, 120, 120),
];

/// The colour of category `i` of `n`: the colour-blind-safe [`PALETTE`] while it lasts, else
/// spread over viridis so no two categories share a colour.
pub fn category_color(i: usize, n: usize) -> (u8, u8, u8) {
    if n <= PALETTE.len() {
        PALETTE[i % PALETTE.len()]
    } else {
        let c = viridis(i as f32 / (n - 1).max(1) as f32);
        (c[0], c[1], c[2])
    }
}

/// A straight line y = slope * x + intercept drawn over a scatter plot, and its legend entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub slope: f64,
    pub intercept: f64,
    pub label: String,
}

impl Line {
    /// A line fitted to the points; the legend gives its equation and R^2.
    pub fn fit(slope: f64, intercept: f64, r2: f64) -> Self {
        let sign = if intercept < 0.0 { "−" } else { "+" };
        let label = format!(
            "fit: y = {}x {sign} {},  R² = {}",
            text::fmt_sig3(slope),
            text::fmt_sig3(intercept.abs()),
            text::fmt_r2(r2)
        );
        Self {
            slope,
            intercept,
            label,
        }
    }

    /// A line to read the points against that was not fitted to them, such as y = x for a
    /// perfect reading.
    pub fn reference(slope: f64, intercept: f64, label: impl Into<String>) -> Self {
        Self {
            slope,
            intercept,
            label: label.into(),
        }
    }
}

/// A figure to export with [`save`].
#[derive(Debug, Clone, PartialEq)]
pub enum Figure {
    /// points plus an optional straight line over the x range, named in the legend
    Scatter {
        title: String,
        x_label: String,
        y_label: String,
        series: Vec<Series>,
        line: Option<Line>,
    },
    /// Line plot; non-finite points (and non-positive y when `log_y`) break the line.
    Lines {
        title: String,
        x_label: String,
        y_label: String,
        series: Vec<Series>,
        log_y: bool,
    },
    /// grid of RGB tiles (each tile w*h*3 u8, row-major), `cols` per row, optional caption per tile and per row/column header
    ///
    /// Every tile is drawn in the same fixed cell, upscaled by a whole factor with nearest
    /// neighbour (a 32x32 tile in a 10x10 grid becomes 96x96 px; fewer tiles are drawn larger, up
    /// to about 800x700 px of tiles in all). Tiles of a very uneven shape (a 5x513 spectrogram,
    /// say) are stretched along their short side to at most 2:1, and tiles too large for the
    /// 1600x1200 px budget (but at least 256 px per cell) are box-filtered down.
    ///
    /// `captions` may hold, with `n` tiles in `r` rows of `cols`:
    /// * nothing: no captions;
    /// * `n` strings: one caption under each tile (empty strings draw nothing);
    /// * `cols` strings: column headers above the grid;
    /// * `cols + r` strings: the column headers, then one header left of each row.
    ///
    /// When two of those counts coincide, the earlier reading wins.
    ImageGrid {
        title: String,
        tile_w: usize,
        tile_h: usize,
        cols: usize,
        tiles: Vec<Vec<u8>>,
        captions: Vec<String>,
    },
    /// matrix as a heat map with a viridis-like colormap, row/col labels, value printed in each cell when the matrix is small (<= 20x20)
    ///
    /// `rows` / `cols` may be empty, in which case indices are shown. Non-finite values are drawn
    /// grey and left out of the colour scale.
    Heatmap {
        title: String,
        rows: Vec<String>,
        cols: Vec<String>,
        values: Vec<Vec<f64>>,
    },
}

impl Figure {
    /// One `w`x`h` RGB image under a title: an image grid of a single tile, no captions.
    pub fn image(title: impl Into<String>, w: usize, h: usize, rgb: Vec<u8>) -> Self {
        Self::ImageGrid {
            title: title.into(),
            tile_w: w,
            tile_h: h,
            cols: 1,
            tiles: vec![rgb],
            captions: Vec::new(),
        }
    }
}

/// Width and height in pixels of the image [`save`] writes (the SVG's logical size too).
///
/// 1200x800 for scatter, line and heat-map figures; image grids are sized to fit their tiles.
pub fn figure_size(figure: &Figure) -> Result<(u32, u32)> {
    ensure_font()?;
    match figure {
        Figure::ImageGrid { .. } => Ok(grid_layout(figure)?.size),
        _ => Ok((WIDTH, HEIGHT)),
    }
}

/// Render `figure` and write it to `path`, as PNG or SVG according to the extension.
///
/// The figure is rendered completely in memory, written to `<path>.tmp` and renamed onto
/// `<path>`; on any error the `.tmp` file is removed and an existing `<path>` is left as it was.
pub fn save(figure: &Figure, path: &Path) -> Result<()> {
    let format = Format::from_path(path)?;
    ensure_font()?;
    let what = figure_kind(figure);
    let rendered = render(figure, format)
        .with_context(|| format!("rendering {what} figure for {}", path.display()))?;
    let tmp = tmp_path(path);
    let written = match rendered {
        Rendered::Png { width, height, rgb } => image::RgbImage::from_raw(width, height, rgb)
            .ok_or_else(|| anyhow!("internal error: pixel buffer does not match {width}x{height}"))
            .and_then(|img| {
                img.save_with_format(&tmp, image::ImageFormat::Png)
                    .with_context(|| format!("writing {}", tmp.display()))
            }),
        Rendered::Svg(text) => {
            fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))
        }
    };
    let result = written.and_then(|()| {
        fs::rename(&tmp, path)
            .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
    });
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.with_context(|| format!("saving {what} figure to {}", path.display()))
}

/// viridis colormap for t in [0,1] -> RGB; also used by the GUI for spectrograms
///
/// Linear interpolation between matplotlib's viridis sampled at t = 0, 0.1, ..., 1.
/// `t` is clamped to [0, 1]; NaN maps to the low end.
pub fn viridis(t: f32) -> [u8; 3] {
    const STOPS: [[f32; 3]; 11] = [
        [68.0, 1.0, 84.0],
        [72.0, 36.0, 117.0],
        [65.0, 68.0, 135.0],
        [53.0, 95.0, 141.0],
        [42.0, 120.0, 142.0],
        [33.0, 145.0, 140.0],
        [34.0, 168.0, 132.0],
        [68.0, 191.0, 112.0],
        [122.0, 209.0, 81.0],
        [189.0, 223.0, 38.0],
        [253.0, 231.0, 37.0],
    ];
    let t = if t.is_nan() { 0.0 } else { t.clamp(0.0, 1.0) };
    let x = t * 10.0;
    let i = (x.floor() as usize).min(9);
    let f = x - i as f32;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    let mix = |k: usize| (a[k] + (b[k] - a[k]) * f).round().clamp(0.0, 255.0) as u8;
    [mix(0), mix(1), mix(2)]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Png,
    Svg,
}

impl Format {
    fn from_path(path: &Path) -> Result<Self> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("png") => Ok(Self::Png),
            Some("svg") => Ok(Self::Svg),
            _ => bail!(
                "cannot save a figure to {}: the extension must be .png or .svg",
                path.display()
            ),
        }
    }
}

enum Rendered {
    Png {
        width: u32,
        height: u32,
        rgb: Vec<u8>,
    },
    Svg(String),
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".tmp");
    path.with_file_name(name)
}

fn figure_kind(figure: &Figure) -> &'static str {
    match figure {
        Figure::Scatter { .. } => "scatter",
        Figure::Lines { .. } => "line",
        Figure::ImageGrid { .. } => "image-grid",
        Figure::Heatmap { .. } => "heat-map",
    }
}

pub(super) type Draw<DB> = DrawingArea<DB, Shift>;

fn render(figure: &Figure, format: Format) -> Result<Rendered> {
    let (width, height) = figure_size(figure)?;
    match format {
        Format::Png => {
            let mut buf = vec![255u8; width as usize * height as usize * 3];
            let rasters = {
                let root =
                    BitMapBackend::with_buffer(&mut buf, (width, height)).into_drawing_area();
                let rasters = draw_figure(&root, figure)?;
                root.present().map_err(|e| anyhow!("drawing failed: {e}"))?;
                rasters
            };
            for r in &rasters {
                blit(&mut buf, width, height, r);
            }
            Ok(Rendered::Png {
                width,
                height,
                rgb: buf,
            })
        }
        Format::Svg => {
            let mut svg = String::new();
            let rasters = {
                let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
                let rasters = draw_figure(&root, figure)?;
                root.present().map_err(|e| anyhow!("drawing failed: {e}"))?;
                rasters
            };
            if !rasters.is_empty() {
                let mut group = String::from("<g xmlns:xlink=\"http://www.w3.org/1999/xlink\">\n");
                for r in &rasters {
                    group.push_str(&svg_image(r)?);
                }
                group.push_str("</g>\n");
                let at = svg
                    .rfind("</svg>")
                    .ok_or_else(|| anyhow!("internal error: SVG has no closing tag"))?;
                svg.insert_str(at, &group);
            }
            Ok(Rendered::Svg(svg))
        }
    }
}

fn draw_figure<DB>(root: &Draw<DB>, figure: &Figure) -> Result<Vec<Raster>>
where
    DB: DrawingBackend,
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    match figure {
        Figure::Scatter {
            title,
            x_label,
            y_label,
            series,
            line,
        } => {
            draw_xy(
                root,
                title,
                x_label,
                y_label,
                series,
                line.as_ref(),
                false,
                true,
            )?;
            Ok(Vec::new())
        }
        Figure::Lines {
            title,
            x_label,
            y_label,
            series,
            log_y,
        } => {
            draw_xy(root, title, x_label, y_label, series, None, *log_y, false)?;
            Ok(Vec::new())
        }
        Figure::ImageGrid { .. } => draw_grid(root, figure),
        Figure::Heatmap {
            title,
            rows,
            cols,
            values,
        } => draw_heatmap(root, title, rows, cols, values),
    }
}
