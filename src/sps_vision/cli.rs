//! The SPS vision family on the command line (see [`crate::cli::Family`]).

use std::path::Path;

use anyhow::anyhow;

use crate::cli::{self, CliError, CliResult, Family, TrainArgs, bad};
use crate::figures::{self, Figure, Line, Series};
use crate::worker;

use super::data::{self, BASE_LEN, CHANNELS, FRAME_LEN, SEQ_LEN, SIZE, Throw};
use super::{FAMILY, Lab, eval, train::TrainConfig};

pub struct SpsVisionFamily;

fn load(file: &Path) -> Result<Lab, CliError> {
    Ok(Lab::load(file)?)
}

/// The data a checkpoint was trained on when it can be made again, else the default set.
pub fn data_spec_of(lab: &Lab, data_spec: Option<&str>) -> String {
    match data_spec {
        Some(s) => s.to_string(),
        None if lab.meta.data.starts_with("ball:") || lab.meta.data.starts_with("ball-dir:") => {
            lab.meta.data.clone()
        }
        None => "ball".into(),
    }
}

/// The first `count` held-out throws of a data spec (`seed` for plain `ball`), rendering
/// only those when the data is generated.
pub fn held_out(spec: &str, seed: u64, count: usize) -> anyhow::Result<Vec<Throw>> {
    let generated = match spec {
        "ball" => Some(seed),
        s => s.strip_prefix("ball:").and_then(|n| n.parse::<u64>().ok()),
    };
    let mut throws = match generated {
        Some(seed) => data::Dataset::generate(seed, 0, count).test,
        None => data::open_source(spec, seed)?.test,
    };
    throws.truncate(count);
    Ok(throws)
}

/// The first held-out throw of a data spec.
pub fn example_throw(spec: &str, seed: u64) -> anyhow::Result<Throw> {
    held_out(spec, seed, 1)?
        .into_iter()
        .next()
        .ok_or_else(|| anyhow!("{spec}: no held-out throw"))
}

