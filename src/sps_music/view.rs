//! The "Pitch" tab: drag the pitch latent and hear the note follow, see the decoded spectrum
//! and the learned pitch axis, train in the background, open/save/import/export.

use std::path::PathBuf;
use std::sync::Arc;

use egui_plot::{Legend, Line, Plot, PlotPoints, Points, VLine};
use serde::{Deserialize, Serialize};

use super::Lab;
use super::data::{self, FRAMES_PER_NOTE};
use super::train::{PRESETS, TrainConfig};
use crate::app::{
    Background, Changed, FilesPanel, LabTab, Models, ModelsState, Shared, TrainSettings,
    TrainingSpec, hold_models, tab_state,
};
use crate::audio::dsp::{self, N_BINS, SAMPLE_RATE};
use crate::audio::engine::VoiceParams;

/// What the tab remembers across restarts.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct PitchState {
    /// checkpoint, training settings, files and B paths
    #[serde(flatten)]
    pub models: ModelsState,
    pub pitch_latent: f32,
    pub timbre: Vec<f32>,
    pub instrument: usize,
    pub volume: f32,
    /// which model the latent above belongs to: a latent is only restored onto the same model
    pub model: String,
}

tab_state!(PitchState);

/// Tells models apart well enough to know whether a remembered latent still means anything.
fn fingerprint(lab: &Lab) -> String {
    format!(
        "{} {} {} {:.6} {:.6}",
        lab.meta.preset,
        lab.meta.steps,
        lab.meta.seed,
        lab.calibration.slope,
        lab.calibration.intercept
    )
}

impl Default for PitchState {
    fn default() -> Self {
        Self {
            pitch_latent: 0.0,
            timbre: Vec::new(),
            instrument: 0,
            models: ModelsState::new(TrainSettings::new(
                "fast",
                TrainConfig::preset("fast").map(|c| c.steps).unwrap_or(1000),
                "soundfont",
            )),
            volume: 0.5,
            model: String::new(),
        }
    }
}

/// Side effects the widgets ask for; applied in one place after drawing.
pub enum Command {
    PlayScale,
    SetLive(bool),
}

/// The panel's choices for this family.
fn training_spec() -> TrainingSpec {
    TrainingSpec {
        presets: &PRESETS,
        data_choices: vec!["soundfont".into()],
        data_hint: "soundfont, soundfont:PATH.sf2 or .sf3, wav-dir:DIR",
        metrics: &[
            ("r2_embedding", "R² held-out"),
            ("r2_embedding_unseen", "unseen instruments"),
        ],
        single_threaded: false,
        ..TrainingSpec::default()
    }
    .with_preset_steps(|p| Ok(TrainConfig::preset(p)?.steps))
}

pub struct PitchTab {
    pub state: PitchState,
    /// A, the model on show, and B beside it; files and training panels
    pub models: Models<Lab>,
    commands: Vec<Command>,
    /// decoded spectra (513 x 5, bin-major) of A's and B's current latents, with the latent
    spectra: [Option<(Vec<f32>, Vec<f32>)>; 2],
    pub live: bool,
    voice_dirty: bool,
    background: Background<Result<BackgroundDone, String>>,
}

enum BackgroundDone {
    Clip(Vec<f32>),
    Wrote(PathBuf),
}

impl PitchTab {
    fn set_lab(&mut self, lab: Arc<Lab>, reset_latent: bool) {
        let dims = lab.latent_dims();
        if reset_latent || self.state.timbre.len() != dims - 1 {
            let (lo, hi) = lab.latent_range();
            self.state.pitch_latent = self.state.pitch_latent.clamp(lo, hi);
            if reset_latent {
                self.state.pitch_latent = lab
                    .latent_of_pitch(60.0)
                    .unwrap_or(0.5 * (lo + hi))
                    .clamp(lo, hi);
            }
            self.state.instrument = self
                .state
                .instrument
                .min(lab.calibration.instruments.len().saturating_sub(1));
            self.state.timbre = lab
                .calibration
                .instruments
                .get(self.state.instrument)
                .map(|i| i.timbre.clone())
                .unwrap_or_else(|| vec![0.0; dims - 1]);
        }
        self.state.model = fingerprint(&lab);
        self.spectra = [None, None];
        self.voice_dirty = true;
    }

