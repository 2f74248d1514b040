//! The V3 autoencoder: a per-domain encoder that splits each fragment's code into a content
//! branch, quantised by a VQ codebook (EMA updates, k-means initialisation, dead-code restart),
//! and a continuous style branch; a decoder that rebuilds the fragment from both.
//!
//! The official code (wu et al., model/modules/*.py) uses convolutional ResNets; here both
//! halves are MLPs with the same heads (`linear_1` splitting into content and style, `linear_c`,
//! `linear_s`, GELU), which train in minutes on a CPU. The notes encoder first averages groups
//! of `pool` neighbouring frames.

use candle_core::{D, DType, Device, Module, Result, Tensor, Var};
use candle_nn::{Linear, VarBuilder, VarMap};
use rand::Rng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use super::data::Domain;
use crate::nn::{Conv2d, HeightConv, WeightInit, linear_init};

/// Model sizes and codebook settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    pub domain: Domain,
    /// width of the hidden layers of encoder and decoder
    pub hidden: usize,
    pub content_dim: usize,
    pub style_dim: usize,
    /// codebook size (atoms)
    pub atoms: usize,
    /// the encoder averages this many neighbouring columns (frames) first
    pub pool: usize,
    /// EMA decay of the codebook's statistics
    pub vq_decay: f64,
    /// an atom whose EMA usage (fragments per batch) falls below this is restarted
    pub dead_code_threshold: f64,
    /// when > 0, the decoder draws a fragment as a sum of this many outer products of a
    /// column profile (channels x height) and a row profile (width): a note as spectra times
    /// envelopes, at a fraction of the cost of every pixel from the last layer
    #[serde(default)]
    pub rank: usize,
    /// when > 0 (notes), the encoder also sees this many cepstral coefficients per pooled
    /// frame: the magnitude of the Fourier transform of the log spectrum along frequency, whose
    /// peak sits at the quefrency of the harmonic spacing, i.e. the pitch, whatever the
    /// instrument's spectral envelope (a fixed transform, not trained)
    #[serde(default)]
    pub cepstrum: usize,
    /// first quefrency of the cepstral features (cycles over the 512 bins) and the step between
    /// them; fractional steps resolve neighbouring semitones (C4 sits at 30.6, B4 at 16.2)
    #[serde(default = "default_cepstrum_start")]
    pub cepstrum_start: f32,
    #[serde(default = "default_cepstrum_step")]
    pub cepstrum_step: f32,
    /// the content branch has a trunk of its own that reads a view of the fragment in which
    /// the style's simplest cue is normalised away: the unit-norm cepstrum for notes (with
    /// `cepstrum`), the unit-norm ink map (darkness, colour averaged out) for digits; the style
    /// trunk reads the fragment itself. Content then has one description for every style,
    /// rather than a mapping per style, which the V3 constraints alone would allow
    #[serde(default)]
    pub content_trunk: bool,
    /// when > 0, convolutional trunks with this many channels in their first layer (the
    /// official encoders are convolutional): digits read the ink map (content) and the coloured
    /// image (style, averaged over the page after the convolutions); notes read the spectrum on
    /// a log-frequency axis, where a change of pitch is a shift, through convolutions along
    /// frequency (content), the style trunk being the MLP
    #[serde(default)]
    pub conv: usize,
    /// the decoder keeps content and style apart, as the data are made: a note's log spectrum
    /// is the content's spectral pattern (the pitch's partials, the same all along the note)
    /// plus the style's time-frequency envelope (an instrument's formants and how it sounds
    /// over time); a digit is the content's ink map in the style's colour. The decoder then
    /// cannot draw one atom as different symbols in different styles
    #[serde(default)]
    pub factored_decoder: bool,
    /// digits with `conv`: the style trunk reads the ink's colour alone, a fixed view of the
    /// fragment ([`ink_colour`]), rather than convolutions of the page, whose mean also follows
    /// how much ink a writer puts down (stroke width, size), which the V3 style constraints
    /// would otherwise keep as part of every row's style
    #[serde(default)]
    pub colour_style: bool,
    /// notes with `conv`: the style trunk also reads the note's timbre, frame by frame: the
    /// log-frequency spectrum of each frame through two convolutions along frequency, then
    /// their maximum over frequency, which is the same wherever the partials sit (whatever
    /// the pitch), beside the octave-band energies
    #[serde(default)]
    pub timbre_conv: bool,
    /// notes with `timbre_conv`: how many equal spans of frames the timbre convolution reads
    /// (a span's spectrum is the mean over its frames)
    #[serde(default = "default_timbre_spans")]
    pub timbre_spans: usize,
    /// notes with `conv`: the style trunk reads the octave-band energies frame by frame. With
    /// `timbre_conv` and this off, it reads the timbre alone, which no transposition changes
    #[serde(default = "default_true")]
    pub style_bands: bool,
    /// notes with `conv`: the style trunk is linear (its layers without activations), a
    /// projection of the style view. The V3 style terms then look for the directions in which
    /// samples differ and their fragments agree, like a discriminant analysis with the
    /// samples as classes; an MLP trunk can meet the hinge's ratio by spreading the samples
    /// of a few styles far apart instead (models/README.md)
    #[serde(default)]
    pub style_linear: bool,
    /// notes with `factored_decoder`: hidden units of a small MLP on content and style
    /// together whose spectrum is added to the pattern and the envelope: what an instrument
    /// does differently at one pitch (another sample of the SoundFont, say), which neither
    /// half can draw alone. 0 = none
    #[serde(default)]
    pub mix_hidden: usize,
    /// the style latent is standardised per dimension: over the batch in training, with the
    /// running mean and spread (`stats.style_*`) in use. No dimension can then meet the V3
    /// style ratio by throwing a few samples far out; every dimension must vary across
    /// samples more than within them, which is what tells one instrument from another
    /// (models/README.md)
    #[serde(default)]
    pub style_standardise: bool,
    /// notes with `conv`: the octave-band view of the style trunk is whitened by the
    /// within-sample covariance of the training fragments (`stats.style_white_*`, fixed when
    /// training starts): directions in which the fragments of one sample differ (what changes
    /// from note to note) shrink, directions in which whole samples differ grow. It uses what
    /// the V3 loss uses, which fragments share a sample, and no labels (models/README.md)
    #[serde(default)]
    pub style_whiten: bool,
    /// with `style_whiten`: keep only this many directions of the whitened view, those in
    /// which whole samples differ most (a discriminant analysis with the samples as classes,
    /// no labels); 0 keeps them all
    #[serde(default)]
    pub style_discriminant: usize,
}

fn default_timbre_spans() -> usize {
    4
}

fn default_true() -> bool {
    true
}

fn default_cepstrum_start() -> f32 {
    4.0
}

fn default_cepstrum_step() -> f32 {
    1.0
}

impl ModelConfig {
    /// outputs of the decoder's last layer
    pub fn output_len(&self) -> usize {
        let [c, h, w] = self.domain.fragment_shape();
        if self.factored_decoder && self.domain == Domain::Digits {
            c
        } else if self.rank > 0 {
            self.rank * (c * h + w)
        } else {
            c * h * w
        }
    }

    /// Length of the notes' style band view (frames x octave bands).
    pub fn style_band_len(&self) -> usize {
        let [_, _, w] = self.domain.fragment_shape();
        STYLE_BANDS * w
    }

