//! Development probe for V3 training: prints the loss parts and the metrics as it goes.
//! `cargo run --release --example v3_probe -- notes STEPS [key=value ...]`
#![allow(clippy::unwrap_used)]

use latent_lab::v3::data::{self, Domain};
use latent_lab::v3::train::{TrainConfig, V3Trainer};
use latent_lab::worker::Trainer;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let domain = if args.get(1).map(|s| s.as_str()) == Some("digits") {
        Domain::Digits
    } else {
        Domain::Notes
    };
    let eval_every: u64 = std::env::var("V3_EVAL_EVERY")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let steps: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(300);
    let mut cfg = TrainConfig::preset(domain, "fast").unwrap();
    let mut cfgv = serde_json::to_value(&cfg).unwrap();
    for kv in &args[3.min(args.len())..] {
        let (k, v) = kv.split_once('=').unwrap();
        let v: serde_json::Value = serde_json::from_str(v).unwrap();
        let ptr = format!("/{}", k.replace('.', "/"));
        *cfgv.pointer_mut(&ptr).unwrap() = v;
    }
    cfg = serde_json::from_value(cfgv).unwrap();
    cfg.steps = steps;
    let d = data::load(domain, data::default_spec(domain), &|_| {}).unwrap();
    let seed: u64 = std::env::var("V3_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut t = V3Trainer::new(cfg, d, seed).unwrap();
    let start = std::time::Instant::now();
    let mut acc: Vec<f64> = Vec::new();
    while t.steps_done() < steps {
        let s = t.step().unwrap();
        if acc.is_empty() {
            acc = vec![0.0; s.losses.len()];
        }
        for (a, l) in acc.iter_mut().zip(&s.losses) {
            *a += l.1;
        }
        if s.step.is_multiple_of(50) {
            let parts: Vec<String> = s
                .losses
                .iter()
                .zip(&acc)
                .map(|(l, a)| format!("{} {:.4}", l.0, a / 50.0))
                .collect();
            println!(
                "{} {:.0}s {}",
                s.step,
                start.elapsed().as_secs_f64(),
                parts.join(" ")
            );
            acc.iter_mut().for_each(|a| *a = 0.0);
        }
        if s.step.is_multiple_of(eval_every) || s.step == steps {
            let m = t.evaluate().unwrap();
            let txt: Vec<String> = m.iter().map(|(k, v)| format!("{k} {v:.3}")).collect();
            println!("  {}", txt.join(", "));
        }
    }
}
