//! Relevance data sets: seeded generators with a known intrinsic dimension (circle, sphere,
//! e+e- -> mu+mu-, pp -> Z/gamma* -> mu+mu-) and readers of the user's own CSV tables and Les
//! Houches event files. Every event is one row of numeric features.

use std::path::{Path, PathBuf};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

/// Events a generator makes unless told otherwise.
pub const DEFAULT_EVENTS: usize = 20_000;
/// Every fifth event (index % 5 == 4) is held out for relevance and inspection.
pub const HELD_OUT_EVERY: usize = 5;
/// The largest file we agree to read as text.
const MAX_FILE_BYTES: u64 = 1 << 30;
/// A table wider than this is not a feature table we can model.
pub const MAX_COLUMNS: usize = 1024;
/// The largest NUP an LHE event may declare.
const MAX_PARTICLES: usize = 10_000;

pub const MUON_MASS: f64 = 0.10566;
pub const EE_SQRT_S: f64 = 91.2;
/// Forward-backward asymmetry of e+e- -> mu+mu- at the Z pole, A_FB^{0,mu} = 0.0169 (LEP,
/// PDG electroweak review).
pub const A_FB: f64 = 0.0169;
pub const PP_SQRT_S: f64 = 13_000.0;
pub const Z_MASS: f64 = 91.1876;
pub const Z_WIDTH: f64 = 2.4952;
pub const PP_MASS_RANGE: (f64, f64) = (60.0, 120.0);
/// Exponent b of the toy parton density x f(x) = (1 - x)^b used for both partons.
pub const PDF_POWER: i32 = 5;
/// Radial noise (standard deviation) of the circle's points.
pub const CIRCLE_NOISE: f64 = 0.005;

/// Feature names of a muon pair, in order: (E, px, py, pz) of mu-, then of mu+ (GeV).
pub const MUON_COLUMNS: [&str; 8] = [
    "E(mu-)", "px(mu-)", "py(mu-)", "pz(mu-)", "E(mu+)", "px(mu+)", "py(mu+)", "pz(mu+)",
];

/// Why data could not be read. Every message names the file, and the line when there is one.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DataError {
    #[error("{file}:{line}: {reason}")]
    AtLine {
        file: String,
        line: usize,
        reason: String,
    },
    #[error("{file}: {reason}")]
    File { file: String, reason: String },
    #[error("{0}")]
    Spec(String),
}

fn at(file: &str, line: usize, reason: impl Into<String>) -> DataError {
    DataError::AtLine {
        file: file.into(),
        line,
        reason: reason.into(),
    }
}

fn whole(file: &str, reason: impl Into<String>) -> DataError {
    DataError::File {
        file: file.into(),
        reason: reason.into(),
    }
}

/// The generated data sets, with the dimension of the manifold their events lie on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Generator {
    Circle,
    Sphere,
    EeMuMu,
    PpMuMu,
}

pub const GENERATORS: [Generator; 4] = [
    Generator::Circle,
    Generator::Sphere,
    Generator::EeMuMu,
    Generator::PpMuMu,
];

impl Generator {
    pub fn name(self) -> &'static str {
        match self {
            Generator::Circle => "circle",
            Generator::Sphere => "sphere",
            Generator::EeMuMu => "ee-mumu",
            Generator::PpMuMu => "pp-mumu",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        GENERATORS.into_iter().find(|g| g.name() == name)
    }

    /// circle: the angle; sphere: two angles; ee-mumu: cos theta and phi; pp-mumu: mass,
    /// rapidity, cos theta* and phi.
    pub fn intrinsic_dim(self) -> usize {
        match self {
            Generator::Circle => 1,
            Generator::Sphere | Generator::EeMuMu => 2,
            Generator::PpMuMu => 4,
        }
    }
}

/// Where events come from, as `--data` names it.
#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    Generated(Generator),
    Csv(PathBuf),
    /// a Les Houches file and the PDG ids of the two particles to keep
    Lhe(PathBuf, [i32; 2]),
}

impl Source {
    pub fn parse(spec: &str) -> Result<Self, DataError> {
        let spec = spec.trim();
        if let Some(g) = Generator::from_name(spec) {
            return Ok(Source::Generated(g));
        }
        let nonempty = |p: &str, kind: &str| {
            if p.trim().is_empty() {
                Err(DataError::Spec(format!(
                    "`{spec}`: give a file after `{kind}:`"
                )))
            } else {
                Ok(PathBuf::from(p.trim()))
            }
        };
        if let Some(p) = spec.strip_prefix("csv:") {
            return Ok(Source::Csv(nonempty(p, "csv")?));
        }
        if let Some(p) = spec.strip_prefix("lhe:") {
            return Ok(Source::Lhe(nonempty(p, "lhe")?, [13, -13]));
        }
        Err(DataError::Spec(format!(
            "unknown data `{spec}` for vae-relevance (one of: circle, sphere, ee-mumu, pp-mumu, csv:PATH, lhe:PATH)"
        )))
    }
}

