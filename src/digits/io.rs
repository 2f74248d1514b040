//! Digits from files: MNIST's IDX format (images `idx3-ubyte`, labels `idx1-ubyte`, not
//! gzipped) and CSV (one image per row, the label first, then the pixels 0..255). Every
//! error names the file and, for CSV, the line; no input makes these readers panic.

use std::path::{Path, PathBuf};

use super::render::{PIXELS, SIDE};

/// Why a digit file was refused. Every message names the file.
#[derive(Debug, thiserror::Error)]
pub enum DigitsError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {reason}")]
    Idx { path: PathBuf, reason: String },
    #[error("{path}: line {line}: {reason}")]
    Csv {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("{0}")]
    Spec(String),
}

impl DigitsError {
    fn idx(path: &Path, reason: impl Into<String>) -> Self {
        Self::Idx {
            path: path.to_owned(),
            reason: reason.into(),
        }
    }
}

/// The largest digit file we agree to read (MNIST's training images are 47 MB).
pub const MAX_FILE_BYTES: u64 = 1 << 30;
/// The largest image side an IDX file may declare.
pub const MAX_IDX_SIDE: usize = 4096;

/// Images read from an IDX file, before any resizing.
#[derive(Clone, Debug, PartialEq)]
pub struct IdxImages {
    pub count: usize,
    pub rows: usize,
    pub cols: usize,
    /// `count * rows * cols` bytes, row-major, 0 = paper (as MNIST)
    pub pixels: Vec<u8>,
}

fn read_file(path: &Path) -> Result<Vec<u8>, DigitsError> {
    let io = |source| DigitsError::Io {
        path: path.to_owned(),
        source,
    };
    let len = match crate::error::regular_file_len(path) {
        Ok(len) => len,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(io(e)),
        Err(e) => return Err(DigitsError::idx(path, e.to_string())),
    };
    if len > MAX_FILE_BYTES {
        return Err(DigitsError::idx(
            path,
            format!("{len} bytes is too large for a digit file"),
        ));
    }
    std::fs::read(path).map_err(io)
}

/// The header of an IDX file: (type code, dimensions), checked against the file's length.
fn idx_header(bytes: &[u8], path: &Path, want_dims: u8) -> Result<Vec<usize>, DigitsError> {
    let what = if want_dims == 1 { "labels" } else { "images" };
    if bytes.len() < 4 {
        return Err(DigitsError::idx(
            path,
            format!(
                "truncated: {} bytes, an IDX file starts with a 4-byte magic number",
                bytes.len()
            ),
        ));
    }
    let magic = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    let expected = 0x0800 | want_dims as u32;
    if bytes[0] != 0 || bytes[1] != 0 || bytes[2] != 0x08 || bytes[3] != want_dims {
        let hint = if bytes[0] == 0x1f && bytes[1] == 0x8b {
            " (this is a gzip file: unpack it with gunzip first)"
        } else if bytes[2] == 0x08 && bytes[3] != want_dims && bytes[0] == 0 && bytes[1] == 0 {
            if want_dims == 1 {
                " (this looks like an images file where labels were expected)"
            } else {
                " (this looks like a labels file where images were expected)"
            }
        } else if bytes[0] == 0 && bytes[1] == 0 && bytes[2] != 0x08 {
            " (only unsigned-byte IDX data, type 0x08, is supported)"
        } else {
            ""
        };
        return Err(DigitsError::idx(
            path,
            format!(
                "wrong magic number 0x{magic:08x}, expected 0x{expected:08x} for IDX {what}{hint}"
            ),
        ));
    }
    let header_len = 4 + 4 * want_dims as usize;
    if bytes.len() < header_len {
        return Err(DigitsError::idx(
            path,
            format!(
                "truncated: {} bytes, the IDX {what} header alone has {header_len}",
                bytes.len()
            ),
        ));
    }
    let dims: Vec<usize> = (0..want_dims as usize)
        .map(|i| {
            let o = 4 + 4 * i;
            u32::from_be_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]) as usize
        })
        .collect();
    let body = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .filter(|&b| b as u64 <= MAX_FILE_BYTES)
        .ok_or_else(|| DigitsError::idx(path, format!("impossible sizes {dims:?}")))?;
    let have = bytes.len() - header_len;
    if have < body {
        return Err(DigitsError::idx(
            path,
            format!(
                "truncated: the header declares sizes {dims:?} ({body} data bytes) but only {have} follow"
            ),
        ));
    }
    if have > body {
        return Err(DigitsError::idx(
            path,
            format!(
                "wrong sizes: the header declares {dims:?} ({body} data bytes) but {have} follow"
            ),
        ));
    }
    Ok(dims)
}

