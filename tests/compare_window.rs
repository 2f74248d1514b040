//! Comparing two models in the window: opening B beside A shows both outputs, one control
//! drives both, the metric table is the command line's `compare`, and a bad file opened as A
//! or B is refused with a notice while the lab stays as it was.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod common;

use std::path::PathBuf;

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use latent_lab::app::App;
use latent_lab::ievae::view::ClassPoseTab;
use latent_lab::relevance::view::RelevanceTab;
use latent_lab::sps_music::view::PitchTab;
use latent_lab::sps_vision::view::VisionTab;
use latent_lab::v3::view::{CodebookTab, StyleChoice};

use common::{drag_slider_to, run_until, tab, tab_mut};
use latent_lab::app::Tab;

fn models_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models")
}

/// The window on the tab titled `title`, tall enough to show its compare panel.
fn window_on(title: &str) -> Harness<'static, App> {
    let mut harness = common::window_sized(&models_dir(), [1500.0, 2400.0]);
    harness.run_steps(2);
    common::open_tab(&mut harness, title);
    harness
}

/// Equal up to float rounding (one event encoded alone or in a batch).
fn same(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| (x - y).abs() <= 1e-5 * (1.0 + x.abs()))
}

fn differ(a: &[f32], b: &[f32]) -> bool {
    a.len() != b.len() || a.iter().zip(b).any(|(x, y)| (x - y).abs() > 1e-6)
}

#[test]
fn pitch_b_follows_the_same_true_pitch_and_the_slider_moves_both() {
    let mut harness = window_on("Pitch");
    assert!(tab::<PitchTab>(&harness).spectrum(1).is_none());
    harness.get_by_label("B = no symmetry").click();
    run_until(&mut harness, 60, "opening the ablation as B", |h| {
        tab::<PitchTab>(h).spectrum(1).is_some()
    });
    let t = tab::<PitchTab>(&harness);
    let (a0, b0) = (
        t.spectrum(0).unwrap().to_vec(),
        t.spectrum(1).unwrap().to_vec(),
    );
    drag_slider_to(&mut harness, "pitch latent", 0.8);
    let t = tab::<PitchTab>(&harness);
    let (a1, b1) = (t.spectrum(0).unwrap(), t.spectrum(1).unwrap());
    assert!(differ(&a0, a1), "A's decoded spectrum follows the slider");
    assert!(
        differ(&b0, b1),
        "B's decoded spectrum follows the same slider"
    );
    // both latents stand for one true pitch, each through its own calibration
    let (a, b) = (t.models.a.as_ref().unwrap(), t.models.b.as_ref().unwrap());
    let pitch_a = a.pitch_of_latent(t.state.pitch_latent).unwrap();
    let zb = t.latent_b().unwrap();
    let pitch_b = b.pitch_of_latent(zb[0]).unwrap();
    assert!(
        (pitch_a - pitch_b).abs() < 0.05,
        "A at {pitch_a:.2}, B at {pitch_b:.2} (MIDI)"
    );
}

#[test]
fn rotation_turns_both_3d_models() {
    let mut harness = window_on("3D");
    harness.get_by_label("B = no symmetry").click();
    run_until(&mut harness, 60, "opening the ablation as B", |h| {
        tab::<VisionTab>(h).decoded_b.is_some()
    });
    let t = tab::<VisionTab>(&harness);
    let (a0, b0) = (t.decoded.clone().unwrap(), t.decoded_b.clone().unwrap());
    let zb0 = t.latent_b().unwrap();
    drag_slider_to(&mut harness, "rotation about z2 (degrees)", 0.75);
    let t = tab::<VisionTab>(&harness);
    assert!(t.state.rotation_deg.abs() > 30.0, "the control turned");
    assert!(differ(&a0, t.decoded.as_ref().unwrap()), "A's frame turns");
    assert!(
        differ(&b0, t.decoded_b.as_ref().unwrap()),
        "B's frame turns with the same control"
    );
    // B turns about its own vertical latent axis: its height stays
    let zb1 = t.latent_b().unwrap();
    assert!((zb1[1] - zb0[1]).abs() < 1e-5 && differ(&zb0, &zb1));
}

