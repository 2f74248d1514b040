//! The "3D" tab of the real App, driven headless with egui_kittest: turning the rotation
//! control swings the decoded ball around the scene as a rotation of space would.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod common;

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use latent_lab::app::App;
use latent_lab::sps_vision::data::{self, Camera};
use latent_lab::sps_vision::eval::rotate_world;
use latent_lab::sps_vision::view::{PlotAxes, VisionTab};

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

/// The trajectory plots draw the world by default, the throw's true path beside the model's
/// reading of it, and the ring the rotation control turns the ball through; one click draws
/// them in A's latent instead.
#[test]
fn the_trajectory_plots_draw_the_world_and_the_ring_the_rotation_control_turns_through() {
    let mut harness = harness();
    harness.run_steps(2);
    common::open_tab(&mut harness, "3D");
    common::run_until(&mut harness, 60, "the test throw is encoded", |h| {
        vision_tab(h).throw_view.is_some()
    });
    let tab = vision_tab(&harness);
    assert_eq!(tab.state.plot_axes, PlotAxes::World);
    assert!(harness.query_by_label("from the side (x, y)").is_some());
    let cal = tab.models.a.as_ref().unwrap().calibration.clone();
    let rings = tab.turn_rings();
    assert_eq!(rings.len(), 1, "A's ring only, with no B open");
    let (ring, now) = (&rings[0].points, &rings[0].now);
    // the ring starts at the sliders' latent, and the diamond is the ball A's frames show
    assert_eq!(ring[0], cal.position(&tab.state.latent));
    assert_eq!(*now, cal.position(&tab.latent()));
    // a leaning turning plane lifts and lowers the ball as it turns: the ring's span in
    // height is its span across the floor times the plane's slope
    let span = |k: usize| {
        let v: Vec<f32> = ring.iter().map(|p| p[k]).collect();
        v.iter().cloned().fold(f32::MIN, f32::max) - v.iter().cloned().fold(f32::MAX, f32::min)
    };
    let tilt = cal.tilts_deg().turn_plane;
    eprintln!(
        "ring spans x {:.2}, y {:.2}, z {:.2}; plane leans {tilt:.0}°",
        span(0),
        span(1),
        span(2)
    );
    assert!(
        tilt < 10.0 || span(1) > 0.2 * span(0).max(span(2)),
        "a plane leaning {tilt:.0}° with a level ring"
    );

    harness.get_by_label("A's latent").click();
    harness.run_steps(3);
    assert_eq!(vision_tab(&harness).state.plot_axes, PlotAxes::Latent);
    assert!(
        harness
            .query_by_label("A's latent from the side (z1, z2)")
            .is_some()
    );
    assert!(harness.query_by_label("from the side (x, y)").is_none());
}