    /// A's current latent: pitch first, then timbre.
    pub fn latent(&self) -> Vec<f32> {
        let mut z = vec![self.state.pitch_latent];
        z.extend_from_slice(&self.state.timbre);
        z
    }

    /// B's latent for what A shows: the same true pitch through each model's calibration,
    /// and the timbre B learned for the same instrument. None without B, or without a
    /// calibration in either model to map the pitch through.
    pub fn latent_b(&self) -> Option<Vec<f32>> {
        let (a, b) = (self.models.a.as_ref()?, self.models.b.as_ref()?);
        let pitch = a.pitch_of_latent(self.state.pitch_latent)?;
        let mut z = vec![b.latent_of_pitch_clamped(pitch)?];
        let instruments = &b.calibration.instruments;
        let name = a
            .calibration
            .instruments
            .get(self.state.instrument)
            .map(|i| i.name.as_str());
        let timbre = instruments
            .iter()
            .find(|i| Some(i.name.as_str()) == name)
            .or_else(|| instruments.get(self.state.instrument))
            .map(|i| i.timbre.clone())
            .unwrap_or_else(|| vec![0.0; b.latent_dims() - 1]);
        z.extend(timbre);
        Some(z)
    }

    /// The decoded spectrum of A (0) or B (1) at its current latent.
    pub fn spectrum(&self, which: usize) -> Option<&[f32]> {
        self.spectra[which].as_ref().map(|(_, s)| s.as_slice())
    }

    fn refresh_spectrum(&mut self, shared: &mut Shared) {
        let targets = [
            self.models.a.clone().map(|l| (l, self.latent())),
            self.models.b.clone().zip(self.latent_b()),
        ];
        for (slot, target) in targets.into_iter().enumerate() {
            let Some((lab, z)) = target else {
                self.spectra[slot] = None;
                continue;
            };
            if self.spectra[slot].as_ref().is_some_and(|(zs, _)| *zs == z) {
                continue;
            }
            match lab.decode_spectrum(&z) {
                Ok(spec) => {
                    self.spectra[slot] = Some((z, spec));
                    self.voice_dirty = true;
                }
                Err(e) => shared.error(format!("decoding failed: {e}")),
            }
        }
    }

    /// The decoded note's sustained part as sinusoids for the live voice.
    pub fn voice_params(spectrum: &[f32], gain: f32) -> VoiceParams {
        super::voice::voice_params(spectrum, gain)
    }

    fn update_voice(&mut self, shared: &mut Shared) {
        if !self.voice_dirty {
            return;
        }
        self.voice_dirty = false;
        let controller = shared.audio.controller();
        let heard = match self.models.heard {
            crate::app::Heard::B if self.spectra[1].is_some() => 1,
            _ => 0,
        };
        match (&self.spectra[heard], self.live) {
            (Some((_, spec)), true) => {
                controller.set_voice(&Self::voice_params(spec, self.state.volume))
            }
            _ => controller.silence(),
        }
    }

    fn drain_background(&mut self, shared: &mut Shared) {
        for done in self.background.finished(shared) {
            match done {
                Ok(BackgroundDone::Clip(samples)) => {
                    shared.audio.controller().play_clip(&samples);
                }
                Ok(BackgroundDone::Wrote(p)) => shared.info(format!("wrote {}", p.display())),
                Err(e) => shared.error(e),
            }
        }
    }

