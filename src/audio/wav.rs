//! WAV I/O on top of hound: read any PCM/float WAV as mono f32, write 16-bit mono atomically; every error names the file.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Cursor, Read, Write};
use std::path::{Path, PathBuf};

use hound::{SampleFormat, WavReader, WavSpec, WavWriter};

/// Largest file accepted, counted in samples over all channels; bounds memory and decode time.
pub const MAX_SAMPLES: u64 = 1 << 28;
/// Headers beyond these are corrupt rather than exotic.
const MAX_CHANNELS: u16 = 256;
const MAX_SAMPLE_RATE: u32 = 1_536_000;
/// Below this no sound worth reading fits (and resampling such a file to the features' rate
/// would multiply its length many thousand times).
const MIN_SAMPLE_RATE: u32 = 1000;

#[derive(Debug, thiserror::Error)]
pub enum WavError {
    #[error("{path}: cannot read: {source}")]
    Read { path: String, source: io::Error },
    #[error("{path}: not a WAV file ({reason})")]
    NotWav { path: String, reason: String },
    #[error("{path}: unsupported format: {what}")]
    Unsupported { path: String, what: String },
    #[error("{path}: truncated ({detail})")]
    Truncated { path: String, detail: String },
    #[error("{path}: empty")]
    Empty { path: String },
    #[error("{path}: cannot write: {source}")]
    Write { path: String, source: io::Error },
}

/// Read any PCM int (8/16/24/32) or float WAV and mix to mono f32 in [-1, 1]; returns
/// `(samples, sample_rate)`. Rejects zero channels, absurd headers, truncated data and files over
/// [`MAX_SAMPLES`] samples. Never panics on any input bytes.
pub fn read_mono(path: &Path) -> Result<(Vec<f32>, u32), WavError> {
    let name = path.display().to_string();
    let read_err = |source| WavError::Read {
        path: name.clone(),
        source,
    };
    let available = crate::error::regular_file_len(path).map_err(read_err)?;
    let file = File::open(path).map_err(read_err)?;
    decode(BufReader::new(file), available, &name)
}

/// [`read_mono`] on bytes in memory; `name` stands in for the path in errors.
pub fn read_mono_from_bytes(bytes: &[u8], name: &str) -> Result<(Vec<f32>, u32), WavError> {
    decode(bytes, bytes.len() as u64, name)
}

/// Remembers a genuine I/O failure so it is not mistaken for a short file: hound reports both the same way.
struct Source<R> {
    inner: R,
    fault: Option<io::Error>,
}

impl<R: Read> Read for Source<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).inspect_err(|e| {
            if e.kind() != io::ErrorKind::Interrupted {
                self.fault = Some(io::Error::new(e.kind(), e.to_string()));
            }
        })
    }
}

fn decode<R: Read>(inner: R, available: u64, name: &str) -> Result<(Vec<f32>, u32), WavError> {
    if available == 0 {
        return Err(WavError::Empty {
            path: name.to_owned(),
        });
    }
    let mut src = Source { inner, fault: None };
    let result = decode_from(&mut src, available, name);
    match (result, src.fault) {
        (Err(_), Some(source)) => Err(WavError::Read {
            path: name.to_owned(),
            source,
        }),
        (result, _) => result,
    }
}

