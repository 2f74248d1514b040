//! The "Codebook" tab: the whole content codebook decoded in a chosen style (spectrogram
//! thumbnails that play on click for notes, image tiles for digits), atom usage, the
//! code-by-label matrix, a style picker, a content/style swap view, PCA scatters of the
//! latents, background training with the codebook updating live, and figure export.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use egui_plot::{Plot, PlotPoints, Points};
use serde::{Deserialize, Serialize};

use super::cli::{atom_caption, atom_order, codebook_figure, latent_figure, matrix_figure};
use super::data::{self, Dataset, Domain, Sample};
use super::eval::nearest;
use super::train::{PRESETS, TrainConfig};
use super::{Lab, fragment_audio, fragment_image};
use crate::app::{
    Background, Changed, FilesPanel, LabTab, Models, ModelsState, Shared, StartJob, TrainSettings,
    TrainingSpec, hold_models, tab_state,
};
use crate::audio::dsp::{self, SAMPLE_RATE, Stft};

/// Griffin-Lim iterations when a click plays a decoded fragment: enough for a clear pitch,
/// few enough that decode + resynthesis stay well inside 50 ms (`bench v3-notes --what swap`).
pub const SWAP_GL_ITERS: usize = 16;

/// Whose style the atoms are drawn in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StyleChoice {
    /// a training or held-out instrument / colour: the mean style latent of its samples
    Known(usize),
    /// the style latent (mean over its fragments) of one evaluation sample
    Sample(usize),
}

/// What the tab remembers across restarts.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct CodebookState {
    /// checkpoint, training settings, files and B paths
    #[serde(flatten)]
    pub models: ModelsState,
    pub domain: Domain,
    pub style: StyleChoice,
    pub swap_content: usize,
    pub swap_style: usize,
    pub swap_fragment: usize,
}

tab_state!(CodebookState);

impl Default for CodebookState {
    fn default() -> Self {
        Self {
            domain: Domain::Notes,
            style: StyleChoice::Known(0),
            swap_content: 0,
            swap_style: 1,
            swap_fragment: 0,
            models: ModelsState::new(TrainSettings::new(
                "fast",
                TrainConfig::preset(Domain::Notes, "fast")
                    .map(|c| c.steps)
                    .unwrap_or(1500),
                data::default_spec(Domain::Notes),
            )),
        }
    }
}

/// Side effects the widgets ask for; applied in one place after drawing.
pub enum Command {
    SwitchDomain(Domain),
    PickStyle(StyleChoice),
    PlayAtom(usize),
    PlayAtomB(usize),
    PlaySwap,
    PlayFragment { sample: usize, fragment: usize },
    Export(ExportKind, PathBuf),
}

#[derive(Clone, Copy)]
pub enum ExportKind {
    Codebook,
    Matrix,
    Scatter { content: bool },
}

/// Samples to pick styles and swaps from: the held-out samples, then those of held-out styles.
pub struct EvalSamples {
    pub domain: Domain,
    pub samples: Vec<Sample>,
    pub names: Vec<String>,
}

impl EvalSamples {
    fn from_dataset(d: Dataset) -> Self {
        let mut names = Vec::new();
        let mut counts = vec![0usize; d.style_names.len()];
        for s in d.test.iter().chain(&d.ood) {
            let n = counts.get(s.style).copied().unwrap_or(0);
            if let Some(c) = counts.get_mut(s.style) {
                *c += 1;
            }
            let held_out = s.style >= d.n_train_styles;
            let unit = match d.domain {
                Domain::Notes => "take",
                Domain::Digits => "row",
            };
            names.push(format!(
                "{} · {unit} {}{}",
                d.style_names.get(s.style).cloned().unwrap_or_default(),
                n + 1,
                if held_out { " (held-out style)" } else { "" }
            ));
        }
        Self {
            domain: d.domain,
            samples: d.test.into_iter().chain(d.ood).collect(),
            names,
        }
    }
}

/// The panel's choices for a domain.
fn training_spec(domain: Domain) -> TrainingSpec {
    TrainingSpec {
        presets: &PRESETS,
        data_choices: vec![data::default_spec(domain).into()],
        data_hint: match domain {
            Domain::Notes => "soundfont, soundfont:PATH.sf2 or .sf3",
            Domain::Digits => "digits, idx:IMAGES,LABELS, csv:PATH",
        },
        metrics: &[
            ("codebook_purity", "codebook purity"),
            ("content_knn_auc", "content kNN AUC"),
        ],
        single_threaded: false,
        ..TrainingSpec::default()
    }
    .with_preset_steps(|p| Ok(TrainConfig::preset(domain, p)?.steps))
}

/// The `latent-lab train` job of a domain's family.
fn starter(domain: Domain) -> StartJob {
    crate::registry::job_starter(family(domain))
}

/// The family that trains a domain's model.
fn family(domain: Domain) -> &'static dyn crate::cli::Family {
    match domain {
        Domain::Notes => &super::cli::NOTES,
        Domain::Digits => &super::cli::DIGITS,
    }
}

