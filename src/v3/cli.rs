//! The V3 families on the command line (see [`crate::cli::Family`]): `v3-notes` and `v3-digits`.

use std::path::Path;

use anyhow::anyhow;

use super::data::{self, Domain};
use super::train::{TrainConfig, V3Trainer};
use super::{Lab, family_name};
use crate::audio::{dsp, wav};
use crate::cli::{self, CliError, CliResult, Family, TrainArgs, bad};
use crate::figures::{self, Figure, Series};
use crate::worker;

pub struct V3Family(pub Domain);

pub static NOTES: V3Family = V3Family(Domain::Notes);
pub static DIGITS: V3Family = V3Family(Domain::Digits);

fn load(file: &Path, domain: Domain) -> Result<Lab, CliError> {
    let lab = Lab::load(file)?;
    if lab.domain() != domain {
        return Err(bad(anyhow!(
            "{}: a {} checkpoint, expected {}",
            file.display(),
            lab.meta.family,
            family_name(domain)
        )));
    }
    Ok(lab)
}

/// The data a checkpoint was trained on, unless the user names other data.
pub fn data_spec(lab: &Lab, spec: Option<&str>) -> String {
    match spec {
        Some(s) => s.to_string(),
        None if lab.meta.data.is_empty() || lab.meta.data == "synthetic" => {
            data::default_spec(lab.domain()).into()
        }
        None => lab.meta.data.clone(),
    }
}

