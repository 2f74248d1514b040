//! Convolutions, transposed convolutions and dense layers on the CPU as one candle custom op
//! per stack of layers ([`stack`]), with its backward pass. Each layer is one pass over memory
//! to gather patches (im2col) or scatter them (col2im) and one GEMM forward, two backward.
//! Activations between layers stay channels-last (N, H, W, C), so that a patch's taps are
//! contiguous runs of channels; a ReLU and a crop between two layers are applied by the next
//! layer's gather. The stack runs a chunk of samples at a time through every layer, so its
//! buffers stay small enough for the allocator to reuse (no fresh pages to fault in) and for
//! the caches to hold, and the activations between its layers never pass through candle's
//! autograd, which would allocate, zero and add a gradient buffer for each.
//!
//! A patch grid relates gh x gw positions, each kh x kw taps of c channels, to an image
//! (ih x iw x c): tap (a, b) of patch (i, j) is pixel (i*sh + a - ph, j*sw + b - pw); taps in
//! the padding read zero (gather) or are dropped (scatter). Gathering is a convolution's input
//! side, scattering a transposed convolution's output side, and each is the other's gradient.

use std::sync::Mutex;

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// Sizes of a patch grid over an image (module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PatchGeometry {
    pub n: usize,
    pub c: usize,
    pub ih: usize,
    pub iw: usize,
    pub gh: usize,
    pub gw: usize,
    pub kh: usize,
    pub kw: usize,
    pub sh: usize,
    pub sw: usize,
    pub ph: usize,
    pub pw: usize,
}

/// A kernel's size, stride and padding, each (along the height, along the width).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Taps {
    pub kernel: (usize, usize),
    pub stride: (usize, usize),
    pub pad: (usize, usize),
}

impl Taps {
    /// one pixel: a dense layer's, or a copy's
    pub const ONE: Taps = Taps {
        kernel: (1, 1),
        stride: (1, 1),
        pad: (0, 0),
    };
}

impl PatchGeometry {
    /// The grid of a convolution's patches over an (n, ih, iw, c) image.
    pub fn conv((n, ih, iw, c): (usize, usize, usize, usize), t: Taps) -> Result<Self> {
        let ((kh, kw), (sh, sw), (ph, pw)) = (t.kernel, t.stride, t.pad);
        if ih + 2 * ph < kh || iw + 2 * pw < kw || sh == 0 || sw == 0 {
            candle_core::bail!(
                "a {kh}x{kw} kernel (stride {sh}x{sw}, padding {ph}x{pw}) does not fit a {ih}x{iw} image"
            );
        }
        let grid = ((ih + 2 * ph - kh) / sh + 1, (iw + 2 * pw - kw) / sw + 1);
        Ok(Self::of(n, c, (ih, iw), grid, t))
    }

    /// The image a transposed convolution writes from a grid of (n, gh, gw) patches: its
    /// height (gh-1)*sh + kh - 2*ph, its width likewise.
    pub fn transposed((n, gh, gw, c): (usize, usize, usize, usize), t: Taps) -> Result<Self> {
        let ((kh, kw), (sh, sw), (ph, pw)) = (t.kernel, t.stride, t.pad);
        let (h, w) = ((gh - 1) * sh + kh, (gw - 1) * sw + kw);
        if h <= 2 * ph || w <= 2 * pw || gh == 0 || gw == 0 {
            candle_core::bail!(
                "a transposed {kh}x{kw} kernel with padding {ph}x{pw} leaves no image"
            );
        }
        Ok(Self::of(n, c, (h - 2 * ph, w - 2 * pw), (gh, gw), t))
    }

    fn of(n: usize, c: usize, (ih, iw): (usize, usize), (gh, gw): (usize, usize), t: Taps) -> Self {
        let ((kh, kw), (sh, sw), (ph, pw)) = (t.kernel, t.stride, t.pad);
        Self {
            n,
            c,
            ih,
            iw,
            gh,
            gw,
            kh,
            kw,
            sh,
            sw,
            ph,
            pw,
        }
    }

    pub fn rows(&self) -> usize {
        self.n * self.gh * self.gw
    }
    pub fn patch_len(&self) -> usize {
        self.kh * self.kw * self.c
    }
    /// image row of tap row `a` of patch row `i`, None in the padding
    #[inline]
    fn y(&self, i: usize, a: usize) -> Option<usize> {
        (i * self.sh + a)
            .checked_sub(self.ph)
            .filter(|&y| y < self.ih)
    }
    /// the taps b_lo..b_hi of patch column `j` that fall in the image (x = j*sw + b - pw)
    #[inline]
    fn taps_x(&self, j: usize) -> (usize, usize) {
        let left = j * self.sw;
        let lo = self.pw.saturating_sub(left);
        let hi = (self.iw + self.pw).saturating_sub(left).min(self.kw);
        (lo, hi)
    }
}

/// A channels-last activation (N, H, W, C): rows `y0..y0+h` and columns `x0..x0+w` of the
/// stored (N, HS, WS, C) tensor `t` (any strides), with a ReLU still to apply when `relu`.
/// Layers read it through their gather, which crops and applies the ReLU on the way.
#[derive(Clone, Debug)]
pub struct Act {
    pub t: Tensor,
    pub y0: usize,
    pub h: usize,
    pub x0: usize,
    pub w: usize,
    pub relu: bool,
}

impl Act {
    /// All of a (N, H, W, C) tensor.
    pub fn new(t: Tensor) -> Result<Self> {
        let (_, h, w, _) = t.dims4()?;
        Ok(Self {
            t,
            y0: 0,
            h,
            x0: 0,
            w,
            relu: false,
        })
    }

