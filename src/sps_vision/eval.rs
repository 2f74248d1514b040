//! Metrics of the SPS vision model (DESIGN.md): how linearly the latent maps to the ball's
//! true position on held-out throws, how well the prior rolls a throw forward, and whether
//! rotating the latent about its vertical axis moves the decoded ball as a rotation of space.

use candle_core::{Device, Result, Tensor};
use serde::{Deserialize, Serialize};

use super::data::{self, BASE_LEN, Camera, Dataset, FRAME_LEN, SEQ_LEN, Throw};
use super::model::{SpsVision, decode_latents, encode_frames, map_frames};
use crate::metrics::{affine_fit, affine_r2, r_squared};

/// What the window needs to show a model without its data: the linear map from latents to
/// the ball's position, where the latents of the data lie, and how good the map is.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// position[k] = sum_j map[k][j] * z[j] + offset[k], k = x, y, z
    pub map: [[f64; 3]; 3],
    pub offset: [f64; 3],
    pub r2: [f64; 3],
    /// mean latent of the training frames: the rotation control turns about the vertical
    /// latent axis through it
    pub centre: [f32; 3],
    /// range of each latent over the training frames
    pub range: [(f32, f32); 3],
}

impl Calibration {
    pub fn r2_min(&self) -> f64 {
        self.r2.iter().copied().fold(f64::INFINITY, f64::min)
    }

    pub fn is_fitted(&self) -> bool {
        self.map.iter().flatten().any(|v| *v != 0.0)
    }

    /// The position a latent stands for.
    pub fn position(&self, z: &[f32]) -> [f32; 3] {
        let mut p = [0f32; 3];
        for (k, slot) in p.iter_mut().enumerate() {
            let v = self.offset[k]
                + (0..3)
                    .map(|j| self.map[k][j] * z.get(j).copied().unwrap_or(0.0) as f64)
                    .sum::<f64>();
            *slot = v as f32;
        }
        p
    }

    /// Whether turning the latent by +a turns space by +a (true) or by -a (the learned
    /// horizontal plane is a mirror image of the floor's).
    pub fn same_handedness(&self) -> bool {
        // the (z1, z3) -> (x, z) block of the map
        let det = self.map[0][0] * self.map[2][2] - self.map[0][2] * self.map[2][0];
        det >= 0.0
    }

    /// The world point the rotation control turns about (its height is irrelevant).
    pub fn world_centre(&self) -> [f32; 3] {
        self.position(&self.centre)
    }

    /// How far the latent's axes lean from the ones the symmetries stand for, in degrees, as
    /// the map reads them: the plane in which turning (z1, z3) moves the ball, against the
    /// floor, and the line along which z2 moves it, against the vertical. Both are 0 when
    /// the rotation control turns the ball about the vertical, as the symmetry asks; R² is
    /// blind to them (any affine mix of x, y and z reads as well).
    pub fn tilts_deg(&self) -> Tilts {
        let column = |j: usize| [self.map[0][j], self.map[1][j], self.map[2][j]];
        let (a, b) = (column(0), column(2));
        let normal = [
            a[1] * b[2] - a[2] * b[1],
            a[2] * b[0] - a[0] * b[2],
            a[0] * b[1] - a[1] * b[0],
        ];
        // the angle of a line (either sense) from the vertical
        let from_vertical = |v: [f64; 3]| {
            let norm = v.iter().map(|c| c * c).sum::<f64>().sqrt();
            (v[1].abs() / norm).clamp(0.0, 1.0).acos().to_degrees()
        };
        Tilts {
            turn_plane: from_vertical(normal),
            height_axis: from_vertical(column(1)),
        }
    }
}

/// See [`Calibration::tilts_deg`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tilts {
    pub turn_plane: f64,
    pub height_axis: f64,
}