    fn controls_ui(&mut self, ui: &mut egui::Ui) {
        let Some(lab) = self.models.a.clone() else {
            ui.label("No model loaded: open a checkpoint or train one below.");
            return;
        };
        let (lo, hi) = lab.latent_range();
        let margin = 0.15 * (hi - lo);
        ui.horizontal(|ui| {
            let mut live = self.live;
            let label = if live { "Stop note" } else { "Play note" };
            if ui.toggle_value(&mut live, label).changed() {
                self.commands.push(Command::SetLive(live));
            }
            if ui.button("Play scale").clicked() {
                self.commands.push(Command::PlayScale);
            }
            // the voice is re-sent when the volume moves, not only when the latent does
            if ui
                .add(egui::Slider::new(&mut self.state.volume, 0.0..=1.0).text("volume"))
                .changed()
            {
                self.voice_dirty = true;
            }
        });
        ui.spacing_mut().slider_width = (ui.available_width() - 180.0).clamp(120.0, 420.0);
        let slider = ui.add(
            egui::Slider::new(&mut self.state.pitch_latent, (lo - margin)..=(hi + margin))
                .text("pitch latent")
                .min_decimals(3),
        );
        if slider.changed() {
            self.voice_dirty = true;
        }
        if let Some(p) = lab.pitch_of_latent(self.state.pitch_latent) {
            ui.label(format!(
                "≈ {} ({:.1} Hz) on the fitted line",
                note_name(p),
                dsp::midi_to_hz(p)
            ));
        }
        if let Some(zb) = self.latent_b() {
            ui.label(format!(
                "B follows the same pitch: its pitch latent {:.3}",
                zb[0]
            ));
        }
        let instruments = &lab.calibration.instruments;
        if !instruments.is_empty() {
            let current = instruments
                .get(self.state.instrument)
                .map(|i| i.name.clone())
                .unwrap_or_default();
            egui::ComboBox::from_label("timbre of")
                .selected_text(current)
                .show_ui(ui, |ui| {
                    for (i, inst) in instruments.iter().enumerate() {
                        if ui
                            .selectable_value(&mut self.state.instrument, i, inst.label())
                            .clicked()
                        {
                            self.state.timbre = inst.timbre.clone();
                            self.voice_dirty = true;
                        }
                    }
                });
        }
        for (d, t) in self.state.timbre.iter_mut().enumerate() {
            // wide enough for every instrument's timbre, with room to explore beyond them
            let (lo, hi) = instruments
                .iter()
                .filter_map(|i| i.timbre.get(d))
                .fold((-1.0f32, 1.0f32), |(lo, hi), &v| (lo.min(v), hi.max(v)));
            let pad = 0.25 * (hi - lo);
            if ui
                .add(
                    egui::Slider::new(t, (lo - pad)..=(hi + pad))
                        .text(format!("timbre latent {}", d + 1)),
                )
                .changed()
            {
                self.voice_dirty = true;
            }
        }
    }

    fn spectrum_ui(&self, ui: &mut egui::Ui) {
        if self.spectra.iter().all(Option::is_none) {
            return;
        }
        let hz = |b: usize| b as f64 * SAMPLE_RATE as f64 / dsp::N_FFT as f64;
        let sustained = |spec: &[f32]| -> PlotPoints {
            (0..N_BINS)
                .map(|b| {
                    let s = (1..4).map(|f| spec[b * FRAMES_PER_NOTE + f]).sum::<f32>() / 3.0;
                    [hz(b), s as f64]
                })
                .collect()
        };
        Plot::new("decoded_spectrum")
            .height(170.0)
            .x_axis_label("frequency (Hz)")
            .y_axis_label("log magnitude")
            .include_y(0.0)
            .include_y(1.0)
            .allow_scroll(false)
            .legend(Legend::default())
            .show(ui, |plot| {
                let names = [
                    "A: decoded spectrum (sustained frames)",
                    "B: decoded spectrum",
                ];
                for (name, spectrum) in names.into_iter().zip(&self.spectra) {
                    if let Some((_, spec)) = spectrum {
                        plot.line(Line::new(name, sustained(spec)));
                    }
                }
            });
    }