/// The atoms decoded in the current style, and what the model itself reads back from them.
pub struct DecodedAtoms {
    pub style: Vec<f32>,
    /// one fragment per atom, in atom order
    pub fragments: Vec<Vec<f32>>,
    /// the atom each decoded fragment encodes back to
    pub read_atom: Vec<usize>,
    /// the known style nearest to each decoded fragment's style latent
    pub read_style: Vec<Option<usize>>,
    textures: Vec<egui::TextureHandle>,
}

/// The swap view's result: content of one sample, style of another.
struct Swapped {
    key: (usize, usize, usize, u64),
    fragment: Vec<f32>,
    texture: Option<egui::TextureHandle>,
    originals: [Option<egui::TextureHandle>; 2],
    decode_ms: f64,
}

enum BackgroundDone {
    Samples(Domain, Result<EvalSamples, String>),
    Wrote(PathBuf),
    Failed(String),
}

pub struct CodebookTab {
    pub state: CodebookState,
    /// A, the model on show, and B beside it; files and training panels
    pub models: Models<Lab>,
    /// bumps whenever A or B changes, so cached decodings know they are stale
    lab_version: u64,
    pub samples: Option<Arc<EvalSamples>>,
    samples_loading: Option<Domain>,
    pub atoms: Option<DecodedAtoms>,
    atoms_key: Option<(u64, Vec<f32>)>,
    /// B's codebook in the same style (by name, or the same sample's)
    pub atoms_b: Option<DecodedAtoms>,
    swapped: Option<Swapped>,
    commands: Vec<Command>,
    background: Background<BackgroundDone>,
    stft: Stft,
    /// milliseconds from click to the clip being queued, of the last play
    pub last_play_ms: Option<f64>,
}

pub fn default_checkpoint(models_dir: &Path, domain: Domain) -> PathBuf {
    models_dir.join(match domain {
        Domain::Notes => "v3_notes.safetensors",
        Domain::Digits => "v3_digits.safetensors",
    })
}

impl CodebookTab {
    /// B when it shows the same kind of data as A (a codebook of notes beside one of notes).
    fn b(&self) -> Option<&Arc<Lab>> {
        self.models
            .b
            .as_ref()
            .filter(|b| b.domain() == self.state.domain)
    }

    fn set_lab(&mut self, lab: Arc<Lab>, fresh: bool) {
        let domain = lab.domain();
        if fresh || domain != self.state.domain {
            self.state.domain = domain;
            let styles = lab.summary.style_names.len();
            if let StyleChoice::Known(s) = self.state.style
                && s >= styles.max(1)
            {
                self.state.style = StyleChoice::Known(0);
            }
        }
        if self.samples.as_ref().is_some_and(|s| s.domain != domain) {
            self.samples = None;
        }
        self.lab_version += 1;
    }

    /// Load the evaluation samples of the current domain in the background.
    fn ensure_samples(&mut self) {
        let domain = self.state.domain;
        if self.samples.as_ref().is_some_and(|s| s.domain == domain)
            || self.samples_loading == Some(domain)
            || self.models.a.is_none()
        {
            return;
        }
        let spec = self
            .models
            .a
            .as_ref()
            .map(|l| super::cli::data_spec(l, None))
            .unwrap_or_else(|| data::default_spec(domain).into());
        self.samples_loading = Some(domain);
        self.background.run(move || {
            let quiet = |_: String| {};
            BackgroundDone::Samples(
                domain,
                data::load(domain, &spec, &quiet)
                    .map(EvalSamples::from_dataset)
                    .map_err(|e| format!("{e:#}")),
            )
        });
    }

    /// The style latent the atoms are drawn in.
    pub fn style_latent(&self) -> Option<Vec<f32>> {
        self.style_latent_of(self.models.a.as_ref()?)
    }

    /// The chosen style in `lab`'s own style space: the known style of the same name, or its
    /// encoding of the same sample.
    fn style_latent_of(&self, lab: &Lab) -> Option<Vec<f32>> {
        let chosen = match self.state.style {
            StyleChoice::Known(s) => lab.style_latent(s).map(|v| v.to_vec()),
            StyleChoice::Sample(i) => self.sample_style(lab, i),
        };
        // a model fresh from training has no style latents until its first evaluation: show
        // its atoms in the zero style rather than keep showing another model's
        chosen
            .filter(|v| v.len() == lab.cfg.model.style_dim)
            .or_else(|| Some(vec![0.0; lab.cfg.model.style_dim]))
    }

    /// Mean style latent over one evaluation sample's fragments.
    fn sample_style(&self, lab: &Lab, i: usize) -> Option<Vec<f32>> {
        let sample = self.samples.as_ref()?.samples.get(i)?;
        let len = lab.domain().fragment_len();
        let frags: Vec<&[f32]> = (0..sample.len()).map(|f| sample.fragment(f, len)).collect();
        let enc = lab.encode(&frags).ok()?;
        let dims = lab.cfg.model.style_dim;
        let mut mean = vec![0f32; dims];
        for r in &enc.style {
            mean.iter_mut()
                .zip(r)
                .for_each(|(m, v)| *m += v / enc.style.len() as f32);
        }
        Some(mean)
    }