    /// Length of the band view as the style trunk reads it (after `style_whiten`).
    pub fn style_view_len(&self) -> usize {
        let f = self.style_band_len();
        if self.style_whiten && self.style_discriminant > 0 {
            self.style_discriminant.min(f)
        } else {
            f
        }
    }

    pub fn input_len(&self) -> usize {
        if self.conv > 0 && self.domain == Domain::Notes {
            let timbre = if self.timbre_conv {
                self.conv * self.timbre_spans
            } else {
                0
            };
            let bands = if self.style_bands || !self.timbre_conv {
                self.style_view_len()
            } else {
                0
            };
            return bands + timbre;
        }
        let spectrum = self.domain.fragment_len() / self.pool.max(1);
        if self.content_trunk {
            spectrum
        } else {
            spectrum + self.cepstral_len()
        }
    }

    pub fn cepstral_len(&self) -> usize {
        let [_, _, w] = self.domain.fragment_shape();
        self.cepstrum * (w / self.pool.max(1))
    }

    fn split_trunks(&self) -> bool {
        self.conv == 0 && self.content_trunk && (self.domain == Domain::Digits || self.cepstrum > 0)
    }

    /// The MLP trunk that reads the (pooled) fragment: every model but the convolutional digits.
    fn has_mlp_trunk(&self) -> bool {
        self.conv == 0 || self.domain == Domain::Notes
    }

    /// Outputs of the factored decoder's content path: a spectrum (notes) or an ink map (digits).
    fn content_output_len(&self) -> usize {
        let [_, h, w] = self.domain.fragment_shape();
        match self.domain {
            Domain::Notes => h,
            Domain::Digits => h * w,
        }
    }

    /// Inputs of the content trunk: the cepstrum (notes) or the ink map (digits).
    pub fn content_view_len(&self) -> usize {
        match self.domain {
            Domain::Notes => self.cepstral_len(),
            Domain::Digits => {
                let [_, h, w] = self.domain.fragment_shape();
                h * w
            }
        }
    }
}

/// The codebook and its EMA statistics. They are variables (so they are saved with the model)
/// but no optimiser ever sees them: they change only through [`Codebook::update`].
pub struct Codebook {
    pub atoms: Var,
    cluster_size: Var,
    embed_sum: Var,
    initialised: Var,
    decay: f64,
    threshold: f64,
}

/// Names of the codebook's variables, kept out of the optimiser.
pub const CODEBOOK_PREFIX: &str = "vq.";
/// Names of running statistics (no gradient, kept out of the optimiser).
pub const STATS_PREFIX: &str = "stats.";

/// A variable of `varmap`, created with `init` if it is not there yet.
fn stored_var(varmap: &VarMap, shape: &[usize], name: &str, init: candle_nn::Init) -> Result<Var> {
    let vb = VarBuilder::from_varmap(varmap, DType::F32, &Device::Cpu);
    vb.get_with_hints(shape, name, init)?;
    let data = varmap
        .data()
        .lock()
        .map_err(|_| candle_core::Error::Msg("variable map poisoned".into()))?;
    data.get(name)
        .cloned()
        .ok_or_else(|| candle_core::Error::Msg(format!("no variable {name}")))
}

impl Codebook {
    fn new(k: usize, dim: usize, decay: f64, threshold: f64, varmap: &VarMap) -> Result<Self> {
        let get = |shape: &[usize], name: &str, init| -> Result<Var> {
            stored_var(varmap, shape, &format!("{CODEBOOK_PREFIX}{name}"), init)
        };
        let normal = candle_nn::Init::Randn {
            mean: 0.0,
            stdev: 1.0,
        };
        Ok(Self {
            atoms: get(&[k, dim], "codebook", normal)?,
            cluster_size: get(&[k], "cluster_size", candle_nn::Init::Const(0.0))?,
            embed_sum: get(&[k, dim], "embed_sum", candle_nn::Init::Const(0.0))?,
            initialised: get(&[1], "initialised", candle_nn::Init::Const(0.0))?,
            decay,
            threshold,
        })
    }

    pub fn is_initialised(&self) -> Result<bool> {
        Ok(self.initialised.as_tensor().to_vec1::<f32>()?[0] > 0.5)
    }

    pub fn size(&self) -> usize {
        self.atoms.dims()[0]
    }

    /// The nearest atom of each row of z (N, dim), and those atoms (N, dim), without gradient.
    pub fn quantize(&self, z: &Tensor) -> Result<(Vec<u32>, Tensor)> {
        let atoms = self.atoms.as_tensor().detach();
        let z = z.detach();
        let d = z
            .sqr()?
            .sum_keepdim(1)?
            .broadcast_add(&atoms.sqr()?.sum(1)?.unsqueeze(0)?)?
            .sub(&(z.matmul(&atoms.t()?)? * 2.0)?)?;
        let idx = d.argmin(D::Minus1)?;
        let q = atoms.index_select(&idx, 0)?;
        Ok((idx.to_vec1::<u32>()?, q))
    }

    /// Quantise samples of `n` fragments each (z is (B * n, dim)) giving every fragment of a
    /// sample a different atom: the assignment of least total squared distance (Hungarian),
    /// for samples whose contents all differ (`n` at most the codebook's size). Returns the
    /// atoms' indices and the atoms, without gradient.
    pub fn quantize_samples(&self, z: &Tensor, n: usize) -> Result<(Vec<u32>, Tensor)> {
        let k = self.size();
        let atoms = self.atoms.as_tensor().detach();
        let z = z.detach();
        if n == 0 || n > k || z.dim(0)? % n != 0 {
            return self.quantize(&z);
        }
        let d = z
            .sqr()?
            .sum_keepdim(1)?
            .broadcast_add(&atoms.sqr()?.sum(1)?.unsqueeze(0)?)?
            .sub(&(z.matmul(&atoms.t()?)? * 2.0)?)?
            .to_vec2::<f32>()?;
        let mut idx = Vec::with_capacity(d.len());
        for sample in d.chunks(n) {
            let weights: Vec<Vec<f64>> = sample
                .iter()
                .map(|row| row.iter().map(|&v| -(v as f64)).collect())
                .collect();
            let assignment = crate::metrics::hungarian_max(&weights);
            for (row, a) in sample.iter().zip(assignment) {
                let nearest = row
                    .iter()
                    .enumerate()
                    .min_by(|a, b| a.1.total_cmp(b.1))
                    .map_or(0, |(i, _)| i);
                idx.push(a.unwrap_or(nearest) as u32);
            }
        }
        let t = Tensor::from_slice(&idx, idx.len(), &Device::Cpu)?;
        let q = atoms.index_select(&t, 0)?;
        Ok((idx, q))
    }

    /// Start the atoms at k-means centres of `z` (N, dim) with k-means++ seeding; the EMA
    /// statistics start as if each atom had been used `per_batch / K` times.
    /// With `sample` > 0, `z` holds whole samples of that many fragments and the Lloyd
    /// iterations are continued with the fragments of each sample taking different centres.
    pub fn init_kmeans(
        &self,
        z: &[Vec<f32>],
        sample: usize,
        per_batch: f64,
        rng: &mut StdRng,
    ) -> Result<()> {
        let k = self.size();
        let mut centres = kmeans(z, k, 25, rng);
        if sample > 0 {
            centres = kmeans_distinct(z, centres, sample, 15);
        }
        let dim = self.atoms.dims()[1];
        let flat: Vec<f32> = centres.iter().flatten().copied().collect();
        let atoms = Tensor::from_vec(flat, (k, dim), &Device::Cpu)?;
        let size = (per_batch / k as f64) as f32;
        self.atoms.set(&atoms)?;
        self.cluster_size
            .set(&Tensor::full(size, k, &Device::Cpu)?)?;
        self.embed_sum.set(&(atoms * size as f64)?)?;
        self.initialised
            .set(&Tensor::ones(1, DType::F32, &Device::Cpu)?)?;
        Ok(())
    }

