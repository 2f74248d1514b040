//! Training from the window is `latent-lab train`: the same settings give the same model, bit
//! for bit, whether the shared training panel starts the job or the command line does.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use candle_core::{DType, Device};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use latent_lab::app::App;
use latent_lab::relevance::train::{DEFAULT_BETA, DEFAULT_LATENT};
use latent_lab::relevance::view::RelevanceTab;

const STEPS: u64 = 300;
const SEED: u64 = 7;
const OVERRIDE: &str = "lr=2e-3";

fn relevance_tab<'h>(harness: &'h mut Harness<'static, App>) -> &'h mut RelevanceTab {
    let tab = harness
        .state_mut()
        .tabs
        .iter_mut()
        .find(|t| t.title() == "Relevance")
        .unwrap();
    tab.as_any_mut().downcast_mut::<RelevanceTab>().unwrap()
}

/// Every tensor of a checkpoint, by name, as raw f32 values.
fn tensors(path: &Path) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let mut all: Vec<_> = candle_core::safetensors::load(path, &Device::Cpu)
        .unwrap()
        .into_iter()
        .map(|(name, t)| {
            let dims = t.dims().to_vec();
            let values = t
                .to_dtype(DType::F32)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            (name, dims, values)
        })
        .collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    all
}

#[test]
fn a_run_from_the_window_equals_the_same_run_on_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut harness = common::window(dir.path());
    harness.run_steps(2);
    harness.get_by_label("Relevance").click();
    harness.run_steps(2);
    harness.get_by_label("circle").click();
    harness.run_steps(1);
    // the override typed into the panel's `--set` field
    let set_field = harness.get_by(|n| n.placeholder() == Some("KEY=VALUE, one a line (lr=2e-3)"));
    set_field.focus();
    harness.run_steps(1);
    harness
        .get_by(|n| n.placeholder() == Some("KEY=VALUE, one a line (lr=2e-3)"))
        .type_text(OVERRIDE);
    harness.run_steps(1);
    {
        let settings = &mut relevance_tab(&mut harness).models.panel.settings;
        assert_eq!(settings.overrides, OVERRIDE, "the override was typed");
        settings.steps = STEPS;
        settings.seed = SEED;
    }
    harness.get_by_label("Train").click();
    harness.run_steps(2);
    let start = Instant::now();
    while relevance_tab(&mut harness).is_training() {
        assert!(
            start.elapsed() < Duration::from_secs(180),
            "the window's training did not end"
        );
        harness.step();
        std::thread::sleep(Duration::from_millis(20));
    }
    harness.run_steps(2);
    let lab = relevance_tab(&mut harness).models.a.clone().unwrap();
    assert_eq!(lab.meta.steps, STEPS, "the run went its whole length");
    assert_eq!(lab.meta.seed, SEED);

    // save through the tab's files row
    let from_window = dir.path().join("window.safetensors");
    relevance_tab(&mut harness).models.files.checkpoint.text = from_window.display().to_string();
    harness.run_steps(1);
    harness.get_by_label("Save").click();
    let start = Instant::now();
    while !harness
        .state()
        .shared
        .notices
        .iter()
        .any(|n| n.text.contains("saved"))
    {
        assert!(start.elapsed() < Duration::from_secs(30), "no save");
        harness.step();
        std::thread::sleep(Duration::from_millis(20));
    }

    let from_cli = dir.path().join("cli.safetensors");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_latent-lab"))
        .args([
            "train",
            "vae-relevance",
            "--preset",
            "fast",
            "--data",
            "circle",
            "--steps",
            &STEPS.to_string(),
            "--seed",
            &SEED.to_string(),
            "--threads",
            "1",
            "--latent",
            &DEFAULT_LATENT.to_string(),
            "--beta",
            &DEFAULT_BETA.to_string(),
            "--set",
            OVERRIDE,
            "--out",
        ])
        .arg(&from_cli)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "latent-lab train failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let (window, cli) = (tensors(&from_window), tensors(&from_cli));
    let names = |t: &[(String, Vec<usize>, Vec<f32>)]| -> Vec<String> {
        t.iter().map(|x| x.0.clone()).collect()
    };
    assert_eq!(names(&window), names(&cli), "the same tensors");
    for ((name, dims_w, w), (_, dims_c, c)) in window.iter().zip(&cli) {
        assert_eq!(dims_w, dims_c, "{name}: the same shape");
        let same = w.iter().zip(c).all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(
            same,
            "{name}: the window's weights differ from the command line's"
        );
    }
    // the override reached the model: a different learning rate gives other weights
    assert!(
        lab.meta.config.to_string().contains("0.002"),
        "lr=2e-3 is in the config"
    );
}
