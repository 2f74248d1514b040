//! The Pitch tab's live voice: a decoded note's spectrum turned into the partials the audio
//! engine plays, and the slider-to-sound latency of that path measured end to end.

use std::time::Instant;

use super::data::FRAMES_PER_NOTE;
use super::{Lab, decode_spectrum};
use crate::audio::dsp::{self, N_BINS, Partial};
use crate::audio::engine::{Engine, MAX_PARTIALS, VoiceParams};
use crate::audio::latency::{BLOCK_FRAMES, glide_response_ms};

/// The decoded note's sustained part as sinusoids for the live voice.
pub fn voice_params(spectrum: &[f32], gain: f32) -> VoiceParams {
    let mut mags = vec![0f32; N_BINS];
    // frames 1..=3 are the sustained part of a note (frame 0 is the onset, 4 the fade)
    for (b, m) in mags.iter_mut().enumerate() {
        let sum: f32 = (1..4)
            .map(|f| dsp::feature_to_magnitude(spectrum[b * FRAMES_PER_NOTE + f]))
            .sum();
        *m = sum / 3.0;
    }
    let mut peaks: Vec<Partial> = Vec::with_capacity(MAX_PARTIALS);
    dsp::spectral_peaks(&mags, MAX_PARTIALS, 0.01, &mut peaks);
    let mut params = VoiceParams {
        partials: [Default::default(); MAX_PARTIALS],
        count: 0,
        gain,
    };
    let total: f32 = peaks.iter().map(|p| p.amp).sum::<f32>().max(1e-6);
    for (slot, p) in params.partials.iter_mut().zip(&peaks) {
        slot.freq_hz = p.freq_hz;
        // loudness normalised so that every latent plays at a comfortable level
        slot.amp = p.amp / total;
    }
    params.count = peaks.len().min(MAX_PARTIALS);
    params
}

/// The JSON of `latent-lab bench sps-music --what latency`: decode the latent, turn the
/// spectrum into partials, hand them to the engine, and time how long the rendered audio takes
/// to reach the new pitch.
pub fn latency_bench_json(preset: &str) -> anyhow::Result<serde_json::Value> {
    let shipped = crate::app::find_models_dir().join("sps_music.safetensors");
    let (model_name, model) = match Lab::load(&shipped) {
        Ok(lab) => (shipped.display().to_string(), lab.model),
        Err(_) => {
            let cfg = super::train::TrainConfig::preset(preset)?;
            let (_vm, vb) = crate::nn::new_varmap();
            (
                format!("untrained {preset}"),
                super::model::SpsMusic::new(&cfg.model, vb)?,
            )
        }
    };
    let (_engine, mut controller) = Engine::new(48_000);
    let mut times = Vec::new();
    for i in 0..300 {
        let z = [-1.0 + i as f32 * 0.01, 0.1, -0.2];
        let t = Instant::now();
        let spec = decode_spectrum(&model, &z)?;
        controller.set_voice(&voice_params(&spec, 0.5));
        times.push(t.elapsed().as_secs_f64() * 1e3);
        // keep the ring from filling: the engine is not running here
        let _ = &_engine;
    }
    times.sort_by(f64::total_cmp);
    let p99 = times[(times.len() * 99 / 100).min(times.len() - 1)];
    let rate = 48_000u32;
    let glide = glide_response_ms(rate, 261.63, 293.66) as f64;
    let buffer_ms = BLOCK_FRAMES as f64 * 1e3 / rate as f64;
    // The update waits at most one callback period to be picked up, and the device plays a
    // buffer of about two periods behind the callback.
    let total = p99 + buffer_ms + 2.0 * buffer_ms + glide;
    Ok(serde_json::json!({
        "what": "latency",
        "model": model_name,
        "decode_to_voice_ms_p99": p99,
        "glide_to_new_pitch_ms": glide,
        "callback_period_ms": buffer_ms,
        "slider_to_sound_ms": total,
    }))
}