    /// Name of the current style for captions.
    fn style_name(&self) -> String {
        match self.state.style {
            StyleChoice::Known(s) => self
                .models
                .a
                .as_ref()
                .and_then(|l| {
                    let name = l.summary.style_names.get(s)?;
                    let held_out = if s >= l.summary.n_train_styles {
                        " (held out)"
                    } else {
                        ""
                    };
                    Some(format!("{}: {name}{held_out}", l.domain().style_word()))
                })
                .unwrap_or_default(),
            StyleChoice::Sample(i) => self
                .samples
                .as_ref()
                .and_then(|s| s.names.get(i).cloned())
                .map(|n| format!("style of {n}"))
                .unwrap_or_default(),
        }
    }

    /// Decode every atom in the current style when the model or the style changed.
    fn refresh_atoms(&mut self, ctx: &egui::Context, shared: &mut Shared) {
        let Some(lab) = self.models.a.clone() else {
            self.atoms = None;
            return;
        };
        let Some(style) = self.style_latent() else {
            return;
        };
        let key = (self.lab_version, style.clone());
        if self.atoms_key.as_ref() == Some(&key) {
            return;
        }
        self.atoms_key = Some(key);
        let b = self.b().cloned();
        let b_style = b.as_ref().and_then(|b| self.style_latent_of(b));
        let decoded = DecodedAtoms::new(ctx, "v3-atom", &lab, style).and_then(|a| {
            let b = b
                .zip(b_style)
                .map(|(b, s)| DecodedAtoms::new(ctx, "v3-atom-b", &b, s))
                .transpose()?;
            Ok((a, b))
        });
        match decoded {
            Ok((a, b)) => (self.atoms, self.atoms_b) = (Some(a), b),
            Err(e) => shared.error(format!("decoding the codebook failed: {e:#}")),
        }
    }

    /// Decode the content of one sample in the style of another, when the choice changed.
    fn refresh_swap(&mut self, ctx: &egui::Context) {
        let (Some(lab), Some(samples)) = (self.models.a.clone(), self.samples.clone()) else {
            self.swapped = None;
            return;
        };
        let n = samples.samples.len();
        if n == 0 {
            return;
        }
        self.state.swap_content = self.state.swap_content.min(n - 1);
        self.state.swap_style = self.state.swap_style.min(n - 1);
        let frags = lab.domain().fragments();
        self.state.swap_fragment = self.state.swap_fragment.min(frags - 1);
        let key = (
            self.state.swap_content,
            self.state.swap_style,
            self.state.swap_fragment,
            self.lab_version,
        );
        if self.swapped.as_ref().is_some_and(|s| s.key == key) {
            return;
        }
        let len = lab.domain().fragment_len();
        let a = &samples.samples[key.0];
        let b = &samples.samples[key.1];
        let f = key.2.min(a.len().saturating_sub(1));
        let t = Instant::now();
        let Some(style) = self.sample_style(&lab, key.1) else {
            return;
        };
        let Ok(enc) = lab.encode(&[a.fragment(f, len)]) else {
            return;
        };
        let Ok(atoms) = lab.atoms() else { return };
        let atom = atoms[enc.codes[0].min(atoms.len() - 1)].clone();
        let Ok(decoded) = lab.model.decode_rows(&[atom], &[style]) else {
            return;
        };
        let fragment = decoded.into_iter().next().unwrap_or_default();
        let decode_ms = t.elapsed().as_secs_f64() * 1e3;
        let domain = lab.domain();
        let g = f.min(b.len().saturating_sub(1));
        self.swapped = Some(Swapped {
            key,
            texture: Some(texture(ctx, "v3-swap", domain, &fragment)),
            originals: [
                Some(texture(ctx, "v3-swap-content", domain, a.fragment(f, len))),
                Some(texture(ctx, "v3-swap-style", domain, b.fragment(g, len))),
            ],
            fragment,
            decode_ms,
        });
    }

    /// Play atom `a` of A's decoded atoms, or of B's.
    fn play_atom(&mut self, of_b: bool, a: usize, shared: &mut Shared) {
        let started = Instant::now();
        let atoms = if of_b { &self.atoms_b } else { &self.atoms };
        if let Some(f) = atoms.as_ref().and_then(|d| d.fragments.get(a)).cloned() {
            self.play(&f, started, shared);
        }
    }

    fn play(&mut self, fragment: &[f32], started: Instant, shared: &mut Shared) {
        let audio = fragment_audio(&mut self.stft, fragment, SWAP_GL_ITERS);
        let controller = shared.audio.controller();
        let clip = dsp::resample_linear(&audio, SAMPLE_RATE, controller.sample_rate());
        controller.play_clip(&clip);
        self.last_play_ms = Some(started.elapsed().as_secs_f64() * 1e3);
    }

