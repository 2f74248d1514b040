//! SPS ball: videos of a bouncing ball, rendered by the program itself (perspective camera,
//! shaded ball, grey floor with a grid, a soft shadow) or read from the official data set's
//! folders (one folder per throw, frames named `<index>.[x,y,z].png`).
//!
//! World coordinates: x to the right, y up (the floor is y = 0), z towards the camera. The
//! camera sits at (0, 4, 2) and looks down at the middle of the floor where the ball flies.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;

/// frame side in pixels
pub const SIZE: usize = 32;
pub const CHANNELS: usize = 3;
pub const FRAME_LEN: usize = CHANNELS * SIZE * SIZE;
/// frames of a throw
pub const SEQ_LEN: usize = 20;
/// frames the prior is given before it rolls the throw forward
pub const BASE_LEN: usize = 5;
pub const DT: f32 = 0.2;
pub const GRAVITY: f32 = 10.0;
/// share of the ball's energy lost at each bounce
pub const ENERGY_LOSS: f32 = 0.19;
pub const RADIUS: f32 = 0.5;
/// training throws of the generated data set, and held-out ones
pub const TRAIN_THROWS: usize = 512;
pub const TEST_THROWS: usize = 128;
/// horizontal positions stay within this distance of the vertical axis x = z = 0
pub const ARENA: f32 = 1.4;

/// The pinhole camera of the renderer.
#[derive(Clone, Copy, Debug)]
pub struct Camera {
    pub eye: [f32; 3],
    forward: [f32; 3],
    right: [f32; 3],
    up: [f32; 3],
    /// focal length in pixels
    focal: f32,
}

fn sub(a: [f32; 3], b: [f32; 3]) -> [f32; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}
fn dot(a: [f32; 3], b: [f32; 3]) -> f32 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}
fn cross(a: [f32; 3], b: [f32; 3]) -> [f32; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}
fn normalize(a: [f32; 3]) -> [f32; 3] {
    let n = dot(a, a).sqrt().max(1e-12);
    [a[0] / n, a[1] / n, a[2] / n]
}

impl Camera {
    /// The data set's camera: at (0, 4, 2), looking at (0, 0.75, -0.25), 64 degrees across.
    pub fn standard() -> Self {
        Self::look_at([0.0, 4.0, 2.0], [0.0, 0.75, -0.25], 64f32.to_radians())
    }

    pub fn look_at(eye: [f32; 3], target: [f32; 3], fov: f32) -> Self {
        let forward = normalize(sub(target, eye));
        let right = normalize(cross(forward, [0.0, 1.0, 0.0]));
        let up = cross(right, forward);
        Self {
            eye,
            forward,
            right,
            up,
            focal: SIZE as f32 / 2.0 / (fov / 2.0).tan(),
        }
    }

    /// Pixel coordinates (column, row; pixel i spans [i, i+1)) of a world point, None when
    /// it is behind the camera.
    pub fn project(&self, p: [f32; 3]) -> Option<(f32, f32)> {
        let d = sub(p, self.eye);
        let depth = dot(d, self.forward);
        if depth <= 1e-3 {
            return None;
        }
        let c = SIZE as f32 / 2.0;
        Some((
            c + self.focal * dot(d, self.right) / depth,
            c - self.focal * dot(d, self.up) / depth,
        ))
    }

    fn ray(&self, px: f32, py: f32) -> [f32; 3] {
        let c = SIZE as f32 / 2.0;
        let a = (px - c) / self.focal;
        let b = -(py - c) / self.focal;
        normalize([
            self.forward[0] + a * self.right[0] + b * self.up[0],
            self.forward[1] + a * self.right[1] + b * self.up[1],
            self.forward[2] + a * self.right[2] + b * self.up[2],
        ])
    }
}

const BALL_COLOR: [f32; 3] = [0.92, 0.32, 0.18];
const SKY: [f32; 3] = [0.78, 0.82, 0.88];
const LIGHT: [f32; 3] = [0.35, 0.85, 0.4];

