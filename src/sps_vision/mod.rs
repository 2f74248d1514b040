//! SPS vision: a 3-D latent of a bouncing ball learned from the translation and rotation
//! symmetries of physical space.

pub mod cli;
pub mod data;
pub mod eval;
pub mod explore;
pub mod model;
pub mod train;
pub mod view;

use std::ops::RangeInclusive;

use candle_core::{Device, Tensor};

use crate::nn::checkpoint;
use data::FRAME_LEN;
use eval::Calibration;
use model::SpsVision;
use train::TrainConfig;

pub const FAMILY: &str = "sps-vision";

/// A trained model ready for the window and the command line.
pub type Lab = crate::sps::Lab<TrainConfig, SpsVision, Calibration>;

crate::checkpointed_lab!(Lab, FAMILY, TrainConfig);

impl crate::nn::checkpoint::SizeLimits for TrainConfig {
    /// A throw takes about 5 MB of a step's memory at the `fast` sizes (1.4 GB at 256 a
    /// batch, the data included): 256 throws are eight times the official batch.
    const BATCH: RangeInclusive<usize> = 1..=256;

    fn size_limits(&self) -> Vec<(String, usize, RangeInclusive<usize>)> {
        let m = &self.model;
        let keypoints = match m.encoder {
            model::EncoderKind::Keypoints {
                channels,
                keypoints,
                hidden,
                ..
            } => vec![
                (
                    "model.encoder.keypoints.channels".into(),
                    channels,
                    1..=4096,
                ),
                (
                    "model.encoder.keypoints.keypoints".into(),
                    keypoints,
                    1..=4096,
                ),
                ("model.encoder.keypoints.hidden".into(), hidden, 1..=4096),
            ],
            model::EncoderKind::Official => Vec::new(),
        };
        let sizes = [
            ("batch".into(), self.batch, Self::BATCH),
            // the symmetries act on three dims: (z1, z3) translate, z2 is the rotation's axis
            ("model.latent".into(), m.latent, 3..=64),
        ];
        let widths = [("model.rnn_hidden".into(), m.rnn_hidden, 1..=4096)]
            .into_iter()
            .chain(checkpoint::indexed("model.channels", &m.channels, 1..=4096))
            .chain(checkpoint::indexed("model.mlp", &m.mlp, 1..=4096));
        sizes.into_iter().chain(widths).chain(keypoints).collect()
    }
}

impl crate::sps::Config for TrainConfig {
    type Model = SpsVision;

    crate::sps::config_methods!(SpsVision);

    const DECODES: usize = 2000;

    fn decode_one(model: &SpsVision, z: &[f32]) -> candle_core::Result<Vec<f32>> {
        decode_frame(model, z)
    }

    fn bench_trainer(self) -> anyhow::Result<(Box<dyn crate::worker::Trainer>, usize)> {
        let data = data::Dataset::generate(0, self.batch * 2, 2);
        Ok((
            Box::new(train::VisionTrainer::new(self, data, 0)?),
            data::SEQ_LEN,
        ))
    }
}

impl Lab {
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
