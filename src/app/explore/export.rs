//! The explorer's figures, and their headless export (`latent-lab export --figure latent-map|...`).

#[allow(unused_imports)]
use super::*;

// ------------------------------------------------------------------ figures

pub(super) fn rgb_tuple(c: Color32) -> (u8, u8, u8) {
    (c.r(), c.g(), c.b())
}

/// The axis names of a plane of `projection`.
pub(super) fn axis_names(projection: Projection, dim_names: &[String]) -> [String; 2] {
    match projection {
        Projection::Pca => ["PC 1".into(), "PC 2".into()],
        Projection::Axes { x, y } => {
            let name = |i: usize| dim_names.get(i).cloned().unwrap_or(format!("z{}", i + 1));
            [name(x), name(y)]
        }
    }
}

/// The samples on the map's plane, one series per colour group.
pub fn map_figure(
    title: &str,
    samples: &MapSamples,
    dim_names: &[String],
    projection: Projection,
    colouring: usize,
) -> anyhow::Result<Figure> {
    let plane = Plane::fit(&samples.latents, projection)
        .ok_or_else(|| anyhow!("the samples do not span the chosen plane"))?;
    let colouring = samples
        .colourings
        .get(colouring)
        .context("no such colouring")?;
    let series = groups(colouring, samples.latents.len())
        .into_iter()
        .map(|g| {
            let points = g
                .members
                .iter()
                .map(|&i| {
                    let p = plane.project(&samples.latents[i]);
                    (p[0], p[1])
                })
                .collect();
            Series::new(g.name, points, rgb_tuple(g.color))
        })
        .collect();
    let [x_label, y_label] = axis_names(projection, dim_names);
    Ok(Figure::Scatter {
        title: format!("{title}: held-out latents, by {}", colouring.name),
        x_label,
        y_label,
        series,
        line: None,
    })
}

/// Rows of decoded strips as one figure: an image grid (a column header per step, a row
/// header per strip), or for vectors a line per feature and row across the steps.
pub fn strips_figure(
    title: &str,
    rows: &[(String, &Strip)],
    col_headers: &[String],
) -> anyhow::Result<Figure> {
    let first = rows
        .first()
        .and_then(|r| r.1.decoded.first())
        .context("nothing decoded to draw")?;
    if first.is_vector() {
        let names = first.names();
        let mut series = Vec::new();
        for (r, (row_name, strip)) in rows.iter().enumerate() {
            for (f, name) in names.iter().enumerate() {
                let points = strip
                    .decoded
                    .iter()
                    .enumerate()
                    .map(|(k, d)| (k as f64, d.values.get(f).copied().unwrap_or(0.0) as f64))
                    .collect();
                let name = if rows.len() > 1 {
                    format!("{name} ({row_name})")
                } else {
                    name.clone()
                };
                let color = figures::category_color(f + r * names.len(), names.len() * rows.len());
                series.push(Series::new(name, points, color));
            }
        }
        return Ok(Figure::Lines {
            title: title.into(),
            x_label: format!("step ({})", col_headers.join(", ")),
            y_label: "decoded value".into(),
            series,
            log_y: false,
        });
    }
    // an output of several images (a pose in every class) gives a row per image
    let mut tiles = Vec::new();
    let mut row_headers = Vec::new();
    let (mut w, mut h, mut cols) = (1, 1, 1);
    for (name, strip) in rows {
        cols = strip.decoded.len().max(1);
        let columns = strip
            .decoded
            .iter()
            .map(Decoded::pictures)
            .collect::<Option<Vec<_>>>()
            .context("an output that is not a picture")?;
        let per_step = columns.first().map_or(0, |c| c.len());
        for k in 0..per_step {
            for column in &columns {
                let (tw, th, rgb) = column.get(k).context("outputs of different sizes")?;
                (w, h) = (*tw, *th);
                tiles.push(rgb.clone());
            }
            row_headers.push(if k == 0 { name.clone() } else { String::new() });
        }
    }
    let mut captions: Vec<String> = col_headers.to_vec();
    captions.resize(cols, String::new());
    captions.extend(row_headers);
    Ok(Figure::ImageGrid {
        title: title.into(),
        tile_w: w,
        tile_h: h,
        cols,
        tiles,
        captions,
    })
}

