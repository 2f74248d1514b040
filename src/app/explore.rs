//! Navigate: the latent map and explorer every lab shares, built once. A lab hands over an
//! [`Explore`] source (its held-out samples encoded, and its decoder); the [`ExplorePanel`]
//! draws the samples on a 2-D map, decodes the point clicked, the strip along a drawn path,
//! the interpolation between two picked samples (linearly, and along the prior where the lab
//! has one) and the local directions of the decoder at the clicked point, and exports each of
//! them as PNG, SVG or (for sound) WAV. The same figures are written headless by
//! `latent-lab export CKPT --figure latent-map|interpolation|directions` through [`export`].
//!
//! Nothing here knows a family: decoded outputs come back as plain values with a note of how
//! to draw them ([`Output`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, ensure};
use egui::{Color32, ColorImage, TextureHandle, TextureOptions};

use super::latent_map::{
    self, Direction, Group, LatentMap, MapEvent, MapInput, Plane, Projection, STRIP_LEN,
};
use super::{Background, FileRequest, PathField, Shared};
use crate::error::BadArgument;
use crate::figures::{self, Figure, Series};

// ------------------------------------------------------------------ what a lab hands over

/// Held-out samples of a lab, encoded: one latent per sample and the ways to colour them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MapSamples {
    pub latents: Vec<Vec<f32>>,
    /// at least one; the first is the map's colouring until the user picks another
    pub colourings: Vec<Colouring>,
    /// one short description per sample ("Violin, MIDI 62"), shown for picked samples
    pub labels: Vec<String>,
}

/// One way to colour the samples: by a label, or by an observable.
#[derive(Clone, Debug, PartialEq)]
pub struct Colouring {
    pub name: String,
    pub values: ColourValues,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ColourValues {
    /// a category per sample, an index into `names`
    Categories { names: Vec<String>, of: Vec<usize> },
    /// a number per sample, drawn in [`CONTINUOUS_BINS`] quantile bins of viridis
    Continuous(Vec<f32>),
}

impl MapSamples {
    /// Refuse samples that do not fit together or a decoder of `dims` latents.
    pub fn check(&self, dims: usize) -> anyhow::Result<()> {
        let n = self.latents.len();
        ensure!(n > 0, "no samples to map");
        ensure!(
            self.latents.iter().all(|z| z.len() == dims),
            "a sample's latent is not {dims} long"
        );
        ensure!(
            self.latents.iter().flatten().all(|v| v.is_finite()),
            "a sample's latent is not finite"
        );
        ensure!(
            self.labels.is_empty() || self.labels.len() == n,
            "{} labels for {n} samples",
            self.labels.len()
        );
        for c in &self.colourings {
            let len = match &c.values {
                ColourValues::Categories { of, .. } => of.len(),
                ColourValues::Continuous(v) => v.len(),
            };
            ensure!(
                len == n,
                "colouring `{}`: {len} values for {n} samples",
                c.name
            );
        }
        Ok(())
    }

    pub fn label(&self, i: usize) -> String {
        self.labels
            .get(i)
            .cloned()
            .unwrap_or_else(|| format!("sample {i}"))
    }
}

/// A decoded latent: exactly the values the lab's `latent-lab decode` writes to `.npy` for
/// that latent, and how to draw them.
#[derive(Clone, Debug, PartialEq)]
pub struct Decoded {
    pub values: Vec<f32>,
    pub output: Output,
}

/// How decoded values are laid out.
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    /// `count` images side by side, each channels x height x width (CHW), values in [0, 1];
    /// `ink`: one channel of ink, drawn dark on white paper
    Images {
        count: usize,
        channels: usize,
        height: usize,
        width: usize,
        ink: bool,
    },
    /// a spectrogram, bins x frames (bin-major) of features in [0, 1]: the lowest
    /// `shown_bins` are drawn, low frequencies at the bottom, in viridis of `gain * value`
    Spectrogram {
        bins: usize,
        frames: usize,
        shown_bins: usize,
        gain: f32,
    },
    /// named values (an event's features)
    Vector { names: Vec<String> },
}

/// Audio of decoded latents, mono.
#[derive(Clone, Debug, PartialEq)]
pub struct Sound {
    pub samples: Vec<f32>,
    pub rate: u32,
}

/// A lab as the explorer sees it. Every method may be called from a background thread.
pub trait Explore: Send + Sync {
    /// What the figures' titles call the model ("sps-music (fast)").
    fn title(&self) -> String;
    /// Length of a latent.
    fn dims(&self) -> usize;
    /// Names of the latent's dimensions, for the axis pickers.
    fn dim_names(&self) -> Vec<String> {
        (0..self.dims()).map(|i| format!("z{}", i + 1)).collect()
    }
    /// The held-out samples, encoded (a few hundred: this runs on every new model).
    fn samples(&self) -> anyhow::Result<MapSamples>;
    /// Decode one latent, exactly as `latent-lab decode` does a one-row `.npy`.
    fn decode(&self, z: &[f32]) -> anyhow::Result<Decoded>;
    /// Whether [`Explore::sound`] gives audio.
    fn has_sound(&self) -> bool {
        false
    }
    /// Audio of latents one after the other (None: the lab has no sound).
    fn sound(&self, _latents: &[Vec<f32>]) -> Option<anyhow::Result<Sound>> {
        None
    }
    /// `n` latents from `a` to `b` (both included) along the model's prior, where it has one.
    fn prior_path(&self, _a: &[f32], _b: &[f32], _n: usize) -> Option<Vec<Vec<f32>>> {
        None
    }
    /// How the prior path goes, for its label ("along the prior").
    fn prior_name(&self) -> String {
        "along the prior".into()
    }
    /// Draw a decoded output the lab's own way; false leaves it to the generic drawing.
    fn paint(&self, _ui: &mut egui::Ui, _decoded: &Decoded) -> bool {
        false
    }
}

// ------------------------------------------------------------------ helpers for sources

/// The held-out inputs a family made last, by key (its data spec): a training run hands the
/// panel a new model every few seconds, and its samples are encoded again, but rendering
/// the inputs (a SoundFont's notes) is done once.
pub struct InputCache<T> {
    slot: std::sync::Mutex<Option<(String, Arc<T>)>>,
}

impl<T> InputCache<T> {
    pub const fn new() -> Self {
        Self {
            slot: std::sync::Mutex::new(None),
        }
    }

    /// The inputs for `key`, made by `make` unless they are the last ones made. Callers for
    /// the same key wait for one `make` rather than render twice.
    pub fn get_or(
        &self,
        key: &str,
        make: impl FnOnce() -> anyhow::Result<T>,
    ) -> anyhow::Result<Arc<T>> {
        let mut slot = self
            .slot
            .lock()
            .map_err(|_| anyhow!("a thread failed while making the held-out inputs"))?;
        if let Some((k, v)) = slot.as_ref()
            && k == key
        {
            return Ok(v.clone());
        }
        let value = Arc::new(make()?);
        *slot = Some((key.to_string(), value.clone()));
        Ok(value)
    }
}

impl<T> Default for InputCache<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// `n` latents from `a` to `b` on the great circle between them, the norm interpolated
/// linearly: the path that stays where a standard normal prior puts its mass, as a straight
/// line (which passes nearer the origin) does not. Both ends are `a` and `b` exactly.
pub fn slerp_path(a: &[f32], b: &[f32], n: usize) -> Vec<Vec<f32>> {
    let norm = |v: &[f32]| v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let (na, nb) = (norm(a), norm(b));
    let cos = if na > 0.0 && nb > 0.0 {
        a.iter()
            .zip(b)
            .map(|(x, y)| *x as f64 * *y as f64)
            .sum::<f64>()
            / (na * nb)
    } else {
        1.0
    };
    let omega = cos.clamp(-1.0, 1.0).acos();
    (0..n)
        .map(|i| {
            if i == 0 {
                return a.to_vec();
            }
            if i + 1 == n {
                return b.to_vec();
            }
            let t = i as f64 / (n - 1) as f64;
            if !(1e-4..=std::f64::consts::PI - 1e-4).contains(&omega) {
                // (anti)parallel ends: no unique great circle, the straight line will do
                return a
                    .iter()
                    .zip(b)
                    .map(|(x, y)| x + t as f32 * (y - x))
                    .collect();
            }
            let (wa, wb) = (
                ((1.0 - t) * omega).sin() / omega.sin(),
                (t * omega).sin() / omega.sin(),
            );
            // the unit directions slerped, then scaled to the interpolated norm
            let r = (1.0 - t) * na + t * nb;
            a.iter()
                .zip(b)
                .map(|(x, y)| (r * (wa * *x as f64 / na + wb * *y as f64 / nb)) as f32)
                .collect()
        })
        .collect()
}

// ------------------------------------------------------------------ colours

/// Bins of a continuous colouring.
pub const CONTINUOUS_BINS: usize = 8;

