//! V3 (Wu, Wang, Raj, Xia, "Unsupervised disentanglement of content and style via
//! variance-invariance constraints"): a content codebook of emergent symbols and a continuous
//! style, learned from samples whose fragments share a style and differ in content. Two
//! families on the command line: `v3-notes` (pitch / instrument) and `v3-digits` (digit / ink).

pub mod cli;
pub mod codebook;
pub mod config;
pub mod data;
pub mod eval;
pub mod explore;
pub mod features;
pub mod model;
pub mod train;
pub mod view;

use candle_nn::VarMap;

use crate::nn::checkpoint::{CheckpointError, Checkpointed, Metadata, Opened, SizeLimits};
use data::Domain;
use eval::Summary;
use model::V3Model;
use train::TrainConfig;

pub const FAMILY_NOTES: &str = "v3-notes";
pub const FAMILY_DIGITS: &str = "v3-digits";

pub fn family_name(domain: Domain) -> &'static str {
    match domain {
        Domain::Notes => FAMILY_NOTES,
        Domain::Digits => FAMILY_DIGITS,
    }
}

pub fn domain_of(family: &str) -> Option<Domain> {
    match family {
        FAMILY_NOTES => Some(Domain::Notes),
        FAMILY_DIGITS => Some(Domain::Digits),
        _ => None,
    }
}

/// The metadata `config` of this family: the training configuration and the summary.
pub fn config_json(cfg: &TrainConfig, summary: &Summary) -> serde_json::Value {
    serde_json::json!({ "train": cfg, "summary": summary })
}

/// A trained model ready for the window and the command line.
pub struct Lab {
    pub meta: Metadata,
    pub cfg: TrainConfig,
    pub model: V3Model,
    pub summary: Summary,
    varmap: VarMap,
}

crate::checkpointed_lab!(Lab, FAMILY_NOTES, TrainConfig);

impl SizeLimits for TrainConfig {
    /// A sample takes about 7 MB of a step's memory with digits and 14 MB with notes (7.6 GB
    /// at 1024 digit samples a batch, 3.8 GB at 256 note samples): 256 samples, eight times
    /// the official batch, stay within 4 GB.
    const BATCH: std::ops::RangeInclusive<usize> = 1..=256;

    fn size_limits(&self) -> Vec<(String, usize, std::ops::RangeInclusive<usize>)> {
        let m = &self.model;
        vec![
            ("batch".into(), self.batch, Self::BATCH),
            ("model.hidden".into(), m.hidden, 1..=4096),
            ("model.content_dim".into(), m.content_dim, 1..=1024),
            ("model.style_dim".into(), m.style_dim, 1..=1024),
            ("model.atoms".into(), m.atoms, 2..=1024),
            ("model.pool".into(), m.pool, 1..=64),
            ("model.rank".into(), m.rank, 0..=1024),
            ("model.cepstrum".into(), m.cepstrum, 0..=1024),
            ("model.conv".into(), m.conv, 0..=256),
            (
                "model.style_discriminant".into(),
                m.style_discriminant,
                0..=1024,
            ),
        ]
    }
}

impl Checkpointed for Lab {
    fn accepts(family: &str) -> bool {
        domain_of(family).is_some()
    }

    fn build(file: Opened<TrainConfig>) -> Result<Self, CheckpointError> {
        let m = &file.cfg.model;
        if family_name(m.domain) != file.meta.family {
            return Err(file.refuse(format!(
                "config.train.model.domain is {:?}, the family is {}",
                m.domain, file.meta.family
            )));
        }
        refuse_settings_it_cannot_build(&file)?;
        file.limits("train.", file.cfg.size_limits())?;
        let (model, varmap) = file.build_model(|cfg, vb| V3Model::new(&cfg.model, vb))?;
        Ok(Self {
            summary: file.entry_or_default("summary"),
            meta: file.meta,
            cfg: file.cfg,
            model,
            varmap,
        })
    }
}

/// Settings an older checkpoint may hold, each with the value at which it changes nothing.
/// This program builds no model with another value, so such a file is refused rather than
/// built as a different model than the one its weights were trained in.
fn refuse_settings_it_cannot_build(file: &Opened<TrainConfig>) -> Result<(), CheckpointError> {
    let neutral = [
        ("timbre_conv", serde_json::json!(false)),
        ("style_linear", serde_json::json!(false)),
        ("style_standardise", serde_json::json!(false)),
        ("mix_hidden", serde_json::json!(0)),
    ];
    for (key, value) in neutral {
        match file.meta.config.pointer(&format!("/train/model/{key}")) {
            Some(v) if *v != value => {
                return Err(file.refuse(format!(
                    "config.train.model.{key} = {v}: a model this program cannot build"
                )));
            }
            _ => {}
        }
    }
    Ok(())
}

