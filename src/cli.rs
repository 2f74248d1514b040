//! The headless subcommands. Each model family is a folder that implements [`Family`] and is
//! listed once in [`crate::registry::REGISTRY`]; this file holds what every family shares: the dispatch, the
//! training runner on the terminal, output checks, `.npy` in and out, metrics printing.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::anyhow;
use candle_core::Tensor;

use crate::nn::checkpoint::{self, SizeLimits};
use crate::worker::{self, Event};

/// The error of every command: exit code 2 for input the program refuses, 1 for work that
/// failed, decided by the type of what went wrong (see [`crate::error`]).
pub use crate::error::{Error as CliError, bad};

pub type CliResult = Result<(), CliError>;

/// What `latent-lab train` passes to a family. Options a family does not take are refused by
/// it ([`TrainArgs::config_without_sizes`]).
#[derive(Clone, Debug, Default)]
pub struct TrainArgs {
    pub preset: String,
    pub data: Option<String>,
    pub steps: Option<u64>,
    pub seed: u64,
    pub threads: Option<usize>,
    /// vae-relevance: latent dimensions; ievae: equivariant dimensions
    pub latent: Option<usize>,
    /// vae-relevance, ievae: weight of the KL term
    pub beta: Option<f64>,
    /// ievae: labelled training images in all (semi-supervised); None: all labelled
    pub labels: Option<usize>,
    /// `KEY=VALUE` overrides of the preset's training configuration (`--set`)
    pub set: Vec<String>,
    /// how often the job sends its weights; None: the family's own period (the terminal only
    /// saves the last weights, the window shows them as they learn)
    pub snapshot_every: Option<Duration>,
    /// the job's threads at the lowest priority (the window's runs)
    pub background: bool,
}

impl TrainArgs {
    pub fn preset(preset: &str) -> Self {
        Self {
            preset: preset.into(),
            ..Self::default()
        }
    }

    /// The preset's configuration with every `--set KEY=VALUE` applied. KEY names a field of
    /// the configuration as saved in a checkpoint's metadata, nested fields joined by dots
    /// (`model.hidden`); VALUE is JSON (`2e-3`, `true`, `[16,32]`), or else taken as a string.
    /// An unknown key or a value of the wrong type is refused, naming the fields there are.
    pub fn configure<T>(&self, cfg: T) -> Result<T, CliError>
    where
        T: serde::Serialize + serde::de::DeserializeOwned,
    {
        if self.set.is_empty() {
            return Ok(cfg);
        }
        let mut value = serde_json::to_value(cfg).map_err(|e| bad(anyhow!(e)))?;
        for item in &self.set {
            let (key, raw) = item
                .split_once('=')
                .ok_or_else(|| bad(anyhow!("--set {item}: expected KEY=VALUE")))?;
            let parsed = serde_json::from_str(raw)
                .unwrap_or_else(|_| serde_json::Value::String(raw.to_string()));
            let mut slot = &mut value;
            for part in key.split('.') {
                let fields = match &*slot {
                    serde_json::Value::Object(map) => map.keys().cloned().collect::<Vec<_>>(),
                    _ => Vec::new(),
                };
                slot = match slot.get_mut(part) {
                    Some(next) => next,
                    None => {
                        return Err(bad(anyhow!(
                            "--set {item}: no setting `{part}` here (there are: {})",
                            if fields.is_empty() {
                                "none, it is a single value".to_string()
                            } else {
                                fields.join(", ")
                            }
                        )));
                    }
                };
            }
            *slot = parsed;
            // checked after each item, so that an error names the item that caused it
            serde_json::from_value::<T>(value.clone())
                .map_err(|e| bad(anyhow!("--set {item}: {e}")))?;
        }
        serde_json::from_value(value).map_err(|e| bad(anyhow!("--set: {e}")))
    }

    /// A family's training configuration: the preset `--preset` names (made by `preset`),
    /// every `--set` applied, and `--steps` in place of the preset's steps (the field `steps`
    /// gives).
    pub fn config<T>(
        &self,
        preset: impl FnOnce(&str) -> anyhow::Result<T>,
        steps: impl FnOnce(&mut T) -> &mut u64,
    ) -> Result<T, CliError>
    where
        T: serde::Serialize + serde::de::DeserializeOwned + SizeLimits,
    {
        let mut cfg = self.configure(preset(&self.preset).map_err(bad)?)?;
        if let Some(s) = self.steps {
            *steps(&mut cfg) = s;
        }
        // the limits a checkpoint is loaded under: a model outside them is refused before
        // it is built, not after it has trained (or failed to allocate)
        for (name, value, allowed) in cfg.size_limits() {
            if !allowed.contains(&value) {
                return Err(bad(anyhow!(
                    "--set: {name} = {value}, must be {}..={}",
                    allowed.start(),
                    allowed.end()
                )));
            }
        }
        // every family's optimiser steps by `lr`: at 0 or below it learns nothing or ascends
        let lr = serde_json::to_value(&cfg)
            .ok()
            .and_then(|v| v.get("lr")?.as_f64());
        if let Some(lr) = lr.filter(|lr| *lr <= 0.0) {
            return Err(bad(anyhow!("--set: lr = {lr}, must be above 0")));
        }
        Ok(cfg)
    }

