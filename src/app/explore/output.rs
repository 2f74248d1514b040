//! How decoded values are drawn: images, spectrograms and vectors as textures and figure tiles.

#[allow(unused_imports)]
use super::*;

// ------------------------------------------------------------------ drawing decoded values

impl Decoded {
    /// The output as an RGB picture (None for vectors): images side by side, spectrograms
    /// low frequencies at the bottom.
    pub fn rgb(&self) -> Option<(usize, usize, Vec<u8>)> {
        match &self.output {
            Output::Images {
                count,
                channels,
                height,
                width,
                ink,
            } => {
                let (c, h, w) = (*channels, *height, *width);
                let total_w = w * count;
                let mut rgb = vec![255u8; total_w * h * 3];
                let byte = |v: f32| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
                for k in 0..*count {
                    let base = k * c * h * w;
                    for y in 0..h {
                        for x in 0..w {
                            let px = &mut rgb[(y * total_w + k * w + x) * 3..][..3];
                            let at = |ch: usize| {
                                self.values
                                    .get(base + (ch * h + y) * w + x)
                                    .copied()
                                    .unwrap_or(0.0)
                            };
                            if *ink || c == 1 {
                                let v = if *ink { 1.0 - at(0) } else { at(0) };
                                px.copy_from_slice(&[byte(v); 3]);
                            } else {
                                for (ch, p) in px.iter_mut().enumerate() {
                                    *p = byte(at(ch.min(c - 1)));
                                }
                            }
                        }
                    }
                }
                Some((total_w, h, rgb))
            }
            Output::Spectrogram {
                bins,
                frames,
                shown_bins,
                gain,
            } => {
                let (w, h) = (*frames, (*shown_bins).min(*bins));
                let mut rgb = vec![0u8; w * h * 3];
                for b in 0..h {
                    for t in 0..w {
                        let v = self.values.get(b * frames + t).copied().unwrap_or(0.0);
                        let y = h - 1 - b;
                        rgb[(y * w + t) * 3..][..3].copy_from_slice(&figures::viridis(gain * v));
                    }
                }
                Some((w, h, rgb))
            }
            Output::Vector { .. } => None,
        }
    }

    /// The output's pictures one by one: each image of an output of several, else the one.
    pub fn pictures(&self) -> Option<Vec<(usize, usize, Vec<u8>)>> {
        let (w, h, rgb) = self.rgb()?;
        let count = match &self.output {
            Output::Images { count, .. } => (*count).max(1),
            _ => 1,
        };
        let each = w / count;
        Some(
            (0..count)
                .map(|k| {
                    let mut tile = Vec::with_capacity(each * h * 3);
                    for y in 0..h {
                        let row = (y * w + k * each) * 3;
                        tile.extend_from_slice(&rgb[row..row + each * 3]);
                    }
                    (each, h, tile)
                })
                .collect(),
        )
    }

    /// How many pictures the output holds (one for a spectrogram; none for a vector).
    pub fn picture_count(&self) -> usize {
        match &self.output {
            Output::Images { count, .. } => *count,
            Output::Spectrogram { .. } => 1,
            Output::Vector { .. } => 0,
        }
    }

    pub fn is_vector(&self) -> bool {
        matches!(self.output, Output::Vector { .. })
    }

    pub(super) fn names(&self) -> Vec<String> {
        match &self.output {
            Output::Vector { names } => names.clone(),
            _ => (0..self.values.len()).map(|i| format!("x{i}")).collect(),
        }
    }
}

/// Pictures of one size in a grid, one column per entry of `columns` (its pictures top to
/// bottom), `gap` grey pixels apart.
pub(super) fn picture_grid(
    columns: &[Vec<(usize, usize, Vec<u8>)>],
    gap: usize,
) -> Option<(usize, usize, Vec<u8>)> {
    let (w, h) = columns.first()?.first().map(|t| (t.0, t.1))?;
    let rows = columns[0].len();
    if columns
        .iter()
        .any(|c| c.len() != rows || c.iter().any(|t| t.0 != w || t.1 != h))
    {
        return None;
    }
    let n = columns.len();
    let (total_w, total_h) = (n * w + (n - 1) * gap, rows * h + (rows - 1) * gap);
    let mut rgb = vec![160u8; total_w * total_h * 3];
    for (k, column) in columns.iter().enumerate() {
        for (r, t) in column.iter().enumerate() {
            for y in 0..h {
                let dst = ((r * (h + gap) + y) * total_w + k * (w + gap)) * 3;
                rgb[dst..dst + w * 3].copy_from_slice(&t.2[y * w * 3..(y + 1) * w * 3]);
            }
        }
    }
    Some((total_w, total_h, rgb))
}