/// Colour seen along one ray: the ball, else the floor (grid, shadow), else the sky.
fn shade(cam: &Camera, dir: [f32; 3], ball: [f32; 3]) -> [f32; 3] {
    let eye = cam.eye;
    // ball: |eye + t dir - ball|^2 = r^2
    let oc = sub(eye, ball);
    let b = dot(oc, dir);
    let c = dot(oc, oc) - RADIUS * RADIUS;
    let disc = b * b - c;
    if disc >= 0.0 {
        let t = -b - disc.sqrt();
        if t > 0.0 {
            let hit = [
                eye[0] + t * dir[0],
                eye[1] + t * dir[1],
                eye[2] + t * dir[2],
            ];
            let n = normalize(sub(hit, ball));
            let l = normalize(LIGHT);
            let diffuse = dot(n, l).max(0.0);
            let h = normalize(sub(l, dir));
            let spec = dot(n, h).max(0.0).powi(24) * 0.35;
            return BALL_COLOR.map(|c| (c * (0.28 + 0.72 * diffuse) + spec).min(1.0));
        }
    }
    if dir[1] < -1e-4 {
        let t = -eye[1] / dir[1];
        let x = eye[0] + t * dir[0];
        let z = eye[2] + t * dir[2];
        let grid = |v: f32| {
            let f = (v * 2.0).rem_euclid(1.0);
            f.min(1.0 - f) < 0.05
        };
        let mut g = if grid(x) || grid(z) { 0.42 } else { 0.62 };
        // the shadow of a light straight above: a dark disc right below the ball, so that
        // where the ball is over the floor shows apart from how high it flies
        let d = ((x - ball[0]).powi(2) + (z - ball[2]).powi(2)).sqrt();
        let edge = 0.08;
        let shadow = 0.65 * (1.0 - ((d - RADIUS * 0.9 + edge) / (2.0 * edge)).clamp(0.0, 1.0));
        g *= 1.0 - shadow;
        // fade into the sky far away
        let fog = (t / 14.0).min(1.0);
        return [0, 1, 2].map(|i| g * (1.0 - fog) + SKY[i] * fog);
    }
    SKY
}

/// One frame of the ball at `position`: CHW, values in [0, 1], 2x2 supersampled.
pub fn render_frame(cam: &Camera, position: [f32; 3]) -> Vec<f32> {
    let mut out = vec![0f32; FRAME_LEN];
    render_frame_into(cam, position, &mut out);
    out
}

pub fn render_frame_into(cam: &Camera, position: [f32; 3], out: &mut [f32]) {
    const SUB: [f32; 2] = [0.25, 0.75];
    for row in 0..SIZE {
        for col in 0..SIZE {
            let mut acc = [0f32; 3];
            for sy in SUB {
                for sx in SUB {
                    let c = shade(cam, cam.ray(col as f32 + sx, row as f32 + sy), position);
                    for k in 0..3 {
                        acc[k] += c[k];
                    }
                }
            }
            for (k, a) in acc.iter().enumerate() {
                out[k * SIZE * SIZE + row * SIZE + col] = a / 4.0;
            }
        }
    }
}

/// Positions of one throw, one per frame: free flight under gravity, bounces on the floor
/// that lose ENERGY_LOSS of the kinetic energy, constant horizontal velocity.
pub fn simulate(start: [f32; 3], velocity: [f32; 3], frames: usize) -> Vec<[f32; 3]> {
    let (mut p, mut v) = (start, velocity);
    let mut out = Vec::with_capacity(frames);
    for _ in 0..frames {
        out.push(p);
        (p, v) = advance(p, v, DT);
    }
    out
}

/// Move the ball on by `dt` seconds; bounces within the step are solved exactly.
pub fn advance(mut p: [f32; 3], mut v: [f32; 3], dt: f32) -> ([f32; 3], [f32; 3]) {
    let keep = (1.0 - ENERGY_LOSS).sqrt();
    let mut left = dt;
    for _ in 0..16 {
        let height = (p[1] - RADIUS).max(0.0);
        // time until the ball touches the floor: height + v t - g t^2 / 2 = 0
        let disc = v[1] * v[1] + 2.0 * GRAVITY * height;
        let hit = (v[1] + disc.sqrt()) / GRAVITY;
        if hit > left {
            p[1] += v[1] * left - 0.5 * GRAVITY * left * left;
            v[1] -= GRAVITY * left;
            break;
        }
        p[1] = RADIUS;
        v[1] = -(v[1] - GRAVITY * hit) * keep;
        left -= hit;
        if v[1] < 1e-3 {
            // at rest on the floor
            v[1] = 0.0;
            break;
        }
    }
    p[1] = p[1].max(RADIUS);
    p[0] += v[0] * dt;
    p[2] += v[2] * dt;
    (p, v)
}

/// One video: its frames (SEQ_LEN x CHW, in [0, 1]) and the ball's true positions.
#[derive(Clone, Debug)]
pub struct Throw {
    pub frames: Vec<f32>,
    pub positions: Vec<[f32; 3]>,
    /// where it came from: `ball seed S #i` or a folder
    pub name: String,
}