    /// `--labels` is the IE-VAE's alone: anywhere else it would be ignored without a word.
    pub fn refuse_labels(&self, family: &str) -> Result<(), CliError> {
        match self.labels {
            Some(_) => Err(bad(anyhow!("--labels applies to ievae, not to {family}"))),
            None => Ok(()),
        }
    }

    /// [`TrainArgs::config`] for a family without `--latent`/`--beta` (named `family`), which
    /// refuses them first.
    pub fn config_without_sizes<T>(
        &self,
        family: &str,
        preset: impl FnOnce(&str) -> anyhow::Result<T>,
        steps: impl FnOnce(&mut T) -> &mut u64,
    ) -> Result<T, CliError>
    where
        T: serde::Serialize + serde::de::DeserializeOwned + SizeLimits,
    {
        if self.latent.is_some() || self.beta.is_some() {
            return Err(bad(anyhow!(
                "--latent and --beta apply to vae-relevance and ievae, not to {family}"
            )));
        }
        self.refuse_labels(family)?;
        self.config(preset, steps)
    }

    /// `--latent`, refused outside `allowed` (what the family calls the dimensions: `what`).
    pub fn latent_within(
        &self,
        allowed: std::ops::RangeInclusive<usize>,
        what: &str,
    ) -> Result<Option<usize>, CliError> {
        match self.latent {
            Some(l) if !allowed.contains(&l) => Err(bad(anyhow!(
                "--latent {l}: give {} to {} {what}",
                allowed.start(),
                allowed.end()
            ))),
            l => Ok(l),
        }
    }

    /// `--beta`, refused unless a finite number >= 0.
    pub fn checked_beta(&self) -> Result<Option<f64>, CliError> {
        match self.beta {
            Some(b) if !(b.is_finite() && b >= 0.0) => {
                Err(bad(anyhow!("--beta {b}: give a number >= 0")))
            }
            b => Ok(b),
        }
    }

    /// Training threads: `--threads`, else every core.
    pub fn threads_or_all(&self) -> usize {
        self.threads.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        })
    }

    /// The job's options: evaluations every `eval_every` steps, `--threads` (else every
    /// core), and the weights sent every 30 s unless the caller asks otherwise.
    pub fn job_options(&self, eval_every: u64) -> worker::JobOptions {
        worker::JobOptions {
            threads: self.threads_or_all(),
            eval_every,
            snapshot_every: self.snapshot_every.unwrap_or(Duration::from_secs(30)),
            background: self.background,
        }
    }
}

/// One model family's headless commands. `out` paths reach a family already checked writable;
/// checkpoint files already checked to be of this family.
pub trait Family: Sync {
    /// The name on the command line and in checkpoint metadata.
    fn name(&self) -> &'static str;
    /// Start a training job; the shared runner drives it and saves its last weights.
    fn train(&self, args: &TrainArgs) -> Result<worker::JobHandle, CliError>;
    /// The metrics of a checkpoint, one JSON object (`eval --json` prints it as is).
    fn eval(&self, file: &Path, data: Option<&str>) -> Result<serde_json::Value, CliError>;
    /// Write a figure, image or sound of a checkpoint.
    fn export(&self, file: &Path, figure: &str, out: &Path) -> CliResult;
    /// Convert a state_dict of the paper's official PyTorch code.
    fn import(&self, file: &Path, _out: &Path) -> CliResult {
        Err(bad(anyhow!(
            "{}: {} has no official PyTorch checkpoint to import (train one with `latent-lab train {}`)",
            file.display(),
            self.name(),
            self.name()
        )))
    }
    /// One benchmark (train-step, decode, ...) as a JSON object.
    fn bench(&self, what: &str, preset: &str) -> Result<serde_json::Value, CliError>;
    /// Inputs (.npy, the model's own layout) to latent means (.npy).
    fn encode(&self, file: &Path, input: &Path, out: &Path) -> CliResult;
    /// Latents (.npy) to outputs (.npy and whatever the family draws or plays).
    fn decode(&self, file: &Path, latents: &Path, out: &Path) -> CliResult;
}

/// Every family the program knows, in tab order (the registry's).
pub fn families() -> impl Iterator<Item = &'static dyn Family> {
    crate::registry::REGISTRY.iter().map(|entry| entry.family)
}

pub fn family_names() -> Vec<&'static str> {
    families().map(|f| f.name()).collect()
}

pub fn family(name: &str) -> Result<&'static dyn Family, CliError> {
    families().find(|f| f.name() == name).ok_or_else(|| {
        bad(anyhow!(
            "unknown family `{name}` (available: {})",
            family_names().join(", ")
        ))
    })
}