    /// EMA update from one batch's content latents `z` (N, dim) and their atoms, then restart
    /// every atom whose usage fell below the threshold at a random latent of the batch.
    /// Returns how many atoms were restarted.
    pub fn update(&self, z: &Tensor, idx: &[u32], rng: &mut StdRng) -> Result<usize> {
        let k = self.size();
        let z = z.detach();
        let n = idx.len();
        let idx_t = Tensor::from_slice(idx, n, &Device::Cpu)?;
        let onehot = candle_nn::encoding::one_hot(idx_t, k, 1f32, 0f32)?;
        let counts = onehot.sum(0)?;
        let sums = onehot.t()?.matmul(&z)?;
        let decay = self.decay;
        let cluster = ((self.cluster_size.as_tensor() * decay)? + (counts * (1.0 - decay))?)?;
        let embed = ((self.embed_sum.as_tensor() * decay)? + (sums * (1.0 - decay))?)?;
        // Laplace smoothing keeps unused atoms finite
        let total = cluster.sum_all()?.to_scalar::<f32>()? as f64;
        let eps = 1e-5;
        let smoothed = ((&cluster + eps)? * (total / (total + k as f64 * eps)))?;
        let atoms = embed.broadcast_div(&smoothed.unsqueeze(1)?)?;
        let mut cluster_v = cluster.to_vec1::<f32>()?;
        let mut atoms_v = atoms.to_vec2::<f32>()?;
        let mut embed_v = embed.to_vec2::<f32>()?;
        let mut restarted = 0;
        if self.threshold > 0.0 && n > 0 {
            let rows = z.to_vec2::<f32>()?;
            for a in 0..k {
                if (cluster_v[a] as f64) < self.threshold {
                    let pick = &rows[rng.random_range(0..n)];
                    atoms_v[a] = pick.clone();
                    cluster_v[a] = self.threshold as f32;
                    embed_v[a] = pick.iter().map(|v| v * self.threshold as f32).collect();
                    restarted += 1;
                }
            }
        }
        let dim = self.atoms.dims()[1];
        let flat = |v: Vec<Vec<f32>>| Tensor::from_vec(v.concat(), (k, dim), &Device::Cpu);
        self.atoms.set(&flat(atoms_v)?)?;
        self.embed_sum.set(&flat(embed_v)?)?;
        self.cluster_size
            .set(&Tensor::from_vec(cluster_v, k, &Device::Cpu)?)?;
        Ok(restarted)
    }

    pub fn atoms_vec(&self) -> Result<Vec<Vec<f32>>> {
        self.atoms.as_tensor().to_vec2::<f32>()
    }
}

/// Lloyd iterations from `centres` in which the points of each group of `group` consecutive
/// points take different centres (the Hungarian assignment of least total squared distance).
pub fn kmeans_distinct(
    points: &[Vec<f32>],
    mut centres: Vec<Vec<f32>>,
    group: usize,
    iters: usize,
) -> Vec<Vec<f32>> {
    let k = centres.len();
    let dim = centres.first().map_or(0, |c| c.len());
    if group == 0 || group > k || points.len() < group {
        return centres;
    }
    let d2 = |a: &[f32], b: &[f32]| -> f64 {
        a.iter()
            .zip(b)
            .map(|(x, y)| ((x - y) * (x - y)) as f64)
            .sum()
    };
    for _ in 0..iters {
        let mut sums = vec![vec![0f32; dim]; k];
        let mut counts = vec![0usize; k];
        for g in points.chunks_exact(group) {
            let weights: Vec<Vec<f64>> = g
                .iter()
                .map(|p| centres.iter().map(|c| -d2(p, c)).collect())
                .collect();
            for (p, a) in g.iter().zip(crate::metrics::hungarian_max(&weights)) {
                if let Some(a) = a {
                    counts[a] += 1;
                    sums[a].iter_mut().zip(p).for_each(|(s, v)| *s += v);
                }
            }
        }
        for c in 0..k {
            if counts[c] > 0 {
                centres[c] = sums[c].iter().map(|s| s / counts[c] as f32).collect();
            }
        }
    }
    centres
}

/// Lloyd's k-means with k-means++ seeding; fewer points than centres repeat points.
pub fn kmeans(points: &[Vec<f32>], k: usize, iters: usize, rng: &mut StdRng) -> Vec<Vec<f32>> {
    let dim = points.first().map_or(0, |p| p.len());
    if points.is_empty() {
        return vec![vec![0.0; dim]; k];
    }
    let d2 =
        |a: &[f32], b: &[f32]| -> f32 { a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum() };
    let mut centres: Vec<Vec<f32>> = vec![points[rng.random_range(0..points.len())].clone()];
    while centres.len() < k {
        let weights: Vec<f32> = points
            .iter()
            .map(|p| {
                centres
                    .iter()
                    .map(|c| d2(p, c))
                    .fold(f32::INFINITY, f32::min)
            })
            .collect();
        let total: f32 = weights.iter().sum();
        let pick = if total > 0.0 {
            let mut r = rng.random::<f32>() * total;
            weights
                .iter()
                .position(|w| {
                    r -= w;
                    r <= 0.0
                })
                .unwrap_or(points.len() - 1)
        } else {
            rng.random_range(0..points.len())
        };
        centres.push(points[pick].clone());
    }
    for _ in 0..iters {
        let mut sums = vec![vec![0f32; dim]; k];
        let mut counts = vec![0usize; k];
        for p in points {
            let (best, _) = centres
                .iter()
                .enumerate()
                .map(|(i, c)| (i, d2(p, c)))
                .fold((0, f32::INFINITY), |a, b| if b.1 < a.1 { b } else { a });
            counts[best] += 1;
            sums[best].iter_mut().zip(p).for_each(|(s, v)| *s += v);
        }
        for c in 0..k {
            if counts[c] > 0 {
                centres[c] = sums[c].iter().map(|s| s / counts[c] as f32).collect();
            }
        }
    }
    centres
}

struct Encoder {
    /// fc1, fc2, linear_1 of the MLP trunk (all but convolutional digits)
    mlp: Option<[Linear; 3]>,
    linear_c: Linear,
    linear_s: Linear,
    /// the content trunk of `content_trunk` models: two hidden layers and its head
    content: Option<[Linear; 3]>,
    conv: Option<ConvTrunks>,
}

/// Bins per octave of the notes' log-frequency axis, its lowest centre (a fifth below C4) and
/// its number of bins (up to 7.2 kHz).
pub const LOG_BINS_PER_OCTAVE: usize = 24;
pub const LOG_LOWEST_HZ: f32 = 174.6;
pub const LOG_BINS: usize = 128;
/// Taps of the first convolution along log frequency: two octaves, the span of a note's first
/// four partials.
const LOG_KERNEL: usize = 2 * LOG_BINS_PER_OCTAVE + 1;
/// Taps of the timbre convolution (`timbre_conv`): an octave and a half.
const TIMBRE_KERNEL: usize = 3 * LOG_BINS_PER_OCTAVE / 2 + 1;