impl Throw {
    pub fn frame(&self, i: usize) -> &[f32] {
        &self.frames[i * FRAME_LEN..(i + 1) * FRAME_LEN]
    }
}

/// A random throw that stays in view: it starts and ends inside the arena (a disc of radius
/// ARENA around the vertical axis), released 1 to 2.2 above the floor.
pub fn random_throw(rng: &mut StdRng) -> ([f32; 3], [f32; 3]) {
    let mut disc = || {
        let r = ARENA * rng.random::<f32>().sqrt();
        let a = rng.random_range(0.0..std::f32::consts::TAU);
        (r * a.cos(), r * a.sin())
    };
    let (x0, z0) = disc();
    let (x1, z1) = disc();
    let span = (SEQ_LEN - 1) as f32 * DT;
    let y0 = rng.random_range(1.0..2.2);
    let vy = rng.random_range(-2.0..1.5);
    ([x0, y0, z0], [(x1 - x0) / span, vy, (z1 - z0) / span])
}

/// Render throw `index` of the data set made from `seed`; each throw has its own random
/// stream, so a data set is the same whatever the number of threads.
pub fn generate_throw(cam: &Camera, seed: u64, index: usize) -> Throw {
    let mut rng = StdRng::seed_from_u64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ index as u64);
    let (start, velocity) = random_throw(&mut rng);
    let positions = simulate(start, velocity, SEQ_LEN);
    let mut frames = vec![0f32; SEQ_LEN * FRAME_LEN];
    for (p, out) in positions.iter().zip(frames.chunks_exact_mut(FRAME_LEN)) {
        render_frame_into(cam, *p, out);
    }
    Throw {
        frames,
        positions,
        name: format!("ball seed {seed} #{index}"),
    }
}

/// Training and held-out throws.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// `ball:SEED` or `ball-dir:PATH`
    pub source: String,
    pub train: Vec<Throw>,
    pub test: Vec<Throw>,
}

impl Dataset {
    /// The generated data set: `train` throws from `seed`, `test` from another stream.
    pub fn generate(seed: u64, train: usize, test: usize) -> Self {
        let cam = Camera::standard();
        let train_set = (0..train)
            .into_par_iter()
            .map(|i| generate_throw(&cam, seed, i))
            .collect();
        let test_set = (0..test)
            .into_par_iter()
            .map(|i| generate_throw(&cam, seed ^ 0x7E57_7E57, i))
            .collect();
        Self {
            source: format!("ball:{seed}"),
            train: train_set,
            test: test_set,
        }
    }

    /// Shuffled training indices for one epoch.
    pub fn epoch(&self, rng: &mut StdRng) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.train.len()).collect();
        order.shuffle(rng);
        order
    }

    /// Read the official format: every sub-folder of `dir` is a throw. The last fifth of the
    /// throws (by folder name) is held out.
    pub fn read_dir(dir: &Path) -> anyhow::Result<Self> {
        let mut folders = Vec::new();
        let entries = std::fs::read_dir(dir)
            .with_context(|| format!("{}: cannot read the folder", dir.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("{}: cannot list", dir.display()))?;
            let path = entry.path();
            if path.is_dir() {
                folders.push(path);
            }
        }
        folders.sort();
        if folders.len() < 2 {
            bail!(
                "{}: holds {} throw folder(s); a data set needs at least 2 (one folder per throw with frames <index>.[x,y,z].png)",
                dir.display(),
                folders.len()
            );
        }
        let throws = folders
            .par_iter()
            .map(|f| read_throw(f))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let test = (throws.len() / 5).max(1);
        let mut train = throws;
        let test_set = train.split_off(train.len() - test);
        Ok(Self {
            source: format!("ball-dir:{}", dir.display()),
            train,
            test: test_set,
        })
    }
}

/// (index, position) from a frame's file name `<index>.[x,y,z].png`.
pub fn parse_frame_name(name: &str) -> Option<(usize, [f32; 3])> {
    let stem = name.strip_suffix(".png")?;
    let (index, rest) = stem.split_once('.')?;
    let index = index.trim().parse::<usize>().ok()?;
    let inner = rest.trim().strip_prefix('[')?.strip_suffix(']')?;
    let mut it = inner.split(',').map(|v| v.trim().parse::<f32>());
    let mut p = [0f32; 3];
    for slot in &mut p {
        *slot = it.next()?.ok().filter(|v| v.is_finite())?;
    }
    if it.next().is_some() {
        return None;
    }
    Some((index, p))
}

