//! SF3 SoundFonts (MuseScore's format, Debian's `default-GM.sf3`): a SoundFont 2 whose samples
//! are each stored as an Ogg Vorbis stream. The synthesiser reads SoundFont 2 only, so an SF3
//! file is rewritten as one in memory: every compressed sample decoded to 16-bit PCM and the
//! sample headers pointed at it.
//!
//! What differs from SoundFont 2 (as FluidSynth reads it): a sample whose type carries
//! [`OGG_VORBIS`] has its start and end as byte offsets of its stream in the `smpl` chunk
//! (end exclusive), and its loop points in samples from the start of its own decoded audio.

use anyhow::{Context, bail};
use rayon::prelude::*;

use super::soundfont::riff_chunks;

/// The sample-type flag of a compressed sample.
const OGG_VORBIS: u16 = 0x10;
/// The sample-type flag of a ROM sample, which holds no data in the file.
const ROM: u16 = 0x8000;
/// bytes of one sample header record (`shdr`)
const SHDR_LEN: usize = 46;
/// zero samples after each sample, as SoundFont 2 asks
const GUARD: usize = 46;

/// Samples decoded at once (in parallel) before they are written out: enough to keep every
/// thread busy, few enough that the decoded audio never waits in memory beside the file.
fn decode_batch() -> usize {
    8 * rayon::current_num_threads()
}

/// One sample header: the fields the rewrite reads or moves.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Header {
    start: u32,
    end: u32,
    loop_start: u32,
    loop_end: u32,
    kind: u16,
}

impl Header {
    fn read(r: &[u8]) -> Self {
        let word = |i: usize| u32::from_le_bytes([r[i], r[i + 1], r[i + 2], r[i + 3]]);
        Self {
            start: word(20),
            end: word(24),
            loop_start: word(28),
            loop_end: word(32),
            kind: u16::from_le_bytes([r[44], r[45]]),
        }
    }

    fn write(&self, r: &mut [u8]) {
        r[20..24].copy_from_slice(&self.start.to_le_bytes());
        r[24..28].copy_from_slice(&self.end.to_le_bytes());
        r[28..32].copy_from_slice(&self.loop_start.to_le_bytes());
        r[32..36].copy_from_slice(&self.loop_end.to_le_bytes());
        r[44..46].copy_from_slice(&self.kind.to_le_bytes());
    }
}

