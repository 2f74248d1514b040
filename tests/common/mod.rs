//! What the window tests share: the app, headless, with a given models folder.
#![allow(dead_code)] // each test file uses some of these

use std::path::Path;

use egui_kittest::Harness;
use latent_lab::app::{App, AppOptions};

/// The whole app with the registry's tabs, no sound card, one training thread.
pub fn window(models: &Path) -> Harness<'static, App> {
    window_sized(models, [1400.0, 1000.0])
}

/// The same in a window of `size` points: a tall one shows a tab's whole column, curves and
/// files panel included, without scrolling.
pub fn window_sized(models: &Path, size: [f32; 2]) -> Harness<'static, App> {
    let models = models.to_owned();
    Harness::builder().with_size(size).build_eframe(move |cc| {
        App::new(
            cc,
            AppOptions {
                models_dir: models.clone(),
                open_audio: false,
                train_threads: 1,
            },
            &latent_lab::registry::tabs(),
        )
    })
}

/// Switch to the tab titled `title` and run frames until no tab has background work: a click
/// lands where its widget was drawn in the last frame, and work that finishes in between
/// (the 3D tab's test throw, rolled out when the tab opens) moves the layout under it.
pub fn open_tab(harness: &mut Harness<'static, App>, title: &str) {
    use egui_kittest::kittest::Queryable;
    harness.get_by_label(title).click();
    harness.run_steps(3);
    settle(harness, 120);
}

/// The texts of the status bar's notices, for failure messages.
pub fn notices(harness: &Harness<'static, App>) -> Vec<String> {
    harness
        .state()
        .shared
        .notices
        .iter()
        .map(|n| n.text.clone())
        .collect()
}

/// Drag the slider labelled `label` from its middle to `fraction` of its width.
pub fn drag_slider_to(harness: &mut Harness<'static, App>, label: &str, fraction: f32) {
    use egui_kittest::kittest::Queryable;
    let rect = harness
        .get_by_role_and_label(egui::accesskit::Role::Slider, label)
        .rect();
    let from = rect.center();
    let to = egui::pos2(rect.left() + fraction * rect.width(), rect.center().y);
    harness.drag_at(from);
    harness.step();
    harness.hover_at(to);
    harness.step();
    harness.drop_at(to);
    harness.run_steps(3);
}

/// Run frames until `done` holds (background work such as opening a model), at most `secs`.
pub fn run_until(
    harness: &mut Harness<'static, App>,
    secs: u64,
    what: &str,
    mut done: impl FnMut(&Harness<'static, App>) -> bool,
) {
    let start = std::time::Instant::now();
    while !done(harness) {
        assert!(
            start.elapsed().as_secs() < secs,
            "{what}: not done after {secs} s; notices: {:?}",
            notices(harness)
        );
        harness.step();
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    harness.run_steps(2);
}

/// Run frames until no tab has background work (a model loading, a throw rolling out), so
/// the layout a test clicks on no longer moves; at most `secs`.
pub fn settle(harness: &mut Harness<'static, App>, secs: u64) {
    run_until(harness, secs, "background work", |h| {
        !h.state().tabs.iter().any(|t| t.busy())
    });
}

/// The window's tab of type `T`.
pub fn tab<'h, T: 'static>(harness: &'h Harness<'static, App>) -> &'h T {
    harness
        .state()
        .tabs
        .iter()
        .find_map(|t| t.as_any().downcast_ref::<T>())
        .expect("the tab is in the window")
}

/// The window's tab of type `T`, to change.
pub fn tab_mut<'h, T: 'static>(harness: &'h mut Harness<'static, App>) -> &'h mut T {
    harness
        .state_mut()
        .tabs
        .iter_mut()
        .find_map(|t| t.as_any_mut().downcast_mut::<T>())
        .expect("the tab is in the window")
}
