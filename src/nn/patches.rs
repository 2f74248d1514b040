//! im2col and col2im (overlap-add) as candle custom ops with backward passes, the two halves
//! of fast 2-D convolutions and transposed convolutions on the CPU: with them each layer is one
//! GEMM plus one pass over memory, where candle's own backward passes loop without a GEMM.
//!
//! Both ops relate a grid of patches (gh x gw positions, each c x k x k taps) to an image
//! (c x ih x iw): tap (kh, kw) of patch (i, j) is pixel (i*s + kh - p, j*s + kw - p).
//! [`Gather`] reads patches out of an image (a convolution's input side); [`Scatter`] adds
//! patches into an image (a transposed convolution's output side). Each is the other's
//! gradient.

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// Sizes shared by [`Gather`] and [`Scatter`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PatchGeometry {
    pub n: usize,
    pub c: usize,
    pub gh: usize,
    pub gw: usize,
    pub ih: usize,
    pub iw: usize,
    pub k: usize,
    pub s: usize,
    pub p: usize,
}

impl PatchGeometry {
    fn patch_len(&self) -> usize {
        self.c * self.k * self.k
    }
    /// image pixel of tap (kh, kw) of patch (i, j), None when it falls in the padding
    #[inline]
    fn pixel(&self, i: usize, j: usize, kh: usize, kw: usize) -> Option<(usize, usize)> {
        let y = (i * self.s + kh).checked_sub(self.p)?;
        let x = (j * self.s + kw).checked_sub(self.p)?;
        (y < self.ih && x < self.iw).then_some((y, x))
    }
}

fn f32_slice<'a>(storage: &'a CpuStorage, op: &str) -> Result<&'a [f32]> {
    match storage {
        CpuStorage::F32(v) => Ok(v),
        _ => Err(candle_core::Error::Msg(format!(
            "{op}: only f32 is supported"
        ))),
    }
}

/// The f32 data of an op's input, checked to have the shape `want`, with its strides and
/// start offset (the input may be any view of its storage).
fn strided_input<'a>(
    op: &str,
    storage: &'a CpuStorage,
    layout: &'a Layout,
    want: &[usize],
) -> Result<(&'a [f32], &'a [usize], usize)> {
    let src = f32_slice(storage, op)?;
    let dims = layout.dims();
    if dims != want {
        candle_core::bail!("{op}: input {dims:?}, expected {want:?}");
    }
    Ok((src, layout.stride(), layout.start_offset()))
}

/// Image (N, C, IH, IW), any strides -> patches (N, GH, GW, C, K, K), contiguous.
pub struct Gather(pub PatchGeometry);

/// Patches (N, GH, GW, C, K, K), any strides -> image, contiguous in (N, IH, IW, C) order
/// (channels last, so the next layer's GEMM reads it without a copy).
pub struct Scatter(pub PatchGeometry);

impl CustomOp1 for Gather {
    fn name(&self) -> &'static str {
        "patch-gather"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = self.0;
        let (src, st, off) = strided_input(self.name(), storage, layout, &[g.n, g.c, g.ih, g.iw])?;
        let per = g.gh * g.gw * g.patch_len();
        let mut out = vec![0f32; g.n * per];
        out.par_chunks_mut(per).enumerate().for_each(|(n, dst)| {
            let base = off + n * st[0];
            let mut o = 0;
            for i in 0..g.gh {
                for j in 0..g.gw {
                    for c in 0..g.c {
                        let cb = base + c * st[1];
                        for kh in 0..g.k {
                            for kw in 0..g.k {
                                if let Some((y, x)) = g.pixel(i, j, kh, kw) {
                                    dst[o] = src[cb + y * st[2] + x * st[3]];
                                }
                                o += 1;
                            }
                        }
                    }
                }
            }
        });
        Ok((
            CpuStorage::F32(out),
            Shape::from(vec![g.n, g.gh, g.gw, g.c, g.k, g.k]),
        ))
    }

    fn bwd(&self, _arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        // Scatter gives (N, IH, IW, C); the argument was (N, C, IH, IW)
        let g = grad_res.apply_op1(Scatter(self.0))?;
        Ok(Some(g.permute((0, 3, 1, 2))?))
    }
}

impl CustomOp1 for Scatter {
    fn name(&self) -> &'static str {
        "patch-scatter"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = self.0;
        let (src, st, off) = strided_input(
            self.name(),
            storage,
            layout,
            &[g.n, g.gh, g.gw, g.c, g.k, g.k],
        )?;
        let per = g.ih * g.iw * g.c;
        let mut out = vec![0f32; g.n * per];
        out.par_chunks_mut(per).enumerate().for_each(|(n, dst)| {
            for i in 0..g.gh {
                for j in 0..g.gw {
                    let pb = off + n * st[0] + i * st[1] + j * st[2];
                    for c in 0..g.c {
                        for kh in 0..g.k {
                            for kw in 0..g.k {
                                if let Some((y, x)) = g.pixel(i, j, kh, kw) {
                                    dst[(y * g.iw + x) * g.c + c] +=
                                        src[pb + c * st[3] + kh * st[4] + kw * st[5]];
                                }
                            }
                        }
                    }
                }
            }
        });
        Ok((
            CpuStorage::F32(out),
            Shape::from(vec![g.n, g.ih, g.iw, g.c]),
        ))
    }

    fn bwd(&self, _arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        // the result was (N, IH, IW, C); Gather wants the image as (N, C, IH, IW)
        let image = grad_res.permute((0, 3, 1, 2))?;
        Ok(Some(image.apply_op1(Gather(self.0))?))
    }
}
