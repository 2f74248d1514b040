//! latent-lab: look inside the latent spaces of models that learn interpretable factors from symmetry.

pub mod app;
pub mod audio;
pub mod cli;
pub mod compare;
pub mod digits;
pub mod error;
pub mod figures;
pub mod ievae;
pub mod metrics;
pub mod nn;
pub mod registry;
pub mod relevance;
pub mod sps;
pub mod sps_music;
pub mod sps_vision;
pub mod v3;
pub mod worker;
