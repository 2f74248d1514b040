//! Convolutions and transposed convolutions on the CPU as candle custom ops with backward
//! passes: each layer is one pass over memory to gather patches (im2col) or scatter them
//! (col2im) and one GEMM forward, two GEMMs backward. Activations between layers stay
//! channels-last (N, H, W, C) so that a patch's taps are contiguous runs of channels; a ReLU
//! and a crop between two layers are applied by the next layer's gather ([`Act`]), so no
//! layer boundary costs a pass of its own.
//!
//! A patch grid relates gh x gw positions, each kh x kw taps of c channels, to an image
//! (ih x iw x c): tap (a, b) of patch (i, j) is pixel (i*sh + a - ph, j*sw + b - pw); taps in
//! the padding read zero (gather) or are dropped (scatter). Gathering is a convolution's input
//! side, scattering a transposed convolution's output side, and each is the other's gradient.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, CustomOp3, Layout, Result, Shape, Tensor};
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

impl PatchGeometry {
    /// The grid of a convolution's patches over an (n, ih, iw, c) image.
    pub fn conv(
        (n, ih, iw, c): (usize, usize, usize, usize),
        (kh, kw): (usize, usize),
        (sh, sw): (usize, usize),
        (ph, pw): (usize, usize),
    ) -> Result<Self> {
        if ih + 2 * ph < kh || iw + 2 * pw < kw || sh == 0 || sw == 0 {
            candle_core::bail!(
                "a {kh}x{kw} kernel (stride {sh}x{sw}, padding {ph}x{pw}) does not fit a {ih}x{iw} image"
            );
        }
        Ok(Self {
            n,
            c,
            ih,
            iw,
            gh: (ih + 2 * ph - kh) / sh + 1,
            gw: (iw + 2 * pw - kw) / sw + 1,
            kh,
            kw,
            sh,
            sw,
            ph,
            pw,
        })
    }

    /// The image a transposed convolution writes from a grid of (n, gh, gw) patches: its
    /// height (gh-1)*sh + kh - 2*ph, its width likewise.
    pub fn transposed(
        (n, gh, gw, c): (usize, usize, usize, usize),
        (kh, kw): (usize, usize),
        (sh, sw): (usize, usize),
        (ph, pw): (usize, usize),
    ) -> Result<Self> {
        let (h, w) = ((gh - 1) * sh + kh, (gw - 1) * sw + kw);
        if h <= 2 * ph || w <= 2 * pw || gh == 0 || gw == 0 {
            candle_core::bail!(
                "a transposed {kh}x{kw} kernel with padding {ph}x{pw} leaves no image"
            );
        }
        Ok(Self {
            n,
            c,
            ih: h - 2 * ph,
            iw: w - 2 * pw,
            gh,
            gw,
            kh,
            kw,
            sh,
            sw,
            ph,
            pw,
        })
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
    #[inline]
    fn x(&self, j: usize, b: usize) -> Option<usize> {
        (j * self.sw + b)
            .checked_sub(self.pw)
            .filter(|&x| x < self.iw)
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

    fn is_plain(&self) -> Result<bool> {
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
        let g = PatchGeometry::conv((n, h, w, c), (1, 1), (1, 1), (0, 0))?;
        self.t
            .apply_op1(GatherOp(self.window(g)))?
            .reshape((n, h, w, c))
    }

    /// The image as a (N, C, H, W) tensor (a channels-last view).
    pub fn to_nchw(&self) -> Result<Tensor> {
        self.to_nhwc()?.permute((0, 3, 1, 2))
    }

    fn window(&self, g: PatchGeometry) -> Window {
        Window {
            g,
            y0: self.y0,
            x0: self.x0,
            relu: self.relu,
            ones: false,
        }
    }
}

/// A patch grid over the window of an [`Act`], and whether a column of ones follows each
/// patch (a bias row in the GEMM).
#[derive(Clone, Copy, Debug)]
struct Window {
    g: PatchGeometry,
    y0: usize,
    x0: usize,
    relu: bool,
    ones: bool,
}

impl Window {
    fn row_len(&self) -> usize {
        self.g.patch_len() + usize::from(self.ones)
    }
}

/// The f32 data of a CPU storage.
fn f32s<'a>(storage: &'a CpuStorage, op: &str) -> Result<&'a [f32]> {
    match storage {
        CpuStorage::F32(v) => Ok(v),
        _ => candle_core::bail!("{op}: only f32 is supported"),
    }
}

fn into_f32s(storage: CpuStorage) -> Result<Vec<f32>> {
    match storage {
        CpuStorage::F32(v) => Ok(v),
        _ => candle_core::bail!("expected f32 storage"),
    }
}

