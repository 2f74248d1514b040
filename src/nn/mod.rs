//! Layers and helpers shared by the models: PyTorch-named layers, losses, and the checkpoint format.

pub mod checkpoint;
pub mod conv;
pub mod patches;

pub use conv::{Conv2d, ConvTranspose2d, Dense, HeightConv, HeightConvTranspose, StackLayer};

use candle_core::{CpuStorage, CustomOp2, D, DType, Device, Layout, Module, Result, Tensor};
use candle_nn::{Init, Linear, VarBuilder, VarMap};

/// How weights start. PyTorch's default draws from U(+-1/sqrt(fan_in)), which shrinks the
/// signal by about sqrt(6) per layer; through the SPS decoder's nine layers the output then
/// hardly depends on the latent, and training sits on the mean spectrum for thousands of
/// steps. He (Kaiming) initialisation, U(+-sqrt(6/fan_in)), keeps the signal's scale.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum WeightInit {
    #[default]
    #[serde(rename = "pytorch")]
    PyTorch,
    #[serde(rename = "he")]
    He,
}

impl WeightInit {
    /// (weight init, bias init) for a layer of this fan-in; biases always as PyTorch does.
    pub fn hints(self, fan_in: usize) -> (Init, Init) {
        let bound = 1.0 / (fan_in as f64).sqrt();
        let w = match self {
            WeightInit::PyTorch => bound,
            WeightInit::He => 6f64.sqrt() * bound,
        };
        (
            Init::Uniform { lo: -w, up: w },
            Init::Uniform {
                lo: -bound,
                up: bound,
            },
        )
    }
}

/// A layer's `weight` of `shape` and its `bias` of `out` values, started for this fan-in.
pub(super) fn weight_and_bias(
    vb: &VarBuilder,
    shape: impl Into<candle_core::Shape>,
    out: usize,
    init: WeightInit,
    fan_in: usize,
) -> Result<(Tensor, Tensor)> {
    let (w_init, b_init) = init.hints(fan_in);
    let weight = vb.get_with_hints(shape, "weight", w_init)?;
    let bias = vb.get_with_hints(out, "bias", b_init)?;
    Ok((weight, bias))
}

/// A dense layer with PyTorch's default initialisation (uniform in +-1/sqrt(fan_in) for weight and bias).
pub fn linear(in_dim: usize, out_dim: usize, vb: VarBuilder) -> Result<Linear> {
    linear_init(in_dim, out_dim, WeightInit::PyTorch, vb)
}

pub fn linear_init(
    in_dim: usize,
    out_dim: usize,
    init: WeightInit,
    vb: VarBuilder,
) -> Result<Linear> {
    let (weight, bias) = weight_and_bias(&vb, (out_dim, in_dim), out_dim, init, in_dim)?;
    Ok(Linear::new(weight, Some(bias)))
}

/// PyTorch's nn.RNN, one layer, tanh, batch first, stepped one time step at a time.
pub struct Rnn {
    w_ih: Tensor,
    w_hh: Tensor,
    b_ih: Tensor,
    b_hh: Tensor,
    pub hidden: usize,
}

impl Rnn {
    pub fn new(input: usize, hidden: usize, vb: VarBuilder) -> Result<Self> {
        let bound = 1.0 / (hidden as f64).sqrt();
        let init = Init::Uniform {
            lo: -bound,
            up: bound,
        };
        let w_ih = vb.get_with_hints((hidden, input), "weight_ih_l0", init)?;
        let w_hh = vb.get_with_hints((hidden, hidden), "weight_hh_l0", init)?;
        let b_ih = vb.get_with_hints(hidden, "bias_ih_l0", init)?;
        let b_hh = vb.get_with_hints(hidden, "bias_hh_l0", init)?;
        Ok(Self {
            w_ih,
            w_hh,
            b_ih,
            b_hh,
            hidden,
        })
    }

    pub fn zero_state(&self, batch: usize, device: &Device) -> Result<Tensor> {
        Tensor::zeros((batch, self.hidden), DType::F32, device)
    }

    /// x: (B, input), h: (B, hidden) -> new h
    pub fn step(&self, x: &Tensor, h: &Tensor) -> Result<Tensor> {
        let b = (&self.b_ih + &self.b_hh)?;
        (x.matmul(&self.w_ih.t()?)? + h.matmul(&self.w_hh.t()?)?)?
            .broadcast_add(&b)?
            .tanh()
    }

