//! The panel a tab shows: the map, the decoded point, the path strip, the interpolation, the
//! local directions and the Export row.

#[allow(unused_imports)]
use super::*;

// ------------------------------------------------------------------ the panel

/// What a click on the map does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClickMode {
    Decode,
    PickA,
    PickB,
}

/// Work the panel runs off the UI thread; each result carries the request it answers, so a
/// late answer to an old request is dropped.
pub(super) enum Done {
    Samples(u64, Result<(MapSamples, Duration), String>),
    /// a decoded output: (request, its kind R_*, the output)
    Output(u64, usize, Result<Output, String>),
    Sound(Result<Sound, String>),
    Wrote(Result<PathBuf, String>),
}

/// What the panel decodes on request and shows as images.
pub(super) enum Output {
    Point(Vec<f32>, Decoded),
    PathStrip(Strip),
    Interpolation(Interpolation),
    Directions(Directions),
}

#[derive(Default)]
pub(super) struct Textures {
    point: Option<TextureHandle>,
    path: Option<TextureHandle>,
    interpolation: Vec<TextureHandle>,
    directions: Vec<TextureHandle>,
    /// by request kind, set when an output arrives: the next `ui` makes its texture (it
    /// needs the context)
    dirty: [bool; 5],
}

/// The latent map and explorer of one tab. A tab calls [`ExplorePanel::set_source`] when
/// its model changes, [`ExplorePanel::logic`] every frame and [`ExplorePanel::ui`] to draw.
pub struct ExplorePanel {
    id: String,
    source: Option<Arc<dyn Explore>>,
    dim_names: Vec<String>,
    samples: Option<Arc<MapSamples>>,
    encode_time: Option<Duration>,
    status: String,
    map: LatentMap,
    colouring: usize,
    axes: (usize, usize),
    click_mode: ClickMode,
    point: Option<(Vec<f32>, Decoded)>,
    path_strip: Option<Strip>,
    pair: (Option<usize>, Option<usize>),
    interpolation: Option<Interpolation>,
    directions: Option<Directions>,
    /// the request each kind of result must answer
    requests: [u64; 5],
    next_request: u64,
    textures: Textures,
    export: PathField,
    work: Background<Done>,
}

pub(super) const R_SAMPLES: usize = 0;
pub(super) const R_POINT: usize = 1;
pub(super) const R_PATH: usize = 2;
pub(super) const R_INTERP: usize = 3;
pub(super) const R_DIRS: usize = 4;
/// what failed, by request kind
const FAILED: [&str; 5] = [
    "encoding the latent map's samples",
    "decoding",
    "decoding the path",
    "interpolation",
    "local directions",
];

impl ExplorePanel {
    /// `id` keeps the panel's widgets apart from another tab's.
    pub fn new(id: &str) -> Self {
        Self {
            id: id.to_string(),
            source: None,
            dim_names: Vec::new(),
            samples: None,
            encode_time: None,
            status: "no model".into(),
            map: LatentMap::default(),
            colouring: 0,
            axes: (0, 1),
            click_mode: ClickMode::Decode,
            point: None,
            path_strip: None,
            pair: (None, None),
            interpolation: None,
            directions: None,
            requests: [0; 5],
            next_request: 1,
            textures: Textures::default(),
            export: PathField::new(format!("{id}_map.png")),
            work: Background::default(),
        }
    }

    /// The id the panel was made with.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// A new model (or none): its held-out samples are encoded on a background thread, and
    /// what was on show is decoded again by it when they arrive. The same source again does
    /// nothing.
    pub fn set_source(&mut self, source: Option<Arc<dyn Explore>>) {
        if let (Some(a), Some(b)) = (&self.source, &source)
            && Arc::ptr_eq(a, b)
        {
            return;
        }
        self.source = source.clone();
        let request = self.request(R_SAMPLES);
        let Some(source) = source else {
            self.samples = None;
            self.status = "no model".into();
            self.point = None;
            self.path_strip = None;
            self.interpolation = None;
            self.directions = None;
            self.pair = (None, None);
            self.map = LatentMap::default();
            return;
        };
        self.dim_names = source.dim_names();
        let (x, y) = self.axes;
        let d = source.dims();
        if x >= d || y >= d || x == y {
            self.axes = (0, 1.min(d.saturating_sub(1)));
        }
        self.status = "encoding the held-out samples…".into();
        self.work.run(move || {
            let started = Instant::now();
            let result = source
                .samples()
                .and_then(|s| s.check(source.dims()).map(|_| s))
                .map(|s| (s, started.elapsed()))
                .map_err(|e| format!("{e:#}"));
            Done::Samples(request, result)
        });
    }