    fn embedding_ui(&self, ui: &mut egui::Ui) {
        let Some(lab) = &self.models.a else { return };
        let cal = &lab.calibration;
        if cal.points.is_empty() {
            ui.label("This model has no calibration yet (train it or run `latent-lab eval`).");
            return;
        }
        ui.label(format!(
            "pitch ≈ {:.2} · z₁ + {:.1}   R² held-out notes {:.4}, unseen instruments {:.4}",
            cal.slope, cal.intercept, cal.r2_seen, cal.r2_unseen
        ));
        let (lo, hi) = lab.latent_range();
        // the points run along the fitted line: with pitch rising along z1 the top left
        // corner is free, with pitch falling along it the top right. Fourteen entries in
        // small type stay above the line's lower end.
        let free = if cal.slope >= 0.0 {
            egui_plot::Corner::LeftTop
        } else {
            egui_plot::Corner::RightTop
        };
        Plot::new("pitch_embedding")
            .height(380.0)
            .legend(
                Legend::default()
                    .position(free)
                    .text_style(egui::TextStyle::Small),
            )
            .x_axis_label("pitch latent z₁")
            .y_axis_label("pitch (MIDI)")
            .show(ui, |plot| {
                for (i, inst) in cal.instruments.iter().enumerate() {
                    let pts: PlotPoints = cal.points_of(i).map(|(x, y)| [x, y]).collect();
                    plot.points(Points::new(inst.label(), pts).radius(2.0));
                }
                let fit: PlotPoints = [lo, hi]
                    .iter()
                    .map(|&x| [x as f64, cal.slope * x as f64 + cal.intercept])
                    .collect();
                plot.line(Line::new("fitted line", fit).width(2.0));
                plot.vline(VLine::new("current latent", self.state.pitch_latent as f64));
                // B on the same axes: its held-out notes, all instruments in one colour
                if let Some(b) = &self.models.b {
                    let pts: PlotPoints = b
                        .calibration
                        .points
                        .iter()
                        .map(|p| [p.1 as f64, p.0 as f64])
                        .collect();
                    plot.points(
                        Points::new(
                            format!("B: held-out notes (R² {:.3})", b.calibration.r2_seen),
                            pts,
                        )
                        .radius(3.5)
                        .color(egui::Color32::from_rgb(255, 140, 0))
                        .shape(egui_plot::MarkerShape::Cross),
                    );
                }
            });
    }
}

/// `C4`, `F#5`, ... for a (fractional) MIDI pitch, with the cents when off the semitone.
pub fn note_name(midi: f32) -> String {
    const NAMES: [&str; 12] = [
        "C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B",
    ];
    let r = midi.round();
    let cents = ((midi - r) * 100.0).round() as i32;
    let idx = (r as i32).rem_euclid(12) as usize;
    let octave = (r as i32).div_euclid(12) - 1;
    if cents == 0 {
        format!("{}{}", NAMES[idx], octave)
    } else {
        format!("{}{} {:+} ct", NAMES[idx], octave, cents)
    }
}

impl LabTab for PitchTab {
    const TITLE: &'static str = "Pitch";
    hold_models!(Lab, PitchState, Command);

    fn new(shared: &mut Shared) -> Self {
        let default_path = shared.models_dir.join("sps_music.safetensors");
        let mut tab = Self {
            state: PitchState::default(),
            models: crate::registry::models(
                &super::cli::SpsMusicFamily,
                "pitch",
                FilesPanel::new(&default_path)
                    .with_import("sps_music.pt")
                    .with_export(
                        "sweep",
                        "sweep.wav",
                        "pitch_sweep.wav",
                        &[("WAV", &["wav"])],
                        &["Export WAV"],
                    )
                    .with_figure("plot", "pitch_latent.png", &["Export plot"]),
                training_spec(),
                PitchState::default().models.train,
            )
            .with_ablation(
                &shared.models_dir,
                "sps_music_no_symmetry.safetensors",
                "no symmetry",
            )
            .with_pair(
                &shared.models_dir,
                "generic",
                [
                    "sps_music_generic.safetensors",
                    "sps_music_generic_no_symmetry.safetensors",
                ],
                "generic layers, with and without symmetry",
            )
            .with_import(|p| Lab::import_pytorch(p).map_err(|e| e.to_string())),
            commands: Vec::new(),
            spectra: [None, None],
            live: false,
            voice_dirty: true,
            background: Background::default(),
        };
        let opened = tab.models.open(&default_path, shared);
        tab.changed(opened);
        tab
    }

