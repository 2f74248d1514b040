//! Training of V3: presets, the V3 loss (DESIGN.md), and the worker's Trainer.

use anyhow::Context;
use candle_core::{Device, Tensor};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use super::data::{Dataset, Domain};
use super::eval::{self, Summary};
use super::model::{CODEBOOK_PREFIX, ModelConfig, STATS_PREFIX, V3Model, mean_pairwise_distance};
use super::{Lab, family_name};
use crate::nn::checkpoint::Metadata;
use crate::worker::trainer::{constant_lr, unknown_preset};
use crate::worker::{
    CoreTrainer, OptimiserSettings, StepStats, Trainer, TrainerCore, ensure_steps,
};

/// Everything that defines a training run besides the data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub preset: String,
    pub model: ModelConfig,
    /// samples per batch (each of `domain.fragments()` fragments)
    pub batch: usize,
    pub lr: f64,
    pub weight_decay: f64,
    /// r of the hinge terms relu(r - ratio) / r
    pub relativity: f64,
    pub commitment: f64,
    /// fragments encoded for the k-means start of the codebook
    pub kmeans_fragments: usize,
    /// the learning rate follows a cosine from `lr` down to `lr * lr_final` over the run (the
    /// official code decays it too, exponentially); 1 keeps it constant
    #[serde(default = "constant_lr")]
    pub lr_final: f64,
    /// at this share of the run, start the atoms again at k-means centres of the content
    /// latents, which by then are organised by content: atoms caught early between two labels
    /// (or holding two) get a fresh start; 0 never
    #[serde(default)]
    pub kmeans_again_at: f64,
    /// in training, the fragments of a sample take different atoms (the assignment of least
    /// total distance, rather than each its nearest): every sample holds each content once,
    /// which is what the V3 content constraint asks for softly. Evaluation and use always take
    /// the nearest atom
    #[serde(default)]
    pub distinct_atoms: bool,
    pub steps: u64,
}

pub const PRESETS: [&str; 3] = ["fast", "mlp", "paper"];

impl TrainConfig {
    pub fn preset(domain: Domain, name: &str) -> anyhow::Result<Self> {
        let atoms = domain.fragments();
        let notes = domain == Domain::Notes;
        // the first shipped preset, now `mlp`: MLP trunks, the content trunk on the unit-norm
        // cepstrum (notes) or ink map (digits)
        let mlp = Self {
            preset: "mlp".into(),
            model: ModelConfig {
                domain,
                hidden: 256,
                content_dim: 16,
                style_dim: 16,
                atoms,
                pool: if notes { 4 } else { 1 },
                vq_decay: 0.95,
                dead_code_threshold: 1.0,
                rank: if notes { 8 } else { 0 },
                cepstrum: if notes { 64 } else { 0 },
                cepstrum_start: 4.0,
                cepstrum_step: 1.0,
                content_trunk: true,
                conv: 0,
                factored_decoder: false,
                colour_style: false,
                style_whiten: false,
                style_discriminant: 0,
            },
            batch: 8,
            lr: 1e-3,
            weight_decay: 0.1,
            relativity: 15.0,
            commitment: 0.1,
            kmeans_fragments: 1024,
            lr_final: 0.05,
            kmeans_again_at: 0.0,
            distinct_atoms: false,
            steps: 800,
        };
        // convolutional content trunks, the factored decoder, and the atoms started again at
        // k-means centres half way (models/README.md has the measurements behind each)
        let fast = Self {
            preset: "fast".into(),
            model: ModelConfig {
                pool: 1,
                cepstrum: 0,
                conv: 16,
                factored_decoder: true,
                colour_style: !notes,
                // notes: the style trunk reads the octave-band view whitened by the
                // within-sample covariance and cut to the 16 directions in which whole
                // samples differ most (style kNN AUC 0.965 / 0.972 over two seeds, against
                // 0.77-0.85 without: models/README.md)
                style_whiten: notes,
                style_discriminant: if notes { 16 } else { 0 },
                ..mlp.model.clone()
            },
            kmeans_again_at: 0.5,
            distinct_atoms: true,
            // notes: 1500 steps (110 s on 2 quiet cores), after which every atom decoded in
            // every picked instrument reads back as that instrument (tests/v3.rs); at 600
            // steps one or two atoms in 24 did not
            steps: if notes { 1500 } else { 1000 },
            ..mlp.clone()
        };
        Ok(match name {
            "fast" | "default" => fast,
            "mlp" => mlp,
            // the published sizes (cfg_v3_insnotes.yaml, cfg_v3_phonenums.yaml): 512 channels,
            // 512-dim content and style, EMA decay 0.95, dead-code threshold 16, batch 32, on
            // the `mlp` layout
            "paper" => Self {
                preset: "paper".into(),
                model: ModelConfig {
                    hidden: 512,
                    content_dim: 512,
                    style_dim: 512,
                    pool: 1,
                    dead_code_threshold: 16.0,
                    rank: 0,
                    ..mlp.model
                },
                batch: 32,
                steps: 20_000,
                ..mlp
            },
            other => return Err(unknown_preset(family_name(domain), other, &PRESETS)),
        })
    }
}

