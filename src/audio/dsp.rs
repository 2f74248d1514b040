//! Spectral tools for the 16 kHz music features: STFT/ISTFT, Griffin-Lim, YIN pitch, peak picking, resampling.
//!
//! Every spectrum in this module is in the torchaudio `normalized=True` scale, `X / sqrt(sum w^2)`,
//! so `forward`, `magnitude`, `inverse` and `griffin_lim` can be mixed freely.

use std::f32::consts::TAU;
use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};

pub const SAMPLE_RATE: u32 = 16_000;
pub const N_FFT: usize = 1024;
pub const HOP: usize = 512;
pub const N_BINS: usize = N_FFT / 2 + 1;

/// Gain and divisor of the feature compression `log2(1 + GAIN*m) / DIV`; fixed by the trained models.
const FEATURE_GAIN: f32 = 1024.0;
const FEATURE_DIV: f32 = 12.5;
const GL_MOMENTUM: f32 = 0.99;
const HALF: usize = N_FFT / 2;

/// Frames produced for a signal of `len` samples with centre framing.
pub fn num_frames(len: usize) -> usize {
    len / HOP + 1
}

/// `sqrt(sum w^2)` of the periodic Hann window; exactly `sqrt(3N/8)`.
fn window_norm() -> f32 {
    (3.0 * N_FFT as f32 / 8.0).sqrt()
}

/// Where frame `t` overlaps the signal: window indices `lo..hi` map to signal indices `src..src + hi - lo`.
/// `None` when the frame lies entirely in the zero padding.
#[inline]
fn frame_span(t: usize, len: usize) -> Option<(usize, usize, usize)> {
    let start = t * HOP; // in padded coordinates: padded[j] = signal[j - HALF]
    let lo = HALF.saturating_sub(start);
    let hi = N_FFT.min((len + HALF).saturating_sub(start));
    (lo < hi).then(|| (lo, hi, start + lo - HALF))
}

pub struct Stft {
    r2c: Arc<dyn RealToComplex<f32>>,
    c2r: Arc<dyn ComplexToReal<f32>>,
    window: Vec<f32>,
    norm: f32,
    time: Vec<f32>,
    freq: Vec<Complex<f32>>,
    scratch_fwd: Vec<Complex<f32>>,
    scratch_inv: Vec<Complex<f32>>,
    wss: Vec<f32>,
}

impl Default for Stft {
    fn default() -> Self {
        Self::new()
    }
}

impl Stft {
    pub fn new() -> Self {
        let mut planner = RealFftPlanner::<f32>::new();
        let r2c = planner.plan_fft_forward(N_FFT);
        let c2r = planner.plan_fft_inverse(N_FFT);
        let window: Vec<f32> = (0..N_FFT)
            .map(|n| 0.5 - 0.5 * (TAU * n as f32 / N_FFT as f32).cos())
            .collect();
        Self {
            time: r2c.make_input_vec(),
            freq: r2c.make_output_vec(),
            scratch_fwd: r2c.make_scratch_vec(),
            scratch_inv: c2r.make_scratch_vec(),
            r2c,
            c2r,
            window,
            norm: window_norm(),
            wss: Vec::new(),
        }
    }

    /// Complex spectrogram (normalised scale), frames x bins, row-major, `num_frames(len)` frames.
    pub fn forward(&mut self, signal: &[f32]) -> (usize, Vec<Complex<f32>>) {
        let mut out = Vec::new();
        let frames = num_frames(signal.len());
        self.forward_into(signal, frames, &mut out);
        (frames, out)
    }

    /// `forward` into a reused buffer with an explicit frame count (frames past the signal are silent);
    /// allocation-free once `out` has capacity `frames * N_BINS`.
    pub fn forward_into(&mut self, signal: &[f32], frames: usize, out: &mut Vec<Complex<f32>>) {
        out.clear();
        out.reserve(frames * N_BINS);
        let inv = 1.0 / self.norm;
        for t in 0..frames {
            self.analyse(signal, t);
            out.extend(self.freq.iter().map(|c| c * inv));
        }
    }

    /// `|X| / norm`, frames x 513.
    pub fn magnitude(&mut self, signal: &[f32]) -> (usize, Vec<f32>) {
        let frames = num_frames(signal.len());
        let mut out = Vec::with_capacity(frames * N_BINS);
        let inv = 1.0 / self.norm;
        for t in 0..frames {
            self.analyse(signal, t);
            out.extend(self.freq.iter().map(|c| c.norm() * inv));
        }
        (frames, out)
    }

