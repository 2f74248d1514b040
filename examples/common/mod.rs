//! The command line the SPS examples share: `[SEED] [STEPS] [--preset P] [--data SPEC]
//! [KEY=VALUE ...]`, the preset and its `KEY=VALUE` overrides as `latent-lab train` reads
//! them (`--preset P --set KEY=VALUE`), and what the examples that fit a factor by least
//! squares share.

// Each example compiles this module on its own and uses only part of it.
#![allow(dead_code)]

use anyhow::{Context, Result, bail};
use candle_nn::VarMap;
use latent_lab::cli::TrainArgs;

pub struct ExampleArgs {
    /// the preset, its overrides and the seed
    pub train: TrainArgs,
    pub seed: u64,
    pub steps: u64,
    /// `--data SPEC`, where the example reads data from a source
    pub data: Option<String>,
}

impl ExampleArgs {
    /// This process's arguments; `usage` names the example and what it takes, `preset` and
    /// `steps` are the defaults.
    pub fn parse(usage: &str, preset: &str, steps: u64) -> Result<Self> {
        let mut train = TrainArgs::preset(preset);
        let mut data = None;
        let mut numbers = Vec::new();
        let mut it = std::env::args().skip(1);
        while let Some(a) = it.next() {
            match a.as_str() {
                "--preset" => train.preset = it.next().context("--preset needs a name")?,
                "--data" if usage.contains("--data") => {
                    data = Some(it.next().context("--data needs a source")?)
                }
                _ if a.contains('=') => train.set.push(a),
                _ => numbers.push(
                    a.parse::<u64>()
                        .with_context(|| format!("`{a}`: usage: {usage}"))?,
                ),
            }
        }
        let (seed, steps) = match numbers[..] {
            [] => (0, steps),
            [seed] => (seed, steps),
            [seed, steps] => (seed, steps),
            _ => bail!("usage: {usage}"),
        };
        train.seed = seed;
        Ok(Self {
            train,
            seed,
            steps,
            data,
        })
    }

    /// The preset's configuration with the overrides applied.
    pub fn config<T>(&self, preset: fn(&str) -> anyhow::Result<T>) -> Result<T>
    where
        T: serde::Serialize + serde::de::DeserializeOwned,
    {
        Ok(self.train.configure(preset(&self.train.preset)?)?)
    }
}

/// Adam at the rate `lr` over every variable of `varmap`, without weight decay.
pub fn adam(varmap: &VarMap, lr: f64) -> Result<candle_nn::AdamW> {
    let params = candle_nn::ParamsAdamW {
        lr,
        weight_decay: 0.0,
        ..Default::default()
    };
    Ok(<candle_nn::AdamW as candle_nn::Optimizer>::new(
        varmap.all_vars(),
        params,
    )?)
}

/// Mean and standard deviation of `values`, to standardise a target with.
pub fn mean_sd(values: &[f32]) -> (f32, f32) {
    let n = values.len() as f32;
    let mean = values.iter().sum::<f32>() / n;
    let sd = (values.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / n).sqrt();
    (mean, sd)
}
