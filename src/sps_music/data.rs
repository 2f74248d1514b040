//! SPS notes: major scales rendered from a SoundFont (or from a folder of WAV recordings),
//! cut into 513x5 log-magnitude frames per note, as in the SPS paper's data recipe.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use rand::SeedableRng;
use rand::seq::SliceRandom;

use crate::audio::dsp::{self, N_BINS, SAMPLE_RATE, Stft};
use crate::audio::soundfont::{NoteRenderer, NoteSpec};
use crate::audio::wav;

/// samples of a sounding note (4 hops), the last FADE of them faded out linearly
pub const NOTE_SAMPLES: usize = 2048;
pub const FADE: usize = 512;
/// a note plus one hop of silence
pub const NOTE_TOTAL: usize = 2560;
/// The longest recording a folder of notes may hold, at the features' rate: an hour
const MAX_RECORDING_SAMPLES: u64 = 3600 * SAMPLE_RATE as u64;
pub const FRAMES_PER_NOTE: usize = 5;
pub const NOTE_FEATURES: usize = N_BINS * FRAMES_PER_NOTE;
pub const SEQ_LEN: usize = 15;
/// semitones above the start of a sequence: a major scale up and down
pub const SCALE: [i32; SEQ_LEN] = [0, 2, 4, 5, 7, 9, 11, 12, 11, 9, 7, 5, 4, 2, 0];
pub const START_PITCHES: std::ops::RangeInclusive<i32> = 48..=72;
pub use crate::audio::soundfont::DEFAULT_SOUNDFONT;

/// General MIDI programs used for training, and ones never seen in training.
pub const TRAIN_PROGRAMS: [(i32, &str); 8] = [
    (0, "Acoustic Grand Piano"),
    (6, "Harpsichord"),
    (19, "Church Organ"),
    (24, "Nylon Guitar"),
    (40, "Violin"),
    (56, "Trumpet"),
    (71, "Clarinet"),
    (73, "Flute"),
];
pub const UNSEEN_PROGRAMS: [(i32, &str); 4] = [
    (4, "Electric Piano"),
    (21, "Accordion"),
    (65, "Alto Sax"),
    (68, "Oboe"),
];

/// held-out sequences of the training instruments start on these pitches
pub fn is_held_out_start(start: i32) -> bool {
    start % 4 == 2
}

/// Where notes come from.
pub trait NoteSource: Send {
    fn describe(&self) -> String;
    /// the instruments to train on, and ones held out entirely
    fn instruments(&self) -> (Vec<String>, Vec<String>);
    /// raw samples of one note (NOTE_SAMPLES long) of instrument `index` into the
    /// concatenation of training and unseen instruments, at MIDI `pitch`
    fn render_note(&mut self, index: usize, pitch: i32) -> anyhow::Result<Vec<f32>>;
    /// why the notes may not sound as the source's authors meant, if there is a reason
    fn warning(&self) -> Option<String> {
        None
    }
}

/// Notes rendered with rustysynth from a General MIDI SoundFont at velocity 100.
pub struct SoundFontSource {
    renderer: NoteRenderer,
    programs: Vec<(i32, String)>,
    n_train: usize,
}

impl SoundFontSource {
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let wanted: Vec<(i32, &str)> = TRAIN_PROGRAMS.into_iter().chain(UNSEEN_PROGRAMS).collect();
        let renderer = NoteRenderer::open(path, &wanted)?;
        let programs: Vec<(i32, String)> =
            wanted.iter().map(|(p, n)| (*p, n.to_string())).collect();
        Ok(Self {
            renderer,
            programs,
            n_train: TRAIN_PROGRAMS.len(),
        })
    }
}

impl NoteSource for SoundFontSource {
    fn describe(&self) -> String {
        format!("soundfont:{}", self.renderer.path().display())
    }

    fn instruments(&self) -> (Vec<String>, Vec<String>) {
        let names: Vec<String> = self.programs.iter().map(|p| p.1.clone()).collect();
        (
            names[..self.n_train].to_vec(),
            names[self.n_train..].to_vec(),
        )
    }

