//! The V3 model's sizes, codebook settings and per-domain trunk choices, stored in checkpoints.

use serde::{Deserialize, Serialize};

use super::data::Domain;
use super::features::STYLE_BANDS;

/// Model sizes and codebook settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    pub domain: Domain,
    /// width of the hidden layers of encoder and decoder
    pub hidden: usize,
    pub content_dim: usize,
    pub style_dim: usize,
    /// codebook size (atoms)
    pub atoms: usize,
    /// the encoder averages this many neighbouring columns (frames) first
    pub pool: usize,
    /// EMA decay of the codebook's statistics
    pub vq_decay: f64,
    /// an atom whose EMA usage (fragments per batch) falls below this is restarted
    pub dead_code_threshold: f64,
    /// when > 0, the decoder draws a fragment as a sum of this many outer products of a
    /// column profile (channels x height) and a row profile (width): a note as spectra times
    /// envelopes, at a fraction of the cost of every pixel from the last layer
    #[serde(default)]
    pub rank: usize,
    /// when > 0 (notes), the encoder also sees this many cepstral coefficients per pooled
    /// frame: the magnitude of the Fourier transform of the log spectrum along frequency, whose
    /// peak sits at the quefrency of the harmonic spacing, i.e. the pitch, whatever the
    /// instrument's spectral envelope (a fixed transform, not trained)
    #[serde(default)]
    pub cepstrum: usize,
    /// first quefrency of the cepstral features (cycles over the 512 bins) and the step between
    /// them; fractional steps resolve neighbouring semitones (C4 sits at 30.6, B4 at 16.2)
    #[serde(default = "default_cepstrum_start")]
    pub cepstrum_start: f32,
    #[serde(default = "default_cepstrum_step")]
    pub cepstrum_step: f32,
    /// the content branch has a trunk of its own that reads a view of the fragment in which
    /// the style's simplest cue is normalised away: the unit-norm cepstrum for notes (with
    /// `cepstrum`), the unit-norm ink map (darkness, colour averaged out) for digits; the style
    /// trunk reads the fragment itself. Content then has one description for every style,
    /// rather than a mapping per style, which the V3 constraints alone would allow
    #[serde(default)]
    pub content_trunk: bool,
    /// when > 0, convolutional trunks with this many channels in their first layer (the
    /// official encoders are convolutional): digits read the ink map (content) and the coloured
    /// image (style, averaged over the page after the convolutions); notes read the spectrum on
    /// a log-frequency axis, where a change of pitch is a shift, through convolutions along
    /// frequency (content), the style trunk being the MLP
    #[serde(default)]
    pub conv: usize,
    /// the decoder keeps content and style apart, as the data are made: a note's log spectrum
    /// is the content's spectral pattern (the pitch's partials, the same all along the note)
    /// plus the style's time-frequency envelope (an instrument's formants and how it sounds
    /// over time); a digit is the content's ink map in the style's colour. The decoder then
    /// cannot draw one atom as different symbols in different styles
    #[serde(default)]
    pub factored_decoder: bool,
    /// digits with `conv`: the style trunk reads the ink's colour alone, a fixed view of the
    /// fragment ([`ink_colour`]), rather than convolutions of the page, whose mean also follows
    /// how much ink a writer puts down (stroke width, size), which the V3 style constraints
    /// would otherwise keep as part of every row's style
    #[serde(default)]
    pub colour_style: bool,
    /// notes with `conv`: the octave-band view of the style trunk is whitened by the
    /// within-sample covariance of the training fragments (`stats.style_white_*`, fixed when
    /// training starts): directions in which the fragments of one sample differ (what changes
    /// from note to note) shrink, directions in which whole samples differ grow. It uses what
    /// the V3 loss uses, which fragments share a sample, and no labels (models/README.md)
    #[serde(default)]
    pub style_whiten: bool,
    /// with `style_whiten`: keep only this many directions of the whitened view, those in
    /// which whole samples differ most (a discriminant analysis with the samples as classes,
    /// no labels); 0 keeps them all
    #[serde(default)]
    pub style_discriminant: usize,
}

fn default_cepstrum_start() -> f32 {
    4.0
}

fn default_cepstrum_step() -> f32 {
    1.0
}

impl ModelConfig {
    /// outputs of the decoder's last layer
    pub fn output_len(&self) -> usize {
        let [c, h, w] = self.domain.fragment_shape();
        if self.factored_decoder && self.domain == Domain::Digits {
            c
        } else if self.rank > 0 {
            self.rank * (c * h + w)
        } else {
            c * h * w
        }
    }

    /// Length of the notes' style band view (frames x octave bands).
    pub fn style_band_len(&self) -> usize {
        let [_, _, w] = self.domain.fragment_shape();
        STYLE_BANDS * w
    }

    /// Length of the band view as the style trunk reads it (after `style_whiten`).
    pub fn style_view_len(&self) -> usize {
        let f = self.style_band_len();
        if self.style_whiten && self.style_discriminant > 0 {
            self.style_discriminant.min(f)
        } else {
            f
        }
    }

    pub fn input_len(&self) -> usize {
        if self.conv > 0 && self.domain == Domain::Notes {
            return self.style_view_len();
        }
        let spectrum = self.domain.fragment_len() / self.pool.max(1);
        if self.content_trunk {
            spectrum
        } else {
            spectrum + self.cepstral_len()
        }
    }

    pub fn cepstral_len(&self) -> usize {
        let [_, _, w] = self.domain.fragment_shape();
        self.cepstrum * (w / self.pool.max(1))
    }

    pub(super) fn split_trunks(&self) -> bool {
        self.conv == 0 && self.content_trunk && (self.domain == Domain::Digits || self.cepstrum > 0)
    }

    /// The MLP trunk that reads the (pooled) fragment: every model but the convolutional digits.
    pub(super) fn has_mlp_trunk(&self) -> bool {
        self.conv == 0 || self.domain == Domain::Notes
    }

    /// Outputs of the factored decoder's content path: a spectrum (notes) or an ink map (digits).
    pub(super) fn content_output_len(&self) -> usize {
        let [_, h, w] = self.domain.fragment_shape();
        match self.domain {
            Domain::Notes => h,
            Domain::Digits => h * w,
        }
    }

    /// Inputs of the content trunk: the cepstrum (notes) or the ink map (digits).
    pub fn content_view_len(&self) -> usize {
        match self.domain {
            Domain::Notes => self.cepstral_len(),
            Domain::Digits => {
                let [_, h, w] = self.domain.fragment_shape();
                h * w
            }
        }
    }
}
