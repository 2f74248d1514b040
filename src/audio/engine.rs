//! Real-time playback: a phase-continuous additive voice and a clip player, fed through lock-free rings.
//!
//! Threading model:
//! - [`Controller`] lives on the UI thread and owns the *producer* ends of two `rtrb` SPSC rings
//!   (voice parameters, clip samples) plus an `Arc` of a few atomics.
//! - [`Engine`] owns the *consumer* ends and the oscillator state. With a device it is moved into
//!   the cpal data callback; without one it stays in [`Playback::Unavailable`] and can be rendered
//!   offline. [`Engine::render`] never allocates, locks or blocks.
//! - Clip flushing is position based: the controller publishes, in an `AtomicU64`, the cumulative
//!   sample index up to which everything already pushed is stale; the callback skips exactly up
//!   to that index, so a flush never eats samples of the clip that replaced it.
//!
//! Opening a device never fails the app: [`Playback::open`] runs the cpal calls on a helper thread
//! with a time limit and falls back to an offline engine with a one-line reason.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{FromSample, Sample, SampleFormat, SizedSample};
use rtrb::{Consumer, Producer, RingBuffer};

/// Most sinusoids the live voice can have.
pub const MAX_PARTIALS: usize = 64;
/// Rate of the offline engine used when no device is available.
pub const OFFLINE_SAMPLE_RATE: u32 = 48_000;
/// Duration of every frequency / amplitude / gain glide (linear ramp, per sample).
pub const GLIDE_SECONDS: f32 = 0.005;
/// Buffer size requested from the device (frames per callback), if its range allows it.
pub const PREFERRED_BUFFER_FRAMES: u32 = 256;
/// How long [`Playback::open`] waits for the backend before giving up.
pub const OPEN_TIMEOUT: Duration = Duration::from_secs(3);
/// Below this magnitude the limiter is the identity (clip samples come out bit-exact).
pub const LIMITER_KNEE: f32 = 0.8;
/// Longest clip [`Controller::play_clip`] queues, in seconds at `max(sample_rate, 48 kHz)`.
/// The ring holds twice that, so a full-length replacement clip still fits while the stale
/// one it flushes has not been discarded by the callback yet (12 MB of address space at
/// 48 kHz; pages are only touched as they are used).
pub const MAX_CLIP_SECONDS: usize = 30;

/// Frames rendered per internal pass (size of the engine's mono scratch buffer).
const CHUNK: usize = 256;
/// Capacity of the voice-parameter ring (each entry is ~520 bytes).
const VOICE_RING: usize = 64;
/// Partials at or above this fraction of the sample rate are dropped (keeps the phase
/// increment below 0.5 turn per sample, i.e. below Nyquist).
const MAX_FREQ_FRACTION: f32 = 0.49;
/// Upper bound for the voice gain (the limiter takes care of the rest).
const MAX_GAIN: f32 = 16.0;

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Partial {
    pub freq_hz: f32,
    pub amp: f32,
}

/// What the live voice should sound like now: up to MAX_PARTIALS sinusoids (fixed-size array, Copy, no heap), and a gain (0 = silent).
#[derive(Clone, Copy, Debug)]
pub struct VoiceParams {
    pub partials: [Partial; MAX_PARTIALS],
    pub count: usize,
    pub gain: f32,
}

impl Default for VoiceParams {
    fn default() -> Self {
        Self {
            partials: [Partial::default(); MAX_PARTIALS],
            count: 0,
            gain: 0.0,
        }
    }
}

impl VoiceParams {
    /// Build from a slice (extra partials beyond [`MAX_PARTIALS`] are ignored).
    pub fn from_partials(partials: &[Partial], gain: f32) -> Self {
        let mut p = Self {
            gain,
            ..Self::default()
        };
        let n = partials.len().min(MAX_PARTIALS);
        p.partials[..n].copy_from_slice(&partials[..n]);
        p.count = n;
        p
    }

    /// A single sinusoid.
    pub fn sine(freq_hz: f32, amp: f32, gain: f32) -> Self {
        Self::from_partials(&[Partial { freq_hz, amp }], gain)
    }

    /// The used partials (`count` clamped to [`MAX_PARTIALS`]).
    pub fn partials(&self) -> &[Partial] {
        &self.partials[..self.count.min(MAX_PARTIALS)]
    }
}

/// Atomics shared between the controller (UI), the callback and the error callback.
#[derive(Debug, Default)]
struct Shared {
    /// Cumulative clip-sample index up to which queued samples are stale (set by the controller).
    clip_flush_to: AtomicU64,
    /// Cumulative number of clip samples the engine has consumed (played or skipped).
    clip_consumed: AtomicU64,
    /// Frames rendered so far (all render calls).
    frames_rendered: AtomicU64,
    /// Stream errors reported by the backend (all kinds, xruns included).
    stream_errors: AtomicU64,
    /// Buffer under/overruns reported by the backend.
    xruns: AtomicU64,
    /// Device disconnected / stream invalidated: the stream must be reopened.
    device_lost: AtomicBool,
}

/// The callback's state: the consumer ends of the rings and the oscillators. Rendering is a plain function so tests and benches can run it without a device.
pub struct Engine {
    sample_rate: f32,
    inv_sample_rate: f32,
    max_freq: f32,
    glide_len: u32,
    voice_rx: Consumer<VoiceParams>,
    clip_rx: Consumer<f32>,
    shared: Arc<Shared>,
    clip_consumed: u64,
    /// Oscillators and scratch, boxed once in `new` (keeps `Engine` small to move around).
    bank: Box<Bank>,
}

/// Oscillator bank, structure-of-arrays. `phase` is in turns, in [0, 1).
struct Bank {
    phase: [f32; MAX_PARTIALS],
    freq: [f32; MAX_PARTIALS],
    freq_target: [f32; MAX_PARTIALS],
    freq_step: [f32; MAX_PARTIALS],
    amp: [f32; MAX_PARTIALS],
    amp_target: [f32; MAX_PARTIALS],
    amp_step: [f32; MAX_PARTIALS],
    gain: f32,
    gain_target: f32,
    gain_step: f32,
    /// Samples left in the current glide (shared by all oscillators and the gain).
    ramp_left: u32,
    /// Oscillators `>= active` are silent and stay silent until the next update.
    active: usize,
    /// Scratch for the new (sorted) partial set; kept here so render needs no big stack frame.
    incoming: [Partial; MAX_PARTIALS],
    mono: [f32; CHUNK],
}

