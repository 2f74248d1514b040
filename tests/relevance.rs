//! The relevance lab end to end: training through the command line and the library, what
//! `eval --json` promises, figures, bad CSV/LHE files, and the tab driven with the mouse.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use latent_lab::relevance::data::{self, Dataset, Generator, generate};
use latent_lab::relevance::train::{RelevanceTrainer, TrainConfig};
use latent_lab::relevance::{Lab, eval};
use latent_lab::worker::Trainer;

mod common;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_latent-lab"))
}

fn s(p: &Path) -> String {
    p.to_str().expect("utf-8 temp path").to_string()
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("the binary runs")
}

fn ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn train_library(g: Generator, steps: u64, latent: usize, seed: u64) -> (Lab, Dataset) {
    let mut cfg = TrainConfig::preset("fast").unwrap();
    cfg.steps = steps;
    cfg.model.latent = latent;
    cfg.events = 6000;
    let data = generate(g, cfg.events, seed);
    let mut t = RelevanceTrainer::new(cfg, &data, seed).unwrap();
    while t.steps_done() < t.total_steps() {
        t.step().unwrap();
    }
    t.final_metrics().unwrap();
    (t.lab().unwrap(), data)
}

#[test]
fn circle_is_cut_open_onto_one_latent_and_the_rest_collapse() {
    // A circle needs one coordinate, but a Gaussian latent space cannot close the loop: with
    // every latent open from the start the VAE stores it as a ring in two. Opened one at a
    // time, the first latent learns the angle alone (the circle cut at one point), and the
    // next ones stay at the prior because they are not worth their KL.
    let (lab, data) = train_library(Generator::Circle, 3000, 4, 0);
    let r = lab.relevance_on(&data).unwrap();
    let mut sorted = r.relevance.clone();
    sorted.sort_by(|a, b| b.total_cmp(a));
    assert_eq!(r.relevant_dims, 1, "relevance {:?}", r.relevance);
    assert!(
        sorted[0] > 0.9 && sorted[1] < 0.3,
        "a clear gap between the used dim and the rest: {sorted:?}"
    );
    for (rel, kl) in r.relevance.iter().zip(&r.kl_per_dim) {
        if *rel < 0.3 {
            assert!(*kl < 0.3, "collapsed dim with KL {kl}");
        }
    }
    // decoding the posterior means lands on the circle, except near the cut
    let rows = data.held_out_indices();
    let z = lab.encode(&data.gather(&rows[..400])).unwrap();
    let x = lab.decode(&z.concat()).unwrap();
    let on_circle = x
        .chunks(2)
        .filter(|p| (p[0].hypot(p[1]) - 1.0).abs() < 0.1)
        .count();
    assert!(
        on_circle >= 380,
        "{on_circle} of 400 decode onto the circle"
    );
}

#[test]
fn ee_mumu_latents_hold_the_decay_angles_in_two_dims_and_conserve_momentum() {
    let (lab, data) = train_library(Generator::EeMuMu, 3000, 4, 1);
    let r = lab.relevance_on(&data).unwrap();
    assert_eq!(r.relevant_dims, 2, "relevance {:?}", r.relevance);
    let rows = data.held_out_indices();
    let z = lab.encode(&data.gather(&rows)).unwrap();
    // The decay direction is the sphere cut open onto two latents; cos θ is a function of them
    // (read by nearest neighbours, since the chart need not be linear in cos θ).
    let obs = eval::observables_of(&data.observables, &rows);
    let cos_theta = &obs.iter().find(|o| o.0 == "cos θ").unwrap().1;
    let r2 = knn_r2(&z, cos_theta, 10);
    eprintln!("cos θ from the latents: kNN R² {r2:.4}");
    assert!(r2 > 0.9, "cos θ read from the latents: R² {r2}");
    // decoded events keep the beam energy and come out back to back
    let x = lab.decode(&z[..100].concat()).unwrap();
    for ev in x.chunks(8) {
        let ev: Vec<f64> = ev.iter().map(|&v| v as f64).collect();
        let k = data::pair_kinematics(&ev);
        assert!(
            (k.total_energy - 91.2).abs() < 0.5,
            "E = {}",
            k.total_energy
        );
        assert!(k.total_momentum < 2.0, "|p1 + p2| = {}", k.total_momentum);
    }
}