/// One per-event quantity to colour, correlate or read against the latents.
#[derive(Clone, Debug, PartialEq)]
pub struct Observable {
    pub name: String,
    pub values: Vec<f32>,
}

/// Events as rows of features, with what is known about them.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// the `--data` spec that made it
    pub source: String,
    pub columns: Vec<String>,
    /// row-major, `len() x columns.len()`
    pub features: Vec<f32>,
    pub observables: Vec<Observable>,
    /// known for generated data
    pub intrinsic_dim: Option<usize>,
}

impl Dataset {
    pub fn dim(&self) -> usize {
        self.columns.len()
    }

    pub fn len(&self) -> usize {
        self.features.len() / self.dim().max(1)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn row(&self, i: usize) -> &[f32] {
        let d = self.dim();
        &self.features[i * d..(i + 1) * d]
    }

    pub fn is_held_out(i: usize) -> bool {
        i % HELD_OUT_EVERY == HELD_OUT_EVERY - 1
    }

    pub fn train_indices(&self) -> Vec<usize> {
        (0..self.len()).filter(|&i| !Self::is_held_out(i)).collect()
    }

    pub fn held_out_indices(&self) -> Vec<usize> {
        (0..self.len()).filter(|&i| Self::is_held_out(i)).collect()
    }

    /// Features of the chosen rows, concatenated.
    pub fn gather(&self, rows: &[usize]) -> Vec<f32> {
        let mut out = Vec::with_capacity(rows.len() * self.dim());
        for &i in rows {
            out.extend_from_slice(self.row(i));
        }
        out
    }

    /// True when every row is (E, px, py, pz) of mu- then mu+.
    pub fn is_muon_pair(&self) -> bool {
        is_muon_columns(&self.columns)
    }

    /// Generate, or read, the events that `spec` names. `events` and `seed` apply to generators.
    pub fn load(spec: &str, events: usize, seed: u64) -> Result<Self, DataError> {
        let (path, data) = match Source::parse(spec)? {
            Source::Generated(g) => return Ok(generate(g, events, seed)),
            Source::Csv(path) => {
                let text = read_text(&path)?;
                let table = parse_csv(&text, &path.display().to_string())?;
                (path, table.into_dataset(spec.trim()))
            }
            Source::Lhe(path, ids) => {
                let text = read_text(&path)?;
                let events = parse_lhe(&text, &path.display().to_string(), ids)?;
                (path, muon_dataset(spec.trim(), events, None, true))
            }
        };
        // every HELD_OUT_EVERY-th event is held out: with fewer, nothing is left to measure on
        if data.len() < HELD_OUT_EVERY {
            return Err(whole(
                &path.display().to_string(),
                format!(
                    "{} events are too few (at least {HELD_OUT_EVERY}: every {HELD_OUT_EVERY}th is held out for measuring)",
                    data.len()
                ),
            ));
        }
        Ok(data)
    }
}

pub fn is_muon_columns(columns: &[String]) -> bool {
    columns.len() == MUON_COLUMNS.len() && columns.iter().zip(MUON_COLUMNS).all(|(a, b)| a == b)
}

/// Read a whole file as text, refusing directories and files too large to be event tables.
fn read_text(path: &Path) -> Result<String, DataError> {
    let name = path.display().to_string();
    let len = crate::error::regular_file_len(path).map_err(|e| whole(&name, e.to_string()))?;
    if len > MAX_FILE_BYTES {
        return Err(whole(
            &name,
            format!("{len} bytes is too large (at most {MAX_FILE_BYTES})"),
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| whole(&name, e.to_string()))?;
    match String::from_utf8(bytes) {
        Ok(s) => Ok(s),
        Err(e) => {
            let good = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            let line = good.iter().filter(|&&b| b == b'\n').count() + 1;
            Err(at(&name, line, "not text (invalid UTF-8)"))
        }
    }
}

// ---------------------------------------------------------------- generators

/// Seeded events of one generator (the same seed gives the same events, bit for bit).
pub fn generate(g: Generator, events: usize, seed: u64) -> Dataset {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5e_ed0f_da7a);
    let n = events.max(HELD_OUT_EVERY);
    match g {
        Generator::Circle => {
            let mut features = Vec::with_capacity(2 * n);
            let mut angle = Vec::with_capacity(n);
            for _ in 0..n {
                let phi = rng.random_range(-std::f64::consts::PI..std::f64::consts::PI);
                let noise: f64 = rng.sample(StandardNormal);
                let r = 1.0 + CIRCLE_NOISE * noise;
                features.extend([(r * phi.cos()) as f32, (r * phi.sin()) as f32]);
                angle.push(phi as f32);
            }
            Dataset {
                source: g.name().into(),
                columns: vec!["x".into(), "y".into()],
                features,
                observables: vec![Observable {
                    name: "φ (angle)".into(),
                    values: angle,
                }],
                intrinsic_dim: Some(1),
            }
        }
        Generator::Sphere => {
            let mut features = Vec::with_capacity(3 * n);
            let (mut cos_theta, mut phi_all) = (Vec::with_capacity(n), Vec::with_capacity(n));
            for _ in 0..n {
                let c = rng.random_range(-1.0..=1.0f64);
                let phi = rng.random_range(-std::f64::consts::PI..std::f64::consts::PI);
                let s = (1.0 - c * c).max(0.0).sqrt();
                features.extend([(s * phi.cos()) as f32, (s * phi.sin()) as f32, c as f32]);
                cos_theta.push(c as f32);
                phi_all.push(phi as f32);
            }
            Dataset {
                source: g.name().into(),
                columns: vec!["x".into(), "y".into(), "z".into()],
                features,
                observables: vec![
                    Observable {
                        name: "cos θ".into(),
                        values: cos_theta,
                    },
                    Observable {
                        name: "φ".into(),
                        values: phi_all,
                    },
                ],
                intrinsic_dim: Some(2),
            }
        }
        Generator::EeMuMu => {
            let events = (0..n).map(|_| ee_mumu_event(&mut rng)).collect();
            muon_dataset(g.name(), events, Some(2), false)
        }
        Generator::PpMuMu => {
            let events = (0..n).map(|_| pp_mumu_event(&mut rng)).collect();
            muon_dataset(g.name(), events, Some(4), true)
        }
    }
}

/// cos(theta) from dsigma/dcos ~ 1 + cos^2 + (8/3) a_fb cos, by rejection (exact).
fn sample_cos_theta(rng: &mut StdRng, a_fb: f64) -> f64 {
    let max = 2.0 + 8.0 / 3.0 * a_fb.abs();
    loop {
        let c = rng.random_range(-1.0..=1.0f64);
        let f = 1.0 + c * c + 8.0 / 3.0 * a_fb * c;
        if rng.random::<f64>() * max <= f {
            return c;
        }
    }
}

/// Two back-to-back muons of momentum `p` (mu- along (theta, phi)), each of energy `e`.
fn back_to_back(e: f64, p: f64, cos_theta: f64, phi: f64) -> ([f64; 4], [f64; 4]) {
    let s = (1.0 - cos_theta * cos_theta).max(0.0).sqrt();
    let mu_minus = [e, p * s * phi.cos(), p * s * phi.sin(), p * cos_theta];
    let mu_plus = [e, -mu_minus[1], -mu_minus[2], -mu_minus[3]];
    (mu_minus, mu_plus)
}

/// e+e- -> mu+mu- at sqrt(s) = 91.2 GeV in the centre-of-mass frame, e- beam along +z;
/// theta is the angle of the mu- to the e- beam.
pub fn ee_mumu_event(rng: &mut StdRng) -> [f64; 8] {
    let e = EE_SQRT_S / 2.0;
    let p = (e * e - MUON_MASS * MUON_MASS).sqrt();
    let c = sample_cos_theta(rng, A_FB);
    let phi = rng.random_range(-std::f64::consts::PI..std::f64::consts::PI);
    let (a, b) = back_to_back(e, p, c, phi);
    [a[0], a[1], a[2], a[3], b[0], b[1], b[2], b[3]]
}

/// p p -> Z/gamma* -> mu+mu- at 13 TeV with no transverse recoil.
///
/// * dimuon mass m: the (non-relativistic) Breit-Wigner of the Z, a Cauchy distribution of
///   centre 91.1876 GeV and half-width 2.4952/2 GeV, truncated to [60, 120] GeV and sampled
///   exactly by inverting its CDF;
/// * rapidity y: the partons carry x1 = sqrt(tau) e^y and x2 = sqrt(tau) e^-y with
///   tau = m^2 / s, so m^2 = x1 x2 s and y = ln(x1/x2)/2. With a toy parton density
///   f(x) = (1 - x)^5 / x for both, the cross-section at fixed tau is proportional to
///   f(x1) f(x2) dx1 dx2 = (1 - x1)^5 (1 - x2)^5 dtau dy / tau, so y is drawn uniformly over
///   |y| < ln(sqrt(s)/m) and kept with probability (1 - x1)^5 (1 - x2)^5;
/// * cos theta* from 1 + cos^2 (the pp initial state averages the asymmetry away), phi
///   uniform, in the dimuon rest frame with the z axis along the beam;
/// * then a boost along z by y to the lab.
pub fn pp_mumu_event(rng: &mut StdRng) -> [f64; 8] {
    let half = Z_WIDTH / 2.0;
    let (lo, hi) = (
        ((PP_MASS_RANGE.0 - Z_MASS) / half).atan(),
        ((PP_MASS_RANGE.1 - Z_MASS) / half).atan(),
    );
    let m = Z_MASS + half * rng.random_range(lo..hi).tan();
    let sqrt_tau = m / PP_SQRT_S;
    let y_max = -sqrt_tau.ln();
    let y = loop {
        let y = rng.random_range(-y_max..y_max);
        let (x1, x2) = (sqrt_tau * y.exp(), sqrt_tau * (-y).exp());
        if x1 < 1.0 && x2 < 1.0 {
            let w = ((1.0 - x1) * (1.0 - x2)).powi(PDF_POWER);
            if rng.random::<f64>() <= w {
                break y;
            }
        }
    };
    let c = sample_cos_theta(rng, 0.0);
    let phi = rng.random_range(-std::f64::consts::PI..std::f64::consts::PI);
    let e = m / 2.0;
    let p = (e * e - MUON_MASS * MUON_MASS).max(0.0).sqrt();
    let (a, b) = back_to_back(e, p, c, phi);
    let (a, b) = (boost_z(a, y), boost_z(b, y));
    [a[0], a[1], a[2], a[3], b[0], b[1], b[2], b[3]]
}

/// Boost a four-momentum (E, px, py, pz) along z by rapidity `y`.
pub fn boost_z(p: [f64; 4], y: f64) -> [f64; 4] {
    let (ch, sh) = (y.cosh(), y.sinh());
    [ch * p[0] + sh * p[3], p[1], p[2], sh * p[0] + ch * p[3]]
}

/// Physical quantities of a muon pair event (E, px, py, pz of mu- then mu+).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PairKinematics {
    pub mass: f64,
    pub rapidity: f64,
    /// of the mu- in the pair's longitudinal rest frame
    pub cos_theta_star: f64,
    /// azimuth of the mu-
    pub phi: f64,
    pub pt: f64,
    /// |p(mu-) + p(mu+)|
    pub total_momentum: f64,
    pub total_energy: f64,
}

pub fn pair_kinematics(ev: &[f64]) -> PairKinematics {
    let (a, b) = (&ev[0..4], &ev[4..8]);
    let e = a[0] + b[0];
    let (px, py, pz) = (a[1] + b[1], a[2] + b[2], a[3] + b[3]);
    let p2 = px * px + py * py + pz * pz;
    let mass = (e * e - p2).max(0.0).sqrt();
    let rapidity = if e - pz > 0.0 && e + pz > 0.0 {
        0.5 * ((e + pz) / (e - pz)).ln()
    } else {
        0.0
    };
    let back = boost_z([a[0], a[1], a[2], a[3]], -rapidity);
    let p_star = (back[1] * back[1] + back[2] * back[2] + back[3] * back[3]).sqrt();
    let cos_theta_star = if p_star > 0.0 { back[3] / p_star } else { 0.0 };
    PairKinematics {
        mass,
        rapidity,
        cos_theta_star,
        phi: a[2].atan2(a[1]),
        pt: a[1].hypot(a[2]),
        total_momentum: p2.sqrt(),
        total_energy: e,
    }
}

/// Muon-pair events as a data set with their physical observables. `longitudinal`: the pair
/// moves along z (pp collisions, files), so mass and rapidity vary and are worth showing.
fn muon_dataset(
    source: &str,
    events: Vec<[f64; 8]>,
    intrinsic_dim: Option<usize>,
    longitudinal: bool,
) -> Dataset {
    let mut features = Vec::with_capacity(events.len() * 8);
    let names: &[&str] = if longitudinal {
        &["mass (GeV)", "rapidity y", "cos θ*", "φ", "pT(mu-) (GeV)"]
    } else {
        &["cos θ", "φ", "pT(mu-) (GeV)"]
    };
    let mut observables: Vec<Observable> = names
        .iter()
        .map(|n| Observable {
            name: n.to_string(),
            values: Vec::with_capacity(events.len()),
        })
        .collect();
    for ev in &events {
        features.extend(ev.iter().map(|&v| v as f32));
        let k = pair_kinematics(ev);
        let values: &[f64] = if longitudinal {
            &[k.mass, k.rapidity, k.cos_theta_star, k.phi, k.pt]
        } else {
            &[k.cos_theta_star, k.phi, k.pt]
        };
        for (o, v) in observables.iter_mut().zip(values) {
            o.values.push(*v as f32);
        }
    }
    Dataset {
        source: source.into(),
        columns: MUON_COLUMNS.iter().map(|s| s.to_string()).collect(),
        features,
        observables,
        intrinsic_dim,
    }
}

// ---------------------------------------------------------------- CSV

/// A numeric table read from CSV.
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    pub columns: Vec<String>,
    /// row-major
    pub values: Vec<f32>,
}

