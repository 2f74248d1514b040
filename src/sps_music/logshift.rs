//! The `fast` preset's body: the SPS music model with a log-frequency front end in which a
//! change of pitch is a translation, and both halves built to respect it.
//!
//! - Encoder: the 513 linear STFT bins of each frame are pooled onto a log-frequency axis
//!   (`BPO` bins per octave from MIDI 24 up), then 1-D convolutions along that axis (stride 1,
//!   so shifting the input shifts every feature map) give a salience curve; the pitch latent
//!   is its soft-argmax, in semitones. The timbre latents read features pooled over the whole
//!   axis, so they cannot see where the note sits.
//! - Decoder: the timbre latents give a template spectrum on a relative log-frequency axis,
//!   which is moved to the pitch latent's position (linear interpolation between bins, so the
//!   loss has a gradient in the pitch) and mapped back onto the 513 linear bins.
//!
//! Nothing here is told what pitch is: which translation the latent tracks is still learned
//! from the scales through the prior and the symmetry, as in the paper. The architecture only
//! makes translation the cheap thing to learn, where the official one must build it from an
//! MLP and strided convolutions (slow on a CPU; see models/README.md).

use candle_core::{D, Device, Module, Result, Tensor};
use candle_nn::VarBuilder;

use super::data::FRAMES_PER_NOTE;
use crate::audio::dsp::{N_BINS, N_FFT, SAMPLE_RATE, midi_to_hz};
use crate::nn::patches::Act;
use crate::nn::{HeightConv, Mlp, conv, linear_init};

/// log-frequency bins per octave (two per semitone)
pub const BPO: usize = 24;
/// bins per semitone
pub const BPS: f32 = BPO as f32 / 12.0;
/// MIDI note of log bin 0
pub const MIDI_LO: f32 = 24.0;
/// log bins: MIDI 24 (32.7 Hz) to just under the Nyquist frequency (8 kHz)
pub const LOG_BINS: usize = 190;
/// the pitch latent is 0 at this MIDI note (the middle of the training scales' range)
pub const MIDI_CENTRE: f32 = 66.0;
/// template positions above the note's own position (those below are a setting, `below`)
const ABOVE: usize = 160;
/// Salience logits are scaled by this so that the soft-argmax can be sharp: Adam moves a
/// weight by about the learning rate per step, too slowly to grow the scale itself. Training
/// may start softer (`TrainConfig::sharpness_start`); a trained model uses this unless its
/// configuration names another (`Arch::LogShift::sharpness`).
pub const SHARPNESS: f64 = 20.0;
/// Harmonics stacked as channels at the encoder's input (a harmonic constant-Q stack, as in
/// Bittner et al., "Deep salience representations for F0 estimation", 2017): channel h at
/// log bin p holds the spectrum at p + BPO * log2(h), so a small kernel sees a note's
/// partials together wherever the note sits.
const HARMONICS: [f32; 7] = [0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0];

fn harmonic_offsets() -> Vec<i64> {
    HARMONICS
        .iter()
        .map(|h| (BPO as f32 * h.log2()).round() as i64)
        .collect()
}

/// (N, C, L) -> (N, C * HARMONICS, L), zeros where a shifted copy runs off the axis.
fn harmonic_stack(x: &Tensor) -> Result<Tensor> {
    let offsets = harmonic_offsets();
    let left = (-offsets.iter().copied().min().unwrap_or(0)).max(0) as usize;
    let right = offsets.iter().copied().max().unwrap_or(0).max(0) as usize;
    let l = x.dim(2)?;
    let padded = x.pad_with_zeros(2, left, right)?;
    let copies = offsets
        .iter()
        .map(|&o| padded.narrow(2, (left as i64 + o) as usize, l))
        .collect::<Result<Vec<_>>>()?;
    Tensor::cat(&copies, 1)
}

