//! What the two SPS families (a pitch latent from music, a position latent from a bouncing
//! ball) share: a lab that keeps a calibration of its latent beside its weights, and the
//! parts of the paper's training step that do not depend on the data: the latent's draw,
//! scheduled sampling, the ramp of the sequence terms and the reconstruction terms.

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use rand::Rng;
use rand::rngs::StdRng;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::nn::bce_with_logits_sum;
use crate::nn::checkpoint::{
    CheckpointError, Checkpointed, LabFile, Metadata, Opened, save_varmap,
};
use crate::worker::Loss;

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
pub trait Config: Serialize + DeserializeOwned + crate::nn::checkpoint::SizeLimits {
    type Model;

    /// The model of this configuration, its variables taken from `vb`.
    fn model(&self, vb: VarBuilder) -> candle_core::Result<Self::Model>;

    /// The preset's name, sequences per batch and loss schedule.
    fn run(&self) -> (&str, usize, &LossSchedule);

    /// The `paper` preset: the official code's sizes, which its state_dicts hold.
    fn paper() -> anyhow::Result<Self>;

    /// decodes that `latent-lab bench --what decode` times
    const DECODES: usize;

    /// One latent decoded, flattened.
    fn decode_one(model: &Self::Model, z: &[f32]) -> candle_core::Result<Vec<f32>>;

    /// A trainer of this configuration on two batches of benchmark data, and the length of
    /// its sequences.
    fn bench_trainer(self) -> anyhow::Result<(Box<dyn crate::worker::Trainer>, usize)>;
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
        file.limits("train.", file.cfg.size_limits())?;
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
    /// A state_dict saved by the paper's official PyTorch code (its sizes, the `paper` preset),
    /// not yet calibrated.
    pub fn import_pytorch(path: &Path) -> Result<Self, CheckpointError> {
        let paper = C::paper().map_err(|e| CheckpointError::other(path, e))?;
        Self::import_official(path, config_json(&paper, &K::default()))
    }
}

/// `latent-lab import` of an SPS family: `lab`, read from the official state_dict `file`,
/// saved as a checkpoint at `out`.
pub fn save_imported<C, M, K>(
    file: &Path,
    out: &Path,
    lab: &Lab<C, M, K>,
) -> crate::cli::CliResult {
    save_varmap(out, &lab.varmap, &lab.meta)?;
    eprintln!("imported {} -> {}", file.display(), out.display());
    Ok(())
}

/// An ablation preset of [`PRESETS`]: the SPS preset it takes parts away from, and whether
/// it is the β-VAE (no prior either) rather than `no-symmetry`. `None` for the others.
pub fn ablation(name: &str) -> Option<(&'static str, bool)> {
    let base = match name {
        "no-symmetry" | "beta-vae" => "fast",
        "generic-no-symmetry" | "generic-beta-vae" => "generic",
        _ => return None,
    };
    Some((base, name.ends_with("beta-vae")))
}

/// The presets every SPS family has: the default, the official sizes, the default's two
/// ablations, then a generic body (nothing in it built for the factor) and its ablations.
pub const PRESETS: [&str; 7] = [
    "fast",
    "paper",
    "no-symmetry",
    "beta-vae",
    "generic",
    "generic-no-symmetry",
    "generic-beta-vae",
];

/// How the terms of an SPS loss are weighed and brought in: the fields of `config.train` the
/// two families share.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LossSchedule {
    pub kl_weight: f64,
    /// weight of the prior's latent MSE
    pub prior_weight: f64,
    /// weight of each symmetry's latent MSE
    pub symmetry_weight: f64,
    /// transformed copies of each sequence per symmetry (K); 0 turns the symmetry terms off
    pub k: usize,
    /// decode a draw from the posterior (the official reparameterisation) rather than its
    /// mean; the official SPS code decodes the mean (its `batch_encode_to_z` returns mu), the
    /// beta-VAE draws
    pub sample_latent: bool,
    /// scheduled sampling, official form: P(teacher forcing) = a / (a + exp((step + b) / a))
    pub sample_alpha: f64,
    pub sample_beta: f64,
    /// steps of plain reconstruction before the prior and symmetry terms come in, then steps
    /// over which their weight ramps from 0 to 1. sps-music: the decoder first learns to read
    /// pitch from z1, otherwise the prior's early, meaningless predictions teach it to
    /// ignore z1
    pub warmup_steps: u64,
    pub ramp_steps: u64,
}

