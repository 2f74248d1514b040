//! Timing of the audio engine for latency benchmarks: how long the rendered voice takes to
//! reach a new pitch, in callbacks of the size the live engine asks the device for.

use super::engine::{Engine, VoiceParams};

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
