//! How far pixels alone go on V3 digits: kNN AUC of ink maps and k-means purity, raw and
//! after moment normalisation. `cargo run --release --example v3_digit_baseline`
#![allow(clippy::unwrap_used)]

use latent_lab::metrics::{contingency, hungarian_max, knn_pr_auc, one_to_one_accuracy, purity};
use latent_lab::v3::data::{self, DIGIT_H, DIGIT_W, Dataset, Domain};
use latent_lab::v3::model::kmeans;
use rand::SeedableRng;

fn ink(f: &[f32]) -> Vec<f32> {
    let n = DIGIT_H * DIGIT_W;
    (0..n)
        .map(|i| 1.0 - (f[i] + f[n + i] + f[2 * n + i]) / 3.0)
        .collect()
}

/// centre of mass to the middle, shear so that the second moment xy is 0, scale to unit std.
fn normalise(img: &[f32]) -> Vec<f32> {
    let (h, w) = (DIGIT_H, DIGIT_W);
    let m: f32 = img.iter().sum::<f32>().max(1e-6);
    let (mut cx, mut cy) = (0f32, 0f32);
    for y in 0..h {
        for x in 0..w {
            cx += x as f32 * img[y * w + x];
            cy += y as f32 * img[y * w + x];
        }
    }
    cx /= m;
    cy /= m;
    let (mut sxy, mut syy, mut sxx) = (0f32, 0f32, 0f32);
    for y in 0..h {
        for x in 0..w {
            let v = img[y * w + x];
            let (dx, dy) = (x as f32 - cx, y as f32 - cy);
            sxy += v * dx * dy;
            syy += v * dy * dy;
            sxx += v * dx * dx;
        }
    }
    let shear = sxy / syy.max(1e-6);
    let sy = (syy / m).sqrt().max(1e-3);
    let sxx2 = (sxx - 2.0 * shear * sxy + shear * shear * syy) / m; // x variance after shear
    let sx = sxx2.max(1e-6).sqrt();
    let ty = 7.0 / sy;
    let tx = if std::env::var("KEEPW").is_ok() {
        ty
    } else {
        4.5 / sx
    };
    let mut out = vec![0f32; h * w];
    let (ox, oy) = (w as f32 / 2.0 - 0.5, h as f32 / 2.0 - 0.5);
    for y in 0..h {
        for x in 0..w {
            let v = (y as f32 - oy) / ty;
            let u = (x as f32 - ox) / tx + shear * v;
            let (sx_, sy_) = (cx + u, cy + v);
            let (x0, y0) = (sx_.floor(), sy_.floor());
            let (fx, fy) = (sx_ - x0, sy_ - y0);
            let at = |xx: f32, yy: f32| {
                if xx < 0.0 || yy < 0.0 || xx >= w as f32 || yy >= h as f32 {
                    0.0
                } else {
                    img[yy as usize * w + xx as usize]
                }
            };
            out[y * w + x] = (1.0 - fy) * ((1.0 - fx) * at(x0, y0) + fx * at(x0 + 1.0, y0))
                + fy * ((1.0 - fx) * at(x0, y0 + 1.0) + fx * at(x0 + 1.0, y0 + 1.0));
        }
    }
    out
}

fn unit(v: Vec<f32>) -> Vec<f32> {
    let n = v.iter().map(|a| a * a).sum::<f32>().sqrt().max(1e-6);
    v.into_iter().map(|a| a / n).collect()
}