/// serde's default for a setting that older checkpoints did not record and had on
pub fn yes() -> bool {
    true
}

impl LossSchedule {
    /// The loss of an ablation of the SPS preset whose loss this is: `no-symmetry` has no
    /// symmetry terms (K = 0); `beta-vae` (`beta_vae`) also draws its latent and weighs the KL
    /// by 4, and its preset turns the prior off.
    pub fn ablated(&self, beta_vae: bool) -> Self {
        Self {
            k: 0,
            sample_latent: beta_vae || self.sample_latent,
            kl_weight: if beta_vae { 4.0 } else { self.kl_weight },
            ..self.clone()
        }
    }

    /// The latent the decoder and the prior read: a draw from the posterior N(mu,
    /// exp(logvar)) (`sample_latent`), its noise from the run's generator so that the seed
    /// fixes it too, or its mean.
    pub fn latent(
        &self,
        mu: &Tensor,
        logvar: &Tensor,
        rng: &mut StdRng,
    ) -> candle_core::Result<Tensor> {
        if !self.sample_latent {
            return Ok(mu.clone());
        }
        let eps: Vec<f32> = (0..mu.elem_count())
            .map(|_| rng.sample(rand_distr::StandardNormal))
            .collect();
        let eps = Tensor::from_vec(eps, mu.shape(), mu.device())?;
        // the official reparameterisation, factor 0.5 outside the exp as in the paper's code
        mu + (eps * logvar.exp()?)? * 0.5
    }

    /// Scheduled sampling: which of `len` inputs of the prior at `step` are its own
    /// predictions rather than the encoder's latents. Never the first `given`; after them
    /// each with probability 1 - P(teacher forcing).
    pub fn scheduled(&self, rng: &mut StdRng, step: u64, len: usize, given: usize) -> Vec<bool> {
        let a = self.sample_alpha;
        let p = a / (a + ((step as f64 + self.sample_beta) / a).exp());
        (0..len)
            .map(|t| t >= given && rng.random::<f64>() > p)
            .collect()
    }

    /// The weight of the prior and symmetry terms at `step`: 0 for the first `warmup_steps`,
    /// then rising linearly to 1 over `ramp_steps` (at once when that is 0). `taken` is how
    /// many ramp steps count as done when the ramp starts (sps-vision counts the step it is
    /// in).
    pub fn sequence_weight(&self, step: u64, taken: u64) -> f64 {
        let (warmup, ramp) = (self.warmup_steps, self.ramp_steps);
        if step < warmup {
            0.0
        } else if ramp == 0 {
            1.0
        } else {
            ((step - warmup + taken) as f64 / ramp as f64).min(1.0)
        }
    }
}

/// The next mini-batch of `b` training sequences of `s` frames each (`frames(i)`: sequence
/// `i`'s, flat), as one tensor of `b * s` frames of shape `(c, h, w)`.
pub fn next_batch<'a>(
    core: &mut crate::worker::TrainerCore,
    (b, s): (usize, usize),
    frames: impl Fn(usize) -> &'a [f32],
    (c, h, w): (usize, usize, usize),
) -> candle_core::Result<Tensor> {
    let mut flat = Vec::with_capacity(b * s * c * h * w);
    for i in core.batch(b) {
        flat.extend_from_slice(frames(i));
    }
    Tensor::from_vec(flat, (b * s, c, h, w), &Device::Cpu)
}

