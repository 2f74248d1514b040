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
