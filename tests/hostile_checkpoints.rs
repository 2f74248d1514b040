//! Checkpoints made hostile from the shipped ones (a latent of 0 or 1 dims, negative or
//! enormous sizes, the wrong family, missing or misshapen tensors, offsets past the end, a
//! header length of 2^62, a config that is not JSON) are refused by `eval`, `decode` and
//! `export` with exit code 2 and one line naming the file, and by the window's Open (the path
//! typed into the tab's checkpoint field, then Open: a notice in one line, and the model on
//! show stays the same). The enormous sizes
//! are ones that abort the program allocating hundreds of gigabytes when nothing guards them.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use latent_lab::app::App;

use serde_json::{Map, Value, json};

fn model(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("models")
        .join(name)
}

/// A safetensors file taken apart: its JSON header and its data.
#[derive(Clone)]
struct Parts {
    header: Map<String, Value>,
    data: Vec<u8>,
}

impl Parts {
    fn read(path: &Path) -> Self {
        let bytes = std::fs::read(path).unwrap();
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        let header: Map<String, Value> = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
        Self {
            header,
            data: bytes[8 + n..].to_vec(),
        }
    }

    fn bytes(&self) -> Vec<u8> {
        let header = serde_json::to_vec(&self.header).unwrap();
        let mut out = (header.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(&header);
        out.extend_from_slice(&self.data);
        out
    }

    fn metadata(&mut self) -> &mut Map<String, Value> {
        self.header
            .get_mut("__metadata__")
            .and_then(Value::as_object_mut)
            .unwrap()
    }

    /// Set `config` at a JSON pointer (`/train/model/latent`) to `value`.
    fn set_config(mut self, pointer: &str, value: Value) -> Self {
        let meta = self.metadata();
        let mut config: Value = serde_json::from_str(meta["config"].as_str().unwrap()).unwrap();
        *config.pointer_mut(pointer).unwrap() = value;
        meta.insert("config".into(), Value::String(config.to_string()));
        self
    }

    fn set_metadata(mut self, key: &str, value: &str) -> Self {
        self.metadata().insert(key.into(), json!(value));
        self
    }

    /// Tensor names, sorted.
    fn tensor_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .header
            .keys()
            .filter(|k| *k != "__metadata__")
            .cloned()
            .collect();
        names.sort();
        names
    }

    fn offsets(&self, name: &str) -> (usize, usize) {
        let o = &self.header[name]["data_offsets"];
        (
            o[0].as_u64().unwrap() as usize,
            o[1].as_u64().unwrap() as usize,
        )
    }

    /// Drop a tensor and its bytes, moving the tensors after it down.
    fn without(mut self, name: &str) -> Self {
        let (start, end) = self.offsets(name);
        self.header.remove(name);
        self.data.drain(start..end);
        for other in self.tensor_names() {
            let (s, e) = self.offsets(&other);
            if s >= end {
                self.header[&other]["data_offsets"] = json!([s - (end - start), e - (end - start)]);
            }
        }
        self
    }
}

struct Family {
    file: &'static str,
    name: &'static str,
    /// the size a user would call the latent (for the classifier: its first hidden layer)
    latent: &'static str,
    /// a width that, unguarded, allocates far more than the machine has
    wide: &'static str,
    figure: &'static str,
    /// a family whose loader reads a different config
    other: &'static str,
}

