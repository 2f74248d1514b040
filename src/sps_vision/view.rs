//! The "3D" tab: move the latent of the bouncing ball with three sliders and a rotation
//! control and watch the decoded frame follow, beside the ground-truth render of the position
//! the latent maps to; encode a throw and compare the prior's roll-out with the true frames;
//! train in the background; open/save/import/export.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use egui::{Color32, ColorImage, TextureHandle, TextureOptions};
use egui_plot::{Legend, Line, Plot, PlotPoints, Points};
use serde::{Deserialize, Serialize};

use super::Lab;
use super::data::{self, BASE_LEN, Camera, DT, SEQ_LEN, SIZE, Throw};
use super::eval::{self, rotate_latent};
use super::model::keypoints_of;
use super::train::{PRESETS, TrainConfig};
use crate::app::{
    Background, Changed, FilesPanel, LabTab, Models, ModelsState, Shared, TrainSettings,
    TrainingSpec, hold_models, tab_state,
};

/// What the tab remembers across restarts.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct VisionState {
    /// checkpoint, training settings, files and B paths
    #[serde(flatten)]
    pub models: ModelsState,
    /// the latent the sliders set, before the rotation
    pub latent: [f32; 3],
    /// rotation about the vertical latent axis, degrees
    pub rotation_deg: f32,
    pub throw_seed: u64,
    pub throw_index: usize,
    /// draw where the encoder's keypoints sit on the decoded frame and on the render
    pub show_keypoints: bool,
    /// the coordinates the trajectory plots draw in
    pub plot_axes: PlotAxes,
}

/// The coordinates of the trajectory plots.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum PlotAxes {
    /// the world, each latent read through its model's fitted map
    #[default]
    World,
    /// A's latent, world positions carried into it through A's map inverted
    Latent,
}

tab_state!(VisionState);

impl Default for VisionState {
    fn default() -> Self {
        Self {
            latent: [0.0; 3],
            rotation_deg: 0.0,
            throw_seed: 0,
            throw_index: 0,
            show_keypoints: false,
            plot_axes: PlotAxes::World,
            models: ModelsState::new(TrainSettings::new(
                "fast",
                TrainConfig::preset("fast").map(|c| c.steps).unwrap_or(3000),
                "ball",
            )),
        }
    }
}

/// Side effects the widgets ask for; applied in one place after drawing.
pub enum Command {
    NewThrow,
    CentreLatent,
}

/// The panel's choices for this family.
fn training_spec() -> TrainingSpec {
    TrainingSpec {
        presets: &PRESETS,
        data_choices: vec!["ball".into()],
        data_hint: "ball, ball:SEED, ball-dir:DIR",
        metrics: &[("r2_x", "R² x"), ("r2_y", "R² y"), ("r2_z", "R² z")],
        single_threaded: false,
        ..TrainingSpec::default()
    }
    .with_preset_steps(|p| Ok(TrainConfig::preset(p)?.steps))
}

/// The latents of a throw's frames, and of the prior's roll-out from its first frames.
pub type EncodedAndRolled = (Vec<Vec<f32>>, Vec<Vec<f32>>);

/// A throw, its encoded latents, and the prior's roll-out from its first BASE_LEN frames.
pub struct ThrowView {
    pub throw: Throw,
    pub encoded: Vec<Vec<f32>>,
    pub rolled: Vec<Vec<f32>>,
    /// B's encoding and roll-out of the same throw, carried into A's latent coordinates
    /// through both calibrations (the world position each stands for)
    pub b_in_a: Option<EncodedAndRolled>,
    true_strip: TextureHandle,
    rolled_strip: TextureHandle,
    true_frames: Vec<TextureHandle>,
    rolled_frames: Vec<TextureHandle>,
    /// frame shown by the animation and when it started
    playing: Option<Instant>,
    frame: usize,
}

enum BackgroundDone {
    Wrote(PathBuf),
}

/// A test throw as A encodes it and rolls it out, with B's latents in A's coordinates.
struct ComputedThrow {
    throw: Throw,
    encoded: Vec<Vec<f32>>,
    rolled: Vec<Vec<f32>>,
    rolled_frames: Vec<Vec<f32>>,
    b_in_a: Option<EncodedAndRolled>,
}

