//! Which styles a V3 model's style latents confuse: for every held-out fragment, the style of
//! its nearest neighbour among fragments of other samples.
//! `cargo run --release --example v3_style_confusion -- MODEL.safetensors`
#![allow(clippy::unwrap_used)]

use latent_lab::v3::{Lab, data};

fn main() {
    let path = std::env::args().nth(1).unwrap();
    let lab = Lab::load(std::path::Path::new(&path)).unwrap();
    let d = data::load(lab.domain(), &lab.meta.data, &|_| {}).unwrap();
    let mut frags = Vec::new();
    let mut styles = Vec::new();
    let mut sample = Vec::new();
    for (k, s) in d.test.iter().enumerate() {
        for i in 0..s.len() {
            frags.push(s.fragment(i, d.fragment_len()));
            styles.push(s.style);
            sample.push(k);
        }
    }
    let enc = lab.encode(&frags).unwrap();
    let n = d.n_train_styles;
    let mut conf = vec![vec![0usize; n]; n];
    for i in 0..frags.len() {
        let best = (0..frags.len())
            .filter(|&j| sample[j] != sample[i])
            .min_by(|&a, &b| {
                let da: f32 = enc.style[i]
                    .iter()
                    .zip(&enc.style[a])
                    .map(|(x, y)| (x - y) * (x - y))
                    .sum();
                let db: f32 = enc.style[i]
                    .iter()
                    .zip(&enc.style[b])
                    .map(|(x, y)| (x - y) * (x - y))
                    .sum();
                da.total_cmp(&db)
            })
            .unwrap();
        conf[styles[i]][styles[best]] += 1;
    }
    for (s, row) in conf.iter().enumerate() {
        println!("{:>16}: {:?}", d.style_names[s], row);
    }
}
