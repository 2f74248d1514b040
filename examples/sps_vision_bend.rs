//! How a 3D checkpoint's latent bends height: on its data set's held-out frames, the R² of a
//! least-squares affine reading of the ball's height y from the latent, beside the best
//! reading of 1 / (c - y) over c (a latent that spreads the top of the throws and crowds the
//! heights near the floor reads that better than y itself), and the R² of y read from the
//! keypoint encoder's hidden layer, the features the latent is made of. Last, the R² of the
//! row of the frame on which the data set's camera draws the ball's centre: a latent that
//! reads that row better than height holds where the ball is in the picture (height and
//! depth mixed, as the camera looks down at the floor) more than how high it is.
//!
//! Then the floor: the R² of the affine readings of x and of z (depth, towards the camera),
//! and the share of each one's miss (the variance of what the reading leaves) that follows
//! x·z and z² respectively. A camera above the floor draws the near half of the floor larger
//! than the far half (x·z) and its rows further apart (z²); a latent that holds the floor as
//! the picture shows it misses by those terms.
//!
//! ```text
//! cargo run --release --example sps_vision_bend -- CHECKPOINT...
//! ```

use anyhow::{Context, Result};
use latent_lab::metrics::{affine_fit, affine_r2, linear_fit, r_squared};
use latent_lab::sps_vision::data::Camera;
use latent_lab::sps_vision::model::{encode_frames, map_frames};
use latent_lab::sps_vision::{Lab, cli::held_out_throws, eval};

fn widen(rows: Vec<Vec<f32>>) -> Vec<Vec<f64>> {
    rows.into_iter()
        .map(|r| r.into_iter().map(f64::from).collect())
        .collect()
}

fn main() -> Result<()> {
    let files: Vec<String> = std::env::args().skip(1).collect();
    anyhow::ensure!(!files.is_empty(), "usage: sps_vision_bend CHECKPOINT...");
    println!(
        "checkpoint  R² of y  best R² of 1/(c - y)  at c  R² of y from the hidden layer  R² of the image row  R² of x  its miss on x·z  R² of z  its miss on z²"
    );
    let camera = Camera::standard();
    for file in files {
        let lab = Lab::load(std::path::Path::new(&file)).with_context(|| file.clone())?;
        let held_out = held_out_throws(&lab)?;
        let (frames, truth) = eval::frames_of(&held_out);
        let latent = widen(encode_frames(&lab.model, &frames)?);
        let height: Vec<f64> = truth.iter().map(|p| f64::from(p[1])).collect();
        let top = height.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        // c from just above the highest frame to far above it, where 1/(c - y) is nearly y
        let (r2, c) = (1..=400)
            .map(|i| top + 0.05 * f64::from(i))
            .map(|c| {
                let inverse: Vec<f64> = height.iter().map(|y| 1.0 / (c - y)).collect();
                (affine_r2(&latent, &inverse), c)
            })
            .fold(
                (f64::NEG_INFINITY, 0.0),
                |a, b| if b.0 > a.0 { b } else { a },
            );
        let hidden = match lab.model.keypoint_encoder() {
            Some(encoder) => {
                let rows = widen(map_frames(&frames, |x| encoder.forward(x))?);
                format!("{:.3}", affine_r2(&rows, &height))
            }
            None => "-".into(),
        };
        let row: Vec<f64> = truth
            .iter()
            .map(|p| camera.project(*p).map_or(f64::NAN, |(_, v)| f64::from(v)))
            .collect();
        // the floor's axis `axis` read from the latent, and the share of its miss that
        // follows `term`
        let floor = |axis: usize, term: &dyn Fn(&[f32; 3]) -> f32| {
            let truth_axis: Vec<f64> = truth.iter().map(|p| f64::from(p[axis])).collect();
            let (w, b) = affine_fit(&latent, &truth_axis);
            let read: Vec<f64> = latent
                .iter()
                .map(|z| b + z.iter().zip(&w).map(|(a, c)| a * c).sum::<f64>())
                .collect();
            let miss: Vec<f64> = truth_axis.iter().zip(&read).map(|(t, r)| t - r).collect();
            let term: Vec<f64> = truth.iter().map(|p| f64::from(term(p))).collect();
            (r_squared(&read, &truth_axis), linear_fit(&term, &miss).r2)
        };
        let (x, x_miss) = floor(0, &|p| p[0] * p[2]);
        let (z, z_miss) = floor(2, &|p| p[2] * p[2]);
        println!(
            "{file}  {:.3}  {r2:.3}  {c:.2}  {hidden}  {:.3}  {x:.3}  {x_miss:.2}  {z:.3}  {z_miss:.2}",
            affine_r2(&latent, &height),
            affine_r2(&latent, &row)
        );
    }
    Ok(())
}
