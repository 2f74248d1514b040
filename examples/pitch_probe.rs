//! Diagnostic: how fast can the SPS music encoder learn pitch *with* labels (supervised
//! regression of the pitch latent), and the decoder reconstruct notes given the true pitch?
//! If these are slow, the unsupervised model cannot be fast.
//!
//! cargo run --release --example pitch_probe -- encoder|decoder [fast|paper]

use candle_core::{Device, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use latent_lab::sps_music::{data::*, model::SpsMusic, train::TrainConfig};
use rand::Rng;
fn main() -> anyhow::Result<()> {
    let which = std::env::args().nth(1).unwrap_or("encoder".into());
    let cfg = TrainConfig::preset(&std::env::args().nth(2).unwrap_or("fast".into()))?;
    let (vm, vb) = latent_lab::nn::new_varmap();
    let m = SpsMusic::new(&cfg.model, vb)?;
    let mut src = open_source("soundfont")?;
    let ds = Dataset::render(src.as_mut(), &|_| {})?;
    let notes: Vec<(&[f32], f32)> = ds
        .train
        .iter()
        .flat_map(|s| (0..SEQ_LEN).map(move |i| (s.note(i), s.pitches[i] as f32)))
        .collect();
    let test: Vec<(&[f32], f32)> = ds
        .test_seen
        .iter()
        .flat_map(|s| (0..SEQ_LEN).map(move |i| (s.note(i), s.pitches[i] as f32)))
        .collect();
    let mut opt = AdamW::new(
        vm.all_vars(),
        ParamsAdamW {
            lr: 1e-3,
            weight_decay: 0.0,
            ..Default::default()
        },
    )?;
    let mut rng = rand::rng();
    for step in 1..=600 {
        let idx: Vec<usize> = (0..120).map(|_| rng.random_range(0..notes.len())).collect();
        let x: Vec<f32> = idx
            .iter()
            .flat_map(|&i| notes[i].0.iter().copied())
            .collect();
        let y: Vec<f32> = idx.iter().map(|&i| (notes[i].1 - 66.0) / 10.0).collect();
        let x = Tensor::from_vec(x, (120, 1, 513, 5), &Device::Cpu)?;
        let y = Tensor::from_vec(y, (120, 1), &Device::Cpu)?;
        let loss = if which == "encoder" {
            let (mu, _) = m.encode(&x)?;
            (mu.narrow(1, 0, 1)? - &y)?.sqr()?.mean_all()?
        } else {
            let z = Tensor::cat(&[&y, &y.zeros_like()?, &y.zeros_like()?], 1)?;
            latent_lab::nn::bce_with_logits_sum(&m.decode_logits(&z)?, &x)?
        };
        opt.backward_step(&loss)?;
        if step % 100 == 0 {
            if which == "encoder" {
                let tx: Vec<f32> = test.iter().flat_map(|n| n.0.iter().copied()).collect();
                let mu = m
                    .encode(&Tensor::from_vec(
                        tx,
                        (test.len(), 1, 513, 5),
                        &Device::Cpu,
                    )?)?
                    .0
                    .to_vec2::<f32>()?;
                let a: Vec<f64> = mu.iter().map(|r| r[0] as f64).collect();
                let b: Vec<f64> = test.iter().map(|n| n.1 as f64).collect();
                println!(
                    "encoder step {step} loss {:.4} test R2 {:.4}",
                    loss.to_scalar::<f32>()?,
                    latent_lab::metrics::linear_fit(&a, &b).r2
                );
            } else {
                println!(
                    "decoder step {step} loss/note {:.1}",
                    loss.to_scalar::<f32>()? / 120.0
                );
            }
        }
    }
    Ok(())
}
