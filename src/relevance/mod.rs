//! Relevance lab (Sanz, "Learning symmetries in datasets", 2025): a beta-VAE trained on data
//! with a known symmetry; the relevance of each latent dimension (1 - mean posterior
//! variance) counts the dimensions the data really has.

pub mod cli;
pub mod data;
pub mod eval;
mod event_view;
pub mod explore;
mod inspect;
pub mod model;
pub mod train;
pub mod view;

use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use serde::{Deserialize, Serialize};

use crate::nn::checkpoint::{CheckpointError, Checkpointed, Metadata, Opened, SizeLimits};
use data::{DataError, Dataset};
use eval::RelevanceReport;
use model::RelevanceVae;
use train::{Standardizer, TrainConfig};

pub const FAMILY: &str = "vae-relevance";

/// The relevance of every latent dimension at one training step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistoryPoint {
    pub step: u64,
    pub relevance: Vec<f64>,
}

/// The metadata `config` of this family.
pub fn config_json(
    cfg: &TrainConfig,
    standardizer: &Standardizer,
    columns: &[String],
    intrinsic_dim: Option<usize>,
    history: &[HistoryPoint],
) -> serde_json::Value {
    serde_json::json!({
        "train": cfg,
        "standardizer": standardizer,
        "columns": columns,
        "intrinsic_dim": intrinsic_dim,
        "history": history,
    })
}

/// A trained model ready for the window and the command line.
pub struct Lab {
    pub meta: Metadata,
    pub cfg: TrainConfig,
    pub standardizer: Standardizer,
    /// feature names, in the model's input order
    pub columns: Vec<String>,
    pub intrinsic_dim: Option<usize>,
    pub history: Vec<HistoryPoint>,
    pub model: RelevanceVae,
    varmap: VarMap,
}

/// One latent vector per event.
pub type Latents = Vec<Vec<f32>>;

crate::checkpointed_lab!(Lab, FAMILY, TrainConfig);

impl SizeLimits for TrainConfig {
    fn size_limits(&self) -> Vec<(String, usize, std::ops::RangeInclusive<usize>)> {
        // the input's width is the data's, known once the data is read
        let m = &self.model;
        vec![
            ("batch".into(), self.batch, Self::BATCH),
            ("model.latent".into(), m.latent, 1..=256),
            ("model.hidden".into(), m.hidden, 1..=4096),
        ]
    }
}

impl Checkpointed for Lab {
    fn build(file: Opened<TrainConfig>) -> Result<Self, CheckpointError> {
        let standardizer: Standardizer = file.entry("standardizer")?;
        let columns: Vec<String> = file.entry("columns")?;
        let m = &file.cfg.model;
        let input = ("model.input".into(), m.input, 1..=1024);
        file.limits("train.", file.cfg.size_limits().into_iter().chain([input]))?;
        let input = m.input;
        if standardizer.dim() != input || standardizer.std.len() != input || columns.len() != input
        {
            return Err(file.refuse(format!(
                "the config disagrees with itself: {input} inputs, {} means, {} deviations, {} column names",
                standardizer.dim(),
                standardizer.std.len(),
                columns.len()
            )));
        }
        if standardizer
            .std
            .iter()
            .chain(&standardizer.mean)
            .any(|v| !v.is_finite())
            || standardizer.std.iter().any(|&s| s <= 0.0)
        {
            return Err(file.refuse("config.standardizer is not finite and positive"));
        }
        let (model, varmap) = file.build_model(|cfg, vb| RelevanceVae::new(&cfg.model, vb))?;
        Ok(Self {
            intrinsic_dim: file.entry_or_default("intrinsic_dim"),
            history: file.entry_or_default("history"),
            meta: file.meta,
            cfg: file.cfg,
            standardizer,
            columns,
            model,
            varmap,
        })
    }
}

impl Lab {
    pub fn latent_dims(&self) -> usize {
        self.cfg.model.latent
    }

    pub fn is_muon_pair(&self) -> bool {
        data::is_muon_columns(&self.columns)
    }

    /// The relevance measured when the checkpoint was saved.
    pub fn saved_report(&self) -> Option<RelevanceReport> {
        eval::report_from_metrics(self.meta.metrics.iter().map(|(k, v)| (k.as_str(), *v)))
    }

    /// The events the model was trained on (regenerated from the seed, or read again).
    pub fn training_data(&self) -> Result<Dataset, DataError> {
        Dataset::load(&self.meta.data, self.cfg.events, self.meta.seed)
    }

    /// Refuse data whose events do not have this model's features.
    pub fn check_data(&self, data: &Dataset) -> Result<(), DataError> {
        if data.dim() != self.cfg.model.input {
            return Err(DataError::Spec(format!(
                "{}: {} features per event, the model reads {} ({})",
                data.source,
                data.dim(),
                self.cfg.model.input,
                self.columns.join(", ")
            )));
        }
        Ok(())
    }