    /// A (N, C, H, W) tensor seen channels-last (no copy).
    pub fn from_nchw(x: &Tensor) -> Result<Self> {
        Self::new(x.permute((0, 2, 3, 1))?)
    }

    /// The same image with a ReLU to apply.
    pub fn relu(mut self) -> Self {
        self.relu = true;
        self
    }

    /// (N, H, W, C) of the image
    pub fn dims(&self) -> Result<(usize, usize, usize, usize)> {
        let (n, _, _, c) = self.t.dims4()?;
        Ok((n, self.h, self.w, c))
    }

    /// Whether the image is all of `t`, without a ReLU to apply.
    pub fn is_plain(&self) -> Result<bool> {
        let (_, hs, ws, _) = self.t.dims4()?;
        Ok(!self.relu && self.y0 == 0 && self.x0 == 0 && self.h == hs && self.w == ws)
    }

    /// The image as a tensor (N, H, W, C), cropped and through its ReLU (contiguous unless it
    /// needed neither).
    pub fn to_nhwc(&self) -> Result<Tensor> {
        if self.is_plain()? {
            return Ok(self.t.clone());
        }
        let (n, h, w, c) = self.dims()?;
        let g = PatchGeometry::conv((n, h, w, c), Taps::ONE)?;
        let window = Window {
            g,
            y0: self.y0,
            x0: self.x0,
            relu: self.relu,
            cmajor: false,
        };
        self.t.apply_op1(GatherOp(window))?.reshape((n, h, w, c))
    }

    /// The image as a (N, C, H, W) tensor (a channels-last view).
    pub fn to_nchw(&self) -> Result<Tensor> {
        self.to_nhwc()?.permute((0, 3, 1, 2))
    }
}

/// A patch grid over a window of an image, and whether the window's pixels go through a ReLU
/// as they are read. A patch's row holds its taps (a, b) and channels c in (a, b, c) order,
/// or in (c, a, b) order when `cmajor` (the order of PyTorch's transposed-conv weights).
#[derive(Clone, Copy, Debug)]
struct Window {
    g: PatchGeometry,
    y0: usize,
    x0: usize,
    relu: bool,
    cmajor: bool,
}

impl Window {
    /// where channel 0 of tap (a, b) sits in a patch's row, and the step between channels
    #[inline]
    fn tap(&self, a: usize, b: usize) -> (usize, usize) {
        let g = &self.g;
        if self.cmajor {
            (a * g.kw + b, g.kh * g.kw)
        } else {
            ((a * g.kw + b) * g.c, 1)
        }
    }
}

/// (N, H, W, C) f32 data: element (n, y, x, c) at off + n*st[0] + y*st[1] + x*st[2] + c*st[3].
#[derive(Clone, Copy)]
struct View<'a> {
    data: &'a [f32],
    off: usize,
    st: [usize; 4],
    dims: [usize; 4],
}

impl<'a> View<'a> {
    fn new(data: &'a [f32], layout: &Layout) -> Result<Self> {
        match (layout.dims(), layout.stride()) {
            (&[n, h, w, c], &[s0, s1, s2, s3]) => Ok(Self {
                data,
                off: layout.start_offset(),
                st: [s0, s1, s2, s3],
                dims: [n, h, w, c],
            }),
            (d, _) => candle_core::bail!("patches: expected a 4-D input, got {d:?}"),
        }
    }

    fn contiguous(data: &'a [f32], dims: [usize; 4]) -> Self {
        Self {
            data,
            off: 0,
            st: [dims[1] * dims[2] * dims[3], dims[2] * dims[3], dims[3], 1],
            dims,
        }
    }

    /// samples n0..n0+count
    fn samples(mut self, n0: usize, count: usize) -> Self {
        self.off += n0 * self.st[0];
        self.dims[0] = count;
        self
    }

    fn is_contiguous(&self) -> bool {
        let [_, h, w, c] = self.dims;
        self.st[3] == 1 && self.st[2] == c && self.st[1] == w * c && self.st[0] == h * w * c
    }

    /// whether a row of pixels is one run of memory
    fn rows_contiguous(&self) -> bool {
        self.st[3] == 1 && self.st[2] == self.dims[3]
    }
}

fn f32s(storage: &CpuStorage) -> Result<&[f32]> {
    match storage {
        CpuStorage::F32(v) => Ok(v),
        _ => candle_core::bail!("patches: only f32 is supported"),
    }
}

fn into_f32s(storage: CpuStorage) -> Result<Vec<f32>> {
    match storage {
        CpuStorage::F32(v) => Ok(v),
        _ => candle_core::bail!("patches: expected f32 storage"),
    }
}

/// A tensor's CPU storage and layout, for the backward passes.
fn with_cpu<R>(t: &Tensor, f: impl FnOnce(&CpuStorage, &Layout) -> Result<R>) -> Result<R> {
    let (storage, layout) = t.storage_and_layout();
    match &*storage {
        candle_core::Storage::Cpu(s) => f(s, layout),
        _ => candle_core::bail!("patches: only the CPU is supported"),
    }
}

/// C = A B for 2-D operands given by layouts, row-major or transposed (candle's GEMM).
fn gemm(
    a: &CpuStorage,
    a_l: &Layout,
    b: &CpuStorage,
    b_l: &Layout,
    (m, n, k): (usize, usize, usize),
) -> Result<Vec<f32>> {
    into_f32s(a.matmul(b, (1, m, n, k), a_l, b_l)?)
}

/// A row-major (rows, cols) matrix at `offset`.
fn mat(rows: usize, cols: usize, offset: usize) -> Layout {
    Layout::contiguous_with_offset((rows, cols), offset)
}

/// The (cols, rows) transpose of a row-major (rows, cols) matrix at `offset`.
fn mat_t(rows: usize, cols: usize, offset: usize) -> Layout {
    Layout::new(Shape::from((cols, rows)), vec![1, cols], offset)
}

