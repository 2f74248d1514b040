//! The real App, driven headless with egui_kittest: what a person does with the mouse, and
//! what they would hear.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod common;

use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use latent_lab::app::App;
use latent_lab::audio::dsp;

use common::drag_slider_to;

fn models_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models")
}

fn harness() -> Harness<'static, App> {
    common::window_sized(&models_dir(), [1400.0, 1000.0])
}

/// The pitch (MIDI) of what the offline audio engine plays now.
fn heard_pitch(harness: &mut Harness<'static, App>) -> f32 {
    let audio = &mut harness.state_mut().shared.audio;
    let rate = audio.controller().sample_rate() as f32;
    // let the glide settle, then listen
    let _ = audio.render_offline(4800);
    let samples = audio.render_offline(9600).expect("offline audio in tests");
    let f = dsp::yin(&samples, rate, 40.0, 2000.0, 0.2).expect("a pitched note is playing");
    dsp::hz_to_midi(f)
}

/// The window on the Pitch tab, its note playing.
fn playing() -> Harness<'static, App> {
    let mut harness = harness();
    harness.run_steps(2);
    assert!(harness.state().tabs[0].title() == "Pitch");
    harness.get_by_label("Play note").click();
    harness.run_steps(2);
    harness
}

#[test]
fn dragging_the_pitch_slider_up_raises_the_pitch_heard() {
    let mut harness = playing();

    drag_slider_to(&mut harness, "pitch latent", 0.2);
    let low = heard_pitch(&mut harness);
    drag_slider_to(&mut harness, "pitch latent", 0.5);
    let mid = heard_pitch(&mut harness);
    drag_slider_to(&mut harness, "pitch latent", 0.8);
    let high = heard_pitch(&mut harness);
    assert!(
        mid > low + 2.0 && high > mid + 2.0,
        "pitch heard: {low:.2} -> {mid:.2} -> {high:.2} (MIDI)"
    );
}

fn rms(samples: &[f32]) -> f32 {
    (samples.iter().map(|s| s * s).sum::<f32>() / samples.len().max(1) as f32).sqrt()
}

#[test]
fn play_sounds_the_note_and_stop_silences_it() {
    let mut harness = harness();
    harness.run_steps(2);
    let audio = &mut harness.state_mut().shared.audio;
    let before = audio.render_offline(4800).expect("offline audio in tests");
    assert!(rms(&before) < 1e-6, "sound before Play");
    harness.get_by_label("Play note").click();
    harness.run_steps(2);
    let audio = &mut harness.state_mut().shared.audio;
    let _ = audio.render_offline(960);
    let playing = audio.render_offline(4800).expect("offline");
    assert!(
        rms(&playing) > 0.01,
        "Play gives no sound (rms {})",
        rms(&playing)
    );
    harness.get_by_label("Stop note").click();
    harness.run_steps(2);
    let audio = &mut harness.state_mut().shared.audio;
    let _ = audio.render_offline(4800);
    let rest = audio.render_offline(4800).expect("offline");
    assert!(
        rest.iter().all(|s| s.abs() < 1e-4),
        "the note goes on after Stop"
    );
}

/// The loudness (rms) of the note playing now, once the gain has settled.
fn loudness(harness: &mut Harness<'static, App>) -> f32 {
    let audio = &mut harness.state_mut().shared.audio;
    let _ = audio.render_offline(4800);
    rms(&audio.render_offline(9600).expect("offline audio in tests"))
}

#[test]
fn the_volume_slider_sets_the_loudness_of_the_note_playing() {
    let mut harness = playing();
    // only the volume moves: the latent, and so the note, stay as they are
    drag_slider_to(&mut harness, "volume", 0.1);
    let quiet = loudness(&mut harness);
    drag_slider_to(&mut harness, "volume", 0.9);
    let loud = loudness(&mut harness);
    assert!(quiet > 1e-4, "the quiet note is still heard (rms {quiet})");
    assert!(
        loud > 3.0 * quiet,
        "the note did not get louder with the volume: rms {quiet} at 0.1, {loud} at 0.9"
    );
    drag_slider_to(&mut harness, "volume", 0.1);
    let quiet_again = loudness(&mut harness);
    assert!(
        quiet_again < loud / 3.0,
        "the note did not get quieter with the volume: rms {loud} at 0.9, {quiet_again} at 0.1"
    );
}

mod class_pose {
    use super::*;
    use latent_lab::digits::classifier::DigitClassifier;
    use latent_lab::ievae::view::ClassPoseTab;

