//! The VQ codebook: EMA updates, k-means initialisation and restarts of dead codes.

use candle_core::{D, DType, Device, Result, Tensor, Var};
use candle_nn::VarBuilder;
use rand::Rng;
use rand::rngs::StdRng;

/// The codebook and its EMA statistics. They are variables (so they are saved with the model)
/// but no optimiser ever sees them: they change only through [`Codebook::update`].
pub struct Codebook {
    pub atoms: Var,
    cluster_size: Var,
    embed_sum: Var,
    initialised: Var,
    decay: f64,
    threshold: f64,
}

/// Names of the codebook's variables, kept out of the optimiser.
pub const CODEBOOK_PREFIX: &str = "vq.";
/// Names of running statistics (no gradient, kept out of the optimiser).
pub const STATS_PREFIX: &str = "stats.";

/// The variable `name` of the store behind `vb`, created with `init` if it is not there yet.
/// Over a VarMap the `Var` shares its storage with the map's, so what [`Var::set`] writes is
/// what a snapshot saves; over a checkpoint's own tensors it is a copy, read only to check.
pub(crate) fn stored_var(
    vb: &VarBuilder,
    shape: &[usize],
    name: &str,
    init: candle_nn::Init,
) -> Result<Var> {
    Var::from_tensor(&vb.get_with_hints(shape, name, init)?)
}

impl Codebook {
    pub(super) fn new(
        k: usize,
        dim: usize,
        decay: f64,
        threshold: f64,
        vb: &VarBuilder,
    ) -> Result<Self> {
        let get = |shape: &[usize], name: &str, init| -> Result<Var> {
            stored_var(vb, shape, &format!("{CODEBOOK_PREFIX}{name}"), init)
        };
        let normal = candle_nn::Init::Randn {
            mean: 0.0,
            stdev: 1.0,
        };
        Ok(Self {
            atoms: get(&[k, dim], "codebook", normal)?,
            cluster_size: get(&[k], "cluster_size", candle_nn::Init::Const(0.0))?,
            embed_sum: get(&[k, dim], "embed_sum", candle_nn::Init::Const(0.0))?,
            initialised: get(&[1], "initialised", candle_nn::Init::Const(0.0))?,
            decay,
            threshold,
        })
    }

    pub fn is_initialised(&self) -> Result<bool> {
        Ok(self.initialised.as_tensor().to_vec1::<f32>()?[0] > 0.5)
    }

    pub fn size(&self) -> usize {
        self.atoms.dims()[0]
    }

    /// The nearest atom of each row of z (N, dim), and those atoms (N, dim), without gradient.
    pub fn quantize(&self, z: &Tensor) -> Result<(Vec<u32>, Tensor)> {
        let atoms = self.atoms.as_tensor().detach();
        let z = z.detach();
        let d = z
            .sqr()?
            .sum_keepdim(1)?
            .broadcast_add(&atoms.sqr()?.sum(1)?.unsqueeze(0)?)?
            .sub(&(z.matmul(&atoms.t()?)? * 2.0)?)?;
        let idx = d.argmin(D::Minus1)?;
        let q = atoms.index_select(&idx, 0)?;
        Ok((idx.to_vec1::<u32>()?, q))
    }

    /// Quantise samples of `n` fragments each (z is (B * n, dim)) giving every fragment of a
    /// sample a different atom: the assignment of least total squared distance (Hungarian),
    /// for samples whose contents all differ (`n` at most the codebook's size). Returns the
    /// atoms' indices and the atoms, without gradient.
    pub fn quantize_samples(&self, z: &Tensor, n: usize) -> Result<(Vec<u32>, Tensor)> {
        let k = self.size();
        let atoms = self.atoms.as_tensor().detach();
        let z = z.detach();
        if n == 0 || n > k || z.dim(0)? % n != 0 {
            return self.quantize(&z);
        }
        let d = z
            .sqr()?
            .sum_keepdim(1)?
            .broadcast_add(&atoms.sqr()?.sum(1)?.unsqueeze(0)?)?
            .sub(&(z.matmul(&atoms.t()?)? * 2.0)?)?
            .to_vec2::<f32>()?;
        let mut idx = Vec::with_capacity(d.len());
        for sample in d.chunks(n) {
            let weights: Vec<Vec<f64>> = sample
                .iter()
                .map(|row| row.iter().map(|&v| -(v as f64)).collect())
                .collect();
            let assignment = crate::metrics::hungarian_max(&weights);
            for (row, a) in sample.iter().zip(assignment) {
                let nearest = row
                    .iter()
                    .enumerate()
                    .min_by(|a, b| a.1.total_cmp(b.1))
                    .map_or(0, |(i, _)| i);
                idx.push(a.unwrap_or(nearest) as u32);
            }
        }
        let t = Tensor::from_slice(&idx, idx.len(), &Device::Cpu)?;
        let q = atoms.index_select(&t, 0)?;
        Ok((idx, q))
    }