    /// Relevance on the held-out events of `data`.
    pub fn relevance_on(&self, data: &Dataset) -> anyhow::Result<RelevanceReport> {
        self.check_data(data)?;
        let x = train::feature_tensor(data, &data.held_out_indices(), &self.standardizer)?;
        Ok(eval::relevance(&self.model, &x)?)
    }

    /// Posterior means and log-variances of raw (unstandardised) events, one Vec per event.
    fn posterior(&self, rows: &[f32]) -> candle_core::Result<(Latents, Latents)> {
        let d = self.cfg.model.input;
        let n = rows.len() / d;
        let (mut means, mut logvars) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for chunk in rows[..n * d].chunks(4096 * d) {
            let x = Tensor::from_vec(
                self.standardizer.apply(chunk),
                (chunk.len() / d, d),
                &Device::Cpu,
            )?;
            let (mu, logvar) = self.model.encode(&x)?;
            means.extend(mu.to_vec2::<f32>()?);
            logvars.extend(logvar.to_vec2::<f32>()?);
        }
        Ok((means, logvars))
    }

    /// Posterior means of raw (unstandardised) events, one Vec per event.
    pub fn encode(&self, rows: &[f32]) -> candle_core::Result<Vec<Vec<f32>>> {
        Ok(self.posterior(rows)?.0)
    }

    /// One draw from each event's posterior (seeded): what a latent carries about the event,
    /// noise included. A collapsed latent's mean still wiggles with the input, but its draws
    /// are prior noise, so statistics such as mutual information belong on draws.
    pub fn encode_sampled(&self, rows: &[f32], seed: u64) -> candle_core::Result<Vec<Vec<f32>>> {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let (means, logvars) = self.posterior(rows)?;
        Ok(means
            .into_iter()
            .zip(logvars)
            .map(|(mu, lv)| {
                mu.iter()
                    .zip(&lv)
                    .map(|(m, l)| {
                        let eps: f32 = rng.sample(rand_distr::StandardNormal);
                        m + (0.5 * l).exp() * eps
                    })
                    .collect()
            })
            .collect())
    }

    /// Raw features decoded from latents (row-major, N x latent).
    pub fn decode(&self, latents: &[f32]) -> candle_core::Result<Vec<f32>> {
        let l = self.latent_dims();
        let n = latents.len() / l;
        let z = Tensor::from_slice(&latents[..n * l], (n, l), &Device::Cpu)?;
        let x = self.model.decode(&z)?.flatten_all()?.to_vec1::<f32>()?;
        Ok(self.standardizer.invert(&x))
    }
}

/// Lines that draw one bar per latent dimension (bars of width 0.8, broken by NaN points).
fn bar_lines(values: &[f64]) -> Vec<(f64, f64)> {
    let mut pts = Vec::with_capacity(values.len() * 5);
    for (i, &v) in values.iter().enumerate() {
        let (a, b) = (i as f64 - 0.4, i as f64 + 0.4);
        pts.extend([(a, 0.0), (a, v), (b, v), (b, 0.0), (f64::NAN, f64::NAN)]);
    }
    pts
}

fn describe(lab: &Lab) -> String {
    format!(
        "{}, latent {}, β = {}",
        lab.meta.data,
        lab.latent_dims(),
        lab.cfg.beta
    )
}

/// Relevance of each latent dimension as bars, with the 0.5 threshold.
pub fn relevance_figure(lab: &Lab, report: &RelevanceReport) -> crate::figures::Figure {
    use crate::figures::{Figure, PALETTE, Series};
    let l = report.relevance.len().max(1) as f64;
    let intrinsic = lab
        .intrinsic_dim
        .map(|d| format!(", intrinsic dimension {d}"))
        .unwrap_or_default();
    Figure::Lines {
        title: format!(
            "Relevance per latent dimension: {} relevant{intrinsic}",
            report.relevant_dims
        ),
        x_label: format!("latent dimension ({})", describe(lab)),
        y_label: "relevance R = 1 − mean posterior variance".into(),
        series: vec![
            Series::new("relevance", bar_lines(&report.relevance), PALETTE[0]),
            Series::new(
                "threshold 0.5",
                vec![(-0.5, eval::RELEVANT), (l - 0.5, eval::RELEVANT)],
                PALETTE[3],
            ),
        ],
        log_y: false,
    }
}

/// KL of each latent dimension from the prior, as bars.
pub fn kl_figure(lab: &Lab, report: &RelevanceReport) -> crate::figures::Figure {
    use crate::figures::{Figure, PALETTE, Series};
    Figure::Lines {
        title: "KL per latent dimension".into(),
        x_label: format!("latent dimension ({})", describe(lab)),
        y_label: "KL(q(z_i|x) || N(0,1)) (nats)".into(),
        series: vec![Series::new("KL", bar_lines(&report.kl_per_dim), PALETTE[1])],
        log_y: false,
    }
}

