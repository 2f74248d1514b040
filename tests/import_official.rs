//! The official SPS music PyTorch weights, imported, reproduce the official outputs to 1e-4.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::path::PathBuf;

use candle_core::{Device, Tensor};
use latent_lab::sps_music::Lab;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn npy(name: &str) -> Tensor {
    Tensor::read_npy(fixture(&format!("sps_music_official_seed0.{name}.npy")))
        .expect("fixture array")
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims());
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

#[test]
fn imported_official_model_matches_pytorch_outputs() {
    let lab = Lab::import_pytorch(&fixture("sps_music_official_seed0.pt")).expect("import");
    let (mu, logvar) = lab.model.encode(&npy("x")).unwrap();
    assert!(
        max_abs_diff(&mu, &npy("mu")) < 1e-4,
        "mu differs by {}",
        max_abs_diff(&mu, &npy("mu"))
    );
    assert!(max_abs_diff(&logvar, &npy("logvar")) < 1e-4);

    let z = npy("z");
    let decoded = lab.model.decode(&z).unwrap();
    let d = max_abs_diff(&decoded, &npy("decoded"));
    assert!(d < 1e-4, "decoded differs by {d}");

    let pitch = z.narrow(1, 0, 1).unwrap();
    let h = lab
        .model
        .rnn
        .zero_state(z.dim(0).unwrap(), &Device::Cpu)
        .unwrap();
    let (next, _) = lab.model.prior_step(&pitch, &h).unwrap();
    let d = max_abs_diff(&next, &npy("prior_next"));
    assert!(d < 1e-4, "prior differs by {d}");
}

#[test]
fn import_then_save_then_load_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("official.safetensors");
    let lab = Lab::import_pytorch(&fixture("sps_music_official_seed0.pt")).unwrap();
    lab.save(&out).unwrap();
    let back = Lab::load(&out).unwrap();
    let z = npy("z");
    assert!(max_abs_diff(&back.model.decode(&z).unwrap(), &npy("decoded")) < 1e-4);
}

#[test]
fn resynthesised_notes_never_clip() {
    let lab = Lab::import_pytorch(&fixture("sps_music_official_seed0.pt")).unwrap();
    let extreme = vec![
        vec![40.0, -40.0, 40.0],
        vec![-40.0, 40.0, -40.0],
        vec![0.0, 0.0, 0.0],
    ];
    let audio = lab.render_notes(&extreme, 8).unwrap();
    let peak = audio.iter().fold(0f32, |m, s| m.max(s.abs()));
    assert!(peak > 0.0 && peak <= 0.9 + 1e-6, "peak {peak}");
}