    /// Inverse with weighted overlap-add; output length `len`.
    pub fn inverse(&mut self, frames: usize, spec: &[Complex<f32>], len: usize) -> Vec<f32> {
        let mut out = Vec::new();
        self.inverse_into(frames, spec, len, &mut out);
        out
    }

    /// `inverse` into a reused buffer; allocation-free once `out` and the internal weight buffer hold `len`.
    /// A `spec` shorter than `frames * N_BINS` is treated as having only its complete frames.
    pub fn inverse_into(
        &mut self,
        frames: usize,
        spec: &[Complex<f32>],
        len: usize,
        out: &mut Vec<f32>,
    ) {
        out.clear();
        out.resize(len, 0.0);
        self.wss.clear();
        self.wss.resize(len, 0.0);
        // Undo the forward 1/norm and realfft's unnormalised inverse (a factor N) in one multiply.
        let scale = self.norm / N_FFT as f32;
        for (t, bins) in spec.chunks_exact(N_BINS).take(frames).enumerate() {
            let Some((lo, hi, src)) = frame_span(t, len) else {
                continue;
            };
            for (d, s) in self.freq.iter_mut().zip(bins) {
                *d = s * scale;
            }
            // A real signal's DC and Nyquist bins are real; realfft rejects anything else.
            self.freq[0].im = 0.0;
            self.freq[N_BINS - 1].im = 0.0;
            let r = self.c2r.process_with_scratch(
                &mut self.freq,
                &mut self.time,
                &mut self.scratch_inv,
            );
            debug_assert!(r.is_ok(), "realfft buffers are sized at construction");
            let w = &self.window[lo..hi];
            let seg = &self.time[lo..hi];
            for ((o, a), (x, wv)) in out[src..src + hi - lo]
                .iter_mut()
                .zip(&mut self.wss[src..src + hi - lo])
                .zip(seg.iter().zip(w))
            {
                *o += x * wv;
                *a += wv * wv;
            }
        }
        for (o, a) in out.iter_mut().zip(&self.wss) {
            if *a > 1e-8 {
                *o /= *a;
            }
        }
    }

    /// Windowed, zero-padded frame `t` of `signal` transformed into `self.freq` (raw scale).
    fn analyse(&mut self, signal: &[f32], t: usize) {
        match frame_span(t, signal.len()) {
            Some((lo, hi, src)) => {
                self.time[..lo].fill(0.0);
                self.time[hi..].fill(0.0);
                for ((d, x), w) in self.time[lo..hi]
                    .iter_mut()
                    .zip(&signal[src..])
                    .zip(&self.window[lo..hi])
                {
                    *d = x * w;
                }
            }
            None => self.time.fill(0.0),
        }
        let r =
            self.r2c
                .process_with_scratch(&mut self.time, &mut self.freq, &mut self.scratch_fwd);
        debug_assert!(r.is_ok(), "realfft buffers are sized at construction");
    }
}

/// `log2(1 + 1024 m) / 12.5` clamped to [0, 1]; NaN maps to 0.
pub fn magnitude_to_feature(m: f32) -> f32 {
    // `max` rather than `clamp` so NaN collapses to 0 instead of propagating; the log is then >= 0.
    ((1.0 + FEATURE_GAIN * m.max(0.0)).log2() / FEATURE_DIV).min(1.0)
}

/// The model features of a signal: `magnitude_to_feature` of its STFT magnitudes, frames x 513
/// (frame-major), `num_frames(len)` frames.
pub fn feature_frames(stft: &mut Stft, signal: &[f32]) -> (usize, Vec<f32>) {
    let (frames, mut mags) = stft.magnitude(signal);
    mags.iter_mut().for_each(|m| *m = magnitude_to_feature(*m));
    (frames, mags)
}

/// Exact inverse of [`magnitude_to_feature`] on [0, 1]; NaN maps to 0.
pub fn feature_to_magnitude(f: f32) -> f32 {
    let f = if f >= 0.0 { f.min(1.0) } else { 0.0 }; // NaN fails the comparison and maps to 0
    ((FEATURE_DIV * f).exp2() - 1.0) / FEATURE_GAIN
}

