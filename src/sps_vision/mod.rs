//! SPS vision: a 3-D latent of a bouncing ball learned from the translation and rotation
//! symmetries of physical space.

pub mod cli;
pub mod data;
pub mod eval;
pub mod model;
pub mod train;
pub mod view;

use std::path::Path;

use candle_core::{Device, Tensor};
use candle_nn::VarMap;

use crate::nn::checkpoint::{self, CheckpointError, Metadata};
use crate::worker::Snapshot;
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

impl Lab {
    fn build(
        meta: Metadata,
        tensors: &std::collections::HashMap<String, Tensor>,
        path: &Path,
    ) -> Result<Self, CheckpointError> {
        let cfg: TrainConfig = checkpoint::config_entry(&meta, "train", path)?;
        let calibration = checkpoint::config_entry_or_default(&meta, "calibration");
        let (model, varmap) = checkpoint::build_model(tensors, path, |vm| {
            SpsVision::new(&cfg.model, crate::nn::var_builder(vm))
        })?;
        Ok(Self {
            meta,
            cfg,
            model,
            calibration,
            varmap,
        })
    }

    pub fn load(path: &Path) -> Result<Self, CheckpointError> {
        let loaded = checkpoint::load_family(path, FAMILY)?;
        Self::build(loaded.meta, &loaded.tensors, path)
    }

    pub fn from_snapshot(s: &Snapshot) -> anyhow::Result<Self> {
        let path = Path::new(checkpoint::TRAINING);
        Ok(Self::build(s.meta.clone(), &s.tensor_map(), path)?)
    }

    /// Read a state_dict saved by the official PyTorch code (paper sizes).
    pub fn import_pytorch(path: &Path) -> Result<Self, CheckpointError> {
        let tensors = checkpoint::read_pytorch_state_dict(path)?;
        let mut cfg = TrainConfig::preset("paper").map_err(|e| CheckpointError::other(path, e))?;
        cfg.steps = 0;
        let meta = Metadata {
            family: FAMILY.into(),
            preset: "paper".into(),
            config: config_json(&cfg, &Calibration::default()),
            data: format!("imported:{}", path.display()),
            version: env!("CARGO_PKG_VERSION").into(),
            ..Default::default()
        };
        Self::build(meta, &tensors, path)
    }

    pub fn save(&self, path: &Path) -> Result<(), CheckpointError> {
        let mut meta = self.meta.clone();
        meta.config = config_json(&self.cfg, &self.calibration);
        checkpoint::save_varmap(path, &self.varmap, &meta)
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
