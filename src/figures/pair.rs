//! Two finished figures side by side under a label each ("A: ...", "B: ..."), for
//! `latent-lab export A --compare B`: whatever a family draws, as PNG or SVG, is put beside
//! the same figure of the other model.

use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::text::{TEXT, TITLE_SIZE, ensure_font, fit_text, style};
use super::{Format, tmp_path};

/// Height of the band above the figures that names them.
const LABEL_BAND: u32 = 64;

/// Write `a` and `b` (two PNG or two SVG files) side by side into `out`, each under its label.
pub fn side_by_side(a: &Path, b: &Path, labels: [&str; 2], out: &Path) -> Result<()> {
    ensure_font()?;
    let bytes = match Format::from_path(out)? {
        Format::Png => png_pair(a, b, labels)?,
        Format::Svg => svg_pair(a, b, labels)?.into_bytes(),
    };
    let tmp = tmp_path(out);
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, out).with_context(|| format!("writing {}", out.display()))
}

/// The labels of the figures of models A and B, read from their files (the file's name, with
/// its folder when both files share a name, as `models/sps_vision.safetensors` and
/// `models/decoded_turns/sps_vision.safetensors` do), or trained in the window (no file).
pub fn labels(files: &[Option<&Path>]) -> Vec<String> {
    let name = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned());
    let names: Vec<Option<String>> = files.iter().map(|f| f.and_then(name)).collect();
    files
        .iter()
        .zip(&names)
        .zip(['A', 'B'])
        .map(|((file, own), which)| {
            let shared = own.is_some() && names.iter().filter(|n| *n == own).count() > 1;
            let shown = match (file, own) {
                (Some(file), Some(own)) if shared => {
                    let folder = file.parent().and_then(name).unwrap_or_else(|| ".".into());
                    format!("{folder}/{own}")
                }
                (_, Some(own)) => own.clone(),
                _ => "trained in this window".into(),
            };
            format!("{which}: {shown}")
        })
        .collect()
}

/// `figure` of each model, under its label, into `out`: one is saved as it is, two side by
/// side (what the window exports while a model is open as B, as `export --compare` does).
pub fn save_each<M>(
    models: &[(M, String)],
    out: &Path,
    figure: impl Fn(&M) -> Result<super::Figure>,
) -> Result<()> {
    let figures = models
        .iter()
        .map(|(model, label)| Ok((figure(model)?, label.clone())))
        .collect::<Result<Vec<_>>>()?;
    match figures.as_slice() {
        [] => bail!("{}: no model to draw", out.display()),
        [(one, _)] => super::save(one, out),
        [(a, label_a), (b, label_b), ..] => {
            let ext = out.extension().and_then(|e| e.to_str()).unwrap_or("png");
            let dir = tempfile::tempdir().context("a folder for the two figures")?;
            let parts = [
                dir.path().join(format!("a.{ext}")),
                dir.path().join(format!("b.{ext}")),
            ];
            super::save(a, &parts[0])?;
            super::save(b, &parts[1])?;
            side_by_side(&parts[0], &parts[1], [label_a, label_b], out)
        }
    }
}

fn png_pair(a: &Path, b: &Path, labels: [&str; 2]) -> Result<Vec<u8>> {
    let read = |p: &Path| -> Result<image::RgbImage> {
        Ok(image::open(p)
            .with_context(|| format!("reading {}", p.display()))?
            .to_rgb8())
    };
    let (ia, ib) = (read(a)?, read(b)?);
    let width = ia.width() + ib.width();
    let height = LABEL_BAND + ia.height().max(ib.height());
    let mut canvas = image::RgbImage::from_pixel(width, height, image::Rgb([255, 255, 255]));
    image::imageops::replace(&mut canvas, &ia, 0, LABEL_BAND as i64);
    image::imageops::replace(&mut canvas, &ib, ia.width() as i64, LABEL_BAND as i64);
    let mut buf = canvas.into_raw();
    {
        let root = BitMapBackend::with_buffer(&mut buf, (width, height)).into_drawing_area();
        for (label, (x, w)) in labels
            .iter()
            .zip([(0, ia.width()), (ia.width(), ib.width())])
        {
            let text = fit_text(label, TITLE_SIZE, w.saturating_sub(40));
            root.draw_text(
                &text,
                &style(TITLE_SIZE, TEXT, HPos::Left, VPos::Center),
                (x as i32 + 20, LABEL_BAND as i32 / 2),
            )
            .map_err(|e| anyhow!("drawing failed: {e}"))?;
        }
        root.present().map_err(|e| anyhow!("drawing failed: {e}"))?;
    }
    let mut png = Vec::new();
    image::RgbImage::from_raw(width, height, buf)
        .ok_or_else(|| anyhow!("internal error: pixel buffer does not match {width}x{height}"))?
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)?;
    Ok(png)
}

