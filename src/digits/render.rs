//! Drawing a digit as a writer would: the skeleton of [`super::glyphs`] bent by the writer's
//! habits (slant, width, size, stroke, position, allographs, personal quirks), jittered a
//! little on every repetition, and rasterised with an anti-aliased round pen into 28x28.

use rand::Rng;
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};

use super::glyphs::{Pen, allographs};

/// Side of a digit image, as MNIST.
pub const SIDE: usize = 28;
/// Pixels of a digit image.
pub const PIXELS: usize = SIDE * SIDE;

/// One writer's habits. Two digits by the same writer share these; each repetition still
/// differs a little ([`Writer::jitter`] and small per-sample wobble of the other traits).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Writer {
    /// seeds the writer's fixed quirks (personal deformations of every skeleton point)
    pub id: u64,
    /// horizontal shear: positive leans the top to the right
    pub slant: f32,
    /// width over height of the skeleton box
    pub width: f32,
    /// height of a digit in pixels
    pub size: f32,
    /// pen diameter in pixels
    pub thickness: f32,
    /// per-repetition noise of each skeleton point, in units of the digit's height
    pub jitter: f32,
    /// how far the writer's quirks move skeleton points, in units of the digit's height
    pub quirk: f32,
    /// rotation in radians (positive turns clockwise on screen)
    pub rotation: f32,
    /// where the digit's centre sits relative to the image centre, in pixels
    pub offset: (f32, f32),
    /// which allograph the writer uses for each digit (index into its list, wrapped)
    pub allograph: [u8; 10],
}

impl Default for Writer {
    /// A tidy upright writer: the middle of every trait.
    fn default() -> Self {
        Self {
            id: 0,
            slant: 0.0,
            width: 0.85,
            size: 19.0,
            thickness: 2.2,
            jitter: 0.0,
            quirk: 0.0,
            rotation: 0.0,
            offset: (0.0, 0.0),
            allograph: [0; 10],
        }
    }
}

impl Writer {
    /// A random writer. Real hands (MNIST) slant, widen and deform their digits further than
    /// these traits spread (models/README.md, real handwriting).
    pub fn random(id: u64, rng: &mut impl Rng) -> Self {
        let mut allograph = [0u8; 10];
        for a in &mut allograph {
            *a = rng.random_range(0..4);
        }
        let normal = |rng: &mut dyn rand::RngCore, mean: f32, sd: f32, lo: f32, hi: f32| {
            let n = Normal::new(mean, sd).map_or(mean, |d| d.sample(rng));
            n.clamp(lo, hi)
        };
        Self {
            id,
            slant: normal(rng, 0.12, 0.2, -0.4, 0.6),
            width: normal(rng, 0.82, 0.14, 0.5, 1.15),
            size: normal(rng, 19.0, 1.6, 14.5, 22.5),
            thickness: normal(rng, 2.3, 0.55, 1.2, 3.8),
            jitter: rng.random_range(0.008..0.035),
            quirk: rng.random_range(0.01..0.05),
            rotation: normal(rng, 0.0, 0.06, -0.15, 0.15),
            offset: (
                normal(rng, 0.0, 0.8, -2.0, 2.0),
                normal(rng, 0.0, 0.8, -2.0, 2.0),
            ),
            allograph,
        }
    }

    /// The writer with number `id` of the population drawn with `seed`: the same pair always
    /// gives the same writer, whatever else was generated before.
    pub fn numbered(id: u64, seed: u64) -> Self {
        let mut rng = writer_rng(id, seed);
        Self::random(id, &mut rng)
    }
}

/// A random generator for everything writer `id` of population `seed` writes.
pub fn writer_rng(id: u64, seed: u64) -> rand::rngs::StdRng {
    use rand::SeedableRng;
    rand::rngs::StdRng::seed_from_u64(mix(seed ^ mix(id.wrapping_add(0x5151_5151))))
}

