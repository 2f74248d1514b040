//! The latent map every lab shares: held-out samples encoded and drawn in 2-D, on two chosen
//! latent axes or on their two principal directions, coloured by a label. A click decodes the
//! latent under the pointer; a drag draws a path whose decoded strip the lab shows. The map
//! knows nothing of a family: a lab hands it latents and labels, and turns its events into
//! decoded outputs.
//!
//! Also here, because they work on any decoder: interpolation between two latents, and the
//! local directions of a decoder (the leading right singular vectors of its Jacobian).

use egui_plot::{Line, Plot, PlotPoints, Points};
use serde::{Deserialize, Serialize};

/// Which plane of the latent space the map shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Projection {
    /// two latent dimensions; the others held at the samples' mean
    Axes { x: usize, y: usize },
    /// the two leading principal directions of the samples' latents, through their mean
    #[default]
    Pca,
}

/// A 2-D plane in latent space: `origin + a * u + b * v`, with `u` and `v` orthonormal, so
/// that [`Plane::project`] and [`Plane::latent_at`] invert each other on the plane.
#[derive(Clone, Debug, PartialEq)]
pub struct Plane {
    pub origin: Vec<f32>,
    pub u: Vec<f32>,
    pub v: Vec<f32>,
}

impl Plane {
    /// The plane of `projection` through the mean of `latents` (None without samples or
    /// with axes outside the latent).
    pub fn fit(latents: &[Vec<f32>], projection: Projection) -> Option<Self> {
        let d = latents.first()?.len();
        if d == 0 {
            return None;
        }
        let n = latents.len() as f64;
        let mut mean = vec![0f64; d];
        for z in latents {
            for (m, x) in mean.iter_mut().zip(z) {
                *m += *x as f64 / n;
            }
        }
        let unit = |i: usize| (0..d).map(|k| f32::from(k == i)).collect::<Vec<f32>>();
        let (u, v) = match projection {
            Projection::Axes { x, y } if x < d && y < d && x != y => (unit(x), unit(y)),
            Projection::Axes { .. } => return None,
            Projection::Pca if d == 1 => (unit(0), vec![0.0]),
            Projection::Pca => {
                let mut cov = vec![0f64; d * d];
                for z in latents {
                    for a in 0..d {
                        for b in 0..d {
                            cov[a * d + b] += (z[a] as f64 - mean[a]) * (z[b] as f64 - mean[b]) / n;
                        }
                    }
                }
                let (_, vectors) = symmetric_eigen(&cov, d);
                let to_f32 = |c: &[f64]| c.iter().map(|x| *x as f32).collect::<Vec<f32>>();
                (to_f32(&vectors[0]), to_f32(&vectors[1]))
            }
        };
        Some(Self {
            origin: mean.iter().map(|m| *m as f32).collect(),
            u,
            v,
        })
    }

    /// Map coordinates of a latent: its offset from the origin along `u` and `v`.
    pub fn project(&self, z: &[f32]) -> [f64; 2] {
        let dot = |axis: &[f32]| {
            z.iter()
                .zip(&self.origin)
                .zip(axis)
                .map(|((x, o), a)| ((x - o) * a) as f64)
                .sum::<f64>()
        };
        [dot(&self.u), dot(&self.v)]
    }

    /// The latent at map coordinates `p`.
    pub fn latent_at(&self, p: [f64; 2]) -> Vec<f32> {
        self.origin
            .iter()
            .zip(self.u.iter().zip(&self.v))
            .map(|(o, (u, v))| o + (p[0] as f32) * u + (p[1] as f32) * v)
            .collect()
    }
}

