//! The invariant-equivariant VAE (Feige, ICML 2019) in candle. Four networks:
//! - `classifier`: q(y|x), logits over the classes;
//! - `invariant`: the class's deep invariant representation r_y = f(one-hot y), an MLP;
//! - `encoder`: q(z|x) = N(mu, exp(logvar)), the equivariant latent, from the image alone;
//! - `decoder`: p(x | r_y, z), Bernoulli logits per pixel.
//!
//! The routing is what keeps class out of z: the decoder always receives the class through
//! r_y (the true class for labelled data, every class weighted by q(y|x) otherwise), and r_y
//! is a function of the class alone, so every bit about the class that z carried would be
//! paid for in KL without improving the reconstruction. z is left with what varies within a
//! class: slant, width, stroke, position.

use candle_core::{D, DType, Device, Module, Result, Tensor};
use candle_nn::{Linear, VarBuilder};
use serde::{Deserialize, Serialize};

use crate::nn::{Mlp, WeightInit, linear_init};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ModelConfig {
    /// pixels of an input image (28x28)
    pub input: usize,
    pub classes: usize,
    /// size of the equivariant latent z
    pub equivariant: usize,
    /// size of the invariant representation r_y
    pub invariant: usize,
    /// hidden sizes of the invariant MLP (one-hot -> ... -> r_y)
    pub invariant_hidden: Vec<usize>,
    /// hidden sizes of the encoder and (mirrored) of the decoder
    pub hidden: Vec<usize>,
    /// hidden sizes of the classifier q(y|x)
    pub classifier_hidden: Vec<usize>,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            input: crate::digits::PIXELS,
            classes: 10,
            equivariant: 8,
            invariant: 16,
            invariant_hidden: vec![64],
            hidden: vec![512, 256],
            classifier_hidden: vec![512, 256],
        }
    }
}

impl ModelConfig {
    /// Refuse sizes no model could have (a hand-edited or hostile checkpoint).
    pub fn check(&self) -> std::result::Result<(), String> {
        let all = [self.input, self.classes, self.equivariant, self.invariant];
        let hidden = self
            .hidden
            .iter()
            .chain(&self.invariant_hidden)
            .chain(&self.classifier_hidden);
        if all.iter().chain(hidden).any(|&s| s == 0 || s > 1 << 14)
            || self.hidden.is_empty()
            || self.hidden.len() + self.invariant_hidden.len() + self.classifier_hidden.len() > 24
            || self.classes < 2
        {
            return Err(format!("implausible model sizes {self:?}"));
        }
        Ok(())
    }
}

pub struct IeVae {
    pub cfg: ModelConfig,
    classifier: Mlp,
    invariant: Mlp,
    encoder: Mlp,
    mu: Linear,
    logvar: Linear,
    decoder: Mlp,
}

fn sizes(first: usize, hidden: &[usize], last: usize) -> Vec<usize> {
    let mut s = vec![first];
    s.extend(hidden);
    s.push(last);
    s
}

impl IeVae {
    pub fn new(cfg: &ModelConfig, vb: VarBuilder) -> Result<Self> {
        let init = WeightInit::He;
        let enc_out = *cfg.hidden.last().unwrap_or(&cfg.input);
        let mut dec_hidden = cfg.hidden.clone();
        dec_hidden.reverse();
        Ok(Self {
            cfg: cfg.clone(),
            classifier: Mlp::new(
                &sizes(cfg.input, &cfg.classifier_hidden, cfg.classes),
                init,
                vb.pp("classifier"),
            )?,
            invariant: Mlp::new(
                &sizes(cfg.classes, &cfg.invariant_hidden, cfg.invariant),
                init,
                vb.pp("invariant"),
            )?,
            // the trunk ends in a ReLU: an MLP over (input, hidden...) and the heads after it
            encoder: Mlp::new(
                &sizes(cfg.input, &cfg.hidden[..cfg.hidden.len() - 1], enc_out),
                init,
                vb.pp("encoder"),
            )?,
            mu: linear_init(enc_out, cfg.equivariant, WeightInit::PyTorch, vb.pp("mu"))?,
            logvar: linear_init(
                enc_out,
                cfg.equivariant,
                WeightInit::PyTorch,
                vb.pp("logvar"),
            )?,
            decoder: Mlp::new(
                &sizes(cfg.invariant + cfg.equivariant, &dec_hidden, cfg.input),
                init,
                vb.pp("decoder"),
            )?,
        })
    }

    /// Class logits of q(y|x): (N, input) -> (N, classes).
    pub fn classify(&self, x: &Tensor) -> Result<Tensor> {
        self.classifier.forward(x)
    }

    /// The invariant representation of classes given as probabilities or one-hot rows:
    /// (N, classes) -> (N, invariant). Its last layer is linear, so for a mixture of classes
    /// this is not the mixture of representations: callers marginalise over classes instead.
    pub fn invariant_of(&self, class_rows: &Tensor) -> Result<Tensor> {
        self.invariant.forward(class_rows)
    }

    /// r_y of every class: (classes, invariant).
    pub fn invariant_table(&self) -> Result<Tensor> {
        let eye = Tensor::eye(self.cfg.classes, DType::F32, &Device::Cpu)?;
        self.invariant_of(&eye)
    }

    /// q(z|x): (mu, logvar), each (N, equivariant).
    pub fn encode(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let h = self.encoder.forward(x)?.relu()?;
        let logvar = self.logvar.forward(&h)?.clamp(-12f32, 8f32)?;
        Ok((self.mu.forward(&h)?, logvar))
    }

    /// Bernoulli logits of p(x | r, z): r (N, invariant), z (N, equivariant) -> (N, input).
    pub fn decode_logits(&self, r: &Tensor, z: &Tensor) -> Result<Tensor> {
        self.decoder.forward(&Tensor::cat(&[r, z], D::Minus1)?)
    }

    /// Mean images of classes `y` (indices) with equivariant codes `z`: (N, input) in [0, 1].
    pub fn decode_classes(&self, y: &[u32], z: &Tensor) -> Result<Tensor> {
        let table = self.invariant_table()?;
        let idx = Tensor::from_slice(y, y.len(), &Device::Cpu)?;
        let r = table.index_select(&idx, 0)?;
        candle_nn::ops::sigmoid(&self.decode_logits(&r, z)?)
    }
}