/// Turn latent z by `angle` about the vertical latent axis (z2) through `centre`.
pub fn rotate_latent(z: &[f32], centre: &[f32; 3], angle: f32) -> Vec<f32> {
    let (s, c) = angle.sin_cos();
    let (a, b) = (z[0] - centre[0], z[2] - centre[2]);
    vec![centre[0] + c * a - s * b, z[1], centre[2] + s * a + c * b]
}

/// Where the rotation control takes the ball as it turns latent `z` once around (about z2
/// through the calibration's centre, in the sense `sense` = ±1), read through the fitted
/// map: `points` + 1 world positions, the first and the last at `z`. A latent shaped as the
/// symmetry asks traces a level circle; one whose turning plane leans traces a tilted ellipse
/// that lifts and lowers the ball.
pub fn turn_ring(cal: &Calibration, z: &[f32], sense: f32, points: usize) -> Vec<[f32; 3]> {
    (0..=points)
        .map(|i| {
            let angle = sense * std::f32::consts::TAU * i as f32 / points as f32;
            cal.position(&rotate_latent(z, &cal.centre, angle))
        })
        .collect()
}

/// Turn a world position by `angle` about the vertical axis through `centre`, in the same
/// sense as [`rotate_latent`] turns (z1, z3) when `same_handedness`, else the opposite.
pub fn rotate_world(p: [f32; 3], centre: [f32; 3], angle: f32, same_handedness: bool) -> [f32; 3] {
    let angle = if same_handedness { angle } else { -angle };
    let (s, c) = angle.sin_cos();
    let (a, b) = (p[0] - centre[0], p[2] - centre[2]);
    [centre[0] + c * a - s * b, p[1], centre[2] + s * a + c * b]
}

pub fn frames_of(throws: &[Throw]) -> (Vec<&[f32]>, Vec<[f32; 3]>) {
    let mut frames = Vec::new();
    let mut positions = Vec::new();
    for t in throws {
        for i in 0..SEQ_LEN {
            frames.push(t.frame(i));
            positions.push(t.positions[i]);
        }
    }
    (frames, positions)
}

/// Latents (as f64) and true positions of some frames.
struct Frames {
    z: Vec<Vec<f64>>,
    positions: Vec<[f32; 3]>,
}

impl Frames {
    fn encode(model: &SpsVision, throws: &[Throw]) -> Result<Self> {
        let (frames, positions) = frames_of(throws);
        let z = encode_frames(model, &frames)?
            .into_iter()
            .map(|r| r.into_iter().map(f64::from).collect())
            .collect();
        Ok(Self { z, positions })
    }

    /// The rows a fit reads: the latents, or a function of each.
    fn rows(&self, features: fn(&[f64]) -> Vec<f64>) -> Vec<Vec<f64>> {
        self.z.iter().map(|r| features(r)).collect()
    }
}

/// The frames of (up to `fit_throws`) training throws, which the maps are fitted on, and of
/// the held-out throws, which score them.
pub struct Encoded {
    train: Frames,
    test: Frames,
}

impl Encoded {
    pub fn new(model: &SpsVision, data: &Dataset, fit_throws: usize) -> Result<Self> {
        let n_fit = data.train.len().min(fit_throws);
        Ok(Self {
            train: Frames::encode(model, &data.train[..n_fit])?,
            test: Frames::encode(model, &data.test)?,
        })
    }

    /// For each coordinate, the least-squares affine fit of it on `features` of the training
    /// latents and its R^2 on the held-out ones: (weights, offset, R^2).
    fn fit(&self, features: fn(&[f64]) -> Vec<f64>) -> [(Vec<f64>, f64, f64); 3] {
        let (x_train, x_test) = (self.train.rows(features), self.test.rows(features));
        std::array::from_fn(|k| {
            let y: Vec<f64> = self.train.positions.iter().map(|p| p[k] as f64).collect();
            let (w, b) = affine_fit(&x_train, &y);
            let truth: Vec<f64> = self.test.positions.iter().map(|p| p[k] as f64).collect();
            let pred: Vec<f64> = x_test
                .iter()
                .map(|r| b + r.iter().zip(&w).map(|(a, c)| a * c).sum::<f64>())
                .collect();
            let r2 = r_squared(&pred, &truth);
            (w, b, r2)
        })
    }

