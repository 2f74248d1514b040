//! Slider-to-sound latency of the live voice, measured on the real pipeline: decode the latent,
//! turn the spectrum into partials, hand them to the engine, and time how long the rendered
//! audio takes to reach the new pitch.

use std::time::Instant;

use super::engine::{Engine, VoiceParams};
use crate::sps_music::{Lab, decode_spectrum, view::PitchTab};

/// Frames per callback the offline measurement assumes (what the live engine asks the device for).
pub const BLOCK_FRAMES: usize = 256;

/// Median period (in samples) of a signal's upward zero crossings over `window`.
fn period_at(signal: &[f32], end: usize, window: usize) -> Option<f32> {
    let start = end.saturating_sub(window);
    let seg = &signal[start..end];
    let ups: Vec<f32> = seg
        .windows(2)
        .enumerate()
        .filter(|(_, w)| w[0] <= 0.0 && w[1] > 0.0)
        .map(|(i, w)| i as f32 + w[0] / (w[0] - w[1]))
        .collect();
    if ups.len() < 3 {
        return None;
    }
    let mut d: Vec<f32> = ups.windows(2).map(|w| w[1] - w[0]).collect();
    d.sort_by(f32::total_cmp);
    Some(d[d.len() / 2])
}

/// Render blocks until the voice, changed from `from` Hz to `to` Hz at a block boundary, sounds
/// within 3% of `to`; returns the time that took in ms.
pub fn glide_response_ms(sample_rate: u32, from: f32, to: f32) -> f32 {
    let (mut engine, mut controller) = Engine::new(sample_rate);
    controller.set_voice(&VoiceParams::sine(from, 0.5, 1.0));
    let mut out = vec![0f32; BLOCK_FRAMES * 40];
    engine.render(&mut out, 1);
    controller.set_voice(&VoiceParams::sine(to, 0.5, 1.0));
    let mut signal = Vec::new();
    let mut block = vec![0f32; BLOCK_FRAMES];
    let target_period = sample_rate as f32 / to;
    let window = (3.0 * target_period) as usize + 2;
    for _ in 0..200 {
        engine.render(&mut block, 1);
        signal.extend_from_slice(&block);
        // walk the new samples looking for the first window that already has the new period
        let mut end = window;
        while end <= signal.len() {
            if let Some(p) = period_at(&signal, end, window)
                && (p / target_period - 1.0).abs() < 0.03
            {
                return end as f32 * 1e3 / sample_rate as f32;
            }
            end += 8;
        }
    }
    f32::NAN
}

/// The JSON of `latent-lab bench sps-music --what latency`.
pub fn bench_json(preset: &str) -> anyhow::Result<serde_json::Value> {
    let shipped = crate::app::find_models_dir().join("sps_music.safetensors");
    let (model_name, model) = match Lab::load(&shipped) {
        Ok(lab) => (shipped.display().to_string(), lab.model),
        Err(_) => {
            let cfg = crate::sps_music::train::TrainConfig::preset(preset)?;
            let (_vm, vb) = crate::nn::new_varmap();
            (
                format!("untrained {preset}"),
                crate::sps_music::model::SpsMusic::new(&cfg.model, vb)?,
            )
        }
    };
    let (_engine, mut controller) = Engine::new(48_000);
    let mut times = Vec::new();
    for i in 0..300 {
        let z = [-1.0 + i as f32 * 0.01, 0.1, -0.2];
        let t = Instant::now();
        let spec = decode_spectrum(&model, &z)?;
        let params = PitchTab::voice_params(&spec, 0.5);
        controller.set_voice(&params);
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
