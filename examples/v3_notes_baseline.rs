//! How far fixed features go on V3 notes: kNN AUC and k-means purity of the log-frequency
//! spectrum (content) and of octave-band envelopes (style).
//! `cargo run --release --example v3_notes_baseline`
#![allow(clippy::unwrap_used)]

use latent_lab::metrics::{contingency, hungarian_max, knn_pr_auc, one_to_one_accuracy, purity};
use latent_lab::v3::data::{self, Dataset, Domain, NOTE_BINS, NOTE_FRAMES};
use latent_lab::v3::model::{LOG_BINS, STYLE_BANDS, band_envelopes, kmeans, log_filterbank};
use rand::SeedableRng;

fn unit(v: Vec<f32>) -> Vec<f32> {
    let n = v.iter().map(|a| a * a).sum::<f32>().sqrt().max(1e-6);
    v.into_iter().map(|a| a / n).collect()
}

fn content_report(name: &str, d: &Dataset, f: &dyn Fn(&[f32]) -> Vec<f32>) {
    let (tr, _, _) = Dataset::flatten(&d.train);
    let (te, tec, tes) = Dataset::flatten(&d.test);
    let trv: Vec<Vec<f32>> = tr.iter().map(|x| f(x)).collect();
    let tev: Vec<Vec<f32>> = te.iter().map(|x| f(x)).collect();
    let auc = knn_pr_auc(&tev, &tec);
    let auc_s = knn_pr_auc(&tev, &tes);
    let k = 12;
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let mut cen = kmeans(&trv, k, 30, &mut rng);
    let d2 = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f32>();
    let near = |v: &[f32], c: &[Vec<f32>]| {
        (0..c.len())
            .min_by(|&i, &j| d2(v, &c[i]).total_cmp(&d2(v, &c[j])))
            .unwrap()
    };
    let codes: Vec<usize> = tev.iter().map(|v| near(v, &cen)).collect();
    let m = contingency(&codes, &tec, k, k);
    print!(
        "{name}: content knn {auc:.3} (on style {auc_s:.3}) | kmeans purity {:.3} 1to1 {:.3}",
        purity(&m),
        one_to_one_accuracy(&m)
    );
    for _ in 0..30 {
        let mut sums = vec![vec![0f32; trv[0].len()]; k];
        let mut cnt = vec![0f32; k];
        for r in 0..trv.len() / k {
            let w: Vec<Vec<f64>> = (0..k)
                .map(|i| {
                    (0..k)
                        .map(|c| -(d2(&trv[r * k + i], &cen[c]) as f64))
                        .collect()
                })
                .collect();
            let a = hungarian_max(&w);
            for i in 0..k {
                let c = a[i].unwrap();
                cnt[c] += 1.0;
                sums[c]
                    .iter_mut()
                    .zip(&trv[r * k + i])
                    .for_each(|(s, v)| *s += v);
            }
        }
        for c in 0..k {
            if cnt[c] > 0.0 {
                cen[c] = sums[c].iter().map(|s| s / cnt[c]).collect();
            }
        }
    }
    let codes: Vec<usize> = tev.iter().map(|v| near(v, &cen)).collect();
    let m = contingency(&codes, &tec, k, k);
    println!(
        " | row-constrained purity {:.3} 1to1 {:.3}",
        purity(&m),
        one_to_one_accuracy(&m)
    );
}

fn style_report(name: &str, d: &Dataset, f: &dyn Fn(&[f32]) -> Vec<f32>) {
    let (te, tec, tes) = Dataset::flatten(&d.test);
    let tev: Vec<Vec<f32>> = te.iter().map(|x| f(x)).collect();
    let (oo, _, oos) = Dataset::flatten(&d.ood);
    let oov: Vec<Vec<f32>> = oo.iter().map(|x| f(x)).collect();
    println!(
        "{name}: style knn {:.3} ood {:.3} (on content {:.3})",
        knn_pr_auc(&tev, &tes),
        knn_pr_auc(&oov, &oos),
        knn_pr_auc(&tev, &tec)
    );
}

