//! Written digits shared by the families that need them (IE-VAE, V3): a generator of
//! 28x28 digits drawn with a pen by many writers, readers of MNIST IDX and CSV files, and an
//! independent digit classifier that reads decoded images.
//!
//! A data source is named as on the command line: `digits` (the generator, default sizes),
//! `digits:WRITERS` (that many training writers), `idx:DIR` (MNIST's four files in a
//! folder), `idx:IMAGES,LABELS` (one pair, the last sixth held out), `csv:PATH` (the last
//! sixth held out) or `csv:TRAIN,TEST`.

pub mod classifier;
pub mod cli;
pub mod glyphs;
pub mod io;
pub mod render;

use std::path::{Path, PathBuf};

use rand::Rng;
use rayon::prelude::*;

pub use io::DigitsError;
pub use render::{PIXELS, SIDE, Writer, render};

/// Digit images with their labels (and writers, when generated).
#[derive(Clone, Debug, Default)]
pub struct DigitSet {
    /// `len() * 784` pixels in [0, 1], row-major per image, 0 = paper
    pub images: Vec<f32>,
    pub labels: Vec<u8>,
    /// the writer of each image (generated data), empty for imported files
    pub writers: Vec<u64>,
}

impl DigitSet {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    pub fn image(&self, i: usize) -> &[f32] {
        &self.images[i * PIXELS..(i + 1) * PIXELS]
    }

    /// The images at `rows`, concatenated.
    pub fn gather(&self, rows: &[usize]) -> Vec<f32> {
        let mut out = Vec::with_capacity(rows.len() * PIXELS);
        for &r in rows {
            out.extend_from_slice(self.image(r));
        }
        out
    }

    /// The first `n` images (all if fewer).
    pub fn head(&self, n: usize) -> DigitSet {
        let n = n.min(self.len());
        DigitSet {
            images: self.images[..n * PIXELS].to_vec(),
            labels: self.labels[..n].to_vec(),
            writers: self.writers.iter().take(n).copied().collect(),
        }
    }

    /// The rows `rows` of this set, in that order.
    pub fn subset(&self, rows: &[usize]) -> DigitSet {
        DigitSet {
            images: self.gather(rows),
            labels: rows.iter().map(|&r| self.labels[r]).collect(),
            writers: if self.writers.is_empty() {
                Vec::new()
            } else {
                rows.iter().map(|&r| self.writers[r]).collect()
            },
        }
    }

    /// How many images of each digit.
    pub fn class_counts(&self) -> [usize; 10] {
        let mut c = [0; 10];
        for &l in &self.labels {
            c[l as usize % 10] += 1;
        }
        c
    }

    /// Split off the last `fraction` of the rows (imported data has no writers to hold out).
    fn split_tail(self, fraction: f64) -> Split {
        let n = self.len();
        let test_n = ((n as f64 * fraction).round() as usize).clamp(1, n.saturating_sub(1).max(1));
        let train_rows: Vec<usize> = (0..n - test_n).collect();
        let test_rows: Vec<usize> = (n - test_n..n).collect();
        Split {
            train: self.subset(&train_rows),
            test: self.subset(&test_rows),
        }
    }
}

/// Training and test digits; generated tests are written by writers absent from training.
#[derive(Clone, Debug, Default)]
pub struct Split {
    pub train: DigitSet,
    pub test: DigitSet,
}

/// How many digits to generate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Recipe {
    pub train_writers: usize,
    pub test_writers: usize,
    /// repetitions of each digit by each writer
    pub per_digit: usize,
    pub seed: u64,
}

impl Default for Recipe {
    fn default() -> Self {
        Self {
            train_writers: 600,
            test_writers: 100,
            per_digit: 10,
            seed: 0,
        }
    }
}

/// The most writers a generated data set holds: each writes every digit `per_digit` times,
/// about 0.3 MB of images a writer at the default 10
pub const MAX_WRITERS: usize = 5000;