/// splitmix64: a well-mixed 64-bit hash.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A fixed value in [-1, 1] for one writer, digit and skeleton point.
fn quirk(id: u64, digit: u8, stroke: usize, point: usize, axis: usize) -> f32 {
    let h = mix(id
        ^ mix(((digit as u64) << 40)
            ^ ((stroke as u64) << 24)
            ^ ((point as u64) << 4)
            ^ axis as u64));
    (h >> 40) as f32 / (1u64 << 23) as f32 - 1.0
}

/// Draw `digit` (0..=9) in the hand of `writer`; `rng` gives this repetition's wobble.
/// Pixels are ink in [0, 1], row-major, 0 = paper.
pub fn render(digit: u8, writer: &Writer, rng: &mut impl Rng) -> [f32; PIXELS] {
    let digit = digit % 10;
    let options = allographs(digit);
    let glyph = options[writer.allograph[digit as usize] as usize % options.len()];
    let mut wobble = |sd: f32| gaussian(rng, sd);
    let slant = writer.slant + wobble(0.04);
    let size = writer.size * (1.0 + wobble(0.035));
    let width = writer.width * (1.0 + wobble(0.04));
    let thickness = (writer.thickness * (1.0 + wobble(0.06))).max(0.8);
    let rotation = writer.rotation + wobble(0.03);
    let cx = SIDE as f32 / 2.0 + writer.offset.0 + wobble(0.5);
    let cy = SIDE as f32 / 2.0 + writer.offset.1 + wobble(0.5);
    let (sin, cos) = rotation.sin_cos();

    let mut paths: Vec<Vec<(f32, f32)>> = Vec::with_capacity(glyph.strokes.len());
    let mut points: Vec<(f32, f32)> = Vec::with_capacity(16);
    for (k, stroke) in glyph.strokes.iter().enumerate() {
        points.clear();
        for (i, &(x, y)) in stroke.points.iter().enumerate() {
            let x = x + writer.quirk * quirk(writer.id, digit, k, i, 0) + wobble(writer.jitter);
            let y = y + writer.quirk * quirk(writer.id, digit, k, i, 1) + wobble(writer.jitter);
            // centred unit box, y down; the shear leans the top (v < 0) to the right
            let v = y - 0.5;
            let u = (x - 0.5) * width - slant * v;
            let (u, v) = (u * cos - v * sin, u * sin + v * cos);
            points.push((cx + u * size, cy + v * size));
        }
        let mut path = Vec::with_capacity(96);
        match stroke.pen {
            Pen::Corner => path.extend_from_slice(&points),
            Pen::Smooth => catmull_rom(&points, 6, &mut path),
        }
        paths.push(path);
    }
    fit_in_frame(&mut paths, thickness / 2.0, 2.0);
    let image = ink(&paths, thickness / 2.0);
    // MNIST centres each digit by its ink's centre of mass, which sits off the middle of the
    // digit's box for most shapes (a 7's is up and to the right): the same here, then the
    // writer's offset and this repetition's wobble
    let Some((mx, my)) = centre_of_mass(&image) else {
        return image;
    };
    let (dx, dy) = (cx - mx - 0.5, cy - my - 0.5);
    for p in paths.iter_mut().flatten() {
        p.0 += dx;
        p.1 += dy;
    }
    // MNIST's centring can bring ink to a pixel from the edge
    fit_in_frame(&mut paths, thickness / 2.0, 1.0);
    ink(&paths, thickness / 2.0)
}

/// A draw from N(0, sd^2) (0 for a spread that is not a finite non-negative number).
pub(super) fn gaussian(rng: &mut impl Rng, sd: f32) -> f32 {
    Normal::new(0.0, sd).map_or(0.0, |d| d.sample(rng))
}

/// The strokes stamped with a round pen of `radius` pixels.
fn ink(paths: &[Vec<(f32, f32)>], radius: f32) -> [f32; PIXELS] {
    let mut image = [0f32; PIXELS];
    for path in paths {
        for seg in path.windows(2) {
            stamp_segment(&mut image, seg[0], seg[1], radius);
        }
        if path.len() == 1 {
            stamp_segment(&mut image, path[0], path[0], radius);
        }
    }
    image
}

