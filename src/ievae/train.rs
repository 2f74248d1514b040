//! Training the IE-VAE: labelled images give the ELBO with their true class plus a weighted
//! classification term; unlabelled images (semi-supervised runs) give the ELBO marginalised
//! over q(y|x) plus the entropy of q(y|x), as in Kingma et al.'s M2 objective that Feige uses.

use std::sync::Arc;

use candle_core::{D, Device, Tensor};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

use super::model::{IeVae, ModelConfig};
use super::{FAMILY, eval};
use crate::digits::classifier::DigitClassifier;
use crate::digits::{DigitSet, PIXELS, Recipe, Split};
use crate::nn::checkpoint::Metadata;
use crate::nn::{bce_with_logits_sum, kl_sum, new_seeded_varmap};
use crate::worker::trainer::unknown_preset;
use crate::worker::{CoreTrainer, StepStats, TrainerCore};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainConfig {
    pub preset: String,
    pub model: ModelConfig,
    pub steps: u64,
    /// labelled images per step
    pub batch: usize,
    /// unlabelled images per step (semi-supervised runs only)
    pub unlabelled_batch: usize,
    /// labelled images per step in semi-supervised runs (few labels: small batches)
    pub semi_labelled_batch: usize,
    pub lr: f64,
    /// the learning rate reached at the last step: constant for the first 60% of the steps,
    /// then a cosine down to this (steadies the classifier's accuracy at the end)
    pub lr_final: f64,
    /// weight of the classification term -log q(y|x) on labelled images
    pub alpha: f64,
    /// weight of the KL term of z: above 1 it squeezes out of z what r_y already says
    pub beta: f64,
    /// labelled training images in all (balanced over classes); None: every image is labelled
    pub labels: Option<usize>,
    /// the generator's sizes when the data are generated
    pub recipe: Recipe,
    /// test images used by the quick evaluation during training
    pub eval_images: usize,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            preset: "fast".into(),
            model: ModelConfig::default(),
            steps: 1800,
            batch: 128,
            unlabelled_batch: 64,
            semi_labelled_batch: 32,
            lr: 1e-3,
            lr_final: 1e-4,
            alpha: 50.0,
            beta: 2.0,
            labels: None,
            recipe: Recipe::default(),
            eval_images: 2000,
        }
    }
}

impl TrainConfig {
    /// `fast`: MLPs of 512-256 trained 1800 steps of 128 images, sized for 2 CPU cores;
    /// `paper`: wider networks (1024-512) trained ten times longer, for machines with time
    /// to spare (the paper's exact layer sizes are not reproduced here).
    pub fn preset(name: &str) -> anyhow::Result<Self> {
        match name {
            "fast" => Ok(Self::default()),
            "paper" => Ok(Self {
                model: ModelConfig {
                    hidden: vec![1024, 512],
                    classifier_hidden: vec![1024, 512],
                    invariant_hidden: vec![128],
                    invariant: 32,
                    ..ModelConfig::default()
                },
                steps: 30_000,
                preset: "paper".into(),
                ..Self::default()
            }),
            // for tests: small networks and data, a few seconds
            "tiny" => Ok(Self {
                model: ModelConfig {
                    hidden: vec![128, 64],
                    classifier_hidden: vec![128],
                    invariant_hidden: vec![32],
                    invariant: 8,
                    equivariant: 4,
                    ..ModelConfig::default()
                },
                steps: 300,
                batch: 64,
                unlabelled_batch: 32,
                recipe: Recipe {
                    train_writers: 120,
                    test_writers: 20,
                    per_digit: 3,
                    seed: 0,
                },
                eval_images: 500,
                preset: "tiny".into(),
                ..Self::default()
            }),
            _ => Err(unknown_preset(FAMILY, name, &["fast", "paper", "tiny"])),
        }
    }

    pub fn semi_supervised(&self) -> bool {
        self.labels.is_some()
    }

    /// The learning rate at `step` (0-based).
    pub fn lr_at(&self, step: u64) -> f64 {
        crate::nn::cosine_schedule(self.lr, self.lr_final, step, self.steps, 0.6)
    }
}

