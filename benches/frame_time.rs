//! UI frame time of the Pitch tab with two models loaded (the shipped model as A, its
//! no-symmetry ablation as B, both decoded whenever the latent moves) while A trains in the
//! background and the note plays: the real App, driven headless by
//! egui_kittest, with training started from its own Train button. Prints p50/p95/max of the
//! time each frame takes to run (logic + layout + tessellation; no GPU in this harness).
//!
//! cargo bench --bench frame_time

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
        .with_size([1400.0, 1600.0])
        .build_eframe(|cc| App::new(cc, options, &latent_lab::registry::tabs()));
    harness.run_steps(3);
    harness.get_by_label("B = no symmetry").click();
    let opening = Instant::now();
    while !harness.state().tabs.iter().any(|t| {
        t.as_any()
            .downcast_ref::<latent_lab::sps_music::view::PitchTab>()
            .is_some_and(|p| p.spectrum(1).is_some())
    }) {
        assert!(
            opening.elapsed() < Duration::from_secs(60),
            "B did not open"
        );
        harness.step();
        std::thread::sleep(Duration::from_millis(10));
    }
    harness.get_by_label("Play note").click();
    harness.run_steps(2);
    harness.get_by_role_and_label(Role::Button, "Train").click();
    harness.run_steps(2);
    assert!(harness.state().tabs[0].busy(), "the training started");
    let mut idle = Vec::new();
    let mut training = Vec::new();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(40) {
        let t = Instant::now();
        harness.step();
        let ms = t.elapsed().as_secs_f64() * 1e3;
        let steps_done = harness.state().tabs[0].busy();
        if steps_done {
            training.push(ms)
        } else {
            idle.push(ms)
        }
        // a display refreshes every 16.7 ms; frames are not produced faster than that
        std::thread::sleep(Duration::from_millis(16).saturating_sub(t.elapsed()));
    }
    let report = |name: &str, v: &mut Vec<f64>| {
        if v.is_empty() {
            return;
        }
        v.sort_by(f64::total_cmp);
        let p = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
        println!(
            "{name}: {} frames, p50 {:.2} ms, p95 {:.2} ms, max {:.2} ms",
            v.len(),
            p(0.5),
            p(0.95),
            v[v.len() - 1]
        );
    };
    report(
        "frames while training (data rendering included)",
        &mut training,
    );
    report("frames while idle", &mut idle);
}
