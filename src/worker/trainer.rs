//! What every family's trainer holds alike: the weights, the optimiser, the step, the seed
//! and its generator, the metrics, and the epoch cursor over shuffled training items. A
//! family's trainer holds a [`TrainerCore`], implements [`CoreTrainer`] (its loss and its
//! evaluation), and gets [`Trainer`] from it.

use std::collections::BTreeMap;

use anyhow::Context;
use candle_core::Tensor;
use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarMap};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use super::{Snapshot, StepStats, Trainer};
use crate::nn::checkpoint::Metadata;

/// The optimiser a family trains with: AdamW over every variable but those whose names start
/// with one of `frozen` (updated by other rules, such as a codebook's moving averages).
/// Variables whose names start with `slow.0` learn at `slow.1` times the rate (Adam's step
/// does not depend on the gradient's scale, so a slower part needs its own rate).
#[derive(Clone, Copy, Debug)]
pub struct OptimiserSettings {
    pub lr: f64,
    pub weight_decay: f64,
    pub frozen: &'static [&'static str],
    pub slow: Option<(&'static str, f64)>,
}

impl OptimiserSettings {
    /// AdamW without weight decay over every variable.
    pub fn adam(lr: f64) -> Self {
        Self {
            lr,
            weight_decay: 0.0,
            frozen: &[],
            slow: None,
        }
    }

    /// One optimiser per rate: the variables at the full rate, then the slow ones, if any.
    fn build(&self, varmap: &VarMap) -> anyhow::Result<Vec<(AdamW, f64)>> {
        let data = varmap
            .data()
            .lock()
            .map_err(|_| anyhow::anyhow!("variable map poisoned"))?;
        let is_slow = |name: &str| self.slow.is_some_and(|(p, _)| name.starts_with(p));
        let mut groups = vec![(Vec::new(), 1.0)];
        if let Some((_, factor)) = self.slow {
            groups.push((Vec::new(), factor));
        }
        for (name, var) in data.iter() {
            if !self.frozen.iter().any(|p| name.starts_with(p)) {
                groups[usize::from(is_slow(name))].0.push(var.clone());
            }
        }
        groups
            .into_iter()
            .map(|(vars, factor)| {
                let params = ParamsAdamW {
                    lr: self.lr * factor,
                    weight_decay: self.weight_decay,
                    ..Default::default()
                };
                Ok((AdamW::new(vars, params)?, factor))
            })
            .collect()
    }
}

/// The state a training run carries besides its model and data.
pub struct TrainerCore {
    pub varmap: VarMap,
    /// each optimiser with its share of the learning rate
    opt: Vec<(AdamW, f64)>,
    settings: OptimiserSettings,
    /// the run's one generator: every draw of the run (data order, noise, symmetries) comes
    /// from it, in the order the family's step makes them, so the seed fixes the run
    pub rng: StdRng,
    pub step: u64,
    /// the steps the run is to take
    pub steps: u64,
    pub seed: u64,
    /// the latest metrics, recorded in the checkpoint's metadata
    pub metrics: BTreeMap<String, f64>,
    /// the training items' order, for runs that draw mini-batches ([`TrainerCore::with_epochs`])
    cursor: EpochCursor,
}

impl TrainerCore {
    /// A core for a run of `steps` over `varmap`, whose model is already built and
    /// initialised (with draws from `rng` where the family seeds it).
    pub fn new(
        varmap: VarMap,
        rng: StdRng,
        seed: u64,
        steps: u64,
        settings: OptimiserSettings,
    ) -> anyhow::Result<Self> {
        let opt = settings.build(&varmap)?;
        Ok(Self {
            varmap,
            opt,
            settings,
            rng,
            step: 0,
            steps,
            seed,
            metrics: BTreeMap::new(),
            cursor: EpochCursor::default(),
        })
    }

    /// A core (see [`TrainerCore::new`]) whose optimiser is Adam at learning rate `lr`.
    pub fn adam(
        varmap: VarMap,
        rng: StdRng,
        seed: u64,
        steps: u64,
        lr: f64,
    ) -> anyhow::Result<Self> {
        Self::new(varmap, rng, seed, steps, OptimiserSettings::adam(lr))
    }