    fn render_note(&mut self, index: usize, pitch: i32) -> anyhow::Result<Vec<f32>> {
        let program = self.programs.get(index).context("no such instrument")?.0;
        self.renderer.render(&NoteSpec {
            program,
            pitch,
            velocity: 100,
            detune_cents: 0.0,
            hold: NOTE_SAMPLES,
            total: NOTE_SAMPLES,
        })
    }

    fn warning(&self) -> Option<String> {
        self.renderer.warning().map(str::to_owned)
    }
}

/// Notes cut from the user's own monophonic recordings: one instrument per sub-folder (or the
/// folder itself), each note labelled by its file name (`C4.wav`, `A#3_soft.wav`, `60.wav`) or,
/// failing that, cut at onsets and labelled by YIN. A note that a scale needs but that was
/// not recorded is made from the nearest recorded one by resampling, as a sampler would.
/// Recorded notes of one instrument: (MIDI pitch, samples), sorted by pitch.
type RecordedNotes = Vec<(f32, Vec<f32>)>;

pub struct WavFolderSource {
    dir: PathBuf,
    /// per instrument: its name and its notes
    bank: Vec<(String, RecordedNotes)>,
    n_train: usize,
}

impl WavFolderSource {
    pub fn open(dir: &Path) -> anyhow::Result<Self> {
        let entries = std::fs::read_dir(dir).with_context(|| format!("{}", dir.display()))?;
        let mut groups: Vec<(String, Vec<PathBuf>)> = Vec::new();
        let mut top = Vec::new();
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for p in paths {
            if p.is_dir() {
                let mut files: Vec<PathBuf> = std::fs::read_dir(&p)
                    .with_context(|| format!("{}", p.display()))?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|f| is_wav(f))
                    .collect();
                files.sort();
                if !files.is_empty() {
                    let name = p
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    groups.push((name, files));
                }
            } else if is_wav(&p) {
                top.push(p);
            }
        }
        if !top.is_empty() {
            let name = dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or("recordings".into());
            groups.insert(0, (name, top));
        }
        if groups.is_empty() {
            bail!(
                "{}: no .wav files in this folder or its sub-folders",
                dir.display()
            );
        }
        let mut bank = Vec::new();
        for (name, files) in groups {
            let mut notes = Vec::new();
            for f in files {
                let (samples, rate) = wav::read_mono(&f)?;
                let resampled = samples.len() as u64 * u64::from(SAMPLE_RATE) / u64::from(rate);
                if resampled > MAX_RECORDING_SAMPLES {
                    bail!(
                        "{}: {} s of sound is longer than a recording of notes may be ({} s)",
                        f.display(),
                        resampled / u64::from(SAMPLE_RATE),
                        MAX_RECORDING_SAMPLES / u64::from(SAMPLE_RATE)
                    );
                }
                let samples = if rate == SAMPLE_RATE {
                    samples
                } else {
                    dsp::resample_linear(&samples, rate, SAMPLE_RATE)
                };
                let stem = f
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default();
                match pitch_from_name(&stem) {
                    Some(pitch) => {
                        // a take often opens with silence
                        let start = sound_start(&samples);
                        if let Some(note) =
                            start.and_then(|at| cut_note(&samples, at, samples.len()))
                        {
                            notes.push((pitch as f32, note));
                        }
                    }
                    None => notes.extend(segment_and_label(&samples)),
                }
            }
            if !notes.is_empty() {
                // of several takes of one pitch, the longest: a whole note rather than a
                // stretch of one
                notes.sort_by(|a, b| a.0.total_cmp(&b.0).then(b.1.len().cmp(&a.1.len())));
                notes.dedup_by(|later, first| later.0 == first.0);
                bank.push((name, notes));
            }
        }
        if bank.is_empty() {
            bail!(
                "{}: found WAV files but no pitched notes in them",
                dir.display()
            );
        }
        // With several instruments, the last is held out; with one, nothing is.
        let n_train = if bank.len() > 1 { bank.len() - 1 } else { 1 };
        Ok(Self {
            dir: dir.to_owned(),
            bank,
            n_train,
        })
    }

    pub fn note_count(&self) -> usize {
        self.bank.iter().map(|b| b.1.len()).sum()
    }
}

