#![no_main]
//! Any bytes given as a SoundFont (SF2, or SF3 whose Ogg Vorbis samples are decoded) must be
//! refused or open, never panic; an opened one plays each note or names the note it cannot
//! play, and what it plays is as long as asked and finite.

use std::path::Path;

use latent_lab::audio::soundfont::{NoteRenderer, NoteSpec};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let programs = [(0, "Acoustic Grand Piano"), (40, "Violin")];
    let Ok(mut renderer) =
        NoteRenderer::from_bytes(data.to_vec(), Path::new("fuzz.sf2"), &programs)
    else {
        return;
    };
    for (program, pitch) in [(0, 60), (40, 0), (0, 127)] {
        let spec = NoteSpec {
            program,
            pitch,
            velocity: 100,
            detune_cents: 0.0,
            hold: 400,
            total: 800,
        };
        if let Ok(samples) = renderer.render(&spec) {
            assert_eq!(samples.len(), 800);
            assert!(
                samples.iter().all(|s| s.is_finite()),
                "a sample that is not finite"
            );
        }
    }
});