/// The legend groups of a colouring of `n` samples.
pub fn groups(colouring: &Colouring, n: usize) -> Vec<Group> {
    let rgb = |(r, g, b): (u8, u8, u8)| Color32::from_rgb(r, g, b);
    match &colouring.values {
        ColourValues::Categories { names, of } => names
            .iter()
            .enumerate()
            .map(|(k, name)| Group {
                name: name.clone(),
                color: rgb(figures::category_color(k, names.len())),
                members: (0..n).filter(|&i| of.get(i) == Some(&k)).collect(),
            })
            .filter(|g| !g.members.is_empty())
            .collect(),
        ColourValues::Continuous(values) => {
            let mut finite: Vec<f32> = values.iter().copied().filter(|v| v.is_finite()).collect();
            finite.sort_by(f32::total_cmp);
            let mut out = Vec::new();
            if !finite.is_empty() {
                let edge = |k: usize| finite[(k * (finite.len() - 1)) / CONTINUOUS_BINS];
                for k in 0..CONTINUOUS_BINS {
                    let (lo, hi) = (edge(k), edge(k + 1));
                    let members: Vec<usize> = (0..n)
                        .filter(|&i| {
                            let v = values.get(i).copied().unwrap_or(f32::NAN);
                            v.is_finite()
                                && v >= lo
                                && (v < hi || (k == CONTINUOUS_BINS - 1 && v <= hi))
                        })
                        .collect();
                    if members.is_empty() {
                        continue;
                    }
                    let c = figures::viridis(k as f32 / (CONTINUOUS_BINS - 1) as f32);
                    out.push(Group {
                        name: format!("{} {} – {}", colouring.name, num(lo), num(hi)),
                        color: Color32::from_rgb(c[0], c[1], c[2]),
                        members,
                    });
                }
            }
            let missing: Vec<usize> = (0..n)
                .filter(|&i| !values.get(i).is_some_and(|v| v.is_finite()))
                .collect();
            if !missing.is_empty() {
                out.push(Group {
                    name: format!("{} unknown", colouring.name),
                    color: Color32::GRAY,
                    members: missing,
                });
            }
            out
        }
    }
}

/// A number short enough for a legend.
fn num(v: f32) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

// ------------------------------------------------------------------ drawing decoded values

impl Decoded {
    /// The output as an RGB picture (None for vectors): images side by side, spectrograms
    /// low frequencies at the bottom.
    pub fn rgb(&self) -> Option<(usize, usize, Vec<u8>)> {
        match &self.output {
            Output::Images {
                count,
                channels,
                height,
                width,
                ink,
            } => {
                let (c, h, w) = (*channels, *height, *width);
                let total_w = w * count;
                let mut rgb = vec![255u8; total_w * h * 3];
                let byte = |v: f32| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
                for k in 0..*count {
                    let base = k * c * h * w;
                    for y in 0..h {
                        for x in 0..w {
                            let px = &mut rgb[(y * total_w + k * w + x) * 3..][..3];
                            let at = |ch: usize| {
                                self.values
                                    .get(base + (ch * h + y) * w + x)
                                    .copied()
                                    .unwrap_or(0.0)
                            };
                            if *ink || c == 1 {
                                let v = if *ink { 1.0 - at(0) } else { at(0) };
                                px.copy_from_slice(&[byte(v); 3]);
                            } else {
                                for (ch, p) in px.iter_mut().enumerate() {
                                    *p = byte(at(ch.min(c - 1)));
                                }
                            }
                        }
                    }
                }
                Some((total_w, h, rgb))
            }
            Output::Spectrogram {
                bins,
                frames,
                shown_bins,
                gain,
            } => {
                let (w, h) = (*frames, (*shown_bins).min(*bins));
                let mut rgb = vec![0u8; w * h * 3];
                for b in 0..h {
                    for t in 0..w {
                        let v = self.values.get(b * frames + t).copied().unwrap_or(0.0);
                        let y = h - 1 - b;
                        rgb[(y * w + t) * 3..][..3].copy_from_slice(&figures::viridis(gain * v));
                    }
                }
                Some((w, h, rgb))
            }
            Output::Vector { .. } => None,
        }
    }

    /// The output's pictures one by one: each image of an output of several, else the one.
    pub fn pictures(&self) -> Option<Vec<(usize, usize, Vec<u8>)>> {
        let (w, h, rgb) = self.rgb()?;
        let count = match &self.output {
            Output::Images { count, .. } => (*count).max(1),
            _ => 1,
        };
        let each = w / count;
        Some(
            (0..count)
                .map(|k| {
                    let mut tile = Vec::with_capacity(each * h * 3);
                    for y in 0..h {
                        let row = (y * w + k * each) * 3;
                        tile.extend_from_slice(&rgb[row..row + each * 3]);
                    }
                    (each, h, tile)
                })
                .collect(),
        )
    }

    /// How many pictures the output holds (one for a spectrogram; none for a vector).
    pub fn picture_count(&self) -> usize {
        match &self.output {
            Output::Images { count, .. } => *count,
            Output::Spectrogram { .. } => 1,
            Output::Vector { .. } => 0,
        }
    }

    pub fn is_vector(&self) -> bool {
        matches!(self.output, Output::Vector { .. })
    }

    fn names(&self) -> Vec<String> {
        match &self.output {
            Output::Vector { names } => names.clone(),
            _ => (0..self.values.len()).map(|i| format!("x{i}")).collect(),
        }
    }
}

/// Pictures of one size in a grid, one column per entry of `columns` (its pictures top to
/// bottom), `gap` grey pixels apart.
fn picture_grid(
    columns: &[Vec<(usize, usize, Vec<u8>)>],
    gap: usize,
) -> Option<(usize, usize, Vec<u8>)> {
    let (w, h) = columns.first()?.first().map(|t| (t.0, t.1))?;
    let rows = columns[0].len();
    if columns
        .iter()
        .any(|c| c.len() != rows || c.iter().any(|t| t.0 != w || t.1 != h))
    {
        return None;
    }
    let n = columns.len();
    let (total_w, total_h) = (n * w + (n - 1) * gap, rows * h + (rows - 1) * gap);
    let mut rgb = vec![160u8; total_w * total_h * 3];
    for (k, column) in columns.iter().enumerate() {
        for (r, t) in column.iter().enumerate() {
            for y in 0..h {
                let dst = ((r * (h + gap) + y) * total_w + k * (w + gap)) * 3;
                rgb[dst..dst + w * 3].copy_from_slice(&t.2[y * w * 3..(y + 1) * w * 3]);
            }
        }
    }
    Some((total_w, total_h, rgb))
}

// ------------------------------------------------------------------ what the explorer computes

/// Decoded latents in a row.
#[derive(Clone, Debug, PartialEq)]
pub struct Strip {
    pub latents: Vec<Vec<f32>>,
    pub decoded: Vec<Decoded>,
}

impl Strip {
    /// Decode `latents` one by one, each as [`Explore::decode`] does it alone.
    pub fn decode(source: &dyn Explore, latents: Vec<Vec<f32>>) -> anyhow::Result<Self> {
        let decoded = latents
            .iter()
            .map(|z| source.decode(z))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Self { latents, decoded })
    }

    /// The strip as one picture: a column per step (an output of several images stacked).
    fn rgb(&self) -> Option<(usize, usize, Vec<u8>)> {
        let columns: Option<Vec<_>> = self.decoded.iter().map(Decoded::pictures).collect();
        let mut columns = columns?;
        // pictures far taller than wide (a note's five frames) are widened here, column by
        // column, so that the grey gaps between them stay thin when the strip is drawn
        for t in columns.iter_mut().flatten() {
            let (w, h) = (t.0, t.1);
            if w > 0 && 3 * w < h {
                let f = h.div_ceil(3 * w);
                let mut wide = Vec::with_capacity(w * f * h * 3);
                for px in t.2.chunks_exact(3) {
                    for _ in 0..f {
                        wide.extend_from_slice(px);
                    }
                }
                *t = (w * f, h, wide);
            }
        }
        picture_grid(&columns, 1)
    }
}

/// Points of an interpolation strip.
pub const INTERPOLATION_LEN: usize = 9;

/// The decoded strips between two samples.
#[derive(Clone, Debug, PartialEq)]
pub struct Interpolation {
    pub a: usize,
    pub b: usize,
    pub linear: Strip,
    /// the prior's path, with its name, where the lab has one
    pub prior: Option<(String, Strip)>,
}

impl Interpolation {
    pub fn compute(
        source: &dyn Explore,
        samples: &MapSamples,
        a: usize,
        b: usize,
    ) -> anyhow::Result<Self> {
        let za = samples.latents.get(a).context("sample A is not there")?;
        let zb = samples.latents.get(b).context("sample B is not there")?;
        let linear = Strip::decode(source, latent_map::interpolate(za, zb, INTERPOLATION_LEN))?;
        let prior = match source.prior_path(za, zb, INTERPOLATION_LEN) {
            Some(path) => Some((source.prior_name(), Strip::decode(source, path)?)),
            None => None,
        };
        Ok(Self {
            a,
            b,
            linear,
            prior,
        })
    }