/// The largest frame file we read (a 32x32 PNG is a few kB).
const MAX_FRAME_BYTES: u64 = 4 << 20;

/// One 32x32 frame file as CHW floats in [0, 1].
pub fn read_frame(path: &Path) -> anyhow::Result<Vec<f32>> {
    let len = crate::error::regular_file_len(path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    if len > MAX_FRAME_BYTES {
        bail!(
            "{}: {len} bytes is too large for a 32x32 frame",
            path.display()
        );
    }
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    frame_from_bytes(&bytes, path)
}

/// A 32x32 PNG held in memory as CHW floats in [0, 1]; `path` names it in errors.
pub fn frame_from_bytes(bytes: &[u8], path: &Path) -> anyhow::Result<Vec<f32>> {
    let reader =
        image::ImageReader::with_format(std::io::Cursor::new(bytes), image::ImageFormat::Png);
    let (w, h) = reader
        .into_dimensions()
        .map_err(|e| anyhow::anyhow!("{}: not a PNG image ({e})", path.display()))?;
    if (w as usize, h as usize) != (SIZE, SIZE) {
        bail!(
            "{}: the image is {w}x{h}, frames must be {SIZE}x{SIZE}",
            path.display()
        );
    }
    let img = image::load_from_memory_with_format(bytes, image::ImageFormat::Png)
        .map_err(|e| anyhow::anyhow!("{}: not a readable PNG image ({e})", path.display()))?
        .to_rgb8();
    let mut out = vec![0f32; FRAME_LEN];
    for (x, y, px) in img.enumerate_pixels() {
        for k in 0..3 {
            out[k * SIZE * SIZE + y as usize * SIZE + x as usize] = px[k] as f32 / 255.0;
        }
    }
    Ok(out)
}

/// One official throw folder: frames 0..SEQ_LEN (more are ignored), positions from the names.
pub fn read_throw(dir: &Path) -> anyhow::Result<Throw> {
    let mut frames: Vec<Option<(PathBuf, [f32; 3])>> = vec![None; SEQ_LEN];
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("{}: cannot read the folder", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("{}: cannot list", dir.display()))?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().to_string();
        if name.starts_with('.') || path.is_dir() {
            continue;
        }
        let Some((index, position)) = parse_frame_name(&name) else {
            bail!(
                "{}: not a frame name (expected <index>.[x,y,z].png, e.g. 3.[0.5,1.2,-0.7].png)",
                path.display()
            );
        };
        if index < SEQ_LEN {
            if let Some((other, _)) = &frames[index] {
                bail!(
                    "{}: frame {index} appears twice (also {})",
                    path.display(),
                    other.display()
                );
            }
            frames[index] = Some((path, position));
        }
    }
    let mut pixels = Vec::with_capacity(SEQ_LEN * FRAME_LEN);
    let mut positions = Vec::with_capacity(SEQ_LEN);
    for (i, f) in frames.into_iter().enumerate() {
        let Some((path, position)) = f else {
            bail!(
                "{}: frame {i} is missing (a throw needs frames 0..{} named <index>.[x,y,z].png)",
                dir.display(),
                SEQ_LEN - 1
            );
        };
        pixels.extend(read_frame(&path)?);
        positions.push(position);
    }
    Ok(Throw {
        frames: pixels,
        positions,
        name: dir.display().to_string(),
    })
}

/// Write a throw in the official format (folder of `<index>.[x,y,z].png`).
pub fn write_throw(throw: &Throw, dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    for (i, p) in throw.positions.iter().enumerate() {
        let rgb = frame_to_rgb(throw.frame(i));
        let path = dir.join(format!("{i}.[{},{},{}].png", p[0], p[1], p[2]));
        image::RgbImage::from_raw(SIZE as u32, SIZE as u32, rgb)
            .context("frame buffer of the wrong size")?
            .save_with_format(&path, image::ImageFormat::Png)
            .with_context(|| format!("{}: cannot write", path.display()))?;
    }
    Ok(())
}

/// CHW floats in [0, 1] -> interleaved RGB bytes.
pub fn frame_to_rgb(frame: &[f32]) -> Vec<u8> {
    let n = SIZE * SIZE;
    (0..n)
        .flat_map(|i| (0..3).map(move |k| (frame[k * n + i].clamp(0.0, 1.0) * 255.0).round() as u8))
        .collect()
}

