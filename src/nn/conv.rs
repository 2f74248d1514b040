//! PyTorch's convolution and dense layers, weights stored as PyTorch stores them, run on
//! channels-last activations ([`Act`]) by the ops of [`super::patches`], alone or several as
//! one op ([`run`]).

use candle_core::{Module, Result, Tensor};
use candle_nn::{Linear, VarBuilder};

use super::patches::{Act, Kind, LayerSpec, Mode, OutView, PatchGeometry, Taps, stack_with};
use super::{Mlp, WeightInit};

/// A layer that can run in a stack of layers ([`run`]).
pub trait StackLayer {
    /// What this layer computes on an input image (h, w, c) per sample; `copied` says the
    /// input is read through a ReLU or a crop (a transposed layer then copies it first).
    fn spec(&self, input: (usize, usize, usize), copied: bool) -> Result<LayerSpec>;
}

/// The image (h, w, c) per sample that `spec` makes of an input image.
fn out_image(spec: &LayerSpec, input: (usize, usize, usize)) -> Result<(usize, usize, usize)> {
    if let Some(v) = spec.view {
        return Ok((v.h, v.w, v.stored.2));
    }
    if let Some(image) = spec.chw {
        return Ok(image);
    }
    spec.kind.image(input, spec.bias.dim(0)?)
}

/// Runs `layers` one after the other on `x` as one op, each with whether its input goes
/// through a ReLU first. The result has no ReLU pending.
pub fn run(x: &Act, layers: &[(&dyn StackLayer, bool)]) -> Result<Act> {
    run_with(x, layers, Mode::Auto)
}

/// `layers` with a ReLU between each two (none before the first).
pub fn relu_between<'a>(
    layers: impl IntoIterator<Item = &'a dyn StackLayer>,
) -> Vec<(&'a dyn StackLayer, bool)> {
    layers
        .into_iter()
        .enumerate()
        .map(|(i, l)| (l, i > 0))
        .collect()
}

/// A decoder as one op: z (N, L) through `mlp`, whose output is seen as the channels-last
/// `image` (its outputs in PyTorch's (c, h, w) order), then through `convs`; a ReLU between
/// each two layers of the MLP and each two convs.
pub fn mlp_then_convs(
    mlp: &Mlp,
    image: (usize, usize, usize),
    convs: &[&dyn StackLayer],
    z: &Tensor,
) -> Result<Act> {
    let (n, latent) = z.dims2()?;
    let dense = mlp.stack_layers(Some(image));
    let mut layers = relu_between(dense.iter().map(|d| d as &dyn StackLayer));
    layers.extend(relu_between(convs.iter().copied()));
    run(&Act::new(z.reshape((n, 1, 1, latent))?)?, &layers)
}

/// [`run`] as `mode` says.
pub(crate) fn run_with(x: &Act, layers: &[(&dyn StackLayer, bool)], mode: Mode) -> Result<Act> {
    let (_, mut h, mut w, mut c) = x.dims()?;
    let mut copied = !x.is_plain()? || !x.t.is_contiguous();
    let mut specs = Vec::with_capacity(layers.len());
    for &(layer, relu) in layers {
        let mut spec = layer.spec((h, w, c), copied || relu)?;
        spec.relu_in = relu;
        (h, w, c) = out_image(&spec, (h, w, c))?;
        copied = spec
            .view
            .is_some_and(|v| (v.h, v.w) != (v.stored.0, v.stored.1));
        specs.push(spec);
    }
    stack_with(x, &specs, mode)
}

/// A convolution's weight and bias, as PyTorch stores them, with its strides and padding
/// ((along the height, along the width) each): what [`Conv2d`] and [`ConvTranspose2d`] hold.
struct Kernel {
    weight: Tensor,
    bias: Tensor,
    stride: (usize, usize),
    pad: (usize, usize),
}

impl Kernel {
    /// A weight (out, in, kh, kw), or (in, out, kh, kw) if `transposed`, started for `fan_in`
    /// inputs, and a bias of c_out.
    fn new(
        (c_in, c_out): (usize, usize),
        ((kh, kw), stride, pad): Shape2,
        transposed: bool,
        (init, fan_in): (WeightInit, usize),
        vb: VarBuilder,
    ) -> Result<Self> {
        let shape = if transposed {
            (c_in, c_out, kh, kw)
        } else {
            (c_out, c_in, kh, kw)
        };
        let (weight, bias) = super::weight_and_bias(&vb, shape, c_out, init, fan_in)?;
        Ok(Self {
            weight,
            bias,
            stride,
            pad,
        })
    }

