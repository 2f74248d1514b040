//! What the pitch lab's encoder can read when it is told: the preset's encoder (by default
//! the `generic` preset's official layers, from the start `latent-lab train` draws for them;
//! the log-shift body's harmonic start is not applied here), trained by least squares to put
//! each note's pitch (standardised) on its pitch latent instead of by the SPS loss. Every 500 steps it prints the R² of one line from
//! the pitch latent to pitch through every held-out scale of the training instruments, and
//! through every scale of the instruments never seen in training: `r2_embedding` and
//! `r2_embedding_unseen` as `latent-lab eval` measures them on a trained latent.
//!
//! ```text
//! cargo run --release --example sps_music_ceiling -- [SEED] [STEPS] [--preset P] [--data SPEC] [KEY=VALUE ...]
//! ```
//!
//! Each step reads as many notes as a step of the preset (its batch of scales, every note of
//! each), at the preset's learning rate. The data is that of `latent-lab train sps-music
//! --data SPEC` (default `soundfont`). Run it with RAYON_NUM_THREADS=1 to keep to one core.

mod common;

use anyhow::Result;
use candle_core::{Device, Tensor};
use candle_nn::Optimizer;
use latent_lab::metrics::affine_r2;
use latent_lab::sps_music::data::{Dataset, SEQ_LEN, Sequence, open_source};
use latent_lab::sps_music::model::{SpsMusic, encode_all};
use latent_lab::sps_music::train::TrainConfig;
use rand::{Rng, SeedableRng};

/// R² of one line from the pitch latent to the pitch, through every note of `scales`.
fn line_r2(model: &SpsMusic, scales: &[Sequence]) -> Result<f64> {
    let notes: Vec<&[f32]> = scales
        .iter()
        .flat_map(|s| (0..SEQ_LEN).map(move |i| s.note(i)))
        .collect();
    let latent: Vec<Vec<f64>> = encode_all(model, &notes)?
        .into_iter()
        .map(|z| vec![f64::from(z[0])])
        .collect();
    let pitch: Vec<f64> = scales
        .iter()
        .flat_map(|s| s.pitches.iter().map(|&p| f64::from(p)))
        .collect();
    Ok(affine_r2(&latent, &pitch))
}

fn main() -> Result<()> {
    let args = common::ExampleArgs::parse(
        "sps_music_ceiling [SEED] [STEPS] [--preset P] [--data SPEC] [KEY=VALUE ...]",
        "generic",
        2000,
    )?;
    let (seed, steps) = (args.seed, args.steps);
    let cfg = args.config(TrainConfig::preset)?;
    let mut source = open_source(args.data.as_deref().unwrap_or("soundfont"))?;
    let data = Dataset::render(source.as_mut(), &|_| {})?;
    let (varmap, vb) = latent_lab::nn::new_seeded_varmap(seed);
    let model = SpsMusic::new(&cfg.model, vb)?;
    let mut opt = common::adam(&varmap, cfg.lr)?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);

    let pitches: Vec<f32> = data
        .train
        .iter()
        .flat_map(|s| s.pitches.iter().map(|&p| p as f32))
        .collect();
    let (mean, sd) = common::mean_sd(&pitches);

    println!("step  loss  R² held-out scales  unseen instruments");
    for step in 0..=steps {
        let scales: Vec<&Sequence> = (0..cfg.batch)
            .map(|_| &data.train[rng.random_range(0..data.train.len())])
            .collect();
        let features: Vec<f32> = scales.iter().flat_map(|s| s.features.clone()).collect();
        let target: Vec<f32> = scales
            .iter()
            .flat_map(|s| s.pitches.iter().map(|&p| (p as f32 - mean) / sd))
            .collect();
        let target = Tensor::from_vec(target, (scales.len() * SEQ_LEN, 1), &Device::Cpu)?;
        let pitch = model
            .encode_features(&features, scales.len() * SEQ_LEN)?
            .narrow(1, 0, 1)?;
        let loss = (pitch - target)?.sqr()?.mean_all()?;
        if step % 500 == 0 {
            println!(
                "{step:5}  {:.4}  {:.4}  {:.4}",
                loss.to_scalar::<f32>()?,
                line_r2(&model, &data.test_seen)?,
                line_r2(&model, &data.test_unseen)?
            );
        }
        if step < steps {
            opt.backward_step(&loss)?;
        }
    }
    Ok(())
}