    /// The linear map from latents to positions and its R^2 per coordinate.
    pub fn calibration(&self) -> Calibration {
        let mut cal = Calibration::default();
        for (k, (w, b, r2)) in self.fit(<[f64]>::to_vec).into_iter().enumerate() {
            for j in 0..3 {
                cal.map[k][j] = w.get(j).copied().unwrap_or(0.0);
            }
            cal.offset[k] = b;
            cal.r2[k] = r2;
        }
        let z_train = &self.train.z;
        for j in 0..3 {
            // the latents are f32 values: summed as f32, as the window's centre always was
            let col = || z_train.iter().map(|r| r[j] as f32);
            cal.centre[j] = col().sum::<f32>() / z_train.len().max(1) as f32;
            cal.range[j] = col().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), v| {
                (lo.min(v), hi.max(v))
            });
        }
        cal
    }

    /// R^2 per coordinate of a cubic fit of the latent ([`monomials`]), fitted and scored as
    /// the linear map is. Far above the linear R^2, it says the latent holds the position but
    /// bent; near it, that what the linear map misses is not in the latent at all.
    pub fn cubic_r2(&self) -> [f64; 3] {
        self.fit(monomials).map(|(_, _, r2)| r2)
    }

    /// The standard deviation of each latent dim over the held-out frames: the scale that the
    /// translation term's shifts (`t_range`) act on, since no KL term fixes it.
    pub fn latent_sd(&self) -> Vec<f64> {
        let z = &self.test.z;
        let n = z.len().max(1) as f64;
        let dims = z.first().map_or(0, Vec::len);
        (0..dims)
            .map(|j| {
                let mean = z.iter().map(|r| r[j]).sum::<f64>() / n;
                (z.iter().map(|r| (r[j] - mean).powi(2)).sum::<f64>() / n).sqrt()
            })
            .collect()
    }
}

/// Fit the linear map from latents to positions on (up to `fit_throws`) training throws and
/// score it (R^2 per coordinate) on the held-out throws.
pub fn calibrate(model: &SpsVision, data: &Dataset, fit_throws: usize) -> Result<Calibration> {
    Ok(Encoded::new(model, data, fit_throws)?.calibration())
}

/// How well the encoder's keypoints follow the ball and its shadow on the held-out frames
/// of (up to `throws`) throws of the renderer's camera: for each, the best keypoint's
/// [`follows`] score. The ball's image alone fixes only two of its three coordinates; the
/// shadow, right below it, is what tells a ball further back from one higher up. None for
/// an encoder without keypoints.
pub fn keypoint_tracking(
    model: &SpsVision,
    data: &Dataset,
    throws: usize,
) -> Result<Option<KeypointTracking>> {
    let Some(encoder) = model.keypoint_encoder() else {
        return Ok(None);
    };
    let cam = Camera::standard();
    let (mut frames, mut ball, mut shadow) = (Vec::new(), Vec::new(), Vec::new());
    for t in data.test.iter().take(throws) {
        for (i, &p) in t.positions.iter().enumerate() {
            if let (Some(b), Some(s)) = (cam.project(p), cam.project([p[0], 0.0, p[2]])) {
                frames.push(t.frame(i));
                ball.push(b);
                shadow.push(s);
            }
        }
    }
    let features = map_frames(&frames, |x| encoder.keypoints(x))?;
    Ok(Some(KeypointTracking {
        ball: follows(&features, &ball),
        shadow: follows(&features, &shadow),
    }))
}