fn is_wav(p: &Path) -> bool {
    p.is_file() && p.extension().is_some_and(|e| e.eq_ignore_ascii_case("wav"))
}

impl NoteSource for WavFolderSource {
    fn describe(&self) -> String {
        format!("wav-dir:{}", self.dir.display())
    }

    fn instruments(&self) -> (Vec<String>, Vec<String>) {
        let names: Vec<String> = self.bank.iter().map(|b| b.0.clone()).collect();
        (
            names[..self.n_train].to_vec(),
            names[self.n_train..].to_vec(),
        )
    }

    fn render_note(&mut self, index: usize, pitch: i32) -> anyhow::Result<Vec<f32>> {
        let notes = &self.bank.get(index).context("no such instrument")?.1;
        let (p0, samples) = notes
            .iter()
            .min_by(|a, b| {
                (a.0 - pitch as f32)
                    .abs()
                    .total_cmp(&(b.0 - pitch as f32).abs())
            })
            .context("instrument without notes")?;
        let ratio = 2f32.powf((pitch as f32 - p0) / 12.0);
        let mut out = vec![0f32; NOTE_SAMPLES];
        for (i, o) in out.iter_mut().enumerate() {
            let pos = i as f32 * ratio;
            let j = pos as usize;
            let frac = pos - j as f32;
            if j + 1 < samples.len() {
                *o = samples[j] * (1.0 - frac) + samples[j + 1] * frac;
            }
        }
        Ok(out)
    }
}

/// `C4`, `c#4`, `Db3`, `A-1`, or a MIDI number, as the first token of a file name.
pub fn pitch_from_name(stem: &str) -> Option<i32> {
    let token: String = stem
        .split(['_', ' ', '-', '.'])
        .next()
        .unwrap_or("")
        .to_string();
    if let Ok(n) = token.parse::<i32>() {
        return (0..128).contains(&n).then_some(n);
    }
    // allow a negative octave written with '-' only when it is the whole stem: `A-1`
    let token = if stem.len() <= 4 && stem.contains('-') {
        stem.to_string()
    } else {
        token
    };
    let mut chars = token.chars().peekable();
    let base = match chars.next()?.to_ascii_uppercase() {
        'C' => 0,
        'D' => 2,
        'E' => 4,
        'F' => 5,
        'G' => 7,
        'A' => 9,
        'B' => 11,
        _ => return None,
    };
    let mut pc = base;
    match chars.peek() {
        Some('#') | Some('s') => {
            pc += 1;
            chars.next();
        }
        Some('b') => {
            pc -= 1;
            chars.next();
        }
        _ => {}
    }
    let octave: i32 = chars.collect::<String>().parse().ok()?;
    let midi = (octave + 1) * 12 + pc;
    (0..128).contains(&midi).then_some(midi)
}

/// How much of a recording a note keeps: a note played higher than it was recorded is read
/// faster ([`WavFolderSource`]'s `render_note`), so filling a note two octaves up takes four
/// times its length.
const RECORDED_SAMPLES: usize = 4 * NOTE_SAMPLES;

/// The note recorded in `samples[start..end]`, at most [`RECORDED_SAMPLES`] of it and at
/// least `NOTE_SAMPLES` (silence after a shorter one); `None` when it is silent.
fn cut_note(samples: &[f32], start: usize, end: usize) -> Option<Vec<f32>> {
    let end = end.min(start + RECORDED_SAMPLES).min(samples.len());
    let mut note = samples.get(start..end)?.to_vec();
    if note.len() < NOTE_SAMPLES {
        note.resize(NOTE_SAMPLES, 0.0);
    }
    let peak = note.iter().fold(0f32, |m, s| m.max(s.abs()));
    (peak > 1e-3).then_some(note)
}

/// The hops in which [`onsets`] and [`sound_start`] look for sound.
const HOP: usize = 256;