impl Recipe {
    /// The recipe's sizes with their limits (named as under `recipe`), for
    /// [`crate::nn::checkpoint::SizeLimits`].
    pub fn size_limits(&self) -> Vec<(String, usize, std::ops::RangeInclusive<usize>)> {
        vec![
            (
                "recipe.train_writers".into(),
                self.train_writers,
                1..=MAX_WRITERS,
            ),
            (
                "recipe.test_writers".into(),
                self.test_writers,
                1..=MAX_WRITERS,
            ),
            ("recipe.per_digit".into(), self.per_digit, 1..=100),
        ]
    }
}

/// The fewest training digits, and held-out digits, a data set may have: fewer than ten
/// cannot hold every class
const MIN_DIGITS: usize = 10;

/// Test writers are numbered from here, so no seed makes them coincide with training writers.
pub const TEST_WRITER_BASE: u64 = 1 << 40;

/// The digits of writers `first..first + count`: each writes every digit `per_digit` times,
/// in shuffled order. Deterministic for a given seed, whatever the number of threads.
pub fn generate(first: u64, count: usize, per_digit: usize, seed: u64) -> DigitSet {
    let per_writer: Vec<(Vec<f32>, Vec<u8>)> = (0..count as u64)
        .into_par_iter()
        .map(|k| {
            let id = first + k;
            let mut rng = render::writer_rng(id, seed);
            let writer = Writer::random(id, &mut rng);
            let mut order: Vec<u8> = (0..10u8)
                .flat_map(|d| std::iter::repeat_n(d, per_digit))
                .collect();
            for i in (1..order.len()).rev() {
                order.swap(i, rng.random_range(0..=i));
            }
            let mut images = Vec::with_capacity(order.len() * PIXELS);
            for &d in &order {
                images.extend_from_slice(&render(d, &writer, &mut rng));
            }
            (images, order)
        })
        .collect();
    let mut set = DigitSet::default();
    for (k, (images, labels)) in per_writer.into_iter().enumerate() {
        set.writers
            .extend(std::iter::repeat_n(first + k as u64, labels.len()));
        set.images.extend(images);
        set.labels.extend(labels);
    }
    set
}

/// Generated training digits and test digits by held-out writers.
pub fn generated_split(recipe: &Recipe) -> Split {
    Split {
        train: generate(0, recipe.train_writers, recipe.per_digit, recipe.seed),
        test: generate(
            TEST_WRITER_BASE,
            recipe.test_writers,
            recipe.per_digit,
            recipe.seed,
        ),
    }
}

/// Where digits come from, parsed from a `--data` value.
#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    Generated(Recipe),
    IdxDir(PathBuf),
    IdxPair { images: PathBuf, labels: PathBuf },
    Csv(PathBuf),
    CsvPair { train: PathBuf, test: PathBuf },
}

impl Source {
    /// Parse `digits`, `digits:WRITERS`, `idx:DIR`, `idx:IMAGES,LABELS`, `csv:PATH`,
    /// `csv:TRAIN,TEST`. `recipe` gives the generator's sizes and seed.
    pub fn parse(spec: &str, recipe: Recipe) -> Result<Self, DigitsError> {
        let (kind, rest) = spec.split_once(':').unwrap_or((spec, ""));
        let two = |rest: &str| -> Option<(PathBuf, PathBuf)> {
            rest.split_once(',')
                .map(|(a, b)| (PathBuf::from(a), PathBuf::from(b)))
        };
        if rest.split(',').any(str::is_empty) && !rest.is_empty() {
            return Err(DigitsError::Spec(format!(
                "--data {spec}: a file name is missing on one side of the comma"
            )));
        }
        match kind {
            "digits" if rest.is_empty() => Ok(Self::Generated(recipe)),
            "digits" => match rest.parse::<usize>() {
                Ok(n) if (1..=MAX_WRITERS).contains(&n) => Ok(Self::Generated(Recipe {
                    train_writers: n,
                    ..recipe
                })),
                _ => Err(DigitsError::Spec(format!(
                    "--data {spec}: give the number of training writers, 1 to {MAX_WRITERS} (e.g. digits:600)"
                ))),
            },
            "idx" if rest.is_empty() => Err(DigitsError::Spec(
                "--data idx: give a folder of MNIST files (idx:DIR) or two files (idx:IMAGES,LABELS)".into(),
            )),
            "idx" => Ok(match two(rest) {
                Some((images, labels)) => Self::IdxPair { images, labels },
                None => Self::IdxDir(PathBuf::from(rest)),
            }),
            "csv" if rest.is_empty() => Err(DigitsError::Spec(
                "--data csv: give a file (csv:PATH) or two (csv:TRAIN,TEST)".into(),
            )),
            "csv" => Ok(match two(rest) {
                Some((train, test)) => Self::CsvPair { train, test },
                None => Self::Csv(PathBuf::from(rest)),
            }),
            _ => Err(DigitsError::Spec(format!(
                "--data {spec}: digits come from `digits`, `idx:DIR`, `idx:IMAGES,LABELS`, `csv:PATH` or `csv:TRAIN,TEST`"
            ))),
        }
    }

