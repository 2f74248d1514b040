//! Pen skeletons of the ten digits: each digit has several allographs (ways people write it),
//! each allograph is a few strokes, each stroke a smooth curve through its points or a
//! polyline with sharp corners. Coordinates are in a unit box, x to the right, y down; the
//! renderer centres, slants, scales and jitters them.

/// How a stroke joins its points.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pen {
    /// a Catmull-Rom curve through every point
    Smooth,
    /// straight segments with corners
    Corner,
}

/// One pen-down movement.
#[derive(Clone, Copy, Debug)]
pub struct Stroke {
    pub pen: Pen,
    pub points: &'static [(f32, f32)],
}

const fn s(points: &'static [(f32, f32)]) -> Stroke {
    Stroke {
        pen: Pen::Smooth,
        points,
    }
}

const fn c(points: &'static [(f32, f32)]) -> Stroke {
    Stroke {
        pen: Pen::Corner,
        points,
    }
}

/// A way of writing one digit.
#[derive(Clone, Copy, Debug)]
pub struct Allograph {
    pub name: &'static str,
    pub strokes: &'static [Stroke],
}

const fn a(name: &'static str, strokes: &'static [Stroke]) -> Allograph {
    Allograph { name, strokes }
}

/// The oval zero's ring, drawn on past its start as a pen closing a loop does.
const ZERO_OVAL: [(f32, f32); 10] = [
    (0.5, 0.0),
    (0.78, 0.15),
    (0.86, 0.5),
    (0.76, 0.86),
    (0.5, 1.0),
    (0.24, 0.86),
    (0.14, 0.5),
    (0.22, 0.15),
    (0.5, 0.0),
    (0.74, 0.12),
];

const ZERO: &[Allograph] = &[
    a("oval", &[s(&ZERO_OVAL)]),
    a(
        "round",
        &[s(&[
            (0.55, 0.02),
            (0.85, 0.25),
            (0.85, 0.72),
            (0.55, 1.0),
            (0.2, 0.85),
            (0.12, 0.45),
            (0.3, 0.08),
            (0.55, 0.02),
        ])],
    ),
    a(
        "slashed",
        &[
            // the oval's ring without its overlap past the start
            s(ZERO_OVAL.split_at(9).0),
            c(&[(0.3, 0.8), (0.7, 0.2)]),
        ],
    ),
];

const ONE: &[Allograph] = &[
    a("stick", &[c(&[(0.5, 0.0), (0.5, 1.0)])]),
    a("serif", &[c(&[(0.28, 0.22), (0.55, 0.0), (0.55, 1.0)])]),
    a(
        "serif and base",
        &[
            c(&[(0.28, 0.22), (0.52, 0.0), (0.52, 1.0)]),
            c(&[(0.3, 1.0), (0.75, 1.0)]),
        ],
    ),
];

const TWO: &[Allograph] = &[
    a(
        "plain",
        &[
            s(&[
                (0.18, 0.25),
                (0.4, 0.02),
                (0.7, 0.05),
                (0.8, 0.3),
                (0.62, 0.58),
                (0.18, 1.0),
            ]),
            c(&[(0.18, 1.0), (0.85, 1.0)]),
        ],
    ),
    a(
        "looped",
        &[s(&[
            (0.18, 0.22),
            (0.42, 0.0),
            (0.72, 0.06),
            (0.78, 0.32),
            (0.55, 0.62),
            (0.2, 0.95),
            (0.15, 0.82),
            (0.32, 0.8),
            (0.45, 0.95),
            (0.85, 0.98),
        ])],
    ),
    a(
        "hooked",
        &[
            s(&[
                (0.2, 0.2),
                (0.45, 0.0),
                (0.75, 0.1),
                (0.75, 0.4),
                (0.45, 0.7),
                (0.2, 1.0),
            ]),
            s(&[(0.2, 1.0), (0.5, 0.93), (0.85, 0.98)]),
        ],
    ),
];

const THREE: &[Allograph] = &[
    a(
        "round",
        &[
            s(&[
                (0.2, 0.12),
                (0.48, 0.0),
                (0.74, 0.12),
                (0.72, 0.36),
                (0.42, 0.48),
            ]),
            s(&[
                (0.42, 0.48),
                (0.74, 0.58),
                (0.8, 0.8),
                (0.55, 1.0),
                (0.18, 0.9),
            ]),
        ],
    ),
    a(
        "flat top",
        &[
            c(&[(0.2, 0.0), (0.8, 0.0), (0.42, 0.42)]),
            s(&[
                (0.42, 0.42),
                (0.76, 0.55),
                (0.8, 0.8),
                (0.55, 1.0),
                (0.18, 0.9),
            ]),
        ],
    ),
    a(
        "one stroke",
        &[s(&[
            (0.22, 0.1),
            (0.5, 0.0),
            (0.75, 0.15),
            (0.65, 0.4),
            (0.45, 0.48),
            (0.68, 0.55),
            (0.82, 0.78),
            (0.6, 0.98),
            (0.2, 0.92),
        ])],
    ),
];