fn main() {
    let d = data::load(Domain::Notes, "soundfont", &|_| {}).unwrap();
    let lf = log_filterbank(NOTE_BINS);
    let mean_spec = |x: &[f32]| -> Vec<f32> {
        (0..NOTE_BINS)
            .map(|b| {
                x[b * NOTE_FRAMES..(b + 1) * NOTE_FRAMES]
                    .iter()
                    .sum::<f32>()
                    / NOTE_FRAMES as f32
            })
            .collect()
    };
    let logf = |x: &[f32]| -> Vec<f32> {
        let s = mean_spec(x);
        (0..LOG_BINS)
            .map(|j| (0..NOTE_BINS).map(|b| s[b] * lf[b * LOG_BINS + j]).sum())
            .collect()
    };
    content_report("log-freq unit", &d, &|x| unit(logf(x)));
    let whiten = |x: &[f32], half: usize| -> Vec<f32> {
        let l = logf(x);
        let n = l.len();
        let w: Vec<f32> = (0..n)
            .map(|i| {
                let (a, b) = (i.saturating_sub(half), (i + half + 1).min(n));
                l[i] - l[a..b].iter().sum::<f32>() / (b - a) as f32
            })
            .map(|v| v.max(0.0))
            .collect();
        unit(w)
    };
    content_report("log-freq whitened 6", &d, &|x| whiten(x, 6));
    content_report("log-freq whitened 12", &d, &|x| whiten(x, 12));
    // harmonic sum over candidate f0s in quarter tones (2 per semitone) from C4 - 1 semitone
    let hsum = |x: &[f32]| -> Vec<f32> {
        let l = whiten(x, 12);
        let at = |pos: f32| -> f32 {
            let i = pos.floor() as isize;
            if i < 0 || i + 1 >= l.len() as isize {
                return 0.0;
            }
            let f = pos - i as f32;
            l[i as usize] * (1.0 - f) + l[i as usize + 1] * f
        };
        unit(
            (0..28)
                .map(|c| {
                    let f0 = 10.0 + c as f32; // log bin of candidate (24/oct): C4 at ~14
                    (1..=6)
                        .map(|h| at(f0 + 24.0 * (h as f32).log2()) / (h as f32).sqrt())
                        .sum()
                })
                .collect(),
        )
    };
    content_report("harmonic sum", &d, &hsum);
    let band_env = |x: &[f32]| -> Vec<f32> { band_envelopes(&[x]).unwrap().remove(0) };
    style_report("band envelope", &d, &band_env);
    style_report("band envelope unit", &d, &|x| unit(band_env(x)));
    style_report("log-freq unit", &d, &|x| unit(logf(x)));
    style_report("log-freq envelope (smoothed 12)", &d, &|x| {
        let l = logf(x);
        let n = l.len();
        unit(
            (0..n)
                .map(|i| {
                    let (a, b) = (i.saturating_sub(12), (i + 13).min(n));
                    l[a..b].iter().sum::<f32>() / (b - a) as f32
                })
                .collect(),
        )
    });
    // log-frequency spectrogram, frame by frame
    let logf_frames = |x: &[f32]| -> Vec<Vec<f32>> {
        (0..NOTE_FRAMES)
            .map(|t| {
                (0..LOG_BINS)
                    .map(|j| {
                        (0..NOTE_BINS)
                            .map(|b| x[b * NOTE_FRAMES + t] * lf[b * LOG_BINS + j])
                            .sum()
                    })
                    .collect()
            })
            .collect()
    };
    // autocorrelation along log frequency of the mean spectrum: shift (pitch) invariant
    let acorr = |l: &[f32], lags: usize| -> Vec<f32> {
        (0..lags)
            .map(|g| (0..l.len() - g).map(|i| l[i] * l[i + g]).sum::<f32>())
            .collect()
    };
    style_report("acorr mean spectrum 64", &d, &|x| unit(acorr(&logf(x), 64)));
    style_report("acorr + band env", &d, &|x| {
        let mut a = unit(acorr(&logf(x), 64));
        a.extend(unit(band_env(x)));
        a
    });
    style_report("acorr per 4 frames", &d, &|x| {
        let fr = logf_frames(x);
        let mut v = Vec::new();
        for c in fr.chunks(4) {
            let m: Vec<f32> = (0..LOG_BINS)
                .map(|j| c.iter().map(|f| f[j]).sum::<f32>())
                .collect();
            v.extend(acorr(&m, 48));
        }
        unit(v)
    });
    style_report("third-octave bands x frames", &d, &|x| {
        let fr = logf_frames(x);
        unit(
            fr.iter()
                .flat_map(|f| {
                    f.chunks(8)
                        .map(|c| c.iter().sum::<f32>())
                        .collect::<Vec<_>>()
                })
                .collect(),
        )
    });
    // pitch-aligned log spectrogram: the log-frequency axis shifted so that the strongest
    // harmonic-sum candidate sits at bin 0 (the harmonics' pattern, whatever the pitch)
    let aligned = |x: &[f32], pool: usize, bins: usize| -> Vec<f32> {
        let h = hsum(x);
        let best = (0..h.len()).max_by(|a, b| h[*a].total_cmp(&h[*b])).unwrap();
        let f0 = 10 + best;
        let fr = logf_frames(x);
        let mut v = Vec::new();
        for c in fr.chunks(pool) {
            for j in 0..bins {
                let i = f0 + j;
                v.push(if i < LOG_BINS {
                    c.iter().map(|f| f[i]).sum::<f32>() / pool as f32
                } else {
                    0.0
                });
            }
        }
        v
    };
    style_report("aligned mean 96", &d, &|x| aligned(x, 32, 96));
    style_report("aligned 4fr x 96", &d, &|x| aligned(x, 4, 96));
    style_report("aligned 8fr x 96 + band env", &d, &|x| {
        let mut a = aligned(x, 8, 96);
        a.extend(band_env(x));
        a
    });
    style_report("band env 4fr pooled", &d, &|x| {
        let b = band_env(x);
        b.chunks(4 * STYLE_BANDS)
            .flat_map(|c| {
                (0..STYLE_BANDS).map(move |k| c.iter().skip(k).step_by(STYLE_BANDS).sum::<f32>())
            })
            .collect()
    });
}
