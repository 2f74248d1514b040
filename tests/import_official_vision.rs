//! The official SPS vision PyTorch weights, imported, reproduce the official outputs to 1e-4.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::path::PathBuf;

use candle_core::{Device, Tensor};
use latent_lab::sps_vision::Lab;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn npy(name: &str) -> Tensor {
    Tensor::read_npy(fixture(&format!("sps_vision_official_seed0.{name}.npy")))
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
fn imported_official_vision_model_matches_pytorch_outputs() {
    let lab = Lab::import_pytorch(&fixture("sps_vision_official_seed0.pt")).expect("import");
    let (mu, logvar) = lab.model.encode(&npy("x")).unwrap();
    let d = max_abs_diff(&mu, &npy("mu"));
    assert!(d < 1e-4, "mu differs by {d}");
    let d = max_abs_diff(&logvar, &npy("logvar"));
    assert!(d < 1e-4, "logvar differs by {d}");

    let z = npy("z");
    let decoded = lab.model.decode(&z).unwrap();
    let d = max_abs_diff(&decoded, &npy("decoded"));
    assert!(d < 1e-4, "decoded differs by {d}");

    let h = lab
        .model
        .rnn
        .zero_state(z.dim(0).unwrap(), &Device::Cpu)
        .unwrap();
    let (next, _) = lab.model.prior_step(&z, &h).unwrap();
    let d = max_abs_diff(&next, &npy("prior_next"));
    assert!(d < 1e-4, "prior differs by {d}");
}

#[test]
fn imported_vision_model_saves_and_loads_back() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("official.safetensors");
    let lab = Lab::import_pytorch(&fixture("sps_vision_official_seed0.pt")).unwrap();
    lab.save(&out).unwrap();
    let back = Lab::load(&out).unwrap();
    let z = npy("z");
    assert!(max_abs_diff(&back.model.decode(&z).unwrap(), &npy("decoded")) < 1e-4);
}

/// An imported checkpoint carries no map from latents to positions: its reading figure fits
/// one as `eval` does, rather than reading every frame at the origin.
#[test]
fn the_reading_figure_of_an_imported_model_fits_its_own_map() {
    use latent_lab::figures::Figure;
    use latent_lab::metrics::r_squared;
    use latent_lab::sps_vision::{cli, data, eval};
    let lab = Lab::import_pytorch(&fixture("sps_vision_official_seed0.pt")).unwrap();
    assert!(!lab.calibration.is_fitted());
    let Figure::Scatter { series, .. } = cli::reading_figure(&lab).unwrap() else {
        panic!("the reading is a scatter plot");
    };
    let set = data::open_source(&cli::data_spec_of(&lab, None), lab.meta.seed).unwrap();
    let cal = eval::calibrate(&lab.model, &set, 128).unwrap();
    for (k, s) in series.iter().enumerate() {
        let (truth, read): (Vec<f64>, Vec<f64>) = s.points.iter().copied().unzip();
        let spread = read.iter().map(|r| (r - read[0]).abs()).fold(0.0, f64::max);
        assert!(spread > 1e-3, "{}: every frame read at one place", s.name);
        let r2 = r_squared(&read, &truth);
        assert!(
            (r2 - cal.r2[k]).abs() < 1e-6,
            "{}: {r2} against {}",
            s.name,
            cal.r2[k]
        );
    }
}
