//! The beta-VAE of the relevance lab: an MLP encoder to the mean and log-variance of a
//! diagonal Gaussian posterior, an MLP decoder back to the (standardised) features.

use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};

use crate::nn::{Mlp, WeightInit};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// features per event
    pub input: usize,
    pub latent: usize,
    /// width of the two hidden layers of encoder and decoder
    pub hidden: usize,
    #[serde(default)]
    pub init: WeightInit,
}

pub struct RelevanceVae {
    pub cfg: ModelConfig,
    encoder: Mlp,
    decoder: Mlp,
}

impl RelevanceVae {
    pub fn new(cfg: &ModelConfig, vb: VarBuilder) -> Result<Self> {
        let (h, l) = (cfg.hidden, cfg.latent);
        Ok(Self {
            cfg: cfg.clone(),
            encoder: Mlp::new(&[cfg.input, h, h, 2 * l], cfg.init, vb.pp("encoder"))?,
            decoder: Mlp::new(&[l, h, h, cfg.input], cfg.init, vb.pp("decoder"))?,
        })
    }

    /// x: (N, input) standardised features -> (mu, logvar), each (N, latent)
    pub fn encode(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let h = self.encoder.forward(x)?;
        let l = self.cfg.latent;
        Ok((h.narrow(1, 0, l)?, h.narrow(1, l, l)?))
    }

    /// z: (N, latent) -> (N, input) standardised features
    pub fn decode(&self, z: &Tensor) -> Result<Tensor> {
        self.decoder.forward(z)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn shapes_and_names() -> anyhow::Result<()> {
        let (varmap, vb) = crate::nn::new_varmap();
        let cfg = ModelConfig {
            input: 8,
            latent: 5,
            hidden: 16,
            init: WeightInit::PyTorch,
        };
        let vae = RelevanceVae::new(&cfg, vb)?;
        let x = Tensor::zeros((3, 8), candle_core::DType::F32, &Device::Cpu)?;
        let (mu, logvar) = vae.encode(&x)?;
        assert_eq!((mu.dims(), logvar.dims()), (&[3, 5][..], &[3, 5][..]));
        assert_eq!(vae.decode(&mu)?.dims(), &[3, 8]);
        let names: Vec<String> = crate::nn::varmap_tensors(&varmap)?
            .into_iter()
            .map(|t| t.0)
            .collect();
        assert!(
            names.contains(&"encoder.4.weight".to_string())
                && names.contains(&"decoder.0.bias".to_string())
        );
        assert_eq!(names.len(), 12);
        Ok(())
    }
}