    fn drain_background(&mut self, shared: &mut Shared) {
        for done in self.background.finished(shared) {
            match done {
                BackgroundDone::Samples(domain, result) => {
                    if self.samples_loading == Some(domain) {
                        self.samples_loading = None;
                    }
                    match result {
                        Ok(s) if domain == self.state.domain => {
                            self.samples = Some(Arc::new(s));
                            self.swapped = None;
                            self.atoms_key = None;
                        }
                        Ok(_) => {}
                        Err(e) => shared.error(format!("evaluation samples: {e}")),
                    }
                }
                BackgroundDone::Wrote(p) => shared.info(format!("wrote {}", p.display())),
                BackgroundDone::Failed(e) => shared.error(e),
            }
        }
    }

    /// The data picker and A's held-out metrics.
    fn summary_ui(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            ui.label("data");
            for (domain, label) in [(Domain::Notes, "notes"), (Domain::Digits, "digits")] {
                if ui
                    .selectable_label(self.state.domain == domain, label)
                    .clicked()
                {
                    self.commands.push(Command::SwitchDomain(domain));
                }
            }
            if let Some(summary) = self.models.summary() {
                ui.separator();
                ui.label(summary);
            }
        });
        let Some(lab) = &self.models.a else {
            ui.label("No V3 model loaded: open a checkpoint or train one below.");
            return;
        };
        let m = &lab.summary.metrics;
        if m.is_empty() {
            ui.label("No metrics yet (they appear after the first evaluation).");
            return;
        }
        let g = |k: &str| m.get(k).copied().unwrap_or(f64::NAN);
        ui.label(format!(
            "held-out: purity {:.3} · one-to-one {:.3} · kNN AUC content {:.3}, style {:.3}, content on style {:.3}",
            g("codebook_purity"),
            g("codebook_one_to_one"),
            g("content_knn_auc"),
            g("style_knn_auc"),
            g("content_on_style_knn_auc")
        ));
        if m.contains_key("codebook_purity_ood") {
            ui.label(format!(
                "held-out {}s: purity {:.3} · one-to-one {:.3} · kNN AUC content {:.3}, style {:.3}, content on style {:.3}",
                lab.domain().style_word(),
                g("codebook_purity_ood"),
                g("codebook_one_to_one_ood"),
                g("content_knn_auc_ood"),
                g("style_knn_auc_ood"),
                g("content_on_style_knn_auc_ood")
            ));
        }
    }

    fn style_picker_ui(&mut self, ui: &mut egui::Ui) {
        let Some(lab) = self.models.a.clone() else {
            return;
        };
        let names = &lab.summary.style_names;
        let n_train = lab.summary.n_train_styles;
        let mut chosen = self.state.style;
        egui::ComboBox::from_label("style")
            .selected_text(self.style_name())
            .height(420.0)
            .show_ui(ui, |ui| {
                let word = lab.domain().style_word();
                for (i, name) in names.iter().enumerate() {
                    let label = if i >= n_train {
                        format!("{word}: {name} (held out)")
                    } else {
                        format!("{word}: {name}")
                    };
                    ui.selectable_value(&mut chosen, StyleChoice::Known(i), label);
                }
                if let Some(samples) = &self.samples {
                    ui.separator();
                    for (i, name) in samples.names.iter().enumerate() {
                        ui.selectable_value(
                            &mut chosen,
                            StyleChoice::Sample(i),
                            format!("style of {name}"),
                        );
                    }
                }
            });
        if chosen != self.state.style {
            self.commands.push(Command::PickStyle(chosen));
        }
    }

    fn grid_ui(&mut self, ui: &mut egui::Ui) {
        let (Some(lab), Some(atoms)) = (self.models.a.clone(), self.atoms.as_ref()) else {
            return;
        };
        let domain = lab.domain();
        let order = atom_order(&lab);
        let cols = order.len().clamp(1, 12);
        let gap = 4.0;
        let tile_w = ((ui.available_width() - gap * cols as f32) / cols as f32).clamp(28.0, 72.0);
        let tile_h = match domain {
            Domain::Notes => tile_w * 2.0,
            Domain::Digits => tile_w * 1.5,
        };
        let usage = &lab.summary.usage;
        let mut clicked = None;
        egui::Grid::new("v3_codebook_grid")
            .spacing([gap, gap])
            .show(ui, |ui| {
                for (k, &a) in order.iter().enumerate() {
                    let Some(tex) = atoms.textures.get(a) else {
                        continue;
                    };
                    ui.vertical(|ui| {
                        let image = egui::Image::new(tex)
                            .maintain_aspect_ratio(false)
                            .fit_to_exact_size(egui::vec2(tile_w, tile_h));
                        let read = lab
                            .summary
                            .atom_labels
                            .get(atoms.read_atom[a])
                            .copied()
                            .flatten()
                            .and_then(|l| lab.summary.content_names.get(l).cloned())
                            .unwrap_or_else(|| format!("#{}", atoms.read_atom[a]));
                        let style = atoms.read_style[a]
                            .and_then(|s| lab.summary.style_names.get(s).cloned())
                            .unwrap_or_default();
                        let hover = format!(
                            "atom {}: used by {:.1}% of held-out fragments; decoded, it reads back as {read} · {style}{}",
                            atom_caption(&lab, a),
                            100.0 * usage.get(a).copied().unwrap_or(0.0),
                            if domain == Domain::Notes { " (click to play)" } else { "" }
                        );
                        let response = ui
                            .add(egui::Button::image(image).frame(false))
                            .on_hover_text(hover);
                        if response.clicked() {
                            clicked = Some(a);
                        }
                        ui.label(egui::RichText::new(atom_caption(&lab, a)).small());
                        let u = usage.get(a).copied().unwrap_or(0.0) as f32;
                        ui.add(
                            egui::ProgressBar::new((u * order.len() as f32).min(1.0))
                                .desired_width(tile_w)
                                .text(egui::RichText::new(format!("{:.0}%", 100.0 * u)).small()),
                        );
                    });
                    if (k + 1) % cols == 0 {
                        ui.end_row();
                    }
                }
            });
        if let Some(a) = clicked
            && domain == Domain::Notes
        {
            self.commands.push(Command::PlayAtom(a));
        }
        if domain == Domain::Notes {
            let ms = self
                .last_play_ms
                .map(|m| format!(" · last click to sound queued: {m:.1} ms"))
                .unwrap_or_default();
            ui.label(
                egui::RichText::new(format!(
                    "Spectrograms 0–4 kHz, 1 s. Click an atom to hear it{ms}. The bar is the atom's share of held-out fragments (full = 1/{}).",
                    order.len()
                ))
                .small()
                .weak(),
            );
        }
    }

    /// B's codebook in the same style, compact: one row of tiles in B's own atom order.
    fn grid_b_ui(&mut self, ui: &mut egui::Ui) {
        let (Some(b), Some(atoms)) = (self.b().cloned(), self.atoms_b.as_ref()) else {
            if self.models.b.is_some() && self.b().is_none() {
                ui.label("B holds another kind of data than A: open a B of the same kind.");
            }
            return;
        };
        ui.label(format!(
            "B's codebook in the same style ({})",
            self.style_name()
        ));
        let order = atom_order(&b);
        let cols = order.len().clamp(1, 12);
        let tile_w = ((ui.available_width() - 4.0 * cols as f32) / cols as f32).clamp(20.0, 56.0);
        let tile_h = match b.domain() {
            Domain::Notes => tile_w * 2.0,
            Domain::Digits => tile_w * 1.5,
        };
        let mut clicked = None;
        egui::Grid::new("v3_codebook_grid_b")
            .spacing([4.0, 4.0])
            .show(ui, |ui| {
                for (k, &a) in order.iter().enumerate() {
                    let Some(tex) = atoms.textures.get(a) else {
                        continue;
                    };
                    let image = egui::Image::new(tex)
                        .maintain_aspect_ratio(false)
                        .fit_to_exact_size(egui::vec2(tile_w, tile_h));
                    if ui
                        .add(egui::Button::image(image).frame(false))
                        .on_hover_text(format!("B atom {}", atom_caption(&b, a)))
                        .clicked()
                    {
                        clicked = Some(a);
                    }
                    if (k + 1) % cols == 0 {
                        ui.end_row();
                    }
                }
            });
        if let Some(a) = clicked
            && b.domain() == Domain::Notes
        {
            self.commands.push(Command::PlayAtomB(a));
        }
    }

    fn matrix_ui(&self, ui: &mut egui::Ui) {
        let Some(lab) = &self.models.a else { return };
        let s = &lab.summary;
        if s.matrix.is_empty() {
            return;
        }
        let order = atom_order(lab);
        let cols = s.content_names.len();
        let cell = ((ui.available_width() - 60.0) / cols.max(1) as f32).clamp(10.0, 26.0);
        let size = egui::vec2(60.0 + cell * cols as f32, 16.0 + cell * order.len() as f32);
        let (response, painter) = ui.allocate_painter(size, egui::Sense::hover());
        let origin = response.rect.min;
        let text = ui.visuals().text_color();
        let font = egui::FontId::proportional(10.0);
        for (j, name) in s.content_names.iter().enumerate() {
            painter.text(
                origin + egui::vec2(60.0 + cell * (j as f32 + 0.5), 8.0),
                egui::Align2::CENTER_CENTER,
                name,
                font.clone(),
                text,
            );
        }
        for (i, &a) in order.iter().enumerate() {
            let y = 16.0 + cell * i as f32;
            painter.text(
                origin + egui::vec2(56.0, y + cell * 0.5),
                egui::Align2::RIGHT_CENTER,
                atom_caption(lab, a),
                font.clone(),
                text,
            );
            let row = s.matrix.get(a).cloned().unwrap_or_default();
            let total: f64 = row.iter().sum();
            for (j, v) in row.iter().enumerate() {
                let share = if total > 0.0 { (v / total) as f32 } else { 0.0 };
                let c = crate::figures::viridis(share);
                let rect = egui::Rect::from_min_size(
                    origin + egui::vec2(60.0 + cell * j as f32, y),
                    egui::vec2(cell - 1.0, cell - 1.0),
                );
                painter.rect_filled(rect, 0.0, egui::Color32::from_rgb(c[0], c[1], c[2]));
            }
        }
        let m = |k: &str| s.metrics.get(k).copied().unwrap_or(f64::NAN);
        ui.label(format!(
            "rows: atoms, columns: {}s; colour: share of the atom's held-out fragments. Purity {:.3}, one-to-one {:.3}",
            lab.domain().content_word(),
            m("codebook_purity"),
            m("codebook_one_to_one")
        ));
    }

    fn swap_ui(&mut self, ui: &mut egui::Ui) {
        let Some(samples) = self.samples.clone() else {
            let text = if self.samples_loading.is_some() {
                "preparing evaluation samples…"
            } else {
                "no evaluation samples"
            };
            ui.label(text);
            return;
        };
        let Some(lab) = self.models.a.clone() else {
            return;
        };
        let pick = |ui: &mut egui::Ui, label: &str, value: &mut usize| {
            egui::ComboBox::from_label(label)
                .selected_text(samples.names.get(*value).cloned().unwrap_or_default())
                .height(400.0)
                .show_ui(ui, |ui| {
                    for (i, name) in samples.names.iter().enumerate() {
                        ui.selectable_value(value, i, name);
                    }
                });
        };
        pick(ui, "content of", &mut self.state.swap_content);
        pick(ui, "in the style of", &mut self.state.swap_style);
        let frags = lab.domain().fragments();
        let names = &lab.summary.content_names;
        ui.add(
            egui::Slider::new(&mut self.state.swap_fragment, 0..=frags - 1)
                .text("fragment")
                .custom_formatter(|v, _| {
                    let i = v as usize;
                    let label = samples
                        .samples
                        .get(self.state.swap_content)
                        .and_then(|s| s.contents.get(i))
                        .and_then(|c| names.get(*c))
                        .cloned()
                        .unwrap_or_default();
                    format!("{i} ({label})")
                }),
        );
        let Some(sw) = &self.swapped else { return };
        let domain = lab.domain();
        let (w, h) = match domain {
            Domain::Notes => (64.0, 128.0),
            Domain::Digits => (64.0, 96.0),
        };
        ui.horizontal(|ui| {
            for (tex, caption) in [
                (&sw.originals[0], "content"),
                (&sw.originals[1], "style"),
                (&sw.texture, "swap"),
            ] {
                ui.vertical(|ui| {
                    if let Some(t) = tex {
                        ui.add(
                            egui::Image::new(t)
                                .maintain_aspect_ratio(false)
                                .fit_to_exact_size(egui::vec2(w, h)),
                        );
                    }
                    ui.label(caption);
                });
            }
            if domain == Domain::Notes {
                ui.vertical(|ui| {
                    if ui.button("Play swap").clicked() {
                        self.commands.push(Command::PlaySwap);
                    }
                    if ui.button("Play content").clicked() {
                        self.commands.push(Command::PlayFragment {
                            sample: self.state.swap_content,
                            fragment: self.state.swap_fragment,
                        });
                    }
                    if ui.button("Play style").clicked() {
                        self.commands.push(Command::PlayFragment {
                            sample: self.state.swap_style,
                            fragment: self.state.swap_fragment,
                        });
                    }
                });
            }
        });
        ui.label(
            egui::RichText::new(format!(
                "encoded and decoded in {:.1} ms{}",
                sw.decode_ms,
                self.last_play_ms
                    .map(|m| format!(" · last play: {m:.1} ms to the clip queued"))
                    .unwrap_or_default()
            ))
            .small()
            .weak(),
        );
    }

    fn scatter_ui(&self, ui: &mut egui::Ui) {
        let Some(lab) = &self.models.a else { return };
        let s = &lab.summary;
        if s.content_points.is_empty() {
            return;
        }
        let half = (ui.available_width() - 8.0) / 2.0;
        ui.horizontal(|ui| {
            for (content, id) in [(true, "v3_content_pca"), (false, "v3_style_pca")] {
                ui.vertical(|ui| {
                    ui.set_width(half);
                    let (points, names) = if content {
                        (&s.content_points, &s.content_names)
                    } else {
                        (&s.style_points, &s.style_names)
                    };
                    ui.label(if content {
                        format!("content latents (PCA) by {}", lab.domain().content_word())
                    } else {
                        format!("style latents (PCA) by {}", lab.domain().style_word())
                    });
                    // The legend is a column beside the plot, never over its points: the
                    // names are long (instruments) and the clusters reach every edge.
                    let small = egui::TextStyle::Small.resolve(ui.style());
                    let legend_width = names
                        .iter()
                        .map(|n| {
                            ui.fonts_mut(|f| {
                                f.layout_no_wrap(n.clone(), small.clone(), egui::Color32::WHITE)
                                    .size()
                                    .x
                            })
                        })
                        .fold(0.0f32, f32::max)
                        + 24.0;
                    let colour = |i: usize| {
                        let (r, g, b) = crate::figures::category_color(i, names.len());
                        egui::Color32::from_rgb(r, g, b)
                    };
                    ui.horizontal_top(|ui| {
                        Plot::new(id)
                            .height(300.0)
                            .width((half - legend_width).max(120.0))
                            .show_axes([false, false])
                            .allow_scroll(false)
                            .show(ui, |plot| {
                                for (i, name) in names.iter().enumerate() {
                                    let pts: PlotPoints = points
                                        .iter()
                                        .filter(|p| {
                                            (if content { p.content } else { p.style }) as usize
                                                == i
                                        })
                                        .map(|p| [p.x as f64, p.y as f64])
                                        .collect();
                                    plot.points(
                                        Points::new(name.clone(), pts).radius(2.5).color(colour(i)),
                                    );
                                }
                            });
                        egui::ScrollArea::vertical()
                            .id_salt((id, "legend"))
                            .max_height(300.0)
                            .show(ui, |ui| {
                                ui.vertical(|ui| {
                                    ui.spacing_mut().item_spacing.y = 1.0;
                                    ui.spacing_mut().interact_size.y = 14.0;
                                    for (i, name) in names.iter().enumerate() {
                                        ui.horizontal(|ui| {
                                            let (dot, _) = ui.allocate_exact_size(
                                                egui::vec2(10.0, 10.0),
                                                egui::Sense::hover(),
                                            );
                                            ui.painter().circle_filled(
                                                dot.center(),
                                                4.0,
                                                colour(i),
                                            );
                                            ui.label(egui::RichText::new(name).small());
                                        });
                                    }
                                });
                            });
                    });
                });
            }
        });
    }
}

