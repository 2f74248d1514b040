//! The "Relevance" tab: train a beta-VAE on data with a known symmetry and watch the
//! relevance of each latent dimension settle; then inspect what the relevant latents mean
//! (scatter coloured by observables, correlation table, traversal of a decoded event).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, TryRecvError, channel};

use egui::Color32;
use egui_plot::{Bar, BarChart, HLine, Legend, Line, Plot, PlotPoints, Points, VLine};
use serde::{Deserialize, Serialize};

use super::data::{Dataset, GENERATORS};
use super::eval::{self, RELEVANT, RelevanceReport};
use super::event_view::{MU_MINUS, draw_muon_event};
use super::inspect::{DatasetKey, InspectResult, Inspection, inspect, lab_key};
use super::train::{
    DEFAULT_BETA, DEFAULT_LATENT, PRESETS, SweepTrainer, TrainConfig, sweep_results,
};
use super::{FAMILY, HistoryPoint, Lab, relevance_order, relevance_rank};
use crate::app::{
    Background, Changed, FileRequest, FilesPanel, LabTab, Models, ModelsState, PathField,
    SNAPSHOT_EVERY, Shared, TrainSettings, TrainingSpec, hold_models, tab_state,
};
use crate::cli::TrainArgs;
use crate::figures::{self, Figure};
use crate::worker::{self, JobOptions};

/// What only this tab adds to `latent-lab train`: latent size, β, the opening schedule.
fn adjust_args(state: &RelevanceState, args: &mut TrainArgs) {
    args.latent = Some(state.latent.clamp(1, 64));
    args.beta = Some(state.beta.max(0.0));
    if !state.one_at_a_time {
        args.set.push("unlock_every=0".into());
    }
}

/// The panel's choices for this family.
fn training_spec() -> TrainingSpec {
    TrainingSpec {
        presets: &PRESETS,
        data_choices: GENERATORS.iter().map(|g| g.name().to_string()).collect(),
        data_hint: "a generator, csv:PATH or lhe:PATH",
        metrics: &[],
        single_threaded: true,
        ..TrainingSpec::default()
    }
    .with_preset_steps(|p| Ok(TrainConfig::preset(p)?.steps))
}

const COLOUR_BINS: usize = 5;
/// Why latents open one at a time, and what happens when they do not.
const CLOSED_MANIFOLD_NOTE: &str = "A Gaussian latent space has no closed loops. With every latent open from the start, a \
     circle is held as a ring in two latents and a sphere of directions as a shell in three: one relevant dimension more \
     than the intrinsic dimension for each closed factor. Opened one at a time, the first latents learn the data alone and \
     cut the circle or sphere open onto as few latents as it needs (untick \"one at a time\" to see the ring).";

/// What the tab remembers across restarts.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct RelevanceState {
    /// checkpoint, training settings, files and B paths
    #[serde(flatten)]
    pub models: ModelsState,
    pub latent: usize,
    pub beta: f64,
    pub scatter_x: usize,
    pub scatter_y: usize,
    pub colour_by: usize,
    pub traversal_dim: usize,
    pub traversal_value: f32,
    /// the held-out event whose latent the traversal starts from
    pub base_event: usize,
    /// the betas of a sweep, separated by spaces
    pub sweep_betas: String,
    /// open the latents to the decoder one at a time (the preset's schedule) or all at once
    pub one_at_a_time: bool,
    /// the latent-observable table shows mutual information instead of Pearson r
    pub show_mutual_information: bool,
}

tab_state!(RelevanceState);

