//! What the explorer computes off the UI thread: strips along paths, interpolations, local
//! directions.

#[allow(unused_imports)]
use super::*;

// ------------------------------------------------------------------ what the explorer computes

/// Decoded latents in a row.
#[derive(Clone, Debug, PartialEq)]
pub struct Strip {
    pub latents: Vec<Vec<f32>>,
    pub decoded: Vec<Decoded>,
}

impl Strip {
    /// Decode `latents` one by one, each as [`Explore::decode`] does it alone.
    pub fn decode(source: &dyn Explore, latents: Vec<Vec<f32>>) -> anyhow::Result<Self> {
        let decoded = latents
            .iter()
            .map(|z| source.decode(z))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Self { latents, decoded })
    }

    /// The strip as one picture: a column per step (an output of several images stacked).
    pub(super) fn rgb(&self) -> Option<(usize, usize, Vec<u8>)> {
        let columns: Option<Vec<_>> = self.decoded.iter().map(Decoded::pictures).collect();
        let mut columns = columns?;
        // pictures far taller than wide (a note's five frames) are widened here, column by
        // column, so that the grey gaps between them stay thin when the strip is drawn
        for t in columns.iter_mut().flatten() {
            let (w, h) = (t.0, t.1);
            if w > 0 && 3 * w < h {
                let f = h.div_ceil(3 * w);
                let mut wide = Vec::with_capacity(w * f * h * 3);
                for px in t.2.chunks_exact(3) {
                    for _ in 0..f {
                        wide.extend_from_slice(px);
                    }
                }
                *t = (w * f, h, wide);
            }
        }
        picture_grid(&columns, 1)
    }
}

/// Points of an interpolation strip.
pub const INTERPOLATION_LEN: usize = 9;

/// The decoded strips between two samples.
#[derive(Clone, Debug, PartialEq)]
pub struct Interpolation {
    pub a: usize,
    pub b: usize,
    pub linear: Strip,
    /// the prior's path, with its name, where the lab has one
    pub prior: Option<(String, Strip)>,
}

impl Interpolation {
    pub fn compute(
        source: &dyn Explore,
        samples: &MapSamples,
        a: usize,
        b: usize,
    ) -> anyhow::Result<Self> {
        let za = samples.latents.get(a).context("sample A is not there")?;
        let zb = samples.latents.get(b).context("sample B is not there")?;
        let linear = Strip::decode(source, latent_map::interpolate(za, zb, INTERPOLATION_LEN))?;
        let prior = match source.prior_path(za, zb, INTERPOLATION_LEN) {
            Some(path) => Some((source.prior_name(), Strip::decode(source, path)?)),
            None => None,
        };
        Ok(Self {
            a,
            b,
            linear,
            prior,
        })
    }

    pub(super) fn rows(&self) -> Vec<(String, &Strip)> {
        let mut rows = vec![("linear".to_string(), &self.linear)];
        if let Some((name, s)) = &self.prior {
            rows.push((name.clone(), s));
        }
        rows
    }
}

/// Steps of a traversal along a local direction, in units of the samples' spread along it.
pub const TRAVERSAL: [f32; 5] = [-2.0, -1.0, 0.0, 1.0, 2.0];
/// Directions the panel and the figures show.
pub const SHOWN_DIRECTIONS: usize = 3;

/// The local directions of the decoder at a latent, each with a traversal along it.
#[derive(Clone, Debug, PartialEq)]
pub struct Directions {
    pub at: Vec<f32>,
    /// every direction, orthonormal, largest singular value first
    pub list: Vec<Direction>,
    /// for the first [`SHOWN_DIRECTIONS`]: the samples' spread along it (one step of
    /// [`TRAVERSAL`]) and the decoded latents `at + t * spread * direction`
    pub traversals: Vec<(f32, Strip)>,
}