impl DecodedAtoms {
    /// Every atom of `lab` decoded in `style`, with its texture and what `lab` reads back.
    fn new(ctx: &egui::Context, name: &str, lab: &Lab, style: Vec<f32>) -> anyhow::Result<Self> {
        let (fragments, read_atom, read_style) = decode_atoms(lab, &style)?;
        let textures = fragments
            .iter()
            .enumerate()
            .map(|(a, f)| texture(ctx, &format!("{name}-{a}"), lab.domain(), f))
            .collect();
        Ok(Self {
            style,
            fragments,
            read_atom,
            read_style,
            textures,
        })
    }
}

/// Every atom decoded in `style`, and what the model reads back from each: its nearest atom and
/// the known style nearest its style latent.
#[allow(clippy::type_complexity)]
pub fn decode_atoms(
    lab: &Lab,
    style: &[f32],
) -> anyhow::Result<(Vec<Vec<f32>>, Vec<usize>, Vec<Option<usize>>)> {
    let fragments = lab.decode_atoms(style)?;
    let refs: Vec<&[f32]> = fragments.iter().map(|f| f.as_slice()).collect();
    let enc = lab.encode(&refs)?;
    let styles = enc
        .style
        .iter()
        .map(|s| nearest(&lab.summary.style_latents, s))
        .collect();
    Ok((fragments, enc.codes, styles))
}