/// Octave bands of the notes' style trunk, their edges at C (the notes' fundamentals all fall
/// in the second): the frame-by-frame energy in each band shows the instrument's spectral
/// balance and envelope, hardly which note it plays.
pub const STYLE_BANDS: usize = 6;
const BAND_LOWEST_HZ: f32 = 261.63;

/// (bins, STYLE_BANDS): the mean of the linear bins in each octave band.
pub fn band_filterbank(bins: usize) -> Vec<f32> {
    let hz_per_bin = crate::audio::dsp::SAMPLE_RATE as f32 / crate::audio::dsp::N_FFT as f32;
    let band = |b: usize| -> usize {
        let f = b as f32 * hz_per_bin;
        if f < BAND_LOWEST_HZ {
            0
        } else {
            ((f / BAND_LOWEST_HZ).log2().floor() as usize + 1).min(STYLE_BANDS - 1)
        }
    };
    let mut counts = [0f32; STYLE_BANDS];
    (0..bins).for_each(|b| counts[band(b)] += 1.0);
    let mut w = vec![0f32; bins * STYLE_BANDS];
    for b in 0..bins {
        let k = band(b);
        w[b * STYLE_BANDS + k] = 1.0 / counts[k].max(1.0);
    }
    w
}

/// The convolutional trunks of `conv` models.
struct ConvTrunks {
    /// notes: the (512, LOG_BINS) triangular filterbank onto the log-frequency axis
    logfreq: Option<Tensor>,
    /// notes: the (512, STYLE_BANDS) octave bands of the style trunk
    bands: Option<Tensor>,
    content_convs: Vec<ConvLayer>,
    content_fc: Linear,
    content_head: Linear,
    /// digits: convolutions of the coloured image, then the mean over the page
    style_convs: Vec<ConvLayer>,
    style_fc: Option<[Linear; 2]>,
}

enum ConvLayer {
    Image(Conv2d),
    Line(HeightConv),
}

impl ConvLayer {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            ConvLayer::Image(c) => c.forward(x)?.gelu(),
            ConvLayer::Line(c) => c.forward_1d(x)?.gelu(),
        }
    }
}

/// Triangular filters from the STFT's linear bins onto a log-frequency axis: row b of the
/// result (bins x LOG_BINS) weighs linear bin b into each log bin, every column summing to 1.
/// A filter is at least one linear bin wide, so the low log bins interpolate between bins.
pub fn log_filterbank(bins: usize) -> Vec<f32> {
    let hz_per_bin = crate::audio::dsp::SAMPLE_RATE as f32 / crate::audio::dsp::N_FFT as f32;
    let centre = |j: f32| LOG_LOWEST_HZ * (j / LOG_BINS_PER_OCTAVE as f32).exp2();
    let mut w = vec![0f32; bins * LOG_BINS];
    for j in 0..LOG_BINS {
        let c = centre(j as f32);
        let lo = (c - centre(j as f32 - 1.0)).max(hz_per_bin);
        let hi = (centre(j as f32 + 1.0) - c).max(hz_per_bin);
        let mut total = 0.0;
        for b in 0..bins {
            let f = b as f32 * hz_per_bin;
            let v = if f <= c {
                1.0 - (c - f) / lo
            } else {
                1.0 - (f - c) / hi
            };
            if v > 0.0 {
                w[b * LOG_BINS + j] = v;
                total += v;
            }
        }
        if total > 0.0 {
            for b in 0..bins {
                w[b * LOG_BINS + j] /= total;
            }
        }
    }
    w
}

fn conv_trunks(cfg: &ModelConfig, e: VarBuilder) -> Result<ConvTrunks> {
    let he = WeightInit::He;
    let (c, h, dc, ds) = (cfg.conv, cfg.hidden, cfg.content_dim, cfg.style_dim);
    Ok(match cfg.domain {
        Domain::Digits => {
            let [_, fh, fw] = cfg.domain.fragment_shape();
            let conv = |i, o, name: &str| -> Result<ConvLayer> {
                Ok(ConvLayer::Image(Conv2d::new(
                    i,
                    o,
                    4,
                    2,
                    1,
                    he,
                    e.pp(name),
                )?))
            };
            let flat = 2 * c * (fh / 8) * (fw / 8);
            ConvTrunks {
                logfreq: None,
                bands: None,
                content_convs: vec![
                    conv(1, c, "content_conv1")?,
                    conv(c, 2 * c, "content_conv2")?,
                    conv(2 * c, 2 * c, "content_conv3")?,
                ],
                content_fc: linear_init(flat, h, he, e.pp("content_fc"))?,
                content_head: linear_init(h, dc, he, e.pp("content_linear_1"))?,
                // two convolutions, then the mean over the page: the colour and the texture
                // of the ink, hardly the shapes; or the ink's colour alone
                style_convs: if cfg.colour_style {
                    Vec::new()
                } else {
                    vec![conv(3, c, "style_conv1")?, conv(c, 2 * c, "style_conv2")?]
                },
                style_fc: Some([
                    linear_init(
                        if cfg.colour_style { 3 } else { 2 * c },
                        h,
                        he,
                        e.pp("style_fc"),
                    )?,
                    linear_init(h, ds, he, e.pp("style_linear_1"))?,
                ]),
            }
        }
        Domain::Notes => {
            let [_, bins, _] = cfg.domain.fragment_shape();
            let line = |i, o, k: usize, s, name: &str| -> Result<ConvLayer> {
                Ok(ConvLayer::Line(HeightConv::new(
                    i,
                    o,
                    (k, 1),
                    s,
                    k / 2,
                    he,
                    e.pp(name),
                )?))
            };
            ConvTrunks {
                logfreq: Some(Tensor::from_vec(
                    log_filterbank(bins),
                    (bins, LOG_BINS),
                    &Device::Cpu,
                )?),
                bands: Some(Tensor::from_vec(
                    band_filterbank(bins),
                    (bins, STYLE_BANDS),
                    &Device::Cpu,
                )?),
                content_convs: vec![
                    line(1, c, LOG_KERNEL, 1, "content_conv1")?,
                    line(c, c, 5, 2, "content_conv2")?,
                ],
                content_fc: linear_init(c * LOG_BINS / 2, h, he, e.pp("content_fc"))?,
                content_head: linear_init(h, dc, he, e.pp("content_linear_1"))?,
                style_convs: if cfg.timbre_conv {
                    vec![
                        line(1, c, TIMBRE_KERNEL, 1, "style_conv1")?,
                        line(c, c, 9, 1, "style_conv2")?,
                    ]
                } else {
                    Vec::new()
                },
                style_fc: None,
            }
        }
    })
}

/// The octave-band view of the notes' style trunk for note fragments given as slices (each
/// NOTE_BINS x NOTE_FRAMES, bin-major): per fragment, frames x STYLE_BANDS energies.
pub fn band_envelopes(fragments: &[&[f32]]) -> Result<Vec<Vec<f32>>> {
    let shape = Domain::Notes.fragment_shape();
    let [c, h, w] = shape;
    let flat: Vec<f32> = fragments.iter().flat_map(|f| f.iter().copied()).collect();
    let x = Tensor::from_vec(flat, (fragments.len(), c * h * w), &Device::Cpu)?;
    let bands = Tensor::from_vec(band_filterbank(c * h), (c * h, STYLE_BANDS), &Device::Cpu)?;
    band_view(&x, &bands, shape)?.to_vec2()
}

