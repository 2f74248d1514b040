//! SPS music: a pitch latent learned from the translation symmetry of musical scales.

pub mod cli;
pub mod data;
pub mod eval;
pub mod explore;
pub mod logshift;
pub mod model;
pub mod train;
pub mod voice;

use std::ops::RangeInclusive;

use candle_core::{Device, Tensor};

use crate::audio::dsp::{self, N_BINS, Stft};
use crate::nn::checkpoint;
use data::{FRAMES_PER_NOTE, NOTE_FEATURES};
use eval::Calibration;
use model::SpsMusic;
use train::TrainConfig;

pub const FAMILY: &str = "sps-music";

/// A trained model ready for the window and the command line.
pub type Lab = crate::sps::Lab<TrainConfig, SpsMusic, Calibration>;

crate::checkpointed_lab!(Lab, FAMILY, TrainConfig);

impl crate::nn::checkpoint::SizeLimits for TrainConfig {
    /// A scale of 15 notes takes about 12 MB of a step's memory at the `fast` sizes (3.1 GB
    /// at 256 a batch): 256 scales are eight times the official batch.
    const BATCH: RangeInclusive<usize> = 1..=256;

    fn size_limits(&self) -> Vec<(String, usize, RangeInclusive<usize>)> {
        let m = &self.model;
        let (channels, kernel) = match m.arch {
            model::Arch::Official => (4, 1),
            model::Arch::LogShift { kernel, .. } => (2, kernel),
        };
        let sizes = [
            ("batch".into(), self.batch, Self::BATCH),
            // one pitch dim, then the timbre dims the decoder needs at least one of
            ("model.latent".into(), m.latent, 2..=64),
            ("model.rnn_hidden".into(), m.rnn_hidden, 1..=4096),
            ("model.arch.kernel".into(), kernel, 1..=N_BINS),
        ];
        let mlp = checkpoint::indexed("model.mlp", &m.mlp, 1..=8192);
        let convs = checkpoint::indexed("model.channels", &m.channels[..channels], 1..=1024);
        sizes.into_iter().chain(mlp).chain(convs).collect()
    }
}

impl crate::sps::Config for TrainConfig {
    type Model = SpsMusic;

    crate::sps::config_methods!(SpsMusic);

    const DECODES: usize = 1000;

    fn decode_one(model: &SpsMusic, z: &[f32]) -> candle_core::Result<Vec<f32>> {
        decode_spectrum(model, z)
    }

    fn bench_trainer(self) -> anyhow::Result<(Box<dyn crate::worker::Trainer>, usize)> {
        let data = data::Dataset::synthetic(self.batch * 2, 3);
        Ok((
            Box::new(train::SpsTrainer::new(self, data, 0)?),
            data::SEQ_LEN,
        ))
    }
}

impl Lab {
    pub fn latent_dims(&self) -> usize {
        self.cfg.model.latent
    }

    /// The pitch latent's usable range: where held-out notes landed, or +-3 when unknown.
    pub fn latent_range(&self) -> (f32, f32) {
        let (lo, hi) = self.calibration.latent_range;
        if lo.is_finite() && hi.is_finite() && hi > lo {
            (lo, hi)
        } else {
            (-3.0, 3.0)
        }
    }

    /// MIDI pitch that a pitch latent stands for, through the fitted line (None if uncalibrated)
    pub fn pitch_of_latent(&self, latent: f32) -> Option<f32> {
        let c = &self.calibration;
        (c.slope != 0.0).then_some((c.slope * latent as f64 + c.intercept) as f32)
    }

    /// The pitch latent for a MIDI pitch, kept within the slider's range (the observed range
    /// and 15% beyond), where the decoder has seen data.
    pub fn latent_of_pitch_clamped(&self, pitch: f32) -> Option<f32> {
        let (lo, hi) = self.latent_range();
        let margin = 0.15 * (hi - lo);
        self.latent_of_pitch(pitch)
            .map(|l| l.clamp(lo - margin, hi + margin))
    }

    pub fn latent_of_pitch(&self, pitch: f32) -> Option<f32> {
        let c = &self.calibration;
        (c.slope != 0.0).then(|| ((pitch as f64 - c.intercept) / c.slope) as f32)
    }

    /// Decode one latent to a 513x5 spectrum (features in [0, 1], bin-major).
    pub fn decode_spectrum(&self, z: &[f32]) -> candle_core::Result<Vec<f32>> {
        decode_spectrum(&self.model, z)
    }

    /// Encode notes (N x 513 x 5 features) to latent means.
    pub fn encode(&self, notes: &[f32]) -> candle_core::Result<Vec<Vec<f32>>> {
        let n = notes.len() / NOTE_FEATURES;
        let chunks: Vec<&[f32]> = notes.chunks_exact(NOTE_FEATURES).take(n).collect();
        model::encode_all(&self.model, &chunks)
    }

    /// Resynthesise a sequence of latents as notes (Griffin-Lim), each note NOTE_TOTAL samples.
    pub fn render_notes(
        &self,
        latents: &[Vec<f32>],
        iters: usize,
    ) -> candle_core::Result<Vec<f32>> {
        let mut stft = Stft::new();
        let mut out = Vec::new();
        for z in latents {
            let note = resynthesize(&self.model, z, &mut stft, iters)?;
            out.extend_from_slice(&note);
            out.extend(std::iter::repeat_n(
                0.0,
                data::NOTE_TOTAL - note.len().min(data::NOTE_TOTAL),
            ));
        }
        // Griffin-Lim does not bound the level: scale down rather than let the WAV clip.
        let peak = out.iter().fold(0f32, |m, s| m.max(s.abs()));
        if peak > 0.9 {
            out.iter_mut().for_each(|s| *s *= 0.9 / peak);
        }
        Ok(out)
    }
}

pub fn decode_spectrum(model: &SpsMusic, z: &[f32]) -> candle_core::Result<Vec<f32>> {
    let zt = Tensor::from_slice(z, (1, z.len()), &Device::Cpu)?;
    model.decode(&zt)?.flatten_all()?.to_vec1::<f32>()
}

/// Decode a latent and resynthesise the note with Griffin-Lim (NOTE_SAMPLES samples).
pub fn resynthesize(
    model: &SpsMusic,
    z: &[f32],
    stft: &mut Stft,
    iters: usize,
) -> candle_core::Result<Vec<f32>> {
    let spec = decode_spectrum(model, z)?;
    let mags = spectrum_to_frames(&spec);
    Ok(dsp::griffin_lim(
        stft,
        FRAMES_PER_NOTE,
        &mags,
        data::NOTE_SAMPLES,
        iters,
        7,
    ))
}

/// Bin-major 513x5 features -> frame-major magnitudes (5 x 513) for the STFT tools.
pub fn spectrum_to_frames(spec: &[f32]) -> Vec<f32> {
    let mut mags = vec![0f32; FRAMES_PER_NOTE * N_BINS];
    for b in 0..N_BINS {
        for f in 0..FRAMES_PER_NOTE {
            mags[f * N_BINS + b] = dsp::feature_to_magnitude(spec[b * FRAMES_PER_NOTE + f]);
        }
    }
    mags
}
pub mod view;
