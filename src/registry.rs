//! Every model family the program knows, in one place: its command-line side
//! ([`crate::cli::Family`]) and, where it has one, its tab in the window. The window's tab
//! list and the command line's family list both come from here.

use std::path::Path;
use std::sync::Arc;

use crate::app::explore::LabSource;
use crate::app::{
    Evaluate, Explore, FilesPanel, HostedLab, Models, StartJob, TabMaker, TrainSettings,
    TrainingPanel, TrainingSpec,
};
use crate::cli::{CliError, Family};

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
    Entry {
        family: &crate::sps_music::cli::SpsMusicFamily,
        tab: Some(|shared| Box::new(crate::sps_music::view::PitchTab::new(shared))),
        explore: Some(LabSource::<crate::sps_music::Lab>::open),
    },
    Entry {
        family: &crate::relevance::cli::RelevanceFamily,
        tab: Some(|shared| Box::new(crate::relevance::view::RelevanceTab::new(shared))),
        explore: Some(LabSource::<crate::relevance::Lab>::open),
    },
    Entry {
        family: &crate::ievae::cli::IeVaeFamily,
        tab: Some(|shared| Box::new(crate::ievae::view::ClassPoseTab::new(shared))),
        explore: Some(LabSource::<crate::ievae::Lab>::open),
    },
    Entry {
        family: &crate::v3::cli::NOTES,
        tab: Some(|shared| Box::new(crate::v3::view::CodebookTab::new(shared))),
        explore: Some(LabSource::<crate::v3::Lab>::open),
    },
    Entry {
        family: &crate::v3::cli::DIGITS,
        tab: None,
        explore: Some(LabSource::<crate::v3::Lab>::open),
    },
    Entry {
        family: &crate::sps_vision::cli::SpsVisionFamily,
        tab: Some(|shared| Box::new(crate::sps_vision::view::VisionTab::new(shared))),
        explore: Some(LabSource::<crate::sps_vision::Lab>::open),
    },
    Entry {
        family: &crate::digits::cli::DigitClassifierFamily,
        tab: None,
        explore: None,
    },
];

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
