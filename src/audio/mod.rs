//! Audio: spectral tools, WAV files, and real-time playback.

pub mod dsp;
pub mod engine;
pub mod latency;
pub mod soundfont;
pub mod wav;
