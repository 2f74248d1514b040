//! File paths in the window: a text field that always works, and a native dialog (rfd) on a
//! background thread when the desktop offers one.

use std::path::PathBuf;
use std::sync::mpsc::{Receiver, channel};

/// What the user wants to do with a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileRequest {
    Open,
    Save,
    Folder,
}

/// What a text field holds, as a path or data source: without the spaces around it, nor one
/// pair of quotes around the whole, which a path copied from a shell command often keeps
/// (`'/data/My Font.sf2'`) and no real path begins and ends with.
pub fn typed(text: &str) -> &str {
    let t = text.trim();
    for q in ['\'', '"'] {
        if let Some(inner) = t.strip_prefix(q).and_then(|r| r.strip_suffix(q)) {
            return inner.trim();
        }
    }
    t
}

/// A typed path plus a "Browse" button whose dialog runs off the UI thread.
#[derive(Default)]
pub struct PathField {
    pub text: String,
    pending: Option<Receiver<Option<PathBuf>>>,
}

impl PathField {
    pub fn new(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            pending: None,
        }
    }

    pub fn path(&self) -> Option<PathBuf> {
        let t = typed(&self.text);
        (!t.is_empty()).then(|| PathBuf::from(t))
    }

    /// Draw the field and its button; returns true when a dialog just delivered a path.
    pub fn ui(
        &mut self,
        ui: &mut egui::Ui,
        hint: &str,
        request: FileRequest,
        filters: &[(&str, &[&str])],
    ) -> bool {
        let mut delivered = false;
        if let Some(rx) = &self.pending {
            if let Ok(result) = rx.try_recv() {
                if let Some(p) = result {
                    self.text = p.display().to_string();
                    delivered = true;
                }
                self.pending = None;
            } else {
                ui.ctx()
                    .request_repaint_after(std::time::Duration::from_millis(100));
            }
        }
        ui.add(
            egui::TextEdit::singleline(&mut self.text)
                .hint_text(hint)
                .desired_width(260.0),
        );
        let browse = ui.add_enabled(self.pending.is_none(), egui::Button::new("Browse…"));
        if browse.clicked() {
            let (tx, rx) = channel();
            let start = self.path().and_then(|p| p.parent().map(|d| d.to_owned()));
            let filters: Vec<(String, Vec<String>)> = filters
                .iter()
                .map(|(n, e)| (n.to_string(), e.iter().map(|s| s.to_string()).collect()))
                .collect();
            let spawned = std::thread::Builder::new()
                .name("file-dialog".into())
                .spawn(move || {
                    let mut dialog = rfd::FileDialog::new();
                    if let Some(d) = start.filter(|d| d.is_dir()) {
                        dialog = dialog.set_directory(d);
                    }
                    for (name, exts) in &filters {
                        dialog = dialog.add_filter(name, exts);
                    }
                    let picked = match request {
                        FileRequest::Open => dialog.pick_file(),
                        FileRequest::Save => dialog.save_file(),
                        FileRequest::Folder => dialog.pick_folder(),
                    };
                    let _ = tx.send(picked);
                });
            if spawned.is_ok() {
                self.pending = Some(rx);
            }
        }
        browse.on_hover_text(
            "Opens the desktop's file dialog; when there is none, type the path instead",
        );
        delivered
    }

    /// A labelled row: the field, its Browse button, then one button per action (name, enabled).
    /// Returns the action clicked and the path typed; a path delivered by the dialog of an
    /// `Open` field counts as the first action.
    pub fn row(
        &mut self,
        ui: &mut egui::Ui,
        label: &str,
        hint: &str,
        request: FileRequest,
        filters: &[(&str, &[&str])],
        actions: &[(&str, bool)],
    ) -> Option<(usize, PathBuf)> {
        ui.horizontal(|ui| {
            ui.label(label);
            let mut chosen = None;
            if self.ui(ui, hint, request, filters)
                && request == FileRequest::Open
                && !actions.is_empty()
            {
                chosen = Some(0);
            }
            for (i, (name, enabled)) in actions.iter().enumerate() {
                if ui.add_enabled(*enabled, egui::Button::new(*name)).clicked() {
                    chosen = Some(i);
                }
            }
            chosen.and_then(|i| self.path().map(|p| (i, p)))
        })
        .inner
    }

    /// The "checkpoint" row every tab has: Open (always) and Save (when `can_save`).
    pub fn checkpoint_row(
        &mut self,
        ui: &mut egui::Ui,
        hint: &str,
        can_save: bool,
    ) -> Option<CheckpointAction> {
        match self.row(
            ui,
            "checkpoint",
            hint,
            FileRequest::Open,
            &[("checkpoint", &["safetensors"][..])],
            &[("Open", true), ("Save", can_save)],
        ) {
            Some((0, p)) => Some(CheckpointAction::Open(p)),
            Some((_, p)) => Some(CheckpointAction::Save(p)),
            None => None,
        }
    }
}

/// What the user asked of a [`PathField::checkpoint_row`].
pub enum CheckpointAction {
    Open(PathBuf),
    Save(PathBuf),
}

/// Every path a files panel holds, as the tab persists them.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct FilePaths {
    pub checkpoint: String,
    pub import: String,
    /// one per export row, in order
    pub exports: Vec<String>,
}