/// Below this many floats a pass runs on the calling thread: handing work to the pool's
/// threads and waiting for them costs more, and a decode of one sample would wait on threads
/// that other work keeps busy.
const PARALLEL_FLOATS: usize = 1 << 16;

/// `f(i, chunk)` on each `len`-float chunk of `out`, on the pool's threads if `out` is large.
fn for_each_chunk(out: &mut [f32], len: usize, f: impl Fn(usize, &mut [f32]) + Sync + Send) {
    let len = len.max(1);
    if out.len() < PARALLEL_FLOATS {
        out.chunks_mut(len).enumerate().for_each(|(i, c)| f(i, c));
    } else {
        out.par_chunks_mut(len)
            .enumerate()
            .for_each(|(i, c)| f(i, c));
    }
}

/// im2col: the patches of `w` (rows (n, i, j)) from the image `src`, of which the window is
/// at (y0, x0).
fn gather(w: &Window, src: View) -> Result<Vec<f32>> {
    let g = w.g;
    let [n, hs, ws, c] = src.dims;
    if n != g.n || c != g.c || w.y0 + g.ih > hs || w.x0 + g.iw > ws {
        candle_core::bail!("gather: input {:?} does not hold {w:?}", src.dims);
    }
    let row = g.patch_len();
    let per_sample = g.gh * g.gw;
    let rows_per_chunk = (16384 / row.max(1)).clamp(1, per_sample.max(1));
    let mut out = vec![0f32; g.rows() * row];
    let st = src.st;
    let runs = !w.cmajor && src.rows_contiguous();
    for_each_chunk(&mut out, rows_per_chunk * row, |chunk, dst| {
        for (r, dst) in dst.chunks_mut(row).enumerate() {
            let index = chunk * rows_per_chunk + r;
            let (n, ij) = (index / per_sample, index % per_sample);
            let (i, j) = (ij / g.gw, ij % g.gw);
            let (b_lo, b_hi) = g.taps_x(j);
            if b_lo >= b_hi {
                continue;
            }
            let x = j * g.sw + b_lo - g.pw + w.x0;
            let base = src.off + n * st[0] + x * st[2];
            for a in 0..g.kh {
                let Some(y) = g.y(i, a) else { continue };
                let p = base + (y + w.y0) * st[1];
                if runs {
                    // the taps of a patch row are one run of memory on both sides
                    let d = &mut dst[(a * g.kw + b_lo) * c..(a * g.kw + b_hi) * c];
                    let s = &src.data[p..p + d.len()];
                    if w.relu {
                        d.iter_mut().zip(s).for_each(|(d, &s)| *d = s.max(0.0));
                    } else {
                        d.copy_from_slice(s);
                    }
                    continue;
                }
                for b in b_lo..b_hi {
                    let (t, cs) = w.tap(a, b);
                    let p = p + (b - b_lo) * st[2];
                    for ch in 0..c {
                        let s = src.data[p + ch * st[3]];
                        dst[t + ch * cs] = if w.relu { s.max(0.0) } else { s };
                    }
                }
            }
        }
    });
    Ok(out)
}

/// col2im: the patches `cols` of `w` (rows (n, i, j)) added onto `base` (one pixel's C
/// values, repeated; zeros if None) into `out`, an (N, HS, WS, C) contiguous image of which
/// `w`'s window is a part; `after` then runs on each image n while it is in cache. `out` is
/// written before it is read, so fresh pages are never first mapped to the shared zero page
/// and then copied on the write.
fn scatter_into(
    w: &Window,
    cols: &[f32],
    (hs, ws): (usize, usize),
    base: Option<&[f32]>,
    out: &mut [f32],
    after: &(dyn Fn(usize, &mut [f32]) + Sync),
) {
    let g = w.g;
    let c = g.c;
    let row = g.patch_len();
    for_each_chunk(out, hs * ws * c, |n, img| {
        match base {
            Some(px) => img.chunks_mut(c).for_each(|d| d.copy_from_slice(px)),
            None => img.fill(0.0),
        }
        for i in 0..g.gh {
            for j in 0..g.gw {
                let src = &cols[((n * g.gh + i) * g.gw + j) * row..][..row];
                let (b_lo, b_hi) = g.taps_x(j);
                if b_lo >= b_hi {
                    continue;
                }
                let x = j * g.sw + b_lo - g.pw + w.x0;
                for a in 0..g.kh {
                    let Some(y) = g.y(i, a) else { continue };
                    let d = &mut img[((y + w.y0) * ws + x) * c..][..(b_hi - b_lo) * c];
                    if !w.cmajor {
                        let s = &src[(a * g.kw + b_lo) * c..(a * g.kw + b_hi) * c];
                        d.iter_mut().zip(s).for_each(|(d, &s)| *d += s);
                        continue;
                    }
                    for (b, d) in (b_lo..b_hi).zip(d.chunks_mut(c)) {
                        let (t, cs) = w.tap(a, b);
                        for (ch, d) in d.iter_mut().enumerate() {
                            *d += src[t + ch * cs];
                        }
                    }
                }
            }
        }
        after(n, img);
    });
}

