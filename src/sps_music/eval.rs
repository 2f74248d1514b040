//! Metrics of the SPS music model (DESIGN.md): linearity of the pitch latent on held-out
//! notes and instruments, and of the pitch heard when the latent is swept and resynthesised.

use std::collections::BTreeMap;

use candle_core::Result;
use serde::{Deserialize, Serialize};

use super::data::{Dataset, SEQ_LEN, Sequence};
use super::model::{SpsMusic, encode_all};
use crate::audio::dsp;
use crate::metrics::{linear_fit, r_squared};

/// What the window needs to show a model without re-rendering its data: the map from the
/// pitch latent to semitones, the latent's range, each instrument's mean timbre, and the
/// embedded held-out notes for the scatter plot.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// pitch (MIDI) = slope * latent + intercept
    pub slope: f64,
    pub intercept: f64,
    pub r2_seen: f64,
    pub r2_unseen: f64,
    /// mean over instruments of the R^2 of each instrument's own line (held-out notes of
    /// training instruments): linearity before asking that all instruments share one line
    #[serde(default)]
    pub r2_within_instrument: f64,
    pub latent_range: (f32, f32),
    pub instruments: Vec<InstrumentTimbre>,
    /// (MIDI pitch, pitch latent, instrument index) of held-out notes
    pub points: Vec<(f32, f32, u16)>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct InstrumentTimbre {
    pub name: String,
    pub timbre: Vec<f32>,
    pub unseen: bool,
}

impl InstrumentTimbre {
    /// Its name, marked when no note of it was heard in training.
    pub fn label(&self) -> String {
        match self.unseen {
            true => format!("{} (unseen)", self.name),
            false => self.name.clone(),
        }
    }
}

impl Calibration {
    /// (pitch latent, MIDI pitch) of the held-out notes of instrument `i`.
    pub fn points_of(&self, i: usize) -> impl Iterator<Item = (f64, f64)> + '_ {
        let notes = self.points.iter().filter(move |p| p.2 as usize == i);
        notes.map(|p| (p.1 as f64, p.0 as f64))
    }
}

fn notes_of(seqs: &[Sequence]) -> (Vec<&[f32]>, Vec<f32>, Vec<u16>) {
    let mut notes = Vec::new();
    let mut pitches = Vec::new();
    let mut inst = Vec::new();
    for s in seqs {
        for i in 0..SEQ_LEN {
            notes.push(s.note(i));
            pitches.push(s.pitches[i] as f32);
            inst.push(s.instrument as u16);
        }
    }
    (notes, pitches, inst)
}

/// Encode the held-out notes and fit pitch against the pitch latent.
pub fn embedding_metrics(model: &SpsMusic, data: &Dataset) -> Result<Calibration> {
    let (seen, seen_p, seen_i) = notes_of(&data.test_seen);
    let (unseen, unseen_p, unseen_i) = notes_of(&data.test_unseen);
    let mu_seen = encode_all(model, &seen)?;
    let mu_unseen = encode_all(model, &unseen)?;
    let lat_seen: Vec<f64> = mu_seen.iter().map(|m| m[0] as f64).collect();
    let lat_unseen: Vec<f64> = mu_unseen.iter().map(|m| m[0] as f64).collect();
    let p_seen: Vec<f64> = seen_p.iter().map(|&p| p as f64).collect();
    let p_unseen: Vec<f64> = unseen_p.iter().map(|&p| p as f64).collect();
    let fit = linear_fit(&lat_seen, &p_seen);
    let fit_unseen = linear_fit(&lat_unseen, &p_unseen);
    let (lo, hi) = lat_seen
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    let mut instruments = Vec::new();
    for (index, name) in data.instruments.iter().enumerate() {
        let unseen = index >= data.n_train_instruments;
        let (mus, insts) = if unseen {
            (&mu_unseen, &unseen_i)
        } else {
            (&mu_seen, &seen_i)
        };
        let rows: Vec<&Vec<f32>> = mus
            .iter()
            .zip(insts)
            .filter(|(_, i)| **i as usize == index)
            .map(|(m, _)| m)
            .collect();
        if rows.is_empty() {
            continue;
        }
        let dims = rows[0].len();
        let timbre: Vec<f32> = (1..dims)
            .map(|d| rows.iter().map(|r| r[d]).sum::<f32>() / rows.len() as f32)
            .collect();
        instruments.push(InstrumentTimbre {
            name: name.clone(),
            timbre,
            unseen,
        });
    }
    let mut within = Vec::new();
    for index in 0..data.n_train_instruments {
        let (x, y): (Vec<f64>, Vec<f64>) = lat_seen
            .iter()
            .zip(&p_seen)
            .zip(&seen_i)
            .filter(|(_, i)| **i as usize == index)
            .map(|((l, p), _)| (*l, *p))
            .unzip();
        if x.len() > 2 {
            within.push(linear_fit(&x, &y).r2);
        }
    }
    let r2_within_instrument = within.iter().sum::<f64>() / within.len().max(1) as f64;
    let mut points: Vec<(f32, f32, u16)> = Vec::new();
    for ((p, m), i) in seen_p
        .iter()
        .zip(&mu_seen)
        .zip(&seen_i)
        .chain(unseen_p.iter().zip(&mu_unseen).zip(&unseen_i))
    {
        points.push((*p, m[0], *i));
    }
    Ok(Calibration {
        slope: fit.slope,
        intercept: fit.intercept,
        r2_seen: fit.r2,
        r2_unseen: fit_unseen.r2,
        r2_within_instrument,
        latent_range: (lo as f32, hi as f32),
        instruments,
        points,
    })
}