/// The reconstruction terms of a step, from one decoder pass (`logits`) over every latent the
/// loss needs, in this order: the latents of the frames `x`; then, when `prior` gives their
/// weight, the prior's predictions of the next frames `x_next`; then `copies` groups of
/// symmetric predictions of them, weighted together by `symmetric`.
pub fn reconstruction_terms(
    loss: &mut Loss,
    logits: &Tensor,
    (x, x_next): (&Tensor, &Tensor),
    prior: Option<f64>,
    (copies, symmetric): (usize, f64),
) -> candle_core::Result<()> {
    let (rows, next) = (x.dim(0)?, x_next.dim(0)?);
    loss.add_first(
        "recon_bce",
        bce_with_logits_sum(&logits.narrow(0, 0, rows)?, x)?,
    )?;
    let mut offset = rows;
    if let Some(w) = prior {
        let bce = bce_with_logits_sum(&logits.narrow(0, offset, next)?, x_next)?;
        loss.add("prior_bce", (bce * w)?)?;
        offset += next;
    }
    if copies > 0 {
        let mut sum = Tensor::zeros((), DType::F32, &Device::Cpu)?;
        for copy in 0..copies {
            let part = logits.narrow(0, offset + copy * next, next)?;
            sum = (sum + bce_with_logits_sum(&part, x_next)?)?;
        }
        loss.add("symmetry_bce", (sum * symmetric)?)?;
    }
    Ok(())
}

/// `latent-lab bench` of an SPS family with the configuration `cfg` (its preset's):
/// `decode` ([`Config::DECODES`] decodes of one latent by an untrained model, whose cost does
/// not depend on the weights) and `train-step` ([`Config::bench_trainer`]); any other
/// benchmark is `other`'s.
pub fn bench<C: Config + Clone>(
    (family, what): (&str, &str),
    cfg: anyhow::Result<C>,
    other: impl FnOnce(&str) -> Result<serde_json::Value, crate::cli::CliError>,
) -> Result<serde_json::Value, crate::cli::CliError> {
    let cfg = cfg.map_err(crate::cli::bad)?;
    let (preset, batch, loss) = cfg.run();
    match what {
        "decode" => {
            let (_varmap, vb) = crate::nn::new_varmap();
            let model = cfg.model(vb)?;
            let z = [0.3f32, -0.2, 0.1];
            crate::cli::bench_decode(family, preset, C::DECODES, &mut || {
                C::decode_one(&model, &z).map(|_| ()).map_err(Into::into)
            })
        }
        "train-step" => {
            let (mut trainer, seq_len) = cfg.clone().bench_trainer()?;
            let details = serde_json::json!({
                "batch": batch, "k": loss.k, "sequence_length": seq_len,
            });
            crate::cli::bench_train_step(family, preset, trainer.as_mut(), (2, 8), details)
        }
        other_what => other(other_what),
    }
}

/// The [`Config`] methods of a training configuration with the fields `model`, `preset`,
/// `batch`, `loss` and `steps`, whose model `$model` is made by `$model::new(&cfg.model, vb)`.
macro_rules! config_methods {
    ($model:ty) => {
        fn model(&self, vb: candle_nn::VarBuilder) -> candle_core::Result<$model> {
            <$model>::new(&self.model, vb)
        }

        fn run(&self) -> (&str, usize, &$crate::sps::LossSchedule) {
            (&self.preset, self.batch, &self.loss)
        }

        fn paper() -> anyhow::Result<Self> {
            Ok(Self {
                steps: 0,
                ..Self::preset("paper")?
            })
        }
    };
}
pub(crate) use config_methods;

/// The methods the SPS models share, for a model with `decode_logits`, an [`crate::nn::Rnn`]
/// `rnn` and its head `$head`: `decode` (the sigmoid of the logits), `prior_step` and
/// `predict_with_symmetry`. `$dims` names what the prior reads and predicts.
macro_rules! prior_methods {
    ($head:ident, $dims:literal) => {
        pub fn decode(&self, z: &Tensor) -> Result<Tensor> {
            candle_nn::ops::sigmoid(&self.decode_logits(z)?)
        }

        #[doc = concat!("One prior step on ", $dims, ": x (B, L), h (B, hidden) -> (prediction (B, L), h')")]
        pub fn prior_step(&self, x: &Tensor, h: &Tensor) -> Result<(Tensor, Tensor)> {
            let h = self.rnn.step(x, h)?;
            Ok((candle_core::Module::forward(&self.$head, &h)?, h))
        }

        /// The prior along latents z (B, S, L): [`crate::nn::Rnn::predict_with_symmetry`]
        /// with this model's head.
        pub fn predict_with_symmetry(
            &self,
            z: &Tensor,
            own: &[bool],
            symm: &dyn Fn(&Tensor) -> Result<Tensor>,
        ) -> Result<Tensor> {
            self.rnn.predict_with_symmetry(&self.$head, z, own, symm)
        }
    };
}
pub(crate) use prior_methods;