/// `count` labelled rows, as balanced over the classes as the data allow, chosen by `seed`.
pub fn labelled_rows(set: &DigitSet, count: usize, classes: usize, seed: u64) -> Vec<usize> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x1abe1);
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); classes];
    for (i, &l) in set.labels.iter().enumerate() {
        if (l as usize) < classes {
            by_class[l as usize].push(i);
        }
    }
    for rows in &mut by_class {
        for i in (1..rows.len()).rev() {
            rows.swap(i, rng.random_range(0..=i));
        }
    }
    let mut out = Vec::with_capacity(count);
    let mut k = 0;
    while out.len() < count && by_class.iter().any(|r| k < r.len()) {
        for rows in &by_class {
            if out.len() < count && k < rows.len() {
                out.push(rows[k]);
            }
        }
        k += 1;
    }
    out.sort_unstable();
    out
}

/// The metadata `config` of this family.
pub fn config_json(cfg: &TrainConfig, labels_used: usize) -> serde_json::Value {
    serde_json::json!({ "train": cfg, "labels_used": labels_used })
}

pub struct IeVaeTrainer {
    cfg: TrainConfig,
    core: TrainerCore,
    source: String,
    model: IeVae,
    data: Split,
    labelled: Vec<usize>,
    judge: Option<Arc<DigitClassifier>>,
}

impl IeVaeTrainer {
    /// `judge` is the independent classifier for the swap accuracy (left out when None).
    pub fn new(
        cfg: TrainConfig,
        data: Split,
        source: String,
        seed: u64,
        judge: Option<Arc<DigitClassifier>>,
    ) -> anyhow::Result<Self> {
        cfg.model
            .check()
            .map_err(|e| anyhow::anyhow!("{FAMILY}: {e}"))?;
        anyhow::ensure!(
            data.train.len() >= 2 && !data.test.is_empty(),
            "{source}: too few digits to train on ({} training, {} test)",
            data.train.len(),
            data.test.len()
        );
        let labelled = match cfg.labels {
            Some(n) => labelled_rows(&data.train, n, cfg.model.classes, seed),
            None => (0..data.train.len()).collect(),
        };
        anyhow::ensure!(!labelled.is_empty(), "{source}: no labelled digits");
        // the seed fixes the weights' start as well as the batches and the noise
        let (varmap, vb) = new_seeded_varmap(seed);
        let model = IeVae::new(&cfg.model, vb)?;
        let rng = StdRng::seed_from_u64(seed);
        let core = TrainerCore::adam(varmap, rng, seed, cfg.steps, cfg.lr)?;
        Ok(Self {
            cfg,
            core,
            source,
            model,
            data,
            labelled,
            judge,
        })
    }

    fn images(&self, rows: &[usize]) -> anyhow::Result<Tensor> {
        Ok(Tensor::from_vec(
            self.data.train.gather(rows),
            (rows.len(), PIXELS),
            &Device::Cpu,
        )?)
    }

    /// z = mu + sigma * eps with eps from the trainer's own seeded generator.
    fn sample_z(&mut self, mu: &Tensor, logvar: &Tensor) -> anyhow::Result<Tensor> {
        let n = mu.elem_count();
        let eps: Vec<f32> = (0..n)
            .map(|_| self.core.rng.sample(StandardNormal))
            .collect();
        let eps = Tensor::from_vec(eps, mu.dims(), &Device::Cpu)?;
        Ok((mu + (logvar * 0.5)?.exp()?.mul(&eps)?)?)
    }

    /// Quick figures on the first `eval_images` test digits.
    fn test_metrics(&self) -> anyhow::Result<Vec<(String, f64)>> {
        let test = self.data.test.head(self.cfg.eval_images);
        let report = eval::elbo_and_accuracy(&self.model, &test)?;
        let mut out = vec![
            ("accuracy".to_string(), report.accuracy),
            ("test_recon".to_string(), report.recon),
            ("test_kl".to_string(), report.kl),
        ];
        if let Some(judge) = &self.judge {
            let swap = eval::swap_accuracy(&self.model, &test.head(500), judge)?;
            out.push(("swap_accuracy".into(), swap));
        }
        Ok(out)
    }
}