    fn taps(&self, kernel: (usize, usize)) -> Taps {
        Taps {
            kernel,
            stride: self.stride,
            pad: self.pad,
        }
    }
}

/// PyTorch's nn.Conv2d, weight (out, in, kh, kw).
pub struct Conv2d {
    k: Kernel,
}

/// PyTorch's nn.ConvTranspose2d, weight (in, out, kh, kw).
pub struct ConvTranspose2d {
    k: Kernel,
}

/// For each layer type, whether its weight is stored (in, out, ...): a square kernel with the
/// same stride and padding on both axes, its fan-in for the initialisation by the given rule
/// (c_in, c_out, k, stride, init); any kernel, strides and padding with a fan-in; and
/// `Module`, without a ReLU.
macro_rules! square_layers {
    ($($layer:ident, transposed $transposed:literal: $fan_in:expr;)*) => {$(
        impl $layer {
            /// A square kernel with the same stride and padding on both axes.
            pub fn new(
                c_in: usize,
                c_out: usize,
                k: usize,
                stride: usize,
                pad: usize,
                init: WeightInit,
                vb: VarBuilder,
            ) -> Result<Self> {
                let fan_in: fn(usize, usize, usize, usize, WeightInit) -> usize = $fan_in;
                let fan_in = fan_in(c_in, c_out, k, stride, init);
                let square = ((k, k), (stride, stride), (pad, pad));
                Self::with_fan_in(c_in, c_out, square, init, fan_in, vb)
            }

            fn with_fan_in(
                c_in: usize,
                c_out: usize,
                shape: Shape2,
                init: WeightInit,
                fan_in: usize,
                vb: VarBuilder,
            ) -> Result<Self> {
                let k = Kernel::new((c_in, c_out), shape, $transposed, (init, fan_in), vb)?;
                Ok(Self { k })
            }
        }

        impl Module for $layer {
            /// x: (N, C_in, H, W) -> (N, C_out, H_out, W_out)
            fn forward(&self, x: &Tensor) -> Result<Tensor> {
                self.forward_act(x, false)
            }
        }
    )*};
}

/// (kernel, stride, padding), each (along the height, along the width)
type Shape2 = ((usize, usize), (usize, usize), (usize, usize));

square_layers! {
    Conv2d, transposed false: |c_in, _, k, _, _| c_in * k * k;
    // PyTorch takes fan_in from weight.size(1) * k * k for transposed convs; the signal's true
    // fan-in per output is c_in * (k / stride)^2, which He init uses.
    ConvTranspose2d, transposed true: |c_in, c_out, k, stride, init| match init {
        WeightInit::PyTorch => c_out * k * k,
        WeightInit::He => (c_in * (k / stride.max(1)).pow(2)).max(1),
    };
}

impl Conv2d {
    /// A kernel (kh, kw) with strides and padding along each axis.
    pub fn rect(
        c_in: usize,
        c_out: usize,
        kernel: (usize, usize),
        stride: (usize, usize),
        pad: (usize, usize),
        init: WeightInit,
        vb: VarBuilder,
    ) -> Result<Self> {
        let fan_in = c_in * kernel.0 * kernel.1;
        Self::with_fan_in(c_in, c_out, (kernel, stride, pad), init, fan_in, vb)
    }

    /// x (N, H, W, C_in) -> (N, H_out, W_out, C_out): im2col and one GEMM; x's crop and
    /// pending ReLU are applied on the way.
    pub fn forward_nhwc(&self, x: &Act) -> Result<Act> {
        run(x, &[(self, false)])
    }

    /// x: (N, C_in, H, W), any strides -> (N, C_out, H_out, W_out), optionally through a
    /// ReLU; the result is a channels-last tensor seen as NCHW.
    pub fn forward_act(&self, x: &Tensor, relu: bool) -> Result<Tensor> {
        let y = self.forward_nhwc(&Act::from_nchw(x)?)?;
        if relu { y.relu() } else { y }.to_nchw()
    }
}

impl StackLayer for Conv2d {
    fn spec(&self, _input: (usize, usize, usize), _copied: bool) -> Result<LayerSpec> {
        // (out, in, kh, kw) -> rows (kh, kw, in), the order of a patch's taps
        let (c_out, c_in, kh, kw) = self.k.weight.dims4()?;
        Ok(LayerSpec {
            kind: Kind::Conv(self.k.taps((kh, kw))),
            weight: self
                .k
                .weight
                .permute((2, 3, 1, 0))?
                .reshape((kh * kw * c_in, c_out))?,
            bias: self.k.bias.clone(),
            relu_in: false,
            view: None,
            chw: None,
        })
    }
}

