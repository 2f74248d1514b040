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
use crate::nn::{WeightInit, linear_init};

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
        if self.rank > 0 {
            self.rank * (c * h + w)
        } else {
            c * h * w
        }
    }

    pub fn input_len(&self) -> usize {
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
        self.content_trunk && (self.domain == Domain::Digits || self.cepstrum > 0)
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

impl Codebook {
    fn new(k: usize, dim: usize, decay: f64, threshold: f64, varmap: &VarMap) -> Result<Self> {
        let vb = VarBuilder::from_varmap(varmap, DType::F32, &Device::Cpu);
        let get = |shape: &[usize], name: &str, init| -> Result<Var> {
            vb.get_with_hints(shape, &format!("vq.{name}"), init)?;
            let data = varmap
                .data()
                .lock()
                .map_err(|_| candle_core::Error::Msg("variable map poisoned".into()))?;
            data.get(&format!("vq.{name}"))
                .cloned()
                .ok_or_else(|| candle_core::Error::Msg(format!("no variable vq.{name}")))
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

    /// Start the atoms at k-means centres of `z` (N, dim) with k-means++ seeding; the EMA
    /// statistics start as if each atom had been used `per_batch / K` times.
    pub fn init_kmeans(&self, z: &[Vec<f32>], per_batch: f64, rng: &mut StdRng) -> Result<()> {
        let k = self.size();
        let centres = kmeans(z, k, 25, rng);
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
    fc1: Linear,
    fc2: Linear,
    linear_1: Linear,
    linear_c: Linear,
    linear_s: Linear,
    /// the content trunk of `content_trunk` models: two hidden layers and its head
    content: Option<[Linear; 3]>,
}

struct Decoder {
    linear_c: Linear,
    linear_s: Linear,
    linear_0: Linear,
    fc1: Linear,
    out: Linear,
}

pub struct V3Model {
    pub cfg: ModelConfig,
    /// (height, cepstrum) cosine and sine matrices of the fixed cepstral transform
    cepstral: Option<(Tensor, Tensor)>,
    enc: Encoder,
    dec: Decoder,
    pub codebook: Codebook,
}

impl V3Model {
    pub fn new(cfg: &ModelConfig, varmap: &VarMap) -> Result<Self> {
        let vb = VarBuilder::from_varmap(varmap, DType::F32, &Device::Cpu);
        let he = WeightInit::He;
        let (h, dc, ds) = (cfg.hidden, cfg.content_dim, cfg.style_dim);
        let e = vb.pp("encoder");
        let split = cfg.split_trunks();
        let enc = Encoder {
            fc1: linear_init(cfg.input_len(), h, he, e.pp("fc1"))?,
            fc2: linear_init(h, h, he, e.pp("fc2"))?,
            linear_1: linear_init(h, if split { ds } else { dc + ds }, he, e.pp("linear_1"))?,
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
            linear_0: linear_init(dc + ds, h, he, d.pp("linear_0"))?,
            fc1: linear_init(h, h, he, d.pp("fc1"))?,
            out: linear_init(h, cfg.output_len(), WeightInit::PyTorch, d.pp("out"))?,
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
        })
    }

    /// fragments (N, fragment_len) -> (content (N, dc) before quantisation, style (N, ds))
    pub fn encode(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
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
            // unit norm (times the square root of its length, so entries stay near 1): where
            // the peaks or strokes are, not how strong they are
            let scale = (view.dim(1)? as f64).sqrt();
            let norm = (view.sqr()?.sum_keepdim(1)? + 1e-8)?.sqrt()?;
            let view = (view.broadcast_div(&norm)? * scale)?;
            let hc = fc1.forward(&view)?.gelu()?;
            let hc = fc2.forward(&hc)?.gelu()?;
            let hc = head.forward(&hc)?.gelu()?;
            let h = self.enc.fc1.forward(&x)?.gelu()?;
            let h = self.enc.fc2.forward(&h)?.gelu()?;
            let h = self.enc.linear_1.forward(&h)?.gelu()?;
            return Ok((
                self.enc.linear_c.forward(&hc)?,
                self.enc.linear_s.forward(&h)?,
            ));
        }
        let x = match cepstrum {
            Some(c) => Tensor::cat(&[&x, &c], 1)?,
            None => x,
        };
        let h = self.enc.fc1.forward(&x)?.gelu()?;
        let h = self.enc.fc2.forward(&h)?.gelu()?;
        let h = self.enc.linear_1.forward(&h)?.gelu()?;
        let dc = self.cfg.content_dim;
        let content = self.enc.linear_c.forward(&h.narrow(1, 0, dc)?)?;
        let style = self
            .enc
            .linear_s
            .forward(&h.narrow(1, dc, self.cfg.style_dim)?)?;
        Ok((content, style))
    }

    /// (content (N, dc), style (N, ds)) -> fragments (N, fragment_len)
    pub fn decode(&self, content: &Tensor, style: &Tensor) -> Result<Tensor> {
        let c = self.dec.linear_c.forward(content)?.gelu()?;
        let s = self.dec.linear_s.forward(style)?.gelu()?;
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