fn texture(
    ctx: &egui::Context,
    name: &str,
    domain: Domain,
    fragment: &[f32],
) -> egui::TextureHandle {
    let (w, h, rgb) = fragment_image(domain, fragment);
    let image = egui::ColorImage::from_rgb([w, h], &rgb);
    ctx.load_texture(name, image, egui::TextureOptions::NEAREST)
}

impl LabTab for CodebookTab {
    const TITLE: &'static str = "Codebook";
    // the settings are of one domain's training: `restore` takes them for that domain only
    const RESTORES_SETTINGS: bool = false;
    hold_models!(Lab, CodebookState, Command);

    fn new(shared: &mut Shared) -> Self {
        let path = default_checkpoint(&shared.models_dir, Domain::Notes);
        Self {
            state: CodebookState::default(),
            models: crate::registry::models(
                family(Domain::Notes),
                "codebook",
                FilesPanel::new(&path)
                    .with_figure("codebook grid", "codebook.png", &["Export grid"])
                    .with_figure("code-by-label", "code_by_label.png", &["Export matrix"])
                    .with_figure(
                        "latent scatter",
                        "latents.png",
                        &["Export content", "Export style"],
                    ),
                training_spec(Domain::Notes),
                CodebookState::default().models.train,
            ),
            lab_version: 0,
            samples: None,
            samples_loading: None,
            atoms: None,
            atoms_key: None,
            atoms_b: None,
            swapped: None,
            commands: Vec::new(),
            background: Background::default(),
            stft: Stft::new(),
            last_play_ms: None,
        }
        .with_shipped(&path, shared)
    }

