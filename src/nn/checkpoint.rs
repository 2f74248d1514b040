//! Checkpoints: safetensors with a metadata map, atomic saves, checked loads, and import of
//! PyTorch state_dicts written by the papers' official code.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::quietly;
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use serde::{Deserialize, Serialize};

/// What a checkpoint says about itself (the safetensors `__metadata__` map, one JSON string per key).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    pub family: String,
    pub preset: String,
    /// the full model and training configuration
    pub config: serde_json::Value,
    /// where the training data came from, e.g. `soundfont:/usr/share/sounds/sf2/FluidR3_GM.sf2`
    pub data: String,
    pub steps: u64,
    pub seed: u64,
    /// metrics measured when the checkpoint was saved
    pub metrics: BTreeMap<String, f64>,
    pub version: String,
}

impl Metadata {
    /// The same description with `config` in place of the recorded one (what a lab saves
    /// after it has learned more about itself, such as a calibration).
    pub fn with_config(&self, config: serde_json::Value) -> Self {
        Self {
            config,
            ..self.clone()
        }
    }
}

/// Why a checkpoint could not be read or written. Every message names the file.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a safetensors checkpoint ({reason})")]
    Format { path: PathBuf, reason: String },
    #[error("{path}: metadata key `{key}` is missing or unreadable")]
    Metadata { path: PathBuf, key: String },
    #[error("{path}: a checkpoint of family `{found}`, expected `{expected}`")]
    WrongFamily {
        path: PathBuf,
        expected: String,
        found: String,
    },
    #[error("{path}: tensor `{name}` has shape {found:?}, the model needs {expected:?}")]
    Shape {
        path: PathBuf,
        name: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },
    #[error("{path}: tensor `{name}` is missing")]
    Missing { path: PathBuf, name: String },
    #[error("{path}: tensor `{name}` does not belong to this model")]
    Unexpected { path: PathBuf, name: String },
    #[error("{path}: {reason}")]
    Other { path: PathBuf, reason: String },
}

impl CheckpointError {
    /// Any other refusal. Only the first line of `reason` is kept: candle appends a
    /// backtrace to some of its errors, which is no help to a user.
    pub fn other(path: &Path, reason: impl std::fmt::Display) -> Self {
        Self::Other {
            path: path.to_owned(),
            reason: first_line(&reason.to_string()),
        }
    }
}

/// The stack of the thread that reads a PyTorch pickle (reserved, not used, until needed):
/// deep enough for the nesting [`MAX_PICKLE_BYTES`] can hold.
const PICKLE_STACK_BYTES: usize = 1 << 30;
/// The largest pickle of a PyTorch archive read: a state_dict's names and shapes take a few
/// kB, and every byte more can nest the parser one level deeper.
const MAX_PICKLE_BYTES: u64 = 1 << 20;

/// The size of a PyTorch archive's `data.pkl`, None when the file is not a zip archive
/// holding one (the reader then says what is wrong).
fn pickle_size(path: &Path) -> Option<u64> {
    let file = std::io::BufReader::new(std::fs::File::open(path).ok()?);
    let mut archive = zip::ZipArchive::new(file).ok()?;
    let name = (archive.file_names())
        .filter_map(Result::ok)
        .find(|n| n.ends_with("data.pkl"))?
        .into_owned();
    archive.by_name(&name).ok().map(|entry| entry.size())
}

/// The largest checkpoint we agree to read; the shipped ones are a few MB.
const MAX_CHECKPOINT_BYTES: u64 = 2 << 30;

/// Write tensors and metadata to `path` atomically: a temporary file beside it is written,
/// synced, then renamed over the target, so a crash or a full disk leaves the old file intact.
pub fn save(
    path: &Path,
    tensors: &[(String, Tensor)],
    meta: &Metadata,
) -> Result<(), CheckpointError> {
    let map = metadata_to_map(meta);
    let cpu: Vec<(String, Tensor)> = tensors
        .iter()
        .map(|(n, t)| Ok((n.clone(), t.to_dtype(DType::F32)?.contiguous()?)))
        .collect::<candle_core::Result<_>>()
        .map_err(|e| CheckpointError::other(path, e))?;
    let bytes = safetensors::serialize(cpu.iter().map(|(n, t)| (n.as_str(), t)), Some(map))
        .map_err(|e| CheckpointError::other(path, e))?;
    write_atomic(path, &bytes)
}

/// Write bytes atomically (temporary file, fsync, rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), CheckpointError> {
    let io = |source| CheckpointError::Io {
        path: path.to_owned(),
        source,
    };
    let file_name = path
        .file_name()
        .ok_or_else(|| CheckpointError::other(path, "not a file path"))?;
    let mut tmp_name = file_name.to_owned();
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(e));
    }
    Ok(())
}