/// The RMS of each hop of `samples`, and the largest.
fn hop_energy(samples: &[f32]) -> (Vec<f32>, f32) {
    let energy: Vec<f32> = samples
        .chunks(HOP)
        .map(|c| (c.iter().map(|s| s * s).sum::<f32>() / c.len().max(1) as f32).sqrt())
        .collect();
    let peak = energy.iter().copied().fold(0f32, f32::max);
    (energy, peak)
}

/// Where the sound of a one-note take begins: the first hop louder than -40 dB from its
/// loudest, so that silence before the note is skipped and its attack, which the training
/// notes have, is kept. None for a silent take.
fn sound_start(samples: &[f32]) -> Option<usize> {
    let (energy, peak) = hop_energy(samples);
    if peak <= 1e-4 {
        return None;
    }
    energy
        .iter()
        .position(|&e| e > 0.01 * peak)
        .map(|i| i * HOP)
}

/// Where notes start in a recording, in samples (to within a hop of 256): where the energy
/// of a hop crosses a tenth of the recording's loudest after a quieter hop, or doubles.
/// None in a recording that is silent throughout.
fn onsets(samples: &[f32]) -> Vec<usize> {
    let (energy, peak) = hop_energy(samples);
    if peak <= 1e-4 {
        return Vec::new();
    }
    let on = peak * 0.1;
    let mut onsets = Vec::new();
    let mut i = 0;
    while i < energy.len() {
        let rising =
            energy[i] > on && (i == 0 || energy[i - 1] <= on || energy[i] > 2.0 * energy[i - 1]);
        if rising {
            onsets.push(i * HOP);
            i += NOTE_SAMPLES / HOP;
        } else {
            i += 1;
        }
    }
    onsets
}

/// Cut a recording of several notes into notes labelled by YIN, rounded to the nearest
/// semitone: at energy onsets, and within the sound between two onsets wherever the pitch
/// moves (a legato change of note has no onset). Stretches without a confident pitch, or
/// shorter than a note, are skipped.
pub fn segment_and_label(samples: &[f32]) -> Vec<(f32, Vec<f32>)> {
    segment_and_label_at(samples)
        .into_iter()
        .map(|(pitch, _, note)| (pitch, note))
        .collect()
}

/// [`segment_and_label`], with where each note starts in `samples`.
pub fn segment_and_label_at(samples: &[f32]) -> Vec<(f32, usize, Vec<f32>)> {
    let onsets = onsets(samples);
    // the sound of each onset runs until the next one starts
    let ends = onsets.iter().skip(1).copied().chain([samples.len()]);
    let mut notes = Vec::new();
    for (start, end) in onsets.iter().copied().zip(ends) {
        let sound = &samples[start..end];
        let (_, peak) = hop_energy(sound);
        for (pitch, from, to) in pitch_runs(sound) {
            // a note played legato is about as loud as the one before it; a stretch of a
            // note's fading release, where YIN may hear another octave, is not
            let part = &sound[from..to];
            let rms = (part.iter().map(|s| s * s).sum::<f32>() / part.len() as f32).sqrt();
            if to - from >= NOTE_SAMPLES
                && rms >= 0.2 * peak
                && let Some(note) = cut_note(samples, start + from, start + to)
            {
                notes.push((pitch.round(), start + from, note));
            }
        }
    }
    notes
}