/// [`keypoint_tracking`]'s scores, each in (-inf, 1]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KeypointTracking {
    pub ball: f64,
    pub shadow: f64,
}

/// How closely the best of the keypoints follows `target` (image points, one per row of
/// `features`, whose keypoints are (u, v, presence) triples): for each keypoint, the R^2 of
/// the least-squares affine map from its (u, v) to the target's column and to its row, the
/// lower of the two; then the best keypoint's. Fitted and scored on the same points: an
/// affine map of two inputs has no room to fit noise on thousands of frames.
pub fn follows(features: &[Vec<f32>], target: &[(f32, f32)]) -> f64 {
    let keypoints = features.first().map_or(0, |r| r.len() / 3);
    (0..keypoints)
        .map(|j| {
            let uv: Vec<Vec<f64>> = features
                .iter()
                .map(|r| vec![r[3 * j] as f64, r[3 * j + 1] as f64])
                .collect();
            let r2 = |coord: fn(&(f32, f32)) -> f32| {
                let y: Vec<f64> = target.iter().map(|p| coord(p) as f64).collect();
                affine_r2(&uv, &y)
            };
            r2(|p| p.0).min(r2(|p| p.1))
        })
        .fold(f64::NEG_INFINITY, f64::max)
}

/// Every monomial of a point's coordinates up to degree 3.
pub fn monomials(z: &[f64]) -> Vec<f64> {
    let d = z.len();
    let mut f = z.to_vec();
    for i in 0..d {
        for j in i..d {
            f.push(z[i] * z[j]);
            for k in j..d {
                f.push(z[i] * z[j] * z[k]);
            }
        }
    }
    f
}

/// For each held-out throw, the R^2 of the path `cal` reads from the throw's latents against
/// its true path ([`path_r2`]): how evenly the map holds from throw to throw.
pub fn r2_by_throw(model: &SpsVision, cal: &Calibration, data: &Dataset) -> Result<Vec<f64>> {
    let (frames, positions) = frames_of(&data.test);
    let z = encode_frames(model, &frames)?;
    let read: Vec<[f32; 3]> = z.iter().map(|z| cal.position(z)).collect();
    let per_throw = read.chunks(SEQ_LEN).zip(positions.chunks(SEQ_LEN));
    Ok(per_throw
        .map(|(read, truth)| path_r2(read, truth))
        .collect())
}

/// The R^2 of a read path against the true one, the three coordinates together, so that a
/// throw that barely moves along one coordinate is not judged on that one alone.
pub fn path_r2(read: &[[f32; 3]], truth: &[[f32; 3]]) -> f64 {
    let n = truth.len().max(1) as f64;
    let (mut ss_res, mut ss_tot) = (0.0, 0.0);
    for k in 0..3 {
        let mean = truth.iter().map(|p| p[k] as f64).sum::<f64>() / n;
        for (r, t) in read.iter().zip(truth) {
            ss_res += (r[k] as f64 - t[k] as f64).powi(2);
            ss_tot += (t[k] as f64 - mean).powi(2);
        }
    }
    if ss_tot > 0.0 {
        1.0 - ss_res / ss_tot
    } else {
        0.0
    }
}

/// Latents (one row per frame) and decoded frames of a roll-out.
pub type Rollout = (Vec<Vec<f32>>, Vec<Vec<f32>>);

/// The prior's roll-out of `throw` from its first BASE_LEN frames: latents (SEQ_LEN x 3) and
/// the decoded frames (SEQ_LEN x FRAME_LEN; the first BASE_LEN are decodings of the given ones).
pub fn rollout(model: &SpsVision, throw: &Throw) -> Result<Rollout> {
    let given: Vec<&[f32]> = (0..BASE_LEN).map(|i| throw.frame(i)).collect();
    let z = encode_frames(model, &given)?;
    let flat: Vec<f32> = z.iter().flatten().copied().collect();
    let zt = Tensor::from_vec(flat, (1, BASE_LEN, model.cfg.latent), &Device::Cpu)?;
    let rolled = model.rollout(&zt, SEQ_LEN)?.squeeze(0)?.to_vec2::<f32>()?;
    let frames = decode_latents(model, &rolled)?;
    Ok((rolled, frames))
}