impl Table {
    pub fn rows(&self) -> usize {
        self.values.len() / self.columns.len().max(1)
    }

    /// Every column is a feature and an observable; a table of muon pairs gets the pair's
    /// observables as well.
    pub fn into_dataset(self, source: &str) -> Dataset {
        if is_muon_columns(&self.columns) {
            let events = self
                .values
                .chunks_exact(8)
                .map(|r| std::array::from_fn(|i| r[i] as f64))
                .collect();
            return muon_dataset(source, events, None, true);
        }
        let d = self.columns.len();
        let observables = (0..d)
            .map(|j| Observable {
                name: self.columns[j].clone(),
                values: self.values.iter().skip(j).step_by(d).copied().collect(),
            })
            .collect();
        Dataset {
            source: source.into(),
            columns: self.columns,
            features: self.values,
            observables,
            intrinsic_dim: None,
        }
    }
}

fn split_fields(line: &str) -> Vec<&str> {
    line.split(',')
        .map(|f| f.trim().trim_matches('"').trim())
        .collect()
}

fn shown(field: &str) -> String {
    let s: String = field.chars().take(24).collect();
    if s.len() < field.len() {
        format!("{s}…")
    } else {
        s
    }
}

/// Parse CSV text: a header row of names, then rows of numbers (comma-separated, blank lines
/// skipped). `name` is how errors refer to the file. Any text gives a table or an error
/// naming the line; none panics.
pub fn parse_csv(text: &str, name: &str) -> Result<Table, DataError> {
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_end_matches('\r')))
        .filter(|(_, l)| !l.trim().is_empty());
    let Some((header_line, header)) = lines.next() else {
        return Err(whole(
            name,
            "empty file, expected a header row of column names",
        ));
    };
    let header = header.trim_start_matches('\u{feff}');
    let columns: Vec<String> = split_fields(header)
        .iter()
        .enumerate()
        .map(|(j, f)| {
            if f.is_empty() {
                format!("column {}", j + 1)
            } else {
                f.to_string()
            }
        })
        .collect();
    if columns.len() > MAX_COLUMNS {
        return Err(at(
            name,
            header_line,
            format!(
                "{} columns, at most {MAX_COLUMNS} are supported",
                columns.len()
            ),
        ));
    }
    if let Some(f) = columns.iter().find(|c| c.parse::<f64>().is_ok()) {
        return Err(at(
            name,
            header_line,
            format!(
                "the first row should name the columns, but holds the number `{}`",
                shown(f)
            ),
        ));
    }
    let d = columns.len();
    let mut values = Vec::new();
    for (line_no, line) in lines {
        let fields = split_fields(line);
        if fields.len() != d {
            return Err(at(
                name,
                line_no,
                format!("{} fields, the header has {d}", fields.len()),
            ));
        }
        for (field, column) in fields.iter().zip(&columns) {
            let v: f64 = field.parse().map_err(|_| {
                at(
                    name,
                    line_no,
                    format!(
                        "column `{}` holds `{}`, not a number",
                        shown(column),
                        shown(field)
                    ),
                )
            })?;
            if !v.is_finite() || !(v as f32).is_finite() {
                return Err(at(
                    name,
                    line_no,
                    format!(
                        "column `{}` holds `{}`, not a finite number",
                        shown(column),
                        shown(field)
                    ),
                ));
            }
            values.push(v as f32);
        }
    }
    if values.is_empty() {
        return Err(at(name, header_line, "a header row but no rows of numbers"));
    }
    Ok(Table { columns, values })
}