pub(super) fn traversal_headers() -> Vec<String> {
    TRAVERSAL
        .iter()
        .map(|t| {
            if *t == 0.0 {
                "here".to_string()
            } else {
                format!("{t:+}s")
            }
        })
        .collect()
}

pub(super) fn interpolation_headers(n: usize) -> Vec<String> {
    (0..n)
        .map(|k| match k {
            0 => "A".to_string(),
            k if k + 1 == n => "B".to_string(),
            k => format!("{:.2}", k as f32 / (n - 1) as f32),
        })
        .collect()
}

/// The local directions: a traversal per direction (rows), or for vectors a heat map of
/// how much each feature changes from -2s to +2s along each direction.
pub fn directions_figure(title: &str, dirs: &Directions) -> anyhow::Result<Figure> {
    let first = dirs
        .traversals
        .first()
        .and_then(|t| t.1.decoded.first())
        .context("no directions to draw")?;
    let full = format!("{title}: local directions (share of the change; s = samples' spread)");
    if first.is_vector() {
        let values = dirs
            .traversals
            .iter()
            .map(
                |(_, strip)| match (strip.decoded.first(), strip.decoded.last()) {
                    (Some(lo), Some(hi)) => hi
                        .values
                        .iter()
                        .zip(&lo.values)
                        .map(|(h, l)| (h - l) as f64)
                        .collect(),
                    _ => Vec::new(),
                },
            )
            .collect();
        return Ok(Figure::Heatmap {
            title: full,
            rows: (0..dirs.traversals.len())
                .map(|k| dirs.caption(k))
                .collect(),
            cols: first.names(),
            values,
        });
    }
    let rows = dirs.captioned_strips();
    strips_figure(&full, &rows, &traversal_headers())
}

/// A single decoded output as a figure.
pub fn point_figure(title: &str, z: &[f32], decoded: &Decoded) -> anyhow::Result<Figure> {
    let at = z
        .iter()
        .map(|v| format!("{v:.3}"))
        .collect::<Vec<_>>()
        .join(", ");
    let title = format!("{title}: decoded at ({at})");
    Ok(match decoded.rgb() {
        Some((w, h, rgb)) => Figure::image(title, w, h, rgb),
        None => Figure::Heatmap {
            title,
            rows: vec!["decoded".into()],
            cols: decoded.names(),
            values: vec![decoded.values.iter().map(|v| *v as f64).collect()],
        },
    })
}

// ------------------------------------------------------------------ headless export

/// A navigation figure of `latent-latent export --figure`.
#[derive(Clone, Debug, PartialEq)]
pub enum NavFigure {
    /// `latent-map`: the held-out samples on their principal plane
    Map,
    /// `interpolation` (sample 0 to the sample farthest from it) or `interpolation:A:B`
    Interpolation(Option<(usize, usize)>),
    /// `directions` (at the samples' mean) or `directions:I` (at sample I)
    Directions(Option<usize>),
}

/// The names `--figure` takes for navigation figures.
pub const NAV_FIGURES: &str = "latent-map, interpolation[:A:B], directions[:I]";

impl NavFigure {
    /// None when `name` is not a navigation figure; an error when it is one, badly written.
    pub fn parse(name: &str) -> Option<anyhow::Result<Self>> {
        let (head, rest) = name.split_once(':').unwrap_or((name, ""));
        let index = |s: &str| {
            s.trim().parse::<usize>().map_err(|_| {
                anyhow!(BadArgument(format!(
                    "--figure {name}: `{s}` is not a sample index"
                )))
            })
        };
        Some(match (head, rest) {
            ("latent-map", "") => Ok(Self::Map),
            ("interpolation", "") => Ok(Self::Interpolation(None)),
            ("interpolation", pair) => match pair.split_once(':') {
                Some((a, b)) => {
                    index(a).and_then(|a| Ok(Self::Interpolation(Some((a, index(b)?)))))
                }
                None => Err(anyhow!(BadArgument(format!(
                    "--figure {name}: give interpolation:A:B, two sample indices"
                )))),
            },
            ("directions", "") => Ok(Self::Directions(None)),
            ("directions", i) => index(i).map(|i| Self::Directions(Some(i))),
            _ => return None,
        })
    }
}

