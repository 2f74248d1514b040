//! The SPS vision model of Liu et al. (NeurIPS 2023), with the official code's parameter
//! names: a conv encoder of a 32x32 RGB frame, a 3-D latent, an MLP + transposed-conv decoder
//! and a 1-layer tanh RNN prior over the whole latent.

use candle_core::{Device, Module, Result, Tensor};
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};

use super::data::{CHANNELS, FRAME_LEN, SIZE};
use crate::nn::patches::Act;
use crate::nn::{
    Conv2d, ConvTranspose2d, Mlp, Rnn, StackLayer, WeightInit, conv, linear, linear_init,
};

/// Model sizes. `paper` is the official configuration; smaller ones train faster on a CPU.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// encoder channels (the decoder mirrors them)
    pub channels: [usize; 3],
    /// hidden sizes of the decoder MLP fc3 before its last layer
    pub mlp: [usize; 3],
    pub rnn_hidden: usize,
    pub latent: usize,
    #[serde(default)]
    pub init: WeightInit,
    /// the encoder's design; absent in older checkpoints, which are all `Official`
    #[serde(default)]
    pub encoder: EncoderKind,
}

/// Which encoder turns a frame into the latent's (mu, logvar).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EncoderKind {
    /// The official conv stack (encoder.0/2/4) flattened into fc11 / fc12.
    #[default]
    Official,
    /// A deep spatial autoencoder's encoder (Finn et al. 2016): convs at half resolution,
    /// `keypoints` feature maps, a spatial softmax over each map, the expected (u, v) of each
    /// (where it found its feature) and its mean activation (how much of it there is), then
    /// one hidden layer (`keypoint.fc`, ReLU) to fc11 / fc12. Where things are in the image is then linear in the
    /// features, so the ball and its shadow, together enough for x, y and z, are one small
    /// step away from the latent.
    Keypoints {
        channels: usize,
        keypoints: usize,
        hidden: usize,
        /// divide each latent by its own learned divisor, exp(`keypoint.depth`(hidden)), as
        /// a perspective camera divides by depth: the inverse of a projection (image points
        /// back to the floor, the ball's image back to its height above that point) is a
        /// ratio of affine maps, which the ReLU layer alone can only approximate piecewise,
        /// curving the latent. Height's ratio has another denominator than the floor's
        #[serde(default)]
        projective: bool,
        /// the divisor is affine in the hidden layer, 1 + `keypoint.depth`(hidden) (kept
        /// above [`MIN_DIVISOR`]), rather than its exponential: a ratio of affine maps, as
        /// the inverse of a projection is
        #[serde(default)]
        affine_depth: bool,
    },
}

impl ModelConfig {
    pub fn paper() -> Self {
        Self {
            channels: [64, 128, 256],
            mlp: [16, 32, 64],
            rnn_hidden: 256,
            latent: 3,
            init: WeightInit::PyTorch,
            encoder: EncoderKind::Official,
        }
    }
    /// side of the encoder's last feature map (32 -> 16 -> 8 -> 4)
    pub const LAST: usize = 4;
    pub fn flat(&self) -> usize {
        self.channels[2] * Self::LAST * Self::LAST
    }
    /// width of the features fc11 and fc12 read
    fn encoded(&self) -> usize {
        match self.encoder {
            EncoderKind::Official => self.flat(),
            EncoderKind::Keypoints { hidden, .. } => hidden,
        }
    }
}

/// The keypoint encoder of [`EncoderKind::Keypoints`] up to its hidden layer.
pub struct KeypointEncoder {
    convs: [Conv2d; 3],
    hidden: candle_nn::Linear,
    /// each latent's perspective divisor (EncoderKind::Keypoints::projective) as its log,
    /// or less 1 (`affine_depth`); started at 0
    depth: Option<candle_nn::Linear>,
    affine_depth: bool,
    keypoints: usize,
}

/// The smallest divisor of the affine projective head: a ball at the horizon is far, not at
/// infinity.
pub const MIN_DIVISOR: f64 = 0.05;

