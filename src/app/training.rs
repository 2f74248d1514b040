//! The training panel every tab shares: preset, steps, seed, data, threads and `--set`
//! overrides, Train/Stop, progress and live curves. The job is the family's own
//! `latent-lab train` job, started through the [`StartJob`] the tab hands in, so a run in the
//! window and the same settings on the command line give the same model.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, TryRecvError, channel};
use std::time::Duration;

use egui_plot::{Legend, Line, Plot, PlotPoints};
use serde::{Deserialize, Serialize};

use super::Shared;
use crate::cli::TrainArgs;
use crate::worker::{JobHandle, Snapshot};

/// How long one frame may spend reading a job's events, in every tab.
pub const POLL_BUDGET: Duration = Duration::from_millis(5);
/// How often a job run from the window sends its weights, so the tab shows the model as it
/// learns (the terminal only wants the last weights).
pub const SNAPSHOT_EVERY: Duration = Duration::from_millis(1500);
/// Loss points kept for the curve: every step at first, then every fifth.
const DENSE_LOSS_POINTS: usize = 50;

/// Starts a family's training job from `latent-lab train` arguments; an error is the message
/// to show. Called off the UI thread: a family may read its data before the job starts.
pub type StartJob = Arc<dyn Fn(&TrainArgs) -> Result<JobHandle, String> + Send + Sync>;

/// What the panel offers, as `latent-lab train` takes it. Persisted with the tab.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainSettings {
    pub preset: String,
    pub steps: u64,
    /// the steps were set by hand rather than by choosing the preset: a restored window
    /// keeps them, where a preset's own count follows the preset when its default changes
    pub steps_by_hand: bool,
    pub seed: u64,
    pub data: String,
    /// 0: the family's own choice, capped at the window's share of the cores
    pub threads: usize,
    /// `KEY=VALUE` lines, as `--set` takes them
    pub overrides: String,
}

impl Default for TrainSettings {
    fn default() -> Self {
        Self {
            preset: "fast".into(),
            steps: 1000,
            steps_by_hand: false,
            seed: 0,
            data: String::new(),
            threads: 0,
            overrides: String::new(),
        }
    }
}

impl TrainSettings {
    pub fn new(preset: &str, steps: u64, data: &str) -> Self {
        Self {
            preset: preset.into(),
            steps,
            data: data.into(),
            ..Self::default()
        }
    }

    /// The `--set` items: one per non-empty line.
    pub fn set_items(&self) -> Vec<String> {
        self.overrides
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect()
    }
}

/// What differs from tab to tab.
#[derive(Clone, Debug, Default)]
pub struct TrainingSpec {
    /// shown in the preset menu
    pub presets: &'static [&'static str],
    /// data the family offers by name; any other spec can be typed
    pub data_choices: Vec<String>,
    /// a hint for the data field (the forms of spec it takes)
    pub data_hint: &'static str,
    /// metrics to plot while training: (name in the job's metrics, label)
    pub metrics: &'static [(&'static str, &'static str)],
    /// the family trains on one thread unless told otherwise (small models)
    pub single_threaded: bool,
    /// the steps each of `presets` trains for, in the same order (see
    /// [`TrainingSpec::with_preset_steps`]); choosing a preset sets the steps to its own
    pub preset_steps: Vec<u64>,
}

impl TrainingSpec {
    /// The spec with each preset's own step count, read from the family's preset (`steps`
    /// of its name), so that choosing a preset trains it for as long as `latent-lab train`
    /// would.
    pub fn with_preset_steps(mut self, steps: impl Fn(&str) -> anyhow::Result<u64>) -> Self {
        self.preset_steps = self
            .presets
            .iter()
            .map(|p| steps(p).unwrap_or_else(|e| panic!("preset {p}: {e}")))
            .collect();
        self
    }
}

/// A started (or finished) training job and what it has reported.
pub struct TrainingRun {
    /// the job while its family prepares it (off the UI thread)
    starting: Option<Receiver<Result<JobHandle, String>>>,
    job: Option<JobHandle>,
    stop_asked: bool,
    pub status: String,
    pub step: u64,
    pub total: u64,
    /// (step, total loss): every step at first, then every fifth
    pub losses: Vec<[f64; 2]>,
    /// (step, metrics) as the job evaluated them
    pub metrics: Vec<(u64, Vec<(String, f64)>)>,
    /// `Ok(summary)` or `Err(message)` once the job ended
    pub ended: Option<Result<String, String>>,
}

/// What one poll brought that a tab acts on.
#[derive(Default)]
pub struct RunUpdate {
    /// the newest weights
    pub snapshot: Option<Arc<Snapshot>>,
    /// metrics that arrived, in order
    pub metrics: Vec<(u64, Vec<(String, f64)>)>,
    /// the job ended in this poll
    pub ended: bool,
}