/// Stretches of `sound` over which YIN (windows of 1024 samples, every 512) reads one pitch,
/// to within 0.6 semitone of the stretch's mean: (mean MIDI pitch, from, to) in samples.
fn pitch_runs(sound: &[f32]) -> Vec<(f32, usize, usize)> {
    const WINDOW: usize = 1024;
    const STEP: usize = 512;
    /// The stretch being read: where it began, the (sum, count) of its readings near its
    /// first one and of those an octave away, and which octave that is (+12 or -12). YIN's
    /// octave errors come and go within a note, so an octave's leap is not taken for a new
    /// note; the more frequent of the two readings names it.
    struct Open {
        from: usize,
        base: (f32, f32),
        octave: (f32, f32),
        shift: f32,
    }
    impl Open {
        fn pitch(&self) -> f32 {
            if self.octave.1 > self.base.1 {
                self.octave.0 / self.octave.1
            } else {
                self.base.0 / self.base.1
            }
        }
    }
    let mut runs = Vec::new();
    let mut open: Option<Open> = None;
    let mut at = 0;
    while at + WINDOW <= sound.len() {
        let window = &sound[at..at + WINDOW];
        let reading = dsp::yin(window, SAMPLE_RATE as f32, 40.0, 2000.0, 0.15).map(dsp::hz_to_midi);
        let held = match (reading, open.as_mut()) {
            (Some(m), Some(o)) => {
                let mean = o.base.0 / o.base.1;
                if (m - mean).abs() < 0.6 {
                    o.base = (o.base.0 + m, o.base.1 + 1.0);
                    true
                } else if ((m - mean).abs() - 12.0).abs() < 0.6
                    && (o.octave.1 == 0.0 || (m - mean).signum() * 12.0 == o.shift)
                {
                    o.shift = (m - mean).signum() * 12.0;
                    o.octave = (o.octave.0 + m, o.octave.1 + 1.0);
                    true
                } else {
                    false
                }
            }
            _ => false,
        };
        if !held {
            // the change lies within this window, past the part it shares with the last
            if let Some(o) = open.take() {
                runs.push((o.pitch(), o.from, at + STEP));
            }
            open = reading.map(|m| Open {
                from: if at == 0 { 0 } else { at + STEP },
                base: (m, 1.0),
                octave: (0.0, 0.0),
                shift: 0.0,
            });
        }
        at += STEP;
    }
    if let Some(o) = open {
        runs.push((o.pitch(), o.from, sound.len()));
    }
    // a slow glide or vibrato can split one note into stretches of the same semitone
    let mut merged: Vec<(f32, usize, usize)> = Vec::new();
    for run in runs {
        match merged.last_mut() {
            Some(last) if last.2 == run.1 && last.0.round() == run.0.round() => {
                let (a, b) = ((last.2 - last.1) as f32, (run.2 - run.1) as f32);
                last.0 = (last.0 * a + run.0 * b) / (a + b);
                last.2 = run.2;
            }
            _ => merged.push(run),
        }
    }
    merged
}

/// One 15-note scale: its instrument, first pitch, the pitch of every note, and the
/// features (SEQ_LEN notes of 513 bins x 5 frames, bin-major within a note).
#[derive(Clone)]
pub struct Sequence {
    pub instrument: usize,
    pub start_pitch: i32,
    pub pitches: [i32; SEQ_LEN],
    pub features: Vec<f32>,
}

impl Sequence {
    pub fn note(&self, i: usize) -> &[f32] {
        &self.features[i * NOTE_FEATURES..(i + 1) * NOTE_FEATURES]
    }
}

/// Render the audio of a scale: notes of NOTE_SAMPLES with a linear fade-out, each followed
/// by one hop of silence; the whole scale is normalised to a peak of 0.5.
pub fn render_scale(
    source: &mut dyn NoteSource,
    instrument: usize,
    start: i32,
) -> anyhow::Result<Vec<f32>> {
    let mut audio = Vec::with_capacity(SEQ_LEN * NOTE_TOTAL);
    for step in SCALE {
        let mut note = source.render_note(instrument, start + step)?;
        note.resize(NOTE_SAMPLES, 0.0);
        for (k, s) in note[NOTE_SAMPLES - FADE..].iter_mut().enumerate() {
            *s *= 1.0 - (k as f32 + 1.0) / FADE as f32;
        }
        audio.extend_from_slice(&note);
        audio.extend(std::iter::repeat_n(0.0, NOTE_TOTAL - NOTE_SAMPLES));
    }
    let peak = audio.iter().fold(0f32, |m, s| m.max(s.abs()));
    // a silent scale would be trained on and scored as if it held notes (every R² 0); it
    // means the source lacks the instrument or its samples, which the user must be told
    if peak < 1e-5 {
        let (train, unseen) = source.instruments();
        let name = train.iter().chain(&unseen).nth(instrument).cloned();
        bail!(
            "{}: {} plays no sound from MIDI {start} to {}",
            source.describe(),
            name.unwrap_or_else(|| format!("instrument {instrument}")),
            start + SCALE[SEQ_LEN - 1]
        );
    }
    audio.iter_mut().for_each(|s| *s *= 0.5 / peak);
    Ok(audio)
}

