//! `latent-lab export CKPT --figure latent-map|interpolation|directions` for every lab with a
//! latent map: PNG and SVG figures that decode and have content, WAV for the labs with sound,
//! and refusals (exit code 2) for what cannot be written.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn model(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("models")
        .join(name)
}

fn export(file: &Path, figure: &str, out: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_latent-lab"))
        .arg("export")
        .arg(file)
        .args(["--figure", figure, "--out"])
        .arg(out)
        .output()
        .unwrap()
}

fn exported(file: &Path, figure: &str, out: &Path) {
    let run = export(file, figure, out);
    assert!(
        run.status.success(),
        "{} --figure {figure} -> {}: {}",
        file.display(),
        out.display(),
        String::from_utf8_lossy(&run.stderr)
    );
}

/// A PNG that decodes, of a figure's size, not one flat colour.
fn assert_png(path: &Path) {
    let img = image::open(path).unwrap().to_rgb8();
    assert!(
        img.width() >= 200 && img.height() >= 100,
        "{}: {:?}",
        path.display(),
        img.dimensions()
    );
    let first = img.get_pixel(0, 0);
    assert!(
        img.pixels().any(|p| p != first),
        "{}: one colour",
        path.display()
    );
}

fn assert_svg(path: &Path) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(
        text.starts_with("<svg") && text.trim_end().ends_with("</svg>"),
        "{}",
        path.display()
    );
    assert!(
        text.len() > 1000,
        "{}: {} bytes",
        path.display(),
        text.len()
    );
}

/// A WAV of at least `seconds`, not silent.
fn assert_wav(path: &Path, seconds: f32) {
    let (samples, rate) = latent_lab::audio::wav::read_mono(path).unwrap();
    assert!(
        samples.len() as f32 >= seconds * rate as f32,
        "{}: {} samples",
        path.display(),
        samples.len()
    );
    let peak = samples.iter().fold(0f32, |m, s| m.max(s.abs()));
    assert!(peak > 0.01, "{}: silent (peak {peak})", path.display());
}

#[test]
fn every_lab_exports_its_navigation_figures() {
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "sps_music",
        "sps_vision",
        "v3_notes",
        "v3_digits",
        "ievae_digits",
        "vae_relevance",
    ] {
        let file = model(&format!("{name}.safetensors"));
        for (figure, ext) in [
            ("latent-map", "png"),
            ("latent-map", "svg"),
            ("interpolation", "png"),
            ("interpolation:3:40", "svg"),
            ("directions", "png"),
            ("directions:5", "svg"),
        ] {
            let out = dir
                .path()
                .join(format!("{name}-{}.{ext}", figure.replace(':', "_")));
            exported(&file, figure, &out);
            if ext == "png" {
                assert_png(&out);
            } else {
                assert_svg(&out);
            }
        }
    }
}

#[test]
fn labs_with_sound_export_interpolations_and_directions_as_wav() {
    let dir = tempfile::tempdir().unwrap();
    // sps-music: 9 notes of 0.16 s per strip; v3-notes: 9 fragments of a second
    for (name, strip_seconds) in [("sps_music", 1.4), ("v3_notes", 9.0)] {
        let file = model(&format!("{name}.safetensors"));
        let out = dir.path().join(format!("{name}-interpolation.wav"));
        exported(&file, "interpolation", &out);
        // the linear strip and the prior's (sps-music) or the linear one alone (v3)
        assert_wav(&out, strip_seconds);
        let out = dir.path().join(format!("{name}-directions.wav"));
        exported(&file, "directions", &out);
        assert_wav(&out, strip_seconds * 5.0 / 9.0);
    }
}

#[test]
fn what_cannot_be_written_is_refused_with_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("sps_vision", "interpolation", "wav", "no sound"),
        ("sps_music", "latent-map", "wav", "figure"),
        ("sps_music", "directions", "jpg", ".jpg"),
        ("sps_vision", "interpolation:0:99999", "png", "samples"),
        ("sps_vision", "interpolation:x", "png", "interpolation:A:B"),
        (
            "sps_vision",
            "interpolation:1:x",
            "png",
            "not a sample index",
        ),
    ];
    for (name, figure, ext, says) in cases {
        let out = dir.path().join(format!("out.{ext}"));
        let run = export(&model(&format!("{name}.safetensors")), figure, &out);
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(
            run.status.code(),
            Some(2),
            "{name} {figure} .{ext}: {stderr}"
        );
        assert!(stderr.contains(says), "{name} {figure} .{ext}: {stderr}");
        assert!(!out.exists());
    }
    // a family's own figures still reach it
    let out = dir.path().join("traversal.png");
    exported(&model("sps_vision.safetensors"), "traversal", &out);
    assert_png(&out);
}