impl Family for SpsVisionFamily {
    fn name(&self) -> &'static str {
        FAMILY
    }

    fn train(&self, args: &TrainArgs) -> Result<worker::JobHandle, CliError> {
        let cfg = args.config_without_sizes(FAMILY, TrainConfig::preset, |c| &mut c.steps)?;
        // the form of a divisor that is not there would be ignored without a word
        if let super::model::EncoderKind::Keypoints {
            projective: false,
            affine_depth: true,
            ..
        } = cfg.model.encoder
        {
            return Err(bad(anyhow!(
                "--set: model.encoder.keypoints.affine_depth shapes the projective head's divisor; set model.encoder.keypoints.projective=true too"
            )));
        }
        let spec = args.data.clone().unwrap_or_else(|| "ball".into());
        let seed = args.seed;
        // a folder is read (and refused) before the job starts, so a bad one exits with 2
        let preloaded = if spec.starts_with("ball-dir:") {
            Some(data::open_source(&spec, seed).map_err(bad)?)
        } else {
            if !(spec == "ball" || spec.starts_with("ball:")) {
                return Err(bad(anyhow!(
                    "{spec}: unknown data for sps-vision (use `ball`, `ball:SEED` or `ball-dir:DIR`)"
                )));
            }
            None
        };
        Ok(worker::spawn(
            move |status| {
                let data = match preloaded {
                    Some(d) => d,
                    None => data::open_source(&spec, seed)?,
                };
                status(format!(
                    "{} training throws, {} held-out ({})",
                    data.train.len(),
                    data.test.len(),
                    data.source
                ));
                Ok(Box::new(super::train::VisionTrainer::new(cfg, data, seed)?))
            },
            args.job_options(100),
        ))
    }

    fn eval(&self, file: &Path, data_spec: Option<&str>) -> Result<serde_json::Value, CliError> {
        let lab = load(file)?;
        let spec = data_spec_of(&lab, data_spec);
        let dataset = data::open_source(&spec, lab.meta.seed).map_err(bad)?;
        // the frames encoded once, for the linear map and the cubic fit
        let encoded = eval::Encoded::new(&lab.model, &dataset, 128)?;
        let cal = encoded.calibration();
        let rollout = eval::rollout_mse(&lab.model, &dataset, 64)?;
        let mut out = serde_json::json!({
            "family": FAMILY,
            "preset": lab.meta.preset,
            "data": dataset.source,
            "r2_x": cal.r2[0],
            "r2_y": cal.r2[1],
            "r2_z": cal.r2[2],
            "r2_min": cal.r2_min(),
            "rollout_mse": rollout,
            "held_out_frames": dataset.test.len() * SEQ_LEN,
        });
        let mut by_throw = eval::r2_by_throw(&lab.model, &cal, &dataset)?;
        by_throw.sort_by(f64::total_cmp);
        out["r2_by_throw_median"] = cli::percentile(&by_throw, 0.5).into();
        out["r2_by_throw_min"] = by_throw.first().copied().unwrap_or(f64::NAN).into();
        let tilts = cal.tilts_deg();
        out["turn_plane_tilt_deg"] = tilts.turn_plane.into();
        out["height_axis_tilt_deg"] = tilts.height_axis.into();
        let cubic = encoded.cubic_r2();
        for (k, axis) in ["x", "y", "z"].iter().enumerate() {
            out[format!("r2_cubic_{axis}")] = cubic[k].into();
        }
        out["latent_sd"] = encoded.latent_sd().into();
        if dataset.source.starts_with("ball:") {
            if let Some(k) = eval::keypoint_tracking(&lab.model, &dataset, 40)? {
                out["keypoint_ball_r2"] = k.ball.into();
                out["keypoint_shadow_r2"] = k.shadow.into();
            }
            let angles = eval::angle_grid();
            let e = eval::equivariance(&lab.model, &cal, &dataset, 64, &angles)?;
            out["equivariance_mse"] = e.mse.into();
            out["equivariance_centroid_px"] = e.centroid_px.into();
            out["equivariance_ball_found"] = e.ball_found.into();
            out["equivariance_angles_deg"] = angles
                .iter()
                .map(|a| a.to_degrees().round() as f64)
                .collect::<Vec<_>>()
                .into();
            out["equivariance_mse_per_angle"] = e.per_angle.into();
        }
        Ok(out)
    }

    fn export(&self, file: &Path, figure: &str, out: &Path) -> CliResult {
        let lab = load(file)?;
        let ext = cli::extension(out);
        let fig = match (figure, ext.as_str()) {
            ("traversal", "png" | "svg") => traversal_figure(&lab, 9)?,
            ("rollout", "png" | "svg") => {
                let spec = data_spec_of(&lab, None);
                let throw = example_throw(&spec, lab.meta.seed).map_err(bad)?;
                rollout_figure(&lab, &throw)?
            }
            ("reading", "png" | "svg") => reading_figure(&lab)?,
            ("turn", "png" | "svg") => turn_figure(&lab)?,
            _ => {
                let figures = "sps-vision: traversal, rollout, reading, turn (.png/.svg)";
                return Err(cli::cannot_export(out, figure, &ext, figures));
            }
        };
        figures::save(&fig, out).map_err(bad)
    }

    fn import(&self, file: &Path, out: &Path) -> CliResult {
        crate::sps::save_imported(file, out, &Lab::import_pytorch(file)?)
    }

    fn bench(&self, what: &str, preset: &str) -> Result<serde_json::Value, CliError> {
        crate::sps::bench((FAMILY, what), TrainConfig::preset(preset), |other| {
            Err(cli::unknown_bench(FAMILY, other, "train-step, decode"))
        })
    }

    fn encode(&self, file: &Path, input: &Path, out: &Path) -> CliResult {
        let lab = load(file)?;
        let x = cli::read_unit_batch(input, &[CHANNELS, SIZE, SIZE], "frames, RGB in [0, 1]")?;
        let (mu, _) = lab.model.encode(&x)?;
        cli::write_npy(&mu, out)
    }

    fn decode(&self, file: &Path, latents: &Path, out: &Path) -> CliResult {
        let lab = load(file)?;
        let (n, flat) = cli::read_matrix(latents, lab.cfg.model.latent, "latents")?;
        let rows: Vec<Vec<f32>> = flat
            .chunks_exact(lab.cfg.model.latent)
            .map(|r| r.to_vec())
            .collect();
        match cli::extension(out).as_str() {
            "npy" => {
                let z = candle_core::Tensor::from_vec(
                    flat,
                    (n, lab.cfg.model.latent),
                    &candle_core::Device::Cpu,
                )?;
                cli::write_npy(&lab.model.decode(&z)?, out)
            }
            "png" => {
                let frames = super::model::decode_latents(&lab.model, &rows)?;
                let tiles: Vec<Vec<u8>> = frames.iter().map(|f| data::frame_to_rgb(f)).collect();
                let (w, h, rgb) = strip(&tiles, SIZE, SIZE);
                cli::write_png(out, w, h, rgb)
            }
            other => Err(cli::cannot_decode_to(out, other, ".npy or .png")),
        }
    }
}

