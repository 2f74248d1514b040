//! The Navigate panel hosted alone in an egui_kittest harness, on the shipped models: a click
//! on the map decodes exactly the latent under the pointer (the output equals what
//! `latent-lab decode` writes for those coordinates), a drawn path gives a strip whose ends
//! decode the path's ends, two picked samples give an interpolation between their latents,
//! and the local directions at the clicked point are orthonormal and ordered.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use latent_lab::app::explore::{ClickMode, LabSource};
use latent_lab::app::latent_map::Projection;
use latent_lab::app::{Explore, ExplorePanel, Shared};
use latent_lab::audio::engine::Playback;

fn model(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("models")
        .join(name)
}

struct Host {
    panel: ExplorePanel,
    shared: Shared,
}

/// The panel alone, as a tab embeds it: `logic` then `ui` every frame.
fn host(source: Arc<dyn Explore>) -> Harness<'static, Host> {
    let mut panel = ExplorePanel::new("test");
    panel.set_source(Some(source));
    let shared = Shared {
        audio: Playback::offline("tests have no sound card"),
        notices: Vec::new(),
        models_dir: model(""),
        train_threads: 1,
        speaking: None,
    };
    Harness::builder()
        .with_size([1200.0, 1600.0])
        .build_ui_state(
            |ui, host: &mut Host| {
                host.panel.logic(&mut host.shared);
                egui::ScrollArea::vertical().show(ui, |ui| host.panel.ui(ui, &mut host.shared));
            },
            Host { panel, shared },
        )
}

/// Run frames until `done` holds of the panel and its background work is over.
fn settle(harness: &mut Harness<'static, Host>, what: &str, done: impl Fn(&ExplorePanel) -> bool) {
    let start = Instant::now();
    loop {
        harness.step();
        let panel = &harness.state().panel;
        if done(panel) && !panel.busy() {
            break;
        }
        let notices: Vec<String> = harness
            .state()
            .shared
            .notices
            .iter()
            .map(|n| n.text.clone())
            .collect();
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "waiting for {what}: {} ({notices:?})",
            panel.status()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    harness.run_steps(2);
}

/// What `latent-lab decode MODEL` writes to .npy for one latent.
fn cli_decode(file: &Path, z: &[f32]) -> Vec<f32> {
    let dir = tempfile::tempdir().unwrap();
    let (latents, out) = (dir.path().join("z.npy"), dir.path().join("x.npy"));
    candle_core::Tensor::from_slice(z, (1, z.len()), &candle_core::Device::Cpu)
        .unwrap()
        .write_npy(&latents)
        .unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_latent-lab"))
        .arg("decode")
        .arg(file)
        .arg("--latents")
        .arg(&latents)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "decode: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    candle_core::Tensor::read_npy(&out)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap()
}

/// The screen position of map coordinates in the last frame drawn.
fn screen(harness: &Harness<'static, Host>, p: [f64; 2]) -> egui::Pos2 {
    let t = *harness
        .state()
        .panel
        .map()
        .transform()
        .expect("the map is drawn");
    t.position_from_point(&egui_plot::PlotPoint::new(p[0], p[1]))
}

/// Map coordinates of a screen position in the last frame drawn.
fn map_at(harness: &Harness<'static, Host>, pos: egui::Pos2) -> [f64; 2] {
    let t = *harness
        .state()
        .panel
        .map()
        .transform()
        .expect("the map is drawn");
    let v = t.value_from_position(pos);
    [v.x, v.y]
}

/// A point inside the map's frame, at fractions of its width and height from the top left.
fn in_frame(harness: &Harness<'static, Host>, fx: f32, fy: f32) -> egui::Pos2 {
    let t = harness
        .state()
        .panel
        .map()
        .transform()
        .expect("the map is drawn");
    let r = t.frame();
    egui::pos2(r.left() + fx * r.width(), r.top() + fy * r.height())
}

fn click(harness: &mut Harness<'static, Host>, pos: egui::Pos2) {
    harness.hover_at(pos);
    harness.step();
    harness.drag_at(pos);
    harness.step();
    harness.drop_at(pos);
    harness.step();
}

fn close(a: [f64; 2], b: [f64; 2], scale: f64) -> bool {
    (a[0] - b[0]).abs() <= 1e-4 * scale && (a[1] - b[1]).abs() <= 1e-4 * scale
}

/// The map's extent, for comparing map coordinates up to the screen's f32 rounding.
fn map_scale(harness: &Harness<'static, Host>) -> f64 {
    let t = harness.state().panel.map().transform().unwrap();
    let b = t.bounds();
    (b.max()[0] - b.min()[0]).abs() + (b.max()[1] - b.min()[1]).abs()
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (*x as f64) * (*y as f64))
        .sum()
}

