//! An independent digit classifier: an MLP trained on an endless stream of generated digits,
//! used to read what a generative model decoded (swap accuracy, the window's checks). It
//! never sees a decoder's output during training, so it is a fair judge of one.

use std::path::{Path, PathBuf};

use candle_core::{D, Device, Module, Tensor};
use candle_nn::VarMap;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use super::render::{self, PIXELS, SIDE, Writer};
use super::{DigitSet, TEST_WRITER_BASE};
use crate::nn::checkpoint::{self, CheckpointError, Checkpointed, Metadata, Opened, SizeLimits};
use crate::nn::{Mlp, WeightInit};
use crate::worker::trainer::unknown_preset;
use crate::worker::{CoreTrainer, StepStats, Trainer, TrainerCore};

pub const FAMILY: &str = "digit-classifier";
/// Where the window and the evals look for it.
pub const FILE_NAME: &str = "digit_classifier.safetensors";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClassifierConfig {
    pub hidden: Vec<usize>,
    pub steps: u64,
    pub batch: usize,
    pub lr: f64,
    /// training writers are drawn from this many (test writers are never among them)
    pub writers: u64,
    /// share of training images blurred and faded, as a decoder's output often is
    pub soften: f64,
    /// share of training images drawn by a writer whose traits are pushed past the
    /// generator's spread (more slant, width, stroke and deformation), as real hands go: the
    /// judge then reads a model trained on real handwriting too
    pub wider: f64,
    /// held-out writers for the accuracy reported during and after training
    pub test_writers: usize,
}

impl Default for ClassifierConfig {
    fn default() -> Self {
        Self {
            hidden: vec![256, 128],
            steps: 3000,
            batch: 128,
            lr: 1e-3,
            writers: 5000,
            soften: 0.4,
            wider: 0.8,
            test_writers: 100,
        }
    }
}

impl ClassifierConfig {
    pub fn preset(name: &str) -> anyhow::Result<Self> {
        match name {
            "fast" | "default" | "paper" => Ok(Self::default()),
            "tiny" => Ok(Self {
                hidden: vec![128],
                steps: 600,
                ..Self::default()
            }),
            _ => Err(unknown_preset(FAMILY, name, &["fast", "tiny"])),
        }
    }

    fn sizes(&self) -> Vec<usize> {
        let mut s = vec![PIXELS];
        s.extend(&self.hidden);
        s.push(10);
        s
    }
}

/// A trained classifier.
pub struct DigitClassifier {
    pub cfg: ClassifierConfig,
    pub meta: Metadata,
    mlp: Mlp,
    varmap: VarMap,
}

crate::checkpointed_lab!(DigitClassifier, FAMILY, ClassifierConfig);

impl SizeLimits for ClassifierConfig {
    fn size_limits(&self) -> Vec<(String, usize, std::ops::RangeInclusive<usize>)> {
        let writers = usize::try_from(self.writers).unwrap_or(usize::MAX);
        let layers = [
            ("batch".into(), self.batch, Self::BATCH),
            ("writers".into(), writers, 1..=1_000_000_000),
            (
                "test_writers".into(),
                self.test_writers,
                1..=crate::digits::MAX_WRITERS,
            ),
            ("hidden (layers)".into(), self.hidden.len(), 0..=8),
        ];
        let widths = checkpoint::indexed("hidden", &self.hidden, 1..=8192);
        layers.into_iter().chain(widths).collect()
    }
}

impl Checkpointed for DigitClassifier {
    fn build(file: Opened<ClassifierConfig>) -> Result<Self, CheckpointError> {
        file.limits("train.", file.cfg.size_limits())?;
        let (mlp, varmap) =
            file.build_model(|cfg, vb| Mlp::new(&cfg.sizes(), WeightInit::He, vb.pp("mlp")))?;
        Ok(Self {
            cfg: file.cfg,
            meta: file.meta,
            mlp,
            varmap,
        })
    }
}

impl DigitClassifier {
    /// The shipped classifier in `models_dir`.
    pub fn default_path(models_dir: &Path) -> PathBuf {
        models_dir.join(FILE_NAME)
    }

    /// The shipped classifier, or (when it is missing) one trained now with `cfg`: a few
    /// seconds to a minute depending on the steps.
    pub fn load_or_train(models_dir: &Path, cfg: &ClassifierConfig) -> anyhow::Result<Self> {
        let path = Self::default_path(models_dir);
        if path.is_file() {
            return Ok(Self::load(&path)?);
        }
        let mut t = ClassifierTrainer::new(cfg.clone(), 0)?;
        while t.steps_done() < t.total_steps() {
            t.step()?;
        }
        Self::from_snapshot(&t.snapshot()?)
    }

    /// Logits (N, 10) of images given as N*784 pixels.
    pub fn logits(&self, images: &[f32]) -> anyhow::Result<Tensor> {
        let n = images.len() / PIXELS;
        anyhow::ensure!(
            n * PIXELS == images.len(),
            "{} pixels is not a whole number of 28x28 images",
            images.len()
        );
        let x = Tensor::from_slice(images, (n, PIXELS), &Device::Cpu)?;
        Ok(self.mlp.forward(&x)?)
    }

