//! V3 data: samples of several fragments that share one style and differ in content.
//! "V3 notes" (InsNotes): the twelve notes C4..B4 of one instrument rendered from a SoundFont,
//! one second each, 512 bins x 32 frames; content = pitch class, style = instrument.

use std::path::Path;

use anyhow::{Context, bail};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use crate::audio::dsp::{self, Stft};
use crate::audio::soundfont::{NoteRenderer, NoteSpec};

/// Which kind of data a model was trained on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Domain {
    #[serde(rename = "notes")]
    Notes,
    #[serde(rename = "digits")]
    Digits,
}

impl Domain {
    /// (channels, height, width) of one fragment
    pub fn fragment_shape(self) -> [usize; 3] {
        match self {
            Domain::Notes => [1, NOTE_BINS, NOTE_FRAMES],
            Domain::Digits => [3, DIGIT_H, DIGIT_W],
        }
    }
    pub fn fragment_len(self) -> usize {
        self.fragment_shape().iter().product()
    }
    /// fragments per sample
    pub fn fragments(self) -> usize {
        match self {
            Domain::Notes => 12,
            Domain::Digits => 10,
        }
    }
    pub fn content_word(self) -> &'static str {
        match self {
            Domain::Notes => "pitch",
            Domain::Digits => "digit",
        }
    }
    pub fn style_word(self) -> &'static str {
        match self {
            Domain::Notes => "instrument",
            Domain::Digits => "colour",
        }
    }
}

/// Frequency bins kept of the 513 of an n_fft 1024 STFT (the Nyquist bin is dropped).
pub const NOTE_BINS: usize = 512;
/// STFT frames of a one-second note at hop 512.
pub const NOTE_FRAMES: usize = 32;
/// Samples of a one-second note at 16 kHz.
pub const NOTE_SAMPLES: usize = 16_000;
/// The key is held this long, then released.
pub const NOTE_HOLD: usize = 12_000;
pub const DIGIT_H: usize = 48;
pub const DIGIT_W: usize = 32;

/// C4..B4 as MIDI keys, the content labels of V3 notes.
pub const NOTE_PITCHES: std::ops::Range<i32> = 60..72;
pub const PITCH_NAMES: [&str; 12] = [
    "C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B",
];

/// General MIDI programs (0-based) of the training instruments, as in the paper's InsNotes.
pub const TRAIN_PROGRAMS: [(i32, &str); 12] = [
    (64, "Soprano Sax"),
    (19, "Church Organ"),
    (21, "Accordion"),
    (41, "Viola"),
    (56, "Trumpet"),
    (59, "Muted Trumpet"),
    (68, "Oboe"),
    (71, "Clarinet"),
    (72, "Piccolo"),
    (75, "Pan Flute"),
    (22, "Harmonica"),
    (52, "Choir Aahs"),
];
/// Instruments never seen in training (out-of-distribution styles).
pub const HELD_OUT_PROGRAMS: [(i32, &str); 4] = [
    (0, "Acoustic Grand Piano"),
    (4, "Electric Piano"),
    (73, "Flute"),
    (78, "Whistle"),
];

/// Renderings of each training instrument used for training, and held out for evaluation; the
/// held-out instruments get `OOD_RENDERINGS`.
pub const TRAIN_RENDERINGS: usize = 10;
pub const TEST_RENDERINGS: usize = 2;
pub const OOD_RENDERINGS: usize = 3;

/// One sample: fragments that share a style, each with its content label.
#[derive(Clone, Debug)]
pub struct Sample {
    pub style: usize,
    pub contents: Vec<usize>,
    /// `contents.len()` fragments, each `fragment_len` values (channel, row, column order)
    pub fragments: Vec<f32>,
}

impl Sample {
    pub fn len(&self) -> usize {
        self.contents.len()
    }
    pub fn is_empty(&self) -> bool {
        self.contents.is_empty()
    }
    pub fn fragment(&self, i: usize, fragment_len: usize) -> &[f32] {
        &self.fragments[i * fragment_len..(i + 1) * fragment_len]
    }
}

/// Training samples, held-out samples of the training styles, and samples of held-out styles.
#[derive(Clone, Debug)]
pub struct Dataset {
    pub domain: Domain,
    pub source: String,
    pub content_names: Vec<String>,
    /// training styles first, then the held-out ones
    pub style_names: Vec<String>,
    pub n_train_styles: usize,
    pub train: Vec<Sample>,
    pub test: Vec<Sample>,
    pub ood: Vec<Sample>,
}

impl Dataset {
    pub fn fragment_len(&self) -> usize {
        self.domain.fragment_len()
    }

    /// Every sample of a split as (fragments, content labels, style labels).
    pub fn flatten(samples: &[Sample]) -> (Vec<&[f32]>, Vec<usize>, Vec<usize>) {
        let mut frags = Vec::new();
        let mut contents = Vec::new();
        let mut styles = Vec::new();
        for s in samples {
            let len = s.fragments.len() / s.len().max(1);
            for i in 0..s.len() {
                frags.push(s.fragment(i, len));
                contents.push(s.contents[i]);
                styles.push(s.style);
            }
        }
        (frags, contents, styles)
    }

    /// Indices of a shuffled epoch over the training samples.
    pub fn epoch(&self, rng: &mut StdRng) -> Vec<usize> {
        let mut idx: Vec<usize> = (0..self.train.len()).collect();
        idx.shuffle(rng);
        idx
    }