/// Frames on the log axis (N, C, L) -> the harmonic stack channels-last, (N, L,
/// HARMONICS * C, 1), channel h*C + c (as `harmonic_stack` orders them): the image the
/// encoder's first conv reads, its kernel as wide as the stack.
fn harmonic_stack_hwc(x: &Tensor) -> Result<Tensor> {
    let offsets = harmonic_offsets();
    let left = (-offsets.iter().copied().min().unwrap_or(0)).max(0) as usize;
    let right = offsets.iter().copied().max().unwrap_or(0).max(0) as usize;
    let (n, c, l) = x.dims3()?;
    let padded = x.transpose(1, 2)?.pad_with_zeros(1, left, right)?;
    let copies = offsets
        .iter()
        .map(|&o| padded.narrow(1, (left as i64 + o) as usize, l))
        .collect::<Result<Vec<_>>>()?;
    Tensor::cat(&copies, 2)?.reshape((n, l, HARMONICS.len() * c, 1))
}

fn bin_hz(k: f32) -> f32 {
    k * SAMPLE_RATE as f32 / N_FFT as f32
}

fn log_hz(j: f32) -> f32 {
    midi_to_hz(MIDI_LO + j / BPS)
}

/// (N_BINS, LOG_BINS): each log bin averages the linear bins under a triangle as wide as
/// its own spacing or one linear bin, whichever is wider.
pub(super) fn lin_to_log() -> Vec<f32> {
    let mut m = vec![0f32; N_BINS * LOG_BINS];
    let df = bin_hz(1.0);
    for j in 0..LOG_BINS {
        let f = log_hz(j as f32);
        let half = (log_hz(j as f32 + 1.0) - f).max(df);
        let mut weights = Vec::new();
        for k in 0..N_BINS {
            let w = 1.0 - (bin_hz(k as f32) - f).abs() / half;
            if w > 0.0 {
                weights.push((k, w));
            }
        }
        let sum: f32 = weights.iter().map(|w| w.1).sum();
        for (k, w) in weights {
            m[k * LOG_BINS + j] = w / sum.max(1e-6);
        }
    }
    m
}

/// (LOG_BINS, N_BINS): each linear bin interpolates the log axis at its frequency.
fn log_to_lin() -> Vec<f32> {
    let mut m = vec![0f32; LOG_BINS * N_BINS];
    for k in 0..N_BINS {
        let hz = bin_hz(k as f32).max(log_hz(0.0));
        let p = (crate::audio::dsp::hz_to_midi(hz) - MIDI_LO) * BPS;
        let p = p.clamp(0.0, (LOG_BINS - 1) as f32);
        let lo = p.floor() as usize;
        let hi = (lo + 1).min(LOG_BINS - 1);
        let frac = p - lo as f32;
        m[lo * N_BINS + k] += 1.0 - frac;
        m[hi * N_BINS + k] += frac;
    }
    m
}

/// Log-bin position of a pitch latent (semitones from MIDI_CENTRE).
fn position_of_latent(z: &Tensor) -> Result<Tensor> {
    z.affine(BPS as f64, ((MIDI_CENTRE - MIDI_LO) * BPS) as f64)
}

/// Notes (N, 1, 513, 5) -> frames on the log-frequency axis (N, 5, LOG_BINS).
pub(super) fn front_end(x: &Tensor, to_log: &Tensor) -> Result<Tensor> {
    let n = x.dim(0)?;
    x.reshape((n, N_BINS, FRAMES_PER_NOTE))?
        .transpose(1, 2)?
        .contiguous()?
        .reshape((n * FRAMES_PER_NOTE, N_BINS))?
        .matmul(to_log)?
        .reshape((n, FRAMES_PER_NOTE, LOG_BINS))
}

/// Where the octave check (`LogShift::octave_loss`) looks: the latent's pitch, an octave
/// below, an octave above (semitones).
pub const OCTAVE_CANDIDATES: [f32; 3] = [-12.0, 0.0, 12.0];
/// The index in OCTAVE_CANDIDATES of the latent's own octave.
pub const OWN_OCTAVE: usize = 1;
const _: () = assert!(OCTAVE_CANDIDATES[OWN_OCTAVE] == 0.0);

