//! Fixed views of a fragment that the trunks read: log-frequency and octave-band filterbanks
//! for notes, the colour of the ink for digits.

use candle_core::{D, Device, Result, Tensor};

use super::data::Domain;

/// Bins per octave of the notes' log-frequency axis, its lowest centre (a fifth below C4) and
/// its number of bins (up to 7.2 kHz).
pub const LOG_BINS_PER_OCTAVE: usize = 24;
pub const LOG_LOWEST_HZ: f32 = 174.6;
pub const LOG_BINS: usize = 128;

/// Octave bands of the notes' style trunk, their edges at C (the notes' fundamentals all fall
/// in the second): the frame-by-frame energy in each band shows the instrument's spectral
/// balance and envelope, hardly which note it plays.
pub const STYLE_BANDS: usize = 6;
const BAND_LOWEST_HZ: f32 = 261.63;

/// (bins, STYLE_BANDS): the mean of the linear bins in each octave band.
pub fn band_filterbank(bins: usize) -> Vec<f32> {
    let hz_per_bin = crate::audio::dsp::SAMPLE_RATE as f32 / crate::audio::dsp::N_FFT as f32;
    let band = |b: usize| -> usize {
        let f = b as f32 * hz_per_bin;
        if f < BAND_LOWEST_HZ {
            0
        } else {
            ((f / BAND_LOWEST_HZ).log2().floor() as usize + 1).min(STYLE_BANDS - 1)
        }
    };
    let mut counts = [0f32; STYLE_BANDS];
    (0..bins).for_each(|b| counts[band(b)] += 1.0);
    let mut w = vec![0f32; bins * STYLE_BANDS];
    for b in 0..bins {
        let k = band(b);
        w[b * STYLE_BANDS + k] = 1.0 / counts[k].max(1.0);
    }
    w
}

/// Triangular filters from the STFT's linear bins onto a log-frequency axis: row b of the
/// result (bins x LOG_BINS) weighs linear bin b into each log bin, every column summing to 1.
/// A filter is at least one linear bin wide, so the low log bins interpolate between bins.
pub fn log_filterbank(bins: usize) -> Vec<f32> {
    let hz_per_bin = crate::audio::dsp::SAMPLE_RATE as f32 / crate::audio::dsp::N_FFT as f32;
    let centre = |j: f32| LOG_LOWEST_HZ * (j / LOG_BINS_PER_OCTAVE as f32).exp2();
    let mut w = vec![0f32; bins * LOG_BINS];
    for j in 0..LOG_BINS {
        let c = centre(j as f32);
        let lo = (c - centre(j as f32 - 1.0)).max(hz_per_bin);
        let hi = (centre(j as f32 + 1.0) - c).max(hz_per_bin);
        let mut total = 0.0;
        for b in 0..bins {
            let f = b as f32 * hz_per_bin;
            let v = if f <= c {
                1.0 - (c - f) / lo
            } else {
                1.0 - (f - c) / hi
            };
            if v > 0.0 {
                w[b * LOG_BINS + j] = v;
                total += v;
            }
        }
        if total > 0.0 {
            for b in 0..bins {
                w[b * LOG_BINS + j] /= total;
            }
        }
    }
    w
}

/// The octave-band view of the notes' style trunk for note fragments given as slices (each
/// NOTE_BINS x NOTE_FRAMES, bin-major): per fragment, frames x STYLE_BANDS energies.
pub fn band_envelopes(fragments: &[&[f32]]) -> Result<Vec<Vec<f32>>> {
    let shape = Domain::Notes.fragment_shape();
    let [c, h, w] = shape;
    let flat: Vec<f32> = fragments.iter().flat_map(|f| f.iter().copied()).collect();
    let x = Tensor::from_vec(flat, (fragments.len(), c * h * w), &Device::Cpu)?;
    let bands = Tensor::from_vec(band_filterbank(c * h), (c * h, STYLE_BANDS), &Device::Cpu)?;
    band_view(&x, &bands, shape)?.to_vec2()
}

/// Octave-band energies of note fragments (N, fragment_len), frame by frame: (N, w * bands).
pub(crate) fn band_view(x: &Tensor, bands: &Tensor, [c, h, w]: [usize; 3]) -> Result<Tensor> {
    let n = x.dim(0)?;
    x.reshape((n, c * h, w))?
        .transpose(1, 2)?
        .contiguous()?
        .reshape((n * w, c * h))?
        .matmul(bands)?
        .reshape((n, w * STYLE_BANDS))
}

