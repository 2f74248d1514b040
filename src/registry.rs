//! Every model family the program knows, in one place: its command-line side
//! ([`crate::cli::Family`]) and, where it has one, its tab in the window. The window's tab
//! list and the command line's family list both come from here.

use std::path::Path;
use std::sync::Arc;

use crate::app::explore::LabSource;
use crate::app::{
    Evaluate, Explore, FilesPanel, HostedLab, LabTab, Models, Shared, StartJob, Tab, TabMaker,
    TrainSettings, TrainingPanel, TrainingSpec,
};
use crate::cli::{CliError, Family};
use crate::nn::checkpoint::Checkpointed;
use crate::{digits, ievae, relevance, sps_music, sps_vision, v3};

/// Opens a checkpoint as the latent map's source, for `latent-lab export --figure
/// latent-map|interpolation|directions`.
pub type OpenExplore = fn(&Path) -> Result<Arc<dyn Explore>, CliError>;

/// One family: its commands, for the first family of a tab the tab, and where it has one
/// the source of its latent map.
pub struct Entry {
    pub family: &'static dyn Family,
    pub tab: Option<TabMaker>,
    pub explore: Option<OpenExplore>,
}

/// Every family, in tab order (a tab that shows several families is listed at its first).
pub static REGISTRY: &[Entry] = &[
    Entry::with_tab::<sps_music::view::PitchTab>(&sps_music::cli::SpsMusicFamily),
    Entry::with_tab::<relevance::view::RelevanceTab>(&relevance::cli::RelevanceFamily),
    Entry::with_tab::<ievae::view::ClassPoseTab>(&ievae::cli::IeVaeFamily),
    Entry::with_tab::<v3::view::CodebookTab>(&v3::cli::NOTES),
    Entry {
        family: &v3::cli::DIGITS,
        tab: None,
        explore: Some(LabSource::<v3::Lab>::open),
    },
    Entry::with_tab::<sps_vision::view::VisionTab>(&sps_vision::cli::SpsVisionFamily),
    Entry {
        family: &digits::cli::DigitClassifierFamily,
        tab: None,
        explore: None,
    },
];

impl Entry {
    /// A family with a tab `T` of its own, whose latent map shows the tab's labs.
    const fn with_tab<T: LabTab>(family: &'static dyn Family) -> Self
    where
        T::Lab: Checkpointed,
        LabSource<T::Lab>: Explore,
    {
        Self {
            family,
            tab: Some(open_tab::<T>),
            explore: Some(LabSource::<T::Lab>::open),
        }
    }
}

fn open_tab<T: LabTab>(shared: &mut Shared) -> Box<dyn Tab> {
    Box::new(T::new(shared))
}

/// The constructors of the window's tabs, in order.
pub fn tabs() -> Vec<TabMaker> {
    REGISTRY.iter().filter_map(|e| e.tab).collect()
}

/// The latent map's source of the family named `family`, where it has one.
pub fn explorer(family: &str) -> Option<OpenExplore> {
    REGISTRY
        .iter()
        .find(|e| e.family.name() == family)
        .and_then(|e| e.explore)
}

/// Starts `family`'s `latent-lab train` job for the window's training panel.
pub fn job_starter(family: &'static dyn Family) -> StartJob {
    Arc::new(move |args| family.train(args).map_err(message))
}

/// A tab's models of `family`: its files panel, its training panel (starting the family's
/// `latent-lab train` job), the metric table (its `latent-lab eval`) and A on the latent map
/// (the map's id `map`).
pub fn models<L: HostedLab>(
    family: &'static dyn Family,
    map: &str,
    files: FilesPanel,
    spec: TrainingSpec,
    settings: TrainSettings,
) -> Models<L>
where
    LabSource<L>: Explore,
{
    Models::new(
        files,
        TrainingPanel::new(spec, settings, job_starter(family)),
    )
    .with_evaluate(evaluator())
    .with_map(map, LabSource::of)
}

/// `latent-lab eval` of a file (by the family its metadata names, on that family's default
/// data), for the window's metric table of A against B.
pub fn evaluator() -> Evaluate {
    Arc::new(|path| {
        crate::cli::family_of(path)
            .and_then(|family| family.eval(path, None))
            .map_err(message)
    })
}

/// A command-line error as the window shows it.
pub fn message(e: CliError) -> String {
    match e {
        CliError::BadInput(e) | CliError::Failed(e) => format!("{e:#}"),
    }
}
