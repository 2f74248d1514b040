//! UI frame time of the "3D" tab with two models loaded (the shipped model as A, its
//! no-symmetry ablation as B, both decoded every frame) while A trains in the background and
//! the rotation control is being turned: the real App, driven headless by egui_kittest, training started
//! from the tab's own Train button, one rotation-slider drag step per frame (so every frame
//! decodes a new latent and renders the ground truth). Prints p50/p95/max of the time each
//! frame takes to run (logic + layout + tessellation; no GPU in this harness).
//!
//! cargo bench --bench frame_time_3d

use std::time::{Duration, Instant};

use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use latent_lab::app::{App, AppOptions};

fn main() {
    let models = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models");
    let options = AppOptions {
        models_dir: models,
        open_audio: false,
        train_threads: 1,
    };
    let mut harness: Harness<'static, App> = Harness::builder()
        .with_size([1400.0, 1100.0])
        .build_eframe(|cc| App::new(cc, options, &latent_lab::registry::tabs()));
    harness.run_steps(3);
    harness.get_by_label("3D").click();
    harness.run_steps(3);
    harness.get_by_label("B = no symmetry").click();
    let opening = Instant::now();
    while !harness.state().tabs.iter().any(|t| {
        t.as_any()
            .downcast_ref::<latent_lab::sps_vision::view::VisionTab>()
            .is_some_and(|v| v.decoded_b.is_some())
    }) {
        assert!(
            opening.elapsed() < Duration::from_secs(60),
            "B did not open"
        );
        harness.step();
        std::thread::sleep(Duration::from_millis(10));
    }
    harness.get_by_role_and_label(Role::Button, "Train").click();
    harness.run_steps(2);
    let rect = harness
        .get_by_role_and_label(Role::Slider, "rotation about z2 (degrees)")
        .rect();
    harness.drag_at(rect.center());
    let mut frames = Vec::new();
    let start = Instant::now();
    let mut k = 0usize;
    while start.elapsed() < Duration::from_secs(40) {
        // sweep the rotation back and forth across the slider
        let phase = (k % 200) as f32 / 200.0;
        let f = if phase < 0.5 {
            phase * 2.0
        } else {
            2.0 - phase * 2.0
        };
        harness.hover_at(egui::pos2(
            rect.left() + (0.05 + 0.9 * f) * rect.width(),
            rect.center().y,
        ));
        k += 1;
        let t = Instant::now();
        harness.step();
        frames.push(t.elapsed().as_secs_f64() * 1e3);
        // a display refreshes every 16.7 ms; frames are not produced faster than that
        std::thread::sleep(Duration::from_millis(16).saturating_sub(t.elapsed()));
    }
    frames.sort_by(f64::total_cmp);
    let p = |q: f64| frames[((frames.len() - 1) as f64 * q).round() as usize];
    println!(
        "3D tab, rotating while training: {} frames, p50 {:.2} ms, p95 {:.2} ms, max {:.2} ms",
        frames.len(),
        p(0.5),
        p(0.95),
        frames[frames.len() - 1]
    );
}
