//! V3 data: samples of several fragments that share one style and differ in content.
//! "V3 notes" (InsNotes): the twelve notes C4..B4 of one instrument rendered from a SoundFont,
//! one second each, 512 bins x 32 frames; content = pitch class, style = instrument.

use std::path::Path;

use anyhow::bail;
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
    let velocity = rng.random_range(92..=108);
    let detune = rng.random_range(-6.0..6.0);
    let onset = rng.random_range(0..240);
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
) -> anyhow::Result<Vec<f32>> {
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
        audio.extend(renderer.render(&spec)?);
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
    Ok(features)
}

/// The training programs, then the held-out ones.
pub fn all_programs() -> Vec<(i32, &'static str)> {
    TRAIN_PROGRAMS
        .into_iter()
        .chain(HELD_OUT_PROGRAMS)
        .collect()
}

/// Render V3 notes from a SoundFont: `TRAIN_RENDERINGS` + `TEST_RENDERINGS` takes of each
/// training instrument and `OOD_RENDERINGS` of each held-out one.
pub fn render_notes(path: &Path, progress: &dyn Fn(String)) -> anyhow::Result<Dataset> {
    let programs = all_programs();
    let mut renderer = NoteRenderer::open(path, &programs)?;
    if let Some(w) = renderer.warning() {
        progress(format!("{}{w}", crate::worker::WARNING));
    }
    let mut stft = Stft::new();
    let (mut train, mut test, mut ood) = (Vec::new(), Vec::new(), Vec::new());
    for (style, (program, name)) in programs.iter().enumerate() {
        progress(format!(
            "rendering {name} ({}/{})",
            style + 1,
            programs.len()
        ));
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
                fragments: render_take(&mut renderer, &mut stft, *program, seed)?,
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
            "{}: {silent} takes rendered silent (the presets that play them sound nothing at their keys)",
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
                bail!(
                    "{spec}: unknown data source for v3-notes (use soundfont or soundfont:PATH.sf2 (or .sf3))"
                )
            };
            // every error of the renderer names the file
            render_notes(&path, progress)
        }
        Domain::Digits => {
            progress(format!("preparing digits from {spec}"));
            let source = crate::digits::Source::parse(spec, digit_recipe())?;
            let split = source.load()?;
            let rows = digit_rows(&split, spec);
            // a row holds each digit once: data short of a digit, in training or held out,
            // makes no rows there and leaves nothing to learn from or to measure on
            if rows.train.is_empty() || rows.test.is_empty() {
                bail!(
                    "{spec}: the digits make {} training and {} held-out rows of 0-9; a row needs one of each digit, in both parts",
                    rows.train.len(),
                    rows.test.len()
                );
            }
            Ok(rows)
        }
    }
}

/// Ink colours, one per digit style (a style's number indexes them): the first
/// `TRAIN_INKS` ink the training rows, the rest are never seen in training.
pub const INKS: [([f32; 3], &str); 16] = [
    ([0.80, 0.10, 0.10], "red"),
    ([0.10, 0.55, 0.15], "green"),
    ([0.10, 0.20, 0.85], "blue"),
    ([0.95, 0.55, 0.05], "orange"),
    ([0.55, 0.15, 0.70], "purple"),
    ([0.05, 0.60, 0.60], "teal"),
    ([0.45, 0.28, 0.10], "brown"),
    ([0.10, 0.10, 0.10], "black"),
    // held out
    ([0.90, 0.20, 0.60], "pink"),
    ([0.50, 0.55, 0.10], "olive"),
    ([0.10, 0.10, 0.45], "navy"),
    ([0.85, 0.70, 0.05], "gold"),
    ([0.50, 0.50, 0.50], "grey"),
    ([0.10, 0.70, 0.90], "sky"),
    ([0.50, 0.05, 0.15], "maroon"),
    ([0.45, 0.80, 0.20], "lime"),
];
pub const TRAIN_INKS: usize = 8;
pub const HELD_OUT_INKS: usize = INKS.len() - TRAIN_INKS;

/// Rows per ink colour: training rows, held-out rows of training colours, rows of held-out colours.
pub const DIGIT_TRAIN_ROWS_PER_INK: usize = 40;
pub const DIGIT_TEST_ROWS_PER_INK: usize = 4;
pub const DIGIT_OOD_ROWS_PER_INK: usize = 3;