/// R² of predicting `y` by the mean over each point's k nearest other points in latent space.
fn knn_r2(latents: &[Vec<f32>], y: &[f32], k: usize) -> f64 {
    let n = latents.len().min(1500);
    let mean = y[..n].iter().map(|&v| v as f64).sum::<f64>() / n as f64;
    let (mut ss_res, mut ss_tot) = (0.0, 0.0);
    for i in 0..n {
        let mut d: Vec<(f32, usize)> = (0..n)
            .filter(|&j| j != i)
            .map(|j| {
                let d2 = latents[i]
                    .iter()
                    .zip(&latents[j])
                    .map(|(a, b)| (a - b) * (a - b))
                    .sum::<f32>();
                (d2, j)
            })
            .collect();
        d.select_nth_unstable_by(k, |a, b| a.0.total_cmp(&b.0));
        let pred = d[..k].iter().map(|&(_, j)| y[j] as f64).sum::<f64>() / k as f64;
        ss_res += (y[i] as f64 - pred).powi(2);
        ss_tot += (y[i] as f64 - mean).powi(2);
    }
    1.0 - ss_res / ss_tot
}

#[test]
fn checkpoint_round_trip_keeps_the_encoder_and_refuses_shape_changes() {
    let (lab, data) = train_library(Generator::Sphere, 50, 8, 2);
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.safetensors");
    lab.save(&p).unwrap();
    let back = Lab::load(&p).unwrap();
    let x = data.gather(&[1, 2, 3]);
    assert_eq!(lab.encode(&x).unwrap(), back.encode(&x).unwrap());
    assert_eq!(back.standardizer, lab.standardizer);
    assert!(!back.history.is_empty());
    // a model for 3 features refuses 8-feature events
    let other = generate(Generator::EeMuMu, 100, 0);
    let err = back.check_data(&other).unwrap_err().to_string();
    assert!(
        err.contains("8 features per event, the model reads 3 (x, y, z)"),
        "{err}"
    );
}

#[test]
fn cli_train_eval_export_encode_decode() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("circle.safetensors");
    ok(&[
        "train",
        "vae-relevance",
        "--data",
        "circle",
        "--steps",
        "300",
        "--latent",
        "5",
        "--beta",
        "0.02",
        "--seed",
        "3",
        "--out",
        &s(&model),
    ]);
    let json: serde_json::Value =
        serde_json::from_str(&ok(&["eval", &s(&model), "--json"])).unwrap();
    assert_eq!(json["relevance"].as_array().unwrap().len(), 5);
    assert_eq!(json["kl_per_dim"].as_array().unwrap().len(), 5);
    assert_eq!(json["intrinsic_dim"], 1);
    assert_eq!(json["beta"], 0.02);
    let counted = json["relevance"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r.as_f64().unwrap() >= 0.5)
        .count();
    assert_eq!(json["relevant_dims"].as_u64().unwrap() as usize, counted);
    assert!(json["correlations"]["φ (angle)"].as_array().is_some());

    for (figure, ext) in [
        ("relevance", "png"),
        ("relevance", "svg"),
        ("kl", "png"),
        ("curves", "svg"),
        ("scatter", "png"),
    ] {
        let out = dir.path().join(format!("{figure}.{ext}"));
        ok(&["export", &s(&model), "--figure", figure, "--out", &s(&out)]);
        assert!(
            std::fs::metadata(&out).unwrap().len() > 1000,
            "{figure}.{ext} is written"
        );
    }
    let svg = std::fs::read_to_string(dir.path().join("relevance.svg")).unwrap();
    assert!(svg.contains("Relevance per latent dimension"));

    // encode features to latents and decode them back
    let x = candle_core::Tensor::from_vec(
        vec![1f32, 0.0, 0.0, 1.0, -1.0, 0.0],
        (3, 2),
        &candle_core::Device::Cpu,
    )
    .unwrap();
    let xin = dir.path().join("x.npy");
    x.write_npy(&xin).unwrap();
    let zout = dir.path().join("z.npy");
    ok(&[
        "encode",
        &s(&model),
        "--input",
        &s(&xin),
        "--out",
        &s(&zout),
    ]);
    let z = candle_core::Tensor::read_npy(&zout).unwrap();
    assert_eq!(z.dims(), &[3, 5]);
    let yout = dir.path().join("y.npy");
    ok(&[
        "decode",
        &s(&model),
        "--latents",
        &s(&zout),
        "--out",
        &s(&yout),
    ]);
    assert_eq!(
        candle_core::Tensor::read_npy(&yout).unwrap().dims(),
        &[3, 2]
    );
}

