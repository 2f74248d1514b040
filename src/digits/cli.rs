//! The independent digit classifier on the command line (see [`crate::cli::Family`]):
//! `latent-lab train digit-classifier --out models/digit_classifier.safetensors` makes the
//! judge that reads decoded digits; `eval` measures it on held-out writers or on `--data`.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::anyhow;
use candle_core::{Device, Tensor};

use super::classifier::{ClassifierConfig, ClassifierTrainer, DigitClassifier, FAMILY};
use super::{PIXELS, Recipe, Source};
use crate::cli::{self, CliError, CliResult, Family, TrainArgs, bad};
use crate::figures;
use crate::worker::{self, JobOptions};

pub struct DigitClassifierFamily;

fn load(file: &Path) -> Result<DigitClassifier, CliError> {
    Ok(DigitClassifier::load(file)?)
}

/// The digits a classifier is tested on: `--data`'s test split, or 200 held-out writers.
fn test_digits(data: Option<&str>, seed: u64) -> Result<(String, super::DigitSet), CliError> {
    match data {
        None | Some("digits") => Ok((
            "digits: 200 held-out writers".into(),
            super::classifier::held_out_digits(200, 2, seed),
        )),
        Some(spec) => {
            let source = Source::parse(spec, Recipe::default())?;
            let split = source.load()?;
            Ok((spec.to_string(), split.test))
        }
    }
}

impl Family for DigitClassifierFamily {
    fn name(&self) -> &'static str {
        FAMILY
    }

    fn train(&self, args: &TrainArgs) -> Result<worker::JobHandle, CliError> {
        let cfg = args.config_without_sizes(FAMILY, ClassifierConfig::preset, |c| &mut c.steps)?;
        if let Some(d) = args.data.as_deref()
            && d != "digits"
        {
            return Err(bad(anyhow!(
                "--data {d}: the digit classifier learns from the generator only (`digits`), so that it stays independent of any data a model was trained on"
            )));
        }
        let seed = args.seed;
        Ok(worker::spawn(
            move |status| {
                status(format!(
                    "{FAMILY}: {} steps of {} fresh digits",
                    cfg.steps, cfg.batch
                ));
                Ok(Box::new(ClassifierTrainer::new(cfg, seed)?))
            },
            JobOptions {
                snapshot_every: args.snapshot_every.unwrap_or(Duration::from_secs(20)),
                ..args.job_options(500)
            },
        ))
    }

    fn eval(&self, file: &Path, data: Option<&str>) -> Result<serde_json::Value, CliError> {
        let clf = load(file)?;
        let (source, test) = test_digits(data, clf.meta.seed)?;
        let accuracy = clf.accuracy(&test)?;
        let m = clf.confusion(&test)?;
        let per_class: Vec<Option<f64>> = m
            .iter()
            .enumerate()
            // a class the test set lacks has no accuracy (null), not one of 0
            .map(|(d, row)| {
                let n = row.iter().sum::<usize>();
                (n > 0).then(|| row[d] as f64 / n as f64)
            })
            .collect();
        Ok(serde_json::json!({
            "family": FAMILY,
            "data": source,
            "test_images": test.len(),
            "accuracy": accuracy,
            "accuracy_per_class": per_class,
            "steps": clf.meta.steps,
        }))
    }

    fn export(&self, file: &Path, figure: &str, out: &Path) -> CliResult {
        if figure != "confusion" {
            return Err(bad(anyhow!(
                "--figure {figure}: the digit classifier draws `confusion`"
            )));
        }
        let clf = load(file)?;
        let (source, test) = test_digits(None, clf.meta.seed)?;
        let m = clf.confusion(&test)?;
        let labels: Vec<String> = (0..10).map(|d| d.to_string()).collect();
        let fig = figures::Figure::Heatmap {
            title: format!("digit classifier: true digit (rows) read as (columns), {source}"),
            rows: labels.clone(),
            cols: labels,
            values: m
                .iter()
                .map(|r| r.iter().map(|&c| c as f64).collect())
                .collect(),
        };
        figures::save(&fig, out).map_err(bad)
    }

    fn bench(&self, what: &str, _preset: &str) -> Result<serde_json::Value, CliError> {
        match what {
            "generate" => {
                let t = Instant::now();
                let set = super::generate(0, 1000, 2, 0);
                let s = t.elapsed().as_secs_f64();
                Ok(serde_json::json!({
                    "digits": set.len(),
                    "seconds": s,
                    "digits_per_second": set.len() as f64 / s,
                    "threads": rayon::current_num_threads(),
                }))
            }
            "classify" | "decode" => {
                let mut t = ClassifierTrainer::new(
                    ClassifierConfig {
                        steps: 1,
                        test_writers: 1,
                        ..ClassifierConfig::default()
                    },
                    0,
                )?;
                use crate::worker::Trainer;
                t.step()?;
                let clf = DigitClassifier::from_snapshot(&t.snapshot()?)?;
                let img = super::generate(0, 1, 1, 0).images;
                let image = img[..PIXELS].to_vec();
                let times = cli::time_ms(
                    &mut || {
                        clf.logits(&image)?;
                        Ok(())
                    },
                    20,
                    500,
                )?;
                Ok(serde_json::json!({
                    "classify_ms_p50": cli::percentile(&times, 0.5),
                    "classify_ms_p99": cli::percentile(&times, 0.99),
                }))
            }
            _ => Err(cli::unknown_bench(FAMILY, what, "generate, classify")),
        }
    }

    fn encode(&self, file: &Path, input: &Path, out: &Path) -> CliResult {
        let clf = load(file)?;
        let (n, x) = cli::read_unit_matrix(input, PIXELS, "28x28 digit images, ink in [0, 1]")?;
        let p = clf.probabilities(&x)?;
        let flat: Vec<f32> = p.into_iter().flatten().collect();
        cli::write_npy(&Tensor::from_vec(flat, (n, 10), &Device::Cpu)?, out)
    }

    fn decode(&self, file: &Path, _latents: &Path, _out: &Path) -> CliResult {
        Err(bad(anyhow!(
            "{}: a digit classifier has no decoder (`encode` gives class probabilities)",
            file.display()
        )))
    }
}
