//! Metrics of the relevance lab: per-dimension relevance R_i = 1 - mean posterior variance,
//! KL per dimension, and correlations between latents and physical observables.

use candle_core::{D, Tensor};

use super::data::Observable;
use super::model::RelevanceVae;
use crate::nn::kl_per_dim;

/// A latent dimension is relevant when R_i >= this.
pub const RELEVANT: f64 = 0.5;
/// Events encoded per forward pass.
const CHUNK: usize = 4096;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct RelevanceReport {
    /// R_i = 1 - mean over events of sigma_i^2(x), one per latent dimension
    pub relevance: Vec<f64>,
    /// mean KL of each dimension's posterior from the N(0, 1) prior (nats)
    pub kl_per_dim: Vec<f64>,
    pub relevant_dims: usize,
    /// mean squared reconstruction error per event through the posterior means (standardised units, /2)
    pub recon: f64,
}

impl RelevanceReport {
    pub fn from_relevance(relevance: Vec<f64>, kl_per_dim: Vec<f64>) -> Self {
        let relevant_dims = relevance.iter().filter(|&&r| r >= RELEVANT).count();
        Self {
            relevance,
            kl_per_dim,
            relevant_dims,
            recon: f64::NAN,
        }
    }
}

/// Relevance, KL and reconstruction of the model on standardised events x (N, d).
pub fn relevance(model: &RelevanceVae, x: &Tensor) -> candle_core::Result<RelevanceReport> {
    let n = x.dim(0)?;
    let l = model.cfg.latent;
    let mut var_sum = vec![0f64; l];
    let mut kl_sum = vec![0f64; l];
    let mut recon = 0f64;
    let mut start = 0;
    while start < n {
        let len = CHUNK.min(n - start);
        let xs = x.narrow(0, start, len)?;
        let (mu, logvar) = model.encode(&xs)?;
        let var = logvar.exp()?.sum(0)?.to_vec1::<f32>()?;
        let kl = (kl_per_dim(&mu, &logvar)? * len as f64)?.to_vec1::<f32>()?;
        for i in 0..l {
            var_sum[i] += var[i] as f64;
            kl_sum[i] += kl[i] as f64;
        }
        let err = (model.decode(&mu)? - &xs)?
            .sqr()?
            .sum(D::Minus1)?
            .sum_all()?
            .to_scalar::<f32>()?;
        recon += 0.5 * err as f64;
        start += len;
    }
    let n = n.max(1) as f64;
    let relevance = var_sum.iter().map(|v| 1.0 - v / n).collect();
    let kl = kl_sum.iter().map(|v| v / n).collect();
    Ok(RelevanceReport {
        recon: recon / n,
        ..RelevanceReport::from_relevance(relevance, kl)
    })
}

/// The report as named metrics: `relevant_dims`, `relevance_<i>`, `kl_<i>`, `recon`.
pub fn report_metrics(r: &RelevanceReport) -> Vec<(String, f64)> {
    let mut out = vec![("relevant_dims".to_string(), r.relevant_dims as f64)];
    out.extend(
        r.relevance
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("relevance_{i}"), *v)),
    );
    out.extend(
        r.kl_per_dim
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("kl_{i}"), *v)),
    );
    out.push(("recon".to_string(), r.recon));
    out
}

/// Read a report back from named metrics (a checkpoint's, or a training event's).
pub fn report_from_metrics<'a>(
    metrics: impl IntoIterator<Item = (&'a str, f64)>,
) -> Option<RelevanceReport> {
    let mut relevance: Vec<(usize, f64)> = Vec::new();
    let mut kl: Vec<(usize, f64)> = Vec::new();
    let mut recon = f64::NAN;
    for (k, v) in metrics {
        if let Some(i) = k.strip_prefix("relevance_").and_then(|i| i.parse().ok()) {
            relevance.push((i, v));
        } else if let Some(i) = k.strip_prefix("kl_").and_then(|i| i.parse().ok()) {
            kl.push((i, v));
        } else if k == "recon" {
            recon = v;
        }
    }
    if relevance.is_empty() {
        return None;
    }
    relevance.sort_by_key(|p| p.0);
    kl.sort_by_key(|p| p.0);
    let r = RelevanceReport::from_relevance(
        relevance.into_iter().map(|p| p.1).collect(),
        kl.into_iter().map(|p| p.1).collect(),
    );
    Some(RelevanceReport { recon, ..r })
}