impl CoreTrainer for IeVaeTrainer {
    crate::worker::trainer::hold_core!();

    fn metadata(&self) -> Metadata {
        let config = config_json(&self.cfg, self.labelled.len());
        self.core
            .metadata(FAMILY, &self.cfg.preset, config, &self.source)
    }

    fn train_step(&mut self) -> anyhow::Result<StepStats> {
        let classes = self.cfg.model.classes;
        let b = if self.cfg.semi_supervised() {
            self.cfg.semi_labelled_batch
        } else {
            self.cfg.batch
        }
        .max(1);
        let rows: Vec<usize> = (0..b)
            .map(|_| self.labelled[self.core.rng.random_range(0..self.labelled.len())])
            .collect();
        let x = self.images(&rows)?;
        let y: Vec<u32> = rows
            .iter()
            .map(|&r| self.data.train.labels[r] as u32)
            .collect();
        let y = Tensor::from_vec(y, b, &Device::Cpu)?;

        // labelled: -ELBO(x, y) + alpha * -log q(y|x)
        let (mu, logvar) = self.model.encode(&x)?;
        let z = self.sample_z(&mu, &logvar)?;
        let table = self.model.invariant_table()?;
        let r = table.index_select(&y, 0)?;
        let recon = (bce_with_logits_sum(&self.model.decode_logits(&r, &z)?, &x)? / b as f64)?;
        let kl = (kl_sum(&mu, &logvar)? / b as f64)?;
        let class = candle_nn::loss::cross_entropy(&self.model.classify(&x)?, &y)?;
        let mut total = ((&recon + (&kl * self.cfg.beta)?)? + (&class * self.cfg.alpha)?)?;
        let mut unlabelled_loss = None;

        if self.cfg.semi_supervised() && self.cfg.unlabelled_batch > 0 {
            // unlabelled: sum_y q(y|x) [-log p(x|r_y, z)] + KL - H(q(y|x))
            let u = self.cfg.unlabelled_batch;
            let n = self.data.train.len();
            let rows: Vec<usize> = (0..u).map(|_| self.core.rng.random_range(0..n)).collect();
            let xu = self.images(&rows)?;
            let (mu_u, logvar_u) = self.model.encode(&xu)?;
            let zu = self.sample_z(&mu_u, &logvar_u)?;
            let log_q = candle_nn::ops::log_softmax(&self.model.classify(&xu)?, D::Minus1)?;
            let q = log_q.exp()?;
            // every image decoded as every class: rows (image i, class c) at i * classes + c
            let z_rep = zu
                .unsqueeze(1)?
                .repeat((1, classes, 1))?
                .reshape((u * classes, ()))?;
            let r_rep = table
                .unsqueeze(0)?
                .repeat((u, 1, 1))?
                .reshape((u * classes, ()))?;
            let x_rep = xu
                .unsqueeze(1)?
                .repeat((1, classes, 1))?
                .reshape((u * classes, ()))?;
            let logits = self.model.decode_logits(&r_rep, &z_rep)?;
            let softplus = (logits.relu()? + (logits.abs()?.neg()?.exp()? + 1.0)?.log()?)?;
            let nll = (softplus - (&x_rep * &logits)?)?
                .sum(D::Minus1)?
                .reshape((u, classes))?;
            let expected_nll = (&q * &nll)?.sum_all()?;
            let entropy = (&q * &log_q)?.sum_all()?.neg()?;
            let kl_u = kl_sum(&mu_u, &logvar_u)?;
            let loss_u = (((expected_nll + (kl_u * self.cfg.beta)?)? - entropy)? / u as f64)?;
            total = (total + &loss_u)?;
            unlabelled_loss = Some(loss_u.to_scalar::<f32>()? as f64);
        }

        let lr = self.cfg.lr_at(self.core.step);
        let mut losses = vec![
            ("total", total.to_scalar::<f32>()? as f64),
            ("recon", recon.to_scalar::<f32>()? as f64),
            ("kl", kl.to_scalar::<f32>()? as f64),
            ("class", class.to_scalar::<f32>()? as f64),
        ];
        if let Some(l) = unlabelled_loss {
            losses.push(("unlabelled", l));
        }
        self.core.update(&total, Some(lr), losses)
    }