    /// Start the atoms at k-means centres of `z` (N, dim) with k-means++ seeding; the EMA
    /// statistics start as if each atom had been used `per_batch / K` times.
    /// With `sample` > 0, `z` holds whole samples of that many fragments and the Lloyd
    /// iterations are continued with the fragments of each sample taking different centres.
    pub fn init_kmeans(
        &self,
        z: &[Vec<f32>],
        sample: usize,
        per_batch: f64,
        rng: &mut StdRng,
    ) -> Result<()> {
        let k = self.size();
        let mut centres = kmeans(z, k, 25, rng);
        if sample > 0 {
            centres = kmeans_distinct(z, centres, sample, 15);
        }
        let dim = self.atoms.dims()[1];
        let flat: Vec<f32> = centres.iter().flatten().copied().collect();
        let atoms = Tensor::from_vec(flat, (k, dim), &Device::Cpu)?;
        let size = (per_batch / k as f64) as f32;
        self.atoms.set(&atoms)?;
        self.cluster_size
            .set(&Tensor::full(size, k, &Device::Cpu)?)?;
        self.embed_sum.set(&(atoms * size as f64)?)?;
        self.initialised
            .set(&Tensor::ones(1, DType::F32, &Device::Cpu)?)?;
        Ok(())
    }

    /// EMA update from one batch's content latents `z` (N, dim) and their atoms, then restart
    /// every atom whose usage fell below the threshold at a random latent of the batch.
    /// Returns how many atoms were restarted.
    pub fn update(&self, z: &Tensor, idx: &[u32], rng: &mut StdRng) -> Result<usize> {
        let k = self.size();
        let z = z.detach();
        let n = idx.len();
        let idx_t = Tensor::from_slice(idx, n, &Device::Cpu)?;
        let onehot = candle_nn::encoding::one_hot(idx_t, k, 1f32, 0f32)?;
        let counts = onehot.sum(0)?;
        let sums = onehot.t()?.matmul(&z)?;
        let decay = self.decay;
        let cluster = ((self.cluster_size.as_tensor() * decay)? + (counts * (1.0 - decay))?)?;
        let embed = ((self.embed_sum.as_tensor() * decay)? + (sums * (1.0 - decay))?)?;
        // Laplace smoothing keeps unused atoms finite
        let total = cluster.sum_all()?.to_scalar::<f32>()? as f64;
        let eps = 1e-5;
        let smoothed = ((&cluster + eps)? * (total / (total + k as f64 * eps)))?;
        let atoms = embed.broadcast_div(&smoothed.unsqueeze(1)?)?;
        let mut cluster_v = cluster.to_vec1::<f32>()?;
        let mut atoms_v = atoms.to_vec2::<f32>()?;
        let mut embed_v = embed.to_vec2::<f32>()?;
        let mut restarted = 0;
        if self.threshold > 0.0 && n > 0 {
            let rows = z.to_vec2::<f32>()?;
            for a in 0..k {
                if (cluster_v[a] as f64) < self.threshold {
                    let pick = &rows[rng.random_range(0..n)];
                    atoms_v[a] = pick.clone();
                    cluster_v[a] = self.threshold as f32;
                    embed_v[a] = pick.iter().map(|v| v * self.threshold as f32).collect();
                    restarted += 1;
                }
            }
        }
        let dim = self.atoms.dims()[1];
        let flat = |v: Vec<Vec<f32>>| Tensor::from_vec(v.concat(), (k, dim), &Device::Cpu);
        self.atoms.set(&flat(atoms_v)?)?;
        self.embed_sum.set(&flat(embed_v)?)?;
        self.cluster_size
            .set(&Tensor::from_vec(cluster_v, k, &Device::Cpu)?)?;
        Ok(restarted)
    }