    /// The SPS prior along latents z (B, S, L): this RNN, then `head` on its state, predicts
    /// each next latent. At steps where `own` is true the RNN is fed its own previous
    /// prediction (scheduled sampling), elsewhere `symm(z_t)`. Returns the predictions of
    /// steps 1..S, (B, S-1, L), in the symmetry's frame.
    pub fn predict_with_symmetry(
        &self,
        head: &Linear,
        z: &Tensor,
        own: &[bool],
        symm: &dyn Fn(&Tensor) -> Result<Tensor>,
    ) -> Result<Tensor> {
        let (b, s, _) = z.dims3()?;
        let mut h = self.zero_state(b, z.device())?;
        let mut outs: Vec<Tensor> = Vec::with_capacity(s);
        for t in 0..s - 1 {
            let input = match outs.last() {
                Some(prev) if own.get(t).copied().unwrap_or(false) => prev.clone(),
                _ => symm(&z.narrow(1, t, 1)?.squeeze(1)?)?,
            };
            h = self.step(&input, &h)?;
            outs.push(head.forward(&h)?);
        }
        Tensor::stack(&outs, 1)
    }
}

/// A stack of linear layers with ReLU between them (none after the last), named as the
/// indices of a PyTorch nn.Sequential that interleaves ReLUs: 0, 2, 4, ...
pub struct Mlp {
    layers: Vec<Linear>,
}

impl Mlp {
    pub fn new(sizes: &[usize], init: WeightInit, vb: VarBuilder) -> Result<Self> {
        let layers = sizes
            .windows(2)
            .enumerate()
            .map(|(i, w)| linear_init(w[0], w[1], init, vb.pp(2 * i)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { layers })
    }
}

impl Mlp {
    /// The linear layers, a ReLU between each two.
    pub fn layers(&self) -> &[Linear] {
        &self.layers
    }

    /// The layers for a stack ([`conv::run`]), each but the first reading its input through a
    /// ReLU; the last one's output seen as the channels-last image `image` (its outputs in
    /// PyTorch's (c, h, w) order), if given.
    pub fn stack_layers(&self, image: Option<(usize, usize, usize)>) -> Vec<Dense<'_>> {
        let last = self.layers.len().saturating_sub(1);
        self.layers
            .iter()
            .enumerate()
            .map(|(i, linear)| Dense {
                linear,
                image: if i == last { image } else { None },
            })
            .collect()
    }
}

impl Module for Mlp {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = x.clone();
        for (i, layer) in self.layers.iter().enumerate() {
            h = layer.forward(&h)?;
            if i + 1 < self.layers.len() {
                h = h.relu()?;
            }
        }
        Ok(h)
    }
}

/// Binary cross-entropy summed over all elements, from logits (stable for any logit): one
/// pass forward, one backward ([`BceSum`]).
pub fn bce_with_logits_sum(logits: &Tensor, target: &Tensor) -> Result<Tensor> {
    if logits.dims() != target.dims() {
        candle_core::bail!(
            "bce: logits {:?} and target {:?} differ in shape",
            logits.dims(),
            target.dims()
        );
    }
    logits
        .contiguous()?
        .apply_op2(&target.contiguous()?, BceSum)
}

/// sum(max(l, 0) - l t + log(1 + exp(-|l|))) over contiguous logits l and targets t; its
/// gradient is sigmoid(l) - t for l and -l for t.
struct BceSum;

/// A contiguous f32 tensor's data.
fn contiguous_f32<'a>(storage: &'a CpuStorage, layout: &Layout) -> Result<&'a [f32]> {
    match (storage, layout.contiguous_offsets()) {
        (CpuStorage::F32(v), Some((a, b))) => Ok(&v[a..b]),
        _ => candle_core::bail!("expected contiguous f32 data"),
    }
}

const BCE_CHUNK: usize = 1 << 14;