/// An SVG document's size and the content of its root element.
fn svg_root(text: &str, path: &Path) -> Result<(f64, f64, String)> {
    let start = text
        .find("<svg")
        .ok_or_else(|| anyhow!("{}: not an SVG file", path.display()))?;
    let body = &text[start + 4..];
    let tag_end = body
        .find('>')
        .ok_or_else(|| anyhow!("{}: the SVG root tag does not end", path.display()))?;
    let attr = |name: &str| -> Result<f64> {
        let key = format!(" {name}=\"");
        let at = body[..tag_end]
            .find(&key)
            .ok_or_else(|| anyhow!("{}: the SVG root has no {name}", path.display()))?;
        let rest = &body[at + key.len()..];
        let value = &rest[..rest.find('"').unwrap_or(0)];
        value
            .trim_end_matches("px")
            .parse()
            .with_context(|| format!("{}: SVG {name} `{value}`", path.display()))
    };
    let content = &body[tag_end + 1..body.rfind("</svg>").unwrap_or(body.len())];
    Ok((attr("width")?, attr("height")?, content.to_string()))
}

fn svg_pair(a: &Path, b: &Path, labels: [&str; 2]) -> Result<String> {
    let read =
        |p: &Path| std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()));
    let (ta, tb) = (read(a)?, read(b)?);
    let (wa, ha, body_a) = svg_root(&ta, a)?;
    let (wb, hb, body_b) = svg_root(&tb, b)?;
    if !(wa > 0.0 && wb > 0.0) {
        bail!("{}: an SVG of no width", a.display());
    }
    let band = LABEL_BAND as f64;
    let (width, height) = (wa + wb, band + ha.max(hb));
    let escape = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    let mut svg = format!(
        "<svg width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" xmlns=\"http://www.w3.org/2000/svg\" xmlns:xlink=\"http://www.w3.org/1999/xlink\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    );
    for (label, x) in labels.iter().zip([0.0, wa]) {
        svg.push_str(&format!(
            "<text x=\"{}\" y=\"{}\" font-family=\"sans-serif\" font-size=\"{TITLE_SIZE}\" dominant-baseline=\"middle\" fill=\"rgb(20,20,20)\">{}</text>\n",
            x + 20.0,
            band / 2.0,
            escape(label)
        ));
    }
    // each figure's drawing, moved into place (a group rather than a nested root: every
    // viewer places a translated group)
    for (body, x) in [(body_a, 0.0), (body_b, wa)] {
        svg.push_str(&format!(
            "<g transform=\"translate({x},{band})\">{body}</g>\n"
        ));
    }
    svg.push_str("</svg>\n");
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::labels;
    use std::path::Path;

    #[test]
    fn labels_name_the_folder_only_when_the_files_share_a_name() {
        let default = Path::new("models/sps_vision.safetensors");
        let turns = Path::new("models/decoded_turns/sps_vision.safetensors");
        let ablation = Path::new("models/decoded_turns/sps_vision_no_symmetry.safetensors");
        assert_eq!(
            labels(&[Some(default), Some(turns)]),
            [
                "A: models/sps_vision.safetensors",
                "B: decoded_turns/sps_vision.safetensors"
            ]
        );
        assert_eq!(
            labels(&[Some(turns), Some(ablation)]),
            [
                "A: sps_vision.safetensors",
                "B: sps_vision_no_symmetry.safetensors"
            ]
        );
        assert_eq!(
            labels(&[None, Some(default)]),
            ["A: trained in this window", "B: sps_vision.safetensors"]
        );
        assert_eq!(labels(&[Some(default)]), ["A: sps_vision.safetensors"]);
    }
}