/// The spatial soft-argmax: logits (N, K, side*side), row-major maps -> (N, K, 2), the
/// expected (u, v) of each map's softmax, in [-1, 1] from the left / top edge's pixel centre
/// to the right / bottom one's.
pub fn spatial_soft_argmax(maps: &Tensor, side: usize) -> Result<Tensor> {
    let coord = |i: usize| (2.0 * i as f32 + 1.0) / side as f32 - 1.0;
    let u: Vec<f32> = (0..side * side).map(|p| coord(p % side)).collect();
    let v: Vec<f32> = (0..side * side).map(|p| coord(p / side)).collect();
    let grid = Tensor::from_vec([u, v].concat(), (2, side * side), maps.device())?;
    let (n, k, hw) = maps.dims3()?;
    let attention = crate::nn::softmax_last(maps)?.reshape((n * k, hw))?;
    attention.matmul(&grid.t()?)?.reshape((n, k, 2))
}

impl KeypointEncoder {
    /// side of the keypoint maps
    pub const SIDE: usize = SIZE / 2;

    fn new(
        channels: usize,
        keypoints: usize,
        hidden: usize,
        (projective, affine_depth): (bool, bool),
        latent: usize,
        init: WeightInit,
        vb: VarBuilder,
    ) -> Result<Self> {
        let k = vb.pp("keypoint");
        let convs = [
            Conv2d::new(CHANNELS, channels, 4, 2, 1, init, k.pp(0))?,
            Conv2d::new(channels, channels, 3, 1, 1, init, k.pp(2))?,
            Conv2d::new(channels, keypoints, 3, 1, 1, init, k.pp(4))?,
        ];
        Ok(Self {
            convs,
            hidden: linear_init(3 * keypoints, hidden, init, k.pp("fc"))?,
            depth: projective
                .then(|| -> Result<_> {
                    let zero = candle_nn::Init::Const(0.0);
                    let d = k.pp("depth");
                    Ok(candle_nn::Linear::new(
                        d.get_with_hints((latent, hidden), "weight", zero)?,
                        Some(d.get_with_hints(latent, "bias", zero)?),
                    ))
                })
                .transpose()?,
            affine_depth,
            keypoints,
        })
    }

    /// x: (N, 3, 32, 32) -> per keypoint (expected u, expected v, mean activation), (N, 3K)
    pub fn keypoints(&self, x: &Tensor) -> Result<Tensor> {
        let n = x.dim(0)?;
        let [c0, c1, c2] = &self.convs;
        let side = Self::SIDE;
        let layers = conv::relu_between([c0 as &dyn StackLayer, c1, c2]);
        let maps = conv::run(&Act::from_nchw(x)?, &layers)?
            .to_nchw()?
            .contiguous()?
            .reshape((n, self.keypoints, side * side))?;
        let position = spatial_soft_argmax(&maps, side)?;
        let presence = maps.mean_keepdim(2)?;
        Tensor::cat(&[position, presence], 2)?.reshape((n, 3 * self.keypoints))
    }

    /// x -> the hidden layer's features, (N, hidden)
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.hidden.forward(&self.keypoints(x)?)?.relu()
    }
}

enum Encoder {
    Official([Conv2d; 3]),
    Keypoints(KeypointEncoder),
}

pub struct SpsVision {
    pub cfg: ModelConfig,
    enc: Encoder,
    fc11: candle_nn::Linear,
    fc12: candle_nn::Linear,
    pub rnn: Rnn,
    fc2: candle_nn::Linear,
    fc3: Mlp,
    dec: [ConvTranspose2d; 3],
}