/// The whitening of the style's band view (`style_whiten`), from the training samples: the
/// mean view, and the inverse square root of the within-sample covariance (each fragment's
/// view less its sample's mean), regularised by a tenth of its mean eigenvalue.
fn fit_style_whitening(model: &V3Model, data: &Dataset) -> anyhow::Result<()> {
    let len = data.fragment_len();
    let mut views: Vec<Vec<f64>> = Vec::new();
    let mut centred: Vec<Vec<f64>> = Vec::new();
    for sample in &data.train {
        let n = sample.len();
        let x = Tensor::from_vec(sample.fragments.clone(), (n, len), &Device::Cpu)?;
        let view = model
            .style_band_view(&x)?
            .context("style_whiten needs a notes model with convolutional trunks")?
            .to_vec2::<f32>()?;
        let f = view[0].len();
        let mean: Vec<f64> = (0..f)
            .map(|k| view.iter().map(|r| r[k] as f64).sum::<f64>() / n as f64)
            .collect();
        for r in &view {
            centred.push(r.iter().zip(&mean).map(|(a, m)| *a as f64 - m).collect());
            views.push(r.iter().map(|a| *a as f64).collect());
        }
    }
    let (rows, f) = (views.len(), views[0].len());
    let mean: Vec<f64> = (0..f)
        .map(|k| views.iter().map(|r| r[k]).sum::<f64>() / rows as f64)
        .collect();
    let mut cov = vec![0f64; f * f];
    for r in &centred {
        for i in 0..f {
            for j in i..f {
                cov[i * f + j] += r[i] * r[j] / rows as f64;
            }
        }
    }
    for i in 0..f {
        for j in 0..i {
            cov[i * f + j] = cov[j * f + i];
        }
    }
    let trace: f64 = (0..f).map(|i| cov[i * f + i]).sum();
    for i in 0..f {
        cov[i * f + i] += 0.1 * trace / f as f64;
    }
    let white = inverse_sqrt(&cov, f)?;
    let k = model.cfg.style_view_len();
    let matrix = if k < f {
        // the between-sample covariance of the whitened sample means, and its top k
        // eigenvectors: the whitening matrix times them projects onto those directions
        let per = data.train[0].len();
        let mut between = vec![0f64; f * f];
        for s in views.chunks(per) {
            let m: Vec<f64> = (0..f)
                .map(|c| s.iter().map(|r| r[c]).sum::<f64>() / s.len() as f64 - mean[c])
                .collect();
            let w: Vec<f64> = (0..f)
                .map(|c| (0..f).map(|r| m[r] * white[r * f + c]).sum())
                .collect();
            for i in 0..f {
                for j in 0..f {
                    between[i * f + j] += w[i] * w[j];
                }
            }
        }
        let top = crate::metrics::top_eigenvectors(&between, f, k, 5000);
        let mut m = vec![0f64; f * k];
        for r in 0..f {
            for (c, v) in top.iter().enumerate() {
                m[r * k + c] = (0..f).map(|i| white[r * f + i] * v[i]).sum();
            }
        }
        // each direction scaled to unit spread over the training fragments, so that the
        // trunk starts on inputs of the usual size (whitened, the directions in which
        // samples differ have spreads in the tens)
        for c in 0..k {
            let var = views
                .iter()
                .map(|r| {
                    let p: f64 = (0..f).map(|i| (r[i] - mean[i]) * m[i * k + c]).sum();
                    p * p
                })
                .sum::<f64>()
                / rows as f64;
            let scale = 1.0 / var.sqrt().max(1e-12);
            for r in 0..f {
                m[r * k + c] *= scale;
            }
        }
        m
    } else {
        white
    };
    model.set_style_whitening(
        mean.iter().map(|&v| v as f32).collect(),
        matrix.iter().map(|&v| v as f32).collect(),
    )?;
    Ok(())
}

