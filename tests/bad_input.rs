//! Bad input gives one line naming the file, exit code 2, and overwrites nothing.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_latent-lab"))
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Run, expect exit 2 with a single stderr line that mentions `names`, and `out` untouched.
fn expect_refusal(args: &[&str], names: &Path, out: &Path) {
    std::fs::write(out, b"precious").unwrap();
    let result = bin().args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&result.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(
        result.status.code(),
        Some(2),
        "args {args:?}: stderr {stderr}"
    );
    assert_eq!(lines.len(), 1, "one error line expected: {stderr}");
    let name = names.file_name().unwrap().to_string_lossy();
    assert!(
        lines[0].contains(name.as_ref()),
        "the error names {name}: {}",
        lines[0]
    );
    assert_eq!(
        std::fs::read(out).unwrap(),
        b"precious",
        "output overwritten after {args:?}"
    );
}

#[test]
fn bad_checkpoints_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.png");
    let s = |p: &Path| p.to_str().unwrap().to_string();

    // truncated: the first half of a real checkpoint
    let good = dir.path().join("good.safetensors");
    let st = bin()
        .args([
            "import",
            &s(&fixture("sps_music_official_seed0.pt")),
            "--family",
            "sps-music",
            "--out",
            &s(&good),
        ])
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let bytes = std::fs::read(&good).unwrap();
    let truncated = dir.path().join("truncated.safetensors");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    expect_refusal(
        &[
            "export",
            &s(&truncated),
            "--figure",
            "embedding",
            "--out",
            &s(&out),
        ],
        &truncated,
        &out,
    );

    // wrong family: the same file with another family in its metadata
    let wrong = dir.path().join("wrong_family.safetensors");
    let text = bytes.clone();
    let needle = b"\"sps-music\"";
    let pos = text
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("family in header");
    let mut patched = text.clone();
    patched[pos..pos + needle.len()].copy_from_slice(b"\"sps-video\"");
    std::fs::write(&wrong, &patched).unwrap();
    expect_refusal(&["eval", &s(&wrong)], &wrong, &out);

    // wrong shapes: a fast-preset config over paper-sized tensors
    let shapes = dir.path().join("wrong_shapes.safetensors");
    let needle = b"\\\"rnn_hidden\\\":256";
    let pos = text
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("config in header");
    let mut patched = text.clone();
    patched[pos..pos + needle.len()].copy_from_slice(b"\\\"rnn_hidden\\\":255");
    std::fs::write(&shapes, &patched).unwrap();
    expect_refusal(
        &[
            "export",
            &s(&shapes),
            "--figure",
            "traversal",
            "--out",
            &s(&out),
        ],
        &shapes,
        &out,
    );

    // not a checkpoint at all
    let text_file = dir.path().join("notes.safetensors");
    std::fs::write(&text_file, "hello").unwrap();
    expect_refusal(
        &[
            "decode",
            &s(&text_file),
            "--latents",
            "z.npy",
            "--out",
            &s(&out),
        ],
        &text_file,
        &out,
    );
}

#[test]
fn bad_pytorch_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.safetensors");
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let text = dir.path().join("text.pt");
    std::fs::write(&text, "not a zip").unwrap();
    expect_refusal(
        &[
            "import",
            &s(&text),
            "--family",
            "sps-music",
            "--out",
            &s(&out),
        ],
        &text,
        &out,
    );
    // a real .pt cut short
    let bytes = std::fs::read(fixture("sps_music_official_seed0.pt")).unwrap();
    let cut = dir.path().join("cut.pt");
    std::fs::write(&cut, &bytes[..bytes.len() / 3]).unwrap();
    expect_refusal(
        &[
            "import",
            &s(&cut),
            "--family",
            "sps-music",
            "--out",
            &s(&out),
        ],
        &cut,
        &out,
    );
}