/// One click puts the generic body beside its ablation: A the SPS model, B the same command
/// without the symmetry terms, both driven by the same rotation control.
#[test]
fn one_click_opens_the_generic_3d_pair_as_a_and_b() {
    let mut harness = window_on("3D");
    assert_eq!(
        tab::<VisionTab>(&harness)
            .models
            .a
            .as_ref()
            .unwrap()
            .meta
            .preset,
        "fast"
    );
    harness
        .get_by_label("A, B = generic layers, with and without symmetry")
        .click();
    run_until(&mut harness, 60, "opening the generic pair", |h| {
        let t = tab::<VisionTab>(h);
        t.decoded_b.is_some() && t.models.a.as_ref().unwrap().meta.preset == "generic"
    });
    let t = tab::<VisionTab>(&harness);
    assert_eq!(
        t.models.b.as_ref().unwrap().meta.preset,
        "generic-no-symmetry"
    );
    let (a0, b0) = (t.decoded.clone().unwrap(), t.decoded_b.clone().unwrap());
    drag_slider_to(&mut harness, "rotation about z2 (degrees)", 0.75);
    let t = tab::<VisionTab>(&harness);
    assert!(differ(&a0, t.decoded.as_ref().unwrap()), "A's frame turns");
    assert!(
        differ(&b0, t.decoded_b.as_ref().unwrap()),
        "B's frame turns"
    );
}

/// The 3D tab with the decoded-turns pair opened in one click.
fn decoded_turns_pair() -> Harness<'static, App> {
    let mut harness = window_on("3D");
    harness
        .get_by_label("A, B = turns decoded, with and without symmetry")
        .click();
    run_until(&mut harness, 60, "opening the decoded-turns pair", |h| {
        let t = tab::<VisionTab>(h);
        t.decoded_b.is_some() && t.models.a.as_ref().unwrap().meta.steps == 2400
    });
    harness
}

/// One click puts the model trained with its turned predictions decoded beside the same
/// training without the symmetry terms; the rings the rotation control turns their balls
/// through lie level for A and lean for B, and A's ring starts where B's does (the sliders'
/// position carried into B).
#[test]
fn one_click_opens_the_decoded_turns_pair_whose_rings_lie_level_and_lean() {
    let harness = decoded_turns_pair();
    let t = tab::<VisionTab>(&harness);
    assert_eq!(t.models.b.as_ref().unwrap().meta.preset, "no-symmetry");
    let rings = t.turn_rings();
    assert_eq!(rings.len(), 2, "A's ring and B's");
    // height span over width of each ring, seen from the side
    let slope = |ring: &[[f32; 3]]| {
        let span = |k: usize| {
            let v = ring.iter().map(|p| p[k]);
            v.clone().fold(f32::MIN, f32::max) - v.fold(f32::MAX, f32::min)
        };
        span(1) / span(0).max(span(2))
    };
    let (a, b) = (slope(&rings[0].points), slope(&rings[1].points));
    assert!(a < 0.15 && b > 0.5, "A {a}, B {b}");
    let gap: f32 = (0..3)
        .map(|k| (rings[0].points[0][k] - rings[1].points[0][k]).abs())
        .sum();
    assert!(gap < 1e-3, "the rings start apart: {gap}");
}

/// Point the tab's export rows at `paths` (one per row; an empty one keeps its row's path).
fn export_to(
    models: &mut latent_lab::app::Models<impl latent_lab::app::HostedLab>,
    paths: &[&std::path::Path],
) {
    models.files.restore(&latent_lab::app::FilePaths {
        checkpoint: String::new(),
        import: String::new(),
        exports: paths.iter().map(|p| p.display().to_string()).collect(),
    });
}

#[test]
fn with_b_open_the_tabs_export_draws_both_models_side_by_side() {
    let mut harness = decoded_turns_pair();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("turn.png");
    let keep = std::path::Path::new("");
    export_to(
        &mut tab_mut::<VisionTab>(&mut harness).models,
        &[keep, keep, keep, &out],
    );
    harness.get_by_label("Export turn").click();
    run_until(&mut harness, 60, "exporting the turn figure", |_| {
        out.exists()
    });
    // A's figure alone, as the command line draws it
    let single = dir.path().join("a.png");
    let t = tab::<VisionTab>(&harness);
    let figure = latent_lab::sps_vision::cli::turn_figure(t.models.a.as_ref().unwrap()).unwrap();
    latent_lab::figures::save(&figure, &single).unwrap();
    let (both, one) = (image::open(&out).unwrap(), image::open(&single).unwrap());
    assert_eq!(both.width(), 2 * one.width(), "A and B side by side");
    assert!(both.height() > one.height(), "under a band naming them");

    // the pitch tab's sweep: A's notes, half a second of silence, B's
    let mut harness = window_on("Pitch");
    harness.get_by_label("B = no symmetry").click();
    run_until(&mut harness, 60, "opening the ablation as B", |h| {
        tab::<PitchTab>(h).spectrum(1).is_some()
    });
    let wav = dir.path().join("sweep.wav");
    export_to(&mut tab_mut::<PitchTab>(&mut harness).models, &[&wav]);
    harness.get_by_label("Export WAV").click();
    run_until(&mut harness, 120, "exporting the sweep", |_| wav.exists());
    let (audio, rate) = latent_lab::audio::wav::read_mono(&wav).unwrap();
    assert_eq!(rate, 16_000);
    // 25 notes of 2560 samples from each model
    assert_eq!(audio.len(), 2 * 25 * 2560 + 8000);
    let loud = |part: &[f32]| part.iter().any(|s| s.abs() > 0.01);
    assert!(loud(&audio[..25 * 2560]) && loud(&audio[25 * 2560 + 8000..]));
    assert!(
        !loud(&audio[25 * 2560..25 * 2560 + 8000]),
        "a pause between them"
    );
}