#[test]
fn csv_and_lhe_files_train() {
    let dir = tempfile::tempdir().unwrap();
    // a CSV of points on a tilted circle plus a constant column
    let mut csv = String::from("a,b,c\n");
    for i in 0..400 {
        let t = i as f64 * 0.1;
        csv.push_str(&format!("{},{},2.5\n", t.cos(), t.sin() * 3.0));
    }
    let csv_path = dir.path().join("ring.csv");
    std::fs::write(&csv_path, csv).unwrap();
    let model = dir.path().join("csv.safetensors");
    ok(&[
        "train",
        "vae-relevance",
        "--data",
        &format!("csv:{}", s(&csv_path)),
        "--steps",
        "100",
        "--out",
        &s(&model),
    ]);
    let json: serde_json::Value =
        serde_json::from_str(&ok(&["eval", &s(&model), "--json"])).unwrap();
    assert!(json.get("intrinsic_dim").is_none(), "unknown for a file");
    assert!(json["correlations"]["b"].is_array() && json["correlations"]["c"].is_array());

    // an LHE file of generated e+e- -> mu+mu- events (mu+ listed first to test the selection)
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(4);
    let mut lhe = String::from(
        "<LesHouchesEvents version=\"3.0\">\n<init>\n11 -11 45.6 45.6 0 0 0 0 3 1\n</init>\n",
    );
    for _ in 0..300 {
        let e = data::ee_mumu_event(&mut rng);
        lhe.push_str("<event>\n 4 1 1.0 91.2 0.0078 0.118\n");
        lhe.push_str(" 11 -1 0 0 0 0 0 0 45.6 45.6 0 0 9\n-11 -1 0 0 0 0 0 0 -45.6 45.6 0 0 9\n");
        lhe.push_str(&format!(
            "-13 1 1 2 0 0 {} {} {} {} 0.10566 0 9\n",
            e[5], e[6], e[7], e[4]
        ));
        lhe.push_str(&format!(
            " 13 1 1 2 0 0 {} {} {} {} 0.10566 0 9\n</event>\n",
            e[1], e[2], e[3], e[0]
        ));
    }
    lhe.push_str("</LesHouchesEvents>\n");
    let lhe_path = dir.path().join("ee.lhe");
    std::fs::write(&lhe_path, lhe).unwrap();
    let d = Dataset::load(&format!("lhe:{}", s(&lhe_path)), 0, 0).unwrap();
    assert_eq!(d.len(), 300);
    assert!(d.is_muon_pair());
    let mass = &d
        .observables
        .iter()
        .find(|o| o.name.starts_with("mass"))
        .unwrap()
        .values;
    assert!(mass.iter().all(|m| (m - 91.2).abs() < 1e-3));
    let model = dir.path().join("lhe.safetensors");
    ok(&[
        "train",
        "vae-relevance",
        "--data",
        &format!("lhe:{}", s(&lhe_path)),
        "--steps",
        "100",
        "--out",
        &s(&model),
    ]);
    ok(&["eval", &s(&model), "--json"]);
}