/// Pearson correlation of two equally long series; 0 when either does not vary.
pub fn pearson(a: &[f32], b: &[f32]) -> f64 {
    let n = a.len().min(b.len());
    if n < 2 {
        return 0.0;
    }
    let ma = a[..n].iter().map(|&v| v as f64).sum::<f64>() / n as f64;
    let mb = b[..n].iter().map(|&v| v as f64).sum::<f64>() / n as f64;
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (&x, &y) in a[..n].iter().zip(&b[..n]) {
        let (dx, dy) = (x as f64 - ma, y as f64 - mb);
        sab += dx * dy;
        saa += dx * dx;
        sbb += dy * dy;
    }
    if saa <= 0.0 || sbb <= 0.0 {
        0.0
    } else {
        sab / (saa * sbb).sqrt()
    }
}

/// `[latent][observable]` Pearson correlations. `latents` is one Vec per event.
pub fn correlations(latents: &[Vec<f32>], observables: &[(&str, Vec<f32>)]) -> Vec<Vec<f64>> {
    let l = latents.first().map_or(0, |z| z.len());
    (0..l)
        .map(|i| {
            let zi: Vec<f32> = latents.iter().map(|z| z[i]).collect();
            observables.iter().map(|(_, v)| pearson(&zi, v)).collect()
        })
        .collect()
}

/// Histogram cells per axis for [`mutual_information`] (equal-frequency).
pub const MI_BINS: usize = 16;

/// `[latent][observable]` mutual information in nats (see [`crate::metrics::mutual_information`]),
/// of posterior draws (see [`super::Lab::encode_sampled`]): it also sees relations that are not
/// linear, such as an angle read off a cut-open sphere.
pub fn mutual_information(latents: &[Vec<f32>], observables: &[(&str, Vec<f32>)]) -> Vec<Vec<f64>> {
    let l = latents.first().map_or(0, |z| z.len());
    (0..l)
        .map(|i| {
            let zi: Vec<f32> = latents.iter().map(|z| z[i]).collect();
            observables
                .iter()
                .map(|(_, v)| crate::metrics::mutual_information(&zi, v, MI_BINS))
                .collect()
        })
        .collect()
}

/// The observables of some events, in event order.
pub fn observables_of(observables: &[Observable], rows: &[usize]) -> Vec<(String, Vec<f32>)> {
    observables
        .iter()
        .map(|o| (o.name.clone(), rows.iter().map(|&i| o.values[i]).collect()))
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn pearson_signs_and_degenerate() {
        let a = [1.0, 2.0, 3.0, 4.0];
        assert!((pearson(&a, &[2.0, 4.0, 6.0, 8.0]) - 1.0).abs() < 1e-12);
        assert!((pearson(&a, &[4.0, 3.0, 2.0, 1.0]) + 1.0).abs() < 1e-12);
        assert_eq!(pearson(&a, &[1.0; 4]), 0.0);
        assert_eq!(pearson(&a[..1], &a[..1]), 0.0);
    }

    #[test]
    fn metrics_round_trip() {
        let r = RelevanceReport {
            recon: 0.25,
            ..RelevanceReport::from_relevance(vec![0.9, 0.1, 0.5], vec![2.0, 0.01, 0.7])
        };
        assert_eq!(r.relevant_dims, 2);
        let m = report_metrics(&r);
        let back = report_from_metrics(m.iter().map(|(k, v)| (k.as_str(), *v))).unwrap();
        assert_eq!(back, r);
    }
}
