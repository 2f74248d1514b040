//! The SPS music model of Liu et al. (NeurIPS 2023), with the official code's parameter names:
//! a conv encoder of one note's 513x5 spectrum, a 3-D latent (1 pitch dim + 2 timbre dims),
//! an MLP + transposed-conv decoder, and a 1-layer tanh RNN prior on the pitch dim.

use candle_core::{D, Module, Result, Tensor};
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};

use super::data::{FRAMES_PER_NOTE, NOTE_FEATURES};
use super::logshift::{LOG_BINS, LogShift, front_end, lin_to_log};
use crate::audio::dsp::N_BINS;
use crate::nn::patches::Act;
use crate::nn::{
    HeightConv, HeightConvTranspose, Mlp, Rnn, StackLayer, WeightInit, conv, linear, linear_init,
};

/// Model sizes. `paper` is the official configuration; smaller ones train faster on a CPU.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// encoder channels (the decoder mirrors them)
    pub channels: [usize; 4],
    /// hidden sizes of the decoder MLP fc3 before its last layer
    pub mlp: [usize; 4],
    pub rnn_hidden: usize,
    /// 1 pitch dim followed by the timbre dims
    pub latent: usize,
    /// how the weights start (PyTorch's default in the official code)
    #[serde(default)]
    pub init: WeightInit,
    /// the official body, or the log-frequency shift body of the `fast` preset
    #[serde(default)]
    pub arch: Arch,
    /// The official body's encoder reads the spectrum pooled onto the log-frequency axis
    /// (two bins a semitone, as the log-shift body's front end) instead of the 513 linear
    /// bins, so that a change of pitch moves a note's partials together, by the same number
    /// of bins at any pitch. The decoder still draws the linear spectrum. The log-shift body
    /// always reads the log axis.
    #[serde(default)]
    pub log_input: bool,
}

/// checkpoints saved before `below` was a setting had a template reaching 140 bins down
fn logshift_below_default() -> usize {
    140
}

/// checkpoints saved before `sharpness` was a setting read the salience at 20
fn logshift_sharpness_default() -> f64 {
    super::logshift::SHARPNESS
}

/// Which encoder and decoder sit around the latent (the prior is the same in both).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Arch {
    /// the official convs and MLP (parameter names of the official state_dict)
    #[default]
    Official,
    /// `logshift`: log-frequency convs with a soft-argmax pitch, a shifted template decoder;
    /// `kernel` is the wide conv's span in log bins, `below` how far the template reaches
    /// below the note's position, in log bins (half semitones)
    LogShift {
        kernel: usize,
        #[serde(default = "logshift_below_default")]
        below: usize,
        /// the scale of the salience in the soft-argmax that reads the pitch latent
        /// (`logshift::SHARPNESS` unless set); training may reach it gradually
        /// (`TrainConfig::sharpness_start`)
        #[serde(default = "logshift_sharpness_default")]
        sharpness: f64,
    },
}

impl ModelConfig {
    pub fn paper() -> Self {
        Self {
            channels: [64, 64, 128, 128],
            mlp: [16, 64, 256, 1024],
            rnn_hidden: 256,
            latent: 3,
            init: WeightInit::PyTorch,
            arch: Arch::Official,
            log_input: false,
        }
    }
    /// height of the encoder's last feature map (513 -> 256 -> 64 -> 32 -> 16), where the
    /// decoder's MLP ends too
    pub const LAST_H: usize = official_height(N_BINS);
    /// the same on the log-frequency axis (190 -> 94 -> 23 -> 11 -> 5)
    pub const LOG_LAST_H: usize = official_height(LOG_BINS);
    /// features of the decoder's MLP output
    pub fn flat(&self) -> usize {
        self.channels[3] * Self::LAST_H
    }
    /// features the official encoder flattens into the latent
    pub fn encoder_flat(&self) -> usize {
        let h = if self.log_input {
            Self::LOG_LAST_H
        } else {
            Self::LAST_H
        };
        self.channels[3] * h
    }
}

