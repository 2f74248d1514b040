//! The V3 autoencoder: a per-domain encoder that splits each fragment's code into a content
//! branch, quantised by a VQ codebook (EMA updates, k-means initialisation, dead-code restart),
//! and a continuous style branch; a decoder that rebuilds the fragment from both.
//!
//! The official code (wu et al., model/modules/*.py) uses convolutional ResNets; here both
//! halves are MLPs with the same heads (`linear_1` splitting into content and style, `linear_c`,
//! `linear_s`, GELU), which train in minutes on a CPU. The notes encoder first averages groups
//! of `pool` neighbouring frames.

use candle_core::{Device, Module, Result, Tensor, Var};
use candle_nn::{Linear, VarBuilder};

use super::codebook::stored_var;
use super::data::Domain;
use super::features::{band_view, unit_norm};
use crate::nn::{Conv2d, HeightConv, WeightInit, linear_init};

// One path for everything a caller of the model needs: its config, codebook and feature views.
pub use super::codebook::{CODEBOOK_PREFIX, Codebook, STATS_PREFIX, kmeans, kmeans_distinct};
pub use super::config::ModelConfig;
pub use super::features::{
    LOG_BINS, LOG_BINS_PER_OCTAVE, LOG_LOWEST_HZ, STYLE_BANDS, band_envelopes, band_filterbank,
    ink_colour, log_filterbank,
};

struct Encoder {
    /// fc1, fc2, linear_1 of the MLP trunk (all but convolutional digits)
    mlp: Option<[Linear; 3]>,
    linear_c: Linear,
    linear_s: Linear,
    /// the content trunk of `content_trunk` models: two hidden layers and its head
    content: Option<[Linear; 3]>,
    conv: Option<ConvTrunks>,
}

/// Taps of the first convolution along log frequency: two octaves, the span of a note's first
/// four partials.
const LOG_KERNEL: usize = 2 * LOG_BINS_PER_OCTAVE + 1;

/// The convolutional trunks of `conv` models.
struct ConvTrunks {
    /// notes: the (512, LOG_BINS) triangular filterbank onto the log-frequency axis
    logfreq: Option<Tensor>,
    /// notes: the (512, STYLE_BANDS) octave bands of the style trunk
    bands: Option<Tensor>,
    content_convs: Vec<ConvLayer>,
    content_fc: Linear,
    content_head: Linear,
    /// digits: convolutions of the coloured image, then the mean over the page
    style_convs: Vec<ConvLayer>,
    style_fc: Option<[Linear; 2]>,
}

enum ConvLayer {
    Image(Conv2d),
    Line(HeightConv),
}

impl ConvLayer {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            ConvLayer::Image(c) => c.forward(x)?.gelu(),
            ConvLayer::Line(c) => c.forward_1d(x)?.gelu(),
        }
    }
}

fn conv_trunks(cfg: &ModelConfig, e: VarBuilder) -> Result<ConvTrunks> {
    let he = WeightInit::He;
    let (c, h, dc, ds) = (cfg.conv, cfg.hidden, cfg.content_dim, cfg.style_dim);
    Ok(match cfg.domain {
        Domain::Digits => {
            let [_, fh, fw] = cfg.domain.fragment_shape();
            let conv = |i, o, name: &str| -> Result<ConvLayer> {
                Ok(ConvLayer::Image(Conv2d::new(
                    i,
                    o,
                    4,
                    2,
                    1,
                    he,
                    e.pp(name),
                )?))
            };
            let flat = 2 * c * (fh / 8) * (fw / 8);
            ConvTrunks {
                logfreq: None,
                bands: None,
                content_convs: vec![
                    conv(1, c, "content_conv1")?,
                    conv(c, 2 * c, "content_conv2")?,
                    conv(2 * c, 2 * c, "content_conv3")?,
                ],
                content_fc: linear_init(flat, h, he, e.pp("content_fc"))?,
                content_head: linear_init(h, dc, he, e.pp("content_linear_1"))?,
                // two convolutions, then the mean over the page: the colour and the texture
                // of the ink, hardly the shapes; or the ink's colour alone
                style_convs: if cfg.colour_style {
                    Vec::new()
                } else {
                    vec![conv(3, c, "style_conv1")?, conv(c, 2 * c, "style_conv2")?]
                },
                style_fc: Some([
                    linear_init(
                        if cfg.colour_style { 3 } else { 2 * c },
                        h,
                        he,
                        e.pp("style_fc"),
                    )?,
                    linear_init(h, ds, he, e.pp("style_linear_1"))?,
                ]),
            }
        }
        Domain::Notes => {
            let [_, bins, _] = cfg.domain.fragment_shape();
            let line = |i, o, k: usize, s, name: &str| -> Result<ConvLayer> {
                Ok(ConvLayer::Line(HeightConv::new(
                    i,
                    o,
                    (k, 1),
                    s,
                    k / 2,
                    he,
                    e.pp(name),
                )?))
            };
            ConvTrunks {
                logfreq: Some(Tensor::from_vec(
                    log_filterbank(bins),
                    (bins, LOG_BINS),
                    &Device::Cpu,
                )?),
                bands: Some(Tensor::from_vec(
                    band_filterbank(bins),
                    (bins, STYLE_BANDS),
                    &Device::Cpu,
                )?),
                content_convs: vec![
                    line(1, c, LOG_KERNEL, 1, "content_conv1")?,
                    line(c, c, 5, 2, "content_conv2")?,
                ],
                content_fc: linear_init(c * LOG_BINS / 2, h, he, e.pp("content_fc"))?,
                content_head: linear_init(h, dc, he, e.pp("content_linear_1"))?,
                style_convs: Vec::new(),
                style_fc: None,
            }
        }
    })
}

