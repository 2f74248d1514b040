//! Metrics shared by the families: least-squares lines and R^2, mutual information, cluster
//! purity and Hungarian matching, k-nearest-neighbour retrieval precision-recall AUC, PCA to two
//! dimensions, linear probes.

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

/// Counts of (cluster, label) pairs: `rows` clusters x `cols` labels.
pub fn contingency(
    clusters: &[usize],
    labels: &[usize],
    rows: usize,
    cols: usize,
) -> Vec<Vec<f64>> {
    let mut m = vec![vec![0.0; cols]; rows];
    for (&c, &l) in clusters.iter().zip(labels) {
        if c < rows && l < cols {
            m[c][l] += 1.0;
        }
    }
    m
}

/// Purity of a contingency table: for each used cluster (row with any count), the share of its
/// members carrying its most common label, averaged over the used clusters. 0 when none is used.
pub fn purity(table: &[Vec<f64>]) -> f64 {
    let shares: Vec<f64> = table
        .iter()
        .filter_map(|row| {
            let total: f64 = row.iter().sum();
            (total > 0.0).then(|| row.iter().copied().fold(0.0, f64::max) / total)
        })
        .collect();
    if shares.is_empty() {
        0.0
    } else {
        shares.iter().sum::<f64>() / shares.len() as f64
    }
}

/// Hungarian (Kuhn-Munkres) assignment maximising the summed weight of a rows x cols matrix;
/// every row gets a distinct column or `None` when there are more rows than columns.
pub fn hungarian_max(weights: &[Vec<f64>]) -> Vec<Option<usize>> {
    let rows = weights.len();
    let cols = weights.iter().map(|r| r.len()).max().unwrap_or(0);
    let n = rows.max(cols);
    if n == 0 {
        return Vec::new();
    }
    let max_w = weights
        .iter()
        .flat_map(|r| r.iter().copied())
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max);
    // square cost matrix, 1-based as in the classic potentials formulation
    let cost = |i: usize, j: usize| -> f64 {
        weights
            .get(i)
            .and_then(|r| r.get(j))
            .copied()
            .filter(|v| v.is_finite())
            .map_or(max_w, |w| max_w - w)
    };
    let (mut u, mut v) = (vec![0.0; n + 1], vec![0.0; n + 1]);
    let (mut p, mut way) = (vec![0usize; n + 1], vec![0usize; n + 1]);
    for i in 1..=n {
        p[0] = i;
        let mut j0 = 0;
        let mut minv = vec![f64::INFINITY; n + 1];
        let mut used = vec![false; n + 1];
        loop {
            used[j0] = true;
            let i0 = p[j0];
            let mut delta = f64::INFINITY;
            let mut j1 = 0;
            for j in 1..=n {
                if !used[j] {
                    let cur = cost(i0 - 1, j - 1) - u[i0] - v[j];
                    if cur < minv[j] {
                        minv[j] = cur;
                        way[j] = j0;
                    }
                    if minv[j] < delta {
                        delta = minv[j];
                        j1 = j;
                    }
                }
            }
            for j in 0..=n {
                if used[j] {
                    u[p[j]] += delta;
                    v[j] -= delta;
                } else {
                    minv[j] -= delta;
                }
            }
            j0 = j1;
            if p[j0] == 0 {
                break;
            }
        }
        loop {
            let j1 = way[j0];
            p[j0] = p[j1];
            j0 = j1;
            if j0 == 0 {
                break;
            }
        }
    }
    let mut assignment = vec![None; rows];
    for (j, &i) in p.iter().enumerate().skip(1) {
        if i >= 1 && i <= rows && j <= cols {
            assignment[i - 1] = Some(j - 1);
        }
    }
    assignment
}