const FAMILIES: &[Family] = &[
    Family {
        file: "sps_music.safetensors",
        name: "sps-music",
        latent: "/train/model/latent",
        wide: "/train/model/rnn_hidden",
        figure: "embedding",
        other: "sps-vision",
    },
    Family {
        file: "sps_vision.safetensors",
        name: "sps-vision",
        latent: "/train/model/latent",
        wide: "/train/model/rnn_hidden",
        figure: "traversal",
        other: "sps-music",
    },
    Family {
        file: "vae_relevance.safetensors",
        name: "vae-relevance",
        latent: "/train/model/latent",
        wide: "/train/model/hidden",
        figure: "relevance",
        other: "ievae",
    },
    Family {
        file: "ievae_digits.safetensors",
        name: "ievae",
        latent: "/train/model/equivariant",
        wide: "/train/model/hidden/0",
        figure: "traversal",
        other: "vae-relevance",
    },
    Family {
        file: "v3_notes.safetensors",
        name: "v3-notes",
        latent: "/train/model/content_dim",
        wide: "/train/model/hidden",
        figure: "codebook",
        other: "v3-digits",
    },
    Family {
        file: "v3_digits.safetensors",
        name: "v3-digits",
        latent: "/train/model/style_dim",
        wide: "/train/model/hidden",
        figure: "codebook",
        other: "v3-notes",
    },
    Family {
        file: "digit_classifier.safetensors",
        name: "digit-classifier",
        latent: "/train/hidden/0",
        wide: "/train/hidden/0",
        figure: "confusion",
        other: "ievae",
    },
];

/// Every hostile variant of a family's shipped checkpoint, by a short name.
fn hostile(f: &Family) -> Vec<(&'static str, Vec<u8>)> {
    let good = Parts::read(&model(f.file));
    let names = good.tensor_names();
    let matrix = names
        .iter()
        .find(|n| good.header[n.as_str()]["shape"].as_array().unwrap().len() >= 2)
        .unwrap()
        .clone();
    let mut misshapen = good.clone();
    let shape = misshapen.header[&matrix]["shape"].clone();
    let count: u64 = shape
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap())
        .product();
    misshapen.header[&matrix]["shape"] = json!([count]);
    let mut past_end = good.clone();
    let last = names
        .iter()
        .max_by_key(|n| past_end.offsets(n).1)
        .unwrap()
        .clone();
    let (start, _) = past_end.offsets(&last);
    past_end.header[&last]["data_offsets"] = json!([start, past_end.data.len() + 4096]);
    let mut huge_header = good.bytes();
    huge_header[..8].copy_from_slice(&(1u64 << 62).to_le_bytes());
    vec![
        (
            "latent-0",
            good.clone().set_config(f.latent, json!(0)).bytes(),
        ),
        (
            "latent-1",
            good.clone().set_config(f.latent, json!(1)).bytes(),
        ),
        (
            "negative",
            good.clone().set_config(f.latent, json!(-3)).bytes(),
        ),
        // 1e7 wide: an RNN or layer of 1e14 weights, 400 TB
        (
            "enormous",
            good.clone().set_config(f.wide, json!(10_000_000)).bytes(),
        ),
        (
            "wide-but-allowed",
            good.clone().set_config(f.wide, json!(4000)).bytes(),
        ),
        (
            "other-family",
            good.clone().set_metadata("family", f.other).bytes(),
        ),
        (
            "unknown-family",
            good.clone()
                .set_metadata("family", "no-such-family")
                .bytes(),
        ),
        ("missing-tensor", good.clone().without(&names[0]).bytes()),
        ("misshapen-tensor", misshapen.bytes()),
        ("offsets-past-end", past_end.bytes()),
        ("header-length-2^62", huge_header),
        (
            "config-not-json",
            good.clone()
                .set_metadata("config", "{\"train\": [1, 2")
                .bytes(),
        ),
    ]
}

/// A 1x3 array of latents: what a user would pass, never reached when the file is refused.
fn write_latents(path: &Path) {
    let z = candle_core::Tensor::new(&[[0.1f32, -0.2, 0.3]], &candle_core::Device::Cpu).unwrap();
    z.write_npy(path).unwrap();
}

/// One line naming the file, and nothing of a panic or a library's insides.
fn assert_one_clean_line(text: &str, file: &Path, what: &str) {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{what}: one line expected, got:\n{text}");
    let name = file.file_name().unwrap().to_string_lossy();
    assert!(
        lines[0].contains(name.as_ref()),
        "{what}: names {name}: {text}"
    );
    let lower = lines[0].to_lowercase();
    for leak in [
        "panicked",
        "backtrace",
        "stack",
        "candle_core::",
        "rust_begin",
    ] {
        assert!(!lower.contains(leak), "{what}: `{leak}` in {text}");
    }
}

