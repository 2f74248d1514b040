//! V3: the Codebook tab's style picker, a short training run, and bad digit files.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::process::Command;

use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use latent_lab::app::{App, AppOptions};
use latent_lab::v3::Lab;
use latent_lab::v3::view::{CodebookTab, StyleChoice};

fn models_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models")
}

fn harness() -> Harness<'static, App> {
    Harness::builder()
        .with_size([1500.0, 1100.0])
        .build_eframe(|cc| {
            App::new(
                cc,
                AppOptions {
                    models_dir: models_dir(),
                    open_audio: false,
                    train_threads: 1,
                },
                &latent_lab::registry::tabs(),
            )
        })
}

fn codebook_tab<'a>(harness: &'a Harness<'static, App>) -> &'a CodebookTab {
    harness
        .state()
        .tabs
        .iter()
        .find_map(|t| t.as_any().downcast_ref::<CodebookTab>())
        .expect("the Codebook tab")
}

/// What the model's own classifiers read from each decoded atom: the atom it encodes back to
/// (its content) and the known style nearest its style latent (its style).
fn read_atoms(tab: &CodebookTab) -> (Vec<usize>, Vec<Option<usize>>) {
    let lab: &Lab = tab.models.a.as_deref().unwrap();
    let atoms = tab.atoms.as_ref().expect("decoded atoms");
    let (_, codes, styles) = latent_lab::v3::view::decode_atoms(lab, &atoms.style).unwrap();
    // the tab's fragments are what it shows: they must be the decoding of that style
    let again = lab.decode_atoms(&atoms.style).unwrap();
    assert_eq!(again, atoms.fragments, "the grid shows another decoding");
    (codes, styles)
}

fn pick_style(harness: &mut Harness<'static, App>, name: &str) {
    harness
        .get_by_role_and_label(Role::ComboBox, "style")
        .click();
    harness.run_steps(2);
    harness.get_by_label(name).click();
    harness.run_steps(3);
}

/// Open the Codebook tab on one kind of data, pick two known styles in the picker; what the
/// model reads back from every decoded atom in each: (atoms, contents read in the first, styles
/// read in the first, the same in the second).
#[allow(clippy::type_complexity)]
fn atoms_in_two_styles(
    data: &str,
    model: &str,
) -> (
    usize,
    Vec<usize>,
    Vec<Option<usize>>,
    Vec<usize>,
    Vec<Option<usize>>,
) {
    assert!(
        models_dir().join(model).exists(),
        "models/{model} is missing (made by `latent-lab train`)"
    );
    let mut harness = harness();
    harness.run_steps(2);
    harness.get_by_label("Codebook").click();
    harness.run_steps(3);
    if data != "notes" {
        harness.get_by_label(data).click();
        harness.run_steps(4);
    }
    let tab = codebook_tab(&harness);
    let lab = tab.models.a.clone().expect("the shipped V3 model loads");
    let word = lab.domain().style_word();
    let names = lab.summary.style_names.clone();
    let (first, second): (String, String) = (names[1].clone(), names[4].clone());

    pick_style(&mut harness, &format!("{word}: {first}"));
    let tab = codebook_tab(&harness);
    assert_eq!(tab.state.style, StyleChoice::Known(1));
    let (codes_a, styles_a) = read_atoms(tab);

    pick_style(&mut harness, &format!("{word}: {second}"));
    let tab = codebook_tab(&harness);
    assert_eq!(tab.state.style, StyleChoice::Known(4));
    let (codes_b, styles_b) = read_atoms(tab);
    (lab.cfg.model.atoms, codes_a, styles_a, codes_b, styles_b)
}

fn assert_every_atom_restyled_and_none_changed(data: &str, model: &str) {
    let (_, codes_a, styles_a, codes_b, styles_b) = atoms_in_two_styles(data, model);
    assert!(
        styles_a.iter().all(|s| *s == Some(1)),
        "atoms drawn in style 1 read as styles {styles_a:?}"
    );
    assert!(
        styles_b.iter().all(|s| *s == Some(4)),
        "atoms drawn in style 4 read as styles {styles_b:?}"
    );
    assert_eq!(
        codes_a, codes_b,
        "changing the style changed what some atoms say"
    );
}

/// Digits: picking another ink colour redraws every atom in that colour (the model's own style
/// classifier, nearest mean style latent, reads it back) and no atom says another digit.
#[test]
fn choosing_another_colour_changes_every_atoms_style_and_no_atoms_content() {
    assert_every_atom_restyled_and_none_changed("digits", "v3_digits.safetensors");
}