/// Octave-band energies of note fragments (N, fragment_len), frame by frame: (N, w * bands).
fn band_view(x: &Tensor, bands: &Tensor, [c, h, w]: [usize; 3]) -> Result<Tensor> {
    let n = x.dim(0)?;
    x.reshape((n, c * h, w))?
        .transpose(1, 2)?
        .contiguous()?
        .reshape((n * w, c * h))?
        .matmul(bands)?
        .reshape((n, w * STYLE_BANDS))
}

/// The colour of the ink of fragments in ink space (N, channels * pixels; 0 = white paper,
/// a pixel covered by ink of colour c holds coverage x (1 - c) in each channel): per channel,
/// the summed absorbance over the summed absorbance of all channels, times the strongest
/// pixel's mean absorbance (the stroke's core, fully covered). That is 1 - c for any amount
/// of ink, any stroke width or size: (N, channels).
pub fn ink_colour(x: &Tensor, channels: usize, pixels: usize) -> Result<Tensor> {
    let n = x.dim(0)?;
    let a = x.reshape((n, channels, pixels))?.relu()?;
    let mean = a.mean(1)?;
    let share = a
        .sum(2)?
        .broadcast_div(&mean.sum_keepdim(1)?.affine(channels as f64, 1e-6)?)?;
    share.broadcast_mul(&mean.max_keepdim(1)?)? * channels as f64
}

/// Unit norm along the last axis, times the square root of its length (entries near 1): where
/// the peaks or strokes are, not how strong they are.
fn unit_norm(view: &Tensor) -> Result<Tensor> {
    let scale = (view.dim(D::Minus1)? as f64).sqrt();
    let norm = (view.sqr()?.sum_keepdim(D::Minus1)? + 1e-8)?.sqrt()?;
    view.broadcast_div(&norm)? * scale
}

struct Decoder {
    linear_c: Linear,
    linear_s: Linear,
    linear_0: Linear,
    fc1: Linear,
    out: Linear,
    /// `factored_decoder`: the content path (hidden layer and output); linear_0, fc1 and out
    /// then read the style alone
    content: Option<[Linear; 2]>,
    /// `mix_hidden`: the content-and-style MLP (hidden layer and output)
    mix: Option<[Linear; 2]>,
}

pub struct V3Model {
    pub cfg: ModelConfig,
    /// (height, cepstrum) cosine and sine matrices of the fixed cepstral transform
    cepstral: Option<(Tensor, Tensor)>,
    enc: Encoder,
    dec: Decoder,
    pub codebook: Codebook,
    /// `style_standardise`: the running mean and spread of the raw style latent
    style_stats: Option<[Var; 2]>,
    /// `style_whiten`: the band view's mean (F) and whitening matrix (F, F)
    style_white: Option<[Var; 2]>,
}

impl V3Model {
    pub fn new(cfg: &ModelConfig, varmap: &VarMap) -> Result<Self> {
        if cfg.timbre_conv
            && (cfg.timbre_spans == 0
                || !crate::v3::data::NOTE_FRAMES.is_multiple_of(cfg.timbre_spans))
        {
            return Err(candle_core::Error::Msg(format!(
                "timbre_spans must divide the {} frames of a note (it is {})",
                crate::v3::data::NOTE_FRAMES,
                cfg.timbre_spans
            )));
        }
        let vb = VarBuilder::from_varmap(varmap, DType::F32, &Device::Cpu);
        let he = WeightInit::He;
        let (h, dc, ds) = (cfg.hidden, cfg.content_dim, cfg.style_dim);
        let e = vb.pp("encoder");
        let split = cfg.split_trunks();
        let mlp_out = if split || cfg.conv > 0 { ds } else { dc + ds };
        let enc = Encoder {
            mlp: if cfg.has_mlp_trunk() {
                Some([
                    linear_init(cfg.input_len(), h, he, e.pp("fc1"))?,
                    linear_init(h, h, he, e.pp("fc2"))?,
                    linear_init(h, mlp_out, he, e.pp("linear_1"))?,
                ])
            } else {
                None
            },
            conv: if cfg.conv > 0 {
                Some(conv_trunks(cfg, e.clone())?)
            } else {
                None
            },
            linear_c: linear_init(dc, dc, he, e.pp("linear_c"))?,
            linear_s: linear_init(ds, ds, he, e.pp("linear_s"))?,
            content: if split {
                Some([
                    linear_init(cfg.content_view_len(), h, he, e.pp("content_fc1"))?,
                    linear_init(h, h, he, e.pp("content_fc2"))?,
                    linear_init(h, dc, he, e.pp("content_linear_1"))?,
                ])
            } else {
                None
            },
        };
        let d = vb.pp("decoder");
        let dec = Decoder {
            linear_c: linear_init(dc, dc, he, d.pp("linear_c"))?,
            linear_s: linear_init(ds, ds, he, d.pp("linear_s"))?,
            linear_0: linear_init(
                if cfg.factored_decoder { ds } else { dc + ds },
                h,
                he,
                d.pp("linear_0"),
            )?,
            fc1: linear_init(h, h, he, d.pp("fc1"))?,
            out: linear_init(h, cfg.output_len(), WeightInit::PyTorch, d.pp("out"))?,
            content: if cfg.factored_decoder {
                Some([
                    linear_init(dc, h, he, d.pp("content_fc"))?,
                    linear_init(
                        h,
                        cfg.content_output_len(),
                        WeightInit::PyTorch,
                        d.pp("content_out"),
                    )?,
                ])
            } else {
                None
            },
            mix: if cfg.factored_decoder && cfg.mix_hidden > 0 && cfg.domain == Domain::Notes {
                Some([
                    linear_init(dc + ds, cfg.mix_hidden, he, d.pp("mix_fc"))?,
                    linear_init(
                        cfg.mix_hidden,
                        cfg.content_output_len(),
                        WeightInit::PyTorch,
                        d.pp("mix_out"),
                    )?,
                ])
            } else {
                None
            },
        };
        let codebook = Codebook::new(cfg.atoms, dc, cfg.vq_decay, cfg.dead_code_threshold, varmap)?;
        let cepstral = if cfg.cepstrum > 0 {
            let [c, h, _] = cfg.domain.fragment_shape();
            let rows = c * h;
            let q = cfg.cepstrum;
            let mut cos = vec![0f32; rows * q];
            let mut sin = vec![0f32; rows * q];
            let scale = 1.0 / (rows as f32).sqrt();
            for b in 0..rows {
                for k in 0..q {
                    let quefrency = cfg.cepstrum_start + cfg.cepstrum_step * k as f32;
                    let phase = std::f32::consts::TAU * b as f32 * quefrency / rows as f32;
                    cos[b * q + k] = phase.cos() * scale;
                    sin[b * q + k] = phase.sin() * scale;
                }
            }
            Some((
                Tensor::from_vec(cos, (rows, q), &Device::Cpu)?,
                Tensor::from_vec(sin, (rows, q), &Device::Cpu)?,
            ))
        } else {
            None
        };
        Ok(Self {
            cfg: cfg.clone(),
            cepstral,
            enc,
            dec,
            codebook,
            style_stats: if cfg.style_standardise {
                Some([
                    stored_var(
                        varmap,
                        &[ds],
                        &format!("{STATS_PREFIX}style_mean"),
                        candle_nn::Init::Const(0.0),
                    )?,
                    stored_var(
                        varmap,
                        &[ds],
                        &format!("{STATS_PREFIX}style_std"),
                        candle_nn::Init::Const(1.0),
                    )?,
                ])
            } else {
                None
            },
            style_white: if cfg.style_whiten && cfg.conv > 0 && cfg.domain == Domain::Notes {
                let (f, k) = (cfg.style_band_len(), cfg.style_view_len());
                // the identity's first k columns until training fits it
                let eye: Vec<f32> = (0..f * k)
                    .map(|i| if i / k == i % k { 1.0 } else { 0.0 })
                    .collect();
                let white = stored_var(
                    varmap,
                    &[f, k],
                    &format!("{STATS_PREFIX}style_white_matrix"),
                    candle_nn::Init::Const(0.0),
                )?;
                white.set(&Tensor::from_vec(eye, (f, k), &Device::Cpu)?)?;
                Some([
                    stored_var(
                        varmap,
                        &[f],
                        &format!("{STATS_PREFIX}style_white_mean"),
                        candle_nn::Init::Const(0.0),
                    )?,
                    white,
                ])
            } else {
                None
            },
        })
    }

