//! The event painter of the Relevance tab: a decoded muon pair drawn as momentum arrows in
//! the transverse and longitudinal planes.

use egui::{Color32, Pos2, Stroke, Vec2};

use super::data;

pub(super) const MU_MINUS: Color32 = Color32::from_rgb(213, 94, 0);
pub(super) const MU_PLUS: Color32 = Color32::from_rgb(0, 114, 178);

/// A decoded muon pair: momenta as arrows in the transverse (px, py) and longitudinal
/// (pz, pT) planes, with the invariant mass and total momentum they imply.
pub(super) fn draw_muon_event(ui: &mut egui::Ui, x: &[f32]) {
    let ev: Vec<f64> = x.iter().map(|&v| v as f64).collect();
    let k = data::pair_kinematics(&ev);
    let (a, b) = (&ev[0..4], &ev[4..8]);
    let pt = |p: &[f64]| p[1].hypot(p[2]);
    ui.label(format!(
        "invariant mass {:.2} GeV · |p(mu-) + p(mu+)| {:.2} GeV · E total {:.1} GeV · rapidity {:.2} · cos θ* {:.2}",
        k.mass, k.total_momentum, k.total_energy, k.rapidity, k.cos_theta_star
    ));
    ui.label(format!(
        "mu-: E {:.1}, p = ({:.1}, {:.1}, {:.1}) GeV    mu+: E {:.1}, p = ({:.1}, {:.1}, {:.1}) GeV",
        a[0], a[1], a[2], a[3], b[0], b[1], b[2], b[3]
    ));
    let size = Vec2::new(180.0, 165.0);
    ui.horizontal(|ui| {
        let transverse = [(a[1], a[2]), (b[1], b[2])];
        draw_plane(ui, size, "transverse plane", ("px", "py"), &transverse);
        // longitudinal: pz along x, signed pT (by the sign of py) along y, so back-to-back pairs stay back to back
        let signed_pt = |p: &[f64]| if p[2] < 0.0 { -pt(p) } else { pt(p) };
        let longitudinal = [(a[3], signed_pt(a)), (b[3], signed_pt(b))];
        draw_plane(ui, size, "longitudinal plane", ("pz", "pT"), &longitudinal);
    });
}

fn draw_plane(
    ui: &mut egui::Ui,
    size: Vec2,
    title: &str,
    axes: (&str, &str),
    arrows: &[(f64, f64); 2],
) {
    let (response, painter) = ui.allocate_painter(size, egui::Sense::hover());
    let rect = response.rect;
    let visuals = ui.visuals();
    painter.rect_filled(rect, 4.0, visuals.extreme_bg_color);
    // The arrows live between the title's band at the top and the scale's at the bottom, with
    // room past their tips for the muons' names, so that no text lands on an arrow.
    const TITLE_BAND: f32 = 20.0;
    const SCALE_BAND: f32 = 18.0;
    const NAME_ROOM: f32 = 16.0;
    let c = Pos2::new(
        rect.center().x,
        (rect.top() + TITLE_BAND + rect.bottom() - SCALE_BAND) / 2.0,
    );
    let radius =
        (rect.width() / 2.0).min((rect.height() - TITLE_BAND - SCALE_BAND) / 2.0) - NAME_ROOM;
    let axis = Stroke::new(1.0, visuals.weak_text_color());
    painter.line_segment(
        [
            Pos2::new(rect.left() + 6.0, c.y),
            Pos2::new(rect.right() - 6.0, c.y),
        ],
        axis,
    );
    painter.line_segment(
        [
            Pos2::new(c.x, rect.top() + TITLE_BAND),
            Pos2::new(c.x, rect.bottom() - SCALE_BAND),
        ],
        axis,
    );
    let font = egui::FontId::proportional(11.0);
    painter.text(
        rect.left_top() + Vec2::new(6.0, 4.0),
        egui::Align2::LEFT_TOP,
        title,
        font.clone(),
        visuals.text_color(),
    );
    // Each axis is named at its positive end, moved aside when an arrow points up and right
    // (where both names sit otherwise).
    let upper_right = arrows.iter().any(|&(x, y)| x > 0.0 && y > 0.0);
    let (pos, align) = if upper_right {
        (
            Pos2::new(rect.right() - 6.0, c.y + 4.0),
            egui::Align2::RIGHT_TOP,
        )
    } else {
        (
            Pos2::new(rect.right() - 6.0, c.y - 4.0),
            egui::Align2::RIGHT_BOTTOM,
        )
    };
    painter.text(pos, align, axes.0, font.clone(), visuals.weak_text_color());
    let (pos, align) = if upper_right {
        (
            Pos2::new(c.x - 4.0, rect.top() + TITLE_BAND),
            egui::Align2::RIGHT_TOP,
        )
    } else {
        (
            Pos2::new(c.x + 4.0, rect.top() + TITLE_BAND),
            egui::Align2::LEFT_TOP,
        )
    };
    painter.text(pos, align, axes.1, font.clone(), visuals.weak_text_color());
    let longest = arrows.iter().map(|(x, y)| x.hypot(*y)).fold(0.0, f64::max);
    let scale = if longest > 0.0 && longest.is_finite() {
        radius as f64 / longest
    } else {
        0.0
    };
    for ((x, y), (colour, name)) in arrows.iter().zip([(MU_MINUS, "μ−"), (MU_PLUS, "μ+")]) {
        let v = Vec2::new((x * scale) as f32, -(y * scale) as f32);
        painter.arrow(c, v, Stroke::new(2.5, colour));
        let past_tip = if v.length() > 0.0 {
            v + v.normalized() * (NAME_ROOM * 0.6)
        } else {
            Vec2::new(0.0, -NAME_ROOM * 0.6)
        };
        painter.text(
            c + past_tip,
            egui::Align2::CENTER_CENTER,
            name,
            font.clone(),
            colour,
        );
    }
    painter.text(
        rect.left_bottom() + Vec2::new(6.0, -4.0),
        egui::Align2::LEFT_BOTTOM,
        format!("longest {longest:.1} GeV"),
        font,
        visuals.weak_text_color(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn muon_event_kinematics_from_features() {
        // a Z at rest decaying along x: mass 91.2, no total momentum
        let e = 45.6f64;
        let p = (e * e - data::MUON_MASS * data::MUON_MASS).sqrt();
        let k = data::pair_kinematics(&[e, p, 0.0, 0.0, e, -p, 0.0, 0.0]);
        assert!(
            (k.mass - 91.2).abs() < 1e-9
                && k.total_momentum.abs() < 1e-12
                && k.cos_theta_star.abs() < 1e-12
        );
    }
}
