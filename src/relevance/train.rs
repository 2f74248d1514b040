//! Training of the relevance beta-VAE: presets, standardisation, the loss
//! (Gaussian reconstruction + beta * KL) and the worker's Trainer.

use candle_core::{Device, Tensor};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

use super::data::{DEFAULT_EVENTS, Dataset};
use super::eval::{self, RelevanceReport};
use super::model::{ModelConfig, RelevanceVae};
use super::{FAMILY, HistoryPoint, Lab};
use crate::nn::checkpoint::Metadata;
use crate::nn::{WeightInit, kl_sum, new_varmap};
use crate::worker::trainer::unknown_preset;
use crate::worker::{CoreTrainer, Snapshot, StepStats, Trainer, TrainerCore};

/// Everything that defines a training run besides the data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub preset: String,
    /// `input` is set from the data when training starts
    pub model: ModelConfig,
    /// weight of the KL term; with unit-variance Gaussian reconstruction on standardised
    /// features, a direction of the data is worth a latent when the variance it explains
    /// is well above beta
    pub beta: f64,
    /// latent dimensions are opened to the decoder one at a time, one more every
    /// `unlock_every` steps; a closed dimension reaches the decoder as 0 and still pays its KL,
    /// so it sits at the prior until opened, and is used after that only when it is worth its
    /// KL. The first dimensions learn the data alone, so a closed manifold (a circle, a
    /// sphere) is cut open onto as few latents as it needs instead of being stored as a ring
    /// or a shell in one dimension more (0 = every dimension open from the start)
    #[serde(default)]
    pub unlock_every: u64,
    pub lr: f64,
    pub batch: usize,
    pub steps: u64,
    /// events a generator makes (files give what they hold)
    pub events: usize,
    /// held-out events used for the relevance reported while training
    pub eval_events: usize,
}

pub const PRESETS: [&str; 3] = ["fast", "long", "all-open"];
pub const DEFAULT_LATENT: usize = 8;
pub const DEFAULT_BETA: f64 = 0.02;
/// steps between the opening of one latent and the next in the default presets
pub const UNLOCK_EVERY: u64 = 750;

impl TrainConfig {
    pub fn preset(name: &str) -> anyhow::Result<Self> {
        let fast = Self {
            preset: "fast".into(),
            model: ModelConfig {
                input: 0,
                latent: DEFAULT_LATENT,
                hidden: 64,
                init: WeightInit::PyTorch,
            },
            beta: DEFAULT_BETA,
            unlock_every: UNLOCK_EVERY,
            lr: 1e-3,
            batch: 256,
            steps: 10_000,
            events: DEFAULT_EVENTS,
            eval_events: 2000,
        };
        Ok(match name {
            "fast" | "default" => fast,
            "long" => Self {
                preset: "long".into(),
                steps: 30_000,
                ..fast
            },
            // the ablation: every latent open from the start (closed factors become rings)
            "all-open" => Self {
                preset: "all-open".into(),
                unlock_every: 0,
                ..fast
            },
            other => return Err(unknown_preset(FAMILY, other, &PRESETS)),
        })
    }
}

/// Per-feature mean and standard deviation of the training events; the model sees
/// (x - mean) / std. A constant feature (the muon energy at an e+e- collider) keeps std 1.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Standardizer {
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
}

impl Standardizer {
    pub fn fit(data: &Dataset, rows: &[usize]) -> Self {
        let d = data.dim();
        let n = rows.len().max(1) as f64;
        let mut mean = vec![0f64; d];
        for &i in rows {
            for (m, &v) in mean.iter_mut().zip(data.row(i)) {
                *m += v as f64 / n;
            }
        }
        let mut var = vec![0f64; d];
        for &i in rows {
            for ((s, &v), m) in var.iter_mut().zip(data.row(i)).zip(&mean) {
                *s += (v as f64 - m).powi(2) / n;
            }
        }
        let std = var
            .iter()
            .zip(&mean)
            .map(|(v, m)| {
                let s = v.sqrt();
                // spread at the level of f32 rounding is no spread
                if s > 1e-6 * m.abs().max(1e-6) { s } else { 1.0 }
            })
            .collect();
        Self { mean, std }
    }