#[test]
fn the_pose_sliders_drive_both_ie_vaes() {
    let mut harness = window_on("Class x Pose");
    harness.get_by_label("B = 100 labels").click();
    run_until(&mut harness, 60, "opening the 100-label model as B", |h| {
        tab::<ClassPoseTab>(h).decoded_image_b().is_some()
    });
    let t = tab::<ClassPoseTab>(&harness);
    let (a0, b0) = (
        t.decoded_image().unwrap().to_vec(),
        t.decoded_image_b().unwrap().to_vec(),
    );
    drag_slider_to(&mut harness, "z0", 0.9);
    let t = tab::<ClassPoseTab>(&harness);
    assert!(differ(&a0, t.decoded_image().unwrap()));
    assert!(differ(&b0, t.decoded_image_b().unwrap()));
}

#[test]
fn the_style_picker_picks_the_same_style_in_both_codebooks() {
    let mut harness = window_on("Codebook");
    let b_path = models_dir().join("v3_notes.safetensors");
    tab_mut::<CodebookTab>(&mut harness).models.b_field.text = b_path.display().to_string();
    harness.get_by_label("Open as B").click();
    run_until(&mut harness, 60, "opening B", |h| {
        tab::<CodebookTab>(h).atoms_b.is_some()
    });
    let t = tab::<CodebookTab>(&harness);
    assert_eq!(
        t.atoms.as_ref().unwrap().fragments,
        t.atoms_b.as_ref().unwrap().fragments,
        "the same model as B draws the same codebook"
    );
    let before = t.atoms_b.as_ref().unwrap().style.clone();
    tab_mut::<CodebookTab>(&mut harness).state.style = StyleChoice::Known(2);
    harness.run_steps(3);
    let t = tab::<CodebookTab>(&harness);
    let (a, b) = (t.atoms.as_ref().unwrap(), t.atoms_b.as_ref().unwrap());
    assert!(
        differ(&before, &b.style),
        "B's codebook moved to the new style"
    );
    assert_eq!(a.style, b.style);
    assert_eq!(a.fragments, b.fragments);

    // exported with B open: the same model's grid twice, side by side, under the names
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("grid.png");
    export_to(&mut tab_mut::<CodebookTab>(&mut harness).models, &[&out]);
    harness.get_by_label("Export grid").click();
    run_until(&mut harness, 60, "exporting the grid", |_| out.exists());
    let grid = image::open(&out).unwrap().to_rgb8();
    let half = grid.width() / 2;
    // below the band of labels
    let same_halves = (80..grid.height())
        .all(|y| (0..half).all(|x| grid.get_pixel(x, y) == grid.get_pixel(x + half, y)));
    assert!(same_halves, "A's grid and B's, drawn in the same style");
}

