//! The background job runner: every family's training runs here, off the UI thread, on its
//! own thread pool, reporting progress through a channel and stopping when asked.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, TryRecvError, channel};
use std::time::{Duration, Instant};

use candle_core::Tensor;

use crate::nn::checkpoint::Metadata;

pub mod trainer;

/// Status lines that start with this are warnings about the data (shown as they come in the
/// window; a command that otherwise keeps the data's progress quiet prints them on stderr:
/// [`quiet_but_warnings`]).
pub const WARNING: &str = "warning: ";

/// A progress sink for work whose progress is not shown: it drops every line but warnings,
/// which go to stderr.
pub fn quiet_but_warnings(line: String) {
    if line.starts_with(WARNING) {
        eprintln!("{line}");
    }
}
pub use trainer::{CoreTrainer, EpochCursor, Loss, OptimiserSettings, TrainerCore, ensure_steps};

/// The weights and description of a model at one moment, enough to save it or to rebuild it
/// for inference. Cheap to pass between threads.
#[derive(Clone)]
pub struct Snapshot {
    pub meta: Metadata,
    pub tensors: Vec<(String, Tensor)>,
}

impl Snapshot {
    /// The tensors by name, as a checkpoint loader takes them.
    pub fn tensor_map(&self) -> std::collections::HashMap<String, Tensor> {
        self.tensors.iter().cloned().collect()
    }
}

/// Losses of one training step, by name, in the order the family lists them.
#[derive(Clone, Debug, Default)]
pub struct StepStats {
    pub step: u64,
    pub losses: Vec<(&'static str, f64)>,
}

impl StepStats {
    pub fn total(&self) -> f64 {
        self.losses.first().map(|l| l.1).unwrap_or(f64::NAN)
    }
}

/// One family's training loop, driven a step at a time by the worker.
pub trait Trainer: Send {
    fn total_steps(&self) -> u64;
    fn steps_done(&self) -> u64;
    /// One optimisation step. The first loss is the total that is checked for NaN/inf.
    fn step(&mut self) -> anyhow::Result<StepStats>;
    /// Quality metrics on held-out data, cheap enough to run every few hundred steps.
    fn evaluate(&mut self) -> anyhow::Result<Vec<(String, f64)>>;
    /// Every metric, however slow, run once when training ends (defaults to `evaluate`).
    fn final_metrics(&mut self) -> anyhow::Result<Vec<(String, f64)>> {
        self.evaluate()
    }
    fn snapshot(&self) -> anyhow::Result<Snapshot>;
    /// Go back to earlier weights (used when a step produced NaN or inf).
    fn restore(&mut self, snapshot: &Snapshot) -> anyhow::Result<()>;
}

/// What a running job tells whoever watches it.
#[derive(Clone)]
pub enum Event {
    Status(String),
    Step(StepStats),
    Metrics {
        step: u64,
        values: Vec<(String, f64)>,
    },
    /// the latest weights, sent every `snapshot_every` and at the end
    Snapshot(Arc<Snapshot>),
    Finished {
        steps: u64,
        cancelled: bool,
        elapsed: Duration,
    },
    Failed(String),
}

/// A batch of a job's events, as [`JobHandle::poll`] sorts them.
#[derive(Default)]
pub struct Progress {
    pub status: Option<String>,
    /// every warning about the data among the events ([`WARNING`]), in order
    pub warnings: Vec<String>,
    pub steps: Vec<StepStats>,
    pub metrics: Vec<(u64, Vec<(String, f64)>)>,
    /// the newest weights among the events, if any
    pub snapshot: Option<Arc<Snapshot>>,
    /// `Ok(summary)` when the job finished or was stopped, `Err(message)` when it failed
    pub ended: Option<Result<String, String>>,
}

#[derive(Clone, Debug)]
pub struct JobOptions {
    /// threads for the job's own pool
    pub threads: usize,
    pub eval_every: u64,
    pub snapshot_every: Duration,
    /// run the job's threads at the lowest scheduling priority: in the window they may use
    /// every core, and the drawing and the sound still come first
    pub background: bool,
}

impl Default for JobOptions {
    fn default() -> Self {
        Self {
            threads: 1,
            eval_every: 250,
            snapshot_every: Duration::from_millis(1500),
            background: false,
        }
    }
}

/// A running (or finished) job.
pub struct JobHandle {
    pub events: Receiver<Event>,
    cancel: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    pub started: Instant,
}

impl JobHandle {
    /// Ask the job to stop after its current step; it still sends its final snapshot.
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }

    /// The flag `cancel` sets, for stopping the job from elsewhere (a Ctrl-C handler).
    pub fn cancel_flag(&self) -> Arc<AtomicBool> {
        self.cancel.clone()
    }