    /// Random fragments in the shape of real data, for benchmarks that time the model.
    pub fn synthetic(domain: Domain, samples: usize, seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let n = domain.fragments();
        let make = |rng: &mut StdRng, style: usize| Sample {
            style,
            contents: (0..n).collect(),
            fragments: (0..n * domain.fragment_len())
                .map(|_| rng.random::<f32>())
                .collect(),
        };
        let train = (0..samples).map(|i| make(&mut rng, i % 4)).collect();
        let test = (0..2).map(|i| make(&mut rng, i)).collect();
        Self {
            domain,
            source: "synthetic".into(),
            content_names: (0..n).map(|i| i.to_string()).collect(),
            style_names: (0..4).map(|i| format!("noise {i}")).collect(),
            n_train_styles: 4,
            train,
            test,
            ood: Vec::new(),
        }
    }
}

/// How one take of an instrument is played: velocity, tuning and onset vary from take to take
/// (every sample is a new take), and are the same for the twelve notes of a take, so that
/// within a sample only the pitch changes.
fn take_variation(rng: &mut StdRng) -> (i32, f32, usize) {
    let velocity = rng.random_range(64..=120);
    let detune = rng.random_range(-12.0..12.0);
    let onset = rng.random_range(0..640);
    (velocity, detune, onset)
}

/// The twelve notes of one rendering of an instrument as features: audio normalised to a peak
/// of 0.5 over the whole take, STFT (n_fft 1024, hop 512), `magnitude_to_feature`, 512 bins x 32
/// frames per note (bin-major).
pub fn render_take(
    renderer: &mut NoteRenderer,
    stft: &mut Stft,
    program: i32,
    seed: u64,
) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    let (velocity, detune, onset) = take_variation(&mut rng);
    let mut notes: Vec<Vec<f32>> = Vec::with_capacity(12);
    for pitch in NOTE_PITCHES {
        let spec = NoteSpec {
            program,
            pitch,
            velocity,
            detune_cents: detune,
            hold: NOTE_HOLD - onset,
            total: NOTE_SAMPLES - onset,
        };
        let mut audio = vec![0f32; onset];
        audio.extend(renderer.render(&spec));
        notes.push(audio);
    }
    let peak = notes
        .iter()
        .flat_map(|n| n.iter())
        .fold(0f32, |m, s| m.max(s.abs()));
    let gain = if peak > 0.0 { 0.5 / peak } else { 0.0 };
    let mut features = Vec::with_capacity(12 * NOTE_BINS * NOTE_FRAMES);
    for note in &mut notes {
        note.iter_mut().for_each(|s| *s *= gain);
        let (frames, feats) = dsp::feature_frames(stft, note);
        for b in 0..NOTE_BINS {
            for t in 0..NOTE_FRAMES {
                features.push(if t < frames {
                    feats[t * dsp::N_BINS + b]
                } else {
                    0.0
                });
            }
        }
    }
    features
}

/// Render V3 notes from a SoundFont: `TRAIN_RENDERINGS` + `TEST_RENDERINGS` takes of each
/// training instrument and `OOD_RENDERINGS` of each held-out one.
pub fn render_notes(path: &Path, progress: &dyn Fn(String)) -> anyhow::Result<Dataset> {
    let mut renderer = NoteRenderer::open(path)?;
    let mut stft = Stft::new();
    let programs: Vec<(i32, &str)> = TRAIN_PROGRAMS
        .iter()
        .chain(HELD_OUT_PROGRAMS.iter())
        .copied()
        .collect();
    let (mut train, mut test, mut ood) = (Vec::new(), Vec::new(), Vec::new());
    for (style, (program, name)) in programs.iter().enumerate() {
        progress(format!("rendering {name} ({}/{})", style + 1, programs.len()));
        let held_out = style >= TRAIN_PROGRAMS.len();
        let takes = if held_out {
            OOD_RENDERINGS
        } else {
            TRAIN_RENDERINGS + TEST_RENDERINGS
        };
        for take in 0..takes {
            let seed = 1000 * (*program as u64 + 1) + take as u64;
            let sample = Sample {
                style,
                contents: (0..12).collect(),
                fragments: render_take(&mut renderer, &mut stft, *program, seed),
            };
            if held_out {
                ood.push(sample);
            } else if take < TRAIN_RENDERINGS {
                train.push(sample);
            } else {
                test.push(sample);
            }
        }
    }
    let silent = train
        .iter()
        .chain(&test)
        .filter(|s| s.fragments.iter().all(|v| *v == 0.0))
        .count();
    if silent > 0 {
        bail!(
            "{}: {silent} takes rendered silent (the SoundFont lacks some General MIDI programs)",
            path.display()
        );
    }
    Ok(Dataset {
        domain: Domain::Notes,
        source: format!("soundfont:{}", path.display()),
        content_names: NOTE_PITCHES
            .map(|p| format!("{}{}", PITCH_NAMES[(p % 12) as usize], p / 12 - 1))
            .collect(),
        style_names: programs.iter().map(|p| p.1.to_string()).collect(),
        n_train_styles: TRAIN_PROGRAMS.len(),
        train,
        test,
        ood,
    })
}

/// Open a `--data` spec for a domain.
pub fn load(domain: Domain, spec: &str, progress: &dyn Fn(String)) -> anyhow::Result<Dataset> {
    match domain {
        Domain::Notes => {
            let path = if spec.is_empty() || spec == "soundfont" {
                crate::audio::soundfont::default_soundfont_path()?
            } else if let Some(p) = spec.strip_prefix("soundfont:") {
                p.into()
            } else {
                bail!("{spec}: unknown data source for v3-notes (use soundfont or soundfont:PATH.sf2)")
            };
            render_notes(&path, progress).with_context(|| format!("V3 notes from {spec}"))
        }
        Domain::Digits => bail!("{spec}: written digits are not available in this build"),
    }
}

pub fn default_spec(domain: Domain) -> &'static str {
    match domain {
        Domain::Notes => "soundfont",
        Domain::Digits => "digits",
    }
}