/// Accuracy after the best one-to-one matching of clusters to labels (Hungarian) on a
/// contingency table: matched counts over all counts.
pub fn one_to_one_accuracy(table: &[Vec<f64>]) -> f64 {
    let total: f64 = table.iter().flat_map(|r| r.iter()).sum();
    if total <= 0.0 {
        return 0.0;
    }
    let matched: f64 = hungarian_max(table)
        .iter()
        .enumerate()
        .filter_map(|(i, j)| j.map(|j| table[i][j]))
        .sum();
    matched / total
}

/// Precision-recall AUC of Euclidean k-nearest-neighbour retrieval of the same label: for every
/// query, its neighbours are ranked by distance (itself left out); precision and recall at each
/// k = 1..N-1 are averaged over the queries, and the area under that curve is summed stepwise
/// from recall 0. 1 when every item's nearest neighbours all share its label; about the share
/// of a label among the items when the latents ignore the labels. Queries whose label no other
/// item carries are skipped.
pub fn knn_pr_auc(points: &[Vec<f32>], labels: &[usize]) -> f64 {
    let n = points.len().min(labels.len());
    if n < 2 {
        return 0.0;
    }
    let mut precision = vec![0.0f64; n - 1];
    let mut recall = vec![0.0f64; n - 1];
    let mut queries = 0usize;
    let mut order: Vec<(f32, usize)> = Vec::with_capacity(n);
    for i in 0..n {
        let positives = (0..n).filter(|&j| j != i && labels[j] == labels[i]).count();
        if positives == 0 {
            continue;
        }
        queries += 1;
        order.clear();
        for j in (0..n).filter(|&j| j != i) {
            let d: f32 = points[i]
                .iter()
                .zip(&points[j])
                .map(|(a, b)| (a - b) * (a - b))
                .sum();
            order.push((if d.is_finite() { d } else { f32::INFINITY }, j));
        }
        order.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let mut hits = 0usize;
        for (k, (_, j)) in order.iter().enumerate() {
            if labels[*j] == labels[i] {
                hits += 1;
            }
            precision[k] += hits as f64 / (k + 1) as f64;
            recall[k] += hits as f64 / positives as f64;
        }
    }
    if queries == 0 {
        return 0.0;
    }
    let mut area = 0.0;
    let mut last_recall = 0.0;
    for k in 0..n - 1 {
        let (p, r) = (precision[k] / queries as f64, recall[k] / queries as f64);
        area += (r - last_recall) * p;
        last_recall = r;
    }
    area
}

/// Principal component analysis to two dimensions: the rows projected on the two leading
/// directions of their covariance (power iteration with deflation), centred on the mean.
pub fn pca_2d(rows: &[Vec<f32>]) -> Vec<[f32; 2]> {
    let n = rows.len();
    let d = rows.first().map_or(0, |r| r.len());
    if n == 0 || d == 0 {
        return vec![[0.0, 0.0]; n];
    }
    let mut mean = vec![0.0f64; d];
    for r in rows {
        for (m, v) in mean.iter_mut().zip(r) {
            *m += *v as f64 / n as f64;
        }
    }
    let centred: Vec<Vec<f64>> = rows
        .iter()
        .map(|r| r.iter().zip(&mean).map(|(v, m)| *v as f64 - m).collect())
        .collect();
    let mut cov = vec![0.0f64; d * d];
    for r in &centred {
        for a in 0..d {
            for b in 0..d {
                cov[a * d + b] += r[a] * r[b];
            }
        }
    }
    let axes = top_eigenvectors(&cov, d, 2.min(d), 200);
    centred
        .iter()
        .map(|r| {
            let mut p = [0.0f32; 2];
            for (k, axis) in axes.iter().enumerate() {
                p[k] = r.iter().zip(axis).map(|(x, y)| x * y).sum::<f64>() as f32;
            }
            p
        })
        .collect()
}