fn decode_from<R: Read>(src: R, available: u64, name: &str) -> Result<(Vec<f32>, u32), WavError> {
    let path = || name.to_owned();
    let unsupported = |what: String| WavError::Unsupported { path: path(), what };
    let mut reader = WavReader::new(src).map_err(|e| match e {
        hound::Error::Unsupported => unsupported("compressed or non-PCM encoding".into()),
        hound::Error::FormatError(reason) => WavError::NotWav {
            path: path(),
            reason: reason.into(),
        },
        hound::Error::IoError(_) => WavError::NotWav {
            path: path(),
            reason: "file ends inside the header".into(),
        },
        other => WavError::NotWav {
            path: path(),
            reason: other.to_string(),
        },
    })?;
    let WavSpec {
        channels,
        sample_rate,
        bits_per_sample: bits,
        sample_format,
    } = reader.spec();
    if channels == 0 || channels > MAX_CHANNELS {
        return Err(unsupported(format!("{channels} channels")));
    }
    if !(MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE).contains(&sample_rate) {
        return Err(unsupported(format!("sample rate {sample_rate} Hz")));
    }
    match (sample_format, bits) {
        (SampleFormat::Int, 8 | 16 | 24 | 32) | (SampleFormat::Float, 32) => {}
        (SampleFormat::Int, _) => return Err(unsupported(format!("{bits}-bit integer samples"))),
        (SampleFormat::Float, _) => return Err(unsupported(format!("{bits}-bit float samples"))),
    }
    let total = u64::from(reader.len());
    if total > MAX_SAMPLES {
        return Err(unsupported(format!(
            "{total} samples exceeds the limit of {MAX_SAMPLES}"
        )));
    }
    if total == 0 {
        return Err(WavError::Empty { path: path() });
    }
    // Check the claimed size against the real one before reserving memory for it.
    let min_bytes = total * u64::from(bits / 8);
    if min_bytes > available {
        return Err(WavError::Truncated {
            path: path(),
            detail: format!(
                "header promises {min_bytes} bytes of samples, file has {available} bytes"
            ),
        });
    }
    let channels = usize::from(channels);
    let mut out = Vec::with_capacity(total as usize / channels);
    let res = match sample_format {
        SampleFormat::Int => {
            let scale = 1.0 / (1u64 << (bits - 1)) as f32;
            mix(reader.samples::<i32>(), channels, &mut out, |s| {
                s as f32 * scale
            })
        }
        // Float WAVs may hold anything; keep the [-1, 1] promise and drop NaN.
        SampleFormat::Float => mix(reader.samples::<f32>(), channels, &mut out, |s| {
            if s.is_nan() { 0.0 } else { s.clamp(-1.0, 1.0) }
        }),
    };
    match res {
        Ok(()) => Ok((out, sample_rate)),
        Err(hound::Error::IoError(_)) => Err(WavError::Truncated {
            path: path(),
            detail: format!(
                "data ends after {} of {} frames",
                out.len(),
                total as usize / channels
            ),
        }),
        Err(e) => Err(unsupported(e.to_string())),
    }
}

fn mix<S, I: Iterator<Item = hound::Result<S>>>(
    samples: I,
    channels: usize,
    out: &mut Vec<f32>,
    to_f32: impl Fn(S) -> f32,
) -> hound::Result<()> {
    let inv = 1.0 / channels as f32;
    let (mut acc, mut k) = (0.0f32, 0usize);
    for s in samples {
        acc += to_f32(s?);
        k += 1;
        if k == channels {
            out.push(acc * inv);
            (acc, k) = (0.0, 0);
        }
    }
    Ok(())
}

/// Clips one after another, half a second of silence between them, at the first clip's
/// rate (how two models' sounds are exported together: A, then B).
pub fn one_after_another(clips: &[(Vec<f32>, u32)]) -> (Vec<f32>, u32) {
    let rate = clips.first().map_or(16_000, |c| c.1);
    let mut joined = Vec::new();
    for (i, (clip, clip_rate)) in clips.iter().enumerate() {
        if i > 0 {
            joined.extend(std::iter::repeat_n(0.0, rate as usize / 2));
        }
        joined.extend(crate::audio::dsp::resample_linear(clip, *clip_rate, rate));
    }
    (joined, rate)
}

/// Write 16-bit PCM mono atomically: write `<path>.tmp`, fsync, rename over `path`.
/// A failure leaves any existing file at `path` untouched. Samples are clamped to [-1, 1]; NaN becomes 0.
pub fn write_mono(path: &Path, samples: &[f32], sample_rate: u32) -> Result<(), WavError> {
    let fail = |source| WavError::Write {
        path: path.display().to_string(),
        source,
    };
    if sample_rate == 0 {
        return Err(fail(io::Error::new(
            io::ErrorKind::InvalidInput,
            "sample rate 0 Hz",
        )));
    }
    if samples.len() as u64 > MAX_SAMPLES {
        return Err(fail(io::Error::new(
            io::ErrorKind::InvalidInput,
            "more samples than a WAV file can hold",
        )));
    }
    let bytes = encode(samples, sample_rate).map_err(fail)?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    // A leftover from a crashed write would block create_new; a directory or anything else there stays and fails below.
    let _ = fs::remove_file(&tmp);
    // create_new so a symlink planted at the temp name is never followed.
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .map_err(fail)?;
    let committed = file
        .write_all(&bytes)
        .and_then(|()| file.sync_all())
        .and_then(|()| {
            drop(file);
            fs::rename(&tmp, path)
        });
    if let Err(e) = committed {
        let _ = fs::remove_file(&tmp);
        return Err(fail(e));
    }
    // Make the rename itself durable; not every platform can open a directory, so this is best effort.
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let _ = File::open(dir).and_then(|d| d.sync_all());
    }
    Ok(())
}