/// Height after the official encoder's four convolutions (kernel, stride, padding along
/// frequency: (5, 2, 1), (8, 4, 2), (4, 2, 1), (4, 2, 1)) of an input `h` bins high.
const fn official_height(h: usize) -> usize {
    let layers = [(5, 2, 1), (8, 4, 2), (4, 2, 1), (4, 2, 1)];
    let mut h = h;
    let mut i = 0;
    while i < layers.len() {
        let (k, s, p) = layers[i];
        h = (h + 2 * p - k) / s + 1;
        i += 1;
    }
    h
}

pub struct SpsMusic {
    pub cfg: ModelConfig,
    body: Body,
    pub rnn: Rnn,
    fc2: candle_nn::Linear,
}

enum Body {
    Official(Box<Official>),
    LogShift(Box<LogShift>),
}

/// The official encoder and decoder.
struct Official {
    cfg: ModelConfig,
    enc: [HeightConv; 4],
    fc11: candle_nn::Linear,
    fc12: candle_nn::Linear,
    fc3: Mlp,
    dec: [HeightConvTranspose; 4],
    /// (N_BINS, LOG_BINS) pooling onto the log-frequency axis (`ModelConfig::log_input`)
    to_log: Option<Tensor>,
}

impl SpsMusic {
    /// The log-shift body's soft-argmax sharpness (no effect on the official body).
    pub fn set_sharpness(&mut self, sharpness: f64) {
        if let Body::LogShift(b) = &mut self.body {
            b.set_sharpness(sharpness);
        }
    }

    /// The log-shift body, if this model has one.
    pub fn log_shift(&self) -> Option<&LogShift> {
        match &self.body {
            Body::LogShift(b) => Some(b),
            Body::Official(_) => None,
        }
    }

    pub fn new(cfg: &ModelConfig, vb: VarBuilder) -> Result<Self> {
        let body = match cfg.arch {
            Arch::Official => Body::Official(Box::new(Official::new(cfg, vb.clone())?)),
            Arch::LogShift { .. } => Body::LogShift(Box::new(LogShift::new(cfg, vb.clone())?)),
        };
        Ok(Self {
            cfg: cfg.clone(),
            body,
            rnn: Rnn::new(1, cfg.rnn_hidden, vb.pp("rnn"))?,
            fc2: linear(cfg.rnn_hidden, 1, vb.pp("fc2"))?,
        })
    }

    /// The variable holding the decoder's last bias, which training starts at the data's mean.
    pub fn output_bias_name(&self) -> String {
        match &self.body {
            Body::Official(_) => "decoder.6.bias".into(),
            Body::LogShift(b) => b.output_bias_name(self.cfg.mlp.len()),
        }
    }

    /// x: (N, 1, 513, 5) spectra -> (mu, logvar), each (N, latent)
    pub fn encode(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        match &self.body {
            Body::Official(b) => b.encode(x),
            Body::LogShift(b) => b.encode(x),
        }
    }

    /// x -> (mu, logvar, the log-shift body's salience (N, LOG_BINS); None for the official body)
    pub fn encode_with_salience(&self, x: &Tensor) -> Result<(Tensor, Tensor, Option<Tensor>)> {
        match &self.body {
            Body::Official(b) => {
                let (mu, logvar) = b.encode(x)?;
                Ok((mu, logvar, None))
            }
            Body::LogShift(b) => {
                let (mu, logvar, salience) = b.encode_with_salience(x)?;
                Ok((mu, logvar, Some(salience)))
            }
        }
    }

    /// z: (N, latent) -> decoder logits (N, 1, 513, 5); the spectrum is their sigmoid
    pub fn decode_logits(&self, z: &Tensor) -> Result<Tensor> {
        match &self.body {
            Body::Official(b) => b.decode_logits(z),
            Body::LogShift(b) => b.decode_logits(z),
        }
    }

    crate::sps::prior_methods!(fc2, "the pitch dim");