/// Whether a pitch latent (semitones from MIDI_CENTRE) lies on the log-frequency axis.
pub fn on_axis(pitch: f32) -> bool {
    let bin = (pitch + MIDI_CENTRE - MIDI_LO) * BPS;
    (0.0..=(LOG_BINS - 1) as f32).contains(&bin)
}

/// log(sum(exp(x))) along `dim`, stable.
fn log_sum_exp(x: &Tensor, dim: usize) -> Result<Tensor> {
    let m = x.max_keepdim(dim)?.detach();
    (x.broadcast_sub(&m)?.exp()?.sum_keepdim(dim)?.log()? + m)?.squeeze(dim)
}

/// Frames of a note the harmonic sum reads: the sustained part. The first two frames hold
/// the attack, in which slow-speaking sounds have not yet grown their fundamental (the church
/// organ's lowest notes sound as their octave for the first 64 ms: `logshift_probe -- frames
/// 2 50`); the last is mostly the release and silence. Reading frames 2-3 puts 700 of 720
/// held-out notes within half a semitone, against 657 with frames 0-3.
pub const SUM_FRAMES: std::ops::Range<usize> = 2..4;

/// Weight of each channel of the harmonic stack (HARMONICS) in a subharmonic summation
/// (Hermes 1988): partials 1..6 with weights falling 0.84 a partial, and energy an octave
/// below counted against, so that a note's octave above (whose "partials" are the even ones,
/// with the note itself below) loses to the note.
pub fn harmonic_sum_weights() -> [f32; HARMONICS.len()] {
    let mut w = [0f32; HARMONICS.len()];
    let mut sum = 0.0;
    for (slot, &h) in w.iter_mut().zip(&HARMONICS) {
        if h >= 1.0 {
            *slot = 0.84f32.powf(h - 1.0);
            sum += *slot;
        }
    }
    for (slot, &h) in w.iter_mut().zip(&HARMONICS) {
        *slot = if h >= 1.0 { *slot / sum } else { -1.0 / sum };
    }
    w
}

/// Taps of the harmonic sum along the log axis: each partial's own bin. (Subtracting the
/// neighbours, to cancel the broad leakage at the lowest bins, also cancels the partials of
/// low notes, which are wider than a log bin there: 51% of notes right against 91%.)
const SUM_TAPS: [f32; 5] = [0.0, 0.0, 1.0, 0.0, 0.0];

/// The harmonic sum as one filter of the encoder's first conv, (kh = 5 log bins, kw =
/// FRAMES_PER_NOTE * HARMONICS.len() stack channels), row-major: `harmonic_sum_weights`
/// times SUM_TAPS, averaged over the note's `frames` (SUM_FRAMES unless a training
/// configuration says otherwise).
fn harmonic_sum_kernel(frames: std::ops::Range<usize>) -> Vec<f32> {
    let kw = FRAMES_PER_NOTE * HARMONICS.len();
    let mut k = vec![0f32; SUM_TAPS.len() * kw];
    let weights = harmonic_sum_weights();
    for (t, tap) in SUM_TAPS.iter().enumerate() {
        for (h, w) in weights.iter().enumerate() {
            for f in frames.clone() {
                k[t * kw + h * FRAMES_PER_NOTE + f] = tap * w / frames.len() as f32;
            }
        }
    }
    k
}

/// The frames a harmonic sum may read: a non-empty range within a note.
fn check_sum_frames(frames: &std::ops::Range<usize>) -> Result<()> {
    if frames.is_empty() || frames.end > FRAMES_PER_NOTE {
        candle_core::bail!(
            "harmonic-sum frames {frames:?} are not a non-empty range within 0..{FRAMES_PER_NOTE}"
        );
    }
    Ok(())
}