/// The SoundFont 2 equivalent of `bytes` when they are a SoundFont with compressed samples;
/// None when they hold none (a plain SoundFont 2, or bytes that are not a SoundFont, which
/// the parser then judges).
pub fn to_sf2(bytes: &[u8]) -> anyhow::Result<Option<Vec<u8>>> {
    let Some(body) = riff_body(bytes) else {
        return Ok(None);
    };
    let lists: Vec<(&[u8], &[u8])> = riff_chunks(body).filter(|(id, _)| *id == b"LIST").collect();
    let list = |name: &[u8]| {
        lists
            .iter()
            .find(|(_, b)| b.get(..4) == Some(name))
            .map(|(_, b)| &b[4..])
    };
    let (Some(info), Some(sdta), Some(pdta)) = (list(b"INFO"), list(b"sdta"), list(b"pdta")) else {
        return Ok(None);
    };
    let Some(shdr) = sub(pdta, b"shdr") else {
        return Ok(None);
    };
    // the last record is the terminal "EOS"
    let records = shdr.len() / SHDR_LEN;
    let headers: Vec<Header> = (0..records.saturating_sub(1))
        .map(|i| Header::read(&shdr[i * SHDR_LEN..(i + 1) * SHDR_LEN]))
        .collect();
    if !headers.iter().any(|h| h.kind & OGG_VORBIS != 0) {
        return Ok(None);
    }
    let smpl = sub(sdta, b"smpl").context("an SF3 SoundFont without sample data")?;

    let mut info_list = b"INFO".to_vec();
    for (id, body) in riff_chunks(info) {
        // version 2.1: the samples are plain 16-bit PCM now
        let mut body = if id == b"ifil" {
            vec![2, 0, 1, 0]
        } else {
            body.to_vec()
        };
        // the synthesiser's parser skips no pad bytes: an odd string gets one more NUL
        if body.len() % 2 == 1 {
            body.push(0);
        }
        push_chunk(&mut info_list, id, &body);
    }
    // RIFF sfbk, LIST INFO, then LIST sdta with its smpl chunk; the sizes not yet known are
    // written when the samples are in
    let mut file = b"RIFF\0\0\0\0sfbk".to_vec();
    push_chunk(&mut file, b"LIST", &info_list);
    let sdta_at = file.len();
    file.extend_from_slice(b"LIST\0\0\0\0sdtasmpl\0\0\0\0");
    let smpl_at = file.len();

    // decoded a batch at a time straight into the file
    let mut new_shdr = shdr.to_vec();
    let batch = decode_batch();
    for (b, part) in headers.chunks(batch).enumerate() {
        let audio: Vec<Vec<i16>> = part
            .par_iter()
            .enumerate()
            .map(|(j, h)| {
                sample_audio(smpl, h).with_context(|| format!("sample {}", b * batch + j))
            })
            .collect::<anyhow::Result<_>>()?;
        for (j, (h, samples)) in part.iter().zip(audio).enumerate() {
            let i = b * batch + j;
            let start = u32::try_from((file.len() - smpl_at) / 2)
                .context("sample data over 4 G samples")?;
            let len = samples.len() as u32;
            let (loop_start, loop_end) = if h.kind & OGG_VORBIS != 0 {
                (h.loop_start, h.loop_end)
            } else {
                (
                    h.loop_start.saturating_sub(h.start),
                    h.loop_end.saturating_sub(h.start),
                )
            };
            let moved = Header {
                start,
                end: start + len,
                loop_start: start + loop_start.min(len),
                loop_end: start + loop_end.min(len),
                kind: h.kind & !OGG_VORBIS,
            };
            moved.write(&mut new_shdr[i * SHDR_LEN..(i + 1) * SHDR_LEN]);
            file.extend(samples.iter().flat_map(|s| s.to_le_bytes()));
            file.extend(std::iter::repeat_n(0u8, 2 * GUARD));
        }
    }
    let size = |n: usize, what: &str| u32::try_from(n).with_context(|| format!("{what} over 4 GB"));
    let smpl_len = size(file.len() - smpl_at, "sample data")?;
    file[smpl_at - 4..smpl_at].copy_from_slice(&smpl_len.to_le_bytes());
    // LIST sdta holds its name and the smpl chunk's header and body
    let sdta_len = size(4 + 8 + smpl_len as usize, "sample data")?;
    file[sdta_at + 4..sdta_at + 8].copy_from_slice(&sdta_len.to_le_bytes());

    let mut pdta_list = b"pdta".to_vec();
    for (id, body) in riff_chunks(pdta) {
        let body = if id == b"shdr" { &new_shdr } else { body };
        push_chunk(&mut pdta_list, id, body);
    }
    push_chunk(&mut file, b"LIST", &pdta_list);
    let riff_len = size(file.len() - 8, "a SoundFont")?;
    file[4..8].copy_from_slice(&riff_len.to_le_bytes());
    Ok(Some(file))
}

/// The body of the sub-chunk `id` of a LIST's chunks.
pub(crate) fn sub<'a>(list: &'a [u8], id: &[u8]) -> Option<&'a [u8]> {
    riff_chunks(list)
        .find(|(i, _)| *i == id)
        .map(|(_, body)| body)
}

/// The body of a `RIFF sfbk` file, after its form type.
pub(crate) fn riff_body(bytes: &[u8]) -> Option<&[u8]> {
    let (id, body) = riff_chunks(bytes).next()?;
    (id == b"RIFF" && body.get(..4) == Some(b"sfbk".as_slice())).then(|| &body[4..])
}