/// The gradient of a gather: its patches' gradient `dp` added back into a contiguous image
/// shaped like the input `src`, zero outside the window and where the ReLU was off
/// (`src` < 0: candle's ReLU passes the gradient at 0, and so does this one, so that a fused
/// ReLU trains as the unfused one did).
fn gather_grad(w: &Window, dp: &[f32], src: View) -> Vec<f32> {
    let [n, hs, ws, c] = src.dims;
    let mut out = vec![0f32; n * hs * ws * c];
    let g = w.g;
    let st = src.st;
    let runs = src.rows_contiguous();
    let mask = |n: usize, img: &mut [f32]| {
        if !w.relu {
            return;
        }
        for y in w.y0..w.y0 + g.ih {
            let p = src.off + n * st[0] + y * st[1] + w.x0 * st[2];
            let d = &mut img[(y * ws + w.x0) * c..][..g.iw * c];
            if runs {
                let s = &src.data[p..p + d.len()];
                d.iter_mut()
                    .zip(s)
                    .for_each(|(d, &s)| *d = if s >= 0.0 { *d } else { 0.0 });
            } else {
                for (x, d) in d.chunks_mut(c).enumerate() {
                    for (ch, d) in d.iter_mut().enumerate() {
                        if src.data[p + x * st[2] + ch * st[3]] < 0.0 {
                            *d = 0.0;
                        }
                    }
                }
            }
        }
    };
    scatter_into(w, dp, (hs, ws), None, &mut out, &mask);
    out
}

/// im2col of a window as an op: (N, HS, WS, C) -> patches (rows, patch length).
struct GatherOp(Window);

impl CustomOp1 for GatherOp {
    fn name(&self) -> &'static str {
        "patch-gather"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let out = gather(&self.0, View::new(f32s(storage)?, layout)?)?;
        Ok((
            CpuStorage::F32(out),
            Shape::from((self.0.g.rows(), self.0.g.patch_len())),
        ))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        let grad = grad_res.contiguous()?;
        let dx = with_cpu(&grad, |dp, dl| {
            let dp = &f32s(dp)?[dl.start_offset()..];
            with_cpu(arg, |src, l| {
                Ok(gather_grad(&self.0, dp, View::new(f32s(src)?, l)?))
            })
        })?;
        Ok(Some(Tensor::from_vec(dx, arg.dims(), arg.device())?))
    }
}

/// Adds `bias` to every row of `y` (rows of bias.len()).
fn add_rows(y: &mut [f32], bias: &[f32]) {
    let c = bias.len().max(1);
    for_each_chunk(y, c * (4096 / c).max(1), |_, rows| {
        for r in rows.chunks_mut(c) {
            r.iter_mut().zip(bias).for_each(|(y, b)| *y += b);
        }
    });
}

/// Adds the column sums of `rows` (rows of `into.len()`) into `into`.
fn add_column_sums(into: &mut [f32], rows: &[f32]) {
    let c = into.len().max(1);
    for r in rows.chunks(c) {
        into.iter_mut().zip(r).for_each(|(s, &v)| *s += v);
    }
}

/// What one layer of a [`stack`] computes.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    /// im2col and a GEMM with weight (kh*kw*C_in, C_out), rows in (a, b, c) order
    Conv(Taps),
    /// a GEMM with weight (C_in, C_out*kh*kw), columns in (c, a, b) order (PyTorch's
    /// transposed-conv weight as it is stored), then col2im
    Transpose(Taps),
}

impl Kind {
    /// The patch grid of this layer for one sample of an image (h, w, c) making `c_out`
    /// channels: over the input (Conv) or over the output (Transpose).
    fn grid(&self, (h, w, c): (usize, usize, usize), c_out: usize) -> Result<PatchGeometry> {
        match *self {
            Kind::Conv(t) => PatchGeometry::conv((1, h, w, c), t),
            Kind::Transpose(t) => PatchGeometry::transposed((1, h, w, c_out), t),
        }
    }

    /// The image (h, w, c_out) this layer makes of an input image (h, w, c).
    pub fn image(
        &self,
        input: (usize, usize, usize),
        c_out: usize,
    ) -> Result<(usize, usize, usize)> {
        let g = self.grid(input, c_out)?;
        Ok(match self {
            Kind::Conv(_) => (g.gh, g.gw, c_out),
            Kind::Transpose(_) => (g.ih, g.iw, c_out),
        })
    }
}

/// How a layer's output is stored per sample, (hs, ws, c), and which rows and columns of it
/// are the image the next layer reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutView {
    pub stored: (usize, usize, usize),
    pub y0: usize,
    pub h: usize,
    pub x0: usize,
    pub w: usize,
}

/// One layer of a [`stack`]: what it computes, its weight (any 2-D layout with one unit
/// stride) and bias, whether its input goes through a ReLU first, and how its output is
/// seen: as computed, through `view`, or (`chw`, a dense layer's) as the image (h, w, c)
/// whose pixels its outputs list in PyTorch's (c, h, w) order.
#[derive(Clone, Debug)]
pub struct LayerSpec {
    pub kind: Kind,
    pub weight: Tensor,
    pub bias: Tensor,
    pub relu_in: bool,
    pub view: Option<OutView>,
    pub chw: Option<(usize, usize, usize)>,
}

/// A layer of a stack with its sizes per sample resolved.
#[derive(Clone, Copy, Debug)]
struct Layer {
    transpose: bool,
    /// Conv: the patch grid over the input window; Transpose: the grid of input pixels over
    /// the output image. For one sample (n = 1).
    g: PatchGeometry,
    /// the stored input per sample and the window read from it
    input: [usize; 3],
    y0: usize,
    x0: usize,
    relu: bool,
    c_in: usize,
    c_out: usize,
    /// Conv: the patch length (rows of the weight); Transpose: C_out*kh*kw (its columns)
    k: usize,
    /// weight (row-major), then bias, at this offset of packed parameters
    offset: usize,
    out: [usize; 3],
}