impl Lab {
    pub fn domain(&self) -> Domain {
        self.cfg.model.domain
    }

    pub fn atoms(&self) -> anyhow::Result<Vec<Vec<f32>>> {
        Ok(self.model.codebook.atoms_vec()?)
    }

    /// Every atom decoded with one style latent: one fragment per atom.
    pub fn decode_atoms(&self, style: &[f32]) -> anyhow::Result<Vec<Vec<f32>>> {
        let atoms = self.atoms()?;
        let styles = vec![style.to_vec(); atoms.len()];
        Ok(self.model.decode_rows(&atoms, &styles)?)
    }

    /// Encode fragments (each `fragment_len` long).
    pub fn encode(&self, fragments: &[&[f32]]) -> anyhow::Result<model::Encoded> {
        Ok(self.model.encode_all(fragments)?)
    }

    /// The style latent of a known style (a training or held-out instrument / colour).
    pub fn style_latent(&self, style: usize) -> Option<&[f32]> {
        self.summary.style_latents.get(style).map(|v| v.as_slice())
    }
}

/// Spectrogram thumbnails show the bins below this (4 kHz): where the notes' partials are.
pub const THUMB_BINS: usize = 256;

/// A fragment as an RGB picture: a spectrogram (viridis, low frequencies at the bottom, bins
/// below [`THUMB_BINS`]) for notes, the image itself for digits. Returns (width, height, rgb).
pub fn fragment_image(domain: Domain, fragment: &[f32]) -> (usize, usize, Vec<u8>) {
    let [c, h, w] = domain.fragment_shape();
    match domain {
        Domain::Notes => {
            let rows = THUMB_BINS.min(h);
            let mut rgb = vec![0u8; w * rows * 3];
            for b in 0..rows {
                for t in 0..w {
                    let v = fragment.get(b * w + t).copied().unwrap_or(0.0);
                    let col = crate::figures::viridis(v.clamp(0.0, 1.0) / 0.8);
                    let y = rows - 1 - b;
                    rgb[(y * w + t) * 3..(y * w + t) * 3 + 3].copy_from_slice(&col);
                }
            }
            (w, rows, rgb)
        }
        Domain::Digits => {
            let mut rgb = vec![0u8; w * h * 3];
            for y in 0..h {
                for x in 0..w {
                    for ch in 0..3.min(c) {
                        let v = fragment.get((ch * h + y) * w + x).copied().unwrap_or(0.0);
                        rgb[(y * w + x) * 3 + ch] = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
                    }
                }
            }
            (w, h, rgb)
        }
    }
}

/// Resynthesise a notes fragment (512 bins x 32 frames of features) as one second of audio at
/// 16 kHz with Griffin-Lim (`iters` iterations), peak at most 0.9.
pub fn fragment_audio(
    stft: &mut crate::audio::dsp::Stft,
    fragment: &[f32],
    iters: usize,
) -> Vec<f32> {
    use crate::audio::dsp::{self, N_BINS};
    let (bins, frames) = (data::NOTE_BINS, data::NOTE_FRAMES);
    let mut mags = vec![0f32; frames * N_BINS];
    for b in 0..bins {
        for t in 0..frames {
            mags[t * N_BINS + b] =
                dsp::feature_to_magnitude(fragment.get(b * frames + t).copied().unwrap_or(0.0));
        }
    }
    let mut audio = dsp::griffin_lim(stft, frames, &mags, data::NOTE_SAMPLES, iters, 11);
    let peak = audio.iter().fold(0f32, |m, s| m.max(s.abs()));
    if peak > 0.9 {
        audio.iter_mut().for_each(|s| *s *= 0.9 / peak);
    }
    audio
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::nn::checkpoint;
    use std::path::Path;

    /// A setting no model here has is refused when on, named, and ignored when neutral.
    #[test]
    fn a_setting_it_cannot_build_is_refused_by_name() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/v3_notes.safetensors");
        let good = std::fs::read(&path).unwrap();
        let loaded = checkpoint::load_bytes(&good, &path).unwrap();
        let open = |key: &str, value: serde_json::Value| {
            let mut config = loaded.meta.config.clone();
            config["train"]["model"][key] = value;
            let bytes = checkpoint::with_config(&good, &config.to_string()).unwrap();
            let file = checkpoint::load_bytes(&bytes, &path).unwrap();
            Lab::from_parts(file.meta, &file.tensors, &path).map(drop)
        };
        assert!(open("style_linear", serde_json::json!(false)).is_ok());
        let err = open("style_linear", serde_json::json!(true)).err().unwrap();
        assert!(err.to_string().contains("style_linear = true"), "{err}");
        assert!(open("mix_hidden", serde_json::json!(32)).is_err());
    }
}