/// The family a checkpoint belongs to, from its metadata.
pub fn family_of(file: &Path) -> Result<&'static dyn Family, CliError> {
    let loaded = checkpoint::load(file)?;
    family(&loaded.meta.family).map_err(|_| {
        bad(anyhow!(
            "{}: a checkpoint of family `{}`, which this program does not know",
            file.display(),
            loaded.meta.family
        ))
    })
}

/// Open checkpoint bytes as the lab of the family their metadata names, as `eval` and the
/// window do: any bytes give the lab or an error, never a panic (the fuzz targets' entry).
pub fn open_lab_bytes(bytes: &[u8], path: &Path) -> Result<(), checkpoint::CheckpointError> {
    use checkpoint::Checkpointed;
    let loaded = checkpoint::load_bytes(bytes, path)?;
    let (meta, tensors) = (loaded.meta, &loaded.tensors);
    match meta.family.as_str() {
        crate::sps_music::FAMILY => {
            crate::sps_music::Lab::from_parts(meta, tensors, path).map(drop)
        }
        crate::sps_vision::FAMILY => {
            crate::sps_vision::Lab::from_parts(meta, tensors, path).map(drop)
        }
        crate::relevance::FAMILY => {
            crate::relevance::Lab::from_parts(meta, tensors, path).map(drop)
        }
        crate::ievae::FAMILY => crate::ievae::Lab::from_parts(meta, tensors, path).map(drop),
        crate::digits::classifier::FAMILY => {
            crate::digits::classifier::DigitClassifier::from_parts(meta, tensors, path).map(drop)
        }
        _ => crate::v3::Lab::from_parts(meta, tensors, path).map(drop),
    }
}

/// Fail before hours of work if the output cannot be written.
pub fn check_writable(out: &Path) -> CliResult {
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        return Err(bad(anyhow!(
            "{}: the folder {} does not exist",
            out.display(),
            dir.display()
        )));
    }
    if out.is_dir() {
        return Err(bad(anyhow!(
            "{}: is a folder, not a file path",
            out.display()
        )));
    }
    // results are written beside the target and renamed over it: that would replace a link
    // (not the file it points to), a pipe or a device with a plain file
    if let Ok(meta) = std::fs::symlink_metadata(out)
        && !meta.is_file()
    {
        return Err(bad(anyhow!(
            "{}: is a link, pipe or device, not a file (give the file's own path)",
            out.display()
        )));
    }
    // found now, not after the work: most file systems take names of up to 255 bytes
    if out.file_name().is_some_and(|n| n.len() > 255) {
        return Err(bad(anyhow!("{}: the file name is too long", out.display())));
    }
    let probe = dir.join(format!(".latent-lab-probe-{}", std::process::id()));
    std::fs::write(&probe, b"")
        .map_err(|e| bad(anyhow!("{}: cannot write there ({e})", out.display())))?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}

pub fn train(family_name: &str, args: &TrainArgs, out: &Path) -> CliResult {
    let fam = family(family_name)?;
    check_writable(out)?;
    let job = fam.train(args)?;
    run_job(job, out)
}

pub fn eval(file: &Path, data: Option<&str>, json: bool) -> CliResult {
    let metrics = family_of(file)?.eval(file, data)?;
    print_metrics(&metrics, json);
    Ok(())
}

/// Both checkpoints' evals (on each one's own data) and their differences; the two must be of
/// one family, as their metrics would not line up otherwise.
pub fn compare(a: &Path, b: &Path, json: bool) -> CliResult {
    let fam = one_family(a, b)?;
    let (ma, mb) = (fam.eval(a, None)?, fam.eval(b, None)?);
    let table = crate::compare::Comparison::new(&ma, &mb);
    if json {
        println!("{}", table.to_json(&ma, &mb));
    } else {
        println!(
            "A: {}\nB: {}\n{}",
            a.display(),
            b.display(),
            table.to_text()
        );
    }
    Ok(())
}

/// The family of two checkpoints that must be of one family (their metrics and figures would
/// not line up otherwise).
fn one_family(a: &Path, b: &Path) -> Result<&'static dyn Family, CliError> {
    let (fa, fb) = (family_of(a)?, family_of(b)?);
    if fa.name() != fb.name() {
        return Err(bad(anyhow!(
            "{}: a `{}` checkpoint, and {} is `{}`: comparing takes two of the same family",
            b.display(),
            fb.name(),
            a.display(),
            fa.name()
        )));
    }
    Ok(fa)
}

/// A figure of `file`; with `compare`, the same figure of both checkpoints side by side (for a
/// WAV: the first, half a second of silence, then the second).
pub fn export(file: &Path, figure: &str, out: &Path, compare: Option<&Path>) -> CliResult {
    let fam = match compare {
        Some(b) => one_family(file, b)?,
        None => family_of(file)?,
    };
    check_writable(out)?;
    if extension(out).is_empty() {
        return Err(bad(anyhow!(
            "{}: the name has no extension to say what to write (.png, .svg, or .wav for sound)",
            out.display()
        )));
    }
    match compare {
        None => export_one(fam, file, figure, out)?,
        Some(b) => export_pair(fam, [file, b], figure, out)?,
    }
    eprintln!("wrote {}", out.display());
    Ok(())
}