impl Layer {
    fn in_len(&self) -> usize {
        self.input.iter().product()
    }
    fn out_len(&self) -> usize {
        self.out.iter().product()
    }
    /// the weight matrix's (rows, columns)
    fn weight_dims(&self) -> (usize, usize) {
        if self.transpose {
            (self.c_in, self.k)
        } else {
            (self.k, self.c_out)
        }
    }
    fn params(&self) -> usize {
        let (r, c) = self.weight_dims();
        r * c + self.c_out
    }
    /// floats of the largest buffer per sample
    fn largest(&self) -> usize {
        let rows = self.g.gh * self.g.gw;
        if self.transpose {
            (rows * self.c_in).max(rows * self.k).max(self.out_len())
        } else {
            (rows * self.k).max(rows * self.c_out)
        }
    }
    /// what the layer gathers from its input, for `n` samples: its patches (Conv) or the
    /// window's pixels (Transpose)
    fn window(&self, n: usize) -> Window {
        let g = if self.transpose {
            PatchGeometry {
                n,
                c: self.c_in,
                ih: self.g.gh,
                iw: self.g.gw,
                gh: self.g.gh,
                gw: self.g.gw,
                kh: 1,
                kw: 1,
                sh: 1,
                sw: 1,
                ph: 0,
                pw: 0,
            }
        } else {
            PatchGeometry { n, ..self.g }
        };
        Window {
            g,
            y0: self.y0,
            x0: self.x0,
            relu: self.relu,
            cmajor: false,
        }
    }
    /// a transposed layer's taps over its output image, for `n` samples
    fn taps(&self, n: usize) -> Window {
        Window {
            g: PatchGeometry { n, ..self.g },
            y0: 0,
            x0: 0,
            relu: false,
            cmajor: true,
        }
    }
    /// a transposed layer reads its input as a matrix without a gather
    fn reads_plain(&self, src: &View) -> bool {
        let [_, hs, ws, _] = src.dims;
        !self.relu && src.is_contiguous() && self.g.gh == hs && self.g.gw == ws
    }
}

/// The input of a layer for a chunk of samples: its view and the storage that holds it.
struct Source<'a> {
    view: View<'a>,
    storage: &'a CpuStorage,
}

impl Source<'_> {
    /// the input as a (rows, C) matrix, when it is one
    fn matrix(&self, rows: usize, c: usize) -> (&CpuStorage, Layout) {
        (self.storage, mat(rows, c, self.view.off))
    }
}

/// A layer's parameters: its weight matrix (storage and layout) and its bias.
struct Param<'a> {
    w: &'a CpuStorage,
    w_l: Layout,
    b: &'a [f32],
}

/// A stack of layers as one op: x (N, HS, WS, C) -> the last layer's output (N, hs, ws, c),
/// contiguous. With two arguments, (x, every layer's weight then bias packed flat); with
/// three, one layer's (x, weight, bias).
struct Stack {
    layers: Vec<Layer>,
    n: usize,
    /// samples per chunk
    chunk: usize,
    /// keep the activations between layers for the backward pass
    keep: bool,
    /// per chunk, the output of every layer but the last
    cache: Mutex<Vec<Option<Vec<CpuStorage>>>>,
}

/// floats in the largest buffer of a chunk
const CHUNK_FLOATS: usize = 1 << 22;

/// Below this many floats in a layer's largest buffer, all samples together, a stack runs as
/// one op per layer: its weights then need no packing, which at one sample (a decode) would
/// cost more than the layers.
const PACK_FLOATS: usize = 1 << 18;