impl SpsVision {
    pub fn new(cfg: &ModelConfig, vb: VarBuilder) -> Result<Self> {
        let c = cfg.channels;
        let i = cfg.init;
        let enc = match cfg.encoder {
            EncoderKind::Official => {
                let e = vb.pp("encoder");
                Encoder::Official([
                    Conv2d::new(CHANNELS, c[0], 4, 2, 1, i, e.pp(0))?,
                    Conv2d::new(c[0], c[1], 4, 2, 1, i, e.pp(2))?,
                    Conv2d::new(c[1], c[2], 4, 2, 1, i, e.pp(4))?,
                ])
            }
            EncoderKind::Keypoints {
                channels,
                keypoints,
                hidden,
                projective,
                affine_depth,
            } => Encoder::Keypoints(KeypointEncoder::new(
                channels,
                keypoints,
                hidden,
                (projective, affine_depth),
                cfg.latent,
                i,
                vb.clone(),
            )?),
        };
        let d = vb.pp("decoder");
        let dec = [
            ConvTranspose2d::new(c[2], c[1], 4, 2, 1, i, d.pp(0))?,
            ConvTranspose2d::new(c[1], c[0], 4, 2, 1, i, d.pp(2))?,
            ConvTranspose2d::new(c[0], CHANNELS, 4, 2, 1, i, d.pp(4))?,
        ];
        let m = cfg.mlp;
        Ok(Self {
            cfg: cfg.clone(),
            enc,
            fc11: linear_init(cfg.encoded(), cfg.latent, i, vb.pp("fc11"))?,
            fc12: linear_init(cfg.encoded(), cfg.latent, i, vb.pp("fc12"))?,
            rnn: Rnn::new(cfg.latent, cfg.rnn_hidden, vb.pp("rnn"))?,
            fc2: linear(cfg.rnn_hidden, cfg.latent, vb.pp("fc2"))?,
            fc3: Mlp::new(&[cfg.latent, m[0], m[1], m[2], cfg.flat()], i, vb.pp("fc3"))?,
            dec,
        })
    }

    /// x: (N, 3, 32, 32) frames -> (mu, logvar), each (N, latent)
    pub fn encode(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let n = x.dim(0)?;
        let features = match &self.enc {
            Encoder::Official(convs) => {
                let layers = conv::relu_between(convs.iter().map(|c| c as &dyn StackLayer));
                // flattened as PyTorch flattens (N, C, H, W)
                conv::run(&Act::from_nchw(x)?, &layers)?
                    .relu()
                    .to_nchw()?
                    .reshape((n, self.cfg.flat()))?
            }
            Encoder::Keypoints(k) => {
                let h = k.forward(x)?;
                if let Some(depth) = &k.depth {
                    let (n, d) = (self.fc11.forward(&h)?, depth.forward(&h)?);
                    let mu = if k.affine_depth {
                        (n / (d + 1.0)?.maximum(MIN_DIVISOR)?)?
                    } else {
                        (n * d.neg()?.exp()?)?
                    };
                    return Ok((mu, self.fc12.forward(&h)?));
                }
                h
            }
        };
        Ok((self.fc11.forward(&features)?, self.fc12.forward(&features)?))
    }

    /// The keypoint encoder, when the model has one (to show where its keypoints sit).
    pub fn keypoint_encoder(&self) -> Option<&KeypointEncoder> {
        match &self.enc {
            Encoder::Keypoints(k) => Some(k),
            Encoder::Official(_) => None,
        }
    }

    /// z: (N, latent) -> decoder logits (N, 3, 32, 32); the frame is their sigmoid
    pub fn decode_logits(&self, z: &Tensor) -> Result<Tensor> {
        let l = ModelConfig::LAST;
        // the MLP's output, (C, H, W) as PyTorch views it, seen channels-last
        let image = (l, l, self.cfg.channels[2]);
        let convs = self.dec.each_ref().map(|c| c as &dyn StackLayer);
        let y = conv::mlp_then_convs(&self.fc3, image, &convs, z)?;
        // channels-last: make it plain NCHW once, at the end
        y.to_nchw()?.contiguous()
    }

    crate::sps::prior_methods!(fc2, "the whole latent");

    /// Roll the prior forward: given latents z (B, given, latent), predict `total - given`
    /// more steps, each fed back in. Returns (B, total, latent): the given ones, then predictions.
    pub fn rollout(&self, z: &Tensor, total: usize) -> Result<Tensor> {
        let (b, given, _) = z.dims3()?;
        let mut h = self.rnn.zero_state(b, z.device())?;
        let mut seq: Vec<Tensor> = (0..given)
            .map(|t| z.narrow(1, t, 1)?.squeeze(1))
            .collect::<Result<_>>()?;
        let mut pred = None;
        for t in 0..total - 1 {
            let input = if t < given {
                seq[t].clone()
            } else {
                pred.clone().unwrap_or_else(|| seq[t].clone())
            };
            let (p, h2) = self.prior_step(&input, &h)?;
            h = h2;
            if t + 1 >= given {
                seq.push(p.clone());
            }
            pred = Some(p);
        }
        Tensor::stack(&seq, 1)
    }
}

