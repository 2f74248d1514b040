//! Metrics shared by the families: least-squares lines and R^2.

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

/// y = w . x + b fitted by least squares over rows of several inputs (a tiny ridge keeps
/// it solvable when an input does not vary). Returns (w, b).
pub fn affine_fit(x: &[Vec<f64>], y: &[f64]) -> (Vec<f64>, f64) {
    let n = x.len().min(y.len());
    let d = x.first().map_or(0, |r| r.len());
    if n == 0 {
        return (vec![0.0; d], 0.0);
    }
    let mean_x: Vec<f64> = (0..d)
        .map(|j| x[..n].iter().map(|r| r[j]).sum::<f64>() / n as f64)
        .collect();
    let mean_y = y[..n].iter().sum::<f64>() / n as f64;
    // normal equations on centred data: (X'X + ridge) w = X'y
    let mut a = vec![vec![0f64; d + 1]; d];
    for (r, &t) in x[..n].iter().zip(&y[..n]) {
        for i in 0..d {
            let xi = r[i] - mean_x[i];
            for j in 0..d {
                a[i][j] += xi * (r[j] - mean_x[j]);
            }
            a[i][d] += xi * (t - mean_y);
        }
    }
    let scale = (0..d).map(|i| a[i][i]).fold(0f64, f64::max).max(1e-12);
    for (i, row) in a.iter_mut().enumerate() {
        row[i] += 1e-9 * scale;
    }
    // Gauss-Jordan with partial pivoting
    for col in 0..d {
        let pivot = (col..d)
            .max_by(|&p, &q| a[p][col].abs().total_cmp(&a[q][col].abs()))
            .unwrap_or(col);
        a.swap(col, pivot);
        let p = a[col][col];
        if p.abs() < 1e-300 {
            continue;
        }
        a[col].iter_mut().for_each(|v| *v /= p);
        let pivot_row = a[col].clone();
        for (r, row) in a.iter_mut().enumerate() {
            if r != col {
                let f = row[col];
                row.iter_mut()
                    .zip(&pivot_row)
                    .for_each(|(v, q)| *v -= f * q);
            }
        }
    }
    let w: Vec<f64> = (0..d).map(|i| a[i][d]).collect();
    let b = mean_y - w.iter().zip(&mean_x).map(|(w, m)| w * m).sum::<f64>();
    (w, b)
}

/// Coefficient of determination of predictions against truth: 1 - SS_res / SS_tot
/// (0 when the truth does not vary; may be negative for predictions worse than the mean).
pub fn r_squared(pred: &[f64], truth: &[f64]) -> f64 {
    let n = pred.len().min(truth.len());
    if n < 2 {
        return 0.0;
    }
    let mean = truth[..n].iter().sum::<f64>() / n as f64;
    let ss_tot: f64 = truth[..n].iter().map(|t| (t - mean).powi(2)).sum();
    let ss_res: f64 = pred[..n]
        .iter()
        .zip(&truth[..n])
        .map(|(p, t)| (p - t).powi(2))
        .sum();
    if ss_tot <= 0.0 {
        return 0.0;
    }
    1.0 - ss_res / ss_tot
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

    #[test]
    fn affine_fit_recovers_a_plane_and_scores_held_out_points() {
        let x: Vec<Vec<f64>> = (0..50)
            .map(|i| vec![(i % 7) as f64, (i / 7) as f64 * 0.5, ((i * 13) % 11) as f64])
            .collect();
        let y: Vec<f64> = x
            .iter()
            .map(|r| 2.0 * r[0] - r[1] + 0.5 * r[2] + 3.0)
            .collect();
        let (w, b) = affine_fit(&x, &y);
        assert!(
            (w[0] - 2.0).abs() < 1e-6 && (w[1] + 1.0).abs() < 1e-6 && (w[2] - 0.5).abs() < 1e-6
        );
        assert!((b - 3.0).abs() < 1e-6);
        assert!((r_squared(&y, &y) - 1.0).abs() < 1e-12);
        let mean = vec![y.iter().sum::<f64>() / y.len() as f64; y.len()];
        assert!(r_squared(&mean, &y).abs() < 1e-12);
    }
}