/// Mean squared pixel error of the prior's roll-out of frames BASE_LEN+1..SEQ_LEN (from the
/// first BASE_LEN frames) on up to `throws` held-out throws.
pub fn rollout_mse(model: &SpsVision, data: &Dataset, throws: usize) -> Result<f64> {
    let mut sum = 0f64;
    let mut count = 0usize;
    for throw in data.test.iter().take(throws) {
        let (_, frames) = rollout(model, throw)?;
        for (i, frame) in frames.iter().enumerate().skip(BASE_LEN) {
            sum += frame
                .iter()
                .zip(throw.frame(i))
                .map(|(a, b)| ((a - b) as f64).powi(2))
                .sum::<f64>();
            count += FRAME_LEN;
        }
    }
    Ok(sum / count.max(1) as f64)
}

/// How well a model's decoder follows the rotation symmetry ([`equivariance`]).
pub struct Equivariance {
    /// mean squared pixel error against the turned truth
    pub mse: f64,
    /// mean distance in pixels between the decoded ball's centre and the truth's, over the
    /// frames where both show a ball (NaN when none does)
    pub centroid_px: f64,
    /// the share of turned frames with a ball in the truth that show one when decoded
    pub ball_found: f64,
    /// mean squared error at each angle
    pub per_angle: Vec<f64>,
}

/// Equivariance of the decoder under the rotation symmetry, on held-out frames: for each
/// angle, decode the frame's latent turned about the vertical latent axis and compare with a
/// render of the ball's true position turned the same way about the vertical axis through
/// the calibration's centre.
pub fn equivariance(
    model: &SpsVision,
    cal: &Calibration,
    data: &Dataset,
    frames: usize,
    angles: &[f32],
) -> Result<Equivariance> {
    let cam = Camera::standard();
    let (all_frames, all_pos) = frames_of(&data.test);
    let step = (all_frames.len() / frames.max(1)).max(1);
    let picked: Vec<usize> = (0..all_frames.len()).step_by(step).take(frames).collect();
    let chosen: Vec<&[f32]> = picked.iter().map(|&i| all_frames[i]).collect();
    let z = encode_frames(model, &chosen)?;
    let centre = cal.world_centre();
    let same = cal.same_handedness();
    let (mut total, mut dist_sum, mut dist_n, mut balls) = (0f64, 0f64, 0usize, 0usize);
    let mut per_angle = Vec::with_capacity(angles.len());
    for &a in angles {
        let turned: Vec<Vec<f32>> = z
            .iter()
            .map(|zi| rotate_latent(zi, &cal.centre, a))
            .collect();
        let decoded = decode_latents(model, &turned)?;
        let mut err = 0f64;
        for (k, &i) in picked.iter().enumerate() {
            let truth = data::render_frame(&cam, rotate_world(all_pos[i], centre, a, same));
            err += decoded[k]
                .iter()
                .zip(&truth)
                .map(|(p, t)| ((p - t) as f64).powi(2))
                .sum::<f64>()
                / FRAME_LEN as f64;
            let Some(b) = data::ball_centroid(&truth) else {
                continue;
            };
            balls += 1;
            if let Some(a) = data::ball_centroid(&decoded[k]) {
                dist_sum += (((a.0 - b.0).powi(2) + (a.1 - b.1).powi(2)) as f64).sqrt();
                dist_n += 1;
            }
        }
        let err = err / picked.len().max(1) as f64;
        total += err;
        per_angle.push(err);
    }
    Ok(Equivariance {
        mse: total / angles.len().max(1) as f64,
        centroid_px: if dist_n > 0 {
            dist_sum / dist_n as f64
        } else {
            f64::NAN
        },
        ball_found: dist_n as f64 / balls.max(1) as f64,
        per_angle,
    })
}