/// Tiles side by side in one row.
fn strip(tiles: &[Vec<u8>], w: usize, h: usize) -> (usize, usize, Vec<u8>) {
    let total_w = w * tiles.len().max(1);
    let mut rgb = vec![0u8; total_w * h * 3];
    for (t, tile) in tiles.iter().enumerate() {
        for y in 0..h {
            let dst = (y * total_w + t * w) * 3;
            rgb[dst..dst + w * 3].copy_from_slice(&tile[y * w * 3..(y + 1) * w * 3]);
        }
    }
    (total_w, h, rgb)
}

/// The latents of a traversal: row d sweeps latent d over its range, the others at the centre.
pub fn traversal_latents(lab: &Lab, steps: usize) -> Vec<Vec<f32>> {
    let centre = lab.calibration.centre;
    let mut out = Vec::new();
    for d in 0..3 {
        let (lo, hi) = lab.latent_range(d);
        for k in 0..steps {
            let mut z = centre.to_vec();
            z[d] = lo + (hi - lo) * k as f32 / (steps - 1).max(1) as f32;
            out.push(z);
        }
    }
    out
}

/// Decoded frames along each latent axis: one row per latent.
pub fn traversal_figure(lab: &Lab, steps: usize) -> anyhow::Result<Figure> {
    let latents = traversal_latents(lab, steps);
    let frames = super::model::decode_latents(&lab.model, &latents)?;
    let mut captions: Vec<String> = (0..steps)
        .map(|k| format!("{:.0}%", 100.0 * k as f32 / (steps - 1).max(1) as f32))
        .collect();
    captions.extend(["z1", "z2 (vertical)", "z3"].map(String::from));
    Ok(Figure::ImageGrid {
        title: format!(
            "SPS vision: decoded frames along each latent ({} preset)",
            lab.meta.preset
        ),
        tile_w: SIZE,
        tile_h: SIZE,
        cols: steps,
        tiles: frames.iter().map(|f| data::frame_to_rgb(f)).collect(),
        captions,
    })
}

/// The held-out throws of the data a checkpoint was trained on (of the default set when it
/// cannot be made again).
pub fn held_out_throws(lab: &Lab) -> anyhow::Result<Vec<Throw>> {
    held_out(&data_spec_of(lab, None), lab.meta.seed, data::TEST_THROWS)
}

/// What the latent says about where the ball is, against where it is: each held-out frame's
/// position read through the checkpoint's affine map (the one the 3D tab shows positions
/// with; fitted here, as `eval` fits it, for an imported checkpoint), one colour per axis,
/// beside the line of a perfect reading. A latent that holds an axis bent draws an arc
/// across that line, which R^2 alone does not show.
pub fn reading_figure(lab: &Lab) -> anyhow::Result<Figure> {
    let (cal, opened) = fitted_map(lab)?;
    let held_out = match opened {
        Some(data) => data.test,
        None => held_out_throws(lab)?,
    };
    let (frames, truth) = eval::frames_of(&held_out);
    let read: Vec<[f32; 3]> = super::model::encode_frames(&lab.model, &frames)?
        .iter()
        .map(|z| cal.position(z))
        .collect();
    let axis = |v: &[[f32; 3]], k: usize| v.iter().map(|p| f64::from(p[k])).collect::<Vec<_>>();
    let r2: [f64; 3] =
        std::array::from_fn(|k| crate::metrics::r_squared(&axis(&read, k), &axis(&truth, k)));
    let series = ["x", "y (height)", "z"]
        .iter()
        .enumerate()
        .map(|(k, name)| {
            let points = axis(&truth, k).into_iter().zip(axis(&read, k)).collect();
            let color = figures::category_color(k, 3);
            Series::new(format!("{name}: R² {:.3}", r2[k]), points, color)
        })
        .collect();
    Ok(Figure::Scatter {
        title: format!("Position read from the latent ({} preset)", lab.meta.preset),
        x_label: "true position (held-out frames)".into(),
        y_label: "read from the latent (affine map)".into(),
        series,
        line: Some(Line::reference(1.0, 0.0, "a perfect reading: read = true")),
    })
}