/// One checkpoint's figure: the navigation figures (latent map, interpolation, directions)
/// are drawn once for every family with a latent map; the rest are the family's own.
fn export_one(fam: &dyn Family, file: &Path, figure: &str, out: &Path) -> CliResult {
    let nav = crate::app::explore::NavFigure::parse(figure);
    match (nav, crate::registry::explorer(fam.name())) {
        (Some(nav), Some(open)) => Ok(crate::app::explore::export(
            open(file)?.as_ref(),
            &nav?,
            out,
        )?),
        _ => fam.export(file, figure, out),
    }
}

fn export_pair(fam: &dyn Family, files: [&Path; 2], figure: &str, out: &Path) -> CliResult {
    let ext = extension(out);
    let dir = tempfile::tempdir().map_err(|e| CliError::Failed(e.into()))?;
    let parts = [
        dir.path().join(format!("a.{ext}")),
        dir.path().join(format!("b.{ext}")),
    ];
    for (file, part) in files.iter().zip(&parts) {
        export_one(fam, file, figure, part)?;
    }
    if ext == "wav" {
        let clips = [
            crate::audio::wav::read_mono(&parts[0])?,
            crate::audio::wav::read_mono(&parts[1])?,
        ];
        let (both, rate) = crate::audio::wav::one_after_another(&clips);
        crate::audio::wav::write_mono(out, &both, rate)?;
    } else {
        let labels = crate::figures::labels(&[Some(files[0]), Some(files[1])]);
        crate::figures::side_by_side(&parts[0], &parts[1], [&labels[0], &labels[1]], out)
            .map_err(bad)?;
    }
    Ok(())
}

pub fn import(file: &Path, family_name: &str, out: &Path) -> CliResult {
    let fam = family(family_name)?;
    check_writable(out)?;
    fam.import(file, out)
}

pub fn bench(family_name: &str, what: &str, preset: &str, json: bool) -> CliResult {
    let result = family(family_name)?.bench(what, preset)?;
    print_metrics(&result, json);
    Ok(())
}

pub fn encode(file: &Path, input: &Path, out: &Path) -> CliResult {
    let fam = family_of(file)?;
    check_writable(out)?;
    fam.encode(file, input, out)
}

pub fn decode(file: &Path, latents: &Path, out: &Path) -> CliResult {
    let fam = family_of(file)?;
    check_writable(out)?;
    fam.decode(file, latents, out)
}