#[test]
fn choosing_another_instrument_changes_every_atoms_style_and_no_atoms_content() {
    assert_every_atom_restyled_and_none_changed("notes", "v3_notes.safetensors");
}

/// What the shipped models do reach: changing the style in the picker keeps what every
/// decoded atom says (the atom it encodes back to).
#[test]
fn choosing_another_style_keeps_every_atoms_content() {
    for (data, model) in [
        ("notes", "v3_notes.safetensors"),
        ("digits", "v3_digits.safetensors"),
    ] {
        let (_, codes_a, _, codes_b, _) = atoms_in_two_styles(data, model);
        assert_eq!(
            codes_a, codes_b,
            "{data}: changing the style changed what some atoms say"
        );
    }
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_latent-lab"))
}

/// Exit code 2 and one error line that names `file` (and `also`, when given).
fn expect_refusal(args: &[&str], file: &Path, also: Option<&str>) {
    let out = bin().args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    let name = file.file_name().unwrap().to_string_lossy();
    assert!(
        lines[0].contains(name.as_ref()),
        "names {name}: {}",
        lines[0]
    );
    if let Some(a) = also {
        assert!(lines[0].contains(a), "says `{a}`: {}", lines[0]);
    }
}

fn idx_images(count: u32, rows: u32, cols: u32, magic: u32, pixels: usize) -> Vec<u8> {
    let mut b = magic.to_be_bytes().to_vec();
    for v in [count, rows, cols] {
        b.extend(v.to_be_bytes());
    }
    b.extend(std::iter::repeat_n(7u8, pixels));
    b
}

fn idx_labels(labels: &[u8]) -> Vec<u8> {
    let mut b = 0x0000_0801u32.to_be_bytes().to_vec();
    b.extend((labels.len() as u32).to_be_bytes());
    b.extend_from_slice(labels);
    b
}

#[test]
fn bad_digit_files_are_refused_with_their_name() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.safetensors");
    let labels = dir.path().join("labels.idx1");
    std::fs::write(&labels, idx_labels(&[0, 1, 2, 3])).unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("magic.idx3", idx_images(4, 28, 28, 0x0000_0802, 4 * 784)),
        (
            "truncated.idx3",
            idx_images(4, 28, 28, 0x0000_0803, 2 * 784),
        ),
        ("count.idx3", idx_images(5, 28, 28, 0x0000_0803, 5 * 784)),
    ];
    for (name, bytes) in cases {
        let images = dir.path().join(name);
        std::fs::write(&images, bytes).unwrap();
        let spec = format!("idx:{},{}", images.display(), labels.display());
        let args = [
            "train",
            "v3-digits",
            "--data",
            &spec,
            "--steps",
            "1",
            "--out",
            out.to_str().unwrap(),
        ];
        // a count that disagrees with the labels may be reported on either file
        let named = if name == "count.idx3" {
            &labels
        } else {
            &images
        };
        if name == "count.idx3" {
            let o = bin().args(args).output().unwrap();
            let stderr = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(2), "{stderr}");
            assert!(
                stderr.contains("count.idx3") || stderr.contains("labels.idx1"),
                "{stderr}"
            );
        } else {
            expect_refusal(&args, named, None);
        }
        assert!(!out.exists(), "a checkpoint was written from {name}");
    }
    let ragged = dir.path().join("ragged.csv");
    let mut text = String::new();
    text.push_str(&format!("3,{}\n", vec!["0"; 784].join(",")));
    text.push_str(&format!("4,{}\n", vec!["0"; 700].join(",")));
    std::fs::write(&ragged, text).unwrap();
    let spec = format!("csv:{}", ragged.display());
    expect_refusal(
        &[
            "train",
            "v3-digits",
            "--data",
            &spec,
            "--steps",
            "1",
            "--out",
            out.to_str().unwrap(),
        ],
        &ragged,
        Some("line 2"),
    );
    let words = dir.path().join("words.csv");
    std::fs::write(&words, format!("7,{},ink\n", vec!["1"; 783].join(","))).unwrap();
    let spec = format!("csv:{}", words.display());
    expect_refusal(
        &[
            "train",
            "v3-digits",
            "--data",
            &spec,
            "--steps",
            "1",
            "--out",
            out.to_str().unwrap(),
        ],
        &words,
        Some("line 1"),
    );
    assert!(!out.exists());
}