    pub(super) fn request(&mut self, kind: usize) -> u64 {
        let id = self.next_request;
        self.next_request += 1;
        self.requests[kind] = id;
        id
    }

    /// Collect the background work; call every frame.
    pub fn logic(&mut self, shared: &mut Shared) {
        for done in self.work.finished(shared) {
            match done {
                Done::Samples(r, result) if r == self.requests[R_SAMPLES] => match result {
                    Ok((samples, took)) => {
                        self.status = format!(
                            "{} held-out samples, encoded in {:.0} ms",
                            samples.latents.len(),
                            took.as_secs_f64() * 1e3
                        );
                        self.encode_time = Some(took);
                        self.colouring = self
                            .colouring
                            .min(samples.colourings.len().saturating_sub(1));
                        self.samples = Some(Arc::new(samples));
                        self.refit();
                        self.redo();
                    }
                    Err(e) => {
                        self.status = format!("no map: {e}");
                        shared.error(format!("{} failed: {e}", FAILED[R_SAMPLES]));
                    }
                },
                Done::Output(r, kind, result) if r == self.requests[kind] => match result {
                    Ok(output) => {
                        self.textures.dirty[kind] = true;
                        match output {
                            Output::Point(z, d) => self.point = Some((z, d)),
                            Output::PathStrip(s) => self.path_strip = Some(s),
                            Output::Interpolation(i) => self.interpolation = Some(i),
                            Output::Directions(d) => self.directions = Some(d),
                        }
                    }
                    Err(e) => shared.error(format!("{} failed: {e}", FAILED[kind])),
                },
                Done::Sound(result) => match result {
                    Ok(sound) => {
                        let controller = shared.audio.controller();
                        let rate = controller.sample_rate();
                        let samples = if rate == sound.rate {
                            sound.samples
                        } else {
                            crate::audio::dsp::resample_linear(&sound.samples, sound.rate, rate)
                        };
                        controller.play_clip(&samples);
                    }
                    Err(e) => shared.error(format!("sound failed: {e}")),
                },
                Done::Wrote(Ok(p)) => shared.info(format!("wrote {}", p.display())),
                Done::Wrote(Err(e)) => shared.error(e),
                // answers to requests made before a newer one
                _ => {}
            }
        }
    }

    /// Background work is running (the panel asks for frames itself while it does).
    pub fn busy(&self) -> bool {
        !self.work.is_empty()
    }

    // -------------------------------------------------------------- what tests read

    pub fn source(&self) -> Option<&Arc<dyn Explore>> {
        self.source.as_ref()
    }
    pub fn samples(&self) -> Option<&MapSamples> {
        self.samples.as_deref()
    }
    /// How long the last model took to encode its held-out samples.
    pub fn encode_time(&self) -> Option<Duration> {
        self.encode_time
    }
    pub fn status(&self) -> &str {
        &self.status
    }
    pub fn map(&self) -> &LatentMap {
        &self.map
    }
    /// The last decoded point: its latent and output.
    pub fn decoded(&self) -> Option<(&[f32], &Decoded)> {
        self.point.as_ref().map(|(z, d)| (z.as_slice(), d))
    }
    /// The strip decoded along the last drawn path.
    pub fn path_strip(&self) -> Option<&Strip> {
        self.path_strip.as_ref()
    }
    pub fn interpolation(&self) -> Option<&Interpolation> {
        self.interpolation.as_ref()
    }
    /// The local directions at the last decoded point.
    pub fn directions(&self) -> Option<&Directions> {
        self.directions.as_ref()
    }
    pub fn click_mode(&self) -> ClickMode {
        self.click_mode
    }

    /// Where the Export buttons write (what typing in the field does).
    pub fn set_export_path(&mut self, path: &Path) {
        self.export.text = path.display().to_string();
    }

    // -------------------------------------------------------------- what the widgets do

    pub fn set_projection(&mut self, projection: Projection) {
        if self.map.projection != projection {
            self.map.projection = projection;
            self.refit();
        }
    }

    pub fn set_colouring(&mut self, colouring: usize) {
        self.colouring = colouring;
        if let Some(samples) = &self.samples
            && let Some(c) = samples.colourings.get(colouring)
        {
            self.map.recolour(groups(c, samples.latents.len()));
        }
    }