impl Default for RelevanceState {
    fn default() -> Self {
        let preset = TrainConfig::preset("fast").ok();
        Self {
            models: ModelsState::new(TrainSettings::new(
                "fast",
                preset.map_or(8000, |p| p.steps),
                "ee-mumu",
            )),
            latent: DEFAULT_LATENT,
            beta: DEFAULT_BETA,
            scatter_x: 0,
            scatter_y: 1,
            colour_by: 0,
            traversal_dim: 0,
            traversal_value: 0.0,
            base_event: 0,
            sweep_betas: "0.001 0.003 0.01 0.03 0.1 0.3 1 3".into(),
            one_at_a_time: true,
            show_mutual_information: false,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FigureKind {
    Relevance,
    Kl,
    Curves,
    Scatter,
    Sweep,
}

/// The figures of the export buttons, in their order.
const FIGURE_KINDS: [FigureKind; 5] = [
    FigureKind::Relevance,
    FigureKind::Kl,
    FigureKind::Curves,
    FigureKind::Scatter,
    FigureKind::Sweep,
];

/// Side effects the widgets ask for; applied in one place after drawing.
pub enum Command {
    /// several trainings in sequence, one per beta
    Sweep(Vec<f64>),
    Export(FigureKind, PathBuf),
}

/// What the current (or last) training run has reported, read from its metrics.
#[derive(Default)]
struct Training {
    report: Option<RelevanceReport>,
    history: Vec<HistoryPoint>,
    /// (beta, relevant dims) of the finished trainings of a sweep
    sweep: Vec<(f64, usize)>,
    /// the beta being trained now, for a sweep
    beta_now: Option<f64>,
    is_sweep: bool,
}

/// (beta, relevant dims) of the finished trainings of a sweep, and the beta being trained now.
type SweepView = (Vec<(f64, usize)>, Option<f64>);

/// A held-out event of the inspection of A's model ([`lab_key`]).
type EventKey = (usize, (String, u64));

pub struct RelevanceTab {
    pub state: RelevanceState,
    /// A, the model on show, and B beside it; files and training panels
    pub models: Models<Lab>,
    file_field: PathField,
    /// what the panel's run has reported, for the relevance bars and the sweep
    training: Training,
    inspection: Option<Inspection>,
    inspecting: Option<Receiver<InspectResult>>,
    inspect_wanted: bool,
    /// the events of the current model, kept between inspections
    dataset: Option<(DatasetKey, Arc<Dataset>)>,
    /// choose the scatter axes and the traversal afresh when the next inspection arrives
    repick_views: bool,
    /// the latent and what it decodes to (raw features)
    pub decoded: Option<(Vec<f32>, Vec<f32>)>,
    /// decoded features along the traversal (for 2-D pictures of non-muon data)
    traversal_path: Vec<Vec<f32>>,
    /// B's latent of the same held-out event, kept per event until either model changes
    base_b: Option<(EventKey, Vec<f32>)>,
    /// B's traversal latent and what it decodes to
    pub decoded_b: Option<(Vec<f32>, Vec<f32>)>,
    /// the latent dimension B's traversal moves
    moved_b: usize,
    commands: Vec<Command>,
    background: Background<Result<String, String>>,
}

impl RelevanceTab {
    /// The model on show (A).
    pub fn lab(&self) -> Option<&Arc<Lab>> {
        self.models.a.as_ref()
    }

    /// The relevance now on show: live while training, else of the loaded model.
    pub fn current_report(&self) -> Option<RelevanceReport> {
        if self.models.panel.is_running()
            && let Some(r) = self.training.report.clone()
        {
            return Some(r);
        }
        let lab = self.models.a.as_ref()?;
        match &self.inspection {
            Some(i) if i.key == lab_key(lab) => Some(i.report.clone()),
            _ => self.training.report.clone().or_else(|| lab.saved_report()),
        }
    }

    /// Each dimension's relevance in [`RelevanceTab::current_report`] (none without one).
    fn current_relevance(&self) -> Vec<f64> {
        self.current_report()
            .map(|r| r.relevance)
            .unwrap_or_default()
    }

    pub fn is_training(&self) -> bool {
        self.models.panel.is_running()
    }

    fn set_lab(&mut self, lab: Arc<Lab>, fresh: bool) {
        let l = lab.latent_dims();
        if fresh {
            self.repick_views = true;
        }
        self.state.scatter_x = self.state.scatter_x.min(l - 1);
        self.state.scatter_y = self.state.scatter_y.min(l - 1);
        self.state.traversal_dim = self.state.traversal_dim.min(l - 1);
        self.decoded = None;
        self.traversal_path.clear();
        self.inspect_wanted = true;
    }

    /// One training per beta, in sequence, shown in the panel like a single run.
    fn start_sweep(&mut self, betas: Vec<f64>, shared: &mut Shared) {
        if self.models.panel.is_running() {
            return;
        }
        let mut args = self.models.panel.args(shared);
        adjust_args(&self.state, &mut args);
        let cfg = TrainConfig::preset(&args.preset)
            .map_err(|e| format!("{e:#}"))
            .and_then(|c| args.configure(c).map_err(crate::registry::message));
        let mut cfg = match cfg {
            Ok(c) => c,
            Err(e) => return shared.error(e),
        };
        cfg.steps = args.steps.unwrap_or(cfg.steps);
        cfg.model.latent = args.latent.unwrap_or(cfg.model.latent);
        let spec = args.data.clone().unwrap_or_else(|| "ee-mumu".into());
        let seed = args.seed;
        let total = cfg.steps * betas.len() as u64;
        let job = worker::spawn(
            move |status| {
                status(format!("preparing {spec}"));
                let data = Dataset::load(&spec, cfg.events, seed)?;
                Ok(Box::new(SweepTrainer::new(cfg, betas, data, seed)?))
            },
            JobOptions {
                threads: args.threads.unwrap_or(1),
                eval_every: 100,
                snapshot_every: SNAPSHOT_EVERY,
                background: true,
            },
        );
        shared.info(format!(
            "β sweep on {} ({total} steps)",
            args.data.unwrap_or_default()
        ));
        self.training = Training {
            is_sweep: true,
            ..Training::default()
        };
        self.models.panel.show_job(job, total);
    }

    /// Encode held-out events off the UI thread whenever the model changed.
    fn start_inspection(&mut self) {
        if !self.inspect_wanted || self.inspecting.is_some() {
            return;
        }
        let Some(lab) = self.models.a.clone() else {
            return;
        };
        self.inspect_wanted = false;
        let cached = self.dataset.clone();
        let (tx, rx) = channel();
        let spawned = std::thread::Builder::new()
            .name("relevance-inspect".into())
            .spawn(move || {
                let _ = tx.send(inspect(&lab, cached));
            });
        if spawned.is_ok() {
            self.inspecting = Some(rx);
        }
    }

    fn drain_inspection(&mut self, shared: &mut Shared) {
        let Some(rx) = &self.inspecting else { return };
        match rx.try_recv() {
            Ok(Ok((dataset, inspection))) => {
                self.dataset = Some(dataset);
                let n_obs = inspection.observables.len();
                self.state.colour_by = self.state.colour_by.min(n_obs.saturating_sub(1));
                let current = self
                    .models
                    .a
                    .as_ref()
                    .is_some_and(|lab| lab_key(lab) == inspection.key);
                self.inspection = Some(inspection);
                if self.repick_views && current {
                    self.repick_views = false;
                    self.pick_default_views();
                }
                self.inspecting = None;
            }
            Ok(Err(e)) => {
                shared.error(e);
                self.inspecting = None;
            }
            Err(TryRecvError::Empty) => {}
            Err(TryRecvError::Disconnected) => {
                shared.error("inspecting the model ended without a result");
                self.inspecting = None;
            }
        }
    }

    /// Scatter the two most relevant latents and traverse the most relevant one.
    fn pick_default_views(&mut self) {
        let Some(r) = self.current_report() else {
            return;
        };
        let (a, b) = super::top_two(&r.relevance);
        self.state.scatter_x = a;
        self.state.scatter_y = b;
        self.state.traversal_dim = a;
        self.state.traversal_value = self
            .base_latent()
            .and_then(|z| z.get(a).copied())
            .unwrap_or(0.0);
        self.decoded = None;
    }

    /// The latent (posterior mean) of the held-out event the traversal starts from.
    fn base_latent(&self) -> Option<Vec<f32>> {
        let insp = self.inspection.as_ref()?;
        insp.latents
            .get(
                self.state
                    .base_event
                    .min(insp.latents.len().saturating_sub(1)),
            )
            .cloned()
    }

    /// The latent of the traversal: the base latent with one dimension moved.
    pub fn traversal_latent(&self) -> Option<Vec<f32>> {
        let lab = self.models.a.as_ref()?;
        let mut z = match self.base_latent() {
            Some(z) if z.len() == lab.latent_dims() => z,
            _ => vec![0.0; lab.latent_dims()],
        };
        let d = self.state.traversal_dim.min(z.len() - 1);
        z[d] = self.state.traversal_value;
        Some(z)
    }

    /// B's traversal latent: B's encoding of the same held-out event, with B's latent of the
    /// same relevance rank as A's moved by the same amount. Latent axes of two models do not
    /// correspond; their ranks by relevance do. Returns B's moved dimension and the latent.
    fn traversal_latent_b(&mut self) -> Option<(usize, Vec<f32>)> {
        let b = self.models.b.clone()?;
        let a_base = self.base_latent();
        let d = self.state.traversal_dim;
        let shift = self.state.traversal_value
            - a_base
                .as_ref()
                .and_then(|z| z.get(d))
                .copied()
                .unwrap_or(0.0);
        let rank = relevance_rank(&self.current_relevance(), d);
        let order = b
            .saved_report()
            .map(|r| relevance_order(&r.relevance))
            .unwrap_or_else(|| (0..b.latent_dims()).collect());
        let db = order.get(rank).copied().unwrap_or(0);
        // before A's held-out events are encoded, or where B reads other features: the prior's mean
        let mut z = self
            .held_out_latent_of(&b)
            .unwrap_or_else(|| vec![0.0; b.latent_dims()]);
        *z.get_mut(db)? += shift;
        Some((db, z))
    }

    /// B's posterior mean of A's held-out base event, where B reads the same features; kept
    /// until the event, B or A's held-out events change.
    fn held_out_latent_of(&mut self, b: &Lab) -> Option<Vec<f32>> {
        let insp = self.inspection.as_ref()?;
        let key = (self.state.base_event, insp.key.clone());
        if let Some((k, z)) = &self.base_b
            && *k == key
        {
            return Some(z.clone());
        }
        let (_, data) = self.dataset.as_ref()?;
        let row = *insp
            .rows
            .get(self.state.base_event.min(insp.rows.len().saturating_sub(1)))?;
        b.check_data(data).ok()?;
        let z = b.encode(data.row(row)).ok()?.into_iter().next()?;
        self.base_b = Some((key, z.clone()));
        Some(z)
    }

    fn traversal_range(&self) -> (f32, f32) {
        let d = self.state.traversal_dim;
        let (lo, hi) = self
            .inspection
            .as_ref()
            .and_then(|i| i.ranges.get(d).copied())
            .unwrap_or((-3.0, 3.0));
        let margin = 0.1 * (hi - lo).max(0.1);
        (lo - margin, hi + margin)
    }

    fn refresh_decoded_b(&mut self, shared: &mut Shared) {
        let Some((moved, z)) = self.traversal_latent_b() else {
            self.decoded_b = None;
            return;
        };
        self.moved_b = moved;
        let Some(b) = self.models.b.clone() else {
            return;
        };
        if self.decoded_b.as_ref().is_some_and(|(zs, _)| *zs == z) {
            return;
        }
        match b.decode(&z) {
            Ok(x) => self.decoded_b = Some((z, x)),
            Err(e) => shared.error(format!("decoding with B failed: {e}")),
        }
    }

    fn refresh_decoded(&mut self, shared: &mut Shared) {
        self.refresh_decoded_b(shared);
        let Some(lab) = self.models.a.clone() else {
            return;
        };
        let Some(z) = self.traversal_latent() else {
            return;
        };
        if self.decoded.as_ref().is_some_and(|(zs, _)| *zs == z) {
            return;
        }
        match lab.decode(&z) {
            Ok(x) => self.decoded = Some((z.clone(), x)),
            Err(e) => return shared.error(format!("decoding failed: {e}")),
        }
        // the whole traversal, for data drawn as points in its first two features
        if !lab.is_muon_pair() && lab.cfg.model.input >= 2 {
            let (lo, hi) = self.traversal_range();
            let d = self.state.traversal_dim.min(z.len() - 1);
            let steps = 60;
            let mut zs = Vec::with_capacity(steps * z.len());
            for k in 0..steps {
                let mut zk = z.clone();
                zk[d] = lo + (hi - lo) * k as f32 / (steps - 1) as f32;
                zs.extend(zk);
            }
            let input = lab.cfg.model.input;
            self.traversal_path = lab
                .decode(&zs)
                .map(|x| x.chunks(input).map(|c| c.to_vec()).collect())
                .unwrap_or_default();
        }
    }

    fn drain_background(&mut self, shared: &mut Shared) {
        for done in self.background.finished(shared) {
            match done {
                Ok(msg) => shared.info(msg),
                Err(e) => shared.error(e),
            }
        }
    }

    fn figure(&self, kind: FigureKind) -> Result<Figure, String> {
        let lab = self.models.a.as_ref().ok_or("no model")?;
        match kind {
            FigureKind::Relevance | FigureKind::Kl => {
                let r = self.current_report().ok_or("no relevance measured yet")?;
                Ok(if kind == FigureKind::Relevance {
                    super::relevance_figure(lab, &r)
                } else {
                    super::kl_figure(lab, &r)
                })
            }
            FigureKind::Curves => {
                let history = self.history();
                if history.is_empty() {
                    return Err("no training history to plot".into());
                }
                let mut with_history = super::curves_figure(lab);
                if let Figure::Lines { series, .. } = &mut with_history {
                    for (i, s) in series.iter_mut().enumerate() {
                        s.points = history
                            .iter()
                            .filter_map(|h| h.relevance.get(i).map(|r| (h.step as f64, *r)))
                            .collect();
                    }
                }
                Ok(with_history)
            }
            FigureKind::Sweep => {
                let (points, _) = self.sweep().ok_or("no β sweep has run")?;
                if points.is_empty() {
                    return Err("the β sweep has no finished training yet".into());
                }
                Ok(super::sweep_figure(
                    &points,
                    lab.intrinsic_dim,
                    &lab.meta.data,
                ))
            }
            FigureKind::Scatter => {
                let insp = self
                    .inspection
                    .as_ref()
                    .ok_or("the held-out events are not encoded yet")?;
                let (name, values) = insp
                    .observables
                    .get(self.state.colour_by)
                    .ok_or("no observable to colour by")?;
                Ok(super::scatter_figure(
                    lab,
                    &insp.latents,
                    (self.state.scatter_x, self.state.scatter_y),
                    (name, values),
                ))
            }
        }
    }

    fn history(&self) -> Vec<HistoryPoint> {
        match &self.models.a {
            _ if self.models.panel.is_running() => self.training.history.clone(),
            Some(lab) => lab.history.clone(),
            None => Vec::new(),
        }
    }

    // ------------------------------------------------------------ drawing

    fn train_ui(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            ui.label("or file");
            let picked = self.file_field.ui(
                ui,
                "events.csv or events.lhe",
                FileRequest::Open,
                &[("events", &["csv", "lhe"])],
            );
            if (ui.button("Use").clicked() || picked)
                && let Some(p) = self.file_field.path()
            {
                let lhe = p.extension().is_some_and(|e| e.eq_ignore_ascii_case("lhe"));
                self.models.panel.settings.data =
                    format!("{}:{}", if lhe { "lhe" } else { "csv" }, p.display());
            }
        });
        ui.horizontal(|ui| {
            ui.add(
                egui::DragValue::new(&mut self.state.latent)
                    .range(1..=64)
                    .prefix("latent "),
            );
            ui.add(
                egui::Slider::new(&mut self.state.beta, 1e-4..=10.0)
                    .logarithmic(true)
                    .text("β"),
            );
            ui.checkbox(&mut self.state.one_at_a_time, "one at a time")
                .on_hover_text(format!(
                    "open the latents to the decoder one at a time, one more every {} steps",
                    super::train::UNLOCK_EVERY
                ));
        });
        self.models.panel.settings_ui(ui);
        ui.horizontal(|ui| {
            ui.label("β sweep");
            ui.add(egui::TextEdit::singleline(&mut self.state.sweep_betas).desired_width(200.0));
            let betas: Option<Vec<f64>> = self
                .state
                .sweep_betas
                .split([' ', ','])
                .filter(|t| !t.trim().is_empty())
                .map(|t| {
                    t.trim()
                        .parse::<f64>()
                        .ok()
                        .filter(|b| b.is_finite() && *b >= 0.0)
                })
                .collect::<Option<Vec<f64>>>()
                .filter(|b| !b.is_empty());
            let enabled = !self.models.panel.is_running() && betas.is_some();
            let button = ui
                .add_enabled(enabled, egui::Button::new("Sweep β"))
                .on_hover_text(
                    "one training per β, in sequence; plots relevant dimensions against β",
                )
                .on_disabled_hover_text("give numbers >= 0 separated by spaces");
            if button.clicked()
                && let Some(b) = betas
            {
                self.commands.push(Command::Sweep(b));
            }
        });
        self.models.panel.progress_ui(ui);
    }

    fn relevance_ui(&self, ui: &mut egui::Ui) {
        let Some(report) = self.current_report() else {
            ui.label("No relevance yet: train a model or open a checkpoint.");
            return;
        };
        let l = report.relevance.len();
        let intrinsic = self.models.a.as_ref().and_then(|lab| lab.intrinsic_dim);
        let text = match intrinsic {
            Some(d) => format!(
                "relevant dimensions: {} of {l} · intrinsic dimension of the data: {d}",
                report.relevant_dims
            ),
            None => format!(
                "relevant dimensions: {} of {l} (R ≥ {RELEVANT})",
                report.relevant_dims
            ),
        };
        let matches = intrinsic.is_some_and(|d| d == report.relevant_dims);
        ui.label(egui::RichText::new(text).strong().color(if matches {
            Color32::from_rgb(0, 158, 115)
        } else {
            ui.visuals().text_color()
        }));
        if intrinsic.is_some() {
            ui.label(egui::RichText::new(CLOSED_MANIFOLD_NOTE).small().weak());
        }
        let values: Vec<String> = report.relevance.iter().map(|r| format!("{r:.3}")).collect();
        ui.label(format!("relevance per dim: {}", values.join(" ")));
        // B's relevance as its checkpoint recorded it, beside A's bars and under A's curves
        let b = self
            .models
            .b
            .as_ref()
            .and_then(|b| Some((b.saved_report()?, b.history.clone())));
        let (width, shift) = if b.is_some() { (0.4, 0.21) } else { (0.7, 0.0) };
        let relevance_bars = |r: &RelevanceReport, x0: f64, faded: bool| -> Vec<Bar> {
            r.relevance
                .iter()
                .enumerate()
                .map(|(i, &v)| {
                    let c = if v >= RELEVANT {
                        Color32::from_rgb(0, 158, 115)
                    } else {
                        Color32::GRAY
                    };
                    let c = if faded { c.gamma_multiply(0.55) } else { c };
                    Bar::new(i as f64 + x0, v)
                        .width(width)
                        .fill(c)
                        .name(format!("z{i}"))
                })
                .collect()
        };
        let kl_bars = |r: &RelevanceReport, x0: f64| -> Vec<Bar> {
            r.kl_per_dim
                .iter()
                .enumerate()
                .map(|(i, &k)| {
                    Bar::new(i as f64 + x0, k)
                        .width(width)
                        .name(format!("z{i}"))
                })
                .collect()
        };
        if let Some((rb, _)) = &b {
            ui.label(format!(
                "A (left bars): {} relevant · B (right bars, faded): {} relevant",
                report.relevant_dims, rb.relevant_dims
            ));
        }
        ui.columns(2, |cols| {
            Plot::new("relevance_bars")
                .height(150.0)
                .include_y(0.0)
                .include_y(1.05)
                .x_axis_label("latent dimension")
                .y_axis_label("relevance")
                .allow_scroll(false)
                .allow_drag(false)
                .show(&mut cols[0], |plot| {
                    plot.bar_chart(BarChart::new(
                        "relevance",
                        relevance_bars(&report, -shift, false),
                    ));
                    if let Some((rb, _)) = &b {
                        plot.bar_chart(BarChart::new(
                            "B: relevance",
                            relevance_bars(rb, shift, true),
                        ));
                    }
                    plot.hline(HLine::new("R = 0.5", RELEVANT));
                });
            Plot::new("kl_bars")
                .height(150.0)
                .include_y(0.0)
                .x_axis_label("latent dimension")
                .y_axis_label("KL (nats)")
                .allow_scroll(false)
                .allow_drag(false)
                .show(&mut cols[1], |plot| {
                    plot.bar_chart(
                        BarChart::new("KL", kl_bars(&report, -shift))
                            .color(Color32::from_rgb(230, 159, 0)),
                    );
                    if let Some((rb, _)) = &b {
                        plot.bar_chart(
                            BarChart::new("B: KL", kl_bars(rb, shift))
                                .color(Color32::from_rgb(240, 200, 120)),
                        );
                    }
                });
        });
        let history = self.history();
        let b_history = b.as_ref().map(|(_, h)| h.as_slice()).unwrap_or_default();
        if !history.is_empty() || !b_history.is_empty() {
            // room past the last step for the legend, which would cover the curves' ends
            let last = history
                .iter()
                .chain(b_history)
                .map(|p| p.step as f64)
                .fold(0.0, f64::max);
            Plot::new("relevance_curves")
                .height(160.0)
                .legend(Legend::default())
                .include_x(last * 1.12)
                .include_y(0.0)
                .include_y(1.0)
                .x_axis_label("step")
                .y_axis_label("relevance")
                .show(ui, |plot| {
                    let curve = |h: &[HistoryPoint], i: usize| -> PlotPoints {
                        h.iter()
                            .filter_map(|p| p.relevance.get(i).map(|r| [p.step as f64, *r]))
                            .collect()
                    };
                    for i in 0..l {
                        plot.line(Line::new(format!("z{i}"), curve(&history, i)));
                    }
                    let lb = b_history.first().map_or(0, |p| p.relevance.len());
                    for i in 0..lb {
                        plot.line(
                            Line::new(format!("B z{i}"), curve(b_history, i))
                                .style(egui_plot::LineStyle::dashed_loose()),
                        );
                    }
                });
        }
        self.sweep_ui(ui);
    }

    /// The sweep of a running or finished sweep, if any: (beta, relevant dims), and the beta now.
    fn sweep(&self) -> Option<SweepView> {
        let t = &self.training;
        t.is_sweep.then(|| {
            (
                t.sweep.clone(),
                if self.models.panel.is_running() {
                    t.beta_now
                } else {
                    None
                },
            )
        })
    }

    fn sweep_ui(&self, ui: &mut egui::Ui) {
        let Some((points, beta_now)) = self.sweep() else {
            return;
        };
        match beta_now {
            Some(b) => ui.label(format!("β sweep: training β = {b} ({} done)", points.len())),
            None => ui.label(format!("β sweep: {} trainings", points.len())),
        };
        let intrinsic = self.models.a.as_ref().and_then(|lab| lab.intrinsic_dim);
        let pts: Vec<[f64; 2]> = points
            .iter()
            .filter(|(b, _)| *b > 0.0)
            .map(|(b, d)| [b.log10(), *d as f64])
            .collect();
        Plot::new("sweep")
            .height(150.0)
            .include_y(0.0)
            .x_axis_label("log10 β")
            .y_axis_label("relevant dims")
            .legend(Legend::default())
            .show(ui, |plot| {
                plot.line(Line::new("relevant dims", PlotPoints::from(pts.clone())));
                plot.points(Points::new("trainings", PlotPoints::from(pts)).radius(4.0));
                if let Some(d) = intrinsic {
                    plot.hline(HLine::new("intrinsic dimension", d as f64));
                }
            });
    }

    fn scatter_ui(&mut self, ui: &mut egui::Ui) {
        let Some(lab) = self.models.a.clone() else {
            return;
        };
        let Some(insp) = &self.inspection else {
            ui.label(if self.inspecting.is_some() {
                "encoding held-out events…"
            } else {
                "no held-out events"
            });
            return;
        };
        let l = lab.latent_dims();
        let relevance = self.current_relevance();
        let dim_label = |i: usize| match relevance.get(i) {
            Some(r) => format!("z{i} (R {r:.2})"),
            None => format!("z{i}"),
        };
        ui.horizontal(|ui| {
            dim_picker(ui, "x", &mut self.state.scatter_x, l, dim_label);
            dim_picker(ui, "y", &mut self.state.scatter_y, l, dim_label);
            let current = insp
                .observables
                .get(self.state.colour_by)
                .map(|o| o.0.clone())
                .unwrap_or_default();
            egui::ComboBox::from_label("colour")
                .selected_text(current)
                .show_ui(ui, |ui| {
                    for (k, (name, _)) in insp.observables.iter().enumerate() {
                        ui.selectable_value(&mut self.state.colour_by, k, name);
                    }
                });
        });
        let (sx, sy) = (
            self.state.scatter_x.min(l - 1),
            self.state.scatter_y.min(l - 1),
        );
        let obs = insp.observables.get(self.state.colour_by);
        let edges = obs
            .map(|o| super::quantile_edges(&o.1, COLOUR_BINS))
            .unwrap_or_default();
        let mut groups: Vec<Vec<[f64; 2]>> = vec![Vec::new(); COLOUR_BINS];
        for (k, z) in insp.latents.iter().enumerate() {
            let b = obs.map_or(0, |o| super::bin_of(&edges, o.1[k]));
            groups[b].push([z[sx] as f64, z[sy] as f64]);
        }
        Plot::new("latent_scatter")
            .height(190.0)
            .data_aspect(1.0)
            .legend(Legend::default())
            .x_axis_label(format!("z{sx}"))
            .y_axis_label(format!("z{sy}"))
            .show(ui, |plot| {
                for (b, pts) in groups.into_iter().enumerate() {
                    let c = figures::viridis(b as f32 / (COLOUR_BINS - 1) as f32);
                    let name = match (obs, edges.get(b), edges.get(b + 1)) {
                        (Some(o), Some(lo), Some(hi)) => format!("{} {lo:.2}…{hi:.2}", o.0),
                        _ => "events".into(),
                    };
                    plot.points(
                        Points::new(name, PlotPoints::from(pts))
                            .radius(1.5)
                            .color(Color32::from_rgb(c[0], c[1], c[2])),
                    );
                }
                // where the traversal is now
                let t = self.state.traversal_value as f64;
                if self.state.traversal_dim == sx {
                    plot.vline(VLine::new("traversal", t));
                } else if self.state.traversal_dim == sy {
                    plot.hline(HLine::new("traversal", t));
                }
            });
    }

    fn correlation_ui(&mut self, ui: &mut egui::Ui) {
        let Some(insp) = &self.inspection else { return };
        let relevance = self.current_relevance();
        ui.horizontal(|ui| {
            ui.selectable_value(&mut self.state.show_mutual_information, false, "Pearson r");
            ui.selectable_value(
                &mut self.state.show_mutual_information,
                true,
                "mutual information",
            )
            .on_hover_text(format!(
                "nats, from {0}x{0} equal-frequency cells; also sees relations that are not linear",
                eval::MI_BINS
            ));
        });
        let mi = self.state.show_mutual_information;
        let table = if mi {
            &insp.mutual_information
        } else {
            &insp.correlations
        };
        egui::Grid::new("correlations")
            .striped(true)
            .show(ui, |ui| {
                ui.label("latent");
                ui.label("R");
                for (name, _) in &insp.observables {
                    ui.label(name);
                }
                ui.end_row();
                for (i, row) in table.iter().enumerate() {
                    let r = relevance.get(i).copied().unwrap_or(f64::NAN);
                    let strong = r >= RELEVANT;
                    ui.label(
                        egui::RichText::new(format!("z{i}"))
                            .strong()
                            .color(if strong {
                                ui.visuals().text_color()
                            } else {
                                Color32::GRAY
                            }),
                    );
                    ui.label(format!("{r:.2}"));
                    for &c in row {
                        // r in [-1, 1]; MI shaded as the r of a Gaussian pair with that MI
                        let strength = if mi {
                            (1.0 - (-2.0 * c).exp()).sqrt()
                        } else {
                            c.abs()
                        };
                        let shade = (strength.clamp(0.0, 1.0) * 255.0) as u8;
                        let colour = if mi || c >= 0.0 {
                            Color32::from_rgb(shade, 90, 90)
                        } else {
                            Color32::from_rgb(90, 90, shade)
                        };
                        let text = if mi {
                            format!("{c:.2}")
                        } else {
                            format!("{c:+.2}")
                        };
                        // a collapsed latent's mean barely moves: its relation is noise, shown grey
                        ui.label(
                            egui::RichText::new(text).color(if strong && strength > 0.3 {
                                colour
                            } else {
                                Color32::GRAY
                            }),
                        );
                    }
                    ui.end_row();
                }
            });
    }

    fn traversal_ui(&mut self, ui: &mut egui::Ui) {
        let Some(lab) = self.models.a.clone() else {
            return;
        };
        let l = lab.latent_dims();
        let relevance = self.current_relevance();
        let (lo, hi) = self.traversal_range();
        ui.horizontal(|ui| {
            let label = |i: usize| match relevance.get(i) {
                Some(&r) if r >= RELEVANT => format!("z{i} (relevant, R {r:.2})"),
                Some(r) => format!("z{i} (R {r:.2})"),
                None => format!("z{i}"),
            };
            let before = self.state.traversal_dim;
            dim_picker(
                ui,
                "latent to move",
                &mut self.state.traversal_dim,
                l,
                label,
            );
            let n = self
                .inspection
                .as_ref()
                .map_or(1, |i| i.latents.len().max(1));
            let before_event = self.state.base_event;
            ui.add(
                egui::DragValue::new(&mut self.state.base_event)
                    .range(0..=n - 1)
                    .prefix("from held-out event "),
            );
            if before != self.state.traversal_dim || before_event != self.state.base_event {
                self.state.traversal_value = self
                    .base_latent()
                    .and_then(|z| z.get(self.state.traversal_dim).copied())
                    .unwrap_or(0.0);
            }
        });
        ui.add(
            egui::Slider::new(&mut self.state.traversal_value, lo..=hi)
                .text("traversal")
                .min_decimals(2),
        );
        let Some((_, x)) = &self.decoded else { return };
        let (Some(b), Some((_, xb))) = (self.models.b.clone(), &self.decoded_b) else {
            return self.event_ui(ui, &lab, x, 0);
        };
        ui.columns(2, |cols| {
            cols[0].strong("A");
            self.event_ui(&mut cols[0], &lab, x, 0);
            cols[1]
                .strong(format!("B: its z{} moved by as much", self.moved_b))
                .on_hover_text(
                    "B encodes the same held-out event; the latent it moves is the one that stands \
                     where A's does in the order of relevance",
                );
            self.event_ui(&mut cols[1], &b, xb, 1);
        });
    }

    /// A decoded event of model `which` (0: A, 1: B): a muon pair's momenta, or the features
    /// of other data.
    fn event_ui(&self, ui: &mut egui::Ui, lab: &Lab, x: &[f32], which: usize) {
        if lab.is_muon_pair() {
            draw_muon_event(ui, x);
        } else {
            self.feature_picture_ui(ui, lab, x, which);
        }
    }

    /// Non-muon data: the decoded features, and the traversal drawn in the first two features.
    fn feature_picture_ui(&self, ui: &mut egui::Ui, lab: &Lab, x: &[f32], which: usize) {
        let values: Vec<String> = lab
            .columns
            .iter()
            .zip(x)
            .map(|(c, v)| format!("{c} = {v:.3}"))
            .collect();
        ui.label(format!("decoded: {}", values.join(", ")));
        if x.len() < 2 {
            return;
        }
        let sample: PlotPoints = self
            .inspection
            .as_ref()
            .map_or(Vec::new(), |i| {
                i.sample
                    .iter()
                    .map(|r| [r[0] as f64, r[1] as f64])
                    .collect()
            })
            .into();
        // the traversal's whole path is A's; B shows where its own traversal stands
        let path: PlotPoints = if which == 0 {
            &self.traversal_path[..]
        } else {
            &[]
        }
        .iter()
        .map(|r| [r[0] as f64, r[1] as f64])
        .collect();
        Plot::new(("traversal_features", which))
            .height(220.0)
            .data_aspect(1.0)
            .legend(Legend::default())
            .x_axis_label(lab.columns[0].clone())
            .y_axis_label(lab.columns[1].clone())
            .show(ui, |plot| {
                plot.points(
                    Points::new("held-out events", sample)
                        .radius(1.0)
                        .color(Color32::GRAY),
                );
                plot.line(Line::new("traversal", path).width(2.0));
                plot.points(
                    Points::new("decoded", vec![[x[0] as f64, x[1] as f64]])
                        .radius(5.0)
                        .color(MU_MINUS),
                );
            });
    }
}

/// A combo box choosing one of `dims` latent dimensions, each shown as `name(i)`.
fn dim_picker(
    ui: &mut egui::Ui,
    label: &str,
    dim: &mut usize,
    dims: usize,
    name: impl Fn(usize) -> String,
) {
    egui::ComboBox::from_label(label)
        .selected_text(name(*dim))
        .show_ui(ui, |ui| {
            for i in 0..dims {
                ui.selectable_value(dim, i, name(i));
            }
        });
}

impl LabTab for RelevanceTab {
    const TITLE: &'static str = "Relevance";
    hold_models!(Lab, RelevanceState, Command);