    fn apply(&mut self, command: Command, shared: &mut Shared) {
        match command {
            Command::PlayScale => {
                let heard_b = self.models.heard == crate::app::Heard::B;
                let (lab, timbre) = match (heard_b, self.models.b.clone(), self.latent_b()) {
                    (true, Some(b), Some(z)) => (b, z[1..].to_vec()),
                    _ => match self.models.a.clone() {
                        Some(a) => (a, self.state.timbre.clone()),
                        None => return,
                    },
                };
                let base = self
                    .models
                    .a
                    .as_ref()
                    .and_then(|a| a.pitch_of_latent(self.state.pitch_latent))
                    .unwrap_or(60.0)
                    .round();
                let rate = shared.audio.controller().sample_rate();
                self.background.run(move || {
                    let latents: Vec<Vec<f32>> = data::SCALE
                        .iter()
                        .map(|s| {
                            let mut z =
                                vec![lab.latent_of_pitch_clamped(base + *s as f32).unwrap_or(0.0)];
                            z.extend_from_slice(&timbre);
                            z
                        })
                        .collect();
                    let audio = lab.render_notes(&latents, 32).map_err(|e| e.to_string())?;
                    Ok(BackgroundDone::Clip(dsp::resample_linear(
                        &audio,
                        SAMPLE_RATE,
                        rate,
                    )))
                });
            }
            Command::SetLive(on) => {
                self.live = on;
                self.voice_dirty = true;
            }
        }
    }

    fn export(&mut self, row: usize, _action: usize, p: PathBuf, _shared: &mut Shared) {
        // A's, and B's after it when one is open, as `export --compare` writes them
        let drawn = self.models.drawn();
        if drawn.is_empty() {
            return;
        }
        if row == 0 {
            let instrument = self.state.instrument;
            self.background.run(move || {
                let clips = drawn
                    .iter()
                    .map(|(lab, _)| {
                        let sweep = super::cli::pitch_sweep(lab, 25, instrument);
                        Ok((lab.render_notes(&sweep, 64)?, SAMPLE_RATE))
                    })
                    .collect::<anyhow::Result<Vec<_>>>()
                    .map_err(|e| e.to_string())?;
                let (audio, rate) = crate::audio::wav::one_after_another(&clips);
                crate::audio::wav::write_mono(&p, &audio, rate).map_err(|e| e.to_string())?;
                Ok(BackgroundDone::Wrote(p))
            });
        } else {
            self.background.run(move || {
                crate::figures::save_each(&drawn, &p, |lab| Ok(super::cli::embedding_figure(lab)))
                    .map_err(|e| format!("{e:#}"))?;
                Ok(BackgroundDone::Wrote(p))
            });
        }
    }

    fn changed(&mut self, changed: impl IntoIterator<Item = Changed>) {
        for c in changed {
            match c {
                Changed::A { fresh } => {
                    if let Some(lab) = self.models.a.clone() {
                        self.set_lab(lab, fresh);
                    }
                }
                Changed::B => self.spectra[1] = None,
            }
            self.voice_dirty = true;
        }
    }

    fn logic(&mut self, _ctx: &egui::Context, shared: &mut Shared) {
        self.drain_background(shared);
        self.refresh_spectrum(shared);
        self.update_voice(shared);
    }

    fn columns_ui(&mut self, left: &mut egui::Ui, right: &mut egui::Ui) {
        left.heading("Pitch latent");
        if let Some(summary) = self.models.summary() {
            left.label(summary);
        }
        self.controls_ui(left);
        left.separator();
        self.spectrum_ui(left);
        left.separator();
        left.heading("Training");
        self.models.panel.ui(left);
        right.heading("Learned pitch axis");
        self.embedding_ui(right);
        right.separator();
        self.models.panels_ui(right, true, |_| true);
    }

    fn commands_applied(&mut self, shared: &mut Shared) {
        // so the next frame shows, and the voice plays, what the widgets asked for
        self.refresh_spectrum(shared);
        self.update_voice(shared);
    }

    fn working(&self) -> bool {
        !self.background.is_empty()
    }

    fn restore(&mut self, s: PitchState) {
        let dims_ok =
            self.models.a.as_ref().is_some_and(|l| {
                l.latent_dims() == s.timbre.len() + 1 && fingerprint(l) == s.model
            });
        let (pitch, timbre, instrument) = (s.pitch_latent, s.timbre.clone(), s.instrument);
        self.state = PitchState { ..s };
        if dims_ok {
            self.state.pitch_latent = pitch;
            self.state.timbre = timbre;
            self.state.instrument = instrument;
        } else if let Some(lab) = self.models.a.clone() {
            self.set_lab(lab, true);
        }
        self.spectra = [None, None];
    }
}