/// A fixed harmonic-sum pitch detector on the same front end (diagnostics): the argmax over
/// log bins of `harmonic_sum_kernel` applied to the harmonic stack, in MIDI. It is what the
/// salience computes at the start of training when the trainer's `harmonic_sum_init` is set.
pub fn harmonic_sum_pitch(x: &Tensor) -> Result<Vec<f32>> {
    let to_log = Tensor::from_vec(lin_to_log(), (N_BINS, LOG_BINS), x.device())?;
    let stack = harmonic_stack(&front_end(x, &to_log)?)?;
    let kw = FRAMES_PER_NOTE * HARMONICS.len();
    // (kh, kw) -> (1, kw, kh), the layout HeightConv::forward_1d gives conv1d
    let kernel = Tensor::from_vec(
        harmonic_sum_kernel(SUM_FRAMES),
        (SUM_TAPS.len(), kw),
        x.device(),
    )?
    .t()?
    .unsqueeze(0)?
    .contiguous()?;
    let sum = stack
        .conv1d(&kernel, SUM_TAPS.len() / 2, 1, 1, 1)?
        .squeeze(1)?;
    let arg = sum.argmax(D::Minus1)?.to_vec1::<u32>()?;
    Ok(arg.iter().map(|&a| MIDI_LO + a as f32 / BPS).collect())
}

pub struct LogShift {
    to_log: Tensor,
    to_lin: Tensor,
    positions: Tensor,
    enc: [HeightConv; 3],
    /// timbre means and every log-variance, from features pooled over the axis
    fc11: candle_nn::Linear,
    fc12: candle_nn::Linear,
    /// timbre latents -> template logits (TEMPLATE x frames)
    fc3: Mlp,
    /// template positions below the note's own position, and in all
    below: usize,
    template: usize,
    /// the salience's scale in the soft-argmax (SHARPNESS, softer early in training)
    sharpness: f64,
    /// a learned floor under the note, per linear bin and frame (noise, body resonance)
    floor: Tensor,
    latent: usize,
}

impl LogShift {
    /// From `cfg`: `channels` [c0, c1] (the front conv and the wide, harmonic conv), `mlp`
    /// the template MLP's hidden sizes, the latent size and the init, and the settings of
    /// `Arch::LogShift`: `kernel` the wide conv's span in log bins (odd); `below` the
    /// template's reach below the note's position, in log bins; `sharpness` the soft-argmax's.
    pub fn new(cfg: &super::model::ModelConfig, vb: VarBuilder) -> Result<Self> {
        let super::model::Arch::LogShift {
            kernel,
            below,
            sharpness,
        } = cfg.arch
        else {
            candle_core::bail!("LogShift::new needs a log-shift configuration")
        };
        let (mlp, latent, init) = (&cfg.mlp, cfg.latent, cfg.init);
        let channels = [cfg.channels[0], cfg.channels[1]];
        let dev = Device::Cpu;
        let e = vb.pp("encoder");
        let [c0, c1] = channels;
        let enc = [
            HeightConv::new(
                1,
                c0,
                (5, FRAMES_PER_NOTE * HARMONICS.len()),
                1,
                2,
                init,
                e.pp(0),
            )?,
            HeightConv::new(c0, c1, (kernel, 1), 1, kernel / 2, init, e.pp(2))?,
            HeightConv::new(c1, 1, (1, 1), 1, 0, init, e.pp(4))?,
        ];
        let mut sizes = vec![latent - 1];
        sizes.extend_from_slice(mlp);
        let template = below + ABOVE;
        sizes.push(template * FRAMES_PER_NOTE);
        let positions: Vec<f32> = (0..LOG_BINS).map(|i| i as f32).collect();
        Ok(Self {
            to_log: Tensor::from_vec(lin_to_log(), (N_BINS, LOG_BINS), &dev)?,
            to_lin: Tensor::from_vec(log_to_lin(), (LOG_BINS, N_BINS), &dev)?,
            positions: Tensor::from_vec(positions, (LOG_BINS, 1), &dev)?,
            enc,
            fc11: linear_init(2 * c1, latent - 1, init, vb.pp("fc11"))?,
            fc12: linear_init(2 * c1, latent, init, vb.pp("fc12"))?,
            fc3: Mlp::new(&sizes, init, vb.pp("fc3"))?,
            below,
            template,
            sharpness,
            floor: vb.get_with_hints(
                (FRAMES_PER_NOTE, N_BINS),
                "decoder.floor",
                candle_nn::Init::Const(0.0),
            )?,
            latent,
        })
    }

