//! Class-and-pose lab (Feige, "Invariant-equivariant representation learning for multi-class
//! data", ICML 2019): a VAE whose class enters as a deep invariant representation r_y and
//! whose equivariant latent z carries where a digit sits within its class (slant, width,
//! stroke, position), so any pose can be drawn in any class.

pub mod cli;
pub mod eval;
pub mod explore;
pub mod model;
pub mod train;
pub mod view;

use candle_core::{D, Device, Tensor};
use candle_nn::VarMap;

use crate::digits::{self, DigitSet, PIXELS, Recipe, Source, Split};
use crate::nn::checkpoint::{CheckpointError, Checkpointed, Metadata, Opened, SizeLimits};
use model::IeVae;
use train::TrainConfig;

pub const FAMILY: &str = "ievae";
/// The shipped model, in the models folder.
pub const DEFAULT_FILE: &str = "ievae_digits.safetensors";

/// A trained model ready for the window and the command line.
pub struct Lab {
    pub meta: Metadata,
    pub cfg: TrainConfig,
    /// labelled training images the model saw
    pub labels_used: usize,
    pub model: IeVae,
    varmap: VarMap,
}

crate::checkpointed_lab!(Lab, FAMILY, TrainConfig);

impl SizeLimits for TrainConfig {
    fn size_limits(&self) -> Vec<(String, usize, std::ops::RangeInclusive<usize>)> {
        let m = &self.model;
        vec![
            ("batch".into(), self.batch, Self::BATCH),
            ("model.input".into(), m.input, PIXELS..=PIXELS),
            ("model.classes".into(), m.classes, 2..=1024),
            ("model.equivariant".into(), m.equivariant, 1..=256),
            ("model.invariant".into(), m.invariant, 1..=1024),
        ]
        .into_iter()
        .chain(self.recipe.size_limits())
        .collect()
    }
}

impl Checkpointed for Lab {
    fn build(file: Opened<TrainConfig>) -> Result<Self, CheckpointError> {
        let m = &file.cfg.model;
        file.limits("train.", file.cfg.size_limits())?;
        m.check().map_err(|e| file.refuse(e))?;
        let (model, varmap) = file.build_model(|cfg, vb| IeVae::new(&cfg.model, vb))?;
        let labels_used = file.meta.config.get("labels_used").and_then(|v| v.as_u64());
        Ok(Self {
            labels_used: labels_used.unwrap_or(0) as usize,
            meta: file.meta,
            cfg: file.cfg,
            model,
            varmap,
        })
    }
}

impl Lab {
    pub fn classes(&self) -> usize {
        self.cfg.model.classes
    }

    pub fn equivariant_dims(&self) -> usize {
        self.cfg.model.equivariant
    }

    /// The data the model was trained on (its metadata), or `spec`.
    pub fn data(&self, spec: Option<&str>) -> Result<Split, digits::DigitsError> {
        load_data(spec.unwrap_or(&self.meta.data), &self.cfg.recipe)
    }

    /// q(y|x) of one image (784 pixels): probabilities per class.
    pub fn class_probabilities(&self, image: &[f32]) -> anyhow::Result<Vec<f32>> {
        let x = Tensor::from_slice(image, (1, PIXELS), &Device::Cpu)?;
        let p = candle_nn::ops::softmax(&self.model.classify(&x)?, D::Minus1)?;
        Ok(p.flatten_all()?.to_vec1::<f32>()?)
    }

    /// The equivariant code (mean of q(z|x)) of one image.
    pub fn pose_of(&self, image: &[f32]) -> anyhow::Result<Vec<f32>> {
        let x = Tensor::from_slice(image, (1, PIXELS), &Device::Cpu)?;
        let (mu, _) = self.model.encode(&x)?;
        Ok(mu.flatten_all()?.to_vec1::<f32>()?)
    }

    /// Mean images (784 pixels each, ink in [0, 1]) of `(class, pose)` pairs.
    pub fn draw(&self, items: &[(u32, &[f32])]) -> anyhow::Result<Vec<Vec<f32>>> {
        let e = self.equivariant_dims();
        let mut z = Vec::with_capacity(items.len() * e);
        for (_, pose) in items {
            anyhow::ensure!(
                pose.len() == e,
                "a pose of {} values, the model has {e}",
                pose.len()
            );
            z.extend_from_slice(pose);
        }
        let classes: Vec<u32> = items
            .iter()
            .map(|(c, _)| (*c).min(self.classes() as u32 - 1))
            .collect();
        let zt = Tensor::from_vec(z, (items.len(), e), &Device::Cpu)?;
        Ok(self.model.decode_classes(&classes, &zt)?.to_vec2::<f32>()?)
    }

    /// One pose drawn in every class.
    pub fn in_every_class(&self, pose: &[f32]) -> anyhow::Result<Vec<Vec<f32>>> {
        let items: Vec<(u32, &[f32])> = (0..self.classes() as u32).map(|c| (c, pose)).collect();
        self.draw(&items)
    }
}

/// Digits for a `--data` spec (`digits`, `idx:...`, `csv:...`), the generator sized by `recipe`.
pub fn load_data(spec: &str, recipe: &Recipe) -> Result<Split, digits::DigitsError> {
    Source::parse(spec, *recipe)?.load()
}

/// A few digits by writers never seen in training, for the window's picker.
pub fn picker_digits(seed: u64) -> DigitSet {
    digits::generate(digits::TEST_WRITER_BASE + 500, 4, 1, seed)
}
