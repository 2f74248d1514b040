#![no_main]
//! Any bytes given to the checkpoint loader must yield `Ok` or `Err`, never a panic.

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = latent_lab::nn::checkpoint::load_bytes(data, Path::new("fuzz.safetensors"));
});
