//! The headless subcommands. Every family plugs in here through the same worker, checkpoint,
//! eval and figure machinery the window uses.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use candle_core::{Device, Tensor};

use crate::audio::{dsp, wav};
use crate::figures::{self, Figure, Series};
use crate::nn::checkpoint;
use crate::relevance;
use crate::sps_music::{self, Lab, data, train::TrainConfig};
use crate::worker::{self, Event, JobOptions};

/// Exit code 2 for input the program refuses, 1 for work that failed.
#[derive(Debug)]
pub enum CliError {
    BadInput(anyhow::Error),
    Failed(anyhow::Error),
}

impl<E: Into<anyhow::Error>> From<E> for CliError {
    fn from(e: E) -> Self {
        CliError::Failed(e.into())
    }
}

pub type CliResult = Result<(), CliError>;

fn bad(e: impl Into<anyhow::Error>) -> CliError {
    CliError::BadInput(e.into())
}

pub const FAMILIES: [&str; 2] = [sps_music::FAMILY, relevance::FAMILY];

fn check_family(family: &str) -> CliResult {
    if FAMILIES.contains(&family) {
        Ok(())
    } else {
        Err(bad(anyhow!(
            "unknown family `{family}` (available: {})",
            FAMILIES.join(", ")
        )))
    }
}

/// Fail before hours of work if the output cannot be written.
fn check_writable(out: &Path) -> CliResult {
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        return Err(bad(anyhow!(
            "{}: the folder {} does not exist",
            out.display(),
            dir.display()
        )));
    }
    if out.is_dir() {
        return Err(bad(anyhow!(
            "{}: is a folder, not a file path",
            out.display()
        )));
    }
    let probe = dir.join(format!(".latent-lab-probe-{}", std::process::id()));
    std::fs::write(&probe, b"")
        .map_err(|e| bad(anyhow!("{}: cannot write there ({e})", out.display())))?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}

/// Model sizes a training may change from its preset (`--latent`, `--beta`).
#[derive(Clone, Debug, Default)]
pub struct SizeOverrides {
    pub latent: Option<usize>,
    pub beta: Option<f64>,
}

pub fn train(
    family: &str,
    preset: &str,
    data_spec: Option<&str>,
    steps: Option<u64>,
    seed: u64,
    threads: Option<usize>,
    out: &Path,
) -> CliResult {
    train_with(
        family,
        preset,
        data_spec,
        steps,
        seed,
        threads,
        &SizeOverrides::default(),
        out,
    )
}

#[allow(clippy::too_many_arguments)]
pub fn train_with(
    family: &str,
    preset: &str,
    data_spec: Option<&str>,
    steps: Option<u64>,
    seed: u64,
    threads: Option<usize>,
    sizes: &SizeOverrides,
    out: &Path,
) -> CliResult {
    check_family(family)?;
    check_writable(out)?;
    if family == relevance::FAMILY {
        return train_relevance(preset, data_spec, steps, seed, threads, sizes, out);
    }
    if sizes.latent.is_some() || sizes.beta.is_some() {
        return Err(bad(anyhow!(
            "--latent and --beta apply to vae-relevance, not to {family}"
        )));
    }
    let mut cfg = TrainConfig::preset(preset).map_err(bad)?;
    if let Some(s) = steps {
        cfg.steps = s;
    }
    let spec = data_spec.unwrap_or("soundfont").to_string();
    let mut source = data::open_source(&spec).map_err(bad)?;
    let threads = threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let options = JobOptions {
        threads,
        eval_every: 250,
        snapshot_every: Duration::from_secs(30),
    };
    let job = worker::spawn(
        move |status| {
            let data = data::Dataset::render(source.as_mut(), status)?;
            status(format!(
                "{} training scales, {} held-out, {} of unseen instruments",
                data.train.len(),
                data.test_seen.len(),
                data.test_unseen.len()
            ));
            Ok(Box::new(sps_music::train::SpsTrainer::new(
                cfg, data, seed,
            )?))
        },
        options,
    );
    run_job(job, out)
}

