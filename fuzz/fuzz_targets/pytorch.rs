#![no_main]
//! Any bytes given as a PyTorch state_dict archive (a zip holding a pickle and raw tensor
//! data) must be read or refused, never panic, never overflow the stack, and never make
//! the reader allocate more than the file holds.

use latent_lab::nn::checkpoint::read_pytorch_state_dict;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(file) = tempfile::Builder::new().suffix(".pt").tempfile() else {
        return;
    };
    if std::fs::write(file.path(), data).is_err() {
        return;
    }
    if let Ok(tensors) = read_pytorch_state_dict(file.path()) {
        let values: usize = tensors.values().map(|t| t.elem_count()).sum();
        assert!(
            values <= data.len(),
            "{values} values from {} bytes",
            data.len()
        );
    }
});