/// Features of a rendered scale: frames 5n..5n+5 of the whole scale's STFT belong to note n.
pub fn scale_features(stft: &mut Stft, audio: &[f32]) -> Vec<f32> {
    let (frames, feats) = dsp::feature_frames(stft, audio);
    let mut features = vec![0f32; SEQ_LEN * NOTE_FEATURES];
    for n in 0..SEQ_LEN {
        for f in 0..FRAMES_PER_NOTE {
            let t = n * FRAMES_PER_NOTE + f;
            if t >= frames {
                continue;
            }
            for b in 0..N_BINS {
                features[n * NOTE_FEATURES + b * FRAMES_PER_NOTE + f] = feats[t * N_BINS + b];
            }
        }
    }
    features
}

/// Training and held-out scales.
#[derive(Clone)]
pub struct Dataset {
    pub source: String,
    pub instruments: Vec<String>,
    pub n_train_instruments: usize,
    pub train: Vec<Sequence>,
    /// held-out start pitches of the training instruments
    pub test_seen: Vec<Sequence>,
    /// every start pitch of instruments never seen in training
    pub test_unseen: Vec<Sequence>,
}

impl Dataset {
    pub fn render(source: &mut dyn NoteSource, progress: &dyn Fn(String)) -> anyhow::Result<Self> {
        let (train_names, unseen_names) = source.instruments();
        let n_train = train_names.len();
        let instruments: Vec<String> = train_names.into_iter().chain(unseen_names).collect();
        if let Some(w) = source.warning() {
            progress(format!("{}{w}", crate::worker::WARNING));
        }
        let mut stft = Stft::new();
        let (mut train, mut test_seen, mut test_unseen) = (Vec::new(), Vec::new(), Vec::new());
        for (index, name) in instruments.iter().enumerate() {
            progress(format!(
                "rendering {name} ({}/{})",
                index + 1,
                instruments.len()
            ));
            for start in START_PITCHES {
                let audio = render_scale(source, index, start)?;
                let mut pitches = [0; SEQ_LEN];
                for (p, s) in pitches.iter_mut().zip(SCALE) {
                    *p = start + s;
                }
                let seq = Sequence {
                    instrument: index,
                    start_pitch: start,
                    pitches,
                    features: scale_features(&mut stft, &audio),
                };
                if index >= n_train {
                    test_unseen.push(seq);
                } else if is_held_out_start(start) {
                    test_seen.push(seq);
                } else {
                    train.push(seq);
                }
            }
        }
        Ok(Self {
            source: source.describe(),
            instruments,
            n_train_instruments: n_train,
            train,
            test_seen,
            test_unseen,
        })
    }

    /// Indices of a shuffled epoch over the training scales.
    pub fn epoch(&self, rng: &mut rand::rngs::StdRng) -> Vec<usize> {
        let mut idx: Vec<usize> = (0..self.train.len()).collect();
        idx.shuffle(rng);
        idx
    }
}

/// Open a `--data` spec of this family: `soundfont`, `soundfont:PATH.sf2` or `wav-dir:DIR`.
pub fn open_source(spec: &str) -> anyhow::Result<Box<dyn NoteSource>> {
    if spec == "soundfont" || spec.is_empty() {
        let path = crate::audio::soundfont::default_soundfont_path()?;
        return Ok(Box::new(SoundFontSource::open(&path)?));
    }
    if let Some(p) = spec.strip_prefix("soundfont:") {
        return Ok(Box::new(SoundFontSource::open(Path::new(p))?));
    }
    if let Some(p) = spec.strip_prefix("wav-dir:") {
        if p.is_empty() {
            bail!("--data wav-dir: give a folder of notes (wav-dir:DIR)");
        }
        return Ok(Box::new(WavFolderSource::open(Path::new(p))?));
    }
    bail!(
        "{spec}: unknown data source for sps-music (use soundfont, soundfont:PATH.sf2 (or .sf3) or wav-dir:DIR)"
    )
}