/// Encode `throw` with A (and B) and roll each prior out from its first frames.
fn roll_out_throw(lab: &Lab, b: Option<&Lab>, throw: Throw) -> Result<ComputedThrow, String> {
    let frames: Vec<&[f32]> = (0..SEQ_LEN).map(|i| throw.frame(i)).collect();
    let encode_and_roll = |model| {
        super::model::encode_frames(model, &frames)
            .and_then(|enc| eval::rollout(model, &throw).map(|r| (enc, r)))
    };
    let (encoded, (rolled, rolled_frames)) =
        encode_and_roll(&lab.model).map_err(|e| format!("roll-out failed: {e}"))?;
    let b_in_a = match b {
        Some(b) => {
            let (enc, (rolled, _)) =
                encode_and_roll(&b.model).map_err(|e| format!("B's roll-out failed: {e}"))?;
            let carry = |zs: &[Vec<f32>]| -> Option<Vec<Vec<f32>>> {
                zs.iter()
                    .map(|z| latent_of_position(&lab.calibration, b.calibration.position(z)))
                    .collect()
            };
            carry(&enc).zip(carry(&rolled))
        }
        None => None,
    };
    Ok(ComputedThrow {
        throw,
        encoded,
        rolled,
        rolled_frames,
        b_in_a,
    })
}

pub struct VisionTab {
    pub state: VisionState,
    /// A, the model on show, and B beside it; files and training panels
    pub models: Models<Lab>,
    commands: Vec<Command>,
    /// the decoded frame of `shown_latent` (CHW in [0, 1]) and the render of its position
    pub decoded: Option<Vec<f32>>,
    pub truth: Option<Vec<f32>>,
    /// B's decoded frame at [`VisionTab::latent_b`]
    pub decoded_b: Option<Vec<f32>>,
    shown_latent: Option<[f32; 4]>,
    decoded_tex: Option<TextureHandle>,
    decoded_b_tex: Option<TextureHandle>,
    truth_tex: Option<TextureHandle>,
    /// where A's encoder puts its keypoints on the decoded frame and on the render, in
    /// pixels (None while they are not shown, or for an encoder without keypoints)
    pub keypoints: [Option<Vec<(f32, f32)>>; 2],
    pub throw_view: Option<ThrowView>,
    throw_dirty: bool,
    /// the test throw, encoded and rolled out off the UI thread
    throw_job: Background<Result<ComputedThrow, String>>,
    background: Background<Result<BackgroundDone, String>>,
    camera: Camera,
}

/// The textures of the throw shown before, given out again in order (so a new throw of the
/// same length makes no new ones), new ones made when they run out.
struct TexturePool<'a> {
    ctx: &'a egui::Context,
    old: std::vec::IntoIter<TextureHandle>,
}

impl<'a> TexturePool<'a> {
    fn new(ctx: &'a egui::Context, old: Vec<TextureHandle>) -> Self {
        Self {
            ctx,
            old: old.into_iter(),
        }
    }

    fn texture(&mut self, name: String, image: ColorImage) -> TextureHandle {
        match self.old.next() {
            Some(mut t) => {
                t.set(image, TextureOptions::NEAREST);
                t
            }
            None => self.ctx.load_texture(name, image, TextureOptions::NEAREST),
        }
    }

    /// One texture a frame, named `{name}_{i}`.
    fn frames(mut self, name: &str, frames: &[&[f32]]) -> Vec<TextureHandle> {
        frames
            .iter()
            .enumerate()
            .map(|(i, f)| self.texture(format!("{name}_{i}"), color_image(f)))
            .collect()
    }
}

fn color_image(frame: &[f32]) -> ColorImage {
    ColorImage::from_rgb([SIZE, SIZE], &data::frame_to_rgb(frame))
}

/// Frames side by side in one image.
fn strip_image(frames: &[&[f32]]) -> ColorImage {
    let w = SIZE * frames.len().max(1);
    let mut rgb = vec![0u8; w * SIZE * 3];
    for (t, f) in frames.iter().enumerate() {
        let tile = data::frame_to_rgb(f);
        for y in 0..SIZE {
            let dst = (y * w + t * SIZE) * 3;
            rgb[dst..dst + SIZE * 3].copy_from_slice(&tile[y * SIZE * 3..(y + 1) * SIZE * 3]);
        }
    }
    ColorImage::from_rgb([w, SIZE], &rgb)
}

/// Where the rotation control takes a model's ball in one full turn, in world positions
/// ([`eval::turn_ring`]), and where it stands at the current rotation.
pub struct TurnRing {
    pub name: &'static str,
    pub points: Vec<[f32; 3]>,
    pub now: [f32; 3],
}

/// B's lines in the trajectory plots
const B_COLOUR: Color32 = Color32::from_rgb(200, 120, 0);
/// A's turn ring in the trajectory plots
const RING_COLOUR: Color32 = Color32::from_rgb(160, 110, 240);

impl VisionTab {
    /// Where the sliders start: the centre of the data, moved half way out along z1, so
    /// the rotation control has something to swing around.
    fn start_latent(lab: &Lab) -> [f32; 3] {
        let c = lab.calibration.centre;
        let (lo, hi) = lab.latent_range(0);
        [c[0] + 0.55 * (hi - lo) / 2.0, c[1], c[2]]
    }

    /// The latent shown: the sliders' latent turned by the rotation control.
    pub fn latent(&self) -> Vec<f32> {
        match &self.models.a {
            Some(lab) => rotate_latent(
                &self.state.latent,
                &lab.calibration.centre,
                self.state.rotation_deg.to_radians(),
            ),
            None => self.state.latent.to_vec(),
        }
    }