    /// The core of a run that draws mini-batches of its `items` training items epoch after
    /// epoch ([`TrainerCore::batch`]); the first epoch is shuffled now, from the run's generator.
    pub fn with_epochs(mut self, items: usize) -> Self {
        self.cursor = EpochCursor::new(items, &mut self.rng);
        self
    }

    /// The next `size` training items (see [`TrainerCore::with_epochs`]).
    pub fn batch(&mut self, size: usize) -> Vec<usize> {
        self.cursor.batch(size, &mut self.rng)
    }

    /// One optimiser step on `total`, at learning rate `lr` (None: the rate as it is), and
    /// the step counter moved on. Returns the step's stats.
    pub fn update(
        &mut self,
        total: &Tensor,
        lr: Option<f64>,
        losses: Vec<(&'static str, f64)>,
    ) -> anyhow::Result<StepStats> {
        let grads = total.backward()?;
        for (opt, factor) in &mut self.opt {
            if let Some(lr) = lr {
                opt.set_learning_rate(lr * *factor);
            }
            opt.step(&grads)?;
        }
        self.step += 1;
        Ok(StepStats {
            step: self.step,
            losses,
        })
    }

    /// Replace the metrics by `values`, returned as they came.
    pub fn record(&mut self, values: Vec<(String, f64)>) -> Vec<(String, f64)> {
        self.metrics = values.iter().cloned().collect();
        values
    }

    /// Add `values` to the metrics (replacing those of the same name), returned as they came.
    pub fn add_metrics(&mut self, values: Vec<(String, f64)>) -> Vec<(String, f64)> {
        self.metrics.extend(values.iter().cloned());
        values
    }

    /// The metadata of the weights as they are now.
    pub fn metadata(
        &self,
        family: &str,
        preset: &str,
        config: serde_json::Value,
        data: &str,
    ) -> Metadata {
        Metadata {
            family: family.into(),
            preset: preset.into(),
            config,
            data: data.into(),
            steps: self.step,
            seed: self.seed,
            metrics: self.metrics.clone(),
            version: env!("CARGO_PKG_VERSION").into(),
        }
    }

    pub fn snapshot(&self, meta: Metadata) -> anyhow::Result<Snapshot> {
        Ok(Snapshot {
            meta,
            tensors: crate::nn::varmap_tensors(&self.varmap)?,
        })
    }

    /// Go back to `snapshot`'s weights, with the optimiser started afresh: its moments may
    /// hold the NaNs that made us come back.
    pub fn restore(&mut self, snapshot: &Snapshot) -> anyhow::Result<()> {
        let tensors = snapshot.tensors.iter().cloned().collect();
        crate::nn::checkpoint::fill_varmap(
            &self.varmap,
            &tensors,
            std::path::Path::new("(snapshot)"),
        )
        .context("restoring weights")?;
        self.opt = self.settings.build(&self.varmap)?;
        Ok(())
    }
}

/// The refusal of a preset a family does not have; `presets` are the ones it has.
pub fn unknown_preset(family: &str, name: &str, presets: &[&str]) -> anyhow::Error {
    anyhow::anyhow!(
        "unknown preset `{name}` for {family} (one of: {})",
        presets.join(", ")
    )
}

/// `lr_final` of a configuration that does not name it: the learning rate held constant.
pub fn constant_lr() -> f64 {
    1.0
}

/// Refuse a run that could not take a step: an empty batch, or no steps.
pub fn ensure_steps(batch: usize, steps: u64) -> anyhow::Result<()> {
    anyhow::ensure!(batch >= 1, "batch must be at least 1 (it is {batch})");
    anyhow::ensure!(steps >= 1, "steps must be at least 1");
    Ok(())
}

/// A step's loss as its terms are added: the total to minimise and each term's value, in the
/// order the step reports them.
#[derive(Default)]
pub struct Loss {
    total: Option<Tensor>,
    parts: Vec<(&'static str, f64)>,
}

impl Loss {
    /// Add `term` to the total, reported as `name` after the terms before it.
    pub fn add(&mut self, name: &'static str, term: Tensor) -> candle_core::Result<()> {
        self.parts.push((name, term.to_scalar::<f32>()? as f64));
        self.sum(term)
    }