/// Generated digits for V3: one writer per row, every digit once (the generator's own order
/// is shuffled per writer), test rows by writers absent from training.
pub fn digit_recipe() -> crate::digits::Recipe {
    crate::digits::Recipe {
        train_writers: TRAIN_INKS * DIGIT_TRAIN_ROWS_PER_INK,
        test_writers: TRAIN_INKS * DIGIT_TEST_ROWS_PER_INK + HELD_OUT_INKS * DIGIT_OOD_ROWS_PER_INK,
        per_digit: 1,
        seed: 7,
    }
}

/// Standard deviation, in fragment pixels, of a digit's ink along the vertical after
/// [`digit_fragment`]'s normalisation: a digit about 28 pixels tall in the 48-pixel frame.
pub const DIGIT_INK_SD: f32 = 7.0;

/// Where a digit's ink sits and how it leans, from its moments: centre of mass, the shear
/// that makes the ink's x-y covariance zero (the writer's slant), the vertical spread.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct InkMoments {
    pub cx: f32,
    pub cy: f32,
    /// horizontal shift per pixel down (x = cx + shear * (y - cy) is the ink's axis)
    pub shear: f32,
    pub sd_y: f32,
}

/// The moments of a 28x28 digit; `None` when it holds (almost) no ink.
pub fn ink_moments(image: &[f32]) -> Option<InkMoments> {
    use crate::digits::SIDE;
    let at = |x: usize, y: usize| image.get(y * SIDE + x).copied().unwrap_or(0.0).max(0.0);
    let mass: f32 = (0..SIDE * SIDE).map(|i| at(i % SIDE, i / SIDE)).sum();
    if mass.is_nan() || mass < 1.0 {
        return None;
    }
    let (mut cx, mut cy) = (0f32, 0f32);
    for y in 0..SIDE {
        for x in 0..SIDE {
            cx += x as f32 * at(x, y) / mass;
            cy += y as f32 * at(x, y) / mass;
        }
    }
    let (mut sxy, mut syy) = (0f32, 0f32);
    for y in 0..SIDE {
        for x in 0..SIDE {
            let (dx, dy) = (x as f32 - cx, y as f32 - cy);
            sxy += at(x, y) * dx * dy;
            syy += at(x, y) * dy * dy;
        }
    }
    let sd_y = (syy / mass).sqrt();
    if sd_y.is_nan() || sd_y < 0.5 {
        return None;
    }
    Some(InkMoments {
        cx,
        cy,
        shear: (sxy / syy).clamp(-1.0, 1.0),
        sd_y,
    })
}

/// A 28x28 digit (ink in [0, 1]) as a 3x48x32 fragment, ink of `colour` on white paper.
/// The digit is normalised by its moments, as MNIST's digits are centred by their centre of
/// mass and deskewed digits are a classic preprocessing: its centre of mass goes to the
/// middle of the frame, its slant is sheared upright, and it is scaled (keeping its aspect)
/// so that its ink's vertical spread is [`DIGIT_INK_SD`] pixels (bilinear resampling). What
/// stays is the glyph: a writer's slant, size and placement no longer move the ink around,
/// which otherwise makes one writer's 4 nearer in pixels to another writer's 9 than to their
/// 4. A digit without ink is drawn blank.
pub fn digit_fragment(image: &[f32], colour: [f32; 3]) -> Vec<f32> {
    use crate::digits::SIDE;
    let mut out = vec![0f32; 3 * DIGIT_H * DIGIT_W];
    let Some(m) = ink_moments(image) else {
        out.iter_mut().for_each(|v| *v = 1.0);
        return out;
    };
    let scale = DIGIT_INK_SD / m.sd_y;
    let at = |x: i32, y: i32| -> f32 {
        if x < 0 || y < 0 || x >= SIDE as i32 || y >= SIDE as i32 {
            0.0
        } else {
            image
                .get(y as usize * SIDE + x as usize)
                .copied()
                .unwrap_or(0.0)
        }
    };
    let (ox, oy) = (DIGIT_W as f32 / 2.0 - 0.5, DIGIT_H as f32 / 2.0 - 0.5);
    for y in 0..DIGIT_H {
        for x in 0..DIGIT_W {
            // the source point of this pixel: undo the scale, then the shear, about the centre
            let v = (y as f32 - oy) / scale;
            let u = (x as f32 - ox) / scale + m.shear * v;
            let (sx, sy) = (m.cx + u, m.cy + v);
            let (x0, y0) = (sx.floor(), sy.floor());
            let (fx, fy) = (sx - x0, sy - y0);
            let (x0, y0) = (x0 as i32, y0 as i32);
            let ink = at(x0, y0) * (1.0 - fx) * (1.0 - fy)
                + at(x0 + 1, y0) * fx * (1.0 - fy)
                + at(x0, y0 + 1) * (1.0 - fx) * fy
                + at(x0 + 1, y0 + 1) * fx * fy;
            let ink = ink.clamp(0.0, 1.0);
            for (ch, c) in colour.iter().enumerate() {
                out[(ch * DIGIT_H + y) * DIGIT_W + x] = 1.0 - ink * (1.0 - c);
            }
        }
    }
    out
}