    /// B's latent for what A shows: the position A's sliders stand for, carried into B's
    /// latent through B's calibration, then turned by the same rotation in B's own latent
    /// space (in the sense that turns the world the same way). A model whose latent
    /// rotation is a rotation of space shows the ball where A's render does.
    pub fn latent_b(&self) -> Option<Vec<f32>> {
        let (b, zb, sense) = self.b_unturned()?;
        Some(rotate_latent(
            &zb,
            &b.calibration.centre,
            sense * self.state.rotation_deg.to_radians(),
        ))
    }

    /// B, its latent at the position of A's sliders before the rotation, and the sense (±1)
    /// in which B's latent turns to turn the world as A's does.
    fn b_unturned(&self) -> Option<(&Lab, Vec<f32>, f32)> {
        let (a, b) = (self.models.a.as_ref()?, self.models.b.as_ref()?);
        let (ca, cb) = (&a.calibration, &b.calibration);
        if !ca.is_fitted() || !cb.is_fitted() {
            return None;
        }
        let zb = latent_of_position(cb, ca.position(&self.state.latent))?;
        let sense = if ca.same_handedness() == cb.same_handedness() {
            1.0
        } else {
            -1.0
        };
        Some((b, zb, sense))
    }

    /// The ring of A's latent turned once around, and of B's beside it. Empty while A has no
    /// fitted map.
    pub fn turn_rings(&self) -> Vec<TurnRing> {
        let Some(a) = self.models.a.as_ref().filter(|a| a.calibration.is_fitted()) else {
            return Vec::new();
        };
        let cal = &a.calibration;
        let mut rings = vec![TurnRing {
            name: "A: turn",
            points: eval::turn_ring(cal, &self.state.latent, 1.0, 72),
            now: cal.position(&self.latent()),
        }];
        if let (Some((b, zb, sense)), Some(now)) = (self.b_unturned(), self.latent_b()) {
            rings.push(TurnRing {
                name: "B: turn",
                points: eval::turn_ring(&b.calibration, &zb, sense, 72),
                now: b.calibration.position(&now),
            });
        }
        rings
    }

    /// Decode the current latent and render the position it maps to, when either changed.
    fn refresh_frames(&mut self, ctx: &egui::Context, shared: &mut Shared) {
        let Some(lab) = self.models.a.clone() else {
            return;
        };
        let z = self.latent();
        let key = [z[0], z[1], z[2], lab.meta.steps as f32];
        if self.shown_latent == Some(key) {
            return;
        }
        let b = self.models.b.clone().zip(self.latent_b());
        let decoded = lab
            .decode_frame(&z)
            .and_then(|a| Ok((a, b.map(|(b, zb)| b.decode_frame(&zb)).transpose()?)));
        match decoded {
            Ok((frame, frame_b)) => {
                set_texture(ctx, &mut self.decoded_tex, "sps_vision_decoded", &frame);
                self.decoded = Some(frame);
                match &frame_b {
                    Some(f) => set_texture(ctx, &mut self.decoded_b_tex, "sps_vision_decoded_b", f),
                    None => self.decoded_b_tex = None,
                }
                self.decoded_b = frame_b;
            }
            Err(e) => return shared.error(format!("decoding failed: {e}")),
        }
        if lab.calibration.is_fitted() {
            let truth = data::render_frame(&self.camera, lab.calibration.position(&z));
            set_texture(ctx, &mut self.truth_tex, "sps_vision_truth", &truth);
            self.truth = Some(truth);
        }
        // one pass of the encoder's convolutions a frame, only while they are shown
        let shown = [self.decoded.as_deref(), self.truth.as_deref()];
        match shown.map(|f| match f.filter(|_| self.state.show_keypoints) {
            Some(f) => keypoints_of(&lab.model, f),
            None => Ok(None),
        }) {
            [Ok(a), Ok(b)] => self.keypoints = [a, b],
            [Err(e), _] | [_, Err(e)] => {
                self.keypoints = [None, None];
                shared.error(format!("finding the keypoints failed: {e}"));
            }
        }
        self.shown_latent = Some(key);
    }

    /// Encode the chosen test throw and roll the prior forward from its first frames, off the
    /// UI thread: a snapshot arrives every two seconds while a model trains, and A and B each
    /// encode and roll out the throw again.
    fn refresh_throw(&mut self) {
        if !self.throw_dirty || !self.throw_job.is_empty() {
            return;
        }
        self.throw_dirty = false;
        let Some(lab) = self.models.a.clone() else {
            return;
        };
        let b = self.models.b.clone();
        // the same throw again (a new model arrived) is not rendered again
        let seed = self.state.throw_seed ^ 0x7E57_7E57;
        let index = self.state.throw_index;
        let name = format!("ball seed {seed} #{index}");
        let cached = match &self.throw_view {
            Some(v) if v.throw.name == name => Some(v.throw.clone()),
            _ => None,
        };
        let camera = self.camera;
        self.throw_job.run(move || {
            let throw = cached.unwrap_or_else(|| data::generate_throw(&camera, seed, index));
            roll_out_throw(&lab, b.as_deref(), throw)
        });
    }