/// Relevance of every dimension over the training steps.
pub fn curves_figure(lab: &Lab) -> crate::figures::Figure {
    use crate::figures::{Figure, Series, category_color};
    let l = lab.history.first().map_or(0, |h| h.relevance.len());
    let series = (0..l)
        .map(|i| {
            let pts = lab
                .history
                .iter()
                .filter_map(|h| h.relevance.get(i).map(|r| (h.step as f64, *r)))
                .collect();
            Series::new(format!("z{i}"), pts, category_color(i, l))
        })
        .collect();
    Figure::Lines {
        title: "Relevance of each latent while training".into(),
        x_label: format!("training step ({})", describe(lab)),
        y_label: "relevance R_i".into(),
        series,
        log_y: false,
    }
}

/// Two latents of held-out events, coloured by an observable (five bins of equal counts).
pub fn scatter_figure(
    lab: &Lab,
    latents: &[Vec<f32>],
    dims: (usize, usize),
    observable: (&str, &[f32]),
) -> crate::figures::Figure {
    use crate::figures::{Figure, Series, viridis};
    let (name, values) = observable;
    let bins = 5;
    let edges = quantile_edges(values, bins);
    let mut series: Vec<Series> = (0..bins)
        .map(|b| {
            let c = viridis(b as f32 / (bins - 1) as f32);
            Series::new(
                format!("{name} {:.3} to {:.3}", edges[b], edges[b + 1]),
                Vec::new(),
                (c[0], c[1], c[2]),
            )
        })
        .collect();
    for (z, &v) in latents.iter().zip(values) {
        let b = bin_of(&edges, v);
        series[b].points.push((z[dims.0] as f64, z[dims.1] as f64));
    }
    series.retain(|s| !s.points.is_empty());
    Figure::Scatter {
        title: format!(
            "Held-out events in latents z{} and z{}, coloured by {name}",
            dims.0, dims.1
        ),
        x_label: format!("z{} (posterior mean; {})", dims.0, describe(lab)),
        y_label: format!("z{} (posterior mean)", dims.1),
        series,
        line: None,
    }
}

/// `bins + 1` edges that split `values` into bins of (nearly) equal counts.
pub fn quantile_edges(values: &[f32], bins: usize) -> Vec<f32> {
    let mut sorted: Vec<f32> = values.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f32::total_cmp);
    if sorted.is_empty() {
        return vec![0.0; bins + 1];
    }
    (0..=bins)
        .map(|k| sorted[(k * (sorted.len() - 1)) / bins])
        .collect()
}

pub fn bin_of(edges: &[f32], v: f32) -> usize {
    let bins = edges.len().saturating_sub(1).max(1);
    edges[1..bins]
        .iter()
        .take_while(|&&e| v > e)
        .count()
        .min(bins - 1)
}

/// The two most relevant dimensions (by relevance), most relevant first.
pub fn top_two(relevance: &[f64]) -> (usize, usize) {
    let idx = relevance_order(relevance);
    (
        idx.first().copied().unwrap_or(0),
        idx.get(1).copied().unwrap_or(0),
    )
}

/// The latent dimensions, most relevant first.
pub fn relevance_order(relevance: &[f64]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..relevance.len()).collect();
    idx.sort_by(|&a, &b| relevance[b].total_cmp(&relevance[a]));
    idx
}

/// Where dimension `d` stands in the order of relevance (0: the most relevant).
pub fn relevance_rank(relevance: &[f64], d: usize) -> usize {
    relevance_order(relevance)
        .iter()
        .position(|&i| i == d)
        .unwrap_or(0)
}

/// Relevant dimensions against beta (log scale) from a sweep, with the intrinsic dimension.
pub fn sweep_figure(
    points: &[(f64, usize)],
    intrinsic_dim: Option<usize>,
    data: &str,
) -> crate::figures::Figure {
    use crate::figures::{Figure, PALETTE, Series};
    let pts: Vec<(f64, f64)> = points
        .iter()
        .filter(|(b, _)| *b > 0.0)
        .map(|(b, d)| (b.log10(), *d as f64))
        .collect();
    let mut series = vec![Series::new(
        "relevant dims (R ≥ 0.5)",
        pts.clone(),
        PALETTE[0],
    )];
    if let (Some(d), Some(first), Some(last)) = (intrinsic_dim, pts.first(), pts.last()) {
        series.push(Series::new(
            "intrinsic dimension",
            vec![(first.0, d as f64), (last.0, d as f64)],
            PALETTE[3],
        ));
    }
    Figure::Lines {
        title: format!("Relevant latent dimensions against β ({data})"),
        x_label: "log10 β".into(),
        y_label: "relevant dimensions".into(),
        series,
        log_y: false,
    }
}
