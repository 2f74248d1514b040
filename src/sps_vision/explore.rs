//! The 3D lab on the latent map: the frames of held-out throws encoded, coloured by the
//! ball's true height, x or depth, or by throw; a latent decodes to its 32x32 frame. The
//! prior's path between two frames follows the rotation symmetry: it turns about the vertical
//! latent axis (z2) through the training frames' centre, the radius and the height moving
//! linearly, so two balls at one height and distance from the axis are joined by a pure
//! rotation of space.

use crate::app::explore::{
    ColourValues, Colouring, Decoded, Explore, InputCache, LabSource, MapSamples, Output,
    path_between,
};

use super::Lab;
use super::data::{self, CHANNELS, SEQ_LEN, SIZE, Throw};

/// Held-out throws encoded for the map: 320 frames.
const THROWS: usize = 16;

static INPUTS: InputCache<Vec<Throw>> = InputCache::new();

/// The held-out throws of a data spec: generated ones without rendering the training set.
fn held_out(spec: &str, seed: u64) -> anyhow::Result<Vec<Throw>> {
    let generated_seed = match spec {
        "ball" => Some(seed),
        s => s.strip_prefix("ball:").and_then(|n| n.parse::<u64>().ok()),
    };
    let mut throws = match generated_seed {
        Some(seed) => data::Dataset::generate(seed, 0, THROWS).test,
        None => data::open_source(spec, seed)?.test,
    };
    throws.truncate(THROWS);
    anyhow::ensure!(!throws.is_empty(), "{spec}: no held-out throws");
    Ok(throws)
}

impl Explore for LabSource<Lab> {
    fn dims(&self) -> usize {
        self.lab.cfg.model.latent
    }

    fn dim_role(&self, i: usize) -> Option<&'static str> {
        (i == 1).then_some("vertical")
    }

    fn samples(&self) -> anyhow::Result<MapSamples> {
        let spec = super::cli::data_spec_of(&self.lab, None);
        let seed = self.lab.meta.seed;
        let throws = INPUTS.get_or(&format!("{spec} {seed}"), || held_out(&spec, seed))?;
        let frames: Vec<&[f32]> = throws
            .iter()
            .flat_map(|t| (0..SEQ_LEN).map(move |i| t.frame(i)))
            .collect();
        let latents = super::model::encode_frames(&self.lab.model, &frames)?;
        let positions: Vec<[f32; 3]> = throws
            .iter()
            .flat_map(|t| t.positions.iter().copied())
            .collect();
        let coordinate = |name: &str, k: usize| Colouring {
            name: name.into(),
            values: ColourValues::Continuous(positions.iter().map(|p| p[k]).collect()),
        };
        Ok(MapSamples {
            latents,
            colourings: vec![
                coordinate("height y", 1),
                coordinate("x", 0),
                coordinate("depth z", 2),
                Colouring {
                    name: "throw".into(),
                    values: ColourValues::Categories {
                        names: (1..=throws.len()).map(|i| format!("throw {i}")).collect(),
                        of: (0..throws.len())
                            .flat_map(|t| std::iter::repeat_n(t, SEQ_LEN))
                            .collect(),
                    },
                },
            ],
            labels: throws
                .iter()
                .enumerate()
                .flat_map(|(t, throw)| {
                    throw.positions.iter().enumerate().map(move |(i, p)| {
                        format!(
                            "throw {} frame {} at ({:.2}, {:.2}, {:.2})",
                            t + 1,
                            i + 1,
                            p[0],
                            p[1],
                            p[2]
                        )
                    })
                })
                .collect(),
        })
    }

    fn decode_latent(&self, z: &[f32]) -> anyhow::Result<Decoded> {
        Ok(Decoded {
            values: self.lab.decode_frame(z)?,
            output: Output::Images {
                count: 1,
                channels: CHANNELS,
                height: SIZE,
                width: SIZE,
                ink: false,
            },
        })
    }

    fn prior_path(&self, a: &[f32], b: &[f32], n: usize) -> Option<Vec<Vec<f32>>> {
        Some(turning_path(a, b, &self.lab.calibration.centre, n))
    }

    fn prior_name(&self) -> String {
        "symmetry: turning about z2".into()
    }
}

/// From `a` to `b` turning (z1, z3) about `centre` by the shorter way, the distance from the
/// axis and every other dimension moving linearly.
fn turning_path(a: &[f32], b: &[f32], centre: &[f32; 3], n: usize) -> Vec<Vec<f32>> {
    let polar = |z: &[f32]| {
        let (x, y) = (z[0] - centre[0], z[2] - centre[2]);
        (x.hypot(y), y.atan2(x))
    };
    let ((ra, ta), (rb, tb)) = (polar(a), polar(b));
    let mut turn = tb - ta;
    if turn > std::f32::consts::PI {
        turn -= std::f32::consts::TAU;
    } else if turn < -std::f32::consts::PI {
        turn += std::f32::consts::TAU;
    }
    path_between(a, b, n, |t| {
        let t = t as f32;
        let mut z: Vec<f32> = a.iter().zip(b).map(|(x, y)| x + t * (y - x)).collect();
        let (r, angle) = (ra + t * (rb - ra), ta + t * turn);
        z[0] = centre[0] + r * angle.cos();
        z[2] = centre[2] + r * angle.sin();
        z
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_turning_path_is_a_rotation_when_the_ends_are_one_turn_apart() {
        let centre = [0.5f32, 0.0, -0.5];
        let a = [1.5f32, 0.3, -0.5];
        let b = super::super::eval::rotate_latent(&a, &centre, 1.2);
        let path = turning_path(&a, &b, &centre, 7);
        assert_eq!(path[0], a.to_vec());
        assert_eq!(path[6], b);
        for (k, z) in path.iter().enumerate() {
            let expected = super::super::eval::rotate_latent(&a, &centre, 1.2 * k as f32 / 6.0);
            for (x, y) in z.iter().zip(&expected) {
                assert!((x - y).abs() < 1e-5, "step {k}: {z:?} vs {expected:?}");
            }
        }
    }
}
