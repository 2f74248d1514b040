//! What the two SPS families (a pitch latent from music, a position latent from a bouncing
//! ball) share: a lab that keeps a calibration of its latent beside its weights.

use std::ops::RangeInclusive;
use std::path::Path;

use candle_nn::{VarBuilder, VarMap};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::nn::checkpoint::{CheckpointError, Checkpointed, LabFile, Metadata, Opened};

/// A trained SPS model ready for the window and the command line. The calibration (how the
/// latent maps to the true factor, measured on held-out data) is saved in the metadata beside
/// the training configuration.
pub struct Lab<C, M, K> {
    pub meta: Metadata,
    pub cfg: C,
    pub model: M,
    pub calibration: K,
    pub(crate) varmap: VarMap,
}

/// What an SPS family's training configuration tells its lab.
pub trait Config: Serialize + DeserializeOwned {
    type Model;

    /// Every size the model allocates by, named as in `config.train`, with its allowed range.
    fn limits(&self) -> Vec<(String, usize, RangeInclusive<usize>)>;

    /// The model of this configuration, its variables taken from `vb`.
    fn model(&self, vb: VarBuilder) -> candle_core::Result<Self::Model>;
}

/// The metadata `config` of an SPS checkpoint: the training configuration and the calibration.
pub fn config_json(cfg: &impl Serialize, calibration: &impl Serialize) -> serde_json::Value {
    serde_json::json!({ "train": cfg, "calibration": calibration })
}

impl<C, K> Checkpointed for Lab<C, C::Model, K>
where
    C: Config,
    K: DeserializeOwned + Default,
    Self: LabFile<Config = C>,
{
    fn build(file: Opened<C>) -> Result<Self, CheckpointError> {
        file.limits("train.", file.cfg.limits())?;
        let (model, varmap) = file.build_model(|cfg, vb| cfg.model(vb))?;
        Ok(Self {
            calibration: file.entry_or_default("calibration"),
            meta: file.meta,
            cfg: file.cfg,
            model,
            varmap,
        })
    }
}

impl<C, K> Lab<C, C::Model, K>
where
    C: Config,
    K: Serialize + Default,
    Self: Checkpointed,
{
    /// A state_dict of the paper's official PyTorch code, holding the model of `cfg`, not yet
    /// calibrated.
    pub fn import_uncalibrated(path: &Path, cfg: &C) -> Result<Self, CheckpointError> {
        Self::import_official(path, config_json(cfg, &K::default()))
    }
}