/// The UI side: producer ends. Cheap to call every frame.
pub struct Controller {
    sample_rate: u32,
    voice_tx: Producer<VoiceParams>,
    clip_tx: Producer<f32>,
    shared: Arc<Shared>,
    /// Newest voice update that did not fit in the ring yet.
    pending: Option<VoiceParams>,
    /// Last voice requested (so `silence` can fade the same partials out).
    last: VoiceParams,
    /// Cumulative number of clip samples pushed.
    clip_pushed: u64,
    /// Most samples one `play_clip` queues.
    max_clip: usize,
    /// Device sample format and channel count (None for an offline engine).
    output: Option<(SampleFormat, u16)>,
}

impl Engine {
    /// `sample_rate` is the output rate. Glides last [`GLIDE_SECONDS`] whatever the block size.
    pub fn new(sample_rate: u32) -> (Engine, Controller) {
        let sample_rate = sample_rate.max(1);
        let sr = sample_rate as f32;
        let (voice_tx, voice_rx) = RingBuffer::new(VOICE_RING);
        let max_clip = (sample_rate.max(48_000) as usize) * MAX_CLIP_SECONDS;
        let (clip_tx, clip_rx) = RingBuffer::new(2 * max_clip);
        let shared = Arc::new(Shared::default());
        let engine = Engine {
            sample_rate: sr,
            inv_sample_rate: 1.0 / sr,
            max_freq: sr * MAX_FREQ_FRACTION,
            glide_len: ((sr * GLIDE_SECONDS).round() as u32).max(1),
            voice_rx,
            clip_rx,
            shared: Arc::clone(&shared),
            clip_consumed: 0,
            bank: Box::new(Bank {
                phase: [0.0; MAX_PARTIALS],
                freq: [0.0; MAX_PARTIALS],
                freq_target: [0.0; MAX_PARTIALS],
                freq_step: [0.0; MAX_PARTIALS],
                amp: [0.0; MAX_PARTIALS],
                amp_target: [0.0; MAX_PARTIALS],
                amp_step: [0.0; MAX_PARTIALS],
                gain: 0.0,
                gain_target: 0.0,
                gain_step: 0.0,
                ramp_left: 0,
                active: 0,
                incoming: [Partial::default(); MAX_PARTIALS],
                mono: [0.0; CHUNK],
            }),
        };
        let controller = Controller {
            sample_rate,
            voice_tx,
            clip_tx,
            shared,
            pending: None,
            last: VoiceParams::default(),
            clip_pushed: 0,
            max_clip,
            output: None,
        };
        (engine, controller)
    }

    pub fn sample_rate(&self) -> u32 {
        self.sample_rate as u32
    }

    /// Fill `out` (interleaved, `channels` channels) — allocation-free. Drains all pending VoiceParams (keeps the newest), glides each oscillator's frequency and amplitude to its target over ~5 ms (linear ramp per sample) so there are no clicks; oscillators keep their phase across updates (phase-continuous); partials matched to previous ones by index after sorting by frequency; a partial that disappears fades out, a new one fades in from zero amplitude. Mixes in clip samples from the clip ring (already at the device rate). Applies a soft limiter so output stays in [-1, 1].
    pub fn render(&mut self, out: &mut [f32], channels: usize) {
        self.render_as(out, channels);
    }

    /// [`Engine::render`] for any cpal sample type (i16, u16, f64, ...), converting per sample
    /// without allocating. The voice and clips are mono and copied to every channel; a trailing
    /// partial frame (if `out.len()` is not a multiple of `channels`) is set to silence.
    pub fn render_as<T: Sample + FromSample<f32>>(&mut self, out: &mut [T], channels: usize) {
        self.poll_updates();
        if channels == 0 {
            out.fill(T::EQUILIBRIUM);
            return;
        }
        let frames = out.len() / channels;
        out[frames * channels..].fill(T::EQUILIBRIUM);
        let mut done = 0;
        while done < frames {
            let n = (frames - done).min(CHUNK);
            self.render_chunk(n);
            let dst = &mut out[done * channels..(done + n) * channels];
            for (frame, &x) in dst.chunks_exact_mut(channels).zip(&self.bank.mono[..n]) {
                frame.fill(T::from_sample(soft_limit(x)));
            }
            done += n;
        }
        self.shared
            .clip_consumed
            .store(self.clip_consumed, Ordering::Release);
        self.shared
            .frames_rendered
            .fetch_add(frames as u64, Ordering::Relaxed);
    }

    /// Apply the newest voice update and any clip flush. Called at the start of each render.
    fn poll_updates(&mut self) {
        let mut newest: Option<VoiceParams> = None;
        while let Ok(p) = self.voice_rx.pop() {
            newest = Some(p);
        }
        if let Some(p) = newest {
            self.apply(&p);
        }
        let flush_to = self.shared.clip_flush_to.load(Ordering::Acquire);
        if self.clip_consumed < flush_to {
            // Every stale sample was pushed before `flush_to` was published, so it is readable.
            let stale = (flush_to - self.clip_consumed).min(self.clip_rx.slots() as u64) as usize;
            if let Ok(chunk) = self.clip_rx.read_chunk(stale) {
                chunk.commit_all();
                self.clip_consumed += stale as u64;
            }
        }
    }

    /// Retarget the oscillator bank: sort by frequency, match by index, start a glide.
    fn apply(&mut self, p: &VoiceParams) {
        let mut n = 0;
        for q in p.partials() {
            if q.freq_hz.is_finite()
                && q.freq_hz > 0.0
                && q.freq_hz < self.max_freq
                && q.amp.is_finite()
            {
                self.bank.incoming[n] = *q;
                n += 1;
            }
        }
        // In place, no allocation (unlike the stable sort).
        self.bank.incoming[..n].sort_unstable_by(|a, b| a.freq_hz.total_cmp(&b.freq_hz));

        let len = self.glide_len as f32;
        let mut active = 0;
        for i in 0..MAX_PARTIALS {
            let (f, a) = if i < n {
                (self.bank.incoming[i].freq_hz, self.bank.incoming[i].amp)
            } else {
                (self.bank.freq[i], 0.0)
            };
            if self.bank.amp[i] == 0.0 {
                // Silent now: start at the new frequency and fade in from zero.
                self.bank.freq[i] = f;
                self.bank.freq_step[i] = 0.0;
            } else {
                self.bank.freq_step[i] = (f - self.bank.freq[i]) / len;
            }
            self.bank.freq_target[i] = f;
            self.bank.amp_target[i] = a;
            self.bank.amp_step[i] = (a - self.bank.amp[i]) / len;
            if a != 0.0 || self.bank.amp[i] != 0.0 {
                active = i + 1;
            }
        }
        let g = if p.gain.is_finite() {
            p.gain.clamp(0.0, MAX_GAIN)
        } else {
            0.0
        };
        self.bank.gain_target = g;
        self.bank.gain_step = (g - self.bank.gain) / len;
        self.bank.ramp_left = self.glide_len;
        self.bank.active = active;
    }

