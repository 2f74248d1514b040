//! The Class x Pose lab on the latent map: held-out digits (test writers) encoded to their
//! equivariant latent, the pose, coloured by their digit or by the class the model reads; a
//! pose decodes to itself drawn in every class, as `latent-lab decode` draws a row of N x E
//! poses. The prior of the pose is a standard normal: its path runs on the great circle.

use candle_core::{D, Device, Tensor};

use crate::app::explore::{
    ColourValues, Colouring, Decoded, Explore, InputCache, LabSource, MapSamples, Output,
    slerp_path,
};
use crate::digits::{self, DigitSet, PIXELS, SIDE};

use super::Lab;

/// Held-out digits encoded for the map.
const DIGITS: usize = 300;

static INPUTS: InputCache<DigitSet> = InputCache::new();

/// Test digits of a data spec: generated ones without generating the training set.
fn held_out(lab: &Lab) -> anyhow::Result<DigitSet> {
    let set = match digits::Source::parse(&lab.meta.data, lab.cfg.recipe)? {
        digits::Source::Generated(r) => {
            let per_writer = 10 * r.per_digit.max(1);
            let writers = DIGITS.div_ceil(per_writer).min(r.test_writers.max(1));
            digits::generate(digits::TEST_WRITER_BASE, writers, r.per_digit, r.seed)
        }
        other => other.load()?.test,
    };
    anyhow::ensure!(!set.is_empty(), "{}: no test digits", lab.meta.data);
    Ok(set.head(DIGITS))
}

impl Explore for LabSource<Lab> {
    fn dims(&self) -> usize {
        self.lab.equivariant_dims()
    }

    fn samples(&self) -> anyhow::Result<MapSamples> {
        let key = format!("{} {:?}", self.lab.meta.data, self.lab.cfg.recipe);
        let set = INPUTS.get_or(&key, || held_out(&self.lab))?;
        let x = Tensor::from_slice(&set.images, (set.len(), PIXELS), &Device::Cpu)?;
        let (mu, _) = self.lab.model.encode(&x)?;
        let read = self
            .lab
            .model
            .classify(&x)?
            .argmax(D::Minus1)?
            .to_vec1::<u32>()?;
        let classes: Vec<String> = (0..self.lab.classes()).map(|c| c.to_string()).collect();
        Ok(MapSamples {
            latents: mu.to_vec2::<f32>()?,
            colourings: vec![
                Colouring {
                    name: "digit".into(),
                    values: ColourValues::Categories {
                        names: classes.clone(),
                        of: set.labels.iter().map(|l| *l as usize).collect(),
                    },
                },
                Colouring {
                    name: "class the model reads".into(),
                    values: ColourValues::Categories {
                        names: classes,
                        of: read.iter().map(|c| *c as usize).collect(),
                    },
                },
            ],
            labels: set
                .labels
                .iter()
                .zip(&read)
                .map(|(l, r)| format!("a {l} (read as {r})"))
                .collect(),
        })
    }

    fn decode_latent(&self, z: &[f32]) -> anyhow::Result<Decoded> {
        let images = self.lab.in_every_class(z)?;
        Ok(Decoded {
            output: Output::Images {
                count: images.len(),
                channels: 1,
                height: SIDE,
                width: SIDE,
                ink: true,
            },
            values: images.concat(),
        })
    }

    fn prior_path(&self, a: &[f32], b: &[f32], n: usize) -> Option<Vec<Vec<f32>>> {
        Some(slerp_path(a, b, n))
    }

    fn prior_name(&self) -> String {
        "prior: great circle".into()
    }
}