fn metadata_to_map(meta: &Metadata) -> HashMap<String, String> {
    let mut map = HashMap::new();
    map.insert("family".into(), meta.family.clone());
    map.insert("preset".into(), meta.preset.clone());
    map.insert("config".into(), meta.config.to_string());
    map.insert("data".into(), meta.data.clone());
    map.insert("steps".into(), meta.steps.to_string());
    map.insert("seed".into(), meta.seed.to_string());
    map.insert(
        "metrics".into(),
        serde_json::to_string(&meta.metrics).unwrap_or_default(),
    );
    map.insert("version".into(), meta.version.clone());
    map
}

/// A checkpoint read from disk: its metadata and every tensor by name.
pub struct Loaded {
    pub path: PathBuf,
    pub meta: Metadata,
    pub tensors: HashMap<String, Tensor>,
}

/// Read a checkpoint. Any file is acceptable input: a wrong, truncated or hostile one gives an error.
pub fn load(path: &Path) -> Result<Loaded, CheckpointError> {
    checkpoint_len(path)?;
    let bytes = std::fs::read(path).map_err(|source| CheckpointError::Io {
        path: path.to_owned(),
        source,
    })?;
    load_bytes(&bytes, path)
}

/// The length of a checkpoint file (ours or PyTorch's), refused when it is not a regular file
/// or too large to be one.
fn checkpoint_len(path: &Path) -> Result<u64, CheckpointError> {
    let len = crate::error::regular_file_len(path).map_err(|source| CheckpointError::Io {
        path: path.to_owned(),
        source,
    })?;
    if len > MAX_CHECKPOINT_BYTES {
        return Err(CheckpointError::other(
            path,
            format!("{len} bytes is too large for a checkpoint"),
        ));
    }
    Ok(len)
}

/// The parsing half of [`load`], on bytes already in memory (used by the fuzz target).
pub fn load_bytes(bytes: &[u8], path: &Path) -> Result<Loaded, CheckpointError> {
    let format = |reason: String| CheckpointError::Format {
        path: path.to_owned(),
        reason,
    };
    let (_, header) =
        safetensors::SafeTensors::read_metadata(bytes).map_err(|e| format(e.to_string()))?;
    let st = safetensors::SafeTensors::deserialize(bytes).map_err(|e| format(e.to_string()))?;
    let map = header.metadata().clone().unwrap_or_default();
    let meta = metadata_from_map(&map, path)?;
    let mut tensors = HashMap::new();
    for (name, view) in st.tensors() {
        if view.dtype() != safetensors::Dtype::F32 {
            return Err(format(format!(
                "tensor `{name}` is {:?}, expected F32",
                view.dtype()
            )));
        }
        // safetensors accepts an empty shape such as [0, 2^32, 2^32] (its product is 0), but
        // candle's stride computation multiplies the other dims and overflows (a panic in debug).
        let dims = view.shape().iter().filter(|&&d| d != 0);
        if dims.copied().try_fold(1usize, usize::checked_mul).is_none() {
            return Err(format(format!(
                "tensor `{name}` has an impossible shape {:?}",
                view.shape()
            )));
        }
        let data: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        // training never saves such weights (it stops on a non-finite loss), so they are
        // damage, and a model built from them draws and reads nothing but NaN
        if data.iter().any(|v| !v.is_finite()) {
            return Err(CheckpointError::other(
                path,
                format!("damaged: tensor `{name}` holds NaN or infinite values"),
            ));
        }
        let t = Tensor::from_vec(data, view.shape(), &Device::Cpu)
            .map_err(|e| format(e.to_string()))?;
        tensors.insert(name, t);
    }
    Ok(Loaded {
        path: path.to_owned(),
        meta,
        tensors,
    })
}

fn metadata_from_map(
    map: &HashMap<String, String>,
    path: &Path,
) -> Result<Metadata, CheckpointError> {
    let key = |k: &str| {
        map.get(k)
            .cloned()
            .ok_or_else(|| CheckpointError::Metadata {
                path: path.to_owned(),
                key: k.into(),
            })
    };
    let bad = |k: &str| CheckpointError::Metadata {
        path: path.to_owned(),
        key: k.into(),
    };
    Ok(Metadata {
        family: key("family")?,
        preset: key("preset").unwrap_or_default(),
        config: serde_json::from_str(&key("config")?).map_err(|_| bad("config"))?,
        data: key("data").unwrap_or_default(),
        steps: key("steps").ok().and_then(|s| s.parse().ok()).unwrap_or(0),
        seed: key("seed").ok().and_then(|s| s.parse().ok()).unwrap_or(0),
        metrics: key("metrics")
            .ok()
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default(),
        version: key("version").unwrap_or_default(),
    })
}