    /// Class probabilities, one row of 10 per image.
    pub fn probabilities(&self, images: &[f32]) -> anyhow::Result<Vec<Vec<f32>>> {
        let p = candle_nn::ops::softmax(&self.logits(images)?, D::Minus1)?;
        Ok(p.to_vec2::<f32>()?)
    }

    /// The digit each image shows.
    pub fn predict(&self, images: &[f32]) -> anyhow::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(images.len() / PIXELS);
        for chunk in images.chunks(PIXELS * 1024) {
            let am = self.logits(chunk)?.argmax(D::Minus1)?.to_vec1::<u32>()?;
            out.extend(am.into_iter().map(|a| a as u8));
        }
        Ok(out)
    }

    /// Share of `set` read correctly.
    pub fn accuracy(&self, set: &DigitSet) -> anyhow::Result<f64> {
        anyhow::ensure!(!set.is_empty(), "no digits to classify");
        let pred = self.predict(&set.images)?;
        let right = pred.iter().zip(&set.labels).filter(|(a, b)| a == b).count();
        Ok(right as f64 / set.len() as f64)
    }

    /// The confusion matrix (rows: true digit, columns: read as), as counts.
    pub fn confusion(&self, set: &DigitSet) -> anyhow::Result<[[usize; 10]; 10]> {
        let pred = self.predict(&set.images)?;
        let mut m = [[0usize; 10]; 10];
        for (p, l) in pred.iter().zip(&set.labels) {
            m[*l as usize % 10][*p as usize % 10] += 1;
        }
        Ok(m)
    }
}

/// A 3x3 box blur with the ink faded by `fade`: how a VAE's mean image tends to look.
fn soften(img: &mut [f32; PIXELS], fade: f32) {
    let src = *img;
    for y in 0..SIDE {
        for x in 0..SIDE {
            let mut s = 0.0;
            let mut n = 0.0;
            for yy in y.saturating_sub(1)..(y + 2).min(SIDE) {
                for xx in x.saturating_sub(1)..(x + 2).min(SIDE) {
                    let w = if yy == y && xx == x { 2.0 } else { 1.0 };
                    s += w * src[yy * SIDE + xx];
                    n += w;
                }
            }
            img[y * SIDE + x] = fade * s / n;
        }
    }
}

/// Trains a [`DigitClassifier`] for the worker: every step draws a fresh batch of digits.
pub struct ClassifierTrainer {
    cfg: ClassifierConfig,
    core: TrainerCore,
    mlp: Mlp,
    test: DigitSet,
}

impl ClassifierTrainer {
    pub fn new(cfg: ClassifierConfig, seed: u64) -> anyhow::Result<Self> {
        // the seed fixes the weights' start as well as the stream of digits
        let (varmap, vb) = crate::nn::new_seeded_varmap(seed);
        let mlp = Mlp::new(&cfg.sizes(), WeightInit::He, vb.pp("mlp"))?;
        let test = super::generate(TEST_WRITER_BASE, cfg.test_writers, 2, seed);
        let rng = StdRng::seed_from_u64(seed ^ 0xC1A5);
        let core = TrainerCore::adam(varmap, rng, seed, cfg.steps, cfg.lr)?;
        Ok(Self {
            cfg,
            core,
            mlp,
            test,
        })
    }

    fn batch(&mut self) -> anyhow::Result<(Tensor, Tensor)> {
        let b = self.cfg.batch;
        let mut images = Vec::with_capacity(b * PIXELS);
        let mut labels = Vec::with_capacity(b);
        for _ in 0..b {
            let id = self.core.rng.random_range(0..self.cfg.writers);
            let mut writer = Writer::numbered(id, self.core.seed);
            if self.core.rng.random_bool(self.cfg.wider.clamp(0.0, 1.0)) {
                widen(&mut writer, &mut self.core.rng);
            }
            let digit = self.core.rng.random_range(0..10u8);
            let mut img = render::render(digit, &writer, &mut self.core.rng);
            if self.core.rng.random_bool(self.cfg.soften.clamp(0.0, 1.0)) {
                let fade = self.core.rng.random_range(0.55..1.0);
                soften(&mut img, fade);
            }
            images.extend_from_slice(&img);
            labels.push(digit as u32);
        }
        Ok((
            Tensor::from_vec(images, (b, PIXELS), &Device::Cpu)?,
            Tensor::from_vec(labels, b, &Device::Cpu)?,
        ))
    }

    fn test_accuracy(&self) -> anyhow::Result<f64> {
        let x = Tensor::from_slice(&self.test.images, (self.test.len(), PIXELS), &Device::Cpu)?;
        let pred = self.mlp.forward(&x)?.argmax(D::Minus1)?.to_vec1::<u32>()?;
        let right = pred
            .iter()
            .zip(&self.test.labels)
            .filter(|(p, l)| **p == **l as u32)
            .count();
        Ok(right as f64 / self.test.len().max(1) as f64)
    }
}