/// `||target| - |estimate||_F / ||target||_F` over two equally shaped magnitude spectrograms.
pub fn spectral_convergence(target: &[f32], estimate: &[f32]) -> f32 {
    let (mut num, mut den) = (0.0f64, 0.0f64);
    for (a, b) in target.iter().zip(estimate) {
        num += f64::from(a - b).powi(2);
        den += f64::from(*a).powi(2);
    }
    if den > 0.0 {
        (num / den).sqrt() as f32
    } else {
        0.0
    }
}

/// SplitMix64: enough for seeded initial phases, and keeps the module free of an RNG dependency.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_f32(&mut self) -> f32 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 40) as f32 / (1u64 << 24) as f32
    }
}

/// Fast Griffin-Lim (Perraudin et al. 2013) in the librosa/torchaudio form: magnitudes (frames x 513,
/// `|X|/norm` scale) to a signal of `len` samples, `iters` iterations, momentum 0.99, seeded phase.
pub fn griffin_lim(
    stft: &mut Stft,
    frames: usize,
    mags: &[f32],
    len: usize,
    iters: usize,
    seed: u64,
) -> Vec<f32> {
    let frames = frames.min(mags.len() / N_BINS);
    let mags = &mags[..frames * N_BINS];
    let mut rng = SplitMix64(seed);
    let mut angles: Vec<Complex<f32>> = mags
        .iter()
        .map(|_| Complex::from_polar(1.0, TAU * rng.next_f32()))
        .collect();
    let mut est = Vec::with_capacity(mags.len());
    let mut rebuilt = Vec::with_capacity(mags.len());
    let mut prev = vec![Complex::new(0.0, 0.0); mags.len()];
    let mut signal = Vec::with_capacity(len);
    let alpha = GL_MOMENTUM / (1.0 + GL_MOMENTUM);
    let fill = |est: &mut Vec<Complex<f32>>, angles: &[Complex<f32>]| {
        est.clear();
        est.extend(mags.iter().zip(angles).map(|(m, a)| a * m));
    };
    for _ in 0..iters {
        fill(&mut est, &angles);
        stft.inverse_into(frames, &est, len, &mut signal);
        stft.forward_into(&signal, frames, &mut rebuilt);
        for ((a, r), p) in angles.iter_mut().zip(&rebuilt).zip(&prev) {
            let v = r - p * alpha;
            let n = v.norm();
            // A vanished bin keeps its previous phase rather than becoming NaN.
            if n > 1e-16 {
                *a = v / n;
            }
        }
        std::mem::swap(&mut prev, &mut rebuilt);
    }
    fill(&mut est, &angles);
    stft.inverse_into(frames, &est, len, &mut signal);
    signal
}

/// `sum (a_j - b_j)^2` with eight independent lanes so it vectorises and accumulates less rounding.
#[inline]
fn sq_diff(a: &[f32], b: &[f32]) -> f64 {
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| (x - y) * (x - y))
        .sum();
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            let d = x[k] - y[k];
            acc[k] += d * d;
        }
    }
    acc.iter().map(|&v| f64::from(v)).sum::<f64>() + f64::from(tail)
}

/// YIN (de Cheveigné & Kawahara 2002) over the whole of `signal`: difference function, cumulative
/// mean normalised difference, absolute threshold, parabolic interpolation. `None` when unvoiced,
/// silent, too short (needs about two periods of `fmin`), or the arguments are nonsensical.
/// Allocation-free: the CMND is streamed with a three-value window.
pub fn yin(signal: &[f32], sample_rate: f32, fmin: f32, fmax: f32, threshold: f32) -> Option<f32> {
    if !(sample_rate.is_finite() && fmin > 0.0 && fmax > fmin && sample_rate > 0.0) {
        return None;
    }
    let tau_min = ((sample_rate / fmax).floor() as usize).max(2);
    let tau_max = (sample_rate / fmin).ceil() as usize;
    // One lag past tau_max so a minimum at the boundary still has a right neighbour.
    let w = signal.len().checked_sub(tau_max.checked_add(1)?)?;
    if tau_max < tau_min || w < tau_max {
        return None;
    }
    let mut running = 0.0f64;
    let mut prev = [1.0f32; 2]; // cmnd(tau - 2), cmnd(tau - 1)
    let mut dipping = false;
    for tau in 1..=tau_max + 1 {
        let d = sq_diff(&signal[..w], &signal[tau..tau + w]);
        running += d;
        let c = if running > 0.0 {
            (d * tau as f64 / running) as f32
        } else {
            1.0
        };
        if dipping {
            // tau - 1 is the candidate; it is the local minimum once the curve stops falling.
            if c >= prev[1] || tau > tau_max {
                let (a, b) = (prev[0], prev[1]);
                let den = a - 2.0 * b + c;
                let shift = if den > 0.0 {
                    (0.5 * (a - c) / den).clamp(-1.0, 1.0)
                } else {
                    0.0
                };
                let period = (tau - 1) as f32 + shift;
                return (period > 0.0).then(|| sample_rate / period);
            }
        } else if tau >= tau_min && c < threshold {
            dipping = true;
        }
        prev = [prev[1], c];
    }
    None
}