impl Family for V3Family {
    fn name(&self) -> &'static str {
        family_name(self.0)
    }

    fn train(&self, args: &TrainArgs) -> Result<worker::JobHandle, CliError> {
        let cfg = args.config_without_sizes(
            self.name(),
            |p| TrainConfig::preset(self.0, p),
            |c| &mut c.steps,
        )?;
        let domain = self.0;
        let spec = args
            .data
            .clone()
            .unwrap_or_else(|| data::default_spec(domain).into());
        // refuse bad data before starting the job, so the exit code says "bad input"
        let dataset = data::load(domain, &spec, &worker::quiet_but_warnings).map_err(bad)?;
        let sizes = format!(
            "{} training samples, {} held-out, {} of held-out styles",
            dataset.train.len(),
            dataset.test.len(),
            dataset.ood.len()
        );
        let seed = args.seed;
        Ok(worker::spawn(
            move |status| {
                status(sizes);
                Ok(Box::new(V3Trainer::new(cfg, dataset, seed)?))
            },
            args.job_options(100),
        ))
    }

    fn eval(
        &self,
        file: &Path,
        data_spec_arg: Option<&str>,
    ) -> Result<serde_json::Value, CliError> {
        let lab = load(file, self.0)?;
        let spec = data_spec(&lab, data_spec_arg);
        let dataset = data::load(self.0, &spec, &worker::quiet_but_warnings).map_err(bad)?;
        let summary = super::eval::evaluate(&lab.model, &dataset)?;
        let mut out = serde_json::json!({
            "family": self.name(),
            "preset": lab.meta.preset,
            "steps": lab.meta.steps,
            "atoms_used": summary.usage.iter().filter(|u| **u > 0.0).count(),
            "held_out_fragments": dataset.test.iter().map(|s| s.len()).sum::<usize>(),
            "held_out_style_fragments": dataset.ood.iter().map(|s| s.len()).sum::<usize>(),
        });
        if let Some(map) = out.as_object_mut() {
            for (k, v) in &summary.metrics {
                map.insert(k.clone(), serde_json::json!(v));
            }
        }
        Ok(out)
    }

    fn export(&self, file: &Path, figure: &str, out: &Path) -> CliResult {
        let lab = load(file, self.0)?;
        let ext = cli::extension(out);
        match (figure, ext.as_str()) {
            ("codebook", "png" | "svg") => {
                figures::save(&codebook_figure(&lab, None)?, out).map_err(bad)?
            }
            ("matrix", "png" | "svg") => figures::save(&matrix_figure(&lab), out).map_err(bad)?,
            ("content" | "style", "png" | "svg") => {
                figures::save(&latent_figure(&lab, figure == "content"), out).map_err(bad)?
            }
            ("atoms", "wav") if self.0 == Domain::Notes => {
                let style = lab.style_latent(0).map(|s| s.to_vec()).unwrap_or_default();
                let audio = atoms_audio(&lab, &style, 64)?;
                wav::write_mono(out, &audio, dsp::SAMPLE_RATE)?
            }
            _ => {
                let wav = if self.0 == Domain::Notes {
                    ", atoms .wav"
                } else {
                    ""
                };
                return Err(bad(anyhow!(
                    "{}: cannot export figure `{figure}` as .{ext} ({}: codebook, matrix, content, style as .png/.svg{wav})",
                    out.display(),
                    self.name()
                )));
            }
        }
        Ok(())
    }

    fn bench(&self, what: &str, preset: &str) -> Result<serde_json::Value, CliError> {
        let cfg = TrainConfig::preset(self.0, preset).map_err(bad)?;
        let domain = self.0;
        // an untrained model: a decode costs the same whatever the weights
        let (_varmap, vb) = crate::nn::new_varmap();
        let model = super::model::V3Model::new(&cfg.model, vb)?;
        let c = vec![vec![0.1f32; cfg.model.content_dim]];
        let s = vec![vec![-0.2f32; cfg.model.style_dim]];
        Ok(match what {
            "decode" => cli::bench_decode(self.name(), &cfg.preset, 500, &mut || {
                model.decode_rows(&c, &s).map(|_| ()).map_err(Into::into)
            })?,
            "swap" => {
                // what the swap view does on a click: decode one fragment with another
                // sample's style and, for notes, resynthesise it for playback
                let mut stft = dsp::Stft::new();
                let times = cli::time_ms(
                    &mut || {
                        let frag = model.decode_rows(&c, &s)?;
                        if domain == Domain::Notes {
                            let audio = super::fragment_audio(
                                &mut stft,
                                &frag[0],
                                super::view::SWAP_GL_ITERS,
                            );
                            std::hint::black_box(audio);
                        } else {
                            std::hint::black_box(super::fragment_image(domain, &frag[0]));
                        }
                        Ok(())
                    },
                    3,
                    60,
                )?;
                serde_json::json!({
                    "family": self.name(), "preset": cfg.preset, "what": "swap",
                    "swap_ms_p50": cli::percentile(&times, 0.5),
                    "swap_ms_p99": cli::percentile(&times, 0.99),
                    "griffin_lim_iters": super::view::SWAP_GL_ITERS,
                    "samples": times.len(),
                })
            }
            "train-step" => {
                let data = data::Dataset::synthetic(domain, cfg.batch * 2, 3);
                let mut trainer = V3Trainer::new(cfg.clone(), data, 0)?;
                let details = serde_json::json!({
                    "batch": cfg.batch, "fragments_per_sample": domain.fragments(),
                });
                cli::bench_train_step(self.name(), &cfg.preset, &mut trainer, (3, 10), details)?
            }
            other => {
                return Err(cli::unknown_bench(
                    self.name(),
                    other,
                    "train-step, decode, swap",
                ));
            }
        })
    }

    fn encode(&self, file: &Path, input: &Path, out: &Path) -> CliResult {
        let lab = load(file, self.0)?;
        let x = cli::read_unit_batch(
            input,
            &self.0.fragment_shape(),
            "fragments, values in [0, 1]",
        )?;
        let x = x.reshape((x.dim(0)?, self.0.fragment_len()))?;
        let (content, style) = lab.model.encode(&x)?;
        cli::write_npy(&candle_core::Tensor::cat(&[&content, &style], 1)?, out)
    }

    fn decode(&self, file: &Path, latents: &Path, out: &Path) -> CliResult {
        let lab = load(file, self.0)?;
        let (dc, ds) = (lab.cfg.model.content_dim, lab.cfg.model.style_dim);
        let (n, values) = cli::read_matrix(latents, dc + ds, "rows of content then style latents")?;
        let rows: Vec<&[f32]> = values.chunks_exact(dc + ds).take(n).collect();
        let content: Vec<Vec<f32>> = rows.iter().map(|r| r[..dc].to_vec()).collect();
        let style: Vec<Vec<f32>> = rows.iter().map(|r| r[dc..].to_vec()).collect();
        let frags = lab.model.decode_rows(&content, &style)?;
        match cli::extension(out).as_str() {
            "npy" => {
                let [c, h, w] = self.0.fragment_shape();
                let t = candle_core::Tensor::from_vec(
                    frags.concat(),
                    (n, c, h, w),
                    &candle_core::Device::Cpu,
                )?;
                cli::write_npy(&t, out)
            }
            "png" => {
                let tiles: Vec<(usize, usize, Vec<u8>)> = frags
                    .iter()
                    .map(|f| super::fragment_image(self.0, f))
                    .collect();
                let (w, h) = tiles.first().map_or((1, 1), |t| (t.0, t.1));
                let mut rgb = vec![0u8; w * n.max(1) * h * 3];
                for (i, t) in tiles.iter().enumerate() {
                    for y in 0..h {
                        let dst = (y * w * n + i * w) * 3;
                        rgb[dst..dst + w * 3].copy_from_slice(&t.2[y * w * 3..(y + 1) * w * 3]);
                    }
                }
                cli::write_png(out, w * n.max(1), h, rgb)
            }
            "wav" if self.0 == Domain::Notes => {
                let mut stft = dsp::Stft::new();
                let audio: Vec<f32> = frags
                    .iter()
                    .flat_map(|f| super::fragment_audio(&mut stft, f, 64))
                    .collect();
                Ok(wav::write_mono(out, &audio, dsp::SAMPLE_RATE)?)
            }
            other => {
                let wav = if self.0 == Domain::Notes {
                    " or .wav"
                } else {
                    ""
                };
                Err(cli::cannot_decode_to(
                    out,
                    other,
                    &format!(".npy or .png{wav}"),
                ))
            }
        }
    }
}