/// Drive a job to its end on the terminal, then save its last weights to `out`.
pub fn run_job(job: worker::JobHandle, out: &Path) -> CliResult {
    // Ctrl-C stops training after the current step and still saves the weights reached.
    let flag = job.cancel_flag();
    let _ = ctrlc::set_handler(move || flag.store(true, std::sync::atomic::Ordering::Relaxed));
    let tty = std::io::stderr().is_terminal();
    let bar = tty.then(|| {
        let b = indicatif::ProgressBar::new(0);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{elapsed_precise} [{bar:30}] {pos}/{len} {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    });
    let mut last = None;
    let mut failure = None;
    let mut finished = false;
    let mut last_line = Instant::now();
    job.wait(|event| match event {
        Event::Status(s) => match &bar {
            Some(b) => b.set_message(s.clone()),
            None => eprintln!("{s}"),
        },
        Event::Step(s) => {
            if let Some(b) = &bar {
                b.set_position(s.step);
                b.set_message(format!("loss {:.2}", s.total()));
            } else if last_line.elapsed() > Duration::from_secs(10) {
                // the plain line names every part of the loss, for logs
                let parts: String = s
                    .losses
                    .iter()
                    .skip(1)
                    .map(|(name, v)| format!(", {name} {v:.3}"))
                    .collect();
                eprintln!("step {} loss {:.3}{parts}", s.step, s.total());
                last_line = Instant::now();
            }
        }
        Event::Metrics { step, values } => {
            let text: Vec<String> = values.iter().map(|(k, v)| format!("{k} {v:.4}")).collect();
            match &bar {
                Some(b) => b.println(format!("step {step}: {}", text.join(", "))),
                None => eprintln!("step {step}: {}", text.join(", ")),
            }
        }
        Event::Snapshot(s) => {
            if let Some(b) = &bar
                && let Some(t) = s
                    .meta
                    .config
                    .pointer("/train/steps")
                    .and_then(|v| v.as_u64())
            {
                b.set_length(t);
            }
            last = Some(s.clone());
        }
        Event::Finished {
            steps,
            cancelled,
            elapsed,
        } => {
            finished = true;
            let msg = format!(
                "{} after {steps} steps in {:.1} s",
                if *cancelled { "stopped" } else { "finished" },
                elapsed.as_secs_f64()
            );
            match &bar {
                Some(b) => b.finish_with_message(msg),
                None => eprintln!("{msg}"),
            }
        }
        Event::Failed(e) => failure = Some(e.clone()),
    });
    let failure = failure.or_else(|| (!finished).then(|| "training ended without a result".into()));
    let Some(e) = failure else {
        if let Some(snapshot) = &last {
            checkpoint::save(out, &snapshot.tensors, &snapshot.meta)?;
            eprintln!("saved {}", out.display());
        }
        return Ok(());
    };
    match &last {
        // the job failed before its first snapshot: the data or the settings were refused
        None => Err(bad(anyhow!(e))),
        Some(s) if s.meta.steps == 0 => Err(CliError::Failed(anyhow!(
            "{e}; no step succeeded, so nothing was saved"
        ))),
        Some(s) => {
            // the weights of a failed run never replace a file that was there
            let target = if out.exists() {
                failed_run_path(out, s.meta.steps)
            } else {
                out.to_owned()
            };
            checkpoint::save(&target, &s.tensors, &s.meta)?;
            Err(CliError::Failed(anyhow!(
                "{e} (the last good weights, of step {}, were saved to {})",
                s.meta.steps,
                target.display()
            )))
        }
    }
}

/// Where a failed run keeps its last good weights when `out` already exists: beside it, named
/// by the step they are from (`model.safetensors` -> `model.step120.safetensors`).
fn failed_run_path(out: &Path, step: u64) -> PathBuf {
    let stem = out.file_stem().unwrap_or_default().to_string_lossy();
    let ext = out
        .extension()
        .map(|e| e.to_string_lossy())
        .unwrap_or_default();
    out.with_file_name(format!("{stem}.step{step}.{ext}"))
}

pub fn print_metrics(metrics: &serde_json::Value, json: bool) {
    if json {
        println!("{metrics}");
    } else if let Some(map) = metrics.as_object() {
        for (k, v) in map {
            println!("{k:32} {v}");
        }
    }
}

/// The refusal of `decode` to an output of extension `ext`; `formats` names the ones the
/// family writes (".npy or .png").
pub fn cannot_decode_to(out: &Path, ext: &str, formats: &str) -> CliError {
    if ext.is_empty() {
        return bad(anyhow!(
            "{}: the name has no extension to say what to write (use {formats})",
            out.display()
        ));
    }
    bad(anyhow!(
        "{}: cannot decode to .{ext} (use {formats})",
        out.display()
    ))
}

/// The refusal of `export` of `figure` as `.ext`; `figures` lists what the family exports.
pub fn cannot_export(out: &Path, figure: &str, ext: &str, figures: &str) -> CliError {
    bad(anyhow!(
        "{}: cannot export figure `{figure}` as .{ext} ({figures})",
        out.display()
    ))
}

/// The lower-case extension of an output path ("" when it has none).
pub fn extension(out: &Path) -> String {
    out.extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .unwrap_or_default()
}

/// A `.npy` array of any float type as f32, refused with the file's name when unreadable.
pub fn read_npy(path: &Path) -> Result<Tensor, CliError> {
    npy_holds_its_shape(path).map_err(|e| {
        bad(anyhow!(
            "{}: not a readable .npy array ({e})",
            path.display()
        ))
    })?;
    let x = Tensor::read_npy(path).map_err(|e| {
        bad(anyhow!(
            "{}: not a readable .npy array ({e})",
            path.display()
        ))
    })?;
    let x = x.to_dtype(candle_core::DType::F32)?;
    if !all_finite(&x)? {
        return Err(bad(anyhow!(
            "{}: holds NaN or infinite values",
            path.display()
        )));
    }
    Ok(x)
}

/// Whether every value of `t` is a finite number.
fn all_finite(t: &Tensor) -> candle_core::Result<bool> {
    let values = t
        .flatten_all()?
        .to_dtype(candle_core::DType::F32)?
        .to_vec1::<f32>()?;
    Ok(values.iter().all(|v| v.is_finite()))
}

/// Whether a `.npy` file holds as many bytes as its header's shape and type call for. The
/// reader allocates what the header claims before it reads: a few bytes claiming 10^12 rows
/// must be refused first, and a shape whose size overflows must not wrap to an empty array.
/// The header is read as candle's reader reads it ([`npy_header`]), so that no spelling of
/// it (a key without quotes, a type without its size, a key given twice) gets past this
/// check and not past the reader.
fn npy_holds_its_shape(path: &Path) -> anyhow::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let len = crate::error::regular_file_len(path)?;
    let mut file = std::fs::File::open(path)?;
    let mut prefix = [0u8; 12];
    if file.read_exact(&mut prefix).is_err() || &prefix[..6] != b"\x93NUMPY" {
        anyhow::bail!("it does not start as a .npy file does");
    }
    let (start, header_len) = match prefix[6] {
        1 => (10, u16::from_le_bytes([prefix[8], prefix[9]]) as u64),
        2 => (
            12,
            u32::from_le_bytes([prefix[8], prefix[9], prefix[10], prefix[11]]) as u64,
        ),
        v => anyhow::bail!("version {v} of the format is not read (1 and 2 are)"),
    };
    if header_len > 1 << 20 || start + header_len > len {
        anyhow::bail!("its header runs past the end of the file");
    }
    let mut header = vec![0u8; header_len as usize];
    file.seek(SeekFrom::Start(start))?;
    file.read_exact(&mut header)?;
    let (shape, item) = npy_header(&String::from_utf8_lossy(&header))?;
    let values = (shape.iter()).try_fold(1u64, |n, &d| n.checked_mul(d));
    let data = len - start - header_len;
    match values.and_then(|n| n.checked_mul(item)) {
        Some(bytes) if bytes <= data => Ok(()),
        _ => anyhow::bail!(
            "its header promises shape {shape:?} of {item}-byte values, but the file holds {data} bytes of data"
        ),
    }
}

