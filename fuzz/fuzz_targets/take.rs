#![no_main]
//! Any recording given to the `wav-dir` cutter (an unnamed take: notes found at onsets and
//! where YIN's pitch moves) must be cut without a panic, into notes the training can use.
//! The bytes are read as a score, four to a note, so that the takes hold what the cutter
//! looks for (onsets, legato changes, octave leaps, silences, noise) rather than noise alone.

use latent_lab::sps_music::data::{NOTE_SAMPLES, segment_and_label};
use libfuzzer_sys::fuzz_target;

const RATE: f32 = 16_000.0;

fuzz_target!(|data: &[u8]| {
    let mut take: Vec<f32> = Vec::new();
    let (mut phase, mut low_phase) = (0f32, 0f32);
    let mut noise = 0x2545_f491u32;
    for note in data.chunks_exact(4) {
        let (pitch, length, loudness, kind) = (note[0], note[1], note[2], note[3]);
        let midi = 24.0 + f32::from(pitch % 84);
        let f = 440.0 * ((midi - 69.0) / 12.0).exp2();
        let amp = f32::from(loudness) / 255.0;
        let samples = (usize::from(length) + 1) * 128;
        // a gap of silence before the note, unless it is played legato
        if kind & 0x30 == 0x10 {
            take.resize(take.len() + samples / 2, 0.0);
        }
        for _ in 0..samples {
            phase = (phase + f / RATE).fract();
            low_phase = (low_phase + 0.5 * f / RATE).fract();
            let s = match kind & 0x3 {
                0 => (phase * std::f32::consts::TAU).sin(),
                1 => 2.0 * phase - 1.0,
                2 => {
                    if phase < 0.5 {
                        1.0
                    } else {
                        -1.0
                    }
                }
                _ => {
                    noise ^= noise << 13;
                    noise ^= noise >> 17;
                    noise ^= noise << 5;
                    noise as f32 / u32::MAX as f32 * 2.0 - 1.0
                }
            };
            // a sub-octave beside the note, as an organ's lower rank sounds
            let low = if kind & 0x4 != 0 {
                0.5 * (low_phase * std::f32::consts::TAU).sin()
            } else {
                0.0
            };
            take.push(((s + low) * amp).clamp(-1.0, 1.0));
        }
    }
    for (label, note) in segment_and_label(&take) {
        assert!(
            (27.0..=96.0).contains(&label),
            "a label outside YIN's range: {label}"
        );
        assert!(
            (NOTE_SAMPLES..=4 * NOTE_SAMPLES).contains(&note.len()),
            "a note of {} samples",
            note.len()
        );
        assert!(
            note.iter().all(|s| s.is_finite()),
            "a sample that is not finite"
        );
    }
});
