//! Development probe for SPS vision training: prints the loss parts, the linear R^2 of x/y/z
//! and, for comparison, the R^2 of a quadratic fit (is a coordinate encoded but curved?).
//! `cargo run --release --example vision_probe -- STEPS EVAL_EVERY [key=value ...]`
//! `cargo run --release --example vision_probe -- oracle` checks the metric on true positions.
#![allow(clippy::unwrap_used)]

use latent_lab::metrics::{affine_fit, r_squared};
use latent_lab::sps_vision::data::{Dataset, SEQ_LEN, TEST_THROWS, TRAIN_THROWS};
use latent_lab::sps_vision::model::encode_frames;
use latent_lab::sps_vision::train::{TrainConfig, VisionTrainer};
use latent_lab::worker::Trainer;

fn fit_r2(x_train: &[Vec<f64>], y_train: &[f64], x_test: &[Vec<f64>], y_test: &[f64]) -> f64 {
    let (w, b) = affine_fit(x_train, y_train);
    let pred: Vec<f64> = x_test
        .iter()
        .map(|r| b + r.iter().zip(&w).map(|(a, c)| a * c).sum::<f64>())
        .collect();
    r_squared(&pred, y_test)
}

fn quad(z: &[f64]) -> Vec<f64> {
    let mut f = z.to_vec();
    for i in 0..z.len() {
        for j in i..z.len() {
            f.push(z[i] * z[j]);
        }
    }
    f
}

/// (linear r2, quadratic r2) per coordinate, fitted on `fit` train throws
fn scores(z_train: &[Vec<f64>], p_train: &[[f32; 3]], z_test: &[Vec<f64>], p_test: &[[f32; 3]]) {
    let q_train: Vec<Vec<f64>> = z_train.iter().map(|r| quad(r)).collect();
    let q_test: Vec<Vec<f64>> = z_test.iter().map(|r| quad(r)).collect();
    let mut lin = Vec::new();
    let mut qd = Vec::new();
    for k in 0..3 {
        let yt: Vec<f64> = p_train.iter().map(|p| p[k] as f64).collect();
        let ys: Vec<f64> = p_test.iter().map(|p| p[k] as f64).collect();
        lin.push(fit_r2(z_train, &yt, z_test, &ys));
        qd.push(fit_r2(&q_train, &yt, &q_test, &ys));
    }
    // how well the latents hold the ball's apparent size (1 / distance to the camera)
    let cam = latent_lab::sps_vision::data::Camera::standard();
    let inv = |p: &[[f32; 3]]| -> Vec<f64> {
        p.iter()
            .map(|q| {
                1.0 / ((q[0] - cam.eye[0]).powi(2)
                    + (q[1] - cam.eye[1]).powi(2)
                    + (q[2] - cam.eye[2]).powi(2))
                .sqrt() as f64
            })
            .collect()
    };
    let size_q = fit_r2(&q_train, &inv(p_train), &q_test, &inv(p_test));
    println!(
        "  linear x {:.3} y {:.3} z {:.3} | quadratic x {:.3} y {:.3} z {:.3} size {:.3}",
        lin[0], lin[1], lin[2], qd[0], qd[1], qd[2], size_q
    );
}

