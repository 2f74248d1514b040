//! The "Class x Pose" tab: pick a class, drag the equivariant (pose) sliders and see the
//! digit change pose but not class; the same pose drawn in every class; pick a test digit or
//! draw one with the mouse to see its reconstruction, class probabilities and its pose carried
//! to every class; train in the background; export the class x pose traversal grid.

use std::path::PathBuf;
use std::sync::Arc;

use egui::{Color32, ColorImage, TextureHandle, TextureOptions, Vec2};
use serde::{Deserialize, Serialize};

use super::train::TrainConfig;
use super::{DEFAULT_FILE, FAMILY, Lab};
use crate::app::{
    Background, Changed, FilesPanel, LabTab, Models, ModelsState, Shared, TrainSettings,
    TrainingSpec, hold_models, tab_state,
};
use crate::digits::classifier::DigitClassifier;
use crate::digits::render::{centre_drawing, stamp_segment};
use crate::digits::{DigitSet, PIXELS, SIDE};

pub const PRESETS: [&str; 2] = ["fast", "paper"];
/// Slider range of each equivariant dimension: +-3 prior standard deviations.
const POSE_RANGE: f32 = 3.0;

/// What the tab remembers across restarts.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct ClassPoseState {
    /// checkpoint, training settings, files and B paths
    #[serde(flatten)]
    pub models: ModelsState,
    pub class: usize,
    pub pose: Vec<f32>,
    /// labelled training images; 0 = all (supervised)
    pub labels: usize,
    pub traversal_dim: usize,
}

tab_state!(ClassPoseState);

impl ClassPoseState {
    /// The pose, class and traversal dimension brought within what `lab` has; the pose at
    /// the origin when `reset_pose` or when its length does not fit.
    fn fit(&mut self, lab: &Lab, reset_pose: bool) {
        let e = lab.equivariant_dims();
        if reset_pose || self.pose.len() != e {
            self.pose = vec![0.0; e];
        }
        self.class = self.class.min(lab.classes() - 1);
        self.traversal_dim = self.traversal_dim.min(e - 1);
    }
}

impl Default for ClassPoseState {
    fn default() -> Self {
        Self {
            class: 0,
            pose: Vec::new(),
            models: ModelsState::new(TrainSettings::new(
                "fast",
                TrainConfig::default().steps,
                "digits",
            )),
            labels: 0,
            traversal_dim: 0,
        }
    }
}

/// Where the analysed input came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputSource {
    Picked(usize),
    Drawn,
}

/// Side effects the widgets ask for; applied in one place after drawing.
pub enum Command {
    SetClass(usize),
    ResetPose,
    Pick(usize),
    AnalyseDrawing,
    ClearDrawing,
    UseInputPose,
}

/// What the model makes of one input image.
pub struct Analysis {
    pub source: InputSource,
    pub image: Vec<f32>,
    pub probabilities: Vec<f32>,
    pub pose: Vec<f32>,
    pub reconstruction: Vec<f32>,
    /// the input's pose drawn in every class
    pub carried: Vec<Vec<f32>>,
}

/// The panel's choices for this family.
fn training_spec() -> TrainingSpec {
    TrainingSpec {
        presets: &PRESETS,
        data_choices: vec!["digits".into()],
        data_hint: "digits, idx:DIR, idx:IMAGES,LABELS, csv:PATH",
        metrics: &[
            ("accuracy", "test accuracy"),
            ("swap_accuracy", "swap accuracy"),
        ],
        single_threaded: true,
        ..TrainingSpec::default()
    }
    .with_preset_steps(|p| Ok(TrainConfig::preset(p)?.steps))
}

pub struct ClassPoseTab {
    pub state: ClassPoseState,
    /// A, the model on show, and B beside it; files and training panels
    pub models: Models<Lab>,
    /// the independent classifier, when models/ has one: reads what the decoder draws
    pub judge: Option<Arc<DigitClassifier>>,
    picker: DigitSet,
    canvas: [f32; PIXELS],
    canvas_last: Option<egui::Pos2>,
    analysis: Option<Analysis>,
    blank_drawing: bool,
    /// the current (class, pose) drawn, and the same pose in every class
    decoded: Option<Vec<f32>>,
    /// what the independent classifier reads in `decoded`: (class, probability)
    decoded_reading: Option<(u8, f32)>,
    every_class: Vec<Vec<f32>>,
    /// B's drawing of the same class and pose, and of the pose in every class
    decoded_b: Option<Vec<f32>>,
    every_class_b: Vec<Vec<f32>>,
    decoded_for: Option<(usize, Vec<f32>)>,
    /// the usage (mean KL) of each equivariant dimension on the picker digits
    dim_use: Vec<f32>,
    textures: Textures,
    commands: Vec<Command>,
    background: Background<Result<PathBuf, String>>,
}