/// Asserts what every SPS family's presets promise: each of [`PRESETS`] builds under its own
/// name; the ablations of `fast` and of `generic` differ from them only as
/// [`assert_ablations_differ_only_in`] allows; and the shipped generic pair
/// `models/generic/{stem}_generic[_no_symmetry].safetensors` recorded the settings of
/// `generic` and `generic-no-symmetry` (under whatever name they were trained with, and for
/// at least as many steps).
#[cfg(test)]
pub fn assert_presets_keep_their_promises<T: Serialize + serde::de::DeserializeOwned>(
    preset: impl Fn(&str) -> anyhow::Result<T>,
    stem: &str,
    beta_vae_also: &[&str],
) {
    let json = |name: &str| serde_json::to_value(preset(name).expect(name)).expect(name);
    for name in PRESETS {
        assert_eq!(json(name)["preset"], name);
    }
    for base in ["fast", "generic"] {
        assert_ablations_differ_only_in(&preset, base, beta_vae_also);
    }
    let models = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/generic");
    for (file, name) in [
        (format!("{stem}_generic"), "generic"),
        (format!("{stem}_generic_no_symmetry"), "generic-no-symmetry"),
    ] {
        let loaded =
            crate::nn::checkpoint::load(&models.join(format!("{file}.safetensors"))).expect(&file);
        // read back through the settings' type, so that a setting added since takes its
        // default, as it does when the model is loaded
        let recorded: T = serde_json::from_value(loaded.meta.config["train"].clone()).expect(&file);
        let mut recorded = serde_json::to_value(recorded).expect(&file);
        let mut expected = json(name);
        // a shipped model may have trained longer than its preset's budget
        let steps = |v: &serde_json::Value| v["steps"].as_u64().expect("steps");
        assert!(
            steps(&recorded) >= steps(&expected),
            "{file}: fewer steps than the preset"
        );
        for key in ["preset", "steps"] {
            recorded[key] = serde_json::Value::Null;
            expected[key] = serde_json::Value::Null;
        }
        assert_eq!(recorded, expected, "{file}");
    }
}

/// Asserts that a family's `no-symmetry` preset differs from its SPS preset `base` only in K
/// (and its name), and its `beta-vae` preset only in K, the prior, the β-VAE's sampled latent
/// and β, and the settings `beta_vae_also` names: the ablations take parts away and change
/// nothing else. The ablations of `fast` are named alone, those of another preset after it
/// (`generic-no-symmetry`).
#[cfg(test)]
pub fn assert_ablations_differ_only_in<T: Serialize>(
    preset: &impl Fn(&str) -> anyhow::Result<T>,
    base: &str,
    beta_vae_also: &[&str],
) {
    /// The dotted paths of the settings in which `a` and `b` differ, sorted.
    fn walk(path: &str, a: &serde_json::Value, b: &serde_json::Value, out: &mut Vec<String>) {
        match (a, b) {
            (serde_json::Value::Object(x), serde_json::Value::Object(y)) => {
                let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
                for k in keys {
                    let null = serde_json::Value::Null;
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    walk(
                        &p,
                        x.get(k).unwrap_or(&null),
                        y.get(k).unwrap_or(&null),
                        out,
                    );
                }
            }
            _ if a != b => out.push(path.to_string()),
            _ => {}
        }
    }
    let json = |name: &str| serde_json::to_value(preset(name).expect(name)).expect("serialisable");
    let differ = |name: &str| {
        let mut out = Vec::new();
        walk("", &json(base), &json(name), &mut out);
        out.sort();
        out
    };
    // the default's ablations are named alone, another preset's after it
    let ablation = |what: &str| match base {
        "fast" => what.to_string(),
        _ => format!("{base}-{what}"),
    };
    assert_eq!(differ(&ablation("no-symmetry")), ["k", "preset"]);
    let mut beta: Vec<&str> = ["k", "kl_weight", "preset", "prior", "sample_latent"].to_vec();
    beta.extend_from_slice(beta_vae_also);
    beta.sort();
    assert_eq!(differ(&ablation("beta-vae")), beta);
}
