//! The IE-VAE family on the command line (see [`crate::cli::Family`]).

use std::path::Path;
use std::sync::Arc;

use anyhow::anyhow;
use candle_core::{Device, Tensor};

use super::train::{IeVaeTrainer, TrainConfig};
use super::{FAMILY, Lab, eval, load_data};
use crate::cli::{self, CliError, CliResult, Family, TrainArgs, bad};
use crate::digits::classifier::{ClassifierConfig, DigitClassifier};
use crate::digits::{PIXELS, SIDE};
use crate::figures::{self, Figure};
use crate::worker::{self, JobOptions};

pub struct IeVaeFamily;

fn load(file: &Path) -> Result<Lab, CliError> {
    Ok(Lab::load(file)?)
}

/// The independent classifier that reads decoded digits: the shipped one, or a quick one
/// trained now when the models folder has none.
pub fn judge() -> anyhow::Result<DigitClassifier> {
    DigitClassifier::load_or_train(
        &crate::app::find_models_dir(),
        &ClassifierConfig {
            steps: 1000,
            ..ClassifierConfig::default()
        },
    )
}

/// Grey digits (ink in [0, 1]) as RGB tiles, ink dark on white paper.
pub fn tile(image: &[f32]) -> Vec<u8> {
    image
        .iter()
        .flat_map(|&p| {
            let v = ((1.0 - p.clamp(0.0, 1.0)) * 255.0).round() as u8;
            [v, v, v]
        })
        .collect()
}

/// Values swept along one equivariant dimension: +-2.5 standard deviations of the prior.
pub fn sweep(points: usize) -> Vec<f32> {
    (0..points)
        .map(|k| -2.5 + 5.0 * k as f32 / (points - 1).max(1) as f32)
        .collect()
}

/// The equivariant dimensions, most used first (largest mean KL on `images`).
pub fn dims_by_use(lab: &Lab, images: &[f32]) -> anyhow::Result<Vec<usize>> {
    let n = images.len() / PIXELS;
    let x = Tensor::from_slice(images, (n, PIXELS), &Device::Cpu)?;
    let (mu, logvar) = lab.model.encode(&x)?;
    let kl = crate::nn::kl_per_dim(&mu, &logvar)?.to_vec1::<f32>()?;
    let mut dims: Vec<usize> = (0..kl.len()).collect();
    dims.sort_by(|a, b| kl[*b].total_cmp(&kl[*a]));
    Ok(dims)
}

/// Class (rows) x one equivariant dimension (columns), the other dimensions at 0.
pub fn traversal_figure(lab: &Lab, dim: usize, points: usize) -> anyhow::Result<Figure> {
    let e = lab.equivariant_dims();
    anyhow::ensure!(dim < e, "dimension {dim} of {e}");
    let values = sweep(points);
    let mut tiles = Vec::new();
    for c in 0..lab.classes() as u32 {
        let poses: Vec<Vec<f32>> = values
            .iter()
            .map(|&v| {
                let mut z = vec![0.0; e];
                z[dim] = v;
                z
            })
            .collect();
        let items: Vec<(u32, &[f32])> = poses.iter().map(|z| (c, z.as_slice())).collect();
        tiles.extend(lab.draw(&items)?.iter().map(|img| tile(img)));
    }
    let mut captions: Vec<String> = values.iter().map(|v| format!("z{dim}={v:+.1}")).collect();
    captions.extend((0..lab.classes()).map(|c| c.to_string()));
    Ok(Figure::ImageGrid {
        title: format!("IE-VAE: class (rows) x equivariant dimension z{dim} (columns)"),
        tile_w: SIDE,
        tile_h: SIDE,
        cols: points,
        tiles,
        captions,
    })
}

/// Test digits (first column) and their poses drawn in every class.
pub fn swap_figure(lab: &Lab, rows: usize) -> anyhow::Result<Figure> {
    let digits = super::picker_digits(lab.meta.seed);
    let mut tiles = Vec::new();
    let mut captions = vec!["input".to_string()];
    captions.extend((0..lab.classes()).map(|c| c.to_string()));
    for i in 0..rows.min(digits.len()) {
        let img = digits.image(i);
        tiles.push(tile(img));
        let pose = lab.pose_of(img)?;
        tiles.extend(lab.in_every_class(&pose)?.iter().map(|d| tile(d)));
    }
    Ok(Figure::ImageGrid {
        title: "IE-VAE: the pose of each test digit (left) drawn in every class".into(),
        tile_w: SIDE,
        tile_h: SIDE,
        cols: lab.classes() + 1,
        tiles,
        captions,
    })
}