/// Parse IDX images (magic 0x00000803) from bytes; `path` only names the file in errors.
pub fn parse_idx_images(bytes: &[u8], path: &Path) -> Result<IdxImages, DigitsError> {
    let dims = idx_header(bytes, path, 3)?;
    let (count, rows, cols) = (dims[0], dims[1], dims[2]);
    if rows == 0 || cols == 0 || rows > MAX_IDX_SIDE || cols > MAX_IDX_SIDE {
        return Err(DigitsError::idx(
            path,
            format!("wrong sizes: images of {rows}x{cols} pixels"),
        ));
    }
    if count == 0 {
        return Err(DigitsError::idx(path, "holds no images"));
    }
    Ok(IdxImages {
        count,
        rows,
        cols,
        pixels: bytes[16..].to_vec(),
    })
}

/// Parse IDX labels (magic 0x00000801) from bytes; every label must be a digit 0..=9.
pub fn parse_idx_labels(bytes: &[u8], path: &Path) -> Result<Vec<u8>, DigitsError> {
    idx_header(bytes, path, 1)?;
    let labels = bytes[8..].to_vec();
    if labels.is_empty() {
        return Err(DigitsError::idx(path, "holds no labels"));
    }
    if let Some((i, l)) = labels.iter().enumerate().find(|(_, l)| **l > 9) {
        return Err(DigitsError::idx(
            path,
            format!("label {i} is {l}, not a digit 0..9"),
        ));
    }
    Ok(labels)
}

pub fn read_idx_images(path: &Path) -> Result<IdxImages, DigitsError> {
    parse_idx_images(&read_file(path)?, path)
}

pub fn read_idx_labels(path: &Path) -> Result<Vec<u8>, DigitsError> {
    parse_idx_labels(&read_file(path)?, path)
}

/// Write IDX images (for tests, fixtures and users who convert their data).
pub fn idx_images_bytes(images: &IdxImages) -> Vec<u8> {
    let mut out = vec![0, 0, 8, 3];
    for d in [images.count, images.rows, images.cols] {
        out.extend_from_slice(&(d as u32).to_be_bytes());
    }
    out.extend_from_slice(&images.pixels);
    out
}

pub fn idx_labels_bytes(labels: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 8, 1];
    out.extend_from_slice(&(labels.len() as u32).to_be_bytes());
    out.extend_from_slice(labels);
    out
}

/// Images and labels read from an IDX pair, resized to 28x28 and scaled to [0, 1].
pub fn read_idx_pair(images: &Path, labels: &Path) -> Result<(Vec<f32>, Vec<u8>), DigitsError> {
    let imgs = read_idx_images(images)?;
    let labs = read_idx_labels(labels)?;
    if imgs.count != labs.len() {
        return Err(DigitsError::idx(
            labels,
            format!(
                "wrong sizes: {} labels for the {} images of {}",
                labs.len(),
                imgs.count,
                images.display()
            ),
        ));
    }
    let mut out = Vec::with_capacity(imgs.count * PIXELS);
    let n = imgs.rows * imgs.cols;
    for i in 0..imgs.count {
        let src: Vec<f32> = imgs.pixels[i * n..(i + 1) * n]
            .iter()
            .map(|&p| p as f32 / 255.0)
            .collect();
        out.extend(resize(&src, imgs.rows, imgs.cols));
    }
    Ok((out, labs))
}