    fn new(shared: &mut Shared) -> Self {
        let default_path = shared.models_dir.join("vae_relevance.safetensors");
        Self {
            state: RelevanceState::default(),
            models: crate::registry::models(
                &super::cli::RelevanceFamily,
                "relevance",
                FilesPanel::new(&default_path).with_figure(
                    "figure",
                    "relevance.png",
                    &[
                        "Export relevance",
                        "Export KL",
                        "Export curves",
                        "Export scatter",
                        "Export sweep",
                    ],
                ),
                training_spec(),
                RelevanceState::default().models.train,
            ),
            file_field: PathField::default(),
            training: Training::default(),
            inspection: None,
            inspecting: None,
            inspect_wanted: false,
            dataset: None,
            repick_views: true,
            decoded: None,
            traversal_path: Vec::new(),
            base_b: None,
            decoded_b: None,
            moved_b: 0,
            commands: Vec::new(),
            background: Background::default(),
        }
        .with_shipped(&default_path, shared)
    }

    fn apply(&mut self, command: Command, shared: &mut Shared) {
        match command {
            Command::Sweep(betas) => self.start_sweep(betas, shared),
            Command::Export(kind, p) => match self.figure(kind) {
                Ok(fig) => self.background.run(move || {
                    figures::save(&fig, &p)
                        .map(|_| format!("wrote {}", p.display()))
                        .map_err(|e| format!("{e:#}"))
                }),
                Err(e) => shared.error(format!("cannot export: {e}")),
            },
        }
    }