/// What the user asked of a [`FilesPanel`].
pub enum FileAction {
    Open(PathBuf),
    Save(PathBuf),
    /// official PyTorch weights to convert
    Import(PathBuf),
    /// button `action` of export row `row`
    Export {
        row: usize,
        action: usize,
        path: PathBuf,
    },
}

type Filters = &'static [(&'static str, &'static [&'static str])];

/// Figures: PNG or SVG.
pub const FIGURE_FILES: Filters = &[("figure", &["png", "svg"])];

/// A path to write and the buttons that write there.
struct ExportRow {
    label: &'static str,
    hint: &'static str,
    filters: Filters,
    actions: &'static [&'static str],
    field: PathField,
}

/// The files panel every tab shows: the checkpoint (Open, Save), official weights to import
/// where the family has them, and the tab's exports.
pub struct FilesPanel {
    pub checkpoint: PathField,
    import: Option<(&'static str, PathField)>,
    exports: Vec<ExportRow>,
}

impl FilesPanel {
    pub fn new(checkpoint: &std::path::Path) -> Self {
        Self {
            checkpoint: PathField::new(checkpoint.display().to_string()),
            import: None,
            exports: Vec::new(),
        }
    }

    /// Offer to import the official PyTorch weights (`hint`: a file name).
    pub fn with_import(mut self, hint: &'static str) -> Self {
        self.import = Some((hint, PathField::default()));
        self
    }

    /// An export row: its label, a hint, the file it writes by default and one button per
    /// action; [`FileAction::Export`] numbers rows and actions in the order given.
    pub fn with_export(
        mut self,
        label: &'static str,
        hint: &'static str,
        default: &str,
        filters: Filters,
        actions: &'static [&'static str],
    ) -> Self {
        self.exports.push(ExportRow {
            label,
            hint,
            filters,
            actions,
            field: PathField::new(default),
        });
        self
    }

    /// An export row of a figure, written as PNG or SVG by its extension.
    pub fn with_figure(
        self,
        label: &'static str,
        default: &str,
        actions: &'static [&'static str],
    ) -> Self {
        self.with_export(label, "a .png or .svg file", default, FIGURE_FILES, actions)
    }

    pub fn paths(&self) -> FilePaths {
        FilePaths {
            checkpoint: self.checkpoint.text.clone(),
            import: self
                .import
                .as_ref()
                .map(|(_, f)| f.text.clone())
                .unwrap_or_default(),
            exports: self.exports.iter().map(|e| e.field.text.clone()).collect(),
        }
    }

    /// Bring back the import and export paths of an earlier session (the checkpoint field
    /// keeps the model the tab opened).
    pub fn restore(&mut self, paths: &FilePaths) {
        if let Some((_, f)) = &mut self.import {
            f.text = paths.import.clone();
        }
        for (row, text) in self.exports.iter_mut().zip(&paths.exports) {
            if !text.trim().is_empty() {
                row.field.text = text.clone();
            }
        }
    }

    /// Draw the rows; `loaded`: there is a model to save or export; `can_export(row)`: what
    /// else an export row needs.
    pub fn ui(
        &mut self,
        ui: &mut egui::Ui,
        loaded: bool,
        can_export: impl Fn(usize) -> bool,
    ) -> Option<FileAction> {
        let mut action = match self
            .checkpoint
            .checkpoint_row(ui, "model.safetensors", loaded)
        {
            Some(CheckpointAction::Open(p)) => Some(FileAction::Open(p)),
            Some(CheckpointAction::Save(p)) => Some(FileAction::Save(p)),
            None => None,
        };
        if let Some((hint, field)) = &mut self.import
            && let Some((_, p)) = field.row(
                ui,
                "official .pt",
                hint,
                FileRequest::Open,
                &[("PyTorch", &["pt", "pth"])],
                &[("Import", true)],
            )
        {
            action = Some(FileAction::Import(p));
        }
        for (row, export) in self.exports.iter_mut().enumerate() {
            let enabled = loaded && can_export(row);
            let buttons: Vec<(&str, bool)> = export.actions.iter().map(|a| (*a, enabled)).collect();
            if let Some((i, path)) = export.field.row(
                ui,
                export.label,
                export.hint,
                FileRequest::Save,
                export.filters,
                &buttons,
            ) {
                action = Some(FileAction::Export {
                    row,
                    action: i,
                    path,
                });
            }
        }
        action
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_typed_path_loses_its_spaces_and_the_quotes_around_it() {
        assert_eq!(typed("  /data/a.sf2 "), "/data/a.sf2");
        assert_eq!(typed("'/data/My Font.sf2'"), "/data/My Font.sf2");
        assert_eq!(typed(" \"soundfont:/x.sf2\"\n"), "soundfont:/x.sf2");
        // quotes that do not pair up around the whole are part of the name
        assert_eq!(typed("'/data/a.sf2"), "'/data/a.sf2");
        assert_eq!(typed("'a\""), "'a\"");
        assert_eq!(typed("it's.wav"), "it's.wav");
        assert_eq!(typed("'"), "'");
        assert_eq!(typed("''"), "");
        assert_eq!(
            PathField::new(" '/m/x.safetensors' ").path(),
            Some(PathBuf::from("/m/x.safetensors"))
        );
        assert_eq!(PathField::new(" '' ").path(), None);
    }
}
