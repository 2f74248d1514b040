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
use super::{Background, FileRequest, HostedLab, PathField, Shared};
use crate::cli::CliError;
use crate::error::BadArgument;
use crate::figures::{self, Figure, Series};
use crate::nn::checkpoint::Checkpointed;

mod compute;
mod export;
mod output;
mod panel;
#[cfg(test)]
mod tests;

pub use compute::*;
pub use export::*;
use output::*;
pub use panel::*;

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

/// What the figures' titles call a model ("sps-music (fast)"); a family's lab on the map
/// ([`LabSource`]) is called by its family and preset.
pub trait Titled {
    fn title(&self) -> String;
}

/// A lab as the explorer sees it. Every method may be called from a background thread.
pub trait Explore: Titled + Send + Sync {
    /// Length of a latent.
    fn dims(&self) -> usize;
    /// Names of the latent's dimensions, for the axis pickers: `z1`, `z2`, ..., each with what
    /// it stands for ([`Explore::dim_role`]) where the model says.
    fn dim_names(&self) -> Vec<String> {
        (0..self.dims())
            .map(|i| match self.dim_role(i) {
                Some(role) => format!("z{} ({role})", i + 1),
                None => format!("z{}", i + 1),
            })
            .collect()
    }
    /// What dimension `i` of the latent stands for ("pitch"), where the model says.
    fn dim_role(&self, _i: usize) -> Option<&'static str> {
        None
    }
    /// The held-out samples, encoded (a few hundred: this runs on every new model).
    fn samples(&self) -> anyhow::Result<MapSamples>;
    /// Decode one latent of [`Explore::dims`] values ([`Explore::decode`] checks the length).
    fn decode_latent(&self, z: &[f32]) -> anyhow::Result<Decoded>;
    /// Decode one latent, exactly as `latent-lab decode` does a one-row `.npy`; one of the
    /// wrong length is an error.
    fn decode(&self, z: &[f32]) -> anyhow::Result<Decoded> {
        ensure!(z.len() == self.dims(), "a latent of {} values", z.len());
        self.decode_latent(z)
    }
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

/// A family's lab on the map, shared with the tab that shows it: each family implements
/// [`Explore`] for its own `LabSource<Lab>`.
pub struct LabSource<L> {
    pub lab: Arc<L>,
}

impl<L: HostedLab> Titled for LabSource<L> {
    fn title(&self) -> String {
        let meta = self.lab.meta();
        format!("{} ({})", meta.family, meta.preset)
    }
}

impl<L> LabSource<L>
where
    Self: Explore + 'static,
{
    /// The explorer's view of a lab.
    pub fn of(lab: Arc<L>) -> Arc<dyn Explore> {
        Arc::new(Self { lab })
    }

    /// The explorer's view of a checkpoint, for `latent-lab export`.
    pub fn open(path: &Path) -> Result<Arc<dyn Explore>, CliError>
    where
        L: Checkpointed,
    {
        Ok(Self::of(Arc::new(L::load_file(path)?)))
    }
}

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
    path_between(a, b, n, |t| {
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
}

/// `n` latents from `a` to `b`, both ends exactly, the ones between made by `between(t)` at
/// `t` evenly spaced in (0, 1).
pub fn path_between(
    a: &[f32],
    b: &[f32],
    n: usize,
    between: impl Fn(f64) -> Vec<f32>,
) -> Vec<Vec<f32>> {
    (0..n)
        .map(|i| {
            if i == 0 {
                a.to_vec()
            } else if i + 1 == n {
                b.to_vec()
            } else {
                between(i as f64 / (n - 1) as f64)
            }
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
pub(super) fn num(v: f32) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}
