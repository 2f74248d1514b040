//! Audio: spectral tools, WAV files, and real-time playback.

pub mod dsp;
pub mod engine;
pub mod wav;
pub mod latency;
