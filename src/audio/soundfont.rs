//! Notes rendered from a General MIDI SoundFont with rustysynth, for every family that trains
//! on synthesised instruments (SPS scales, V3 notes).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};

use super::dsp::SAMPLE_RATE;
use super::modulators::Font;

/// Where Debian's fluid-soundfont-gm puts the SoundFont the papers used.
pub const DEFAULT_SOUNDFONT: &str = "/usr/share/sounds/sf2/FluidR3_GM.sf2";

/// A SoundFont file's bytes as SoundFont 2 (an SF3 file's samples decoded), once the whole
/// file has parsed: a bad file is refused when it is opened, not at its first note.
///
/// The synthesiser's parser copies every sample, so it never runs beside a second copy of
/// the file: a plain SoundFont 2 is parsed from the file itself, and its bytes read after.
fn read_valid(path: &Path) -> anyhow::Result<Vec<u8>> {
    let named = || path.display().to_string();
    crate::error::regular_file_len(path).with_context(named)?;
    let bytes = std::fs::read(path).with_context(named)?;
    let sf2 = decoded(&bytes, path)?;
    drop(bytes);
    match sf2 {
        Some(sf2) => {
            validate(path, &mut sf2.as_slice())?;
            Ok(sf2)
        }
        None => {
            let file = std::fs::File::open(path).with_context(named)?;
            validate(path, &mut std::io::BufReader::new(file))?;
            std::fs::read(path).with_context(named)
        }
    }
}

/// An SF3 file's bytes as SoundFont 2, its samples decoded; `None` for any other file.
fn decoded(bytes: &[u8], path: &Path) -> anyhow::Result<Option<Vec<u8>>> {
    super::sf3::to_sf2(bytes)
        .map_err(|e| anyhow::anyhow!("{}: not a valid SF3 SoundFont ({e:#})", path.display()))
}

/// Whether the synthesiser accepts a whole SoundFont, any failure (including a panic inside
/// its parser on hostile bytes) an error that names the file.
fn validate(path: &Path, reader: &mut impl std::io::Read) -> anyhow::Result<()> {
    let parsed = crate::error::quietly(|| rustysynth::SoundFont::new(reader));
    let sf = match parsed {
        Ok(Ok(sf)) if !sf.get_presets().is_empty() => sf,
        Ok(Ok(_)) => bail!("{}: the SoundFont has no presets", path.display()),
        Ok(Err(e)) => bail!("{}: not a valid SoundFont ({e})", path.display()),
        Err(_) => bail!("{}: not a valid SoundFont (corrupt data)", path.display()),
    };
    // The parser takes a sample's rate on trust, and the synthesiser steps through the
    // sample by it: a rate of 0 plays nothing and one of billions reads past the end
    if let Some(bad) =
        (sf.get_sample_headers().iter()).find(|h| !SAMPLE_RATES.contains(&h.get_sample_rate()))
    {
        bail!(
            "{}: not a valid SoundFont (sample \"{}\" has a sample rate of {} Hz)",
            path.display(),
            bad.get_name(),
            bad.get_sample_rate()
        );
    }
    Ok(())
}

/// The sample rates a SoundFont's samples may have (the format's own range reaches down to
/// 400 Hz; studio rates reach 384 kHz).
const SAMPLE_RATES: std::ops::RangeInclusive<i32> = 400..=384_000;

/// (chunk id, chunk body) of the RIFF chunks laid end to end in `bytes`, stopping at the
/// first one that runs past the end.
pub(crate) fn riff_chunks(mut bytes: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    std::iter::from_fn(move || {
        let id = bytes.get(..4)?;
        let size = u32::from_le_bytes(bytes.get(4..8)?.try_into().ok()?) as usize;
        let body = bytes.get(8..8usize.checked_add(size)?)?;
        // RIFF pads a chunk to an even length with a zero byte; SF3 writers leave the pad
        // out, and a chunk id never starts with a zero byte
        let pad = usize::from(size % 2 == 1 && bytes.get(8 + size) == Some(&0));
        bytes = bytes.get((8 + size + pad).min(bytes.len())..)?;
        Some((id, body))
    })
}

/// The default SoundFont, or an error that says how to install it.
pub fn default_soundfont_path() -> anyhow::Result<PathBuf> {
    let path = PathBuf::from(DEFAULT_SOUNDFONT);
    if !path.exists() {
        bail!(
            "{DEFAULT_SOUNDFONT}: the default SoundFont is not installed (apt-get install fluid-soundfont-gm, or pass --data soundfont:PATH.sf2)"
        );
    }
    Ok(path)
}