pub fn hz_to_midi(f: f32) -> f32 {
    69.0 + 12.0 * (f / 440.0).log2()
}

pub fn midi_to_hz(m: f32) -> f32 {
    440.0 * ((m - 69.0) / 12.0).exp2()
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Partial {
    pub freq_hz: f32,
    pub amp: f32,
}

/// Spectral peaks of one magnitude frame (`|X|/norm`, 16 kHz, n_fft 1024): local maxima above
/// `floor * max`, the strongest `max_peaks` of them, frequency by parabolic interpolation on log
/// magnitude, amplitude converted to the amplitude of the sinusoid that would produce the peak.
/// Writes into `out` (cleared first) sorted by frequency; allocation-free when
/// `out.capacity() >= max_peaks`.
pub fn spectral_peaks(mag_frame: &[f32], max_peaks: usize, floor: f32, out: &mut Vec<Partial>) {
    out.clear();
    if mag_frame.len() < 3 || max_peaks == 0 {
        return;
    }
    let max = mag_frame.iter().copied().fold(0.0f32, f32::max);
    if max <= 0.0 || !max.is_finite() {
        return;
    }
    let thresh = max * floor;
    let bin_hz = SAMPLE_RATE as f32 / N_FFT as f32;
    // A Hann window of sum S = N/2 turns amplitude A into a raw peak A*S/2, then /norm.
    let amp_scale = 2.0 * window_norm() / (N_FFT as f32 / 2.0);
    let ln = |x: f32| x.max(1e-30).ln();
    for (k, win) in mag_frame.windows(3).enumerate() {
        let [l, b, r] = [win[0], win[1], win[2]];
        if !(b > l && b >= r && b > thresh) {
            continue;
        }
        let (a, lb, c) = (ln(l), ln(b), ln(r));
        let den = a - 2.0 * lb + c;
        let p = if den < 0.0 {
            (0.5 * (a - c) / den).clamp(-0.5, 0.5)
        } else {
            0.0
        };
        let peak = Partial {
            freq_hz: (k as f32 + 1.0 + p) * bin_hz,
            amp: (lb - 0.25 * (a - c) * p).exp() * amp_scale,
        };
        if out.len() < max_peaks {
            out.push(peak);
        } else if let Some(weakest) = out.iter_mut().min_by(|x, y| x.amp.total_cmp(&y.amp))
            && peak.amp > weakest.amp
        {
            *weakest = peak;
        }
    }
    out.sort_unstable_by(|x, y| x.freq_hz.total_cmp(&y.freq_hz));
}

/// Linear-interpolation resampler for playing 16 kHz clips at a device rate. Output length is
/// `round(len * to / from)`. No anti-alias filter: downsampling folds content above the new Nyquist.
pub fn resample_linear(input: &[f32], from_hz: u32, to_hz: u32) -> Vec<f32> {
    if from_hz == 0 || to_hz == 0 || input.is_empty() {
        return Vec::new();
    }
    if from_hz == to_hz {
        return input.to_vec();
    }
    let (from, to) = (u64::from(from_hz), u64::from(to_hz));
    let out_len =
        ((input.len() as u128 * u128::from(to) + u128::from(from / 2)) / u128::from(from)) as usize;
    let last = input.len() - 1;
    // Exact rational position idx + rem/to, so long clips do not drift.
    let (step, step_rem) = ((from / to) as usize, from % to);
    let inv_to = 1.0 / to as f64;
    let (mut idx, mut rem) = (0usize, 0u64);
    let mut out = Vec::with_capacity(out_len);
    for _ in 0..out_len {
        let a = input[idx.min(last)];
        let b = input[(idx + 1).min(last)];
        out.push(a + (b - a) * (rem as f64 * inv_to) as f32);
        idx += step;
        rem += step_rem;
        if rem >= to {
            rem -= to;
            idx += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(freq: f32, amp: f32, len: usize, sr: f32) -> Vec<f32> {
        (0..len)
            .map(|i| amp * (TAU * freq * i as f32 / sr).sin())
            .collect()
    }

    fn noise(len: usize, seed: u64) -> Vec<f32> {
        let mut rng = SplitMix64(seed);
        (0..len).map(|_| 2.0 * rng.next_f32() - 1.0).collect()
    }

    fn harmonic(f0: f32, len: usize) -> Vec<f32> {
        let mut x = vec![0.0; len];
        for k in 1..=6 {
            for (i, v) in sine(f0 * k as f32, 0.3 / k as f32, len, SAMPLE_RATE as f32)
                .into_iter()
                .enumerate()
            {
                x[i] += v;
            }
        }
        x
    }

    #[test]
    fn stft_inverse_reconstructs_random_signal() {
        let mut stft = Stft::new();
        for len in [8000usize, 8192, 1500] {
            let x = noise(len, 7 + len as u64);
            let (frames, spec) = stft.forward(&x);
            assert_eq!(frames, len / HOP + 1);
            assert_eq!(spec.len(), frames * N_BINS);
            let y = stft.inverse(frames, &spec, len);
            assert_eq!(y.len(), len);
            let err = x
                .iter()
                .zip(&y)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            assert!(err < 1e-4, "len {len}: max error {err}");
        }
    }

    #[test]
    fn window_norm_matches_window() {
        let stft = Stft::new();
        let ss: f32 = stft.window.iter().map(|w| w * w).sum();
        assert!((ss.sqrt() - window_norm()).abs() < 1e-4);
        assert!((stft.window.iter().sum::<f32>() - 512.0).abs() < 1e-3);
    }

    #[test]
    fn sine_440_peak_and_partial() {
        let amp = 0.5;
        let x = sine(440.0, amp, 16_000, 16_000.0);
        let (frames, mags) = Stft::new().magnitude(&x);
        let frame = &mags[(frames / 2) * N_BINS..(frames / 2 + 1) * N_BINS];
        let argmax = (0..N_BINS)
            .max_by(|&a, &b| frame[a].total_cmp(&frame[b]))
            .unwrap();
        assert_eq!(argmax, 28);
        let mut peaks = Vec::with_capacity(8);
        spectral_peaks(frame, 8, 0.01, &mut peaks);
        let p = peaks.iter().max_by(|a, b| a.amp.total_cmp(&b.amp)).unwrap();
        let bin = p.freq_hz * N_FFT as f32 / SAMPLE_RATE as f32;
        assert!((bin - 28.16).abs() < 0.1, "bin {bin}");
        assert!((p.freq_hz - 440.0).abs() < 2.0, "freq {}", p.freq_hz);
        assert!((p.amp / amp - 1.0).abs() < 0.05, "amp {}", p.amp);
    }

    #[test]
    fn spectral_peaks_reuses_capacity_and_sorts() {
        let x = harmonic(220.0, 16_000);
        let (frames, mags) = Stft::new().magnitude(&x);
        let frame = &mags[(frames / 2) * N_BINS..(frames / 2 + 1) * N_BINS];
        let mut out = Vec::with_capacity(4);
        let ptr = out.as_ptr();
        for _ in 0..3 {
            spectral_peaks(frame, 4, 0.001, &mut out);
            assert_eq!(out.len(), 4);
            assert_eq!(out.as_ptr(), ptr);
        }
        assert!(out.windows(2).all(|w| w[0].freq_hz < w[1].freq_hz));
        // The four strongest partials of a 1/k series are the first four harmonics.
        for (k, p) in out.iter().enumerate() {
            let f = 220.0 * (k + 1) as f32;
            assert!((p.freq_hz - f).abs() < 2.0, "{p:?} vs {f}");
            assert!((p.amp / (0.3 / (k + 1) as f32) - 1.0).abs() < 0.05, "{p:?}");
        }
        spectral_peaks(&[0.0; N_BINS], 4, 0.01, &mut out);
        assert!(out.is_empty());
        spectral_peaks(&[f32::NAN; 5], 4, 0.01, &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn yin_tracks_sines_and_rejects_silence_and_noise() {
        let sr = 16_000.0;
        for f in [
            80.0, 97.3, 110.0, 146.8, 220.0, 261.63, 329.6, 440.0, 523.25, 659.3, 777.7, 880.0,
            1000.0,
        ] {
            let x = sine(f, 0.6, 4096, sr);
            let got = yin(&x, sr, 60.0, 1200.0, 0.15).unwrap_or(0.0);
            assert!((got / f - 1.0).abs() < 0.005, "{f} Hz -> {got}");
        }
        assert_eq!(yin(&[0.0; 4096], sr, 60.0, 1200.0, 0.15), None);
        for seed in 0..8 {
            assert_eq!(
                yin(&noise(4096, seed), sr, 60.0, 1200.0, 0.15),
                None,
                "seed {seed}"
            );
        }
        assert_eq!(
            yin(&sine(440.0, 0.5, 100, sr), sr, 60.0, 1200.0, 0.15),
            None
        );
        assert_eq!(
            yin(&sine(440.0, 0.5, 4096, sr), sr, 0.0, 1200.0, 0.15),
            None
        );
        assert_eq!(
            yin(&sine(440.0, 0.5, 4096, sr), f32::NAN, 60.0, 1200.0, 0.15),
            None
        );
    }

    #[test]
    fn griffin_lim_recovers_harmonic_tone() {
        let x = harmonic(220.0, 16_000);
        let mut stft = Stft::new();
        let (frames, mags) = stft.magnitude(&x);
        let y = griffin_lim(&mut stft, frames, &mags, x.len(), 32, 42);
        assert_eq!(y.len(), x.len());
        let (_, mags_y) = stft.magnitude(&y);
        let sc = spectral_convergence(&mags, &mags_y);
        assert!(sc < 0.15, "spectral convergence {sc}");
        let mid = &y[4000..12000];
        let f = yin(mid, SAMPLE_RATE as f32, 60.0, 1200.0, 0.15).unwrap_or(0.0);
        assert!((f / 220.0 - 1.0).abs() < 0.005, "pitch {f}");
        assert_eq!(
            y,
            griffin_lim(&mut stft, frames, &mags, x.len(), 32, 42),
            "seeded"
        );
    }

    #[test]
    fn feature_magnitude_round_trip() {
        for i in 0..=1000 {
            let f = i as f32 / 1000.0;
            assert!(
                (magnitude_to_feature(feature_to_magnitude(f)) - f).abs() < 1e-5,
                "{f}"
            );
        }
        for m in [0.0, 1e-5, 1e-3, 0.01, 0.1, 0.5, 1.0, 3.0, 5.6] {
            let back = feature_to_magnitude(magnitude_to_feature(m));
            assert!((back - m).abs() <= 1e-4 * m.max(1e-3), "{m} -> {back}");
        }
        assert_eq!(magnitude_to_feature(100.0), 1.0);
        assert_eq!(magnitude_to_feature(-1.0), 0.0);
        assert_eq!(magnitude_to_feature(f32::NAN), 0.0);
        assert_eq!(feature_to_magnitude(f32::NAN), 0.0);
        assert_eq!(feature_to_magnitude(2.0), feature_to_magnitude(1.0));
    }

    #[test]
    fn midi_round_trip() {
        assert!((hz_to_midi(440.0) - 69.0).abs() < 1e-6);
        assert!((midi_to_hz(60.0) - 261.6256).abs() < 1e-3);
        for m in 20..110 {
            assert!((hz_to_midi(midi_to_hz(m as f32)) - m as f32).abs() < 1e-4);
        }
    }

    #[test]
    fn resample_preserves_length_and_pitch() {
        let x = sine(440.0, 0.5, 16_000, 16_000.0);
        for to in [44_100u32, 48_000, 22_050, 8_000] {
            let y = resample_linear(&x, 16_000, to);
            assert_eq!(
                y.len(),
                (16_000u64 * u64::from(to)).div_ceil(16_000) as usize
            );
            let f = yin(&y[..y.len() / 2], to as f32, 100.0, 1000.0, 0.15).unwrap_or(0.0);
            assert!((f / 440.0 - 1.0).abs() < 0.005, "{to} Hz: {f}");
        }
        assert_eq!(resample_linear(&x, 16_000, 16_000), x);
        assert!(resample_linear(&x, 0, 16_000).is_empty());
        assert_eq!(resample_linear(&[1.0, 2.0, 3.0], 16_000, 48_000).len(), 9);
        assert_eq!(resample_linear(&[1.0, 3.0], 1, 2), vec![1.0, 2.0, 3.0, 3.0]);
    }
}