    fn apply(&mut self, command: Command, shared: &mut Shared) {
        match command {
            Command::SwitchDomain(domain) => {
                if domain != self.state.domain {
                    self.state.domain = domain;
                    self.state.style = StyleChoice::Known(0);
                    let panel = &mut self.models.panel;
                    if !panel.is_running() {
                        panel.spec = training_spec(domain);
                        panel.set_start(starter(domain));
                        panel.settings.data = data::default_spec(domain).into();
                    }
                    let path = default_checkpoint(&shared.models_dir, domain);
                    self.models.a = None;
                    self.atoms = None;
                    self.atoms_key = None;
                    self.swapped = None;
                    self.samples = None;
                    self.models.files.checkpoint.text = path.display().to_string();
                    if path.exists() {
                        let opened = self.models.open(&path, shared);
                        self.changed(opened);
                    } else {
                        shared.info(format!(
                            "no {} model at {}: train one below",
                            super::family_name(domain),
                            path.display()
                        ));
                    }
                }
            }
            Command::PickStyle(choice) => {
                self.state.style = choice;
            }
            Command::PlayAtom(a) => self.play_atom(false, a, shared),
            Command::PlayAtomB(a) => self.play_atom(true, a, shared),
            Command::PlaySwap => {
                let started = Instant::now();
                if let Some(f) = self.swapped.as_ref().map(|s| s.fragment.clone()) {
                    self.play(&f, started, shared);
                }
            }
            Command::PlayFragment { sample, fragment } => {
                let started = Instant::now();
                let len = self.state.domain.fragment_len();
                if let Some(f) = self
                    .samples
                    .as_ref()
                    .and_then(|s| s.samples.get(sample))
                    .filter(|s| fragment < s.len())
                    .map(|s| s.fragment(fragment, len).to_vec())
                {
                    self.play(&f, started, shared);
                }
            }
            Command::Export(kind, p) => {
                // A's, and B's beside it when one is open, each in its own take on the
                // chosen style
                let drawn: Vec<_> = self
                    .models
                    .drawn()
                    .into_iter()
                    .map(|(lab, label)| {
                        let style = self.style_latent_of(&lab);
                        ((lab, style), label)
                    })
                    .collect();
                if drawn.is_empty() {
                    return;
                }
                let name = self.style_name();
                self.background.run(move || {
                    let saved = crate::figures::save_each(&drawn, &p, |(lab, style)| match kind {
                        ExportKind::Codebook => {
                            codebook_figure(lab, style.as_deref().map(|s| (name.as_str(), s)))
                        }
                        ExportKind::Matrix => Ok(matrix_figure(lab)),
                        ExportKind::Scatter { content } => Ok(latent_figure(lab, content)),
                    });
                    match saved {
                        Ok(()) => BackgroundDone::Wrote(p),
                        Err(e) => BackgroundDone::Failed(format!("{}: {e:#}", p.display())),
                    }
                });
            }
        }
    }