pub fn seeded_rng(seed: u64) -> rand::rngs::StdRng {
    rand::rngs::StdRng::seed_from_u64(seed)
}

impl Dataset {
    /// Random spectra in the shape of real data, for benchmarks that time the model, not the data.
    pub fn synthetic(train: usize, seed: u64) -> Self {
        use rand::Rng;
        let mut rng = seeded_rng(seed);
        let seq = |rng: &mut rand::rngs::StdRng, start: i32| {
            let mut pitches = [0; SEQ_LEN];
            for (p, s) in pitches.iter_mut().zip(SCALE) {
                *p = start + s;
            }
            Sequence {
                instrument: 0,
                start_pitch: start,
                pitches,
                features: (0..SEQ_LEN * NOTE_FEATURES)
                    .map(|_| rng.random::<f32>())
                    .collect(),
            }
        };
        let train = (0..train)
            .map(|i| seq(&mut rng, 48 + i as i32 % 25))
            .collect();
        let test_seen = (0..2).map(|i| seq(&mut rng, 50 + i)).collect();
        Self {
            source: "synthetic".into(),
            instruments: vec!["noise".into()],
            n_train_instruments: 1,
            train,
            test_seen,
            test_unseen: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A source whose second instrument plays nothing (a SoundFont without its samples) is
    /// refused with the instrument's name, not rendered into scales of silence.
    #[test]
    fn an_instrument_that_plays_no_sound_is_named() {
        struct HalfMute;
        impl NoteSource for HalfMute {
            fn describe(&self) -> String {
                "half-mute".into()
            }
            fn instruments(&self) -> (Vec<String>, Vec<String>) {
                (vec!["Sine".into(), "Mute".into()], Vec::new())
            }
            fn render_note(&mut self, index: usize, pitch: i32) -> anyhow::Result<Vec<f32>> {
                let gain = if index == 0 { 1.0 } else { 0.0 };
                let note = &saw(pitch as f32)[..NOTE_SAMPLES];
                Ok(note.iter().map(|s| gain * s).collect())
            }
        }
        assert!(render_scale(&mut HalfMute, 0, 60).is_ok());
        let err = Dataset::render(&mut HalfMute, &|_| ())
            .err()
            .expect("refused");
        assert_eq!(
            format!("{err:#}"),
            format!(
                "half-mute: Mute plays no sound from MIDI {} to {}",
                START_PITCHES.start(),
                START_PITCHES.start() + SCALE[SEQ_LEN - 1]
            )
        );
    }

    #[test]
    fn note_names_parse() {
        assert_eq!(pitch_from_name("C4"), Some(60));
        assert_eq!(pitch_from_name("A4_loud"), Some(69));
        assert_eq!(pitch_from_name("c#4"), Some(61));
        assert_eq!(pitch_from_name("Db4"), Some(61));
        assert_eq!(pitch_from_name("72"), Some(72));
        assert_eq!(pitch_from_name("take3"), None);
        assert_eq!(pitch_from_name("A-1"), Some(9));
    }

    /// A second of a decaying sawtooth at MIDI `pitch` (rich in partials, as an instrument is).
    fn saw(pitch: f32) -> Vec<f32> {
        let f = 440.0 * 2f32.powf((pitch - 69.0) / 12.0);
        (0..SAMPLE_RATE as usize)
            .map(|i| {
                let t = i as f32 / SAMPLE_RATE as f32;
                let phase = (f * t).fract();
                0.5 * (2.0 * phase - 1.0) * (-1.5 * t).exp()
            })
            .collect()
    }

    /// The pitch YIN reads from a note's steady part, in MIDI.
    fn heard(note: &[f32]) -> f32 {
        let f = dsp::yin(
            &note[256..NOTE_SAMPLES - FADE],
            SAMPLE_RATE as f32,
            40.0,
            2000.0,
            0.15,
        );
        dsp::hz_to_midi(f.unwrap())
    }

    /// From a folder with one recording an octave, each opening with silence, every note of
    /// the range is played whole at its pitch, an octave above a recording as well as below.
    #[test]
    fn sparse_recordings_fill_every_note_of_the_range() {
        let dir = tempfile::tempdir().unwrap();
        for pitch in [48, 60, 72] {
            let path = dir.path().join(format!("{pitch}.wav"));
            // each take opens with a third of a second of silence
            let take = [vec![0.0; 5000], saw(pitch as f32)].concat();
            crate::audio::wav::write_mono(&path, &take, SAMPLE_RATE).unwrap();
        }
        let mut source = WavFolderSource::open(dir.path()).unwrap();
        for pitch in [50, 59, 66, 78, 84] {
            let note = source.render_note(0, pitch).unwrap();
            assert_eq!(note.len(), NOTE_SAMPLES);
            let tail = &note[NOTE_SAMPLES * 3 / 4..];
            let rms = (tail.iter().map(|s| s * s).sum::<f32>() / tail.len() as f32).sqrt();
            assert!(
                rms > 0.05,
                "key {pitch}: the note's last quarter is silent ({rms})"
            );
            let got = heard(&note);
            assert!(
                (got - pitch as f32).abs() < 0.3,
                "key {pitch} heard at {got}"
            );
        }
    }

    /// Notes played legato, one straight after the other at the same loudness, are told
    /// apart by their pitch.
    #[test]
    fn a_legato_recording_is_cut_where_the_pitch_moves() {
        let mut take = Vec::new();
        for pitch in [60.0, 62.0, 64.0, 65.0] {
            let f = 440.0 * 2f32.powf((pitch - 69.0) / 12.0);
            take.extend(
                (0..6000).map(|i| 0.3 * (f * i as f32 / SAMPLE_RATE as f32).fract() - 0.15),
            );
        }
        let notes = segment_and_label(&take);
        let pitches: Vec<f32> = notes.iter().map(|n| n.0).collect();
        assert_eq!(pitches, [60.0, 62.0, 64.0, 65.0]);
        for note in &notes {
            assert!(
                note.1.len().abs_diff(6000) <= 1024,
                "{} samples",
                note.1.len()
            );
            assert!((heard(&note.1) - note.0).abs() < 0.3);
        }
    }

    /// A stretch of a note where YIN hears the octave below (an organ's lower rank comes
    /// and goes) does not split it: one note, named by what most of it reads.
    #[test]
    fn an_octave_that_comes_and_goes_is_one_note() {
        let f = 440.0;
        let tone = |i: usize, low: f32| {
            let t = i as f32 / SAMPLE_RATE as f32;
            let tau = std::f32::consts::TAU;
            0.3 * (tau * f * t).sin() + low * (tau * f / 2.0 * t).sin()
        };
        let take: Vec<f32> = (0..12000)
            .map(|i| tone(i, if (4000..7000).contains(&i) { 0.4 } else { 0.0 }))
            .collect();
        let notes = segment_and_label(&take);
        let pitches: Vec<f32> = notes.iter().map(|n| n.0).collect();
        assert_eq!(pitches, [69.0]);
    }

    /// Notes cut from one recording at their onsets each end where the next begins.
    #[test]
    fn a_recording_of_several_notes_is_cut_at_each_onset() {
        let mut take = Vec::new();
        for pitch in [57.0, 64.0, 69.0] {
            // each note 6000 samples long after 1024 of silence
            take.extend_from_slice(&[0.0; 1024]);
            take.extend_from_slice(&saw(pitch)[..6000]);
        }
        let notes = segment_and_label(&take);
        let pitches: Vec<f32> = notes.iter().map(|n| n.0).collect();
        assert_eq!(pitches, [57.0, 64.0, 69.0]);
        // onsets are found to within one hop (256 samples)
        for (note, length) in notes.iter().zip([7024, 7024, 6000]) {
            assert!(
                note.1.len().abs_diff(length) <= 256,
                "{} samples",
                note.1.len()
            );
        }
    }
}