/// A convolution whose input width equals its kernel's width, striding and padding along the
/// height only, as the SPS music encoder sees a 513x5 note. Weight (out, in, kh, kw), as
/// PyTorch's nn.Conv2d.
pub struct HeightConv {
    conv: Conv2d,
}

impl HeightConv {
    pub fn new(
        c_in: usize,
        c_out: usize,
        kernel: (usize, usize),
        stride: usize,
        pad: usize,
        init: WeightInit,
        vb: VarBuilder,
    ) -> Result<Self> {
        let conv = Conv2d::rect(c_in, c_out, kernel, (stride, 1), (pad, 0), init, vb)?;
        Ok(Self { conv })
    }

    /// (out, in, kh, kw), as PyTorch stores it
    pub fn weight(&self) -> &Tensor {
        &self.conv.k.weight
    }

    pub fn bias(&self) -> &Tensor {
        &self.conv.k.bias
    }

    /// x (N, H, W, C_in), W the kernel's width -> (N, H_out, 1, C_out)
    pub fn forward(&self, x: &Act) -> Result<Act> {
        self.conv.forward_nhwc(x)
    }

    /// x: (N, C_in*W, H), the width folded into the channels (channel in*W + w) -> (N, C_out,
    /// H_out), a channels-last tensor seen as (N, C, H).
    pub fn forward_1d(&self, x: &Tensor) -> Result<Tensor> {
        let (n, cw, h) = x.dims3()?;
        let (_, c_in, _, kw) = self.weight().dims4()?;
        if cw != c_in * kw {
            candle_core::bail!("HeightConv: {cw} channels, expected {c_in} x {kw}");
        }
        // (N, C_in*W, H) -> (N, C_in, W, H) -> (N, H, W, C_in): the unfolded image
        let x = Act::new(x.reshape((n, c_in, kw, h))?.permute((0, 3, 2, 1))?)?;
        let y = self.forward(&x)?;
        y.t.squeeze(2)?.transpose(1, 2)
    }
}

impl StackLayer for HeightConv {
    fn spec(&self, input: (usize, usize, usize), copied: bool) -> Result<LayerSpec> {
        self.conv.spec(input, copied)
    }
}

impl ConvTranspose2d {
    /// x (N, H, W, C_in) -> (N, (H-1)*sh - 2*ph + kh, likewise W, C_out), optionally through a
    /// ReLU (left pending in the result).
    pub fn forward_nhwc(&self, x: &Act, relu: bool) -> Result<Act> {
        let y = run(x, &[(self, false)])?;
        Ok(if relu { y.relu() } else { y })
    }

    /// x: (N, C_in, H, W), any strides -> (N, C_out, H_out, W_out), optionally through a
    /// ReLU; the result is a channels-last tensor seen as NCHW.
    pub fn forward_act(&self, x: &Tensor, relu: bool) -> Result<Tensor> {
        self.forward_nhwc(&Act::from_nchw(x)?, relu)?.to_nchw()
    }

    /// An input one pixel wide: output row b*sh + r (before the crop) is the sum over
    /// q < m = ceil(kh/sh) of input row b - q times tap q*sh + r, so output block b is one
    /// convolution over input rows b-m+1..=b with weight (m*C_in, sh*kw*C_out). Its result,
    /// (H+m-1)*sh rows of kw x C_out, holds the image from row ph.
    fn by_phase(&self, h: usize) -> Result<LayerSpec> {
        let (c_in, c_out, kh, kw) = self.k.weight.dims4()?;
        let (sh, ph) = (self.k.stride.0, self.k.pad.0);
        let m = kh.div_ceil(sh);
        // (in, out, kh, kw), kh padded to m*sh -> (in, out, m, sh, kw), taps q = m-1-j
        let w = self
            .k
            .weight
            .pad_with_zeros(2, 0, m * sh - kh)?
            .reshape((c_in, c_out, m, sh, kw))?;
        let flipped: Vec<Tensor> = (0..m)
            .rev()
            .map(|q| w.narrow(2, q, 1))
            .collect::<Result<_>>()?;
        let weight = Tensor::cat(&flipped, 2)?
            .permute((2, 0, 3, 4, 1))?
            .reshape((m * c_in, sh * kw * c_out))?;
        let bias = self
            .k
            .bias
            .unsqueeze(0)?
            .repeat((sh * kw, 1))?
            .flatten_all()?;
        Ok(LayerSpec {
            kind: Kind::Conv(Taps {
                kernel: (m, 1),
                stride: (1, 1),
                pad: (m - 1, 0),
            }),
            weight,
            bias,
            relu_in: false,
            view: Some(OutView {
                stored: ((h + m - 1) * sh, kw, c_out),
                y0: ph,
                h: (h - 1) * sh + kh - 2 * ph,
                x0: 0,
                w: kw,
            }),
            chw: None,
        })
    }
}