/// The 16-bit samples of one sample header: its Ogg Vorbis stream decoded (the first channel,
/// should a stream have more), or its PCM copied.
fn sample_audio(smpl: &[u8], h: &Header) -> anyhow::Result<Vec<i16>> {
    if h.kind & ROM != 0 {
        return Ok(Vec::new());
    }
    if h.kind & OGG_VORBIS == 0 {
        let (start, end) = (h.start as usize * 2, h.end as usize * 2);
        let Some(bytes) = smpl.get(start..end.max(start)) else {
            bail!("its data ({start}..{end}) lies past the sample chunk");
        };
        return Ok(bytes
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect());
    }
    let (start, end) = (h.start as usize, h.end as usize);
    let stream = smpl
        .get(start..end)
        .with_context(|| format!("its Ogg stream ({start}..{end}) lies past the sample chunk"))?;
    decode_vorbis(stream)
}

/// An Ogg Vorbis stream's (mono) samples as 16-bit samples. The decoder is kept from
/// panicking the program on hostile bytes.
fn decode_vorbis(stream: &[u8]) -> anyhow::Result<Vec<i16>> {
    let decoded = crate::error::quietly(|| -> anyhow::Result<Vec<i16>> {
        let mut reader = lewton::inside_ogg::OggStreamReader::new(std::io::Cursor::new(stream))
            .map_err(|e| anyhow::anyhow!("not an Ogg Vorbis stream ({e})"))?;
        // SF3 keeps every sample as one mono stream (a stereo pair is two linked samples):
        // a header claiming more channels is damage, and decoding 255 of them takes minutes
        let channels = reader.ident_hdr.audio_channels;
        anyhow::ensure!(
            channels == 1,
            "an Ogg Vorbis stream of {channels} channels, where SF3 samples are mono"
        );
        let mut out = Vec::new();
        while let Some(packet) = reader
            .read_dec_packet_itl()
            .map_err(|e| anyhow::anyhow!("a corrupt Ogg Vorbis stream ({e})"))?
        {
            out.extend_from_slice(&packet);
        }
        Ok(out)
    });
    match decoded {
        Ok(result) => result,
        Err(panic) => bail!("a corrupt Ogg Vorbis stream ({panic})"),
    }
}

/// Append a RIFF chunk (id, little-endian size, body, a pad byte after an odd body).
pub(crate) fn push_chunk(out: &mut Vec<u8>, id: &[u8], body: &[u8]) {
    out.extend_from_slice(id);
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(body);
    if body.len() % 2 == 1 {
        out.push(0);
    }
}