    pub fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Events that have arrived, without waiting, for at most `budget` of wall time.
    pub fn drain(&self, budget: Duration) -> Vec<Event> {
        let start = Instant::now();
        let mut out = Vec::new();
        while start.elapsed() < budget {
            match self.events.try_recv() {
                Ok(e) => out.push(e),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        out
    }

    /// What arrived since the last poll, sorted out for a window that shows it: status text,
    /// steps and metrics in order, only the newest weights, and how the job ended if it did.
    /// Reads for at most `budget` of wall time so a flood of events never stalls a frame.
    pub fn poll(&self, budget: Duration) -> Progress {
        let mut p = Progress::default();
        for event in self.drain(budget) {
            match event {
                Event::Status(s) if s.starts_with(WARNING) => p.warnings.push(s),
                Event::Status(s) => p.status = Some(s),
                Event::Step(s) => p.steps.push(s),
                Event::Metrics { step, values } => p.metrics.push((step, values)),
                Event::Snapshot(s) => p.snapshot = Some(s),
                Event::Finished {
                    steps,
                    cancelled,
                    elapsed,
                } => {
                    let verb = if cancelled { "stopped" } else { "finished" };
                    p.ended = Some(Ok(format!(
                        "{verb} at step {steps} ({:.1} s)",
                        elapsed.as_secs_f64()
                    )));
                }
                Event::Failed(e) => p.ended = Some(Err(e)),
            }
        }
        p
    }

    /// Block until the job ends, handing every event to `on_event`.
    pub fn wait(mut self, mut on_event: impl FnMut(&Event)) {
        for e in self.events.iter() {
            on_event(&e);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for JobHandle {
    fn drop(&mut self) {
        self.cancel();
    }
}

/// Start a job. `make` builds the trainer (data generation included) on the worker thread,
/// inside the job's pool, so even the set-up never blocks the caller.
pub fn spawn<F>(make: F, options: JobOptions) -> JobHandle
where
    F: FnOnce(&dyn Fn(String)) -> anyhow::Result<Box<dyn Trainer>> + Send + 'static,
{
    let (tx, rx) = channel();
    let cancel = Arc::new(AtomicBool::new(false));
    let cancel_job = cancel.clone();
    let thread = std::thread::Builder::new()
        .name("latent-lab-train".into())
        .spawn(move || {
            let background = options.background;
            if background {
                lower_priority();
            }
            let pool = match rayon::ThreadPoolBuilder::new()
                .num_threads(options.threads.max(1))
                .thread_name(|i| format!("latent-lab-train-{i}"))
                .start_handler(move |_| {
                    if background {
                        lower_priority();
                    }
                })
                .build()
            {
                Ok(p) => p,
                Err(e) => {
                    let _ = tx.send(Event::Failed(format!("cannot start training threads: {e}")));
                    return;
                }
            };
            // A panic (a bug, or third-party code meeting hostile data) must end the job
            // as a failure the caller hears of, never as a silent stop
            if let Err(panic) = crate::error::quietly(|| {
                pool.install(|| run(make, &options, &cancel_job, &tx));
            }) {
                let _ = tx.send(Event::Failed(format!(
                    "training stopped on an internal error: {panic}"
                )));
            }
        })
        .ok();
    JobHandle {
        events: rx,
        cancel,
        thread,
        started: Instant::now(),
    }
}

/// Give the calling thread the lowest priority of the normal scheduler (nice 19 on Linux). A
/// system that refuses leaves it as it was: training is then only less polite, not wrong.
pub fn lower_priority() {
    let _ = thread_priority::set_current_thread_priority(thread_priority::ThreadPriority::Min);
}

fn run<F>(make: F, options: &JobOptions, cancel: &AtomicBool, tx: &Sender<Event>)
where
    F: FnOnce(&dyn Fn(String)) -> anyhow::Result<Box<dyn Trainer>>,
{
    let start = Instant::now();
    let status = |s: String| {
        let _ = tx.send(Event::Status(s));
    };
    let mut trainer = match make(&status) {
        Ok(t) => t,
        Err(e) => {
            let _ = tx.send(Event::Failed(format!("{e:#}")));
            return;
        }
    };
    let send_snapshot = |trainer: &dyn Trainer| -> Option<Arc<Snapshot>> {
        match trainer.snapshot() {
            Ok(s) => {
                let s = Arc::new(s);
                let _ = tx.send(Event::Snapshot(s.clone()));
                Some(s)
            }
            Err(e) => {
                let _ = tx.send(Event::Failed(format!("cannot copy the weights: {e:#}")));
                None
            }
        }
    };
    let Some(mut last_good) = send_snapshot(trainer.as_ref()) else {
        return;
    };
    let mut last_snapshot = Instant::now();
    status("training".into());
    while trainer.steps_done() < trainer.total_steps() {
        if cancel.load(Ordering::Relaxed) {
            break;
        }
        let stats = match trainer.step() {
            Ok(s) => s,
            Err(e) => {
                let _ = tx.send(Event::Failed(format!(
                    "step {}: {e:#}",
                    trainer.steps_done()
                )));
                let _ = trainer.restore(&last_good);
                let _ = tx.send(Event::Snapshot(last_good));
                return;
            }
        };
        let broken: Vec<&str> = (stats.losses.iter())
            .filter(|(_, v)| !v.is_finite())
            .map(|(name, _)| *name)
            .collect();
        if !broken.is_empty() {
            let _ = trainer.restore(&last_good);
            let _ = tx.send(Event::Snapshot(last_good.clone()));
            let _ = tx.send(Event::Failed(format!(
                "training diverged at step {} (the {} loss became NaN or infinite); kept the weights of step {}; a lower learning rate may keep it stable",
                stats.step,
                broken.join(", "),
                last_good.meta.steps
            )));
            return;
        }
        let step = stats.step;
        let _ = tx.send(Event::Step(stats));
        if options.eval_every > 0 && step % options.eval_every == 0 {
            match trainer.evaluate() {
                Ok(values) => {
                    let _ = tx.send(Event::Metrics { step, values });
                }
                Err(e) => status(format!("evaluation failed: {e:#}")),
            }
        }
        if last_snapshot.elapsed() >= options.snapshot_every {
            match send_snapshot(trainer.as_ref()) {
                Some(s) => last_good = s,
                None => return,
            }
            last_snapshot = Instant::now();
        }
    }
    let cancelled = trainer.steps_done() < trainer.total_steps();
    status("final evaluation".into());
    match trainer.final_metrics() {
        Ok(values) => {
            let _ = tx.send(Event::Metrics {
                step: trainer.steps_done(),
                values,
            });
        }
        Err(e) => status(format!("final evaluation failed: {e:#}")),
    }
    send_snapshot(trainer.as_ref());
    let _ = tx.send(Event::Finished {
        steps: trainer.steps_done(),
        cancelled,
        elapsed: start.elapsed(),
    });
}

#[cfg(test)]
mod tests {
    #[test]
    fn warnings_are_kept_apart_from_the_status_line() {
        let job = super::spawn(
            |status| {
                status(format!("{}the data may sound odd", super::WARNING));
                status("rendering".into());
                status(format!("{}and again", super::WARNING));
                status("rendered".into());
                anyhow::bail!("no trainer here")
            },
            super::JobOptions::default(),
        );
        let (mut warnings, mut status) = (Vec::new(), None);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let p = job.poll(std::time::Duration::from_millis(50));
            warnings.extend(p.warnings);
            status = p.status.or(status);
            if p.ended.is_some() || std::time::Instant::now() > deadline {
                break;
            }
        }
        assert_eq!(
            warnings,
            ["warning: the data may sound odd", "warning: and again"]
        );
        assert_eq!(status.as_deref(), Some("rendered"));
    }

    /// A panic while the job runs (here in its set-up, on a pool thread as data rendering
    /// would) ends it with a failure that says so, never with silence.
    #[test]
    fn a_panic_in_the_job_is_a_failure() {
        let job = super::spawn(
            |_| {
                use rayon::prelude::*;
                let n: Vec<u32> = (0..4u32)
                    .into_par_iter()
                    .map(|i| if i == 2 { panic!("hostile bytes") } else { i })
                    .collect();
                anyhow::bail!("not reached: {n:?}")
            },
            super::JobOptions {
                threads: 2,
                ..super::JobOptions::default()
            },
        );
        let mut ended = None;
        job.wait(|e| {
            if let super::Event::Failed(m) = e {
                ended = Some(m.clone());
            }
        });
        let ended = ended.expect("a Failed event");
        assert!(ended.contains("hostile bytes"), "{ended}");
    }

    /// The nice value of the calling thread, from /proc (Linux).
    fn own_nice() -> Option<i64> {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
        // the fields after the command name, which is in parentheses and may hold spaces
        let rest = &stat[stat.rfind(')')? + 2..];
        rest.split(' ').nth(16)?.parse().ok()
    }

    #[test]
    fn a_background_thread_yields_to_the_others() {
        let Some(before) = own_nice() else { return };
        let after = std::thread::spawn(|| {
            super::lower_priority();
            own_nice()
        })
        .join()
        .unwrap();
        assert_eq!(after, Some(19), "from nice {before}");
        assert_eq!(
            own_nice(),
            Some(before),
            "only the calling thread is lowered"
        );
    }
}
