//! The "3D" tab of the real App, driven headless with egui_kittest: turning the rotation
//! control swings the decoded ball around the scene as a rotation of space would.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod common;

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use latent_lab::app::App;
use latent_lab::sps_vision::data::{self, Camera};
use latent_lab::sps_vision::eval::rotate_world;
use latent_lab::sps_vision::view::VisionTab;

fn models_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models")
}

fn harness() -> Harness<'static, App> {
    common::window_sized(&models_dir(), [1400.0, 1100.0])
}

fn vision_tab<'h>(harness: &'h Harness<'static, App>) -> &'h VisionTab {
    common::tab(harness)
}

fn distance(a: (f32, f32), b: (f32, f32)) -> f32 {
    ((a.0 - b.0).powi(2) + (a.1 - b.1).powi(2)).sqrt()
}

#[test]
fn turning_the_rotation_control_by_90_degrees_rotates_the_decoded_ball() {
    let mut harness = harness();
    harness.run_steps(2);
    common::open_tab(&mut harness, "3D");
    let tab = vision_tab(&harness);
    let lab = tab
        .models
        .a
        .clone()
        .expect("models/sps_vision.safetensors loads");
    let cal = lab.calibration.clone();
    assert!(
        cal.is_fitted(),
        "the shipped model has its latent-to-position map"
    );
    // the tab says how far the latent's turning plane leans, as `eval` does
    let tilt = format!("leans {:.0}° from the floor", cal.tilts_deg().turn_plane);
    assert!(
        harness.query_by_label_contains(&tilt).is_some(),
        "no \"{tilt}\" in the tab"
    );
    let camera = Camera::standard();

    // before turning: the decoded ball sits where its position renders
    let z0 = tab.latent();
    let p0 = cal.position(&z0);
    let before = data::ball_centroid(tab.decoded.as_ref().unwrap()).expect("a ball is decoded");
    let render0 = data::ball_centroid(&data::render_frame(&camera, p0)).unwrap();
    assert!(
        distance(before, render0) < 4.0,
        "unturned: decoded ball at {before:?}, render at {render0:?}"
    );

    // the slider, dragged a quarter of its width to the right of 0 degrees
    common::drag_slider_to(&mut harness, "rotation about z2 (degrees)", 0.75);
    let angle = vision_tab(&harness).state.rotation_deg;
    assert!(
        (angle - 90.0).abs() < 3.0,
        "the control reads {angle} degrees"
    );
    // and exactly 90 degrees with the control's +90 button
    harness.get_by_label("+90°").click();
    harness.run_steps(3);
    let tab = vision_tab(&harness);
    let angle = tab.state.rotation_deg;
    assert_eq!(angle, 90.0);

    let after = data::ball_centroid(tab.decoded.as_ref().unwrap()).expect("a ball is decoded");
    let turned = rotate_world(
        p0,
        cal.world_centre(),
        angle.to_radians(),
        cal.same_handedness(),
    );
    let expected = data::ball_centroid(&data::render_frame(&camera, turned)).unwrap();
    assert!(
        distance(before, expected) > 5.0,
        "the test needs a rotation that moves the ball ({before:?} -> {expected:?})"
    );
    eprintln!(
        "before {before:?} (render {render0:?}); after {angle} degrees {after:?}, rotated position renders at {expected:?}: {:.2} px apart",
        distance(after, expected)
    );
    // "within a few pixels" of a 32x32 frame: 4 px
    assert!(
        distance(after, expected) < 4.0,
        "turned by {angle} degrees: decoded ball at {after:?}, a {angle}-degree rotation of its position renders at {expected:?}"
    );
}

/// The nearest of the render's keypoints to its ball, in pixels.
fn keypoint_to_ball(tab: &VisionTab) -> f32 {
    let ball = data::ball_centroid(tab.truth.as_ref().unwrap()).expect("a ball is rendered");
    let keypoints = tab.keypoints[1]
        .as_ref()
        .expect("the encoder has keypoints");
    keypoints
        .iter()
        .map(|&k| distance(k, ball))
        .fold(f32::INFINITY, f32::min)
}

#[test]
fn the_keypoint_overlay_follows_the_ball_as_the_latent_turns() {
    let mut harness = harness();
    harness.run_steps(2);
    common::open_tab(&mut harness, "3D");
    assert!(!vision_tab(&harness).state.show_keypoints);
    harness.get_by_label("show the encoder's keypoints").click();
    harness.run_steps(3);
    let tab = vision_tab(&harness);
    assert!(tab.state.show_keypoints);
    assert_eq!(tab.keypoints[0].as_ref().map(Vec::len), Some(8));
    let before = data::ball_centroid(tab.truth.as_ref().unwrap()).unwrap();
    let near = keypoint_to_ball(tab);
    assert!(near < 2.5, "no keypoint on the rendered ball: {near} px");

    harness.get_by_label("+90°").click();
    harness.run_steps(3);
    let tab = vision_tab(&harness);
    let after = data::ball_centroid(tab.truth.as_ref().unwrap()).unwrap();
    assert!(distance(before, after) > 5.0, "the ball did not move");
    let near = keypoint_to_ball(tab);
    assert!(near < 2.5, "no keypoint on the turned ball: {near} px");
}