/// A^(-1/2) of a symmetric positive definite (f, f) matrix, by the coupled Newton-Schulz
/// iteration (Higham, "Functions of Matrices", 2008, eq. 6.35) on A scaled to unit Frobenius
/// norm.
fn inverse_sqrt(a: &[f64], f: usize) -> candle_core::Result<Vec<f64>> {
    let dev = Device::Cpu;
    let norm = a.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-300);
    let eye = Tensor::eye(f, candle_core::DType::F64, &dev)?;
    let mut y = (Tensor::from_slice(a, (f, f), &dev)? / norm)?;
    let mut z = eye.clone();
    for _ in 0..60 {
        let t = ((eye.affine(3.0, 0.0)? - z.matmul(&y)?)? * 0.5)?;
        y = y.matmul(&t)?;
        z = t.matmul(&z)?;
    }
    (z / norm.sqrt())?.flatten_all()?.to_vec1::<f64>()
}

/// One batch's loss: the total to minimise, its parts, and the content latents and atoms the
/// codebook's EMA update needs.
struct BatchLoss {
    total: Tensor,
    parts: Vec<(&'static str, f64)>,
    content: Tensor,
    codes: Vec<u32>,
}

pub struct V3Trainer {
    pub cfg: TrainConfig,
    core: TrainerCore,
    model: V3Model,
    data: Dataset,
    summary: Summary,
}

impl V3Trainer {
    pub fn new(cfg: TrainConfig, data: Dataset, seed: u64) -> anyhow::Result<Self> {
        ensure_steps(cfg.batch, cfg.steps)?;
        anyhow::ensure!(
            data.train.len() >= 2,
            "{}: V3 needs at least two training samples",
            data.source
        );
        anyhow::ensure!(
            data.domain == cfg.model.domain,
            "{}: data of the wrong kind for this model",
            data.source
        );
        // The seed fixes the starting weights (drawn again with our own generator: candle's
        // CPU generator cannot be seeded), data order, k-means and restarts.
        let (varmap, vb) = crate::nn::new_varmap();
        let model = V3Model::new(&cfg.model, vb)?;
        let mut rng = StdRng::seed_from_u64(seed);
        crate::nn::seeded_init(
            &varmap,
            |name| {
                if name.starts_with(CODEBOOK_PREFIX) || name.starts_with(STATS_PREFIX) {
                    None
                } else if name.starts_with("decoder.out.")
                    || name.starts_with("decoder.content_out.")
                {
                    Some(crate::nn::WeightInit::PyTorch)
                } else {
                    Some(crate::nn::WeightInit::He)
                }
            },
            &mut rng,
        )?;
        if cfg.model.style_whiten {
            fit_style_whitening(&model, &data)?;
        }
        // the codebook follows its EMA, never the optimiser (weight decay would shrink it); so
        // do running statistics
        let settings = OptimiserSettings {
            weight_decay: cfg.weight_decay,
            frozen: &[CODEBOOK_PREFIX, STATS_PREFIX],
            ..OptimiserSettings::adam(cfg.lr)
        };
        let core = TrainerCore::new(varmap, rng, seed, cfg.steps, settings)?;
        Ok(Self {
            core: core.with_epochs(data.train.len()),
            cfg,
            model,
            data,
            summary: Summary::default(),
        })
    }

