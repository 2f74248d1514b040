#![no_main]
//! Any bytes given as an official SPS ball frame (file name and PNG contents) must yield `Ok`
//! or `Err`, never a panic; on `Ok` the frame is 32x32 RGB with every value in [0, 1].

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|&b| b == 0).unwrap_or(0);
    let (name, png) = data.split_at(split);
    if let Ok(name) = std::str::from_utf8(name) {
        let _ = latent_lab::sps_vision::data::parse_frame_name(name);
    }
    if let Ok(frame) = latent_lab::sps_vision::data::frame_from_bytes(png, Path::new("fuzz.png")) {
        assert_eq!(frame.len(), latent_lab::sps_vision::data::FRAME_LEN);
        assert!(frame.iter().all(|v| (0.0..=1.0).contains(v)));
    }
});
