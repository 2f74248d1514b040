//! Metrics of a V3 model (DESIGN.md): codebook purity and one-to-one accuracy of atoms against
//! content labels, kNN retrieval PR-AUC of content and style latents (and of content latents
//! against style labels, which should be low), on held-out samples of the training styles and,
//! with the suffix `_ood`, on styles never seen in training. Also what the window shows without
//! the data: each style's mean latent, atom usage, the code-by-label matrix, PCA points.

use std::collections::BTreeMap;

use candle_core::Result;
use serde::{Deserialize, Serialize};

use super::data::{Dataset, Sample};
use super::model::{Encoded, V3Model};
use crate::metrics::{contingency, hungarian_max, knn_pr_auc, one_to_one_accuracy, pca_2d, purity};

/// The metrics of one set of fragments.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SplitMetrics {
    pub codebook_purity: f64,
    pub codebook_one_to_one: f64,
    pub content_knn_auc: f64,
    pub style_knn_auc: f64,
    pub content_on_style_knn_auc: f64,
    /// atoms x content labels, fragment counts
    pub matrix: Vec<Vec<f64>>,
}

pub fn split_metrics(
    enc: &Encoded,
    contents: &[usize],
    styles: &[usize],
    atoms: usize,
    n_content: usize,
) -> SplitMetrics {
    let matrix = contingency(&enc.codes, contents, atoms, n_content);
    SplitMetrics {
        codebook_purity: purity(&matrix),
        codebook_one_to_one: one_to_one_accuracy(&matrix),
        content_knn_auc: knn_pr_auc(&enc.content, contents),
        style_knn_auc: knn_pr_auc(&enc.style, styles),
        content_on_style_knn_auc: knn_pr_auc(&enc.content, styles),
        matrix,
    }
}

/// One point of a latent scatter plot: its PCA coordinates and labels.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LatentPoint {
    pub x: f32,
    pub y: f32,
    pub content: u16,
    pub style: u16,
}

/// What the window needs to show a model without its data, kept in the checkpoint.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub content_names: Vec<String>,
    /// training styles, then held-out ones
    pub style_names: Vec<String>,
    pub n_train_styles: usize,
    /// mean style latent of each style (held-out samples, or held-out styles' samples)
    pub style_latents: Vec<Vec<f32>>,
    /// mean content latent of each content label on held-out samples
    pub content_prototypes: Vec<Vec<f32>>,
    /// share of held-out fragments that each atom took
    pub usage: Vec<f64>,
    /// the atom's content label after Hungarian matching (None: unmatched)
    pub atom_labels: Vec<Option<usize>>,
    /// atoms x content labels on held-out samples of the training styles
    pub matrix: Vec<Vec<f64>>,
    pub content_points: Vec<LatentPoint>,
    pub style_points: Vec<LatentPoint>,
    pub metrics: BTreeMap<String, f64>,
}

fn encode_split(model: &V3Model, samples: &[Sample]) -> Result<(Encoded, Vec<usize>, Vec<usize>)> {
    let (frags, contents, styles) = Dataset::flatten(samples);
    Ok((model.encode_all(&frags)?, contents, styles))
}

fn mean_rows(rows: &[Vec<f32>], dims: usize) -> Vec<f32> {
    let mut m = vec![0f32; dims];
    for r in rows {
        m.iter_mut()
            .zip(r)
            .for_each(|(a, b)| *a += b / rows.len() as f32);
    }
    m
}

/// Measure a model on the held-out samples of `data` and build its [`Summary`].
pub fn evaluate(model: &V3Model, data: &Dataset) -> Result<Summary> {
    let atoms = model.cfg.atoms;
    let n_content = data.content_names.len();
    let (enc, contents, styles) = encode_split(model, &data.test)?;
    let seen = split_metrics(&enc, &contents, &styles, atoms, n_content);
    let mut metrics = BTreeMap::new();
    let mut put = |suffix: &str, m: &SplitMetrics| {
        for (k, v) in [
            ("codebook_purity", m.codebook_purity),
            ("codebook_one_to_one", m.codebook_one_to_one),
            ("content_knn_auc", m.content_knn_auc),
            ("style_knn_auc", m.style_knn_auc),
            ("content_on_style_knn_auc", m.content_on_style_knn_auc),
        ] {
            metrics.insert(format!("{k}{suffix}"), v);
        }
    };
    put("", &seen);
    let (enc_ood, contents_ood, styles_ood) = encode_split(model, &data.ood)?;
    if !data.ood.is_empty() {
        let ood = split_metrics(&enc_ood, &contents_ood, &styles_ood, atoms, n_content);
        put("_ood", &ood);
    }
    let total = enc.codes.len().max(1) as f64;
    let usage: Vec<f64> = (0..atoms)
        .map(|a| enc.codes.iter().filter(|&&c| c == a).count() as f64 / total)
        .collect();
    let atom_labels = hungarian_max(&seen.matrix);
    // style latents: every style from whichever split holds it
    let mut style_latents = Vec::with_capacity(data.style_names.len());
    for s in 0..data.style_names.len() {
        let rows: Vec<Vec<f32>> = enc
            .style
            .iter()
            .zip(&styles)
            .chain(enc_ood.style.iter().zip(&styles_ood))
            .filter(|(_, l)| **l == s)
            .map(|(r, _)| r.clone())
            .collect();
        style_latents.push(mean_rows(&rows, model.cfg.style_dim));
    }
    let content_prototypes = (0..n_content)
        .map(|c| {
            let rows: Vec<Vec<f32>> = enc
                .content
                .iter()
                .zip(&contents)
                .filter(|(_, l)| **l == c)
                .map(|(r, _)| r.clone())
                .collect();
            mean_rows(&rows, model.cfg.content_dim)
        })
        .collect();
    let all_content: Vec<Vec<f32>> = enc
        .content
        .iter()
        .chain(&enc_ood.content)
        .cloned()
        .collect();
    let all_style: Vec<Vec<f32>> = enc.style.iter().chain(&enc_ood.style).cloned().collect();
    let labels: Vec<(usize, usize)> = contents
        .iter()
        .zip(&styles)
        .chain(contents_ood.iter().zip(&styles_ood))
        .map(|(c, s)| (*c, *s))
        .collect();
    let points = |p: Vec<[f32; 2]>| -> Vec<LatentPoint> {
        p.iter()
            .zip(&labels)
            .map(|(p, (c, s))| LatentPoint {
                x: p[0],
                y: p[1],
                content: *c as u16,
                style: *s as u16,
            })
            .collect()
    };
    Ok(Summary {
        content_names: data.content_names.clone(),
        style_names: data.style_names.clone(),
        n_train_styles: data.n_train_styles,
        style_latents,
        content_prototypes,
        usage,
        atom_labels,
        matrix: seen.matrix,
        content_points: points(pca_2d(&all_content)),
        style_points: points(pca_2d(&all_style)),
        metrics,
    })
}

/// Nearest prototype (Euclidean) of a latent: the classifier the eval and the tests share.
pub fn nearest(prototypes: &[Vec<f32>], z: &[f32]) -> Option<usize> {
    prototypes
        .iter()
        .enumerate()
        .map(|(i, p)| {
            (
                i,
                p.iter().zip(z).map(|(a, b)| (a - b) * (a - b)).sum::<f32>(),
            )
        })
        .filter(|(_, d)| d.is_finite())
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(i, _)| i)
}