/// Click inside the map; the decoded output must be `latent-lab decode` of exactly the
/// latent at the clicked coordinates, and the directions there orthonormal and ordered.
fn click_decodes_exactly(file: &Path, source: Arc<dyn Explore>) -> Harness<'static, Host> {
    let dims = source.dims();
    let mut harness = host(source);
    settle(&mut harness, "the samples", |p| p.samples().is_some());
    let samples = harness.state().panel.samples().unwrap().clone();
    eprintln!(
        "{}: {} samples, {}",
        file.display(),
        samples.latents.len(),
        harness.state().panel.status()
    );
    assert!(samples.latents.len() >= 100, "{}", samples.latents.len());
    // the samples sit where the map's plane projects them
    let plane = harness.state().panel.map().plane().unwrap().clone();
    assert_eq!(
        harness.state().panel.map().coords()[0],
        plane.project(&samples.latents[0])
    );

    let pos = in_frame(&harness, 0.37, 0.55);
    let expected = map_at(&harness, pos);
    click(&mut harness, pos);
    settle(&mut harness, "the decoded point", |p| {
        p.decoded().is_some() && p.directions().is_some()
    });
    let panel = &harness.state().panel;
    let picked = panel.map().picked.expect("the click is marked");
    assert!(
        close(picked, expected, map_scale(&harness)),
        "clicked at {expected:?}, the map read {picked:?}"
    );
    let (z, decoded) = panel.decoded().unwrap();
    assert_eq!(
        z,
        plane.latent_at(picked).as_slice(),
        "the latent of the clicked point"
    );
    let cli = cli_decode(file, z);
    assert_eq!(decoded.values.len(), cli.len());
    assert!(
        decoded.values == cli,
        "the panel's output differs from `latent-lab decode` at {z:?}"
    );

    // local directions at the clicked point: orthonormal, by singular value, shares sum to 1
    let dirs = panel.directions().unwrap();
    assert_eq!(dirs.at, z);
    assert_eq!(dirs.list.len(), dims);
    for (i, a) in dirs.list.iter().enumerate() {
        for (j, b) in dirs.list.iter().enumerate() {
            let expected = if i == j { 1.0 } else { 0.0 };
            let d = dot(&a.direction, &b.direction);
            assert!((d - expected).abs() < 1e-5, "directions {i}, {j}: {d}");
        }
    }
    assert!(
        dirs.list
            .windows(2)
            .all(|w| w[0].singular_value >= w[1].singular_value),
        "{:?}",
        dirs.list
            .iter()
            .map(|d| d.singular_value)
            .collect::<Vec<_>>()
    );
    assert!(
        dirs.list[0].singular_value > 0.0,
        "the decoder changes somewhere"
    );
    let shares: f64 = dirs.list.iter().map(|d| d.share).sum();
    assert!((shares - 1.0).abs() < 1e-9, "{shares}");
    // each traversal is centred on the clicked point
    for (_, strip) in &dirs.traversals {
        assert_eq!(
            strip.decoded[strip.decoded.len() / 2].values,
            decoded.values
        );
    }
    harness
}

/// Drag a path across the map; the strip's ends decode the path's ends.
fn path_strip_ends_decode_the_path_ends(file: &Path, harness: &mut Harness<'static, Host>) {
    let plane = harness.state().panel.map().plane().unwrap().clone();
    let (a, m, b) = (
        in_frame(harness, 0.1, 0.3),
        in_frame(harness, 0.3, 0.8),
        in_frame(harness, 0.5, 0.45),
    );
    let (start, end) = (map_at(harness, a), map_at(harness, b));
    harness.hover_at(a);
    harness.step();
    harness.drag_at(a);
    harness.step();
    for p in [a.lerp(m, 0.5), m, m.lerp(b, 0.5), b] {
        harness.hover_at(p);
        harness.step();
    }
    harness.drop_at(b);
    harness.step();
    settle(harness, "the path's strip", |p| p.path_strip().is_some());
    let panel = &harness.state().panel;
    let path = &panel.map().path;
    assert!(path.len() >= 4, "{path:?}");
    let scale = map_scale(harness);
    assert!(close(path[0], start, scale), "{:?} vs {start:?}", path[0]);
    assert!(close(*path.last().unwrap(), end, scale));
    let strip = panel.path_strip().unwrap();
    assert_eq!(strip.latents.len(), latent_lab::app::latent_map::STRIP_LEN);
    let (first, last) = (&strip.latents[0], strip.latents.last().unwrap());
    assert_eq!(*first, plane.latent_at(path[0]));
    assert_eq!(*last, plane.latent_at(*path.last().unwrap()));
    assert!(strip.decoded[0].values == cli_decode(file, first));
    assert!(strip.decoded.last().unwrap().values == cli_decode(file, last));
}