fn train_relevance(
    preset: &str,
    data_spec: Option<&str>,
    steps: Option<u64>,
    seed: u64,
    threads: Option<usize>,
    sizes: &SizeOverrides,
    out: &Path,
) -> CliResult {
    let mut cfg = relevance::train::TrainConfig::preset(preset).map_err(bad)?;
    if let Some(s) = steps {
        cfg.steps = s;
    }
    if let Some(l) = sizes.latent {
        if !(1..=256).contains(&l) {
            return Err(bad(anyhow!(
                "--latent {l}: give 1 to 256 latent dimensions"
            )));
        }
        cfg.model.latent = l;
    }
    if let Some(b) = sizes.beta {
        if !(b.is_finite() && b >= 0.0) {
            return Err(bad(anyhow!("--beta {b}: give a number >= 0")));
        }
        cfg.beta = b;
    }
    let spec = data_spec.unwrap_or("ee-mumu");
    let dataset = relevance::data::Dataset::load(spec, cfg.events, seed).map_err(bad)?;
    // the model is small: one thread beats several that wait on each other
    let threads = threads.unwrap_or(1);
    let options = JobOptions {
        threads,
        eval_every: 500,
        snapshot_every: Duration::from_secs(30),
    };
    let job = worker::spawn(
        move |status| {
            status(format!(
                "{}: {} events of {} features",
                dataset.source,
                dataset.len(),
                dataset.dim()
            ));
            Ok(Box::new(relevance::train::RelevanceTrainer::new(
                cfg, &dataset, seed,
            )?))
        },
        options,
    );
    run_job(job, out)
}

