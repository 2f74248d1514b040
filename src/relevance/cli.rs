//! The relevance family on the command line (see [`crate::cli::Family`]).

use std::path::Path;

use anyhow::anyhow;
use candle_core::{Device, Tensor};

use crate::cli::{self, CliError, CliResult, Family, TrainArgs, bad};
use crate::figures;
use crate::worker::{self, JobOptions};

use super::{FAMILY, Lab, data, train::TrainConfig};

pub struct RelevanceFamily;

fn load(file: &Path) -> Result<Lab, CliError> {
    Ok(Lab::load(file)?)
}

/// The events a relevance model is evaluated or drawn on: `--data`, or its training data.
fn events(lab: &Lab, data_spec: Option<&str>) -> Result<data::Dataset, CliError> {
    let spec = data_spec.unwrap_or(&lab.meta.data);
    let data = data::Dataset::load(spec, lab.cfg.events, lab.meta.seed)?;
    lab.check_data(&data)?;
    Ok(data)
}

impl Family for RelevanceFamily {
    fn name(&self) -> &'static str {
        FAMILY
    }

    fn train(&self, args: &TrainArgs) -> Result<worker::JobHandle, CliError> {
        args.refuse_labels(FAMILY)?;
        let mut cfg = args.config(TrainConfig::preset, |c| &mut c.steps)?;
        if let Some(l) = args.latent_within(1..=256, "latent dimensions")? {
            cfg.model.latent = l;
        }
        cfg.beta = args.checked_beta()?.unwrap_or(cfg.beta);
        let seed = args.seed;
        let spec = args.data.as_deref().unwrap_or("ee-mumu");
        let dataset = data::Dataset::load(spec, cfg.events, seed)?;
        // the model is small: one thread beats several that wait on each other
        let options = JobOptions {
            threads: args.threads.unwrap_or(1),
            ..args.job_options(500)
        };
        Ok(worker::spawn(
            move |status| {
                status(format!(
                    "{}: {} events of {} features",
                    dataset.source,
                    dataset.len(),
                    dataset.dim()
                ));
                Ok(Box::new(super::train::RelevanceTrainer::new(
                    cfg, &dataset, seed,
                )?))
            },
            options,
        ))
    }

    fn eval(&self, file: &Path, data_spec: Option<&str>) -> Result<serde_json::Value, CliError> {
        let lab = load(file)?;
        let data = events(&lab, data_spec)?;
        let report = lab.relevance_on(&data).map_err(CliError::Failed)?;
        if report.relevance.iter().any(|r| !r.is_finite()) {
            return Err(crate::cli::bad(anyhow!(
                "{}: the relevance is not finite on {}: its events lie too far outside the spread of those the model was trained on",
                file.display(),
                data.source
            )));
        }
        let mut metrics = serde_json::json!({
            "family": FAMILY,
            "preset": lab.meta.preset,
            "data": data.source,
            "latent": lab.latent_dims(),
            "beta": lab.cfg.beta,
            "steps": lab.meta.steps,
            "relevance": report.relevance,
            "relevant_dims": report.relevant_dims,
            "kl_per_dim": report.kl_per_dim,
            "recon": report.recon,
            "held_out_events": data.held_out_indices().len(),
        });
        if let Some(map) = metrics.as_object_mut() {
            if let Some(d) = data.intrinsic_dim {
                map.insert("intrinsic_dim".into(), d.into());
            }
            // which physical quantity each latent follows: Pearson r and mutual information (nats)
            let rows = data.held_out_indices();
            let latents = lab.encode(&data.gather(&rows))?;
            let obs = super::eval::observables_of(&data.observables, &rows);
            let refs: Vec<(&str, Vec<f32>)> =
                obs.iter().map(|(n, v)| (n.as_str(), v.clone())).collect();
            // one array per observable, one entry per latent dim
            let by_observable = |table: Vec<Vec<f64>>| -> serde_json::Value {
                obs.iter()
                    .enumerate()
                    .map(|(k, (name, _))| {
                        let column: Vec<f64> = table
                            .iter()
                            .map(|row| (row[k] * 1000.0).round() / 1000.0)
                            .collect();
                        (name.clone(), column.into())
                    })
                    .collect::<serde_json::Map<String, serde_json::Value>>()
                    .into()
            };
            map.insert(
                "correlations".into(),
                by_observable(super::eval::correlations(&latents, &refs)),
            );
            map.insert(
                "mutual_information".into(),
                by_observable(super::eval::mutual_information(
                    &lab.encode_sampled(&data.gather(&rows), 0)?,
                    &refs,
                )),
            );
        }
        Ok(metrics)
    }

    fn export(&self, file: &Path, figure: &str, out: &Path) -> CliResult {
        let lab = load(file)?;
        let ext = cli::extension(out);
        if !matches!(ext.as_str(), "png" | "svg") {
            return Err(bad(anyhow!(
                "{}: cannot export .{ext} (vae-relevance figures are .png or .svg)",
                out.display()
            )));
        }
        let report = || -> Result<super::eval::RelevanceReport, CliError> {
            let data = events(&lab, None)?;
            lab.relevance_on(&data).map_err(CliError::Failed)
        };
        let fig = match figure {
            "relevance" => super::relevance_figure(&lab, &report()?),
            "kl" => super::kl_figure(&lab, &report()?),
            "curves" => {
                if lab.history.is_empty() {
                    return Err(bad(anyhow!(
                        "{}: this checkpoint has no training history to plot",
                        file.display()
                    )));
                }
                super::curves_figure(&lab)
            }
            "scatter" => {
                let data = events(&lab, None)?;
                let rows = data.held_out_indices();
                let latents = lab.encode(&data.gather(&rows))?;
                let report = lab.relevance_on(&data).map_err(CliError::Failed)?;
                let obs = super::eval::observables_of(&data.observables, &rows);
                let Some((name, values)) = obs.first() else {
                    return Err(bad(anyhow!(
                        "{}: the data has no observable to colour by",
                        lab.meta.data
                    )));
                };
                super::scatter_figure(
                    &lab,
                    &latents,
                    super::top_two(&report.relevance),
                    (name, values),
                )
            }
            other => {
                return Err(bad(anyhow!(
                    "{}: unknown figure `{other}` (vae-relevance: relevance, kl, curves, scatter)",
                    out.display()
                )));
            }
        };
        figures::save(&fig, out).map_err(bad)
    }

    fn bench(&self, what: &str, preset: &str) -> Result<serde_json::Value, CliError> {
        let mut cfg = TrainConfig::preset(preset).map_err(bad)?;
        cfg.events = 5000;
        let data = data::generate(data::Generator::PpMuMu, cfg.events, 0);
        let mut trainer = super::train::RelevanceTrainer::new(cfg.clone(), &data, 0)?;
        Ok(match what {
            "train-step" => {
                let details = serde_json::json!({ "batch": cfg.batch, "latent": cfg.model.latent });
                cli::bench_train_step(FAMILY, &cfg.preset, &mut trainer, (20, 500), details)?
            }
            "decode" => {
                let lab = trainer.lab()?;
                let z = vec![0.3f32; lab.latent_dims()];
                cli::bench_decode(FAMILY, &cfg.preset, 2000, &mut || {
                    lab.decode(&z).map(|_| ()).map_err(Into::into)
                })?
            }
            other => return Err(cli::unknown_bench(FAMILY, other, "train-step, decode")),
        })
    }

    fn encode(&self, file: &Path, input: &Path, out: &Path) -> CliResult {
        let lab = load(file)?;
        let (n, x) = cli::read_matrix(
            input,
            lab.cfg.model.input,
            &format!("features ({})", lab.columns.join(", ")),
        )?;
        let z: Vec<f32> = lab.encode(&x)?.concat();
        cli::write_npy(
            &Tensor::from_vec(z, (n, lab.latent_dims()), &Device::Cpu)?,
            out,
        )
    }

    fn decode(&self, file: &Path, latents: &Path, out: &Path) -> CliResult {
        let lab = load(file)?;
        if cli::extension(out) != "npy" {
            return Err(bad(anyhow!(
                "{}: vae-relevance decodes to .npy (raw features)",
                out.display()
            )));
        }
        let (n, z) = cli::read_matrix(latents, lab.latent_dims(), "latents")?;
        let x = lab.decode(&z)?;
        cli::write_npy(
            &Tensor::from_vec(x, (n, lab.cfg.model.input), &Device::Cpu)?,
            out,
        )
    }
}