/// A tensor's f32 data as (data, layout), for the backward passes.
fn with_f32<R>(t: &Tensor, f: impl FnOnce(&[f32], &Layout) -> Result<R>) -> Result<R> {
    let (storage, layout) = t.storage_and_layout();
    match &*storage {
        candle_core::Storage::Cpu(s) => f(f32s(s, "patches")?, layout),
        _ => candle_core::bail!("patches: only the CPU is supported"),
    }
}

/// C = A B for row-major or transposed 2-D operands given by layouts (candle's GEMM).
fn gemm(
    a: &CpuStorage,
    a_l: &Layout,
    b: &CpuStorage,
    b_l: &Layout,
    (m, n, k): (usize, usize, usize),
) -> Result<Vec<f32>> {
    into_f32s(a.matmul(b, (1, m, n, k), a_l, b_l)?)
}

/// A row-major (rows, cols) matrix's layout, or its transpose's.
fn mat(rows: usize, cols: usize, offset: usize) -> Layout {
    Layout::contiguous_with_offset((rows, cols), offset)
}
fn mat_t(rows: usize, cols: usize) -> Layout {
    // the (cols, rows) transpose of a row-major (rows, cols) matrix
    Layout::new(Shape::from((cols, rows)), vec![1, cols], 0)
}

/// The 4 strides and offset of an (N, HS, WS, C) input, checked.
fn strides4<'a>(layout: &'a Layout, op: &str) -> Result<(&'a [usize], usize)> {
    if layout.dims().len() != 4 {
        candle_core::bail!("{op}: expected a 4-D input, got {:?}", layout.dims());
    }
    Ok((layout.stride(), layout.start_offset()))
}

/// im2col: the patches of `w` (rows (n, i, j), columns (a, b, c) then an optional 1) from the
/// image in `src` laid out by `layout` (N, HS, WS, C).
fn gather(w: &Window, src: &[f32], layout: &Layout) -> Result<Vec<f32>> {
    let g = w.g;
    let (st, off) = strides4(layout, "gather")?;
    let (hs, ws) = (layout.dims()[1], layout.dims()[2]);
    if layout.dims()[0] != g.n || layout.dims()[3] != g.c || w.y0 + g.ih > hs || w.x0 + g.iw > ws {
        candle_core::bail!("gather: input {:?} does not hold {w:?}", layout.dims());
    }
    let row = w.row_len();
    let rows_per_chunk = (16384 / row.max(1)).clamp(1, g.gh * g.gw);
    let mut out = vec![0f32; g.rows() * row];
    let c = g.c;
    out.par_chunks_mut(rows_per_chunk * row)
        .enumerate()
        .for_each(|(chunk, dst)| {
            for (r, dst) in dst.chunks_mut(row).enumerate() {
                let index = chunk * rows_per_chunk + r;
                let (n, ij) = (index / (g.gh * g.gw), index % (g.gh * g.gw));
                let (i, j) = (ij / g.gw, ij % g.gw);
                let base = off + n * st[0];
                for a in 0..g.kh {
                    let Some(y) = g.y(i, a) else { continue };
                    for b in 0..g.kw {
                        let Some(x) = g.x(j, b) else { continue };
                        let p = base + (y + w.y0) * st[1] + (x + w.x0) * st[2];
                        let d = &mut dst[(a * g.kw + b) * c..][..c];
                        if st[3] == 1 {
                            let s = &src[p..p + c];
                            if w.relu {
                                for (d, &s) in d.iter_mut().zip(s) {
                                    *d = s.max(0.0);
                                }
                            } else {
                                d.copy_from_slice(s);
                            }
                        } else {
                            for (ch, d) in d.iter_mut().enumerate() {
                                let s = src[p + ch * st[3]];
                                *d = if w.relu { s.max(0.0) } else { s };
                            }
                        }
                    }
                }
                if w.ones {
                    dst[row - 1] = 1.0;
                }
            }
        });
    Ok(out)
}