pub(super) fn refuse(text: String) -> anyhow::Error {
    anyhow!(BadArgument(text))
}

/// Write a navigation figure of `source` to `out`: `.png` or `.svg`, or `.wav` for the
/// sound of an interpolation or of the directions' traversals.
pub fn export(source: &dyn Explore, figure: &NavFigure, out: &Path) -> anyhow::Result<()> {
    let ext = out
        .extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let wav = match ext.as_str() {
        "png" | "svg" => false,
        "wav" if source.has_sound() && *figure != NavFigure::Map => true,
        "wav" if *figure == NavFigure::Map => {
            return Err(refuse(format!(
                "{}: the latent map is a figure (.png or .svg)",
                out.display()
            )));
        }
        "wav" => {
            return Err(refuse(format!(
                "{}: {} has no sound (export .png or .svg)",
                out.display(),
                source.title()
            )));
        }
        other => {
            return Err(refuse(format!(
                "{}: cannot export a navigation figure as .{other} (.png, .svg, or .wav for sound)",
                out.display()
            )));
        }
    };
    let samples = source.samples()?;
    samples.check(source.dims())?;
    let n = samples.latents.len();
    let title = source.title();
    let in_range = |i: usize| {
        if i < n {
            Ok(i)
        } else {
            Err(refuse(format!(
                "sample {i}: there are {n} samples (0..{})",
                n - 1
            )))
        }
    };
    match figure {
        NavFigure::Map => {
            let fig = map_figure(&title, &samples, &source.dim_names(), Projection::Pca, 0)?;
            figures::save(&fig, out)
        }
        NavFigure::Interpolation(pair) => {
            let (a, b) = match pair {
                Some((a, b)) => (in_range(*a)?, in_range(*b)?),
                None => (0, farthest_from(&samples, 0).unwrap_or(0)),
            };
            let interp = Interpolation::compute(source, &samples, a, b)?;
            if wav {
                let latents: Vec<Vec<f32>> = interp
                    .rows()
                    .iter()
                    .flat_map(|(_, s)| s.latents.clone())
                    .collect();
                write_sound(source, &latents, out)
            } else {
                let fig = strips_figure(
                    &format!(
                        "{title}: from {} (A) to {} (B)",
                        samples.label(a),
                        samples.label(b)
                    ),
                    &interp.rows(),
                    &interpolation_headers(INTERPOLATION_LEN),
                )?;
                figures::save(&fig, out)
            }
        }
        NavFigure::Directions(at) => {
            let z = match at {
                Some(i) => samples.latents[in_range(*i)?].clone(),
                None => Spread::of(&samples.latents)
                    .mean
                    .iter()
                    .map(|m| *m as f32)
                    .collect(),
            };
            let dirs = Directions::compute(source, &samples, &z)?;
            if wav {
                let latents: Vec<Vec<f32>> = dirs
                    .traversals
                    .iter()
                    .flat_map(|(_, s)| s.latents.clone())
                    .collect();
                write_sound(source, &latents, out)
            } else {
                figures::save(&directions_figure(&title, &dirs)?, out)
            }
        }
    }
}

pub(super) fn write_sound(
    source: &dyn Explore,
    latents: &[Vec<f32>],
    out: &Path,
) -> anyhow::Result<()> {
    let sound = source
        .sound(latents)
        .ok_or_else(|| refuse(format!("{} has no sound", source.title())))??;
    crate::audio::wav::write_mono(out, &sound.samples, sound.rate)?;
    Ok(())
}