fn report(name: &str, d: &Dataset, f: &dyn Fn(&[f32]) -> Vec<f32>) {
    let (tr, trc, _) = Dataset::flatten(&d.train);
    let (te, tec, _) = Dataset::flatten(&d.test);
    let trv: Vec<Vec<f32>> = tr.iter().map(|x| unit(f(&ink(x)))).collect();
    let tev: Vec<Vec<f32>> = te.iter().map(|x| unit(f(&ink(x)))).collect();
    let auc = knn_pr_auc(&tev, &tec);
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let cen = kmeans(&trv, 10, 30, &mut rng);
    let d2 = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f32>();
    let near = |v: &[f32], c: &[Vec<f32>]| {
        (0..c.len())
            .min_by(|&i, &j| d2(v, &c[i]).total_cmp(&d2(v, &c[j])))
            .unwrap()
    };
    let codes: Vec<usize> = tev.iter().map(|v| near(v, &cen)).collect();
    let m = contingency(&codes, &tec, 10, 10);
    println!(
        "{name}: knn auc {auc:.3} | kmeans test purity {:.3} 1to1 {:.3}",
        purity(&m),
        one_to_one_accuracy(&m)
    );
    // row-constrained k-means
    let mut cen = cen;
    for _ in 0..30 {
        let mut sums = vec![vec![0f32; trv[0].len()]; 10];
        let mut cnt = [0f32; 10];
        for r in 0..trv.len() / 10 {
            let w: Vec<Vec<f64>> = (0..10)
                .map(|i| {
                    (0..10)
                        .map(|k| -(d2(&trv[r * 10 + i], &cen[k]) as f64))
                        .collect()
                })
                .collect();
            let a = hungarian_max(&w);
            for i in 0..10 {
                let k = a[i].unwrap();
                cnt[k] += 1.0;
                sums[k]
                    .iter_mut()
                    .zip(&trv[r * 10 + i])
                    .for_each(|(s, v)| *s += v);
            }
        }
        for k in 0..10 {
            if cnt[k] > 0.0 {
                cen[k] = sums[k].iter().map(|s| s / cnt[k]).collect();
            }
        }
    }
    let codes: Vec<usize> = tev.iter().map(|v| near(v, &cen)).collect();
    let m = contingency(&codes, &tec, 10, 10);
    let trcodes: Vec<usize> = trv.iter().map(|v| near(v, &cen)).collect();
    let mt = contingency(&trcodes, &trc, 10, 10);
    println!(
        "   row-constrained kmeans: test purity {:.3} 1to1 {:.3}; train purity {:.3}",
        purity(&m),
        one_to_one_accuracy(&m),
        purity(&mt)
    );
    // supervised prototypes: class means of training
    let mut pro = vec![vec![0f32; trv[0].len()]; 10];
    let mut cnt = [0f32; 10];
    for (v, &c) in trv.iter().zip(&trc) {
        cnt[c] += 1.0;
        pro[c].iter_mut().zip(v).for_each(|(s, x)| *s += x);
    }
    for c in 0..10 {
        pro[c].iter_mut().for_each(|s| *s /= cnt[c]);
    }
    let acc = tev
        .iter()
        .zip(&tec)
        .filter(|(v, c)| near(v, &pro) == **c)
        .count() as f64
        / tev.len() as f64;
    println!("   nearest class mean (supervised) accuracy {acc:.3}");
}

fn main() {
    let d = data::load(Domain::Digits, "digits", &|_| {}).unwrap();
    println!("train rows {} test rows {}", d.train.len(), d.test.len());
    report("fragments as made", &d, &|x| x.to_vec());
    report("fragments normalised again", &d, &normalise);
    if let Some(out) = std::env::args().nth(1) {
        let tiles = d.train[..12]
            .iter()
            .flat_map(|s| {
                (0..10).map(|i| {
                    latent_lab::v3::fragment_image(Domain::Digits, s.fragment(i, d.fragment_len()))
                        .2
                })
            })
            .collect();
        latent_lab::figures::save(
            &latent_lab::figures::Figure::ImageGrid {
                title: "V3 digit fragments".into(),
                tile_w: DIGIT_W,
                tile_h: DIGIT_H,
                cols: 10,
                tiles,
                captions: Vec::new(),
            },
            std::path::Path::new(&out),
        )
        .unwrap();
    }
}