#[test]
fn bad_training_data_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("model.safetensors");
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let sf2 = dir.path().join("corrupt.sf2");
    std::fs::write(&sf2, b"RIFF\x10\x00\x00\x00sfbkLIST garbage").unwrap();
    expect_refusal(
        &[
            "train",
            "sps-music",
            "--data",
            &format!("soundfont:{}", s(&sf2)),
            "--steps",
            "1",
            "--out",
            &s(&out),
        ],
        &sf2,
        &out,
    );

    let empty = dir.path().join("empty_folder");
    std::fs::create_dir(&empty).unwrap();
    expect_refusal(
        &[
            "train",
            "sps-music",
            "--data",
            &format!("wav-dir:{}", s(&empty)),
            "--steps",
            "1",
            "--out",
            &s(&out),
        ],
        &empty,
        &out,
    );

    let notes = dir.path().join("notes");
    std::fs::create_dir(&notes).unwrap();
    let fake = notes.join("C4.wav");
    std::fs::write(&fake, "this is text, not audio").unwrap();
    expect_refusal(
        &[
            "train",
            "sps-music",
            "--data",
            &format!("wav-dir:{}", s(&notes)),
            "--steps",
            "1",
            "--out",
            &s(&out),
        ],
        &fake,
        &out,
    );
}

/// A valid SoundFont without General MIDI instruments (its presets in a drum bank and a
/// variation bank only) is refused by every lab that plays General MIDI programs, rather than
/// having one of its presets stand in for every instrument.
#[test]
fn a_soundfont_without_general_midi_instruments_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("model.safetensors");
    let font = fixture("no_general_midi.sf2");
    let data = format!("soundfont:{}", font.to_str().unwrap());
    let out_s = out.to_str().unwrap().to_string();
    for family in ["sps-music", "v3-notes"] {
        let args = [
            "train", family, "--data", &data, "--steps", "1", "--out", &out_s,
        ];
        expect_refusal(&args, &font, &out);
        let refused = bin().args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(stderr.contains("not a General MIDI SoundFont"), "{stderr}");
    }
}

/// MNIST IDX and CSV digit files: wrong magic number, wrong sizes, truncated, ragged rows,
/// non-numbers. Each is refused with one line naming the file (and the line for CSV).
#[test]
fn bad_digit_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("unused.txt");
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let clf = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/digit_classifier.safetensors");
    let images = |n: u32, rows: u32, cols: u32, data: usize| {
        let mut b = vec![0u8, 0, 8, 3];
        for d in [n, rows, cols] {
            b.extend_from_slice(&d.to_be_bytes());
        }
        b.extend(std::iter::repeat_n(0u8, data));
        b
    };
    let labels = |l: &[u8]| {
        let mut b = vec![0u8, 0, 8, 1];
        b.extend_from_slice(&(l.len() as u32).to_be_bytes());
        b.extend_from_slice(l);
        b
    };
    let good_labels = dir.path().join("labels-idx1-ubyte");
    std::fs::write(&good_labels, labels(&[1, 2])).unwrap();
    let eval_idx = |imgs: &Path, labs: &Path, names: &Path| {
        expect_refusal(
            &[
                "eval",
                &s(&clf),
                "--data",
                &format!("idx:{},{}", s(imgs), s(labs)),
            ],
            names,
            &out,
        );
    };

    let mut wrong_magic = images(2, 28, 28, 2 * 784);
    wrong_magic[3] = 1;
    let p = dir.path().join("wrong-magic-idx3-ubyte");
    std::fs::write(&p, &wrong_magic).unwrap();
    eval_idx(&p, &good_labels, &p);

    let p = dir.path().join("truncated-idx3-ubyte");
    std::fs::write(&p, &images(2, 28, 28, 2 * 784)[..1000]).unwrap();
    eval_idx(&p, &good_labels, &p);

    let p = dir.path().join("wrong-sizes-idx3-ubyte");
    std::fs::write(&p, images(2, 28, 28, 3 * 784)).unwrap();
    eval_idx(&p, &good_labels, &p);

    let p = dir.path().join("huge-idx3-ubyte");
    std::fs::write(&p, images(u32::MAX, u32::MAX, 2, 0)).unwrap();
    eval_idx(&p, &good_labels, &p);

    // three labels for two images: the labels file is named
    let good_images = dir.path().join("images-idx3-ubyte");
    std::fs::write(&good_images, images(2, 28, 28, 2 * 784)).unwrap();
    let three = dir.path().join("three-labels-idx1-ubyte");
    std::fs::write(&three, labels(&[1, 2, 3])).unwrap();
    eval_idx(&good_images, &three, &three);
    // gzip as shipped by the MNIST site
    let gz = dir.path().join("train-images-idx3-ubyte.gz");
    std::fs::write(&gz, [0x1f, 0x8b, 8, 0, 0, 0, 0, 0]).unwrap();
    eval_idx(&gz, &good_labels, &gz);

    // a folder without MNIST's files names the missing file
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    expect_refusal(
        &["eval", &s(&clf), "--data", &format!("idx:{}", s(&empty))],
        &empty,
        &out,
    );

    let row = |label: &str, v: &str| {
        let mut r = label.to_string();
        for _ in 0..784 {
            r.push(',');
            r.push_str(v);
        }
        r
    };
    let eval_csv = |name: &str, text: String, line: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        expect_refusal(
            &["eval", &s(&clf), "--data", &format!("csv:{}", s(&p))],
            &p,
            &out,
        );
        let err = bin()
            .args(["eval", &s(&clf), "--data", &format!("csv:{}", s(&p))])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&err.stderr);
        assert!(stderr.contains(line), "{name}: {stderr}");
    };
    eval_csv(
        "ragged.csv",
        format!(
            "{}\n{}\n{}",
            row("1", "0"),
            row("2", "0"),
            &row("3", "0")[..300]
        ),
        "line 3",
    );
    eval_csv(
        "letters.csv",
        format!("{}\n{}", row("1", "0"), row("2", "ink")),
        "line 2",
    );
    eval_csv("label.csv", row("x", "0"), "line 1");
    eval_csv("binary.csv", "\u{0}\u{1}\u{2}".into(), "line 1");
}