/// The angle grid of the equivariance metric: every 30 degrees.
pub fn angle_grid() -> Vec<f32> {
    (0..12).map(|k| (k as f32 * 30.0).to_radians()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The spread is of the held-out latents alone, per dim, whatever their mean.
    #[test]
    fn the_latent_spread_is_the_held_out_frames_standard_deviation() {
        let frames = |z: Vec<Vec<f64>>| Frames {
            positions: vec![[0.0; 3]; z.len()],
            z,
        };
        let encoded = Encoded {
            train: frames(vec![vec![100.0, -100.0]; 3]),
            test: frames(vec![vec![1.0, 5.0], vec![3.0, 5.0], vec![5.0, 5.0]]),
        };
        let sd = encoded.latent_sd();
        assert!((sd[0] - (8.0f64 / 3.0).sqrt()).abs() < 1e-12, "{sd:?}");
        assert_eq!(sd[1], 0.0, "{sd:?}");
    }

    /// A latent whose (z1, z3) plane is the floor and whose z2 is height leans 0 degrees,
    /// whatever the scale, sense and turn within the floor; tipping the plane about the x
    /// axis by 30 degrees is read as 30.
    #[test]
    fn the_tilts_read_how_far_the_latent_axes_lean() {
        let mut cal = Calibration::default();
        let (s, c) = 0.4f64.sin_cos();
        // x = 2 (c z1 - s z3), y = -0.5 z2, z = 2 (s z1 + c z3)
        cal.map = [
            [2.0 * c, 0.0, -2.0 * s],
            [0.0, -0.5, 0.0],
            [2.0 * s, 0.0, 2.0 * c],
        ];
        let t = cal.tilts_deg();
        assert!(
            t.turn_plane.abs() < 1e-6 && t.height_axis.abs() < 1e-6,
            "{t:?}"
        );
        let (s, c) = 30f64.to_radians().sin_cos();
        // the same latent, then the world turned by 30 degrees about x: (y, z) -> (c y - s z, s y + c z)
        cal.map = [[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]];
        let t = cal.tilts_deg();
        assert!((t.turn_plane - 30.0).abs() < 1e-6, "{t:?}");
        assert!((t.height_axis - 30.0).abs() < 1e-6, "{t:?}");
    }

    /// Turned once around, a latent whose (z1, z3) is the floor keeps the ball at one height
    /// on a circle about the centre; the same latent in a world tipped 30 degrees about x
    /// lifts and lowers it by the radius times sin 30 on either side.
    #[test]
    fn the_turn_ring_is_level_for_a_level_latent_and_tilted_for_a_tipped_one() {
        let mut cal = Calibration {
            map: [[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 2.0]],
            offset: [0.5, 1.0, -0.5],
            centre: [0.1, 0.0, 0.2],
            ..Default::default()
        };
        // 0.5 from the centre along z1: radius 1 in the world
        let z = [0.6, 0.3, 0.2];
        let ring = turn_ring(&cal, &z, 1.0, 72);
        assert_eq!(ring.len(), 73);
        assert_eq!(ring[0], cal.position(&z));
        let world_centre = cal.world_centre();
        for p in &ring {
            assert!((p[1] - 1.3).abs() < 1e-5, "{p:?}");
            let r = ((p[0] - world_centre[0]).powi(2) + (p[2] - world_centre[2]).powi(2)).sqrt();
            assert!((r - 1.0).abs() < 1e-5, "{p:?}");
        }
        let quarter = turn_ring(&cal, &z, 1.0, 4)[1];
        let mirrored = turn_ring(&cal, &z, -1.0, 4)[1];
        assert!(
            (quarter[2] - mirrored[2]).abs() > 1.9,
            "{quarter:?} {mirrored:?}"
        );

        let (s, c) = 30f64.to_radians().sin_cos();
        cal.map = [[2.0, 0.0, 0.0], [0.0, c, -2.0 * s], [0.0, s, 2.0 * c]];
        let heights: Vec<f32> = turn_ring(&cal, &z, 1.0, 72).iter().map(|p| p[1]).collect();
        let span = heights.iter().cloned().fold(f32::MIN, f32::max)
            - heights.iter().cloned().fold(f32::MAX, f32::min);
        assert!((span - 2.0 * 0.5).abs() < 1e-3, "{span}");
    }

    /// The score is the best keypoint's, and a keypoint that follows only one coordinate of
    /// the target does not count as following it.
    #[test]
    fn a_keypoint_follows_a_target_when_both_its_coordinates_do() {
        let target: Vec<(f32, f32)> = (0..200)
            .map(|i| ((i as f32 * 0.37).sin(), (i as f32 * 0.11).cos()))
            .collect();
        // keypoint 0: the target's column only; keypoint 1: the target, mirrored and shifted
        let row = |&(u, v): &(f32, f32), i: usize| {
            let noise = ((i * 7919) % 13) as f32 / 13.0;
            vec![u, noise, 0.0, 0.5 - 0.8 * u, 0.2 + 0.3 * v, 0.0]
        };
        let features: Vec<Vec<f32>> = target.iter().enumerate().map(|(i, p)| row(p, i)).collect();
        assert!((follows(&features, &target) - 1.0).abs() < 1e-6);
        let first_only: Vec<Vec<f32>> = features.iter().map(|r| r[..3].to_vec()).collect();
        assert!(follows(&first_only, &target) < 0.2);
    }

    #[test]
    fn a_path_is_judged_on_its_coordinates_together() {
        let truth = [[0.0, 0.0, 1.0], [1.0, 2.0, 1.0], [2.0, 0.0, 1.0]];
        assert_eq!(path_r2(&truth, &truth), 1.0);
        // off by 0.1 along z, on which the throw does not move: judged with x and y
        let read = truth.map(|[x, y, z]| [x, y, z + 0.1]);
        let r2 = path_r2(&read, &truth);
        assert!(r2 > 0.99 && r2 < 1.0, "{r2}");
    }

    /// A latent that holds the position bent (height as the cube of z2): the linear fit
    /// misses it, the cubic one reads it; a latent without height reads it with neither.
    #[test]
    fn a_bent_latent_is_told_from_a_latent_that_lacks_the_coordinate() {
        // three coordinates that do not follow each other (low-discrepancy fractions)
        let frac = |i: usize, a: f64| (i as f64 * a).fract() * 2.0 - 1.0;
        let points: Vec<[f32; 3]> = (0..400)
            .map(|i| {
                [
                    frac(i, 0.618_034) as f32,
                    frac(i, 0.754_878) as f32,
                    frac(i, 0.569_840) as f32,
                ]
            })
            .collect();
        // the latents, fitted and scored on the same frames
        let encoded = |latent: fn(&[f32; 3]) -> Vec<f64>| {
            let frames = || Frames {
                z: points.iter().map(latent).collect(),
                positions: points.clone(),
            };
            Encoded {
                train: frames(),
                test: frames(),
            }
        };
        let bent = encoded(|p| vec![p[0] as f64, (p[1] as f64).cbrt(), p[2] as f64]);
        let flat = encoded(|p| vec![p[0] as f64, 0.0, p[2] as f64]);
        assert_eq!(monomials(&[1.0, 2.0, 3.0]).len(), 19);
        let (linear, curved) = (bent.calibration().r2[1], bent.cubic_r2()[1]);
        assert!(linear < 0.95 && curved > 0.999, "{linear} {curved}");
        assert!(flat.cubic_r2()[1] < 0.5, "{}", flat.cubic_r2()[1]);
    }
}