    /// Encode notes given as flat features (N * NOTE_FEATURES, bin-major) -> mu (N, latent)
    pub fn encode_features(&self, features: &[f32], n: usize) -> Result<Tensor> {
        let x = Tensor::from_slice(
            &features[..n * NOTE_FEATURES],
            (n, 1, N_BINS, FRAMES_PER_NOTE),
            &candle_core::Device::Cpu,
        )?;
        Ok(self.encode(&x)?.0)
    }
}

impl Official {
    fn new(cfg: &ModelConfig, vb: VarBuilder) -> Result<Self> {
        let c = cfg.channels;
        let i = cfg.init;
        let e = vb.pp("encoder");
        let enc = [
            HeightConv::new(1, c[0], (5, FRAMES_PER_NOTE), 2, 1, i, e.pp(0))?,
            HeightConv::new(c[0], c[1], (8, 1), 4, 2, i, e.pp(2))?,
            HeightConv::new(c[1], c[2], (4, 1), 2, 1, i, e.pp(4))?,
            HeightConv::new(c[2], c[3], (4, 1), 2, 1, i, e.pp(6))?,
        ];
        let d = vb.pp("decoder");
        let dec = [
            HeightConvTranspose::new(c[3], c[2], (4, 1), 2, 1, i, d.pp(0))?,
            HeightConvTranspose::new(c[2], c[1], (4, 1), 2, 1, i, d.pp(2))?,
            HeightConvTranspose::new(c[1], c[0], (8, 1), 4, 2, i, d.pp(4))?,
            HeightConvTranspose::new(c[0], 1, (5, FRAMES_PER_NOTE), 2, 1, i, d.pp(6))?,
        ];
        let m = cfg.mlp;
        Ok(Self {
            cfg: cfg.clone(),
            enc,
            fc11: linear_init(cfg.encoder_flat(), cfg.latent, i, vb.pp("fc11"))?,
            fc12: linear_init(cfg.encoder_flat(), cfg.latent, i, vb.pp("fc12"))?,
            fc3: Mlp::new(
                &[cfg.latent, m[0], m[1], m[2], m[3], cfg.flat()],
                i,
                vb.pp("fc3"),
            )?,
            dec,
            to_log: cfg
                .log_input
                .then(|| Tensor::from_vec(lin_to_log(), (N_BINS, LOG_BINS), vb.device()))
                .transpose()?,
        })
    }

    /// x: (N, 1, 513, 5) spectra -> (mu, logvar), each (N, latent)
    fn encode(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let n = x.dim(0)?;
        // one channel: (N, 1, 513, 5) is already channels-last (N, 513, 5, 1)
        let x = match &self.to_log {
            None => x.reshape((n, N_BINS, FRAMES_PER_NOTE, 1))?,
            Some(to_log) => front_end(x, to_log)?
                .transpose(1, 2)?
                .contiguous()?
                .reshape((n, LOG_BINS, FRAMES_PER_NOTE, 1))?,
        };
        let x = Act::new(x)?;
        let layers = conv::relu_between(self.enc.iter().map(|c| c as &dyn StackLayer));
        // flattened as PyTorch flattens (N, C, H, 1): channel-major
        let flat = conv::run(&x, &layers)?
            .relu()
            .to_nhwc()?
            .permute((0, 3, 1, 2))?
            .reshape((n, self.cfg.encoder_flat()))?;
        Ok((self.fc11.forward(&flat)?, self.fc12.forward(&flat)?))
    }

    /// z: (N, latent) -> decoder logits (N, 1, 513, 5); the spectrum is their sigmoid. The
    /// MLP and the transposed convs run as one op.
    fn decode_logits(&self, z: &Tensor) -> Result<Tensor> {
        let n = z.dim(0)?;
        // the MLP's output, (C, H) as PyTorch views it, seen channels-last
        let image = (ModelConfig::LAST_H, 1, self.cfg.channels[3]);
        let convs = self.dec.each_ref().map(|c| c as &dyn StackLayer);
        let y = conv::mlp_then_convs(&self.fc3, image, &convs, z)?;
        // (N, 513, 5, 1) -> (N, 1, 513, 5): one channel, the same order
        y.to_nhwc()?.reshape((n, 1, N_BINS, FRAMES_PER_NOTE))
    }
}