    /// fragments (N, fragment_len) -> (content (N, dc) before quantisation, style (N, ds))
    pub fn encode(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let (content, style) = self.encode_raw(x)?;
        match &self.style_stats {
            Some([mean, std]) => Ok((
                content,
                style
                    .broadcast_sub(mean.as_tensor())?
                    .broadcast_div(std.as_tensor())?,
            )),
            None => Ok((content, style)),
        }
    }

    /// The octave-band view of the notes' style trunk before any whitening, (N, F); None for
    /// a model without one.
    pub fn style_band_view(&self, x: &Tensor) -> Result<Option<Tensor>> {
        match self.enc.conv.as_ref().and_then(|c| c.bands.as_ref()) {
            Some(bands) => Ok(Some(band_view(x, bands, self.cfg.domain.fragment_shape())?)),
            None => Ok(None),
        }
    }

    /// Set the whitening of the style's band view (`style_whiten`): mean (F), matrix (F x K,
    /// row-major, K = `style_view_len`), applied as (view - mean) matrix.
    pub fn set_style_whitening(&self, mean: Vec<f32>, matrix: Vec<f32>) -> Result<()> {
        let Some([m, w]) = &self.style_white else {
            return Err(candle_core::Error::Msg(
                "this model has no style whitening".into(),
            ));
        };
        let (f, k) = (mean.len(), self.cfg.style_view_len());
        m.set(&Tensor::from_vec(mean, f, &Device::Cpu)?)?;
        w.set(&Tensor::from_vec(matrix, (f, k), &Device::Cpu)?)
    }

    /// In training: `encode`, the style standardised over this batch (with
    /// `style_standardise`), and the running statistics moved `momentum` of the way to the
    /// batch's.
    pub fn encode_training(&self, x: &Tensor, momentum: f64) -> Result<(Tensor, Tensor)> {
        let (content, style) = self.encode_raw(x)?;
        let Some([mean_var, std_var]) = &self.style_stats else {
            return Ok((content, style));
        };
        let mean = style.mean_keepdim(0)?;
        let centred = style.broadcast_sub(&mean)?;
        let std = (centred.sqr()?.mean_keepdim(0)? + 1e-5)?.sqrt()?;
        let blend = |var: &Var, batch: &Tensor| -> Result<()> {
            let batch = batch.detach().squeeze(0)?;
            var.set(&((var.as_tensor() * (1.0 - momentum))? + (batch * momentum)?)?)
        };
        blend(mean_var, &mean)?;
        blend(std_var, &std)?;
        Ok((content, centred.broadcast_div(&std)?))
    }

    /// `encode` before the style's standardisation.
    fn encode_raw(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let n = x.dim(0)?;
        let pool = self.cfg.pool.max(1);
        let len = self.cfg.domain.fragment_len();
        // digits: ink space, white paper at 0, so that the trunks start where the strokes are
        // rather than on the page's large constant (their first units otherwise die at once)
        let x = if self.cfg.domain == Domain::Digits {
            x.neg()?.affine(1.0, 1.0)?
        } else {
            x.clone()
        };
        if let Some(conv) = &self.enc.conv {
            let hc = self.conv_content(conv, &x)?;
            let hs = self.conv_style(conv, &x)?;
            return Ok((
                self.enc.linear_c.forward(&hc)?,
                self.enc.linear_s.forward(&hs)?,
            ));
        }
        let x = if pool > 1 {
            x.reshape((n, len / pool, pool))?.mean(2)?
        } else {
            x
        };
        let cepstrum = match &self.cepstral {
            Some((cos, sin)) => {
                let [_, _, w] = self.cfg.domain.fragment_shape();
                let frames = w / pool;
                // (N, rows, frames) -> (N, frames, rows) x (rows, q)
                let spectra = x
                    .reshape((n, len / w, frames))?
                    .transpose(1, 2)?
                    .contiguous()?
                    .reshape((n * frames, len / w))?;
                let re = spectra.matmul(cos)?;
                let im = spectra.matmul(sin)?;
                let cepstrum = ((re.sqr()? + im.sqr()?)? + 1e-8)?
                    .sqrt()?
                    .reshape((n, frames * self.cfg.cepstrum))?;
                Some(cepstrum)
            }
            None => None,
        };
        if let Some([fc1, fc2, head]) = &self.enc.content {
            let view = match (&cepstrum, self.cfg.domain) {
                (Some(c), _) => c.clone(),
                (None, _) => {
                    // ink: how far each pixel is from white paper, colour averaged out
                    let [c, h, w] = self.cfg.domain.fragment_shape();
                    x.reshape((n, c, h * w))?.mean(1)?
                }
            };
            let view = unit_norm(&view)?;
            let hc = fc1.forward(&view)?.gelu()?;
            let hc = fc2.forward(&hc)?.gelu()?;
            let hc = head.forward(&hc)?.gelu()?;
            let h = self.mlp_trunk(&x)?;
            return Ok((
                self.enc.linear_c.forward(&hc)?,
                self.enc.linear_s.forward(&h)?,
            ));
        }
        let x = match cepstrum {
            Some(c) => Tensor::cat(&[&x, &c], 1)?,
            None => x,
        };
        let h = self.mlp_trunk(&x)?;
        let dc = self.cfg.content_dim;
        let content = self.enc.linear_c.forward(&h.narrow(1, 0, dc)?)?;
        let style = self
            .enc
            .linear_s
            .forward(&h.narrow(1, dc, self.cfg.style_dim)?)?;
        Ok((content, style))
    }

    /// The MLP trunk on the (pooled) fragment, before the heads.
    fn mlp_trunk(&self, x: &Tensor) -> Result<Tensor> {
        self.trunk(x, true)
    }

    /// The MLP trunk, with its GELUs or (`activated` false) without: a linear map.
    fn trunk(&self, x: &Tensor, activated: bool) -> Result<Tensor> {
        let [fc1, fc2, linear_1] = self
            .enc
            .mlp
            .as_ref()
            .ok_or_else(|| candle_core::Error::Msg("this encoder has no MLP trunk".into()))?;
        let act = |t: Tensor| if activated { t.gelu() } else { Ok(t) };
        let h = act(fc1.forward(x)?)?;
        let h = act(fc2.forward(&h)?)?;
        act(linear_1.forward(&h)?)
    }

