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

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result, anyhow, bail, ensure};
use plotters::coord::Shift;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

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

/// A figure to export with [`save`].
#[derive(Debug, Clone, PartialEq)]
pub enum Figure {
    /// points plus an optional fitted line y = a*x + b over the x range, with the R^2 written in the legend/caption
    Scatter {
        title: String,
        x_label: String,
        y_label: String,
        series: Vec<Series>,
        /// slope, intercept, r2
        fit: Option<(f64, f64, f64)>,
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

// ---------------------------------------------------------------------------------------------
// Formats, fonts, atomic writing

const WIDTH: u32 = 1200;
const HEIGHT: u32 = 800;
const FONT: &str = "sans-serif";
const TITLE_SIZE: f64 = 40.0;
const AXIS_DESC_SIZE: f64 = 32.0;
const TICK_SIZE: f64 = 26.0;
const LEGEND_SIZE: f64 = 26.0;
const TEXT: RGBColor = RGBColor(20, 20, 20);
const GRID: RGBColor = RGBColor(225, 225, 225);

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

static FONT_ONCE: Once = Once::new();
static FONT_OK: AtomicBool = AtomicBool::new(false);

fn ensure_font() -> Result<()> {
    FONT_ONCE.call_once(|| {
        let ok = plotters::style::register_font(
            FONT,
            FontStyle::Normal,
            epaint_default_fonts::UBUNTU_LIGHT,
        )
        .is_ok();
        FONT_OK.store(ok, Ordering::SeqCst);
    });
    ensure!(
        FONT_OK.load(Ordering::SeqCst),
        "could not load the bundled Ubuntu-Light font"
    );
    Ok(())
}

fn font(size: f64) -> FontDesc<'static> {
    (FONT, size).into_font()
}

/// Width and height plotters will give `text` at `size`.
fn text_size(text: &str, size: f64) -> u32 {
    font(size)
        .box_size(text)
        .map(|(w, _)| w)
        .unwrap_or((text.chars().count() as f64 * size * 0.55) as u32)
}

/// `text`, shortened with an ellipsis until it is at most `max_w` px wide at `size`.
fn fit_text(text: &str, size: f64, max_w: u32) -> String {
    if text_size(text, size) <= max_w {
        return text.to_string();
    }
    let mut chars: Vec<char> = text.chars().collect();
    while !chars.is_empty() {
        chars.pop();
        let s: String = chars.iter().collect::<String>().trim_end().to_string() + "…";
        if text_size(&s, size) <= max_w {
            return s;
        }
    }
    String::new()
}

fn style(size: f64, color: RGBColor, h: HPos, v: VPos) -> TextStyle<'static> {
    TextStyle {
        font: font(size),
        color: color.to_backend_color(),
        pos: Pos::new(h, v),
    }
}

fn rgb(c: (u8, u8, u8)) -> RGBColor {
    RGBColor(c.0, c.1, c.2)
}

/// A block of pixels placed on the canvas after plotters has drawn everything else: copied into
/// the bitmap for PNG, embedded as a PNG data URI for SVG. `rgb` is already at display size.
struct Raster {
    x: i32,
    y: i32,
    w: u32,
    h: u32,
    rgb: Vec<u8>,
}