    fn open_tab() -> Harness<'static, App> {
        let mut harness = harness();
        harness.run_steps(2);
        common::open_tab(&mut harness, "Class x Pose");
        harness
    }

    fn tab<'h>(harness: &'h Harness<'static, App>) -> &'h ClassPoseTab {
        common::tab(harness)
    }

    /// With a pose fixed (set on the sliders), each class button yields a digit that the
    /// independent classifier reads as that class, and the pose stays where it was.
    #[test]
    fn each_class_button_draws_that_class_in_the_same_pose() {
        let mut harness = open_tab();
        assert!(
            tab(&harness).models.a.is_some(),
            "the shipped IE-VAE is loaded"
        );
        drag_slider_to(&mut harness, "z0", 0.7);
        drag_slider_to(&mut harness, "z1", 0.3);
        let pose = tab(&harness).state.pose.clone();
        assert!(
            pose[0] > 0.5 && pose[1] < -0.5,
            "the sliders moved the pose: {pose:?}"
        );
        let judge =
            DigitClassifier::load(&models_dir().join("digit_classifier.safetensors")).unwrap();
        let mut read = Vec::new();
        for c in 0..10u8 {
            harness
                .get_by_role_and_label(Role::Button, &c.to_string())
                .click();
            harness.run_steps(3);
            let t = tab(&harness);
            assert_eq!(t.state.class, c as usize);
            assert_eq!(t.state.pose, pose, "a class button moved the pose");
            let image = t.decoded_image().unwrap().to_vec();
            read.push(judge.predict(&image).unwrap()[0]);
        }
        assert_eq!(
            read,
            (0..10).collect::<Vec<u8>>(),
            "classes read from the decoded digits"
        );
    }

    /// A digit drawn with the mouse is analysed; a blank canvas says so and shows no class.
    #[test]
    fn drawing_a_one_reads_one_and_a_blank_canvas_is_handled() {
        let mut harness = open_tab();
        // nothing drawn yet: asking for an analysis of the blank canvas is harmless
        harness.state_mut().tabs.iter_mut().for_each(|t| {
            if let Some(tab) = t.as_any_mut().downcast_mut::<ClassPoseTab>() {
                tab.draw_stroke(&[]);
            }
        });
        harness.run_steps(3);
        assert!(tab(&harness).analysis().is_none());
        harness.get_by_label("the canvas is blank: draw a digit");

        let rect = harness.get_by_label("drawing canvas").rect();
        let at = |x: f32, y: f32| {
            egui::pos2(
                rect.left() + x * rect.width(),
                rect.top() + y * rect.height(),
            )
        };
        harness.drag_at(at(0.5, 0.15));
        harness.step();
        for k in 1..=8 {
            harness.hover_at(at(0.5, 0.15 + 0.7 * k as f32 / 8.0));
            harness.step();
        }
        harness.drop_at(at(0.5, 0.85));
        harness.run_steps(3);
        let a = tab(&harness).analysis().expect("the drawing was analysed");
        let best = a
            .probabilities
            .iter()
            .enumerate()
            .max_by(|x, y| x.1.total_cmp(y.1))
            .unwrap()
            .0;
        assert_eq!(
            best, 1,
            "q(y|x) of a vertical stroke: {:?}",
            a.probabilities
        );
        assert_eq!(a.carried.len(), 10);

        harness.get_by_label("Clear drawing").click();
        harness.run_steps(3);
        assert!(tab(&harness).analysis().is_none());
    }
}

/// Every tab opens its model at start; only the open tab's notice reaches the status bar,
/// while an error from a hidden tab does, saying which tab it comes from.
#[test]
fn the_status_bar_speaks_for_the_open_tab_and_for_errors_from_any() {
    let mut harness = harness();
    harness.run_steps(2);
    let hidden = harness
        .state()
        .shared
        .notices
        .iter()
        .rfind(|n| n.tab == Some("3D") && !n.loud)
        .map(|n| n.text.clone())
        .expect("the 3D tab says which model it opened");
    assert!(
        harness.query_by_label_contains(&hidden).is_none(),
        "the Pitch tab's status bar shows the 3D tab's {hidden:?}"
    );
    let shared = &mut harness.state_mut().shared;
    shared.speaking = Some("3D");
    shared.error("cannot read throw.png");
    shared.speaking = None;
    harness.run_steps(2);
    assert!(
        harness
            .query_by_label("3D: cannot read throw.png")
            .is_some()
    );
}