    /// The convolutional content trunk on fragments (N, fragment_len), digits in ink space:
    /// its output before `linear_c`.
    fn conv_content(&self, conv: &ConvTrunks, x: &Tensor) -> Result<Tensor> {
        let n = x.dim(0)?;
        let [c, h, w] = self.cfg.domain.fragment_shape();
        let mut hc = match &conv.logfreq {
            // notes: the spectrum averaged over the note's frames, on the log-frequency axis
            Some(bank) => {
                let spectrum = x.reshape((n, c * h, w))?.mean(2)?.matmul(bank)?;
                unit_norm(&spectrum)?.unsqueeze(1)?
            }
            // digits: the ink map, colour averaged out
            None => {
                let ink = x.reshape((n, c, h * w))?.mean(1)?;
                unit_norm(&ink)?.reshape((n, 1, h, w))?
            }
        };
        for layer in &conv.content_convs {
            hc = layer.forward(&hc)?;
        }
        let hc = hc.contiguous()?.flatten_from(1)?;
        let hc = conv.content_fc.forward(&hc)?.gelu()?;
        conv.content_head.forward(&hc)?.gelu()
    }

    /// The style trunk of a `conv` model on fragments (N, fragment_len), digits in ink space:
    /// its output before `linear_s`.
    fn conv_style(&self, conv: &ConvTrunks, x: &Tensor) -> Result<Tensor> {
        let n = x.dim(0)?;
        let [c, h, w] = self.cfg.domain.fragment_shape();
        match (&conv.bands, &conv.style_fc) {
            // notes: octave-band energies frame by frame, through the MLP trunk
            (Some(bands), _) => {
                let view = band_view(x, bands, [c, h, w])?;
                let view = match &self.style_white {
                    Some([mean, white]) => view
                        .broadcast_sub(mean.as_tensor())?
                        .matmul(white.as_tensor())?,
                    None => view,
                };
                let view = match (&conv.logfreq, conv.style_convs.is_empty()) {
                    (Some(bank), false) => {
                        // the log-frequency spectrum of each span of frames,
                        // (N * spans, 1, LOG_BINS)
                        let spans = self.cfg.timbre_spans;
                        let mut t = x
                            .reshape((n, c * h, spans, w / spans))?
                            .mean(3)?
                            .transpose(1, 2)?
                            .contiguous()?
                            .reshape((n * spans, c * h))?
                            .matmul(bank)?
                            .unsqueeze(1)?;
                        for layer in &conv.style_convs {
                            t = layer.forward(&t)?;
                        }
                        let timbre = t.max(2)?.reshape((n, spans * self.cfg.conv))?;
                        if self.cfg.style_bands {
                            Tensor::cat(&[&view, &timbre], 1)?
                        } else {
                            timbre
                        }
                    }
                    _ => view,
                };
                self.trunk(&view, !self.cfg.style_linear)
            }
            // digits: the ink's colour
            (None, Some([fc, head])) if self.cfg.colour_style => head
                .forward(&fc.forward(&ink_colour(x, c, h * w)?)?.gelu()?)?
                .gelu(),
            // digits: convolutions of the coloured page, then their mean over the page
            (None, Some([fc, head])) => {
                let mut hs = x.reshape((n, c, h, w))?;
                for layer in &conv.style_convs {
                    hs = layer.forward(&hs)?;
                }
                let hs = hs.mean(3)?.mean(2)?;
                head.forward(&fc.forward(&hs)?.gelu()?)?.gelu()
            }
            (None, None) => Err(candle_core::Error::Msg("no style trunk".into())),
        }
    }

    /// (content (N, dc), style (N, ds)) -> fragments (N, fragment_len)
    pub fn decode(&self, content: &Tensor, style: &Tensor) -> Result<Tensor> {
        let c = self.dec.linear_c.forward(content)?.gelu()?;
        let s = self.dec.linear_s.forward(style)?.gelu()?;
        if let Some([fc, out]) = &self.dec.content {
            return self.decode_factored(&c, &s, fc, out);
        }
        let h = self
            .dec
            .linear_0
            .forward(&Tensor::cat(&[&c, &s], 1)?)?
            .gelu()?;
        let h = self.dec.fc1.forward(&h)?.gelu()?;
        let out = self.dec.out.forward(&h)?;
        if self.cfg.rank == 0 {
            return Ok(out);
        }
        let n = out.dim(0)?;
        let [c, hh, w] = self.cfg.domain.fragment_shape();
        let out = out.reshape((n, self.cfg.rank, c * hh + w))?;
        let columns = out.narrow(2, 0, c * hh)?;
        let rows = out.narrow(2, c * hh, w)?;
        columns
            .transpose(1, 2)?
            .contiguous()?
            .matmul(&rows.contiguous()?)?
            .reshape((n, c * hh * w))
    }

    /// The factored decoder (`factored_decoder`) from the activated content and style heads.
    fn decode_factored(&self, c: &Tensor, s: &Tensor, fc: &Linear, out: &Linear) -> Result<Tensor> {
        let n = c.dim(0)?;
        let [ch, hh, w] = self.cfg.domain.fragment_shape();
        let pattern = out.forward(&fc.forward(c)?.gelu()?)?;
        let hs = self.dec.linear_0.forward(s)?.gelu()?;
        let hs = self.dec.fc1.forward(&hs)?.gelu()?;
        let style = self.dec.out.forward(&hs)?;
        match self.cfg.domain {
            Domain::Notes => {
                // log spectrum: the pitch's pattern plus the style's envelope, floored near 0
                // (silence) by a leaky rectifier
                let envelope = if self.cfg.rank > 0 {
                    let st = style.reshape((n, self.cfg.rank, ch * hh + w))?;
                    st.narrow(2, 0, ch * hh)?
                        .transpose(1, 2)?
                        .contiguous()?
                        .matmul(&st.narrow(2, ch * hh, w)?.contiguous()?)?
                } else {
                    style.reshape((n, ch * hh, w))?
                };
                let pattern = match &self.dec.mix {
                    Some([fc, out]) => {
                        let both = Tensor::cat(&[c, s], 1)?;
                        (pattern + out.forward(&fc.forward(&both)?.gelu()?)?)?
                    }
                    None => pattern,
                };
                let x = envelope.broadcast_add(&pattern.unsqueeze(2)?)?;
                (x.relu()? + (x * 0.01)?)?.reshape((n, ch * hh * w))
            }
            Domain::Digits => {
                // white paper, less the ink map in the style's colour
                let ink = candle_nn::ops::sigmoid(&pattern)?.unsqueeze(1)?;
                let colour = candle_nn::ops::sigmoid(&style)?.unsqueeze(2)?;
                let absorbed = ink.broadcast_mul(&colour.neg()?.affine(1.0, 1.0)?)?;
                absorbed.neg()?.affine(1.0, 1.0)?.reshape((n, ch * hh * w))
            }
        }
    }

    /// Decode rows given as plain vectors (content atoms or latents, and style latents).
    pub fn decode_rows(&self, content: &[Vec<f32>], style: &[Vec<f32>]) -> Result<Vec<Vec<f32>>> {
        let n = content.len().min(style.len());
        let c = Tensor::from_vec(
            content[..n].concat(),
            (n, self.cfg.content_dim),
            &Device::Cpu,
        )?;
        let s = Tensor::from_vec(style[..n].concat(), (n, self.cfg.style_dim), &Device::Cpu)?;
        self.decode(&c, &s)?.to_vec2::<f32>()
    }