/// Latent means of frames (each FRAME_LEN floats, CHW), in batches so memory stays bounded.
pub fn encode_frames(model: &SpsVision, frames: &[&[f32]]) -> Result<Vec<Vec<f32>>> {
    map_frames(frames, |x| Ok(model.encode(x)?.0))
}

/// One row of `f`'s output per frame (FRAME_LEN floats each, CHW), `f` given the frames as
/// (N, 3, 32, 32) in batches so memory stays bounded.
pub fn map_frames(
    frames: &[&[f32]],
    f: impl Fn(&Tensor) -> Result<Tensor>,
) -> Result<Vec<Vec<f32>>> {
    let mut out = Vec::with_capacity(frames.len());
    for chunk in frames.chunks(256) {
        let flat: Vec<f32> = chunk.iter().flat_map(|f| f.iter().copied()).collect();
        let x = Tensor::from_vec(flat, (chunk.len(), CHANNELS, SIZE, SIZE), &Device::Cpu)?;
        out.extend(f(&x)?.to_vec2::<f32>()?);
    }
    Ok(out)
}

/// Where each of the encoder's keypoints sits on a frame (FRAME_LEN floats, CHW): the
/// expected (column, row) of its soft-argmax in pixels, measured as
/// [`super::data::ball_centroid`] measures the ball (pixel i spans [i, i+1)). None for an
/// encoder without keypoints.
pub fn keypoints_of(model: &SpsVision, frame: &[f32]) -> Result<Option<Vec<(f32, f32)>>> {
    let Some(encoder) = model.keypoint_encoder() else {
        return Ok(None);
    };
    let x = Tensor::from_slice(frame, (1, CHANNELS, SIZE, SIZE), &Device::Cpu)?;
    let features = encoder.keypoints(&x)?.flatten_all()?.to_vec1::<f32>()?;
    // a map pixel j covers frame pixels [2j, 2j + 2): u = (2j + 1) / side - 1 is column
    // 2j + 1 = (u + 1) * SIZE / 2
    let px = |u: f32| (u + 1.0) * SIZE as f32 / 2.0;
    Ok(Some(
        features
            .chunks_exact(3)
            .map(|k| (px(k[0]), px(k[1])))
            .collect(),
    ))
}