// ---------------------------------------------------------------- Les Houches

/// Parse a Les Houches event file: in every `<event>` block the first line is
/// `NUP IDPRUP XWGTUP SCALUP AQEDUP AQCDUP`, then NUP particle lines
/// `IDUP ISTUP MOTHUP1 MOTHUP2 ICOLUP1 ICOLUP2 PUP1..5 VTIMUP SPINUP` with PUP = (px, py, pz,
/// E, m). From each event the first final-state (ISTUP = 1) particle with PDG id `ids[0]`,
/// then with `ids[1]`, become (E, px, py, pz) of each. Errors name the file and the line.
pub fn parse_lhe(text: &str, name: &str, ids: [i32; 2]) -> Result<Vec<[f64; 8]>, DataError> {
    let mut events = Vec::new();
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l.trim()));
    let mut last_line = 0;
    while let Some((line_no, line)) = lines.next() {
        last_line = line_no;
        if !(line.starts_with("<event>") || line.starts_with("<event ")) {
            continue;
        }
        let start = line_no;
        let truncated = |_| at(name, start, "the file ends inside this event");
        let ended_early = |n: usize, line: usize| {
            at(
                name,
                line,
                format!(
                    "the event that starts on line {start} ends after {n} of its particle lines"
                ),
            )
        };
        // first line of the event: NUP ...
        let (nup_line, nup_text) = lines
            .by_ref()
            .find(|(_, l)| !l.is_empty() && !l.starts_with('#'))
            .ok_or(())
            .map_err(truncated)?;
        if nup_text.starts_with("</event") {
            return Err(at(
                name,
                nup_line,
                format!("the event that starts on line {start} has no particles"),
            ));
        }
        let nup_field = nup_text.split_whitespace().next().unwrap_or("");
        let nup: usize = nup_field.parse().map_err(|_| {
            at(
                name,
                nup_line,
                format!("`{}` is not a particle count (NUP)", shown(nup_field)),
            )
        })?;
        if nup == 0 || nup > MAX_PARTICLES {
            return Err(at(
                name,
                nup_line,
                format!("NUP = {nup}, expected 1 to {MAX_PARTICLES} particles"),
            ));
        }
        let mut found: [Option<[f64; 4]>; 2] = [None, None];
        for k in 0..nup {
            let Some((pl, particle)) = lines.by_ref().find(|(_, l)| !l.is_empty()) else {
                return Err(at(name, start, "the file ends inside this event"));
            };
            if particle.starts_with('<') {
                return Err(ended_early(k, pl));
            }
            let fields: Vec<&str> = particle.split_whitespace().collect();
            if fields.len() < 13 {
                return Err(at(
                    name,
                    pl,
                    format!(
                        "a particle line needs 13 fields (IDUP ISTUP ... SPINUP), found {}",
                        fields.len()
                    ),
                ));
            }
            let int = |i: usize, what: &str| {
                fields[i].parse::<i64>().map_err(|_| {
                    at(
                        name,
                        pl,
                        format!("`{}` is not an integer ({what})", shown(fields[i])),
                    )
                })
            };
            let id = int(0, "IDUP")?;
            let status = int(1, "ISTUP")?;
            let mut pup = [0f64; 4];
            for (j, slot) in pup.iter_mut().enumerate() {
                let f = fields[6 + j];
                let v: f64 = f.parse().map_err(|_| {
                    at(
                        name,
                        pl,
                        format!("`{}` is not a number (PUP{})", shown(f), j + 1),
                    )
                })?;
                // the features are f32, as CSV columns are
                if !v.is_finite() || !(v as f32).is_finite() {
                    return Err(at(
                        name,
                        pl,
                        format!("`{}` is not a finite number (PUP{})", shown(f), j + 1),
                    ));
                }
                *slot = v;
            }
            if status == 1 {
                for (slot, &want) in found.iter_mut().zip(&ids) {
                    if slot.is_none() && id == want as i64 {
                        // PUP is (px, py, pz, E); features are (E, px, py, pz)
                        *slot = Some([pup[3], pup[0], pup[1], pup[2]]);
                        break;
                    }
                }
            }
        }
        // the rest of the block: optional extra lines up to </event>
        let mut closed = false;
        for (l, rest) in lines.by_ref() {
            last_line = l;
            if rest.starts_with("</event") {
                closed = true;
                break;
            }
            if rest.starts_with("<event") {
                return Err(at(
                    name,
                    l,
                    format!("a new event starts before the event of line {start} is closed"),
                ));
            }
        }
        if !closed {
            return Err(at(
                name,
                start,
                "the file ends inside this event (no </event>)",
            ));
        }
        match found {
            [Some(a), Some(b)] => events.push([a[0], a[1], a[2], a[3], b[0], b[1], b[2], b[3]]),
            _ => {
                let missing = if found[0].is_none() { ids[0] } else { ids[1] };
                return Err(at(
                    name,
                    start,
                    format!(
                        "event {} has no final-state (status 1) particle with PDG id {missing}",
                        events.len() + 1
                    ),
                ));
            }
        }
    }
    if events.is_empty() {
        return Err(whole(
            name,
            format!("no <event> blocks in {last_line} lines: not a Les Houches event file"),
        ));
    }
    Ok(events)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn energy_momentum(ev: &[f64; 8]) -> ([f64; 4], f64, f64) {
        let sum = [ev[0] + ev[4], ev[1] + ev[5], ev[2] + ev[6], ev[3] + ev[7]];
        let m = |e: f64, px: f64, py: f64, pz: f64| {
            (e * e - px * px - py * py - pz * pz).max(0.0).sqrt()
        };
        (
            sum,
            m(ev[0], ev[1], ev[2], ev[3]),
            m(ev[4], ev[5], ev[6], ev[7]),
        )
    }

    #[test]
    fn ee_mumu_conserves_energy_momentum_and_has_the_asymmetry() {
        let mut rng = StdRng::seed_from_u64(1);
        let n = 200_000;
        let mut forward = 0usize;
        let mut mean_c2 = 0.0;
        for _ in 0..n {
            let ev = ee_mumu_event(&mut rng);
            let (sum, m1, m2) = energy_momentum(&ev);
            assert!(
                (sum[0] - EE_SQRT_S).abs() < 1e-9 && sum[1..].iter().all(|p| p.abs() < 1e-12),
                "{sum:?}"
            );
            assert!(
                (m1 - MUON_MASS).abs() < 1e-3 && (m2 - MUON_MASS).abs() < 1e-3,
                "muon masses {m1} {m2}"
            );
            // f32 features: the pair still sums to zero momentum exactly (negation is exact)
            let f: Vec<f32> = ev.iter().map(|&v| v as f32).collect();
            assert_eq!([f[1] + f[5], f[2] + f[6], f[3] + f[7]], [0.0; 3]);
            let c = pair_kinematics(&ev).cos_theta_star;
            forward += usize::from(c > 0.0);
            mean_c2 += c * c / n as f64;
        }
        // A_FB = (F - B)/(F + B) for dsigma/dc ~ 1 + c^2 + 8/3 A c; <c^2> = 2/5 for 1 + c^2
        let afb = 2.0 * forward as f64 / n as f64 - 1.0;
        assert!((afb - A_FB).abs() < 0.006, "A_FB measured {afb}");
        assert!((mean_c2 - 0.4).abs() < 0.005, "<cos^2> = {mean_c2}");
    }

    #[test]
    fn pp_mumu_events_have_the_recipe_distributions() {
        let mut rng = StdRng::seed_from_u64(2);
        let n = 50_000;
        let mut masses = Vec::new();
        let mut max_abs_y = 0f64;
        let mut mean_c2 = 0.0;
        for _ in 0..n {
            let ev = pp_mumu_event(&mut rng);
            let (sum, m1, m2) = energy_momentum(&ev);
            // no transverse recoil, muons on shell
            assert!(sum[1].abs() < 1e-9 && sum[2].abs() < 1e-9);
            assert!(
                (m1 - MUON_MASS).abs() < 1e-2 && (m2 - MUON_MASS).abs() < 1e-2,
                "{m1} {m2}"
            );
            let k = pair_kinematics(&ev);
            assert!(
                (PP_MASS_RANGE.0 - 1e-6..=PP_MASS_RANGE.1 + 1e-6).contains(&k.mass),
                "mass {}",
                k.mass
            );
            // x1, x2 < 1 <=> |y| < ln(sqrt(s)/m)
            assert!(k.rapidity.abs() < (PP_SQRT_S / k.mass).ln());
            max_abs_y = max_abs_y.max(k.rapidity.abs());
            mean_c2 += k.cos_theta_star.powi(2) / n as f64;
            masses.push(k.mass);
        }
        masses.sort_by(f64::total_cmp);
        let median = masses[n / 2];
        let iqr = masses[3 * n / 4] - masses[n / 4];
        // Cauchy: median at the pole, interquartile range = full width (truncation barely matters)
        assert!((median - Z_MASS).abs() < 0.1, "median mass {median}");
        assert!((iqr - Z_WIDTH).abs() < 0.2, "IQR {iqr}");
        assert!(max_abs_y > 3.0, "rapidity reaches far forward: {max_abs_y}");
        assert!((mean_c2 - 0.4).abs() < 0.01, "<cos^2 theta*> = {mean_c2}");
    }

    #[test]
    fn generators_are_seeded_and_split() {
        let a = generate(Generator::Sphere, 1000, 7);
        let b = generate(Generator::Sphere, 1000, 7);
        let c = generate(Generator::Sphere, 1000, 8);
        assert_eq!(a.features, b.features);
        assert_ne!(a.features, c.features);
        assert_eq!(a.len(), 1000);
        assert_eq!(a.held_out_indices().len(), 200);
        assert_eq!(a.train_indices().len(), 800);
        for i in 0..a.len() {
            let r = a.row(i);
            let norm = (r[0] * r[0] + r[1] * r[1] + r[2] * r[2]).sqrt();
            assert!((norm - 1.0).abs() < 1e-5);
        }
        let circle = generate(Generator::Circle, 2000, 1);
        let radii: Vec<f32> = (0..circle.len())
            .map(|i| circle.row(i)[0].hypot(circle.row(i)[1]))
            .collect();
        let sd = (radii.iter().map(|r| (r - 1.0).powi(2)).sum::<f32>() / radii.len() as f32).sqrt();
        assert!(
            (sd - CIRCLE_NOISE as f32).abs() < 0.001,
            "radial noise {sd}"
        );
        let pp = generate(Generator::PpMuMu, 100, 1);
        assert!(
            pp.is_muon_pair()
                && pp.observables.len() == 5
                && pp.observables.iter().all(|o| o.values.len() == 100)
        );
    }

    #[test]
    fn csv_reads_and_errors_name_file_and_line() {
        let t = parse_csv("a, b\n1, 2.5\n\n-3,4e2\r\n", "t.csv").unwrap();
        assert_eq!(t.columns, ["a", "b"]);
        assert_eq!(t.values, [1.0, 2.5, -3.0, 400.0]);
        let err = |text: &str| parse_csv(text, "t.csv").unwrap_err().to_string();
        assert_eq!(
            err(""),
            "t.csv: empty file, expected a header row of column names"
        );
        assert_eq!(err("a,b\n"), "t.csv:1: a header row but no rows of numbers");
        assert_eq!(err("a,b\n1,2\n3\n"), "t.csv:3: 1 fields, the header has 2");
        assert_eq!(
            err("a,b\n1,2\n3,x\n"),
            "t.csv:3: column `b` holds `x`, not a number"
        );
        assert_eq!(
            err("a,b\n1,nan\n"),
            "t.csv:2: column `b` holds `nan`, not a finite number"
        );
        assert_eq!(
            err("a,b\n1,inf\n"),
            "t.csv:2: column `b` holds `inf`, not a finite number"
        );
        assert_eq!(
            err("a,b\n1,1e300\n"),
            "t.csv:2: column `b` holds `1e300`, not a finite number"
        );
        assert!(err("1,2\n3,4\n").starts_with("t.csv:1: the first row should name the columns"));
    }

    const LHE: &str = "<LesHouchesEvents version=\"3.0\">