/// Bilinear resize of a grey image to 28x28 (a copy when it already is).
pub fn resize(src: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    if rows == SIDE && cols == SIDE {
        return src.to_vec();
    }
    let mut out = vec![0f32; PIXELS];
    for y in 0..SIDE {
        let sy = ((y as f32 + 0.5) * rows as f32 / SIDE as f32 - 0.5).clamp(0.0, (rows - 1) as f32);
        let (y0, fy) = (sy.floor() as usize, sy.fract());
        let y1 = (y0 + 1).min(rows - 1);
        for x in 0..SIDE {
            let sx =
                ((x as f32 + 0.5) * cols as f32 / SIDE as f32 - 0.5).clamp(0.0, (cols - 1) as f32);
            let (x0, fx) = (sx.floor() as usize, sx.fract());
            let x1 = (x0 + 1).min(cols - 1);
            let p = |yy: usize, xx: usize| src[yy * cols + xx];
            out[y * SIDE + x] = (1.0 - fy) * ((1.0 - fx) * p(y0, x0) + fx * p(y0, x1))
                + fy * ((1.0 - fx) * p(y1, x0) + fx * p(y1, x1));
        }
    }
    out
}

/// Parse CSV digits from text: each row `label,p0,...,p783` (pixels 0..255, integers or
/// decimals); one header row of names is skipped; blank lines are skipped.
pub fn parse_csv(text: &str, path: &Path) -> Result<(Vec<f32>, Vec<u8>), DigitsError> {
    let err = |line: usize, reason: String| DigitsError::Csv {
        path: path.to_owned(),
        line,
        reason,
    };
    let mut images = Vec::new();
    let mut labels = Vec::new();
    let mut first_data = true;
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        // a header row such as `label,pixel0,...`
        let header = first_data && i == 0 && fields.iter().any(|f| f.parse::<f64>().is_err());
        if fields.len() != PIXELS + 1 {
            return Err(err(
                line_no,
                format!(
                    "{}{} columns, expected {} (label then 784 pixels of a 28x28 image)",
                    if header { "the header has " } else { "" },
                    fields.len(),
                    PIXELS + 1
                ),
            ));
        }
        if header {
            continue;
        }
        first_data = false;
        let label: u8 = match fields[0].parse::<u8>() {
            Ok(l) if l <= 9 => l,
            _ => {
                return Err(err(
                    line_no,
                    format!("label `{}` is not a digit 0..9", fields[0]),
                ));
            }
        };
        labels.push(label);
        for (col, f) in fields[1..].iter().enumerate() {
            match f.parse::<f32>() {
                Ok(v) if v.is_finite() && (0.0..=255.0).contains(&v) => images.push(v / 255.0),
                Ok(v) => {
                    return Err(err(
                        line_no,
                        format!("column {}: pixel {v} is outside 0..255", col + 2),
                    ));
                }
                Err(_) => {
                    return Err(err(
                        line_no,
                        format!("column {}: `{f}` is not a number", col + 2),
                    ));
                }
            }
        }
    }
    if labels.is_empty() {
        return Err(err(1, "holds no digit rows".into()));
    }
    Ok((images, labels))
}

