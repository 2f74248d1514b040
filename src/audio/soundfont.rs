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
    let bytes = std::fs::read(path).with_context(|| format!("{}", path.display()))?;
    let parsed = std::panic::catch_unwind(|| rustysynth::SoundFont::new(&mut bytes.as_slice()));
    match parsed {
        Ok(Ok(sf)) if !sf.get_presets().is_empty() => Ok(Arc::new(sf)),
        Ok(Ok(_)) => bail!("{}: the SoundFont has no presets", path.display()),
        Ok(Err(e)) => bail!("{}: not a valid SoundFont ({e})", path.display()),
        Err(_) => bail!("{}: not a valid SoundFont (corrupt data)", path.display()),
    }
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
}

impl NoteRenderer {
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let sf = load_soundfont(path)?;
        let mut settings = rustysynth::SynthesizerSettings::new(SAMPLE_RATE as i32);
        settings.enable_reverb_and_chorus = false;
        let synth = rustysynth::Synthesizer::new(&sf, &settings)
            .map_err(|e| anyhow::anyhow!("{}: cannot start a synthesizer: {e}", path.display()))?;
        Ok(Self {
            path: path.to_owned(),
            synth,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
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