/// Drive a job to its end on the terminal, then save its last weights to `out`.
fn run_job(job: worker::JobHandle, out: &Path) -> CliResult {
    // Ctrl-C stops training after the current step and still saves the weights reached.
    let flag = job.cancel_flag();
    let _ = ctrlc::set_handler(move || flag.store(true, std::sync::atomic::Ordering::Relaxed));
    let tty = std::io::stderr().is_terminal();
    let bar = tty.then(|| {
        let b = indicatif::ProgressBar::new(0);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{elapsed_precise} [{bar:30}] {pos}/{len} {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    });
    let mut last = None;
    let mut failure = None;
    let mut last_line = Instant::now();
    let mut total_steps = 0;
    job.wait(|event| match event {
        Event::Status(s) => match &bar {
            Some(b) => b.set_message(s.clone()),
            None => eprintln!("{s}"),
        },
        Event::Step(s) => {
            if let Some(b) = &bar {
                b.set_position(s.step);
                b.set_message(format!("loss {:.2}", s.total()));
            } else if last_line.elapsed() > Duration::from_secs(10) {
                eprintln!("step {} loss {:.3}", s.step, s.total());
                last_line = Instant::now();
            }
        }
        Event::Metrics { step, values } => {
            let text: Vec<String> = values.iter().map(|(k, v)| format!("{k} {v:.4}")).collect();
            match &bar {
                Some(b) => b.println(format!("step {step}: {}", text.join(", "))),
                None => eprintln!("step {step}: {}", text.join(", ")),
            }
        }
        Event::Snapshot(s) => {
            if let Some(b) = &bar
                && let Some(t) = s
                    .meta
                    .config
                    .pointer("/train/steps")
                    .and_then(|v| v.as_u64())
            {
                total_steps = t;
                b.set_length(t);
            }
            last = Some(s.clone());
        }
        Event::Finished {
            steps,
            cancelled,
            elapsed,
        } => {
            let msg = format!(
                "{} after {steps} steps in {:.1} s",
                if *cancelled { "stopped" } else { "finished" },
                elapsed.as_secs_f64()
            );
            match &bar {
                Some(b) => b.finish_with_message(msg),
                None => eprintln!("{msg}"),
            }
        }
        Event::Failed(e) => failure = Some(e.clone()),
    });
    let _ = total_steps;
    if let Some(snapshot) = &last {
        checkpoint::save(out, &snapshot.tensors, &snapshot.meta).map_err(bad)?;
        eprintln!("saved {}", out.display());
    }
    match failure {
        Some(e) if last.is_none() => Err(bad(anyhow!(e))),
        Some(e) => Err(CliError::Failed(anyhow!(
            "{e} (the last good weights were saved)"
        ))),
        None => Ok(()),
    }
}

fn load_family(file: &Path) -> Result<checkpoint::Loaded, CliError> {
    let loaded = checkpoint::load(file).map_err(bad)?;
    check_family(&loaded.meta.family).map_err(|_| {
        bad(anyhow!(
            "{}: a checkpoint of family `{}`, which this program does not know",
            file.display(),
            loaded.meta.family
        ))
    })?;
    Ok(loaded)
}

fn load_sps_music(file: &Path) -> Result<Lab, CliError> {
    load_family(file)?;
    Lab::load(file).map_err(bad)
}

pub fn eval(file: &Path, data_spec: Option<&str>, json: bool) -> CliResult {
    if load_family(file)?.meta.family == relevance::FAMILY {
        return eval_relevance(file, data_spec, json);
    }
    let mut lab = load_sps_music(file)?;
    let spec = match data_spec {
        Some(s) => s.to_string(),
        None if lab.meta.data.starts_with("soundfont:")
            || lab.meta.data.starts_with("wav-dir:") =>
        {
            lab.meta.data.clone()
        }
        None => "soundfont".into(),
    };
    let mut source = data::open_source(&spec).map_err(bad)?;
    let quiet = |_: String| {};
    let dataset = data::Dataset::render(source.as_mut(), &quiet).map_err(bad)?;
    let cal = sps_music::eval::embedding_metrics(&lab.model, &dataset)?;
    let (r2_synthesis, detected) = sps_music::eval::synthesis_r2(&lab.model, &cal, 16)?;
    let metrics = serde_json::json!({
        "family": sps_music::FAMILY,
        "preset": lab.meta.preset,
        "r2_embedding": cal.r2_seen,
        "r2_embedding_unseen": cal.r2_unseen,
        "r2_synthesis": r2_synthesis,
        "r2_within_instrument": cal.r2_within_instrument,
        "synthesis_detected": detected,
        "pitch_semitones_per_latent_unit": cal.slope,
        "held_out_notes": dataset.test_seen.len() * data::SEQ_LEN,
        "unseen_instrument_notes": dataset.test_unseen.len() * data::SEQ_LEN,
    });
    lab.calibration = cal;
    if json {
        println!("{metrics}");
    } else if let Some(map) = metrics.as_object() {
        for (k, v) in map {
            println!("{k:32} {v}");
        }
    }
    Ok(())
}

fn load_relevance(file: &Path) -> Result<relevance::Lab, CliError> {
    relevance::Lab::load(file).map_err(bad)
}

/// The events a relevance model is evaluated or drawn on: `--data`, or its training data.
fn relevance_data(
    lab: &relevance::Lab,
    data_spec: Option<&str>,
) -> Result<relevance::data::Dataset, CliError> {
    let spec = data_spec.unwrap_or(&lab.meta.data);
    let data = relevance::data::Dataset::load(spec, lab.cfg.events, lab.meta.seed).map_err(bad)?;
    lab.check_data(&data).map_err(bad)?;
    Ok(data)
}

fn print_metrics(metrics: &serde_json::Value, json: bool) {
    if json {
        println!("{metrics}");
    } else if let Some(map) = metrics.as_object() {
        for (k, v) in map {
            println!("{k:32} {v}");
        }
    }
}

fn eval_relevance(file: &Path, data_spec: Option<&str>, json: bool) -> CliResult {
    let lab = load_relevance(file)?;
    let data = relevance_data(&lab, data_spec)?;
    let report = lab.relevance_on(&data).map_err(CliError::Failed)?;
    if report.relevance.iter().any(|r| !r.is_finite()) {
        return Err(CliError::Failed(anyhow!(
            "{}: the relevance is not finite (the weights hold NaN or inf)",
            file.display()
        )));
    }
    let mut metrics = serde_json::json!({
        "family": relevance::FAMILY,
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
        // which physical quantity each latent follows: Pearson r per observable, one per latent dim
        let rows = data.held_out_indices();
        let latents = lab.encode(&data.gather(&rows))?;
        let obs = relevance::eval::observables_of(&data.observables, &rows);
        let refs: Vec<(&str, Vec<f32>)> =
            obs.iter().map(|(n, v)| (n.as_str(), v.clone())).collect();
        let table = relevance::eval::correlations(&latents, &refs);
        let by_observable: serde_json::Map<String, serde_json::Value> = obs
            .iter()
            .enumerate()
            .map(|(k, (name, _))| {
                (
                    name.clone(),
                    table
                        .iter()
                        .map(|row| (row[k] * 1000.0).round() / 1000.0)
                        .collect::<Vec<f64>>()
                        .into(),
                )
            })
            .collect();
        map.insert("correlations".into(), by_observable.into());
    }
    print_metrics(&metrics, json);
    Ok(())
}

pub fn import(file: &Path, family: &str, out: &Path) -> CliResult {
    check_family(family)?;
    if family == relevance::FAMILY {
        return Err(bad(anyhow!(
            "{}: vae-relevance has no official PyTorch checkpoint to import (train one with `latent-lab train vae-relevance`)",
            file.display()
        )));
    }
    check_writable(out)?;
    let lab = Lab::import_pytorch(file).map_err(bad)?;
    lab.save(out).map_err(bad)?;
    eprintln!("imported {} -> {}", file.display(), out.display());
    Ok(())
}

fn extension(out: &Path) -> String {
    out.extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .unwrap_or_default()
}

/// The latents of a sweep of the pitch latent over its range, with one instrument's timbre.
pub fn pitch_sweep(lab: &Lab, points: usize, instrument: usize) -> Vec<Vec<f32>> {
    let (lo, hi) = lab.latent_range();
    let timbre = lab
        .calibration
        .instruments
        .get(instrument)
        .map(|i| i.timbre.clone())
        .unwrap_or_else(|| vec![0.0; lab.latent_dims() - 1]);
    (0..points)
        .map(|k| {
            let mut z = vec![lo + (hi - lo) * k as f32 / (points - 1).max(1) as f32];
            z.extend_from_slice(&timbre);
            z
        })
        .collect()
}

/// Decoded spectra side by side as one RGB image, low frequencies at the bottom.
pub fn spectra_image(
    lab: &Lab,
    latents: &[Vec<f32>],
    max_bin: usize,
) -> anyhow::Result<(usize, usize, Vec<u8>)> {
    let frames = data::FRAMES_PER_NOTE;
    let w = latents.len() * frames;
    let h = max_bin.min(dsp::N_BINS);
    let mut rgb = vec![0u8; w * h * 3];
    for (n, z) in latents.iter().enumerate() {
        let spec = lab.decode_spectrum(z)?;
        for f in 0..frames {
            for b in 0..h {
                let c = figures::viridis(spec[b * frames + f]);
                let (x, y) = (n * frames + f, h - 1 - b);
                rgb[(y * w + x) * 3..(y * w + x) * 3 + 3].copy_from_slice(&c);
            }
        }
    }
    Ok((w, h, rgb))
}

pub fn embedding_figure(lab: &Lab) -> Figure {
    let cal = &lab.calibration;
    let palette = [
        (31, 119, 180),
        (255, 127, 14),
        (44, 160, 44),
        (214, 39, 40),
        (148, 103, 189),
        (140, 86, 75),
        (227, 119, 194),
        (127, 127, 127),
        (188, 189, 34),
        (23, 190, 207),
        (0, 0, 0),
        (100, 100, 255),
    ];
    let series = cal
        .instruments
        .iter()
        .enumerate()
        .map(|(i, inst)| Series {
            name: format!(
                "{}{}",
                inst.name,
                if inst.unseen { " (unseen)" } else { "" }
            ),
            points: cal
                .points
                .iter()
                .filter(|p| p.2 as usize == i)
                .map(|p| (p.1 as f64, p.0 as f64))
                .collect(),
            color: palette[i % palette.len()],
        })
        .filter(|s| !s.points.is_empty())
        .collect();
    Figure::Scatter {
        title: format!("SPS pitch latent ({} preset)", lab.meta.preset),
        x_label: "pitch latent z1".into(),
        y_label: "pitch (MIDI semitones)".into(),
        series,
        fit: (cal.slope != 0.0).then_some((cal.slope, cal.intercept, cal.r2_seen)),
    }
}

fn export_relevance(file: &Path, figure: &str, out: &Path) -> CliResult {
    let lab = load_relevance(file)?;
    check_writable(out)?;
    let ext = extension(out);
    if !matches!(ext.as_str(), "png" | "svg") {
        return Err(bad(anyhow!(
            "{}: cannot export .{ext} (vae-relevance figures are .png or .svg)",
            out.display()
        )));
    }
    let report = || -> Result<relevance::eval::RelevanceReport, CliError> {
        let data = relevance_data(&lab, None)?;
        lab.relevance_on(&data).map_err(CliError::Failed)
    };
    let fig = match figure {
        "relevance" => relevance::relevance_figure(&lab, &report()?),
        "kl" => relevance::kl_figure(&lab, &report()?),
        "curves" => {
            if lab.history.is_empty() {
                return Err(bad(anyhow!(
                    "{}: this checkpoint has no training history to plot",
                    file.display()
                )));
            }
            relevance::curves_figure(&lab)
        }
        "scatter" => {
            let data = relevance_data(&lab, None)?;
            let rows = data.held_out_indices();
            let latents = lab.encode(&data.gather(&rows))?;
            let report = lab.relevance_on(&data).map_err(CliError::Failed)?;
            let obs = relevance::eval::observables_of(&data.observables, &rows);
            let Some((name, values)) = obs.first() else {
                return Err(bad(anyhow!(
                    "{}: the data has no observable to colour by",
                    lab.meta.data
                )));
            };
            relevance::scatter_figure(
                &lab,
                &latents,
                relevance::top_two(&report.relevance),
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
    figures::save(&fig, out).map_err(bad)?;
    eprintln!("wrote {}", out.display());
    Ok(())
}

pub fn export(file: &Path, figure: &str, out: &Path) -> CliResult {
    if load_family(file)?.meta.family == relevance::FAMILY {
        return export_relevance(file, figure, out);
    }
    let lab = load_sps_music(file)?;
    check_writable(out)?;
    let ext = extension(out);
    match (figure, ext.as_str()) {
        ("embedding", "png" | "svg") => {
            if lab.calibration.points.is_empty() {
                return Err(bad(anyhow!(
                    "{}: this checkpoint has no embedded notes to plot (run `latent-lab eval` on a trained model)",
                    file.display()
                )));
            }
            figures::save(&embedding_figure(&lab), out).map_err(bad)?
        }
        ("traversal", "png" | "svg") => {
            let latents = pitch_sweep(&lab, 25, 0);
            let (w, h, rgb) = spectra_image(&lab, &latents, 257)?;
            let fig = Figure::ImageGrid {
                title: "Decoded spectra along the pitch latent (0-8 kHz, 25 steps)".into(),
                tile_w: w,
                tile_h: h,
                cols: 1,
                tiles: vec![rgb],
                captions: vec![],
            };
            figures::save(&fig, out).map_err(bad)?
        }
        ("traversal", "wav") => {
            let audio = lab.render_notes(&pitch_sweep(&lab, 25, 0), 64)?;
            wav::write_mono(out, &audio, dsp::SAMPLE_RATE).map_err(bad)?
        }
        ("scale", "wav") => {
            let latents: Vec<Vec<f32>> = data::SCALE
                .iter()
                .map(|s| {
                    let pitch = 60.0 + *s as f32;
                    let mut z = vec![lab.latent_of_pitch_clamped(pitch).unwrap_or(0.0)];
                    z.extend(
                        lab.calibration
                            .instruments
                            .first()
                            .map(|i| i.timbre.clone())
                            .unwrap_or_else(|| vec![0.0; lab.latent_dims() - 1]),
                    );
                    z
                })
                .collect();
            let audio = lab.render_notes(&latents, 64)?;
            wav::write_mono(out, &audio, dsp::SAMPLE_RATE).map_err(bad)?
        }
        _ => {
            return Err(bad(anyhow!(
                "{}: cannot export figure `{figure}` as .{ext} (sps-music: embedding .png/.svg, traversal .png/.svg/.wav, scale .wav)",
                out.display()
            )));
        }
    }
    eprintln!("wrote {}", out.display());
    Ok(())
}

fn read_matrix(path: &Path, cols: usize, what: &str) -> Result<(usize, Vec<f32>), CliError> {
    let x = Tensor::read_npy(path).map_err(|e| {
        bad(anyhow!(
            "{}: not a readable .npy array ({e})",
            path.display()
        ))
    })?;
    if x.dims().len() != 2 || x.dims()[1] != cols {
        return Err(bad(anyhow!(
            "{}: shape {:?}, expected (N, {cols}) {what}",
            path.display(),
            x.dims()
        )));
    }
    let n = x.dims()[0];
    let v = x
        .to_dtype(candle_core::DType::F32)?
        .flatten_all()?
        .to_vec1::<f32>()?;
    if v.iter().any(|f| !f.is_finite()) {
        return Err(bad(anyhow!(
            "{}: holds NaN or infinite values",
            path.display()
        )));
    }
    Ok((n, v))
}

pub fn encode(file: &Path, input: &Path, out: &Path) -> CliResult {
    if load_family(file)?.meta.family == relevance::FAMILY {
        let lab = load_relevance(file)?;
        check_writable(out)?;
        let (n, x) = read_matrix(
            input,
            lab.cfg.model.input,
            &format!("features ({})", lab.columns.join(", ")),
        )?;
        let z: Vec<f32> = lab.encode(&x)?.concat();
        return write_npy(
            &Tensor::from_vec(z, (n, lab.latent_dims()), &Device::Cpu)?,
            out,
        );
    }
    let lab = load_sps_music(file)?;
    check_writable(out)?;
    let x = Tensor::read_npy(input).map_err(|e| {
        bad(anyhow!(
            "{}: not a readable .npy array ({e})",
            input.display()
        ))
    })?;
    let dims = x.dims().to_vec();
    let expected = [1, dsp::N_BINS, data::FRAMES_PER_NOTE];
    if dims.len() != 4 || dims[1..] != expected {
        return Err(bad(anyhow!(
            "{}: shape {dims:?}, expected (N, 1, 513, 5)",
            input.display()
        )));
    }
    let x = x.to_dtype(candle_core::DType::F32)?;
    let (mu, _) = lab.model.encode(&x)?;
    write_npy(&mu, out)
}

fn write_npy(t: &Tensor, out: &Path) -> CliResult {
    let tmp = out.with_extension("npy.tmp");
    t.write_npy(&tmp)
        .map_err(|e| bad(anyhow!("{}: {e}", out.display())))?;
    std::fs::rename(&tmp, out).map_err(|e| bad(anyhow!("{}: {e}", out.display())))?;
    Ok(())
}

pub fn decode(file: &Path, latents: &Path, out: &Path) -> CliResult {
    if load_family(file)?.meta.family == relevance::FAMILY {
        let lab = load_relevance(file)?;
        check_writable(out)?;
        if extension(out) != "npy" {
            return Err(bad(anyhow!(
                "{}: vae-relevance decodes to .npy (raw features)",
                out.display()
            )));
        }
        let (n, z) = read_matrix(latents, lab.latent_dims(), "latents")?;
        let x = lab.decode(&z)?;
        return write_npy(
            &Tensor::from_vec(x, (n, lab.cfg.model.input), &Device::Cpu)?,
            out,
        );
    }
    let lab = load_sps_music(file)?;
    check_writable(out)?;
    let z = Tensor::read_npy(latents).map_err(|e| {
        bad(anyhow!(
            "{}: not a readable .npy array ({e})",
            latents.display()
        ))
    })?;
    let z = z.to_dtype(candle_core::DType::F32)?;
    if z.dims().len() != 2 || z.dim(1)? != lab.latent_dims() {
        return Err(bad(anyhow!(
            "{}: shape {:?}, expected (N, {})",
            latents.display(),
            z.dims(),
            lab.latent_dims()
        )));
    }
    let rows = z.to_vec2::<f32>()?;
    match extension(out).as_str() {
        "npy" => write_npy(&lab.model.decode(&z)?, out)?,
        "wav" => {
            let audio = lab.render_notes(&rows, 64)?;
            wav::write_mono(out, &audio, dsp::SAMPLE_RATE).map_err(bad)?
        }
        "png" => {
            let (w, h, rgb) = spectra_image(&lab, &rows, dsp::N_BINS)?;
            let img = image::RgbImage::from_raw(w as u32, h as u32, rgb).context("image size")?;
            let tmp = out.with_extension("png.tmp");
            img.save_with_format(&tmp, image::ImageFormat::Png)
                .map_err(|e| bad(anyhow!("{}: {e}", out.display())))?;
            std::fs::rename(&tmp, out).map_err(|e| bad(anyhow!("{}: {e}", out.display())))?;
        }
        other => {
            return Err(bad(anyhow!(
                "{}: cannot decode to .{other} (use .npy, .png or .wav)",
                out.display()
            )));
        }
    }
    Ok(())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn bench_relevance(what: &str, preset: &str) -> Result<serde_json::Value, CliError> {
    use crate::worker::Trainer;
    let mut cfg = relevance::train::TrainConfig::preset(preset).map_err(bad)?;
    cfg.events = 5000;
    let data = relevance::data::generate(relevance::data::Generator::PpMuMu, cfg.events, 0);
    let mut trainer = relevance::train::RelevanceTrainer::new(cfg.clone(), &data, 0)?;
    let time = |f: &mut dyn FnMut() -> anyhow::Result<()>,
                warm: usize,
                n: usize|
     -> Result<Vec<f64>, CliError> {
        for _ in 0..warm {
            f()?;
        }
        let mut times = Vec::with_capacity(n);
        for _ in 0..n {
            let t = Instant::now();
            f()?;
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
        times.sort_by(f64::total_cmp);
        Ok(times)
    };
    Ok(match what {
        "train-step" => {
            let times = time(&mut || trainer.step().map(|_| ()), 20, 500)?;
            serde_json::json!({
                "family": relevance::FAMILY, "preset": cfg.preset, "what": "train-step",
                "ms_per_step_median": percentile(&times, 0.5),
                "ms_per_step_min": times.first(), "ms_per_step_max": times.last(),
                "batch": cfg.batch, "latent": cfg.model.latent, "threads": rayon::current_num_threads(),
            })
        }
        "decode" => {
            let lab = trainer.lab()?;
            let z = vec![0.3f32; lab.latent_dims()];
            let times = time(
                &mut || lab.decode(&z).map(|_| ()).map_err(Into::into),
                50,
                2000,
            )?;
            serde_json::json!({
                "family": relevance::FAMILY, "preset": cfg.preset, "what": "decode",
                "decode_ms_p50": percentile(&times, 0.5), "decode_ms_p99": percentile(&times, 0.99),
                "samples": times.len(),
            })
        }
        other => {
            return Err(bad(anyhow!(
                "unknown benchmark `{other}` for vae-relevance (train-step, decode)"
            )));
        }
    })
}

pub fn bench(family: &str, what: &str, preset: &str, json: bool) -> CliResult {
    check_family(family)?;
    if family == relevance::FAMILY {
        let result = bench_relevance(what, preset)?;
        print_metrics(&result, json);
        return Ok(());
    }
    let cfg = TrainConfig::preset(preset).map_err(bad)?;
    let result = match what {
        "decode" => {
            let (_vm, vb) = crate::nn::new_varmap();
            let model = sps_music::model::SpsMusic::new(&cfg.model, vb)?;
            let z = [0.3f32, -0.2, 0.1];
            for _ in 0..50 {
                sps_music::decode_spectrum(&model, &z)?;
            }
            let mut times = Vec::new();
            for _ in 0..1000 {
                let t = Instant::now();
                sps_music::decode_spectrum(&model, &z)?;
                times.push(t.elapsed().as_secs_f64() * 1e3);
            }
            times.sort_by(f64::total_cmp);
            serde_json::json!({
                "family": family, "preset": cfg.preset, "what": "decode",
                "decode_ms_p50": percentile(&times, 0.5), "decode_ms_p99": percentile(&times, 0.99),
                "samples": times.len(),
            })
        }
        "train-step" => {
            let threads = std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1);
            let data = data::Dataset::synthetic(cfg.batch * 2, 3);
            let mut trainer = sps_music::train::SpsTrainer::new(cfg.clone(), data, 0)?;
            use crate::worker::Trainer;
            for _ in 0..2 {
                trainer.step()?;
            }
            let mut times = Vec::new();
            for _ in 0..8 {
                let t = Instant::now();
                trainer.step()?;
                times.push(t.elapsed().as_secs_f64() * 1e3);
            }
            times.sort_by(f64::total_cmp);
            serde_json::json!({
                "family": family, "preset": cfg.preset, "what": "train-step",
                "ms_per_step_median": percentile(&times, 0.5),
                "ms_per_step_min": times.first(), "ms_per_step_max": times.last(),
                "batch": cfg.batch, "k": cfg.k, "sequence_length": data::SEQ_LEN, "threads": threads,
            })
        }
        "latency" => crate::audio::latency::bench_json(preset)?,
        other => {
            return Err(bad(anyhow!(
                "unknown benchmark `{other}` (train-step, decode, latency)"
            )));
        }
    };
    if json {
        println!("{result}");
    } else if let Some(map) = result.as_object() {
        for (k, v) in map {
            println!("{k:24} {v}");
        }
    }
    let _ = Device::Cpu;
    Ok(())
}