impl Stack {
    fn chunks(&self) -> impl Iterator<Item = (usize, usize, usize)> + '_ {
        (0..self.n.div_ceil(self.chunk))
            .map(|i| (i, i * self.chunk, self.chunk.min(self.n - i * self.chunk)))
    }

    /// Layer `l` forward for `cn` samples of `src`; its output written into `out` if given
    /// (the last layer), else returned.
    fn layer_forward(
        &self,
        l: usize,
        src: &Source,
        cn: usize,
        p: &Param,
        out: Option<&mut [f32]>,
    ) -> Result<Option<CpuStorage>> {
        let layer = &self.layers[l];
        let win = layer.window(cn);
        let rows = win.g.rows();
        if layer.transpose {
            let gathered;
            let (xm, xm_l) = if layer.reads_plain(&src.view) {
                src.matrix(rows, layer.c_in)
            } else {
                gathered = CpuStorage::F32(gather(&win, src.view)?);
                (&gathered, mat(rows, layer.c_in, 0))
            };
            let cols = gemm(xm, &xm_l, p.w, &p.w_l, (rows, layer.k, layer.c_in))?;
            let mut own = Vec::new();
            let y = match out {
                Some(out) => out,
                None => {
                    own = vec![0f32; cn * layer.out_len()];
                    &mut own[..]
                }
            };
            let taps = layer.taps(cn);
            scatter_into(
                &taps,
                &cols,
                (taps.g.ih, taps.g.iw),
                Some(p.b),
                y,
                &|_, _| {},
            );
            Ok((!own.is_empty()).then_some(CpuStorage::F32(own)))
        } else {
            let patches = CpuStorage::F32(gather(&win, src.view)?);
            let mut y = gemm(
                &patches,
                &mat(rows, layer.k, 0),
                p.w,
                &p.w_l,
                (rows, layer.c_out, layer.k),
            )?;
            drop(patches);
            match out {
                Some(out) => {
                    out.copy_from_slice(&y);
                    add_rows(out, p.b);
                    Ok(None)
                }
                None => {
                    add_rows(&mut y, p.b);
                    Ok(Some(CpuStorage::F32(y)))
                }
            }
        }
    }

    /// Every layer forward for samples n0..n0+cn: the outputs of all but the last, the last's
    /// written into `out`.
    fn chunk_forward(
        &self,
        x: &Source,
        (n0, cn): (usize, usize),
        params: &[Param],
        out: &mut [f32],
    ) -> Result<Vec<CpuStorage>> {
        let mut acts: Vec<CpuStorage> = Vec::with_capacity(self.layers.len());
        let last = self.layers.len() - 1;
        for (l, p) in params.iter().enumerate() {
            let y = {
                let src = self.source(l, x, n0, cn, &acts)?;
                let out = if l == last { Some(&mut *out) } else { None };
                self.layer_forward(l, &src, cn, p, out)?
            };
            if let Some(y) = y {
                acts.push(y);
            }
        }
        Ok(acts)
    }

    /// The input of layer `l` for samples n0..n0+cn.
    fn source<'a>(
        &self,
        l: usize,
        x: &Source<'a>,
        n0: usize,
        cn: usize,
        acts: &'a [CpuStorage],
    ) -> Result<Source<'a>> {
        Ok(if l == 0 {
            Source {
                view: x.view.samples(n0, cn),
                storage: x.storage,
            }
        } else {
            let [h, w, c] = self.layers[l].input;
            Source {
                view: View::contiguous(f32s(&acts[l - 1])?, [cn, h, w, c]),
                storage: &acts[l - 1],
            }
        })
    }

    /// Layer `l` backward for `cn` samples: adds its weight's and bias's gradients into `dw`
    /// (row-major) and `db`, and returns its input's gradient (contiguous, the stored input's
    /// shape) if `need_dx`. `dy` (at `dy_off`) is its output's gradient.
    #[allow(clippy::too_many_arguments)]
    fn layer_backward(
        &self,
        l: usize,
        src: &Source,
        cn: usize,
        (dy, dy_off): (&CpuStorage, usize),
        p: &Param,
        (dw, db): (&mut [f32], &mut [f32]),
        need_dx: bool,
    ) -> Result<Option<Vec<f32>>> {
        let layer = &self.layers[l];
        let add = |into: &mut [f32], from: &[f32]| {
            into.iter_mut().zip(from).for_each(|(a, b)| *a += b);
        };
        let win = layer.window(cn);
        let rows = win.g.rows();
        let dy_data = &f32s(dy)?[dy_off..dy_off + cn * layer.out_len()];
        add_column_sums(db, dy_data);
        if layer.transpose {
            let [oh, ow, c_out] = layer.out;
            let dy_view = View::contiguous(dy_data, [cn, oh, ow, c_out]);
            let dcols = CpuStorage::F32(gather(&layer.taps(cn), dy_view)?);
            let plain = layer.reads_plain(&src.view);
            let gathered;
            let (xm, xm_l) = if plain {
                src.matrix(rows, layer.c_in)
            } else {
                gathered = CpuStorage::F32(gather(&win, src.view)?);
                (&gathered, mat(rows, layer.c_in, 0))
            };
            let xm_t = xm_l.transpose(0, 1)?;
            let d = gemm(
                xm,
                &xm_t,
                &dcols,
                &mat(rows, layer.k, 0),
                (layer.c_in, layer.k, rows),
            )?;
            add(dw, &d);
            if !need_dx {
                return Ok(None);
            }
            let w_t = p.w_l.transpose(0, 1)?;
            let dxm = gemm(
                &dcols,
                &mat(rows, layer.k, 0),
                p.w,
                &w_t,
                (rows, layer.c_in, layer.k),
            )?;
            Ok(Some(if plain {
                dxm
            } else {
                gather_grad(&win, &dxm, src.view)
            }))
        } else {
            let patches = CpuStorage::F32(gather(&win, src.view)?);
            let dy_l = mat(rows, layer.c_out, dy_off);
            let d = gemm(
                &patches,
                &mat_t(rows, layer.k, 0),
                dy,
                &dy_l,
                (layer.k, layer.c_out, rows),
            )?;
            add(dw, &d);
            drop(patches);
            if !need_dx {
                return Ok(None);
            }
            let w_t = p.w_l.transpose(0, 1)?;
            let dp = gemm(dy, &dy_l, p.w, &w_t, (rows, layer.k, layer.c_out))?;
            Ok(Some(gather_grad(&win, &dp, src.view)))
        }
    }

    fn forward(
        &self,
        x: &CpuStorage,
        x_l: &Layout,
        params: &[Param],
    ) -> Result<(CpuStorage, Shape)> {
        let x = Source {
            view: View::new(f32s(x)?, x_l)?,
            storage: x,
        };
        let last = self.layers[self.layers.len() - 1];
        let per = last.out_len();
        let mut out = vec![0f32; self.n * per];
        let mut cache = Vec::new();
        for (_, n0, cn) in self.chunks() {
            let acts =
                self.chunk_forward(&x, (n0, cn), params, &mut out[n0 * per..][..cn * per])?;
            cache.push(self.keep.then_some(acts));
        }
        if self.keep {
            *self
                .cache
                .lock()
                .map_err(|_| candle_core::Error::Msg("stack: cache poisoned".into()))? = cache;
        }
        let [h, w, c] = last.out;
        Ok((CpuStorage::F32(out), Shape::from((self.n, h, w, c))))
    }

    /// x's gradient if it needs one, and the parameters' (each layer's weight, row-major,
    /// then bias, packed).
    fn backward(
        &self,
        x: &Tensor,
        params: &[Param],
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Vec<f32>)> {
        let grad = grad.contiguous()?;
        let mut cache = std::mem::take(
            &mut *self
                .cache
                .lock()
                .map_err(|_| candle_core::Error::Msg("stack: cache poisoned".into()))?,
        );
        let x_tracks = x.track_op();
        let in_len = self.layers[0].in_len();
        let mut dx = if x_tracks {
            vec![0f32; self.n * in_len]
        } else {
            Vec::new()
        };
        let mut dparams = vec![0f32; self.layers.iter().map(Layer::params).sum()];
        let per = self.layers[self.layers.len() - 1].out_len();
        with_cpu(x, |xs, x_l| {
            with_cpu(&grad, |gs, g_l| {
                let x = Source {
                    view: View::new(f32s(xs)?, x_l)?,
                    storage: xs,
                };
                for (i, n0, cn) in self.chunks() {
                    let acts = match cache.get_mut(i).and_then(Option::take) {
                        Some(acts) => acts,
                        None => {
                            let mut scratch = vec![0f32; cn * per];
                            self.chunk_forward(&x, (n0, cn), params, &mut scratch)?
                        }
                    };
                    let mut dy: Option<CpuStorage> = None;
                    for l in (0..self.layers.len()).rev() {
                        let layer = &self.layers[l];
                        let src = self.source(l, &x, n0, cn, &acts)?;
                        let d = match &dy {
                            Some(d) => (d, 0),
                            None => (gs, g_l.start_offset() + n0 * per),
                        };
                        let (r, c) = layer.weight_dims();
                        let (dw, db) = dparams[layer.offset..layer.offset + layer.params()]
                            .split_at_mut(r * c);
                        let need_dx = l > 0 || x_tracks;
                        let dx_l =
                            self.layer_backward(l, &src, cn, d, &params[l], (dw, db), need_dx)?;
                        dy = dx_l.map(CpuStorage::F32);
                    }
                    if let Some(d) = dy {
                        dx[n0 * in_len..][..cn * in_len].copy_from_slice(f32s(&d)?);
                    }
                }
                Ok(())
            })
        })?;
        let dx = if x_tracks {
            Some(Tensor::from_vec(dx, x.dims(), x.device())?)
        } else {
            None
        };
        Ok((dx, dparams))
    }

    /// The packed parameters: one storage, each layer's weight (row-major) then bias at its
    /// offset.
    fn packed<'a>(&self, p: &'a CpuStorage, p_l: &Layout) -> Result<Vec<Param<'a>>> {
        let (p_off, _) = p_l
            .contiguous_offsets()
            .ok_or_else(|| candle_core::Error::Msg("stack: parameters not contiguous".into()))?;
        let data = f32s(p)?;
        Ok(self
            .layers
            .iter()
            .map(|l| {
                let (r, c) = l.weight_dims();
                let at = p_off + l.offset;
                Param {
                    w: p,
                    w_l: mat(r, c, at),
                    b: &data[at + r * c..at + r * c + l.c_out],
                }
            })
            .collect())
    }

    /// One layer's own weight and bias.
    fn single<'a>(
        &self,
        w: &'a CpuStorage,
        w_l: &Layout,
        b: &'a CpuStorage,
        b_l: &Layout,
    ) -> Result<Param<'a>> {
        let layer = &self.layers[0];
        let (r, c) = layer.weight_dims();
        let s = w_l.stride();
        if w_l.dims() != [r, c] || (s[0] != 1 && s[1] != 1) {
            candle_core::bail!("stack: weight {:?} {s:?} for ({r}, {c})", w_l.dims());
        }
        let Some((b0, b1)) = b_l.contiguous_offsets() else {
            candle_core::bail!("stack: bias not contiguous");
        };
        if b1 - b0 != layer.c_out {
            candle_core::bail!("stack: bias {:?} for {} outputs", b_l.dims(), layer.c_out);
        }
        Ok(Param {
            w,
            w_l: w_l.clone(),
            b: &f32s(b)?[b0..b1],
        })
    }
}