/// Training the IE-VAE on bad digit files stops before training, naming the file; absurd
/// label counts are refused too.
#[test]
fn ievae_refuses_bad_training_data() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ievae.safetensors");
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let csv = dir.path().join("short_row.csv");
    std::fs::write(&csv, "3,0,0,0\n").unwrap();
    expect_refusal(
        &[
            "train",
            "ievae",
            "--data",
            &format!("csv:{}", s(&csv)),
            "--out",
            &s(&out),
        ],
        &csv,
        &out,
    );
    let idx = dir.path().join("labels-as-images-idx3-ubyte");
    std::fs::write(&idx, [0u8, 0, 8, 1, 0, 0, 0, 1, 4]).unwrap();
    let labels = dir.path().join("l-idx1-ubyte");
    std::fs::write(&labels, [0u8, 0, 8, 1, 0, 0, 0, 1, 4]).unwrap();
    expect_refusal(
        &[
            "train",
            "ievae",
            "--data",
            &format!("idx:{},{}", s(&idx), s(&labels)),
            "--out",
            &s(&out),
        ],
        &idx,
        &out,
    );
    std::fs::write(&out, b"precious").unwrap();
    let r = bin()
        .args(["train", "ievae", "--labels", "5", "--out", &s(&out)])
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&r.stderr).contains("--labels 5"));
    assert_eq!(std::fs::read(&out).unwrap(), b"precious");
}

/// Run, expect exit code 2.
fn exits_with_2(args: &[&str]) {
    let result = bin().args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(2), "{args:?}: {stderr}");
}

/// The arguments of `decode` of `model` from `latents` into `out`.
fn decode(model: &str, latents: &Path, out: &Path) -> [String; 6] {
    let s = |p: &Path| p.to_str().unwrap().to_string();
    [
        "decode".into(),
        model.into(),
        "--latents".into(),
        s(latents),
        "--out".into(),
        s(out),
    ]
}

/// A little-endian f32 `.npy` file of `shape` (as Python writes it) holding `data`.
fn npy(shape: &str, data: &[f32]) -> Vec<u8> {
    let header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
    npy_of(&header, data)
}

/// A `.npy` file of the header dictionary `header` and `data`.
fn npy_of(header: &str, data: &[f32]) -> Vec<u8> {
    let padded = format!("{header:<117}\n");
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(padded.len() as u16).to_le_bytes());
    bytes.extend_from_slice(padded.as_bytes());
    bytes.extend(data.iter().flat_map(|v| v.to_le_bytes()));
    bytes
}