pub fn read_csv(path: &Path) -> Result<(Vec<f32>, Vec<u8>), DigitsError> {
    let bytes = read_file(path)?;
    let text = std::str::from_utf8(&bytes).map_err(|e| {
        let line = bytes[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        DigitsError::Csv {
            path: path.to_owned(),
            line,
            reason: "not UTF-8 text".into(),
        }
    })?;
    parse_csv(text, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> PathBuf {
        PathBuf::from("t.idx")
    }

    #[test]
    fn idx_round_trip() -> anyhow::Result<()> {
        let imgs = IdxImages {
            count: 3,
            rows: 28,
            cols: 28,
            pixels: (0..3 * 784).map(|i| (i % 256) as u8).collect(),
        };
        let bytes = idx_images_bytes(&imgs);
        assert_eq!(parse_idx_images(&bytes, &p())?, imgs);
        let labels = vec![7, 0, 9];
        assert_eq!(parse_idx_labels(&idx_labels_bytes(&labels), &p())?, labels);
        let dir = tempfile::tempdir()?;
        let (ip, lp) = (dir.path().join("i"), dir.path().join("l"));
        std::fs::write(&ip, &bytes)?;
        std::fs::write(&lp, idx_labels_bytes(&labels))?;
        let (x, y) = read_idx_pair(&ip, &lp)?;
        assert_eq!(y, labels);
        assert_eq!(x.len(), 3 * 784);
        assert!((x[255] - 1.0).abs() < 1e-6 && x[0] == 0.0);
        Ok(())
    }

    #[test]
    fn idx_faults_are_named() {
        let imgs = IdxImages {
            count: 2,
            rows: 28,
            cols: 28,
            pixels: vec![0; 2 * 784],
        };
        let good = idx_images_bytes(&imgs);
        let msg = |b: &[u8]| {
            parse_idx_images(b, &p())
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        let mut wrong = good.clone();
        wrong[3] = 1;
        assert!(
            msg(&wrong).contains("wrong magic number"),
            "{}",
            msg(&wrong)
        );
        assert!(msg(&good[..good.len() - 1]).contains("truncated"));
        let mut long = good.clone();
        long.push(0);
        assert!(msg(&long).contains("wrong sizes"));
        for cut in 0..20 {
            assert!(parse_idx_images(&good[..cut], &p()).is_err());
        }
        // absurd dimensions do not overflow or allocate
        let mut huge = good[..16].to_vec();
        huge[4..16].copy_from_slice(&[0xff; 12]);
        assert!(msg(&huge).contains("impossible sizes") || msg(&huge).contains("truncated"));
        assert!(parse_idx_labels(&idx_labels_bytes(&[3, 12]), &p()).is_err());
    }

    /// A cheap stand-in for the fuzz target in every `cargo test`: mutated and cut IDX files
    /// give `Ok` or `Err`, never a panic, and an `Ok` keeps the promises.
    #[test]
    fn mutated_idx_files_never_panic() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let images = idx_images_bytes(&IdxImages {
            count: 2,
            rows: 3,
            cols: 4,
            pixels: (0..24).collect(),
        });
        let labels = idx_labels_bytes(&[1, 2, 3]);
        for k in 0..20_000 {
            let mut b = if k % 2 == 0 {
                images.clone()
            } else {
                labels.clone()
            };
            for _ in 0..rng.random_range(1..4) {
                let i = rng.random_range(0..b.len());
                b[i] = rng.random();
            }
            b.truncate(rng.random_range(0..=b.len()));
            if let Ok(x) = parse_idx_images(&b, &p()) {
                assert_eq!(x.pixels.len(), x.count * x.rows * x.cols);
            }
            if let Ok(l) = parse_idx_labels(&b, &p()) {
                assert!(l.iter().all(|&v| v <= 9));
            }
        }
    }

    #[test]
    fn csv_rows_and_faults() {
        let row = |label: &str, v: &str| {
            let mut s = label.to_string();
            for _ in 0..784 {
                s.push(',');
                s.push_str(v);
            }
            s
        };
        let header = format!(
            "label{}",
            (0..784).map(|i| format!(",pixel{i}")).collect::<String>()
        );
        let text = format!("{header}\n{}\n\n{}\n", row("3", "0"), row("9", "255"));
        let (x, y) = parse_csv(&text, &p()).unwrap_or_default();
        assert_eq!(y, vec![3, 9]);
        assert_eq!(x.len(), 2 * 784);
        let err = |t: &str| {
            parse_csv(t, &p())
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        let ragged = format!("{}\n{}", row("1", "0"), &row("2", "0")[..100]);
        assert!(err(&ragged).contains("line 2"), "{}", err(&ragged));
        assert!(err(&ragged).contains("columns"));
        let nan = format!("{}\n{}", row("1", "0"), row("2", "x"));
        assert!(err(&nan).contains("line 2") && err(&nan).contains("not a number"));
        assert!(err(&row("12", "0")).contains("not a digit"));
        assert!(err(&row("1", "300")).contains("outside 0..255"));
        assert!(err("").contains("no digit rows"));
    }
}