    fn rows(&self) -> Vec<(String, &Strip)> {
        let mut rows = vec![("linear".to_string(), &self.linear)];
        if let Some((name, s)) = &self.prior {
            rows.push((name.clone(), s));
        }
        rows
    }
}

/// Steps of a traversal along a local direction, in units of the samples' spread along it.
pub const TRAVERSAL: [f32; 5] = [-2.0, -1.0, 0.0, 1.0, 2.0];
/// Directions the panel and the figures show.
pub const SHOWN_DIRECTIONS: usize = 3;

/// The local directions of the decoder at a latent, each with a traversal along it.
#[derive(Clone, Debug, PartialEq)]
pub struct Directions {
    pub at: Vec<f32>,
    /// every direction, orthonormal, largest singular value first
    pub list: Vec<Direction>,
    /// for the first [`SHOWN_DIRECTIONS`]: the samples' spread along it (one step of
    /// [`TRAVERSAL`]) and the decoded latents `at + t * spread * direction`
    pub traversals: Vec<(f32, Strip)>,
}

impl Directions {
    pub fn compute(source: &dyn Explore, samples: &MapSamples, z: &[f32]) -> anyhow::Result<Self> {
        let spread = Spread::of(&samples.latents);
        // central differences a hundredth of the samples' typical spread apart: small enough
        // to be local, large enough that f32 rounding in the decoder stays negligible
        let eps = (0.01 * spread.typical).max(1e-4);
        let mut decode = |z: &[f32]| source.decode(z).map(|d| d.values);
        let list = latent_map::local_directions(&mut decode, z, eps)?;
        let mut traversals = Vec::new();
        for d in list.iter().take(SHOWN_DIRECTIONS) {
            let s = spread.along(&d.direction);
            let latents = TRAVERSAL
                .iter()
                .map(|t| {
                    z.iter()
                        .zip(&d.direction)
                        .map(|(x, v)| x + t * s * v)
                        .collect()
                })
                .collect();
            traversals.push((s, Strip::decode(source, latents)?));
        }
        Ok(Self {
            at: z.to_vec(),
            list,
            traversals,
        })
    }

    fn caption(&self, k: usize) -> String {
        match self.list.get(k) {
            Some(d) => format!(
                "d{} {:.0}% (σ {})",
                k + 1,
                100.0 * d.share,
                num(d.singular_value as f32)
            ),
            None => String::new(),
        }
    }
}

/// The samples' covariance, for how far a traversal goes.
struct Spread {
    mean: Vec<f64>,
    cov: Vec<f64>,
    d: usize,
    /// root of the mean variance per dimension
    typical: f32,
}

impl Spread {
    fn of(latents: &[Vec<f32>]) -> Self {
        let d = latents.first().map_or(0, |z| z.len());
        let n = latents.len().max(1) as f64;
        let mut mean = vec![0f64; d];
        for z in latents {
            for (m, x) in mean.iter_mut().zip(z) {
                *m += *x as f64 / n;
            }
        }
        let mut cov = vec![0f64; d * d];
        for z in latents {
            for a in 0..d {
                for b in 0..d {
                    cov[a * d + b] += (z[a] as f64 - mean[a]) * (z[b] as f64 - mean[b]) / n;
                }
            }
        }
        let trace: f64 = (0..d).map(|a| cov[a * d + a]).sum();
        let typical = (trace / d.max(1) as f64).sqrt() as f32;
        Self {
            mean,
            cov,
            d,
            typical: if typical.is_finite() && typical > 0.0 {
                typical
            } else {
                1.0
            },
        }
    }

    /// Standard deviation of the samples along unit vector `v` (the typical spread when they
    /// do not vary along it).
    fn along(&self, v: &[f32]) -> f32 {
        let d = self.d;
        let mut q = 0f64;
        for a in 0..d.min(v.len()) {
            for b in 0..d.min(v.len()) {
                q += v[a] as f64 * self.cov[a * d + b] * v[b] as f64;
            }
        }
        let s = q.max(0.0).sqrt() as f32;
        if s > 1e-3 * self.typical {
            s
        } else {
            self.typical
        }
    }
}

/// The sample farthest from sample `a`: the other end of the default interpolation.
pub fn farthest_from(samples: &MapSamples, a: usize) -> Option<usize> {
    let za = samples.latents.get(a)?;
    samples
        .latents
        .iter()
        .enumerate()
        .map(|(i, z)| {
            let d: f32 = z.iter().zip(za).map(|(x, y)| (x - y) * (x - y)).sum();
            (i, d)
        })
        .max_by(|x, y| x.1.total_cmp(&y.1))
        .map(|(i, _)| i)
}

// ------------------------------------------------------------------ figures

fn rgb_tuple(c: Color32) -> (u8, u8, u8) {
    (c.r(), c.g(), c.b())
}

/// The axis names of a plane of `projection`.
fn axis_names(projection: Projection, dim_names: &[String]) -> [String; 2] {
    match projection {
        Projection::Pca => ["PC 1".into(), "PC 2".into()],
        Projection::Axes { x, y } => {
            let name = |i: usize| dim_names.get(i).cloned().unwrap_or(format!("z{}", i + 1));
            [name(x), name(y)]
        }
    }
}

/// The samples on the map's plane, one series per colour group.
pub fn map_figure(
    title: &str,
    samples: &MapSamples,
    dim_names: &[String],
    projection: Projection,
    colouring: usize,
) -> anyhow::Result<Figure> {
    let plane = Plane::fit(&samples.latents, projection)
        .ok_or_else(|| anyhow!("the samples do not span the chosen plane"))?;
    let colouring = samples
        .colourings
        .get(colouring)
        .context("no such colouring")?;
    let series = groups(colouring, samples.latents.len())
        .into_iter()
        .map(|g| {
            let points = g
                .members
                .iter()
                .map(|&i| {
                    let p = plane.project(&samples.latents[i]);
                    (p[0], p[1])
                })
                .collect();
            Series::new(g.name, points, rgb_tuple(g.color))
        })
        .collect();
    let [x_label, y_label] = axis_names(projection, dim_names);
    Ok(Figure::Scatter {
        title: format!("{title}: held-out latents, by {}", colouring.name),
        x_label,
        y_label,
        series,
        fit: None,
    })
}

/// Rows of decoded strips as one figure: an image grid (a column header per step, a row
/// header per strip), or for vectors a line per feature and row across the steps.
pub fn strips_figure(
    title: &str,
    rows: &[(String, &Strip)],
    col_headers: &[String],
) -> anyhow::Result<Figure> {
    let first = rows
        .first()
        .and_then(|r| r.1.decoded.first())
        .context("nothing decoded to draw")?;
    if first.is_vector() {
        let names = first.names();
        let mut series = Vec::new();
        for (r, (row_name, strip)) in rows.iter().enumerate() {
            for (f, name) in names.iter().enumerate() {
                let points = strip
                    .decoded
                    .iter()
                    .enumerate()
                    .map(|(k, d)| (k as f64, d.values.get(f).copied().unwrap_or(0.0) as f64))
                    .collect();
                let name = if rows.len() > 1 {
                    format!("{name} ({row_name})")
                } else {
                    name.clone()
                };
                let color = figures::category_color(f + r * names.len(), names.len() * rows.len());
                series.push(Series::new(name, points, color));
            }
        }
        return Ok(Figure::Lines {
            title: title.into(),
            x_label: format!("step ({})", col_headers.join(", ")),
            y_label: "decoded value".into(),
            series,
            log_y: false,
        });
    }
    // an output of several images (a pose in every class) gives a row per image
    let mut tiles = Vec::new();
    let mut row_headers = Vec::new();
    let (mut w, mut h, mut cols) = (1, 1, 1);
    for (name, strip) in rows {
        cols = strip.decoded.len().max(1);
        let columns = strip
            .decoded
            .iter()
            .map(Decoded::pictures)
            .collect::<Option<Vec<_>>>()
            .context("an output that is not a picture")?;
        let per_step = columns.first().map_or(0, |c| c.len());
        for k in 0..per_step {
            for column in &columns {
                let (tw, th, rgb) = column.get(k).context("outputs of different sizes")?;
                (w, h) = (*tw, *th);
                tiles.push(rgb.clone());
            }
            row_headers.push(if k == 0 { name.clone() } else { String::new() });
        }
    }
    let mut captions: Vec<String> = col_headers.to_vec();
    captions.resize(cols, String::new());
    captions.extend(row_headers);
    Ok(Figure::ImageGrid {
        title: title.into(),
        tile_w: w,
        tile_h: h,
        cols,
        tiles,
        captions,
    })
}