    /// What a click at map coordinates `p` does in the current mode.
    pub fn click_at(&mut self, p: [f64; 2]) {
        match self.click_mode {
            ClickMode::Decode => {
                if let Some(MapEvent::Decode(z)) = self.map.click(p) {
                    self.decode_point(z);
                }
            }
            ClickMode::PickA | ClickMode::PickB => {
                let Some(i) = self.map.nearest(p) else { return };
                if self.click_mode == ClickMode::PickA {
                    self.pair.0 = Some(i);
                    self.click_mode = ClickMode::PickB;
                } else {
                    self.pair.1 = Some(i);
                    self.click_mode = ClickMode::Decode;
                }
                self.mark_pair();
                self.interpolate();
            }
        }
    }

    /// What a drawn path (map coordinates) does: decode the strip along it.
    pub fn draw_path(&mut self, path: Vec<[f64; 2]>) {
        if let Some(MapEvent::Strip(latents)) = self.map.finish_path(path) {
            self.decode_strip(latents);
        }
    }

    /// Interpolate between samples `a` and `b`.
    pub fn pick_pair(&mut self, a: usize, b: usize) {
        self.pair = (Some(a), Some(b));
        self.mark_pair();
        self.interpolate();
    }

    pub(super) fn decode_point(&mut self, z: Vec<f32>) {
        let Some(source) = self.source.clone() else {
            return;
        };
        let (s, zc) = (source.clone(), z.clone());
        self.compute(R_POINT, move || {
            let decoded = s.decode(&zc)?;
            Ok(Output::Point(zc, decoded))
        });
        // the directions at the new point, beside it
        let Some(samples) = self.samples.clone() else {
            return;
        };
        self.compute(R_DIRS, move || {
            Directions::compute(source.as_ref(), &samples, &z).map(Output::Directions)
        });
    }

    pub(super) fn decode_strip(&mut self, latents: Vec<Vec<f32>>) {
        let Some(source) = self.source.clone() else {
            return;
        };
        self.compute(R_PATH, move || {
            Strip::decode(source.as_ref(), latents).map(Output::PathStrip)
        });
    }

    pub(super) fn interpolate(&mut self) {
        let (Some(a), Some(b)) = self.pair else {
            return;
        };
        let (Some(source), Some(samples)) = (self.source.clone(), self.samples.clone()) else {
            return;
        };
        self.compute(R_INTERP, move || {
            Interpolation::compute(source.as_ref(), &samples, a, b).map(Output::Interpolation)
        });
    }

    /// Run `work` off the UI thread as the answer to a new request of `kind`.
    fn compute(
        &mut self,
        kind: usize,
        work: impl FnOnce() -> anyhow::Result<Output> + Send + 'static,
    ) {
        let r = self.request(kind);
        self.work
            .run(move || Done::Output(r, kind, work().map_err(|e| format!("{e:#}"))));
    }

    pub(super) fn mark_pair(&mut self) {
        self.map.marks.clear();
        let coords = self.map.coords();
        let mut marks = Vec::new();
        for (name, i) in [("A", self.pair.0), ("B", self.pair.1)] {
            if let Some(p) = i.and_then(|i| coords.get(i)) {
                marks.push((name.to_string(), *p));
            }
        }
        self.map.marks = marks;
    }

    /// Fit the map's plane and colours to the samples again.
    pub(super) fn refit(&mut self) {
        let Some(samples) = self.samples.clone() else {
            return;
        };
        let n = samples.latents.len();
        let groups = samples
            .colourings
            .get(self.colouring)
            .map(|c| groups(c, n))
            .unwrap_or_else(|| {
                vec![Group {
                    name: "samples".into(),
                    color: Color32::from_rgb(0, 114, 178),
                    members: (0..n).collect(),
                }]
            });
        self.map.axis_names = axis_names(self.map.projection, &self.dim_names);
        self.map.set_groups(&samples.latents, groups);
        // what was shown stays; its markers move to where its latents fall on the new plane
        if let Some(plane) = self.map.plane().cloned() {
            self.map.picked = self.point.as_ref().map(|(z, _)| plane.project(z));
            self.map.path = self
                .path_strip
                .as_ref()
                .map(|s| s.latents.iter().map(|z| plane.project(z)).collect())
                .unwrap_or_default();
        }
        self.mark_pair();
    }