#[test]
fn the_traversal_draws_both_relevance_models_events() {
    let mut harness = window_on("Relevance");
    // the same model as B, opened before A's held-out events are encoded: once they are, it
    // encodes the same event and moves the same latent
    let b_path = models_dir().join("vae_relevance.safetensors");
    tab_mut::<RelevanceTab>(&mut harness).models.b_field.text = b_path.display().to_string();
    harness.get_by_label("Open as B").click();
    run_until(
        &mut harness,
        120,
        "opening B, encoding the held-out events",
        |h| {
            let t = tab::<RelevanceTab>(h);
            !t.busy() && t.decoded_b.is_some()
        },
    );
    harness.run_steps(2);
    let t = tab::<RelevanceTab>(&harness);
    let (a0, b0) = (t.decoded.clone().unwrap().1, t.decoded_b.clone().unwrap().1);
    assert!(
        same(&a0, &b0),
        "the same model decodes the same event: {a0:?} {b0:?}"
    );
    drag_slider_to(&mut harness, "traversal", 0.9);
    let t = tab::<RelevanceTab>(&harness);
    let (a1, b1) = (
        &t.decoded.as_ref().unwrap().1,
        &t.decoded_b.as_ref().unwrap().1,
    );
    assert!(differ(&a0, a1), "A's event follows the traversal");
    assert!(
        same(a1, b1),
        "B's event follows the same control: {a1:?} {b1:?}"
    );
}

#[test]
fn b_s_encoding_of_the_test_throw_is_drawn_over_a_s() {
    let mut harness = window_on("3D");
    harness.get_by_label("B = no symmetry").click();
    run_until(
        &mut harness,
        120,
        "rolling out the throw with A and B",
        |h| {
            let t = tab::<VisionTab>(h);
            t.models.b.is_some()
                && !t.busy()
                && t.throw_view.as_ref().is_some_and(|v| v.b_in_a.is_some())
        },
    );
    let t = tab::<VisionTab>(&harness);
    let view = t.throw_view.as_ref().unwrap();
    let (encoded, rolled) = view.b_in_a.as_ref().unwrap();
    assert_eq!(encoded.len(), view.encoded.len());
    assert_eq!(rolled.len(), view.rolled.len());
}

#[test]
fn the_metric_table_is_the_command_lines_compare() {
    let mut harness = window_on("Relevance");
    let b_path = models_dir().join("vae_relevance.safetensors");
    tab_mut::<RelevanceTab>(&mut harness).models.b_field.text = b_path.display().to_string();
    harness.get_by_label("Open as B").click();
    run_until(&mut harness, 60, "opening B", |h| {
        tab::<RelevanceTab>(h).models.b.is_some()
    });
    harness.get_by_label("Compare metrics").click();
    run_until(&mut harness, 120, "evaluating A and B", |h| {
        tab::<RelevanceTab>(h).models.table.is_some()
    });
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_latent-lab"))
        .args(["compare", &b_path.display().to_string()])
        .arg(&b_path)
        .arg("--json")
        .output()
        .unwrap();
    assert!(out.status.success());
    let cli: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let t = tab::<RelevanceTab>(&harness);
    let table = t.models.table.as_ref().unwrap();
    // the same numbers, up to the last bits of sums whose order depends on the threads
    assert!(close(&table.a, &cli["a"]), "{}\n{}", table.a, cli["a"]);
    assert!(close(&table.b, &cli["b"]));
    assert!(close(&table.rows.to_json(&table.a, &table.b), &cli));
}

fn close(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            (x - y).abs() <= 1e-9 * (1.0 + x.abs().max(y.abs()))
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| close(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| close(v, w)))
        }
        _ => a == b,
    }
}

#[test]
fn a_bad_file_opened_as_a_or_b_leaves_the_lab_as_it_was() {
    let mut harness = window_on("Pitch");
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.safetensors");
    // a header length of 2^62: nothing may be allocated for it
    let mut bytes = (1u64 << 62).to_le_bytes().to_vec();
    bytes.extend_from_slice(b"{}");
    std::fs::write(&bad, &bytes).unwrap();
    let before = tab::<PitchTab>(&harness).spectrum(0).unwrap().to_vec();
    tab_mut::<PitchTab>(&mut harness)
        .models
        .files
        .checkpoint
        .text = bad.display().to_string();
    harness.get_by_label("Open").click();
    harness.run_steps(3);
    let notices = common::notices(&harness);
    let last = notices.last().unwrap();
    assert!(last.contains("bad.safetensors"), "{last}");
    assert!(!last.contains('\n'), "one line: {last}");
    let t = tab::<PitchTab>(&harness);
    assert_eq!(t.spectrum(0).unwrap(), before.as_slice(), "A unchanged");
    tab_mut::<PitchTab>(&mut harness).models.b_field.text = bad.display().to_string();
    harness.get_by_label("Open as B").click();
    run_until(&mut harness, 30, "refusing B", |h| {
        common::notices(h).len() > notices.len()
    });
    assert!(tab::<PitchTab>(&harness).models.b.is_none());
    assert!(
        common::notices(&harness)
            .last()
            .unwrap()
            .contains("bad.safetensors")
    );
}