fn traversal_headers() -> Vec<String> {
    TRAVERSAL
        .iter()
        .map(|t| {
            if *t == 0.0 {
                "here".to_string()
            } else {
                format!("{t:+}s")
            }
        })
        .collect()
}

fn interpolation_headers(n: usize) -> Vec<String> {
    (0..n)
        .map(|k| match k {
            0 => "A".to_string(),
            k if k + 1 == n => "B".to_string(),
            k => format!("{:.2}", k as f32 / (n - 1) as f32),
        })
        .collect()
}

/// The local directions: a traversal per direction (rows), or for vectors a heat map of
/// how much each feature changes from -2s to +2s along each direction.
pub fn directions_figure(title: &str, dirs: &Directions) -> anyhow::Result<Figure> {
    let first = dirs
        .traversals
        .first()
        .and_then(|t| t.1.decoded.first())
        .context("no directions to draw")?;
    let full = format!("{title}: local directions (share of the change; s = samples' spread)");
    if first.is_vector() {
        let values = dirs
            .traversals
            .iter()
            .map(
                |(_, strip)| match (strip.decoded.first(), strip.decoded.last()) {
                    (Some(lo), Some(hi)) => hi
                        .values
                        .iter()
                        .zip(&lo.values)
                        .map(|(h, l)| (h - l) as f64)
                        .collect(),
                    _ => Vec::new(),
                },
            )
            .collect();
        return Ok(Figure::Heatmap {
            title: full,
            rows: (0..dirs.traversals.len())
                .map(|k| dirs.caption(k))
                .collect(),
            cols: first.names(),
            values,
        });
    }
    let rows: Vec<(String, &Strip)> = dirs
        .traversals
        .iter()
        .enumerate()
        .map(|(k, (_, s))| (dirs.caption(k), s))
        .collect();
    strips_figure(&full, &rows, &traversal_headers())
}

/// A single decoded output as a figure.
pub fn point_figure(title: &str, z: &[f32], decoded: &Decoded) -> anyhow::Result<Figure> {
    let at = z
        .iter()
        .map(|v| format!("{v:.3}"))
        .collect::<Vec<_>>()
        .join(", ");
    let title = format!("{title}: decoded at ({at})");
    Ok(match decoded.rgb() {
        Some((w, h, rgb)) => Figure::image(title, w, h, rgb),
        None => Figure::Heatmap {
            title,
            rows: vec!["decoded".into()],
            cols: decoded.names(),
            values: vec![decoded.values.iter().map(|v| *v as f64).collect()],
        },
    })
}

// ------------------------------------------------------------------ headless export

/// A navigation figure of `latent-latent export --figure`.
#[derive(Clone, Debug, PartialEq)]
pub enum NavFigure {
    /// `latent-map`: the held-out samples on their principal plane
    Map,
    /// `interpolation` (sample 0 to the sample farthest from it) or `interpolation:A:B`
    Interpolation(Option<(usize, usize)>),
    /// `directions` (at the samples' mean) or `directions:I` (at sample I)
    Directions(Option<usize>),
}

/// The names `--figure` takes for navigation figures.
pub const NAV_FIGURES: &str = "latent-map, interpolation[:A:B], directions[:I]";

impl NavFigure {
    /// None when `name` is not a navigation figure; an error when it is one, badly written.
    pub fn parse(name: &str) -> Option<anyhow::Result<Self>> {
        let (head, rest) = name.split_once(':').unwrap_or((name, ""));
        let index = |s: &str| {
            s.trim().parse::<usize>().map_err(|_| {
                anyhow!(BadArgument(format!(
                    "--figure {name}: `{s}` is not a sample index"
                )))
            })
        };
        Some(match (head, rest) {
            ("latent-map", "") => Ok(Self::Map),
            ("interpolation", "") => Ok(Self::Interpolation(None)),
            ("interpolation", pair) => match pair.split_once(':') {
                Some((a, b)) => {
                    index(a).and_then(|a| Ok(Self::Interpolation(Some((a, index(b)?)))))
                }
                None => Err(anyhow!(BadArgument(format!(
                    "--figure {name}: give interpolation:A:B, two sample indices"
                )))),
            },
            ("directions", "") => Ok(Self::Directions(None)),
            ("directions", i) => index(i).map(|i| Self::Directions(Some(i))),
            _ => return None,
        })
    }
}

fn refuse(text: String) -> anyhow::Error {
    anyhow!(BadArgument(text))
}

/// Write a navigation figure of `source` to `out`: `.png` or `.svg`, or `.wav` for the
/// sound of an interpolation or of the directions' traversals.
pub fn export(source: &dyn Explore, figure: &NavFigure, out: &Path) -> anyhow::Result<()> {
    let ext = out
        .extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let wav = match ext.as_str() {
        "png" | "svg" => false,
        "wav" if source.has_sound() && *figure != NavFigure::Map => true,
        "wav" if *figure == NavFigure::Map => {
            return Err(refuse(format!(
                "{}: the latent map is a figure (.png or .svg)",
                out.display()
            )));
        }
        "wav" => {
            return Err(refuse(format!(
                "{}: {} has no sound (export .png or .svg)",
                out.display(),
                source.title()
            )));
        }
        other => {
            return Err(refuse(format!(
                "{}: cannot export a navigation figure as .{other} (.png, .svg, or .wav for sound)",
                out.display()
            )));
        }
    };
    let samples = source.samples()?;
    samples.check(source.dims())?;
    let n = samples.latents.len();
    let title = source.title();
    let in_range = |i: usize| {
        if i < n {
            Ok(i)
        } else {
            Err(refuse(format!(
                "sample {i}: there are {n} samples (0..{})",
                n - 1
            )))
        }
    };
    match figure {
        NavFigure::Map => {
            let fig = map_figure(&title, &samples, &source.dim_names(), Projection::Pca, 0)?;
            figures::save(&fig, out)
        }
        NavFigure::Interpolation(pair) => {
            let (a, b) = match pair {
                Some((a, b)) => (in_range(*a)?, in_range(*b)?),
                None => (0, farthest_from(&samples, 0).unwrap_or(0)),
            };
            let interp = Interpolation::compute(source, &samples, a, b)?;
            if wav {
                let latents: Vec<Vec<f32>> = interp
                    .rows()
                    .iter()
                    .flat_map(|(_, s)| s.latents.clone())
                    .collect();
                write_sound(source, &latents, out)
            } else {
                let fig = strips_figure(
                    &format!(
                        "{title}: from {} (A) to {} (B)",
                        samples.label(a),
                        samples.label(b)
                    ),
                    &interp.rows(),
                    &interpolation_headers(INTERPOLATION_LEN),
                )?;
                figures::save(&fig, out)
            }
        }
        NavFigure::Directions(at) => {
            let z = match at {
                Some(i) => samples.latents[in_range(*i)?].clone(),
                None => Spread::of(&samples.latents)
                    .mean
                    .iter()
                    .map(|m| *m as f32)
                    .collect(),
            };
            let dirs = Directions::compute(source, &samples, &z)?;
            if wav {
                let latents: Vec<Vec<f32>> = dirs
                    .traversals
                    .iter()
                    .flat_map(|(_, s)| s.latents.clone())
                    .collect();
                write_sound(source, &latents, out)
            } else {
                figures::save(&directions_figure(&title, &dirs)?, out)
            }
        }
    }
}

fn write_sound(source: &dyn Explore, latents: &[Vec<f32>], out: &Path) -> anyhow::Result<()> {
    let sound = source
        .sound(latents)
        .ok_or_else(|| refuse(format!("{} has no sound", source.title())))??;
    crate::audio::wav::write_mono(out, &sound.samples, sound.rate)?;
    Ok(())
}

// ------------------------------------------------------------------ the panel

/// What a click on the map does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClickMode {
    Decode,
    PickA,
    PickB,
}

/// Work the panel runs off the UI thread; each result carries the request it answers, so a
/// late answer to an old request is dropped.
enum Done {
    Samples(u64, Result<(MapSamples, Duration), String>),
    Point(u64, Vec<f32>, Result<Decoded, String>),
    PathStrip(u64, Result<Strip, String>),
    Interpolation(u64, Result<Interpolation, String>),
    Directions(u64, Result<Directions, String>),
    Sound(Result<Sound, String>),
    Wrote(Result<PathBuf, String>),
}

#[derive(Default)]
struct Textures {
    point: Option<TextureHandle>,
    path: Option<TextureHandle>,
    interpolation: Vec<TextureHandle>,
    directions: Vec<TextureHandle>,
    /// set when a result arrives: the next `ui` makes its texture (it needs the context)
    dirty: [bool; 4],
}

const T_POINT: usize = 0;
const T_PATH: usize = 1;
const T_INTERP: usize = 2;
const T_DIRS: usize = 3;