    /// Render `n <= CHUNK` mono frames (voice + clip, before the limiter) into `self.bank.mono`.
    fn render_chunk(&mut self, n: usize) {
        let mono = &mut self.bank.mono[..n];
        mono.fill(0.0);
        let r = (self.bank.ramp_left as usize).min(n);
        let voice_silent = self.bank.gain == 0.0 && self.bank.gain_target == 0.0;

        if voice_silent {
            // Nothing to hear: just move the glides along.
            let k = r as f32;
            for i in 0..self.bank.active {
                self.bank.freq[i] += self.bank.freq_step[i] * k;
                self.bank.amp[i] += self.bank.amp_step[i] * k;
            }
        } else {
            let inv_sr = self.inv_sample_rate;
            for i in 0..self.bank.active {
                let mut ph = self.bank.phase[i];
                let mut f = self.bank.freq[i];
                let mut a = self.bank.amp[i];
                let (fs, as_) = (self.bank.freq_step[i], self.bank.amp_step[i]);
                let (ramp, steady) = mono.split_at_mut(r);
                if a == 0.0 && as_ == 0.0 {
                    // Silent oscillator: skip synthesis, phase is irrelevant.
                    f += fs * r as f32;
                } else {
                    for s in ramp.iter_mut() {
                        *s += a * sin_turns(ph);
                        ph += f * inv_sr;
                        if ph >= 1.0 {
                            ph -= 1.0;
                        }
                        f += fs;
                        a += as_;
                    }
                }
                if r == self.bank.ramp_left as usize {
                    // Glide ends inside this chunk: land exactly on the targets.
                    f = self.bank.freq_target[i];
                    a = self.bank.amp_target[i];
                }
                if a != 0.0 && !steady.is_empty() {
                    let inc = f * inv_sr;
                    for s in steady.iter_mut() {
                        *s += a * sin_turns(ph);
                        ph += inc;
                        if ph >= 1.0 {
                            ph -= 1.0;
                        }
                    }
                }
                self.bank.phase[i] = ph;
                self.bank.freq[i] = f;
                self.bank.amp[i] = a;
            }
            let (ramp, steady) = mono.split_at_mut(r);
            let mut g = self.bank.gain;
            for s in ramp.iter_mut() {
                *s *= g;
                g += self.bank.gain_step;
            }
            if r == self.bank.ramp_left as usize {
                g = self.bank.gain_target;
            }
            for s in steady.iter_mut() {
                *s *= g;
            }
            self.bank.gain = g;
        }
        if self.bank.ramp_left > 0 {
            self.bank.ramp_left -= r as u32;
            if self.bank.ramp_left == 0 {
                self.finish_glide();
            }
        }

        // Clip samples (mono, already at the device rate).
        let avail = self.clip_rx.slots().min(n);
        if avail > 0
            && let Ok(chunk) = self.clip_rx.read_chunk(avail)
        {
            let (a, b) = chunk.as_slices();
            for (s, &c) in self.bank.mono[..avail].iter_mut().zip(a.iter().chain(b)) {
                *s += c;
            }
            chunk.commit_all();
            self.clip_consumed += avail as u64;
        }
    }

    fn finish_glide(&mut self) {
        let mut active = 0;
        for i in 0..MAX_PARTIALS {
            self.bank.freq[i] = self.bank.freq_target[i];
            self.bank.amp[i] = self.bank.amp_target[i];
            self.bank.freq_step[i] = 0.0;
            self.bank.amp_step[i] = 0.0;
            if self.bank.amp[i] != 0.0 {
                active = i + 1;
            }
        }
        self.bank.gain = self.bank.gain_target;
        self.bank.gain_step = 0.0;
        self.bank.active = active;
    }
}

/// `sin(2π·p)` for `p` in `[0, 1)`; branch-free odd polynomial after folding to `[-π/2, π/2]`.
/// Max abs error ≈ 6e-8 (Taylor to x^11), i.e. at f32 precision.
#[inline(always)]
fn sin_turns(p: f32) -> f32 {
    let z = p - 0.5; // sin(2πp) = -sin(2πz), z in [-0.5, 0.5)
    let r = 0.25 - ((z.abs()) - 0.25).abs(); // fold |z| into [0, 0.25]
    let x = r.copysign(z) * std::f32::consts::TAU;
    let x2 = x * x;
    let s = x
        * (1.0
            + x2 * (-1.0 / 6.0
                + x2 * (1.0 / 120.0
                    + x2 * (-1.0 / 5040.0 + x2 * (1.0 / 362_880.0 + x2 * (-1.0 / 39_916_800.0))))));
    -s
}

/// Identity below [`LIMITER_KNEE`], then a tanh knee that approaches ±1 (C¹ at the knee).
#[inline(always)]
fn soft_limit(x: f32) -> f32 {
    let a = x.abs();
    if a <= LIMITER_KNEE {
        x
    } else if x.is_nan() {
        0.0
    } else {
        let head = 1.0 - LIMITER_KNEE;
        (LIMITER_KNEE + head * ((a - LIMITER_KNEE) / head).tanh())
            .min(1.0)
            .copysign(x)
    }
}

impl Controller {
    /// Never blocks; if the ring is full the update is dropped but the newest is kept pending
    /// and retried on the next call (of any `Controller` method that sends voice updates, or
    /// [`Controller::flush_pending`]).
    pub fn set_voice(&mut self, p: &VoiceParams) {
        self.last = *p;
        self.pending = Some(*p);
        self.flush_pending();
    }

    /// Retry a voice update that did not fit earlier. Returns true when nothing is pending.
    pub fn flush_pending(&mut self) -> bool {
        if let Some(p) = self.pending
            && self.voice_tx.push(p).is_ok()
        {
            self.pending = None;
        }
        self.pending.is_none()
    }