/// Two hidden layers and a head, named `{prefix}fc1`, `{prefix}fc2` and `{prefix}linear_1` as in
/// the official encoder.
fn mlp_trunk(
    input: usize,
    hidden: usize,
    out: usize,
    vb: &VarBuilder,
    prefix: &str,
) -> Result<[Linear; 3]> {
    let he = WeightInit::He;
    Ok([
        linear_init(input, hidden, he, vb.pp(format!("{prefix}fc1")))?,
        linear_init(hidden, hidden, he, vb.pp(format!("{prefix}fc2")))?,
        linear_init(hidden, out, he, vb.pp(format!("{prefix}linear_1")))?,
    ])
}

struct Decoder {
    linear_c: Linear,
    linear_s: Linear,
    linear_0: Linear,
    fc1: Linear,
    out: Linear,
    /// `factored_decoder`: the content path (hidden layer and output); linear_0, fc1 and out
    /// then read the style alone
    content: Option<[Linear; 2]>,
}

pub struct V3Model {
    pub cfg: ModelConfig,
    /// (height, cepstrum) cosine and sine matrices of the fixed cepstral transform
    cepstral: Option<(Tensor, Tensor)>,
    enc: Encoder,
    dec: Decoder,
    pub codebook: Codebook,
    /// `style_whiten`: the band view's mean (F) and whitening matrix (F, F)
    style_white: Option<[Var; 2]>,
}

