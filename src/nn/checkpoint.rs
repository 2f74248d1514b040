//! Checkpoints: safetensors with a metadata map, atomic saves, checked loads, and import of
//! PyTorch state_dicts written by the papers' official code.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
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
    pub fn other(path: &Path, reason: impl std::fmt::Display) -> Self {
        Self::Other {
            path: path.to_owned(),
            reason: reason.to_string(),
        }
    }
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
    let io = |source| CheckpointError::Io {
        path: path.to_owned(),
        source,
    };
    let len = std::fs::metadata(path).map_err(io)?.len();
    if len > MAX_CHECKPOINT_BYTES {
        return Err(CheckpointError::other(
            path,
            format!("{len} bytes is too large for a checkpoint"),
        ));
    }
    let bytes = std::fs::read(path).map_err(io)?;
    load_bytes(&bytes, path)
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
pub fn config_entry<T: serde::de::DeserializeOwned>(
    meta: &Metadata,
    key: &str,
    path: &Path,
) -> Result<T, CheckpointError> {
    serde_json::from_value(meta.config.get(key).cloned().unwrap_or_default()).map_err(|_| {
        CheckpointError::Metadata {
            path: path.to_owned(),
            key: format!("config.{key}"),
        }
    })
}

/// `config.<key>`, or its default when absent or unreadable (optional records, such as a
/// calibration computed after training).
pub fn config_entry_or_default<T: serde::de::DeserializeOwned + Default>(
    meta: &Metadata,
    key: &str,
) -> T {
    serde_json::from_value(meta.config.get(key).cloned().unwrap_or_default()).unwrap_or_default()
}

/// A model built on a fresh VarMap by `new`, then given a checkpoint's tensors (every name and
/// shape checked by [`fill_varmap`]).
pub fn build_model<M>(
    tensors: &HashMap<String, Tensor>,
    path: &Path,
    new: impl FnOnce(&VarMap) -> candle_core::Result<M>,
) -> Result<(M, VarMap), CheckpointError> {
    let varmap = VarMap::new();
    let model = new(&varmap).map_err(|e| CheckpointError::other(path, e))?;
    fill_varmap(&varmap, tensors, path)?;
    Ok((model, varmap))
}

/// Save the weights of a VarMap with their metadata (atomically, see [`save`]).
pub fn save_varmap(path: &Path, varmap: &VarMap, meta: &Metadata) -> Result<(), CheckpointError> {
    let tensors = crate::nn::varmap_tensors(varmap).map_err(|e| CheckpointError::other(path, e))?;
    save(path, &tensors, meta)
}

/// Read a checkpoint that must belong to `family`.
pub fn load_family(path: &Path, family: &str) -> Result<Loaded, CheckpointError> {
    let loaded = load(path)?;
    loaded.expect_family(family)?;
    Ok(loaded)
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
    std::fs::metadata(path).map_err(|source| CheckpointError::Io {
        path: path.to_owned(),
        source,
    })?;
    // The pickle reader is third-party code fed with untrusted bytes: contain any panic.
    let read = std::panic::catch_unwind(|| -> candle_core::Result<Vec<(String, Tensor)>> {
        let pth = candle_core::pickle::PthTensors::new(path, None)?;
        let mut names: Vec<String> = pth.tensor_infos().keys().cloned().collect();
        names.sort();
        let mut out = Vec::new();
        for name in names {
            if let Some(t) = pth.get(&name)? {
                out.push((name, t.to_dtype(DType::F32)?));
            }
        }
        Ok(out)
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
}