    pub fn dim(&self) -> usize {
        self.mean.len()
    }

    pub fn apply(&self, rows: &[f32]) -> Vec<f32> {
        let d = self.dim().max(1);
        rows.iter()
            .enumerate()
            .map(|(k, &v)| ((v as f64 - self.mean[k % d]) / self.std[k % d]) as f32)
            .collect()
    }

    pub fn invert(&self, rows: &[f32]) -> Vec<f32> {
        let d = self.dim().max(1);
        rows.iter()
            .enumerate()
            .map(|(k, &v)| (v as f64 * self.std[k % d] + self.mean[k % d]) as f32)
            .collect()
    }
}

/// Standardised features of some rows as an (N, d) tensor.
pub fn feature_tensor(
    data: &Dataset,
    rows: &[usize],
    standardizer: &Standardizer,
) -> candle_core::Result<Tensor> {
    Tensor::from_vec(
        standardizer.apply(&data.gather(rows)),
        (rows.len(), data.dim()),
        &Device::Cpu,
    )
}

pub struct RelevanceTrainer {
    pub cfg: TrainConfig,
    core: TrainerCore,
    model: RelevanceVae,
    standardizer: Standardizer,
    columns: Vec<String>,
    source: String,
    intrinsic_dim: Option<usize>,
    train_x: Tensor,
    eval_x: Tensor,
    held_out_x: Tensor,
    history: Vec<HistoryPoint>,
}

/// The most history points a checkpoint keeps (older ones are thinned out evenly).
const MAX_HISTORY: usize = 400;

impl RelevanceTrainer {
    pub fn new(mut cfg: TrainConfig, data: &Dataset, seed: u64) -> anyhow::Result<Self> {
        let train_rows = data.train_indices();
        let held_out = data.held_out_indices();
        anyhow::ensure!(
            train_rows.len() >= 2 && !held_out.is_empty(),
            "{}: {} events are too few to train on (at least {} are needed)",
            data.source,
            data.len(),
            2 * super::data::HELD_OUT_EVERY
        );
        anyhow::ensure!(
            cfg.model.latent >= 1 && cfg.model.latent <= 256,
            "latent size {} (1 to 256)",
            cfg.model.latent
        );
        anyhow::ensure!(
            cfg.beta.is_finite() && cfg.beta >= 0.0,
            "beta {} must be a number >= 0",
            cfg.beta
        );
        cfg.model.input = data.dim();
        cfg.batch = cfg.batch.clamp(1, train_rows.len());
        let standardizer = Standardizer::fit(data, &train_rows);
        let (varmap, vb) = new_varmap();
        let model = RelevanceVae::new(&cfg.model, vb)?;
        let mut rng = StdRng::seed_from_u64(seed);
        let init = cfg.model.init;
        crate::nn::seeded_init(&varmap, |_| Some(init), &mut rng)?;
        let core =
            TrainerCore::adam(varmap, rng, seed, cfg.steps, cfg.lr)?.with_epochs(train_rows.len());
        let eval_rows: Vec<usize> = held_out
            .iter()
            .copied()
            .take(cfg.eval_events.max(1))
            .collect();
        let train_x = feature_tensor(data, &train_rows, &standardizer)?;
        let eval_x = feature_tensor(data, &eval_rows, &standardizer)?;
        let held_out_x = feature_tensor(data, &held_out, &standardizer)?;
        Ok(Self {
            cfg,
            core,
            model,
            standardizer,
            columns: data.columns.clone(),
            source: data.source.clone(),
            intrinsic_dim: data.intrinsic_dim,
            train_x,
            eval_x,
            held_out_x,
            history: Vec::new(),
        })
    }

