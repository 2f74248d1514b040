#![no_main]
//! Any bytes given to the WAV reader must yield `Ok` or `Err`, never a panic; on `Ok` the
//! documented promises hold (a non-zero rate, every sample finite and in [-1, 1]).

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((samples, rate)) = latent_lab::audio::wav::read_mono_from_bytes(data, "fuzz.wav") {
        assert!(rate > 0, "sample rate 0 accepted");
        assert!(
            samples
                .iter()
                .all(|s| s.is_finite() && (-1.0..=1.0).contains(s)),
            "a sample outside [-1, 1]"
        );
    }
});
