//! Writes the V3 notes' fixed style views (octave-band envelopes) of training and held-out
//! fragments, with their take and instrument labels, as JSON for offline analysis.
//! `cargo run --release --example v3_dump_features -- OUT.json`
#![allow(clippy::unwrap_used)]

use latent_lab::v3::data::{self, Dataset, Domain};
use latent_lab::v3::model::band_envelopes;

fn main() {
    let out = std::env::args().nth(1).unwrap();
    let d = data::load(Domain::Notes, "soundfont", &|_| {}).unwrap();
    let split = |samples: &[data::Sample]| {
        let (frags, contents, styles) = Dataset::flatten(samples);
        let per = samples.first().map(|s| s.contents.len()).unwrap_or(1);
        let takes: Vec<usize> = (0..frags.len()).map(|i| i / per).collect();
        serde_json::json!({
            "x": band_envelopes(&frags).unwrap(),
            "content": contents, "style": styles, "take": takes,
        })
    };
    let j =
        serde_json::json!({"train": split(&d.train), "test": split(&d.test), "ood": split(&d.ood)});
    std::fs::write(out, j.to_string()).unwrap();
}
