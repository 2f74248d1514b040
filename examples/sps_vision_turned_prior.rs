//! Does a 3D checkpoint's prior respect the turn its symmetry term asks for, and does its
//! latent have the shape that turn needs? On its data set's held-out throws:
//!
//! - gravity in the latent: the mean second difference of the latents over the frames where
//!   the ball flies free (its true height falls by g·dt² a step), its length against the
//!   latent's spread (the root of its total variance), and its angle from z2, the axis the
//!   symmetry turns the latent about. A latent shaped as the symmetry asks has gravity along
//!   z2 (0°): a turn about z2 then leaves the physics as it was.
//! - the prior's one-step error (each next latent predicted from the encoder's latents so
//!   far, as training's teacher-forced steps) when every latent of a throw is turned by 45,
//!   90 and 180 degrees about z2 and the prediction is turned back, against the latent's
//!   total variance; then the same for a tilt about z1, which is no symmetry of the data. In
//!   brackets, what a prior blind to the turn would add to the unturned error: the change
//!   the turn makes to gravity (|g - R⁻¹g|²), against the same variance. A prior whose
//!   turned error stays well below the unturned error plus that bracket has learnt to tell
//!   turned throws apart; one at or above it has not.
//!
//! ```text
//! cargo run --release --example sps_vision_turned_prior -- CHECKPOINT...
//! ```

use anyhow::{Context, Result};
use candle_core::{Device, Tensor};
use latent_lab::sps_vision::data::{DT, GRAVITY, SEQ_LEN};
use latent_lab::sps_vision::model::encode_frames;
use latent_lab::sps_vision::{Lab, cli::held_out_throws, eval};

/// `z` turned by `angle` about latent axis `axis` (1: z2, the symmetry's; 0: z1).
fn turned(z: &[f32], axis: usize, angle: f32) -> [f32; 3] {
    let (s, c) = angle.sin_cos();
    let (i, j) = if axis == 1 { (0, 2) } else { (1, 2) };
    let mut out = [z[0], z[1], z[2]];
    out[i] = c * z[i] - s * z[j];
    out[j] = s * z[i] + c * z[j];
    out
}

fn squared(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum()
}

fn main() -> Result<()> {
    let files: Vec<String> = std::env::args().skip(1).collect();
    anyhow::ensure!(
        !files.is_empty(),
        "usage: sps_vision_turned_prior CHECKPOINT..."
    );
    let angles = [45f32, 90.0, 180.0];
    for file in files {
        let lab = Lab::load(std::path::Path::new(&file)).with_context(|| file.clone())?;
        anyhow::ensure!(lab.model.cfg.latent == 3, "{file}: a 3-D latent is needed");
        let held_out = held_out_throws(&lab)?;
        let (frames, truth) = eval::frames_of(&held_out);
        let z = encode_frames(&lab.model, &frames)?;
        let n = held_out.len();
        let count = z.len() as f32;
        let mean: Vec<f32> = (0..3)
            .map(|d| z.iter().map(|r| r[d]).sum::<f32>() / count)
            .collect();
        let var: f32 = z.iter().map(|r| squared(r, &mean)).sum::<f32>() / count;

        let fall = GRAVITY * DT * DT;
        let (mut g, mut free) = ([0f32; 3], 0);
        for t in 0..n {
            for i in 1..SEQ_LEN - 1 {
                let k = t * SEQ_LEN + i;
                let second = |v: &dyn Fn(usize) -> f32| v(k + 1) - 2.0 * v(k) + v(k - 1);
                if (second(&|j| truth[j][1]) + fall).abs() < 0.05 * fall {
                    for (d, gd) in g.iter_mut().enumerate() {
                        *gd += second(&|j| z[j][d]);
                    }
                    free += 1;
                }
            }
        }
        anyhow::ensure!(free > 0, "{file}: no free flight in the held-out throws");
        g.iter_mut().for_each(|gd| *gd /= free as f32);
        let length = g.iter().map(|v| v * v).sum::<f32>().sqrt();
        println!(
            "{file}: gravity {:.2} of the latent's spread, {:.0}° from z2",
            length / var.sqrt(),
            (g[1].abs() / length).acos().to_degrees()
        );

        let error = |axis: usize, angle: f32| -> Result<f32> {
            let flat: Vec<f32> = z.iter().flat_map(|r| turned(r, axis, angle)).collect();
            let input = Tensor::from_vec(flat, (n, SEQ_LEN, 3), &Device::Cpu)?;
            let predicted = lab
                .model
                .predict_with_symmetry(&input, &[], &|x| Ok(x.clone()))?
                .to_vec3::<f32>()?;
            let mut sum = 0f32;
            for (t, throw) in predicted.iter().enumerate() {
                for (i, p) in throw.iter().enumerate() {
                    sum += squared(&turned(p, axis, -angle), &z[t * SEQ_LEN + i + 1]);
                }
            }
            Ok(sum / (n * (SEQ_LEN - 1)) as f32 / var)
        };
        println!("  prior's error, unturned: {:.3}", error(1, 0.0)?);
        for (axis, name) in [(1, "turned about z2"), (0, "tilted about z1")] {
            let mut line = format!("  {name}:");
            for deg in angles {
                let blind = squared(&turned(&g, axis, -deg.to_radians()), &g) / var;
                let e = error(axis, deg.to_radians())?;
                line += &format!("  {deg:.0}° {e:.3} (blind +{blind:.3})");
            }
            println!("{line}");
        }
    }
    Ok(())
}