/// The shape and the size in bytes of one value that a `.npy` header declares, read as
/// candle's reader reads it: the dictionary split at top-level commas, each entry at its one
/// colon, quotes and spaces trimmed, the last of a repeated key kept.
fn npy_header(header: &str) -> anyhow::Result<(Vec<u64>, u64)> {
    let header = header.trim_matches(|c: char| matches!(c, '{' | '}' | ',') || c.is_whitespace());
    let mut entries = Vec::new();
    let (mut depth, mut from) = (0i64, 0);
    for (i, c) in header.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                entries.push(&header[from..i]);
                from = i + 1;
            }
            _ => {}
        }
    }
    entries.push(&header[from..]);
    let mut fields = std::collections::HashMap::new();
    for entry in entries.iter().map(|e| e.trim()).filter(|e| !e.is_empty()) {
        let &[key, value] = entry.split(':').collect::<Vec<_>>().as_slice() else {
            anyhow::bail!("its header is not a dictionary");
        };
        let unquote = |s: &str| {
            s.trim_matches(|c: char| c == '\'' || c.is_whitespace())
                .to_string()
        };
        fields.insert(unquote(key), unquote(value));
    }
    let field = |key: &str| {
        fields
            .get(key)
            .ok_or_else(|| anyhow!("its header has no `{key}`"))
    };
    if fields.get("fortran_order").is_some_and(|f| f == "True") {
        anyhow::bail!("it is in Fortran order; save it in C order with numpy.ascontiguousarray");
    }
    let descr = field("descr")?;
    if descr.starts_with('>') {
        anyhow::bail!("its values are big-endian ({descr}); save them as little-endian");
    }
    let item = match descr.trim_matches(['=', '<', '|']) {
        "B" | "u1" | "?" | "b1" => 1,
        "e" | "f2" | "h" | "i2" => 2,
        "f" | "f4" | "i" | "i4" | "I" | "u4" => 4,
        "d" | "f8" | "q" | "i8" => 8,
        _ => anyhow::bail!("values of type {descr} are not read"),
    };
    let shape = field("shape")?.trim_matches(['(', ')', ',']);
    let shape = (shape.split(',').map(str::trim).filter(|d| !d.is_empty()))
        .map(|d| d.parse::<u64>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| anyhow!("shape ({shape}) is not a shape"))?;
    Ok((shape, item))
}

/// The most rows `encode` and `decode` take from one file: each decoded row is a frame, a
/// spectrogram or an image, and the results are held together before they are written.
pub const MAX_ROWS: usize = 100_000;

/// A `.npy` batch that must have the shape `(N, item...)`: `what` says what an item is.
pub fn read_batch(path: &Path, item: &[usize], what: &str) -> Result<Tensor, CliError> {
    let x = read_npy(path)?;
    if x.dims().len() != item.len() + 1 || x.dims()[1..] != *item {
        let dims: Vec<String> = item.iter().map(|d| d.to_string()).collect();
        return Err(bad(anyhow!(
            "{}: shape {:?}, expected (N, {}) {what}",
            path.display(),
            x.dims(),
            dims.join(", ")
        )));
    }
    if x.dims()[0] == 0 {
        return Err(bad(anyhow!("{}: holds no {what}", path.display())));
    }
    if x.dims()[0] > MAX_ROWS {
        return Err(bad(anyhow!(
            "{}: {} {what}; give at most {MAX_ROWS} at a time",
            path.display(),
            x.dims()[0]
        )));
    }
    Ok(x)
}

/// A `.npy` array that must have the shape `(N, cols)`: N and the values, row-major.
pub fn read_matrix(path: &Path, cols: usize, what: &str) -> Result<(usize, Vec<f32>), CliError> {
    let x = read_batch(path, &[cols], what)?;
    Ok((x.dims()[0], x.flatten_all()?.to_vec1::<f32>()?))
}