    /// Start the salience as the harmonic sum of `harmonic_sum_pitch`, times `scale`: the
    /// first conv's first channel computes it (`harmonic_sum_kernel`), the wide conv passes
    /// that channel through, and the salience reads only it. Every other weight keeps its random start and is free to learn; the
    /// timbre path is unchanged. Returns (variable name, value) pairs for the trainer to set.
    pub fn harmonic_sum_init(
        &self,
        scale: f32,
        frames: std::ops::Range<usize>,
    ) -> Result<Vec<(String, Tensor)>> {
        let mut out = Vec::new();
        let w0 = self.enc[0].weight();
        let (c0, _, kh, kw) = w0.dims4()?;
        let mut v = w0.flatten_all()?.to_vec1::<f32>()?;
        check_sum_frames(&frames)?;
        let kernel = harmonic_sum_kernel(frames);
        if kernel.len() != kh * kw {
            candle_core::bail!(
                "the encoder's first conv is {kh}x{kw}, the harmonic sum needs {}",
                kernel.len()
            );
        }
        v[..kh * kw].copy_from_slice(&kernel);
        out.push((
            "encoder.0.weight".into(),
            Tensor::from_vec(v, (c0, 1, kh, kw), w0.device())?,
        ));
        let w1 = self.enc[1].weight();
        let (c1, c0, kh1, _) = w1.dims4()?;
        let mut v = w1.flatten_all()?.to_vec1::<f32>()?;
        v[..c0 * kh1].fill(0.0);
        v[kh1 / 2] = 1.0;
        out.push((
            "encoder.2.weight".into(),
            Tensor::from_vec(v, (c1, c0, kh1, 1), w1.device())?,
        ));
        let mut v = vec![0f32; c1];
        v[0] = scale;
        out.push((
            "encoder.4.weight".into(),
            Tensor::from_vec(v, (1, c1, 1, 1), w1.device())?,
        ));
        for (name, layer) in ["encoder.0.bias", "encoder.2.bias"].iter().zip(&self.enc) {
            let mut b = layer.bias().to_vec1::<f32>()?;
            b[0] = 0.0;
            let n = b.len();
            out.push((name.to_string(), Tensor::from_vec(b, n, w1.device())?));
        }
        out.push((
            "encoder.4.bias".into(),
            Tensor::zeros(1, candle_core::DType::F32, w1.device())?,
        ));
        Ok(out)
    }

    /// The salience's scale in the soft-argmax: the configuration's (`Arch::LogShift`),
    /// unless training sets another for a while.
    pub fn set_sharpness(&mut self, sharpness: f64) {
        self.sharpness = sharpness;
    }

    /// The variable holding the template's last bias (started at the data's mean level).
    pub fn output_bias_name(&self, mlp_layers: usize) -> String {
        format!("fc3.{}.bias", 2 * mlp_layers)
    }

    /// x: (N, 1, 513, 5) -> (mu, logvar)
    pub fn encode(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let (mu, logvar, _) = self.encode_with_salience(x)?;
        Ok((mu, logvar))
    }

    /// x: (N, 1, 513, 5) -> (mu, logvar, salience (N, LOG_BINS))
    pub fn encode_with_salience(&self, x: &Tensor) -> Result<(Tensor, Tensor, Tensor)> {
        self.encode_log(&front_end(x, &self.to_log)?)
    }

