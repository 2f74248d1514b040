//! What the Relevance tab shows of a model's latent space: its held-out events encoded, the
//! relevance report, and the latents related to the physics observables.

use std::sync::Arc;

use super::Lab;
use super::data::Dataset;
use super::eval::{self, RelevanceReport};

/// Held-out events shown in the scatter and used for correlations.
const INSPECT_EVENTS: usize = 3000;

/// What the held-out events of the current model look like in latent space.
pub(super) struct Inspection {
    /// (data, steps) of the model it was computed for
    pub(super) key: (String, u64),
    /// the held-out rows of the data set, in the order of `latents`
    pub(super) rows: Vec<usize>,
    pub(super) latents: Vec<Vec<f32>>,
    pub(super) observables: Vec<(String, Vec<f32>)>,
    /// [latent][observable]
    pub(super) correlations: Vec<Vec<f64>>,
    /// [latent][observable], nats
    pub(super) mutual_information: Vec<Vec<f64>>,
    pub(super) report: RelevanceReport,
    /// per-dimension 1st..99th percentile of the posterior means
    pub(super) ranges: Vec<(f32, f32)>,
    /// a few held-out events (raw features) to draw behind a traversal of 2-D data
    pub(super) sample: Vec<Vec<f32>>,
}

/// (data spec, events, seed): what a model's data set is made from.
pub(super) type DatasetKey = (String, usize, u64);
pub(super) type InspectResult = Result<((DatasetKey, Arc<Dataset>), Inspection), String>;

pub(super) fn lab_key(lab: &Lab) -> (String, u64) {
    (lab.meta.data.clone(), lab.meta.steps)
}

/// Encode held-out events of the model's data and relate the latents to the observables.
pub(super) fn inspect(lab: &Lab, cached: Option<(DatasetKey, Arc<Dataset>)>) -> InspectResult {
    let key: DatasetKey = (lab.meta.data.clone(), lab.cfg.events, lab.meta.seed);
    let dataset = match cached {
        Some((k, d)) if k == key => d,
        _ => Arc::new(lab.training_data().map_err(|e| e.to_string())?),
    };
    lab.check_data(&dataset).map_err(|e| e.to_string())?;
    let report = lab.relevance_on(&dataset).map_err(|e| format!("{e:#}"))?;
    let rows: Vec<usize> = dataset
        .held_out_indices()
        .into_iter()
        .take(INSPECT_EVENTS)
        .collect();
    let latents = lab
        .encode(&dataset.gather(&rows))
        .map_err(|e| e.to_string())?;
    let observables = eval::observables_of(&dataset.observables, &rows);
    let refs: Vec<(&str, Vec<f32>)> = observables
        .iter()
        .map(|(n, v)| (n.as_str(), v.clone()))
        .collect();
    let correlations = eval::correlations(&latents, &refs);
    let draws = lab
        .encode_sampled(&dataset.gather(&rows), 0)
        .map_err(|e| e.to_string())?;
    let mutual_information = eval::mutual_information(&draws, &refs);
    let l = lab.latent_dims();
    let ranges = (0..l)
        .map(|i| {
            let mut v: Vec<f32> = latents.iter().map(|z| z[i]).collect();
            v.sort_by(f32::total_cmp);
            let q = |p: f64| {
                v.get(((v.len().saturating_sub(1)) as f64 * p) as usize)
                    .copied()
                    .unwrap_or(0.0)
            };
            (q(0.01), q(0.99))
        })
        .collect();
    let sample = rows
        .iter()
        .take(600)
        .map(|&i| dataset.row(i).to_vec())
        .collect();
    let inspection = Inspection {
        key: lab_key(lab),
        rows,
        latents,
        observables,
        correlations,
        mutual_information,
        report,
        ranges,
        sample,
    };
    Ok(((key, dataset), inspection))
}