/// The lab's map from latent to position. An imported checkpoint has no map yet, so one is
/// fitted as `eval` does, on its data set, which is handed back for whoever needs its throws.
fn fitted_map(lab: &Lab) -> anyhow::Result<(eval::Calibration, Option<data::Dataset>)> {
    if lab.calibration.is_fitted() {
        Ok((lab.calibration.clone(), None))
    } else {
        let data = data::open_source(&data_spec_of(lab, None), lab.meta.seed)?;
        Ok((eval::calibrate(&lab.model, &data, 128)?, Some(data)))
    }
}

/// Where the rotation control takes the ball, seen from the side through the fitted map:
/// the latent turned once around z2 ([`eval::turn_ring`]) from a point a quarter of z1's
/// range out from the centre, at three heights of z2 (a quarter, half and three quarters up
/// its range over the training frames). A latent shaped as the symmetry asks draws three
/// level lines, one above the other; one whose turning plane leans draws tilted ellipses.
pub fn turn_figure(lab: &Lab) -> anyhow::Result<Figure> {
    let (cal, _) = fitted_map(lab)?;
    let (z1, z2) = (cal.range[0], cal.range[1]);
    let radius = 0.25 * (z1.1 - z1.0);
    let series = [0.25f32, 0.5, 0.75]
        .iter()
        .enumerate()
        .map(|(i, up)| {
            let z = [
                cal.centre[0] + radius,
                z2.0 + up * (z2.1 - z2.0),
                cal.centre[2],
            ];
            let ring = eval::turn_ring(&cal, &z, 1.0, 72);
            let (lo, hi) = ring.iter().fold((f32::MAX, f32::MIN), |(lo, hi), p| {
                (lo.min(p[1]), hi.max(p[1]))
            });
            let points = ring
                .iter()
                .map(|p| (f64::from(p[0]), f64::from(p[1])))
                .collect();
            Series::new(
                format!(
                    "z2 at {:.0}% of its range: height {lo:.2} to {hi:.2}",
                    up * 100.0
                ),
                points,
                figures::category_color(i, 3),
            )
        })
        .collect();
    Ok(Figure::Lines {
        title: format!(
            "One turn about z2, from the side ({}; plane leans {:.0}°)",
            lab.meta.preset,
            cal.tilts_deg().turn_plane
        ),
        x_label: "x (the fitted map)".into(),
        y_label: "y, height (the fitted map)".into(),
        series,
        log_y: false,
    })
}

/// The true frames of a throw above the prior's roll-out from its first BASE_LEN frames.
pub fn rollout_figure(lab: &Lab, throw: &Throw) -> anyhow::Result<Figure> {
    let (_, frames) = eval::rollout(&lab.model, throw)?;
    let mut tiles: Vec<Vec<u8>> = (0..SEQ_LEN)
        .map(|i| data::frame_to_rgb(throw.frame(i)))
        .collect();
    tiles.extend(frames.iter().map(|f| data::frame_to_rgb(&f[..FRAME_LEN])));
    let mut captions: Vec<String> = (0..SEQ_LEN)
        .map(|i| {
            if i < BASE_LEN {
                format!("{}*", i + 1)
            } else {
                format!("{}", i + 1)
            }
        })
        .collect();
    captions.extend(["true".to_string(), "prior".to_string()]);
    Ok(Figure::ImageGrid {
        title: format!("SPS vision: prior roll-out from the first {BASE_LEN} frames (*: given)"),
        tile_w: SIZE,
        tile_h: SIZE,
        cols: SEQ_LEN,
        tiles,
        captions,
    })
}