impl Loaded {
    pub fn expect_family(&self, family: &str) -> Result<(), CheckpointError> {
        if self.meta.family != family {
            return Err(CheckpointError::WrongFamily {
                path: self.path.clone(),
                expected: family.into(),
                found: self.meta.family.clone(),
            });
        }
        Ok(())
    }

    /// Copy the tensors into a model's variables, checking that every variable has a tensor
    /// of the same shape and that no tensor is left over.
    pub fn fill(&self, varmap: &VarMap) -> Result<(), CheckpointError> {
        fill_varmap(varmap, &self.tensors, &self.path)
    }
}

/// `config.<key>` of a checkpoint's metadata; refused, by name, when missing or unreadable.
/// Fields the program does not know are ignored, so older and newer checkpoints load.
pub fn config_entry<T: serde::de::DeserializeOwned>(
    meta: &Metadata,
    key: &str,
    path: &Path,
) -> Result<T, CheckpointError> {
    let Some(value) = meta.config.get(key) else {
        return Err(CheckpointError::Metadata {
            path: path.to_owned(),
            key: format!("config.{key}"),
        });
    };
    serde_json::from_value(value.clone()).map_err(|e| {
        CheckpointError::other(
            path,
            format!(
                "config.{key} is unreadable ({})",
                first_line(&e.to_string())
            ),
        )
    })
}

/// Refuse a size of the configuration outside `allowed`, naming the field as it is written
/// in the metadata: `config.train.model.latent = 0, must be 1..=64`.
pub fn limit(
    path: &Path,
    field: &str,
    value: usize,
    allowed: std::ops::RangeInclusive<usize>,
) -> Result<(), CheckpointError> {
    if allowed.contains(&value) {
        return Ok(());
    }
    Err(CheckpointError::other(
        path,
        format!(
            "config.{field} = {value}, must be {}..={}",
            allowed.start(),
            allowed.end()
        ),
    ))
}

/// Every size a family's training configuration allocates by, with its allowed range, named
/// as under `config.train` (`model.hidden`): the loader refuses a checkpoint outside them, and
/// `train` refuses `--set` values outside them before anything is built.
pub trait SizeLimits {
    /// The batch sizes a family accepts: what a step holds in a few GB. An image of digits
    /// takes about 60 kB of an IE-VAE step (4.1 GB at 65536 a batch); a family whose items
    /// take more or less says so.
    const BATCH: std::ops::RangeInclusive<usize> = 1..=1 << 16;

    fn size_limits(&self) -> Vec<(String, usize, std::ops::RangeInclusive<usize>)>;
}

/// [`limit`] for several sizes, each named `prefix` + its name.
pub fn limits(
    path: &Path,
    prefix: &str,
    sizes: impl IntoIterator<Item = (String, usize, std::ops::RangeInclusive<usize>)>,
) -> Result<(), CheckpointError> {
    sizes.into_iter().try_for_each(|(name, value, allowed)| {
        limit(path, &format!("{prefix}{name}"), value, allowed)
    })
}

/// The sizes of a list setting for [`limits`], named `name[0]`, `name[1]`, ...
pub fn indexed(
    name: &str,
    sizes: &[usize],
    allowed: std::ops::RangeInclusive<usize>,
) -> Vec<(String, usize, std::ops::RangeInclusive<usize>)> {
    let named = |(i, &size)| (format!("{name}[{i}]"), size, allowed.clone());
    sizes.iter().enumerate().map(named).collect()
}

/// The largest width, channel count or latent size any model here accepts.
pub const MAX_MODEL_SIZE: u64 = 1 << 14;
/// The largest other count in a training configuration (images, events, writers, ...).
pub const MAX_COUNT: u64 = 1_000_000;

