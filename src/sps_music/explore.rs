//! The Pitch lab on the latent map: held-out notes (training instruments at held-out start
//! pitches, and instruments never seen in training) encoded, coloured by instrument or by
//! pitch; a latent decodes to its 513x5 spectrum and sounds through Griffin-Lim. The prior's
//! path between two notes follows the symmetry: pitch is a translation of z1, so the note
//! moves to the other's pitch first, in its own timbre, and then changes timbre.

use crate::app::explore::{
    ColourValues, Colouring, Decoded, Explore, InputCache, LabSource, MapSamples, Output, Sound,
    path_between,
};
use crate::audio::dsp::{self, N_BINS, Stft};

use super::{Lab, data};

/// Held-out start pitches drawn from each training instrument (every other one of them).
const SEEN_STARTS: [i32; 3] = [50, 58, 66];
/// Start pitches drawn from each instrument never seen in training.
const UNSEEN_STARTS: [i32; 2] = [50, 62];
/// Spectrum bins drawn: 0-8 kHz, where the notes' partials are.
const SHOWN_BINS: usize = 257;
/// Griffin-Lim iterations for playback: fast enough for a click, clean enough to hear pitch.
const GL_ITERS: usize = 32;

/// One held-out note: instrument index, MIDI pitch, features (513 x 5, bin-major).
struct Note {
    instrument: usize,
    pitch: i32,
    features: Vec<f32>,
}

struct HeldOut {
    /// instrument names, training ones first, "(unseen)" marked
    names: Vec<String>,
    notes: Vec<Note>,
}

static INPUTS: InputCache<HeldOut> = InputCache::new();

/// The data spec a checkpoint's notes come from (as `eval` reads it).
fn data_spec(lab: &Lab) -> String {
    if lab.meta.data.starts_with("soundfont:") || lab.meta.data.starts_with("wav-dir:") {
        lab.meta.data.clone()
    } else {
        "soundfont".into()
    }
}

fn render(spec: &str) -> anyhow::Result<HeldOut> {
    let mut source = data::open_source(spec)?;
    let (train, unseen) = source.instruments();
    let n_train = train.len();
    let names: Vec<String> = train
        .into_iter()
        .chain(unseen.into_iter().map(|n| format!("{n} (unseen)")))
        .collect();
    let mut stft = Stft::new();
    let mut notes = Vec::new();
    for instrument in 0..names.len() {
        let starts: &[i32] = if instrument < n_train {
            &SEEN_STARTS
        } else {
            &UNSEEN_STARTS
        };
        for &start in starts {
            debug_assert!(instrument >= n_train || data::is_held_out_start(start));
            let audio = data::render_scale(source.as_mut(), instrument, start)?;
            let features = data::scale_features(&mut stft, &audio);
            for (k, step) in data::SCALE.iter().enumerate() {
                notes.push(Note {
                    instrument,
                    pitch: start + step,
                    features: features[k * data::NOTE_FEATURES..(k + 1) * data::NOTE_FEATURES]
                        .to_vec(),
                });
            }
        }
    }
    Ok(HeldOut { names, notes })
}

impl Explore for LabSource<Lab> {
    fn dims(&self) -> usize {
        self.lab.latent_dims()
    }

    fn dim_role(&self, i: usize) -> Option<&'static str> {
        Some(if i == 0 { "pitch" } else { "timbre" })
    }

    fn samples(&self) -> anyhow::Result<MapSamples> {
        let spec = data_spec(&self.lab);
        let held = INPUTS.get_or(&spec, || render(&spec))?;
        let flat: Vec<f32> = held
            .notes
            .iter()
            .flat_map(|n| n.features.iter().copied())
            .collect();
        let latents = self.lab.encode(&flat)?;
        Ok(MapSamples {
            latents,
            colourings: vec![
                Colouring {
                    name: "instrument".into(),
                    values: ColourValues::Categories {
                        names: held.names.clone(),
                        of: held.notes.iter().map(|n| n.instrument).collect(),
                    },
                },
                Colouring {
                    name: "pitch (MIDI)".into(),
                    values: ColourValues::Continuous(
                        held.notes.iter().map(|n| n.pitch as f32).collect(),
                    ),
                },
            ],
            labels: held
                .notes
                .iter()
                .map(|n| {
                    format!(
                        "{}, MIDI {}",
                        held.names.get(n.instrument).cloned().unwrap_or_default(),
                        n.pitch
                    )
                })
                .collect(),
        })
    }

    fn decode_latent(&self, z: &[f32]) -> anyhow::Result<Decoded> {
        Ok(Decoded {
            values: self.lab.decode_spectrum(z)?,
            output: Output::Spectrogram {
                bins: N_BINS,
                frames: data::FRAMES_PER_NOTE,
                shown_bins: SHOWN_BINS,
                gain: 1.0,
            },
        })
    }

    fn has_sound(&self) -> bool {
        true
    }

    fn sound(&self, latents: &[Vec<f32>]) -> Option<anyhow::Result<Sound>> {
        Some(
            self.lab
                .render_notes(latents, GL_ITERS)
                .map(|samples| Sound {
                    samples,
                    rate: dsp::SAMPLE_RATE,
                })
                .map_err(Into::into),
        )
    }

    /// The symmetry's path: z1 translated to b's pitch with a's timbre held (a transposition
    /// of a's note), then the timbre moved from a's to b's at that pitch.
    fn prior_path(&self, a: &[f32], b: &[f32], n: usize) -> Option<Vec<Vec<f32>>> {
        Some(symmetry_path(a, b, n))
    }

    fn prior_name(&self) -> String {
        "symmetry: pitch, then timbre".into()
    }
}

fn symmetry_path(a: &[f32], b: &[f32], n: usize) -> Vec<Vec<f32>> {
    path_between(a, b, n, |t| {
        // the first half of the way moves the pitch, the second the timbre
        let t = 2.0 * t as f32;
        let mut z = a.to_vec();
        if t <= 1.0 {
            z[0] = a[0] + t * (b[0] - a[0]);
        } else {
            z[0] = b[0];
            for k in 1..z.len() {
                z[k] = a[k] + (t - 1.0) * (b[k] - a[k]);
            }
        }
        z
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_symmetry_path_transposes_first_then_changes_timbre() {
        let (a, b) = ([0.0f32, 1.0, 2.0], [4.0f32, -1.0, 0.0]);
        let p = symmetry_path(&a, &b, 9);
        assert_eq!(p[0], a.to_vec());
        assert_eq!(p[8], b.to_vec());
        // the first half moves only the pitch latent, the second only the timbre
        assert_eq!(p[4], vec![4.0, 1.0, 2.0]);
        assert_eq!(p[2], vec![2.0, 1.0, 2.0]);
        assert_eq!(p[6], vec![4.0, 0.0, 1.0]);
    }
}
