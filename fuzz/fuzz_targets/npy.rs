#![no_main]
//! Any bytes given as a `.npy` array must be read or refused, never panic, and never make
//! the reader allocate more than the file holds (a header claiming 10^12 rows must be
//! refused before it is believed); on `Ok` every value is finite.

use latent_lab::cli::read_npy;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(file) = tempfile::NamedTempFile::new() else {
        return;
    };
    if std::fs::write(file.path(), data).is_err() {
        return;
    }
    if let Ok(x) = read_npy(file.path()) {
        // at least one byte a value
        assert!(
            x.elem_count() <= data.len(),
            "{:?} from {} bytes",
            x.dims(),
            data.len()
        );
        let values = x.flatten_all().and_then(|v| v.to_vec1::<f32>()).unwrap();
        assert!(values.iter().all(|v| v.is_finite()));
    }
});