impl V3Model {
    pub fn new(cfg: &ModelConfig, vb: VarBuilder) -> Result<Self> {
        let he = WeightInit::He;
        let (h, dc, ds) = (cfg.hidden, cfg.content_dim, cfg.style_dim);
        let e = vb.pp("encoder");
        let split = cfg.split_trunks();
        let mlp_out = if split || cfg.conv > 0 { ds } else { dc + ds };
        let enc = Encoder {
            mlp: if cfg.has_mlp_trunk() {
                Some(mlp_trunk(cfg.input_len(), h, mlp_out, &e, "")?)
            } else {
                None
            },
            conv: if cfg.conv > 0 {
                Some(conv_trunks(cfg, e.clone())?)
            } else {
                None
            },
            linear_c: linear_init(dc, dc, he, e.pp("linear_c"))?,
            linear_s: linear_init(ds, ds, he, e.pp("linear_s"))?,
            content: if split {
                Some(mlp_trunk(cfg.content_view_len(), h, dc, &e, "content_")?)
            } else {
                None
            },
        };
        let d = vb.pp("decoder");
        let dec = Decoder {
            linear_c: linear_init(dc, dc, he, d.pp("linear_c"))?,
            linear_s: linear_init(ds, ds, he, d.pp("linear_s"))?,
            linear_0: linear_init(
                if cfg.factored_decoder { ds } else { dc + ds },
                h,
                he,
                d.pp("linear_0"),
            )?,
            fc1: linear_init(h, h, he, d.pp("fc1"))?,
            out: linear_init(h, cfg.output_len(), WeightInit::PyTorch, d.pp("out"))?,
            content: if cfg.factored_decoder {
                Some([
                    linear_init(dc, h, he, d.pp("content_fc"))?,
                    linear_init(
                        h,
                        cfg.content_output_len(),
                        WeightInit::PyTorch,
                        d.pp("content_out"),
                    )?,
                ])
            } else {
                None
            },
        };
        let codebook = Codebook::new(cfg.atoms, dc, cfg.vq_decay, cfg.dead_code_threshold, &vb)?;
        let cepstral = if cfg.cepstrum > 0 {
            let [c, h, _] = cfg.domain.fragment_shape();
            let rows = c * h;
            let q = cfg.cepstrum;
            let mut cos = vec![0f32; rows * q];
            let mut sin = vec![0f32; rows * q];
            let scale = 1.0 / (rows as f32).sqrt();
            for b in 0..rows {
                for k in 0..q {
                    let quefrency = cfg.cepstrum_start + cfg.cepstrum_step * k as f32;
                    let phase = std::f32::consts::TAU * b as f32 * quefrency / rows as f32;
                    cos[b * q + k] = phase.cos() * scale;
                    sin[b * q + k] = phase.sin() * scale;
                }
            }
            Some((
                Tensor::from_vec(cos, (rows, q), &Device::Cpu)?,
                Tensor::from_vec(sin, (rows, q), &Device::Cpu)?,
            ))
        } else {
            None
        };
        Ok(Self {
            cfg: cfg.clone(),
            cepstral,
            enc,
            dec,
            codebook,
            style_white: if cfg.style_whiten && cfg.conv > 0 && cfg.domain == Domain::Notes {
                let (f, k) = (cfg.style_band_len(), cfg.style_view_len());
                // the identity's first k columns until training fits it
                let eye: Vec<f32> = (0..f * k)
                    .map(|i| if i / k == i % k { 1.0 } else { 0.0 })
                    .collect();
                let white = stored_var(
                    &vb,
                    &[f, k],
                    &format!("{STATS_PREFIX}style_white_matrix"),
                    candle_nn::Init::Const(0.0),
                )?;
                white.set(&Tensor::from_vec(eye, (f, k), &Device::Cpu)?)?;
                Some([
                    stored_var(
                        &vb,
                        &[f],
                        &format!("{STATS_PREFIX}style_white_mean"),
                        candle_nn::Init::Const(0.0),
                    )?,
                    white,
                ])
            } else {
                None
            },
        })
    }

    /// The octave-band view of the notes' style trunk before any whitening, (N, F); None for
    /// a model without one.
    pub fn style_band_view(&self, x: &Tensor) -> Result<Option<Tensor>> {
        match self.enc.conv.as_ref().and_then(|c| c.bands.as_ref()) {
            Some(bands) => Ok(Some(band_view(x, bands, self.cfg.domain.fragment_shape())?)),
            None => Ok(None),
        }
    }

    /// Set the whitening of the style's band view (`style_whiten`): mean (F), matrix (F x K,
    /// row-major, K = `style_view_len`), applied as (view - mean) matrix.
    pub fn set_style_whitening(&self, mean: Vec<f32>, matrix: Vec<f32>) -> Result<()> {
        let Some([m, w]) = &self.style_white else {
            return Err(candle_core::Error::Msg(
                "this model has no style whitening".into(),
            ));
        };
        let (f, k) = (mean.len(), self.cfg.style_view_len());
        m.set(&Tensor::from_vec(mean, f, &Device::Cpu)?)?;
        w.set(&Tensor::from_vec(matrix, (f, k), &Device::Cpu)?)
    }

