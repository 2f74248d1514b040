//! Audio: spectral tools, WAV files, and real-time playback.

pub mod dsp;
pub mod engine;
pub mod latency;
pub mod modulators;
pub mod sf3;
pub mod soundfont;
pub mod wav;