impl StackLayer for ConvTranspose2d {
    /// One GEMM and one col2im, or, for an input one pixel wide, one convolution over the
    /// input per output phase ([`ConvTranspose2d::by_phase`]) when that moves less memory.
    fn spec(&self, (h, w, c_in): (usize, usize, usize), copied: bool) -> Result<LayerSpec> {
        let (_, c_out, kh, kw) = self.k.weight.dims4()?;
        let taps = self.k.taps((kh, kw));
        let out = PatchGeometry::transposed((1, h, w, c_out), taps)?;
        let m = kh.div_ceil(taps.stride.0);
        // floats written per sample by each way
        let by_scatter = if copied { h * w * c_in } else { 0 }
            + h * w * kh * kw * c_out
            + out.ih * out.iw * c_out;
        let by_phase = (h + m - 1) * (m * c_in + taps.stride.0 * kw * c_out);
        if w == 1 && taps.pad.1 == 0 && by_phase < by_scatter {
            return self.by_phase(h);
        }
        // (in, out, kh, kw) as it is stored: columns in (out, kh, kw) order
        Ok(LayerSpec {
            kind: Kind::Transpose(taps),
            weight: self.k.weight.reshape((c_in, c_out * kh * kw))?,
            bias: self.k.bias.clone(),
            relu_in: false,
            view: None,
            chw: None,
        })
    }
}

/// A transposed convolution along the height of inputs one pixel wide: the kernel's width
/// becomes the output's. Weight (in, out, kh, kw), as PyTorch's nn.ConvTranspose2d.
pub struct HeightConvTranspose {
    conv: ConvTranspose2d,
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
        let shape = ((kh, kw), (stride, 1), (pad, 0));
        let conv = ConvTranspose2d::with_fan_in(c_in, c_out, shape, init, fan_in, vb)?;
        Ok(Self { conv })
    }

    /// x (N, H, 1, C_in) -> (N, (H-1)*stride - 2*pad + kh, kw, C_out), optionally through a
    /// ReLU (left pending).
    pub fn forward(&self, x: &Act, relu: bool) -> Result<Act> {
        self.conv.forward_nhwc(x, relu)
    }
}

impl StackLayer for HeightConvTranspose {
    fn spec(&self, input: (usize, usize, usize), copied: bool) -> Result<LayerSpec> {
        self.conv.spec(input, copied)
    }
}

/// A dense layer (PyTorch's nn.Linear, weight (out, in)) on inputs one pixel of `in`
/// channels, in a stack. With `image` (h, w, c), its `out` = c*h*w outputs, in PyTorch's
/// (c, h, w) order, are seen as the channels-last image the next layer reads.
pub struct Dense<'a> {
    pub linear: &'a Linear,
    pub image: Option<(usize, usize, usize)>,
}

impl<'a> Dense<'a> {
    pub fn new(linear: &'a Linear, image: Option<(usize, usize, usize)>) -> Self {
        Self { linear, image }
    }
}

