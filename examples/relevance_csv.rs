//! Train a relevance VAE on a table of your own and print how relevant each latent dimension
//! is: `cargo run --release --example relevance_csv -- DATA.csv [STEPS] [SEED]`.
//!
//! The CSV has a header row of column names and one event per line. The model opens one
//! latent dimension at a time and keeps those worth their KL cost, so the number of relevant
//! dimensions estimates the intrinsic dimension of the data: 1 for points on a circle, however
//! many columns hold them.

use anyhow::{Context, Result, bail};
use latent_lab::relevance::data::Dataset;
use latent_lab::relevance::train::{RelevanceTrainer, TrainConfig};
use latent_lab::worker::Trainer;

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let Some(csv) = args.next() else {
        bail!("usage: relevance_csv DATA.csv [STEPS] [SEED]");
    };
    let number = |arg: Option<String>, what: &str, default: u64| -> Result<u64> {
        arg.map_or(Ok(default), |s| {
            s.parse()
                .with_context(|| format!("{what} `{s}` is not a whole number"))
        })
    };
    let steps = number(args.next(), "STEPS", 4000)?;
    let seed = number(args.next(), "SEED", 0)?;

    let mut cfg = TrainConfig::preset("fast")?;
    cfg.steps = steps;
    let data = Dataset::load(&format!("csv:{csv}"), cfg.events, seed)?;
    println!(
        "{csv}: {} events of {} columns ({})",
        data.len(),
        data.dim(),
        data.columns.join(", ")
    );

    let mut trainer = RelevanceTrainer::new(cfg, &data, seed)?;
    while trainer.steps_done() < trainer.total_steps() {
        let stats = trainer.step()?;
        if stats.step % 1000 == 0 {
            println!("step {:>6}  loss {:.4}", stats.step, stats.total());
        }
    }

    let report = trainer.lab()?.relevance_on(&data)?;
    println!("relevance per latent dimension, on held-out events:");
    for (i, (r, kl)) in report.relevance.iter().zip(&report.kl_per_dim).enumerate() {
        println!("  z{i}: relevance {r:.3}   KL {kl:.3} nats");
    }
    println!("{} relevant dimension(s)", report.relevant_dims);
    Ok(())
}