    /// Add `term` to the total, reported as `name` before every other term.
    pub fn add_first(&mut self, name: &'static str, term: Tensor) -> candle_core::Result<()> {
        self.parts
            .insert(0, (name, term.to_scalar::<f32>()? as f64));
        self.sum(term)
    }

    fn sum(&mut self, term: Tensor) -> candle_core::Result<()> {
        self.total = Some(match self.total.take() {
            Some(total) => (total + term)?,
            None => term,
        });
        Ok(())
    }

    /// Report `value` as `name` beside the terms, outside the total.
    pub fn note(&mut self, name: &'static str, value: f64) {
        self.parts.push((name, value));
    }

    /// The total and every part divided by `n` (a batch's items), the total first.
    pub fn per_item(self, n: usize) -> candle_core::Result<(Tensor, Vec<(&'static str, f64)>)> {
        let total = self
            .total
            .ok_or_else(|| candle_core::Error::Msg("a loss without terms".into()))?;
        let total = (total / n as f64)?;
        let mut losses = vec![("total", total.to_scalar::<f32>()? as f64)];
        losses.extend(self.parts.into_iter().map(|(k, v)| (k, v / n as f64)));
        Ok((total, losses))
    }
}

/// Mini-batches of item indices, epoch after epoch, each epoch a fresh shuffle of `0..len`.
#[derive(Default)]
pub struct EpochCursor {
    len: usize,
    order: Vec<usize>,
    next: usize,
}

impl EpochCursor {
    /// A cursor over `len` items, its first epoch shuffled now.
    pub fn new(len: usize, rng: &mut StdRng) -> Self {
        let mut cursor = Self {
            len,
            order: Vec::new(),
            next: 0,
        };
        cursor.shuffle(rng);
        cursor
    }

    fn shuffle(&mut self, rng: &mut StdRng) {
        self.order = (0..self.len).collect();
        self.order.shuffle(rng);
        self.next = 0;
    }