impl StackLayer for Dense<'_> {
    fn spec(&self, input: (usize, usize, usize), _copied: bool) -> Result<LayerSpec> {
        let w = self.linear.weight();
        let (out, k) = w.dims2()?;
        if input != (1, 1, k) {
            candle_core::bail!("dense layer of {k} inputs on an image {input:?}");
        }
        let bias = match self.linear.bias() {
            Some(b) => b.clone(),
            None => Tensor::zeros(out, candle_core::DType::F32, w.device())?,
        };
        if let Some((h, wd, c)) = self.image
            && c * h * wd != out
        {
            candle_core::bail!("dense layer of {out} outputs seen as {h}x{wd}x{c}");
        }
        Ok(LayerSpec {
            kind: Kind::Conv(Taps::ONE),
            weight: w.t()?,
            bias,
            relu_in: false,
            view: None,
            chw: self.image,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::new_varmap;
    use candle_core::{Device, Var};

    /// every way a stack runs: one op per layer, one op for all, in chunks of 1 and 2
    const MODES: [Mode; 4] = [Mode::Auto, Mode::PerLayer, Mode::Packed(1), Mode::Packed(2)];

    fn var(map: &candle_nn::VarMap, name: &str) -> Result<Tensor> {
        let data = map
            .data()
            .lock()
            .map_err(|_| candle_core::Error::Msg("lock".into()))?;
        Ok(data[name].as_tensor().clone())
    }

    /// Every `step`-th index of `dim`, from 0.
    fn every(x: &Tensor, dim: usize, step: usize) -> Result<Tensor> {
        if step == 1 {
            return Ok(x.clone());
        }
        let idx: Vec<u32> = (0..x.dim(dim)?).step_by(step).map(|i| i as u32).collect();
        let len = idx.len();
        x.index_select(&Tensor::from_vec(idx, len, x.device())?, dim)
    }

    fn flip(x: &Tensor, dim: usize) -> Result<Tensor> {
        let n = x.dim(dim)?;
        let idx: Vec<u32> = (0..n as u32).rev().collect();
        x.index_select(&Tensor::from_vec(idx, n, x.device())?, dim)
    }

    /// (along the height, along the width)
    type Pair = (usize, usize);

    /// PyTorch's conv2d from candle's own ops (all with backward passes): padding by hand,
    /// a stride-1 convolution, then every stride-th row and column.
    fn reference_conv(x: &Tensor, w: &Tensor, b: &Tensor, s: Pair, p: Pair) -> Result<Tensor> {
        let ((sh, sw), (ph, pw)) = (s, p);
        let x = x.pad_with_zeros(2, ph, ph)?.pad_with_zeros(3, pw, pw)?;
        let y = x.conv2d(w, 0, 1, 1, 1)?;
        every(&every(&y, 2, sh)?, 3, sw)?.broadcast_add(&b.reshape((1, (), 1, 1))?)
    }

    /// PyTorch's conv_transpose2d from candle's own ops: zeros between the input's pixels,
    /// a full convolution with the flipped kernel, then the crop.
    fn reference_conv_transpose(
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        s: Pair,
        p: Pair,
    ) -> Result<Tensor> {
        let ((sh, sw), (ph, pw)) = (s, p);
        let (n, c, h, wd) = x.dims4()?;
        let (_, _, kh, kw) = w.dims4()?;
        let up = x
            .unsqueeze(3)?
            .pad_with_zeros(3, 0, sh - 1)?
            .reshape((n, c, h * sh, wd))?
            .narrow(2, 0, (h - 1) * sh + 1)?
            .unsqueeze(4)?
            .pad_with_zeros(4, 0, sw - 1)?
            .reshape((n, c, (h - 1) * sh + 1, wd * sw))?
            .narrow(3, 0, (wd - 1) * sw + 1)?
            .pad_with_zeros(2, kh - 1, kh - 1)?
            .pad_with_zeros(3, kw - 1, kw - 1)?;
        let kernel = flip(&flip(w, 2)?, 3)?.transpose(0, 1)?.contiguous()?;
        let y = up.conv2d(&kernel, 0, 1, 1, 1)?;
        let (ho, wo) = ((h - 1) * sh + kh - 2 * ph, (wd - 1) * sw + kw - 2 * pw);
        y.narrow(2, ph, ho)?
            .narrow(3, pw, wo)?
            .broadcast_add(&b.reshape((1, (), 1, 1))?)
    }

    /// Our layer's output against the reference's: forward to 1e-4, and the gradients of a
    /// random weighted sum with respect to `inputs` to 1e-3.
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
        for (i, t) in inputs.iter().enumerate() {
            let no_grad = || candle_core::Error::Msg(format!("{case}: no gradient for input {i}"));
            let a = g1.get(t).ok_or_else(no_grad)?;
            let b = g2.get(t).ok_or_else(no_grad)?;
            let d = (a - b)?.abs()?.max_all()?.to_scalar::<f32>()?;
            assert!(d < 1e-3, "{case}: gradient {i} differs by {d}");
        }
        Ok(())
    }

    #[test]
    fn conv2d_matches_the_reference_forward_and_backward() -> Result<()> {
        let cases = [
            (4, 2, 1, 8, 6),
            (3, 1, 1, 5, 5),
            (5, 2, 2, 9, 7),
            (3, 2, 0, 7, 7),
        ];
        for (k, s, p, h, w) in cases {
            assert_square_layer(
                |vb| Conv2d::new(3, 4, k, s, p, WeightInit::He, vb),
                (2, 3, h, w),
                |x, wt, b| reference_conv(x, wt, b, (s, s), (p, p)),
                Some(|x: &Tensor, wt: &Tensor| x.conv2d(wt, p, s, 1, 1)),
                &format!("k{k} s{s} p{p}"),
            )?;
        }
        Ok(())
    }

    /// A layer `make` builds, on a random input of `shape`, against `reference(x, w, b)` (and
    /// that against candle's own op `candle(x, w)`, where given): forward and gradients,
    /// through `Module` and as a stack run every way.
    fn assert_square_layer<L: Module + StackLayer>(
        make: impl FnOnce(VarBuilder) -> Result<L>,
        shape: (usize, usize, usize, usize),
        reference: impl FnOnce(&Tensor, &Tensor, &Tensor) -> Result<Tensor>,
        candle: Option<impl FnOnce(&Tensor, &Tensor) -> Result<Tensor>>,
        case: &str,
    ) -> Result<()> {
        let (map, vb) = new_varmap();
        let layer = make(vb.pp("l"))?;
        let x = Var::randn(0f32, 1.0, shape, &Device::Cpu)?;
        let (w, b) = (var(&map, "l.weight")?, var(&map, "l.bias")?);
        let theirs = reference(x.as_tensor(), &w, &b)?;
        if let Some(candle) = candle {
            let candle = candle(x.as_tensor(), &w)?.broadcast_add(&b.reshape((1, (), 1, 1))?)?;
            let d = (&candle - &theirs)?.abs()?.max_all()?.to_scalar::<f32>()?;
            assert!(d < 1e-5, "{case}: reference differs from candle by {d}");
        }
        let inputs = [x.as_tensor(), &w, &b];
        assert_same_layer(&layer.forward(x.as_tensor())?, &theirs, &inputs, case)?;
        for mode in MODES {
            let y = run_with(&Act::from_nchw(x.as_tensor())?, &[(&layer, false)], mode)?;
            assert_same_layer(&y.to_nchw()?, &theirs, &inputs, &format!("{case} {mode:?}"))?;
        }
        Ok(())
    }

    #[test]
    fn conv_transpose2d_matches_the_reference_forward_and_backward() -> Result<()> {
        // (k, s, p, h, w): the last two are one pixel wide without padding, so they take
        // the per-phase way when it moves less memory
        for (k, s, p, h, w) in [
            (4, 2, 1, 5, 4),
            (3, 1, 1, 5, 4),
            (5, 2, 2, 5, 4),
            (3, 3, 0, 5, 4),
            (4, 2, 0, 6, 1),
            (5, 3, 0, 4, 1),
        ] {
            for c_in in [3, 40] {
                assert_square_layer(
                    |vb| ConvTranspose2d::new(c_in, 2, k, s, p, WeightInit::He, vb),
                    (2, c_in, h, w),
                    |x, wt, b| reference_conv_transpose(x, wt, b, (s, s), (p, p)),
                    // candle's own, where it has one (not for inputs one pixel wide)
                    (w > 1).then_some(|x: &Tensor, wt: &Tensor| x.conv_transpose2d(wt, p, 0, s, 1)),
                    &format!("k{k} s{s} p{p} {h}x{w}x{c_in}"),
                )?;
            }
        }
        Ok(())
    }

    /// The SPS music layers (strides and padding along the height only), chained as the
    /// model chains them: ReLUs and crops between layers are applied by the next layer's
    /// gather, and transposed layers take both ways.
    #[test]
    fn height_layers_chained_match_the_reference() -> Result<()> {
        let (map, vb) = new_varmap();
        let he = WeightInit::He;
        let enc = [
            HeightConv::new(1, 6, (5, 5), 2, 1, he, vb.pp("e0"))?,
            HeightConv::new(6, 7, (8, 1), 4, 2, he, vb.pp("e1"))?,
        ];
        let dec = [
            HeightConvTranspose::new(7, 40, (4, 1), 2, 1, he, vb.pp("d0"))?,
            HeightConvTranspose::new(40, 30, (8, 1), 4, 2, he, vb.pp("d1"))?,
            HeightConvTranspose::new(30, 1, (5, 5), 2, 1, he, vb.pp("d2"))?,
        ];
        let x = Var::randn(0f32, 1.0, (3, 1, 41, 5), &Device::Cpu)?;
        let xt = x.as_tensor();
        // the reference, NCHW
        let w = |name: &str| var(&map, &format!("{name}.weight"));
        let b = |name: &str| var(&map, &format!("{name}.bias"));
        let mut r = xt.clone();
        for (name, s, p) in [("e0", 2, 1), ("e1", 4, 2)] {
            r = reference_conv(&r, &w(name)?, &b(name)?, (s, 1), (p, 0))?.relu()?;
        }
        for (i, (name, s, p)) in [("d0", 2, 1), ("d1", 4, 2), ("d2", 2, 1)]
            .into_iter()
            .enumerate()
        {
            r = reference_conv_transpose(&r, &w(name)?, &b(name)?, (s, 1), (p, 0))?;
            if i < 2 {
                r = r.relu()?;
            }
        }
        let mut inputs = vec![xt.clone()];
        for name in ["e0", "e1", "d0", "d1", "d2"] {
            inputs.push(w(name)?);
            inputs.push(b(name)?);
        }
        let inputs: Vec<&Tensor> = inputs.iter().collect();
        // ours: layer by layer, channels-last
        let mut h = Act::from_nchw(xt)?;
        for conv in &enc {
            h = conv.forward(&h)?.relu();
        }
        for (i, conv) in dec.iter().enumerate() {
            h = conv.forward(&h, i + 1 < dec.len())?;
        }
        assert_same_layer(&h.to_nchw()?, &r, &inputs, "layer by layer")?;
        // and as one op, all samples at once or one or two at a time
        let mut layers: Vec<(&dyn StackLayer, bool)> = vec![(&enc[0], false), (&enc[1], true)];
        for conv in &dec {
            layers.push((conv, true));
        }
        for mode in MODES {
            let y = run_with(&Act::from_nchw(xt)?, &layers, mode)?;
            assert_same_layer(&y.to_nchw()?, &r, &inputs, &format!("stack {mode:?}"))?;
        }
        // without keeping activations (no gradient needed), the forward is the same
        let detached = run(&Act::from_nchw(&xt.detach())?, &layers)?;
        let d = (detached.to_nchw()? - &r)?
            .abs()?
            .max_all()?
            .to_scalar::<f32>()?;
        assert!(d < 1e-4, "{d}");
        Ok(())
    }

    /// The gradients against finite differences, for a layer of the log-shift encoder's
    /// shape (where candle's conv1d gets the weight's gradient wrong).
    #[test]
    fn gradients_match_finite_differences() -> Result<()> {
        let (map, vb) = new_varmap();
        let layer = HeightConv::new(2, 3, (5, 4), 1, 2, WeightInit::He, vb.pp("h"))?;
        let w = var(&map, "h.weight")?;
        let x = Var::randn(0f32, 1.0, (3, 8, 17), &Device::Cpu)?;
        let probe = Tensor::randn(0f32, 1.0, (3, 3, 17), &Device::Cpu)?;
        let loss =
            |y: Tensor| -> Result<f64> { Ok((y * &probe)?.sum_all()?.to_scalar::<f32>()? as f64) };
        let g = (layer.forward_1d(x.as_tensor())? * &probe)?
            .sum_all()?
            .backward()?;
        let no = || candle_core::Error::Msg("no gradient".into());
        for (t, grad) in [
            (&w, g.get(&w).ok_or_else(no)?),
            (x.as_tensor(), g.get(&x).ok_or_else(no)?),
        ] {
            let base = t.flatten_all()?.to_vec1::<f32>()?;
            let grad = grad.flatten_all()?.to_vec1::<f32>()?;
            for i in (0..base.len()).step_by(base.len() / 7) {
                let at = |d: f32| -> Result<f64> {
                    let mut v = base.clone();
                    v[i] += d;
                    let moved = Tensor::from_vec(v, t.dims(), &Device::Cpu)?;
                    if t.dims() == w.dims() {
                        // the same layer with the weight moved
                        let (m2, vb2) = new_varmap();
                        let l2 = HeightConv::new(2, 3, (5, 4), 1, 2, WeightInit::He, vb2.pp("h"))?;
                        let data = m2.data().lock().map_err(|_| no())?;
                        data["h.weight"].set(&moved)?;
                        data["h.bias"].set(&var(&map, "h.bias")?)?;
                        drop(data);
                        loss(l2.forward_1d(x.as_tensor())?)
                    } else {
                        loss(layer.forward_1d(&moved)?)
                    }
                };
                let numeric = (at(1e-2)? - at(-1e-2)?) / 2e-2;
                let d = (numeric - grad[i] as f64).abs();
                assert!(
                    d < 2e-2 * (1.0 + numeric.abs()),
                    "{:?}[{i}]: {numeric} vs {}",
                    t.dims(),
                    grad[i]
                );
            }
        }
        Ok(())
    }

    /// A ReLU applied by a gather passes the gradient where its input is exactly 0, as
    /// candle's ReLU does, so that fusing it changes no training.
    #[test]
    fn a_fused_relu_passes_the_gradient_at_zero_as_candles_does() -> Result<()> {
        let x = Var::from_vec(
            vec![-1f32, 0.0, 2.0, 0.0, -3.0, 4.0],
            (1, 2, 3, 1),
            &Device::Cpu,
        )?;
        let ours = Act::new(x.as_tensor().clone())?.relu().to_nhwc()?;
        let theirs = x.as_tensor().relu()?;
        assert_same_layer(&ours, &theirs, &[x.as_tensor()], "relu")?;
        let g = ours.sum_all()?.backward()?;
        let g = g
            .get(x.as_tensor())
            .ok_or_else(|| candle_core::Error::Msg("no gradient".into()))?;
        assert_eq!(
            g.flatten_all()?.to_vec1::<f32>()?,
            [0.0, 1.0, 1.0, 1.0, 0.0, 1.0]
        );
        Ok(())
    }

    /// An MLP whose output is seen as an image, then a transposed conv, as one op, against
    /// candle's Linear layers and the reference.
    #[test]
    fn dense_layers_in_a_stack_match_linear_layers() -> Result<()> {
        let (map, vb) = new_varmap();
        let mlp = crate::nn::Mlp::new(&[3, 8, 24], WeightInit::He, vb.pp("fc"))?;
        let dec = HeightConvTranspose::new(6, 2, (4, 1), 2, 1, WeightInit::He, vb.pp("d"))?;
        let z = Var::randn(0f32, 1.0, (5, 3), &Device::Cpu)?;
        let fc = mlp.layers();
        let dense = [
            Dense::new(&fc[0], None),
            Dense::new(&fc[1], Some((4, 1, 6))),
        ];
        let layers: Vec<(&dyn StackLayer, bool)> =
            vec![(&dense[0], false), (&dense[1], true), (&dec, true)];
        for mode in MODES {
            let x = Act::new(z.as_tensor().reshape((5, 1, 1, 3))?)?;
            let ours = run_with(&x, &layers, mode)?.to_nchw()?;
            let h = mlp.forward(z.as_tensor())?.reshape((5, 6, 4, 1))?.relu()?;
            let (w, b) = (var(&map, "d.weight")?, var(&map, "d.bias")?);
            let theirs = reference_conv_transpose(&h, &w, &b, (2, 1), (1, 0))?;
            let mut inputs = vec![z.as_tensor().clone(), w, b];
            for name in ["fc.0", "fc.2"] {
                inputs.push(var(&map, &format!("{name}.weight"))?);
                inputs.push(var(&map, &format!("{name}.bias"))?);
            }
            let inputs: Vec<&Tensor> = inputs.iter().collect();
            assert_same_layer(&ours, &theirs, &inputs, &format!("{mode:?}"))?;
        }
        Ok(())
    }

    /// forward_1d (the width folded into the channels) against the reference and candle's conv1d.
    #[test]
    fn height_conv_1d_matches_candle_forward_and_backward() -> Result<()> {
        for ((kh, kw), s, p, c_in, n, len) in [
            ((5, 5), 2, 1, 1, 2, 19),
            ((8, 1), 4, 2, 3, 2, 19),
            ((3, 2), 1, 1, 2, 2, 19),
            // the log-shift encoder's, on enough samples to run as one packed op
            ((5, 35), 1, 2, 1, 40, 190),
            ((5, 1), 1, 2, 16, 40, 190),
            ((1, 1), 1, 0, 32, 40, 190),
        ] {
            let (map, vb) = new_varmap();
            let layer = HeightConv::new(c_in, 4, (kh, kw), s, p, WeightInit::He, vb.pp("h"))?;
            let x = Var::randn(0f32, 1.0, (n, c_in * kw, len), &Device::Cpu)?;
            let ours = layer.forward_1d(x.as_tensor())?;
            let (wt, b) = (var(&map, "h.weight")?, var(&map, "h.bias")?);
            let w1 = wt.permute((0, 1, 3, 2))?.reshape((4, c_in * kw, kh))?;
            let theirs = x
                .as_tensor()
                .conv1d(&w1, p, s, 1, 1)?
                .broadcast_add(&b.reshape((1, (), 1))?)?;
            let case = format!("{kh}x{kw} s{s} p{p}");
            let x4 = x
                .as_tensor()
                .reshape((n, c_in, kw, len))?
                .permute((0, 1, 3, 2))?;
            let reference = reference_conv(&x4, &wt, &b, (s, 1), (p, 0))?.squeeze(3)?;
            assert_same_layer(
                &ours,
                &reference,
                &[x.as_tensor(), &wt, &b],
                &format!("{case} vs reference"),
            )?;
            // candle's conv1d computes the same forward; its gradients are wrong for strides
            // above 1 (the weight's) and for a 1x1 kernel on more than a few samples (the
            // input's), so the reference above judges those
            let d = (&ours - &theirs)?.abs()?.max_all()?.to_scalar::<f32>()?;
            assert!(d < 1e-4, "{case}: candle's forward differs by {d}");
        }
        Ok(())
    }
}