    fn next_batch(&mut self) -> candle_core::Result<Tensor> {
        let idx: Vec<u32> = (self.core.batch(self.cfg.batch))
            .into_iter()
            .map(|i| i as u32)
            .collect();
        let len = idx.len();
        self.train_x
            .index_select(&Tensor::from_vec(idx, len, &Device::Cpu)?, 0)
    }

    /// recon + beta * KL per event, and its parts.
    fn loss(&mut self) -> anyhow::Result<(Tensor, Vec<(&'static str, f64)>)> {
        let x = self.next_batch()?;
        let (b, l) = (x.dim(0)?, self.cfg.model.latent);
        let (mu, logvar) = self.model.encode(&x)?;
        let eps: Vec<f32> = (0..b * l)
            .map(|_| self.core.rng.sample::<f32, _>(StandardNormal))
            .collect();
        let eps = Tensor::from_vec(eps, (b, l), &Device::Cpu)?;
        let z = (&mu + (eps * (&logvar * 0.5)?.exp()?)?)?;
        let open = self.open_dims();
        let z = if open < l {
            let mask: Vec<f32> = (0..l).map(|i| if i < open { 1.0 } else { 0.0 }).collect();
            z.broadcast_mul(&Tensor::from_vec(mask, (1, l), &Device::Cpu)?)?
        } else {
            z
        };
        let x_hat = self.model.decode(&z)?;
        let recon = ((x_hat - &x)?.sqr()?.sum_all()? * (0.5 / b as f64))?;
        let kl = (kl_sum(&mu, &logvar)? / b as f64)?;
        let total = (&recon + (&kl * self.cfg.beta)?)?;
        let losses = vec![
            ("total", total.to_scalar::<f32>()? as f64),
            ("recon", recon.to_scalar::<f32>()? as f64),
            ("kl", kl.to_scalar::<f32>()? as f64),
        ];
        Ok((total, losses))
    }

    /// How many latent dimensions the decoder sees at the current step (see
    /// [`TrainConfig::unlock_every`]).
    pub fn open_dims(&self) -> usize {
        let l = self.cfg.model.latent;
        match self.cfg.unlock_every {
            0 => l,
            every => (1 + self.core.step / every).min(l as u64) as usize,
        }
    }

    fn record(&mut self, report: &RelevanceReport) -> Vec<(String, f64)> {
        let values = eval::report_metrics(report);
        let step = self.core.step;
        let values = self.core.record(values);
        if self.history.last().is_none_or(|h| h.step != step) {
            self.history.push(HistoryPoint {
                step,
                relevance: report.relevance.clone(),
            });
        }
        if self.history.len() > MAX_HISTORY {
            let last = self.history.pop();
            self.history = self.history.iter().step_by(2).cloned().collect();
            self.history.extend(last);
        }
        values
    }

    pub fn lab(&self) -> anyhow::Result<Lab> {
        Lab::from_snapshot(&self.snapshot()?)
    }
}

impl CoreTrainer for RelevanceTrainer {
    crate::worker::trainer::hold_core!();

    fn metadata(&self) -> Metadata {
        let config = super::config_json(
            &self.cfg,
            &self.standardizer,
            &self.columns,
            self.intrinsic_dim,
            &self.history,
        );
        self.core
            .metadata(FAMILY, &self.cfg.preset, config, &self.source)
    }

    fn train_step(&mut self) -> anyhow::Result<StepStats> {
        let (total, losses) = self.loss()?;
        self.core.update(&total, None, losses)
    }

    fn quick_metrics(&mut self) -> anyhow::Result<Vec<(String, f64)>> {
        let report = eval::relevance(&self.model, &self.eval_x)?;
        let mut values = self.record(&report);
        values.push(("open_dims".into(), self.open_dims() as f64));
        Ok(values)
    }

