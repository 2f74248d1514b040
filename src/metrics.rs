//! Metrics shared by the families: least-squares lines and R^2, mutual information.

/// y = slope * x + intercept, and the R^2 of that line on the same points.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LinearFit {
    pub slope: f64,
    pub intercept: f64,
    pub r2: f64,
}

/// Least-squares line through (x, y). R^2 is 0 when x or y does not vary.
pub fn linear_fit(x: &[f64], y: &[f64]) -> LinearFit {
    let n = x.len().min(y.len());
    if n < 2 {
        return LinearFit::default();
    }
    let (x, y) = (&x[..n], &y[..n]);
    let mx = x.iter().sum::<f64>() / n as f64;
    let my = y.iter().sum::<f64>() / n as f64;
    let sxx: f64 = x.iter().map(|v| (v - mx).powi(2)).sum();
    let syy: f64 = y.iter().map(|v| (v - my).powi(2)).sum();
    let sxy: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
    if sxx <= 0.0 || syy <= 0.0 {
        return LinearFit {
            slope: 0.0,
            intercept: my,
            r2: 0.0,
        };
    }
    let slope = sxy / sxx;
    LinearFit {
        slope,
        intercept: my - slope * mx,
        r2: (sxy * sxy) / (sxx * syy),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_line_has_r2_one_and_noise_lowers_it() {
        let x: Vec<f64> = (0..20).map(|i| i as f64).collect();
        let y: Vec<f64> = x.iter().map(|v| 3.0 * v - 2.0).collect();
        let f = linear_fit(&x, &y);
        assert!(
            (f.slope - 3.0).abs() < 1e-9
                && (f.intercept + 2.0).abs() < 1e-9
                && (f.r2 - 1.0).abs() < 1e-12
        );
        let noisy: Vec<f64> = y
            .iter()
            .enumerate()
            .map(|(i, v)| v + if i % 2 == 0 { 5.0 } else { -5.0 })
            .collect();
        assert!(linear_fit(&x, &noisy).r2 < 0.95);
        assert_eq!(linear_fit(&x, &[1.0; 20]).r2, 0.0);
    }
}

/// Mutual information (nats) between two equally long series, by a histogram of `bins` x
/// `bins` equal-frequency cells (so a monotone reshaping of either series changes nothing),
/// with the Miller-Madow correction of the small-sample bias. 0 when either does not vary.
pub fn mutual_information(a: &[f32], b: &[f32], bins: usize) -> f64 {
    let n = a.len().min(b.len());
    if n < 2 || bins < 2 {
        return 0.0;
    }
    let ranks = |v: &[f32]| -> Option<Vec<usize>> {
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&i, &j| v[i].total_cmp(&v[j]));
        if v[order[0]] == v[order[n - 1]] {
            return None;
        }
        let mut bin = vec![0; n];
        let mut k = 0;
        while k < n {
            // ties share a cell
            let mut end = k;
            while end + 1 < n && v[order[end + 1]] == v[order[k]] {
                end += 1;
            }
            let cell = (k * bins / n).min(bins - 1);
            for &i in &order[k..=end] {
                bin[i] = cell;
            }
            k = end + 1;
        }
        Some(bin)
    };
    let (Some(ba), Some(bb)) = (ranks(&a[..n]), ranks(&b[..n])) else {
        return 0.0;
    };
    let mut joint = vec![0usize; bins * bins];
    let (mut pa, mut pb) = (vec![0usize; bins], vec![0usize; bins]);
    for (&i, &j) in ba.iter().zip(&bb) {
        joint[i * bins + j] += 1;
        pa[i] += 1;
        pb[j] += 1;
    }
    let entropy = |counts: &[usize]| -> (f64, usize) {
        let mut h = 0.0;
        let mut used = 0;
        for &c in counts.iter().filter(|&&c| c > 0) {
            let p = c as f64 / n as f64;
            h -= p * p.ln();
            used += 1;
        }
        // Miller-Madow: the plug-in entropy is low by (cells used - 1) / 2n
        (h + (used as f64 - 1.0) / (2.0 * n as f64), used)
    };
    let (ha, _) = entropy(&pa);
    let (hb, _) = entropy(&pb);
    let (hab, _) = entropy(&joint);
    (ha + hb - hab).max(0.0)
}

#[cfg(test)]
mod mi_tests {
    use super::mutual_information;