impl RunUpdate {
    /// The model of the newest weights, built by the tab's loader (usually
    /// `Lab::from_snapshot`); a failure is told in the status bar.
    pub fn model<L, E: std::fmt::Display>(
        &self,
        shared: &mut Shared,
        build: impl FnOnce(&Snapshot) -> Result<L, E>,
    ) -> Option<L> {
        match build(self.snapshot.as_deref()?) {
            Ok(model) => Some(model),
            Err(e) => {
                shared.error(format!("training snapshot: {e:#}"));
                None
            }
        }
    }
}

impl TrainingRun {
    /// Start a family's job with `args` (the family prepares it on its own thread).
    pub fn start(start: &StartJob, args: TrainArgs) -> Self {
        let (tx, rx) = channel();
        let start = start.clone();
        let total = args.steps.unwrap_or(0);
        let spawned = std::thread::Builder::new()
            .name("latent-lab-train-start".into())
            .spawn(move || {
                let _ = tx.send(start(&args));
            });
        let mut run = Self::new(None, total);
        match spawned {
            Ok(_) => run.starting = Some(rx),
            Err(e) => run.ended = Some(Err(format!("cannot start training: {e}"))),
        }
        run
    }

    /// A job the tab started itself (e.g. several trainings in sequence), shown the same way.
    pub fn from_job(job: JobHandle, total: u64) -> Self {
        Self::new(Some(job), total)
    }

    fn new(job: Option<JobHandle>, total: u64) -> Self {
        Self {
            starting: None,
            job,
            stop_asked: false,
            status: "starting".into(),
            step: 0,
            total,
            losses: Vec::new(),
            metrics: Vec::new(),
            ended: None,
        }
    }

    pub fn is_running(&self) -> bool {
        self.ended.is_none()
    }

    /// Ask the job to stop after its current step; it still sends its last weights.
    pub fn stop(&mut self) {
        self.stop_asked = true;
        if let Some(job) = &self.job {
            job.cancel();
        }
    }

    /// The metric `name` at each evaluation so far, as plot points.
    pub fn metric_curve(&self, name: &str) -> Vec<[f64; 2]> {
        self.metrics
            .iter()
            .filter_map(|(step, values)| {
                values
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| [*step as f64, *v])
            })
            .collect()
    }

    /// Read what arrived, for at most [`POLL_BUDGET`]; tells `shared` how the job ended.
    pub fn poll(&mut self, shared: &mut Shared) -> RunUpdate {
        let mut update = RunUpdate::default();
        if let Some(rx) = &self.starting {
            match rx.try_recv() {
                Ok(Ok(job)) => {
                    if self.stop_asked {
                        job.cancel();
                    }
                    self.job = Some(job);
                    self.starting = None;
                }
                Ok(Err(e)) => {
                    self.starting = None;
                    self.status = format!("failed: {e}");
                    shared.error(format!("cannot train: {e}"));
                    self.ended = Some(Err(e));
                    update.ended = true;
                    return update;
                }
                Err(TryRecvError::Empty) => return update,
                Err(TryRecvError::Disconnected) => {
                    self.starting = None;
                    let e = "the training job ended before it started".to_string();
                    shared.error(e.clone());
                    self.ended = Some(Err(e));
                    update.ended = true;
                    return update;
                }
            }
        }
        let Some(job) = &self.job else { return update };
        if self.ended.is_some() {
            return update;
        }
        let mut progress = job.poll(POLL_BUDGET);
        if let Some(s) = progress.status {
            self.status = s;
        }
        for w in progress.warnings.drain(..) {
            shared.info(w);
        }
        for s in &progress.steps {
            self.step = s.step;
            if s.step % 5 == 0 || self.losses.len() < DENSE_LOSS_POINTS {
                self.losses.push([s.step as f64, s.total()]);
            }
        }
        self.metrics.extend(progress.metrics.iter().cloned());
        update.metrics = progress.metrics;
        update.snapshot = progress.snapshot;
        let ended = progress.ended.take();
        if let Some(status) = shared.announce_end(ended.clone()) {
            self.status = status;
            self.ended = ended;
            update.ended = true;
        }
        update
    }
}

/// Commands the panel's widgets record; [`TrainingPanel::logic`] applies them.
enum PanelCommand {
    Train,
    Stop,
}

/// The panel: settings, Train/Stop, progress and curves of the current (or last) run.
pub struct TrainingPanel {
    pub settings: TrainSettings,
    pub spec: TrainingSpec,
    pub run: Option<TrainingRun>,
    start: StartJob,
    commands: Vec<PanelCommand>,
}