const FOUR: &[Allograph] = &[
    a(
        "closed",
        &[c(&[(0.68, 1.0), (0.68, 0.0), (0.12, 0.66), (0.88, 0.66)])],
    ),
    a(
        "open",
        &[
            c(&[(0.28, 0.0), (0.18, 0.62), (0.85, 0.62)]),
            c(&[(0.66, 0.22), (0.66, 1.0)]),
        ],
    ),
    a(
        "open tall",
        &[
            c(&[(0.22, 0.05), (0.18, 0.55), (0.85, 0.55)]),
            c(&[(0.7, 0.0), (0.66, 1.0)]),
        ],
    ),
];

const FIVE: &[Allograph] = &[
    a(
        "flag",
        &[
            c(&[(0.3, 0.0), (0.26, 0.45)]),
            s(&[
                (0.26, 0.45),
                (0.5, 0.37),
                (0.77, 0.52),
                (0.76, 0.84),
                (0.5, 1.0),
                (0.18, 0.9),
            ]),
            c(&[(0.3, 0.0), (0.78, 0.0)]),
        ],
    ),
    a(
        "one stroke",
        &[
            c(&[(0.78, 0.0), (0.3, 0.0), (0.25, 0.45)]),
            s(&[
                (0.25, 0.45),
                (0.5, 0.38),
                (0.78, 0.55),
                (0.74, 0.86),
                (0.48, 1.0),
                (0.18, 0.88),
            ]),
        ],
    ),
];

const SIX: &[Allograph] = &[
    a(
        "curl",
        &[s(&[
            (0.72, 0.04),
            (0.45, 0.1),
            (0.26, 0.4),
            (0.2, 0.72),
            (0.36, 0.98),
            (0.64, 0.95),
            (0.76, 0.72),
            (0.56, 0.54),
            (0.3, 0.6),
            (0.22, 0.72),
        ])],
    ),
    a(
        "straight back",
        &[
            c(&[(0.62, 0.0), (0.25, 0.62)]),
            s(&[
                (0.25, 0.62),
                (0.3, 0.92),
                (0.55, 1.0),
                (0.76, 0.8),
                (0.62, 0.55),
                (0.38, 0.55),
                (0.25, 0.65),
            ]),
        ],
    ),
];

const SEVEN: &[Allograph] = &[
    a("plain", &[c(&[(0.15, 0.0), (0.85, 0.0), (0.4, 1.0)])]),
    a(
        "barred",
        &[
            c(&[(0.15, 0.0), (0.85, 0.0), (0.42, 1.0)]),
            c(&[(0.36, 0.52), (0.78, 0.52)]),
        ],
    ),
    a(
        "curved stem",
        &[
            c(&[(0.15, 0.05), (0.18, 0.0), (0.82, 0.0)]),
            s(&[(0.82, 0.0), (0.6, 0.4), (0.48, 0.7), (0.44, 1.0)]),
        ],
    ),
];

const EIGHT: &[Allograph] = &[
    a(
        "figure",
        &[s(&[
            (0.5, 0.48),
            (0.74, 0.34),
            (0.7, 0.08),
            (0.5, 0.0),
            (0.3, 0.08),
            (0.26, 0.3),
            (0.5, 0.48),
            (0.78, 0.68),
            (0.72, 0.95),
            (0.5, 1.0),
            (0.28, 0.95),
            (0.22, 0.68),
            (0.5, 0.48),
        ])],
    ),
    a(
        "two loops",
        &[
            s(&[
                (0.5, 0.0),
                (0.72, 0.12),
                (0.7, 0.36),
                (0.5, 0.46),
                (0.3, 0.36),
                (0.28, 0.12),
                (0.5, 0.0),
            ]),
            s(&[
                (0.5, 0.46),
                (0.8, 0.6),
                (0.78, 0.9),
                (0.5, 1.0),
                (0.22, 0.9),
                (0.2, 0.6),
                (0.5, 0.46),
            ]),
        ],
    ),
];

const NINE: &[Allograph] = &[
    a(
        "straight stem",
        &[
            s(&[
                (0.74, 0.25),
                (0.58, 0.03),
                (0.32, 0.05),
                (0.22, 0.26),
                (0.36, 0.46),
                (0.62, 0.44),
                (0.74, 0.25),
            ]),
            c(&[(0.74, 0.2), (0.68, 1.0)]),
        ],
    ),
    a(
        "curved stem",
        &[s(&[
            (0.76, 0.18),
            (0.55, 0.02),
            (0.3, 0.08),
            (0.24, 0.3),
            (0.42, 0.45),
            (0.7, 0.36),
            (0.76, 0.18),
            (0.74, 0.6),
            (0.62, 0.88),
            (0.4, 1.0),
        ])],
    ),
];

/// Every allograph of `digit` (0..=9; larger values wrap).
pub fn allographs(digit: u8) -> &'static [Allograph] {
    match digit % 10 {
        0 => ZERO,
        1 => ONE,
        2 => TWO,
        3 => THREE,
        4 => FOUR,
        5 => FIVE,
        6 => SIX,
        7 => SEVEN,
        8 => EIGHT,
        _ => NINE,
    }
}
