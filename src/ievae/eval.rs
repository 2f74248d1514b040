//! The IE-VAE's figures: test accuracy of q(y|x), the swap accuracy (the pose of a test digit
//! drawn in every other class, read by the independent classifier), and how much a linear
//! probe can read the class from the equivariant code (near chance is the goal).

use candle_core::{D, Device, Tensor};

use super::model::IeVae;
use crate::digits::classifier::DigitClassifier;
use crate::digits::{DigitSet, PIXELS, Split};
use crate::metrics::linear_probe_accuracy;
use crate::nn::{bce_with_logits_sum, kl_sum};

/// Images per forward pass in evaluations.
const CHUNK: usize = 1000;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct QuickReport {
    pub accuracy: f64,
    /// mean -log p(x | r_y, mu) per image, nats
    pub recon: f64,
    /// mean KL of q(z|x), nats
    pub kl: f64,
}

fn images(set: &DigitSet, from: usize, to: usize) -> candle_core::Result<Tensor> {
    let rows: Vec<usize> = (from..to).collect();
    Tensor::from_vec(set.gather(&rows), (to - from, PIXELS), &Device::Cpu)
}

/// Accuracy of q(y|x), and the reconstruction and KL terms with the true class.
pub fn elbo_and_accuracy(model: &IeVae, set: &DigitSet) -> anyhow::Result<QuickReport> {
    anyhow::ensure!(!set.is_empty(), "no test digits");
    let (mut right, mut recon, mut kl) = (0usize, 0f64, 0f64);
    let table = model.invariant_table()?;
    for from in (0..set.len()).step_by(CHUNK) {
        let to = (from + CHUNK).min(set.len());
        let x = images(set, from, to)?;
        let y: Vec<u32> = set.labels[from..to].iter().map(|&l| l as u32).collect();
        let pred = model.classify(&x)?.argmax(D::Minus1)?.to_vec1::<u32>()?;
        right += pred.iter().zip(&y).filter(|(a, b)| a == b).count();
        let (mu, logvar) = model.encode(&x)?;
        let r = table.index_select(&Tensor::from_slice(&y, y.len(), &Device::Cpu)?, 0)?;
        recon +=
            bce_with_logits_sum(&model.decode_logits(&r, &mu)?, &x)?.to_scalar::<f32>()? as f64;
        kl += kl_sum(&mu, &logvar)?.to_scalar::<f32>()? as f64;
    }
    let n = set.len() as f64;
    Ok(QuickReport {
        accuracy: right as f64 / n,
        recon: recon / n,
        kl: kl / n,
    })
}

/// Equivariant codes (means of q(z|x)) of every image: N * equivariant values.
pub fn pose_codes(model: &IeVae, set: &DigitSet) -> anyhow::Result<Vec<f32>> {
    let mut out = Vec::with_capacity(set.len() * model.cfg.equivariant);
    for from in (0..set.len()).step_by(CHUNK) {
        let to = (from + CHUNK).min(set.len());
        let (mu, _) = model.encode(&images(set, from, to)?)?;
        out.extend(mu.flatten_all()?.to_vec1::<f32>()?);
    }
    Ok(out)
}

/// Decode every image's pose in every class other than its own and let `judge` read the
/// results: the share read as the class they were drawn in.
pub fn swap_accuracy(
    model: &IeVae,
    set: &DigitSet,
    judge: &DigitClassifier,
) -> anyhow::Result<f64> {
    anyhow::ensure!(!set.is_empty(), "no test digits");
    let classes = model.cfg.classes as u32;
    let codes = pose_codes(model, set)?;
    let e = model.cfg.equivariant;
    let (mut right, mut total) = (0usize, 0usize);
    let per = (CHUNK / classes as usize).max(1);
    for from in (0..set.len()).step_by(per) {
        let to = (from + per).min(set.len());
        let mut z = Vec::new();
        let mut y = Vec::new();
        for i in from..to {
            for c in 0..classes {
                if c != set.labels[i] as u32 {
                    z.extend_from_slice(&codes[i * e..(i + 1) * e]);
                    y.push(c);
                }
            }
        }
        let zt = Tensor::from_vec(z, (y.len(), e), &Device::Cpu)?;
        let decoded = model
            .decode_classes(&y, &zt)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let read = judge.predict(&decoded)?;
        right += read
            .iter()
            .zip(&y)
            .filter(|(a, b)| **a as u32 == **b)
            .count();
        total += y.len();
    }
    Ok(right as f64 / total.max(1) as f64)
}

/// Test accuracy of a linear probe reading the class from the equivariant code, fitted on
/// training codes.
pub fn class_from_pose_probe(
    model: &IeVae,
    train: &DigitSet,
    test: &DigitSet,
) -> anyhow::Result<f64> {
    let tz = pose_codes(model, train)?;
    let sz = pose_codes(model, test)?;
    Ok(linear_probe_accuracy(
        &tz,
        &train.labels,
        &sz,
        &test.labels,
        model.cfg.equivariant,
        model.cfg.classes,
    ))
}

/// Everything `eval --json` reports.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    pub accuracy: f64,
    pub swap_accuracy: Option<f64>,
    pub class_from_pose_probe: f64,
    pub labels: usize,
    pub test_images: usize,
    pub recon: f64,
    pub kl: f64,
}

impl Report {
    pub fn pairs(&self) -> Vec<(String, f64)> {
        let mut v = vec![
            ("accuracy".to_string(), self.accuracy),
            (
                "class_from_pose_probe".to_string(),
                self.class_from_pose_probe,
            ),
            ("labels".to_string(), self.labels as f64),
            ("test_images".to_string(), self.test_images as f64),
            ("test_recon".to_string(), self.recon),
            ("test_kl".to_string(), self.kl),
        ];
        if let Some(s) = self.swap_accuracy {
            v.insert(1, ("swap_accuracy".to_string(), s));
        }
        v
    }
}

/// Probe and swap sizes: enough for two decimals, small enough for seconds on a laptop.
const PROBE_TRAIN: usize = 5000;
const PROBE_TEST: usize = 2000;
const SWAP_IMAGES: usize = 2000;

pub fn full_report(
    model: &IeVae,
    data: &Split,
    judge: Option<&DigitClassifier>,
    labels: usize,
) -> anyhow::Result<Report> {
    let quick = elbo_and_accuracy(model, &data.test)?;
    let swap = match judge {
        Some(j) => Some(swap_accuracy(model, &data.test.head(SWAP_IMAGES), j)?),
        None => None,
    };
    // spread the probe's training rows over the whole set (generated sets are writer-major)
    let step = (data.train.len() / PROBE_TRAIN).max(1);
    let rows: Vec<usize> = (0..data.train.len())
        .step_by(step)
        .take(PROBE_TRAIN)
        .collect();
    let probe = class_from_pose_probe(
        model,
        &data.train.subset(&rows),
        &data.test.head(PROBE_TEST),
    )?;
    Ok(Report {
        accuracy: quick.accuracy,
        swap_accuracy: swap,
        class_from_pose_probe: probe,
        labels,
        test_images: data.test.len(),
        recon: quick.recon,
        kl: quick.kl,
    })
}