/// Decode latents to frames (FRAME_LEN floats each, CHW in [0, 1]).
pub fn decode_latents(model: &SpsVision, latents: &[Vec<f32>]) -> Result<Vec<Vec<f32>>> {
    let mut out = Vec::with_capacity(latents.len());
    let l = model.cfg.latent;
    for chunk in latents.chunks(256) {
        let flat: Vec<f32> = chunk.iter().flat_map(|z| z.iter().copied()).collect();
        let z = Tensor::from_vec(flat, (chunk.len(), l), &Device::Cpu)?;
        let frames = model.decode(&z)?.reshape((chunk.len(), FRAME_LEN))?;
        out.extend(frames.to_vec2::<f32>()?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_soft_argmax_finds_a_sharp_peak_and_averages_two_equal_ones() {
        let side = 16;
        let mut logits = vec![0f32; 2 * side * side];
        // map 0: one peak at column 3, row 12; map 1: equal peaks at (0, 0) and (15, 15)
        logits[12 * side + 3] = 40.0;
        logits[side * side] = 40.0;
        logits[side * side + side * side - 1] = 40.0;
        let maps = Tensor::from_vec(logits, (1, 2, side * side), &Device::Cpu).unwrap();
        let uv = spatial_soft_argmax(&maps, side)
            .unwrap()
            .to_vec3::<f32>()
            .unwrap();
        let centre = |i: usize| (2.0 * i as f32 + 1.0) / side as f32 - 1.0;
        assert!((uv[0][0][0] - centre(3)).abs() < 1e-4, "{uv:?}");
        assert!((uv[0][0][1] - centre(12)).abs() < 1e-4, "{uv:?}");
        assert!(
            uv[0][1][0].abs() < 1e-4 && uv[0][1][1].abs() < 1e-4,
            "{uv:?}"
        );
    }

    #[test]
    fn the_keypoint_encoder_gives_a_latent_per_frame_and_its_weights_have_their_own_names() {
        let mut cfg = ModelConfig::paper();
        cfg.encoder = EncoderKind::Keypoints {
            channels: 4,
            keypoints: 3,
            hidden: 8,
            projective: false,
            affine_depth: false,
        };
        let (varmap, vb) = crate::nn::new_varmap();
        let model = SpsVision::new(&cfg, vb).unwrap();
        let x = Tensor::rand(0f32, 1.0, (2, CHANNELS, SIZE, SIZE), &Device::Cpu).unwrap();
        let (mu, logvar) = model.encode(&x).unwrap();
        assert_eq!(mu.dims(), &[2, 3]);
        assert_eq!(logvar.dims(), &[2, 3]);
        let names: Vec<String> = varmap.data().lock().unwrap().keys().cloned().collect();
        assert!(names.iter().any(|n| n == "keypoint.4.weight"), "{names:?}");
        assert!(names.iter().any(|n| n == "keypoint.fc.weight"), "{names:?}");
        assert!(
            !names.iter().any(|n| n.starts_with("encoder.")),
            "{names:?}"
        );
    }

    /// The projective head starts as the plain one (divisors exp(0) = 1, or 1 + 0 when affine)
    /// and divides each latent, offset included, by its own learned divisor.
    #[test]
    fn the_projective_head_divides_the_latent_by_a_learned_depth() {
        let mut cfg = ModelConfig::paper();
        let kind = |projective, affine_depth| EncoderKind::Keypoints {
            channels: 4,
            keypoints: 3,
            hidden: 8,
            projective,
            affine_depth,
        };
        let x = Tensor::rand(0f32, 1.0, (2, CHANNELS, SIZE, SIZE), &Device::Cpu).unwrap();
        let mu_of = |cfg: &ModelConfig, seed| {
            let (varmap, vb) = crate::nn::new_seeded_varmap(seed);
            let model = SpsVision::new(cfg, vb).unwrap();
            (
                model.encode(&x).unwrap().0.to_vec2::<f32>().unwrap(),
                varmap,
                model,
            )
        };
        cfg.encoder = kind(false, false);
        let (plain, _, _) = mu_of(&cfg, 3);
        let divisors = [2f32, 1.0, 4.0];
        // the bias that gives `divisors`, as each form reads it
        for affine in [false, true] {
            let bias_of = |d: f32| if affine { d - 1.0 } else { d.ln() };
            cfg.encoder = kind(true, affine);
            let (projective, varmap, model) = mu_of(&cfg, 3);
            assert_eq!(plain, projective);
            let depth_bias = varmap.data().lock().unwrap()["keypoint.depth.bias"].clone();
            depth_bias
                .set(&Tensor::new(&divisors.map(bias_of), &Device::Cpu).unwrap())
                .unwrap();
            let divided = model.encode(&x).unwrap().0.to_vec2::<f32>().unwrap();
            for (a, b) in plain.iter().zip(&divided) {
                for k in 0..3 {
                    assert!(
                        (a[k] / divisors[k] - b[k]).abs() < 1e-5,
                        "affine {affine}: {a:?} / {divisors:?} vs {b:?}"
                    );
                }
            }
        }
        // the affine divisor stays above MIN_DIVISOR however far its bias falls
        cfg.encoder = kind(true, true);
        let (_, varmap, model) = mu_of(&cfg, 3);
        let depth_bias = varmap.data().lock().unwrap()["keypoint.depth.bias"].clone();
        depth_bias
            .set(&Tensor::new(&[-5f32, -5.0, -5.0], &Device::Cpu).unwrap())
            .unwrap();
        let floored = model.encode(&x).unwrap().0.to_vec2::<f32>().unwrap();
        for (a, b) in plain.iter().zip(&floored) {
            for k in 0..3 {
                let expected = a[k] / MIN_DIVISOR as f32;
                assert!((expected - b[k]).abs() < 1e-4 * expected.abs().max(1.0));
            }
        }
    }
}