<init>
2212 2212 6500 6500 0 0 0 0 3 1
</init>
<event>
 4 1 1.0 91.0 0.0078 0.118
  2 -1 0 0 501 0 0 0 100 100 0 0 9
 -2 -1 0 0 0 501 0 0 -20 20 0 0 9
 13 1 1 2 0 0 10 20 30 38.7 0.10566 0 9
-13 1 1 2 0 0 -10 -20 50 55.7 0.10566 0 9
</event>
<event>
 3 1 1.0 91.0 0.0078 0.118
 -13 1 1 2 0 0 1 2 3 3.8 0.10566 0 9
 22 1 1 2 0 0 1 1 1 1.7 0 0 9
 13 1 1 2 0 0 -1 -2 -3 3.8 0.10566 0 9
<mgrwt> extra </mgrwt>
</event>
</LesHouchesEvents>
";

    #[test]
    fn lhe_selects_final_state_muons_in_order() {
        let ev = parse_lhe(LHE, "z.lhe", [13, -13]).unwrap();
        assert_eq!(ev.len(), 2);
        assert_eq!(ev[0], [38.7, 10.0, 20.0, 30.0, 55.7, -10.0, -20.0, 50.0]);
        assert_eq!(ev[1], [3.8, -1.0, -2.0, -3.0, 3.8, 1.0, 2.0, 3.0]);
    }

    #[test]
    fn lhe_errors_name_file_and_line() {
        let err = |text: &str| parse_lhe(text, "z.lhe", [13, -13]).unwrap_err().to_string();
        // truncated in the middle of the second event
        let cut = &LHE[..LHE.find("22 1 1 2").unwrap()];
        assert_eq!(err(cut), "z.lhe:12: the file ends inside this event");
        let no_close = &LHE[..LHE.rfind("</event>").unwrap()];
        assert_eq!(
            err(no_close),
            "z.lhe:12: the file ends inside this event (no </event>)"
        );
        assert!(
            err("hello\nworld\n").starts_with("z.lhe: no <event> blocks"),
            "{}",
            err("hello\n")
        );
        let no_muon = LHE.replace("-13 1 1 2 0 0 -10", "-11 1 1 2 0 0 -10");
        assert_eq!(
            err(&no_muon),
            "z.lhe:5: event 1 has no final-state (status 1) particle with PDG id -13"
        );
        let bad_num = LHE.replace("10 20 30 38.7", "10 zz 30 38.7");
        assert_eq!(err(&bad_num), "z.lhe:9: `zz` is not a number (PUP2)");
        // finite as f64, infinite as the f32 feature it becomes
        let beyond_f32 = LHE.replace("10 20 30 38.7", "10 1e39 30 38.7");
        assert_eq!(
            err(&beyond_f32),
            "z.lhe:9: `1e39` is not a finite number (PUP2)"
        );
        let short = LHE.replace(" 13 1 1 2 0 0 10 20 30 38.7 0.10566 0 9", " 13 1 1 2");
        assert!(err(&short).starts_with("z.lhe:9: a particle line needs 13 fields"));
        let too_few = LHE.replacen(" 4 1 1.0", " 6 1 1.0", 1);
        assert_eq!(
            err(&too_few),
            "z.lhe:11: the event that starts on line 5 ends after 4 of its particle lines"
        );
        let bad_nup = LHE.replacen(" 4 1 1.0", " x 1 1.0", 1);
        assert_eq!(err(&bad_nup), "z.lhe:6: `x` is not a particle count (NUP)");
    }

    #[test]
    fn parsers_survive_arbitrary_text() {
        let mut rng = StdRng::seed_from_u64(3);
        let alphabet: Vec<char> = "0123456789.,-e <>/event\n\r#x\u{feff}é".chars().collect();
        for _ in 0..3000 {
            let len = rng.random_range(0..200);
            let s: String = (0..len)
                .map(|_| alphabet[rng.random_range(0..alphabet.len())])
                .collect();
            let _ = parse_csv(&s, "f.csv");
            let _ = parse_lhe(&s, "f.lhe", [13, -13]);
            let mut lhe = LHE.to_string();
            let cut = rng.random_range(0..lhe.len());
            if lhe.is_char_boundary(cut) {
                lhe.truncate(cut);
                lhe.push_str(&s);
                let _ = parse_lhe(&lhe, "f.lhe", [13, -13]);
            }
        }
    }

    #[test]
    fn spec_parsing() {
        assert_eq!(
            Source::parse("pp-mumu").unwrap(),
            Source::Generated(Generator::PpMuMu)
        );
        assert_eq!(
            Source::parse("csv:a b.csv").unwrap(),
            Source::Csv("a b.csv".into())
        );
        assert!(matches!(
            Source::parse("lhe:x.lhe").unwrap(),
            Source::Lhe(_, [13, -13])
        ));
        assert!(Source::parse("csv:").is_err());
        assert!(
            Source::parse("soundfont")
                .unwrap_err()
                .to_string()
                .contains("unknown data `soundfont`")
        );
    }
}