impl TrainingPanel {
    pub fn new(spec: TrainingSpec, settings: TrainSettings, start: StartJob) -> Self {
        Self {
            settings,
            spec,
            run: None,
            start,
            commands: Vec::new(),
        }
    }

    pub fn is_running(&self) -> bool {
        self.run.as_ref().is_some_and(TrainingRun::is_running)
    }

    /// The settings of an earlier session; steps that came with their preset become the
    /// preset's steps now.
    pub fn restore(&mut self, settings: TrainSettings) {
        self.settings = settings;
        if !self.settings.steps_by_hand
            && let Some(steps) = self.preset_steps(&self.settings.preset)
        {
            self.settings.steps = steps;
        }
    }

    /// How long `preset` trains by default, if the menu offers it.
    fn preset_steps(&self, preset: &str) -> Option<u64> {
        let i = self.spec.presets.iter().position(|p| *p == preset)?;
        self.spec.preset_steps.get(i).copied()
    }

    /// Train another family from now on (a tab that shows several).
    pub fn set_start(&mut self, start: StartJob) {
        self.start = start;
    }

    /// The running job, if any.
    pub fn live(&self) -> Option<&TrainingRun> {
        self.run.as_ref().filter(|r| r.is_running())
    }

    /// The settings as `latent-lab train` would take them, with the window's snapshot period.
    pub fn args(&self, shared: &Shared) -> TrainArgs {
        let threads = match self.settings.threads {
            0 if self.spec.single_threaded => 1,
            0 => shared.train_threads.max(1),
            n => n,
        };
        let data = super::files::typed(&self.settings.data);
        TrainArgs {
            preset: self.settings.preset.clone(),
            data: (!data.is_empty()).then(|| data.to_string()),
            steps: Some(self.settings.steps.max(1)),
            seed: self.settings.seed,
            threads: Some(threads),
            set: self.settings.set_items(),
            snapshot_every: Some(SNAPSHOT_EVERY),
            background: true,
            ..TrainArgs::default()
        }
    }

    /// Start a run with these arguments (a tab adds what only it offers, e.g. `--latent`).
    pub fn train(&mut self, args: TrainArgs, shared: &mut Shared) {
        if self.is_running() {
            return;
        }
        shared.info(format!(
            "training {} ({} steps, seed {}{})",
            args.preset,
            args.steps.unwrap_or(0),
            args.seed,
            if args.set.is_empty() {
                String::new()
            } else {
                format!(", {}", args.set.join(" "))
            }
        ));
        self.run = Some(TrainingRun::start(&self.start, args));
    }

    /// Show a job the tab started itself.
    pub fn show_job(&mut self, job: JobHandle, total: u64) {
        self.run = Some(TrainingRun::from_job(job, total));
    }

    /// Apply the widgets' commands and read the job's events. `adjust` adds the tab's own
    /// arguments to a run about to start.
    pub fn logic(&mut self, shared: &mut Shared, adjust: impl FnOnce(&mut TrainArgs)) -> RunUpdate {
        let mut adjust = Some(adjust);
        for command in std::mem::take(&mut self.commands) {
            match command {
                PanelCommand::Train => {
                    let mut args = self.args(shared);
                    if let Some(adjust) = adjust.take() {
                        adjust(&mut args);
                    }
                    self.train(args, shared);
                }
                PanelCommand::Stop => {
                    if let Some(run) = &mut self.run {
                        run.stop();
                    }
                }
            }
        }
        match &mut self.run {
            Some(run) => run.poll(shared),
            None => RunUpdate::default(),
        }
    }