/// Files of the right name and the wrong nature: a device for every kind of input, a `.npy`
/// whose header claims more than it holds, weights that are NaN, a SoundFont whose sample
/// claims an impossible rate, too few events to hold any out; and settings no model can be
/// built with. Each is refused by name with exit code 2, before anything is allocated for it.
#[test]
fn hostile_files_and_settings_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let out = dir.path().join("out.npy");
    let model = |name: &str| {
        s(&PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("models")
            .join(name))
    };

    // a device reports a length of 0 and never ends: refused before it is read
    let zero = Path::new("/dev/zero");
    if zero.exists() {
        expect_refusal(&["eval", "/dev/zero"], zero, &out);
        for data in ["csv:/dev/zero", "lhe:/dev/zero"] {
            let args = ["eval", &model("vae_relevance.safetensors"), "--data", data];
            expect_refusal(&args, zero, &out);
        }
        let args = [
            "eval",
            &model("sps_music.safetensors"),
            "--data",
            "soundfont:/dev/zero",
        ];
        expect_refusal(&args, zero, &out);
    }

    // a .npy header promising 10^12 rows of 3 floats, and no data
    let huge = dir.path().join("huge.npy");
    std::fs::write(&huge, npy("(1000000000000, 3)", &[])).unwrap();
    let args = decode(&model("sps_vision.safetensors"), &huge, &out);
    expect_refusal(&args.each_ref().map(String::as_str), &huge, &out);
    // the same, spelt as the reader also takes it: no quotes, a type without its size
    let bare = dir.path().join("bare.npy");
    std::fs::write(
        &bare,
        npy_of("{descr: '<f', shape: (1000000000000, 3)}", &[]),
    )
    .unwrap();
    let args = decode(&model("sps_vision.safetensors"), &bare, &out);
    expect_refusal(&args.each_ref().map(String::as_str), &bare, &out);

    // 8-bit pixels where the encoder takes RGB in [0, 1]
    let pixels = dir.path().join("pixels.npy");
    std::fs::write(&pixels, npy("(1, 3, 32, 32)", &[255.0; 3 * 32 * 32])).unwrap();
    let vision = model("sps_vision.safetensors");
    let args = ["encode", &vision, "--input", &s(&pixels), "--out", &s(&out)];
    expect_refusal(&args, &pixels, &out);

    // an empty batch of latents, and more digits than a data set may hold writers for
    let empty = dir.path().join("empty.npy");
    std::fs::write(&empty, npy("(0, 9)", &[])).unwrap();
    let args = decode(&model("ievae_digits.safetensors"), &empty, &out);
    expect_refusal(&args.each_ref().map(String::as_str), &empty, &out);
    let classifier = model("digit_classifier.safetensors");
    exits_with_2(&["eval", &classifier, "--data", "digits:100000"]);

    // latents so far out that the decoder overflows: refused rather than written as NaN
    let far = dir.path().join("far.npy");
    std::fs::write(&far, npy("(1, 32)", &[1e20; 32])).unwrap();
    let args = decode(&model("v3_notes.safetensors"), &far, &out);
    expect_refusal(&args.each_ref().map(String::as_str), &out, &out);

    // an output that is a link: writing would replace the link, not the file it points to
    let target = dir.path().join("target.npy");
    let link = dir.path().join("link.npy");
    std::fs::write(&target, b"kept").unwrap();
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let ok = dir.path().join("ok.npy");
    std::fs::write(&ok, npy("(1, 3)", &[0.0; 3])).unwrap();
    let args = decode(&model("sps_vision.safetensors"), &ok, &link);
    exits_with_2(&args.each_ref().map(String::as_str));
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(std::fs::read(&target).unwrap(), b"kept");

    // a checkpoint whose last weight is NaN
    let nan = dir.path().join("nan.safetensors");
    let mut bytes = std::fs::read(model("vae_relevance.safetensors")).unwrap();
    let n = bytes.len();
    bytes[n - 4..].copy_from_slice(&f32::NAN.to_le_bytes());
    std::fs::write(&nan, &bytes).unwrap();
    expect_refusal(&["eval", &s(&nan)], &nan, &out);

    // a SoundFont whose first sample claims a rate of 4294967295 Hz
    let font = std::fs::read(fixture("no_general_midi.sf2")).unwrap();
    let shdr = font.windows(4).position(|w| w == b"shdr").unwrap();
    let mut bad_rate = font.clone();
    bad_rate[shdr + 8 + 36..shdr + 8 + 40].copy_from_slice(&[0xff; 4]);
    let sf2 = dir.path().join("bad_rate.sf2");
    std::fs::write(&sf2, &bad_rate).unwrap();
    let data = format!("soundfont:{}", s(&sf2));
    let args = ["eval", &model("sps_music.safetensors"), "--data", &data];
    expect_refusal(&args, &sf2, &out);
    let refused = bin().args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("sample rate of -1 Hz"), "{stderr}");

    // two events: every fifth is held out, so nothing would be measured
    let csv = dir.path().join("two.csv");
    std::fs::write(&csv, "a,b\n1,2\n3,4\n").unwrap();
    let data = format!("csv:{}", s(&csv));
    expect_refusal(
        &["eval", &model("vae_relevance.safetensors"), "--data", &data],
        &csv,
        &out,
    );

    // sizes a checkpoint would be refused for, and more threads than any machine has
    let ckpt = dir.path().join("m.safetensors");
    for args in [
        vec!["--set", "model.hidden=100000000"],
        vec!["--set", "model.hidden=0"],
        vec!["--set", "batch=0"],
        vec!["--set", "lr=-1"],
        vec!["--threads", "100000"],
        vec!["--labels", "10"],
    ] {
        let mut all = vec![
            "train",
            "vae-relevance",
            "--steps",
            "1",
            "--out",
            ckpt.to_str().unwrap(),
        ];
        all.extend(args.iter().copied());
        let result = bin().args(&all).output().unwrap();
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert_eq!(result.status.code(), Some(2), "{all:?}: {stderr}");
        assert!(!ckpt.exists(), "{all:?} built a model");
    }
}