    pub fn atoms_vec(&self) -> Result<Vec<Vec<f32>>> {
        self.atoms.as_tensor().to_vec2::<f32>()
    }
}

/// The points each centre was assigned in one Lloyd iteration, summed.
struct Assignments {
    sums: Vec<Vec<f32>>,
    counts: Vec<usize>,
}

impl Assignments {
    fn new(k: usize, dim: usize) -> Self {
        Self {
            sums: vec![vec![0f32; dim]; k],
            counts: vec![0usize; k],
        }
    }

    fn add(&mut self, centre: usize, point: &[f32]) {
        self.counts[centre] += 1;
        self.sums[centre]
            .iter_mut()
            .zip(point)
            .for_each(|(s, v)| *s += v);
    }

    /// Moves each centre to the mean of its points; a centre no point chose stays put.
    fn recentre(&self, centres: &mut [Vec<f32>]) {
        for ((centre, sum), &count) in centres.iter_mut().zip(&self.sums).zip(&self.counts) {
            if count > 0 {
                *centre = sum.iter().map(|s| s / count as f32).collect();
            }
        }
    }
}

/// Lloyd iterations from `centres` in which the points of each group of `group` consecutive
/// points take different centres (the Hungarian assignment of least total squared distance).
pub fn kmeans_distinct(
    points: &[Vec<f32>],
    mut centres: Vec<Vec<f32>>,
    group: usize,
    iters: usize,
) -> Vec<Vec<f32>> {
    let k = centres.len();
    let dim = centres.first().map_or(0, |c| c.len());
    if group == 0 || group > k || points.len() < group {
        return centres;
    }
    let d2 = |a: &[f32], b: &[f32]| -> f64 {
        a.iter()
            .zip(b)
            .map(|(x, y)| ((x - y) * (x - y)) as f64)
            .sum()
    };
    for _ in 0..iters {
        let mut assigned = Assignments::new(k, dim);
        for g in points.chunks_exact(group) {
            let weights: Vec<Vec<f64>> = g
                .iter()
                .map(|p| centres.iter().map(|c| -d2(p, c)).collect())
                .collect();
            for (p, a) in g.iter().zip(crate::metrics::hungarian_max(&weights)) {
                if let Some(a) = a {
                    assigned.add(a, p);
                }
            }
        }
        assigned.recentre(&mut centres);
    }
    centres
}

/// Lloyd's k-means with k-means++ seeding; fewer points than centres repeat points.
pub fn kmeans(points: &[Vec<f32>], k: usize, iters: usize, rng: &mut StdRng) -> Vec<Vec<f32>> {
    let dim = points.first().map_or(0, |p| p.len());
    if points.is_empty() {
        return vec![vec![0.0; dim]; k];
    }
    let d2 =
        |a: &[f32], b: &[f32]| -> f32 { a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum() };
    let mut centres: Vec<Vec<f32>> = vec![points[rng.random_range(0..points.len())].clone()];
    while centres.len() < k {
        let weights: Vec<f32> = points
            .iter()
            .map(|p| {
                centres
                    .iter()
                    .map(|c| d2(p, c))
                    .fold(f32::INFINITY, f32::min)
            })
            .collect();
        let total: f32 = weights.iter().sum();
        let pick = if total > 0.0 {
            let mut r = rng.random::<f32>() * total;
            weights
                .iter()
                .position(|w| {
                    r -= w;
                    r <= 0.0
                })
                .unwrap_or(points.len() - 1)
        } else {
            rng.random_range(0..points.len())
        };
        centres.push(points[pick].clone());
    }
    for _ in 0..iters {
        let mut assigned = Assignments::new(k, dim);
        for p in points {
            let (best, _) = centres
                .iter()
                .enumerate()
                .map(|(i, c)| (i, d2(p, c)))
                .fold((0, f32::INFINITY), |a, b| if b.1 < a.1 { b } else { a });
            assigned.add(best, p);
        }
        assigned.recentre(&mut centres);
    }
    centres
}