#[test]
fn a_notes_checkpoint_is_refused_as_digits_and_wrong_latents_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let model = models_dir().join("v3_notes.safetensors");
    if !model.exists() {
        return;
    }
    let z = dir.path().join("z.npy");
    let t = candle_core::Tensor::zeros((2, 5), candle_core::DType::F32, &candle_core::Device::Cpu)
        .unwrap();
    t.write_npy(&z).unwrap();
    let out = dir.path().join("x.npy");
    expect_refusal(
        &[
            "decode",
            model.to_str().unwrap(),
            "--latents",
            z.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        &z,
        None,
    );
    let fig = dir.path().join("x.gif");
    expect_refusal(
        &[
            "export",
            model.to_str().unwrap(),
            "--figure",
            "codebook",
            "--out",
            fig.to_str().unwrap(),
        ],
        &fig,
        None,
    );
}

#[test]
fn a_short_training_run_learns_digits_as_content_and_ink_colour_as_style() {
    use latent_lab::v3::data::{self, Domain};
    use latent_lab::v3::train::{TrainConfig, V3Trainer};
    use latent_lab::worker::Trainer;
    let mut cfg = TrainConfig::preset(Domain::Digits, "fast").unwrap();
    cfg.model.hidden = 64;
    cfg.model.content_dim = 8;
    cfg.model.style_dim = 8;
    cfg.model.conv = 8;
    cfg.steps = 150;
    let data = data::load(Domain::Digits, "digits", &|_| {}).unwrap();
    let mut trainer = V3Trainer::new(cfg, data, 0).unwrap();
    let before: std::collections::HashMap<String, f64> =
        trainer.evaluate().unwrap().into_iter().collect();
    while trainer.steps_done() < trainer.total_steps() {
        let s = trainer.step().unwrap();
        assert!(s.total().is_finite());
    }
    let after: std::collections::HashMap<String, f64> =
        trainer.evaluate().unwrap().into_iter().collect();
    let show = |k: &str| format!("{k} {:.3} -> {:.3}", before[k], after[k]);
    eprintln!(
        "{}, {}, {}",
        show("codebook_purity"),
        show("content_knn_auc"),
        show("style_knn_auc")
    );
    // ten digits, eight colours: chance is about 1/10 and 1/8. The seed fixes the run
    // 150 steps of a small model: the content latents start to gather by digit (the full
    // preset's figures are in models/README.md)
    assert!(
        after["content_knn_auc"] > before["content_knn_auc"] + 0.1,
        "{}",
        show("content_knn_auc")
    );
    assert!(after["style_knn_auc"] > 0.9, "{}", show("style_knn_auc"));
    assert!(
        after["content_on_style_knn_auc"] < 0.3,
        "content latents give away the colour: {}",
        after["content_on_style_knn_auc"]
    );
}

#[test]
fn encode_then_decode_round_trips_through_the_command_line() {
    let model = models_dir().join("v3_digits.safetensors");
    assert!(model.exists(), "models/v3_digits.safetensors is missing");
    let dir = tempfile::tempdir().unwrap();
    let (x, z, y, png) = (
        dir.path().join("x.npy"),
        dir.path().join("z.npy"),
        dir.path().join("y.npy"),
        dir.path().join("y.png"),
    );
    let dev = candle_core::Device::Cpu;
    candle_core::Tensor::rand(0f32, 1f32, (2, 3, 48, 32), &dev)
        .unwrap()
        .write_npy(&x)
        .unwrap();
    let run = |args: &[&str]| {
        let o = bin().args(args).output().unwrap();
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    let m = model.to_str().unwrap();
    run(&[
        "encode",
        m,
        "--input",
        x.to_str().unwrap(),
        "--out",
        z.to_str().unwrap(),
    ]);
    let latents = candle_core::Tensor::read_npy(&z).unwrap();
    assert_eq!(
        latents.dims(),
        &[2, 32],
        "content (16) then style (16) per row"
    );
    run(&[
        "decode",
        m,
        "--latents",
        z.to_str().unwrap(),
        "--out",
        y.to_str().unwrap(),
    ]);
    assert_eq!(
        candle_core::Tensor::read_npy(&y).unwrap().dims(),
        &[2, 3, 48, 32]
    );
    run(&[
        "decode",
        m,
        "--latents",
        z.to_str().unwrap(),
        "--out",
        png.to_str().unwrap(),
    ]);
    assert!(std::fs::metadata(&png).unwrap().len() > 100);
}