/// col2im: adds the patches `cols` (rows (n, i, j), row length `row`, taps (a, b, c) first)
/// into `out`, an (N, HS, WS, C) contiguous image of which the window at (y0, x0) is `g`'s
/// image; `after` then runs on each image n while it is in cache.
fn scatter_into(
    g: &PatchGeometry,
    cols: &[f32],
    row: usize,
    (y0, x0, hs, ws): (usize, usize, usize, usize),
    out: &mut [f32],
    after: &(dyn Fn(usize, &mut [f32]) + Sync),
) {
    let c = g.c;
    let per = hs * ws * c;
    out.par_chunks_mut(per).enumerate().for_each(|(n, img)| {
        for i in 0..g.gh {
            for j in 0..g.gw {
                let src = &cols[((n * g.gh + i) * g.gw + j) * row..][..row];
                for a in 0..g.kh {
                    let Some(y) = g.y(i, a) else { continue };
                    for b in 0..g.kw {
                        let Some(x) = g.x(j, b) else { continue };
                        let d = &mut img[((y + y0) * ws + x + x0) * c..][..c];
                        let s = &src[(a * g.kw + b) * c..][..c];
                        for (d, &s) in d.iter_mut().zip(s) {
                            *d += s;
                        }
                    }
                }
            }
        }
        after(n, img);
    });
}

/// The gradient of a gather: its patches' gradient `dp` (row length `w.row_len()`) added
/// back into an image shaped like the input (`layout`), zero outside the window and where
/// the ReLU was off (input `src` <= 0).
fn gather_grad(w: &Window, dp: &[f32], src: &[f32], layout: &Layout) -> Result<Vec<f32>> {
    let (st, off) = strides4(layout, "gather backward")?;
    let (n, hs, ws, c) = (
        layout.dims()[0],
        layout.dims()[1],
        layout.dims()[2],
        layout.dims()[3],
    );
    let mut out = vec![0f32; n * hs * ws * c];
    let g = w.g;
    let mask = |n: usize, img: &mut [f32]| {
        if !w.relu {
            return;
        }
        for y in w.y0..w.y0 + g.ih {
            for x in w.x0..w.x0 + g.iw {
                let p = off + n * st[0] + y * st[1] + x * st[2];
                let d = &mut img[(y * ws + x) * c..][..c];
                for (ch, d) in d.iter_mut().enumerate() {
                    if src[p + ch * st[3]] <= 0.0 {
                        *d = 0.0;
                    }
                }
            }
        }
    };
    scatter_into(&g, dp, w.row_len(), (w.y0, w.x0, hs, ws), &mut out, &mask);
    Ok(out)
}

/// im2col of an [`Act`]'s window as an op: (N, HS, WS, C) -> patches (rows, row length).
struct GatherOp(Window);

impl CustomOp1 for GatherOp {
    fn name(&self) -> &'static str {
        "patch-gather"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let out = gather(&self.0, f32s(storage, self.name())?, layout)?;
        Ok((
            CpuStorage::F32(out),
            Shape::from((self.0.g.rows(), self.0.row_len())),
        ))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        let grad = grad_res.contiguous()?;
        let dx = with_f32(&grad, |dp, dl| {
            let dp = &dp[dl.start_offset()..];
            with_f32(arg, |src, l| gather_grad(&self.0, dp, src, l))
        })?;
        Ok(Some(Tensor::from_vec(dx, arg.dims(), arg.device())?))
    }
}

/// A convolution: patches of x's window (and a column of ones) times the weight matrix
/// (patch_len, C_out) over the bias row: (x (N, HS, WS, C), weight, bias) -> (N, GH, GW, C_out).
pub struct ConvOp {
    window: Window,
}

impl ConvOp {
    /// The convolution of `x`'s window with grid `g`: weight (kh*kw*C, C_out) with rows in
    /// (a, b, c) order, bias (C_out) -> (N, GH, GW, C_out), contiguous.
    pub fn apply(x: &Act, g: PatchGeometry, weight: &Tensor, bias: &Tensor) -> Result<Tensor> {
        let mut window = x.window(g);
        window.ones = true;
        x.t.apply_op3(weight, bias, Self { window })
    }

    /// The weight matrix with the bias as its last row, (patch_len + 1, C_out), contiguous.
    fn augmented(&self, w: &[f32], w_l: &Layout, b: &[f32], b_l: &Layout) -> Result<Vec<f32>> {
        let k = self.window.g.patch_len();
        let (rows, cols) = match w_l.dims() {
            &[r, c] => (r, c),
            d => candle_core::bail!("conv: weight {d:?} is not a matrix"),
        };
        if rows != k || b_l.dims() != [cols] {
            candle_core::bail!(
                "conv: weight {:?} and bias {:?} do not fit patches of {k}",
                w_l.dims(),
                b_l.dims()
            );
        }
        let (ws, wo) = (w_l.stride(), w_l.start_offset());
        let (bs, bo) = (b_l.stride()[0], b_l.start_offset());
        let mut out = Vec::with_capacity((k + 1) * cols);
        for r in 0..k {
            out.extend((0..cols).map(|c| w[wo + r * ws[0] + c * ws[1]]));
        }
        out.extend((0..cols).map(|c| b[bo + c * bs]));
        Ok(out)
    }
}

