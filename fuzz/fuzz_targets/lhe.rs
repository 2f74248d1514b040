#![no_main]
//! Any text given to the Les Houches event reader must yield `Ok` or `Err`, never a panic; on
//! `Ok` there is at least one event and every momentum component is finite.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(events) = latent_lab::relevance::data::parse_lhe(&text, "fuzz.lhe", [13, -13]) {
        assert!(!events.is_empty(), "no events accepted");
        assert!(
            events.iter().flatten().all(|v| v.is_finite()),
            "NaN or inf accepted"
        );
    }
});