/// Layers to train or not: every layer's weight then bias, packed in one tensor.
impl CustomOp2 for Stack {
    fn name(&self) -> &'static str {
        "patch-stack"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        x_l: &Layout,
        p: &CpuStorage,
        p_l: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        self.forward(x, x_l, &self.packed(p, p_l)?)
    }

    fn bwd(
        &self,
        x: &Tensor,
        params: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (dx, dparams) = with_cpu(params, |p, p_l| {
            self.backward(x, &self.packed(p, p_l)?, grad)
        })?;
        Ok((
            dx,
            Some(Tensor::from_vec(dparams, params.dims(), params.device())?),
        ))
    }
}

/// One layer: (x, weight, bias), the weight read in its own layout.
impl CustomOp3 for Stack {
    fn name(&self) -> &'static str {
        "patch-layer"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        x_l: &Layout,
        w: &CpuStorage,
        w_l: &Layout,
        b: &CpuStorage,
        b_l: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        self.forward(x, x_l, &[self.single(w, w_l, b, b_l)?])
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (dx, mut dparams) = with_cpu(w, |ws, w_l| {
            with_cpu(b, |bs, b_l| {
                self.backward(x, &[self.single(ws, w_l, bs, b_l)?], grad)
            })
        })?;
        let db = dparams.split_off(w.elem_count());
        Ok((
            dx,
            Some(Tensor::from_vec(dparams, w.dims(), w.device())?),
            Some(Tensor::from_vec(db, b.dims(), b.device())?),
        ))
    }
}

/// How [`stack_with`] runs the layers (tests try every way).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) enum Mode {
    /// as one op in chunks of a size for the buffers, or one op per layer for a small batch
    Auto,
    /// as one op, `n` samples at a time
    Packed(usize),
    /// one op per layer
    PerLayer,
}

/// Runs `layers` on `x` ([`Stack`]); the result holds the last layer's output (its window as
/// the layer's view says), with no ReLU pending.
pub fn stack(x: &Act, layers: &[LayerSpec]) -> Result<Act> {
    stack_with(x, layers, Mode::Auto)
}