impl CustomOp3 for ConvOp {
    fn name(&self) -> &'static str {
        "patch-conv"
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
        let g = self.window.g;
        let k1 = self.window.row_len();
        let wa = self.augmented(f32s(w, "conv")?, w_l, f32s(b, "conv")?, b_l)?;
        let c_out = wa.len() / k1;
        let patches = CpuStorage::F32(gather(&self.window, f32s(x, "conv")?, x_l)?);
        let y = gemm(
            &patches,
            &mat(g.rows(), k1, 0),
            &CpuStorage::F32(wa),
            &mat(k1, c_out, 0),
            (g.rows(), c_out, k1),
        )?;
        Ok((CpuStorage::F32(y), Shape::from((g.n, g.gh, g.gw, c_out))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let g = self.window.g;
        let (m, k1) = (g.rows(), self.window.row_len());
        let t0 = std::time::Instant::now();
        let grad = grad.contiguous()?;
        let wa = with_f32(w, |w, w_l| {
            with_f32(b, |b, b_l| self.augmented(w, w_l, b, b_l))
        })?;
        let c_out = wa.len() / k1;
        let wa = CpuStorage::F32(wa);
        let patches = CpuStorage::F32(with_f32(x, |x, l| gather(&self.window, x, l))?);
        let (storage, dl) = grad.storage_and_layout();
        let candle_core::Storage::Cpu(dy) = &*storage else {
            candle_core::bail!("conv: only the CPU is supported")
        };
        let dy_l = mat(m, c_out, dl.start_offset());
        // dW = P^T dY, its last row the bias's gradient
        let mut dwa = gemm(&patches, &mat_t(m, k1), dy, &dy_l, (k1, c_out, m))?;
        drop(patches);
        let db = dwa.split_off((k1 - 1) * c_out);
        let dx = if x.track_op() {
            let dp = gemm(dy, &dy_l, &wa, &mat_t(k1, c_out), (m, k1, c_out))?;
            let dx = with_f32(x, |src, l| gather_grad(&self.window, &dp, src, l))?;
            Some(Tensor::from_vec(dx, x.dims(), x.device())?)
        } else {
            None
        };
        prof(&format!("conv bwd m{m} k{k1} n{c_out}"), t0);
        Ok((
            dx,
            Some(Tensor::from_vec(dwa, w.dims(), w.device())?),
            Some(Tensor::from_vec(db, b.dims(), b.device())?),
        ))
    }
}

/// A transposed convolution: x's window (N*H*W rows of C_in) times the weight matrix
/// (C_in, kh*kw*C_out), columns in (a, b, c) order, scattered (col2im) onto the bias, then an
/// optional ReLU: (x (N, HS, WS, C_in), weight, bias) -> (N, OH, OW, C_out), contiguous.
pub struct TransposeOp {
    /// x's window as a 1x1 grid
    input: Window,
    /// the grid of x's pixels over the output image
    out: PatchGeometry,
    relu: bool,
}

impl TransposeOp {
    pub fn apply(
        x: &Act,
        out: PatchGeometry,
        weight: &Tensor,
        bias: &Tensor,
        relu: bool,
    ) -> Result<Tensor> {
        let (n, h, w, c) = x.dims()?;
        let input = x.window(PatchGeometry::conv((n, h, w, c), (1, 1), (1, 1), (0, 0))?);
        x.t.apply_op3(weight, bias, Self { input, out, relu })
    }

    fn is_plain(&self, l: &Layout) -> bool {
        let w = &self.input;
        !w.relu && l.is_contiguous() && l.dims()[1] == w.g.ih && l.dims()[2] == w.g.iw
    }