    /// Show a throw computed in the background, reusing the textures of the previous one.
    fn show_throw(&mut self, ctx: &egui::Context, computed: ComputedThrow) {
        let ComputedThrow {
            throw,
            encoded,
            rolled,
            rolled_frames,
            b_in_a,
        } = computed;
        let frames: Vec<&[f32]> = (0..SEQ_LEN).map(|i| throw.frame(i)).collect();
        let previous = self.throw_view.take();
        let (old_strips, old_true, old_rolled, playing, frame) = match previous {
            Some(p) => (
                vec![p.true_strip, p.rolled_strip],
                p.true_frames,
                p.rolled_frames,
                p.playing,
                p.frame,
            ),
            None => (Vec::new(), Vec::new(), Vec::new(), None, 0),
        };
        let rolled_refs: Vec<&[f32]> = rolled_frames.iter().map(|f| f.as_slice()).collect();
        let mut strips = TexturePool::new(ctx, old_strips);
        let true_strip = strips.texture("sps_vision_true_strip".into(), strip_image(&frames));
        let rolled_strip =
            strips.texture("sps_vision_rolled_strip".into(), strip_image(&rolled_refs));
        let true_frames = TexturePool::new(ctx, old_true).frames("sps_vision_true", &frames);
        let rolled_textures =
            TexturePool::new(ctx, old_rolled).frames("sps_vision_rolled", &rolled_refs);
        self.throw_view = Some(ThrowView {
            true_strip,
            rolled_strip,
            true_frames,
            rolled_frames: rolled_textures,
            playing,
            frame,
            throw,
            encoded,
            rolled,
            b_in_a,
        });
    }

    fn drain_background(&mut self, ctx: &egui::Context, shared: &mut Shared) {
        for done in self.throw_job.finished(shared) {
            match done {
                Ok(t) => self.show_throw(ctx, t),
                Err(e) => shared.error(e),
            }
        }
        for done in self.background.finished(shared) {
            match done {
                Ok(BackgroundDone::Wrote(p)) => shared.info(format!("wrote {}", p.display())),
                Err(e) => shared.error(e),
            }
        }
    }

    /// Advance the roll-out animation: one frame per DT of wall time, as the throw was filmed.
    fn tick_animation(&mut self, ctx: &egui::Context) {
        let Some(view) = &mut self.throw_view else {
            return;
        };
        if let Some(start) = view.playing {
            let f = (start.elapsed().as_secs_f32() / DT) as usize;
            view.frame = f % SEQ_LEN;
            ctx.request_repaint_after(Duration::from_millis(30));
        }
    }

    fn latent_ui(&mut self, ui: &mut egui::Ui) {
        let Some(lab) = self.models.a.clone() else {
            ui.label("No model loaded: open a checkpoint or train one below.");
            return;
        };
        ui.spacing_mut().slider_width = (ui.available_width() - 190.0).clamp(120.0, 380.0);
        let names = ["z1", "z2 (vertical)", "z3"];
        for (d, name) in names.iter().enumerate() {
            let (lo, hi) = lab.latent_range(d);
            ui.add(
                egui::Slider::new(&mut self.state.latent[d], lo..=hi)
                    .text(*name)
                    .min_decimals(3),
            );
        }
        ui.add(
            egui::Slider::new(&mut self.state.rotation_deg, -180.0..=180.0)
                .text("rotation about z2 (degrees)")
                .suffix("°")
                .fixed_decimals(1),
        );
        ui.horizontal(|ui| {
            for a in [-90.0, 0.0, 90.0, 180.0] {
                if ui.button(format!("{a:+.0}°")).clicked() {
                    self.state.rotation_deg = a;
                }
            }
            if ui.button("Back to centre").clicked() {
                self.commands.push(Command::CentreLatent);
            }
        });
        let z = self.latent();
        ui.label(format!(
            "latent after rotation: ({:.3}, {:.3}, {:.3})",
            z[0], z[1], z[2]
        ));
        if let Some(zb) = self.latent_b() {
            ui.label(format!(
                "B at the same position, turned the same way: ({:.3}, {:.3}, {:.3})",
                zb[0], zb[1], zb[2]
            ));
        }
    }