/// How one note is played.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NoteSpec {
    /// General MIDI program (0-based)
    pub program: i32,
    /// MIDI key
    pub pitch: i32,
    pub velocity: i32,
    /// pitch bend in cents (within the default +-2 semitone bend range)
    pub detune_cents: f32,
    /// samples from note-on to note-off
    pub hold: usize,
    /// samples rendered in all (the release sounds in hold..total)
    pub total: usize,
}

/// Notes of one SoundFont, each played by a fresh synthesizer (reverb and chorus off, at the
/// features' sample rate) from the SoundFont cut down to that note, its modulators applied
/// ([`Font::note`]).
pub struct NoteRenderer {
    path: PathBuf,
    font: Font,
    settings: rustysynth::SynthesizerSettings,
    warning: Option<String>,
}

impl NoteRenderer {
    /// Open a SoundFont that is to play the General MIDI `programs` (number, name): refused
    /// when it has no General MIDI instruments at all, and warned about
    /// ([`Self::warning`]) when it lacks some of these ([`Font::general_midi`]).
    pub fn open(path: &Path, programs: &[(i32, &str)]) -> anyhow::Result<Self> {
        Self::with_valid(read_valid(path)?, path, programs)
    }

    /// [`Self::open`] of a SoundFont's bytes already in memory; `path` names it in messages.
    pub fn from_bytes(
        bytes: Vec<u8>,
        path: &Path,
        programs: &[(i32, &str)],
    ) -> anyhow::Result<Self> {
        let bytes = decoded(&bytes, path)?.unwrap_or(bytes);
        validate(path, &mut bytes.as_slice())?;
        Self::with_valid(bytes, path, programs)
    }

