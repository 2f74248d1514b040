//! The egui shell: one tab per model family behind the small [`Tab`] trait, shared audio and
//! file dialogs, persisted state. `logic` does the work, `ui` only draws.

mod background;
pub mod explore;
mod files;
mod lab_tab;
pub mod latent_map;
mod models;
mod training;

pub use background::Background;
pub use explore::{Decoded, Explore, ExplorePanel, MapSamples};
pub use files::{
    CheckpointAction, FIGURE_FILES, FileAction, FilePaths, FileRequest, FilesPanel, PathField,
};
pub use lab_tab::{LabTab, TabState};
pub(crate) use lab_tab::{hold_models, tab_state};
pub use models::{Changed, Evaluate, Heard, HostedLab, Import, MetricTable, Models, ModelsState};
pub use training::{
    POLL_BUDGET, RunUpdate, SNAPSHOT_EVERY, StartJob, TrainSettings, TrainingPanel, TrainingRun,
    TrainingSpec,
};

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::audio::engine::Playback;

/// What every tab may use: audio, notices for the status bar, where the default models live.
pub struct Shared {
    pub audio: Playback,
    pub notices: Vec<Notice>,
    pub models_dir: PathBuf,
    /// threads a training job started in the window may use (at the lowest priority)
    pub train_threads: usize,
    /// the tab the shell is running, which the notices it posts are tagged with
    pub speaking: Option<&'static str>,
}

#[derive(Clone, Debug)]
pub struct Notice {
    pub text: String,
    pub error: bool,
    /// shown whichever tab is open (errors, a training's end); other notices only on the
    /// tab that posted them
    pub loud: bool,
    /// the tab that posted it
    pub tab: Option<&'static str>,
    pub at: Instant,
}

impl Notice {
    /// The status bar's text for it while `active` is open: a notice from another tab
    /// says which.
    pub fn line(&self, active: Option<&str>) -> Option<String> {
        match self.tab {
            Some(tab) if Some(tab) != active => self.loud.then(|| format!("{tab}: {}", self.text)),
            _ => Some(self.text.clone()),
        }
    }
}

impl Shared {
    pub fn info(&mut self, text: impl Into<String>) {
        self.post(text.into(), false, false);
    }

    fn post(&mut self, text: String, error: bool, loud: bool) {
        self.notices.push(Notice {
            text,
            error,
            loud: loud || error,
            tab: self.speaking,
            at: Instant::now(),
        });
    }

    /// Tell the user how a training job ended; returns the tab's status line for it.
    pub fn announce_end(&mut self, ended: Option<Result<String, String>>) -> Option<String> {
        match ended? {
            Ok(summary) => {
                self.post(format!("training {summary}"), false, true);
                Some(summary)
            }
            Err(e) => {
                self.error(e.clone());
                Some(format!("failed: {e}"))
            }
        }
    }

    pub fn error(&mut self, text: impl Into<String>) {
        let text = text.into();
        eprintln!("error: {text}");
        self.post(text, true, true);
    }
}

/// Builds a tab; the window's list of them comes from outside app/ (the family registry).
pub type TabMaker = fn(&mut Shared) -> Box<dyn Tab>;

/// Any tab as `Any`, for tests that read what it shows (e.g. a decoded image). Only tabs
/// have it, so that `as_any` on a `Box<dyn Tab>` reaches the tab, not the box.
pub trait AsAny {
    fn as_any(&self) -> &dyn std::any::Any;
    fn as_any_mut(&mut self) -> &mut dyn std::any::Any;
}

impl<T: Tab + 'static> AsAny for T {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
}

/// One model family's panel.
pub trait Tab: AsAny {
    fn title(&self) -> &'static str;
    /// Work that is not drawing: drain background results.
    fn logic(&mut self, ctx: &egui::Context, shared: &mut Shared);
    /// Draw; widgets only record commands.
    fn ui(&mut self, ui: &mut egui::Ui, shared: &mut Shared);
    /// Apply what the widgets asked for; the shell calls it once per frame, after drawing,
    /// for every tab (a hidden tab's training still has to be read).
    fn apply_commands(&mut self, _shared: &mut Shared) {}
    /// Something runs in the background: keep frames coming.
    fn busy(&self) -> bool {
        false
    }
    fn persist(&self) -> serde_json::Value;
    fn restore(&mut self, state: serde_json::Value);
    /// The tab's training panel, for tests that drive it.
    fn training_panel(&mut self) -> Option<&mut TrainingPanel> {
        None
    }
}