    /// Read or generate the digits.
    pub fn load(&self) -> Result<Split, DigitsError> {
        let split = self.load_unchecked()?;
        if split.train.len() < MIN_DIGITS || split.test.len() < MIN_DIGITS {
            return Err(DigitsError::Spec(format!(
                "{}: {} training and {} held-out digits; at least {MIN_DIGITS} of each are needed",
                self.name(),
                split.train.len(),
                split.test.len()
            )));
        }
        Ok(split)
    }

    /// The file (or folder) the digits come from, for messages.
    fn name(&self) -> String {
        match self {
            Self::Generated(_) => "digits".into(),
            Self::IdxPair { images, .. } => images.display().to_string(),
            Self::IdxDir(dir) => dir.display().to_string(),
            Self::Csv(path) | Self::CsvPair { train: path, .. } => path.display().to_string(),
        }
    }

    fn load_unchecked(&self) -> Result<Split, DigitsError> {
        let pair = |(images, labels): (Vec<f32>, Vec<u8>)| DigitSet {
            images,
            labels,
            writers: Vec::new(),
        };
        match self {
            Self::Generated(recipe) => Ok(generated_split(recipe)),
            Self::IdxPair { images, labels } => {
                Ok(pair(io::read_idx_pair(images, labels)?).split_tail(1.0 / 6.0))
            }
            Self::IdxDir(dir) => {
                let (train_i, train_l) = find_idx(dir, "train")?;
                let (test_i, test_l) = find_idx(dir, "t10k")?;
                Ok(Split {
                    train: pair(io::read_idx_pair(&train_i, &train_l)?),
                    test: pair(io::read_idx_pair(&test_i, &test_l)?),
                })
            }
            Self::Csv(path) => Ok(pair(io::read_csv(path)?).split_tail(1.0 / 6.0)),
            Self::CsvPair { train, test } => Ok(Split {
                train: pair(io::read_csv(train)?),
                test: pair(io::read_csv(test)?),
            }),
        }
    }
}

