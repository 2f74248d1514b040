//! SPS vision: malformed data folders are refused naming the file, the official folder format
//! round-trips, and the command line's figures and metrics work end to end.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::process::Command;

use latent_lab::sps_vision::data::{self, Dataset, SEQ_LEN};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_latent-lab"))
}

/// A data set folder of `throws` generated throws in the official format.
fn official_folder(root: &Path, throws: usize) -> Vec<PathBuf> {
    let set = Dataset::generate(5, throws, 0);
    set.train
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let dir = root.join(format!("throw_{i:03}"));
            data::write_throw(t, &dir).unwrap();
            dir
        })
        .collect()
}

fn frame_path(dir: &Path, index: usize) -> PathBuf {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&format!("{index}.["))
        })
        .unwrap()
}

/// `train` on the folder exits with 2 and one error line that contains `names`.
fn expect_refusal(root: &Path, names: &str) {
    let out = root.parent().unwrap().join("out.safetensors");
    let result = bin()
        .args([
            "train",
            "sps-vision",
            "--data",
            &format!("ball-dir:{}", root.display()),
            "--steps",
            "1",
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&result.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(result.status.code(), Some(2), "stderr: {stderr}");
    assert_eq!(lines.len(), 1, "one error line expected: {stderr}");
    assert!(
        lines[0].contains(names),
        "the error names {names}: {}",
        lines[0]
    );
    assert!(!out.exists(), "a checkpoint was written from bad data");
}

#[test]
fn the_official_folder_format_reads_back_frames_and_positions() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("set");
    official_folder(&root, 5);
    let read = Dataset::read_dir(&root).unwrap();
    let made = Dataset::generate(5, 5, 0);
    assert_eq!(read.train.len() + read.test.len(), 5);
    assert_eq!(read.test.len(), 1);
    for (a, b) in read.train.iter().zip(&made.train) {
        assert_eq!(a.positions, b.positions);
        // 8-bit PNG quantisation only
        let worst = a
            .frames
            .iter()
            .zip(&b.frames)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        assert!(worst <= 0.5 / 255.0 + 1e-6, "pixels differ by {worst}");
    }
}

#[test]
fn malformed_data_folders_are_refused_naming_the_file() {
    // a missing frame names the throw's folder and the frame
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("missing");
    let throws = official_folder(&root, 2);
    std::fs::remove_file(frame_path(&throws[1], 7)).unwrap();
    expect_refusal(&root, "throw_001: frame 7 is missing");

    // an unparsable name
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("names");
    let throws = official_folder(&root, 2);
    let bad = throws[0].join("3.[0.5,oops,1].png");
    std::fs::rename(frame_path(&throws[0], 3), &bad).unwrap();
    expect_refusal(&root, "3.[0.5,oops,1].png: not a frame name");

    // a frame of the wrong size
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("size");
    let throws = official_folder(&root, 2);
    let victim = frame_path(&throws[1], 12);
    image::RgbImage::new(16, 24)
        .save_with_format(&victim, image::ImageFormat::Png)
        .unwrap();
    let name = victim.file_name().unwrap().to_string_lossy().to_string();
    expect_refusal(&root, &format!("{name}: the image is 16x24"));

    // a file that is not an image at all, and a truncated PNG
    for (what, bytes) in [
        ("text", b"hello, I am not a picture".to_vec()),
        ("truncated", {
            let mut png = Vec::new();
            image::RgbImage::new(32, 32)
                .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
                .unwrap();
            png.truncate(png.len() / 2);
            png
        }),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join(what);
        let throws = official_folder(&root, 2);
        let victim = frame_path(&throws[0], 0);
        std::fs::write(&victim, bytes).unwrap();
        let name = victim.file_name().unwrap().to_string_lossy().to_string();
        expect_refusal(&root, &name);
    }

    // no throws at all, and a folder that does not exist
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("empty");
    std::fs::create_dir_all(&root).unwrap();
    expect_refusal(&root, "empty: holds 0 throw folder(s)");
    expect_refusal(&dir.path().join("nowhere"), "nowhere");
}

#[test]
fn a_throw_folder_needs_every_frame() {
    let dir = tempfile::tempdir().unwrap();
    let throws = official_folder(&dir.path().join("set"), 1);
    // extra frames past the sequence are ignored; a missing last one is not
    std::fs::remove_file(frame_path(&throws[0], SEQ_LEN - 1)).unwrap();
    let err = data::read_throw(&throws[0]).unwrap_err().to_string();
    assert!(
        err.contains(&format!("frame {} is missing", SEQ_LEN - 1)),
        "{err}"
    );
}

fn shipped() -> latent_lab::sps_vision::Lab {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/sps_vision.safetensors");
    latent_lab::sps_vision::Lab::load(&path).unwrap()
}

/// The shipped model's recorded metrics are what `eval` measures again.
#[test]
fn the_shipped_model_reproduces_its_recorded_metrics() {
    use latent_lab::sps_vision::eval;
    let lab = shipped();
    let set = Dataset::generate(lab.meta.seed, data::TRAIN_THROWS, data::TEST_THROWS);
    assert_eq!(set.source, lab.meta.data);
    let cal = eval::calibrate(&lab.model, &set, 128).unwrap();
    for (k, name) in ["r2_x", "r2_y", "r2_z"].iter().enumerate() {
        let recorded = lab.meta.metrics[*name];
        assert!(
            (cal.r2[k] - recorded).abs() < 1e-3,
            "{name}: measured {} against {recorded} recorded",
            cal.r2[k]
        );
    }
    // all three axes are learned, if not yet to the bar of 0.95 (see models/README.md)
    assert!(cal.r2.iter().all(|&r| r > 0.9), "{:?}", cal.r2);
}

/// The keypoints the 3D tab overlays are where the encoder looks: on held-out frames of the
/// shipped model, one keypoint follows the ball to within a pixel or two, and it is the same
/// keypoint from frame to frame.
#[test]
fn the_shipped_encoder_keeps_a_keypoint_on_the_ball() {
    use latent_lab::sps_vision::model::keypoints_of;
    let lab = shipped();
    let set = Dataset::generate(lab.meta.seed ^ 1, 0, 8);
    // per frame with a ball: which keypoint is nearest it, and how far
    let mut nearest: Vec<(usize, f32)> = Vec::new();
    for throw in &set.test {
        for i in 0..SEQ_LEN {
            let frame = throw.frame(i);
            let Some(ball) = data::ball_centroid(frame) else {
                continue;
            };
            let kps = keypoints_of(&lab.model, frame).unwrap().unwrap();
            nearest.push(
                kps.iter()
                    .map(|&(u, v)| ((u - ball.0).powi(2) + (v - ball.1).powi(2)).sqrt())
                    .enumerate()
                    .min_by(|a, b| a.1.total_cmp(&b.1))
                    .unwrap(),
            );
        }
    }
    let mut distances: Vec<f32> = nearest.iter().map(|n| n.1).collect();
    let mut nearest_counts = vec![0usize; nearest.iter().map(|n| n.0 + 1).max().unwrap()];
    nearest.iter().for_each(|n| nearest_counts[n.0] += 1);
    distances.sort_by(f32::total_cmp);
    let median = distances[distances.len() / 2];
    let most = *nearest_counts.iter().max().unwrap();
    eprintln!(
        "median distance {median:.2} px, nearest keypoint counts {nearest_counts:?}, frames {}",
        distances.len()
    );
    assert!(median < 2.0, "median distance {median} px");
    assert!(
        most * 5 >= distances.len() * 4,
        "the nearest keypoint changes: {nearest_counts:?}"
    );
}

/// The reading figure plots every held-out frame's position as the latent reads it against
/// the truth, and its points score each axis as `eval` does; the command line writes it.
#[test]
fn the_reading_figure_shows_every_held_out_frame_as_eval_scores_it() {
    use latent_lab::figures::Figure;
    use latent_lab::metrics::r_squared;
    let lab = shipped();
    let Figure::Scatter { series, line, .. } =
        latent_lab::sps_vision::cli::reading_figure(&lab).unwrap()
    else {
        panic!("the reading is a scatter plot");
    };
    assert_eq!(series.len(), 3);
    for (s, name) in series.iter().zip(["r2_x", "r2_y", "r2_z"]) {
        assert_eq!(s.points.len(), data::TEST_THROWS * SEQ_LEN, "{}", s.name);
        let (truth, read): (Vec<f64>, Vec<f64>) = s.points.iter().copied().unzip();
        let r2 = r_squared(&read, &truth);
        let recorded = lab.meta.metrics[name];
        assert!(
            (r2 - recorded).abs() < 1e-3,
            "{name}: {r2} against {recorded}"
        );
    }
    let line = line.unwrap();
    assert_eq!(
        (line.slope, line.intercept),
        (1.0, 0.0),
        "the line of a perfect reading"
    );
    assert!(line.label.contains("perfect"), "{}", line.label);

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("reading.png");
    let model = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/sps_vision.safetensors");
    let status = bin()
        .args([
            "export",
            model.to_str().unwrap(),
            "--figure",
            "reading",
            "--out",
        ])
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    let png = image::open(&out).unwrap();
    assert!(
        png.width() > 400 && png.height() > 300,
        "{}x{}",
        png.width(),
        png.height()
    );
}

/// The turn figure draws, from the side, where one turn of the latent about z2 takes the
/// ball: level rings for the model trained with the turned predictions decoded, leaning
/// ones for the same training without the symmetry terms, stacked by height in both; the
/// command line writes it, both side by side with `--compare`.
#[test]
fn the_turn_figure_lies_level_only_for_the_latent_the_symmetry_shaped() {
    use latent_lab::figures::Figure;
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/decoded_turns");
    // (height span / horizontal span, mean height) of each ring
    let rings = |file: &str| -> Vec<(f64, f64)> {
        let lab = latent_lab::sps_vision::Lab::load(&dir.join(file)).unwrap();
        let Figure::Lines { series, .. } = latent_lab::sps_vision::cli::turn_figure(&lab).unwrap()
        else {
            panic!("the turn is a line plot");
        };
        assert_eq!(series.len(), 3);
        series
            .iter()
            .map(|s| {
                let span = |v: Vec<f64>| {
                    v.iter().cloned().fold(f64::MIN, f64::max)
                        - v.iter().cloned().fold(f64::MAX, f64::min)
                };
                let (x, y): (Vec<f64>, Vec<f64>) = s.points.iter().copied().unzip();
                let mean = y.iter().sum::<f64>() / y.len() as f64;
                (span(y) / span(x), mean)
            })
            .collect()
    };
    let level = rings("sps_vision.safetensors");
    let leaning = rings("sps_vision_no_symmetry.safetensors");
    eprintln!("turns decoded {level:?}; no symmetry {leaning:?}");
    for ((flat, _), (tilted, _)) in level.iter().zip(&leaning) {
        assert!(*flat < 0.15 && *tilted > 0.5, "{level:?} {leaning:?}");
    }
    for r in [&level, &leaning] {
        let heights: Vec<f64> = r.iter().map(|(_, h)| *h).collect();
        let apart = (heights[0] - heights[1])
            .abs()
            .min((heights[1] - heights[2]).abs());
        assert!(apart > 0.3, "rings not stacked: {heights:?}");
    }

    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("turn.png");
    let status = bin()
        .args(["export"])
        .arg(dir.join("sps_vision.safetensors"))
        .args(["--figure", "turn", "--out"])
        .arg(&out)
        .arg("--compare")
        .arg(dir.join("sps_vision_no_symmetry.safetensors"))
        .status()
        .unwrap();
    assert!(status.success());
    let png = image::open(&out).unwrap();
    assert!(png.width() > 800, "{}x{}", png.width(), png.height());
}