    /// The relevance on every held-out event, recorded in the checkpoint.
    fn all_metrics(&mut self) -> anyhow::Result<Vec<(String, f64)>> {
        let report = eval::relevance(&self.model, &self.held_out_x)?;
        let mut values = self.record(&report);
        if let Some(d) = self.intrinsic_dim {
            values.push(("intrinsic_dim".into(), d as f64));
            self.core.metrics.insert("intrinsic_dim".into(), d as f64);
        }
        Ok(values)
    }
}

/// A beta sweep: one training per beta on the same data and seed, in sequence, each
/// reporting its relevant dimensions when it ends (`sweep_<k>_beta`, `sweep_<k>_relevant_dims`).
pub struct SweepTrainer {
    cfg: TrainConfig,
    betas: Vec<f64>,
    data: Dataset,
    seed: u64,
    current: RelevanceTrainer,
    index: usize,
    /// (beta, relevant dims) of every finished training
    pub results: Vec<(f64, usize)>,
}

impl SweepTrainer {
    pub fn new(
        cfg: TrainConfig,
        betas: Vec<f64>,
        data: Dataset,
        seed: u64,
    ) -> anyhow::Result<Self> {
        anyhow::ensure!(!betas.is_empty(), "a sweep needs at least one beta");
        anyhow::ensure!(
            betas.iter().all(|b| b.is_finite() && *b >= 0.0),
            "every beta must be a number >= 0"
        );
        let current = RelevanceTrainer::new(
            TrainConfig {
                beta: betas[0],
                ..cfg.clone()
            },
            &data,
            seed,
        )?;
        Ok(Self {
            cfg,
            betas,
            data,
            seed,
            current,
            index: 0,
            results: Vec::new(),
        })
    }

    fn result_metrics(&self) -> Vec<(String, f64)> {
        let mut out = vec![("beta".to_string(), self.betas[self.index])];
        for (k, (beta, dims)) in self.results.iter().enumerate() {
            out.push((format!("sweep_{k}_beta"), *beta));
            out.push((format!("sweep_{k}_relevant_dims"), *dims as f64));
        }
        out
    }

    /// Close the current training: its relevance on every held-out event becomes a result.
    fn finish_current(&mut self) -> anyhow::Result<Vec<(String, f64)>> {
        let values = self.current.final_metrics()?;
        let dims = values
            .iter()
            .find(|(k, _)| k == "relevant_dims")
            .map_or(0, |v| v.1 as usize);
        self.results.push((self.betas[self.index], dims));
        Ok(values)
    }
}

impl Trainer for SweepTrainer {
    fn total_steps(&self) -> u64 {
        self.cfg.steps * self.betas.len() as u64
    }

    fn steps_done(&self) -> u64 {
        self.cfg.steps * self.index as u64 + self.current.steps_done()
    }

    fn step(&mut self) -> anyhow::Result<StepStats> {
        if self.current.steps_done() >= self.cfg.steps && self.index + 1 < self.betas.len() {
            self.finish_current()?;
            self.index += 1;
            let cfg = TrainConfig {
                beta: self.betas[self.index],
                ..self.cfg.clone()
            };
            self.current = RelevanceTrainer::new(cfg, &self.data, self.seed)?;
        }
        let stats = self.current.step()?;
        Ok(StepStats {
            step: self.steps_done(),
            losses: stats.losses,
        })
    }

    fn evaluate(&mut self) -> anyhow::Result<Vec<(String, f64)>> {
        let mut values = self.current.evaluate()?;
        values.extend(self.result_metrics());
        Ok(values)
    }

    fn final_metrics(&mut self) -> anyhow::Result<Vec<(String, f64)>> {
        let mut values = self.finish_current()?;
        values.extend(self.result_metrics());
        Ok(values)
    }

    fn snapshot(&self) -> anyhow::Result<Snapshot> {
        self.current.snapshot()
    }