    /// A new model decodes again what the old one showed.
    pub(super) fn redo(&mut self) {
        if let Some((z, _)) = self.point.clone() {
            self.decode_point(z);
        }
        if let Some(s) = self.path_strip.clone() {
            self.decode_strip(s.latents);
        }
        let n = self.samples.as_ref().map_or(0, |s| s.latents.len());
        if self.pair.0.is_some_and(|a| a >= n) || self.pair.1.is_some_and(|b| b >= n) {
            self.pair = (None, None);
            self.interpolation = None;
            self.mark_pair();
        }
        self.interpolate();
    }

    pub(super) fn play(&mut self, latents: Vec<Vec<f32>>) {
        let Some(source) = self.source.clone() else {
            return;
        };
        self.work.run(move || {
            Done::Sound(match source.sound(&latents) {
                Some(r) => r.map_err(|e| format!("{e:#}")),
                None => Err("this model has no sound".into()),
            })
        });
    }

    // -------------------------------------------------------------- drawing

    /// Draw the panel: the map with its controls, the decoded point, the path's strip, the
    /// interpolation, the local directions and the export row.
    pub fn ui(&mut self, ui: &mut egui::Ui, shared: &mut Shared) {
        if self.busy() {
            ui.ctx().request_repaint_after(Duration::from_millis(30));
        }
        self.make_textures(ui.ctx());
        ui.horizontal(|ui| {
            ui.strong("Navigate");
            ui.label(egui::RichText::new(&self.status).weak());
            if self.busy() {
                ui.spinner();
            }
        });
        let Some(samples) = self.samples.clone() else {
            return;
        };
        self.controls_ui(ui, &samples);
        ui.columns(2, |cols| {
            if let Some(input) = self.map.ui(&mut cols[0], &format!("{}_map", self.id)) {
                match input {
                    MapInput::Click(p) => self.click_at(p),
                    MapInput::Path(path) => self.draw_path(path),
                }
            }
            self.point_ui(&mut cols[1]);
        });
        self.path_ui(ui);
        self.interpolation_ui(ui, &samples);
        self.directions_ui(ui);
        self.export_ui(ui, shared);
    }

    pub(super) fn controls_ui(&mut self, ui: &mut egui::Ui, samples: &MapSamples) {
        ui.horizontal_wrapped(|ui| {
            let mut pca = self.map.projection == Projection::Pca;
            ui.label("plane:");
            let changed = ui.radio_value(&mut pca, true, "PCA").changed()
                | ui.radio_value(&mut pca, false, "two axes").changed();
            let (mut x, mut y) = self.axes;
            let mut axes_changed = false;
            if !pca {
                let names = self.dim_names.clone();
                for (label, value) in [("x", &mut x), ("y", &mut y)] {
                    egui::ComboBox::new(format!("{}_axis_{label}", self.id), label)
                        .selected_text(names.get(*value).cloned().unwrap_or_default())
                        .show_ui(ui, |ui| {
                            for (i, name) in names.iter().enumerate() {
                                axes_changed |= ui.selectable_value(value, i, name).changed();
                            }
                        });
                }
            }
            if changed || axes_changed {
                if x != y {
                    self.axes = (x, y);
                }
                let (x, y) = self.axes;
                self.set_projection(if pca {
                    Projection::Pca
                } else {
                    Projection::Axes { x, y }
                });
            }
            ui.separator();
            if samples.colourings.len() > 1 {
                let mut colouring = self.colouring;
                egui::ComboBox::new(format!("{}_colouring", self.id), "colour")
                    .selected_text(
                        samples
                            .colourings
                            .get(colouring)
                            .map(|c| c.name.as_str())
                            .unwrap_or(""),
                    )
                    .show_ui(ui, |ui| {
                        for (i, c) in samples.colourings.iter().enumerate() {
                            ui.selectable_value(&mut colouring, i, &c.name);
                        }
                    });
                if colouring != self.colouring {
                    self.set_colouring(colouring);
                }
                ui.separator();
            }
            ui.label("a click:");
            for (mode, text, hover) in [
                (
                    ClickMode::Decode,
                    "decodes",
                    "a click decodes the latent under the pointer; a drag draws a path",
                ),
                (
                    ClickMode::PickA,
                    "picks A",
                    "a click picks the nearest sample as the interpolation's start",
                ),
                (
                    ClickMode::PickB,
                    "picks B",
                    "a click picks the nearest sample as the interpolation's end",
                ),
            ] {
                ui.selectable_value(&mut self.click_mode, mode, text)
                    .on_hover_text(hover);
            }
        });
    }