    fn export(&mut self, _row: usize, action: usize, path: PathBuf, shared: &mut Shared) {
        if let Some(kind) = FIGURE_KINDS.get(action) {
            self.apply(Command::Export(*kind, path), shared);
        }
    }

    fn changed(&mut self, changed: impl IntoIterator<Item = Changed>) {
        for c in changed {
            self.decoded_b = None;
            self.base_b = None;
            let Changed::A { fresh } = c else { continue };
            if self.models.a_file.is_some() {
                // a model opened from a file shows its own history, not the last run's
                if !self.models.panel.is_running() {
                    self.training = Training::default();
                }
            }
            if let Some(lab) = self.models.a.clone() {
                self.set_lab(lab, fresh);
            }
        }
    }

    fn logic(&mut self, _ctx: &egui::Context, shared: &mut Shared) {
        self.drain_inspection(shared);
        self.drain_background(shared);
        self.start_inspection();
        self.refresh_decoded(shared);
    }

    fn columns_ui(&mut self, left: &mut egui::Ui, right: &mut egui::Ui) {
        left.heading("Relevance of latent dimensions");
        if let Some(lab) = &self.models.a {
            left.label(format!(
                "{FAMILY} · {} · latent {} · β {} · {} steps · seed {}",
                lab.meta.data,
                lab.latent_dims(),
                lab.cfg.beta,
                lab.meta.steps,
                lab.meta.seed
            ));
        }
        self.train_ui(left);
        left.separator();
        self.relevance_ui(left);
        left.separator();
        self.models.panels_ui(left, false, |_| true);
        right.heading("Latents against observables");
        self.scatter_ui(right);
        self.correlation_ui(right);
        right.separator();
        right.heading("Traversal");
        self.traversal_ui(right);
    }