    /// Encode many fragments in batches: content latents, their atoms, style latents.
    pub fn encode_all(&self, fragments: &[&[f32]]) -> Result<Encoded> {
        let mut out = Encoded::default();
        let len = self.cfg.domain.fragment_len();
        for chunk in fragments.chunks(256) {
            let flat: Vec<f32> = chunk.iter().flat_map(|f| f.iter().copied()).collect();
            let x = Tensor::from_vec(flat, (chunk.len(), len), &Device::Cpu)?;
            let (c, s) = self.encode(&x)?;
            let (idx, _) = self.codebook.quantize(&c)?;
            out.content.extend(c.to_vec2::<f32>()?);
            out.style.extend(s.to_vec2::<f32>()?);
            out.codes.extend(idx.iter().map(|&i| i as usize));
        }
        Ok(out)
    }
}

/// What the encoder makes of a set of fragments.
#[derive(Clone, Debug, Default)]
pub struct Encoded {
    pub content: Vec<Vec<f32>>,
    pub codes: Vec<usize>,
    pub style: Vec<Vec<f32>>,
}

/// Mean pairwise Euclidean distance between the rows of each sample: x (B, n, d) -> (B).
pub fn mean_pairwise_distance(x: &Tensor) -> Result<Tensor> {
    let (_, n, _) = x.dims3()?;
    let diff = x.unsqueeze(2)?.broadcast_sub(&x.unsqueeze(1)?)?;
    // the epsilon keeps the gradient of the distance finite on the diagonal (where it is 0)
    let dist = (diff.sqr()?.sum(3)? + 1e-12)?.sqrt()?;
    dist.sum(2)?.sum(1)? / (n * (n - 1).max(1)) as f64
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::v3::data::{NOTE_BINS, NOTE_PITCHES};

    fn hz(bin: usize) -> f32 {
        bin as f32 * crate::audio::dsp::SAMPLE_RATE as f32 / crate::audio::dsp::N_FFT as f32
    }

    #[test]
    fn every_log_bin_averages_the_linear_bins_around_its_centre() {
        let w = log_filterbank(NOTE_BINS);
        for j in 0..LOG_BINS {
            let column: Vec<f32> = (0..NOTE_BINS).map(|b| w[b * LOG_BINS + j]).collect();
            let total: f32 = column.iter().sum();
            assert!((total - 1.0).abs() < 1e-4, "log bin {j} sums to {total}");
            let centre = LOG_LOWEST_HZ * (j as f32 / LOG_BINS_PER_OCTAVE as f32).exp2();
            let peak = (0..NOTE_BINS)
                .max_by(|a, b| column[*a].total_cmp(&column[*b]))
                .unwrap();
            assert!(
                (hz(peak) - centre).abs() <= hz(1),
                "log bin {j} ({centre} Hz) peaks at {} Hz",
                hz(peak)
            );
        }
    }

    #[test]
    fn the_fundamentals_of_every_note_share_one_style_band() {
        let w = band_filterbank(NOTE_BINS);
        let band_of = |b: usize| (0..STYLE_BANDS).find(|k| w[b * STYLE_BANDS + k] > 0.0);
        for b in 0..NOTE_BINS {
            let nonzero = (0..STYLE_BANDS)
                .filter(|k| w[b * STYLE_BANDS + k] > 0.0)
                .count();
            assert_eq!(nonzero, 1, "linear bin {b} is in {nonzero} bands");
        }
        for key in NOTE_PITCHES {
            let f0 = 440.0 * ((key - 69) as f32 / 12.0).exp2();
            let bin = (f0 / hz(1)).round() as usize;
            assert_eq!(band_of(bin), Some(1), "key {key} ({f0} Hz)");
        }
    }

    /// The colour view reads the ink's colour whatever the digit, its size or stroke.
    #[test]
    fn ink_colour_is_the_colour_of_the_ink() {
        use crate::v3::data::{DIGIT_H, DIGIT_W, HELD_OUT_INKS, TRAIN_INKS, digit_fragment};
        let mut rng = <StdRng as rand::SeedableRng>::seed_from_u64(3);
        let split = crate::digits::generated_split(&crate::digits::Recipe {
            train_writers: 6,
            test_writers: 0,
            per_digit: 1,
            seed: 1,
        });
        for (colour, name) in TRAIN_INKS.iter().chain(&HELD_OUT_INKS) {
            let i = rng.random_range(0..split.train.len());
            let frag = digit_fragment(split.train.image(i), *colour);
            let ink: Vec<f32> = frag.iter().map(|v| 1.0 - v).collect();
            let x = Tensor::from_vec(ink, (1, 3 * DIGIT_H * DIGIT_W), &Device::Cpu).unwrap();
            let got = ink_colour(&x, 3, DIGIT_H * DIGIT_W)
                .unwrap()
                .to_vec2::<f32>()
                .unwrap();
            // the hue exactly; the strength within the share of the stroke's core left
            // uncovered by a thin pen
            let want: Vec<f32> = colour.iter().map(|c| 1.0 - c).collect();
            let norm = |v: &[f32]| v.iter().map(|a| a * a).sum::<f32>().sqrt();
            let cos = got[0].iter().zip(&want).map(|(a, b)| a * b).sum::<f32>()
                / (norm(&got[0]) * norm(&want));
            let strength = norm(&got[0]) / norm(&want);
            assert!(cos > 0.9999, "{name}: {:?} for {want:?}", got[0]);
            assert!(
                (0.85..=1.01).contains(&strength),
                "{name}: {:?} for {want:?}",
                got[0]
            );
        }
    }

    /// The factored digits decoder draws one ink map per atom whatever the style; the content
    /// trunk reads that map with the colour normalised away, so restyling a decoded atom cannot
    /// change what it encodes to.
    #[test]
    fn a_factored_digit_keeps_its_content_in_every_colour() {
        // the digits `fast` preset, smaller
        let cfg = ModelConfig {
            hidden: 32,
            content_dim: 8,
            style_dim: 8,
            conv: 4,
            ..crate::v3::train::TrainConfig::preset(Domain::Digits, "fast")
                .unwrap()
                .model
        };
        let varmap = VarMap::new();
        let model = V3Model::new(&cfg, &varmap).unwrap();
        let content: Vec<Vec<f32>> = (0..4)
            .map(|i| (0..8).map(|d| ((i * 8 + d) as f32 * 0.7).sin()).collect())
            .collect();
        let style = |phase: f32| -> Vec<Vec<f32>> {
            vec![(0..8).map(|d| (d as f32 + phase).cos() * 2.0).collect(); 4]
        };
        let a = model.decode_rows(&content, &style(0.0)).unwrap();
        let b = model.decode_rows(&content, &style(1.3)).unwrap();
        assert_ne!(a, b, "the style changes the colour");
        fn rows(v: &[Vec<f32>]) -> Vec<&[f32]> {
            v.iter().map(|r| r.as_slice()).collect()
        }
        let (ea, eb) = (
            model.encode_all(&rows(&a)).unwrap(),
            model.encode_all(&rows(&b)).unwrap(),
        );
        for (x, y) in ea.content.iter().zip(&eb.content) {
            let gap = x
                .iter()
                .zip(y)
                .map(|(p, q)| (p - q).abs())
                .fold(0f32, f32::max);
            assert!(gap < 1e-3, "content moved by {gap} with the colour");
        }
    }
}