/// The latent map and explorer of one tab. A tab calls [`ExplorePanel::set_source`] when
/// its model changes, [`ExplorePanel::logic`] every frame and [`ExplorePanel::ui`] to draw.
pub struct ExplorePanel {
    id: String,
    source: Option<Arc<dyn Explore>>,
    dim_names: Vec<String>,
    samples: Option<Arc<MapSamples>>,
    encode_time: Option<Duration>,
    status: String,
    map: LatentMap,
    colouring: usize,
    axes: (usize, usize),
    click_mode: ClickMode,
    point: Option<(Vec<f32>, Decoded)>,
    path_strip: Option<Strip>,
    pair: (Option<usize>, Option<usize>),
    interpolation: Option<Interpolation>,
    directions: Option<Directions>,
    /// the request each kind of result must answer
    requests: [u64; 5],
    next_request: u64,
    textures: Textures,
    export: PathField,
    work: Background<Done>,
}

const R_SAMPLES: usize = 0;
const R_POINT: usize = 1;
const R_PATH: usize = 2;
const R_INTERP: usize = 3;
const R_DIRS: usize = 4;

impl ExplorePanel {
    /// `id` keeps the panel's widgets apart from another tab's.
    pub fn new(id: &str) -> Self {
        Self {
            id: id.to_string(),
            source: None,
            dim_names: Vec::new(),
            samples: None,
            encode_time: None,
            status: "no model".into(),
            map: LatentMap::default(),
            colouring: 0,
            axes: (0, 1),
            click_mode: ClickMode::Decode,
            point: None,
            path_strip: None,
            pair: (None, None),
            interpolation: None,
            directions: None,
            requests: [0; 5],
            next_request: 1,
            textures: Textures::default(),
            export: PathField::new(format!("{id}_map.png")),
            work: Background::default(),
        }
    }

    /// The id the panel was made with.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// A new model (or none): its held-out samples are encoded on a background thread, and
    /// what was on show is decoded again by it when they arrive. The same source again does
    /// nothing.
    pub fn set_source(&mut self, source: Option<Arc<dyn Explore>>) {
        if let (Some(a), Some(b)) = (&self.source, &source)
            && Arc::ptr_eq(a, b)
        {
            return;
        }
        self.source = source.clone();
        let request = self.request(R_SAMPLES);
        let Some(source) = source else {
            self.samples = None;
            self.status = "no model".into();
            self.point = None;
            self.path_strip = None;
            self.interpolation = None;
            self.directions = None;
            self.pair = (None, None);
            self.map = LatentMap::default();
            return;
        };
        self.dim_names = source.dim_names();
        let (x, y) = self.axes;
        let d = source.dims();
        if x >= d || y >= d || x == y {
            self.axes = (0, 1.min(d.saturating_sub(1)));
        }
        self.status = "encoding the held-out samples…".into();
        self.work.run(move || {
            let started = Instant::now();
            let result = source
                .samples()
                .and_then(|s| s.check(source.dims()).map(|_| s))
                .map(|s| (s, started.elapsed()))
                .map_err(|e| format!("{e:#}"));
            Done::Samples(request, result)
        });
    }

    fn request(&mut self, kind: usize) -> u64 {
        let id = self.next_request;
        self.next_request += 1;
        self.requests[kind] = id;
        id
    }

    /// Collect the background work; call every frame.
    pub fn logic(&mut self, shared: &mut Shared) {
        for done in self.work.finished(shared) {
            match done {
                Done::Samples(r, result) if r == self.requests[R_SAMPLES] => match result {
                    Ok((samples, took)) => {
                        self.status = format!(
                            "{} held-out samples, encoded in {:.0} ms",
                            samples.latents.len(),
                            took.as_secs_f64() * 1e3
                        );
                        self.encode_time = Some(took);
                        self.colouring = self
                            .colouring
                            .min(samples.colourings.len().saturating_sub(1));
                        self.samples = Some(Arc::new(samples));
                        self.refit();
                        self.redo();
                    }
                    Err(e) => {
                        self.status = format!("no map: {e}");
                        shared.error(format!("latent map: {e}"));
                    }
                },
                Done::Point(r, z, result) if r == self.requests[R_POINT] => match result {
                    Ok(d) => {
                        self.point = Some((z, d));
                        self.textures.dirty[T_POINT] = true;
                    }
                    Err(e) => shared.error(format!("decoding failed: {e}")),
                },
                Done::PathStrip(r, result) if r == self.requests[R_PATH] => match result {
                    Ok(s) => {
                        self.path_strip = Some(s);
                        self.textures.dirty[T_PATH] = true;
                    }
                    Err(e) => shared.error(format!("decoding the path failed: {e}")),
                },
                Done::Interpolation(r, result) if r == self.requests[R_INTERP] => match result {
                    Ok(i) => {
                        self.interpolation = Some(i);
                        self.textures.dirty[T_INTERP] = true;
                    }
                    Err(e) => shared.error(format!("interpolation failed: {e}")),
                },
                Done::Directions(r, result) if r == self.requests[R_DIRS] => match result {
                    Ok(d) => {
                        self.directions = Some(d);
                        self.textures.dirty[T_DIRS] = true;
                    }
                    Err(e) => shared.error(format!("local directions failed: {e}")),
                },
                Done::Sound(result) => match result {
                    Ok(sound) => {
                        let controller = shared.audio.controller();
                        let rate = controller.sample_rate();
                        let samples = if rate == sound.rate {
                            sound.samples
                        } else {
                            crate::audio::dsp::resample_linear(&sound.samples, sound.rate, rate)
                        };
                        controller.play_clip(&samples);
                    }
                    Err(e) => shared.error(format!("sound failed: {e}")),
                },
                Done::Wrote(Ok(p)) => shared.info(format!("wrote {}", p.display())),
                Done::Wrote(Err(e)) => shared.error(e),
                // answers to requests made before a newer one
                _ => {}
            }
        }
    }

    /// Background work is running (the panel asks for frames itself while it does).
    pub fn busy(&self) -> bool {
        !self.work.is_empty()
    }

    // -------------------------------------------------------------- what tests read

    pub fn source(&self) -> Option<&Arc<dyn Explore>> {
        self.source.as_ref()
    }
    pub fn samples(&self) -> Option<&MapSamples> {
        self.samples.as_deref()
    }
    /// How long the last model took to encode its held-out samples.
    pub fn encode_time(&self) -> Option<Duration> {
        self.encode_time
    }
    pub fn status(&self) -> &str {
        &self.status
    }
    pub fn map(&self) -> &LatentMap {
        &self.map
    }
    /// The last decoded point: its latent and output.
    pub fn decoded(&self) -> Option<(&[f32], &Decoded)> {
        self.point.as_ref().map(|(z, d)| (z.as_slice(), d))
    }
    /// The strip decoded along the last drawn path.
    pub fn path_strip(&self) -> Option<&Strip> {
        self.path_strip.as_ref()
    }
    pub fn interpolation(&self) -> Option<&Interpolation> {
        self.interpolation.as_ref()
    }
    /// The local directions at the last decoded point.
    pub fn directions(&self) -> Option<&Directions> {
        self.directions.as_ref()
    }
    pub fn click_mode(&self) -> ClickMode {
        self.click_mode
    }

    /// Where the Export buttons write (what typing in the field does).
    pub fn set_export_path(&mut self, path: &Path) {
        self.export.text = path.display().to_string();
    }

    // -------------------------------------------------------------- what the widgets do

    pub fn set_projection(&mut self, projection: Projection) {
        if self.map.projection != projection {
            self.map.projection = projection;
            self.refit();
        }
    }

    pub fn set_colouring(&mut self, colouring: usize) {
        self.colouring = colouring;
        if let Some(samples) = &self.samples
            && let Some(c) = samples.colourings.get(colouring)
        {
            self.map.recolour(groups(c, samples.latents.len()));
        }
    }

    /// What a click at map coordinates `p` does in the current mode.
    pub fn click_at(&mut self, p: [f64; 2]) {
        match self.click_mode {
            ClickMode::Decode => {
                if let Some(MapEvent::Decode(z)) = self.map.click(p) {
                    self.decode_point(z);
                }
            }
            ClickMode::PickA | ClickMode::PickB => {
                let Some(i) = self.map.nearest(p) else { return };
                if self.click_mode == ClickMode::PickA {
                    self.pair.0 = Some(i);
                    self.click_mode = ClickMode::PickB;
                } else {
                    self.pair.1 = Some(i);
                    self.click_mode = ClickMode::Decode;
                }
                self.mark_pair();
                self.interpolate();
            }
        }
    }

    /// What a drawn path (map coordinates) does: decode the strip along it.
    pub fn draw_path(&mut self, path: Vec<[f64; 2]>) {
        if let Some(MapEvent::Strip(latents)) = self.map.finish_path(path) {
            self.decode_strip(latents);
        }
    }