/// [`read_batch`] of values that must lie in [0, 1], as every encoder's inputs do (images of
/// ink or colour, spectra on the features' scale): 8-bit pixels or raw magnitudes would be
/// encoded to latents that mean nothing.
pub fn read_unit_batch(path: &Path, item: &[usize], what: &str) -> Result<Tensor, CliError> {
    let x = read_batch(path, item, what)?;
    unit_values(&x, path, what)?;
    Ok(x)
}

/// [`read_unit_batch`] of an `(N, cols)` array: N and the values, row-major.
pub fn read_unit_matrix(
    path: &Path,
    cols: usize,
    what: &str,
) -> Result<(usize, Vec<f32>), CliError> {
    let x = read_batch(path, &[cols], what)?;
    let values = unit_values(&x, path, what)?;
    Ok((x.dims()[0], values))
}

/// The values of `x`, row-major, refused unless every one lies in [0, 1].
fn unit_values(x: &Tensor, path: &Path, what: &str) -> Result<Vec<f32>, CliError> {
    let values = x.flatten_all()?.to_vec1::<f32>()?;
    let (lo, hi) =
        (values.iter()).fold((f32::MAX, f32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    if lo < 0.0 || hi > 1.0 {
        return Err(bad(anyhow!(
            "{}: values from {lo} to {hi}, expected {what}",
            path.display()
        )));
    }
    Ok(values)
}

/// Write a tensor as `.npy`, atomically.
pub fn write_npy(t: &Tensor, out: &Path) -> CliResult {
    // a model meeting inputs far outside what it was trained on can overflow: say so rather
    // than hand back an array of NaN
    if !all_finite(t)? {
        return Err(bad(anyhow!(
            "{}: not written: the results are not finite numbers (the inputs lie far outside the range the model was trained on)",
            out.display()
        )));
    }
    let tmp = out.with_extension("npy.tmp");
    t.write_npy(&tmp)
        .map_err(|e| bad(anyhow!("{}: {e}", out.display())))?;
    std::fs::rename(&tmp, out).map_err(|e| bad(anyhow!("{}: {e}", out.display())))?;
    Ok(())
}

/// Write an RGB image as PNG, atomically.
pub fn write_png(out: &Path, w: usize, h: usize, rgb: Vec<u8>) -> CliResult {
    let img = image::RgbImage::from_raw(w as u32, h as u32, rgb)
        .ok_or_else(|| CliError::Failed(anyhow!("image buffer of the wrong size")))?;
    let tmp = out.with_extension("png.tmp");
    img.save_with_format(&tmp, image::ImageFormat::Png)
        .map_err(|e| bad(anyhow!("{}: {e}", out.display())))?;
    std::fs::rename(&tmp, out).map_err(|e| bad(anyhow!("{}: {e}", out.display())))?;
    Ok(())
}

/// Time `f` `n` times after `warm` untimed calls: milliseconds, sorted.
pub fn time_ms(
    f: &mut dyn FnMut() -> anyhow::Result<()>,
    warm: usize,
    n: usize,
) -> Result<Vec<f64>, CliError> {
    for _ in 0..warm {
        f()?;
    }
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        f()?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    Ok(times)
}

/// The decode benchmark every family reports: `n` timed calls of `decode` after 50 untimed.
pub fn bench_decode(
    family: &str,
    preset: &str,
    n: usize,
    decode: &mut dyn FnMut() -> anyhow::Result<()>,
) -> Result<serde_json::Value, CliError> {
    let times = time_ms(decode, 50, n)?;
    Ok(serde_json::json!({
        "family": family, "preset": preset, "what": "decode",
        "decode_ms_p50": percentile(&times, 0.5),
        "decode_ms_p95": percentile(&times, 0.95),
        "decode_ms_p99": percentile(&times, 0.99),
        "samples": times.len(),
        "threads": rayon::current_num_threads(),
    }))
}

/// The train-step benchmark every family reports: `n` timed steps after `warm` untimed, and
/// the family's own description of a step (`details`, a JSON object: batch, sequence, ...).
pub fn bench_train_step(
    family: &str,
    preset: &str,
    trainer: &mut dyn worker::Trainer,
    (warm, n): (usize, usize),
    details: serde_json::Value,
) -> Result<serde_json::Value, CliError> {
    let times = time_ms(&mut || trainer.step().map(|_| ()), warm, n)?;
    let mut out = serde_json::json!({
        "family": family, "preset": preset, "what": "train-step",
        "ms_per_step_median": percentile(&times, 0.5),
        "ms_per_step_min": times.first(), "ms_per_step_max": times.last(),
        "threads": rayon::current_num_threads(),
    });
    if let (Some(out), serde_json::Value::Object(details)) = (out.as_object_mut(), details) {
        out.extend(details);
    }
    Ok(out)
}

/// The refusal of a benchmark a family does not have; `known` lists the ones it has.
pub fn unknown_bench(family: &str, what: &str, known: &str) -> CliError {
    bad(anyhow!("unknown benchmark `{what}` for {family} ({known})"))
}

/// The p-quantile (0..=1) of sorted values, nearest rank.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Inner {
        hidden: usize,
        mode: String,
    }

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Cfg {
        lr: f64,
        model: Inner,
    }

    fn cfg() -> Cfg {
        Cfg {
            lr: 1e-3,
            model: Inner {
                hidden: 8,
                mode: "a".into(),
            },
        }
    }

    fn message(e: CliError) -> String {
        match e {
            CliError::BadInput(e) => e.to_string(),
            CliError::Failed(e) => panic!("not bad input: {e}"),
        }
    }

    fn with(set: &[&str]) -> Result<Cfg, CliError> {
        TrainArgs {
            set: set.iter().map(|s| s.to_string()).collect(),
            ..TrainArgs::default()
        }
        .configure(cfg())
    }

    #[test]
    fn set_overrides_nested_settings_and_takes_bare_words_as_strings() {
        let c = with(&["lr=2e-3", "model.hidden=32", "model.mode=b"]).unwrap();
        assert_eq!(
            c,
            Cfg {
                lr: 2e-3,
                model: Inner {
                    hidden: 32,
                    mode: "b".into()
                }
            }
        );
        assert_eq!(with(&[]).unwrap(), cfg());
    }

    #[test]
    fn set_refuses_unknown_keys_wrong_types_and_missing_values() {
        let unknown = message(with(&["model.hiden=3"]).err().unwrap());
        assert!(
            unknown.contains("hiden") && unknown.contains("hidden, mode"),
            "{unknown}"
        );
        let typed = message(with(&["model.hidden=abc"]).err().unwrap());
        assert!(typed.contains("--set model.hidden=abc"), "{typed}");
        let bare = message(with(&["lr"]).err().unwrap());
        assert!(bare.contains("KEY=VALUE"), "{bare}");
        let deep = message(with(&["lr.x=1"]).err().unwrap());
        assert!(deep.contains("single value"), "{deep}");
    }

    /// A version 1 `.npy` file of `header` (the dictionary, padded as numpy pads it) and
    /// `data` bytes.
    fn npy_file(header: &str, data: &[u8]) -> Vec<u8> {
        let mut h = header.to_string();
        while !(10 + h.len() + 1).is_multiple_of(64) {
            h.push(' ');
        }
        h.push('\n');
        let len = (h.len() as u16).to_le_bytes();
        [b"\x93NUMPY\x01\x00".as_slice(), &len, h.as_bytes(), data].concat()
    }

    #[test]
    fn npy_headers_are_read_as_the_reader_reads_them() {
        let h = |s: &str| npy_header(s).map_err(|e| e.to_string());
        let plain = "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }";
        assert_eq!(h(plain), Ok((vec![3, 4], 4)));
        assert_eq!(h("{'descr': '<f8', 'shape': (128,), }"), Ok((vec![128], 8)));
        assert_eq!(h("{'descr': '|u1', 'shape': (), }"), Ok((vec![], 1)));
        // spellings the reader takes, each of which must be counted as it counts them
        assert_eq!(h("{'descr': '<f', 'shape': (7, 2)}"), Ok((vec![7, 2], 4)));
        assert_eq!(h("{descr: '<f4', shape: (9,)}"), Ok((vec![9], 4)));
        let twice = "{'descr': '<f4', 'shape': (1,), 'shape': (10, 10), }";
        assert_eq!(h(twice), Ok((vec![10, 10], 4)));
        assert!(
            h("{'descr': '>f4', 'shape': (1,)}")
                .unwrap_err()
                .contains(">f4")
        );
        assert!(h("{'descr': '<f4'}").unwrap_err().contains("shape"));
        assert!(h("{'descr': '<f4', 'shape': (x,)}").is_err());
        assert!(h("{'descr': '<f4': 'shape': (1,)}").is_err());
    }

    /// Header bytes changed at random: each file is read or refused, and none makes the
    /// reader allocate what its header claims (which would abort the test).
    #[test]
    fn mutated_npy_files_are_read_or_refused() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.npy");
        let data: Vec<u8> = (0..12).flat_map(|i| (i as f32).to_le_bytes()).collect();
        let good = npy_file(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }",
            &data,
        );
        std::fs::write(&path, &good).unwrap();
        assert_eq!(read_npy(&path).unwrap().dims(), [3, 4]);
        let digits = b"0123456789";
        let mut read = 0;
        for _ in 0..3000 {
            let mut b = good.clone();
            for _ in 0..rng.random_range(1..4) {
                let at = rng.random_range(0..64);
                b[at] = match rng.random_range(0..3) {
                    0 => rng.random(),
                    1 => digits[rng.random_range(0..10)],
                    _ => b"(),:' "[rng.random_range(0..6)],
                };
            }
            std::fs::write(&path, &b).unwrap();
            if let Ok(x) = read_npy(&path) {
                // at least a byte a value
                assert!(x.elem_count() <= data.len(), "{:?}", x.dims());
                read += 1;
            }
        }
        assert!(read > 0);
    }
}