impl CustomOp2 for BceSum {
    fn name(&self) -> &'static str {
        "bce-with-logits-sum"
    }

    fn cpu_fwd(
        &self,
        l: &CpuStorage,
        l_l: &Layout,
        t: &CpuStorage,
        t_l: &Layout,
    ) -> Result<(CpuStorage, candle_core::Shape)> {
        use rayon::prelude::*;
        let (l, t) = (contiguous_f32(l, l_l)?, contiguous_f32(t, t_l)?);
        let sum: f64 = l
            .par_chunks(BCE_CHUNK)
            .zip(t.par_chunks(BCE_CHUNK))
            .map(|(l, t)| {
                l.iter()
                    .zip(t)
                    .map(|(&l, &t)| l.max(0.0) - l * t + (-l.abs()).exp().ln_1p())
                    .sum::<f32>() as f64
            })
            .sum();
        Ok((
            CpuStorage::F32(vec![sum as f32]),
            candle_core::Shape::from(()),
        ))
    }

    fn bwd(
        &self,
        l: &Tensor,
        t: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        use rayon::prelude::*;
        let g = grad.to_scalar::<f32>()?;
        let dl = {
            let (ls, ll) = l.storage_and_layout();
            let (ts, tl) = t.storage_and_layout();
            let (candle_core::Storage::Cpu(ls), candle_core::Storage::Cpu(ts)) = (&*ls, &*ts)
            else {
                candle_core::bail!("bce: only the CPU is supported")
            };
            let (lv, tv) = (contiguous_f32(ls, ll)?, contiguous_f32(ts, tl)?);
            let mut dl = vec![0f32; lv.len()];
            dl.par_chunks_mut(BCE_CHUNK)
                .zip(lv.par_chunks(BCE_CHUNK).zip(tv.par_chunks(BCE_CHUNK)))
                .for_each(|(d, (l, t))| {
                    for ((d, &l), &t) in d.iter_mut().zip(l).zip(t) {
                        *d = g * (1.0 / (1.0 + (-l).exp()) - t);
                    }
                });
            dl
        };
        let dt = if t.track_op() {
            Some((l * f64::from(-g))?)
        } else {
            None
        };
        Ok((Some(Tensor::from_vec(dl, l.dims(), l.device())?), dt))
    }
}

/// Binary cross-entropy with logits, element by element.
fn bce_with_logits(logits: &Tensor, target: &Tensor) -> Result<Tensor> {
    let softplus = (logits.relu()? + (logits.abs()?.neg()?.exp()? + 1.0)?.log()?)?;
    softplus - (target * logits)?
}

/// Binary cross-entropy with logits summed over everything but the first dimension: (N, ...) -> (N).
pub fn bce_with_logits_rows(logits: &Tensor, target: &Tensor) -> Result<Tensor> {
    let n = logits.dim(0)?;
    bce_with_logits(logits, target)?.reshape((n, ()))?.sum(1)
}

/// Squared error summed over all elements.
pub fn mse_sum(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    (a - b)?.sqr()?.sum_all()
}

/// KL divergence of N(mu, exp(logvar)) from N(0, 1), summed.
pub fn kl_sum(mu: &Tensor, logvar: &Tensor) -> Result<Tensor> {
    ((logvar.exp()? + mu.sqr()? - logvar)? - 1.0)?.sum_all()? * 0.5
}

/// Per-dimension KL, averaged over the batch: (N, D) -> (D)
pub fn kl_per_dim(mu: &Tensor, logvar: &Tensor) -> Result<Tensor> {
    (((logvar.exp()? + mu.sqr()? - logvar)? - 1.0)? * 0.5)?.mean(0)
}

/// Softmax over the last dimension.
pub fn softmax_last(x: &Tensor) -> Result<Tensor> {
    candle_nn::ops::softmax(x, D::Minus1)
}

/// A fresh variable map on the CPU, with its builder.
/// A learning rate held at `start` for the first `hold` share of `steps`, then falling along a
/// half cosine to `end` at the last step (and staying there).
pub fn cosine_schedule(start: f64, end: f64, step: u64, steps: u64, hold: f64) -> f64 {
    let held = (steps as f64 * hold).round() as u64;
    if step < held || steps <= held {
        return start;
    }
    let t = ((step - held) as f64 / (steps - held) as f64).min(1.0);
    end + 0.5 * (start - end) * (1.0 + (std::f64::consts::PI * t).cos())
}

pub fn new_varmap() -> (VarMap, VarBuilder<'static>) {
    let varmap = VarMap::new();
    let vb = var_builder(&varmap);
    (varmap, vb)
}

/// A variable store whose random starts come from a seeded generator: each variable is drawn,
/// when a layer first asks for it, from the distribution of its hint (as `VarMap` draws
/// it), but with `StdRng::seed_from_u64(seed)`. The variables land in the returned map.
/// Unlike [`seeded_init`], which redraws afterwards by fan-in rules, this keeps each layer's
/// own hint (transposed convolutions included).
pub fn new_seeded_varmap(seed: u64) -> (VarMap, VarBuilder<'static>) {
    use rand::SeedableRng;
    let map = VarMap::new();
    let backend = SeededVarMap {
        map: map.clone(),
        rng: std::sync::Mutex::new(rand::rngs::StdRng::seed_from_u64(seed)),
    };
    let vb = VarBuilder::from_backend(Box::new(backend), DType::F32, Device::Cpu);
    (map, vb)
}