/// Run, expect exit 2 and one `error:` line naming `file:line`, and `out` untouched.
fn expect_refusal(data_spec: &str, file_line: &str, out: &Path) {
    std::fs::write(out, b"precious").unwrap();
    let result = run(&[
        "train",
        "vae-relevance",
        "--data",
        data_spec,
        "--steps",
        "5",
        "--out",
        &s(out),
    ]);
    let stderr = String::from_utf8_lossy(&result.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(result.status.code(), Some(2), "{data_spec}: {stderr}");
    assert_eq!(lines.len(), 1, "one error line: {stderr}");
    assert!(
        lines[0].contains(file_line),
        "`{}` should name {file_line}",
        lines[0]
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(std::fs::read(out).unwrap(), b"precious");
}

#[test]
fn bad_csv_and_lhe_files_are_refused_by_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.safetensors");
    let write = |name: &str, text: &str| -> PathBuf {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let cases: Vec<(PathBuf, &str)> = vec![
        (write("header_only.csv", "px,py\n"), ":1:"),
        (write("ragged.csv", "px,py\n1,2\n3,4,5\n"), ":3:"),
        (write("text.csv", "px,py\n1,2\n3,abc\n"), ":3:"),
        (write("nan.csv", "px,py\n1,NaN\n"), ":2:"),
        (write("inf.csv", "px,py\n1,2\n-inf,2\n"), ":3:"),
        (write("empty.csv", ""), "empty.csv"),
    ];
    for (p, at) in &cases {
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        expect_refusal(
            &format!("csv:{}", s(p)),
            &format!("{name}{}", if at.starts_with(':') { at } else { "" }),
            &out,
        );
    }
    let event = "<event>\n 2 1 1 91 0 0\n 13 1 0 0 0 0 1 2 3 3.8 0.1 0 9\n-13 1 0 0 0 0 -1 -2 -3 3.8 0.1 0 9\n</event>\n";
    let truncated = format!("{event}<event>\n 2 1 1 91 0 0\n 13 1 0 0 0 0 1 2 3 3.8 0.1 0 9\n");
    let no_mu_plus = format!(
        "{event}<event>\n 2 1 1 91 0 0\n 13 1 0 0 0 0 1 2 3 3.8 0.1 0 9\n 22 1 0 0 0 0 1 1 1 1.7 0 0 9\n</event>\n"
    );
    let lhe_cases: Vec<(PathBuf, &str)> = vec![
        (write("truncated.lhe", &truncated), "truncated.lhe:6:"),
        (
            write(
                "no_events.lhe",
                "<LesHouchesEvents>\n<init>\n</init>\n</LesHouchesEvents>\n",
            ),
            "no_events.lhe: no <event>",
        ),
        (
            write("missing.lhe", &no_mu_plus),
            "missing.lhe:6: event 2 has no final-state",
        ),
        (
            write(
                "garbage.lhe",
                &format!("{event}<event>\n 2 1 1 91 0 0\n 13 1 0 0 0 0 1 x 3 3.8 0.1 0 9\n"),
            ),
            "garbage.lhe:8:",
        ),
    ];
    for (p, expect) in &lhe_cases {
        expect_refusal(&format!("lhe:{}", s(p)), expect, &out);
    }
    // not text at all, and a file that is not there
    let binary = dir.path().join("binary.csv");
    std::fs::write(&binary, [0x61u8, 0x2c, 0x62, 0x0a, 0xff, 0xfe, 0x00]).unwrap();
    expect_refusal(&format!("csv:{}", s(&binary)), "binary.csv:2:", &out);
    expect_refusal(
        &format!("lhe:{}", s(&dir.path().join("absent.lhe"))),
        "absent.lhe",
        &out,
    );
    expect_refusal("torus", "unknown data `torus`", &out);
}

mod gui {
    use super::*;
    use egui_kittest::Harness;
    use egui_kittest::kittest::{NodeT, Queryable};
    use latent_lab::app::App;

    fn relevance_text(harness: &Harness<'static, App>) -> Option<String> {
        // a Label keeps its text in the accesskit value
        harness
            .query_by_label_contains("relevance per dim:")
            .and_then(|n| n.accesskit_node().value())
    }

    #[test]
    fn training_from_the_tab_updates_the_bars_while_the_ui_answers() {
        let models = tempfile::tempdir().unwrap();
        let mut harness = crate::common::window(models.path());
        harness.run_steps(2);
        harness.get_by_label("Relevance").click();
        harness.run_steps(2);
        assert_eq!(harness.state().active, 1, "the Relevance tab is shown");
        assert!(relevance_text(&harness).is_none(), "no model, no bars yet");
        harness.get_by_label("circle").click();
        harness.run_steps(1);
        harness.get_by_label("Train").click();

        // Frames keep coming while the job runs; the bars change several times.
        let start = Instant::now();
        let mut seen: Vec<String> = Vec::new();
        let mut frames = 0;
        let mut slowest = Duration::ZERO;
        while seen.len() < 3 && start.elapsed() < Duration::from_secs(60) {
            let t = Instant::now();
            harness.step();
            slowest = slowest.max(t.elapsed());
            frames += 1;
            if let Some(text) = relevance_text(&harness)
                && seen.last() != Some(&text)
            {
                seen.push(text);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let notices = crate::common::notices(&harness);
        assert!(
            seen.len() >= 3,
            "the relevance bars changed {} times in {frames} frames: {seen:?}; notices {notices:?}",
            seen.len()
        );
        assert!(
            harness.get_by_label("Train").accesskit_node().is_disabled(),
            "Train is greyed out while training"
        );
        eprintln!("{frames} frames, slowest {slowest:?}; relevance went {seen:?}");

        // Mid-training, switching tabs works at once.
        assert!(
            harness.state().tabs.iter().any(|t| t.busy()),
            "still training"
        );
        harness.get_by_label("Pitch").click();
        harness.run_steps(2);
        assert_eq!(harness.state().active, 0, "the Pitch tab is shown");
        harness.get_by_label("Relevance").click();
        harness.run_steps(2);
        assert_eq!(harness.state().active, 1);
        harness.get_by_label("Stop").click();
        harness.run_steps(1);
    }
}