/// The ink-weighted mean (column, row) of an image's pixels, None for a blank image.
fn centre_of_mass(image: &[f32; PIXELS]) -> Option<(f32, f32)> {
    let (mut sum, mut sx, mut sy) = (0f32, 0f32, 0f32);
    for (i, &v) in image.iter().enumerate() {
        sum += v;
        sx += v * (i % SIDE) as f32;
        sy += v * (i / SIDE) as f32;
    }
    (sum > 0.0).then(|| (sx / sum, sy / sum))
}

/// Keep the ink at least `margin` pixels from the image's edge, as MNIST does: shift the
/// digit inward, and shrink it about its centre when it is too large to fit.
fn fit_in_frame(paths: &mut [Vec<(f32, f32)>], radius: f32, margin: f32) {
    let margin = margin + radius;
    let (lo, hi) = (margin, SIDE as f32 - margin);
    let all = || paths.iter().flatten();
    let (mut x0, mut x1, mut y0, mut y1) = (f32::MAX, f32::MIN, f32::MAX, f32::MIN);
    for &(x, y) in all() {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if x0 > x1 {
        return;
    }
    let scale = ((hi - lo) / (x1 - x0).max(1e-3))
        .min((hi - lo) / (y1 - y0).max(1e-3))
        .min(1.0);
    let (mx, my) = ((x0 + x1) / 2.0, (y0 + y1) / 2.0);
    let half_w = (x1 - x0) * scale / 2.0;
    let half_h = (y1 - y0) * scale / 2.0;
    // max then min, not clamp: rounding can leave the bounds a hair crossed
    let nx = mx.max(lo + half_w).min(hi - half_w);
    let ny = my.max(lo + half_h).min(hi - half_h);
    for p in paths.iter_mut().flatten() {
        p.0 = nx + (p.0 - mx) * scale;
        p.1 = ny + (p.1 - my) * scale;
    }
}

/// A centripetal-free (uniform) Catmull-Rom curve through `points`, `steps` samples a span.
fn catmull_rom(points: &[(f32, f32)], steps: usize, out: &mut Vec<(f32, f32)>) {
    let n = points.len();
    if n < 3 {
        out.extend_from_slice(points);
        return;
    }
    let at = |i: isize| points[i.clamp(0, n as isize - 1) as usize];
    for i in 0..n - 1 {
        let (p0, p1, p2, p3) = (
            at(i as isize - 1),
            at(i as isize),
            at(i as isize + 1),
            at(i as isize + 2),
        );
        for s in 0..steps {
            let t = s as f32 / steps as f32;
            let (t2, t3) = (t * t, t * t * t);
            let f = |a: f32, b: f32, c: f32, d: f32| {
                0.5 * (2.0 * b
                    + (c - a) * t
                    + (2.0 * a - 5.0 * b + 4.0 * c - d) * t2
                    + (3.0 * b - a - 3.0 * c + d) * t3)
            };
            out.push((f(p0.0, p1.0, p2.0, p3.0), f(p0.1, p1.1, p2.1, p3.1)));
        }
    }
    out.push(points[n - 1]);
}

/// Ink a round-pen segment: coverage falls linearly over one pixel at the pen's edge.
/// Coordinates are in pixels (0..28, y down); ink only ever grows.
pub fn stamp_segment(image: &mut [f32; PIXELS], a: (f32, f32), b: (f32, f32), radius: f32) {
    let reach = radius + 1.0;
    let x0 = (a.0.min(b.0) - reach).floor().max(0.0) as usize;
    let x1 = ((a.0.max(b.0) + reach).ceil().max(0.0) as usize).min(SIDE);
    let y0 = (a.1.min(b.1) - reach).floor().max(0.0) as usize;
    let y1 = ((a.1.max(b.1) + reach).ceil().max(0.0) as usize).min(SIDE);
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let len2 = dx * dx + dy * dy;
    for py in y0..y1 {
        for px in x0..x1 {
            let (qx, qy) = (px as f32 + 0.5 - a.0, py as f32 + 0.5 - a.1);
            let t = if len2 > 0.0 {
                ((qx * dx + qy * dy) / len2).clamp(0.0, 1.0)
            } else {
                0.0
            };
            let (ex, ey) = (qx - t * dx, qy - t * dy);
            let d = (ex * ex + ey * ey).sqrt();
            let cover = (radius + 0.5 - d).clamp(0.0, 1.0);
            let p = &mut image[py * SIDE + px];
            if cover > *p {
                *p = cover;
            }
        }
    }
}

/// A drawing made by hand (anywhere on the canvas, any size) made to look like MNIST: the
/// ink's bounding box scaled to fit 20x20 pixels, keeping its aspect, then centred by its
/// centre of mass. `None` when the drawing holds (almost) no ink.
pub fn centre_drawing(image: &[f32; PIXELS]) -> Option<[f32; PIXELS]> {
    let total: f32 = image.iter().sum();
    if total < 1.0 {
        return None;
    }
    let (mut x0, mut x1, mut y0, mut y1) = (SIDE, 0, SIDE, 0);
    for y in 0..SIDE {
        for x in 0..SIDE {
            if image[y * SIDE + x] > 0.1 {
                x0 = x0.min(x);
                x1 = x1.max(x);
                y0 = y0.min(y);
                y1 = y1.max(y);
            }
        }
    }
    if x0 > x1 {
        return None;
    }
    let (w, h) = ((x1 - x0 + 1) as f32, (y1 - y0 + 1) as f32);
    let scale = 20.0 / w.max(h);
    // resample the box into a canvas, scale s: target pixel (u, v) <- source (x0 + u/s, y0 + v/s)
    let mut scaled = [0f32; PIXELS];
    let (tw, th) = ((w * scale).round() as usize, (h * scale).round() as usize);
    let sample = |sx: f32, sy: f32| -> f32 {
        let (fx, fy) = (sx.floor(), sy.floor());
        let (ax, ay) = (sx - fx, sy - fy);
        let at = |x: f32, y: f32| -> f32 {
            if x < 0.0 || y < 0.0 || x >= SIDE as f32 || y >= SIDE as f32 {
                0.0
            } else {
                image[y as usize * SIDE + x as usize]
            }
        };
        (1.0 - ay) * ((1.0 - ax) * at(fx, fy) + ax * at(fx + 1.0, fy))
            + ay * ((1.0 - ax) * at(fx, fy + 1.0) + ax * at(fx + 1.0, fy + 1.0))
    };
    for v in 0..th.min(SIDE) {
        for u in 0..tw.min(SIDE) {
            let sx = x0 as f32 + (u as f32 + 0.5) / scale - 0.5;
            let sy = y0 as f32 + (v as f32 + 0.5) / scale - 0.5;
            scaled[v * SIDE + u] = sample(sx, sy).clamp(0.0, 1.0);
        }
    }
    let (cx, cy) = centre_of_mass(&scaled)?;
    let (dx, dy) = ((13.5 - cx).round() as isize, (13.5 - cy).round() as isize);
    let mut out = [0f32; PIXELS];
    for y in 0..SIDE as isize {
        for x in 0..SIDE as isize {
            let (sx, sy) = (x - dx, y - dy);
            if (0..SIDE as isize).contains(&sx) && (0..SIDE as isize).contains(&sy) {
                out[y as usize * SIDE + x as usize] = scaled[sy as usize * SIDE + sx as usize];
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn drawings_are_centred_and_blank_ones_refused() {
        assert!(centre_drawing(&[0.0; PIXELS]).is_none());
        let mut faint = [0.0; PIXELS];
        faint[100] = 0.5;
        assert!(centre_drawing(&faint).is_none());
        // a small stroke in a corner becomes a 20-pixel-tall stroke in the middle
        let mut corner = [0.0; PIXELS];
        stamp_segment(&mut corner, (3.0, 2.0), (3.0, 9.0), 0.8);
        let c = centre_drawing(&corner).unwrap_or([0.0; PIXELS]);
        let rows: Vec<usize> = (0..SIDE)
            .filter(|y| (0..SIDE).any(|x| c[y * SIDE + x] > 0.3))
            .collect();
        assert!(rows.len() >= 18, "{} rows of ink", rows.len());
        let mid = (rows[0] + rows[rows.len() - 1]) / 2;
        assert!((12..=15).contains(&mid), "centred at row {mid}");
    }

    #[test]
    fn digits_sit_with_their_centre_of_mass_in_the_middle_as_in_mnist() {
        // the tidy writer has no offset: what is left is this repetition's wobble (0.5 px)
        let w = Writer::default();
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        for d in 0..10 {
            let img = render(d, &w, &mut rng);
            let (x, y) = centre_of_mass(&img).unwrap();
            assert!(
                (x - 13.5).abs() < 1.6 && (y - 13.5).abs() < 1.6,
                "digit {d}: centre of mass at ({x:.1}, {y:.1})"
            );
        }
        // a 7's ink lies up and to the right of its box's middle, so centring it by its mass
        // moves the box down and to the left of the image's middle
        let seven = render(7, &w, &mut rng);
        let rows: Vec<usize> = (0..SIDE)
            .filter(|y| (0..SIDE).any(|x| seven[y * SIDE + x] > 0.3))
            .collect();
        let middle_row = (rows[0] + rows[rows.len() - 1]) as f32 / 2.0;
        assert!(
            middle_row > 13.5,
            "the 7's box is centred at row {middle_row}"
        );
    }

    #[test]
    fn same_seed_same_image_and_writers_differ() {
        let w = Writer::numbered(3, 9);
        assert_eq!(w, Writer::numbered(3, 9));
        let mut r1 = rand::rngs::StdRng::seed_from_u64(1);
        let mut r2 = rand::rngs::StdRng::seed_from_u64(1);
        for d in 0..10 {
            assert_eq!(render(d, &w, &mut r1), render(d, &w, &mut r2));
        }
        let other = Writer::numbered(4, 9);
        assert_ne!(w, other);
        let mut r = rand::rngs::StdRng::seed_from_u64(1);
        let a = render(5, &w, &mut r);
        let mut r = rand::rngs::StdRng::seed_from_u64(1);
        let b = render(5, &other, &mut r);
        let diff: f32 = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).sum();
        assert!(diff > 20.0, "two writers draw nearly the same 5 ({diff})");
    }

    #[test]
    fn ink_stays_inside_and_is_anti_aliased() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(2);
        for id in 0..50 {
            let w = Writer::numbered(id, 0);
            for d in 0..10 {
                let img = render(d, &w, &mut rng);
                let ink: f32 = img.iter().sum();
                assert!(
                    ink > 20.0 && ink < 500.0,
                    "digit {d} writer {id}: ink {ink}"
                );
                assert!(img.iter().all(|p| (0.0..=1.0).contains(p)));
                let grey = img.iter().filter(|&&p| p > 0.05 && p < 0.95).count();
                assert!(grey > 5, "no anti-aliased edge pixels");
                // the frame of the image stays nearly empty, as in MNIST
                let border: f32 = (0..SIDE)
                    .flat_map(|i| {
                        [
                            img[i],
                            img[(SIDE - 1) * SIDE + i],
                            img[i * SIDE],
                            img[i * SIDE + SIDE - 1],
                        ]
                    })
                    .sum();
                assert!(
                    border < 3.0,
                    "digit {d} writer {id} touches the border ({border})"
                );
            }
        }
    }
}