/// [`stack`], run as `mode` says.
pub(crate) fn stack_with(x: &Act, layers: &[LayerSpec], mode: Mode) -> Result<Act> {
    if layers.is_empty() {
        return Ok(x.clone());
    }
    let (n, hs, ws, _) = x.t.dims4()?;
    let (mut h, mut w, mut c) = (x.h, x.w, x.dims()?.3);
    let (mut stored, mut y0, mut x0) = ([hs, ws, c], x.y0, x.x0);
    let mut resolved = Vec::with_capacity(layers.len());
    let mut offset = 0;
    for (i, spec) in layers.iter().enumerate() {
        let relu = spec.relu_in || (i == 0 && x.relu);
        let transpose = matches!(spec.kind, Kind::Transpose(_));
        let (c_out, k) = match spec.weight.dims2()? {
            (_, k) if transpose => (spec.bias.dims1()?, k),
            (k, c_out) => (c_out, k),
        };
        let g = spec.kind.grid((h, w, c), c_out)?;
        let want = if transpose {
            (c, g.patch_len())
        } else {
            (g.patch_len(), c_out)
        };
        if spec.weight.dims2()? != want || spec.bias.dims1()? != c_out {
            candle_core::bail!(
                "stack layer {i}: weight {:?} and bias {:?} for ({}, {})",
                spec.weight.dims(),
                spec.bias.dims(),
                want.0,
                want.1
            );
        }
        let out_image = if transpose {
            [g.ih, g.iw, c_out]
        } else {
            [g.gh, g.gw, c_out]
        };
        let mut layer = Layer {
            transpose,
            g,
            input: stored,
            y0,
            x0,
            relu,
            c_in: c,
            c_out,
            k,
            offset,
            out: out_image,
        };
        // how the output is stored and read
        let s = match (spec.view, spec.chw) {
            (Some(v), None) => {
                let s = [v.stored.0, v.stored.1, v.stored.2];
                if s.iter().product::<usize>() != layer.out_len()
                    || v.y0 + v.h > s[0]
                    || v.x0 + v.w > s[1]
                    || (transpose && s != out_image)
                {
                    candle_core::bail!("stack layer {i}: view {v:?} of an output {out_image:?}");
                }
                (y0, h, x0, w) = (v.y0, v.h, v.x0, v.w);
                s
            }
            (None, Some((ih, iw, ic))) => {
                if transpose || out_image != [1, 1, ih * iw * ic] {
                    candle_core::bail!(
                        "stack layer {i}: output {out_image:?} seen as {ih}x{iw}x{ic}"
                    );
                }
                (y0, h, x0, w) = (0, ih, 0, iw);
                [ih, iw, ic]
            }
            (None, None) => {
                (y0, h, x0, w) = (0, out_image[0], 0, out_image[1]);
                out_image
            }
            (Some(_), Some(_)) => candle_core::bail!("stack layer {i}: a view and an image"),
        };
        c = s[2];
        stored = s;
        layer.out = s;
        offset += layer.params();
        resolved.push(layer);
    }
    let largest = resolved
        .iter()
        .map(Layer::largest)
        .max()
        .unwrap_or(1)
        .max(1);
    let keep = x.t.track_op()
        || layers
            .iter()
            .any(|s| s.weight.track_op() || s.bias.track_op());
    let per_layer = match mode {
        Mode::Auto => n * largest <= PACK_FLOATS,
        Mode::Packed(_) => false,
        Mode::PerLayer => true,
    };
    if per_layer {
        let mut act = x.clone();
        for (i, (spec, mut layer)) in layers.iter().zip(resolved).enumerate() {
            // this layer reads the tensor as it is (a dense layer's may be a strided view)
            let (_, ths, tws, tc) = act.t.dims4()?;
            layer.input = [ths, tws, tc];
            layer.offset = 0;
            if spec.chw.is_some() {
                // the weight as it is: outputs in (c, h, w) order, seen as an image below
                layer.out = [1, 1, layer.c_out];
            }
            layer.relu = spec.relu_in || (i == 0 && x.relu);
            let op = Stack {
                layers: vec![layer],
                n,
                chunk: n.max(1),
                keep,
                cache: Mutex::new(Vec::new()),
            };
            let t = act.t.apply_op3(&spec.weight, &spec.bias, op)?;
            act = match (spec.view, spec.chw) {
                (Some(v), _) => Act {
                    t,
                    y0: v.y0,
                    h: v.h,
                    x0: v.x0,
                    w: v.w,
                    relu: false,
                },
                (None, Some((ih, iw, ic))) => {
                    Act::new(t.reshape((n, ic, ih, iw))?.permute((0, 2, 3, 1))?)?
                }
                (None, None) => Act::new(t)?,
            };
        }
        return Ok(act);
    }
    let chunk = match mode {
        Mode::Packed(chunk) => chunk,
        _ => CHUNK_FLOATS / largest,
    }
    .clamp(1, n.max(1));
    let mut params = Vec::with_capacity(2 * layers.len());
    for spec in layers {
        let (weight, bias) = match spec.chw {
            // outputs from (c, h, w) to (h, w, c) order: the weight's columns and the bias
            Some((ih, iw, ic)) => (
                spec.weight
                    .reshape((spec.weight.dim(0)?, ic, ih * iw))?
                    .transpose(1, 2)?
                    .flatten_all()?,
                spec.bias.reshape((ic, ih * iw))?.t()?.flatten_all()?,
            ),
            None => (spec.weight.flatten_all()?, spec.bias.flatten_all()?),
        };
        params.push(weight);
        params.push(bias);
    }
    let op = Stack {
        keep,
        layers: resolved,
        n,
        chunk,
        cache: Mutex::new(Vec::new()),
    };
    let t = x.t.apply_op2(&Tensor::cat(&params, 0)?, op)?;
    Ok(Act {
        t,
        y0,
        h,
        x0,
        w,
        relu: false,
    })
}