    /// fragments (N, fragment_len) -> (content (N, dc) before quantisation, style (N, ds))
    pub fn encode(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let n = x.dim(0)?;
        let pool = self.cfg.pool.max(1);
        let len = self.cfg.domain.fragment_len();
        // digits: ink space, white paper at 0, so that the trunks start where the strokes are
        // rather than on the page's large constant (their first units otherwise die at once)
        let x = if self.cfg.domain == Domain::Digits {
            x.neg()?.affine(1.0, 1.0)?
        } else {
            x.clone()
        };
        if let Some(conv) = &self.enc.conv {
            let hc = self.conv_content(conv, &x)?;
            let hs = self.conv_style(conv, &x)?;
            return Ok((
                self.enc.linear_c.forward(&hc)?,
                self.enc.linear_s.forward(&hs)?,
            ));
        }
        let x = if pool > 1 {
            x.reshape((n, len / pool, pool))?.mean(2)?
        } else {
            x
        };
        let cepstrum = match &self.cepstral {
            Some((cos, sin)) => {
                let [_, _, w] = self.cfg.domain.fragment_shape();
                let frames = w / pool;
                // (N, rows, frames) -> (N, frames, rows) x (rows, q)
                let spectra = x
                    .reshape((n, len / w, frames))?
                    .transpose(1, 2)?
                    .contiguous()?
                    .reshape((n * frames, len / w))?;
                let re = spectra.matmul(cos)?;
                let im = spectra.matmul(sin)?;
                let cepstrum = ((re.sqr()? + im.sqr()?)? + 1e-8)?
                    .sqrt()?
                    .reshape((n, frames * self.cfg.cepstrum))?;
                Some(cepstrum)
            }
            None => None,
        };
        if let Some([fc1, fc2, head]) = &self.enc.content {
            let view = match (&cepstrum, self.cfg.domain) {
                (Some(c), _) => c.clone(),
                (None, _) => {
                    // ink: how far each pixel is from white paper, colour averaged out
                    let [c, h, w] = self.cfg.domain.fragment_shape();
                    x.reshape((n, c, h * w))?.mean(1)?
                }
            };
            let view = unit_norm(&view)?;
            let hc = fc1.forward(&view)?.gelu()?;
            let hc = fc2.forward(&hc)?.gelu()?;
            let hc = head.forward(&hc)?.gelu()?;
            let h = self.mlp_trunk(&x)?;
            return Ok((
                self.enc.linear_c.forward(&hc)?,
                self.enc.linear_s.forward(&h)?,
            ));
        }
        let x = match cepstrum {
            Some(c) => Tensor::cat(&[&x, &c], 1)?,
            None => x,
        };
        let h = self.mlp_trunk(&x)?;
        let dc = self.cfg.content_dim;
        let content = self.enc.linear_c.forward(&h.narrow(1, 0, dc)?)?;
        let style = self
            .enc
            .linear_s
            .forward(&h.narrow(1, dc, self.cfg.style_dim)?)?;
        Ok((content, style))
    }

    /// The MLP trunk on the (pooled) fragment, before the heads.
    fn mlp_trunk(&self, x: &Tensor) -> Result<Tensor> {
        let [fc1, fc2, linear_1] = self
            .enc
            .mlp
            .as_ref()
            .ok_or_else(|| candle_core::Error::Msg("this encoder has no MLP trunk".into()))?;
        let h = fc1.forward(x)?.gelu()?;
        let h = fc2.forward(&h)?.gelu()?;
        linear_1.forward(&h)?.gelu()
    }

    /// The convolutional content trunk on fragments (N, fragment_len), digits in ink space:
    /// its output before `linear_c`.
    fn conv_content(&self, conv: &ConvTrunks, x: &Tensor) -> Result<Tensor> {
        let n = x.dim(0)?;
        let [c, h, w] = self.cfg.domain.fragment_shape();
        let mut hc = match &conv.logfreq {
            // notes: the spectrum averaged over the note's frames, on the log-frequency axis
            Some(bank) => {
                let spectrum = x.reshape((n, c * h, w))?.mean(2)?.matmul(bank)?;
                unit_norm(&spectrum)?.unsqueeze(1)?
            }
            // digits: the ink map, colour averaged out
            None => {
                let ink = x.reshape((n, c, h * w))?.mean(1)?;
                unit_norm(&ink)?.reshape((n, 1, h, w))?
            }
        };
        for layer in &conv.content_convs {
            hc = layer.forward(&hc)?;
        }
        let hc = hc.contiguous()?.flatten_from(1)?;
        let hc = conv.content_fc.forward(&hc)?.gelu()?;
        conv.content_head.forward(&hc)?.gelu()
    }