    /// x's window as a (rows, C_in) matrix: x itself when it is one, else gathered.
    fn input_matrix(&self, x: &CpuStorage, l: &Layout) -> Result<(Option<CpuStorage>, Layout)> {
        let (m, c) = (self.input.g.rows(), self.input.g.c);
        Ok(if self.is_plain(l) {
            (None, mat(m, c, l.start_offset()))
        } else {
            let cols = gather(&self.input, f32s(x, "conv-transpose")?, l)?;
            (Some(CpuStorage::F32(cols)), mat(m, c, 0))
        })
    }
}

impl CustomOp3 for TransposeOp {
    fn name(&self) -> &'static str {
        "patch-conv-transpose"
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
        let o = self.out;
        let (m, c_in, k) = (self.input.g.rows(), self.input.g.c, o.patch_len());
        if w_l.dims() != [c_in, k] || b_l.dims() != [o.c] {
            candle_core::bail!(
                "conv-transpose: weight {:?} and bias {:?} do not fit {c_in} -> {k}",
                w_l.dims(),
                b_l.dims()
            );
        }
        let (xm, xm_l) = self.input_matrix(x, x_l)?;
        let cols = gemm(xm.as_ref().unwrap_or(x), &xm_l, w, w_l, (m, k, c_in))?;
        drop(xm);
        let (b, bs, bo) = (f32s(b, self.name())?, b_l.stride()[0], b_l.start_offset());
        let bias: Vec<f32> = (0..o.c).map(|c| b[bo + c * bs]).collect();
        let mut y = Vec::with_capacity(o.n * o.ih * o.iw * o.c);
        for _ in 0..o.n * o.ih * o.iw {
            y.extend_from_slice(&bias);
        }
        let relu = |_: usize, img: &mut [f32]| {
            if self.relu {
                img.iter_mut().for_each(|v| *v = v.max(0.0));
            }
        };
        scatter_into(&o, &cols, k, (0, 0, o.ih, o.iw), &mut y, &relu);
        Ok((CpuStorage::F32(y), Shape::from((o.n, o.ih, o.iw, o.c))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let o = self.out;
        let (m, c_in, k) = (self.input.g.rows(), self.input.g.c, o.patch_len());
        let t0 = std::time::Instant::now();
        let grad = grad.contiguous()?;
        // the output's gradient, through the ReLU
        let dy: Vec<f32> = with_f32(&grad, |g, gl| {
            let g = &g[gl.start_offset()..][..gl.shape().elem_count()];
            if !self.relu {
                return Ok(g.to_vec());
            }
            with_f32(res, |y, yl| {
                let y = &y[yl.start_offset()..][..yl.shape().elem_count()];
                let mut out = vec![0f32; g.len()];
                out.par_chunks_mut(1 << 14)
                    .zip(g.par_chunks(1 << 14).zip(y.par_chunks(1 << 14)))
                    .for_each(|(d, (g, y))| {
                        for ((d, &g), &y) in d.iter_mut().zip(g).zip(y) {
                            *d = if y > 0.0 { g } else { 0.0 };
                        }
                    });
                Ok(out)
            })
        })?;
        let db = dy
            .par_chunks(o.ih * o.iw * o.c)
            .map(|img| {
                let mut s = vec![0f32; o.c];
                for px in img.chunks(o.c) {
                    s.iter_mut().zip(px).for_each(|(s, &v)| *s += v);
                }
                s
            })
            .reduce(
                || vec![0f32; o.c],
                |mut a, b| {
                    a.iter_mut().zip(&b).for_each(|(a, b)| *a += b);
                    a
                },
            );
        let whole = Window {
            g: o,
            y0: 0,
            x0: 0,
            relu: false,
            ones: false,
        };
        let dy_l = Layout::contiguous((o.n, o.ih, o.iw, o.c));
        let dcols = CpuStorage::F32(gather(&whole, &dy, &dy_l)?);
        drop(dy);
        let (storage, xl) = x.storage_and_layout();
        let candle_core::Storage::Cpu(xs) = &*storage else {
            candle_core::bail!("conv-transpose: only the CPU is supported")
        };
        let (xm, xm_l) = self.input_matrix(xs, xl)?;
        let xm_t = xm_l.transpose(0, 1)?;
        let dw = gemm(
            xm.as_ref().unwrap_or(xs),
            &xm_t,
            &dcols,
            &mat(m, k, 0),
            (c_in, k, m),
        )?;
        drop(xm);
        let dx = if x.track_op() {
            let (ws, wl) = w.storage_and_layout();
            let candle_core::Storage::Cpu(ws) = &*ws else {
                candle_core::bail!("conv-transpose: only the CPU is supported")
            };
            let dxm = gemm(
                &dcols,
                &mat(m, k, 0),
                ws,
                &wl.transpose(0, 1)?,
                (m, c_in, k),
            )?;
            let dx = if self.is_plain(xl) {
                dxm
            } else {
                gather_grad(&self.input, &dxm, f32s(xs, self.name())?, xl)?
            };
            Some(Tensor::from_vec(dx, x.dims(), x.device())?)
        } else {
            None
        };
        prof(&format!("tconv bwd m{m} k{k} cin{c_in}"), t0);
        Ok((
            dx,
            Some(Tensor::from_vec(dw, w.dims(), w.device())?),
            Some(Tensor::from_vec(db, o.c, w.device())?),
        ))
    }
}

fn prof(what: &str, t0: std::time::Instant) {
    if std::env::var_os("LL_PROF").is_some() {
        eprintln!("    {what}: {:.1} ms", t0.elapsed().as_secs_f64() * 1e3);
    }
}
