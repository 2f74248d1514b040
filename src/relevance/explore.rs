//! The Relevance lab on the latent map: held-out events of the model's data encoded,
//! coloured by the physical observables the data knows (the muon pair's mass, rapidity,
//! angle, ...); a latent decodes to an event's features, drawn as momentum arrows for a muon
//! pair. The prior is a standard normal: its path runs on the great circle.

use crate::app::explore::{
    ColourValues, Colouring, Decoded, Explore, InputCache, LabSource, MapSamples, Output,
    slerp_path,
};

use super::Lab;

/// Held-out events encoded for the map.
const EVENTS: usize = 500;

/// Raw features (row-major) and observables of the held-out events drawn.
struct HeldOut {
    features: Vec<f32>,
    observables: Vec<(String, Vec<f32>)>,
}

static INPUTS: InputCache<HeldOut> = InputCache::new();

fn held_out(lab: &Lab) -> anyhow::Result<HeldOut> {
    let data = lab.training_data()?;
    lab.check_data(&data)?;
    let rows: Vec<usize> = data.held_out_indices().into_iter().take(EVENTS).collect();
    anyhow::ensure!(!rows.is_empty(), "{}: no held-out events", data.source);
    Ok(HeldOut {
        features: data.gather(&rows),
        observables: super::eval::observables_of(&data.observables, &rows),
    })
}

impl Explore for LabSource<Lab> {
    fn dims(&self) -> usize {
        self.lab.latent_dims()
    }

    fn samples(&self) -> anyhow::Result<MapSamples> {
        let key = format!(
            "{} {} {} {}",
            self.lab.meta.data, self.lab.cfg.events, self.lab.meta.seed, self.lab.cfg.model.input
        );
        let held = INPUTS.get_or(&key, || held_out(&self.lab))?;
        let latents = self.lab.encode(&held.features)?;
        let n = latents.len();
        let mut colourings: Vec<Colouring> = held
            .observables
            .iter()
            .map(|(name, values)| Colouring {
                name: name.clone(),
                values: ColourValues::Continuous(values.clone()),
            })
            .collect();
        if colourings.is_empty() {
            colourings.push(Colouring {
                name: "events".into(),
                values: ColourValues::Categories {
                    names: vec!["held-out events".into()],
                    of: vec![0; n],
                },
            });
        }
        Ok(MapSamples {
            latents,
            colourings,
            labels: (0..n)
                .map(|i| format!("held-out event {}", i + 1))
                .collect(),
        })
    }

    fn decode_latent(&self, z: &[f32]) -> anyhow::Result<Decoded> {
        Ok(Decoded {
            values: self.lab.decode(z)?,
            output: Output::Vector {
                names: self.lab.columns.clone(),
            },
        })
    }

    fn prior_path(&self, a: &[f32], b: &[f32], n: usize) -> Option<Vec<Vec<f32>>> {
        Some(slerp_path(a, b, n))
    }

    fn prior_name(&self) -> String {
        "prior: great circle".into()
    }

    fn paint(&self, ui: &mut egui::Ui, decoded: &Decoded) -> bool {
        if !self.lab.is_muon_pair() || decoded.values.len() != 8 {
            return false;
        }
        super::event_view::draw_muon_event(ui, &decoded.values);
        true
    }
}