type Draw<DB> = DrawingArea<DB, Shift>;

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
            fit,
        } => {
            draw_xy(root, title, x_label, y_label, series, *fit, false, true)?;
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

fn blit(buf: &mut [u8], width: u32, height: u32, r: &Raster) {
    for yy in 0..r.h as i32 {
        let y = r.y + yy;
        if y < 0 || y >= height as i32 {
            continue;
        }
        for xx in 0..r.w as i32 {
            let x = r.x + xx;
            if x < 0 || x >= width as i32 {
                continue;
            }
            let s = (yy as usize * r.w as usize + xx as usize) * 3;
            let d = (y as usize * width as usize + x as usize) * 3;
            buf[d..d + 3].copy_from_slice(&r.rgb[s..s + 3]);
        }
    }
}

fn svg_image(r: &Raster) -> Result<String> {
    use image::ImageEncoder as _;
    use image::codecs::png::{CompressionType, FilterType, PngEncoder};
    let mut png = Vec::new();
    PngEncoder::new_with_quality(&mut png, CompressionType::Best, FilterType::Adaptive)
        .write_image(&r.rgb, r.w, r.h, image::ExtendedColorType::Rgb8)
        .context("encoding an embedded image")?;
    Ok(format!(
        "<image x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" image-rendering=\"optimizeSpeed\" \
         style=\"image-rendering:pixelated\" preserveAspectRatio=\"none\" \
         xlink:href=\"data:image/png;base64,{}\"/>\n",
        r.x,
        r.y,
        r.w,
        r.h,
        base64(&png)
    ))
}

fn base64(data: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Resample an RGB image to `dw`x`dh`: nearest neighbour along an axis that grows (crisp
/// pixels), box average along an axis that shrinks (no dropped rows).
fn resample(src: &[u8], sw: usize, sh: usize, dw: usize, dh: usize) -> Vec<u8> {
    fn spans(s: usize, d: usize) -> Vec<(usize, usize)> {
        (0..d)
            .map(|o| {
                if d >= s {
                    let i = (((o as f64 + 0.5) * s as f64 / d as f64) as usize).min(s - 1);
                    (i, i + 1)
                } else {
                    let a = (o * s) / d;
                    let b = ((o + 1) * s).div_ceil(d).clamp(a + 1, s);
                    (a, b)
                }
            })
            .collect()
    }
    let xs = spans(sw, dw);
    let ys = spans(sh, dh);
    let mut out = Vec::with_capacity(dw * dh * 3);
    for &(y0, y1) in &ys {
        for &(x0, x1) in &xs {
            let mut acc = [0u32; 3];
            for y in y0..y1 {
                for x in x0..x1 {
                    let p = (y * sw + x) * 3;
                    for k in 0..3 {
                        acc[k] += u32::from(src[p + k]);
                    }
                }
            }
            let n = ((y1 - y0) * (x1 - x0)) as u32;
            for a in acc {
                out.push(((a + n / 2) / n) as u8);
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Number formatting

/// Labels for the ticks of a linear axis: the fewest decimals that tell the ticks apart exactly.
fn linear_tick_format(keys: &[f64]) -> impl Fn(&f64) -> String + use<> {
    let mut sorted: Vec<f64> = keys.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    let max_abs = sorted.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let step = sorted
        .windows(2)
        .map(|w| w[1] - w[0])
        .filter(|d| *d > 0.0)
        .fold(f64::INFINITY, f64::min);
    let step = if step.is_finite() {
        step
    } else {
        max_abs.max(1.0)
    };
    let scientific = max_abs >= 1e5 || (max_abs > 0.0 && max_abs < 1e-3);
    let fmt = move |v: f64, d: usize| {
        if scientific {
            format!("{v:.d$e}")
        } else {
            format!("{v:.d$}")
        }
    };
    let decimals = (0..=10)
        .find(|&d| {
            sorted.iter().all(|&v| {
                fmt(v, d)
                    .parse::<f64>()
                    .map(|p| (p - v).abs() <= step * 1e-3)
                    .unwrap_or(false)
            })
        })
        .unwrap_or(10);
    move |v: &f64| {
        if v.abs() < step * 1e-6 {
            if scientific {
                "0".to_string()
            } else {
                fmt(0.0, decimals)
            }
        } else {
            fmt(*v, decimals)
        }
    }
}

/// A value on its own (log-axis ticks, colour-bar ends): up to 4 significant digits, no noise.
fn fmt_number(v: f64) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    if v == 0.0 {
        return "0".into();
    }
    let a = v.abs();
    let close = |s: &str| {
        s.parse::<f64>()
            .map(|p| ((p - v) / v).abs() < 5e-4)
            .unwrap_or(false)
    };
    if (1e-3..1e5).contains(&a) {
        (0..=8)
            .map(|d| format!("{v:.d$}"))
            .find(|s| close(s))
            .unwrap_or_else(|| format!("{v}"))
    } else {
        (0..=4)
            .map(|d| format!("{v:.d$e}"))
            .find(|s| close(s))
            .unwrap_or_else(|| format!("{v:e}"))
    }
}

/// 3 significant digits, for fitted coefficients.
fn fmt_sig3(v: f64) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    let a = v.abs();
    if a == 0.0 {
        "0".into()
    } else if (1e-3..1e5).contains(&a) {
        let d = (2 - a.log10().floor() as i32).max(0) as usize;
        let s = format!("{v:.d$}");
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    } else {
        format!("{v:.2e}")
    }
}

// ---------------------------------------------------------------------------------------------
// Scatter and line plots

fn finite_range(vals: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    vals.filter(|v| v.is_finite())
        .fold(None, |acc, v| match acc {
            None => Some((v, v)),
            Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
        })
}

fn padded((lo, hi): (f64, f64), frac: f64) -> (f64, f64) {
    if hi > lo {
        let p = (hi - lo) * frac;
        (lo - p, hi + p)
    } else {
        let p = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
        (lo - p, hi + p)
    }
}

/// Corner of the plot with the fewest data points, for the legend. Points are in [0,1]^2 with y up.
fn legend_corner(points: &[(f64, f64)]) -> SeriesLabelPosition {
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
fn clip_fit_line(
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
struct TickAxis {
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
fn log_ticks(a: f64, b: f64) -> (Vec<f64>, Vec<f64>) {
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
fn draw_xy<DB>(
    root: &Draw<DB>,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    fit: Option<(f64, f64, f64)>,
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
    let fit_line = fit.and_then(|(a, b, _)| clip_fit_line(a, b, (x0, x1), (y0, y1)));
    if let Some([p, q]) = fit_line {
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
    if let Some((a, b, r2)) = fit {
        let sign = if b < 0.0 { "−" } else { "+" };
        let label = format!(
            "fit: y = {}x {sign} {},  R² = {}",
            fmt_sig3(a),
            fmt_sig3(b.abs()),
            fmt_r2(r2)
        );
        let fit_style = RGBColor(30, 30, 30).stroke_width(3);
        let legend = move |(x, y): (i32, i32)| {
            EmptyElement::at((x, y))
                + PathElement::new(vec![(0, 0), (11, 0)], fit_style)
                + PathElement::new(vec![(17, 0), (28, 0)], fit_style)
        };
        match fit_line {
            Some(line) => {
                chart
                    .draw_series(DashedLineSeries::new(line, 14, 8, fit_style))?
                    .label(label)
                    .legend(legend);
            }
            None => {
                // The line misses the plotted range: still report the fit in the legend.
                chart
                    .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())?
                    .label(label)
                    .legend(legend);
            }
        }
    }
    if series.iter().any(|s| !s.name.is_empty()) || fit.is_some() {
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

fn fmt_r2(r2: f64) -> String {
    if r2.is_finite() {
        format!("{r2:.3}")
    } else {
        "n/a".into()
    }
}

// ---------------------------------------------------------------------------------------------
// Image grids

const GRID_MARGIN: u32 = 24;
const GRID_GAP: u32 = 10;
const GRID_TITLE_SIZE: f64 = 36.0;
const GRID_CAPTION_SIZE: f64 = 20.0;
const GRID_HEADER_SIZE: f64 = 22.0;

/// Display size of one tile in a grid of `cols` x `rows` cells.
///
/// The grid aims at about 800x700 px of tiles (never less than 96 px on a tile's long side) and
/// at most 1600x1200 px (never less than 256 px per cell): tiles are upscaled by the largest
/// whole factor that reaches the aim within the limit, or shrunk to the limit. Then the short
/// side is stretched to at least half the long side, to a whole multiple of its source pixels
/// when that side is upscaled, so a 5x513 spectrogram gets a readable width.
fn tile_cell(w: usize, h: usize, cols: usize, rows: usize) -> (u32, u32) {
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

struct GridLayout {
    size: (u32, u32),
    title: Option<(String, i32)>,
    cell: (u32, u32),
    /// top-left corner of every tile
    origins: Vec<(i32, i32)>,
    tile_captions: Vec<String>,
    caption_h: u32,
    col_headers: Vec<(String, i32, i32)>,
    row_headers: Vec<(String, i32, i32)>,
}

fn grid_layout(figure: &Figure) -> Result<GridLayout> {
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

fn draw_grid<DB>(root: &Draw<DB>, figure: &Figure) -> Result<Vec<Raster>>
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
    for (s, x, y) in &layout.col_headers {
        root.draw(&Text::new(
            s.as_str(),
            (*x, *y),
            style(GRID_HEADER_SIZE, TEXT, HPos::Center, VPos::Center),
        ))?;
    }
    for (s, x, y) in &layout.row_headers {
        root.draw(&Text::new(
            s.as_str(),
            (*x, *y),
            style(GRID_HEADER_SIZE, TEXT, HPos::Right, VPos::Center),
        ))?;
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

// ---------------------------------------------------------------------------------------------
// Heat maps

const HM_MARGIN: i32 = 24;
const HM_LABEL_MAX_W: u32 = 260;
const HM_NAN: RGBColor = RGBColor(205, 205, 205);

fn heat_color(v: f64, lo: f64, hi: f64) -> RGBColor {
    if !v.is_finite() {
        return HM_NAN;
    }
    let t = if hi > lo { (v - lo) / (hi - lo) } else { 0.5 };
    let [r, g, b] = viridis(t as f32);
    RGBColor(r, g, b)
}

/// Formatter for the numbers printed in heat-map cells, shared by the whole matrix.
fn cell_format(values: &[Vec<f64>]) -> impl Fn(f64) -> String + use<> {
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

fn draw_heatmap<DB>(
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn scratch_dir(name: &str) -> PathBuf {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "latent-lab-figures-{}-{name}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Where figures are kept for a look after the tests (`FIGURES_KEEP=dir`), else `dir`.
    fn out_dir(dir: &Path) -> PathBuf {
        match std::env::var_os("FIGURES_KEEP") {
            Some(keep) => {
                let p = PathBuf::from(keep);
                fs::create_dir_all(&p).unwrap();
                p
            }
            None => dir.to_path_buf(),
        }
    }

    const BLUE_S: (u8, u8, u8) = (0, 114, 178);
    const ORANGE_S: (u8, u8, u8) = (230, 159, 0);

    fn scatter() -> Figure {
        let pts: Vec<(f64, f64)> = (0..60)
            .map(|i| {
                let x = f64::from(i) / 10.0;
                (x, 0.8 * x + 0.3 + 0.4 * ((i * 37 % 11) as f64 / 11.0 - 0.5))
            })
            .collect();
        Figure::Scatter {
            title: "Predicted vs true rotation angle".into(),
            x_label: "true angle (rad)".into(),
            y_label: "latent z₁".into(),
            series: vec![Series::new("test set", pts, BLUE_S)],
            fit: Some((0.8, 0.3, 0.973)),
        }
    }

    fn lines(log_y: bool) -> Figure {
        let curve = |k: f64| {
            (0..200)
                .map(|i| (f64::from(i) * 50.0, 2.0 * (-f64::from(i) / k).exp() + 0.01))
                .collect()
        };
        Figure::Lines {
            title: if log_y {
                "Training loss (log scale)"
            } else {
                "Training loss"
            }
            .into(),
            x_label: "step".into(),
            y_label: "loss".into(),
            series: vec![
                Series::new("reconstruction", curve(30.0), BLUE_S),
                Series::new("KL", curve(60.0), ORANGE_S),
            ],
            log_y,
        }
    }

    fn noise_tile(w: usize, h: usize, seed: u32) -> Vec<u8> {
        let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        (0..w * h * 3)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s >> 24) as u8
            })
            .collect()
    }

    fn grid(n: usize, cols: usize, tw: usize, th: usize, captions: Vec<String>) -> Figure {
        Figure::ImageGrid {
            title: "Reconstructions".into(),
            tile_w: tw,
            tile_h: th,
            cols,
            tiles: (0..n).map(|i| noise_tile(tw, th, i as u32)).collect(),
            captions,
        }
    }

    fn heatmap(n: usize, m: usize) -> Figure {
        Figure::Heatmap {
            title: "Mutual information: factors × latents".into(),
            rows: (0..n).map(|i| format!("factor {i}")).collect(),
            cols: (0..m).map(|j| format!("z{j}")).collect(),
            values: (0..n)
                .map(|i| {
                    (0..m)
                        .map(|j| ((i * 7 + j * 3) % 10) as f64 / 9.0)
                        .collect()
                })
                .collect(),
        }
    }

    fn decode(path: &Path) -> image::RgbImage {
        image::open(path).unwrap().to_rgb8()
    }

    fn count_color(img: &image::RgbImage, c: (u8, u8, u8)) -> usize {
        img.pixels().filter(|p| p.0 == [c.0, c.1, c.2]).count()
    }

    fn no_tmp_left(dir: &Path) {
        let tmps: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(tmps.is_empty(), "left behind: {tmps:?}");
    }

    fn check_pair(fig: &Figure, stem: &str, colors: &[(u8, u8, u8)], title: &str) {
        let dir = scratch_dir(stem);
        let out = out_dir(&dir);
        let png = out.join(format!("{stem}.png"));
        let svg = out.join(format!("{stem}.svg"));
        save(fig, &png).unwrap();
        save(fig, &svg).unwrap();
        let img = decode(&png);
        assert_eq!((img.width(), img.height()), figure_size(fig).unwrap());
        assert!(count_color(&img, (255, 255, 255)) > 0, "white background");
        for &c in colors {
            assert!(count_color(&img, c) > 20, "{stem}: colour {c:?} missing");
        }
        let text = fs::read_to_string(&svg).unwrap();
        assert!(text.contains("<svg"));
        assert!(text.contains(title), "{stem}: SVG lacks the title");
        assert!(
            !tmp_path(&png).exists() && !tmp_path(&svg).exists(),
            "{stem}: .tmp left behind"
        );
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn scatter_png_and_svg() {
        check_pair(
            &scatter(),
            "scatter",
            &[BLUE_S],
            "Predicted vs true rotation angle",
        );
        let fig = scatter();
        let dir = scratch_dir("scatter-size");
        let p = dir.join("s.PNG");
        save(&fig, &p).unwrap();
        assert_eq!(decode(&p).dimensions(), (1200, 800));
        let svg = dir.join("s.svg");
        save(&fig, &svg).unwrap();
        let text = fs::read_to_string(&svg).unwrap();
        assert!(text.contains("R² = 0.973"), "fit R² in the legend");
        assert!(text.contains("width=\"1200\"") && text.contains("height=\"800\""));
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn lines_png_and_svg() {
        check_pair(&lines(false), "lines", &[BLUE_S, ORANGE_S], "Training loss");
        check_pair(
            &lines(true),
            "lines-log",
            &[BLUE_S, ORANGE_S],
            "Training loss (log scale)",
        );
    }

    #[test]
    fn lines_with_gaps_and_bad_values() {
        let mut pts: Vec<(f64, f64)> = (0..50)
            .map(|i| (f64::from(i), f64::from(i).sin() + 1.5))
            .collect();
        pts[10].1 = f64::NAN;
        pts[20].1 = -1.0; // dropped on a log axis
        pts[30].0 = f64::INFINITY;
        let fig = Figure::Lines {
            title: "gaps".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            series: vec![Series::new("", pts, BLUE_S)],
            log_y: true,
        };
        check_pair(&fig, "lines-gaps", &[BLUE_S], "gaps");
    }

    #[test]
    fn image_grid_png_and_svg() {
        let captions: Vec<String> = (0..12).map(|i| format!("sample {i}")).collect();
        let fig = grid(12, 4, 32, 32, captions);
        check_pair(&fig, "grid", &[], "Reconstructions");
        // Tiles are upscaled with nearest neighbour: a 32x32 tile covers 96x96 pixels in 3x3 blocks.
        let dir = scratch_dir("grid-crisp");
        let p = dir.join("g.png");
        save(&fig, &p).unwrap();
        let img = decode(&p);
        let layout = grid_layout(&fig).unwrap();
        // 12 tiles in 4 columns: drawn 7x (224 px); a 10x10 grid draws them 3x (96 px).
        assert_eq!(layout.cell, (224, 224));
        let k = 7;
        let (x, y) = layout.origins[5];
        let Figure::ImageGrid { tiles, .. } = &fig else {
            unreachable!()
        };
        for ty in 0..32 {
            for tx in 0..32 {
                let src = &tiles[5][(ty * 32 + tx) * 3..][..3];
                for (dx, dy) in [(0, 0), (k - 1, k - 1), (3, k - 1), (k - 1, 0)] {
                    let px = img.get_pixel(
                        (x + tx as i32 * k + dx) as u32,
                        (y + ty as i32 * k + dy) as u32,
                    );
                    assert_eq!(&px.0[..], src, "tile pixel ({tx},{ty})");
                }
            }
        }
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn image_grid_headers_and_spectrogram_tiles() {
        // 2 rows x 3 columns of 5-frame, 513-bin spectrograms, with column and row headers.
        let tiles: Vec<Vec<u8>> = (0..6)
            .map(|i| {
                (0..513 * 5)
                    .flat_map(|p| viridis(((p / 5 + i * 40) % 513) as f32 / 512.0))
                    .collect()
            })
            .collect();
        let mut captions: Vec<String> = ["pitch −", "original", "pitch +"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        captions.extend(["speaker A".to_string(), "speaker B".to_string()]);
        let fig = Figure::ImageGrid {
            title: "Spectrogram traversals".into(),
            tile_w: 5,
            tile_h: 513,
            cols: 3,
            tiles,
            captions,
        };
        let layout = grid_layout(&fig).unwrap();
        assert_eq!(layout.cell, (260, 513));
        assert_eq!(layout.col_headers.len(), 3);
        assert_eq!(layout.row_headers.len(), 2);
        check_pair(&fig, "grid-spectrogram", &[], "Spectrogram traversals");
        assert_eq!(tile_cell(513, 5, 3, 2), (513, 260));
        assert_eq!(tile_cell(28, 28, 10, 10), (112, 112));
        assert_eq!(tile_cell(32, 32, 10, 10), (96, 96));
        assert_eq!(tile_cell(64, 64, 10, 10), (128, 128));
        assert_eq!(tile_cell(1024, 1024, 10, 10), (256, 256));
        assert_eq!(tile_cell(1024, 1024, 1, 1), (1024, 1024));
        assert_eq!(tile_cell(4000, 3000, 1, 1), (1600, 1200));
        // One wide spectrogram strip (25 notes x 5 frames, 257 bins): drawn big, 4 px per frame.
        assert_eq!(tile_cell(125, 257, 1, 1), (500, 771));
    }

    #[test]
    fn image_grid_single_strip() {
        // A traversal strip as the CLI makes it: 25 notes x 5 frames wide, 257 bins tall.
        let (w, h) = (125, 257);
        let strip: Vec<u8> = (0..w * h)
            .flat_map(|p| viridis((((p % w) / 5) as f32 / 24.0 + (p / w) as f32 / 256.0) / 2.0))
            .collect();
        let fig = Figure::ImageGrid {
            title: "Decoded spectra along the pitch latent (0-8 kHz, 25 steps)".into(),
            tile_w: w,
            tile_h: h,
            cols: 1,
            tiles: vec![strip],
            captions: Vec::new(),
        };
        assert_eq!(grid_layout(&fig).unwrap().cell, (500, 771));
        check_pair(&fig, "grid-strip", &[], "Decoded spectra");
    }

    #[test]
    fn image_grid_10x10_svg_stays_small() {
        let fig = grid(100, 10, 32, 32, Vec::new());
        let dir = scratch_dir("grid-big");
        let out = out_dir(&dir);
        let svg = out.join("grid-10x10.svg");
        save(&fig, &svg).unwrap();
        let len = fs::metadata(&svg).unwrap().len();
        eprintln!("10x10 grid of 32x32 noise tiles: SVG {len} bytes");
        assert!(len < 3_000_000, "SVG is {len} bytes");
        let png = out.join("grid-10x10.png");
        save(&fig, &png).unwrap();
        let img = decode(&png);
        assert_eq!(img.dimensions(), figure_size(&fig).unwrap());
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn heatmap_png_and_svg() {
        let fig = heatmap(6, 10);
        let low = viridis(0.0);
        let high = viridis(1.0);
        check_pair(
            &fig,
            "heatmap",
            &[(low[0], low[1], low[2]), (high[0], high[1], high[2])],
            "Mutual information",
        );
        let dir = scratch_dir("heatmap-values");
        let p = dir.join("h.svg");
        save(&fig, &p).unwrap();
        let text = fs::read_to_string(&p).unwrap();
        assert!(
            text.contains("\n1.00\n") && text.contains("\n0.33\n"),
            "cell values are printed"
        );
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn heatmap_large_and_unlabelled() {
        let values: Vec<Vec<f64>> = (0..120)
            .map(|i| {
                (0..90)
                    .map(|j| (f64::from(i) * 0.1).sin() * (f64::from(j) * 0.07).cos())
                    .collect()
            })
            .collect();
        let mut values = values;
        values[3][4] = f64::NAN;
        let fig = Figure::Heatmap {
            title: "Large matrix".into(),
            rows: Vec::new(),
            cols: Vec::new(),
            values,
        };
        check_pair(&fig, "heatmap-large", &[], "Large matrix");
    }

    #[test]
    fn heatmap_long_labels() {
        let cols: Vec<String> = (0..16).map(|j| format!("latent dimension {j}")).collect();
        let rows: Vec<String> = [
            "object hue",
            "floor hue",
            "wall hue",
            "scale",
            "shape",
            "orientation",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let values: Vec<Vec<f64>> = (0..6)
            .map(|i| {
                (0..16)
                    .map(|j| {
                        if j == i * 2 {
                            0.9 - 0.1 * i as f64
                        } else {
                            0.02 * ((i + j) % 5) as f64
                        }
                    })
                    .collect()
            })
            .collect();
        let fig = Figure::Heatmap {
            title: "MIG: factor × latent mutual information (nats)".into(),
            rows,
            cols,
            values,
        };
        check_pair(&fig, "heatmap-long-labels", &[], "MIG: factor");
    }

    #[test]
    fn degenerate_inputs_still_render() {
        let dir = scratch_dir("degenerate");
        let one = |log_y| Figure::Lines {
            title: "one point".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            series: vec![
                Series::new("only", vec![(3.0, 5.0)], BLUE_S),
                Series::new("empty", Vec::new(), ORANGE_S),
            ],
            log_y,
        };
        let flat = Figure::Scatter {
            title: "constant".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            series: vec![Series::new("same", vec![(1.0, 0.0); 5], BLUE_S)],
            fit: Some((1e9, -4.0, f64::NAN)),
        };
        let tiny = Figure::Heatmap {
            title: String::new(),
            rows: vec!["a".into()],
            cols: vec!["b".into()],
            values: vec![vec![2.5]],
        };
        let single = grid(1, 8, 3, 7, vec![String::new()]);
        let huge_values = Figure::Heatmap {
            title: "big numbers".into(),
            rows: Vec::new(),
            cols: Vec::new(),
            values: vec![vec![1e7, -2e6], vec![f64::INFINITY, 3.0]],
        };
        for (i, fig) in [one(false), one(true), flat, tiny, single, huge_values]
            .iter()
            .enumerate()
        {
            for ext in ["png", "svg"] {
                let p = out_dir(&dir).join(format!("degenerate-{i}.{ext}"));
                save(fig, &p).unwrap_or_else(|e| panic!("figure {i}: {e:#}"));
            }
        }
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn viridis_ends() {
        assert_eq!(viridis(0.0), [68, 1, 84]);
        assert_eq!(viridis(1.0), [253, 231, 37]);
        assert_eq!(viridis(0.5), [33, 145, 140]);
        assert_eq!(viridis(-3.0), viridis(0.0));
        assert_eq!(viridis(7.0), viridis(1.0));
        assert_eq!(viridis(f32::NAN), viridis(0.0));
    }

    #[test]
    fn unsupported_extension_names_the_path() {
        let dir = scratch_dir("ext");
        for name in ["figure.txt", "figure"] {
            let p = dir.join(name);
            let err = save(&scatter(), &p).unwrap_err();
            let msg = format!("{err:#}");
            assert!(msg.contains(&p.display().to_string()), "{msg}");
            assert!(!p.exists());
        }
        no_tmp_left(&dir);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn missing_directory_fails_cleanly() {
        let dir = scratch_dir("missing");
        let p = dir.join("no-such-dir").join("fig.png");
        let err = save(&scatter(), &p).unwrap_err();
        assert!(format!("{err:#}").contains("fig.png"));
        assert!(!dir.join("no-such-dir").exists());
        no_tmp_left(&dir);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn failed_render_keeps_existing_file() {
        let dir = scratch_dir("keep");
        for name in ["fig.png", "fig.svg"] {
            let p = dir.join(name);
            fs::write(&p, b"previous figure").unwrap();
            let empty = Figure::Scatter {
                title: "empty".into(),
                x_label: "x".into(),
                y_label: "y".into(),
                series: vec![Series::new("nothing", vec![(f64::NAN, 1.0)], BLUE_S)],
                fit: None,
            };
            let err = save(&empty, &p).unwrap_err();
            assert!(format!("{err:#}").contains("no finite points"), "{err:#}");
            let bad_grid = Figure::ImageGrid {
                title: "bad".into(),
                tile_w: 4,
                tile_h: 4,
                cols: 2,
                tiles: vec![vec![0; 47]],
                captions: Vec::new(),
            };
            assert!(save(&bad_grid, &p).is_err());
            assert_eq!(fs::read(&p).unwrap(), b"previous figure");
        }
        no_tmp_left(&dir);
        let _ = fs::remove_dir_all(&dir);
    }

    /// A read-only directory makes the write fail after rendering; root ignores the permission,
    /// in which case there is nothing to test and the test says so.
    #[cfg(unix)]
    #[test]
    fn read_only_directory_keeps_existing_file() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = scratch_dir("readonly");
        let p = dir.join("fig.png");
        fs::write(&p, b"previous figure").unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o555)).unwrap();
        let probe = dir.join("probe");
        if fs::write(&probe, b"x").is_ok() {
            let _ = fs::remove_file(&probe);
            eprintln!("skipped: running as root, a read-only directory is still writable");
        } else {
            assert!(save(&scatter(), &p).is_err());
            assert_eq!(fs::read(&p).unwrap(), b"previous figure");
            no_tmp_left(&dir);
        }
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn grid_caption_counts() {
        assert!(grid_layout(&grid(6, 3, 8, 8, vec!["a".into(); 4])).is_err());
        assert_eq!(
            grid_layout(&grid(6, 3, 8, 8, vec!["a".into(); 6]))
                .unwrap()
                .tile_captions
                .len(),
            6
        );
        assert_eq!(
            grid_layout(&grid(6, 3, 8, 8, vec!["a".into(); 3]))
                .unwrap()
                .col_headers
                .len(),
            3
        );
        let l = grid_layout(&grid(6, 3, 8, 8, vec!["a".into(); 5])).unwrap();
        assert_eq!((l.col_headers.len(), l.row_headers.len()), (3, 2));
    }

    #[test]
    fn number_formats() {
        let f = linear_tick_format(&[0.0, 0.25, 0.5, 0.75, 1.0]);
        assert_eq!([f(&0.0), f(&0.25), f(&1.0)], ["0.00", "0.25", "1.00"]);
        let f = linear_tick_format(&[0.0, 0.1, 0.2, 0.30000000000000004]);
        assert_eq!(f(&0.30000000000000004), "0.3");
        let f = linear_tick_format(&[0.0, 2000.0, 4000.0]);
        assert_eq!(f(&4000.0), "4000");
        assert_eq!(fmt_number(0.001), "0.001");
        assert_eq!(fmt_number(1e-5), "1e-5");
        assert_eq!(fmt_number(100.0), "100");
        assert_eq!(fmt_sig3(0.8), "0.8");
        assert_eq!(fmt_sig3(1.2345), "1.23");
        assert_eq!(base64(b"Man"), "TWFu");
        assert_eq!(base64(b"Ma"), "TWE=");
        assert_eq!(base64(b"M"), "TQ==");
    }
}
