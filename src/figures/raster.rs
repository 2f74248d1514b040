//! Pixel blocks laid over a drawn figure: blitted into PNGs, embedded in SVGs, resampled to fit.

use anyhow::{Context, Result};

/// A block of pixels placed on the canvas after plotters has drawn everything else: copied into
/// the bitmap for PNG, embedded as a PNG data URI for SVG. `rgb` is already at display size.
pub(super) struct Raster {
    pub(super) x: i32,
    pub(super) y: i32,
    pub(super) w: u32,
    pub(super) h: u32,
    pub(super) rgb: Vec<u8>,
}

pub(super) fn blit(buf: &mut [u8], width: u32, height: u32, r: &Raster) {
    for yy in 0..r.h as i32 {
        let y = r.y + yy;
        if y < 0 || y >= height as i32 {
            continue;
        }
        for xx in 0..r.w as i32 {
            let x = r.x + xx;
            if x < 0 || x >= width as i32 {
                continue;
            }
            let s = (yy as usize * r.w as usize + xx as usize) * 3;
            let d = (y as usize * width as usize + x as usize) * 3;
            buf[d..d + 3].copy_from_slice(&r.rgb[s..s + 3]);
        }
    }
}

pub(super) fn svg_image(r: &Raster) -> Result<String> {
    use image::ImageEncoder as _;
    use image::codecs::png::{CompressionType, FilterType, PngEncoder};
    let mut png = Vec::new();
    PngEncoder::new_with_quality(&mut png, CompressionType::Best, FilterType::Adaptive)
        .write_image(&r.rgb, r.w, r.h, image::ExtendedColorType::Rgb8)
        .context("encoding an embedded image")?;
    Ok(format!(
        "<image x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" image-rendering=\"optimizeSpeed\" \
         style=\"image-rendering:pixelated\" preserveAspectRatio=\"none\" \
         xlink:href=\"data:image/png;base64,{}\"/>\n",
        r.x,
        r.y,
        r.w,
        r.h,
        base64(&png)
    ))
}

pub(super) fn base64(data: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Resample an RGB image to `dw`x`dh`: nearest neighbour along an axis that grows (crisp
/// pixels), box average along an axis that shrinks (no dropped rows).
pub(super) fn resample(src: &[u8], sw: usize, sh: usize, dw: usize, dh: usize) -> Vec<u8> {
    fn spans(s: usize, d: usize) -> Vec<(usize, usize)> {
        (0..d)
            .map(|o| {
                if d >= s {
                    let i = (((o as f64 + 0.5) * s as f64 / d as f64) as usize).min(s - 1);
                    (i, i + 1)
                } else {
                    let a = (o * s) / d;
                    let b = ((o + 1) * s).div_ceil(d).clamp(a + 1, s);
                    (a, b)
                }
            })
            .collect()
    }
    let xs = spans(sw, dw);
    let ys = spans(sh, dh);
    let mut out = Vec::with_capacity(dw * dh * 3);
    for &(y0, y1) in &ys {
        for &(x0, x1) in &xs {
            let mut acc = [0u32; 3];
            for y in y0..y1 {
                for x in x0..x1 {
                    let p = (y * sw + x) * 3;
                    for k in 0..3 {
                        acc[k] += u32::from(src[p + k]);
                    }
                }
            }
            let n = ((y1 - y0) * (x1 - x0)) as u32;
            for a in acc {
                out.push(((a + n / 2) / n) as u8);
            }
        }
    }
    out
}