    /// A renderer of a SoundFont 2 file that the synthesiser has parsed whole.
    fn with_valid(bytes: Vec<u8>, path: &Path, programs: &[(i32, &str)]) -> anyhow::Result<Self> {
        let font = Font::parse(bytes)
            .with_context(|| format!("{}: not a valid SoundFont", path.display()))?;
        let lacking = font
            .general_midi(programs)
            .with_context(|| format!("{}", path.display()))?
            .map(|w| format!("{}: {w}", path.display()));
        let warning = [lacking, font.warning(path)].into_iter().flatten();
        let warning = warning.collect::<Vec<_>>().join("; ");
        let mut settings = rustysynth::SynthesizerSettings::new(SAMPLE_RATE as i32);
        settings.enable_reverb_and_chorus = false;
        Ok(Self {
            path: path.to_owned(),
            warning: (!warning.is_empty()).then_some(warning),
            font,
            settings,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Why this SoundFont may not sound here as its authors meant ([`Font::warning`]).
    pub fn warning(&self) -> Option<&str> {
        self.warning.as_deref()
    }

    /// Mono samples of one note (the mean of the two channels), `spec.total` long; silence
    /// where the SoundFont has nothing for it. The synthesiser trusts the file's numbers, so
    /// a note it cannot play (a panic inside it, or sound that overflows to infinity) is an
    /// error that names the file.
    pub fn render(&mut self, spec: &NoteSpec) -> anyhow::Result<Vec<f32>> {
        let samples = crate::error::quietly(|| self.render_unguarded(spec));
        let cannot = |why: &str| {
            anyhow::anyhow!(
                "{}: the synthesiser cannot play program {} key {} ({why})",
                self.path.display(),
                spec.program,
                spec.pitch
            )
        };
        let samples = samples.map_err(|panic| cannot(&panic))?;
        // generators far outside their ranges (an LFO that swings the volume by 1600 dB)
        // overflow the synthesiser's arithmetic
        if !samples.iter().all(|v| v.is_finite()) {
            return Err(cannot("its sound overflows to infinity"));
        }
        Ok(samples)
    }

    fn render_unguarded(&mut self, spec: &NoteSpec) -> Vec<f32> {
        let velocity = spec.velocity.clamp(1, 127);
        let mut left = vec![0f32; spec.total];
        let mut right = vec![0f32; spec.total];
        let Some(mut synth) = self
            .font
            .note(spec.program, spec.pitch, velocity)
            .and_then(|file| rustysynth::SoundFont::new(&mut file.as_slice()).ok())
            .and_then(|sf| rustysynth::Synthesizer::new(&Arc::new(sf), &self.settings).ok())
        else {
            return left;
        };
        if spec.detune_cents != 0.0 {
            // 14-bit bend, 8192 = none, +-8192 = +-200 cents
            let bend = (8192.0 + spec.detune_cents / 200.0 * 8192.0).clamp(0.0, 16383.0) as i32;
            synth.process_midi_message(0, 0xE0, bend & 0x7f, (bend >> 7) & 0x7f);
        }
        synth.note_on(0, spec.pitch, velocity);
        let hold = spec.hold.min(spec.total);
        if hold > 0 {
            synth.render(&mut left[..hold], &mut right[..hold]);
        }
        synth.note_off(0, spec.pitch);
        if hold < spec.total {
            synth.render(&mut left[hold..], &mut right[hold..]);
        }
        left.iter()
            .zip(&right)
            .map(|(l, r)| 0.5 * (l + r))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rand::{Rng, SeedableRng};

    /// Small SoundFonts with bytes changed where a file's tables are (preset, instrument and
    /// sample records, and the sizes of the chunks that hold them): each is refused when it
    /// is opened, or opens and plays its notes, or names the note it cannot play. None
    /// panics, and what plays is as long as asked and finite.
    #[test]
    fn mutated_soundfonts_are_refused_or_played() {
        let fixtures = [
            super::super::modulators::tests::plain(),
            super::super::sf3::tests::a4(),
        ];
        let programs = [(0, "zero"), (5, "five")];
        for f in &fixtures {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("whole.sf2");
            std::fs::write(&path, f).unwrap();
            NoteRenderer::open(&path, &programs).unwrap();
        }
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let path = Path::new("mutated.sf2");
        let (mut opened, mut played, mut refused_notes) = (0, 0, 0);
        let trials = 3000;
        for k in 0..trials {
            let mut b = fixtures[k % fixtures.len()].clone();
            // the tables sit in the last list; the header and sample data are hit less often
            let tables = b.windows(4).rposition(|w| w == b"pdta").unwrap() - 8;
            for _ in 0..rng.random_range(1..4) {
                let at = if rng.random_bool(0.8) {
                    rng.random_range(tables..b.len())
                } else {
                    rng.random_range(0..b.len())
                };
                match rng.random_range(0..3) {
                    0 => b[at] = rng.random(),
                    1 => b[at] ^= 1 << rng.random_range(0..8),
                    _ => {
                        let edge = [0u16, 1, 0x7fff, 0x8000, 0xffff][rng.random_range(0..5)];
                        let end = (at + 2).min(b.len());
                        b[at..end].copy_from_slice(&edge.to_le_bytes()[..end - at]);
                    }
                }
            }
            if rng.random_bool(0.05) {
                b.truncate(rng.random_range(0..=b.len()));
            }
            let Ok(mut renderer) = NoteRenderer::from_bytes(b, path, &programs) else {
                continue;
            };
            opened += 1;
            for (program, pitch) in [(0, 60), (5, 69), (0, 127), (5, 0)] {
                let spec = NoteSpec {
                    program,
                    pitch,
                    velocity: 100,
                    detune_cents: 0.0,
                    hold: 800,
                    total: 1600,
                };
                match renderer.render(&spec) {
                    Ok(x) => {
                        assert_eq!(x.len(), 1600);
                        assert!(x.iter().all(|v| v.is_finite()), "mutation {k}");
                        played += 1;
                    }
                    Err(e) => {
                        assert!(e.to_string().contains("cannot play program"), "{e}");
                        refused_notes += 1;
                    }
                }
            }
        }
        eprintln!("{opened} of {trials} opened, {played} notes played, {refused_notes} refused");
        // most single changes leave a file that still opens: the loop does reach the synthesiser
        assert!(opened > trials / 4, "{opened} of {trials} opened");
        assert!(played > opened, "{played} notes from {opened} files");
    }

    /// A generator far outside its range that the synthesiser takes as it is: the note is
    /// refused by name instead of playing as infinity.
    #[test]
    fn a_note_that_overflows_is_refused() {
        let mut bytes = super::super::modulators::tests::plain();
        // the first instrument generator (a key range) becomes an LFO on the volume of
        // 16128 cB
        let igen = bytes.windows(4).position(|w| w == b"igen").unwrap() + 8;
        bytes[igen] = 13;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("loud.sf2");
        std::fs::write(&path, &bytes).unwrap();
        let mut renderer = NoteRenderer::open(&path, &[(0, "zero")]).unwrap();
        let spec = NoteSpec {
            program: 0,
            pitch: 60,
            velocity: 100,
            detune_cents: 0.0,
            hold: 8000,
            total: 16000,
        };
        let e = renderer.render(&spec).unwrap_err().to_string();
        assert!(
            e.contains("loud.sf2") && e.contains("key 60") && e.contains("infinity"),
            "{e}"
        );
    }
}