    /// The settings and the Train/Stop buttons.
    pub fn settings_ui(&mut self, ui: &mut egui::Ui) {
        let running = self.is_running();
        ui.horizontal(|ui| {
            egui::ComboBox::from_label("preset")
                .selected_text(self.settings.preset.clone())
                .show_ui(ui, |ui| {
                    for (i, p) in self.spec.presets.iter().enumerate() {
                        let chosen =
                            ui.selectable_value(&mut self.settings.preset, p.to_string(), *p);
                        if chosen.changed()
                            && let Some(&steps) = self.spec.preset_steps.get(i)
                        {
                            self.settings.steps = steps;
                            self.settings.steps_by_hand = false;
                        }
                    }
                });
            let steps = ui.add(
                egui::DragValue::new(&mut self.settings.steps)
                    .range(1..=10_000_000)
                    .prefix("steps "),
            );
            if steps.changed() {
                self.settings.steps_by_hand = true;
            }
            ui.add(egui::DragValue::new(&mut self.settings.seed).prefix("seed "));
            let auto = if self.spec.single_threaded {
                "threads: 1"
            } else {
                "threads: auto"
            };
            ui.add(
                egui::DragValue::new(&mut self.settings.threads)
                    .range(0..=256)
                    .custom_formatter(move |v, _| {
                        if v < 0.5 {
                            auto.into()
                        } else {
                            format!("threads: {v:.0}")
                        }
                    }),
            )
            .on_hover_text("training threads; 0 = the family's default");
        });
        if !self.spec.data_choices.is_empty() {
            ui.horizontal_wrapped(|ui| {
                ui.label("data");
                for choice in &self.spec.data_choices {
                    if ui
                        .selectable_label(self.settings.data == *choice, choice)
                        .clicked()
                    {
                        self.settings.data = choice.clone();
                    }
                }
            });
        }
        ui.horizontal(|ui| {
            ui.label("data spec");
            ui.add(
                egui::TextEdit::singleline(&mut self.settings.data)
                    .hint_text(self.spec.data_hint)
                    .desired_width(260.0),
            );
        });
        ui.horizontal(|ui| {
            ui.label("--set");
            ui.add(
                egui::TextEdit::multiline(&mut self.settings.overrides)
                    .hint_text("KEY=VALUE, one a line (lr=2e-3)")
                    .desired_rows(1)
                    .desired_width(260.0),
            )
            .on_hover_text(
                "override a setting of the preset: VALUE in JSON, nested keys joined by dots, as in a checkpoint's config",
            );
        });
        ui.horizontal(|ui| {
            if ui
                .add_enabled(!running, egui::Button::new("Train"))
                .clicked()
            {
                self.commands.push(PanelCommand::Train);
            }
            if ui.add_enabled(running, egui::Button::new("Stop")).clicked() {
                self.commands.push(PanelCommand::Stop);
            }
        });
    }

    /// Progress, the last metrics and the curves of the current (or last) run.
    pub fn progress_ui(&self, ui: &mut egui::Ui) {
        let Some(run) = &self.run else { return };
        ui.add(
            egui::ProgressBar::new(run.step as f32 / run.total.max(1) as f32)
                .text(format!("step {}/{} · {}", run.step, run.total, run.status)),
        );
        if let Some((step, values)) = run.metrics.last() {
            let shown: Vec<String> = self
                .spec
                .metrics
                .iter()
                .filter_map(|(name, label)| {
                    values
                        .iter()
                        .find(|(k, _)| k == name)
                        .map(|(_, v)| format!("{label} {v:.4}"))
                })
                .collect();
            if !shown.is_empty() {
                ui.label(format!("step {step}: {}", shown.join(", ")));
            }
        }
        let losses: PlotPoints = run
            .losses
            .iter()
            .map(|l| [l[0], l[1].max(1e-9).log10()])
            .collect();
        ui.columns(2, |cols| {
            Plot::new("training_loss")
                .height(130.0)
                .x_axis_label("step")
                .y_axis_label("log10 loss")
                .show(&mut cols[0], |plot| {
                    plot.line(Line::new("log10 loss", losses));
                });
            Plot::new("training_metrics")
                .height(130.0)
                .legend(Legend::default())
                .x_axis_label("step")
                .show(&mut cols[1], |plot| {
                    for (name, label) in self.spec.metrics {
                        plot.line(Line::new(*label, PlotPoints::from(run.metric_curve(name))));
                    }
                });
        });
    }

    /// The whole panel: settings, buttons, progress.
    pub fn ui(&mut self, ui: &mut egui::Ui) {
        self.settings_ui(ui);
        self.progress_ui(ui);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn panel() -> TrainingPanel {
        let spec = TrainingSpec {
            presets: &["fast", "long"],
            preset_steps: vec![1800, 6000],
            ..TrainingSpec::default()
        };
        let start: StartJob = Arc::new(|_| Err("no training here".into()));
        TrainingPanel::new(spec, TrainSettings::default(), start)
    }

    /// A window restored after its preset's default length changed trains the preset's new
    /// length, unless the steps were set by hand.
    #[test]
    fn restored_steps_follow_their_preset_unless_set_by_hand() {
        let saved = |preset: &str, steps, steps_by_hand| TrainSettings {
            preset: preset.into(),
            steps,
            steps_by_hand,
            seed: 7,
            ..TrainSettings::default()
        };
        let mut p = panel();
        p.restore(saved("long", 2400, false));
        assert_eq!((p.settings.steps, p.settings.seed), (6000, 7));
        p.restore(saved("long", 2400, true));
        assert_eq!(p.settings.steps, 2400);
        // a preset the menu no longer offers keeps what was saved
        p.restore(saved("gone", 2400, false));
        assert_eq!(p.settings.steps, 2400);
        // settings saved before the flag existed read as steps that came with the preset
        let old: TrainSettings =
            serde_json::from_str(r#"{"preset": "fast", "steps": 1200}"#).unwrap();
        p.restore(old);
        assert_eq!(p.settings.steps, 1800);
    }
}