    fn batch_tensor(&self, batch: &[usize]) -> anyhow::Result<(Tensor, usize)> {
        let len = self.data.fragment_len();
        let n = self.data.train[batch[0]].len();
        let mut flat = Vec::with_capacity(batch.len() * n * len);
        for &i in batch {
            let s = &self.data.train[i];
            anyhow::ensure!(s.len() == n, "samples of different lengths");
            flat.extend_from_slice(&s.fragments);
        }
        Ok((
            Tensor::from_vec(flat, (batch.len() * n, len), &Device::Cpu)?,
            n,
        ))
    }

    /// Start the codebook at k-means centres of the content latents of training fragments.
    fn init_codebook(&mut self) -> anyhow::Result<()> {
        let (frags, _, _) = Dataset::flatten(&self.data.train);
        let n = self.data.train[0].len();
        // whole samples (for `distinct_atoms`), spread over the training set
        let samples = self.data.train.len();
        let want = (self.cfg.kmeans_fragments / n.max(1)).clamp(1, samples);
        let picked: Vec<&[f32]> = (0..want)
            .map(|i| i * samples / want)
            .flat_map(|s| frags[s * n..(s + 1) * n].iter().copied())
            .collect();
        let enc = self.model.encode_all(&picked)?;
        let per_batch = (self.cfg.batch * n) as f64;
        let sample = if self.cfg.distinct_atoms { n } else { 0 };
        self.model
            .codebook
            .init_kmeans(&enc.content, sample, per_batch, &mut self.core.rng)?;
        Ok(())
    }

    /// The V3 loss on one batch: reconstruction MSE, four hinge terms on ratios of mean
    /// pairwise distances, and the VQ commitment; returns the total and its parts.
    fn loss(&mut self) -> anyhow::Result<BatchLoss> {
        let cfg = self.cfg.clone();
        let batch = self.core.batch(cfg.batch);
        let (x, n) = self.batch_tensor(&batch)?;
        let b = batch.len();
        let (content, style) = self.model.encode(&x)?;
        let (idx, q) = if cfg.distinct_atoms {
            self.model.codebook.quantize_samples(&content, n)?
        } else {
            self.model.codebook.quantize(&content)?
        };
        // straight-through: the value of the atom, the gradient of the latent
        let content_vq = (&content + (&q - &content)?.detach())?;
        let recon = self.model.decode(&content_vq, &style)?;
        let recon_loss = (&recon - &x)?.sqr()?.mean_all()?;
        let commit_loss = (&content - &q)?.sqr()?.mean_all()?;

        let (dc, ds) = (cfg.model.content_dim, cfg.model.style_dim);
        let c3 = content.reshape((b, n, dc))?;
        let cq3 = content_vq.reshape((b, n, dc))?;
        let s3 = style.reshape((b, n, ds))?;
        let across = |t: &Tensor| -> candle_core::Result<Tensor> {
            mean_pairwise_distance(&t.mean(1)?.unsqueeze(0)?)?.squeeze(0)
        };
        let content_frag = ((mean_pairwise_distance(&c3)? * 0.5)?
            + (mean_pairwise_distance(&cq3)? * 0.5)?)?
            .mean_all()?;
        let content_samp = ((across(&c3)? * 0.5)? + (across(&cq3)? * 0.5)?)?;
        let style_frag = mean_pairwise_distance(&s3)?.mean_all()?;
        let style_samp = across(&s3)?;
        let r = cfg.relativity;
        let eps = 1e-5;
        let hinge = |num: &Tensor, den: &Tensor| -> candle_core::Result<Tensor> {
            ((num / (den + eps)?)?.neg()? + r)?.relu()? / r
        };
        let content_loss = hinge(&content_frag, &content_samp)?;
        let style_loss = hinge(&style_samp, &style_frag)?;
        let sample_loss = hinge(&style_samp, &content_samp)?;
        let fragment_loss = hinge(&content_frag, &style_frag)?;
        let total = (&recon_loss
            + &content_loss
            + &style_loss
            + &sample_loss
            + &fragment_loss
            + (&commit_loss * cfg.commitment)?)?;
        let scalar = |t: &Tensor| -> anyhow::Result<f64> { Ok(t.to_scalar::<f32>()? as f64) };
        let parts = vec![
            ("total", scalar(&total)?),
            ("recon", scalar(&recon_loss)?),
            ("content", scalar(&content_loss)?),
            ("style", scalar(&style_loss)?),
            ("sample", scalar(&sample_loss)?),
            ("fragment", scalar(&fragment_loss)?),
            ("commit", scalar(&commit_loss)?),
        ];
        Ok(BatchLoss {
            total,
            parts,
            content,
            codes: idx,
        })
    }