    fn frames_ui(&mut self, ui: &mut egui::Ui) {
        let Some(lab) = self.models.a.clone() else {
            return;
        };
        if lab.model.keypoint_encoder().is_some() {
            let toggled = ui
                .checkbox(
                    &mut self.state.show_keypoints,
                    "show the encoder's keypoints",
                )
                .on_hover_text(
                    "Where each of the encoder's keypoint maps finds its feature on the frame \
                     (numbered): the latent is read from these positions and how strongly each \
                     map responds.",
                )
                .changed();
            if toggled {
                // the keypoints are found with the frames: on the next frame
                self.shown_latent = None;
            }
        }
        let columns = if self.decoded_b_tex.is_some() {
            3.0
        } else {
            2.0
        };
        let side = ((ui.available_width() - 12.0 * columns) / columns).clamp(100.0, 300.0);
        // frame `which` of `keypoints`, with them drawn over it when asked
        let show = |ui: &mut egui::Ui, t: &TextureHandle, which: usize| {
            let rect = ui.image((t.id(), egui::vec2(side, side))).rect;
            if let (true, Some(k)) = (self.state.show_keypoints, &self.keypoints[which]) {
                paint_keypoints(ui, rect, k);
            }
        };
        ui.horizontal(|ui| {
            ui.vertical(|ui| {
                ui.label(if columns > 2.0 {
                    "A: decoded frame"
                } else {
                    "decoded frame"
                });
                if let Some(t) = &self.decoded_tex {
                    show(ui, t, 0);
                }
            });
            if let Some(t) = &self.decoded_b_tex {
                ui.vertical(|ui| {
                    ui.label("B: decoded frame");
                    ui.image((t.id(), egui::vec2(side, side)));
                });
            }
            ui.vertical(|ui| {
                ui.label("render of the position the latent maps to");
                match &self.truth_tex {
                    Some(t) if lab.calibration.is_fitted() => {
                        show(ui, t, 1);
                    }
                    _ => {
                        ui.label("(no fitted map: train the model or run `latent-lab eval`)");
                    }
                }
            });
        });
        let cal = &lab.calibration;
        if cal.is_fitted() {
            let p = cal.position(&self.latent());
            ui.label(format!(
                "position (x, y, z) = ({:.2}, {:.2}, {:.2}) · map R² x {:.3}, y {:.3}, z {:.3}",
                p[0], p[1], p[2], cal.r2[0], cal.r2[1], cal.r2[2]
            ));
            let tilts = cal.tilts_deg();
            ui.label(format!(
                "as the map reads the latent, the plane it turns in leans {:.0}° from the floor \
                 and z2 {:.0}° from the vertical",
                tilts.turn_plane, tilts.height_axis
            ))
            .on_hover_text(
                "0° and 0° when the latent has the symmetry's shape: turning (z1, z3) then turns \
                 the ball about the vertical and z2 moves it straight up. A tilted plane lifts \
                 and lowers the ball as it turns, whatever the map's R².",
            );
            if let (Some(d), Some(t)) = (&self.decoded, &self.truth) {
                match (data::ball_centroid(d), data::ball_centroid(t)) {
                    (Some(a), Some(b)) => ui.label(format!(
                        "ball centre: decoded ({:.1}, {:.1}) px, render ({:.1}, {:.1}) px, {:.1} px apart",
                        a.0,
                        a.1,
                        b.0,
                        b.1,
                        ((a.0 - b.0).powi(2) + (a.1 - b.1).powi(2)).sqrt()
                    )),
                    _ => ui.label("ball centre: no ball visible in one of the frames"),
                };
            }
        }
    }

