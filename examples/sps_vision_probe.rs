//! Where the 3D lab's model keeps the ball's height while it trains: every 50 steps, how
//! linearly height can be read (R² of a least-squares affine fit on 800 held-out frames)
//! from the encoder's keypoint features and its hidden layer (when the encoder has keypoints)
//! and from the 3-D latent, with a cubic fit of the latent beside it, and the spread of each
//! latent axis.
//!
//! ```text
//! cargo run --release --example sps_vision_probe -- [SEED] [STEPS] [--preset P] [KEY=VALUE ...]
//! ```
//!
//! The preset (default `fast`) and its `KEY=VALUE` overrides are those of
//! `latent-lab train sps-vision --preset P --set KEY=VALUE`; the learning rate follows the
//! preset's own schedule, as if training ran to the preset's steps. Run it with
//! RAYON_NUM_THREADS=1 to keep to one core.

mod common;

use anyhow::Result;
use candle_core::{Device, Tensor};
use latent_lab::metrics::affine_r2 as fit;
use latent_lab::sps_vision::data::{CHANNELS, Dataset, SEQ_LEN, SIZE, TEST_THROWS, TRAIN_THROWS};
use latent_lab::sps_vision::eval::monomials;
use latent_lab::sps_vision::train::{TrainConfig, VisionTrainer};
use latent_lab::worker::CoreTrainer;

fn rows(t: &Tensor) -> Result<Vec<Vec<f64>>> {
    Ok(t.to_vec2::<f32>()?
        .into_iter()
        .map(|r| r.into_iter().map(f64::from).collect())
        .collect())
}

fn main() -> Result<()> {
    let args = common::ExampleArgs::parse(
        "sps_vision_probe [SEED] [STEPS] [--preset P] [KEY=VALUE ...]",
        "fast",
        600,
    )?;
    let (seed, steps) = (args.seed, args.steps);
    let cfg = args.config(TrainConfig::preset)?;
    let data = Dataset::generate(seed, TRAIN_THROWS, TEST_THROWS);
    let held_out = &data.test[..40];
    let frames: Vec<f32> = held_out
        .iter()
        .flat_map(|t| t.frames.iter().copied())
        .collect();
    let x = Tensor::from_vec(
        frames,
        (held_out.len() * SEQ_LEN, CHANNELS, SIZE, SIZE),
        &Device::Cpu,
    )?;
    let height: Vec<f64> = held_out
        .iter()
        .flat_map(|t| t.positions.iter().map(|p| f64::from(p[1])))
        .collect();
    let mut trainer = VisionTrainer::new(cfg, data.clone(), seed)?;
    println!(
        "step  R² of height from: keypoints  hidden  latent  latent (cubic) | spread of z1 z2 z3"
    );
    for step in 0..=steps {
        if step % 50 == 0 {
            let model = trainer.model();
            // a generic encoder has no keypoints: its rows show only the latent
            let encoder_fits = match model.keypoint_encoder() {
                Some(encoder) => format!(
                    "{:.3}  {:.3}",
                    fit(&rows(&encoder.keypoints(&x)?)?, &height),
                    fit(&rows(&encoder.forward(&x)?)?, &height)
                ),
                None => "-  -".into(),
            };
            let latent = rows(&model.encode(&x)?.0)?;
            let spread: Vec<f64> = (0..3)
                .map(|d| {
                    let c: Vec<f64> = latent.iter().map(|z| z[d]).collect();
                    let m = c.iter().sum::<f64>() / c.len() as f64;
                    (c.iter().map(|a| (a - m).powi(2)).sum::<f64>() / c.len() as f64).sqrt()
                })
                .collect();
            let poly: Vec<Vec<f64>> = latent.iter().map(|z| monomials(z)).collect();
            println!(
                "{step:4}  {encoder_fits}  {:.3}  {:.3} | {:.3} {:.3} {:.3}",
                fit(&latent, &height),
                fit(&poly, &height),
                spread[0],
                spread[1],
                spread[2]
            );
        }
        if step < steps {
            trainer.train_step()?;
        }
    }
    Ok(())
}