#[derive(Default)]
struct Textures {
    decoded: Option<TextureHandle>,
    every_class: Vec<TextureHandle>,
    decoded_b: Option<TextureHandle>,
    every_class_b: Vec<TextureHandle>,
    picker: Vec<TextureHandle>,
    input: Option<TextureHandle>,
    reconstruction: Option<TextureHandle>,
    carried: Vec<TextureHandle>,
    dirty: bool,
}

fn color_image(pixels: &[f32]) -> ColorImage {
    let grey: Vec<u8> = pixels
        .iter()
        .map(|p| ((1.0 - p.clamp(0.0, 1.0)) * 255.0).round() as u8)
        .collect();
    ColorImage::from_gray([SIDE, SIDE], &grey)
}

fn texture(ctx: &egui::Context, name: &str, pixels: &[f32]) -> TextureHandle {
    ctx.load_texture(name, color_image(pixels), TextureOptions::NEAREST)
}

fn show(ui: &mut egui::Ui, t: &TextureHandle, side: f32) -> egui::Response {
    ui.add(
        egui::Image::from_texture(egui::load::SizedTexture::new(t.id(), Vec2::splat(side)))
            .sense(egui::Sense::click()),
    )
}

impl ClassPoseTab {
    fn set_lab(&mut self, lab: Arc<Lab>, reset_pose: bool) {
        self.state.fit(&lab, reset_pose);
        let e = lab.equivariant_dims();
        self.dim_use = dims_use(&lab, &self.picker).unwrap_or_else(|_| vec![0.0; e]);
        self.decoded_for = None;
        if let Some(a) = self.analysis.take() {
            self.analyse(a.source, a.image);
        }
    }

    /// The image the decoder draws for the current class and pose (ink in [0, 1]).
    pub fn decoded_image(&self) -> Option<&[f32]> {
        self.decoded.as_deref()
    }

    /// The current analysis of a picked or drawn digit.
    pub fn analysis(&self) -> Option<&Analysis> {
        self.analysis.as_ref()
    }

    /// Paint a stroke on the drawing canvas (canvas pixels, 0..28), as the mouse does.
    pub fn draw_stroke(&mut self, points: &[(f32, f32)]) {
        for w in points.windows(2) {
            stamp_segment(&mut self.canvas, w[0], w[1], 1.1);
        }
        self.commands.push(Command::AnalyseDrawing);
    }

    /// B's drawing of the same class and pose, and of the pose in every class.
    pub fn decoded_image_b(&self) -> Option<&[f32]> {
        self.decoded_b.as_deref()
    }

    fn refresh_decoded(&mut self, shared: &mut Shared) {
        let Some(lab) = self.models.a.clone() else {
            return;
        };
        let key = (self.state.class, self.state.pose.clone());
        if self.decoded_for.as_ref() == Some(&key) {
            return;
        }
        let drawn = draw_class_and_all(&lab, self.state.class, &self.state.pose).and_then(|a| {
            let b = self
                .models
                .b
                .as_ref()
                .map(|b| {
                    // B may have another number of pose dimensions: the shared ones move it
                    let mut pose = self.state.pose.clone();
                    pose.resize(b.equivariant_dims(), 0.0);
                    draw_class_and_all(b, self.state.class.min(b.classes() - 1), &pose)
                })
                .transpose()?;
            Ok((a, b))
        });
        match drawn {
            Ok(((one, all), b)) => {
                self.decoded = Some(one);
                self.every_class = all;
                (self.decoded_b, self.every_class_b) = match b {
                    Some((one, all)) => (Some(one), all),
                    None => (None, Vec::new()),
                };
                self.decoded_reading = self.decoded.as_deref().and_then(|d| self.judge_reading(d));
                self.decoded_for = Some(key);
                self.textures.dirty = true;
            }
            Err(e) => shared.error(format!("decoding failed: {e:#}")),
        }
    }