/// Bound every number in `config.train`, whatever the family: the model's sizes by
/// [`MAX_MODEL_SIZE`], other counts by [`MAX_COUNT`]; step counters and seeds are free.
/// This runs before a family reads its configuration, so no size it forgets to check can
/// reach an allocation unbounded.
pub fn check_config_numbers(meta: &Metadata, path: &Path) -> Result<(), CheckpointError> {
    fn walk(
        value: &serde_json::Value,
        field: &str,
        bound: u64,
        path: &Path,
    ) -> Result<(), CheckpointError> {
        match value {
            serde_json::Value::Object(map) => {
                for (key, v) in map {
                    let free = key == "seed"
                        || key.ends_with("steps")
                        || key.ends_with("_from")
                        || key.ends_with("_every");
                    let bound = if key == "model" {
                        MAX_MODEL_SIZE
                    } else if free {
                        u64::MAX
                    } else {
                        bound
                    };
                    walk(v, &format!("{field}.{key}"), bound, path)?;
                }
            }
            serde_json::Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    walk(v, &format!("{field}[{i}]"), bound, path)?;
                }
            }
            serde_json::Value::Number(n) => {
                // Floats are written with a fraction, so a negative integer is a count.
                let refusal = match (n.as_u64(), n.as_i64()) {
                    (Some(u), _) if u > bound => Some(format!("must be at most {bound}")),
                    (None, Some(_)) => Some("must not be negative".to_string()),
                    _ => None,
                };
                if let Some(refusal) = refusal {
                    return Err(CheckpointError::other(
                        path,
                        format!("config.{field} = {n}, {refusal}"),
                    ));
                }
            }
            _ => {}
        }
        Ok(())
    }
    match meta.config.get("train") {
        Some(train) => walk(train, "train", MAX_COUNT, path),
        None => Ok(()),
    }
}

/// What a family's checkpoints hold: the family named in their metadata and the type of
/// their training configuration (`config.train`). [`checkpointed_lab!`] writes it.
pub trait LabFile {
    const FAMILY: &'static str;
    type Config: serde::de::DeserializeOwned;
}

/// A model family's lab as a checkpoint holds it: a family checks its configuration and builds
/// its model ([`Checkpointed::build`]); loading, snapshots and import are the same for every
/// family and live here, saving in [`checkpointed_lab!`].
pub trait Checkpointed: LabFile + Sized {
    /// Whether a checkpoint of `family` opens as this lab (one lab may serve several).
    fn accepts(family: &str) -> bool {
        family == Self::FAMILY
    }

    /// The lab of an opened checkpoint: every size of its configuration checked against its
    /// limits ([`Opened::limits`]) before the model is built ([`Opened::build_model`]).
    fn build(file: Opened<'_, Self::Config>) -> Result<Self, CheckpointError>;

    /// The lab of metadata and tensors from any source; `path` names the source in errors.
    fn from_parts(
        meta: Metadata,
        tensors: &HashMap<String, Tensor>,
        path: &Path,
    ) -> Result<Self, CheckpointError> {
        if !Self::accepts(&meta.family) {
            return Err(CheckpointError::WrongFamily {
                path: path.to_owned(),
                expected: Self::FAMILY.into(),
                found: meta.family,
            });
        }
        check_config_numbers(&meta, path)?;
        let cfg = config_entry(&meta, "train", path)?;
        Self::build(Opened {
            meta,
            cfg,
            tensors,
            path,
        })
    }

    /// Read a checkpoint file of this family.
    fn load_file(path: &Path) -> Result<Self, CheckpointError> {
        let loaded = load(path)?;
        Self::from_parts(loaded.meta, &loaded.tensors, path)
    }

    /// The weights of a running training, as a lab.
    fn from_training(
        meta: Metadata,
        tensors: &[(String, Tensor)],
    ) -> Result<Self, CheckpointError> {
        let tensors: HashMap<String, Tensor> = tensors.iter().cloned().collect();
        Self::from_parts(meta, &tensors, Path::new(TRAINING))
    }

    /// A PyTorch state_dict of the official code, holding the model `config` describes.
    fn import_official(path: &Path, config: serde_json::Value) -> Result<Self, CheckpointError> {
        let tensors = read_pytorch_state_dict(path)?;
        Self::from_parts(
            imported_metadata(Self::FAMILY, config, path),
            &tensors,
            path,
        )
    }
}

/// A checkpoint opened as one family's: its metadata, its training configuration as read, and
/// its tensors, for [`Checkpointed::build`].
pub struct Opened<'a, C> {
    pub meta: Metadata,
    pub cfg: C,
    pub tensors: &'a HashMap<String, Tensor>,
    pub path: &'a Path,
}