/// `n` points evenly spaced along a polyline by arc length, its first and last points
/// included (a path of one point, or of no length, repeats that point).
pub fn resample_path(path: &[[f64; 2]], n: usize) -> Vec<[f64; 2]> {
    let Some(&first) = path.first() else {
        return Vec::new();
    };
    let seg_len = |a: [f64; 2], b: [f64; 2]| ((b[0] - a[0]).powi(2) + (b[1] - a[1]).powi(2)).sqrt();
    let total: f64 = path.windows(2).map(|w| seg_len(w[0], w[1])).sum();
    if n < 2 || total <= 0.0 {
        return vec![first; n.max(1)];
    }
    let mut out = Vec::with_capacity(n);
    let (mut seg, mut walked) = (0usize, 0.0f64);
    for i in 0..n {
        let target = total * i as f64 / (n - 1) as f64;
        while seg + 2 < path.len() && walked + seg_len(path[seg], path[seg + 1]) < target {
            walked += seg_len(path[seg], path[seg + 1]);
            seg += 1;
        }
        let (a, b) = (path[seg], path[(seg + 1).min(path.len() - 1)]);
        let len = seg_len(a, b);
        let t = if len > 0.0 {
            ((target - walked) / len).clamp(0.0, 1.0)
        } else {
            0.0
        };
        out.push([a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])]);
    }
    out
}

/// `n` latents from `a` to `b` on the straight line, both ends included (exactly: the last
/// is `b` itself, not `a + (b - a)` rounded).
pub fn interpolate(a: &[f32], b: &[f32], n: usize) -> Vec<Vec<f32>> {
    (0..n)
        .map(|i| {
            if n > 1 && i + 1 == n {
                return b.to_vec();
            }
            let t = if n > 1 {
                i as f32 / (n - 1) as f32
            } else {
                0.0
            };
            a.iter().zip(b).map(|(x, y)| x + t * (y - x)).collect()
        })
        .collect()
}

/// A direction in latent space along which the decoded output changes, with how much.
#[derive(Clone, Debug, PartialEq)]
pub struct Direction {
    /// unit length; the set returned by [`local_directions`] is orthonormal
    pub direction: Vec<f32>,
    /// the Jacobian's singular value: change of the output per unit step along `direction`
    pub singular_value: f64,
    /// the share of the Jacobian's squared Frobenius norm this direction carries
    pub share: f64,
}

/// The directions in which `decode` changes most at `z`: the right singular vectors of its
/// Jacobian there (by central differences of step `eps`), ordered by singular value.
pub fn local_directions(
    decode: &mut dyn FnMut(&[f32]) -> anyhow::Result<Vec<f32>>,
    z: &[f32],
    eps: f32,
) -> anyhow::Result<Vec<Direction>> {
    let d = z.len();
    anyhow::ensure!(d > 0, "an empty latent has no directions");
    anyhow::ensure!(eps > 0.0, "the step must be positive");
    let mut columns: Vec<Vec<f64>> = Vec::with_capacity(d);
    for i in 0..d {
        let mut plus = z.to_vec();
        let mut minus = z.to_vec();
        plus[i] += eps;
        minus[i] -= eps;
        let (hi, lo) = (decode(&plus)?, decode(&minus)?);
        anyhow::ensure!(hi.len() == lo.len(), "the decoder's output changed size");
        columns.push(
            hi.iter()
                .zip(&lo)
                .map(|(a, b)| (*a as f64 - *b as f64) / (2.0 * eps as f64))
                .collect(),
        );
    }
    // J^T J (d x d): its eigenvectors are J's right singular vectors, its eigenvalues their
    // squared singular values.
    let mut gram = vec![0f64; d * d];
    for a in 0..d {
        for b in a..d {
            let g: f64 = columns[a].iter().zip(&columns[b]).map(|(x, y)| x * y).sum();
            gram[a * d + b] = g;
            gram[b * d + a] = g;
        }
    }
    let (values, vectors) = symmetric_eigen(&gram, d);
    let total: f64 = values.iter().map(|v| v.max(0.0)).sum();
    Ok(values
        .iter()
        .zip(vectors)
        .map(|(value, vector)| Direction {
            direction: vector.iter().map(|x| *x as f32).collect(),
            singular_value: value.max(0.0).sqrt(),
            share: if total > 0.0 {
                value.max(0.0) / total
            } else {
                0.0
            },
        })
        .collect())
}