    /// The octave check's loss (`TrainConfig::octave_weight`): for each note, a cross-entropy
    /// that moves the salience's mass towards the window (a semitone either side) around
    /// `pitch + 12 * (best - 1)` semitones, `best` indexing OCTAVE_CANDIDATES: which of the
    /// latent's pitch, an octave below or above, the octave check's judge chose (the best
    /// reconstruction, or the best scale: `TrainConfig::octave_beam`).
    /// The soft-argmax alone cannot learn this: its sharp softmax gives a peak that lost no
    /// gradient, so a note tracked an octave off stays there. Summed over notes.
    pub fn octave_loss(&self, salience: &Tensor, pitch: &[f32], best: &[usize]) -> Result<Tensor> {
        let window = self.octave_windows(salience, pitch)?;
        let target: Vec<u32> = best.iter().map(|&b| b as u32).collect();
        let target = Tensor::from_vec(target, (pitch.len(), 1), salience.device())?;
        (log_sum_exp(&window, 1)? - window.gather(&target, 1)?.squeeze(1)?)?.sum_all()
    }

    /// The octave check's cost of each candidate: -log of the share of the candidates' windows'
    /// softmax mass that lies in its window (the cross-entropy `octave_loss` would pay for
    /// that target), (N, candidates).
    pub fn octave_cross_entropies(&self, salience: &Tensor, pitch: &[f32]) -> Result<Tensor> {
        let window = self.octave_windows(salience, pitch)?;
        log_sum_exp(&window, 1)?
            .unsqueeze(1)?
            .broadcast_sub(&window)
    }

    /// log of the unnormalised mass of the soft-argmax's softmax in the window (a semitone
    /// either side) of each note's octave candidates, (N, candidates)
    fn octave_windows(&self, salience: &Tensor, pitch: &[f32]) -> Result<Tensor> {
        let n = pitch.len();
        let mut mask = vec![-1e9f32; n * OCTAVE_CANDIDATES.len() * LOG_BINS];
        for (i, &p) in pitch.iter().enumerate() {
            for (c, octave) in OCTAVE_CANDIDATES.iter().enumerate() {
                let centre = (p + octave + MIDI_CENTRE - MIDI_LO) * BPS;
                let row = (i * OCTAVE_CANDIDATES.len() + c) * LOG_BINS;
                for (j, m) in mask[row..row + LOG_BINS].iter_mut().enumerate() {
                    if (j as f32 - centre).abs() <= BPS {
                        *m = 0.0;
                    }
                }
            }
        }
        let mask = Tensor::from_vec(
            mask,
            (n, OCTAVE_CANDIDATES.len(), LOG_BINS),
            salience.device(),
        )?;
        let logits = (salience * self.sharpness)?
            .unsqueeze(1)?
            .broadcast_add(&mask)?;
        log_sum_exp(&logits, 2)
    }

    /// The encoder after the front end: h (N, 5, LOG_BINS) -> (mu, logvar, salience)
    pub fn encode_log(&self, h: &Tensor) -> Result<(Tensor, Tensor, Tensor)> {
        let n = h.dim(0)?;
        // channels-last along the log axis, the ReLUs applied as the next conv reads
        let stack = Act::new(harmonic_stack_hwc(h)?)?;
        let [e0, e1, e2] = &self.enc;
        let features = conv::run(&stack, &[(e0, false), (e1, true)])?.relu();
        let salience = conv::run(&features, &[(e2, false)])?
            .to_nhwc()?
            .reshape((n, LOG_BINS))?;
        // (N, LOG_BINS, 1, C) -> (N, C, LOG_BINS)
        let features = features.to_nhwc()?.squeeze(2)?.transpose(1, 2)?;
        let position = candle_nn::ops::softmax(&(&salience * self.sharpness)?, D::Minus1)?
            .matmul(&self.positions)?;
        let pitch = position.affine(1.0 / BPS as f64, -((MIDI_CENTRE - MIDI_LO) as f64))?;
        let pooled = Tensor::cat(&[features.mean(D::Minus1)?, features.max(D::Minus1)?], 1)?;
        let timbre = self.fc11.forward(&pooled)?;
        Ok((
            Tensor::cat(&[pitch, timbre], 1)?,
            self.fc12.forward(&pooled)?,
            salience,
        ))
    }