    fn restore(&mut self, snapshot: &Snapshot) -> anyhow::Result<()> {
        self.current.restore(snapshot)
    }
}

/// (beta, relevant dims) pairs from a sweep's metrics.
pub fn sweep_results<'a>(metrics: impl IntoIterator<Item = (&'a str, f64)>) -> Vec<(f64, usize)> {
    let mut betas = std::collections::BTreeMap::new();
    let mut dims = std::collections::BTreeMap::new();
    for (k, v) in metrics {
        let Some(rest) = k.strip_prefix("sweep_") else {
            continue;
        };
        if let Some(i) = rest
            .strip_suffix("_beta")
            .and_then(|i| i.parse::<usize>().ok())
        {
            betas.insert(i, v);
        } else if let Some(i) = rest
            .strip_suffix("_relevant_dims")
            .and_then(|i| i.parse::<usize>().ok())
        {
            dims.insert(i, v as usize);
        }
    }
    betas
        .into_iter()
        .filter_map(|(i, b)| dims.get(&i).map(|d| (b, *d)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relevance::data::{Generator, generate};

    #[test]
    fn standardizer_round_trips_and_keeps_constant_features() {
        let ds = generate(Generator::EeMuMu, 500, 1);
        let rows = ds.train_indices();
        let s = Standardizer::fit(&ds, &rows);
        // the muon energies are constant at an e+e- collider
        assert_eq!((s.std[0], s.std[4]), (1.0, 1.0));
        let x = ds.gather(&rows);
        let z = s.apply(&x);
        let d = ds.dim();
        for j in 1..4 {
            let col: Vec<f32> = z.iter().skip(j).step_by(d).copied().collect();
            let mean = col.iter().sum::<f32>() / col.len() as f32;
            let var = col.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / col.len() as f32;
            assert!(
                mean.abs() < 1e-4 && (var - 1.0).abs() < 1e-3,
                "column {j}: mean {mean} var {var}"
            );
        }
        let back = s.invert(&z);
        assert!(back.iter().zip(&x).all(|(a, b)| (a - b).abs() < 1e-3));
    }

    #[test]
    fn sweep_trains_each_beta_and_a_huge_beta_uses_no_latent() -> anyhow::Result<()> {
        let ds = generate(Generator::Circle, 2000, 5);
        let mut cfg = TrainConfig::preset("fast")?;
        cfg.steps = 600;
        let mut sweep = SweepTrainer::new(cfg, vec![0.01, 30.0], ds, 5)?;
        assert_eq!(sweep.total_steps(), 1200);
        while sweep.steps_done() < sweep.total_steps() {
            sweep.step()?;
        }
        let values = sweep.final_metrics()?;
        let results = sweep_results(values.iter().map(|(k, v)| (k.as_str(), *v)));
        assert_eq!(results.len(), 2, "{values:?}");
        assert_eq!(results[0].0, 0.01);
        assert!(
            results[0].1 >= 1,
            "a small beta keeps the circle: {results:?}"
        );
        assert_eq!(
            results[1],
            (30.0, 0),
            "a KL weight far above the data's variance collapses every latent"
        );
        Ok(())
    }

    #[test]
    fn same_seed_same_training() -> anyhow::Result<()> {
        let ds = generate(Generator::Circle, 600, 3);
        let run = |seed| -> anyhow::Result<Vec<f64>> {
            let mut cfg = TrainConfig::preset("fast")?;
            cfg.batch = 32;
            let mut t = RelevanceTrainer::new(cfg, &ds, seed)?;
            (0..20).map(|_| Ok(t.step()?.total())).collect()
        };
        let (a, b, c) = (run(1)?, run(1)?, run(2)?);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(a.last() < a.first(), "the loss goes down: {a:?}");
        Ok(())
    }

    /// The seed fixes the run's weights, not only its losses.
    #[test]
    fn the_seed_fixes_the_weights() {
        let ds = generate(Generator::Circle, 300, 3);
        crate::worker::trainer::assert_the_seed_fixes_the_run(
            &|seed| {
                let cfg = TrainConfig::preset("fast")?;
                Ok(Box::new(RelevanceTrainer::new(cfg, &ds, seed)?))
            },
            5,
        );
    }
}