    pub fn lab(&self) -> anyhow::Result<Lab> {
        Lab::from_snapshot(&self.snapshot()?)
    }

    pub fn data(&self) -> &Dataset {
        &self.data
    }
}

impl CoreTrainer for V3Trainer {
    crate::worker::trainer::hold_core!();

    fn metadata(&self) -> Metadata {
        let family = family_name(self.cfg.model.domain);
        let config = super::config_json(&self.cfg, &self.summary);
        self.core
            .metadata(family, &self.cfg.preset, config, &self.data.source)
    }

    fn train_step(&mut self) -> anyhow::Result<StepStats> {
        let step = self.core.step;
        let again = (self.cfg.kmeans_again_at * self.cfg.steps as f64).round() as u64;
        if !self.model.codebook.is_initialised()? || (again > 0 && step == again) {
            self.init_codebook()?;
        }
        let BatchLoss {
            total,
            parts,
            content,
            codes,
        } = self.loss()?;
        let (lr, steps) = (self.cfg.lr, self.cfg.steps);
        let lr = crate::nn::cosine_schedule(lr, lr * self.cfg.lr_final, step, steps, 0.0);
        let mut stats = self.core.update(&total, Some(lr), parts)?;
        let restarted = self
            .model
            .codebook
            .update(&content, &codes, &mut self.core.rng)?;
        stats.losses.push(("restarted_atoms", restarted as f64));
        Ok(stats)
    }

    fn quick_metrics(&mut self) -> anyhow::Result<Vec<(String, f64)>> {
        self.summary = eval::evaluate(&self.model, &self.data)?;
        self.core.metrics = self.summary.metrics.clone();
        Ok(self.summary.metrics.clone().into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn inverse_sqrt_whitens_a_symmetric_positive_definite_matrix() {
        // A = B B^T + I for a fixed B, condition number in the hundreds
        let f = 6;
        let b: Vec<f64> = (0..f * f)
            .map(|i| ((i * 7 + 3) % 11) as f64 - 5.0)
            .collect();
        let mut a = vec![0f64; f * f];
        for i in 0..f {
            for j in 0..f {
                a[i * f + j] = (0..f).map(|k| b[i * f + k] * b[j * f + k]).sum::<f64>()
                    + if i == j { 1.0 } else { 0.0 };
            }
        }
        let w = inverse_sqrt(&a, f).unwrap();
        // W A W = I
        let mul = |x: &[f64], y: &[f64]| -> Vec<f64> {
            (0..f * f)
                .map(|ij| {
                    (0..f)
                        .map(|k| x[(ij / f) * f + k] * y[k * f + ij % f])
                        .sum()
                })
                .collect()
        };
        let waw = mul(&mul(&w, &a), &w);
        for i in 0..f {
            for j in 0..f {
                let want = if i == j { 1.0 } else { 0.0 };
                assert!(
                    (waw[i * f + j] - want).abs() < 1e-8,
                    "{i},{j}: {}",
                    waw[i * f + j]
                );
            }
        }
    }

    /// The seed fixes the run's weights, codebook included (a few steps on synthetic digits).
    #[test]
    fn the_seed_fixes_the_weights() {
        let data = Dataset::synthetic(Domain::Digits, 8, 0);
        let cfg = TrainConfig {
            batch: 2,
            steps: 4,
            ..TrainConfig::preset(Domain::Digits, "fast").unwrap()
        };
        crate::worker::trainer::assert_the_seed_fixes_the_run(
            &|seed| Ok(Box::new(V3Trainer::new(cfg.clone(), data.clone(), seed)?)),
            4,
        );
    }
}
