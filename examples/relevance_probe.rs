//! Experiments on the relevance lab's defaults: train with given settings on each generated
//! data set and print the relevance. `cargo run --release --example relevance_probe --
//! BETA STEPS SEEDS DATASETS...`
//! (environment: `UNLOCK=n` opens a latent every n steps, 0 = all at once; `LATENT=n`)
#![allow(clippy::unwrap_used)]

use latent_lab::relevance::{data, train};
use latent_lab::worker::Trainer;

fn main() -> anyhow::Result<()> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    if a.len() < 4 {
        anyhow::bail!("usage: relevance_probe BETA STEPS SEEDS DATASET...");
    }
    let beta: f64 = a[0].parse()?;
    let steps: u64 = a[1].parse()?;
    let seeds: u64 = a[2].parse()?;
    for name in &a[3..] {
        for seed in 0..seeds {
            let mut cfg = train::TrainConfig::preset("fast")?;
            if let Ok(l) = std::env::var("LATENT") {
                cfg.model.latent = l.parse()?;
            }
            cfg.beta = beta;
            if let Ok(u) = std::env::var("UNLOCK") {
                cfg.unlock_every = u.parse()?;
            }
            cfg.steps = steps;
            let ds = data::Dataset::load(name, cfg.events, seed)?;
            let mut t = train::RelevanceTrainer::new(cfg, &ds, seed)?;
            let t0 = std::time::Instant::now();
            while t.steps_done() < t.total_steps() {
                t.step()?;
            }
            let m = t.final_metrics()?;
            let rel: Vec<String> = m
                .iter()
                .filter(|(k, _)| k.starts_with("relevance_"))
                .map(|(_, v)| format!("{v:.2}"))
                .collect();
            let dims = m.iter().find(|(k, _)| k == "relevant_dims").map(|x| x.1);
            let recon = m.iter().find(|(k, _)| k == "recon").map_or(0.0, |x| x.1);
            let kl: f64 = m
                .iter()
                .filter(|(k, _)| k.starts_with("kl_"))
                .map(|x| x.1)
                .sum();
            println!(
                "  recon {recon:.4} kl {kl:.3} elbo-loss {:.4}",
                recon + beta * kl
            );
            println!(
                "{name} seed {seed}: dims {dims:?} rel [{}] {:.0}s",
                rel.join(" "),
                t0.elapsed().as_secs_f64()
            );
        }
    }
    Ok(())
}
