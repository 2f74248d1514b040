//! Text and numbers on figures: the bundled font, text styles and sizes, tick and value labels.

use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Result, ensure};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

const FONT: &str = "sans-serif";
pub(super) const TITLE_SIZE: f64 = 40.0;
pub(super) const AXIS_DESC_SIZE: f64 = 32.0;
pub(super) const TICK_SIZE: f64 = 26.0;
pub(super) const LEGEND_SIZE: f64 = 26.0;
pub(super) const TEXT: RGBColor = RGBColor(20, 20, 20);
pub(super) const GRID: RGBColor = RGBColor(225, 225, 225);

static FONT_ONCE: Once = Once::new();
static FONT_OK: AtomicBool = AtomicBool::new(false);

pub(super) fn ensure_font() -> Result<()> {
    FONT_ONCE.call_once(|| {
        let ok = plotters::style::register_font(
            FONT,
            FontStyle::Normal,
            epaint_default_fonts::UBUNTU_LIGHT,
        )
        .is_ok();
        FONT_OK.store(ok, Ordering::SeqCst);
    });
    ensure!(
        FONT_OK.load(Ordering::SeqCst),
        "could not load the bundled Ubuntu-Light font"
    );
    Ok(())
}

pub(super) fn font(size: f64) -> FontDesc<'static> {
    (FONT, size).into_font()
}

/// Width and height plotters will give `text` at `size`.
pub(super) fn text_size(text: &str, size: f64) -> u32 {
    font(size)
        .box_size(text)
        .map(|(w, _)| w)
        .unwrap_or((text.chars().count() as f64 * size * 0.55) as u32)
}

/// `text`, shortened with an ellipsis until it is at most `max_w` px wide at `size`.
pub(super) fn fit_text(text: &str, size: f64, max_w: u32) -> String {
    if text_size(text, size) <= max_w {
        return text.to_string();
    }
    let mut chars: Vec<char> = text.chars().collect();
    while !chars.is_empty() {
        chars.pop();
        let s: String = chars.iter().collect::<String>().trim_end().to_string() + "…";
        if text_size(&s, size) <= max_w {
            return s;
        }
    }
    String::new()
}

pub(super) fn style(size: f64, color: RGBColor, h: HPos, v: VPos) -> TextStyle<'static> {
    TextStyle {
        font: font(size),
        color: color.to_backend_color(),
        pos: Pos::new(h, v),
    }
}

pub(super) fn rgb(c: (u8, u8, u8)) -> RGBColor {
    RGBColor(c.0, c.1, c.2)
}

/// Labels for the ticks of a linear axis: the fewest decimals that tell the ticks apart exactly.
pub(super) fn linear_tick_format(keys: &[f64]) -> impl Fn(&f64) -> String + use<> {
    let mut sorted: Vec<f64> = keys.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    let max_abs = sorted.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let step = sorted
        .windows(2)
        .map(|w| w[1] - w[0])
        .filter(|d| *d > 0.0)
        .fold(f64::INFINITY, f64::min);
    let step = if step.is_finite() {
        step
    } else {
        max_abs.max(1.0)
    };
    let scientific = max_abs >= 1e5 || (max_abs > 0.0 && max_abs < 1e-3);
    let fmt = move |v: f64, d: usize| {
        if scientific {
            format!("{v:.d$e}")
        } else {
            format!("{v:.d$}")
        }
    };
    let decimals = (0..=10)
        .find(|&d| {
            sorted.iter().all(|&v| {
                fmt(v, d)
                    .parse::<f64>()
                    .map(|p| (p - v).abs() <= step * 1e-3)
                    .unwrap_or(false)
            })
        })
        .unwrap_or(10);
    move |v: &f64| {
        if v.abs() < step * 1e-6 {
            if scientific {
                "0".to_string()
            } else {
                fmt(0.0, decimals)
            }
        } else {
            fmt(*v, decimals)
        }
    }
}

/// A value on its own (log-axis ticks, colour-bar ends): up to 4 significant digits, no noise.
pub(super) fn fmt_number(v: f64) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    if v == 0.0 {
        return "0".into();
    }
    let a = v.abs();
    let close = |s: &str| {
        s.parse::<f64>()
            .map(|p| ((p - v) / v).abs() < 5e-4)
            .unwrap_or(false)
    };
    if (1e-3..1e5).contains(&a) {
        (0..=8)
            .map(|d| format!("{v:.d$}"))
            .find(|s| close(s))
            .unwrap_or_else(|| format!("{v}"))
    } else {
        (0..=4)
            .map(|d| format!("{v:.d$e}"))
            .find(|s| close(s))
            .unwrap_or_else(|| format!("{v:e}"))
    }
}

/// An R^2 to 3 decimals, "n/a" when there is none.
pub(super) fn fmt_r2(r2: f64) -> String {
    if r2.is_finite() {
        format!("{r2:.3}")
    } else {
        "n/a".into()
    }
}

/// 3 significant digits, for fitted coefficients.
pub(super) fn fmt_sig3(v: f64) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    let a = v.abs();
    if a == 0.0 {
        "0".into()
    } else if (1e-3..1e5).contains(&a) {
        let d = (2 - a.log10().floor() as i32).max(0) as usize;
        let s = format!("{v:.d$}");
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    } else {
        format!("{v:.2e}")
    }
}
