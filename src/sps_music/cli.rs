//! The SPS music family on the command line (see [`crate::cli::Family`]).

use std::path::Path;

use anyhow::anyhow;

use crate::audio::{dsp, wav};
use crate::cli::{self, CliError, CliResult, Family, TrainArgs, bad};
use crate::figures::{self, Figure, Line, Series};
use crate::worker;

use super::{FAMILY, Lab, data, train::TrainConfig};

pub struct SpsMusicFamily;

fn load(file: &Path) -> Result<Lab, CliError> {
    Ok(Lab::load(file)?)
}

impl Family for SpsMusicFamily {
    fn name(&self) -> &'static str {
        FAMILY
    }

    fn train(&self, args: &TrainArgs) -> Result<worker::JobHandle, CliError> {
        let spec = args.data.clone().unwrap_or_else(|| "soundfont".into());
        let cfg = args.config_without_sizes(FAMILY, TrainConfig::preset, |c| &mut c.steps)?;
        let mut source = data::open_source(&spec).map_err(bad)?;
        let seed = args.seed;
        Ok(worker::spawn(
            move |status| {
                let data = data::Dataset::render(source.as_mut(), status)?;
                status(format!(
                    "{} training scales, {} held-out, {} of unseen instruments",
                    data.train.len(),
                    data.test_seen.len(),
                    data.test_unseen.len()
                ));
                Ok(Box::new(super::train::SpsTrainer::new(cfg, data, seed)?))
            },
            args.job_options(250),
        ))
    }

    fn eval(&self, file: &Path, data_spec: Option<&str>) -> Result<serde_json::Value, CliError> {
        let lab = load(file)?;
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
        let dataset =
            data::Dataset::render(source.as_mut(), &worker::quiet_but_warnings).map_err(bad)?;
        let cal = super::eval::embedding_metrics(&lab.model, &dataset)?;
        let (r2_synthesis, detected) = super::eval::synthesis_r2(&lab.model, &cal, 16)?;
        let (r2_by_instrument, octave_off_share) =
            super::eval::line_reading(&cal, &dataset.instruments, dataset.n_train_instruments);
        Ok(serde_json::json!({
            "family": FAMILY,
            "preset": lab.meta.preset,
            "r2_embedding": cal.r2_seen,
            "r2_embedding_unseen": cal.r2_unseen,
            "r2_synthesis": r2_synthesis,
            "r2_within_instrument": cal.r2_within_instrument,
            "synthesis_detected": detected,
            "pitch_semitones_per_latent_unit": cal.slope,
            "held_out_notes": dataset.test_seen.len() * data::SEQ_LEN,
            "unseen_instrument_notes": dataset.test_unseen.len() * data::SEQ_LEN,
            "r2_by_instrument": r2_by_instrument,
            "octave_off_share": octave_off_share,
        }))
    }

    fn export(&self, file: &Path, figure: &str, out: &Path) -> CliResult {
        let lab = load(file)?;
        let ext = cli::extension(out);
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
                wav::write_mono(out, &audio, dsp::SAMPLE_RATE)?
            }
            ("scale", "wav") => {
                let timbre = lab
                    .calibration
                    .instruments
                    .first()
                    .map(|i| i.timbre.clone())
                    .unwrap_or_else(|| vec![0.0; lab.latent_dims() - 1]);
                let latents: Vec<Vec<f32>> = data::SCALE
                    .iter()
                    .map(|s| {
                        let pitch = 60.0 + *s as f32;
                        let mut z = vec![lab.latent_of_pitch_clamped(pitch).unwrap_or(0.0)];
                        z.extend_from_slice(&timbre);
                        z
                    })
                    .collect();
                let audio = lab.render_notes(&latents, 64)?;
                wav::write_mono(out, &audio, dsp::SAMPLE_RATE)?
            }
            _ => {
                let figures =
                    "sps-music: embedding .png/.svg, traversal .png/.svg/.wav, scale .wav";
                return Err(cli::cannot_export(out, figure, &ext, figures));
            }
        }
        Ok(())
    }

    fn import(&self, file: &Path, out: &Path) -> CliResult {
        crate::sps::save_imported(file, out, &Lab::import_pytorch(file)?)
    }

    fn bench(&self, what: &str, preset: &str) -> Result<serde_json::Value, CliError> {
        let cfg = TrainConfig::preset(preset);
        crate::sps::bench((FAMILY, what), cfg, |other| match other {
            "latency" => Ok(super::voice::latency_bench_json(preset)?),
            other => Err(cli::unknown_bench(
                FAMILY,
                other,
                "train-step, decode, latency",
            )),
        })
    }

    fn encode(&self, file: &Path, input: &Path, out: &Path) -> CliResult {
        let lab = load(file)?;
        let note = [1, dsp::N_BINS, data::FRAMES_PER_NOTE];
        let x = cli::read_unit_batch(input, &note, "note spectra, features in [0, 1]")?;
        let (mu, _) = lab.model.encode(&x)?;
        cli::write_npy(&mu, out)
    }

    fn decode(&self, file: &Path, latents: &Path, out: &Path) -> CliResult {
        let lab = load(file)?;
        let z = cli::read_batch(latents, &[lab.latent_dims()], "latents")?;
        let rows = z.to_vec2::<f32>()?;
        match cli::extension(out).as_str() {
            "npy" => cli::write_npy(&lab.model.decode(&z)?, out),
            "wav" => {
                let audio = lab.render_notes(&rows, 64)?;
                Ok(wav::write_mono(out, &audio, dsp::SAMPLE_RATE)?)
            }
            "png" => {
                let (w, h, rgb) = spectra_image(&lab, &rows, dsp::N_BINS)?;
                cli::write_png(out, w, h, rgb)
            }
            other => Err(cli::cannot_decode_to(out, other, ".npy, .png or .wav")),
        }
    }
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

/// The learned pitch latent against true pitch, one colour per instrument, with the fit.
pub fn embedding_figure(lab: &Lab) -> Figure {
    let cal = &lab.calibration;
    let n = cal.instruments.len();
    let series = cal
        .instruments
        .iter()
        .enumerate()
        .map(|(i, inst)| Series {
            name: inst.label(),
            points: cal.points_of(i).collect(),
            color: figures::category_color(i, n),
        })
        .filter(|s| !s.points.is_empty())
        .collect();
    Figure::Scatter {
        title: format!("SPS pitch latent ({} preset)", lab.meta.preset),
        x_label: "pitch latent z1".into(),
        y_label: "pitch (MIDI semitones)".into(),
        series,
        line: (cal.slope != 0.0).then(|| Line::fit(cal.slope, cal.intercept, cal.r2_seen)),
    }
}
