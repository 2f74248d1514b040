//! Every tab trains through the same panel: Train starts the family's job, the progress bar
//! moves, Stop ends it with the weights reached, and Save writes them.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod common;

use std::time::{Duration, Instant};

use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};
use latent_lab::app::App;

/// Steps of each run: enough that Stop comes before the end.
const STEPS: u64 = 100_000;

fn wait_for(harness: &mut Harness<'static, App>, what: &str, done: impl Fn(&mut App) -> bool) {
    let start = Instant::now();
    while !done(harness.state_mut()) {
        let notices = common::notices(harness);
        assert!(
            // a guard against a hang, not a speed bar: a tab's data is made before its first
            // step, and on two busy cores that alone can take minutes
            start.elapsed() < Duration::from_secs(600),
            "{what}: timed out; notices {notices:?}"
        );
        harness.step();
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn train_stop_save(title: &str, checkpoint: &str) {
    let models = tempfile::tempdir().unwrap();
    let mut harness = common::window_sized(models.path(), [1400.0, 2000.0]);
    harness.run_steps(2);
    common::open_tab(&mut harness, title);
    let active = harness.state().active;
    assert_eq!(harness.state().tabs[active].title(), title);
    let panel = |app: &mut App| {
        let active = app.active;
        app.tabs[active].training_panel().unwrap().run.is_some()
    };
    assert!(!panel(harness.state_mut()), "{title}: no run before Train");
    harness.state_mut().tabs[active]
        .training_panel()
        .unwrap()
        .settings
        .steps = STEPS;
    harness.get_by_label("Train").click();
    harness.run_steps(2);
    assert!(
        harness.get_by_label("Train").accesskit_node().is_disabled(),
        "{title}: Train is greyed out while training"
    );
    // progress: steps done, shown in the bar
    wait_for(&mut harness, &format!("{title}: first steps"), |app| {
        let active = app.active;
        app.tabs[active]
            .training_panel()
            .unwrap()
            .run
            .as_ref()
            .is_some_and(|r| r.step >= 2 || !r.is_running())
    });
    harness.run_steps(1);
    assert!(
        harness
            .query_by_label_contains(&format!("/{STEPS} · "))
            .is_some(),
        "{title}: the progress bar shows step/total"
    );
    harness.get_by_label("Stop").click();
    wait_for(&mut harness, &format!("{title}: stop"), |app| {
        let active = app.active;
        !app.tabs[active].training_panel().unwrap().is_running()
    });
    harness.run_steps(2);
    {
        let app = harness.state_mut();
        let active = app.active;
        let run = app.tabs[active]
            .training_panel()
            .unwrap()
            .run
            .as_ref()
            .unwrap();
        let ended = run.ended.clone().unwrap();
        assert!(
            ended.as_ref().is_ok_and(|s| s.starts_with("stopped")),
            "{title}: Stop stops the run ({ended:?})"
        );
        assert!(run.step < STEPS, "{title}: stopped before the end");
    }
    assert!(
        !harness.get_by_label("Train").accesskit_node().is_disabled(),
        "{title}: Train is offered again"
    );
    // the weights reached are the tab's model: Save writes them where the field says
    let saved = models.path().join(checkpoint);
    harness.get_by_label("Save").click();
    wait_for(&mut harness, &format!("{title}: save"), |_| {
        saved.is_file() && latent_lab::nn::checkpoint::load(&saved).is_ok_and(|c| c.meta.steps >= 2)
    });
}

#[test]
fn relevance_tab_trains_stops_and_saves_through_the_panel() {
    train_stop_save("Relevance", "vae_relevance.safetensors");
}

#[test]
fn class_pose_tab_trains_stops_and_saves_through_the_panel() {
    train_stop_save("Class x Pose", latent_lab::ievae::DEFAULT_FILE);
}

#[test]
fn pitch_tab_trains_stops_and_saves_through_the_panel() {
    train_stop_save("Pitch", "sps_music.safetensors");
}

#[test]
fn codebook_tab_trains_stops_and_saves_through_the_panel() {
    train_stop_save("Codebook", "v3_notes.safetensors");
}

#[test]
fn vision_tab_trains_stops_and_saves_through_the_panel() {
    train_stop_save("3D", "sps_vision.safetensors");
}

/// Choosing a preset sets the steps to that preset's own, as `latent-lab train` would run it;
/// the steps can still be changed after.
#[test]
fn choosing_a_preset_sets_its_own_steps() {
    let models = tempfile::tempdir().unwrap();
    let mut harness = common::window_sized(models.path(), [1400.0, 2000.0]);
    harness.run_steps(2);
    common::open_tab(&mut harness, "Pitch");
    let active = harness.state().active;
    let steps = |app: &mut App| app.tabs[active].training_panel().unwrap().settings.steps;
    let choose = |harness: &mut Harness<'static, App>, to: &str| {
        harness.get_by_label("preset").click();
        harness.run_steps(2);
        harness.get_by_label(to).click();
        harness.run_steps(2);
    };
    choose(&mut harness, "generic");
    let generic = latent_lab::sps_music::train::TrainConfig::preset("generic").unwrap();
    assert_eq!(steps(harness.state_mut()), generic.steps);
    assert_ne!(
        generic.steps, 1000,
        "the test needs presets of different lengths"
    );
    choose(&mut harness, "fast");
    assert_eq!(steps(harness.state_mut()), 1000);
}

/// A SoundFont without General MIDI instruments, given as the Pitch tab's data, ends the run
/// before its first step, and the window says why.
#[test]
fn the_pitch_tab_refuses_a_soundfont_without_general_midi_instruments() {
    let models = tempfile::tempdir().unwrap();
    let mut harness = common::window_sized(models.path(), [1400.0, 2000.0]);
    harness.run_steps(2);
    common::open_tab(&mut harness, "Pitch");
    let active = harness.state().active;
    let font = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/no_general_midi.sf2"
    );
    harness.state_mut().tabs[active]
        .training_panel()
        .unwrap()
        .settings
        .data = format!("soundfont:{font}");
    harness.get_by_label("Train").click();
    let ended = |app: &mut App| {
        let active = app.active;
        let panel = app.tabs[active].training_panel().unwrap();
        panel.run.as_ref().and_then(|r| r.ended.clone())
    };
    wait_for(&mut harness, "the refusal", |app| ended(app).is_some());
    harness.run_steps(2);
    let refused = ended(harness.state_mut()).unwrap().unwrap_err();
    assert!(
        refused.contains("no_general_midi.sf2") && refused.contains("not a General MIDI SoundFont"),
        "{refused}"
    );
    assert!(
        harness
            .query_all_by_label_contains("not a General MIDI SoundFont")
            .next()
            .is_some(),
        "the window shows why; notices {:?}",
        common::notices(&harness)
    );
}
