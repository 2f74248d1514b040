//! Diagnostic for the `fast` preset's log-frequency body: how fast its encoder learns pitch
//! with labels, how fast its decoder reconstructs notes given the true pitch, and how long
//! each takes per step.
//!
//! cargo run --release --example logshift_probe -- encoder|decoder [STEPS]
//!
//! And for a checkpoint or the data: `check FILE` (residuals by instrument and scale; `SHARP=S`
//! reads the same weights at another soft-argmax sharpness), `octave FILE INSTRUMENT`, `beam
//! FILE [BEAM PRIOR_WEIGHT MARGIN]` (the octave check's judge on every training scale),
//! `salience FILE INSTRUMENT PITCH`, `spectrum INSTRUMENT`, `frames INSTRUMENT PITCH`, `oracle`.

use std::time::Instant;

use anyhow::Context;
use latent_lab::sps_music::logshift::{MIDI_CENTRE, OWN_OCTAVE};

use candle_core::{Device, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use latent_lab::sps_music::{data::*, model::SpsMusic, train::TrainConfig};
use rand::{Rng, SeedableRng};

/// The probe's argument `i` parsed, if given and well-formed.
fn arg<T: std::str::FromStr>(i: usize) -> Option<T> {
    std::env::args().nth(i).and_then(|s| s.parse().ok())
}

fn main() -> anyhow::Result<()> {
    let which = std::env::args().nth(1).unwrap_or("encoder".into());
    let steps: usize = arg(2).unwrap_or(300);
    let cfg = TrainConfig::preset("fast")?;
    let (vm, vb) = latent_lab::nn::new_varmap();
    let m = SpsMusic::new(&cfg.model, vb)?;
    let mut src = open_source("soundfont")?;
    let ds = Dataset::render(src.as_mut(), &|_| {})?;
    let notes = |seqs: &[Sequence]| -> Vec<(Vec<f32>, f32)> {
        seqs.iter()
            .flat_map(|s| (0..SEQ_LEN).map(move |i| (s.note(i).to_vec(), s.pitches[i] as f32)))
            .collect()
    };
    let train = notes(&ds.train);
    let test = notes(&ds.test_seen);
    let unseen = notes(&ds.test_unseen);
    let mut opt = AdamW::new(
        vm.all_vars(),
        ParamsAdamW {
            lr: 1e-3,
            weight_decay: 0.0,
            ..Default::default()
        },
    )?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let batch = |set: &[(Vec<f32>, f32)], idx: &[usize]| -> anyhow::Result<(Tensor, Tensor)> {
        let x: Vec<f32> = idx.iter().flat_map(|&i| set[i].0.iter().copied()).collect();
        let y: Vec<f32> = idx.iter().map(|&i| set[i].1 - MIDI_CENTRE).collect();
        Ok((
            Tensor::from_vec(x, (idx.len(), 1, 513, 5), &Device::Cpu)?,
            Tensor::from_vec(y, (idx.len(), 1), &Device::Cpu)?,
        ))
    };
    let r2 = |set: &[(Vec<f32>, f32)]| -> anyhow::Result<f64> {
        let idx: Vec<usize> = (0..set.len()).collect();
        let mut lat = Vec::new();
        for chunk in idx.chunks(256) {
            let (x, _) = batch(set, chunk)?;
            let (mu, _) = m.encode(&x)?;
            lat.extend(mu.narrow(1, 0, 1)?.flatten_all()?.to_vec1::<f32>()?);
        }
        let l: Vec<f64> = lat.iter().map(|&v| v as f64).collect();
        let p: Vec<f64> = set.iter().map(|n| n.1 as f64).collect();
        Ok(latent_lab::metrics::linear_fit(&l, &p).r2)
    };
    if which == "check" {
        // residuals of a trained checkpoint's pitch line, by instrument
        let path = std::env::args().nth(2).unwrap_or_default();
        let mut lab = latent_lab::sps_music::Lab::load(std::path::Path::new(&path))?;
        if let Some(sharp) = std::env::var("SHARP").ok().and_then(|v| v.parse().ok()) {
            // what-if: the same weights read with another soft-argmax sharpness
            lab.model.set_sharpness(sharp);
        }
        for (name, set, first) in [
            ("seen", &ds.test_seen, 0),
            ("unseen", &ds.test_unseen, ds.n_train_instruments),
        ] {
            let notes: Vec<&[f32]> = set
                .iter()
                .flat_map(|s| (0..SEQ_LEN).map(move |i| s.note(i)))
                .collect();
            let mu = latent_lab::sps_music::model::encode_all(&lab.model, &notes)?;
            let lat: Vec<f64> = mu.iter().map(|m| m[0] as f64).collect();
            let p: Vec<f64> = set
                .iter()
                .flat_map(|s| s.pitches.iter().map(|&p| p as f64))
                .collect();
            let inst: Vec<usize> = set.iter().flat_map(|s| [s.instrument; SEQ_LEN]).collect();
            let fit = latent_lab::metrics::linear_fit(&lat, &p);
            println!(
                "{name}: r2 {:.4} slope {:.3} intercept {:.2}",
                fit.r2, fit.slope, fit.intercept
            );
            for i in first..ds.instruments.len() {
                let res: Vec<f64> = (0..lat.len())
                    .filter(|&k| inst[k] == i)
                    .map(|k| fit.slope * lat[k] + fit.intercept - p[k])
                    .collect();
                if res.is_empty() {
                    continue;
                }
                let mean = res.iter().sum::<f64>() / res.len() as f64;
                let rms = (res.iter().map(|r| r * r).sum::<f64>() / res.len() as f64).sqrt();
                let worst = res.iter().fold(0f64, |a, r| a.max(r.abs()));
                println!(
                    "  {:24} mean {mean:+6.2} rms {rms:5.2} worst {worst:5.1}",
                    ds.instruments[i]
                );
                if rms > 1.0 {
                    // per sequence: its first pitch and each note's residual
                    for (s, seq) in set.iter().enumerate().filter(|(_, s)| s.instrument == i) {
                        let r: Vec<String> = (0..SEQ_LEN)
                            .map(|j| {
                                let k = s * SEQ_LEN + j;
                                format!("{:+.0}", fit.slope * lat[k] + fit.intercept - p[k])
                            })
                            .collect();
                        println!("    start {:3} {}", seq.pitches[0], r.join(" "));
                    }
                }
            }
        }
        return Ok(());
    }
    if which == "beam" {
        // logshift_probe beam FILE [BEAM] [PRIOR_WEIGHT] [MARGIN]: the octave check's
        // judge on every training scale of a checkpoint: the notes it would move (BEAM 0: each
        // note's own reconstruction decides, as with `octave_beam` 0)
        let path = std::env::args().nth(2).unwrap_or_default();
        let lab = latent_lab::sps_music::Lab::load(std::path::Path::new(&path))?;
        // by default, the judge the checkpoint was trained with
        let beam = arg(3).unwrap_or(lab.cfg.octave_beam);
        let weight = arg(4).unwrap_or(if lab.cfg.octave_prior > 0.0 {
            lab.cfg.octave_prior
        } else {
            lab.cfg.prior_weight
        });
        let margin = arg(5).unwrap_or(lab.cfg.octave_margin);
        let m = &lab.model;
        let oct = latent_lab::sps_music::logshift::OCTAVE_CANDIDATES;
        let (mut moved, mut right, mut total) = (0, 0, 0);
        for seq in &ds.train {
            let x = Tensor::from_vec(seq.features.clone(), (SEQ_LEN, 1, 513, 5), &Device::Cpu)?;
            let (mu, _) = m.encode(&x)?;
            let (pitch, cost) = latent_lab::sps_music::train::octave_recon_costs(m, &x, &mu)?;
            let best = if beam == 0 {
                latent_lab::sps_music::train::octave_by_note(&cost)
            } else {
                latent_lab::sps_music::train::octave_beam(
                    &|x, h| m.prior_step(x, h),
                    &m.rnn.zero_state(1, &Device::Cpu)?,
                    &pitch,
                    &cost,
                    SEQ_LEN,
                    beam,
                    weight,
                    margin,
                )?
            };
            let err: Vec<f32> = (0..SEQ_LEN)
                .map(|i| pitch[i] + MIDI_CENTRE - seq.pitches[i] as f32)
                .collect();
            total += err.iter().filter(|e| e.abs() > 6.0).count();
            if best.iter().any(|&b| b != OWN_OCTAVE) {
                let r: Vec<String> = (0..SEQ_LEN)
                    .map(|i| {
                        moved += usize::from(best[i] != OWN_OCTAVE);
                        if best[i] != OWN_OCTAVE && (err[i] + oct[best[i]]).abs() < 6.0 {
                            right += 1;
                        }
                        format!("{:+.0}{}", err[i], ["v", "", "^"][best[i]])
                    })
                    .collect();
                println!(
                    "{} start {}: {}",
                    ds.instruments[seq.instrument],
                    seq.start_pitch,
                    r.join(" ")
                );
            }
        }
        println!(
            "notes off by an octave: {total}; moved: {moved}, of them to the right octave: {right}"
        );
        return Ok(());
    }
    if which == "octave" {
        // logshift_probe octave FILE INSTRUMENT: for each training scale of one instrument,
        // each note's residual and, for moving its pitch latent an octave down / not / up,
        // the reconstruction BCE and the prior's squared error over the whole scale
        let path = std::env::args().nth(2).unwrap_or_default();
        let inst: usize = arg(3).unwrap_or(2);
        let lab = latent_lab::sps_music::Lab::load(std::path::Path::new(&path))?;
        let m = &lab.model;
        for seq in ds.train.iter().filter(|s| s.instrument == inst) {
            let notes: Vec<&[f32]> = (0..SEQ_LEN).map(|i| seq.note(i)).collect();
            let mu = latent_lab::sps_music::model::encode_all(m, &notes)?;
            let l = mu[0].len();
            let x = Tensor::from_vec(seq.features.clone(), (SEQ_LEN, 1, 513, 5), &Device::Cpu)?;
            let (_, _, sal) = m.encode_with_salience(&x)?;
            let pitch: Vec<f32> = mu.iter().map(|v| v[0]).collect();
            let ce: Vec<Vec<f32>> = m
                .log_shift()
                .context("not a log-shift model")?
                .octave_cross_entropies(&sal.context("no salience")?, &pitch)?
                .to_vec2()?;
            let mut line = Vec::new();
            for i in 0..SEQ_LEN {
                let mut rec = Vec::new();
                let mut pri = Vec::new();
                for o in [-12f32, 0.0, 12.0] {
                    let mut z = mu[i].clone();
                    z[0] += o;
                    let zt = Tensor::from_vec(z, (1, l), &Device::Cpu)?;
                    let logits = m.decode_logits(&zt)?;
                    let bce = latent_lab::nn::bce_with_logits_rows(&logits, &x.narrow(0, i, 1)?)?
                        .to_vec1::<f32>()?[0];
                    rec.push(bce);
                    let mut p: Vec<f32> = mu.iter().map(|v| v[0]).collect();
                    p[i] += o;
                    let zs = Tensor::from_vec(p.clone(), (1, SEQ_LEN, 1), &Device::Cpu)?;
                    let pred = m.predict_with_symmetry(&zs, &[], &|z| Ok(z.clone()))?;
                    let pred: Vec<f32> = pred.flatten_all()?.to_vec1()?;
                    let err: f32 = (1..SEQ_LEN).map(|t| (pred[t - 1] - p[t]).powi(2)).sum();
                    pri.push(err);
                }
                line.push(format!(
                    "{}:{:+.0} ce[{:.0} {:.0} {:.0}] r[{:+.0} {:+.0}] p[{:.0} {:.0} {:.0}]",
                    seq.pitches[i],
                    mu[i][0] + MIDI_CENTRE - seq.pitches[i] as f32,
                    ce[i][0],
                    ce[i][1],
                    ce[i][2],
                    rec[0] - rec[1],
                    rec[2] - rec[1],
                    pri[0],
                    pri[1],
                    pri[2]
                ));
            }
            println!("start {}:\n  {}", seq.start_pitch, line.join("\n  "));
        }
        return Ok(());
    }
    if which == "spectrum" {
        // the linear spectrum (mean of the first 4 frames) of test notes of one instrument,
        // as the strongest bins: logshift_probe spectrum INSTRUMENT_INDEX
        let inst: usize = arg(2).unwrap_or(0);
        for s in ds
            .test_seen
            .iter()
            .chain(&ds.test_unseen)
            .filter(|s| s.instrument == inst)
        {
            for i in [0usize, 7] {
                let note = s.note(i);
                let mean: Vec<f32> = (0..513)
                    .map(|k| (0..4).map(|f| note[k * 5 + f]).sum::<f32>() / 4.0)
                    .collect();
                let mut idx: Vec<usize> = (0..513).collect();
                idx.sort_by(|a, b| mean[*b].total_cmp(&mean[*a]));
                let f0 = 440.0 * 2f32.powf((s.pitches[i] as f32 - 69.0) / 12.0);
                let top: Vec<String> = idx[..10]
                    .iter()
                    .map(|&k| format!("{:.0}Hz:{:.2}", k as f32 * 15.625, mean[k]))
                    .collect();
                println!(
                    "pitch {} (f0 {f0:.0} Hz): low bins 0-11 {:.2?} | {}",
                    s.pitches[i],
                    &mean[..12],
                    top.join(" ")
                );
            }
        }
        return Ok(());
    }
    if which == "salience" {
        // logshift_probe salience FILE INSTRUMENT PITCH: the soft-argmax's mass by region
        // (a semitone either side of each local maximum holding over 2% of it)
        let path = std::env::args().nth(2).unwrap_or_default();
        let inst: usize = arg(3).unwrap_or(0);
        let pitch: i32 = arg(4).unwrap_or(80);
        let lab = latent_lab::sps_music::Lab::load(std::path::Path::new(&path))?;
        let seq = ds
            .train
            .iter()
            .chain(&ds.test_seen)
            .chain(&ds.test_unseen)
            .find(|s| s.instrument == inst && s.pitches.contains(&pitch))
            .context("no such note")?;
        let i = seq
            .pitches
            .iter()
            .position(|&p| p == pitch)
            .context("no such note")?;
        let x = Tensor::from_vec(seq.note(i).to_vec(), (1, 1, 513, 5), &Device::Cpu)?;
        let (mu, _, sal) = lab.model.encode_with_salience(&x)?;
        let sal: Vec<f32> = sal.context("no salience")?.flatten_all()?.to_vec1()?;
        let m = sal.iter().cloned().fold(f32::MIN, f32::max);
        let sharpness = lab.cfg.model_sharpness() as f32;
        let e: Vec<f32> = sal.iter().map(|v| ((v - m) * sharpness).exp()).collect();
        let z: f32 = e.iter().sum();
        let bps = latent_lab::sps_music::logshift::BPS;
        let lo = latent_lab::sps_music::logshift::MIDI_LO;
        print!(
            "pitch {pitch}, latent {:.1}:",
            mu.to_vec2::<f32>()?[0][0] + MIDI_CENTRE
        );
        for j in 1..sal.len() - 1 {
            if sal[j] >= sal[j - 1] && sal[j] >= sal[j + 1] {
                let mass: f32 = e[j.saturating_sub(2)..(j + 3).min(e.len())]
                    .iter()
                    .sum::<f32>()
                    / z;
                if mass > 0.02 {
                    print!(
                        " MIDI {:.1}: {:.0}% (s {:.2})",
                        j as f32 / bps + lo,
                        100.0 * mass,
                        sal[j]
                    );
                }
            }
        }
        println!();
        return Ok(());
    }
    if which == "frames" {
        // logshift_probe frames INSTRUMENT PITCH: each frame's value at the bins of the note's
        // first 8 partials (training scales)
        let inst: usize = arg(2).unwrap_or(2);
        let pitch: i32 = arg(3).unwrap_or(50);
        let seq = ds
            .train
            .iter()
            .chain(&ds.test_seen)
            .find(|s| s.instrument == inst && s.pitches.contains(&pitch))
            .context("no such note")?;
        let i = seq
            .pitches
            .iter()
            .position(|&p| p == pitch)
            .context("no such note")?;
        let note = seq.note(i);
        let f0 = 440.0 * 2f32.powf((pitch as f32 - 69.0) / 12.0);
        for f in 0..5 {
            let v: Vec<String> = [0.5f32, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]
                .iter()
                .map(|h| {
                    let k = (h * f0 / 15.625).round() as usize;
                    match note.get(k * 5 + f) {
                        Some(v) => format!("{h}:{v:.2}"),
                        None => format!("{h}:-"),
                    }
                })
                .collect();
            println!("frame {f}: {}", v.join(" "));
        }
        return Ok(());
    }
    if which == "oracle" {
        for (name, set) in [("seen", &test), ("unseen", &unseen)] {
            let idx: Vec<usize> = (0..set.len()).collect();
            let mut est = Vec::new();
            for chunk in idx.chunks(256) {
                let (x, _) = batch(set, chunk)?;
                est.extend(latent_lab::sps_music::logshift::harmonic_sum_pitch(&x)?);
            }
            let e: Vec<f64> = est.iter().map(|&v| v as f64).collect();
            let p: Vec<f64> = set.iter().map(|n| n.1 as f64).collect();
            // misses as [instrument (index in this set's order) true pitch -> estimate]
            let instruments = if name == "seen" {
                ds.n_train_instruments
            } else {
                ds.instruments.len() - ds.n_train_instruments
            };
            let per_instrument = set.len() / instruments.max(1);
            for (k, (a, b)) in e.iter().zip(&p).enumerate() {
                if (a - b).abs() >= 0.75 {
                    print!("[#{} {b}->{a:.1}] ", k / per_instrument);
                }
            }
            println!();
            let exact = e
                .iter()
                .zip(&p)
                .filter(|(a, b)| (*a - *b).abs() < 0.75)
                .count();
            println!(
                "harmonic sum {name}: r2 {:.3}, within half a semitone {}/{}",
                latent_lab::metrics::linear_fit(&e, &p).r2,
                exact,
                p.len()
            );
        }
        return Ok(());
    }
    println!(
        "at init: r2 seen {:.3} unseen {:.3}",
        r2(&test)?,
        r2(&unseen)?
    );
    let t0 = Instant::now();
    for step in 1..=steps {
        let idx: Vec<usize> = (0..120).map(|_| rng.random_range(0..train.len())).collect();
        let (x, y) = batch(&train, &idx)?;
        let loss = if which == "encoder" {
            let (mu, _) = m.encode(&x)?;
            (mu.narrow(1, 0, 1)? - &y)?.sqr()?.mean_all()?
        } else {
            let z = Tensor::cat(&[&y, &y.zeros_like()?, &y.zeros_like()?], 1)?;
            // BCE above the targets' own entropy (its floor), per note
            let xc = x.clamp(1e-6f32, 1.0 - 1e-6)?;
            let h = ((&xc * xc.log()?)?
                + (xc.affine(-1.0, 1.0)? * xc.affine(-1.0, 1.0)?.log()?)?)?
            .sum_all()?
            .neg()?;
            (latent_lab::nn::bce_with_logits_sum(&m.decode_logits(&z)?, &x)? - h)?
                .affine(1.0 / 120.0, 0.0)?
        };
        opt.backward_step(&loss)?;
        if step % 50 == 0 {
            let ms = t0.elapsed().as_secs_f64() * 1000.0 / step as f64;
            if which == "encoder" {
                println!(
                    "step {step}: loss {:.3} r2 seen {:.3} unseen {:.3} ({ms:.0} ms/step)",
                    loss.to_scalar::<f32>()?,
                    r2(&test)?,
                    r2(&unseen)?
                );
            } else {
                println!(
                    "step {step}: bce/note {:.1} ({ms:.0} ms/step)",
                    loss.to_scalar::<f32>()?
                );
            }
        }
    }
    Ok(())
}