/// A batch no machine has the memory for is refused by every family before its data is read
/// or its model built, naming the bound, rather than aborting when the first step allocates.
#[test]
fn every_family_refuses_a_batch_beyond_its_memory() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = dir.path().join("m.safetensors");
    for family in [
        "sps-music",
        "sps-vision",
        "v3-notes",
        "v3-digits",
        "ievae",
        "vae-relevance",
        "digit-classifier",
    ] {
        let result = bin()
            .args(["train", family, "--steps", "1", "--set", "batch=100000000"])
            .arg("--out")
            .arg(&ckpt)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert_eq!(result.status.code(), Some(2), "{family}: {stderr}");
        assert!(
            stderr.starts_with("error: --set: batch = 100000000, must be 1..="),
            "{family}: {stderr}"
        );
        assert!(!ckpt.exists(), "{family} built a model");
    }
}

/// The affine form of the 3D head's divisor needs the divisor: asked for alone, it is refused
/// rather than ignored.
#[test]
fn an_affine_divisor_without_the_projective_head_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.safetensors");
    let args = [
        "train",
        "sps-vision",
        "--steps",
        "1",
        "--set",
        "model.encoder.keypoints.projective=false",
        "--set",
        "model.encoder.keypoints.affine_depth=true",
        "--out",
        out.to_str().unwrap(),
    ];
    expect_refusal(&args, Path::new("projective=true"), &out);
}

/// A training that fails never replaces the file its `--out` names: diverging at its first
/// step, it leaves the previous checkpoint as it was and saves nothing.
#[test]
fn a_failed_training_leaves_the_previous_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("previous.safetensors");
    std::fs::write(&out, b"the model trained yesterday").unwrap();
    let result = bin()
        .args([
            "train",
            "vae-relevance",
            "--steps",
            "3",
            "--set",
            "lr=1e30",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("diverged") && stderr.contains("learning rate"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&out).unwrap(), b"the model trained yesterday");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "{stderr}"
    );
}
