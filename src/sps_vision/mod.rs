//! SPS vision: a 3-D latent of a bouncing ball learned from the translation and rotation
//! symmetries of physical space.

pub mod cli;
pub mod data;
pub mod eval;
pub mod model;
pub mod train;
pub mod view;

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};
use candle_nn::VarMap;

use crate::nn::checkpoint::{self, CheckpointError, Checkpointed, Metadata};
use data::FRAME_LEN;
use eval::Calibration;
use model::SpsVision;
use train::TrainConfig;

pub const FAMILY: &str = "sps-vision";

/// A trained model ready for the window and the command line.
pub struct Lab {
    pub meta: Metadata,
    pub cfg: TrainConfig,
    pub model: SpsVision,
    pub calibration: Calibration,
    varmap: VarMap,
}

/// The metadata `config` of this family: the training configuration and the calibration.
pub fn config_json(cfg: &TrainConfig, cal: &Calibration) -> serde_json::Value {
    serde_json::json!({ "train": cfg, "calibration": cal })
}

crate::checkpointed_lab!(Lab);

impl Checkpointed for Lab {
    const FAMILY: &'static str = FAMILY;
    type Config = (TrainConfig, Calibration);

    fn config(meta: &Metadata, path: &Path) -> Result<Self::Config, CheckpointError> {
        let cfg: TrainConfig = checkpoint::config_entry(meta, "train", path)?;
        let m = &cfg.model;
        // the symmetries act on three dims: (z1, z3) translate, z2 is the rotation's axis
        checkpoint::limit(path, "train.model.latent", m.latent, 3..=64)?;
        checkpoint::limit(path, "train.model.rnn_hidden", m.rnn_hidden, 1..=4096)?;
        let sizes = m.channels.iter().map(|c| ("channels", c));
        for (i, (name, &size)) in sizes.chain(m.mlp.iter().map(|w| ("mlp", w))).enumerate() {
            let field = format!("train.model.{name}[{}]", i % 3);
            checkpoint::limit(path, &field, size, 1..=4096)?;
        }
        if let model::EncoderKind::Keypoints {
            channels,
            keypoints,
            hidden,
            ..
        } = m.encoder
        {
            let encoder = [
                ("channels", channels),
                ("keypoints", keypoints),
                ("hidden", hidden),
            ];
            for (name, size) in encoder {
                let field = format!("train.model.encoder.keypoints.{name}");
                checkpoint::limit(path, &field, size, 1..=4096)?;
            }
        }
        Ok((
            cfg,
            checkpoint::config_entry_or_default(meta, "calibration"),
        ))
    }

    fn build(
        meta: Metadata,
        (cfg, calibration): Self::Config,
        tensors: &HashMap<String, Tensor>,
        path: &Path,
    ) -> Result<Self, CheckpointError> {
        let (model, varmap) =
            checkpoint::build_model(tensors, path, |vb| SpsVision::new(&cfg.model, vb))?;
        Ok(Self {
            meta,
            cfg,
            model,
            calibration,
            varmap,
        })
    }

    fn metadata(&self) -> Metadata {
        let mut meta = self.meta.clone();
        meta.config = config_json(&self.cfg, &self.calibration);
        meta
    }

    fn varmap(&self) -> &VarMap {
        &self.varmap
    }
}

impl Lab {
    /// Read a state_dict saved by the official PyTorch code (the paper's sizes).
    pub fn import_pytorch(path: &Path) -> Result<Self, CheckpointError> {
        let mut cfg = TrainConfig::preset("paper").map_err(|e| CheckpointError::other(path, e))?;
        cfg.steps = 0;
        let meta =
            checkpoint::imported_metadata(FAMILY, config_json(&cfg, &Calibration::default()), path);
        Self::import_state_dict(path, meta)
    }

    /// Decode one latent to a frame (CHW, values in [0, 1]).
    pub fn decode_frame(&self, z: &[f32]) -> candle_core::Result<Vec<f32>> {
        decode_frame(&self.model, z)
    }

    /// The slider range of latent `dim`: where training frames landed, 15% beyond, or +-3.
    pub fn latent_range(&self, dim: usize) -> (f32, f32) {
        let (lo, hi) = self
            .calibration
            .range
            .get(dim)
            .copied()
            .unwrap_or((0.0, 0.0));
        if lo.is_finite() && hi.is_finite() && hi > lo {
            let m = 0.15 * (hi - lo);
            (lo - m, hi + m)
        } else {
            (-3.0, 3.0)
        }
    }
}

pub fn decode_frame(model: &SpsVision, z: &[f32]) -> candle_core::Result<Vec<f32>> {
    let zt = Tensor::from_slice(z, (1, z.len()), &Device::Cpu)?;
    let v = model.decode(&zt)?.flatten_all()?.to_vec1::<f32>()?;
    debug_assert_eq!(v.len(), FRAME_LEN);
    Ok(v)
}