    /// The run's metrics feed the relevance bars and the sweep.
    fn models_logic(&mut self, shared: &mut Shared) {
        let (state, training) = (&self.state, &mut self.training);
        let (update, changed) = self.models.logic(shared, |args| {
            adjust_args(state, args);
            *training = Training::default();
        });
        let t = &mut self.training;
        for &(step, ref values) in &update.metrics {
            let named = || values.iter().map(|(k, v)| (k.as_str(), *v));
            if let Some(r) = eval::report_from_metrics(named()) {
                if t.history.last().is_none_or(|h| h.step != step) {
                    t.history.push(HistoryPoint {
                        step,
                        relevance: r.relevance.clone(),
                    });
                }
                t.report = Some(r);
            }
            if t.is_sweep {
                t.sweep = sweep_results(named());
                t.beta_now = named().find(|(k, _)| *k == "beta").map(|(_, v)| v);
            }
        }
        self.changed(changed);
        if update.ended {
            self.repick_views = true;
        }
    }

    fn commands_applied(&mut self, shared: &mut Shared) {
        self.start_inspection();
        self.refresh_decoded(shared);
    }

    fn working(&self) -> bool {
        self.inspecting.is_some() || !self.background.is_empty()
    }

    fn restore(&mut self, s: RelevanceState) {
        let l = self
            .models
            .a
            .as_ref()
            .map_or(usize::MAX, |lab| lab.latent_dims());
        self.state = RelevanceState {
            scatter_x: s.scatter_x.min(l.saturating_sub(1)),
            scatter_y: s.scatter_y.min(l.saturating_sub(1)),
            traversal_dim: s.traversal_dim.min(l.saturating_sub(1)),
            ..s
        };
        self.decoded = None;
    }
}