    fn analyse(&mut self, source: InputSource, image: Vec<f32>) {
        let Some(lab) = &self.models.a else {
            self.analysis = Some(Analysis {
                source,
                image,
                probabilities: Vec::new(),
                pose: Vec::new(),
                reconstruction: vec![0.0; PIXELS],
                carried: Vec::new(),
            });
            self.textures.dirty = true;
            return;
        };
        let result = (|| -> anyhow::Result<Analysis> {
            let probabilities = lab.class_probabilities(&image)?;
            let pose = lab.pose_of(&image)?;
            let best = probabilities
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map_or(0, |(c, _)| c as u32);
            let reconstruction = lab
                .draw(&[(best, pose.as_slice())])?
                .pop()
                .unwrap_or_default();
            let carried = lab.in_every_class(&pose)?;
            Ok(Analysis {
                source,
                image: image.clone(),
                probabilities,
                pose,
                reconstruction,
                carried,
            })
        })();
        self.analysis = result.ok();
        self.textures.dirty = true;
    }

    fn drain_background(&mut self, shared: &mut Shared) {
        for done in self.background.finished(shared) {
            match done {
                Ok(p) => shared.info(format!("wrote {}", p.display())),
                Err(e) => shared.error(e),
            }
        }
    }

    /// The analysis of a drawing that is gone (cleared, or blank) goes with it.
    fn forget_drawing_analysis(&mut self) {
        if self
            .analysis
            .as_ref()
            .is_some_and(|a| a.source == InputSource::Drawn)
        {
            self.analysis = None;
        }
    }

    fn upload_textures(&mut self, ctx: &egui::Context) {
        if !self.textures.dirty {
            return;
        }
        let t = &mut self.textures;
        let one = |d: &Option<Vec<f32>>, name| d.as_ref().map(|d| texture(ctx, name, d));
        let per_class = |images: &[Vec<f32>], prefix: &str| {
            images
                .iter()
                .enumerate()
                .map(|(c, d)| texture(ctx, &format!("{prefix}{c}"), d))
                .collect()
        };
        t.decoded = one(&self.decoded, "ievae-decoded");
        t.every_class = per_class(&self.every_class, "ievae-class-");
        t.decoded_b = one(&self.decoded_b, "ievae-decoded-b");
        t.every_class_b = per_class(&self.every_class_b, "ievae-class-b-");
        if t.picker.len() != self.picker.len() {
            t.picker = (0..self.picker.len())
                .map(|i| texture(ctx, &format!("ievae-pick-{i}"), self.picker.image(i)))
                .collect();
        }
        t.input = self
            .analysis
            .as_ref()
            .map(|a| texture(ctx, "ievae-input", &a.image));
        t.reconstruction = self
            .analysis
            .as_ref()
            .map(|a| texture(ctx, "ievae-recon", &a.reconstruction));
        t.carried = self
            .analysis
            .iter()
            .flat_map(|a| a.carried.iter())
            .enumerate()
            .map(|(c, d)| texture(ctx, &format!("ievae-carried-{c}"), d))
            .collect();
        t.dirty = false;
    }