/// The latent means of many notes, in batches so memory stays bounded.
pub fn encode_all(model: &SpsMusic, notes: &[&[f32]]) -> Result<Vec<Vec<f32>>> {
    let mut out = Vec::with_capacity(notes.len());
    for chunk in notes.chunks(256) {
        let flat: Vec<f32> = chunk.iter().flat_map(|n| n.iter().copied()).collect();
        let mu = model.encode_features(&flat, chunk.len())?;
        out.extend(mu.to_vec2::<f32>()?);
    }
    Ok(out)
}

/// The argmax over dim 1 of a (N, K) tensor, as indices.
pub fn argmax_rows(t: &Tensor) -> Result<Vec<u32>> {
    t.argmax(D::Minus1)?.to_vec1::<u32>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::dsp::{N_FFT, SAMPLE_RATE};
    use candle_core::Device;

    /// A note's five frames with partials 1..=4 of `f0`, each split between its two nearest
    /// linear bins.
    fn note(f0: f32) -> Vec<f32> {
        let mut x = vec![0f32; N_BINS * FRAMES_PER_NOTE];
        for h in 1..=4 {
            let k = h as f32 * f0 * N_FFT as f32 / SAMPLE_RATE as f32;
            let (lo, frac) = (k.floor() as usize, k.fract());
            for t in 0..FRAMES_PER_NOTE {
                x[lo * FRAMES_PER_NOTE + t] += 1.0 - frac;
                x[(lo + 1) * FRAMES_PER_NOTE + t] += frac;
            }
        }
        x
    }

    /// With `log_input`, a note an octave up reaches the encoder's convolutions as the same
    /// picture moved by an octave's bins; and the encoder flattens the shorter axis.
    #[test]
    fn the_log_input_moves_a_note_by_the_same_bins_at_any_pitch() {
        assert_eq!((ModelConfig::LAST_H, ModelConfig::LOG_LAST_H), (16, 5));
        let to_log = Tensor::from_vec(lin_to_log(), (N_BINS, LOG_BINS), &Device::Cpu).unwrap();
        let centroid = |f0: f32| {
            let x = Tensor::from_vec(note(f0), (1, 1, N_BINS, FRAMES_PER_NOTE), &Device::Cpu);
            let frame = front_end(&x.unwrap(), &to_log)
                .unwrap()
                .get(0)
                .unwrap()
                .get(2);
            let v = frame.unwrap().to_vec1::<f32>().unwrap();
            let mass: f32 = v.iter().sum();
            v.iter().enumerate().map(|(i, m)| i as f32 * m).sum::<f32>() / mass
        };
        for f0 in [220.0, 311.1, 523.3] {
            let moved = centroid(2.0 * f0) - centroid(f0);
            assert!((moved - 24.0).abs() < 1.0, "{f0} Hz: {moved} bins");
        }
        let cfg = ModelConfig {
            channels: [4, 4, 8, 8],
            mlp: [4, 8, 8, 8],
            rnn_hidden: 4,
            log_input: true,
            ..ModelConfig::paper()
        };
        assert_eq!(cfg.encoder_flat(), 8 * 5);
        let (_vm, vb) = crate::nn::new_varmap();
        let model = SpsMusic::new(&cfg, vb).unwrap();
        let notes = [note(220.0), note(440.0)].concat();
        let mu = model.encode_features(&notes, 2).unwrap();
        assert_eq!(mu.dims(), [2, 3]);
        assert_eq!(
            model.decode_logits(&mu).unwrap().dims(),
            [2, 1, N_BINS, FRAMES_PER_NOTE]
        );
    }
}