    fn trajectory_ui(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            ui.label("test throw");
            let mut index = self.state.throw_index;
            if ui
                .add(
                    egui::DragValue::new(&mut index)
                        .range(0..=100_000)
                        .prefix("#"),
                )
                .changed()
            {
                self.state.throw_index = index;
                self.throw_dirty = true;
            }
            let mut seed = self.state.throw_seed;
            if ui
                .add(egui::DragValue::new(&mut seed).prefix("seed "))
                .changed()
            {
                self.state.throw_seed = seed;
                self.throw_dirty = true;
            }
            if ui.button("Next throw").clicked() {
                self.commands.push(Command::NewThrow);
            }
        });
        let cal = self
            .models
            .a
            .as_ref()
            .map(|a| a.calibration.clone())
            .filter(|c| c.is_fitted());
        let rings = self.turn_rings();
        let Some(view) = &mut self.throw_view else {
            if !self.throw_job.is_empty() {
                ui.horizontal(|ui| {
                    ui.spinner();
                    ui.label("encoding and rolling out the test throw…");
                });
            }
            return;
        };
        ui.horizontal(|ui| {
            ui.label("draw in");
            ui.add_enabled_ui(cal.is_some(), |ui| {
                ui.selectable_value(&mut self.state.plot_axes, PlotAxes::World, "the world")
                    .on_hover_text(
                        "x, y, z: each model's latents read through its fitted map, beside the \
                         throw's true path",
                    )
                    .on_disabled_hover_text("A has no fitted map yet");
            });
            ui.selectable_value(&mut self.state.plot_axes, PlotAxes::Latent, "A's latent")
                .on_hover_text(
                    "z1, z2, z3 as A's encoder and prior give them; the true path and B are \
                     carried into them through the fitted maps",
                );
        });
        let axes = if cal.is_some() {
            self.state.plot_axes
        } else {
            PlotAxes::Latent
        };
        // a latent of A, and a world position, as the plots draw them
        let of_latent = |z: &[f32]| match (axes, &cal) {
            (PlotAxes::World, Some(c)) => Some(c.position(z)),
            _ => Some([z[0], z[1], z[2]]),
        };
        let of_world = |p: [f32; 3]| match axes {
            PlotAxes::World => Some(p),
            PlotAxes::Latent => cal
                .as_ref()
                .and_then(|c| latent_of_position(c, p))
                .map(|z| [z[0], z[1], z[2]]),
        };
        let pts = |points: &[Option<[f32; 3]>], a: usize, b: usize| -> Vec<[f64; 2]> {
            points
                .iter()
                .flatten()
                .map(|p| [p[a] as f64, p[b] as f64])
                .collect()
        };
        let latents = |zs: &[Vec<f32>]| zs.iter().map(|z| of_latent(z)).collect::<Vec<_>>();
        let enc = latents(&view.encoded);
        let rolled = latents(&view.rolled[BASE_LEN - 1..]);
        let frame = view.frame.min(SEQ_LEN - 1);
        let now = latents(&view.rolled[frame..=frame]);
        let truth: Vec<_> = view.throw.positions.iter().map(|&p| of_world(p)).collect();
        let b_lines = view
            .b_in_a
            .as_ref()
            .map(|(e, r)| (latents(e), latents(&r[BASE_LEN - 1..])));
        let rings: Vec<_> = rings
            .into_iter()
            .map(|r| {
                let points: Vec<_> = r.points.into_iter().map(of_world).collect();
                (r.name, points, of_world(r.now))
            })
            .collect();
        let plots = match axes {
            PlotAxes::World => [
                ("from above (x, z)", 0, 2, "x", "z (towards the camera)"),
                ("from the side (x, y)", 0, 1, "x", "y (height)"),
            ],
            PlotAxes::Latent => [
                ("A's latent from above (z1, z3)", 0, 2, "z1", "z3"),
                (
                    "A's latent from the side (z1, z2)",
                    0,
                    1,
                    "z1",
                    "z2 (vertical)",
                ),
            ],
        };
        let w = ((ui.available_width() - 12.0) / 2.0).max(120.0);
        ui.horizontal(|ui| {
            for (title, a, b, xlab, ylab) in plots {
                ui.vertical(|ui| {
                    ui.label(title);
                    Plot::new(format!("sps_vision_{title}"))
                        .width(w)
                        .height(220.0)
                        .data_aspect(1.0)
                        .legend(
                            Legend::default()
                                .text_style(egui::TextStyle::Small)
                                .background_alpha(0.5)
                                .follow_insertion_order(true),
                        )
                        .x_axis_label(xlab)
                        .y_axis_label(ylab)
                        .allow_scroll(false)
                        .show(ui, |plot| {
                            plot.line(
                                Line::new("true path", PlotPoints::from(pts(&truth, a, b)))
                                    .color(Color32::from_gray(150))
                                    .width(2.5),
                            );
                            plot.line(Line::new("encoded", PlotPoints::from(pts(&enc, a, b))));
                            plot.line(
                                Line::new("prior roll-out", PlotPoints::from(pts(&rolled, a, b)))
                                    .style(egui_plot::LineStyle::dashed_loose()),
                            );
                            plot.points(
                                Points::new(
                                    "given frames",
                                    PlotPoints::from(pts(&enc[..BASE_LEN], a, b)),
                                )
                                .radius(3.0),
                            );
                            plot.points(
                                Points::new("now", PlotPoints::from(pts(&now, a, b)))
                                    .radius(5.0)
                                    .color(Color32::RED),
                            );
                            if let Some((enc_b, rolled_b)) = &b_lines {
                                plot.line(
                                    Line::new("B: encoded", PlotPoints::from(pts(enc_b, a, b)))
                                        .color(B_COLOUR),
                                );
                                plot.line(
                                    Line::new(
                                        "B: prior roll-out",
                                        PlotPoints::from(pts(rolled_b, a, b)),
                                    )
                                    .color(B_COLOUR)
                                    .style(egui_plot::LineStyle::dashed_loose()),
                                );
                            }
                            for ((name, ring, at), colour) in
                                rings.iter().zip([RING_COLOUR, B_COLOUR])
                            {
                                plot.line(
                                    Line::new(*name, PlotPoints::from(pts(ring, a, b)))
                                        .color(colour)
                                        .style(egui_plot::LineStyle::dotted_dense()),
                                );
                                plot.points(
                                    Points::new(
                                        *name,
                                        PlotPoints::from(pts(std::slice::from_ref(at), a, b)),
                                    )
                                    .shape(egui_plot::MarkerShape::Diamond)
                                    .radius(5.0)
                                    .color(colour),
                                );
                            }
                        });
                });
            }
        });
        if !rings.is_empty() {
            ui.label(match axes {
                PlotAxes::World => {
                    "dotted: where the rotation control takes the ball in one full turn, the \
                     diamond where it is now; level from the side when the latent turns about \
                     the vertical"
                }
                PlotAxes::Latent => {
                    "dotted: the sliders' latent turned once around z2, the diamond where it is \
                     now; a level circle in the latent's own axes, whatever the world makes of \
                     it (draw in the world to see)"
                }
            });
        }
        ui.label(format!(
            "true frames (top) and the prior's roll-out from the first {BASE_LEN} (bottom)"
        ));
        let strip_w = ui.available_width().min(20.0 * 40.0);
        let size = egui::vec2(strip_w, strip_w / SEQ_LEN as f32);
        ui.image((view.true_strip.id(), size));
        ui.image((view.rolled_strip.id(), size));
        ui.horizontal(|ui| {
            let mut playing = view.playing.is_some();
            let label = if playing { "Pause" } else { "Play roll-out" };
            if ui.toggle_value(&mut playing, label).changed() {
                view.playing = playing
                    .then(|| Instant::now() - Duration::from_secs_f32(view.frame as f32 * DT));
            }
            let mut f = view.frame;
            if ui
                .add(egui::Slider::new(&mut f, 0..=SEQ_LEN - 1).text("frame"))
                .changed()
            {
                view.frame = f;
                view.playing = None;
            }
            ui.label(if frame < BASE_LEN {
                "given"
            } else {
                "predicted"
            });
        });
        ui.horizontal(|ui| {
            let side = 160.0;
            ui.vertical(|ui| {
                ui.label("true");
                ui.image((view.true_frames[frame].id(), egui::vec2(side, side)));
            });
            ui.vertical(|ui| {
                ui.label("prior");
                ui.image((view.rolled_frames[frame].id(), egui::vec2(side, side)));
            });
        });
    }

    fn files_ui(&mut self, ui: &mut egui::Ui, sounds: bool) {
        let has_throw = self.throw_view.is_some();
        // the roll-out (row 1) is of the throw on show
        self.models
            .panels_ui(ui, sounds, |row| row != 1 || has_throw);
    }
}