    fn export(&mut self, row: usize, action: usize, path: PathBuf, shared: &mut Shared) {
        let kind = match row {
            0 => ExportKind::Codebook,
            1 => ExportKind::Matrix,
            _ => ExportKind::Scatter {
                content: action == 0,
            },
        };
        self.apply(Command::Export(kind, path), shared);
    }

    fn changed(&mut self, changed: impl IntoIterator<Item = Changed>) {
        for c in changed {
            if let Changed::A { fresh } = c
                && let Some(lab) = self.models.a.clone()
            {
                // a snapshot of the other domain's training is a new model all the same
                let fresh = fresh || lab.domain() != self.state.domain;
                self.set_lab(lab, fresh);
            }
            self.lab_version += 1;
            self.atoms_key = None;
        }
    }

    fn logic(&mut self, ctx: &egui::Context, shared: &mut Shared) {
        self.drain_background(shared);
        self.ensure_samples();
        self.refresh_atoms(ctx, shared);
        self.refresh_swap(ctx);
    }

    fn header_ui(&mut self, ui: &mut egui::Ui) {
        self.summary_ui(ui);
        ui.separator();
    }

    fn columns_ui(&mut self, left: &mut egui::Ui, right: &mut egui::Ui) {
        left.heading("Codebook");
        self.style_picker_ui(left);
        self.grid_ui(left);
        self.grid_b_ui(left);
        left.separator();
        left.heading("Code by label");
        self.matrix_ui(left);
        right.heading("Swap content and style");
        self.swap_ui(right);
        right.separator();
        right.heading("Latents");
        self.scatter_ui(right);
        right.separator();
        right.heading("Training");
        right.label(format!(
            "trains {} (the tab's domain)",
            super::family_name(self.state.domain)
        ));
        self.models.panel.ui(right);
        right.separator();
        self.models.panels_ui(right, false, |_| true);
    }

    fn commands_applied(&mut self, _shared: &mut Shared) {
        // decoding needs the context for its textures: `logic` does it before the next frame
        self.ensure_samples();
    }

    fn working(&self) -> bool {
        !self.background.is_empty()
    }

    fn restore(&mut self, s: CodebookState) {
        let same_model = self
            .models
            .a
            .as_ref()
            .is_some_and(|l| l.domain() == s.domain);
        if same_model {
            self.state.style = s.style;
            self.state.swap_content = s.swap_content;
            self.state.swap_style = s.swap_style;
            self.state.swap_fragment = s.swap_fragment;
        }
        if s.domain == self.state.domain {
            self.models.panel.restore(s.models.train);
        }
        self.atoms_key = None;
    }
}
