//! The Codebook lab on the latent map: held-out fragments (a take of every training
//! instrument or a few rows of every training ink, and of the held-out styles) encoded to
//! their content and style latents side by side (the layout `latent-lab decode` reads),
//! coloured by content, by style or by the atom the content snaps to. A latent decodes to
//! its fragment: a 512x32 spectrogram that sounds through Griffin-Lim, or a 3x48x32 digit.
//! V3 has no prior over its latents, so interpolation is linear only.

use anyhow::Context as _;

use crate::app::explore::{
    ColourValues, Colouring, Decoded, Explore, InputCache, LabSource, MapSamples, Output, Sound,
};
use crate::audio::dsp::{self, Stft};
use crate::audio::soundfont::NoteRenderer;

use super::data::{self, Domain};
use super::{Lab, THUMB_BINS};

/// Rows of held-out digits encoded for the map, the last of them in held-out inks.
const DIGIT_ROWS: usize = 24;
const HELD_OUT_INK_ROWS: usize = 8;
/// The atoms get a colouring of their own when there are at most this many.
const MAX_ATOM_COLOURS: usize = 64;
/// Griffin-Lim iterations for playback of a one-second fragment.
const GL_ITERS: usize = 32;

/// Held-out fragments with their content and style labels.
struct HeldOut {
    fragments: Vec<Vec<f32>>,
    contents: Vec<usize>,
    styles: Vec<usize>,
    content_names: Vec<String>,
    style_names: Vec<String>,
}

static INPUTS: InputCache<HeldOut> = InputCache::new();

/// One held-out take of every training instrument (the first test take, as `eval` renders
/// it) and one of every held-out instrument.
fn notes(spec: &str) -> anyhow::Result<HeldOut> {
    let path = if spec.is_empty() || spec == "soundfont" {
        crate::audio::soundfont::default_soundfont_path()?
    } else if let Some(p) = spec.strip_prefix("soundfont:") {
        p.into()
    } else {
        anyhow::bail!("{spec}: unknown data source for v3-notes")
    };
    let mut renderer = NoteRenderer::open(&path, &data::all_programs())?;
    let mut stft = Stft::new();
    let mut held = HeldOut {
        fragments: Vec::new(),
        contents: Vec::new(),
        styles: Vec::new(),
        content_names: data::NOTE_PITCHES
            .map(|p| format!("{}{}", data::PITCH_NAMES[(p % 12) as usize], p / 12 - 1))
            .collect(),
        style_names: Vec::new(),
    };
    let len = Domain::Notes.fragment_len();
    let programs = data::TRAIN_PROGRAMS
        .iter()
        .map(|p| (p, data::TRAIN_RENDERINGS, ""))
        .chain(
            data::HELD_OUT_PROGRAMS
                .iter()
                .map(|p| (p, 0, " (held out)")),
        );
    for (style, ((program, name), take, note)) in programs.enumerate() {
        let seed = 1000 * (*program as u64 + 1) + take as u64;
        let features = data::render_take(&mut renderer, &mut stft, *program, seed)?;
        for (content, fragment) in features.chunks_exact(len).enumerate() {
            held.fragments.push(fragment.to_vec());
            held.contents.push(content);
            held.styles.push(style);
        }
        held.style_names.push(format!("{name}{note}"));
    }
    Ok(held)
}

/// Held-out digits: generated ones by test writers without generating the training set,
/// others from the data's test split; rows of ten in the training inks, then held-out inks.
fn digits(spec: &str) -> anyhow::Result<HeldOut> {
    let source = crate::digits::Source::parse(spec, data::digit_recipe())?;
    let set = match source {
        crate::digits::Source::Generated(r) => crate::digits::generate(
            crate::digits::TEST_WRITER_BASE,
            DIGIT_ROWS.min(r.test_writers.max(1)),
            1,
            r.seed,
        ),
        other => other.load()?.test.head(DIGIT_ROWS * 10),
    };
    let mut held = HeldOut {
        fragments: Vec::new(),
        contents: Vec::new(),
        styles: Vec::new(),
        content_names: (0..10).map(|d| d.to_string()).collect(),
        style_names: data::INKS
            .iter()
            .enumerate()
            .map(|(style, (_, name))| {
                if style < data::TRAIN_INKS {
                    name.to_string()
                } else {
                    format!("{name} (held out)")
                }
            })
            .collect(),
    };
    let rows = set.len().div_ceil(10);
    let first_held_out = rows.saturating_sub(HELD_OUT_INK_ROWS);
    for i in 0..set.len() {
        let row = i / 10;
        let style = if row < first_held_out {
            row % data::TRAIN_INKS
        } else {
            data::TRAIN_INKS + (row - first_held_out) % data::HELD_OUT_INKS
        };
        held.fragments
            .push(data::digit_fragment(set.image(i), data::INKS[style].0));
        held.contents.push(set.labels[i] as usize);
        held.styles.push(style);
    }
    anyhow::ensure!(!held.fragments.is_empty(), "{spec}: no held-out digits");
    Ok(held)
}