/// Ring and number each keypoint (in frame pixels) over a frame drawn in `rect`.
fn paint_keypoints(ui: &egui::Ui, rect: egui::Rect, keypoints: &[(f32, f32)]) {
    let painter = ui.painter_at(rect);
    let scale = rect.width() / SIZE as f32;
    for (i, &(u, v)) in keypoints.iter().enumerate() {
        let (r, g, b) = crate::figures::PALETTE[i % crate::figures::PALETTE.len()];
        let colour = Color32::from_rgb(r, g, b);
        let centre = rect.min + egui::vec2(u, v) * scale;
        let radius = (0.7 * scale).max(4.0);
        painter.circle_stroke(centre, radius, egui::Stroke::new(2.0, colour));
        painter.text(
            centre + egui::vec2(radius, -radius),
            egui::Align2::LEFT_BOTTOM,
            i.to_string(),
            egui::FontId::proportional(12.0),
            colour,
        );
    }
}

/// Upload `frame` into `slot`, reusing its texture.
fn set_texture(ctx: &egui::Context, slot: &mut Option<TextureHandle>, name: &str, frame: &[f32]) {
    let image = color_image(frame);
    match slot {
        Some(t) => t.set(image, TextureOptions::NEAREST),
        None => *slot = Some(ctx.load_texture(name, image, TextureOptions::NEAREST)),
    }
}

/// The latent a calibration maps to world position `p`: its affine map inverted (None when
/// the map is singular).
pub fn latent_of_position(cal: &eval::Calibration, p: [f32; 3]) -> Option<Vec<f32>> {
    let m = &cal.map;
    let r: Vec<f64> = (0..3).map(|k| p[k] as f64 - cal.offset[k]).collect();
    let det = |c: [[f64; 3]; 3]| {
        c[0][0] * (c[1][1] * c[2][2] - c[1][2] * c[2][1])
            - c[0][1] * (c[1][0] * c[2][2] - c[1][2] * c[2][0])
            + c[0][2] * (c[1][0] * c[2][1] - c[1][1] * c[2][0])
    };
    let d = det(*m);
    if d.abs() < 1e-12 || !d.is_finite() {
        return None;
    }
    // Cramer's rule: column j replaced by the right-hand side
    Some(
        (0..3)
            .map(|j| {
                let mut c = *m;
                for (k, row) in c.iter_mut().enumerate() {
                    row[j] = r[k];
                }
                (det(c) / d) as f32
            })
            .collect(),
    )
}