impl Family for IeVaeFamily {
    fn name(&self) -> &'static str {
        FAMILY
    }

    fn train(&self, args: &TrainArgs) -> Result<worker::JobHandle, CliError> {
        let mut cfg = args.config(TrainConfig::preset, |c| &mut c.steps)?;
        cfg.preset = args.preset.clone();
        if let Some(l) = args.latent_within(1..=64, "equivariant dimensions")? {
            cfg.model.equivariant = l;
        }
        cfg.beta = args.checked_beta()?.unwrap_or(cfg.beta);
        cfg.recipe.seed = args.seed;
        if let Some(l) = args.labels {
            if l < cfg.model.classes {
                return Err(bad(anyhow!(
                    "--labels {l}: give at least one label per class ({})",
                    cfg.model.classes
                )));
            }
            cfg.labels = Some(l);
        }
        let spec = args.data.clone().unwrap_or_else(|| "digits".into());
        // read files now, so bad data is refused (exit 2) before any training starts
        let data = load_data(&spec, &cfg.recipe)?;
        if let Some(l) = cfg.labels
            && l > data.train.len()
        {
            return Err(bad(anyhow!(
                "--labels {l}: the training data hold only {} images",
                data.train.len()
            )));
        }
        let seed = args.seed;
        Ok(worker::spawn(
            move |status| {
                status(format!(
                    "{spec}: {} training and {} test digits, {}",
                    data.train.len(),
                    data.test.len(),
                    match cfg.labels {
                        Some(l) => format!("{l} labelled"),
                        None => "all labelled".into(),
                    }
                ));
                let judge = judge()?;
                Ok(Box::new(IeVaeTrainer::new(
                    cfg,
                    data,
                    spec,
                    seed,
                    Some(Arc::new(judge)),
                )?))
            },
            // small dense networks: one thread beats several that wait on each other
            // (and on a shared machine, several threads wait on the other programs too)
            JobOptions {
                threads: args.threads.unwrap_or(1),
                ..args.job_options(500)
            },
        ))
    }

    fn eval(&self, file: &Path, data: Option<&str>) -> Result<serde_json::Value, CliError> {
        let lab = load(file)?;
        let split = lab.data(data)?;
        let judge = judge().map_err(CliError::Failed)?;
        let report = eval::full_report(&lab.model, &split, Some(&judge), lab.labels_used)
            .map_err(CliError::Failed)?;
        let mut out = serde_json::json!({
            "family": FAMILY,
            "preset": lab.meta.preset,
            "data": data.unwrap_or(&lab.meta.data),
            "steps": lab.meta.steps,
            "equivariant_dims": lab.equivariant_dims(),
        });
        // how much each equivariant dimension is used (mean KL on test digits, nats)
        let head = split.test.head(2000);
        let kl = {
            let x = Tensor::from_slice(&head.images, (head.len(), PIXELS), &Device::Cpu)?;
            let (mu, logvar) = lab.model.encode(&x)?;
            crate::nn::kl_per_dim(&mu, &logvar)?.to_vec1::<f32>()?
        };
        if let Some(map) = out.as_object_mut() {
            map.insert(
                "kl_per_dim".into(),
                serde_json::json!(
                    kl.iter()
                        .map(|&v| (v as f64 * 1000.0).round() / 1000.0)
                        .collect::<Vec<_>>()
                ),
            );
            for (k, v) in report.pairs() {
                let v = if k == "labels" || k == "test_images" {
                    serde_json::json!(v as u64)
                } else {
                    serde_json::json!(v)
                };
                map.insert(k, v);
            }
        }
        Ok(out)
    }

    fn export(&self, file: &Path, figure: &str, out: &Path) -> CliResult {
        let lab = load(file)?;
        let ext = cli::extension(out);
        if ext != "png" && ext != "svg" {
            return Err(bad(anyhow!(
                "{}: {FAMILY} figures are .png or .svg",
                out.display()
            )));
        }
        let fig = match figure.split_once(':').unwrap_or((figure, "")) {
            ("traversal", "") => {
                let picks = super::picker_digits(lab.meta.seed);
                let dim = dims_by_use(&lab, &picks.images)?
                    .first()
                    .copied()
                    .unwrap_or(0);
                traversal_figure(&lab, dim, 9)?
            }
            ("traversal", k) => {
                let e = lab.equivariant_dims();
                let dim = k.parse::<usize>().ok().filter(|d| *d < e).ok_or_else(|| {
                    bad(anyhow!(
                        "--figure {figure}: give an equivariant dimension 0..{}",
                        e - 1
                    ))
                })?;
                traversal_figure(&lab, dim, 9)?
            }
            ("swap", "") => swap_figure(&lab, 8)?,
            _ => {
                return Err(bad(anyhow!(
                    "--figure {figure}: {FAMILY} draws `traversal` (the most used dimension), `traversal:K`, `swap`"
                )));
            }
        };
        figures::save(&fig, out).map_err(bad)
    }

    fn bench(&self, what: &str, preset: &str) -> Result<serde_json::Value, CliError> {
        let cfg = TrainConfig::preset(preset).map_err(bad)?;
        match what {
            "decode" => {
                let (_vm, vb) = crate::nn::new_varmap();
                let model = super::model::IeVae::new(&cfg.model, vb)?;
                let z = Tensor::zeros(
                    (1, cfg.model.equivariant),
                    candle_core::DType::F32,
                    &Device::Cpu,
                )?;
                cli::bench_decode(FAMILY, preset, 1000, &mut || {
                    model.decode_classes(&[3], &z)?;
                    Ok(())
                })
            }
            "train-step" => {
                let data = crate::digits::generated_split(&crate::digits::Recipe {
                    train_writers: 20,
                    test_writers: 2,
                    per_digit: 2,
                    seed: 0,
                });
                let mut trainer = IeVaeTrainer::new(cfg.clone(), data, "digits".into(), 0, None)?;
                let details = serde_json::json!({ "batch": cfg.batch });
                cli::bench_train_step(FAMILY, preset, &mut trainer, (3, 20), details)
            }
            other => Err(cli::unknown_bench(FAMILY, other, "decode, train-step")),
        }
    }

    fn encode(&self, file: &Path, input: &Path, out: &Path) -> CliResult {
        let lab = load(file)?;
        let (n, x) = cli::read_unit_matrix(input, PIXELS, "28x28 digit images, ink in [0, 1]")?;
        let (mu, _) = lab
            .model
            .encode(&Tensor::from_vec(x, (n, PIXELS), &Device::Cpu)?)?;
        cli::write_npy(&mu, out)
    }

    /// Latents (N, 1 + E): the class in the first column, the pose after it; or (N, E):
    /// each pose drawn in every class (N * classes images, class-major per pose).
    fn decode(&self, file: &Path, latents: &Path, out: &Path) -> CliResult {
        let lab = load(file)?;
        let e = lab.equivariant_dims();
        let z = cli::read_npy(latents)?;
        let cols = if z.dims().len() == 2 { z.dims()[1] } else { 0 };
        if cols != e && cols != e + 1 {
            return Err(bad(anyhow!(
                "{}: shape {:?}, expected (N, {}) (class then pose) or (N, {e}) (pose, drawn in every class)",
                latents.display(),
                z.dims(),
                e + 1
            )));
        }
        let rows = z.to_vec2::<f32>()?;
        // pose-only rows are drawn once in every class
        let images = rows.len() * if cols == e { lab.classes() } else { 1 };
        // the decoder's activations take about 20 kB a digit while they are drawn together
        let most = cli::MAX_ROWS / 5;
        if images == 0 || images > most {
            return Err(bad(anyhow!(
                "{}: {} rows would draw {images} digits; give 1 to {most} at a time",
                latents.display(),
                rows.len(),
            )));
        }
        let mut items: Vec<(u32, Vec<f32>)> = Vec::new();
        for (i, row) in rows.iter().enumerate() {
            if cols == e + 1 {
                let c = row[0];
                if !(c >= 0.0 && c < lab.classes() as f32 && c.fract() == 0.0) {
                    return Err(bad(anyhow!(
                        "{}: row {i}: class {c} is not 0..{}",
                        latents.display(),
                        lab.classes() - 1
                    )));
                }
                items.push((c as u32, row[1..].to_vec()));
            } else {
                items.extend((0..lab.classes() as u32).map(|c| (c, row.clone())));
            }
        }
        let refs: Vec<(u32, &[f32])> = items.iter().map(|(c, z)| (*c, z.as_slice())).collect();
        let images = lab.draw(&refs)?;
        match cli::extension(out).as_str() {
            "npy" => {
                let flat: Vec<f32> = images.concat();
                cli::write_npy(
                    &Tensor::from_vec(flat, (images.len(), PIXELS), &Device::Cpu)?,
                    out,
                )
            }
            "png" | "svg" => {
                let fig = Figure::ImageGrid {
                    title: format!("IE-VAE: {} decoded digits", images.len()),
                    tile_w: SIDE,
                    tile_h: SIDE,
                    cols: if cols == e {
                        lab.classes()
                    } else {
                        images.len().clamp(1, 10)
                    },
                    tiles: images.iter().map(|i| tile(i)).collect(),
                    captions: Vec::new(),
                };
                figures::save(&fig, out).map_err(bad)
            }
            other => Err(cli::cannot_decode_to(out, other, ".npy, .png or .svg")),
        }
    }
}