/// The `k` eigenvectors of largest eigenvalue of a symmetric positive semi-definite (d, d)
/// matrix (row-major), unit length, by power iteration from fixed starts, each kept
/// orthogonal to those already found. Where fewer than `k` directions carry any weight, the
/// rest are whatever the start left after the projections.
pub fn top_eigenvectors(a: &[f64], d: usize, k: usize, iters: usize) -> Vec<Vec<f64>> {
    let mut found: Vec<Vec<f64>> = Vec::with_capacity(k);
    for comp in 0..k {
        // a deterministic start that is not orthogonal to any axis in practice
        let mut v: Vec<f64> = (0..d)
            .map(|i| 1.0 + 0.1 * ((i * 7 + comp * 3) % 11) as f64)
            .collect();
        for _ in 0..iters {
            let mut w: Vec<f64> = (0..d)
                .map(|r| (0..d).map(|c| a[r * d + c] * v[c]).sum())
                .collect();
            for axis in &found {
                let dot: f64 = w.iter().zip(axis).map(|(x, y)| x * y).sum();
                w.iter_mut().zip(axis).for_each(|(x, y)| *x -= dot * y);
            }
            let norm = w.iter().map(|x| x * x).sum::<f64>().sqrt();
            if norm < 1e-12 {
                break;
            }
            v = w.iter().map(|x| x / norm).collect();
        }
        found.push(v);
    }
    found
}

/// R^2 of y's least-squares affine fit on the rows of x, scored on the same rows.
pub fn affine_r2(x: &[Vec<f64>], y: &[f64]) -> f64 {
    let (w, b) = affine_fit(x, y);
    let pred: Vec<f64> = x
        .iter()
        .map(|r| b + r.iter().zip(&w).map(|(a, c)| a * c).sum::<f64>())
        .collect();
    r_squared(&pred, y)
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
    fn hungarian_finds_the_best_matching_and_purity_the_majority() {
        // codes 0,1,2 mostly hold labels 2,0,1; code 3 is a second home of label 2
        let table = vec![
            vec![1.0, 0.0, 9.0],
            vec![8.0, 2.0, 0.0],
            vec![0.0, 10.0, 0.0],
            vec![0.0, 0.0, 5.0],
        ];
        let a = hungarian_max(&table);
        assert_eq!(a, vec![Some(2), Some(0), Some(1), None]);
        let acc = one_to_one_accuracy(&table);
        assert!((acc - 27.0 / 35.0).abs() < 1e-12, "{acc}");
        let p = purity(&table);
        assert!((p - (0.9 + 0.8 + 1.0 + 1.0) / 4.0).abs() < 1e-12, "{p}");
        assert_eq!(purity(&[vec![0.0, 0.0]]), 0.0);
    }

    #[test]
    fn knn_auc_is_one_for_separated_labels_and_low_for_unrelated_ones() {
        let mut pts = Vec::new();
        let mut labels = Vec::new();
        let mut other = Vec::new();
        for c in 0..4 {
            for k in 0..6 {
                pts.push(vec![c as f32 * 10.0 + k as f32 * 0.01, 0.0]);
                labels.push(c);
                other.push(k % 3);
            }
        }
        assert!((knn_pr_auc(&pts, &labels) - 1.0).abs() < 1e-9);
        let crossed = knn_pr_auc(&pts, &other);
        assert!(crossed < 0.6, "{crossed}");
    }

    #[test]
    fn pca_recovers_the_direction_of_largest_spread() {
        let rows: Vec<Vec<f32>> = (0..50)
            .map(|i| {
                let t = i as f32 - 25.0;
                vec![t, 0.5 * t, if i % 2 == 0 { 0.1 } else { -0.1 }]
            })
            .collect();
        let p = pca_2d(&rows);
        let spread0 = p.iter().map(|q| q[0].abs()).fold(0.0, f32::max);
        let spread1 = p.iter().map(|q| q[1].abs()).fold(0.0, f32::max);
        assert!(spread0 > 20.0 && spread1 < 0.2, "{spread0} {spread1}");
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

#[cfg(test)]
mod fit_tests {
    use super::*;

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
