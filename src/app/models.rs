//! The models a tab holds, for every lab alike: "A", the model on show (opened, imported or
//! being trained), and "B", a second checkpoint opened beside it to compare with. Opening,
//! saving, importing, reading training snapshots and the metric table of A against B all
//! happen here; a tab hears of a new model through [`Changed`] and draws its own outputs of
//! both.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::explore::{Explore, ExplorePanel};
use super::{
    Background, FileAction, FilePaths, FileRequest, FilesPanel, PathField, Shared, TrainSettings,
    TrainingPanel,
};
use crate::cli::TrainArgs;
use crate::compare::Comparison;
use crate::nn::checkpoint::Metadata;
use crate::worker::Snapshot;

/// What a family's lab offers the shared slots; [`checkpointed_lab!`](crate::checkpointed_lab)
/// implements it for every family's lab.
pub trait HostedLab: Send + Sync + Sized + 'static {
    fn open(path: &Path) -> Result<Self, String>;
    fn save_to(&self, path: &Path) -> Result<(), String>;
    fn from_snapshot(snapshot: &Snapshot) -> Result<Self, String>;
    fn meta(&self) -> &Metadata;
}

/// A family's `latent-lab eval` of a checkpoint file, as JSON (or the message to show).
pub type Evaluate = Arc<dyn Fn(&Path) -> Result<serde_json::Value, String> + Send + Sync>;
/// Converts official PyTorch weights into a lab.
pub type Import<L> = fn(&Path) -> Result<L, String>;

/// Which model a tab's new state came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Changed {
    /// A new model on show; `fresh`: a different model rather than the next snapshot of the
    /// same training, so the tab resets what it had set for the old one.
    A { fresh: bool },
    /// B opened or closed.
    B,
}

/// Which model the tab plays, for labs that sound.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Heard {
    #[default]
    A,
    B,
}

/// The metric table: both evals as the command line prints them.
pub struct MetricTable {
    pub a: serde_json::Value,
    pub b: serde_json::Value,
    pub rows: Comparison,
}

enum Done<L> {
    Saved(PathBuf),
    OpenedB(PathBuf, L),
    Compared(Box<MetricTable>),
}

enum Request {
    OpenB(PathBuf),
    CloseB,
    Compare,
}

/// A's latent map: the panel, how a lab becomes its source, and the address of the lab it
/// shows (the map follows A, re-encoding when A is another model).
struct LatentMapSection<L> {
    panel: ExplorePanel,
    source: fn(Arc<L>) -> Arc<dyn Explore>,
    following: Option<usize>,
}

/// What a tab remembers of its models across restarts; a tab's own state flattens it in.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ModelsState {
    /// the checkpoint field (the model itself is opened afresh, from the default or the file)
    pub checkpoint: String,
    /// preset, steps, seed, data, threads, `--set` lines
    pub train: TrainSettings,
    /// the paths of the files panel
    pub files: FilePaths,
    /// the checkpoint to compare with ("B"); opened only when asked for
    pub compare_with: String,
}

impl ModelsState {
    pub fn new(train: TrainSettings) -> Self {
        Self {
            train,
            ..Self::default()
        }
    }
}