#[test]
fn vision_map_click_path_and_interpolation() {
    let file = model("sps_vision.safetensors");
    let source = LabSource::<latent_lab::sps_vision::Lab>::open(&file).unwrap();
    let mut harness = click_decodes_exactly(&file, source.clone());
    path_strip_ends_decode_the_path_ends(&file, &mut harness);

    // pick A and B by clicking on two samples: the interpolation runs between their latents
    harness.get_by_label("Pick A and B").click();
    harness.step();
    assert_eq!(harness.state().panel.click_mode(), ClickMode::PickA);
    let samples = harness.state().panel.samples().unwrap().clone();
    let coords = harness.state().panel.map().coords().to_vec();
    // two samples in the left half of the map, clear of the legend (top right)
    let frame = *harness.state().panel.map().transform().unwrap().frame();
    let clear: Vec<usize> = (0..coords.len())
        .filter(|&i| {
            let p = screen(&harness, coords[i]);
            p.x > frame.left() + 0.03 * frame.width()
                && p.x < frame.center().x
                && p.y > frame.top() + 0.05 * frame.height()
                && p.y < frame.bottom() - 0.05 * frame.height()
        })
        .collect();
    assert!(clear.len() > 2, "samples in the left half: {clear:?}");
    let (ia, ib) = (clear[0], *clear.last().unwrap());
    let at = screen(&harness, coords[ia]);
    click(&mut harness, at);
    assert_eq!(harness.state().panel.click_mode(), ClickMode::PickB);
    let at = screen(&harness, coords[ib]);
    click(&mut harness, at);
    settle(&mut harness, "the interpolation", |p| {
        p.interpolation().is_some()
    });
    let interp = harness.state().panel.interpolation().unwrap();
    // a click picks the nearest sample: the one clicked, or one drawn on the same pixel
    let near = |i: usize, picked: usize| {
        let (p, q) = (coords[i], coords[picked]);
        close(p, q, 100.0 * map_scale(&harness))
    };
    assert!(
        near(ia, interp.a) && near(ib, interp.b),
        "{} {}",
        interp.a,
        interp.b
    );
    assert_eq!(interp.linear.latents[0], samples.latents[interp.a]);
    assert_eq!(
        *interp.linear.latents.last().unwrap(),
        samples.latents[interp.b]
    );
    assert!(interp.linear.decoded[0].values == cli_decode(&file, &samples.latents[interp.a]));
    let (name, prior) = interp.prior.as_ref().expect("SPS has a symmetry path");
    assert!(name.contains("symmetry"), "{name}");
    assert_eq!(prior.latents[0], samples.latents[interp.a]);
    assert_eq!(*prior.latents.last().unwrap(), samples.latents[interp.b]);

    // on two chosen axes, a click moves those two and holds the third at the samples' mean
    harness
        .state_mut()
        .panel
        .set_projection(Projection::Axes { x: 0, y: 2 });
    harness.run_steps(2);
    let plane = harness.state().panel.map().plane().unwrap().clone();
    let pos = in_frame(&harness, 0.25, 0.6);
    let expected = map_at(&harness, pos);
    click(&mut harness, pos);
    settle(&mut harness, "the point on the axes", |p| {
        p.decoded().is_some_and(|(z, _)| z[1] == plane.origin[1])
    });
    let (z, decoded) = harness.state().panel.decoded().unwrap();
    let picked = harness.state().panel.map().picked.unwrap();
    assert!(close(picked, expected, map_scale(&harness)));
    assert_eq!(z, plane.latent_at(picked).as_slice());
    assert_eq!(
        (plane.u.clone(), plane.v.clone()),
        (vec![1.0, 0.0, 0.0], vec![0.0, 0.0, 1.0])
    );
    assert_eq!(z[1], plane.origin[1], "z2 held at the samples' mean");
    assert!(decoded.values == cli_decode(&file, z));
}

