//! Layers and helpers shared by the models: PyTorch-named layers, losses, and the checkpoint format.

pub mod checkpoint;
pub mod patches;

use candle_core::{D, DType, Device, Module, Result, Tensor};
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
fn weight_and_bias(
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

/// A 2-D convolution stored as PyTorch stores it (out, in, kh, kw), applied to inputs whose
/// width equals the kernel width, so it is a 1-D convolution along the height with the
/// width folded into the channels. This is how the SPS music encoder sees a 513x5 note.
pub struct HeightConv {
    pub(crate) weight: Tensor,
    pub(crate) bias: Tensor,
    stride: usize,
    pad: usize,
}

impl HeightConv {
    pub fn new(
        c_in: usize,
        c_out: usize,
        (kh, kw): (usize, usize),
        stride: usize,
        pad: usize,
        init: WeightInit,
        vb: VarBuilder,
    ) -> Result<Self> {
        let (weight, bias) =
            weight_and_bias(&vb, (c_out, c_in, kh, kw), c_out, init, c_in * kh * kw)?;
        Ok(Self {
            weight,
            bias,
            stride,
            pad,
        })
    }

    /// x: (N, C_in*W, H) -> (N, C_out, H_out)
    pub fn forward_1d(&self, x: &Tensor) -> Result<Tensor> {
        // Derived from the variable on every call so that training updates are seen.
        // (out, in, kh, kw) -> (out, in*kw, kh): channel index = in*kw + w, matching the input fold.
        let (c_out, c_in, kh, kw) = self.weight.dims4()?;
        let weight_1d = self
            .weight
            .permute((0, 1, 3, 2))?
            .reshape((c_out, c_in * kw, kh))?;
        let y = x.conv1d(&weight_1d, self.pad, self.stride, 1, 1)?;
        y.broadcast_add(&self.bias.reshape((1, (), 1))?)
    }
}

/// A transposed 2-D convolution stored as PyTorch stores it (in, out, kh, kw), applied to
/// inputs of width 1 along the height: the width of the kernel becomes the output width.
/// Implemented as one matrix product and an overlap-add so it is differentiable and fast
/// on the CPU (candle has no backward pass for its 1-D transposed convolution).
pub struct HeightConvTranspose {
    /// (in, out, kh, kw), as PyTorch stores it
    weight: Tensor,
    bias: Tensor,
    c_out: usize,
    kw: usize,
    kh: usize,
    stride: usize,
    pad: usize,
}

impl HeightConvTranspose {
    pub fn new(
        c_in: usize,
        c_out: usize,
        (kh, kw): (usize, usize),
        stride: usize,
        pad: usize,
        init: WeightInit,
        vb: VarBuilder,
    ) -> Result<Self> {
        // PyTorch computes fan_in from weight.size(1) * kh * kw for transposed convs; the
        // signal's true fan-in per output is c_in * kh / stride, which He init uses.
        let fan_in = match init {
            WeightInit::PyTorch => c_out * kh * kw,
            WeightInit::He => (c_in * kh / stride).max(1),
        };
        let (weight, bias) = weight_and_bias(&vb, (c_in, c_out, kh, kw), c_out, init, fan_in)?;
        Ok(Self {
            weight,
            bias,
            c_out,
            kw,
            kh,
            stride,
            pad,
        })
    }

    /// x: (N, C_in, L) -> (N, C_out*kw, L_out) with L_out = (L-1)*stride - 2*pad + kh; the
    /// channel index is out*kw + w.
    pub fn forward_1d(&self, x: &Tensor) -> Result<Tensor> {
        let (n, c_in, l) = x.dims3()?;
        let s = self.stride;
        let kh_padded = self.kh.div_ceil(s) * s;
        let m = kh_padded / s;
        let cw = self.c_out * self.kw;
        // (in, out, kh, kw) -> (in, out, kw, kh) -> kh padded to a multiple of the stride
        let w = self.weight.permute((0, 1, 3, 2))?;
        let w = if kh_padded > self.kh {
            w.pad_with_zeros(3, 0, kh_padded - self.kh)?
        } else {
            w
        };
        let weight_mat = w.reshape((c_in, cw * kh_padded))?;
        // (N*L, C_in) x (C_in, cw*kh_padded)
        let cols = x
            .transpose(1, 2)?
            .reshape((n * l, c_in))?
            .matmul(&weight_mat)?
            .reshape((n, l, cw, m, s))?;
        // Overlap-add: output block b (of `s` samples) gets tap group q from input position b - q.
        let mut out: Option<Tensor> = None;
        for q in 0..m {
            let part = cols.narrow(3, q, 1)?.squeeze(3)?; // (n, l, cw, s)
            let part = part.pad_with_zeros(1, q, m - 1 - q)?; // (n, l+m-1, cw, s)
            out = Some(match out {
                None => part,
                Some(acc) => (acc + part)?,
            });
        }
        let out = out.expect("m >= 1 because kh >= 1"); // m = ceil(kh/s) >= 1
        // (n, l+m-1, cw, s) -> (n, cw, (l+m-1)*s)
        let full_len = (l + m - 1) * s;
        let out = out.permute((0, 2, 1, 3))?.reshape((n, cw, full_len))?;
        let l_out = (l - 1) * s + self.kh - 2 * self.pad;
        let out = out.narrow(2, self.pad, l_out)?;
        let bias = self
            .bias
            .reshape((self.c_out, 1))?
            .repeat((1, self.kw))?
            .reshape((1, cw, 1))?;
        out.broadcast_add(&bias)
    }
}

/// PyTorch's nn.Conv2d (square kernel, same stride and padding on both axes), with the
/// weight stored as PyTorch stores it (out, in, kh, kw).
pub struct Conv2d {
    weight: Tensor,
    bias: Tensor,
    stride: usize,
    pad: usize,
}

impl Conv2d {
    pub fn new(
        c_in: usize,
        c_out: usize,
        k: usize,
        stride: usize,
        pad: usize,
        init: WeightInit,
        vb: VarBuilder,
    ) -> Result<Self> {
        let (weight, bias) = weight_and_bias(&vb, (c_out, c_in, k, k), c_out, init, c_in * k * k)?;
        Ok(Self {
            weight,
            bias,
            stride,
            pad,
        })
    }
}

impl Conv2d {
    /// x: (N, C_in, H, W), any strides -> (N, C_out, H_out, W_out), optionally through a
    /// ReLU. im2col ([`patches::Gather`]) and one GEMM; the result is a channels-last tensor
    /// seen as NCHW, which the next layer's im2col reads without a copy.
    pub fn forward_act(&self, x: &Tensor, relu: bool) -> Result<Tensor> {
        let (n, c_in, h, w) = x.dims4()?;
        let (c_out, _, k, _) = self.weight.dims4()?;
        let (s, p) = (self.stride, self.pad);
        let geometry = patches::PatchGeometry {
            n,
            c: c_in,
            gh: (h + 2 * p - k) / s + 1,
            gw: (w + 2 * p - k) / s + 1,
            ih: h,
            iw: w,
            k,
            s,
            p,
        };
        let cols = x
            .apply_op1(patches::Gather(geometry))?
            .reshape((n * geometry.gh * geometry.gw, c_in * k * k))?;
        let y = cols
            .matmul(&self.weight.reshape((c_out, c_in * k * k))?.t()?)?
            .broadcast_add(&self.bias)?;
        let y = if relu { y.relu()? } else { y };
        y.reshape((n, geometry.gh, geometry.gw, c_out))?
            .permute((0, 3, 1, 2))
    }
}

/// `Module` for layers whose `forward_act(x, relu)` also applies an optional ReLU.
macro_rules! module_without_relu {
    ($($layer:ty),*) => {$(
        impl Module for $layer {
            fn forward(&self, x: &Tensor) -> Result<Tensor> {
                self.forward_act(x, false)
            }
        }
    )*};
}
module_without_relu!(Conv2d, ConvTranspose2d);

/// PyTorch's nn.ConvTranspose2d (square kernel, same stride and padding on both axes), weight
/// stored as PyTorch stores it (in, out, kh, kw). Computed as one matrix product followed by
/// an overlap-add (col2im) of the kernel taps, from ops that all have a backward pass: faster
/// on the CPU than candle's direct transposed convolution, which loops without a GEMM.
pub struct ConvTranspose2d {
    weight: Tensor,
    bias: Tensor,
    c_out: usize,
    k: usize,
    stride: usize,
    pad: usize,
}

impl ConvTranspose2d {
    pub fn new(
        c_in: usize,
        c_out: usize,
        k: usize,
        stride: usize,
        pad: usize,
        init: WeightInit,
        vb: VarBuilder,
    ) -> Result<Self> {
        // PyTorch takes fan_in from weight.size(1) * k * k for transposed convs; the signal's
        // true fan-in per output is c_in * (k / stride)^2, which He init uses.
        let fan_in = match init {
            WeightInit::PyTorch => c_out * k * k,
            WeightInit::He => (c_in * (k / stride.max(1)).pow(2)).max(1),
        };
        let (weight, bias) = weight_and_bias(&vb, (c_in, c_out, k, k), c_out, init, fan_in)?;
        Ok(Self {
            weight,
            bias,
            c_out,
            k,
            stride,
            pad,
        })
    }
}

impl ConvTranspose2d {
    /// x: (N, C_in, H, W) -> (N, C_out, (H-1)*stride - 2*pad + k, same for W), optionally
    /// through a ReLU. One GEMM, then col2im ([`patches::Scatter`]); the result is a
    /// channels-last tensor seen as NCHW, which the next layer's GEMM reads without a copy.
    pub fn forward_act(&self, x: &Tensor, relu: bool) -> Result<Tensor> {
        let (n, c_in, h, w) = x.dims4()?;
        let (s, k, c_out, p) = (self.stride, self.k, self.c_out, self.pad);
        let geometry = patches::PatchGeometry {
            n,
            c: c_out,
            gh: h,
            gw: w,
            ih: (h - 1) * s + k - 2 * p,
            iw: (w - 1) * s + k - 2 * p,
            k,
            s,
            p,
        };
        // (N*H*W, in) x (in, out*k*k) -> patches (N, H, W, out, k, k)
        let cols = x
            .permute((0, 2, 3, 1))?
            .reshape((n * h * w, c_in))?
            .matmul(&self.weight.reshape((c_in, c_out * k * k))?)?
            .reshape(vec![n, h, w, c_out, k, k])?;
        let y = cols
            .apply_op1(patches::Scatter(geometry))?
            .broadcast_add(&self.bias)?;
        let y = if relu { y.relu()? } else { y };
        y.permute((0, 3, 1, 2))
    }
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

/// Binary cross-entropy summed over all elements, from logits (stable for any logit).
pub fn bce_with_logits_sum(logits: &Tensor, target: &Tensor) -> Result<Tensor> {
    bce_with_logits(logits, target)?.sum_all()
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

    /// The im2col convolution against candle's conv2d, forward and backward.
    #[test]
    fn conv2d_matches_candle_forward_and_backward() -> Result<()> {
        for (k, s, p, h, w) in [
            (4, 2, 1, 8, 6),
            (3, 1, 1, 5, 5),
            (5, 2, 2, 9, 7),
            (3, 2, 0, 7, 7),
        ] {
            let (varmap, vb) = new_varmap();
            let layer = Conv2d::new(3, 4, k, s, p, WeightInit::He, vb.pp("c"))?;
            let x = candle_core::Var::randn(0f32, 1.0, (2, 3, h, w), &Device::Cpu)?;
            let ours = layer.forward(x.as_tensor())?;
            let (weight, bias) = weight_and_bias_of(&varmap, "c")?;
            let theirs = x
                .as_tensor()
                .conv2d(weight.as_tensor(), p, s, 1, 1)?
                .broadcast_add(&bias.reshape((1, (), 1, 1))?)?;
            assert_same_layer(
                &ours,
                &theirs,
                &[x.as_tensor(), weight.as_tensor()],
                &format!("k{k} s{s} p{p}"),
            )?;
        }
        Ok(())
    }

    /// The weight variable and the bias of the layer named `prefix`.
    fn weight_and_bias_of(varmap: &VarMap, prefix: &str) -> Result<(candle_core::Var, Tensor)> {
        let data = varmap
            .data()
            .lock()
            .map_err(|_| candle_core::Error::Msg("lock".into()))?;
        let weight = data[&format!("{prefix}.weight")].clone();
        let bias = data[&format!("{prefix}.bias")].as_tensor().clone();
        Ok((weight, bias))
    }

    /// Our layer's output against candle's: forward to 1e-4, and the gradients of a random
    /// weighted sum with respect to `inputs` to 1e-3.
    fn assert_same_layer(
        ours: &Tensor,
        theirs: &Tensor,
        inputs: &[&Tensor],
        case: &str,
    ) -> Result<()> {
        assert_eq!(ours.dims(), theirs.dims(), "{case}");
        let diff = (ours - theirs)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(diff < 1e-4, "{case}: forward differs by {diff}");
        let probe = Tensor::randn(0f32, 1.0, ours.dims(), &Device::Cpu)?;
        let g1 = (ours * &probe)?.sum_all()?.backward()?;
        let g2 = (theirs * &probe)?.sum_all()?.backward()?;
        for t in inputs {
            let no_grad = || candle_core::Error::Msg("no grad".into());
            let a = g1.get(t).ok_or_else(no_grad)?;
            let b = g2.get(t).ok_or_else(no_grad)?;
            let d = (a - b)?.abs()?.max_all()?.to_scalar::<f32>()?;
            assert!(d < 1e-3, "{case}: gradient differs by {d}");
        }
        Ok(())
    }

    /// The matmul + overlap-add transposed convolution against candle's direct one, forward
    /// and the gradient of a weighted sum with respect to input and weight.
    #[test]
    fn conv_transpose2d_matches_candle_forward_and_backward() -> Result<()> {
        for (k, s, p) in [(4, 2, 1), (3, 1, 1), (5, 2, 2), (3, 3, 0)] {
            let (varmap, vb) = new_varmap();
            let layer = ConvTranspose2d::new(3, 2, k, s, p, WeightInit::He, vb.pp("t"))?;
            let x = candle_core::Var::randn(0f32, 1.0, (2, 3, 5, 4), &Device::Cpu)?;
            let ours = layer.forward(x.as_tensor())?;
            let (weight, bias) = weight_and_bias_of(&varmap, "t")?;
            let theirs = x
                .as_tensor()
                .conv_transpose2d(weight.as_tensor(), p, 0, s, 1)?
                .broadcast_add(&bias.reshape((1, (), 1, 1))?)?;
            assert_same_layer(
                &ours,
                &theirs,
                &[x.as_tensor(), weight.as_tensor()],
                &format!("k{k} s{s} p{p}"),
            )?;
        }
        Ok(())
    }
}