struct SeededVarMap {
    map: VarMap,
    rng: std::sync::Mutex<rand::rngs::StdRng>,
}

impl candle_nn::var_builder::SimpleBackend for SeededVarMap {
    fn get(
        &self,
        shape: candle_core::Shape,
        name: &str,
        hint: Init,
        dtype: DType,
        dev: &Device,
    ) -> Result<Tensor> {
        use rand::Rng;
        use rand_distr::Distribution;
        let poisoned = || candle_core::Error::Msg("variable store poisoned".into());
        let mut data = self.map.data().lock().map_err(|_| poisoned())?;
        if let Some(var) = data.get(name) {
            if var.shape() != &shape {
                candle_core::bail!("{name}: asked for {shape:?}, stored {:?}", var.shape());
            }
            return Ok(var.as_tensor().clone());
        }
        let n = shape.elem_count();
        let mut rng = self.rng.lock().map_err(|_| poisoned())?;
        let values: Vec<f32> = match hint {
            Init::Const(c) => vec![c as f32; n],
            Init::Uniform { lo, up } => (0..n).map(|_| rng.random_range(lo..up) as f32).collect(),
            Init::Randn { mean, stdev } => {
                let normal = rand_distr::Normal::new(mean, stdev)
                    .map_err(|e| candle_core::Error::Msg(format!("{name}: {e}")))?;
                (0..n).map(|_| normal.sample(&mut *rng) as f32).collect()
            }
            Init::Kaiming { .. } => candle_core::bail!("{name}: Kaiming hints are not seeded"),
        };
        let var =
            candle_core::Var::from_tensor(&Tensor::from_vec(values, shape, dev)?.to_dtype(dtype)?)?;
        let tensor = var.as_tensor().clone();
        data.insert(name.to_string(), var);
        Ok(tensor)
    }

    fn get_unchecked(&self, name: &str, _dtype: DType, _dev: &Device) -> Result<Tensor> {
        candle_core::bail!("{name}: a seeded variable store needs a shape and a hint")
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.map.data().lock().is_ok_and(|d| d.contains_key(name))
    }
}

/// A builder of f32 CPU variables that land in `varmap`.
pub fn var_builder(varmap: &VarMap) -> VarBuilder<'static> {
    VarBuilder::from_varmap(varmap, DType::F32, &Device::Cpu)
}

/// Draw the weights and biases of linear, convolutional and RNN layers again from U(+-bound) with our own seeded
/// generator (candle's CPU generator cannot be seeded), so that a seed fixes a training run
/// completely. `init_of(name)` gives each variable's scheme; `None` leaves it as built
/// (buffers, codebooks).
pub fn seeded_init(
    varmap: &VarMap,
    init_of: impl Fn(&str) -> Option<WeightInit>,
    rng: &mut rand::rngs::StdRng,
) -> anyhow::Result<()> {
    use rand::Rng;
    let data = varmap
        .data()
        .lock()
        .map_err(|_| anyhow::anyhow!("variable map poisoned"))?;
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    for name in names {
        let Some(init) = init_of(name) else { continue };
        let var = &data[name];
        let fan_in = match name.strip_suffix(".bias") {
            Some(layer) => data
                .get(&format!("{layer}.weight"))
                .map(|w| w.dims().iter().skip(1).product::<usize>().max(1))
                .unwrap_or(1),
            // (out, in, kh, kw) for convolutions: every input tap counts
            None => var.dims().iter().skip(1).product::<usize>().max(1),
        };
        let (w, b) = init.hints(fan_in);
        let bound = match (name.ends_with(".bias"), w, b) {
            // PyTorch's RNNs (weight_ih_l0, bias_hh_l0, ...) draw every parameter from
            // U(+-1/sqrt(hidden)), hidden being the first dimension of each
            _ if name.contains("_ih_l") || name.contains("_hh_l") => {
                1.0 / (var.dims().first().copied().unwrap_or(1).max(1) as f64).sqrt()
            }
            (false, candle_nn::Init::Uniform { up, .. }, _) => up,
            (true, _, candle_nn::Init::Uniform { up, .. }) => up,
            _ => 1.0 / (fan_in as f64).sqrt(),
        };
        let values: Vec<f32> = (0..var.elem_count())
            .map(|_| rng.random_range(-bound..=bound) as f32)
            .collect();
        var.set(&Tensor::from_vec(values, var.dims(), &Device::Cpu)?)?;
    }
    Ok(())
}