    /// The next `batch` indices, shuffling a new epoch whenever one runs out. Empty when
    /// there are no items.
    pub fn batch(&mut self, batch: usize, rng: &mut StdRng) -> Vec<usize> {
        if self.len == 0 {
            return Vec::new();
        }
        let mut idx = Vec::with_capacity(batch);
        while idx.len() < batch {
            if self.next >= self.order.len() {
                self.shuffle(rng);
            }
            idx.push(self.order[self.next]);
            self.next += 1;
        }
        idx
    }
}

/// A family's trainer built on a [`TrainerCore`]: it writes its loss and its evaluation, and
/// gets the worker's [`Trainer`] (steps, snapshot, restore) from the core.
pub trait CoreTrainer: Send {
    /// The core, and the same mutably: [`hold_core`] writes both for a field named `core`.
    fn core(&self) -> &TrainerCore;
    fn core_mut(&mut self) -> &mut TrainerCore;
    /// The metadata of the weights as they are now, through [`TrainerCore::metadata`].
    fn metadata(&self) -> Metadata;
    /// One optimisation step, through [`TrainerCore::update`]; the worker's [`Trainer::step`].
    fn train_step(&mut self) -> anyhow::Result<StepStats>;
    /// The worker's [`Trainer::evaluate`].
    fn quick_metrics(&mut self) -> anyhow::Result<Vec<(String, f64)>>;
    /// The worker's [`Trainer::final_metrics`] (defaults to `quick_metrics`).
    fn all_metrics(&mut self) -> anyhow::Result<Vec<(String, f64)>> {
        self.quick_metrics()
    }
}

/// [`CoreTrainer::core`] and [`CoreTrainer::core_mut`] for a trainer whose core is its field
/// `core`.
macro_rules! hold_core {
    () => {
        fn core(&self) -> &$crate::worker::TrainerCore {
            &self.core
        }
        fn core_mut(&mut self) -> &mut $crate::worker::TrainerCore {
            &mut self.core
        }
    };
}
pub(crate) use hold_core;

impl<T: CoreTrainer> Trainer for T {
    fn total_steps(&self) -> u64 {
        self.core().steps
    }
    fn steps_done(&self) -> u64 {
        self.core().step
    }
    fn step(&mut self) -> anyhow::Result<StepStats> {
        self.train_step()
    }
    fn evaluate(&mut self) -> anyhow::Result<Vec<(String, f64)>> {
        self.quick_metrics()
    }
    fn final_metrics(&mut self) -> anyhow::Result<Vec<(String, f64)>> {
        self.all_metrics()
    }
    fn snapshot(&self) -> anyhow::Result<Snapshot> {
        self.core().snapshot(self.metadata())
    }
    fn restore(&mut self, snapshot: &Snapshot) -> anyhow::Result<()> {
        self.core_mut().restore(snapshot)
    }
}

/// For each family's tests: a run's weights after `steps` steps are the same, bit for bit,
/// for the same seed, and differ for another.
#[cfg(test)]
pub(crate) fn assert_the_seed_fixes_the_run(
    make: &dyn Fn(u64) -> anyhow::Result<Box<dyn Trainer>>,
    steps: u64,
) {
    let run = |seed: u64| -> anyhow::Result<Vec<(String, Vec<u32>)>> {
        let mut t = make(seed)?;
        for _ in 0..steps {
            t.step()?;
        }
        let snapshot = t.snapshot()?;
        anyhow::ensure!(snapshot.meta.steps == steps && snapshot.meta.seed == seed);
        snapshot
            .tensors
            .iter()
            .map(|(name, t)| {
                let values = t.flatten_all()?.to_dtype(candle_core::DType::F32)?;
                let bits = values
                    .to_vec1::<f32>()?
                    .iter()
                    .map(|v| v.to_bits())
                    .collect();
                Ok((name.clone(), bits))
            })
            .collect()
    };
    let (a, b, c) = match (run(1), run(1), run(2)) {
        (Ok(a), Ok(b), Ok(c)) => (a, b, c),
        (a, b, c) => panic!("a run failed: {:?}", [a.err(), b.err(), c.err()]),
    };
    assert!(!a.is_empty(), "no weights");
    assert!(a == b, "the same seed gave different weights");
    assert!(a != c, "another seed gave the same weights");
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// The total adds the terms in the order they came; the report puts a term added first
    /// before the others and divides every part, notes too, by the batch.
    #[test]
    fn a_loss_reports_its_parts_per_item() -> anyhow::Result<()> {
        let t = |v: f32| Tensor::new(v, &candle_core::Device::Cpu);
        let mut loss = Loss::default();
        loss.add("kl", t(2.0)?)?;
        loss.note("moves", 4.0);
        loss.add_first("recon", t(6.0)?)?;
        let (total, parts) = loss.per_item(2)?;
        assert_eq!(total.to_scalar::<f32>()?, 4.0);
        assert_eq!(
            parts,
            [("total", 4.0), ("recon", 3.0), ("kl", 1.0), ("moves", 2.0)]
        );
        assert!(Loss::default().per_item(1).is_err());
        Ok(())
    }

    /// The cursor gives every item once an epoch, reshuffles between epochs, and draws from
    /// the generator exactly as a plain shuffle of `0..len` per epoch does.
    #[test]
    fn the_epoch_cursor_visits_every_item_once_an_epoch() {
        let mut rng = StdRng::seed_from_u64(4);
        let mut cursor = EpochCursor::new(10, &mut rng);
        let a: Vec<usize> = (0..4).flat_map(|_| cursor.batch(5, &mut rng)).collect();
        for epoch in a.chunks(10) {
            let mut seen = epoch.to_vec();
            seen.sort();
            assert_eq!(seen, (0..10).collect::<Vec<_>>());
        }
        assert_ne!(a[..10], a[10..20]);
        let mut plain = StdRng::seed_from_u64(4);
        let mut expected = Vec::new();
        for _ in 0..2 {
            let mut order: Vec<usize> = (0..10).collect();
            order.shuffle(&mut plain);
            expected.extend(order);
        }
        assert_eq!(a[..20], expected[..]);
        assert!(EpochCursor::new(0, &mut rng).batch(3, &mut rng).is_empty());
    }
}
