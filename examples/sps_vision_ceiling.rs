//! What the 3D lab's encoder can read when it is told: the preset's encoder, from the same
//! seeded start, trained by least squares to output the ball's position (each coordinate
//! standardised over the training frames) instead of by the SPS loss. Every 200 steps it
//! prints the R² of an affine reading of x, y and z from its 3-D output on 1280 held-out
//! frames, the measure `latent-lab eval` applies to a trained latent. A latent that the SPS
//! loss leaves below these figures is held there by the loss, not by the layers.
//!
//! ```text
//! cargo run --release --example sps_vision_ceiling -- [SEED] [STEPS] [--preset P] [KEY=VALUE ...]
//! ```
//!
//! Each step reads as many frames as a step of the preset (its batch of throws, every frame
//! of each), at the preset's learning rate. Run it with RAYON_NUM_THREADS=1 to keep to one
//! core.

mod common;

use anyhow::Result;
use candle_core::{Device, Tensor};
use candle_nn::Optimizer;
use latent_lab::metrics::affine_r2;
use latent_lab::sps_vision::data::{
    CHANNELS, Dataset, SEQ_LEN, SIZE, TEST_THROWS, TRAIN_THROWS, Throw,
};
use latent_lab::sps_vision::model::SpsVision;
use latent_lab::sps_vision::train::TrainConfig;
use rand::{Rng, SeedableRng};

/// Frames of `throws` as a batch, and their positions.
fn batch(throws: &[&Throw]) -> Result<(Tensor, Vec<[f32; 3]>)> {
    let frames: Vec<f32> = throws.iter().flat_map(|t| t.frames.clone()).collect();
    let x = Tensor::from_vec(
        frames,
        (throws.len() * SEQ_LEN, CHANNELS, SIZE, SIZE),
        &Device::Cpu,
    )?;
    let positions = throws.iter().flat_map(|t| t.positions.clone()).collect();
    Ok((x, positions))
}

fn main() -> Result<()> {
    let args = common::ExampleArgs::parse(
        "sps_vision_ceiling [SEED] [STEPS] [--preset P] [KEY=VALUE ...]",
        "fast",
        1200,
    )?;
    let (seed, steps) = (args.seed, args.steps);
    let cfg = args.config(TrainConfig::preset)?;
    let data = Dataset::generate(seed, TRAIN_THROWS, TEST_THROWS);
    let (varmap, vb) = latent_lab::nn::new_seeded_varmap(seed);
    let model = SpsVision::new(&cfg.model, vb)?;
    let mut opt = common::adam(&varmap, cfg.lr)?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);

    let train: Vec<[f32; 3]> = data
        .train
        .iter()
        .flat_map(|t| t.positions.clone())
        .collect();
    let (mean, sd): (Vec<f32>, Vec<f32>) = (0..3)
        .map(|a| common::mean_sd(&train.iter().map(|p| p[a]).collect::<Vec<_>>()))
        .unzip();
    let held_out: Vec<&Throw> = data.test.iter().take(64).collect();
    let (x_test, truth) = batch(&held_out)?;

    println!("step  loss  R² of x  y  z (held-out frames, affine reading of the output)");
    for step in 0..=steps {
        let throws: Vec<&Throw> = (0..cfg.batch)
            .map(|_| &data.train[rng.random_range(0..data.train.len())])
            .collect();
        let (x, positions) = batch(&throws)?;
        let target: Vec<f32> = positions
            .iter()
            .flat_map(|p| (0..3).map(|a| (p[a] - mean[a]) / sd[a]))
            .collect();
        let target = Tensor::from_vec(target, (positions.len(), 3), &Device::Cpu)?;
        let loss = (model.encode(&x)?.0 - target)?.sqr()?.mean_all()?;
        if step % 200 == 0 {
            let out: Vec<Vec<f64>> = model
                .encode(&x_test)?
                .0
                .to_vec2::<f32>()?
                .into_iter()
                .map(|r| r.into_iter().map(f64::from).collect())
                .collect();
            let r2: Vec<f64> = (0..3)
                .map(|a| {
                    let coordinate: Vec<f64> = truth.iter().map(|p| f64::from(p[a])).collect();
                    affine_r2(&out, &coordinate)
                })
                .collect();
            println!(
                "{step:4}  {:.4}  {:.4}  {:.4}  {:.4}",
                loss.to_scalar::<f32>()?,
                r2[0],
                r2[1],
                r2[2]
            );
        }
        if step < steps {
            opt.backward_step(&loss)?;
        }
    }
    Ok(())
}