    /// Interpolate between samples `a` and `b`.
    pub fn pick_pair(&mut self, a: usize, b: usize) {
        self.pair = (Some(a), Some(b));
        self.mark_pair();
        self.interpolate();
    }

    fn decode_point(&mut self, z: Vec<f32>) {
        let Some(source) = self.source.clone() else {
            return;
        };
        let r = self.request(R_POINT);
        let zc = z.clone();
        let s = source.clone();
        self.work
            .run(move || Done::Point(r, zc.clone(), s.decode(&zc).map_err(|e| format!("{e:#}"))));
        // the directions at the new point, beside it
        let Some(samples) = self.samples.clone() else {
            return;
        };
        let r = self.request(R_DIRS);
        self.work.run(move || {
            Done::Directions(
                r,
                Directions::compute(source.as_ref(), &samples, &z).map_err(|e| format!("{e:#}")),
            )
        });
    }

    fn decode_strip(&mut self, latents: Vec<Vec<f32>>) {
        let Some(source) = self.source.clone() else {
            return;
        };
        let r = self.request(R_PATH);
        self.work.run(move || {
            Done::PathStrip(
                r,
                Strip::decode(source.as_ref(), latents).map_err(|e| format!("{e:#}")),
            )
        });
    }

    fn interpolate(&mut self) {
        let (Some(a), Some(b)) = self.pair else {
            return;
        };
        let (Some(source), Some(samples)) = (self.source.clone(), self.samples.clone()) else {
            return;
        };
        let r = self.request(R_INTERP);
        self.work.run(move || {
            Done::Interpolation(
                r,
                Interpolation::compute(source.as_ref(), &samples, a, b)
                    .map_err(|e| format!("{e:#}")),
            )
        });
    }

    fn mark_pair(&mut self) {
        self.map.marks.clear();
        let coords = self.map.coords();
        let mut marks = Vec::new();
        for (name, i) in [("A", self.pair.0), ("B", self.pair.1)] {
            if let Some(p) = i.and_then(|i| coords.get(i)) {
                marks.push((name.to_string(), *p));
            }
        }
        self.map.marks = marks;
    }

    /// Fit the map's plane and colours to the samples again.
    fn refit(&mut self) {
        let Some(samples) = self.samples.clone() else {
            return;
        };
        let n = samples.latents.len();
        let groups = samples
            .colourings
            .get(self.colouring)
            .map(|c| groups(c, n))
            .unwrap_or_else(|| {
                vec![Group {
                    name: "samples".into(),
                    color: Color32::from_rgb(0, 114, 178),
                    members: (0..n).collect(),
                }]
            });
        self.map.axis_names = axis_names(self.map.projection, &self.dim_names);
        self.map.set_groups(&samples.latents, groups);
        // what was shown stays; its markers move to where its latents fall on the new plane
        if let Some(plane) = self.map.plane().cloned() {
            self.map.picked = self.point.as_ref().map(|(z, _)| plane.project(z));
            self.map.path = self
                .path_strip
                .as_ref()
                .map(|s| s.latents.iter().map(|z| plane.project(z)).collect())
                .unwrap_or_default();
        }
        self.mark_pair();
    }

    /// A new model decodes again what the old one showed.
    fn redo(&mut self) {
        if let Some((z, _)) = self.point.clone() {
            self.decode_point(z);
        }
        if let Some(s) = self.path_strip.clone() {
            self.decode_strip(s.latents);
        }
        let n = self.samples.as_ref().map_or(0, |s| s.latents.len());
        if self.pair.0.is_some_and(|a| a >= n) || self.pair.1.is_some_and(|b| b >= n) {
            self.pair = (None, None);
            self.interpolation = None;
            self.mark_pair();
        }
        self.interpolate();
    }

    fn play(&mut self, latents: Vec<Vec<f32>>) {
        let Some(source) = self.source.clone() else {
            return;
        };
        self.work.run(move || {
            Done::Sound(match source.sound(&latents) {
                Some(r) => r.map_err(|e| format!("{e:#}")),
                None => Err("this model has no sound".into()),
            })
        });
    }

    // -------------------------------------------------------------- drawing

    /// Draw the panel: the map with its controls, the decoded point, the path's strip, the
    /// interpolation, the local directions and the export row.
    pub fn ui(&mut self, ui: &mut egui::Ui, shared: &mut Shared) {
        if self.busy() {
            ui.ctx().request_repaint_after(Duration::from_millis(30));
        }
        self.make_textures(ui.ctx());
        ui.horizontal(|ui| {
            ui.strong("Navigate");
            ui.label(egui::RichText::new(&self.status).weak());
            if self.busy() {
                ui.spinner();
            }
        });
        let Some(samples) = self.samples.clone() else {
            return;
        };
        self.controls_ui(ui, &samples);
        ui.columns(2, |cols| {
            if let Some(input) = self.map.ui(&mut cols[0], &format!("{}_map", self.id)) {
                match input {
                    MapInput::Click(p) => self.click_at(p),
                    MapInput::Path(path) => self.draw_path(path),
                }
            }
            self.point_ui(&mut cols[1]);
        });
        self.path_ui(ui);
        self.interpolation_ui(ui, &samples);
        self.directions_ui(ui);
        self.export_ui(ui, shared);
    }

    fn controls_ui(&mut self, ui: &mut egui::Ui, samples: &MapSamples) {
        ui.horizontal_wrapped(|ui| {
            let mut pca = self.map.projection == Projection::Pca;
            ui.label("plane:");
            let changed = ui.radio_value(&mut pca, true, "PCA").changed()
                | ui.radio_value(&mut pca, false, "two axes").changed();
            let (mut x, mut y) = self.axes;
            let mut axes_changed = false;
            if !pca {
                let names = self.dim_names.clone();
                for (label, value) in [("x", &mut x), ("y", &mut y)] {
                    egui::ComboBox::new(format!("{}_axis_{label}", self.id), label)
                        .selected_text(names.get(*value).cloned().unwrap_or_default())
                        .show_ui(ui, |ui| {
                            for (i, name) in names.iter().enumerate() {
                                axes_changed |= ui.selectable_value(value, i, name).changed();
                            }
                        });
                }
            }
            if changed || axes_changed {
                if x != y {
                    self.axes = (x, y);
                }
                let (x, y) = self.axes;
                self.set_projection(if pca {
                    Projection::Pca
                } else {
                    Projection::Axes { x, y }
                });
            }
            ui.separator();
            if samples.colourings.len() > 1 {
                let mut colouring = self.colouring;
                egui::ComboBox::new(format!("{}_colouring", self.id), "colour")
                    .selected_text(
                        samples
                            .colourings
                            .get(colouring)
                            .map(|c| c.name.as_str())
                            .unwrap_or(""),
                    )
                    .show_ui(ui, |ui| {
                        for (i, c) in samples.colourings.iter().enumerate() {
                            ui.selectable_value(&mut colouring, i, &c.name);
                        }
                    });
                if colouring != self.colouring {
                    self.set_colouring(colouring);
                }
                ui.separator();
            }
            ui.label("a click:");
            for (mode, text, hover) in [
                (
                    ClickMode::Decode,
                    "decodes",
                    "a click decodes the latent under the pointer; a drag draws a path",
                ),
                (
                    ClickMode::PickA,
                    "picks A",
                    "a click picks the nearest sample as the interpolation's start",
                ),
                (
                    ClickMode::PickB,
                    "picks B",
                    "a click picks the nearest sample as the interpolation's end",
                ),
            ] {
                ui.selectable_value(&mut self.click_mode, mode, text)
                    .on_hover_text(hover);
            }
        });
    }

    /// A picture at most `max` points, whole-pixel scaled where it fits, and widened (not
    /// taller) until each of its `cols` columns is at least 40 points wide: a spectrogram of
    /// five frames per note stays readable.
    fn picture(
        ui: &mut egui::Ui,
        tex: &TextureHandle,
        cols: usize,
        max: egui::Vec2,
    ) -> egui::Response {
        let [w, h] = tex.size();
        let (w, h) = (w.max(1) as f32, h.max(1) as f32);
        let scale = (max.x / w).min(max.y / h);
        let scale = if scale >= 1.0 { scale.floor() } else { scale };
        let least = if cols > 1 {
            40.0 * cols as f32
        } else {
            (h * scale / 3.0).max(40.0)
        };
        let wide = (w * scale).max(least).min(max.x);
        ui.add(
            egui::Image::new(tex)
                .maintain_aspect_ratio(false)
                .fit_to_exact_size(egui::vec2(wide, h * scale)),
        )
    }

    /// Height for a picture of `rows` stacked images (a pose drawn in every class).
    fn picture_height(rows: usize) -> f32 {
        if rows > 1 {
            (32.0 * rows as f32).min(360.0)
        } else {
            130.0
        }
    }

