//! Notes rendered from a General MIDI SoundFont with rustysynth, for every family that trains
//! on synthesised instruments (SPS scales, V3 notes).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};

use super::dsp::SAMPLE_RATE;

/// Where Debian's fluid-soundfont-gm puts the SoundFont the papers used.
pub const DEFAULT_SOUNDFONT: &str = "/usr/share/sounds/sf2/FluidR3_GM.sf2";

/// Parse a SoundFont, turning any failure (including a panic inside the parser on hostile
/// bytes) into an error that names the file.
pub fn load_soundfont(path: &Path) -> anyhow::Result<Arc<rustysynth::SoundFont>> {
    Ok(load(path)?.0)
}

/// The parsed SoundFont and what its modulators mean for how it will sound here
/// ([`modulator_warning`]), from one read of the file.
fn load(path: &Path) -> anyhow::Result<(Arc<rustysynth::SoundFont>, Option<String>)> {
    let bytes = std::fs::read(path).with_context(|| format!("{}", path.display()))?;
    let bytes = match super::sf3::to_sf2(&bytes) {
        Ok(Some(sf2)) => sf2,
        Ok(None) => bytes,
        Err(e) => bail!("{}: not a valid SF3 SoundFont ({e:#})", path.display()),
    };
    let parsed = std::panic::catch_unwind(|| rustysynth::SoundFont::new(&mut bytes.as_slice()));
    let sf = match parsed {
        Ok(Ok(sf)) if !sf.get_presets().is_empty() => Arc::new(sf),
        Ok(Ok(_)) => bail!("{}: the SoundFont has no presets", path.display()),
        Ok(Err(e)) => bail!("{}: not a valid SoundFont ({e})", path.display()),
        Err(_) => bail!("{}: not a valid SoundFont (corrupt data)", path.display()),
    };
    Ok((sf, modulator_warning(path, &bytes)))
}

/// More modulators of the kind [`unapplied_modulators`] counts than this, and a SoundFont's
/// sound depends on them. FluidR3 has 8 (its instruments otherwise cancel the standard
/// velocity-to-filter modulator with zero amounts); MuseScore General has over 1000, and
/// its piano without them sounds as a resonant thump near 80 Hz, far louder than its notes.
const MODULATOR_WARNING_ABOVE: usize = 16;

/// Modulators of a SoundFont file (preset and instrument level) that would change how the
/// program's notes sound but that rustysynth, which applies none, leaves out: a non-zero
/// amount, driven by the note's velocity or key number (the program sends no controllers),
/// aimed at anything but the pan, reverb and chorus sends (its notes are mono and dry).
/// 0 for bytes that are not a SoundFont's RIFF layout.
fn unapplied_modulators(bytes: &[u8]) -> usize {
    const VELOCITY: u16 = 2;
    const KEY: u16 = 3;
    const CONTROLLER_FLAG: u16 = 0x80;
    const SENDS_AND_PAN: [u16; 3] = [15, 16, 17];
    let mut count = 0;
    for (id, body) in riff_chunks(bytes.get(12..).unwrap_or(&[])) {
        if id != b"LIST" || body.get(..4) != Some(b"pdta".as_slice()) {
            continue;
        }
        for (id, records) in riff_chunks(&body[4..]) {
            if id != b"pmod" && id != b"imod" {
                continue;
            }
            for r in records.chunks_exact(10) {
                let word = |i: usize| u16::from_le_bytes([r[i], r[i + 1]]);
                let (source, dest, amount) = (word(0), word(2), word(4) as i16);
                let index = source & 0x7f;
                let from_note =
                    source & CONTROLLER_FLAG == 0 && (index == VELOCITY || index == KEY);
                if amount != 0 && from_note && !SENDS_AND_PAN.contains(&dest) {
                    count += 1;
                }
            }
        }
    }
    count
}

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

