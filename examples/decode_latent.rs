//! Load any latent-lab checkpoint and decode one latent point into what its model makes:
//!
//! ```text
//! cargo run --release --example decode_latent -- models/sps_vision.safetensors 0.1 0.2 0.3 out.png
//! cargo run --release --example decode_latent -- models/vae_relevance.safetensors 0.5 0 0 0 0 0 0 0 event.npy
//! ```
//!
//! The checkpoint's metadata names its family, which decides the outputs it can write (`.npy`
//! always, `.png` for the image models); give one number per latent dimension.

use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use candle_core::{Device, Tensor};
use latent_lab::cli::{self, CliError};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [checkpoint, latent @ .., out] = args.as_slice() else {
        bail!("usage: decode_latent CHECKPOINT Z1 [Z2 ...] OUT");
    };
    if latent.is_empty() {
        bail!("give the latent point before OUT: one number per latent dimension");
    }
    let z = latent
        .iter()
        .map(|v| {
            v.parse::<f32>()
                .with_context(|| format!("`{v}` is not a number"))
        })
        .collect::<Result<Vec<f32>>>()?;

    // Every family decodes a batch of latents stored as an (n, latent) .npy file.
    let dir = tempfile::tempdir().context("creating a scratch folder")?;
    let latents = dir.path().join("latent.npy");
    Tensor::from_vec(z.clone(), (1, z.len()), &Device::Cpu)?
        .write_npy(&latents)
        .with_context(|| format!("writing {}", latents.display()))?;

    cli::decode(Path::new(checkpoint), &latents, Path::new(out)).map_err(|e| {
        let (CliError::BadInput(e) | CliError::Failed(e)) = e;
        // The scratch file is ours, not the user's: name what they typed instead.
        anyhow!(
            "{}",
            format!("{e:#}").replace(&latents.display().to_string(), "the latent point")
        )
    })?;
    println!("decoded {z:?} with {checkpoint} into {out}");
    Ok(())
}
