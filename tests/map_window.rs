//! The latent map in every tab of the real window: closed, it costs nothing; opened, it
//! encodes the held-out samples of the model on show, and a click inside it decodes that
//! point; when the model on show changes, the map follows it.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod common;

use std::path::PathBuf;

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use latent_lab::app::{App, ExplorePanel};

use common::tab_mut;

fn models_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models")
}

/// The map panel of the tab of type `$tab`.
macro_rules! panel_of {
    ($tab:ty) => {
        |h: &mut Harness<'static, App>| -> &mut ExplorePanel {
            tab_mut::<$tab>(h).models.map_panel().unwrap()
        }
    };
}

type Panel = for<'h> fn(&'h mut Harness<'static, App>) -> &'h mut ExplorePanel;

fn tabs() -> Vec<(&'static str, Panel)> {
    use latent_lab::{ievae, relevance, sps_music, sps_vision, v3};
    vec![
        ("Pitch", panel_of!(sps_music::view::PitchTab)),
        ("3D", panel_of!(sps_vision::view::VisionTab)),
        ("Codebook", panel_of!(v3::view::CodebookTab)),
        ("Class x Pose", panel_of!(ievae::view::ClassPoseTab)),
        ("Relevance", panel_of!(relevance::view::RelevanceTab)),
    ]
}

fn map_in_tab(title: &str, panel: Panel) {
    let mut harness = common::window_sized(&models_dir(), [1500.0, 3200.0]);
    harness.run_steps(2);
    common::open_tab(&mut harness, title);
    assert!(
        panel(&mut harness).source().is_none(),
        "{title}: a closed map encodes nothing"
    );
    harness.get_by_label("Latent map").click();
    let start = std::time::Instant::now();
    while panel(&mut harness).samples().is_none() {
        assert!(start.elapsed().as_secs() < 60, "{title}: no samples");
        harness.step();
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    harness.run_steps(2);
    let p = panel(&mut harness);
    let n = p.samples().unwrap().latents.len();
    let dims = p.source().unwrap().dims();
    assert!(n >= 100, "{title}: {n} samples");
    assert!(p.samples().unwrap().latents.iter().all(|z| z.len() == dims));
    // a click inside the map's frame decodes the latent there
    let frame = p.map().transform().expect("the map is drawn").frame();
    let at = egui::pos2(
        frame.left() + 0.4 * frame.width(),
        frame.top() + 0.6 * frame.height(),
    );
    harness.hover_at(at);
    harness.step();
    harness.drag_at(at);
    harness.step();
    harness.drop_at(at);
    harness.step();
    let start = std::time::Instant::now();
    while panel(&mut harness).decoded().is_none() {
        assert!(
            start.elapsed().as_secs() < 60,
            "{title}: the click decoded nothing"
        );
        harness.step();
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let p = panel(&mut harness);
    let (z, decoded) = p.decoded().unwrap();
    let plane = p.map().plane().unwrap();
    assert_eq!(z, plane.latent_at(p.map().picked.unwrap()).as_slice());
    let again = p.source().unwrap().decode(z).unwrap();
    assert!(
        decoded.values == again.values,
        "{title}: the output of that latent"
    );
}

#[test]
fn every_tab_has_a_latent_map_that_decodes_a_click() {
    for (title, panel) in tabs() {
        map_in_tab(title, panel);
    }
}

#[test]
fn the_map_follows_the_model_on_show() {
    let (title, panel) = tabs()[1];
    let mut harness = common::window_sized(&models_dir(), [1500.0, 3200.0]);
    harness.run_steps(2);
    common::open_tab(&mut harness, title);
    harness.get_by_label("Latent map").click();
    let start = std::time::Instant::now();
    while panel(&mut harness).samples().is_none() {
        assert!(start.elapsed().as_secs() < 60);
        harness.step();
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let first = panel(&mut harness).samples().unwrap().latents.clone();
    // open the ablation as A: the map encodes the same held-out frames with it
    let other = models_dir().join("ablations/sps_vision_no_symmetry.safetensors");
    tab_mut::<latent_lab::sps_vision::view::VisionTab>(&mut harness)
        .models
        .files
        .checkpoint
        .text = other.display().to_string();
    harness.get_by_label("Open").click();
    let start = std::time::Instant::now();
    loop {
        harness.step();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let now = panel(&mut harness).samples().map(|s| s.latents.clone());
        if now.as_ref().is_some_and(|l| *l != first) {
            assert_eq!(now.unwrap().len(), first.len(), "the same held-out frames");
            break;
        }
        assert!(start.elapsed().as_secs() < 60, "the map kept the old model");
    }
}