impl<C> Opened<'_, C> {
    /// Refuse the file for `reason`, naming it.
    pub fn refuse(&self, reason: impl std::fmt::Display) -> CheckpointError {
        CheckpointError::other(self.path, reason)
    }

    /// Refuse a size of the configuration outside its limits (see [`limits`]).
    pub fn limits(
        &self,
        prefix: &str,
        sizes: impl IntoIterator<Item = (String, usize, std::ops::RangeInclusive<usize>)>,
    ) -> Result<(), CheckpointError> {
        limits(self.path, prefix, sizes)
    }

    /// `config.<key>`, refused by name when missing or unreadable.
    pub fn entry<T: serde::de::DeserializeOwned>(&self, key: &str) -> Result<T, CheckpointError> {
        config_entry(&self.meta, key, self.path)
    }

    /// `config.<key>`, or its default when absent or unreadable (optional records, such as a
    /// calibration computed after training).
    pub fn entry_or_default<T: serde::de::DeserializeOwned + Default>(&self, key: &str) -> T {
        let value = self.meta.config.get(key).cloned().unwrap_or_default();
        serde_json::from_value(value).unwrap_or_default()
    }

    /// The model of the configuration, built by `new` from the file's tensors through
    /// [`build_model`], with the variables it holds.
    pub fn build_model<M>(
        &self,
        new: impl Fn(&C, VarBuilder<'_>) -> candle_core::Result<M>,
    ) -> Result<(M, VarMap), CheckpointError> {
        build_model(self.tensors, self.path, |vb| new(&self.cfg, vb))
    }
}

/// The metadata of weights imported from `path`, a model described by `config`.
fn imported_metadata(family: &str, config: serde_json::Value, path: &Path) -> Metadata {
    Metadata {
        family: family.into(),
        preset: "paper".into(),
        config,
        data: format!("imported:{}", path.display()),
        version: env!("CARGO_PKG_VERSION").into(),
        ..Default::default()
    }
}

/// A lab's [`LabFile`] (its family and its configuration's type), the methods the window
/// and the command line call on it (`Lab::load`, `Lab::from_snapshot`, `lab.save`) without
/// bringing [`Checkpointed`] into scope, and what a tab's models ask of it
/// ([`crate::app::HostedLab`]). The lab keeps the metadata it was opened with in a field
/// `meta` and its variables in a field `varmap`: a save writes both as they are.
#[macro_export]
macro_rules! checkpointed_lab {
    ($lab:ty, $family:expr, $config:ty) => {
        impl $crate::nn::checkpoint::LabFile for $lab {
            const FAMILY: &'static str = $family;
            type Config = $config;
        }

        impl $lab {
            /// Read a checkpoint of this family; a wrong, truncated or hostile file is an error.
            pub fn load(
                path: &std::path::Path,
            ) -> Result<Self, $crate::nn::checkpoint::CheckpointError> {
                <Self as $crate::nn::checkpoint::Checkpointed>::load_file(path)
            }

            /// The weights of a running training, as a lab.
            pub fn from_snapshot(s: &$crate::worker::Snapshot) -> anyhow::Result<Self> {
                Ok(
                    <Self as $crate::nn::checkpoint::Checkpointed>::from_training(
                        s.meta.clone(),
                        &s.tensors,
                    )?,
                )
            }

            /// Save weights and metadata atomically.
            pub fn save(
                &self,
                path: &std::path::Path,
            ) -> Result<(), $crate::nn::checkpoint::CheckpointError> {
                $crate::nn::checkpoint::save_varmap(path, &self.varmap, &self.meta)
            }
        }

        impl $crate::app::HostedLab for $lab {
            fn open(path: &std::path::Path) -> Result<Self, String> {
                Self::load(path).map_err(|e| e.to_string())
            }
            fn save_to(&self, path: &std::path::Path) -> Result<(), String> {
                self.save(path).map_err(|e| e.to_string())
            }
            fn from_snapshot(s: &$crate::worker::Snapshot) -> Result<Self, String> {
                <$lab>::from_snapshot(s).map_err(|e| format!("{e:#}"))
            }
            fn meta(&self) -> &$crate::nn::checkpoint::Metadata {
                &self.meta
            }
        }
    };
}