    fn quick_metrics(&mut self) -> anyhow::Result<Vec<(String, f64)>> {
        let m = self.test_metrics()?;
        Ok(self.core.record(m))
    }

    fn all_metrics(&mut self) -> anyhow::Result<Vec<(String, f64)>> {
        let report = eval::full_report(
            &self.model,
            &self.data,
            self.judge.as_deref(),
            self.labelled.len(),
        )?;
        Ok(self.core.record(report.pairs()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::worker::Trainer;

    fn tiny_data() -> Split {
        let cfg = TrainConfig::preset("tiny").unwrap_or_default();
        crate::digits::generated_split(&cfg.recipe)
    }

    #[test]
    fn labelled_rows_are_balanced_and_seeded() {
        let data = tiny_data();
        let rows = labelled_rows(&data.train, 30, 10, 1);
        assert_eq!(rows.len(), 30);
        let mut per = [0; 10];
        for &r in &rows {
            per[data.train.labels[r] as usize] += 1;
        }
        assert_eq!(per, [3; 10]);
        assert_eq!(rows, labelled_rows(&data.train, 30, 10, 1));
        assert_ne!(rows, labelled_rows(&data.train, 30, 10, 2));
    }

    /// A short supervised run already classifies held-out writers' digits, and the
    /// snapshot it sends reloads as a working model.
    #[test]
    fn tiny_supervised_run_learns_the_classes() -> anyhow::Result<()> {
        let cfg = TrainConfig::preset("tiny")?;
        let mut t = IeVaeTrainer::new(cfg, tiny_data(), "digits".into(), 0, None)?;
        let first = t.step()?.losses;
        while t.steps_done() < t.total_steps() {
            t.step()?;
        }
        let m = t.evaluate()?;
        let acc = m.iter().find(|(k, _)| k == "accuracy").map_or(0.0, |v| v.1);
        assert!(acc > 0.85, "accuracy {acc}");
        let recon = m
            .iter()
            .find(|(k, _)| k == "test_recon")
            .map_or(f64::MAX, |v| v.1);
        assert!(
            recon < first[1].1,
            "reconstruction {recon} vs first step {}",
            first[1].1
        );
        let lab = super::super::Lab::from_snapshot(&t.snapshot()?)?;
        let img = t.data.test.image(0).to_vec();
        let p = lab.class_probabilities(&img)?;
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-4);
        assert_eq!(lab.in_every_class(&lab.pose_of(&img)?)?.len(), 10);
        Ok(())
    }

    #[test]
    fn semi_supervised_steps_marginalise_over_classes() -> anyhow::Result<()> {
        let cfg = TrainConfig {
            labels: Some(20),
            steps: 3,
            ..TrainConfig::preset("tiny")?
        };
        let mut t = IeVaeTrainer::new(cfg, tiny_data(), "digits".into(), 0, None)?;
        assert_eq!(t.labelled.len(), 20);
        let s = t.step()?;
        let u = s
            .losses
            .iter()
            .find(|(k, _)| *k == "unlabelled")
            .map(|v| v.1);
        assert!(
            u.is_some_and(|u| u.is_finite() && u > 0.0),
            "{:?}",
            s.losses
        );
        Ok(())
    }

    /// The seed fixes the run's weights: their start, the batches and the noise.
    #[test]
    fn the_seed_fixes_the_weights() {
        let data = tiny_data();
        crate::worker::trainer::assert_the_seed_fixes_the_run(
            &|seed| {
                let cfg = TrainConfig::preset("tiny")?;
                let t = IeVaeTrainer::new(cfg, data.clone(), "digits".into(), seed, None)?;
                Ok(Box::new(t))
            },
            3,
        );
    }
}