/// Eigenvalues and unit eigenvectors of a symmetric (d, d) matrix (row-major), largest
/// eigenvalue first, by cyclic Jacobi rotations: exact orthonormality, fine for the small
/// matrices of a latent space.
pub fn symmetric_eigen(a: &[f64], d: usize) -> (Vec<f64>, Vec<Vec<f64>>) {
    let mut m = a.to_vec();
    let mut v: Vec<f64> = (0..d * d)
        .map(|i| f64::from(u8::from(i / d == i % d)))
        .collect();
    let scale: f64 = m
        .iter()
        .map(|x| x * x)
        .sum::<f64>()
        .sqrt()
        .max(f64::MIN_POSITIVE);
    for _sweep in 0..100 {
        let off: f64 = (0..d)
            .flat_map(|p| (0..d).filter(move |&q| q != p).map(move |q| (p, q)))
            .map(|(p, q)| m[p * d + q].powi(2))
            .sum::<f64>()
            .sqrt();
        if off <= 1e-14 * scale {
            break;
        }
        for p in 0..d {
            for q in p + 1..d {
                let apq = m[p * d + q];
                if apq.abs() <= f64::MIN_POSITIVE {
                    continue;
                }
                let theta = (m[q * d + q] - m[p * d + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..d {
                    let (mkp, mkq) = (m[k * d + p], m[k * d + q]);
                    m[k * d + p] = c * mkp - s * mkq;
                    m[k * d + q] = s * mkp + c * mkq;
                }
                for k in 0..d {
                    let (mpk, mqk) = (m[p * d + k], m[q * d + k]);
                    m[p * d + k] = c * mpk - s * mqk;
                    m[q * d + k] = s * mpk + c * mqk;
                }
                for k in 0..d {
                    let (vkp, vkq) = (v[k * d + p], v[k * d + q]);
                    v[k * d + p] = c * vkp - s * vkq;
                    v[k * d + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    let mut order: Vec<usize> = (0..d).collect();
    order.sort_by(|&i, &j| m[j * d + j].total_cmp(&m[i * d + i]));
    let values = order.iter().map(|&i| m[i * d + i]).collect();
    let vectors = order
        .iter()
        .map(|&i| (0..d).map(|k| v[k * d + i]).collect())
        .collect();
    (values, vectors)
}

/// What the map asks its lab to decode.
#[derive(Clone, Debug, PartialEq)]
pub enum MapEvent {
    /// a click: decode this latent and show or play it
    Decode(Vec<f32>),
    /// a drawn path: decode these latents, evenly spaced along it, as a strip
    Strip(Vec<Vec<f32>>),
}

/// What the user did on the map, in map coordinates: the owner decides what a click means
/// (decode the point, or pick the sample nearest to it).
#[derive(Clone, Debug, PartialEq)]
pub enum MapInput {
    Click([f64; 2]),
    /// a finished drag: the path from where the button went down to where it came up
    Path(Vec<[f64; 2]>),
}

/// Points in a strip decoded from a drawn path.
pub const STRIP_LEN: usize = 9;

/// Samples drawn in one colour, with the name the legend gives them.
#[derive(Clone, Debug, PartialEq)]
pub struct Group {
    pub name: String,
    pub color: egui::Color32,
    /// indices into the samples
    pub members: Vec<usize>,
}

/// The map's state: the samples, the plane, the picked point and the drawn path.
pub struct LatentMap {
    pub projection: Projection,
    plane: Option<Plane>,
    /// map coordinates of every sample, in the samples' order
    coords: Vec<[f64; 2]>,
    /// the legend's groups, with their members' map coordinates
    groups: Vec<(Group, Vec<[f64; 2]>)>,
    pub picked: Option<[f64; 2]>,
    drawing: Vec<[f64; 2]>,
    pub path: Vec<[f64; 2]>,
    /// labelled markers (the two ends of an interpolation)
    pub marks: Vec<(String, [f64; 2])>,
    pub axis_names: [String; 2],
    pub height: f32,
    /// the plot's bounds when the samples were set, so that markers and paths never rescale it
    bounds: Option<([f64; 2], [f64; 2])>,
    reset_view: bool,
    /// the screen transform of the last frame drawn: tests turn map coordinates into clicks
    transform: Option<egui_plot::PlotTransform>,
}

impl Default for LatentMap {
    fn default() -> Self {
        Self {
            projection: Projection::default(),
            plane: None,
            coords: Vec::new(),
            groups: Vec::new(),
            picked: None,
            drawing: Vec::new(),
            path: Vec::new(),
            marks: Vec::new(),
            axis_names: ["PC 1".into(), "PC 2".into()],
            height: 280.0,
            bounds: None,
            reset_view: false,
            transform: None,
        }
    }
}

impl LatentMap {
    /// New samples: their latents, a label index per sample and the labels' names, in the
    /// colours of [`crate::figures::category_color`].
    pub fn set_samples(&mut self, latents: &[Vec<f32>], labels: &[usize], names: &[String]) {
        let groups: Vec<Group> = names
            .iter()
            .enumerate()
            .map(|(k, name)| {
                let (r, g, b) = crate::figures::category_color(k, names.len());
                Group {
                    name: name.clone(),
                    color: egui::Color32::from_rgb(r, g, b),
                    members: labels
                        .iter()
                        .enumerate()
                        .filter(|(_, l)| **l == k)
                        .map(|(i, _)| i)
                        .collect(),
                }
            })
            .collect();
        self.set_groups(latents, groups);
    }

    /// New samples, coloured by `groups` (a sample in no group is still pickable, not drawn).
    pub fn set_groups(&mut self, latents: &[Vec<f32>], groups: Vec<Group>) {
        self.plane = Plane::fit(latents, self.projection);
        self.coords = match &self.plane {
            Some(plane) => latents.iter().map(|z| plane.project(z)).collect(),
            None => Vec::new(),
        };
        self.recolour(groups);
        let new_bounds = bounds_of(&self.coords);
        if new_bounds != self.bounds {
            self.bounds = new_bounds;
            self.reset_view = true;
        }
    }

    /// Only the colours change: the plane, and so every coordinate, stays.
    pub fn recolour(&mut self, groups: Vec<Group>) {
        self.groups = groups
            .into_iter()
            .map(|g| {
                let pts = g
                    .members
                    .iter()
                    .filter_map(|&i| self.coords.get(i).copied())
                    .collect();
                (g, pts)
            })
            .collect();
    }

    pub fn plane(&self) -> Option<&Plane> {
        self.plane.as_ref()
    }

    /// Map coordinates of every sample, in the samples' order.
    pub fn coords(&self) -> &[[f64; 2]] {
        &self.coords
    }

    /// The sample nearest to map coordinates `p`.
    pub fn nearest(&self, p: [f64; 2]) -> Option<usize> {
        self.coords
            .iter()
            .enumerate()
            .map(|(i, c)| (i, (c[0] - p[0]).powi(2) + (c[1] - p[1]).powi(2)))
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(i, _)| i)
    }

    /// How the last frame drew the map: screen position of map coordinates and back.
    pub fn transform(&self) -> Option<&egui_plot::PlotTransform> {
        self.transform.as_ref()
    }

    /// The event a click at map coordinates `p` makes (also what the plot does on a click).
    pub fn click(&mut self, p: [f64; 2]) -> Option<MapEvent> {
        let plane = self.plane.as_ref()?;
        self.picked = Some(p);
        Some(MapEvent::Decode(plane.latent_at(p)))
    }

    /// The event a finished path makes: [`STRIP_LEN`] latents along it.
    pub fn finish_path(&mut self, path: Vec<[f64; 2]>) -> Option<MapEvent> {
        let plane = self.plane.as_ref()?;
        let points = resample_path(&path, STRIP_LEN);
        self.path = path;
        (!points.is_empty())
            .then(|| MapEvent::Strip(points.iter().map(|p| plane.latent_at(*p)).collect()))
    }

    /// Draw the map; a click or a finished drag comes back in map coordinates.
    pub fn ui(&mut self, ui: &mut egui::Ui, id: &str) -> Option<MapInput> {
        let mut plot = Plot::new(id)
            .height(self.height)
            .allow_drag(false)
            .allow_boxed_zoom(false)
            // the wheel scrolls the tab, as over every other plot in the window
            .allow_scroll(false)
            .x_axis_label(self.axis_names[0].clone())
            .y_axis_label(self.axis_names[1].clone())
            // small and see-through: the legend sits over the map's top-right corner
            .legend(
                egui_plot::Legend::default()
                    .text_style(egui::TextStyle::Small)
                    .background_alpha(0.5),
            );
        if let Some((lo, hi)) = self.bounds {
            plot = plot
                .default_x_bounds(lo[0], hi[0])
                .default_y_bounds(lo[1], hi[1]);
        }
        if std::mem::take(&mut self.reset_view) {
            plot = plot.reset();
        }
        let ink = ui.visuals().strong_text_color();
        let response = plot.show(ui, |plot| {
            for (group, points) in &self.groups {
                plot.points(
                    Points::new(group.name.clone(), PlotPoints::from(points.clone()))
                        .color(group.color)
                        .radius(2.5),
                );
            }
            // markers go unnamed, out of the legend, which is the samples' colours alone
            if self.drawing.len() > 1 {
                plot.line(Line::new("", PlotPoints::from(self.drawing.clone())).color(ink));
            } else if self.path.len() > 1 {
                plot.line(Line::new("", PlotPoints::from(self.path.clone())).color(ink));
            }
            for (name, p) in &self.marks {
                plot.points(
                    Points::new("", vec![*p])
                        .radius(6.0)
                        .filled(false)
                        .color(ink),
                );
                plot.text(
                    egui_plot::Text::new(
                        "",
                        egui_plot::PlotPoint::new(p[0], p[1]),
                        egui::RichText::new(format!("  {name}")).strong(),
                    )
                    .anchor(egui::Align2::LEFT_BOTTOM)
                    .color(ink),
                );
            }
            if let Some(p) = self.picked {
                plot.points(
                    Points::new("", vec![p])
                        .radius(6.0)
                        .shape(egui_plot::MarkerShape::Cross)
                        .color(ink),
                );
            }
        });
        let (r, transform) = (response.response, response.transform);
        self.transform = Some(transform);
        let at = |pos: egui::Pos2| {
            let v = transform.value_from_position(pos);
            [v.x, v.y]
        };
        if r.drag_started() {
            self.drawing.clear();
            // the drag is recognised only once the pointer has moved: start where it went down
            if let Some(origin) = ui.input(|i| i.pointer.press_origin()) {
                self.drawing.push(at(origin));
            }
        }
        if r.dragged()
            && let Some(pos) = r.interact_pointer_pos()
        {
            self.drawing.push(at(pos));
        }
        if r.drag_stopped() {
            if let Some(pos) = ui.input(|i| i.pointer.interact_pos()) {
                let end = at(pos);
                if self.drawing.last() != Some(&end) {
                    self.drawing.push(end);
                }
            }
            let path = std::mem::take(&mut self.drawing);
            return (!path.is_empty()).then_some(MapInput::Path(path));
        }
        if r.clicked()
            && let Some(pos) = r.interact_pointer_pos()
        {
            return Some(MapInput::Click(at(pos)));
        }
        None
    }
}

/// The box around `coords` with a margin, or None without samples.
fn bounds_of(coords: &[[f64; 2]]) -> Option<([f64; 2], [f64; 2])> {
    let first = coords.first()?;
    let (mut lo, mut hi) = (*first, *first);
    for c in coords {
        for k in 0..2 {
            lo[k] = lo[k].min(c[k]);
            hi[k] = hi[k].max(c[k]);
        }
    }
    for k in 0..2 {
        let span = hi[k] - lo[k];
        let margin = if span > 0.0 { 0.08 * span } else { 1.0 };
        lo[k] -= margin;
        hi[k] += margin;
    }
    Some((lo, hi))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dot(a: &[f32], b: &[f32]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(x, y)| (*x as f64) * (*y as f64))
            .sum()
    }

    fn samples() -> Vec<Vec<f32>> {
        (0..50)
            .map(|i| {
                let t = i as f32 / 10.0;
                vec![3.0 * t.cos(), 0.5 * t.sin(), 0.1 * t, 1.0]
            })
            .collect()
    }

    #[test]
    fn a_point_of_the_map_decodes_the_latent_it_projects_from() {
        for projection in [Projection::Pca, Projection::Axes { x: 2, y: 0 }] {
            let plane = Plane::fit(&samples(), projection).unwrap();
            assert!((dot(&plane.u, &plane.u) - 1.0).abs() < 1e-5);
            assert!((dot(&plane.v, &plane.v) - 1.0).abs() < 1e-5);
            assert!(dot(&plane.u, &plane.v).abs() < 1e-5);
            for p in [[0.0, 0.0], [1.5, -0.25], [-2.0, 0.75]] {
                let back = plane.project(&plane.latent_at(p));
                assert!((back[0] - p[0]).abs() < 1e-5 && (back[1] - p[1]).abs() < 1e-5);
            }
        }
        // PCA's first direction is the widest spread of the samples (the first latent here)
        let plane = Plane::fit(&samples(), Projection::Pca).unwrap();
        assert!(plane.u[0].abs() > 0.95, "{:?}", plane.u);
        assert!(Plane::fit(&samples(), Projection::Axes { x: 1, y: 9 }).is_none());
    }

    #[test]
    fn a_drawn_path_gives_a_strip_whose_ends_are_the_path_ends() {
        let mut map = LatentMap::default();
        map.set_samples(&samples(), &vec![0; 50], &["all".into()]);
        let path = vec![[-1.0, 0.0], [0.0, 0.5], [2.0, 0.5]];
        let Some(MapEvent::Strip(strip)) = map.finish_path(path.clone()) else {
            panic!("no strip");
        };
        assert_eq!(strip.len(), STRIP_LEN);
        let plane = map.plane().unwrap().clone();
        assert_eq!(strip[0], plane.latent_at(path[0]));
        assert_eq!(strip[STRIP_LEN - 1], plane.latent_at(path[2]));
        // evenly spaced along the path: total length 1.118 + 2 over 8 gaps
        let pts = resample_path(&path, 9);
        let step = (1.25f64.sqrt() + 2.0) / 8.0;
        for w in pts.windows(2) {
            let d = ((w[1][0] - w[0][0]).powi(2) + (w[1][1] - w[0][1]).powi(2)).sqrt();
            assert!(d <= step + 1e-9, "{d} > {step}");
        }
        let Some(MapEvent::Decode(z)) = map.click([0.5, -0.5]) else {
            panic!("no decode");
        };
        assert_eq!(z, plane.latent_at([0.5, -0.5]));
    }

    #[test]
    fn local_directions_are_orthonormal_and_ordered_by_singular_value() {
        // a decoder that stretches latent direction (1, 1, 0) by 5, (1, -1, 0) by 2 and
        // ignores the third dimension
        let mut decode = |z: &[f32]| -> anyhow::Result<Vec<f32>> {
            let a = (z[0] + z[1]) / 2f32.sqrt();
            let b = (z[0] - z[1]) / 2f32.sqrt();
            Ok(vec![5.0 * a, 2.0 * b, 5.0 * a * 0.0])
        };
        let dirs = local_directions(&mut decode, &[0.3, -0.2, 1.0], 1e-2).unwrap();
        assert_eq!(dirs.len(), 3);
        for (i, a) in dirs.iter().enumerate() {
            for (j, b) in dirs.iter().enumerate() {
                let expected = if i == j { 1.0 } else { 0.0 };
                assert!((dot(&a.direction, &b.direction) - expected).abs() < 1e-5);
            }
        }
        assert!(
            dirs.windows(2)
                .all(|w| w[0].singular_value >= w[1].singular_value)
        );
        assert!((dirs[0].singular_value - 5.0).abs() < 1e-3, "{dirs:?}");
        assert!((dirs[1].singular_value - 2.0).abs() < 1e-3, "{dirs:?}");
        assert!(dirs[2].singular_value < 1e-3);
        assert!((dirs[0].share - 25.0 / 29.0).abs() < 1e-4);
        assert!((dirs[0].direction[0].abs() - 0.5f32.sqrt()).abs() < 1e-4);
        assert!(dirs[0].direction[0] * dirs[0].direction[1] > 0.0);
    }

    #[test]
    fn interpolation_runs_from_one_latent_to_the_other() {
        let strip = interpolate(&[0.0, 2.0], &[1.0, -2.0], 5);
        assert_eq!(strip.len(), 5);
        assert_eq!(strip[0], vec![0.0, 2.0]);
        assert_eq!(strip[4], vec![1.0, -2.0]);
        assert_eq!(strip[2], vec![0.5, 0.0]);
    }
}