/// A model built from a checkpoint's tensors, guarded so that no configuration can make it
/// allocate more than the file holds, panic, or leak a library's internals into a message.
///
/// `new` runs twice. First over the tensors themselves through [`CheckingBackend`], which
/// refuses a missing name or a wrong shape before anything is allocated; then over a VarMap
/// already holding copies of the tensors, so that building finds every variable in place
/// and initialises nothing. A panic in either is caught and reported as one line.
pub fn build_model<M>(
    tensors: &HashMap<String, Tensor>,
    path: &Path,
    new: impl Fn(VarBuilder<'_>) -> candle_core::Result<M>,
) -> Result<(M, VarMap), CheckpointError> {
    let backend = CheckingBackend::new(tensors, path);
    let used = backend.used.clone();
    let refusal = backend.refusal.clone();
    let vb = VarBuilder::from_backend(Box::new(backend), DType::F32, Device::Cpu);
    let checked = quietly(|| new(vb)).map_err(|panic| unbuildable(path, &panic))?;
    if let Some(refused) = lock(&refusal).take() {
        return Err(refused);
    }
    checked.map_err(|e| CheckpointError::other(path, e))?;
    let used = std::mem::take(&mut *lock(&used));
    refuse_extra(tensors, |name| used.contains(name), path)?;

    let varmap = VarMap::new();
    {
        let mut data = lock_varmap(&varmap, path)?;
        for (name, t) in tensors {
            let var =
                candle_core::Var::from_tensor(t).map_err(|e| CheckpointError::other(path, e))?;
            data.insert(name.clone(), var);
        }
    }
    let built = quietly(|| new(crate::nn::var_builder(&varmap)));
    let model = built
        .map_err(|panic| unbuildable(path, &panic))?
        .map_err(|e| CheckpointError::other(path, e))?;
    // A constructor may give a variable its starting value (an identity matrix, say): the
    // file's values win.
    let data = lock_varmap(&varmap, path)?;
    for (name, t) in tensors {
        if let Some(var) = data.get(name) {
            var.set(t).map_err(|e| CheckpointError::other(path, e))?;
        }
    }
    drop(data);
    Ok((model, varmap))
}

fn lock_varmap<'a>(
    varmap: &'a VarMap,
    path: &Path,
) -> Result<std::sync::MutexGuard<'a, HashMap<String, candle_core::Var>>, CheckpointError> {
    varmap
        .data()
        .lock()
        .map_err(|_| CheckpointError::other(path, "variable map poisoned"))
}

fn refuse_extra(
    tensors: &HashMap<String, Tensor>,
    used: impl Fn(&str) -> bool,
    path: &Path,
) -> Result<(), CheckpointError> {
    let mut extra: Vec<&String> = tensors.keys().filter(|k| !used(k)).collect();
    extra.sort();
    match extra.first() {
        Some(name) => Err(CheckpointError::Unexpected {
            path: path.to_owned(),
            name: (*name).clone(),
        }),
        None => Ok(()),
    }
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn unbuildable(path: &Path, panic: &str) -> CheckpointError {
    CheckpointError::other(
        path,
        format!("the model in the config cannot be built ({panic})"),
    )
}

/// A VarBuilder backend over a checkpoint's own tensors. It hands out the tensor of the asked
/// name after checking its shape, and records a missing name or a wrong shape (the first
/// one) instead of creating anything, so building a model through it never allocates.
pub struct CheckingBackend<'a> {
    tensors: &'a HashMap<String, Tensor>,
    path: PathBuf,
    used: std::sync::Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    refusal: std::sync::Arc<std::sync::Mutex<Option<CheckpointError>>>,
}

impl<'a> CheckingBackend<'a> {
    pub fn new(tensors: &'a HashMap<String, Tensor>, path: &Path) -> Self {
        Self {
            tensors,
            path: path.to_owned(),
            used: Default::default(),
            refusal: Default::default(),
        }
    }

    fn refuse(&self, e: CheckpointError) -> candle_core::Error {
        let message = e.to_string();
        lock(&self.refusal).get_or_insert(e);
        candle_core::Error::Msg(message)
    }
}

impl candle_nn::var_builder::SimpleBackend for CheckingBackend<'_> {
    fn get(
        &self,
        shape: candle_core::Shape,
        name: &str,
        _: candle_nn::Init,
        dtype: DType,
        _: &Device,
    ) -> candle_core::Result<Tensor> {
        let t = self.get_unchecked(name, dtype, &Device::Cpu)?;
        if t.dims() != shape.dims() {
            return Err(self.refuse(CheckpointError::Shape {
                path: self.path.clone(),
                name: name.into(),
                expected: shape.dims().to_vec(),
                found: t.dims().to_vec(),
            }));
        }
        Ok(t)
    }

    fn get_unchecked(&self, name: &str, dtype: DType, _: &Device) -> candle_core::Result<Tensor> {
        let Some(t) = self.tensors.get(name) else {
            return Err(self.refuse(CheckpointError::Missing {
                path: self.path.clone(),
                name: name.into(),
            }));
        };
        lock(&self.used).insert(name.into());
        t.to_dtype(dtype)
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }
}

/// Save the weights of a VarMap with their metadata (atomically, see [`save`]).
pub fn save_varmap(path: &Path, varmap: &VarMap, meta: &Metadata) -> Result<(), CheckpointError> {
    let tensors = crate::nn::varmap_tensors(varmap).map_err(|e| CheckpointError::other(path, e))?;
    save(path, &tensors, meta)
}