impl CoreTrainer for ClassifierTrainer {
    crate::worker::trainer::hold_core!();

    fn metadata(&self) -> Metadata {
        let data = format!(
            "digits: writers 0..{} of population {}, tested on {} held-out writers",
            self.cfg.writers, self.core.seed, self.cfg.test_writers
        );
        let config = serde_json::json!({ "train": self.cfg });
        self.core.metadata(FAMILY, "fast", config, &data)
    }

    fn train_step(&mut self) -> anyhow::Result<StepStats> {
        let (x, y) = self.batch()?;
        let loss = candle_nn::loss::cross_entropy(&self.mlp.forward(&x)?, &y)?;
        let losses = vec![("cross-entropy", loss.to_scalar::<f32>()? as f64)];
        self.core.update(&loss, None, losses)
    }

    fn quick_metrics(&mut self) -> anyhow::Result<Vec<(String, f64)>> {
        let a = self.test_accuracy()?;
        Ok(self.core.record(vec![("accuracy".into(), a)]))
    }
}

/// Push a writer's traits further than the generator's population spreads them, about as far
/// as MNIST's writers go (models/README.md, real handwriting).
fn widen(w: &mut Writer, rng: &mut impl Rng) {
    let mut normal = |sd: f32| render::gaussian(rng, sd);
    w.slant = (w.slant + normal(0.2)).clamp(-0.5, 0.9);
    w.width = (w.width * normal(0.15).exp()).clamp(0.35, 1.3);
    w.thickness = (w.thickness * normal(0.25).exp()).clamp(1.0, 5.0);
    w.rotation = (w.rotation + normal(0.07)).clamp(-0.3, 0.3);
    w.quirk *= 1.0 + 1.5 * normal(1.0).abs();
    w.jitter *= 1.0 + 0.5 * normal(1.0).abs();
}

/// Test digits by writers never seen in training, for classifier checks.
pub fn held_out_digits(writers: usize, per_digit: usize, seed: u64) -> DigitSet {
    super::generate(TEST_WRITER_BASE + 7_000, writers, per_digit, seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every digit class is recognisable: a short training already reads held-out writers'
    /// digits of every class well.
    #[test]
    fn every_digit_is_recognisable_on_held_out_writers() -> anyhow::Result<()> {
        let cfg = ClassifierConfig {
            hidden: vec![128],
            steps: 700,
            test_writers: 60,
            ..ClassifierConfig::default()
        };
        let mut t = ClassifierTrainer::new(cfg, 0)?;
        while t.steps_done() < t.total_steps() {
            t.step()?;
        }
        let clf = DigitClassifier::from_snapshot(&t.snapshot()?)?;
        let test = held_out_digits(60, 2, 0);
        let acc = clf.accuracy(&test)?;
        assert!(acc > 0.9, "held-out accuracy {acc}");
        let m = clf.confusion(&test)?;
        for (d, row) in m.iter().enumerate() {
            let total: usize = row.iter().sum();
            assert!(
                row[d] as f64 >= 0.75 * total as f64,
                "digit {d} read right {} of {total}: {row:?}",
                row[d]
            );
        }
        Ok(())
    }

    /// A widened writer leans, stretches and deforms further than the population does, and
    /// stays within the renderer's bounds.
    #[test]
    fn widened_writers_spread_further_within_bounds() {
        let mut rng = StdRng::seed_from_u64(3);
        let (mut plain, mut wide) = (Vec::new(), Vec::new());
        for id in 0..400 {
            let w = Writer::numbered(id, 0);
            let mut v = w.clone();
            widen(&mut v, &mut rng);
            assert!((-0.5..=0.9).contains(&v.slant) && (0.35..=1.3).contains(&v.width));
            assert!((1.0..=5.0).contains(&v.thickness) && v.quirk >= w.quirk);
            plain.push(w.slant);
            wide.push(v.slant);
        }
        let spread = |x: &[f32]| {
            let m = x.iter().sum::<f32>() / x.len() as f32;
            (x.iter().map(|v| (v - m).powi(2)).sum::<f32>() / x.len() as f32).sqrt()
        };
        assert!(
            spread(&wide) > 1.3 * spread(&plain),
            "slant spread {} against {}",
            spread(&wide),
            spread(&plain)
        );
    }

    /// The seed fixes the run's weights: their start and the stream of digits.
    #[test]
    fn the_seed_fixes_the_weights() {
        let cfg = ClassifierConfig {
            hidden: vec![16],
            steps: 3,
            test_writers: 2,
            ..ClassifierConfig::default()
        };
        crate::worker::trainer::assert_the_seed_fixes_the_run(
            &|seed| Ok(Box::new(ClassifierTrainer::new(cfg.clone(), seed)?)),
            3,
        );
    }
}