fn refused_by_every_command(f: &Family) {
    let dir = tempfile::tempdir().unwrap();
    let latents = dir.path().join("z.npy");
    write_latents(&latents);
    let s = |p: &Path| p.to_str().unwrap().to_string();
    for (case, bytes) in hostile(f) {
        let file = dir.path().join(format!("{}-{case}.safetensors", f.name));
        std::fs::write(&file, &bytes).unwrap();
        let runs: [Vec<String>; 3] = [
            vec!["eval".into(), s(&file)],
            vec![
                "decode".into(),
                s(&file),
                "--latents".into(),
                s(&latents),
                "--out".into(),
                s(&dir.path().join("decoded.npy")),
            ],
            vec![
                "export".into(),
                s(&file),
                "--figure".into(),
                f.figure.into(),
                "--out".into(),
                s(&dir.path().join("figure.png")),
            ],
        ];
        for args in runs {
            let what = format!("{} {case}: {}", f.name, args[0]);
            let out = Command::new(env!("CARGO_BIN_EXE_latent-lab"))
                .args(&args)
                .env("RUST_BACKTRACE", "1")
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{what}: {stderr}");
            assert_one_clean_line(&stderr, &file, &what);
        }
    }
}

/// A tab: its title, the address of the model it shows (0: none), and how to type a path
/// into its checkpoint field.
type TabAccess = (
    &'static str,
    fn(&Harness<'static, App>) -> usize,
    fn(&mut Harness<'static, App>, String),
);

macro_rules! tab_access {
    ($title:expr, $tab:ty) => {
        (
            $title,
            |h| {
                common::tab::<$tab>(h)
                    .models
                    .a
                    .as_ref()
                    .map_or(0, |a| Arc::as_ptr(a) as usize)
            },
            |h, path| common::tab_mut::<$tab>(h).models.files.checkpoint.text = path,
        )
    };
}

/// The tab that opens a family's checkpoints.
fn tab_of(family: &str) -> Option<TabAccess> {
    use latent_lab::{ievae, relevance, sps_music, sps_vision, v3};
    Some(match family {
        "sps-music" => tab_access!("Pitch", sps_music::view::PitchTab),
        "sps-vision" => tab_access!("3D", sps_vision::view::VisionTab),
        "vae-relevance" => tab_access!("Relevance", relevance::view::RelevanceTab),
        "ievae" => tab_access!("Class x Pose", ievae::view::ClassPoseTab),
        "v3-notes" | "v3-digits" => tab_access!("Codebook", v3::view::CodebookTab),
        _ => return None,
    })
}

/// Every hostile file put in the tab's checkpoint field and opened with its Open button: one
/// clean line in the status bar each time, and the model on show is still the one from before.
fn refused_by_the_window(f: &Family) {
    let dir = tempfile::tempdir().unwrap();
    let Some((title, shown, type_path)) = tab_of(f.name) else {
        // no tab: the loader the command line uses is the whole story
        for (case, bytes) in hostile(f) {
            let file = dir.path().join(format!("{}-{case}.safetensors", f.name));
            std::fs::write(&file, &bytes).unwrap();
            let err = latent_lab::digits::classifier::DigitClassifier::load(&file).err();
            assert_one_clean_line(&err.unwrap().to_string(), &file, case);
        }
        return;
    };
    let mut harness = common::window_sized(&model(""), [1500.0, 2400.0]);
    harness.run_steps(2);
    common::open_tab(&mut harness, title);
    for (case, bytes) in hostile(f) {
        let file = dir.path().join(format!("{}-{case}.safetensors", f.name));
        std::fs::write(&file, &bytes).unwrap();
        let what = format!("{} {case}: Open in the window", f.name);
        let before = shown(&harness);
        assert_ne!(before, 0, "{what}: a model is on show");
        type_path(&mut harness, file.display().to_string());
        harness.run_steps(1);
        harness.get_by_label("Open").click();
        harness.run_steps(3);
        let notices = common::notices(&harness);
        let last = notices.last().cloned().unwrap_or_default();
        assert_one_clean_line(&last, &file, &what);
        let error = harness
            .state()
            .shared
            .notices
            .last()
            .is_some_and(|n| n.error);
        assert!(error, "{what}: told as an error: {last}");
        assert_eq!(shown(&harness), before, "{what}: the model on show changed");
    }
}

macro_rules! family_tests {
    ($($test:ident: $i:expr),*) => {$(
        #[test]
        fn $test() {
            refused_by_every_command(&FAMILIES[$i]);
            refused_by_the_window(&FAMILIES[$i]);
        }
    )*};
}

family_tests!(
    sps_music: 0,
    sps_vision: 1,
    vae_relevance: 2,
    ievae: 3,
    v3_notes: 4,
    v3_digits: 5,
    digit_classifier: 6
);

#[test]
fn every_family_is_covered() {
    let covered: Vec<&str> = FAMILIES.iter().map(|f| f.name).collect();
    for name in latent_lab::cli::family_names() {
        assert!(covered.contains(&name), "{name} has no hostile checkpoints");
    }
}

/// The body of the `checkpoint_config` fuzz target over hand-made configs: each opens or is
/// refused in one line; none panics. Unknown fields are ignored, so newer files still open.
#[test]
fn hand_made_configs_open_or_are_refused_cleanly() {
    let path = Path::new("hand-made.safetensors");
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    for f in FAMILIES {
        let good = std::fs::read(model(f.file)).unwrap();
        let mut parts = Parts::read(&model(f.file));
        let config: Value =
            serde_json::from_str(parts.metadata()["config"].as_str().unwrap()).unwrap();
        let mut extra = config.clone();
        let model_cfg = extra
            .pointer_mut(f.latent.rsplit_once('/').unwrap().0)
            .unwrap();
        if let Some(map) = model_cfg.as_object_mut() {
            map.insert("a_field_from_the_future".into(), json!([1, 2, 3]));
        }
        extra["a_key_from_the_future"] = json!({"x": 1});
        let with = |text: &str| latent_lab::nn::checkpoint::with_config(&good, text).unwrap();
        let open = |text: &str| latent_lab::cli::open_lab_bytes(&with(text), path);
        assert!(open(&config.to_string()).is_ok(), "{}: as shipped", f.name);
        assert!(
            open(&extra.to_string()).is_ok(),
            "{}: unknown fields are ignored",
            f.name
        );
        let with_value = |pointer: &str, value: Value| {
            let mut changed = config.clone();
            *changed.pointer_mut(pointer).unwrap() = value;
            changed.to_string()
        };
        let mut without_train = config.clone();
        without_train.as_object_mut().unwrap().remove("train");
        let hostile = [
            String::new(),
            "null".into(),
            "{}".into(),
            "[]".into(),
            "\u{fffd}\u{0}".into(),
            deep.clone(),
            r#"{"train": "fast"}"#.into(),
            with_value(f.wide, json!(1e300)),
            with_value(f.latent, json!("three")),
            without_train.to_string(),
            with_value(f.wide, json!(u64::MAX)),
            config.to_string().replace(",", ",\"model\":null,"),
        ];
        // all defaults: a family whose defaults are the shipped sizes opens it
        if let Err(e) = open(r#"{"train": {}}"#) {
            assert_one_clean_line(&e.to_string(), path, &format!("{}: defaults", f.name));
        }
        for text in hostile {
            let what = format!("{}: config {}", f.name, &text[..text.len().min(60)]);
            let err = open(&text).err().map(|e| e.to_string());
            assert!(err.is_some(), "{what}: accepted");
            assert_one_clean_line(&err.unwrap_or_default(), path, &what);
        }
    }
}