    /// The style trunk of a `conv` model on fragments (N, fragment_len), digits in ink space:
    /// its output before `linear_s`.
    fn conv_style(&self, conv: &ConvTrunks, x: &Tensor) -> Result<Tensor> {
        let n = x.dim(0)?;
        let [c, h, w] = self.cfg.domain.fragment_shape();
        match (&conv.bands, &conv.style_fc) {
            // notes: octave-band energies frame by frame, through the MLP trunk
            (Some(bands), _) => {
                let view = band_view(x, bands, [c, h, w])?;
                let view = match &self.style_white {
                    Some([mean, white]) => view
                        .broadcast_sub(mean.as_tensor())?
                        .matmul(white.as_tensor())?,
                    None => view,
                };
                self.mlp_trunk(&view)
            }
            // digits: the ink's colour
            (None, Some([fc, head])) if self.cfg.colour_style => head
                .forward(&fc.forward(&ink_colour(x, c, h * w)?)?.gelu()?)?
                .gelu(),
            // digits: convolutions of the coloured page, then their mean over the page
            (None, Some([fc, head])) => {
                let mut hs = x.reshape((n, c, h, w))?;
                for layer in &conv.style_convs {
                    hs = layer.forward(&hs)?;
                }
                let hs = hs.mean(3)?.mean(2)?;
                head.forward(&fc.forward(&hs)?.gelu()?)?.gelu()
            }
            (None, None) => Err(candle_core::Error::Msg("no style trunk".into())),
        }
    }

    /// (content (N, dc), style (N, ds)) -> fragments (N, fragment_len)
    pub fn decode(&self, content: &Tensor, style: &Tensor) -> Result<Tensor> {
        let c = self.dec.linear_c.forward(content)?.gelu()?;
        let s = self.dec.linear_s.forward(style)?.gelu()?;
        if let Some([fc, out]) = &self.dec.content {
            return self.decode_factored(&c, &s, fc, out);
        }
        let h = self
            .dec
            .linear_0
            .forward(&Tensor::cat(&[&c, &s], 1)?)?
            .gelu()?;
        let h = self.dec.fc1.forward(&h)?.gelu()?;
        let out = self.dec.out.forward(&h)?;
        if self.cfg.rank == 0 {
            return Ok(out);
        }
        let n = out.dim(0)?;
        let [c, hh, w] = self.cfg.domain.fragment_shape();
        let out = out.reshape((n, self.cfg.rank, c * hh + w))?;
        let columns = out.narrow(2, 0, c * hh)?;
        let rows = out.narrow(2, c * hh, w)?;
        columns
            .transpose(1, 2)?
            .contiguous()?
            .matmul(&rows.contiguous()?)?
            .reshape((n, c * hh * w))
    }

    /// The factored decoder (`factored_decoder`) from the activated content and style heads.
    fn decode_factored(&self, c: &Tensor, s: &Tensor, fc: &Linear, out: &Linear) -> Result<Tensor> {
        let n = c.dim(0)?;
        let [ch, hh, w] = self.cfg.domain.fragment_shape();
        let pattern = out.forward(&fc.forward(c)?.gelu()?)?;
        let hs = self.dec.linear_0.forward(s)?.gelu()?;
        let hs = self.dec.fc1.forward(&hs)?.gelu()?;
        let style = self.dec.out.forward(&hs)?;
        match self.cfg.domain {
            Domain::Notes => {
                // log spectrum: the pitch's pattern plus the style's envelope, floored near 0
                // (silence) by a leaky rectifier
                let envelope = if self.cfg.rank > 0 {
                    let st = style.reshape((n, self.cfg.rank, ch * hh + w))?;
                    st.narrow(2, 0, ch * hh)?
                        .transpose(1, 2)?
                        .contiguous()?
                        .matmul(&st.narrow(2, ch * hh, w)?.contiguous()?)?
                } else {
                    style.reshape((n, ch * hh, w))?
                };
                let x = envelope.broadcast_add(&pattern.unsqueeze(2)?)?;
                (x.relu()? + (x * 0.01)?)?.reshape((n, ch * hh * w))
            }
            Domain::Digits => {
                // white paper, less the ink map in the style's colour
                let ink = candle_nn::ops::sigmoid(&pattern)?.unsqueeze(1)?;
                let colour = candle_nn::ops::sigmoid(&style)?.unsqueeze(2)?;
                let absorbed = ink.broadcast_mul(&colour.neg()?.affine(1.0, 1.0)?)?;
                absorbed.neg()?.affine(1.0, 1.0)?.reshape((n, ch * hh * w))
            }
        }
    }