    fn point_ui(&mut self, ui: &mut egui::Ui) {
        let Some((z, decoded)) = self.point.clone() else {
            ui.label("Click the map to decode a point; drag to draw a path.");
            return;
        };
        let at: Vec<String> = z.iter().map(|v| format!("{v:.3}")).collect();
        ui.label(format!("decoded at ({})", at.join(", ")));
        let painted = self
            .source
            .as_ref()
            .is_some_and(|s| decoded.is_vector() && s.paint(ui, &decoded));
        if !painted {
            match &self.textures.point {
                Some(tex) => {
                    let max = egui::vec2(ui.available_width(), 200.0);
                    Self::picture(ui, tex, decoded.picture_count(), max);
                }
                None if decoded.is_vector() => self.vector_ui(ui, &decoded),
                None => {}
            }
        }
        if self.source.as_ref().is_some_and(|s| s.has_sound())
            && ui.horizontal(|ui| ui.button("Play").clicked()).inner
        {
            self.play(vec![z]);
        }
    }

    fn vector_ui(&self, ui: &mut egui::Ui, decoded: &Decoded) {
        let names = decoded.names();
        let bars = decoded
            .values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                egui_plot::Bar::new(i as f64, *v as f64)
                    .name(names.get(i).cloned().unwrap_or_default())
                    .width(0.7)
            })
            .collect();
        egui_plot::Plot::new(format!("{}_vector", self.id))
            .height(160.0)
            .allow_drag(false)
            .allow_zoom(false)
            .allow_scroll(false)
            .x_axis_formatter(move |m, _| {
                let i = m.value.round();
                if (m.value - i).abs() < 1e-6 && i >= 0.0 {
                    names.get(i as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .show(ui, |plot| {
                plot.bar_chart(egui_plot::BarChart::new("decoded", bars))
            });
    }

    /// Rows of strips: a picture per row, or for vectors one small plot per row.
    fn strip_rows_ui(
        &self,
        ui: &mut egui::Ui,
        key: &str,
        rows: &[(String, &Strip)],
        textures: &[TextureHandle],
        playable: bool,
    ) -> Option<usize> {
        let mut play = None;
        for (k, (name, strip)) in rows.iter().enumerate() {
            ui.horizontal(|ui| {
                ui.label(name);
                if playable && ui.small_button("Play").clicked() {
                    play = Some(k);
                }
            });
            match textures.get(k) {
                Some(tex) => {
                    let rows = strip.decoded.first().map_or(1, Decoded::picture_count);
                    let max = egui::vec2(ui.available_width(), Self::picture_height(rows));
                    Self::picture(ui, tex, strip.decoded.len(), max);
                }
                None => self.vector_strip_ui(ui, &format!("{key}_{k}"), strip),
            }
        }
        play
    }

    fn vector_strip_ui(&self, ui: &mut egui::Ui, key: &str, strip: &Strip) {
        let Some(first) = strip.decoded.first() else {
            return;
        };
        let names = first.names();
        egui_plot::Plot::new(format!("{}_{key}", self.id))
            .height(150.0)
            .allow_drag(false)
            .allow_zoom(false)
            .allow_scroll(false)
            .legend(
                egui_plot::Legend::default()
                    .text_style(egui::TextStyle::Small)
                    .background_alpha(0.5),
            )
            .show(ui, |plot| {
                for (f, name) in names.iter().enumerate() {
                    let pts: Vec<[f64; 2]> = strip
                        .decoded
                        .iter()
                        .enumerate()
                        .map(|(k, d)| [k as f64, d.values.get(f).copied().unwrap_or(0.0) as f64])
                        .collect();
                    plot.line(egui_plot::Line::new(
                        name.clone(),
                        egui_plot::PlotPoints::from(pts),
                    ));
                }
            });
    }

    fn path_ui(&mut self, ui: &mut egui::Ui) {
        let Some(strip) = self.path_strip.clone() else {
            return;
        };
        ui.separator();
        let playable = self.source.as_ref().is_some_and(|s| s.has_sound());
        let textures: Vec<TextureHandle> = self.textures.path.iter().cloned().collect();
        let rows = [(format!("along the drawn path ({STRIP_LEN} steps)"), &strip)];
        if self
            .strip_rows_ui(ui, "path", &rows, &textures, playable)
            .is_some()
        {
            self.play(strip.latents.clone());
        }
    }

    fn interpolation_ui(&mut self, ui: &mut egui::Ui, samples: &MapSamples) {
        ui.separator();
        ui.horizontal_wrapped(|ui| {
            ui.label("Interpolation:");
            let name =
                |i: Option<usize>| i.map_or("(pick on the map)".into(), |i| samples.label(i));
            ui.label(format!(
                "A {}  to  B {}",
                name(self.pair.0),
                name(self.pair.1)
            ));
            if ui
                .button("Pick A and B")
                .on_hover_text("the next two clicks on the map pick the nearest samples")
                .clicked()
            {
                self.click_mode = ClickMode::PickA;
            }
        });
        let Some(interp) = self.interpolation.clone() else {
            return;
        };
        let playable = self.source.as_ref().is_some_and(|s| s.has_sound());
        let rows = interp.rows();
        let textures = self.textures.interpolation.clone();
        if let Some(k) = self.strip_rows_ui(ui, "interp", &rows, &textures, playable) {
            self.play(rows[k].1.latents.clone());
        }
    }

    fn directions_ui(&mut self, ui: &mut egui::Ui) {
        let Some(dirs) = self.directions.clone() else {
            return;
        };
        ui.separator();
        ui.label(format!(
            "Local directions at the decoded point: where the output changes most (steps of s, the samples' spread along each: {})",
            traversal_headers().join(" ")
        ));
        let playable = self.source.as_ref().is_some_and(|s| s.has_sound());
        let rows: Vec<(String, &Strip)> = dirs
            .traversals
            .iter()
            .enumerate()
            .map(|(k, (_, s))| (dirs.caption(k), s))
            .collect();
        let textures = self.textures.directions.clone();
        if let Some(k) = self.strip_rows_ui(ui, "dirs", &rows, &textures, playable) {
            self.play(rows[k].1.latents.clone());
        }
    }

    fn export_ui(&mut self, ui: &mut egui::Ui, shared: &mut Shared) {
        ui.separator();
        let actions = [
            ("Map", self.samples.is_some()),
            ("Point", self.point.is_some()),
            ("Path", self.path_strip.is_some()),
            ("Interpolation", self.interpolation.is_some()),
            ("Directions", self.directions.is_some()),
        ];
        let filters: &[(&str, &[&str])] =
            &[("PNG", &["png"]), ("SVG", &["svg"]), ("WAV", &["wav"])];
        let chosen = self.export.row(
            ui,
            "Export",
            "figure.png, .svg or .wav",
            FileRequest::Save,
            filters,
            &actions,
        );
        if let Some((k, path)) = chosen {
            self.export_view(k, path, shared);
        }
    }

    /// Write what the panel shows: 0 map, 1 point, 2 path, 3 interpolation, 4 directions.
    fn export_view(&mut self, what: usize, path: PathBuf, shared: &mut Shared) {
        let Some(source) = self.source.clone() else {
            return;
        };
        let ext = path
            .extension()
            .map(|e| e.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        let wav = ext == "wav";
        if !matches!(ext.as_str(), "png" | "svg" | "wav") {
            return shared.error(format!("{}: export .png, .svg or .wav", path.display()));
        }
        if wav && (what == 0 || !source.has_sound()) {
            return shared.error(format!(
                "{}: {} (export .png or .svg)",
                path.display(),
                if what == 0 {
                    "the map is a figure"
                } else {
                    "this model has no sound"
                }
            ));
        }
        let title = source.title();
        let (samples, projection, colouring, dim_names) = (
            self.samples.clone(),
            self.map.projection,
            self.colouring,
            self.dim_names.clone(),
        );
        let (point, strip, interp, dirs) = (
            self.point.clone(),
            self.path_strip.clone(),
            self.interpolation.clone(),
            self.directions.clone(),
        );
        self.work.run(move || {
            let result = (|| -> anyhow::Result<()> {
                let latents: Vec<Vec<f32>> = match what {
                    1 => point.iter().map(|p| p.0.clone()).collect(),
                    2 => strip.iter().flat_map(|s| s.latents.clone()).collect(),
                    3 => interp
                        .iter()
                        .flat_map(|i| {
                            i.rows()
                                .into_iter()
                                .flat_map(|r| r.1.latents.clone())
                                .collect::<Vec<_>>()
                        })
                        .collect(),
                    _ => dirs
                        .iter()
                        .flat_map(|d| {
                            d.traversals
                                .iter()
                                .flat_map(|t| t.1.latents.clone())
                                .collect::<Vec<_>>()
                        })
                        .collect(),
                };
                if wav {
                    return write_sound(source.as_ref(), &latents, &path);
                }
                let fig = match what {
                    0 => {
                        let samples = samples.context("no samples")?;
                        map_figure(&title, &samples, &dim_names, projection, colouring)?
                    }
                    1 => {
                        let (z, d) = point.context("no decoded point")?;
                        point_figure(&title, &z, &d)?
                    }
                    2 => {
                        let s = strip.context("no path")?;
                        let headers = interpolation_headers(s.latents.len())
                            .into_iter()
                            .map(|h| h.replace('A', "start").replace('B', "end"))
                            .collect::<Vec<_>>();
                        strips_figure(
                            &format!("{title}: decoded along a path on the latent map"),
                            &[("path".into(), &s)],
                            &headers,
                        )?
                    }
                    3 => {
                        let i = interp.context("no interpolation")?;
                        let samples = samples.context("no samples")?;
                        strips_figure(
                            &format!(
                                "{title}: from {} (A) to {} (B)",
                                samples.label(i.a),
                                samples.label(i.b)
                            ),
                            &i.rows(),
                            &interpolation_headers(i.linear.latents.len()),
                        )?
                    }
                    _ => directions_figure(&title, &dirs.context("no directions")?)?,
                };
                figures::save(&fig, &path)
            })();
            Done::Wrote(result.map(|_| path).map_err(|e| format!("{e:#}")))
        });
    }

    /// Textures of results that arrived since the last frame.
    fn make_textures(&mut self, ctx: &egui::Context) {
        let make = |name: String, rgb: Option<(usize, usize, Vec<u8>)>| {
            rgb.map(|(w, h, rgb)| {
                ctx.load_texture(
                    name,
                    ColorImage::from_rgb([w, h], &rgb),
                    TextureOptions::NEAREST,
                )
            })
        };
        let dirty = std::mem::take(&mut self.textures.dirty);
        if dirty[T_POINT] {
            self.textures.point = make(
                format!("{}_point", self.id),
                self.point.as_ref().and_then(|p| p.1.rgb()),
            );
        }
        if dirty[T_PATH] {
            self.textures.path = make(
                format!("{}_path", self.id),
                self.path_strip.as_ref().and_then(Strip::rgb),
            );
        }
        if dirty[T_INTERP] {
            self.textures.interpolation = self
                .interpolation
                .iter()
                .flat_map(|i| i.rows())
                .enumerate()
                .filter_map(|(k, (_, s))| make(format!("{}_interp{k}", self.id), s.rgb()))
                .collect();
        }
        if dirty[T_DIRS] {
            self.textures.directions = self
                .directions
                .iter()
                .flat_map(|d| d.traversals.iter())
                .enumerate()
                .filter_map(|(k, (_, s))| make(format!("{}_dir{k}", self.id), s.rgb()))
                .collect();
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A decoder you can check by hand: a 2x2 grey image of (z0, z1, z0 + z1, 0.5).
    struct Toy;

    impl Explore for Toy {
        fn title(&self) -> String {
            "toy".into()
        }
        fn dims(&self) -> usize {
            3
        }
        fn samples(&self) -> anyhow::Result<MapSamples> {
            let latents: Vec<Vec<f32>> = (0..40)
                .map(|i| {
                    let t = i as f32 / 40.0;
                    vec![t, 1.0 - t, 0.1 * (i % 3) as f32]
                })
                .collect();
            Ok(MapSamples {
                colourings: vec![
                    Colouring {
                        name: "parity".into(),
                        values: ColourValues::Categories {
                            names: vec!["even".into(), "odd".into()],
                            of: (0..40).map(|i| i % 2).collect(),
                        },
                    },
                    Colouring {
                        name: "t".into(),
                        values: ColourValues::Continuous((0..40).map(|i| i as f32).collect()),
                    },
                ],
                labels: (0..40).map(|i| format!("#{i}")).collect(),
                latents,
            })
        }
        fn decode(&self, z: &[f32]) -> anyhow::Result<Decoded> {
            Ok(Decoded {
                values: vec![z[0], z[1], z[0] + z[1], 0.5],
                output: Output::Images {
                    count: 1,
                    channels: 1,
                    height: 2,
                    width: 2,
                    ink: false,
                },
            })
        }
        fn prior_path(&self, a: &[f32], b: &[f32], n: usize) -> Option<Vec<Vec<f32>>> {
            Some(latent_map::interpolate(b, a, n).into_iter().rev().collect())
        }
    }

    #[test]
    fn continuous_colours_cover_every_sample_once_in_order() {
        let s = Toy.samples().unwrap();
        let g = groups(&s.colourings[1], 40);
        assert_eq!(g.len(), CONTINUOUS_BINS);
        let mut all: Vec<usize> = g.iter().flat_map(|g| g.members.clone()).collect();
        all.sort();
        assert_eq!(all, (0..40).collect::<Vec<_>>());
        // bins follow the value: every member of a bin is below every member of the next
        for w in g.windows(2) {
            let max = w[0].members.iter().max().unwrap();
            let min = w[1].members.iter().min().unwrap();
            assert!(max < min);
        }
    }

    #[test]
    fn interpolation_and_directions_of_a_known_decoder() {
        let s = Toy.samples().unwrap();
        s.check(3).unwrap();
        let i = Interpolation::compute(&Toy, &s, 0, 39).unwrap();
        assert_eq!(i.linear.latents[0], s.latents[0]);
        assert_eq!(i.linear.latents[INTERPOLATION_LEN - 1], s.latents[39]);
        assert_eq!(i.linear.decoded[0], Toy.decode(&s.latents[0]).unwrap());
        let prior = &i.prior.as_ref().unwrap().1;
        assert_eq!(prior.latents.len(), INTERPOLATION_LEN);
        // J^T J = [[2, 1, 0], [1, 2, 0], [0, 0, 0]]: singular values sqrt(3) along (1, 1, 0),
        // 1 along (1, -1, 0), and none along z2, which the decoder ignores
        let d = Directions::compute(&Toy, &s, &[0.2, 0.3, 0.0]).unwrap();
        assert_eq!(d.list.len(), 3);
        assert!(
            (d.list[0].singular_value - 3f64.sqrt()).abs() < 1e-3,
            "{:?}",
            d.list
        );
        assert!((d.list[1].singular_value - 1.0).abs() < 1e-3);
        assert!(d.list[2].singular_value < 1e-3);
        assert_eq!(d.traversals.len(), SHOWN_DIRECTIONS);
        assert_eq!(d.traversals[0].1.latents[2], vec![0.2, 0.3, 0.0]);
    }

    #[test]
    fn figures_of_images_have_a_tile_per_step() {
        let s = Toy.samples().unwrap();
        let i = Interpolation::compute(&Toy, &s, 0, 39).unwrap();
        let Figure::ImageGrid {
            tiles,
            cols,
            captions,
            ..
        } = strips_figure("t", &i.rows(), &interpolation_headers(INTERPOLATION_LEN)).unwrap()
        else {
            panic!("not a grid")
        };
        assert_eq!(
            (tiles.len(), cols),
            (2 * INTERPOLATION_LEN, INTERPOLATION_LEN)
        );
        assert_eq!(captions.len(), INTERPOLATION_LEN + 2);
        let Figure::Scatter { series, .. } =
            map_figure("t", &s, &Toy.dim_names(), Projection::Pca, 0).unwrap()
        else {
            panic!("not a scatter")
        };
        assert_eq!(series.iter().map(|s| s.points.len()).sum::<usize>(), 40);
    }

    #[test]
    fn slerp_keeps_the_norm_between_the_ends_and_hits_them() {
        let (a, b) = ([2.0f32, 0.0, 0.0], [0.0f32, 2.0, 0.0]);
        let path = slerp_path(&a, &b, 5);
        assert_eq!(path[0], a.to_vec());
        assert_eq!(path[4], b.to_vec());
        for z in &path {
            let n = z.iter().map(|v| v * v).sum::<f32>().sqrt();
            assert!((n - 2.0).abs() < 1e-5, "{z:?}");
        }
        // the midpoint is on the bisector, not the chord's middle (norm sqrt 2)
        assert!((path[2][0] - 2f32.sqrt()).abs() < 1e-5);
    }

    #[test]
    fn navigation_figure_names_parse() {
        assert_eq!(
            NavFigure::parse("latent-map").unwrap().unwrap(),
            NavFigure::Map
        );
        assert_eq!(
            NavFigure::parse("interpolation:3:7").unwrap().unwrap(),
            NavFigure::Interpolation(Some((3, 7)))
        );
        assert_eq!(
            NavFigure::parse("directions:2").unwrap().unwrap(),
            NavFigure::Directions(Some(2))
        );
        assert!(NavFigure::parse("interpolation:x").unwrap().is_err());
        assert!(NavFigure::parse("traversal").is_none());
    }
}