    /// Voice gain to 0 (with fade); the current partials fade out together.
    pub fn silence(&mut self) {
        let mut p = self.last;
        p.gain = 0.0;
        self.set_voice(&p);
    }

    /// Pushes as many samples as fit and returns how many were queued. Anything queued before
    /// (the previous clip) is flushed first. Up to [`MAX_CLIP_SECONDS`] (30 s at 48 kHz) are
    /// always queued in full, as long as the callback has run since the play_clip before last
    /// (i.e. unless three clips are started within one callback period); longer clips are
    /// truncated to that length.
    pub fn play_clip(&mut self, samples: &[f32]) -> usize {
        self.stop_clip();
        let samples = &samples[..samples.len().min(self.max_clip)];
        let (pushed, _rest) = self.clip_tx.push_partial_slice(samples);
        self.clip_pushed += pushed.len() as u64;
        pushed.len()
    }

    /// Discard everything queued so far (takes effect at the next render).
    pub fn stop_clip(&mut self) {
        self.flush_pending();
        self.shared
            .clip_flush_to
            .store(self.clip_pushed, Ordering::Release);
    }

    /// Clip samples still to be played (excluding flushed ones); 0 when no clip is playing.
    pub fn clip_samples_queued(&self) -> u64 {
        let consumed = self.shared.clip_consumed.load(Ordering::Acquire);
        let start = consumed.max(self.shared.clip_flush_to.load(Ordering::Relaxed));
        self.clip_pushed.saturating_sub(start)
    }

    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// The last voice requested through `set_voice` / `silence`.
    pub fn last_voice(&self) -> &VoiceParams {
        &self.last
    }

    /// Device sample format and channel count of the live stream (None when offline).
    pub fn output_format(&self) -> Option<(SampleFormat, u16)> {
        self.output
    }

    /// Frames the engine has rendered so far (grows while a live stream runs).
    pub fn frames_rendered(&self) -> u64 {
        self.shared.frames_rendered.load(Ordering::Relaxed)
    }

    /// Errors the backend reported on the stream (xruns included), and xruns alone.
    pub fn stream_errors(&self) -> (u64, u64) {
        (
            self.shared.stream_errors.load(Ordering::Relaxed),
            self.shared.xruns.load(Ordering::Relaxed),
        )
    }

    /// True once the backend reported that the device went away or the stream must be rebuilt
    /// (reopen with [`Playback::open`]).
    pub fn device_lost(&self) -> bool {
        self.shared.device_lost.load(Ordering::Relaxed)
    }
}

/// Why a device could not be opened (rendered as one line in [`Playback::status_line`]).
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("no audio host is available")]
    NoHost,
    #[error("{host}: no default output device")]
    NoDevice { host: &'static str },
    #[error("{host}: cannot open the default output device: {}", brief(.source))]
    Config {
        host: &'static str,
        source: cpal::Error,
    },
    #[error("{host}: no supported output sample format (device offers {format})")]
    NoFormat {
        host: &'static str,
        format: SampleFormat,
    },
    #[error("{host}: cannot build the output stream: {}", brief(.source))]
    Build {
        host: &'static str,
        source: cpal::Error,
    },
    #[error("{host}: cannot start the output stream: {}", brief(.source))]
    Play {
        host: &'static str,
        source: cpal::Error,
    },
    #[error("{}", brief(.0))]
    Host(cpal::Error),
    #[error("opening the audio device did not finish within {0:?}")]
    Timeout(Duration),
    #[error("the audio backend panicked: {0}")]
    Panicked(String),
    #[error("cannot start the audio-open thread: {0}")]
    Spawn(std::io::Error),
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    AllHostsFailed(Vec<OpenError>),
}

/// Opens the default output device with cpal; the Engine moves into the stream callback.
pub enum Playback {
    Live {
        controller: Controller,
        stream: cpal::Stream,
        device_name: String,
        buffer_frames: Option<u32>,
    },
    Unavailable {
        reason: String,
        controller: Controller,
        engine: Engine,
    },
}

impl std::fmt::Debug for Playback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.status_line())
    }
}

impl Playback {
    /// Never panics; any error -> Unavailable with a one-line reason, plus an offline
    /// Engine/Controller pair at 48000 Hz so the app still works. Bounded by [`OPEN_TIMEOUT`].
    pub fn open() -> Playback {
        Self::open_with_timeout(OPEN_TIMEOUT)
    }

    /// [`Playback::open`] with an explicit bound. The cpal calls run on a helper thread; if the
    /// backend hangs, that thread is abandoned (it drops whatever it eventually builds).
    pub fn open_with_timeout(timeout: Duration) -> Playback {
        match open_live(timeout) {
            Ok(live) => Playback::Live {
                controller: live.controller,
                stream: live.stream,
                device_name: live.device_name,
                buffer_frames: live.buffer_frames,
            },
            Err(e) => Playback::offline(e.to_string()),
        }
    }

    /// No device: an offline 48 kHz engine (for `--no-audio`, tests, or after a failure).
    pub fn offline(reason: impl Into<String>) -> Playback {
        let reason = one_line(&reason.into());
        let (engine, controller) = Engine::new(OFFLINE_SAMPLE_RATE);
        Playback::Unavailable {
            reason,
            controller,
            engine,
        }
    }

    pub fn is_live(&self) -> bool {
        matches!(self, Playback::Live { .. })
    }

    pub fn controller(&mut self) -> &mut Controller {
        match self {
            Playback::Live { controller, .. } => controller,
            Playback::Unavailable {
                controller, engine, ..
            } => {
                // Nobody renders offline in the background: let the engine absorb what is
                // already queued (newest voice kept, flushed clip samples dropped) so the
                // rings cannot fill up while audio is unavailable.
                engine.render(&mut [], 1);
                controller
            }
        }
    }

    /// "audio: <device> @ 48000 Hz, 256-frame buffer" or "audio unavailable: <reason>"
    pub fn status_line(&self) -> String {
        match self {
            Playback::Live {
                controller,
                device_name,
                buffer_frames,
                ..
            } => {
                let buf = match buffer_frames {
                    Some(n) => format!("{n}-frame buffer"),
                    None => "default buffer".to_owned(),
                };
                let lost = if controller.device_lost() {
                    " (device lost)"
                } else {
                    ""
                };
                format!(
                    "audio: {device_name} @ {} Hz, {buf}{lost}",
                    controller.sample_rate()
                )
            }
            Playback::Unavailable { reason, .. } => format!("audio unavailable: {reason}"),
        }
    }