/// The ball's centroid in a frame, in pixels (column, row): the mean of pixels that are much
/// redder than they are blue (the floor and the sky are grey-blue). None when no ball shows.
pub fn ball_centroid(frame: &[f32]) -> Option<(f32, f32)> {
    let n = SIZE * SIZE;
    let (mut sx, mut sy, mut sw) = (0f32, 0f32, 0f32);
    for i in 0..n {
        let redness = frame[i] - frame[2 * n + i];
        let w = ((redness - 0.15) / 0.3).clamp(0.0, 1.0);
        sx += w * ((i % SIZE) as f32 + 0.5);
        sy += w * ((i / SIZE) as f32 + 0.5);
        sw += w;
    }
    (sw > 0.5).then(|| (sx / sw, sy / sw))
}

/// `ball`, `ball:SEED` or `ball-dir:DIR`.
pub fn open_source(spec: &str, seed: u64) -> anyhow::Result<Dataset> {
    if spec == "ball" {
        return Ok(Dataset::generate(seed, TRAIN_THROWS, TEST_THROWS));
    }
    if let Some(s) = spec.strip_prefix("ball:") {
        let seed = s
            .parse::<u64>()
            .map_err(|_| anyhow::anyhow!("{spec}: `ball:SEED` needs a whole number"))?;
        return Ok(Dataset::generate(seed, TRAIN_THROWS, TEST_THROWS));
    }
    if let Some(dir) = spec.strip_prefix("ball-dir:") {
        return Dataset::read_dir(Path::new(dir));
    }
    bail!("{spec}: unknown data for sps-vision (use `ball`, `ball:SEED` or `ball-dir:DIR`)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_gives_the_same_throws() {
        let a = Dataset::generate(7, 3, 1);
        let b = Dataset::generate(7, 3, 1);
        let c = Dataset::generate(8, 3, 1);
        assert_eq!(a.train[2].frames, b.train[2].frames);
        assert_eq!(a.test[0].positions, b.test[0].positions);
        assert_ne!(a.train[0].positions, c.train[0].positions);
    }

    #[test]
    fn a_bounce_loses_the_set_share_of_energy() {
        let energy = |p: [f32; 3], v: [f32; 3]| GRAVITY * (p[1] - RADIUS) + 0.5 * v[1] * v[1];
        let (mut p, mut v) = ([0.3, 2.0, -0.2], [0.1, 0.7, 0.0]);
        let before = energy(p, v);
        let mut bounced = false;
        for _ in 0..2000 {
            let (p2, v2) = advance(p, v, 0.001);
            bounced = v[1] < 0.0 && v2[1] > 0.0;
            (p, v) = (p2, v2);
            if bounced {
                break;
            }
        }
        assert!(bounced);
        let ratio = energy(p, v) / before;
        assert!((ratio - (1.0 - ENERGY_LOSS)).abs() < 1e-3, "kept {ratio}");
        // frames are DT apart and the ball never goes through the floor
        let path = simulate([0.0, 2.0, 0.0], [0.5, 0.0, 0.0], SEQ_LEN);
        assert!(path.iter().all(|q| q[1] >= RADIUS));
        assert!((path[1][0] - path[0][0] - 0.5 * DT).abs() < 1e-6);
    }

    #[test]
    fn the_ball_is_drawn_where_the_camera_projects_it() {
        let cam = Camera::standard();
        for p in [[0.0, 1.0, 0.0], [1.0, 0.5, 0.8], [-1.2, 2.0, -1.0]] {
            let frame = render_frame(&cam, p);
            let (cx, cy) = ball_centroid(&frame).expect("ball visible");
            let (px, py) = cam.project(p).expect("in front");
            assert!(
                (cx - px).abs() < 1.0 && (cy - py).abs() < 1.0,
                "{p:?}: drawn at ({cx}, {cy}), projected to ({px}, {py})"
            );
        }
    }

    #[test]
    fn frame_names_parse_and_bad_ones_are_refused() {
        assert_eq!(
            parse_frame_name("3.[0.5,1.25,-0.75].png"),
            Some((3, [0.5, 1.25, -0.75]))
        );
        assert_eq!(
            parse_frame_name("12.[1, 2, 3].png"),
            Some((12, [1.0, 2.0, 3.0]))
        );
        for bad in [
            "3.png",
            "x.[1,2,3].png",
            "3.[1,2].png",
            "3.[1,2,3,4].png",
            "3.[1,2,3]",
        ] {
            assert_eq!(parse_frame_name(bad), None, "{bad}");
        }
    }
}