/// The colour of the ink of fragments in ink space (N, channels * pixels; 0 = white paper,
/// a pixel covered by ink of colour c holds coverage x (1 - c) in each channel): per channel,
/// the summed absorbance over the summed absorbance of all channels, times the strongest
/// pixel's mean absorbance (the stroke's core, fully covered). That is 1 - c for any amount
/// of ink, any stroke width or size: (N, channels).
pub fn ink_colour(x: &Tensor, channels: usize, pixels: usize) -> Result<Tensor> {
    let n = x.dim(0)?;
    let a = x.reshape((n, channels, pixels))?.relu()?;
    let mean = a.mean(1)?;
    let share = a
        .sum(2)?
        .broadcast_div(&mean.sum_keepdim(1)?.affine(channels as f64, 1e-6)?)?;
    share.broadcast_mul(&mean.max_keepdim(1)?)? * channels as f64
}

/// Unit norm along the last axis, times the square root of its length (entries near 1): where
/// the peaks or strokes are, not how strong they are.
pub(crate) fn unit_norm(view: &Tensor) -> Result<Tensor> {
    let scale = (view.dim(D::Minus1)? as f64).sqrt();
    let norm = (view.sqr()?.sum_keepdim(D::Minus1)? + 1e-8)?.sqrt()?;
    view.broadcast_div(&norm)? * scale
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::v3::data::{NOTE_BINS, NOTE_PITCHES};

    fn hz(bin: usize) -> f32 {
        bin as f32 * crate::audio::dsp::SAMPLE_RATE as f32 / crate::audio::dsp::N_FFT as f32
    }

    #[test]
    fn every_log_bin_averages_the_linear_bins_around_its_centre() {
        let w = log_filterbank(NOTE_BINS);
        for j in 0..LOG_BINS {
            let column: Vec<f32> = (0..NOTE_BINS).map(|b| w[b * LOG_BINS + j]).collect();
            let total: f32 = column.iter().sum();
            assert!((total - 1.0).abs() < 1e-4, "log bin {j} sums to {total}");
            let centre = LOG_LOWEST_HZ * (j as f32 / LOG_BINS_PER_OCTAVE as f32).exp2();
            let peak = (0..NOTE_BINS)
                .max_by(|a, b| column[*a].total_cmp(&column[*b]))
                .unwrap();
            assert!(
                (hz(peak) - centre).abs() <= hz(1),
                "log bin {j} ({centre} Hz) peaks at {} Hz",
                hz(peak)
            );
        }
    }

    #[test]
    fn the_fundamentals_of_every_note_share_one_style_band() {
        let w = band_filterbank(NOTE_BINS);
        let band_of = |b: usize| (0..STYLE_BANDS).find(|k| w[b * STYLE_BANDS + k] > 0.0);
        for b in 0..NOTE_BINS {
            let nonzero = (0..STYLE_BANDS)
                .filter(|k| w[b * STYLE_BANDS + k] > 0.0)
                .count();
            assert_eq!(nonzero, 1, "linear bin {b} is in {nonzero} bands");
        }
        for key in NOTE_PITCHES {
            let f0 = 440.0 * ((key - 69) as f32 / 12.0).exp2();
            let bin = (f0 / hz(1)).round() as usize;
            assert_eq!(band_of(bin), Some(1), "key {key} ({f0} Hz)");
        }
    }

    /// The colour view reads the ink's colour whatever the digit, its size or stroke.
    #[test]
    fn ink_colour_is_the_colour_of_the_ink() {
        use crate::v3::data::{DIGIT_H, DIGIT_W, INKS, digit_fragment};
        use rand::Rng;
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(3);
        let split = crate::digits::generated_split(&crate::digits::Recipe {
            train_writers: 6,
            test_writers: 0,
            per_digit: 1,
            seed: 1,
        });
        for (colour, name) in &INKS {
            let i = rng.random_range(0..split.train.len());
            let frag = digit_fragment(split.train.image(i), *colour);
            let ink: Vec<f32> = frag.iter().map(|v| 1.0 - v).collect();
            let x = Tensor::from_vec(ink, (1, 3 * DIGIT_H * DIGIT_W), &Device::Cpu).unwrap();
            let got = ink_colour(&x, 3, DIGIT_H * DIGIT_W)
                .unwrap()
                .to_vec2::<f32>()
                .unwrap();
            // the hue exactly; the strength within the share of the stroke's core left
            // uncovered by a thin pen
            let want: Vec<f32> = colour.iter().map(|c| 1.0 - c).collect();
            let norm = |v: &[f32]| v.iter().map(|a| a * a).sum::<f32>().sqrt();
            let cos = got[0].iter().zip(&want).map(|(a, b)| a * b).sum::<f32>()
                / (norm(&got[0]) * norm(&want));
            let strength = norm(&got[0]) / norm(&want);
            assert!(cos > 0.9999, "{name}: {:?} for {want:?}", got[0]);
            assert!(
                (0.85..=1.01).contains(&strength),
                "{name}: {:?} for {want:?}",
                got[0]
            );
        }
    }
}