    /// offline only: render the next `frames` frames (mono) from the offline engine; None when Live
    pub fn render_offline(&mut self, frames: usize) -> Option<Vec<f32>> {
        match self {
            Playback::Live { .. } => None,
            Playback::Unavailable { engine, .. } => {
                let mut out = vec![0.0; frames];
                engine.render(&mut out, 1);
                Some(out)
            }
        }
    }
}

/// cpal's own text when the backend gave one, else a short phrase for the kind (cpal's kind
/// descriptions are full sentences, e.g. "...It may have been disconnected.").
fn brief(e: &cpal::Error) -> String {
    use cpal::ErrorKind as K;
    if let Some(m) = e.message() {
        return m.to_owned();
    }
    match e.kind() {
        K::DeviceNotAvailable => "device not available (no sound card?)".to_owned(),
        K::DeviceBusy => "device busy (in use by another application)".to_owned(),
        K::HostUnavailable => "audio system not available".to_owned(),
        K::PermissionDenied => "permission denied".to_owned(),
        K::UnsupportedConfig => "configuration not supported".to_owned(),
        K::UnsupportedOperation => "operation not supported".to_owned(),
        _ => e.to_string(),
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

struct LiveParts {
    controller: Controller,
    stream: cpal::Stream,
    device_name: String,
    buffer_frames: Option<u32>,
}

// `Playback::open` moves the stream from the helper thread; cpal 0.18 asserts `Stream: Send`
// on every backend, and this fails to compile if that ever changes.
const _: () = {
    const fn assert_send<T: Send>() {}
    assert_send::<cpal::Stream>();
};

fn open_live(timeout: Duration) -> Result<LiveParts, OpenError> {
    let (tx, rx) = mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("audio-open".to_owned())
        .spawn(move || {
            let result = catch_unwind(AssertUnwindSafe(open_any_host)).unwrap_or_else(|payload| {
                let msg = payload
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".to_owned());
                Err(OpenError::Panicked(msg))
            });
            // If the caller gave up waiting, this fails and the stream (if any) is dropped here.
            let _ = tx.send(result);
        })
        .map_err(OpenError::Spawn)?;
    match rx.recv_timeout(timeout) {
        Ok(result) => result,
        Err(mpsc::RecvTimeoutError::Timeout) => Err(OpenError::Timeout(timeout)),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            Err(OpenError::Panicked("open thread exited".to_owned()))
        }
    }
}

/// Try each compiled-in host in cpal's priority order (on Linux with default features: ALSA).
fn open_any_host() -> Result<LiveParts, OpenError> {
    let mut errors = Vec::new();
    for id in cpal::available_hosts() {
        let host = match cpal::host_from_id(id) {
            Ok(h) => h,
            Err(e) => {
                errors.push(OpenError::Host(e));
                continue;
            }
        };
        match open_on_host(&host, id.name()) {
            Ok(live) => return Ok(live),
            Err(e) => errors.push(e),
        }
    }
    match errors.len() {
        0 => Err(OpenError::NoHost),
        1 => Err(errors.remove(0)),
        _ => Err(OpenError::AllHostsFailed(errors)),
    }
}

fn is_supported_format(f: SampleFormat) -> bool {
    use SampleFormat::*;
    matches!(
        f,
        F32 | F64 | I8 | I16 | I24 | I32 | I64 | U8 | U16 | U24 | U32 | U64
    )
}

fn open_on_host(host: &cpal::Host, host_name: &'static str) -> Result<LiveParts, OpenError> {
    let device = host
        .default_output_device()
        .ok_or(OpenError::NoDevice { host: host_name })?;
    let device_name = device
        .description()
        .map(|d| d.name().to_owned())
        .unwrap_or_else(|_| device.to_string());
    let default = device
        .default_output_config()
        .map_err(|source| OpenError::Config {
            host: host_name,
            source,
        })?;

    // Prefer the device default (cpal 0.18: 48 kHz, F32 first); if its format is exotic
    // (DSD), take an f32/i16/u16 range at a standard rate instead.
    let supported = if is_supported_format(default.sample_format()) {
        default
    } else {
        let alt = device.supported_output_configs().ok().and_then(|ranges| {
            let mut ranges: Vec<_> = ranges
                .filter(|r| is_supported_format(r.sample_format()))
                .collect();
            ranges.sort_by(|a, b| b.cmp_default_heuristics(a));
            ranges
                .into_iter()
                .find_map(|r| r.try_with_standard_sample_rate())
        });
        alt.ok_or(OpenError::NoFormat {
            host: host_name,
            format: default.sample_format(),
        })?
    };

    let fixed = match *supported.buffer_size() {
        cpal::SupportedBufferSize::Range { min, max } if min <= max => {
            Some(PREFERRED_BUFFER_FRAMES.clamp(min.max(1), max))
        }
        cpal::SupportedBufferSize::Range { .. } => None,
        cpal::SupportedBufferSize::Unknown => Some(PREFERRED_BUFFER_FRAMES),
    };
    let mut config = supported.config();
    let mut last_err = None;
    for buffer_size in fixed
        .map(cpal::BufferSize::Fixed)
        .into_iter()
        .chain([cpal::BufferSize::Default])
    {
        config.buffer_size = buffer_size;
        let (engine, mut controller) = Engine::new(config.sample_rate);
        controller.output = Some((supported.sample_format(), config.channels));
        match build_stream(
            &device,
            config,
            supported.sample_format(),
            engine,
            Arc::clone(&controller.shared),
        ) {
            Ok(stream) => {
                stream.play().map_err(|source| OpenError::Play {
                    host: host_name,
                    source,
                })?;
                let requested = match buffer_size {
                    cpal::BufferSize::Fixed(n) => Some(n),
                    cpal::BufferSize::Default => None,
                };
                let buffer_frames = stream.buffer_size().ok().or(requested);
                return Ok(LiveParts {
                    controller,
                    stream,
                    device_name,
                    buffer_frames,
                });
            }
            Err(e) => last_err = Some(e),
        }
    }
    Err(OpenError::Build {
        host: host_name,
        source: last_err.unwrap_or_else(|| cpal::ErrorKind::UnsupportedConfig.into()),
    })
}

fn build_stream(
    device: &cpal::Device,
    config: cpal::StreamConfig,
    format: SampleFormat,
    engine: Engine,
    shared: Arc<Shared>,
) -> Result<cpal::Stream, cpal::Error> {
    use SampleFormat as F;
    match format {
        F::F32 => build_typed::<f32>(device, config, engine, shared),
        F::F64 => build_typed::<f64>(device, config, engine, shared),
        F::I8 => build_typed::<i8>(device, config, engine, shared),
        F::I16 => build_typed::<i16>(device, config, engine, shared),
        F::I24 => build_typed::<cpal::I24>(device, config, engine, shared),
        F::I32 => build_typed::<i32>(device, config, engine, shared),
        F::I64 => build_typed::<i64>(device, config, engine, shared),
        F::U8 => build_typed::<u8>(device, config, engine, shared),
        F::U16 => build_typed::<u16>(device, config, engine, shared),
        F::U24 => build_typed::<cpal::U24>(device, config, engine, shared),
        F::U32 => build_typed::<u32>(device, config, engine, shared),
        F::U64 => build_typed::<u64>(device, config, engine, shared),
        _ => Err(cpal::ErrorKind::UnsupportedConfig.into()),
    }
}

fn build_typed<T: SizedSample + FromSample<f32>>(
    device: &cpal::Device,
    config: cpal::StreamConfig,
    mut engine: Engine,
    shared: Arc<Shared>,
) -> Result<cpal::Stream, cpal::Error> {
    let channels = config.channels as usize;
    device.build_output_stream(
        config,
        move |data: &mut [T], _: &cpal::OutputCallbackInfo| engine.render_as(data, channels),
        // Runs on the backend's thread: only atomics, no printing.
        move |err: cpal::Error| {
            shared.stream_errors.fetch_add(1, Ordering::Relaxed);
            match err.kind() {
                cpal::ErrorKind::Xrun => {
                    shared.xruns.fetch_add(1, Ordering::Relaxed);
                }
                cpal::ErrorKind::DeviceNotAvailable | cpal::ErrorKind::StreamInvalidated => {
                    shared.device_lost.store(true, Ordering::Relaxed);
                }
                _ => {}
            }
        },
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    const SR: u32 = 48_000;
    const BLOCK: usize = 256;

    /// Render `frames` mono frames in BLOCK-sized calls.
    fn render_blocks(engine: &mut Engine, frames: usize) -> Vec<f32> {
        let mut out = vec![0.0; frames];
        for chunk in out.chunks_mut(BLOCK) {
            engine.render(chunk, 1);
        }
        out
    }

    /// Frequency from linearly interpolated rising zero crossings.
    fn zc_freq(x: &[f32], sr: f32) -> f32 {
        let mut first = None;
        let mut last = 0.0;
        let mut count = 0usize;
        for i in 1..x.len() {
            if x[i - 1] < 0.0 && x[i] >= 0.0 {
                let t = (i - 1) as f64 + (x[i - 1] / (x[i - 1] - x[i])) as f64;
                first.get_or_insert(t);
                last = t;
                count += 1;
            }
        }
        let first = first.expect("no zero crossing");
        assert!(count >= 3, "too few zero crossings");
        ((count - 1) as f64 * sr as f64 / (last - first)) as f32
    }

    fn max_step(x: &[f32]) -> f32 {
        x.windows(2)
            .map(|w| (w[1] - w[0]).abs())
            .fold(0.0, f32::max)
    }

    fn sine_step(freq: f32, amp: f32) -> f32 {
        std::f32::consts::TAU * freq * amp / SR as f32
    }

    #[test]
    fn fast_sine_matches_std() {
        let mut worst = 0.0f32;
        for i in 0..100_000 {
            let p = i as f32 / 100_000.0;
            let e = (sin_turns(p) - (std::f64::consts::TAU * p as f64).sin() as f32).abs();
            worst = worst.max(e);
        }
        assert!(worst < 1e-6, "worst sine error {worst}");
    }

    #[test]
    fn one_partial_220_hz() {
        let (mut e, mut c) = Engine::new(SR);
        c.set_voice(&VoiceParams::sine(220.0, 0.5, 1.0));
        let out = render_blocks(&mut e, SR as usize / 2);
        let f = zc_freq(&out, SR as f32);
        assert!((f - 220.0).abs() < 1.0, "measured {f} Hz");
        // Steady amplitude after the fade-in, and no clipping by the limiter.
        let peak = out[SR as usize / 10..]
            .iter()
            .fold(0.0f32, |m, x| m.max(x.abs()));
        assert!((peak - 0.5).abs() < 0.005, "peak {peak}");
        // Fade-in starts from zero.
        assert!(
            out[0].abs() < 1e-3 && out[1].abs() < 1e-2,
            "{} {}",
            out[0],
            out[1]
        );
    }

    #[test]
    fn glide_to_330_is_continuous_and_fast() {
        let amp = 0.5;
        let (mut e, mut c) = Engine::new(SR);
        c.set_voice(&VoiceParams::sine(220.0, amp, 1.0));
        let mut out = render_blocks(&mut e, 40 * BLOCK); // ~213 ms
        let change_at = out.len();
        c.set_voice(&VoiceParams::sine(330.0, amp, 1.0));
        out.extend(render_blocks(&mut e, 40 * BLOCK));

        let bound = 1.5 * sine_step(330.0, amp);
        let around = &out[change_at - 2 * BLOCK..change_at + 8 * BLOCK];
        assert!(
            max_step(around) < bound,
            "step {} >= bound {bound}",
            max_step(around)
        );
        assert!(max_step(&out) < bound);

        let ms = SR as usize / 1000;
        let before = zc_freq(&out[change_at - 50 * ms..change_at], SR as f32);
        assert!((before - 220.0).abs() < 1.0, "before {before}");
        // Settled by 20 ms after the block in which the update arrived.
        let after = zc_freq(&out[change_at + 20 * ms..change_at + 60 * ms], SR as f32);
        assert!((after - 330.0).abs() < 1.0, "after {after}");
        // Amplitude unchanged through the glide.
        let peak = out[change_at + 20 * ms..]
            .iter()
            .fold(0.0f32, |m, x| m.max(x.abs()));
        assert!((peak - amp).abs() < 0.005);
    }

    #[test]
    fn phase_continuous_under_constant_updates() {
        // A slider dragged every block: frequency changes each render, no discontinuity.
        let amp = 0.6;
        let (mut e, mut c) = Engine::new(SR);
        let mut out = Vec::new();
        for k in 0..200 {
            let f = 200.0 + 2.0 * k as f32; // up to 598 Hz
            c.set_voice(&VoiceParams::sine(f, amp, 1.0));
            let mut block = vec![0.0; BLOCK];
            e.render(&mut block, 1);
            out.extend(block);
        }
        assert!(max_step(&out) < 1.5 * sine_step(600.0, amp));
    }

    #[test]
    fn silence_fades_without_jump() {
        let amp = 0.5;
        let (mut e, mut c) = Engine::new(SR);
        c.set_voice(&VoiceParams::sine(440.0, amp, 1.0));
        let mut out = render_blocks(&mut e, 20 * BLOCK);
        let at = out.len();
        c.silence();
        out.extend(render_blocks(&mut e, 10 * BLOCK));
        assert!(max_step(&out[at - BLOCK..]) < 1.5 * sine_step(440.0, amp));
        // Still sounding right after the update (a fade, not a cut) ...
        assert!(out[at..at + 48].iter().any(|x| x.abs() > 0.2));
        // ... and silent after the 5 ms glide.
        let glide = (SR as f32 * GLIDE_SECONDS) as usize;
        assert!(out[at + glide + 1..].iter().all(|&x| x == 0.0));
    }

    #[test]
    fn partials_fade_in_and_out() {
        let amp = 0.3;
        let (mut e, mut c) = Engine::new(SR);
        let one = [Partial {
            freq_hz: 313.0,
            amp,
        }];
        // Unsorted on purpose: the engine sorts by frequency (313 stays index 0).
        let two = [
            Partial {
                freq_hz: 917.0,
                amp,
            },
            Partial {
                freq_hz: 313.0,
                amp,
            },
        ];
        c.set_voice(&VoiceParams::from_partials(&one, 1.0));
        let mut out = render_blocks(&mut e, 20 * BLOCK);
        c.set_voice(&VoiceParams::from_partials(&two, 1.0));
        out.extend(render_blocks(&mut e, 20 * BLOCK));
        c.set_voice(&VoiceParams::from_partials(&one, 1.0));
        out.extend(render_blocks(&mut e, 20 * BLOCK));
        let bound = 1.5 * (sine_step(313.0, amp) + sine_step(917.0, amp));
        assert!(max_step(&out) < bound);
        // The 313 Hz partial kept its index, so after removing 917 Hz it is a clean 313 Hz again.
        let tail = &out[out.len() - 10 * BLOCK..];
        assert!((zc_freq(tail, SR as f32) - 313.0).abs() < 1.0);
        let peak = tail.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        assert!((peak - amp).abs() < 0.005);
    }

    #[test]
    fn clip_plays_back_exactly_on_all_channels() {
        let (mut e, mut c) = Engine::new(SR);
        let clip: Vec<f32> = (0..1000).map(|i| ((i as f32) * 0.01).sin() * 0.7).collect();
        assert_eq!(c.play_clip(&clip), clip.len());
        assert_eq!(c.clip_samples_queued(), 1000);
        let mut out = vec![1.0; 2 * 1500];
        e.render(&mut out, 2);
        for (j, frame) in out.chunks(2).enumerate() {
            let want = clip.get(j).copied().unwrap_or(0.0);
            assert_eq!(frame, [want, want], "frame {j}");
        }
        assert_eq!(c.clip_samples_queued(), 0);
    }

    #[test]
    fn second_clip_flushes_first() {
        let (mut e, mut c) = Engine::new(SR);
        let a = vec![0.25f32; 1000];
        let b: Vec<f32> = (0..500).map(|i| -0.5 + i as f32 * 1e-3).collect();
        c.play_clip(&a);
        let mut out = vec![0.0; 300];
        e.render(&mut out, 1);
        assert!(out.iter().all(|&x| x == 0.25));
        // The next 1000 samples are clip b, then silence.
        let mut out = vec![0.0; 1000];
        let mut hear_only_b = |e: &mut Engine| {
            e.render(&mut out, 1);
            assert_eq!(&out[..500], &b[..]);
            assert!(out[500..].iter().all(|&x| x == 0.0));
        };
        c.play_clip(&b);
        hear_only_b(&mut e);

        // Back to back without a render in between: only the newest clip is heard.
        c.play_clip(&a);
        c.play_clip(&b);
        hear_only_b(&mut e);

        // stop_clip silences the rest.
        c.play_clip(&a);
        e.render(&mut out[..10], 1);
        c.stop_clip();
        e.render(&mut out, 1);
        assert!(out.iter().all(|&x| x == 0.0));
        assert_eq!(c.clip_samples_queued(), 0);
    }

    #[test]
    fn clip_ring_holds_30_seconds() {
        let (mut e, mut c) = Engine::new(SR);
        let long = vec![0.1f32; 30 * SR as usize];
        let mut out = vec![0.0; 64];
        assert_eq!(c.play_clip(&long), long.len());
        e.render(&mut out, 1);
        // A full-length replacement fits although the stale clip is still in the ring ...
        assert_eq!(c.play_clip(&long), long.len());
        // ... and one more after the callback discarded the stale one.
        e.render(&mut out, 1);
        assert_eq!(c.play_clip(&long), long.len());
        e.render(&mut out, 1);
        assert_eq!(c.clip_samples_queued(), long.len() as u64 - 64);
        // Longer clips are truncated to MAX_CLIP_SECONDS.
        let longer = vec![0.1f32; 40 * SR as usize];
        assert_eq!(c.play_clip(&longer), MAX_CLIP_SECONDS * SR as usize);
    }

    #[test]
    fn clip_mixes_with_voice_and_limiter_bounds_output() {
        let (mut e, mut c) = Engine::new(SR);
        let loud: Vec<Partial> = (1..=64)
            .map(|k| Partial {
                freq_hz: 100.0 * k as f32,
                amp: 1.0,
            })
            .collect();
        c.set_voice(&VoiceParams::from_partials(&loud, 4.0));
        c.play_clip(&vec![0.9; SR as usize]);
        let out = render_blocks(&mut e, SR as usize / 2);
        assert!(out.iter().all(|x| x.is_finite() && x.abs() <= 1.0));
        assert!(
            out.iter().any(|x| x.abs() > 0.95),
            "limiter should let loud signals near 1"
        );
        // Garbage in is sanitised.
        let bad = [
            Partial {
                freq_hz: f32::NAN,
                amp: 1.0,
            },
            Partial {
                freq_hz: 30_000.0,
                amp: 1.0,
            },
            Partial {
                freq_hz: 440.0,
                amp: f32::INFINITY,
            },
        ];
        c.set_voice(&VoiceParams::from_partials(&bad, f32::NAN));
        c.play_clip(&[f32::NAN, f32::INFINITY, -f32::INFINITY]);
        let out = render_blocks(&mut e, 4096);
        assert!(out.iter().all(|x| x.is_finite() && x.abs() <= 1.0));
    }

    #[test]
    fn full_voice_ring_keeps_newest_pending() {
        let (mut e, mut c) = Engine::new(SR);
        for k in 0..(3 * VOICE_RING) {
            c.set_voice(&VoiceParams::sine(100.0 + k as f32, 0.5, 1.0));
        }
        assert!(!c.flush_pending(), "ring should be full");
        e.render(&mut [], 1); // drains the ring (newest in it: an older value)
        assert!(c.flush_pending(), "pending update delivered on retry");
        let out = render_blocks(&mut e, SR as usize / 2);
        let f = zc_freq(&out[SR as usize / 10..], SR as f32);
        let newest = 100.0 + (3 * VOICE_RING - 1) as f32;
        assert!((f - newest).abs() < 1.0, "{f} vs {newest}");
    }

    #[test]
    fn integer_formats_match_f32() {
        let (mut e1, mut c1) = Engine::new(SR);
        let (mut e2, mut c2) = Engine::new(SR);
        let v = VoiceParams::sine(440.0, 0.5, 1.0);
        c1.set_voice(&v);
        c2.set_voice(&v);
        let mut f = vec![0.0f32; 2 * 1024];
        let mut i = vec![0i16; 2 * 1024];
        e1.render(&mut f, 2);
        e2.render_as(&mut i, 2);
        for (a, b) in f.iter().zip(&i) {
            assert!((a * 32768.0 - *b as f32).abs() <= 1.0);
        }
        let (mut e3, _c3) = Engine::new(SR);
        let mut u = vec![0u16; 64];
        e3.render_as(&mut u, 2);
        assert!(u.iter().all(|&x| x == 32768), "u16 silence is mid-scale");
    }

    #[test]
    fn odd_buffer_shapes() {
        let (mut e, mut c) = Engine::new(SR);
        c.play_clip(&[0.5; 10]);
        let mut out = vec![9.0f32; 7]; // 3 stereo frames + 1 stray sample
        e.render(&mut out, 2);
        assert_eq!(out, [0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.0]);
        e.render(&mut out, 0);
        assert!(out.iter().all(|&x| x == 0.0));
        let mut big = vec![0.0f32; 5 * 4096 + 3]; // larger than the internal chunk
        e.render(&mut big, 5);
        assert_eq!(&big[..5 * 7], &[0.5; 35][..]);
    }

    #[test]
    fn open_device_is_bounded_and_never_panics() {
        let t = Instant::now();
        let mut pb = Playback::open();
        let took = t.elapsed();
        let line = pb.status_line();
        eprintln!("Playback::open took {took:?}: {line}");
        assert!(took < OPEN_TIMEOUT + Duration::from_secs(1));
        assert!(!line.contains('\n'));
        match &pb {
            Playback::Live { .. } => {
                assert!(line.starts_with("audio: "));
                assert!(pb.render_offline(16).is_none());
            }
            Playback::Unavailable { .. } => {
                assert!(line.starts_with("audio unavailable: "));
                assert_eq!(pb.controller().sample_rate(), OFFLINE_SAMPLE_RATE);
                pb.controller()
                    .set_voice(&VoiceParams::sine(220.0, 0.5, 1.0));
                let out = pb.render_offline(SR as usize / 4).expect("offline engine");
                assert!((zc_freq(&out, SR as f32) - 220.0).abs() < 1.0);
                pb.controller().play_clip(&[0.3; 4]);
                pb.controller().silence();
                let out = pb.render_offline(4).expect("offline engine");
                assert!(out.iter().all(|x| x.abs() < 0.95));
            }
        }
    }

    #[test]
    fn offline_controller_does_not_fill_rings() {
        let mut pb = Playback::offline("test");
        assert_eq!(pb.status_line(), "audio unavailable: test");
        for _ in 0..1000 {
            pb.controller()
                .set_voice(&VoiceParams::sine(300.0, 0.2, 1.0));
            assert!(pb.controller().flush_pending());
            assert_eq!(
                pb.controller().play_clip(&vec![0.1; SR as usize]),
                SR as usize
            );
        }
    }

    /// cargo test --release -- --ignored --nocapture bench_render
    #[test]
    #[ignore]
    fn bench_render_64_partials() {
        let (mut e, mut c) = Engine::new(SR);
        let partials: Vec<Partial> = (1..=64)
            .map(|k| Partial {
                freq_hz: 110.0 * k as f32 * 0.33,
                amp: 0.5 / k as f32,
            })
            .collect();
        c.set_voice(&VoiceParams::from_partials(&partials, 0.8));
        let mut out = vec![0.0f32; 2 * BLOCK];
        for _ in 0..200 {
            e.render(&mut out, 2);
        }
        let blocks = 20_000;
        let t = Instant::now();
        for _ in 0..blocks {
            e.render(&mut out, 2);
        }
        let steady = t.elapsed() / blocks;
        let t = Instant::now();
        for k in 0..blocks {
            // worst case: a new target every block, so every block glides
            let mut v = VoiceParams::from_partials(&partials, 0.8);
            for p in v.partials.iter_mut() {
                p.freq_hz *= 1.0 + 0.01 * ((k % 7) as f32);
            }
            c.set_voice(&v);
            e.render(&mut out, 2);
        }
        let gliding = t.elapsed() / blocks;
        let budget = Duration::from_secs_f64(BLOCK as f64 / SR as f64);
        println!(
            "render 256 frames x 64 partials (stereo out): steady {steady:?}, gliding {gliding:?} \
             per block; budget {budget:?} => {:.2}% / {:.2}% of real time",
            100.0 * steady.as_secs_f64() / budget.as_secs_f64(),
            100.0 * gliding.as_secs_f64() / budget.as_secs_f64(),
        );
        std::hint::black_box(&out);
    }
}
