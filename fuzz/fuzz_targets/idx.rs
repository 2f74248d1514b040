#![no_main]
//! Any bytes given to the IDX readers (images and labels) must yield `Ok` or `Err`, never a
//! panic; on `Ok` the documented promises hold (sizes agree with the data, labels are digits).

use std::path::Path;

use latent_lab::digits::io::{parse_idx_images, parse_idx_labels};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.idx");
    if let Ok(images) = parse_idx_images(data, path) {
        assert!(images.count > 0 && images.rows > 0 && images.cols > 0);
        assert_eq!(
            images.pixels.len(),
            images.count * images.rows * images.cols
        );
        assert_eq!(images.pixels.len() + 16, data.len());
    }
    if let Ok(labels) = parse_idx_labels(data, path) {
        assert!(!labels.is_empty() && labels.iter().all(|&l| l <= 9));
        assert_eq!(labels.len() + 8, data.len());
    }
});