/// Copies of every variable, detached from the autograd graph, sorted by name.
pub fn varmap_tensors(varmap: &VarMap) -> Result<Vec<(String, Tensor)>> {
    let data = varmap
        .data()
        .lock()
        .map_err(|_| candle_core::Error::Msg("variable map poisoned".into()))?;
    let mut out = data
        .iter()
        .map(|(name, var)| Ok((name.clone(), var.as_tensor().copy()?)))
        .collect::<Result<Vec<_>>>()?;
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A seed fixes every variable of the seeded store; the hint's distribution is kept.
    #[test]
    fn a_seeded_store_draws_the_same_weights_for_the_same_seed() -> Result<()> {
        let draw = |seed| -> Result<(Vec<f32>, Vec<f32>, Vec<f32>)> {
            let (varmap, vb) = new_seeded_varmap(seed);
            ConvTranspose2d::new(3, 2, 4, 2, 1, WeightInit::He, vb.pp("t"))?;
            let lin = linear(5, 7, vb.pp("l"))?;
            let zero = vb.get_with_hints(4, "z", Init::Const(0.0))?;
            // asking again returns the stored variable, not a new draw
            let again = vb.get_with_hints((7, 5), "l.weight", Init::Const(9.0))?;
            assert_eq!(
                again.flatten_all()?.to_vec1::<f32>()?,
                lin.weight().flatten_all()?.to_vec1::<f32>()?
            );
            assert_eq!(varmap.all_vars().len(), 5);
            let t = varmap
                .data()
                .lock()
                .map_err(|_| candle_core::Error::Msg("lock".into()))?["t.weight"]
                .flatten_all()?
                .to_vec1::<f32>()?;
            Ok((t, lin.weight().flatten_all()?.to_vec1()?, zero.to_vec1()?))
        };
        let (a, b) = (draw(7)?, draw(7)?);
        assert_eq!(a, b);
        assert_ne!(a.0, draw(8)?.0);
        // He bound for the transposed conv: sqrt(6 / (c_in * (k / stride)^2)) = sqrt(6 / 12)
        let bound = (6f32 / 12.0).sqrt();
        assert!(a.0.iter().all(|v| v.abs() <= bound));
        assert!(a.0.iter().any(|v| v.abs() > 0.5 * bound));
        assert!(a.1.iter().all(|v| v.abs() <= 1.0 / 5f32.sqrt()));
        assert_eq!(a.2, vec![0.0; 4]);
        Ok(())
    }

    /// The fused BCE against the same formula from candle's ops: the sum, and the gradients
    /// for logits and targets, on a view that is not contiguous and on a narrowed one.
    #[test]
    fn the_fused_bce_matches_candle_ops_forward_and_backward() -> Result<()> {
        let l = candle_core::Var::randn(0f32, 3.0, (6, 5, 7), &Device::Cpu)?;
        let t = candle_core::Var::rand(0f32, 1.0, (6, 7, 5), &Device::Cpu)?;
        let (lt, tt) = (l.as_tensor(), t.as_tensor().transpose(1, 2)?);
        for (a, b) in [
            (lt.clone(), tt.clone()),
            (lt.narrow(0, 2, 3)?, tt.narrow(0, 1, 3)?),
        ] {
            let ours = bce_with_logits_sum(&a, &b)?;
            let theirs = bce_with_logits(&a, &b)?.sum_all()?;
            let (x, y) = (ours.to_scalar::<f32>()?, theirs.to_scalar::<f32>()?);
            assert!((x - y).abs() < 1e-4 * y.abs(), "{x} vs {y}");
            let g1 = (ours * 1.7)?.backward()?;
            let g2 = (theirs * 1.7)?.backward()?;
            for v in [lt, t.as_tensor()] {
                let no = || candle_core::Error::Msg("no gradient".into());
                let d = (g1.get(v).ok_or_else(no)? - g2.get(v).ok_or_else(no)?)?
                    .abs()?
                    .max_all()?
                    .to_scalar::<f32>()?;
                assert!(d < 1e-5, "gradient differs by {d}");
            }
        }
        Ok(())
    }
}