    fn judge_reading(&self, image: &[f32]) -> Option<(u8, f32)> {
        let judge = self.judge.as_ref()?;
        let p = judge.probabilities(image).ok()?.pop()?;
        p.iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(c, v)| (c as u8, *v))
    }

    fn pose_ui(&mut self, ui: &mut egui::Ui) {
        let Some(lab) = self.models.a.clone() else {
            ui.label("No model loaded: open a checkpoint or train one below.");
            return;
        };
        ui.horizontal(|ui| {
            ui.label("class");
            for c in 0..lab.classes() {
                let button =
                    egui::Button::new(egui::RichText::new(c.to_string()).monospace().size(16.0))
                        .selected(self.state.class == c)
                        .min_size(Vec2::new(28.0, 26.0));
                if ui.add(button).clicked() {
                    self.commands.push(Command::SetClass(c));
                }
            }
        });
        ui.horizontal(|ui| {
            let side = if self.textures.decoded_b.is_some() {
                120.0
            } else {
                196.0
            };
            for (name, t) in [
                ("A", &self.textures.decoded),
                ("B", &self.textures.decoded_b),
            ] {
                if let Some(t) = t {
                    ui.vertical(|ui| {
                        if self.textures.decoded_b.is_some() {
                            ui.label(name);
                        }
                        show(ui, t, side);
                    });
                }
            }
            ui.vertical(|ui| {
                ui.label("equivariant code z (pose): the class never changes");
                ui.spacing_mut().slider_width = 220.0;
                for (d, v) in self.state.pose.iter_mut().enumerate() {
                    let used = self.dim_use.get(d).copied().unwrap_or(0.0);
                    ui.add(
                        egui::Slider::new(v, -POSE_RANGE..=POSE_RANGE)
                            .text(format!("z{d}"))
                            .fixed_decimals(2),
                    )
                    .on_hover_text(format!(
                        "mean KL {used:.2} nats on test digits (how much the model uses it)"
                    ));
                }
                ui.horizontal(|ui| {
                    if ui.button("Reset pose").clicked() {
                        self.commands.push(Command::ResetPose);
                    }
                    if let Some((c, p)) = self.decoded_reading {
                        ui.label(format!(
                            "independent classifier reads {c} ({:.0}%)",
                            p * 100.0
                        ));
                    }
                });
            });
        });
        ui.label("the same pose in every class");
        ui.horizontal(|ui| {
            for t in &self.textures.every_class {
                show(ui, t, 52.0);
            }
        });
        if !self.textures.every_class_b.is_empty() {
            ui.label("B: the same pose in every class");
            ui.horizontal(|ui| {
                for t in &self.textures.every_class_b {
                    show(ui, t, 52.0);
                }
            });
        }
    }

    fn input_ui(&mut self, ui: &mut egui::Ui) {
        ui.label("test digits by writers the model never saw: click one");
        let cols = 10;
        egui::Grid::new("ievae-picker")
            .spacing([2.0, 2.0])
            .show(ui, |ui| {
                for (i, t) in self.textures.picker.iter().enumerate() {
                    let r = show(ui, t, 30.0);
                    if r.clicked() {
                        self.commands.push(Command::Pick(i));
                    }
                    if (i + 1) % cols == 0 {
                        ui.end_row();
                    }
                }
            });
        ui.horizontal(|ui| {
            ui.vertical(|ui| {
                ui.label("or draw one");
                self.canvas_ui(ui);
                if ui.button("Clear drawing").clicked() {
                    self.commands.push(Command::ClearDrawing);
                }
            });
            ui.vertical(|ui| self.analysis_ui(ui));
        });
    }

    fn canvas_ui(&mut self, ui: &mut egui::Ui) {
        let cell = 5.0;
        let side = cell * SIDE as f32;
        let (response, painter) =
            ui.allocate_painter(Vec2::splat(side), egui::Sense::click_and_drag());
        response
            .widget_info(|| egui::WidgetInfo::labeled(egui::Role::Canvas, true, "drawing canvas"));
        let rect = response.rect;
        painter.rect_filled(rect, 0.0, Color32::WHITE);
        for y in 0..SIDE {
            for x in 0..SIDE {
                let v = self.canvas[y * SIDE + x];
                if v > 0.01 {
                    let g = ((1.0 - v) * 255.0) as u8;
                    let min = rect.min + Vec2::new(x as f32 * cell, y as f32 * cell);
                    painter.rect_filled(
                        egui::Rect::from_min_size(min, Vec2::splat(cell)),
                        0.0,
                        Color32::from_gray(g),
                    );
                }
            }
        }
        painter.rect_stroke(
            rect,
            0.0,
            egui::Stroke::new(1.0, ui.visuals().widgets.noninteractive.bg_stroke.color),
            egui::StrokeKind::Inside,
        );
        if let Some(pos) = response.interact_pointer_pos()
            && (response.dragged() || response.clicked())
        {
            let to = ((pos - rect.min) / cell).to_pos2();
            let from = self.canvas_last.unwrap_or(to);
            self.draw_stroke(&[(from.x, from.y), (to.x, to.y)]);
            self.canvas_last = Some(to);
        }
        if response.drag_stopped() || response.clicked() || !response.dragged() {
            self.canvas_last = None;
        }
        if self.blank_drawing {
            ui.colored_label(
                ui.visuals().warn_fg_color,
                "the canvas is blank: draw a digit",
            );
        }
    }

    fn analysis_ui(&mut self, ui: &mut egui::Ui) {
        let Some(a) = &self.analysis else {
            ui.label("pick or draw a digit to see its reconstruction and class");
            return;
        };
        ui.horizontal(|ui| {
            ui.vertical(|ui| {
                ui.label(match a.source {
                    InputSource::Picked(i) => format!("test digit {i}"),
                    InputSource::Drawn => "your drawing (centred)".into(),
                });
                if let Some(t) = &self.textures.input {
                    show(ui, t, 84.0);
                }
            });
            ui.vertical(|ui| {
                ui.label("reconstruction");
                if let Some(t) = &self.textures.reconstruction {
                    show(ui, t, 84.0);
                }
            });
            ui.vertical(|ui| {
                ui.label("q(y|x)");
                for (c, p) in a.probabilities.iter().enumerate() {
                    ui.horizontal(|ui| {
                        ui.monospace(format!("{c}"));
                        ui.add(
                            egui::ProgressBar::new(*p)
                                .desired_width(110.0)
                                .text(format!("{:.1}%", p * 100.0)),
                        );
                    });
                }
            });
        });
        ui.label("its pose carried to every class");
        ui.horizontal(|ui| {
            for t in &self.textures.carried {
                show(ui, t, 36.0);
            }
        });
        if ui
            .add_enabled(
                !a.pose.is_empty(),
                egui::Button::new("Use this pose on the sliders"),
            )
            .clicked()
        {
            self.commands.push(Command::UseInputPose);
        }
    }

    fn training_ui(&mut self, ui: &mut egui::Ui) {
        ui.add(
            egui::DragValue::new(&mut self.state.labels)
                .range(0..=60_000)
                .prefix("labels ")
                .custom_formatter(|v, _| {
                    if v < 0.5 { "all".into() } else { format!("{v:.0}") }
                }),
        )
        .on_hover_text("labelled training images (balanced over classes); 0 = all labelled, otherwise semi-supervised");
        self.models.panel.ui(ui);
    }

    fn files_ui(&mut self, ui: &mut egui::Ui, sounds: bool) {
        self.models.panels_ui(ui, sounds, |_| true);
        let dims = self.state.pose.len().max(1);
        ui.horizontal(|ui| {
            ui.label("traversal dimension");
            ui.add(
                egui::DragValue::new(&mut self.state.traversal_dim)
                    .range(0..=dims - 1)
                    .prefix("z"),
            );
        });
    }
}