/// MNIST's file names in a folder, with `-` or `.` before `idx`.
fn find_idx(dir: &Path, prefix: &str) -> Result<(PathBuf, PathBuf), DigitsError> {
    if !dir.is_dir() {
        return Err(DigitsError::Io {
            path: dir.to_owned(),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "not a folder of MNIST IDX files",
            ),
        });
    }
    let find = |kind: &str, n: u8| -> Result<PathBuf, DigitsError> {
        [
            format!("{prefix}-{kind}-idx{n}-ubyte"),
            format!("{prefix}-{kind}.idx{n}-ubyte"),
        ]
        .into_iter()
        .map(|name| dir.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| DigitsError::Io {
            path: dir.join(format!("{prefix}-{kind}-idx{n}-ubyte")),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "missing (MNIST's files are train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, unzipped)",
            ),
        })
    };
    Ok((find("images", 3)?, find("labels", 1)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_deterministic_and_balanced() {
        let a = generate(0, 5, 2, 7);
        let b = generate(0, 5, 2, 7);
        assert_eq!(a.images, b.images);
        assert_eq!(a.labels, b.labels);
        assert_eq!(a.class_counts(), [10; 10]);
        let c = generate(0, 5, 2, 8);
        assert_ne!(a.images, c.images);
        let split = generated_split(&Recipe {
            train_writers: 4,
            test_writers: 2,
            per_digit: 1,
            seed: 0,
        });
        assert!(
            split
                .test
                .writers
                .iter()
                .all(|w| !split.train.writers.contains(w))
        );
    }

    /// Generated digits written as MNIST's four IDX files and as CSV read back through
    /// `idx:DIR` and `csv:TRAIN,TEST` (to within the 8-bit quantisation of the files).
    #[test]
    fn idx_folder_and_csv_sources_read_back() -> anyhow::Result<()> {
        let split = generated_split(&Recipe {
            train_writers: 3,
            test_writers: 2,
            per_digit: 1,
            seed: 4,
        });
        let dir = tempfile::tempdir()?;
        let bytes = |set: &DigitSet| -> Vec<u8> {
            set.images
                .iter()
                .map(|p| (p * 255.0).round() as u8)
                .collect()
        };
        for (prefix, set) in [("train", &split.train), ("t10k", &split.test)] {
            let images = io::IdxImages {
                count: set.len(),
                rows: SIDE,
                cols: SIDE,
                pixels: bytes(set),
            };
            std::fs::write(
                dir.path().join(format!("{prefix}-images-idx3-ubyte")),
                io::idx_images_bytes(&images),
            )?;
            std::fs::write(
                dir.path().join(format!("{prefix}-labels.idx1-ubyte")),
                io::idx_labels_bytes(&set.labels),
            )?;
            let csv: String = (0..set.len())
                .map(|i| {
                    let px: Vec<String> = set
                        .image(i)
                        .iter()
                        .map(|p| format!("{}", (p * 255.0).round()))
                        .collect();
                    format!("{},{}\n", set.labels[i], px.join(","))
                })
                .collect();
            std::fs::write(dir.path().join(format!("{prefix}.csv")), csv)?;
        }
        let close = |a: &DigitSet, b: &DigitSet| {
            a.labels == b.labels
                && a.images
                    .iter()
                    .zip(&b.images)
                    .all(|(x, y)| (x - y).abs() <= 0.5 / 255.0 + 1e-6)
        };
        let d = dir.path().display();
        let from_idx = Source::parse(&format!("idx:{d}"), Recipe::default())?.load()?;
        assert!(close(&from_idx.train, &split.train) && close(&from_idx.test, &split.test));
        let from_csv = Source::parse(
            &format!("csv:{d}/train.csv,{d}/t10k.csv"),
            Recipe::default(),
        )?
        .load()?;
        assert!(close(&from_csv.train, &split.train) && close(&from_csv.test, &split.test));
        Ok(())
    }

    #[test]
    fn sources_parse() {
        let r = Recipe::default();
        assert_eq!(Source::parse("digits", r).ok(), Some(Source::Generated(r)));
        assert!(matches!(
            Source::parse("digits:50", r),
            Ok(Source::Generated(Recipe {
                train_writers: 50,
                ..
            }))
        ));
        assert!(matches!(
            Source::parse("idx:a,b", r),
            Ok(Source::IdxPair { .. })
        ));
        assert!(matches!(Source::parse("idx:/m", r), Ok(Source::IdxDir(_))));
        assert!(matches!(Source::parse("csv:x.csv", r), Ok(Source::Csv(_))));
        assert!(Source::parse("digits:0", r).is_err());
        assert!(Source::parse("mnist", r).is_err());
        assert!(Source::parse("idx:", r).is_err());
    }
}