/// Checkpoint bytes with the metadata `config` replaced by `config` (any text), everything
/// else as it was; None when `bytes` are not a safetensors file. Makes hostile variants of a
/// good checkpoint for the fuzz target and the tests.
pub fn with_config(bytes: &[u8], config: &str) -> Option<Vec<u8>> {
    let len = usize::try_from(u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?)).ok()?;
    let end = len.checked_add(8)?;
    let mut header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(bytes.get(8..end)?).ok()?;
    let meta = header
        .entry("__metadata__")
        .or_insert_with(|| serde_json::json!({}))
        .as_object_mut()?;
    meta.insert("config".into(), config.into());
    let header = serde_json::to_vec(&header).ok()?;
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&header);
    out.extend_from_slice(&bytes[end..]);
    Some(out)
}

/// The path named in errors about weights that come from a running training, not a file.
pub const TRAINING: &str = "(training)";

/// Copy named tensors into a variable map with full name and shape checks.
pub fn fill_varmap(
    varmap: &VarMap,
    tensors: &HashMap<String, Tensor>,
    path: &Path,
) -> Result<(), CheckpointError> {
    let data = varmap
        .data()
        .lock()
        .map_err(|_| CheckpointError::other(path, "variable map poisoned"))?;
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    for name in &names {
        let var = &data[*name];
        let t = tensors.get(*name).ok_or_else(|| CheckpointError::Missing {
            path: path.to_owned(),
            name: (*name).clone(),
        })?;
        if t.dims() != var.dims() {
            return Err(CheckpointError::Shape {
                path: path.to_owned(),
                name: (*name).clone(),
                expected: var.dims().to_vec(),
                found: t.dims().to_vec(),
            });
        }
    }
    let mut extra: Vec<&String> = tensors.keys().filter(|k| !data.contains_key(*k)).collect();
    extra.sort();
    if let Some(name) = extra.first() {
        return Err(CheckpointError::Unexpected {
            path: path.to_owned(),
            name: (*name).clone(),
        });
    }
    for name in names {
        data[name]
            .set(
                &tensors[name]
                    .to_dtype(DType::F32)
                    .map_err(|e| CheckpointError::other(path, e))?,
            )
            .map_err(|e| CheckpointError::other(path, e))?;
    }
    Ok(())
}