/// Every atom decoded with `style`, one second each, back to back.
pub fn atoms_audio(lab: &Lab, style: &[f32], iters: usize) -> anyhow::Result<Vec<f32>> {
    let mut stft = dsp::Stft::new();
    let mut out = Vec::new();
    for frag in lab.decode_atoms(style)? {
        out.extend(super::fragment_audio(&mut stft, &frag, iters));
        out.extend(std::iter::repeat_n(0.0, 1600));
    }
    Ok(out)
}

/// The atoms ordered by the content label they were matched to (unmatched last).
pub fn atom_order(lab: &Lab) -> Vec<usize> {
    let k = lab.cfg.model.atoms;
    let mut order: Vec<usize> = (0..k).collect();
    order.sort_by_key(|&a| {
        lab.summary
            .atom_labels
            .get(a)
            .copied()
            .flatten()
            .unwrap_or(usize::MAX)
    });
    order
}

/// A caption for an atom: its index and the label it stands for.
pub fn atom_caption(lab: &Lab, atom: usize) -> String {
    match lab.summary.atom_labels.get(atom).copied().flatten() {
        Some(l) => format!(
            "#{atom} {}",
            lab.summary
                .content_names
                .get(l)
                .cloned()
                .unwrap_or_default()
        ),
        None => format!("#{atom}"),
    }
}

/// The codebook as a grid: one column per atom, one row per style (the given one, or every
/// training style).
pub fn codebook_figure(lab: &Lab, style: Option<(&str, &[f32])>) -> anyhow::Result<Figure> {
    let order = atom_order(lab);
    let styles: Vec<(String, Vec<f32>)> = match style {
        Some((name, s)) => vec![(name.to_string(), s.to_vec())],
        None => lab
            .summary
            .style_names
            .iter()
            .zip(&lab.summary.style_latents)
            .take(lab.summary.n_train_styles.max(1))
            .map(|(n, s)| (n.clone(), s.clone()))
            .collect(),
    };
    anyhow::ensure!(
        !styles.is_empty(),
        "this checkpoint has no style latents (train it, or run `latent-lab eval`)"
    );
    let mut tiles = Vec::new();
    let (mut tw, mut th) = (1, 1);
    for (_, s) in &styles {
        let frags = lab.decode_atoms(s)?;
        for &a in &order {
            let (w, h, rgb) = super::fragment_image(lab.domain(), &frags[a]);
            (tw, th) = (w, h);
            tiles.push(rgb);
        }
    }
    let mut captions: Vec<String> = order.iter().map(|&a| atom_caption(lab, a)).collect();
    captions.extend(styles.iter().map(|(n, _)| n.clone()));
    Ok(Figure::ImageGrid {
        title: format!(
            "V3 codebook ({}, {} atoms): each atom decoded in each {}",
            lab.meta.family,
            order.len(),
            lab.domain().style_word()
        ),
        tile_w: tw,
        tile_h: th,
        cols: order.len(),
        tiles,
        captions,
    })
}

/// The code-by-label matrix: share of each atom's held-out fragments per content label.
pub fn matrix_figure(lab: &Lab) -> Figure {
    let s = &lab.summary;
    let order = atom_order(lab);
    let values: Vec<Vec<f64>> = order
        .iter()
        .filter_map(|&a| s.matrix.get(a))
        .map(|row| {
            let total: f64 = row.iter().sum();
            row.iter()
                .map(|v| if total > 0.0 { v / total } else { f64::NAN })
                .collect()
        })
        .collect();
    let m = |k: &str| s.metrics.get(k).copied().unwrap_or(f64::NAN);
    Figure::Heatmap {
        title: format!(
            "Atoms by {} (held-out): purity {:.3}, one-to-one {:.3}",
            lab.domain().content_word(),
            m("codebook_purity"),
            m("codebook_one_to_one")
        ),
        rows: order.iter().map(|&a| atom_caption(lab, a)).collect(),
        cols: s.content_names.clone(),
        values,
    }
}

/// PCA of content (or style) latents of held-out fragments, coloured by content (or style).
pub fn latent_figure(lab: &Lab, content: bool) -> Figure {
    let s = &lab.summary;
    let (points, names) = if content {
        (&s.content_points, &s.content_names)
    } else {
        (&s.style_points, &s.style_names)
    };
    let n = names.len();
    let series = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let held_out = !content && i >= s.n_train_styles;
            Series {
                name: if held_out {
                    format!("{name} (held out)")
                } else {
                    name.clone()
                },
                points: points
                    .iter()
                    .filter(|p| (if content { p.content } else { p.style }) as usize == i)
                    .map(|p| (p.x as f64, p.y as f64))
                    .collect(),
                color: figures::category_color(i, n),
            }
        })
        .filter(|s| !s.points.is_empty())
        .collect();
    let what = if content { "content" } else { "style" };
    Figure::Scatter {
        title: format!(
            "V3 {what} latents (PCA), coloured by {}",
            if content {
                lab.domain().content_word()
            } else {
                lab.domain().style_word()
            }
        ),
        x_label: "PC 1".into(),
        y_label: "PC 2".into(),
        series,
        line: None,
    }
}