/// How the calibration line reads held-out notes (`cal.points`): the R^2 of its pitch against
/// the true pitch for each instrument by name (those never seen in training too), and the
/// share of the training instruments' held-out notes it reads 6 to 18 semitones off, about an
/// octave: the mistake a pitch latent that lands on another partial makes.
pub fn line_reading(
    cal: &Calibration,
    instruments: &[String],
    n_train: usize,
) -> (BTreeMap<String, f64>, f64) {
    let read = |latent: f32| cal.slope * latent as f64 + cal.intercept;
    let r2_by_instrument = instruments
        .iter()
        .enumerate()
        .filter_map(|(index, name)| {
            let (pred, truth): (Vec<f64>, Vec<f64>) = (cal.points.iter())
                .filter(|p| p.2 as usize == index)
                .map(|&(pitch, latent, _)| (read(latent), pitch as f64))
                .unzip();
            (!truth.is_empty()).then(|| (name.clone(), r_squared(&pred, &truth)))
        })
        .collect();
    let errors: Vec<f64> = (cal.points.iter())
        .filter(|p| (p.2 as usize) < n_train)
        .map(|&(pitch, latent, _)| (read(latent) - pitch as f64).abs())
        .collect();
    let octave_off = errors.iter().filter(|e| (6.0..=18.0).contains(*e)).count();
    (
        r2_by_instrument,
        octave_off as f64 / errors.len().max(1) as f64,
    )
}

/// Sweep the pitch latent over its observed range with each training instrument's timbre,
/// resynthesise with Griffin-Lim, detect the pitch with YIN, and fit detected semitones
/// against the latent. Returns (R^2, share of notes where a pitch was detected).
pub fn synthesis_r2(
    model: &SpsMusic,
    cal: &Calibration,
    points_per_sweep: usize,
) -> Result<(f64, f64)> {
    let mut latents = Vec::new();
    let mut detected = Vec::new();
    let mut tried = 0usize;
    let mut stft = dsp::Stft::new();
    let (lo, hi) = cal.latent_range;
    for inst in cal.instruments.iter().filter(|i| !i.unseen) {
        for k in 0..points_per_sweep {
            let pitch_latent = lo + (hi - lo) * k as f32 / (points_per_sweep - 1).max(1) as f32;
            let mut z = vec![pitch_latent];
            z.extend_from_slice(&inst.timbre);
            let audio = super::resynthesize(model, &z, &mut stft, 32)?;
            tried += 1;
            let steady = &audio[256..audio.len().saturating_sub(256)];
            if let Some(f) = dsp::yin(steady, dsp::SAMPLE_RATE as f32, 40.0, 2000.0, 0.2) {
                latents.push(pitch_latent as f64);
                detected.push(dsp::hz_to_midi(f) as f64);
            }
        }
    }
    if latents.len() < 3 {
        return Ok((0.0, latents.len() as f64 / tried.max(1) as f64));
    }
    let fit = linear_fit(&latents, &detected);
    Ok((fit.r2, latents.len() as f64 / tried.max(1) as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_reads_each_instrument_and_counts_octave_mistakes() {
        // three notes of an instrument, their latents on the line but moved by `off`
        let notes = |instrument: u16, off: [f32; 3]| {
            (0..3).map(move |i| {
                let pitch = 60.0 + 2.0 * i as f32;
                (pitch, pitch - 60.0 + off[i], instrument)
            })
        };
        // instrument 0 read exactly, 1 with one note an octave up, 2 unseen in training
        let points = notes(0, [0.0; 3])
            .chain(notes(1, [0.0, 12.0, 0.0]))
            .chain(notes(2, [12.0, 0.0, 0.0]))
            .collect();
        let cal = Calibration {
            slope: 1.0,
            intercept: 60.0,
            points,
            ..Calibration::default()
        };
        let names = ["a", "b", "c"].map(String::from);
        let (r2, octave_off) = line_reading(&cal, &names, 2);
        assert_eq!(r2["a"], 1.0);
        assert!(r2["b"] < 0.0, "{r2:?}");
        assert!(r2.contains_key("c"));
        // one of the six held-out notes of the training instruments
        assert!((octave_off - 1.0 / 6.0).abs() < 1e-12, "{octave_off}");
    }
}