#[derive(Clone, Debug)]
pub struct AppOptions {
    pub models_dir: PathBuf,
    /// open the sound card (off in tests: they render audio offline)
    pub open_audio: bool,
    pub train_threads: usize,
}

impl Default for AppOptions {
    fn default() -> Self {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        Self {
            models_dir: find_models_dir(),
            open_audio: true,
            // every core: the training threads run at the lowest priority, so the frame and
            // the sound still come first
            train_threads: cores,
        }
    }
}

/// `models/` beside the working directory, beside the executable, or in the source tree.
pub fn find_models_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("LATENT_LAB_MODELS") {
        return PathBuf::from(dir);
    }
    let mut candidates = vec![PathBuf::from("models")];
    if let Ok(exe) = std::env::current_exe() {
        for up in exe.ancestors().skip(1).take(4) {
            candidates.push(up.join("models"));
        }
    }
    candidates.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("models"));
    candidates
        .into_iter()
        .find(|p| p.is_dir())
        .unwrap_or_else(|| PathBuf::from("models"))
}

pub struct App {
    pub tabs: Vec<Box<dyn Tab>>,
    pub active: usize,
    pub shared: Shared,
    frame_times: std::collections::VecDeque<f32>,
    last_frame: Option<Instant>,
}

const STORAGE_ACTIVE: &str = "active_tab";

impl App {
    pub fn new(cc: &eframe::CreationContext<'_>, options: AppOptions, tabs: &[TabMaker]) -> Self {
        let mut app = Self::headless(options, tabs);
        if let Some(storage) = cc.storage {
            app.restore_from(|key| storage.get_string(key));
        }
        app
    }

    /// The app without a window (tests build it this way too, through `new`), with one tab
    /// from each of `tabs`, in order.
    pub fn headless(options: AppOptions, tabs: &[TabMaker]) -> Self {
        let audio = if options.open_audio {
            Playback::open()
        } else {
            Playback::offline("audio disabled")
        };
        let mut shared = Shared {
            audio,
            notices: Vec::new(),
            models_dir: options.models_dir,
            train_threads: options.train_threads,
            speaking: None,
        };
        let tabs: Vec<Box<dyn Tab>> = tabs
            .iter()
            .map(|make| {
                let posted = shared.notices.len();
                let tab = make(&mut shared);
                for n in &mut shared.notices[posted..] {
                    n.tab = Some(tab.title());
                }
                tab
            })
            .collect();
        Self {
            tabs,
            active: 0,
            shared,
            frame_times: Default::default(),
            last_frame: None,
        }
    }

    fn restore_from(&mut self, get: impl Fn(&str) -> Option<String>) {
        if let Some(a) = get(STORAGE_ACTIVE).and_then(|s| s.parse::<usize>().ok()) {
            self.active = a.min(self.tabs.len().saturating_sub(1));
        }
        for tab in &mut self.tabs {
            if let Some(v) = get(tab.title()).and_then(|s| serde_json::from_str(&s).ok()) {
                tab.restore(v);
            }
        }
    }

    /// 95th percentile of the recent frame-to-frame times, in ms.
    pub fn frame_time_p95(&self) -> Option<f32> {
        if self.frame_times.len() < 10 {
            return None;
        }
        let mut v: Vec<f32> = self.frame_times.iter().copied().collect();
        v.sort_by(f32::total_cmp);
        Some(v[(v.len() * 95 / 100).min(v.len() - 1)])
    }

    fn status_bar(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            let audio = self.shared.audio.status_line();
            let color = if self.shared.audio.is_live() {
                ui.visuals().weak_text_color()
            } else {
                ui.visuals().warn_fg_color
            };
            ui.colored_label(color, audio);
            ui.separator();
            self.shared
                .notices
                .retain(|n| n.at.elapsed() < Duration::from_secs(if n.error { 30 } else { 8 }));
            let active = self.tabs.get(self.active).map(|t| t.title());
            let shown = self
                .shared
                .notices
                .iter()
                .rev()
                .find_map(|n| Some((n, n.line(active)?)));
            if let Some((n, line)) = shown {
                let color = if n.error {
                    ui.visuals().error_fg_color
                } else {
                    ui.visuals().text_color()
                };
                ui.colored_label(color, line);
            }
        });
    }
}