    /// z: (N, latent) -> logits (N, 1, 513, 5)
    pub fn decode_logits(&self, z: &Tensor) -> Result<Tensor> {
        let n = z.dim(0)?;
        // (N, LOG_BINS, 5) -> (N, 5, LOG_BINS) -> (N, 5, 513) -> (N, 1, 513, 5)
        let lin = self
            .decode_log(z)?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((n * FRAMES_PER_NOTE, LOG_BINS))?
            .matmul(&self.to_lin)?
            .reshape((n, FRAMES_PER_NOTE, N_BINS))?
            .broadcast_add(&self.floor)?;
        lin.transpose(1, 2)?
            .contiguous()?
            .reshape((n, 1, N_BINS, FRAMES_PER_NOTE))
    }

    /// z: (N, latent) -> logits on the log-frequency axis before the floor, (N, LOG_BINS, 5):
    /// the timbre's template moved to the pitch latent's position.
    pub fn decode_log(&self, z: &Tensor) -> Result<Tensor> {
        let n = z.dim(0)?;
        let template = self
            .fc3
            .forward(&z.narrow(1, 1, self.latent - 1)?)?
            .reshape((n, self.template, FRAMES_PER_NOTE))?;
        let position = position_of_latent(&z.narrow(1, 0, 1)?)?;
        let pos: Vec<f32> = position.flatten_all()?.to_vec1()?;
        let floor: Vec<f32> = pos.iter().map(|p| p.floor()).collect();
        // Output bin j reads the template at t - frac, t = j - floor(position) + below:
        // (1 - frac) * T[t] + frac * T[t - 1].
        let last = (self.template - 1) as f32;
        let mut at = Vec::with_capacity(n * LOG_BINS * FRAMES_PER_NOTE);
        let mut below = Vec::with_capacity(n * LOG_BINS * FRAMES_PER_NOTE);
        for &f in &floor {
            for j in 0..LOG_BINS {
                let t = (j as f32 - f + self.below as f32).clamp(0.0, last);
                let t0 = (t - 1.0).max(0.0);
                for _ in 0..FRAMES_PER_NOTE {
                    at.push(t as u32);
                    below.push(t0 as u32);
                }
            }
        }
        let dev = z.device();
        let shape = (n, LOG_BINS, FRAMES_PER_NOTE);
        let at = Tensor::from_vec(at, shape, dev)?;
        let below = Tensor::from_vec(below, shape, dev)?;
        let frac = (position - Tensor::from_vec(floor, (n, 1), dev)?)?.unsqueeze(2)?;
        template
            .gather(&at, 1)?
            .broadcast_mul(&frac.affine(-1.0, 1.0)?)?
            + template.gather(&below, 1)?.broadcast_mul(&frac)?
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::nn::{WeightInit, new_varmap};

    fn body() -> LogShift {
        let (_vm, vb) = new_varmap();
        let cfg = super::super::model::ModelConfig {
            channels: [4, 8, 0, 0],
            mlp: [8, 16, 16, 16],
            rnn_hidden: 4,
            latent: 3,
            init: WeightInit::He,
            arch: super::super::model::Arch::Official,
            log_input: false,
        };
        let cfg = super::super::model::ModelConfig {
            arch: super::super::model::Arch::LogShift {
                kernel: 5,
                below: 140,
                sharpness: SHARPNESS,
            },
            ..cfg
        };
        LogShift::new(&cfg, vb).unwrap()
    }

    #[test]
    fn the_front_end_averages_and_covers_the_axis() {
        let m = lin_to_log();
        for j in 0..LOG_BINS {
            let sum: f32 = (0..N_BINS).map(|k| m[k * LOG_BINS + j]).sum();
            assert!((sum - 1.0).abs() < 1e-4, "log bin {j} sums to {sum}");
        }
        let back = log_to_lin();
        for k in 0..N_BINS {
            let sum: f32 = (0..LOG_BINS).map(|j| back[j * N_BINS + k]).sum();
            assert!((sum - 1.0).abs() < 1e-4, "linear bin {k} sums to {sum}");
        }
    }

    #[test]
    fn raising_the_pitch_latent_an_octave_moves_the_decoded_spectrum_an_octave() {
        let b = body();
        let z = Tensor::new(
            &[[-6f32, 0.3, -0.2], [6.0, 0.3, -0.2], [6.25, 0.3, -0.2]],
            &Device::Cpu,
        )
        .unwrap();
        let out = b.decode_log(&z).unwrap().to_vec3::<f32>().unwrap();
        // 12 semitones = BPO bins; compare where both stay inside the template
        for j in 40..LOG_BINS - BPO - 40 {
            for (f, (&lo, &hi)) in out[0][j].iter().zip(&out[1][j + BPO]).enumerate() {
                assert!((lo - hi).abs() < 1e-5, "bin {j} frame {f}: {lo} vs {hi}");
            }
        }
        // a quarter semitone is half a bin: halfway between the neighbours
        let j = 100;
        let mid = 0.5 * (out[1][j][0] + out[1][j - 1][0]);
        assert!((out[2][j][0] - mid).abs() < 1e-5);
    }

    /// The octave check's cross-entropy is small when the decoder agrees with the salience's
    /// peak, large when it prefers the octave above, and then its gradient raises the
    /// salience an octave up and lowers it at the peak (which the soft-argmax cannot do).
    #[test]
    fn the_octave_loss_moves_the_salience_to_the_octave_the_decoder_prefers() {
        let b = body();
        // a peak at the latent's pitch (MIDI_CENTRE: bin 84) and a smaller one an octave up
        let mut v = vec![0f32; LOG_BINS];
        v[84] = 1.0;
        v[84 + BPO] = 0.6;
        let sal = candle_core::Var::from_vec(v, (1, LOG_BINS), &Device::Cpu).unwrap();
        let loss = |best: usize| b.octave_loss(sal.as_tensor(), &[0.0], &[best]).unwrap();
        let agree = loss(1).to_scalar::<f32>().unwrap();
        let up = loss(2);
        assert!(agree < 0.01, "{agree}");
        assert!(up.to_scalar::<f32>().unwrap() > 5.0);
        let grad = up.backward().unwrap();
        let g = grad.get(sal.as_tensor()).unwrap().to_vec2::<f32>().unwrap();
        assert!(
            g[0][84 + BPO] < -0.5,
            "descent raises the octave above: {}",
            g[0][84 + BPO]
        );
        assert!(g[0][84] > 0.5, "and lowers the peak: {}", g[0][84]);
        assert_eq!(g[0][40], 0.0, "bins outside every window are untouched");
    }

    #[test]
    fn the_timbre_latents_do_not_see_where_the_note_sits() {
        let b = body();
        // the same pattern on the log axis, and moved up 7 semitones (14 bins)
        let mut x = vec![0f32; 2 * FRAMES_PER_NOTE * LOG_BINS];
        for f in 0..FRAMES_PER_NOTE {
            for j in 80..110 {
                let v = ((j * 7 + f * 3) % 11) as f32 / 11.0;
                x[f * LOG_BINS + j] = v;
                x[(FRAMES_PER_NOTE + f) * LOG_BINS + j + 14] = v;
            }
        }
        let x = Tensor::from_vec(x, (2, FRAMES_PER_NOTE, LOG_BINS), &Device::Cpu).unwrap();
        let (mu, _, _) = b.encode_log(&x).unwrap();
        let mu = mu.to_vec2::<f32>().unwrap();
        assert!(mu[0].iter().chain(&mu[1]).all(|v| v.is_finite()));
        // the timbre sees features pooled over the axis: nearly the same for both notes
        for d in 1..3 {
            assert!((mu[0][d] - mu[1][d]).abs() < 1e-5, "{mu:?}");
        }
    }
}