    /// Decode rows given as plain vectors (content atoms or latents, and style latents).
    pub fn decode_rows(&self, content: &[Vec<f32>], style: &[Vec<f32>]) -> Result<Vec<Vec<f32>>> {
        let n = content.len().min(style.len());
        let c = Tensor::from_vec(
            content[..n].concat(),
            (n, self.cfg.content_dim),
            &Device::Cpu,
        )?;
        let s = Tensor::from_vec(style[..n].concat(), (n, self.cfg.style_dim), &Device::Cpu)?;
        self.decode(&c, &s)?.to_vec2::<f32>()
    }

    /// Encode many fragments in batches: content latents, their atoms, style latents.
    pub fn encode_all(&self, fragments: &[&[f32]]) -> Result<Encoded> {
        let mut out = Encoded::default();
        let len = self.cfg.domain.fragment_len();
        for chunk in fragments.chunks(256) {
            let flat: Vec<f32> = chunk.iter().flat_map(|f| f.iter().copied()).collect();
            let x = Tensor::from_vec(flat, (chunk.len(), len), &Device::Cpu)?;
            let (c, s) = self.encode(&x)?;
            let (idx, _) = self.codebook.quantize(&c)?;
            out.content.extend(c.to_vec2::<f32>()?);
            out.style.extend(s.to_vec2::<f32>()?);
            out.codes.extend(idx.iter().map(|&i| i as usize));
        }
        Ok(out)
    }
}

/// What the encoder makes of a set of fragments.
#[derive(Clone, Debug, Default)]
pub struct Encoded {
    pub content: Vec<Vec<f32>>,
    pub codes: Vec<usize>,
    pub style: Vec<Vec<f32>>,
}

/// Mean pairwise Euclidean distance between the rows of each sample: x (B, n, d) -> (B).
pub fn mean_pairwise_distance(x: &Tensor) -> Result<Tensor> {
    let (_, n, _) = x.dims3()?;
    let diff = x.unsqueeze(2)?.broadcast_sub(&x.unsqueeze(1)?)?;
    // the epsilon keeps the gradient of the distance finite on the diagonal (where it is 0)
    let dist = (diff.sqr()?.sum(3)? + 1e-12)?.sqrt()?;
    dist.sum(2)?.sum(1)? / (n * (n - 1).max(1)) as f64
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The factored digits decoder draws one ink map per atom whatever the style; the content
    /// trunk reads that map with the colour normalised away, so restyling a decoded atom cannot
    /// change what it encodes to.
    #[test]
    fn a_factored_digit_keeps_its_content_in_every_colour() {
        // the digits `fast` preset, smaller
        let cfg = ModelConfig {
            hidden: 32,
            content_dim: 8,
            style_dim: 8,
            conv: 4,
            ..crate::v3::train::TrainConfig::preset(Domain::Digits, "fast")
                .unwrap()
                .model
        };
        let (_varmap, vb) = crate::nn::new_varmap();
        let model = V3Model::new(&cfg, vb).unwrap();
        let content: Vec<Vec<f32>> = (0..4)
            .map(|i| (0..8).map(|d| ((i * 8 + d) as f32 * 0.7).sin()).collect())
            .collect();
        let style = |phase: f32| -> Vec<Vec<f32>> {
            vec![(0..8).map(|d| (d as f32 + phase).cos() * 2.0).collect(); 4]
        };
        let a = model.decode_rows(&content, &style(0.0)).unwrap();
        let b = model.decode_rows(&content, &style(1.3)).unwrap();
        assert_ne!(a, b, "the style changes the colour");
        fn rows(v: &[Vec<f32>]) -> Vec<&[f32]> {
            v.iter().map(|r| r.as_slice()).collect()
        }
        let (ea, eb) = (
            model.encode_all(&rows(&a)).unwrap(),
            model.encode_all(&rows(&b)).unwrap(),
        );
        for (x, y) in ea.content.iter().zip(&eb.content) {
            let gap = x
                .iter()
                .zip(y)
                .map(|(p, q)| (p - q).abs())
                .fold(0f32, f32::max);
            assert!(gap < 1e-3, "content moved by {gap} with the colour");
        }
    }
}
