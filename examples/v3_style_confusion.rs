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
    // mean squared style distance between fragments of the same take, of other takes of the
    // same style, and of other styles; and the share of queries whose every other-take
    // positive is nearer than their nearest other-style fragment
    let dist = |a: usize, b: usize| -> f64 {
        enc.style[a]
            .iter()
            .zip(&enc.style[b])
            .map(|(x, y)| ((x - y) * (x - y)) as f64)
            .sum()
    };
    let (mut same, mut other_take, mut other_style) = ((0.0, 0), (0.0, 0), (0.0, 0));
    let mut clean = 0;
    for i in 0..frags.len() {
        let mut far_pos = 0f64;
        let mut near_neg = f64::INFINITY;
        for j in (0..frags.len()).filter(|&j| j != i) {
            let dd = dist(i, j);
            let slot = if sample[j] == sample[i] {
                &mut same
            } else if styles[j] == styles[i] {
                far_pos = far_pos.max(dd);
                &mut other_take
            } else {
                near_neg = near_neg.min(dd);
                &mut other_style
            };
            slot.0 += dd;
            slot.1 += 1;
        }
        clean += usize::from(far_pos < near_neg);
    }
    // retrieval AUC of each style's fragments as queries (the eval's measure, per style)
    for (st, name) in d.style_names.iter().enumerate().take(n) {
        let idx: Vec<usize> = (0..frags.len()).filter(|&i| styles[i] == st).collect();
        if idx.is_empty() {
            continue;
        }
        let mut ap = 0.0;
        for &i in &idx {
            let mut order: Vec<(f64, usize)> = (0..frags.len())
                .filter(|&j| j != i)
                .map(|j| (dist(i, j), j))
                .collect();
            order.sort_by(|a, b| a.0.total_cmp(&b.0));
            let (mut hits, mut sum) = (0.0, 0.0);
            for (k, (_, j)) in order.iter().enumerate() {
                if styles[*j] == st {
                    hits += 1.0;
                    sum += hits / (k + 1) as f64;
                }
            }
            ap += sum / hits.max(1.0);
        }
        println!("{name:>16}: average precision {:.3}", ap / idx.len() as f64);
    }
    println!(
        "mean squared style distance: same take {:.4}, other take of the style {:.4}, other style {:.4}; every other-take positive nearer than the nearest other style: {}/{}",
        same.0 / same.1 as f64,
        other_take.0 / other_take.1 as f64,
        other_style.0 / other_style.1 as f64,
        clean,
        frags.len()
    );
}