    /// A picture at most `max` points, whole-pixel scaled where it fits, and widened (not
    /// taller) until each of its `cols` columns is at least 40 points wide: a spectrogram of
    /// five frames per note stays readable.
    pub(super) fn picture(
        ui: &mut egui::Ui,
        tex: &TextureHandle,
        cols: usize,
        max: egui::Vec2,
    ) -> egui::Response {
        let [w, h] = tex.size();
        let (w, h) = (w.max(1) as f32, h.max(1) as f32);
        let scale = (max.x / w).min(max.y / h);
        let scale = if scale >= 1.0 { scale.floor() } else { scale };
        let least = if cols > 1 {
            40.0 * cols as f32
        } else {
            (h * scale / 3.0).max(40.0)
        };
        let wide = (w * scale).max(least).min(max.x);
        ui.add(
            egui::Image::new(tex)
                .maintain_aspect_ratio(false)
                .fit_to_exact_size(egui::vec2(wide, h * scale)),
        )
    }

    /// Height for a picture of `rows` stacked images (a pose drawn in every class).
    pub(super) fn picture_height(rows: usize) -> f32 {
        if rows > 1 {
            (32.0 * rows as f32).min(360.0)
        } else {
            130.0
        }
    }

    pub(super) fn point_ui(&mut self, ui: &mut egui::Ui) {
        let Some((z, decoded)) = self.point.clone() else {
            ui.label("Click the map to decode a point; drag to draw a path.");
            return;
        };
        let at: Vec<String> = z.iter().map(|v| format!("{v:.3}")).collect();
        ui.label(format!("decoded at ({})", at.join(", ")));
        let painted = self
            .source
            .as_ref()
            .is_some_and(|s| decoded.is_vector() && s.paint(ui, &decoded));
        if !painted {
            match &self.textures.point {
                Some(tex) => {
                    let max = egui::vec2(ui.available_width(), 200.0);
                    Self::picture(ui, tex, decoded.picture_count(), max);
                }
                None if decoded.is_vector() => self.vector_ui(ui, &decoded),
                None => {}
            }
        }
        if self.source.as_ref().is_some_and(|s| s.has_sound())
            && ui.horizontal(|ui| ui.button("Play").clicked()).inner
        {
            self.play(vec![z]);
        }
    }