#[cfg(test)]
pub(super) mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// 0.25 s of 440 Hz (and its octave, quieter) at 22050 Hz, mono, Ogg Vorbis
    const A4_OGG: &[u8] = include_bytes!("../../tests/fixtures/a4_440hz.ogg");
    const RATE: u32 = 22050;

    /// Whether `bytes` declare SoundFont version 3 (an SF3 file) in their `ifil` chunk.
    fn is_sf3(bytes: &[u8]) -> bool {
        let Some(body) = riff_body(bytes) else {
            return false;
        };
        riff_chunks(body)
            .filter(|(id, b)| *id == b"LIST" && b.get(..4) == Some(b"INFO".as_slice()))
            .flat_map(|(_, b)| riff_chunks(&b[4..]))
            .any(|(id, b)| id == b"ifil" && b.get(..2) == Some([3u8, 0].as_slice()))
    }

    fn chunk(id: &[u8], body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        push_chunk(&mut out, id, body);
        out
    }

    fn shdr_record(name: &str, h: Header, rate: u32, key: u8) -> Vec<u8> {
        let mut r = vec![0u8; SHDR_LEN];
        r[..name.len()].copy_from_slice(name.as_bytes());
        h.write(&mut r);
        r[36..40].copy_from_slice(&rate.to_le_bytes());
        r[40] = key;
        r
    }

    /// A whole SoundFont: one preset (program 0) of one instrument that loops one sample at
    /// its own pitch (MIDI `key`) over every key.
    fn soundfont(version: u16, smpl: &[u8], sample: Header, key: u8) -> Vec<u8> {
        soundfont_of(version, smpl, &[sample], key)
    }

    /// [`soundfont`] whose sample list holds `samples`, the instrument playing the first.
    fn soundfont_of(version: u16, smpl: &[u8], samples: &[Header], key: u8) -> Vec<u8> {
        let words = |w: &[u16]| -> Vec<u8> { w.iter().flat_map(|v| v.to_le_bytes()).collect() };
        let name = |s: &str| {
            let mut n = [0u8; 20];
            n[..s.len()].copy_from_slice(s.as_bytes());
            n.to_vec()
        };
        let phdr = [
            [name("Tone"), words(&[0, 0, 0]), vec![0; 12]].concat(),
            [name("EOP"), words(&[0, 0, 1]), vec![0; 12]].concat(),
        ]
        .concat();
        let bags = words(&[0, 0, 1, 0]);
        // instrument (41) = 0; then sample modes (54) = loop, sample id (53) = 0
        let pgen = words(&[41, 0, 0, 0]);
        let inst = [
            [name("Tone"), words(&[0])].concat(),
            [name("EOI"), words(&[1])].concat(),
        ]
        .concat();
        let igen = words(&[54, 1, 53, 0, 0, 0]);
        let ibag = words(&[0, 0, 2, 0]);
        let records = samples.iter().map(|&h| shdr_record("tone", h, RATE, key));
        let shdr = [
            records.collect::<Vec<_>>().concat(),
            shdr_record(
                "EOS",
                Header {
                    start: 0,
                    end: 0,
                    loop_start: 0,
                    loop_end: 0,
                    kind: 0,
                },
                0,
                0,
            ),
        ]
        .concat();
        let pdta = [
            b"pdta".to_vec(),
            chunk(b"phdr", &phdr),
            chunk(b"pbag", &bags),
            chunk(b"pmod", &[0; 10]),
            chunk(b"pgen", &pgen),
            chunk(b"inst", &inst),
            chunk(b"ibag", &ibag),
            chunk(b"imod", &[0; 10]),
            chunk(b"igen", &igen),
            chunk(b"shdr", &shdr),
        ]
        .concat();
        let info = [
            b"INFO".to_vec(),
            chunk(b"ifil", &words(&[version, 1])),
            chunk(b"INAM", b"t\0"),
        ]
        .concat();
        // as SF3 writers lay it out: an odd-length chunk without the pad byte RIFF asks for
        let unpadded =
            |id: &[u8], body: &[u8]| [id, &(body.len() as u32).to_le_bytes(), body].concat();
        let sdta = unpadded(
            b"LIST",
            &[b"sdta".as_slice(), &unpadded(b"smpl", smpl)].concat(),
        );
        let body = [
            b"sfbk".to_vec(),
            chunk(b"LIST", &info),
            sdta,
            chunk(b"LIST", &pdta),
        ]
        .concat();
        chunk(b"RIFF", &body)
    }

    /// The header of [`A4_OGG`] as one sample: its loop 1000 samples from 2000, counted in
    /// the decoded audio.
    fn looped_a4() -> Header {
        Header {
            start: 0,
            end: A4_OGG.len() as u32,
            loop_start: 2000,
            loop_end: 3000,
            kind: 1 | OGG_VORBIS,
        }
    }

    /// An SF3 whose one sample is [`A4_OGG`], looped, played by program 0 over every key.
    pub(in crate::audio) fn a4() -> Vec<u8> {
        soundfont(3, A4_OGG, looped_a4(), 69)
    }

    /// Fundamental of a mono signal by the first strong peak of its normalised
    /// autocorrelation, between lags.
    fn frequency(x: &[f32], rate: f32) -> f32 {
        let n = x.len();
        let r = |lag: usize| -> f32 { (0..n - lag).map(|i| x[i] * x[i + lag]).sum::<f32>() };
        let r0 = r(0).max(1e-12);
        let lags: Vec<f32> = (8..400).map(|l| r(l) / r0).collect();
        let best = (1..lags.len() - 1)
            .find(|&i| lags[i] > 0.5 && lags[i] >= lags[i - 1] && lags[i] >= lags[i + 1])
            .unwrap();
        // a parabola through the peak and its neighbours places it between lags
        let (a, b, c) = (lags[best - 1], lags[best], lags[best + 1]);
        let offset = 0.5 * (a - c) / (a - 2.0 * b + c);
        rate / (best as f32 + 8.0 + offset)
    }

    fn render(bytes: &[u8], key: i32) -> Vec<f32> {
        let sf = std::sync::Arc::new(rustysynth::SoundFont::new(&mut &bytes[..]).unwrap());
        let mut settings = rustysynth::SynthesizerSettings::new(16000);
        settings.enable_reverb_and_chorus = false;
        let mut synth = rustysynth::Synthesizer::new(&sf, &settings).unwrap();
        synth.note_on(0, key, 100);
        let (mut l, mut r) = (vec![0f32; 8000], vec![0f32; 8000]);
        synth.render(&mut l, &mut r);
        l.iter().zip(&r).map(|(a, b)| a + b).collect()
    }

    #[test]
    fn an_sf3_plays_its_decoded_samples_at_their_pitch() {
        let sample = looped_a4();
        // one byte past the stream: the sample chunk's length is odd
        let smpl = [A4_OGG, &[7]].concat();
        let sf3 = soundfont(3, &smpl, sample, 69);
        assert!(is_sf3(&sf3));
        let sf2 = to_sf2(&sf3).unwrap().expect("compressed samples to decode");
        assert!(!is_sf3(&sf2));
        // nothing left to decode: a plain SoundFont 2 passes through
        assert!(to_sf2(&sf2).unwrap().is_none());

        let body = riff_body(&sf2).unwrap();
        let lists: Vec<_> = riff_chunks(body).map(|(_, b)| b).collect();
        let shdr = riff_chunks(&lists[2][4..])
            .find(|(id, _)| *id == b"shdr")
            .unwrap()
            .1;
        let smpl = riff_chunks(&lists[1][4..])
            .find(|(id, _)| *id == b"smpl")
            .unwrap()
            .1;
        let h = Header::read(shdr);
        let decoded = decode_vorbis(A4_OGG).unwrap();
        assert_eq!((h.start, h.end), (0, decoded.len() as u32));
        assert_eq!((h.loop_start, h.loop_end, h.kind), (2000, 3000, 1));
        assert_eq!(smpl.len(), 2 * (decoded.len() + GUARD));
        assert!(
            decoded.len() > 5000,
            "0.25 s at 22050 Hz: {}",
            decoded.len()
        );

        // the note at the sample's own key sounds at 440 Hz, an octave up at 880 Hz
        let f = frequency(&render(&sf2, 69)[1000..5000], 16000.0);
        assert!((f - 440.0).abs() < 4.0, "{f} Hz");
        let f = frequency(&render(&sf2, 81)[1000..5000], 16000.0);
        assert!((f - 880.0).abs() < 8.0, "{f} Hz");
    }

    /// Samples are decoded a batch at a time: over several batches, each sample header still
    /// points at its own decoded audio, in order, and the file's sizes add up.
    #[test]
    fn many_samples_land_each_at_its_own_place() {
        let n = 2 * decode_batch() + 3;
        // every sample the same stream, each with its own loop to tell them apart
        let samples: Vec<Header> = (0..n as u32)
            .map(|i| Header {
                start: 0,
                end: A4_OGG.len() as u32,
                loop_start: 100 + i,
                loop_end: 2000 + i,
                kind: 1 | OGG_VORBIS,
            })
            .collect();
        let sf2 = to_sf2(&soundfont_of(3, A4_OGG, &samples, 69))
            .unwrap()
            .unwrap();
        let decoded = decode_vorbis(A4_OGG).unwrap();
        let len = decoded.len() as u32;

        let body = riff_body(&sf2).unwrap();
        assert_eq!(body.len() + 12, sf2.len(), "RIFF size");
        let lists: Vec<_> = riff_chunks(body).map(|(_, b)| b).collect();
        assert_eq!(lists.len(), 3, "INFO, sdta, pdta");
        let smpl = sub(&lists[1][4..], b"smpl").unwrap();
        let shdr = sub(&lists[2][4..], b"shdr").unwrap();
        assert_eq!(shdr.len(), (n + 1) * SHDR_LEN);
        assert_eq!(smpl.len(), 2 * n * (decoded.len() + GUARD));
        for i in 0..n {
            let h = Header::read(&shdr[i * SHDR_LEN..(i + 1) * SHDR_LEN]);
            let k = i as u32;
            let start = k * (len + GUARD as u32);
            assert_eq!(
                h,
                Header {
                    start,
                    end: start + len,
                    loop_start: start + 100 + k,
                    loop_end: start + 2000 + k,
                    kind: 1,
                },
                "sample {i}"
            );
            let audio = &smpl[2 * start as usize..2 * (start + len) as usize];
            let audio: Vec<i16> = audio
                .chunks_exact(2)
                .map(|b| i16::from_le_bytes([b[0], b[1]]))
                .collect();
            assert_eq!(audio, decoded, "sample {i}'s audio");
        }
        // and the synthesiser reads the whole file
        let f = frequency(&render(&sf2, 69)[1000..5000], 16000.0);
        assert!((f - 440.0).abs() < 4.0, "{f} Hz");
    }

    #[test]
    fn broken_streams_are_errors_not_panics() {
        let mut cut = A4_OGG.to_vec();
        cut.truncate(200);
        for (stream, len) in [(&b"not ogg at all"[..], 14), (&cut[..], 200)] {
            let sample = Header {
                start: 0,
                end: len,
                loop_start: 0,
                loop_end: 0,
                kind: 1 | OGG_VORBIS,
            };
            assert!(to_sf2(&soundfont(3, stream, sample, 69)).is_err());
        }
        // a stream past the end of the sample chunk
        let sample = Header {
            start: 0,
            end: 1 << 20,
            loop_start: 0,
            loop_end: 0,
            kind: 1 | OGG_VORBIS,
        };
        let e = to_sf2(&soundfont(3, A4_OGG, sample, 69)).unwrap_err();
        assert!(format!("{e:#}").contains("past the sample chunk"), "{e:#}");
        assert!(to_sf2(b"RIFF").unwrap().is_none());
    }

    /// The CRC of an Ogg page (polynomial 0x04c11db7, unreflected, from 0), whose own CRC
    /// field counts as zeros.
    fn ogg_crc(page: &[u8]) -> u32 {
        let mut crc = 0u32;
        for (i, &byte) in page.iter().enumerate() {
            let byte = if (22..26).contains(&i) { 0 } else { byte };
            crc ^= (byte as u32) << 24;
            for _ in 0..8 {
                crc = if crc & 0x8000_0000 != 0 {
                    (crc << 1) ^ 0x04c1_1db7
                } else {
                    crc << 1
                };
            }
        }
        crc
    }

    /// A stream whose header declares more than one channel is refused before it is decoded
    /// (255 of them took over a minute).
    #[test]
    fn a_stream_of_many_channels_is_refused() {
        let first_page = |stream: &[u8]| {
            let segments = stream[26] as usize;
            let body: usize = stream[27..27 + segments].iter().map(|&s| s as usize).sum();
            27 + segments + body
        };
        let page = first_page(A4_OGG);
        assert_eq!(ogg_crc(&A4_OGG[..page]).to_le_bytes(), A4_OGG[22..26]);
        // the identification header opens the first page's packet: type, "vorbis", version,
        // then the channel count
        let channels = 27 + A4_OGG[26] as usize + 11;
        assert_eq!(&A4_OGG[channels - 10..channels - 4], b"vorbis");
        assert_eq!(A4_OGG[channels], 1);
        for count in [2u8, 255] {
            let mut stream = A4_OGG.to_vec();
            stream[channels] = count;
            let crc = ogg_crc(&stream[..page]);
            stream[22..26].copy_from_slice(&crc.to_le_bytes());
            let e = decode_vorbis(&stream).unwrap_err();
            assert!(
                format!("{e:#}").contains(&format!("{count} channels")),
                "{e:#}"
            );
        }
    }
}