/// A line for the user when the SoundFont at `path` relies on modulators that the program's
/// synthesiser does not apply, so that its instruments will sound unlike in other players.
fn modulator_warning(path: &Path, bytes: &[u8]) -> Option<String> {
    let n = unapplied_modulators(bytes);
    (n > MODULATOR_WARNING_ABOVE).then(|| {
        format!(
            "{}: {n} of its modulators (the note's velocity or key on its filter, volume or envelopes) are not applied by the built-in synthesiser, so its instruments may sound unlike in other players; to hear it as meant, render its notes with FluidSynth and use them as WAV files (scripts/unheard_notes.sh shows how)",
            path.display()
        )
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

/// A synthesizer (reverb and chorus off) at the features' sample rate, reset before every note.
pub struct NoteRenderer {
    path: PathBuf,
    synth: rustysynth::Synthesizer,
    warning: Option<String>,
}

impl NoteRenderer {
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let (sf, warning) = load(path)?;
        let mut settings = rustysynth::SynthesizerSettings::new(SAMPLE_RATE as i32);
        settings.enable_reverb_and_chorus = false;
        let synth = rustysynth::Synthesizer::new(&sf, &settings)
            .map_err(|e| anyhow::anyhow!("{}: cannot start a synthesizer: {e}", path.display()))?;
        Ok(Self {
            path: path.to_owned(),
            synth,
            warning,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Why this SoundFont may not sound here as its authors meant ([`modulator_warning`]).
    pub fn warning(&self) -> Option<&str> {
        self.warning.as_deref()
    }

    /// Mono samples of one note (the mean of the two channels), `spec.total` long.
    pub fn render(&mut self, spec: &NoteSpec) -> Vec<f32> {
        self.synth.reset();
        self.synth.process_midi_message(0, 0xC0, spec.program, 0);
        if spec.detune_cents != 0.0 {
            // 14-bit bend, 8192 = none, +-8192 = +-200 cents
            let bend = (8192.0 + spec.detune_cents / 200.0 * 8192.0).clamp(0.0, 16383.0) as i32;
            self.synth
                .process_midi_message(0, 0xE0, bend & 0x7f, (bend >> 7) & 0x7f);
        }
        self.synth
            .note_on(0, spec.pitch, spec.velocity.clamp(1, 127));
        let hold = spec.hold.min(spec.total);
        let mut left = vec![0f32; spec.total];
        let mut right = vec![0f32; spec.total];
        if hold > 0 {
            self.synth.render(&mut left[..hold], &mut right[..hold]);
        }
        self.synth.note_off(0, spec.pitch);
        if hold < spec.total {
            self.synth.render(&mut left[hold..], &mut right[hold..]);
        }
        self.synth.note_off_all(true);
        left.iter()
            .zip(&right)
            .map(|(l, r)| 0.5 * (l + r))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A RIFF chunk: id, little-endian size, body, padded to an even length.
    fn chunk(id: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut out = id.to_vec();
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(body);
        if body.len() % 2 == 1 {
            out.push(0);
        }
        out
    }

    /// A modulator record: source, destination, amount, amount source, transform.
    fn modulator(source: u16, dest: u16, amount: i16) -> Vec<u8> {
        [source, dest, amount as u16, 0, 0]
            .iter()
            .flat_map(|w| w.to_le_bytes())
            .collect()
    }

    fn soundfont_with(pmod: &[Vec<u8>], imod: &[Vec<u8>]) -> Vec<u8> {
        let terminal = modulator(0, 0, 0);
        let records = |m: &[Vec<u8>]| [m.concat(), terminal.clone()].concat();
        let mut pdta = b"pdta".to_vec();
        pdta.extend(chunk(b"pmod", &records(pmod)));
        pdta.extend(chunk(b"imod", &records(imod)));
        let mut info = b"INFO".to_vec();
        info.extend(chunk(b"INAM", b"odd")); // odd length: the padding byte must be skipped
        let mut body = b"sfbk".to_vec();
        body.extend(chunk(b"LIST", &info));
        body.extend(chunk(b"LIST", &pdta));
        chunk(b"RIFF", &body)
    }

    #[test]
    fn counts_the_modulators_that_would_shape_a_note() {
        let velocity_to_cutoff = modulator(0x0102, 8, 2400);
        let key_to_volume = modulator(0x0003, 48, 96);
        let cancelled = modulator(0x0502, 8, 0);
        let mod_wheel = modulator(0x0081, 5, 50); // a controller: never sent
        let velocity_to_pan = modulator(0x0002, 17, 500); // notes are mono
        let sf = soundfont_with(
            &[velocity_to_cutoff.clone(), cancelled, mod_wheel],
            &[key_to_volume, velocity_to_pan, velocity_to_cutoff],
        );
        assert_eq!(unapplied_modulators(&sf), 3);
    }

    #[test]
    fn warns_only_when_a_soundfont_depends_on_them() {
        let many: Vec<Vec<u8>> = (0..=MODULATOR_WARNING_ABOVE)
            .map(|_| modulator(0x0102, 8, 1200))
            .collect();
        let path = Path::new("x.sf2");
        let w = modulator_warning(path, &soundfont_with(&[], &many)).expect("a warning");
        assert!(w.starts_with("x.sf2: 17 of its modulators"), "{w}");
        assert!(modulator_warning(path, &soundfont_with(&[], &many[1..])).is_none());
    }

    #[test]
    fn bytes_that_are_not_riff_have_none() {
        assert_eq!(unapplied_modulators(b""), 0);
        assert_eq!(unapplied_modulators(b"RIFF\xff\xff\xff\xffsfbkLIST"), 0);
        let mut cut = soundfont_with(&[modulator(0x0102, 8, 2400)], &[]);
        cut.truncate(cut.len() - 7);
        assert_eq!(unapplied_modulators(&cut), 0);
    }
}