/// Read a PyTorch `torch.save(model.state_dict())` archive into named f32 tensors.
/// Anything else (a whole pickled model, a random zip, a text file) is refused by name.
pub fn read_pytorch_state_dict(path: &Path) -> Result<HashMap<String, Tensor>, CheckpointError> {
    let not_state_dict = |reason: String| {
        CheckpointError::other(path, format!("not a PyTorch state_dict ({reason})"))
    };
    let len = checkpoint_len(path)?;
    if let Some(size) = pickle_size(path)
        && size > MAX_PICKLE_BYTES
    {
        return Err(not_state_dict(format!(
            "its pickle is {size} bytes; a state_dict's is a few kB"
        )));
    }
    // The pickle reader is third-party code fed with untrusted bytes: contain any panic, and
    // give its recursion (a pickle can nest lists as deep as it has bytes) a stack to match
    let read = std::thread::scope(|scope| {
        let reader = std::thread::Builder::new()
            .stack_size(PICKLE_STACK_BYTES)
            .spawn_scoped(scope, || {
                quietly(|| -> candle_core::Result<Vec<(String, Tensor)>> {
                    let pth = candle_core::pickle::PthTensors::new(path, None)?;
                    let mut names: Vec<String> = pth.tensor_infos().keys().cloned().collect();
                    names.sort();
                    let mut out = Vec::new();
                    for name in names {
                        // the reader allocates what the pickle claims before reading: a claim
                        // larger than the whole file is refused first
                        let info = &pth.tensor_infos()[&name];
                        let bytes = (info.layout.dims().iter())
                            .try_fold(info.dtype.size_in_bytes(), |n, &d| n.checked_mul(d));
                        if bytes.is_none_or(|b| b as u64 > len) {
                            candle_core::bail!(
                                "tensor `{name}` claims shape {:?}, more than the file holds",
                                info.layout.dims()
                            );
                        }
                        if let Some(t) = pth.get(&name)? {
                            out.push((name, t.to_dtype(DType::F32)?));
                        }
                    }
                    Ok(out)
                })
            });
        match reader {
            Ok(handle) => handle.join().unwrap_or_else(|_| Err("a panic".into())),
            Err(e) => Err(e.to_string()),
        }
    });
    let tensors = match read {
        Ok(Ok(t)) => t,
        Ok(Err(e)) => return Err(not_state_dict(first_line(&e.to_string()))),
        Err(_) => return Err(not_state_dict("the archive could not be parsed".into())),
    };
    if tensors.is_empty() {
        return Err(not_state_dict("it holds no tensors by name".into()));
    }
    Ok(tensors.into_iter().collect())
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> Metadata {
        Metadata {
            family: "test".into(),
            preset: "p".into(),
            config: serde_json::json!({"a": 1}),
            data: "none".into(),
            steps: 3,
            seed: 7,
            metrics: [("r2".to_string(), 0.5)].into_iter().collect(),
            version: "0".into(),
        }
    }

    #[test]
    fn round_trip_and_checks() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("c.safetensors");
        let t = Tensor::arange(0f32, 6., &Device::Cpu)?.reshape((2, 3))?;
        save(&path, &[("w".into(), t.clone())], &meta())?;
        let loaded = load(&path)?;
        assert_eq!(loaded.meta, meta());
        assert_eq!(loaded.tensors["w"].to_vec2::<f32>()?, t.to_vec2::<f32>()?);
        assert!(loaded.expect_family("other").is_err());

        let varmap = VarMap::new();
        let vb = candle_nn::VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        vb.get((3, 2), "w")?;
        let err = loaded
            .fill(&varmap)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("`w`") && err.contains("[2, 3]"), "{err}");
        Ok(())
    }

    #[test]
    fn truncated_file_is_an_error_and_old_file_survives_failed_save() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("c.safetensors");
        let t = Tensor::ones((4, 4), DType::F32, &Device::Cpu)?;
        save(&path, &[("w".into(), t)], &meta())?;
        let bytes = std::fs::read(&path)?;
        for cut in (0..bytes.len()).step_by(13) {
            let r = load_bytes(&bytes[..cut], &path);
            assert!(r.is_err(), "truncation at {cut} accepted");
        }
        // An empty tensor with absurd dims (found by the fuzzer) is refused, not a panic.
        let header = br#"{"__metadata__":{"family":"x","config":"{}"},"e":{"dtype":"F32","shape":[0,4294967296,4294967296],"data_offsets":[0,0]}}"#;
        let mut hostile = (header.len() as u64).to_le_bytes().to_vec();
        hostile.extend_from_slice(header);
        let err = load_bytes(&hostile, &path)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("impossible shape"), "{err}");
        // A save into a directory that does not exist fails and leaves nothing behind.
        let bad = dir.path().join("missing").join("c.safetensors");
        assert!(save(&bad, &[], &meta()).is_err());
        assert_eq!(std::fs::read(&path)?, bytes);
        Ok(())
    }

    #[test]
    fn guarded_build_refuses_before_allocating_and_contains_panics() -> anyhow::Result<()> {
        let path = Path::new("m.safetensors");
        let w = Tensor::zeros((2, 3), DType::F32, &Device::Cpu)?;
        let tensors: HashMap<String, Tensor> = [("w".to_string(), w)].into_iter().collect();
        let refusal = |r: Result<(Tensor, VarMap), CheckpointError>| {
            r.err().map(|e| e.to_string()).unwrap_or_default()
        };
        // 4 TB of weights asked for: refused by the file's shape, nothing allocated
        let err = refusal(build_model(&tensors, path, |vb| {
            vb.get((1_000_000, 1_000_000), "w")
        }));
        assert!(err.contains("`w`") && err.contains("[2, 3]"), "{err}");
        let err = refusal(build_model(&tensors, path, |vb| vb.get((2, 3), "v")));
        assert!(err.contains("`v` is missing"), "{err}");
        let err = refusal(build_model(&tensors, path, |vb| {
            let _ = vb.get((2, 3), "w")?;
            panic!("capacity overflow")
        }));
        assert!(
            err.starts_with("m.safetensors:") && err.contains("capacity overflow"),
            "{err}"
        );
        assert!(!err.contains('\n'), "{err}");
        let (model, varmap) = build_model(&tensors, path, |vb| vb.get((2, 3), "w"))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        assert_eq!(model.dims(), &[2, 3]);
        assert_eq!(crate::nn::varmap_tensors(&varmap)?.len(), 1);
        // a tensor the model does not take
        let unused = build_model(&tensors, path, |_| {
            Tensor::zeros(1, DType::F32, &Device::Cpu)
        });
        assert!(refusal(unused).contains("does not belong"));
        Ok(())
    }
}