    pub(super) fn vector_ui(&self, ui: &mut egui::Ui, decoded: &Decoded) {
        let names = decoded.names();
        let bars = decoded
            .values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                egui_plot::Bar::new(i as f64, *v as f64)
                    .name(names.get(i).cloned().unwrap_or_default())
                    .width(0.7)
            })
            .collect();
        egui_plot::Plot::new(format!("{}_vector", self.id))
            .height(160.0)
            .allow_drag(false)
            .allow_zoom(false)
            .allow_scroll(false)
            .x_axis_formatter(move |m, _| {
                let i = m.value.round();
                if (m.value - i).abs() < 1e-6 && i >= 0.0 {
                    names.get(i as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .show(ui, |plot| {
                plot.bar_chart(egui_plot::BarChart::new("decoded", bars))
            });
    }

    /// Rows of strips: a picture per row, or for vectors one small plot per row.
    pub(super) fn strip_rows_ui(
        &self,
        ui: &mut egui::Ui,
        key: &str,
        rows: &[(String, &Strip)],
        textures: &[TextureHandle],
        playable: bool,
    ) -> Option<usize> {
        let mut play = None;
        for (k, (name, strip)) in rows.iter().enumerate() {
            ui.horizontal(|ui| {
                ui.label(name);
                if playable && ui.small_button("Play").clicked() {
                    play = Some(k);
                }
            });
            match textures.get(k) {
                Some(tex) => {
                    let rows = strip.decoded.first().map_or(1, Decoded::picture_count);
                    let max = egui::vec2(ui.available_width(), Self::picture_height(rows));
                    Self::picture(ui, tex, strip.decoded.len(), max);
                }
                None => self.vector_strip_ui(ui, &format!("{key}_{k}"), strip),
            }
        }
        play
    }

    pub(super) fn vector_strip_ui(&self, ui: &mut egui::Ui, key: &str, strip: &Strip) {
        let Some(first) = strip.decoded.first() else {
            return;
        };
        let names = first.names();
        egui_plot::Plot::new(format!("{}_{key}", self.id))
            .height(150.0)
            .allow_drag(false)
            .allow_zoom(false)
            .allow_scroll(false)
            .legend(
                egui_plot::Legend::default()
                    .text_style(egui::TextStyle::Small)
                    .background_alpha(0.5),
            )
            .show(ui, |plot| {
                for (f, name) in names.iter().enumerate() {
                    let pts: Vec<[f64; 2]> = strip
                        .decoded
                        .iter()
                        .enumerate()
                        .map(|(k, d)| [k as f64, d.values.get(f).copied().unwrap_or(0.0) as f64])
                        .collect();
                    plot.line(egui_plot::Line::new(
                        name.clone(),
                        egui_plot::PlotPoints::from(pts),
                    ));
                }
            });
    }

    pub(super) fn path_ui(&mut self, ui: &mut egui::Ui) {
        let Some(strip) = self.path_strip.clone() else {
            return;
        };
        ui.separator();
        let playable = self.source.as_ref().is_some_and(|s| s.has_sound());
        let textures: Vec<TextureHandle> = self.textures.path.iter().cloned().collect();
        let rows = [(format!("along the drawn path ({STRIP_LEN} steps)"), &strip)];
        if self
            .strip_rows_ui(ui, "path", &rows, &textures, playable)
            .is_some()
        {
            self.play(strip.latents.clone());
        }
    }

    pub(super) fn interpolation_ui(&mut self, ui: &mut egui::Ui, samples: &MapSamples) {
        ui.separator();
        ui.horizontal_wrapped(|ui| {
            ui.label("Interpolation:");
            let name =
                |i: Option<usize>| i.map_or("(pick on the map)".into(), |i| samples.label(i));
            ui.label(format!(
                "A {}  to  B {}",
                name(self.pair.0),
                name(self.pair.1)
            ));
            if ui
                .button("Pick A and B")
                .on_hover_text("the next two clicks on the map pick the nearest samples")
                .clicked()
            {
                self.click_mode = ClickMode::PickA;
            }
        });
        let Some(interp) = self.interpolation.clone() else {
            return;
        };
        let playable = self.source.as_ref().is_some_and(|s| s.has_sound());
        let rows = interp.rows();
        let textures = self.textures.interpolation.clone();
        if let Some(k) = self.strip_rows_ui(ui, "interp", &rows, &textures, playable) {
            self.play(rows[k].1.latents.clone());
        }
    }

    pub(super) fn directions_ui(&mut self, ui: &mut egui::Ui) {
        let Some(dirs) = self.directions.clone() else {
            return;
        };
        ui.separator();
        ui.label(format!(
            "Local directions at the decoded point: where the output changes most (steps of s, the samples' spread along each: {})",
            traversal_headers().join(" ")
        ));
        let playable = self.source.as_ref().is_some_and(|s| s.has_sound());
        let rows = dirs.captioned_strips();
        let textures = self.textures.directions.clone();
        if let Some(k) = self.strip_rows_ui(ui, "dirs", &rows, &textures, playable) {
            self.play(rows[k].1.latents.clone());
        }
    }

    pub(super) fn export_ui(&mut self, ui: &mut egui::Ui, shared: &mut Shared) {
        ui.separator();
        let actions = [
            ("Map", self.samples.is_some()),
            ("Point", self.point.is_some()),
            ("Path", self.path_strip.is_some()),
            ("Interpolation", self.interpolation.is_some()),
            ("Directions", self.directions.is_some()),
        ];
        let filters: &[(&str, &[&str])] =
            &[("PNG", &["png"]), ("SVG", &["svg"]), ("WAV", &["wav"])];
        let chosen = self.export.row(
            ui,
            "Export",
            "figure.png, .svg or .wav",
            FileRequest::Save,
            filters,
            &actions,
        );
        if let Some((k, path)) = chosen {
            self.export_view(k, path, shared);
        }
    }

    /// Write what the panel shows: 0 map, 1 point, 2 path, 3 interpolation, 4 directions.
    pub(super) fn export_view(&mut self, what: usize, path: PathBuf, shared: &mut Shared) {
        let Some(source) = self.source.clone() else {
            return;
        };
        let ext = path
            .extension()
            .map(|e| e.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        let wav = ext == "wav";
        if !matches!(ext.as_str(), "png" | "svg" | "wav") {
            return shared.error(format!("{}: export .png, .svg or .wav", path.display()));
        }
        if wav && (what == 0 || !source.has_sound()) {
            return shared.error(format!(
                "{}: {} (export .png or .svg)",
                path.display(),
                if what == 0 {
                    "the map is a figure"
                } else {
                    "this model has no sound"
                }
            ));
        }
        let title = source.title();
        let (samples, projection, colouring, dim_names) = (
            self.samples.clone(),
            self.map.projection,
            self.colouring,
            self.dim_names.clone(),
        );
        let (point, strip, interp, dirs) = (
            self.point.clone(),
            self.path_strip.clone(),
            self.interpolation.clone(),
            self.directions.clone(),
        );
        self.work.run(move || {
            let result = (|| -> anyhow::Result<()> {
                let latents: Vec<Vec<f32>> = match what {
                    1 => point.iter().map(|p| p.0.clone()).collect(),
                    2 => strip.iter().flat_map(|s| s.latents.clone()).collect(),
                    3 => interp
                        .iter()
                        .flat_map(|i| {
                            i.rows()
                                .into_iter()
                                .flat_map(|r| r.1.latents.clone())
                                .collect::<Vec<_>>()
                        })
                        .collect(),
                    _ => dirs
                        .iter()
                        .flat_map(|d| {
                            d.traversals
                                .iter()
                                .flat_map(|t| t.1.latents.clone())
                                .collect::<Vec<_>>()
                        })
                        .collect(),
                };
                if wav {
                    return write_sound(source.as_ref(), &latents, &path);
                }
                let fig = match what {
                    0 => {
                        let samples = samples.context("no samples")?;
                        map_figure(&title, &samples, &dim_names, projection, colouring)?
                    }
                    1 => {
                        let (z, d) = point.context("no decoded point")?;
                        point_figure(&title, &z, &d)?
                    }
                    2 => {
                        let s = strip.context("no path")?;
                        let headers = interpolation_headers(s.latents.len())
                            .into_iter()
                            .map(|h| h.replace('A', "start").replace('B', "end"))
                            .collect::<Vec<_>>();
                        strips_figure(
                            &format!("{title}: decoded along a path on the latent map"),
                            &[("path".into(), &s)],
                            &headers,
                        )?
                    }
                    3 => {
                        let i = interp.context("no interpolation")?;
                        let samples = samples.context("no samples")?;
                        strips_figure(
                            &format!(
                                "{title}: from {} (A) to {} (B)",
                                samples.label(i.a),
                                samples.label(i.b)
                            ),
                            &i.rows(),
                            &interpolation_headers(i.linear.latents.len()),
                        )?
                    }
                    _ => directions_figure(&title, &dirs.context("no directions")?)?,
                };
                figures::save(&fig, &path)
            })();
            Done::Wrote(result.map(|_| path).map_err(|e| format!("{e:#}")))
        });
    }

    /// Textures of results that arrived since the last frame.
    pub(super) fn make_textures(&mut self, ctx: &egui::Context) {
        let make = |name: String, rgb: Option<(usize, usize, Vec<u8>)>| {
            rgb.map(|(w, h, rgb)| {
                ctx.load_texture(
                    name,
                    ColorImage::from_rgb([w, h], &rgb),
                    TextureOptions::NEAREST,
                )
            })
        };
        let dirty = std::mem::take(&mut self.textures.dirty);
        if dirty[R_POINT] {
            self.textures.point = make(
                format!("{}_point", self.id),
                self.point.as_ref().and_then(|p| p.1.rgb()),
            );
        }
        if dirty[R_PATH] {
            self.textures.path = make(
                format!("{}_path", self.id),
                self.path_strip.as_ref().and_then(Strip::rgb),
            );
        }
        if dirty[R_INTERP] {
            self.textures.interpolation = self
                .interpolation
                .iter()
                .flat_map(|i| i.rows())
                .enumerate()
                .filter_map(|(k, (_, s))| make(format!("{}_interp{k}", self.id), s.rgb()))
                .collect();
        }
        if dirty[R_DIRS] {
            self.textures.directions = self
                .directions
                .iter()
                .flat_map(|d| d.traversals.iter())
                .enumerate()
                .filter_map(|(k, (_, s))| make(format!("{}_dir{k}", self.id), s.rgb()))
                .collect();
        }
    }
}
