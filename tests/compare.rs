//! `latent-lab compare A B`: both evals and their differences, for every family.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::path::PathBuf;
use std::process::{Command, Output};

fn model(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("models")
        .join(name)
        .display()
        .to_string()
}

fn compare(a: &str, b: &str, json: bool) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_latent-lab"));
    cmd.args(["compare", &model(a), &model(b)]);
    if json {
        cmd.arg("--json");
    }
    cmd.output().expect("run latent-lab compare")
}

fn compare_json(a: &str, b: &str) -> serde_json::Value {
    let out = compare(a, b, true);
    assert!(
        out.status.success(),
        "compare {a} {b} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("compare --json prints one JSON object")
}

/// B - A of `key`, checked against the two evals it was computed from.
fn checked_difference(j: &serde_json::Value, key: &str) -> f64 {
    let (a, b) = (j["a"][key].as_f64().unwrap(), j["b"][key].as_f64().unwrap());
    let d = j["difference"][key]
        .as_f64()
        .unwrap_or_else(|| panic!("no difference for {key}: {j}"));
    assert!((d - (b - a)).abs() < 1e-12, "{key}: {d} != {b} - {a}");
    d
}

#[test]
fn sps_against_its_ablations_shows_the_gap() {
    let j = compare_json(
        "sps_music.safetensors",
        "ablations/sps_music_beta_vae.safetensors",
    );
    assert_eq!(j["a"]["preset"], "fast");
    assert_eq!(j["b"]["preset"], "beta-vae");
    assert!(checked_difference(&j, "r2_embedding") < -0.1, "{j}");

    let j = compare_json(
        "sps_vision.safetensors",
        "ablations/sps_vision_no_symmetry.safetensors",
    );
    checked_difference(&j, "r2_min");
    // without the symmetry terms a turn of the latent is further from a turn of space
    assert!(
        checked_difference(&j, "equivariance_centroid_px") > 2.0,
        "{j}"
    );
}

#[test]
fn ievae_with_all_labels_against_100_labels() {
    let j = compare_json(
        "ievae_digits.safetensors",
        "ablations/ievae_digits_100_labels.safetensors",
    );
    assert!(checked_difference(&j, "accuracy") < 0.0, "{j}");
    assert!(checked_difference(&j, "labels") < 0.0, "{j}");
}

/// A model against itself differs by exactly zero in every metric, arrays included.
#[test]
fn every_other_family_against_itself() {
    for name in [
        "v3_notes.safetensors",
        "v3_digits.safetensors",
        "vae_relevance.safetensors",
        "digit_classifier.safetensors",
    ] {
        let j = compare_json(name, name);
        let diffs = j["difference"].as_object().unwrap();
        assert!(!diffs.is_empty(), "{name}: no numeric metric compared: {j}");
        for (key, d) in diffs {
            let values: Vec<f64> = match d {
                serde_json::Value::Array(xs) => xs.iter().map(|x| x.as_f64().unwrap()).collect(),
                x => vec![x.as_f64().unwrap()],
            };
            assert!(values.iter().all(|v| *v == 0.0), "{name}: {key} = {d}");
        }
    }
    let text = compare(
        "vae_relevance.safetensors",
        "vae_relevance.safetensors",
        false,
    );
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.lines().any(|l| l.starts_with("relevant_dims")),
        "{text}"
    );
}

#[test]
fn different_families_are_refused_in_one_line() {
    let out = compare("sps_music.safetensors", "vae_relevance.safetensors", true);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("vae_relevance.safetensors"), "{err}");
    assert!(out.stdout.is_empty());
}
