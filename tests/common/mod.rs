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