/// A tab's models, its files panel and its training panel.
pub struct Models<L> {
    pub a: Option<Arc<L>>,
    /// the file A was read from; None once training or an import replaced it
    pub a_file: Option<PathBuf>,
    pub b: Option<Arc<L>>,
    pub b_file: Option<PathBuf>,
    /// open, save, import, export
    pub files: FilesPanel,
    /// the shared panel: settings, Train/Stop, progress
    pub panel: TrainingPanel,
    /// the "compare with" path
    pub b_field: PathField,
    pub heard: Heard,
    pub table: Option<MetricTable>,
    comparing: bool,
    loading_b: bool,
    /// the shipped model a one-click comparison opens as B, and what to call it
    ablation: Option<(PathBuf, &'static str)>,
    /// the shipped pairs one click opens as A and B, and what to call each
    pairs: Vec<(PathBuf, PathBuf, &'static str)>,
    evaluate: Option<Evaluate>,
    import: Option<Import<L>>,
    /// the latent map of A, and what makes A its source
    map: Option<LatentMapSection<L>>,
    requests: Vec<Request>,
    /// what the files panel asked for, taken up by the tab ([`super::LabTab::files`])
    pub file_actions: Vec<FileAction>,
    background: Background<Result<Done<L>, String>>,
}

impl<L: HostedLab> Models<L> {
    pub fn new(files: FilesPanel, panel: TrainingPanel) -> Self {
        Self {
            a: None,
            a_file: None,
            b: None,
            b_file: None,
            files,
            panel,
            b_field: PathField::default(),
            heard: Heard::A,
            table: None,
            comparing: false,
            loading_b: false,
            ablation: None,
            pairs: Vec::new(),
            evaluate: None,
            import: None,
            map: None,
            requests: Vec::new(),
            file_actions: Vec::new(),
            background: Background::default(),
        }
    }

    /// Offer the shipped ablation `file` (in `models_dir`'s `ablations/`) as B in one click,
    /// under `label`; also the B path's default.
    pub fn with_ablation(mut self, models_dir: &Path, file: &str, label: &'static str) -> Self {
        let path = models_dir.join("ablations").join(file);
        self.b_field.text = path.display().to_string();
        self.ablation = Some((path, label));
        self
    }

    /// Offer the shipped pair `a` and `b` (in `models_dir`'s `folder`) as A and B in one
    /// click, under `label`: a model and its ablation that the lab's default model has no
    /// twin of.
    pub fn with_pair(
        mut self,
        models_dir: &Path,
        folder: &str,
        [a, b]: [&str; 2],
        label: &'static str,
    ) -> Self {
        let dir = models_dir.join(folder);
        self.pairs.push((dir.join(a), dir.join(b), label));
        self
    }

    /// How to evaluate a checkpoint for the metric table (the family's `eval`).
    pub fn with_evaluate(mut self, evaluate: Evaluate) -> Self {
        self.evaluate = Some(evaluate);
        self
    }

    pub fn with_import(mut self, import: Import<L>) -> Self {
        self.import = Some(import);
        self
    }

    /// What a figure export draws: A, then B beside it when one is open, each under the
    /// label `export --compare` gives it. Empty without A.
    pub fn drawn(&self) -> Vec<(Arc<L>, String)> {
        let Some(a) = &self.a else {
            return Vec::new();
        };
        let mut drawn = vec![(a.clone(), self.a_file.as_deref())];
        if let Some(b) = &self.b {
            drawn.push((b.clone(), self.b_file.as_deref()));
        }
        let files: Vec<_> = drawn.iter().map(|(_, file)| *file).collect();
        let labels = crate::figures::labels(&files);
        drawn
            .into_iter()
            .zip(labels)
            .map(|((model, _), label)| (model, label))
            .collect()
    }

    /// Offer A's latent map (see [`Models::map_ui`]); `source` makes a lab explorable.
    pub fn with_map(mut self, id: &str, source: fn(Arc<L>) -> Arc<dyn Explore>) -> Self {
        self.map = Some(LatentMapSection {
            panel: ExplorePanel::new(id),
            source,
            following: None,
        });
        self
    }

    /// The latent map of A, under a header of its own. Its samples are encoded only once the
    /// header is opened, and again whenever A changes (a new file, a training snapshot).
    pub fn map_ui(&mut self, ui: &mut egui::Ui, shared: &mut Shared) {
        let Some(map) = &mut self.map else { return };
        let a = &self.a;
        egui::CollapsingHeader::new(egui::RichText::new("Latent map").heading())
            .id_salt(("latent_map", map.panel.id().to_string()))
            .show(ui, |ui| {
                let address = a.as_ref().map(|a| Arc::as_ptr(a) as usize);
                if map.following != address {
                    map.following = address;
                    map.panel.set_source(a.clone().map(map.source));
                }
                map.panel.ui(ui, shared);
            });
    }

    /// The map panel, for tests that drive it.
    pub fn map_panel(&mut self) -> Option<&mut ExplorePanel> {
        self.map.as_mut().map(|m| &mut m.panel)
    }

    pub fn persist(&self) -> ModelsState {
        ModelsState {
            checkpoint: self.files.checkpoint.text.clone(),
            train: self.panel.settings.clone(),
            files: self.files.paths(),
            compare_with: self.b_field.text.clone(),
        }
    }

    /// Bring back the paths of an earlier session, and its training settings when
    /// `settings` (a tab may know they belong to another kind of model).
    pub fn restore(&mut self, s: &ModelsState, settings: bool) {
        self.files.restore(&s.files);
        if !s.compare_with.trim().is_empty() {
            self.b_field.text = s.compare_with.clone();
        }
        if settings {
            self.panel.restore(s.train.clone());
        }
    }

    /// Read `path` as A now; a bad file is told in the status bar and A stays as it was.
    pub fn open(&mut self, path: &Path, shared: &mut Shared) -> Option<Changed> {
        match L::open(path) {
            Ok(lab) => {
                shared.info(format!("opened {}", path.display()));
                self.files.checkpoint.text = path.display().to_string();
                self.set_a(lab, Some(path.to_owned()));
                Some(Changed::A { fresh: true })
            }
            Err(e) => {
                shared.error(e);
                None
            }
        }
    }

    pub fn set_a(&mut self, lab: L, file: Option<PathBuf>) {
        self.a = Some(Arc::new(lab));
        self.a_file = file;
        self.table = None;
    }

    /// A in one line: its family, preset and training steps.
    pub fn summary(&self) -> Option<String> {
        let meta = self.a.as_ref()?.meta();
        Some(format!(
            "{} · preset {} · {} steps",
            meta.family, meta.preset, meta.steps
        ))
    }

    /// Both models, A first, for drawing one output per model.
    pub fn both(&self) -> impl Iterator<Item = (&'static str, &Arc<L>)> {
        [("A", self.a.as_ref()), ("B", self.b.as_ref())]
            .into_iter()
            .filter_map(|(n, m)| Some((n, m?)))
    }

    /// The model the tab plays: B when it is open and chosen.
    pub fn heard(&self) -> Option<&Arc<L>> {
        match (self.heard, &self.b) {
            (Heard::B, Some(b)) => Some(b),
            _ => self.a.as_ref(),
        }
    }

    pub fn busy(&self) -> bool {
        self.panel.is_running()
            || !self.background.is_empty()
            || self.map.as_ref().is_some_and(|m| m.panel.busy())
    }

    /// Drain the training job and the background work, apply what the widgets asked for;
    /// `adjust` may change the arguments of a run the panel starts.
    pub fn logic(
        &mut self,
        shared: &mut Shared,
        adjust: impl FnOnce(&mut TrainArgs),
    ) -> (super::RunUpdate, Vec<Changed>) {
        let mut changed = Vec::new();
        if let Some(map) = &mut self.map {
            map.panel.logic(shared);
        }
        for request in std::mem::take(&mut self.requests) {
            self.apply(request, shared, &mut changed);
        }
        for done in self.background.finished(shared) {
            match done {
                Ok(Done::Saved(p)) => shared.info(format!("saved {}", p.display())),
                Ok(Done::OpenedB(p, lab)) => {
                    self.loading_b = false;
                    shared.info(format!("opened {} as B", p.display()));
                    self.b = Some(Arc::new(lab));
                    self.b_file = Some(p);
                    self.table = None;
                    changed.push(Changed::B);
                }
                Ok(Done::Compared(table)) => {
                    self.comparing = false;
                    self.table = Some(*table);
                }
                Err(e) => {
                    self.loading_b = false;
                    self.comparing = false;
                    shared.error(e);
                }
            }
        }
        let update = self.panel.logic(shared, adjust);
        if let Some(lab) = update.model(shared, L::from_snapshot) {
            let fresh = self.a.as_ref().is_none_or(|old| {
                let (old, new) = (old.meta(), lab.meta());
                old.data != new.data || old.steps > new.steps || old.family != new.family
            });
            self.set_a(lab, None);
            changed.push(Changed::A { fresh });
        }
        (update, changed)
    }

    fn apply(&mut self, request: Request, shared: &mut Shared, changed: &mut Vec<Changed>) {
        match request {
            Request::OpenB(path) => {
                self.loading_b = true;
                self.background.run(move || {
                    let lab = L::open(&path)?;
                    Ok(Done::OpenedB(path, lab))
                });
            }
            Request::CloseB => {
                self.b = None;
                self.b_file = None;
                self.table = None;
                self.heard = Heard::A;
                changed.push(Changed::B);
            }
            Request::Compare => {
                let (Some(evaluate), Some(a), Some(b_file)) =
                    (self.evaluate.clone(), self.a.clone(), self.b_file.clone())
                else {
                    return shared.error("open a model A and a model B to compare");
                };
                let a_file = self.a_file.clone();
                self.comparing = true;
                self.background.run(move || {
                    // a model that is not a file (trained here, imported) is evaluated from
                    // a temporary copy, exactly as `latent-lab eval` would see it saved
                    let temp = tempfile::tempdir().map_err(|e| e.to_string())?;
                    let a_path = match a_file {
                        Some(p) => p,
                        None => {
                            let p = temp.path().join("a.safetensors");
                            a.save_to(&p)?;
                            p
                        }
                    };
                    let (ma, mb) = (evaluate(&a_path)?, evaluate(&b_file)?);
                    let rows = Comparison::new(&ma, &mb);
                    Ok(Done::Compared(Box::new(MetricTable { a: ma, b: mb, rows })))
                });
            }
        }
    }

    /// Open, save and import are done here; an export is the tab's to do.
    pub fn handle(&mut self, action: FileAction, shared: &mut Shared) -> Vec<Changed> {
        match action {
            FileAction::Open(p) => self.open(&p, shared).into_iter().collect(),
            FileAction::Save(p) => {
                match self.a.clone() {
                    Some(lab) => self.background.run(move || {
                        lab.save_to(&p)?;
                        Ok(Done::Saved(p))
                    }),
                    None => shared.error("no model to save"),
                }
                Vec::new()
            }
            FileAction::Import(p) => {
                let Some(import) = self.import else {
                    return Vec::new();
                };
                match import(&p) {
                    Ok(lab) => {
                        shared.info(format!(
                            "imported {} (official PyTorch weights)",
                            p.display()
                        ));
                        self.set_a(lab, None);
                        vec![Changed::A { fresh: true }]
                    }
                    Err(e) => {
                        shared.error(e);
                        Vec::new()
                    }
                }
            }
            FileAction::Export { .. } => Vec::new(),
        }
    }

    /// The compare panel and the files panel, under their headings; what the files panel asks
    /// for waits in `file_actions`. `can_export(row)`: what else an export row needs beyond a
    /// model A.
    pub fn panels_ui(
        &mut self,
        ui: &mut egui::Ui,
        sounds: bool,
        can_export: impl Fn(usize) -> bool,
    ) {
        ui.heading("Compare");
        self.compare_ui(ui, sounds);
        ui.separator();
        ui.heading("Files");
        if let Some(action) = self.files.ui(ui, self.a.is_some(), can_export) {
            self.file_actions.push(action);
        }
    }

    /// The "compare" panel: the B checkpoint, the one-click shipped ablation and pair, the A/B switch
    /// for what is heard (when `sounds`), and the metric table.
    pub fn compare_ui(&mut self, ui: &mut egui::Ui, sounds: bool) {
        if let Some((i, p)) = self.b_field.row(
            ui,
            "B",
            "another checkpoint of this lab",
            FileRequest::Open,
            &[("checkpoint", &["safetensors"][..])],
            &[("Open as B", !self.loading_b)],
        ) && i == 0
        {
            self.requests.push(Request::OpenB(p));
        }
        ui.horizontal_wrapped(|ui| {
            if let Some((path, label)) = &self.ablation
                && ui
                    .add_enabled(!self.loading_b, egui::Button::new(format!("B = {label}")))
                    .on_hover_text(format!("open the shipped {}", path.display()))
                    .clicked()
            {
                self.b_field.text = path.display().to_string();
                self.requests.push(Request::OpenB(path.clone()));
            }
            for (a, b, label) in &self.pairs {
                if ui
                    .add_enabled(
                        !self.loading_b,
                        egui::Button::new(format!("A, B = {label}")),
                    )
                    .on_hover_text(format!(
                        "open the shipped {} as A and {} as B",
                        a.display(),
                        b.display()
                    ))
                    .clicked()
                {
                    self.file_actions.push(FileAction::Open(a.clone()));
                    self.b_field.text = b.display().to_string();
                    self.requests.push(Request::OpenB(b.clone()));
                }
            }
            if self.b.is_some() && ui.button("Close B").clicked() {
                self.requests.push(Request::CloseB);
            }
            if self.loading_b {
                ui.spinner();
                ui.label("opening B…");
            }
        });
        let Some(b) = &self.b else {
            ui.label("Open a second model as B to see it beside A, driven by the same controls.");
            return;
        };
        ui.label(format!(
            "B: {} · preset {} · {} steps · seed {}",
            self.b_file
                .as_ref()
                .and_then(|p| p.file_name())
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            b.meta().preset,
            b.meta().steps,
            b.meta().seed
        ));
        ui.horizontal(|ui| {
            if sounds {
                ui.label("hear");
                ui.selectable_value(&mut self.heard, Heard::A, "A");
                ui.selectable_value(&mut self.heard, Heard::B, "B");
                ui.separator();
            }
            let can = self.evaluate.is_some() && self.a.is_some() && !self.comparing;
            if ui
                .add_enabled(can, egui::Button::new("Compare metrics"))
                .on_hover_text(
                    "runs `latent-lab eval` on both models, as `latent-lab compare` does",
                )
                .clicked()
            {
                self.requests.push(Request::Compare);
            }
            if self.comparing {
                ui.spinner();
                ui.label("evaluating both…");
            }
        });
        if let Some(table) = &self.table {
            metric_grid(ui, &table.rows);
        }
    }
}

/// A, B and B - A, one metric a row.
fn metric_grid(ui: &mut egui::Ui, rows: &Comparison) {
    egui::Grid::new("metric_table")
        .striped(true)
        .num_columns(4)
        .show(ui, |ui| {
            for h in ["metric", "A", "B", "B - A"] {
                ui.strong(h);
            }
            ui.end_row();
            for row in rows.rows.iter().filter(|r| {
                [&r.a, &r.b]
                    .iter()
                    .any(|v| v.as_ref().is_some_and(|v| v.is_number()))
            }) {
                ui.label(&row.key);
                for v in [&row.a, &row.b, &row.difference] {
                    ui.label(crate::compare::show(v.as_ref()));
                }
                ui.end_row();
            }
        });
}
