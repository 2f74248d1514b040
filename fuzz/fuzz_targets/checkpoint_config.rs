#![no_main]
//! Any text as the metadata `config` of a shipped checkpoint, opened as its family's lab, must
//! give the lab or an error, never a panic or an allocation beyond the file's own tensors.
//! The first byte picks the checkpoint; the rest, as lossy UTF-8, is the config.

use std::path::Path;

use libfuzzer_sys::fuzz_target;

static CHECKPOINTS: [&[u8]; 7] = [
    include_bytes!("../../models/sps_music.safetensors"),
    include_bytes!("../../models/sps_vision.safetensors"),
    include_bytes!("../../models/vae_relevance.safetensors"),
    include_bytes!("../../models/ievae_digits.safetensors"),
    include_bytes!("../../models/v3_notes.safetensors"),
    include_bytes!("../../models/v3_digits.safetensors"),
    include_bytes!("../../models/digit_classifier.safetensors"),
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, config)) = data.split_first() else {
        return;
    };
    let good = CHECKPOINTS[pick as usize % CHECKPOINTS.len()];
    let config = String::from_utf8_lossy(config);
    if let Some(bytes) = latent_lab::nn::checkpoint::with_config(good, &config) {
        let _ = latent_lab::cli::open_lab_bytes(&bytes, Path::new("fuzz.safetensors"));
    }
});