impl Directions {
    pub fn compute(source: &dyn Explore, samples: &MapSamples, z: &[f32]) -> anyhow::Result<Self> {
        let spread = Spread::of(&samples.latents);
        // central differences a hundredth of the samples' typical spread apart: small enough
        // to be local, large enough that f32 rounding in the decoder stays negligible
        let eps = (0.01 * spread.typical).max(1e-4);
        let mut decode = |z: &[f32]| source.decode(z).map(|d| d.values);
        let list = latent_map::local_directions(&mut decode, z, eps)?;
        let mut traversals = Vec::new();
        for d in list.iter().take(SHOWN_DIRECTIONS) {
            let s = spread.along(&d.direction);
            let latents = TRAVERSAL
                .iter()
                .map(|t| {
                    z.iter()
                        .zip(&d.direction)
                        .map(|(x, v)| x + t * s * v)
                        .collect()
                })
                .collect();
            traversals.push((s, Strip::decode(source, latents)?));
        }
        Ok(Self {
            at: z.to_vec(),
            list,
            traversals,
        })
    }

    pub(super) fn caption(&self, k: usize) -> String {
        match self.list.get(k) {
            Some(d) => format!(
                "d{} {:.0}% (σ {})",
                k + 1,
                100.0 * d.share,
                num(d.singular_value as f32)
            ),
            None => String::new(),
        }
    }

    /// Each traversal's strip under its caption, as the panel and the figure lay them out.
    pub(super) fn captioned_strips(&self) -> Vec<(String, &Strip)> {
        self.traversals
            .iter()
            .enumerate()
            .map(|(k, (_, s))| (self.caption(k), s))
            .collect()
    }
}

/// The samples' covariance, for how far a traversal goes.
pub(super) struct Spread {
    pub(super) mean: Vec<f64>,
    cov: Vec<f64>,
    d: usize,
    /// root of the mean variance per dimension
    typical: f32,
}

impl Spread {
    pub(super) fn of(latents: &[Vec<f32>]) -> Self {
        let d = latents.first().map_or(0, |z| z.len());
        let n = latents.len().max(1) as f64;
        let mut mean = vec![0f64; d];
        for z in latents {
            for (m, x) in mean.iter_mut().zip(z) {
                *m += *x as f64 / n;
            }
        }
        let mut cov = vec![0f64; d * d];
        for z in latents {
            for a in 0..d {
                for b in 0..d {
                    cov[a * d + b] += (z[a] as f64 - mean[a]) * (z[b] as f64 - mean[b]) / n;
                }
            }
        }
        let trace: f64 = (0..d).map(|a| cov[a * d + a]).sum();
        let typical = (trace / d.max(1) as f64).sqrt() as f32;
        Self {
            mean,
            cov,
            d,
            typical: if typical.is_finite() && typical > 0.0 {
                typical
            } else {
                1.0
            },
        }
    }

    /// Standard deviation of the samples along unit vector `v` (the typical spread when they
    /// do not vary along it).
    pub(super) fn along(&self, v: &[f32]) -> f32 {
        let d = self.d;
        let mut q = 0f64;
        for a in 0..d.min(v.len()) {
            for b in 0..d.min(v.len()) {
                q += v[a] as f64 * self.cov[a * d + b] * v[b] as f64;
            }
        }
        let s = q.max(0.0).sqrt() as f32;
        if s > 1e-3 * self.typical {
            s
        } else {
            self.typical
        }
    }
}

/// The sample farthest from sample `a`: the other end of the default interpolation.
pub fn farthest_from(samples: &MapSamples, a: usize) -> Option<usize> {
    let za = samples.latents.get(a)?;
    samples
        .latents
        .iter()
        .enumerate()
        .map(|(i, z)| {
            let d: f32 = z.iter().zip(za).map(|(x, y)| (x - y) * (x - y)).sum();
            (i, d)
        })
        .max_by(|x, y| x.1.total_cmp(&y.1))
        .map(|(i, _)| i)
}