/// A lab's drawing of one class in a pose, and of the pose in every class.
fn draw_class_and_all(
    lab: &Lab,
    class: usize,
    pose: &[f32],
) -> anyhow::Result<(Vec<f32>, Vec<Vec<f32>>)> {
    let mut items: Vec<(u32, &[f32])> = vec![(class as u32, pose)];
    items.extend((0..lab.classes() as u32).map(|c| (c, pose)));
    let mut images = lab.draw(&items)?;
    let all = images.split_off(1);
    Ok((images.pop().unwrap_or_default(), all))
}

/// Mean KL per equivariant dimension on some digits.
fn dims_use(lab: &Lab, digits: &DigitSet) -> anyhow::Result<Vec<f32>> {
    let x = candle_core::Tensor::from_slice(
        &digits.images,
        (digits.len(), PIXELS),
        &candle_core::Device::Cpu,
    )?;
    let (mu, logvar) = lab.model.encode(&x)?;
    Ok(crate::nn::kl_per_dim(&mu, &logvar)?.to_vec1::<f32>()?)
}

impl LabTab for ClassPoseTab {
    const TITLE: &'static str = "Class x Pose";
    hold_models!(Lab, ClassPoseState, Command);

    fn new(shared: &mut Shared) -> Self {
        let default_path = shared.models_dir.join(DEFAULT_FILE);
        let judge_path = DigitClassifier::default_path(&shared.models_dir);
        let judge = DigitClassifier::load(&judge_path).ok().map(Arc::new);
        Self {
            state: ClassPoseState::default(),
            models: crate::registry::models(
                &super::cli::IeVaeFamily,
                "ievae",
                FilesPanel::new(&default_path).with_figure(
                    "figure",
                    "ievae_traversal.png",
                    &["Export traversal", "Export swaps"],
                ),
                training_spec(),
                ClassPoseState::default().models.train,
            )
            .with_ablation(
                &shared.models_dir,
                "ievae_digits_100_labels.safetensors",
                "100 labels",
            ),
            judge,
            picker: super::picker_digits(0),
            canvas: [0.0; PIXELS],
            canvas_last: None,
            analysis: None,
            blank_drawing: false,
            decoded: None,
            decoded_reading: None,
            every_class: Vec::new(),
            decoded_b: None,
            every_class_b: Vec::new(),
            decoded_for: None,
            dim_use: Vec::new(),
            textures: Textures {
                dirty: true,
                ..Default::default()
            },
            commands: Vec::new(),
            background: Background::default(),
        }
        .with_shipped(&default_path, shared)
    }