/// Rows of the ten digits from a digit set: generated sets give one row per writer (their
/// digits come in the writer's shuffled order); imported sets are dealt into rows of one of
/// each digit in random order. Rows that cannot be completed are dropped.
fn rows_of(set: &crate::digits::DigitSet, seed: u64) -> Vec<Vec<usize>> {
    let mut rows = Vec::new();
    if !set.writers.is_empty() {
        let mut start = 0;
        while start < set.len() {
            let w = set.writers[start];
            let mut end = start;
            while end < set.len() && set.writers[end] == w {
                end += 1;
            }
            let row: Vec<usize> = (start..end).collect();
            let mut seen = [false; 10];
            row.iter()
                .for_each(|&i| seen[set.labels[i] as usize % 10] = true);
            if row.len() == 10 && seen.iter().all(|s| *s) {
                rows.push(row);
            }
            start = end;
        }
        return rows;
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let mut by_digit: Vec<Vec<usize>> = vec![Vec::new(); 10];
    for (i, &l) in set.labels.iter().enumerate() {
        if let Some(b) = by_digit.get_mut(l as usize) {
            b.push(i);
        }
    }
    by_digit.iter_mut().for_each(|b| b.shuffle(&mut rng));
    let n = by_digit.iter().map(|b| b.len()).min().unwrap_or(0);
    for r in 0..n {
        let mut row: Vec<usize> = by_digit.iter().map(|b| b[r]).collect();
        row.shuffle(&mut rng);
        rows.push(row);
    }
    rows
}

/// V3 digits ("PhoneNums"): rows of the ten digits in shuffled order, one ink colour per row.
/// Training rows cycle through the 8 training inks; held-out rows (other writers) use the
/// training inks and then the 8 held-out inks.
pub fn digit_rows(split: &crate::digits::Split, spec: &str) -> Dataset {
    let train_rows = rows_of(&split.train, 1);
    let test_rows = rows_of(&split.test, 2);
    let sample = |set: &crate::digits::DigitSet, row: &[usize], style: usize| {
        let mut fragments = Vec::with_capacity(10 * 3 * DIGIT_H * DIGIT_W);
        for &i in row {
            fragments.extend(digit_fragment(set.image(i), INKS[style].0));
        }
        Sample {
            style,
            contents: row.iter().map(|&i| set.labels[i] as usize).collect(),
            fragments,
        }
    };
    let train = train_rows
        .iter()
        .enumerate()
        .map(|(k, row)| sample(&split.train, row, k % TRAIN_INKS))
        .collect();
    let n_test = (TRAIN_INKS * DIGIT_TEST_ROWS_PER_INK).min(test_rows.len() / 2);
    let (mut test, mut ood) = (Vec::new(), Vec::new());
    for (k, row) in test_rows.iter().enumerate() {
        if k < n_test {
            test.push(sample(&split.test, row, k % TRAIN_INKS));
        } else {
            let h = (k - n_test) % HELD_OUT_INKS;
            ood.push(sample(&split.test, row, TRAIN_INKS + h));
        }
    }
    Dataset {
        domain: Domain::Digits,
        source: spec.to_string(),
        content_names: (0..10).map(|d| d.to_string()).collect(),
        style_names: INKS.iter().map(|c| c.1.to_string()).collect(),
        n_train_styles: TRAIN_INKS,
        train,
        test,
        ood,
    }
}

pub fn default_spec(domain: Domain) -> &'static str {
    match domain {
        Domain::Notes => "soundfont",
        Domain::Digits => "digits",
    }
}