fn positions(throws: &[latent_lab::sps_vision::data::Throw]) -> Vec<[f32; 3]> {
    throws
        .iter()
        .flat_map(|t| t.positions.iter().copied())
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let data = Dataset::generate(0, TRAIN_THROWS, TEST_THROWS);
    let p_train = positions(&data.train[..128]);
    let p_test = positions(&data.test);
    if args.get(1).map(|s| s.as_str()) == Some("render") {
        // rows: heights; columns: depth z (x = 0), then x (z = 0)
        let cam = latent_lab::sps_vision::data::Camera::standard();
        let ys = [0.5f32, 1.0, 1.5, 2.2];
        let cols: Vec<[f32; 2]> = vec![
            [0.0, -1.4],
            [0.0, -0.7],
            [0.0, 0.0],
            [0.0, 0.7],
            [0.0, 1.4],
            [-1.4, 0.0],
            [1.4, 0.0],
        ];
        let scale = 4;
        let side = 32 * scale + 4;
        let (w, h) = (side * cols.len(), side * ys.len());
        let mut rgb = vec![255u8; w * h * 3];
        for (r, &y) in ys.iter().enumerate() {
            for (c, xz) in cols.iter().enumerate() {
                let f = latent_lab::sps_vision::data::render_frame(&cam, [xz[0], y, xz[1]]);
                for py in 0..32 * scale {
                    for px in 0..32 * scale {
                        for k in 0..3 {
                            let v = f[k * 1024 + (py / scale) * 32 + px / scale];
                            rgb[((r * side + py) * w + c * side + px) * 3 + k] = (v * 255.0) as u8;
                        }
                    }
                }
            }
        }
        latent_lab::cli::write_png(std::path::Path::new("/tmp/vp/render.png"), w, h, rgb).unwrap();
        return;
    }
    if args.get(1).map(|s| s.as_str()) == Some("oracle") {
        let as_z = |p: &[[f32; 3]]| -> Vec<Vec<f64>> {
            p.iter()
                .map(|q| q.iter().map(|&v| v as f64).collect())
                .collect()
        };
        out_of_view_stats(&data);
        let cam = latent_lab::sps_vision::data::Camera::standard();
        let feats = |p: &[[f32; 3]], which: usize| -> Vec<Vec<f64>> {
            p.iter()
                .map(|q| {
                    let (u, v) = cam.project(*q).unwrap();
                    let d = ((q[0] - cam.eye[0]).powi(2)
                        + (q[1] - cam.eye[1]).powi(2)
                        + (q[2] - cam.eye[2]).powi(2))
                    .sqrt();
                    let (su, sv) = cam.project([q[0], 0.0, q[2]]).unwrap();
                    match which {
                        0 => vec![u as f64, v as f64],
                        1 => vec![u as f64, v as f64, (1.0 / d) as f64],
                        _ => vec![u as f64, v as f64, su as f64, sv as f64],
                    }
                })
                .collect()
        };
        for (w, name) in [
            (0, "(u, v)"),
            (1, "(u, v, 1/distance)"),
            (2, "(u, v, shadow u, shadow v)"),
        ] {
            println!("latent = {name}:");
            scores(&feats(&p_train, w), &p_train, &feats(&p_test, w), &p_test);
        }
        println!("latent = true position:");
        scores(&as_z(&p_train), &p_train, &as_z(&p_test), &p_test);
        let stats = |k: usize| {
            let v: Vec<f32> = p_train.iter().map(|p| p[k]).collect();
            let m = v.iter().sum::<f32>() / v.len() as f32;
            let sd = (v.iter().map(|a| (a - m).powi(2)).sum::<f32>() / v.len() as f32).sqrt();
            let lo = v.iter().copied().fold(f32::INFINITY, f32::min);
            let hi = v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            println!("  coord {k}: mean {m:.3} sd {sd:.3} range {lo:.3}..{hi:.3}");
        };
        (0..3).for_each(stats);
        return;
    }
    if args.get(1).map(|s| s.as_str()) == Some("check") {
        // a trained checkpoint: linear and quadratic fits, and where y's residuals lie
        let lab = latent_lab::sps_vision::Lab::load(std::path::Path::new(&args[2])).unwrap();
        let frames = |t: &[latent_lab::sps_vision::data::Throw]| -> Vec<Vec<f64>> {
            let f: Vec<&[f32]> = t
                .iter()
                .flat_map(|t| (0..SEQ_LEN).map(move |i| t.frame(i)))
                .collect();
            encode_frames(&lab.model, &f)
                .unwrap()
                .iter()
                .map(|r| r.iter().map(|&v| v as f64).collect())
                .collect()
        };
        let (z_train, z_test) = (frames(&data.train[..128]), frames(&data.test));
        scores(&z_train, &p_train, &z_test, &p_test);
        let yt: Vec<f64> = p_train.iter().map(|p| p[1] as f64).collect();
        let (w, b) = affine_fit(&z_train, &yt);
        // residual of y by true height band and by frame index
        let mut by_h = [(0f64, 0usize); 6];
        let mut by_i = vec![(0f64, 0usize); SEQ_LEN];
        for (k, (z, p)) in z_test.iter().zip(&p_test).enumerate() {
            let pred = b + z.iter().zip(&w).map(|(a, c)| a * c).sum::<f64>();
            let r = (pred - p[1] as f64).powi(2);
            let h = ((p[1] / 0.5) as usize).min(5);
            by_h[h].0 += r;
            by_h[h].1 += 1;
            by_i[k % SEQ_LEN].0 += r;
            by_i[k % SEQ_LEN].1 += 1;
        }
        for (h, (s, n)) in by_h.iter().enumerate() {
            println!(
                "  y in [{:.1},{:.1}): n {n} rms {:.3}",
                h as f32 * 0.5,
                h as f32 * 0.5 + 0.5,
                (s / (*n).max(1) as f64).sqrt()
            );
        }
        let v: Vec<String> = by_i
            .iter()
            .map(|(s, n)| format!("{:.2}", (s / (*n).max(1) as f64).sqrt()))
            .collect();
        println!("  y rms by frame: {}", v.join(" "));
        return;
    }
    if args.get(1).map(|s| s.as_str()) == Some("supervised") {
        supervised(&data, &args[2..]);
        return;
    }
    let steps: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(300);
    let every: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(100);
    let mut cfgv = serde_json::to_value(TrainConfig::preset("fast").unwrap()).unwrap();
    let mut seed = 0u64;
    for kv in &args[3.min(args.len())..] {
        let (k, v) = kv.split_once('=').unwrap();
        if k == "preset" {
            cfgv = serde_json::to_value(TrainConfig::preset(v).unwrap()).unwrap();
            continue;
        }
        if k == "seed" {
            seed = v.parse().unwrap();
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(v).unwrap();
        let ptr = format!("/{}", k.replace('.', "/"));
        *cfgv.pointer_mut(&ptr).unwrap() = v;
    }
    let mut cfg: TrainConfig = serde_json::from_value(cfgv).unwrap();
    cfg.steps = steps;
    println!("{}", serde_json::to_string(&cfg).unwrap());
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    pool.install(|| {
        let mut t = VisionTrainer::new(cfg, data.clone(), seed).unwrap();
        let start = std::time::Instant::now();
        let mut acc: Vec<f64> = Vec::new();
        let mut n = 0;
        while t.steps_done() < steps {
            let s = t.step().unwrap();
            if acc.len() != s.losses.len() {
                acc = vec![0.0; s.losses.len()];
                n = 0;
            }
            for (a, l) in acc.iter_mut().zip(&s.losses) {
                *a += l.1;
            }
            n += 1;
            if s.step.is_multiple_of(every) || s.step == steps {
                let parts: Vec<String> = s
                    .losses
                    .iter()
                    .zip(&acc)
                    .map(|(l, a)| format!("{} {:.4}", l.0, a / n as f64))
                    .collect();
                println!(
                    "{} {:.0}s {}",
                    s.step,
                    start.elapsed().as_secs_f64(),
                    parts.join(" ")
                );
                acc.iter_mut().for_each(|a| *a = 0.0);
                n = 0;
                let enc = |throws: &[latent_lab::sps_vision::data::Throw]| -> Vec<Vec<f64>> {
                    let frames: Vec<&[f32]> = throws
                        .iter()
                        .flat_map(|th| (0..SEQ_LEN).map(move |i| th.frame(i)))
                        .collect();
                    encode_frames(t.model(), &frames)
                        .unwrap()
                        .into_iter()
                        .map(|r| r.into_iter().map(|v| v as f64).collect())
                        .collect()
                };
                let z_train = enc(&data.train[..128]);
                let z_test = enc(&data.test);
                scores(&z_train, &p_train, &z_test, &p_test);
                let sd: Vec<String> = (0..3)
                    .map(|j| {
                        let v: Vec<f64> = z_test.iter().map(|r| r[j]).collect();
                        let m = v.iter().sum::<f64>() / v.len() as f64;
                        let s = (v.iter().map(|a| (a - m).powi(2)).sum::<f64>() / v.len() as f64)
                            .sqrt();
                        format!("{m:.2}+-{s:.2}")
                    })
                    .collect();
                println!("  latents {}", sd.join(" "));
                if let Ok(dump) = std::env::var("PROBE_DUMP") {
                    let rows: Vec<String> = z_test
                        .iter()
                        .zip(&p_test)
                        .map(|(z, p)| {
                            format!("{},{},{},{},{},{}", z[0], z[1], z[2], p[0], p[1], p[2])
                        })
                        .collect();
                    std::fs::write(dump, rows.join("\n")).unwrap();
                }
            }
        }
    });
}

#[allow(dead_code)]
pub fn out_of_view_stats(data: &Dataset) {
    let cam = latent_lab::sps_vision::data::Camera::standard();
    let (mut out, mut edge, mut n) = (0, 0, 0);
    for t in &data.train {
        for p in &t.positions {
            n += 1;
            match cam.project(*p) {
                Some((u, v)) => {
                    if !(0.0..32.0).contains(&u) || !(0.0..32.0).contains(&v) {
                        out += 1;
                    } else if !(3.0..29.0).contains(&u) || !(3.0..29.0).contains(&v) {
                        edge += 1;
                    }
                }
                None => out += 1,
            }
        }
    }
    println!("frames {n}: centre out of view {out}, within 3 px of the edge {edge}");
}

/// Can the encoder regress the true position at all? Train it (and its head) with an MSE
/// to the standardised (x, y, z) and report held-out R^2.
/// `vision_probe supervised STEPS EVAL_EVERY [model.key=value ...]`
fn supervised(data: &Dataset, args: &[String]) {
    use candle_core::{Device, Tensor};
    use candle_nn::{AdamW, Optimizer, ParamsAdamW};
    use latent_lab::sps_vision::data::{CHANNELS, SIZE};
    use rand::{Rng, SeedableRng};
    let steps: u64 = args.first().and_then(|s| s.parse().ok()).unwrap_or(300);
    let every: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(100);
    let mut cfgv = serde_json::to_value(TrainConfig::preset("fast").unwrap()).unwrap();
    let mut lr = 1e-3;
    let mut batch = 64usize;
    for kv in &args[2.min(args.len())..] {
        let (k, v) = kv.split_once('=').unwrap();
        match k {
            "lr" => lr = v.parse().unwrap(),
            "batch" => batch = v.parse().unwrap(),
            _ => {
                let v: serde_json::Value = serde_json::from_str(v).unwrap();
                *cfgv
                    .pointer_mut(&format!("/{}", k.replace('.', "/")))
                    .unwrap() = v;
            }
        }
    }
    let cfg: TrainConfig = serde_json::from_value(cfgv).unwrap();
    println!("{}", serde_json::to_string(&cfg.model).unwrap());
    let (varmap, vb) = latent_lab::nn::new_varmap();
    let model = latent_lab::sps_vision::model::SpsVision::new(&cfg.model, vb).unwrap();
    let mut opt = AdamW::new(
        varmap.all_vars(),
        ParamsAdamW {
            lr,
            weight_decay: 0.0,
            ..Default::default()
        },
    )
    .unwrap();
    let frames: Vec<(&[f32], [f32; 3])> = data
        .train
        .iter()
        .flat_map(|t| (0..SEQ_LEN).map(move |i| (t.frame(i), t.positions[i])))
        .collect();
    let mean = [0.0f32, 1.3, 0.0];
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    pool.install(|| {
        let start = std::time::Instant::now();
        for step in 1..=steps {
            let mut x = Vec::new();
            let mut y = Vec::new();
            for _ in 0..batch {
                let (f, p) = frames[rng.random_range(0..frames.len())];
                x.extend_from_slice(f);
                y.extend((0..3).map(|k| p[k] - mean[k]));
            }
            let x = Tensor::from_vec(x, (batch, CHANNELS, SIZE, SIZE), &Device::Cpu).unwrap();
            let y = Tensor::from_vec(y, (batch, 3), &Device::Cpu).unwrap();
            let (mu, _) = model.encode(&x).unwrap();
            let loss = (&mu - &y).unwrap().sqr().unwrap().mean_all().unwrap();
            opt.backward_step(&loss).unwrap();
            if step % every == 0 || step == steps {
                let enc = |throws: &[latent_lab::sps_vision::data::Throw]| -> Vec<Vec<f64>> {
                    let frames: Vec<&[f32]> = throws
                        .iter()
                        .flat_map(|th| (0..SEQ_LEN).map(move |i| th.frame(i)))
                        .collect();
                    encode_frames(&model, &frames)
                        .unwrap()
                        .into_iter()
                        .map(|r| r.into_iter().map(|v| v as f64).collect())
                        .collect()
                };
                println!(
                    "{step} {:.0}s loss {:.4}",
                    start.elapsed().as_secs_f64(),
                    loss.to_scalar::<f32>().unwrap()
                );
                let p_train = positions(&data.train[..128]);
                let p_test = positions(&data.test);
                scores(
                    &enc(&data.train[..128]),
                    &p_train,
                    &enc(&data.test),
                    &p_test,
                );
            }
        }
    });
}