    fn apply(&mut self, command: Command, _shared: &mut Shared) {
        match command {
            Command::SetClass(c) => self.state.class = c,
            Command::ResetPose => self.state.pose.iter_mut().for_each(|v| *v = 0.0),
            Command::Pick(i) => {
                if i < self.picker.len() {
                    let image = self.picker.image(i).to_vec();
                    self.blank_drawing = false;
                    self.analyse(InputSource::Picked(i), image);
                }
            }
            Command::AnalyseDrawing => match centre_drawing(&self.canvas) {
                Some(image) => {
                    self.blank_drawing = false;
                    self.analyse(InputSource::Drawn, image.to_vec());
                }
                None => {
                    self.blank_drawing = true;
                    self.forget_drawing_analysis();
                }
            },
            Command::ClearDrawing => {
                self.canvas = [0.0; PIXELS];
                self.blank_drawing = false;
                self.forget_drawing_analysis();
            }
            Command::UseInputPose => {
                if let Some(a) = &self.analysis
                    && a.pose.len() == self.state.pose.len()
                {
                    self.state.pose = a
                        .pose
                        .iter()
                        .map(|v| v.clamp(-POSE_RANGE, POSE_RANGE))
                        .collect();
                }
            }
        }
    }

    fn export(&mut self, _row: usize, action: usize, path: PathBuf, shared: &mut Shared) {
        let drawn = self.models.drawn();
        if drawn.is_empty() {
            return shared.error(format!("{}: no model to draw", path.display()));
        }
        let dim = self.state.traversal_dim;
        self.background.run(move || {
            crate::figures::save_each(&drawn, &path, |lab| match action {
                0 => super::cli::traversal_figure(lab, dim, 9),
                _ => super::cli::swap_figure(lab, 8),
            })
            .map_err(|e| format!("{e:#}"))?;
            Ok(path)
        });
    }

    fn changed(&mut self, changed: impl IntoIterator<Item = Changed>) {
        for c in changed {
            if let Changed::A { fresh } = c
                && let Some(lab) = self.models.a.clone()
            {
                self.set_lab(lab, fresh);
            }
            self.decoded_for = None;
        }
    }

    fn logic(&mut self, ctx: &egui::Context, shared: &mut Shared) {
        self.drain_background(shared);
        self.refresh_decoded(shared);
        self.upload_textures(ctx);
    }

    fn columns_ui(&mut self, left: &mut egui::Ui, right: &mut egui::Ui) {
        left.heading("Class and pose");
        if let Some(lab) = &self.models.a {
            let m = &lab.meta.metrics;
            let get = |k: &str| m.get(k).map_or("?".into(), |v| format!("{v:.3}"));
            left.label(format!(
                "{FAMILY} · preset {} · {} steps · {} labels · accuracy {} · swap accuracy {} · class-from-pose probe {}",
                lab.meta.preset,
                lab.meta.steps,
                lab.labels_used,
                get("accuracy"),
                get("swap_accuracy"),
                get("class_from_pose_probe"),
            ));
        }
        self.pose_ui(left);
        left.separator();
        left.heading("Training");
        self.training_ui(left);
        right.heading("A digit's class and pose");
        self.input_ui(right);
        right.separator();
        self.files_ui(right, false);
    }

    fn models_logic(&mut self, shared: &mut Shared) {
        let labels = self.state.labels;
        let (_, changed) = self.models.logic(shared, |args| {
            args.labels = (labels > 0).then_some(labels);
        });
        self.changed(changed);
    }

    fn commands_applied(&mut self, shared: &mut Shared) {
        self.refresh_decoded(shared);
    }

    fn working(&self) -> bool {
        !self.background.is_empty()
    }

    fn restore(&mut self, s: ClassPoseState) {
        self.state = s;
        if let Some(lab) = &self.models.a {
            self.state.fit(lab, false);
        }
        self.decoded_for = None;
    }
}