impl eframe::App for App {
    fn logic(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        let now = Instant::now();
        if let Some(last) = self.last_frame {
            self.frame_times
                .push_back(now.duration_since(last).as_secs_f32() * 1e3);
            if self.frame_times.len() > 240 {
                self.frame_times.pop_front();
            }
        }
        self.last_frame = Some(now);
        for tab in &mut self.tabs {
            self.shared.speaking = Some(tab.title());
            tab.logic(ctx, &mut self.shared);
        }
        self.shared.speaking = None;
        if self.tabs.iter().any(|t| t.busy()) {
            ctx.request_repaint_after(Duration::from_millis(30));
        }
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        // `LATENT_LAB_QUIT_AFTER_FIRST_FRAME=1 time latent-lab` measures start-up to a drawn window.
        if self.frame_times.is_empty()
            && std::env::var_os("LATENT_LAB_QUIT_AFTER_FIRST_FRAME").is_some()
        {
            ui.ctx().send_viewport_cmd(egui::ViewportCommand::Close);
        }
        egui::Panel::top("tabs").show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.heading("latent-lab");
                ui.separator();
                for (i, tab) in self.tabs.iter().enumerate() {
                    if ui.selectable_label(self.active == i, tab.title()).clicked() {
                        self.active = i;
                    }
                }
            });
        });
        egui::Panel::bottom("status").show(ui, |ui| self.status_bar(ui));
        egui::CentralPanel::default().show(ui, |ui| {
            if let Some(tab) = self.tabs.get_mut(self.active) {
                self.shared.speaking = Some(tab.title());
                tab.ui(ui, &mut self.shared);
            }
        });
        for tab in &mut self.tabs {
            self.shared.speaking = Some(tab.title());
            tab.apply_commands(&mut self.shared);
        }
        self.shared.speaking = None;
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        storage.set_string(STORAGE_ACTIVE, self.active.to_string());
        for tab in &self.tabs {
            storage.set_string(tab.title(), tab.persist().to_string());
        }
    }
}

/// Open the window with these tabs. Without a display, say so and name the headless
/// subcommands.
pub fn run_window(tabs: Vec<TabMaker>) -> anyhow::Result<()> {
    if std::env::var_os("DISPLAY").is_none() && std::env::var_os("WAYLAND_DISPLAY").is_none() {
        anyhow::bail!(
            "no display (DISPLAY and WAYLAND_DISPLAY are unset); headless subcommands: train, eval, compare, export, import, bench, encode, decode (see --help)"
        );
    }
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("latent-lab")
            .with_inner_size([1280.0, 820.0])
            .with_min_inner_size([900.0, 600.0]),
        persist_window: true,
        ..Default::default()
    };
    eframe::run_native(
        "latent-lab",
        options,
        Box::new(move |cc| Ok(Box::new(App::new(cc, AppOptions::default(), &tabs)))),
    )
    .map_err(|e| anyhow::anyhow!("cannot open the window: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tab's everyday notices stay on that tab; errors and a training's end reach every
    /// tab, saying where they come from.
    #[test]
    fn notices_from_another_tab_show_only_when_loud_and_name_it() {
        let mut shared = Shared {
            audio: Playback::offline("no sound card"),
            notices: Vec::new(),
            models_dir: PathBuf::new(),
            train_threads: 1,
            speaking: Some("3D"),
        };
        shared.info("opened sps_vision.safetensors");
        shared.announce_end(Some(Ok("done".into())));
        shared.error("bad file");
        let lines = |active| -> Vec<Option<String>> {
            shared.notices.iter().map(|n| n.line(active)).collect()
        };
        assert_eq!(
            lines(Some("Pitch")),
            [
                None,
                Some("3D: training done".into()),
                Some("3D: bad file".into())
            ]
        );
        assert_eq!(
            lines(Some("3D")),
            [
                Some("opened sps_vision.safetensors".into()),
                Some("training done".into()),
                Some("bad file".into())
            ]
        );
    }
}