    #[test]
    fn mutual_information_sees_dependence_that_correlation_misses() {
        let n = 4000;
        let x: Vec<f32> = (0..n).map(|i| (i as f32 / n as f32) * 2.0 - 1.0).collect();
        // y = x^2: Pearson r is 0, but y is a function of x
        let y: Vec<f32> = x.iter().map(|v| v * v).collect();
        // an unrelated series: a scrambled copy
        let z: Vec<f32> = (0..n).map(|i| x[(i * 7919) % n]).collect();
        let dependent = mutual_information(&x, &y, 16);
        let independent = mutual_information(&x, &z, 16);
        assert!(dependent > 1.5, "MI(x, x^2) = {dependent}");
        assert!(independent < 0.05, "MI of unrelated series = {independent}");
        assert_eq!(mutual_information(&x, &vec![1.0; n], 16), 0.0);
    }
}

/// Test accuracy of a linear probe: multinomial logistic regression from features to classes,
/// fitted on `(train_x, train_y)` (features standardised on the training rows, a little L2,
/// full-batch gradient descent) and scored on `(test_x, test_y)`. Rows are `dim` features.
/// Near `1 / classes` means the features say nothing linear about the class.
pub fn linear_probe_accuracy(
    train_x: &[f32],
    train_y: &[u8],
    test_x: &[f32],
    test_y: &[u8],
    dim: usize,
    classes: usize,
) -> f64 {
    let n = train_y.len().min(train_x.len() / dim.max(1));
    let m = test_y.len().min(test_x.len() / dim.max(1));
    if n == 0 || m == 0 || dim == 0 || classes < 2 {
        return f64::NAN;
    }
    let mut mean = vec![0f64; dim];
    let mut sd = vec![0f64; dim];
    for i in 0..n {
        for d in 0..dim {
            mean[d] += train_x[i * dim + d] as f64 / n as f64;
        }
    }
    for i in 0..n {
        for d in 0..dim {
            sd[d] += (train_x[i * dim + d] as f64 - mean[d]).powi(2) / n as f64;
        }
    }
    for s in &mut sd {
        *s = s.sqrt().max(1e-8);
    }
    let features = |x: &[f32], i: usize| -> Vec<f64> {
        let mut f: Vec<f64> = (0..dim)
            .map(|d| (x[i * dim + d] as f64 - mean[d]) / sd[d])
            .collect();
        f.push(1.0);
        f
    };
    let train: Vec<Vec<f64>> = (0..n).map(|i| features(train_x, i)).collect();
    let w_len = (dim + 1) * classes;
    let mut w = vec![0f64; w_len];
    let (lr, l2) = (0.5, 1e-4);
    let scores = |w: &[f64], f: &[f64]| -> Vec<f64> {
        (0..classes)
            .map(|c| {
                f.iter()
                    .zip(&w[c * (dim + 1)..(c + 1) * (dim + 1)])
                    .map(|(a, b)| a * b)
                    .sum()
            })
            .collect()
    };
    for _ in 0..400 {
        let mut grad = vec![0f64; w_len];
        for (f, &y) in train.iter().zip(train_y) {
            let s = scores(&w, f);
            let max = s.iter().cloned().fold(f64::MIN, f64::max);
            let e: Vec<f64> = s.iter().map(|v| (v - max).exp()).collect();
            let z: f64 = e.iter().sum();
            for c in 0..classes {
                let g = e[c] / z - if c == y as usize { 1.0 } else { 0.0 };
                for (k, fk) in f.iter().enumerate() {
                    grad[c * (dim + 1) + k] += g * fk / n as f64;
                }
            }
        }
        for (wi, gi) in w.iter_mut().zip(&grad) {
            *wi -= lr * (gi + l2 * *wi);
        }
    }
    let right = (0..m)
        .filter(|&i| {
            let s = scores(&w, &features(test_x, i));
            let best = s
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map_or(0, |(c, _)| c);
            best == test_y[i] as usize
        })
        .count();
    right as f64 / m as f64
}

#[cfg(test)]
mod probe_tests {
    use super::linear_probe_accuracy;

    #[test]
    fn probe_reads_linear_classes_and_not_noise() {
        // class c sits at x = c along one axis: linearly readable; a noise feature is not
        let mut x = Vec::new();
        let mut noise = Vec::new();
        let mut y = Vec::new();
        let mut s = 1u64;
        for i in 0..2000 {
            let c = (i % 4) as u8;
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let u = (s >> 33) as f32 / (1u64 << 31) as f32;
            x.extend([c as f32 * 3.0 + u, u]);
            noise.extend([u, 1.0 - u]);
            y.push(c);
        }
        let (tx, ty) = (&x[..2000], &y[..1000]);
        assert!(linear_probe_accuracy(tx, ty, &x[2000..], &y[1000..], 2, 4) > 0.95);
        let acc = linear_probe_accuracy(&noise[..2000], ty, &noise[2000..], &y[1000..], 2, 4);
        assert!(acc < 0.35, "{acc}");
    }
}