#[test]
fn music_map_click_path_and_play() {
    let file = model("sps_music.safetensors");
    let source = LabSource::<latent_lab::sps_music::Lab>::open(&file).unwrap();
    let mut harness = click_decodes_exactly(&file, source);
    path_strip_ends_decode_the_path_ends(&file, &mut harness);
    // Play renders the decoded note off the UI thread and queues it on the audio engine
    let before = harness
        .state_mut()
        .shared
        .audio
        .controller()
        .clip_samples_queued();
    // the first Play is the decoded point's (the path's strip has one too)
    harness.get_all_by_label("Play").next().unwrap().click();
    settle(&mut harness, "the sound", |_| true);
    let after = harness
        .state_mut()
        .shared
        .audio
        .controller()
        .clip_samples_queued();
    assert!(
        after > before,
        "nothing was queued to play ({before} -> {after})"
    );

    // the Export row writes what is on show: the map as SVG, the point as PNG, and the
    // interpolation's sound as WAV (the linear strip, then the symmetry's)
    harness.state_mut().panel.pick_pair(0, 300);
    settle(&mut harness, "the interpolation", |p| {
        p.interpolation().is_some()
    });
    let dir = tempfile::tempdir().unwrap();
    for (button, name) in [
        ("Map", "map.svg"),
        ("Point", "point.png"),
        ("Interpolation", "interpolation.wav"),
        ("Directions", "directions.png"),
    ] {
        let out = dir.path().join(name);
        harness.state_mut().panel.set_export_path(&out);
        harness.get_by_label(button).click();
        settle(&mut harness, name, |_| out.exists());
        let wrote = format!("wrote {}", out.display());
        assert!(
            harness
                .state()
                .shared
                .notices
                .iter()
                .any(|n| n.text == wrote),
            "{name}"
        );
    }
    let svg = std::fs::read_to_string(dir.path().join("map.svg")).unwrap();
    assert!(
        svg.contains("Violin"),
        "the map's legend names the instruments"
    );
    let point = image::open(dir.path().join("point.png")).unwrap();
    assert!(point.width() > 100);
    let (audio, rate) =
        latent_lab::audio::wav::read_mono(&dir.path().join("interpolation.wav")).unwrap();
    // two strips of nine notes of 2560 samples at 16 kHz
    assert_eq!(rate, 16_000);
    assert_eq!(audio.len(), 2 * 9 * 2560);
    assert!(audio.iter().any(|s| s.abs() > 0.01));
    assert!(
        image::open(dir.path().join("directions.png"))
            .unwrap()
            .height()
            > 300
    );
}

#[test]
fn every_other_lab_decodes_its_clicked_point_exactly() {
    for (name, open) in [
        (
            "v3_digits.safetensors",
            LabSource::<latent_lab::v3::Lab>::open as latent_lab::registry::OpenExplore,
        ),
        (
            "v3_notes.safetensors",
            LabSource::<latent_lab::v3::Lab>::open,
        ),
        (
            "ievae_digits.safetensors",
            LabSource::<latent_lab::ievae::Lab>::open,
        ),
        (
            "vae_relevance.safetensors",
            LabSource::<latent_lab::relevance::Lab>::open,
        ),
    ] {
        let file = model(name);
        let source = open(&file).unwrap();
        let started = Instant::now();
        let samples = source.samples().unwrap();
        eprintln!(
            "{name}: {} samples encoded in {:.0} ms (inputs cached after the first time)",
            samples.latents.len(),
            started.elapsed().as_secs_f64() * 1e3
        );
        let mut harness = click_decodes_exactly(&file, source);
        path_strip_ends_decode_the_path_ends(&file, &mut harness);
    }
}

#[test]
fn frames_stay_cheap_with_everything_on_show() {
    let file = model("sps_vision.safetensors");
    let source = LabSource::<latent_lab::sps_vision::Lab>::open(&file).unwrap();
    let mut harness = click_decodes_exactly(&file, source);
    path_strip_ends_decode_the_path_ends(&file, &mut harness);
    harness.state_mut().panel.pick_pair(0, 100);
    settle(&mut harness, "the interpolation", |p| {
        p.interpolation().is_some()
    });
    let mut times: Vec<f64> = (0..60)
        .map(|_| {
            let t = Instant::now();
            harness.step();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    let (p50, p95) = (times[30], times[57]);
    eprintln!(
        "frame with map, point, strip, interpolation, directions: p50 {p50:.2} ms, p95 {p95:.2} ms"
    );
    // a 60 Hz display gives a frame 16.7 ms; this harness also lays out and tessellates
    assert!(p50 < 16.0, "p50 {p50:.2} ms");
}