impl LabSource<Lab> {
    fn split(&self) -> (usize, usize) {
        (self.lab.cfg.model.content_dim, self.lab.cfg.model.style_dim)
    }
}

impl Explore for LabSource<Lab> {
    fn dims(&self) -> usize {
        let (c, s) = self.split();
        c + s
    }

    fn dim_names(&self) -> Vec<String> {
        let (c, s) = self.split();
        (1..=c)
            .map(|i| format!("content {i}"))
            .chain((1..=s).map(|i| format!("style {i}")))
            .collect()
    }

    fn samples(&self) -> anyhow::Result<MapSamples> {
        let domain = self.lab.domain();
        let spec = super::cli::data_spec(&self.lab, None);
        let held = INPUTS.get_or(
            &format!("{} {spec}", self.lab.meta.family),
            || match domain {
                Domain::Notes => notes(&spec),
                Domain::Digits => digits(&spec),
            },
        )?;
        let refs: Vec<&[f32]> = held.fragments.iter().map(|f| f.as_slice()).collect();
        let enc = self.lab.encode(&refs)?;
        let latents: Vec<Vec<f32>> = enc
            .content
            .iter()
            .zip(&enc.style)
            .map(|(c, s)| c.iter().chain(s).copied().collect())
            .collect();
        let mut colourings = vec![
            Colouring {
                name: domain.content_word().into(),
                values: ColourValues::Categories {
                    names: held.content_names.clone(),
                    of: held.contents.clone(),
                },
            },
            Colouring {
                name: domain.style_word().into(),
                values: ColourValues::Categories {
                    names: held.style_names.clone(),
                    of: held.styles.clone(),
                },
            },
        ];
        let atoms = self.lab.cfg.model.atoms;
        if atoms <= MAX_ATOM_COLOURS {
            colourings.push(Colouring {
                name: "atom".into(),
                values: ColourValues::Categories {
                    names: (0..atoms)
                        .map(|a| super::cli::atom_caption(&self.lab, a))
                        .collect(),
                    of: enc.codes.clone(),
                },
            });
        }
        let labels = held
            .contents
            .iter()
            .zip(&held.styles)
            .map(|(c, s)| {
                format!(
                    "{} · {}",
                    held.content_names.get(*c).cloned().unwrap_or_default(),
                    held.style_names.get(*s).cloned().unwrap_or_default()
                )
            })
            .collect();
        Ok(MapSamples {
            latents,
            colourings,
            labels,
        })
    }

    fn decode_latent(&self, z: &[f32]) -> anyhow::Result<Decoded> {
        let (c, _) = self.split();
        let values = self
            .lab
            .model
            .decode_rows(&[z[..c].to_vec()], &[z[c..].to_vec()])?
            .into_iter()
            .next()
            .context("the decoder gave nothing")?;
        let [ch, h, w] = self.lab.domain().fragment_shape();
        let output = match self.lab.domain() {
            Domain::Notes => Output::Spectrogram {
                bins: h,
                frames: w,
                shown_bins: THUMB_BINS,
                // as the Codebook tab draws fragments: features rarely pass 0.8
                gain: 1.0 / 0.8,
            },
            Domain::Digits => Output::Images {
                count: 1,
                channels: ch,
                height: h,
                width: w,
                ink: false,
            },
        };
        Ok(Decoded { values, output })
    }

    fn has_sound(&self) -> bool {
        self.lab.domain() == Domain::Notes
    }

    fn sound(&self, latents: &[Vec<f32>]) -> Option<anyhow::Result<Sound>> {
        if self.lab.domain() != Domain::Notes {
            return None;
        }
        let mut stft = Stft::new();
        let mut samples = Vec::new();
        for z in latents {
            match self.decode(z) {
                Ok(d) => {
                    samples.extend(super::fragment_audio(&mut stft, &d.values, GL_ITERS));
                    // a tenth of a second between fragments, so that each is heard apart
                    samples.extend(std::iter::repeat_n(0.0, dsp::SAMPLE_RATE as usize / 10));
                }
                Err(e) => return Some(Err(e)),
            }
        }
        Some(Ok(Sound {
            samples,
            rate: dsp::SAMPLE_RATE,
        }))
    }
}