impl LabTab for VisionTab {
    const TITLE: &'static str = "3D";
    hold_models!(Lab, VisionState, Command);

    fn new(shared: &mut Shared) -> Self {
        let default_path = shared.models_dir.join("sps_vision.safetensors");
        Self {
            state: VisionState::default(),
            models: crate::registry::models(
                &super::cli::SpsVisionFamily,
                "vision",
                FilesPanel::new(&default_path)
                    .with_import("sps_vision.pt")
                    .with_figure("traversal", "traversal.png", &["Export traversal"])
                    .with_figure("roll-out", "rollout.png", &["Export roll-out"])
                    .with_figure("position read", "reading.png", &["Export reading"])
                    .with_figure("turn", "turn.png", &["Export turn"]),
                training_spec(),
                VisionState::default().models.train,
            )
            .with_ablation(
                &shared.models_dir,
                "sps_vision_no_symmetry.safetensors",
                "no symmetry",
            )
            .with_pair(
                &shared.models_dir,
                "generic",
                [
                    "sps_vision_generic.safetensors",
                    "sps_vision_generic_no_symmetry.safetensors",
                ],
                "generic layers, with and without symmetry",
            )
            .with_pair(
                &shared.models_dir,
                "decoded_turns",
                [
                    "sps_vision.safetensors",
                    "sps_vision_no_symmetry.safetensors",
                ],
                "turns decoded, with and without symmetry",
            )
            .with_import(|p| Lab::import_pytorch(p).map_err(|e| e.to_string())),
            commands: Vec::new(),
            decoded: None,
            truth: None,
            decoded_b: None,
            shown_latent: None,
            decoded_tex: None,
            decoded_b_tex: None,
            truth_tex: None,
            keypoints: [None, None],
            throw_view: None,
            throw_dirty: true,
            throw_job: Background::default(),
            background: Background::default(),
            camera: Camera::standard(),
        }
        .with_shipped(&default_path, shared)
    }

    fn apply(&mut self, command: Command, _shared: &mut Shared) {
        match command {
            Command::NewThrow => {
                self.state.throw_index = self.state.throw_index.wrapping_add(1);
                self.throw_dirty = true;
            }
            Command::CentreLatent => {
                if let Some(lab) = &self.models.a {
                    self.state.latent = Self::start_latent(lab);
                    self.state.rotation_deg = 0.0;
                }
            }
        }
    }

    fn export(&mut self, row: usize, _action: usize, p: PathBuf, _shared: &mut Shared) {
        let drawn = self.models.drawn();
        if drawn.is_empty() {
            return;
        }
        let throw = self.throw_view.as_ref().map(|v| v.throw.clone());
        self.background.run(move || {
            crate::figures::save_each(&drawn, &p, |lab| match (row, &throw) {
                (0, _) => super::cli::traversal_figure(lab, 9),
                (2, _) => super::cli::reading_figure(lab),
                (3, _) => super::cli::turn_figure(lab),
                (_, Some(throw)) => super::cli::rollout_figure(lab, throw),
                (_, None) => Err(anyhow::anyhow!("no throw on show")),
            })
            .map_err(|e| format!("{e:#}"))?;
            Ok(BackgroundDone::Wrote(p))
        });
    }

    fn changed(&mut self, changed: impl IntoIterator<Item = Changed>) {
        for c in changed {
            if let Changed::A { fresh: true } = c
                && let Some(lab) = &self.models.a
            {
                self.state.latent = Self::start_latent(lab);
                self.state.rotation_deg = 0.0;
            }
            self.shown_latent = None;
            self.throw_dirty = true;
        }
    }

    fn logic(&mut self, ctx: &egui::Context, shared: &mut Shared) {
        self.drain_background(ctx, shared);
        self.refresh_frames(ctx, shared);
        self.refresh_throw();
        self.tick_animation(ctx);
    }

    fn columns_ui(&mut self, left: &mut egui::Ui, right: &mut egui::Ui) {
        left.heading("Ball latent");
        if let Some(summary) = self.models.summary() {
            left.label(summary);
        }
        self.latent_ui(left);
        left.separator();
        self.frames_ui(left);
        left.separator();
        left.heading("Training");
        self.models.panel.ui(left);
        right.heading("Trajectory");
        self.trajectory_ui(right);
        right.separator();
        self.files_ui(right, false);
    }

    fn working(&self) -> bool {
        !self.background.is_empty()
            || !self.throw_job.is_empty()
            || self
                .throw_view
                .as_ref()
                .is_some_and(|v| v.playing.is_some())
    }

    fn restore(&mut self, s: VisionState) {
        self.state = s;
        if !self.state.latent.iter().all(|v| v.is_finite()) {
            self.state.latent = [0.0; 3];
        }
        self.shown_latent = None;
        self.throw_dirty = true;
    }
}
