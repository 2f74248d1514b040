//! What every lab's tab does alike. Its [`Models`] hold the training panel, background work
//! of their own and half of what the tab remembers; the tab draws two columns of its own
//! above A's latent map. A tab implements [`LabTab`] and gets [`Tab`] from it.

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Changed, FileAction, HostedLab, Models, ModelsState, Shared, Tab, TrainingPanel};

/// What a lab's tab remembers across restarts: its own settings with its models' state
/// ([`Models::persist`]) flattened in.
pub trait TabState: Clone + Serialize + DeserializeOwned {
    fn models(&mut self) -> &mut ModelsState;
}

/// The state's `models` field as [`TabState::models`].
macro_rules! tab_state {
    ($state:ty) => {
        impl $crate::app::TabState for $state {
            fn models(&mut self) -> &mut $crate::app::ModelsState {
                &mut self.models
            }
        }
    };
}
pub(crate) use tab_state;

/// A tab of one family's lab, A and B in a [`Models`]. [`Tab`] comes with it: the layout, the
/// training panel, whether anything runs, persisting and restoring go through the models.
pub trait LabTab: 'static {
    type Lab: HostedLab;
    type State: TabState;
    /// What the tab's widgets ask for while drawn, taken up in [`Tab::apply_commands`].
    type Command;
    const TITLE: &'static str;
    /// Whether [`Tab::restore`] brings the remembered training settings back (a tab that
    /// shows several kinds of model decides in [`LabTab::restore`]).
    const RESTORES_SETTINGS: bool = true;

    /// The tab as the window opens it, with the model shipped in the models folder as A
    /// where there is one ([`LabTab::with_shipped`]).
    fn new(shared: &mut Shared) -> Self;

    /// The tab's models, and the same mutably: [`hold_models`] writes both with
    /// [`LabTab::state`] and [`LabTab::commands`] for fields of those names.
    fn models(&self) -> &Models<Self::Lab>;
    fn models_mut(&mut self) -> &mut Models<Self::Lab>;
    /// What the tab remembers (its models' part is filled in when it is persisted).
    fn state(&self) -> &Self::State;
    /// The commands asked for since they were last applied.
    fn commands(&mut self) -> &mut Vec<Self::Command>;

    /// See [`Tab::logic`].
    fn logic(&mut self, ctx: &egui::Context, shared: &mut Shared);
    /// Above the two columns; nothing unless the tab has something to show there.
    fn header_ui(&mut self, _ui: &mut egui::Ui) {}
    /// The tab's own two columns.
    fn columns_ui(&mut self, left: &mut egui::Ui, right: &mut egui::Ui);
    /// Carry out one command.
    fn apply(&mut self, command: Self::Command, shared: &mut Shared);
    /// A's or B's model changed: reset what was set for the old one.
    fn changed(&mut self, changed: impl IntoIterator<Item = Changed>);
    /// Write what export row `row` makes (its button `action`) to `path`.
    fn export(&mut self, row: usize, action: usize, path: PathBuf, shared: &mut Shared);
    /// A files-panel action: an export is the tab's ([`LabTab::export`]), the rest its
    /// models'.
    fn files(&mut self, action: FileAction, shared: &mut Shared) {
        match action {
            FileAction::Export { row, action, path } => self.export(row, action, path, shared),
            action => {
                let changed = self.models_mut().handle(action, shared);
                self.changed(changed);
            }
        }
    }
    /// The models' own logic ([`Models::logic`]), after the commands, with what changed
    /// passed to [`LabTab::changed`]; a tab that adjusts the training arguments, or reads the
    /// run's metrics, does it here.
    fn models_logic(&mut self, shared: &mut Shared) {
        let (_, changed) = self.models_mut().logic(shared, |_| {});
        self.changed(changed);
    }
    /// After the commands and the models' logic, so the next frame shows what the widgets
    /// asked for; nothing unless the tab has work that need not wait for [`LabTab::logic`].
    fn commands_applied(&mut self, _shared: &mut Shared) {}
    /// Background work of the tab's own is running (the models' is counted already).
    fn working(&self) -> bool {
        false
    }
    /// Take up the state of an earlier session; the models have taken theirs already.
    fn restore(&mut self, state: Self::State);

    /// The tab with the model shipped at `path` open as A, where there is a file.
    fn with_shipped(mut self, path: &Path, shared: &mut Shared) -> Self
    where
        Self: Sized,
    {
        if path.is_file() {
            let opened = self.models_mut().open(path, shared);
            self.changed(opened);
        }
        self
    }
}

/// The types of a [`LabTab`] (its lab, remembered state and command), with
/// [`LabTab::models`], [`LabTab::models_mut`], [`LabTab::state`] and [`LabTab::commands`] for a
/// tab that holds them in its fields `models`, `state` and `commands`.
macro_rules! hold_models {
    ($lab:ty, $state:ty, $command:ty) => {
        type Lab = $lab;
        type State = $state;
        type Command = $command;

        fn models(&self) -> &$crate::app::Models<Self::Lab> {
            &self.models
        }
        fn models_mut(&mut self) -> &mut $crate::app::Models<Self::Lab> {
            &mut self.models
        }
        fn state(&self) -> &Self::State {
            &self.state
        }
        fn commands(&mut self) -> &mut Vec<Self::Command> {
            &mut self.commands
        }
    };
}
pub(crate) use hold_models;

impl<T: LabTab> Tab for T {
    fn title(&self) -> &'static str {
        T::TITLE
    }

    fn logic(&mut self, ctx: &egui::Context, shared: &mut Shared) {
        LabTab::logic(self, ctx, shared);
    }

    fn ui(&mut self, ui: &mut egui::Ui, shared: &mut Shared) {
        egui::ScrollArea::vertical().show(ui, |ui| {
            self.header_ui(ui);
            ui.columns(2, |cols| {
                if let [left, right] = cols {
                    self.columns_ui(left, right);
                }
            });
            ui.separator();
            self.models_mut().map_ui(ui, shared);
        });
    }

    fn apply_commands(&mut self, shared: &mut Shared) {
        for command in std::mem::take(self.commands()) {
            self.apply(command, shared);
        }
        for action in std::mem::take(&mut self.models_mut().file_actions) {
            self.files(action, shared);
        }
        self.models_logic(shared);
        self.commands_applied(shared);
    }

    fn busy(&self) -> bool {
        self.models().busy() || self.working()
    }

    fn persist(&self) -> serde_json::Value {
        let mut s = self.state().clone();
        *s.models() = self.models().persist();
        serde_json::to_value(s).unwrap_or_default()
    }

    fn restore(&mut self, state: serde_json::Value) {
        let Ok(mut s) = serde_json::from_value::<T::State>(state) else {
            return;
        };
        self.models_mut().restore(s.models(), T::RESTORES_SETTINGS);
        LabTab::restore(self, s);
    }

    fn training_panel(&mut self) -> Option<&mut TrainingPanel> {
        Some(&mut self.models_mut().panel)
    }
}