fn encode(samples: &[f32], sample_rate: u32) -> io::Result<Vec<u8>> {
    let spec = WavSpec {
        channels: 1,
        sample_rate,
        bits_per_sample: 16,
        sample_format: SampleFormat::Int,
    };
    let mut buf = Cursor::new(Vec::with_capacity(44 + 2 * samples.len()));
    let to_io = |e: hound::Error| match e {
        hound::Error::IoError(e) => e,
        other => io::Error::other(other.to_string()),
    };
    let mut writer = WavWriter::new(&mut buf, spec).map_err(to_io)?;
    // The length check in write_mono keeps this within u32.
    let mut w16 = writer.get_i16_writer(samples.len() as u32);
    for &s in samples {
        // Scale by 32768 so reading back (divide by 32768) is exact up to rounding; NaN casts to 0.
        w16.write_sample((s * 32768.0).round().clamp(-32768.0, 32767.0) as i16);
    }
    w16.flush().map_err(to_io)?;
    writer.finalize().map_err(to_io)?;
    Ok(buf.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scratch directory removed on drop; std only, so no tempfile dependency.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> Self {
            use std::sync::atomic::{AtomicUsize, Ordering};
            static N: AtomicUsize = AtomicUsize::new(0);
            let n = N.fetch_add(1, Ordering::Relaxed);
            let dir =
                std::env::temp_dir().join(format!("wav-test-{}-{tag}-{n}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let _ = fs::set_permissions(&self.0, fs::Permissions::from_mode(0o755));
            }
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn bytes_of(
        spec: WavSpec,
        write: impl FnOnce(&mut WavWriter<&mut Cursor<Vec<u8>>>),
    ) -> Vec<u8> {
        let mut buf = Cursor::new(Vec::new());
        let mut w = WavWriter::new(&mut buf, spec).unwrap();
        write(&mut w);
        w.finalize().unwrap();
        buf.into_inner()
    }

    fn tone(len: usize) -> Vec<f32> {
        (0..len).map(|i| 0.8 * (i as f32 * 0.05).sin()).collect()
    }

    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            self.0 >> 33
        }
    }

    #[test]
    fn round_trip_16_bit() {
        let dir = TempDir::new("rt");
        let path = dir.0.join("a.wav");
        let mut x = tone(5000);
        x.extend([1.0, -1.0, 1.5, -2.0, f32::NAN, 0.0]);
        write_mono(&path, &x, 16_000).unwrap();
        assert!(!dir.0.join("a.wav.tmp").exists());
        let (y, sr) = read_mono(&path).unwrap();
        assert_eq!(sr, 16_000);
        assert_eq!(y.len(), x.len());
        for (a, b) in x.iter().zip(&y) {
            let a = if a.is_nan() { 0.0 } else { a.clamp(-1.0, 1.0) };
            assert!((a - b).abs() <= 1.0 / 32768.0 + 1e-7, "{a} vs {b}");
        }
        // Overwriting replaces the old content.
        write_mono(&path, &[0.5; 10], 8_000).unwrap();
        assert_eq!(read_mono(&path).unwrap(), (vec![0.5; 10], 8_000));
    }

    #[test]
    fn mixes_channels_and_formats() {
        let spec = |channels, bits, fmt| WavSpec {
            channels,
            sample_rate: 22_050,
            bits_per_sample: bits,
            sample_format: fmt,
        };
        let stereo16 = bytes_of(spec(2, 16, SampleFormat::Int), |w| {
            for _ in 0..100 {
                w.write_sample(16384i16).unwrap();
                w.write_sample(-8192i16).unwrap();
            }
        });
        let (y, sr) = read_mono_from_bytes(&stereo16, "s16").unwrap();
        assert_eq!((y.len(), sr), (100, 22_050));
        assert!(y.iter().all(|&v| (v - 0.125).abs() < 1e-6));

        let tri24 = bytes_of(spec(3, 24, SampleFormat::Int), |w| {
            for _ in 0..10 {
                for v in [1 << 22, 0, -(1 << 23)] {
                    w.write_sample(v).unwrap();
                }
            }
        });
        let (y, _) = read_mono_from_bytes(&tri24, "t24").unwrap();
        assert!(y.len() == 10 && y.iter().all(|&v| (v - (0.5 - 1.0) / 3.0).abs() < 1e-6));

        let f32s = bytes_of(spec(2, 32, SampleFormat::Float), |w| {
            for v in [0.25f32, 0.75, 3.0, 1.0, f32::NAN, 0.5] {
                w.write_sample(v).unwrap();
            }
        });
        assert_eq!(
            read_mono_from_bytes(&f32s, "f").unwrap().0,
            vec![0.5, 1.0, 0.25]
        );

        let u8s = bytes_of(spec(1, 8, SampleFormat::Int), |w| {
            for v in [-128i8, 0, 64] {
                w.write_sample(v).unwrap();
            }
        });
        assert_eq!(
            read_mono_from_bytes(&u8s, "u8").unwrap().0,
            vec![-1.0, 0.0, 0.5]
        );

        // a header at 1 Hz: resampled to the features' rate it would grow 16000 times
        let slow = bytes_of(
            WavSpec {
                sample_rate: 1,
                ..spec(1, 16, SampleFormat::Int)
            },
            |w| w.write_sample(0i16).unwrap(),
        );
        let err = read_mono_from_bytes(&slow, "slow").unwrap_err().to_string();
        assert!(err.contains("sample rate 1 Hz"), "{err}");

        let i32s = bytes_of(spec(1, 32, SampleFormat::Int), |w| {
            w.write_sample(i32::MIN).unwrap()
        });
        assert_eq!(read_mono_from_bytes(&i32s, "i32").unwrap().0, vec![-1.0]);
    }

    fn assert_one_line_err(r: Result<(Vec<f32>, u32), WavError>, name: &str) -> WavError {
        let e = r.expect_err("garbage must not decode");
        let msg = e.to_string();
        assert!(
            msg.starts_with(&format!("{name}: ")) && !msg.contains('\n'),
            "{msg}"
        );
        e
    }

    #[test]
    fn garbage_and_truncation_are_errors_not_panics() {
        let mut rng = Lcg(12345);
        for i in 0..400 {
            let len = (rng.next() % 300) as usize;
            let mut bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            // Half of them get a plausible RIFF/WAVE/fmt prefix so the fuzzing reaches past the magic.
            if i % 2 == 0 && len >= 20 {
                bytes[..16].copy_from_slice(b"RIFF\0\0\0\0WAVEfmt ");
            }
            let _ = read_mono_from_bytes(&bytes, "rand");
        }
        let real = bytes_of(
            WavSpec {
                channels: 2,
                sample_rate: 16_000,
                bits_per_sample: 16,
                sample_format: SampleFormat::Int,
            },
            |w| {
                tone(600)
                    .iter()
                    .for_each(|&v| w.write_sample((v * 32767.0) as i16).unwrap())
            },
        );
        assert!(read_mono_from_bytes(&real, "real").is_ok());
        for cut in (0..real.len()).step_by(7) {
            let e = assert_one_line_err(read_mono_from_bytes(&real[..cut], "cut"), "cut");
            if cut > 44 {
                assert!(matches!(e, WavError::Truncated { .. }), "{e}");
            }
        }
        // Single-byte corruption of a real header: any outcome but a panic.
        for pos in 0..44 {
            for v in [0u8, 1, 0x7f, 0xff] {
                let mut b = real.clone();
                b[pos] = v;
                let _ = read_mono_from_bytes(&b, "mut");
            }
        }
        let text = b"This is a text file, not audio.\nSecond line.\n";
        assert!(matches!(
            assert_one_line_err(read_mono_from_bytes(text, "t.txt"), "t.txt"),
            WavError::NotWav { .. }
        ));
        assert!(matches!(
            read_mono_from_bytes(&[], "e"),
            Err(WavError::Empty { .. })
        ));
        let dir = TempDir::new("missing");
        let missing = dir.0.join("nope.wav");
        assert!(matches!(read_mono(&missing), Err(WavError::Read { .. })));
    }

    #[test]
    fn absurd_headers_are_rejected() {
        let real = bytes_of(
            WavSpec {
                channels: 1,
                sample_rate: 16_000,
                bits_per_sample: 16,
                sample_format: SampleFormat::Int,
            },
            |w| (0..8).for_each(|_| w.write_sample(1i16).unwrap()),
        );
        // Data chunk claiming 2^32-2 bytes on an 60-byte file: rejected before any allocation.
        let mut huge = real.clone();
        huge[40..44].copy_from_slice(&0xffff_fffeu32.to_le_bytes());
        assert!(matches!(
            read_mono_from_bytes(&huge, "h"),
            Err(WavError::Unsupported { .. })
        ));
        let mut long = real.clone();
        long[40..44].copy_from_slice(&4000u32.to_le_bytes());
        assert!(matches!(
            read_mono_from_bytes(&long, "l"),
            Err(WavError::Truncated { .. })
        ));
        // Sample rate 0 with a consistent byte rate.
        let mut zero_rate = real.clone();
        zero_rate[24..32].fill(0);
        assert!(matches!(
            read_mono_from_bytes(&zero_rate, "z"),
            Err(WavError::Unsupported { .. })
        ));
        let mut no_data = real.clone();
        no_data[40..44].fill(0);
        assert!(matches!(
            read_mono_from_bytes(&no_data, "n"),
            Err(WavError::Empty { .. })
        ));
    }

    #[test]
    fn failed_write_leaves_existing_file_untouched() {
        let dir = TempDir::new("atomic");
        let target = dir.0.join("keep.wav");
        let original = b"original contents".to_vec();
        fs::write(&target, &original).unwrap();

        // The temp name is taken by a directory: creation fails whoever we are.
        let blocker = dir.0.join("keep.wav.tmp");
        fs::create_dir(&blocker).unwrap();
        fs::write(blocker.join("x"), b"x").unwrap();
        let e = write_mono(&target, &tone(100), 16_000).unwrap_err();
        assert!(
            matches!(e, WavError::Write { .. }) && e.to_string().contains("keep.wav"),
            "{e}"
        );
        assert_eq!(fs::read(&target).unwrap(), original);
        assert!(blocker.join("x").exists());
        fs::remove_dir_all(&blocker).unwrap();

        // The target is a directory: the rename fails and the temp file is cleaned up.
        let as_dir = dir.0.join("is_dir.wav");
        fs::create_dir(&as_dir).unwrap();
        fs::write(as_dir.join("inner"), b"inner").unwrap();
        assert!(matches!(
            write_mono(&as_dir, &tone(100), 16_000),
            Err(WavError::Write { .. })
        ));
        assert_eq!(fs::read(as_dir.join("inner")).unwrap(), b"inner");
        assert!(!dir.0.join("is_dir.wav.tmp").exists());

        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&dir.0, fs::Permissions::from_mode(0o555)).unwrap();
            // Root ignores directory permissions, so only assert the failure where it is enforced.
            let probe = dir.0.join("probe");
            let enforced = fs::write(&probe, b"").is_err();
            let _ = fs::remove_file(&probe);
            let r = write_mono(&target, &tone(100), 16_000);
            if enforced {
                assert!(matches!(r, Err(WavError::Write { .. })));
                assert_eq!(fs::read(&target).unwrap(), original);
            }
            assert!(!dir.0.join("keep.wav.tmp").exists());
        }
        assert!(matches!(
            write_mono(&target, &[0.0], 0),
            Err(WavError::Write { .. })
        ));
    }
}
