//! SoundFont modulators, for a synthesiser that applies none.
//!
//! Many SoundFonts shape their sounds with modulators: the note's velocity or key number, or a
//! controller at rest, scaled by a curve and added to a generator such as the filter's cutoff
//! or the volume envelope's release. MuseScore General (Debian's `default-GM.sf3`) opens its
//! piano's filter with them; without them that piano is a resonant thump near 80 Hz.
//! rustysynth reads modulators but applies none of them.
//!
//! So a note is played from a copy of the SoundFont cut down to that note: the one preset the
//! synthesiser would choose for the program, the zones of that preset and of its instruments
//! that sound at the note's key and velocity, and their samples, with every zone's modulators
//! evaluated at the note and added to its generators. The modulators are read as FluidSynth
//! reads them (SoundFont 2.04, section 8.2): a global zone's modulators hold in every zone of
//! its preset or instrument that has no identical one; instrument-level modulators replace the
//! standard ones they are identical to; preset-level ones add to the instrument's.
//! Controllers sit where a fresh MIDI channel has them.

use anyhow::{Context, bail};

use super::sf3::{push_chunk, riff_body, sub};
use super::soundfont::riff_chunks;

/// Generator numbers (SoundFont 2.04, section 8.1.2).
mod gen_id {
    pub const START_OFFSET: u16 = 0;
    pub const START_COARSE_OFFSET: u16 = 4;
    pub const INSTRUMENT: u16 = 41;
    pub const KEY_RANGE: u16 = 43;
    pub const VELOCITY_RANGE: u16 = 44;
    pub const ATTENUATION: u16 = 48;
    pub const SAMPLE_ID: u16 = 53;
    /// one past the last generator the synthesiser reads
    pub const COUNT: u16 = 61;
    /// Destinations a modulator cannot move: ranges, links to instruments and samples, fixed
    /// key and velocity, sample modes, exclusive class, root key, the unused numbers, and the
    /// sample's end and loop offsets (which could point a voice outside its sample).
    pub const FIXED: [u16; 20] = [
        1, 2, 3, 12, 41, 42, 43, 44, 45, 46, 47, 49, 50, 53, 54, 55, 57, 58, 59, 60,
    ];
}

/// The standard modulators (SoundFont 2.04, section 8.4) that matter to a note here and that
/// the synthesiser does not build in itself, with the one it does build in: velocity to
/// attenuation, which it applies at 960 cB; a SoundFont's modulator identical to it adds
/// only its difference from that.
const VELOCITY_TO_FILTER: Modulator = Modulator {
    source: 0x0102,
    dest: 8,
    amount: -2400,
    amount_source: 0x0D02,
    transform: 0,
};
const VELOCITY_TO_ATTENUATION: Modulator = Modulator {
    source: 0x0502,
    dest: gen_id::ATTENUATION,
    amount: 960,
    amount_source: 0,
    transform: 0,
};
/// Sources of standard modulators that the synthesiser applies itself: a SoundFont's
/// modulator of the same kind (same sources, destination and transform) is left to it.
const BUILT_IN: [(u16, u16); 8] = [
    (0x0081, 6),  // modulation wheel to vibrato
    (0x0587, 48), // channel volume to attenuation
    (0x028A, 17), // pan
    (0x058B, 48), // expression to attenuation
    (0x00DB, 16), // reverb send
    (0x00DD, 15), // chorus send
    (0x020E, 52), // pitch wheel to pitch
    (0x000D, 6),  // channel pressure to vibrato
];

/// bytes of one record in the hydra's chunks
const PHDR_LEN: usize = 38;
const INST_LEN: usize = 22;
const BAG_LEN: usize = 4;
const MOD_LEN: usize = 10;
const GEN_LEN: usize = 4;
const SHDR_LEN: usize = 46;
/// zero samples after each sample, as SoundFont 2 asks
const GUARD: usize = 46;

/// A zone as written out: its generators, in the order the file keeps them.
type Gens = Vec<(u16, i16)>;
/// An instrument of a cut-down file: its name (20 bytes) and its zones.
type Instrument = (Vec<u8>, Vec<Gens>);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Modulator {
    source: u16,
    dest: u16,
    amount: i16,
    amount_source: u16,
    transform: u16,
}

impl Modulator {
    fn read(r: &[u8]) -> Self {
        let word = |i: usize| u16::from_le_bytes([r[i], r[i + 1]]);
        Self {
            source: word(0),
            dest: word(2),
            amount: word(4) as i16,
            amount_source: word(6),
            transform: word(8),
        }
    }

    /// Identical in the specification's sense: all but the amount alike.
    fn same_kind(&self, other: &Self) -> bool {
        (self.source, self.dest, self.amount_source, self.transform)
            == (
                other.source,
                other.dest,
                other.amount_source,
                other.transform,
            )
    }

    /// Whether the modulator is one for the cut-down copies to apply: aimed at a generator
    /// that may move, and not one the synthesiser applies itself.
    fn ours(&self) -> bool {
        !BUILT_IN.contains(&(self.source, self.dest))
            && self.dest < gen_id::COUNT
            && !gen_id::FIXED.contains(&self.dest)
    }

    /// What the modulator adds to its destination for a note at `key` and `velocity`; None
    /// when that depends on something the program moves while a note sounds (the pitch wheel)
    /// or that the specification does not define.
    fn value(&self, key: i32, velocity: i32) -> Option<f32> {
        if self.amount == 0 || self.source & 0xff == 0 {
            // no primary source: the modulator is off, as FluidSynth has it
            return Some(0.0);
        }
        let primary = source_value(self.source, key, velocity)?;
        let secondary = if self.amount_source & 0xff == 0 {
            1.0
        } else {
            source_value(self.amount_source, key, velocity)?
        };
        let v = f32::from(self.amount) * primary * secondary;
        match self.transform {
            0 => Some(v),
            2 => Some(v.abs()),
            _ => None,
        }
    }
}

/// A controller's value on a fresh MIDI channel (as FluidSynth resets one).
fn controller_at_rest(cc: u16) -> f32 {
    match cc {
        7 => 100.0,
        8 | 10 | 70..=79 => 64.0,
        11 | 98..=101 => 127.0,
        _ => 0.0,
    }
}

/// A modulator source (SoundFont 2.04, section 8.2.1) mapped through its curve, at a note's
/// key and velocity with every controller at rest.
fn source_value(source: u16, key: i32, velocity: i32) -> Option<f32> {
    let index = source & 0x7f;
    let raw = if source & 0x80 != 0 {
        controller_at_rest(index)
    } else {
        match index {
            2 => velocity as f32,
            3 => key as f32,
            // polyphonic and channel pressure
            10 | 13 => 0.0,
            _ => return None,
        }
    };
    let mut y = (raw / 127.0).clamp(0.0, 1.0);
    if source & 0x100 != 0 {
        y = 1.0 - y;
    }
    let bipolar = source & 0x200 != 0;
    let curve: fn(f32) -> f32 = match source >> 10 {
        0 => |x| x,
        // -20/96 log10((1 - x)^2): the ear's loudness curve, 0 at 0 and 1 at 1
        1 => |x| (-(5.0 / 12.0) * (1.0 - x).log10()).clamp(0.0, 1.0),
        2 => |x| (1.0 + (5.0 / 12.0) * x.log10()).clamp(0.0, 1.0),
        3 => {
            let on = y >= 0.5;
            return Some(match (on, bipolar) {
                (true, _) => 1.0,
                (false, false) => 0.0,
                (false, true) => -1.0,
            });
        }
        _ => return None,
    };
    Some(if bipolar {
        let x = 2.0 * y - 1.0;
        x.signum() * curve(x.abs())
    } else {
        curve(y)
    })
}

#[derive(Clone, Debug, Default)]
struct Zone {
    gens: Vec<(u16, i16)>,
    mods: Vec<Modulator>,
}

impl Zone {
    fn get(&self, id: u16) -> Option<i16> {
        self.gens.iter().rev().find(|g| g.0 == id).map(|g| g.1)
    }

    /// The zone's key or velocity range (a global zone's range holds where it has none).
    fn covers(&self, global: Option<&Zone>, id: u16, value: i32) -> bool {
        let range = self.get(id).or_else(|| global.and_then(|g| g.get(id)));
        range.is_none_or(|r| {
            let [lo, hi] = (r as u16).to_le_bytes();
            (i32::from(lo)..=i32::from(hi)).contains(&value)
        })
    }
}

/// A preset or an instrument: its header record as read, its global zone if it has one, and
/// its other zones.
struct Entry {
    header: Vec<u8>,
    global: Option<Zone>,
    zones: Vec<Zone>,
}

impl Entry {
    /// a preset's (bank, number), from its header
    fn id(&self) -> (i32, i32) {
        let word = |i: usize| i32::from(u16::from_le_bytes([self.header[i], self.header[i + 1]]));
        (word(22), word(20))
    }

    /// the name in its header, up to the first NUL
    fn name(&self) -> String {
        let name = &self.header[..20];
        let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
        String::from_utf8_lossy(&name[..end]).trim().to_string()
    }
}

/// A SoundFont 2 file, read so that any one note can be cut from it.
pub struct Font {
    info: Vec<u8>,
    /// the whole file, kept for its sample data (at `smpl`)
    file: Vec<u8>,
    smpl: std::ops::Range<usize>,
    presets: Vec<Entry>,
    instruments: Vec<Entry>,
    samples: Vec<Vec<u8>>,
}

impl Font {
    /// Read SoundFont 2 bytes (the parser has accepted them whole already).
    pub fn parse(file: Vec<u8>) -> anyhow::Result<Self> {
        let body = riff_body(&file).context("not a RIFF sfbk file")?;
        let list = |name: &[u8]| {
            riff_chunks(body)
                .find(|(id, b)| *id == b"LIST" && b.get(..4) == Some(name))
                .map(|(_, b)| &b[4..])
        };
        let (info, sdta, pdta) = (
            list(b"INFO").context("no INFO list")?,
            list(b"sdta").context("no sample data")?,
            list(b"pdta").context("no preset data")?,
        );
        let chunk =
            |id: &[u8]| sub(pdta, id).with_context(|| String::from_utf8_lossy(id).into_owned());
        let presets = read_level(
            [
                chunk(b"phdr")?,
                chunk(b"pbag")?,
                chunk(b"pmod")?,
                chunk(b"pgen")?,
            ],
            PHDR_LEN,
            24,
            gen_id::INSTRUMENT,
        )?;
        let instruments = read_level(
            [
                chunk(b"inst")?,
                chunk(b"ibag")?,
                chunk(b"imod")?,
                chunk(b"igen")?,
            ],
            INST_LEN,
            20,
            gen_id::SAMPLE_ID,
        )?;
        let shdr = chunk(b"shdr")?;
        let samples = shdr
            .chunks_exact(SHDR_LEN)
            .map(<[u8]>::to_vec)
            .collect::<Vec<_>>();
        // the synthesiser plays a file whose sample chunk runs past its list, but the copies
        // cut down to one note take their samples from within the list, so there are none
        let smpl = sub(sdta, b"smpl").context("no sample data within its sdta list")?;
        let at = smpl.as_ptr() as usize - file.as_ptr() as usize;
        Ok(Self {
            info: info.to_vec(),
            smpl: at..at + smpl.len(),
            samples: samples[..samples.len().saturating_sub(1)].to_vec(),
            presets,
            instruments,
            file,
        })
    }

    /// How many of the file's modulators with an amount the cut-down copies leave out:
    /// those driven by the pitch wheel or by another modulator, or with a curve or transform
    /// the specification does not define.
    pub fn unapplied(&self) -> usize {
        self.presets
            .iter()
            .chain(&self.instruments)
            .flat_map(|e| e.global.iter().chain(&e.zones))
            .flat_map(|z| &z.mods)
            .filter(|m| m.amount != 0 && m.ours() && m.value(60, 100).is_none())
            .count()
    }

    /// A line for the user when the SoundFont at `path` relies on modulators that the
    /// program cannot apply to its notes ([`Self::unapplied`]): more than a few.
    pub fn warning(&self, path: &std::path::Path) -> Option<String> {
        const ABOVE: usize = 16;
        let n = self.unapplied();
        (n > ABOVE).then(|| {
            format!(
                "{}: {n} of its modulators (driven by the pitch wheel or by other modulators) are not applied by the built-in synthesiser, so its instruments may sound unlike in other players; to hear it as meant, render its notes with FluidSynth and use them as WAV files (scripts/unheard_notes.sh shows how)",
                path.display()
            )
        })
    }

    /// The preset the synthesiser picks for `program` on a fresh channel: bank 0's, or the
    /// one with the lowest bank and number.
    fn preset_for(&self, program: i32) -> Option<&Entry> {
        self.presets
            .iter()
            .find(|e| e.id() == (0, program))
            .or_else(|| self.presets.iter().min_by_key(|e| e.id()))
    }

    /// Whether the SoundFont can play the General MIDI `programs` (number, name) it is asked
    /// for: an error when none of its presets is in bank 0, where General MIDI keeps its
    /// melodic instruments (a SoundFont of sound effects, drum kits or another bank's
    /// variations would otherwise stand in for every instrument); a warning naming the
    /// programs it lacks, and the preset that plays them instead, when it lacks some.
    pub fn general_midi(&self, programs: &[(i32, &str)]) -> anyhow::Result<Option<String>> {
        if programs.is_empty() {
            return Ok(None);
        }
        // what the synthesiser plays for a program it lacks (`preset_for`)
        let Some(stand_in) = self.presets.iter().min_by_key(|e| e.id()) else {
            anyhow::bail!("it has no presets");
        };
        if !self.presets.iter().any(|e| e.id().0 == 0) {
            let mut banks: Vec<i32> = self.presets.iter().map(|e| e.id().0).collect();
            banks.sort_unstable();
            banks.dedup();
            let banks: Vec<String> = banks.iter().map(i32::to_string).collect();
            anyhow::bail!(
                "not a General MIDI SoundFont: none of its {} presets is in bank 0, where General MIDI keeps its instruments (its banks: {}); it may be the drum, sound-effect or variation part of a larger set",
                self.presets.len(),
                banks.join(", ")
            );
        }
        let missing: Vec<String> = programs
            .iter()
            .filter(|(program, _)| !self.presets.iter().any(|e| e.id() == (0, *program)))
            .map(|(program, name)| format!("{name} (0:{program})"))
            .collect();
        Ok((!missing.is_empty()).then(|| {
            let (bank, number) = stand_in.id();
            format!(
                "no preset for {}: the built-in synthesiser plays {} with its preset {bank}:{number} '{}' instead",
                missing.join(", "),
                if missing.len() == 1 { "it" } else { "them" },
                stand_in.name()
            )
        }))
    }

    /// A SoundFont 2 file that holds only what sounds for one note, with the modulators'
    /// effect on that note written into its generators; None when nothing sounds for it (or
    /// when what sounds would not fit in one file).
    pub fn note(&self, program: i32, key: i32, velocity: i32) -> Option<Vec<u8>> {
        let preset = self.preset_for(program)?;
        let mut preset_zones = Vec::new();
        let mut instruments = Vec::new();
        let mut sample_ids: Vec<usize> = Vec::new();
        for zone in &preset.zones {
            let pglobal = preset.global.as_ref();
            if !zone.covers(pglobal, gen_id::KEY_RANGE, key)
                || !zone.covers(pglobal, gen_id::VELOCITY_RANGE, velocity)
            {
                continue;
            }
            let Some(inst) = zone
                .get(gen_id::INSTRUMENT)
                .and_then(|i| self.instruments.get(i as u16 as usize))
            else {
                continue;
            };
            let iglobal = inst.global.as_ref();
            let mut inst_zones = Vec::new();
            for izone in &inst.zones {
                let sample = izone.get(gen_id::SAMPLE_ID).map(|s| s as u16 as usize);
                let Some(sample) = sample.filter(|s| *s < self.samples.len()) else {
                    continue;
                };
                if !izone.covers(iglobal, gen_id::KEY_RANGE, key)
                    || !izone.covers(iglobal, gen_id::VELOCITY_RANGE, velocity)
                {
                    continue;
                }
                let mods = effective(
                    &[VELOCITY_TO_FILTER, VELOCITY_TO_ATTENUATION],
                    iglobal,
                    izone,
                );
                let mut gens = merged(iglobal, izone);
                add(&mut gens, &mods, key, velocity, instrument_default, |m| {
                    if m.same_kind(&VELOCITY_TO_ATTENUATION) {
                        m.amount.saturating_sub(VELOCITY_TO_ATTENUATION.amount)
                    } else {
                        m.amount
                    }
                });
                keep_start_in_sample(&mut gens, self.sample_len(sample));
                let new_id = match sample_ids.iter().position(|s| *s == sample) {
                    Some(i) => i,
                    None => {
                        sample_ids.push(sample);
                        sample_ids.len() - 1
                    }
                };
                inst_zones.push(with_terminal(gens, gen_id::SAMPLE_ID, new_id));
            }
            if inst_zones.is_empty() {
                continue;
            }
            let mods = effective(&[], pglobal, zone);
            let mut gens = merged(pglobal, zone);
            add(&mut gens, &mods, key, velocity, |_| 0, |m| m.amount);
            preset_zones.push(with_terminal(gens, gen_id::INSTRUMENT, instruments.len()));
            instruments.push((inst.header[..20].to_vec(), inst_zones));
        }
        // a file counts its zones and generators in 16 bits (a zone has one generator or more)
        let gens = |zones: &mut dyn Iterator<Item = &Gens>| zones.map(Vec::len).sum::<usize>();
        let fits = gens(&mut preset_zones.iter()) < usize::from(u16::MAX)
            && gens(&mut instruments.iter().flat_map(|i| &i.1)) < usize::from(u16::MAX);
        if preset_zones.is_empty() || !fits {
            return None;
        }
        Some(self.write(&preset.header, preset_zones, instruments, &sample_ids))
    }

    /// The 16-bit sample data.
    fn smpl(&self) -> &[u8] {
        &self.file[self.smpl.clone()]
    }

    /// Samples in a sample's data (0 for a header that points outside the file).
    fn sample_len(&self, id: usize) -> i32 {
        let (start, end) = self.sample_span(id);
        (end - start) as i32
    }

    fn sample_span(&self, id: usize) -> (usize, usize) {
        let r = &self.samples[id];
        let word = |i: usize| u32::from_le_bytes([r[i], r[i + 1], r[i + 2], r[i + 3]]) as usize;
        let total = self.smpl().len() / 2;
        let end = word(24).min(total);
        (word(20).min(end), end)
    }

    /// The file for one note: the chosen preset's header with its kept zones, one instrument
    /// per kept preset zone, and the kept samples laid end to end.
    fn write(
        &self,
        preset_header: &[u8],
        preset_zones: Vec<Gens>,
        instruments: Vec<Instrument>,
        sample_ids: &[usize],
    ) -> Vec<u8> {
        let mut smpl = Vec::new();
        let mut shdr = Vec::new();
        for &id in sample_ids {
            let (start, end) = self.sample_span(id);
            let at = (smpl.len() / 2) as u32;
            // the guard points that follow the sample too, as the oscillator may read them
            let copy_end = (end + GUARD).min(self.smpl().len() / 2);
            smpl.extend_from_slice(&self.smpl()[2 * start..2 * copy_end]);
            smpl.resize(2 * (at as usize + (end - start) + GUARD), 0);
            let mut r = self.samples[id].clone();
            let moved = |i: usize, r: &mut Vec<u8>| {
                let old = u32::from_le_bytes([r[i], r[i + 1], r[i + 2], r[i + 3]]) as usize;
                let new = at + old.saturating_sub(start).min(end - start) as u32;
                r[i..i + 4].copy_from_slice(&new.to_le_bytes());
            };
            for field in [20, 24, 28, 32] {
                moved(field, &mut r);
            }
            // no stereo partner in the cut-down file
            r[42..44].copy_from_slice(&0u16.to_le_bytes());
            shdr.extend(r);
        }
        shdr.extend(terminal_record(b"EOS", SHDR_LEN));

        let mut phdr = preset_header.to_vec();
        phdr[24..26].copy_from_slice(&0u16.to_le_bytes());
        let (pbag, pgen) = bags_and_gens(&preset_zones);
        let mut eop = terminal_record(b"EOP", PHDR_LEN);
        eop[24..26].copy_from_slice(&(preset_zones.len() as u16).to_le_bytes());
        phdr.extend(eop);

        let mut inst = Vec::new();
        let mut all_inst_zones = Vec::new();
        for (name, zones) in instruments {
            let mut r = name;
            r.extend((all_inst_zones.len() as u16).to_le_bytes());
            inst.extend(r);
            all_inst_zones.extend(zones);
        }
        let mut eoi = terminal_record(b"EOI", INST_LEN);
        eoi[20..22].copy_from_slice(&(all_inst_zones.len() as u16).to_le_bytes());
        inst.extend(eoi);
        let (ibag, igen) = bags_and_gens(&all_inst_zones);
        let no_mods = vec![0u8; MOD_LEN];

        let mut pdta = b"pdta".to_vec();
        for (id, body) in [
            (b"phdr", &phdr),
            (b"pbag", &pbag),
            (b"pmod", &no_mods),
            (b"pgen", &pgen),
            (b"inst", &inst),
            (b"ibag", &ibag),
            (b"imod", &no_mods),
            (b"igen", &igen),
            (b"shdr", &shdr),
        ] {
            push_chunk(&mut pdta, id, body);
        }
        let mut info = b"INFO".to_vec();
        info.extend_from_slice(&self.info);
        let mut sdta = b"sdta".to_vec();
        push_chunk(&mut sdta, b"smpl", &smpl);
        let mut body = b"sfbk".to_vec();
        push_chunk(&mut body, b"LIST", &info);
        push_chunk(&mut body, b"LIST", &sdta);
        push_chunk(&mut body, b"LIST", &pdta);
        let mut file = Vec::with_capacity(body.len() + 8);
        push_chunk(&mut file, b"RIFF", &body);
        file
    }
}

/// The presets' or instruments' headers, bags, modulators and generators, as entries with
/// their zones. `bag_at`: where a header holds the index of its first bag.
fn read_level(
    [headers, bags, mods, gens]: [&[u8]; 4],
    record: usize,
    bag_at: usize,
    terminal: u16,
) -> anyhow::Result<Vec<Entry>> {
    let word = |b: &[u8], i: usize| usize::from(u16::from_le_bytes([b[i], b[i + 1]]));
    let headers: Vec<&[u8]> = headers.chunks_exact(record).collect();
    let bags: Vec<(usize, usize)> = bags
        .chunks_exact(BAG_LEN)
        .map(|b| (word(b, 0), word(b, 2)))
        .collect();
    let mods: Vec<Modulator> = mods.chunks_exact(MOD_LEN).map(Modulator::read).collect();
    let gens: Vec<(u16, i16)> = gens
        .chunks_exact(GEN_LEN)
        .map(|g| (word(g, 0) as u16, word(g, 2) as u16 as i16))
        .collect();
    let zone = |z: usize| -> anyhow::Result<Zone> {
        let ((g0, m0), (g1, m1)) = (bags[z], bags[z + 1]);
        match (gens.get(g0..g1), mods.get(m0..m1)) {
            (Some(g), Some(m)) => Ok(Zone {
                gens: g.to_vec(),
                mods: m.to_vec(),
            }),
            _ => bail!("a zone's generators or modulators lie past their list"),
        }
    };
    let mut entries = Vec::new();
    for pair in headers.windows(2) {
        let (first, last) = (word(pair[0], bag_at), word(pair[1], bag_at));
        if first > last || last >= bags.len() {
            bail!("a header's zones lie past the list of zones");
        }
        let mut zones = (first..last)
            .map(zone)
            .collect::<anyhow::Result<Vec<_>>>()?;
        let global = match zones.first() {
            Some(z) if z.gens.last().is_none_or(|g| g.0 != terminal) => Some(zones.remove(0)),
            _ => None,
        };
        zones.retain(|z| z.gens.last().is_some_and(|g| g.0 == terminal));
        entries.push(Entry {
            header: pair[0].to_vec(),
            global,
            zones,
        });
    }
    Ok(entries)
}

/// The modulators in force in a zone: the standard ones, replaced or joined by the global
/// zone's, replaced or joined by the zone's own.
fn effective(standard: &[Modulator], global: Option<&Zone>, local: &Zone) -> Vec<Modulator> {
    let mut list = standard.to_vec();
    for m in global.into_iter().flat_map(|g| &g.mods).chain(&local.mods) {
        match list.iter_mut().find(|x| x.same_kind(m)) {
            Some(x) => *x = *m,
            None => list.push(*m),
        }
    }
    list
}

/// A zone's generators with its global zone's beneath them (the zone's own win), without
/// the terminal one.
fn merged(global: Option<&Zone>, local: &Zone) -> Vec<(u16, i32)> {
    let mut out: Vec<(u16, i32)> = Vec::new();
    for &(id, v) in global.into_iter().flat_map(|g| &g.gens).chain(&local.gens) {
        if id == gen_id::INSTRUMENT || id == gen_id::SAMPLE_ID {
            continue;
        }
        match out.iter_mut().find(|g| g.0 == id) {
            Some(g) => g.1 = i32::from(v),
            None => out.push((id, i32::from(v))),
        }
    }
    out
}

/// Add the modulators' values at the note to the generators they aim at, a generator the
/// zone does not set starting from its default. `amount` says what a modulator adds at full
/// scale (its own amount, or its difference from one the synthesiser builds in).
fn add(
    gens: &mut Vec<(u16, i32)>,
    mods: &[Modulator],
    key: i32,
    velocity: i32,
    default: fn(u16) -> i32,
    amount: impl Fn(&Modulator) -> i16,
) {
    for m in mods {
        if !m.ours() {
            continue;
        }
        let scaled = Modulator {
            amount: amount(m),
            ..*m
        };
        let Some(v) = scaled.value(key, velocity) else {
            continue;
        };
        let v = v.round() as i32;
        if v == 0 {
            continue;
        }
        match gens.iter_mut().find(|g| g.0 == m.dest) {
            Some(g) => g.1 += v,
            None => gens.push((m.dest, default(m.dest) + v)),
        }
    }
}

/// A generator's value in an instrument zone that does not set it.
fn instrument_default(id: u16) -> i32 {
    match id {
        8 => 13500,
        21 | 23 | 25..=28 | 30 | 33..=36 | 38 => -12000,
        46 | 47 | 58 => -1,
        56 => 100,
        _ => 0,
    }
}

/// Keep a start offset moved by modulators within the sample (before its last point: a
/// voice needs at least one to play).
fn keep_start_in_sample(gens: &mut Vec<(u16, i32)>, len: i32) {
    let offsets = [gen_id::START_COARSE_OFFSET, gen_id::START_OFFSET];
    let get = |id| gens.iter().find(|g| g.0 == id).map_or(0, |g| g.1);
    let total = 32768 * get(offsets[0]) + get(offsets[1]);
    let kept = total.clamp(0, (len - 1).max(0));
    if kept != total {
        gens.retain(|g| !offsets.contains(&g.0));
        gens.extend([(offsets[0], kept / 32768), (offsets[1], kept % 32768)]);
    }
}

/// A zone's generators in the order the specification asks (key range, velocity range, the
/// rest, then the instrument or sample), each held to 16 bits.
fn with_terminal(mut gens: Vec<(u16, i32)>, terminal: u16, index: usize) -> Gens {
    let rank = |id: u16| match id {
        gen_id::KEY_RANGE => 0,
        gen_id::VELOCITY_RANGE => 1,
        _ => 2,
    };
    gens.sort_by_key(|g| rank(g.0));
    gens.push((terminal, index as i32));
    gens.into_iter()
        .map(|(id, v)| {
            let v = if matches!(id, gen_id::KEY_RANGE | gen_id::VELOCITY_RANGE) || id == terminal {
                v as u16 as i16
            } else {
                v.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16
            };
            (id, v)
        })
        .collect()
}

/// The bag and generator chunks for zones laid end to end, each with its terminal record.
fn bags_and_gens(zones: &[Gens]) -> (Vec<u8>, Vec<u8>) {
    let (mut bags, mut gens) = (Vec::new(), Vec::new());
    let mut n = 0u16;
    for zone in zones {
        bags.extend(n.to_le_bytes());
        bags.extend(0u16.to_le_bytes());
        for &(id, v) in zone {
            gens.extend(id.to_le_bytes());
            gens.extend(v.to_le_bytes());
            n += 1;
        }
    }
    bags.extend(n.to_le_bytes());
    bags.extend(0u16.to_le_bytes());
    gens.extend([0u8; GEN_LEN]);
    (bags, gens)
}

/// A terminal record ("EOP", "EOI", "EOS"): its name, then zeros.
fn terminal_record(name: &[u8], len: usize) -> Vec<u8> {
    let mut r = vec![0u8; len];
    r[..name.len()].copy_from_slice(name);
    r
}

#[cfg(test)]
pub(super) mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const RATE: i32 = 16000;

    fn m(source: u16, dest: u16, amount: i16, amount_source: u16) -> Modulator {
        Modulator {
            source,
            dest,
            amount,
            amount_source,
            transform: 0,
        }
    }

    fn zone(gens: &[(u16, u16)], mods: &[Modulator]) -> Zone {
        Zone {
            gens: gens.iter().map(|&(id, v)| (id, v as i16)).collect(),
            mods: mods.to_vec(),
        }
    }

    fn range(lo: u8, hi: u8) -> u16 {
        u16::from_le_bytes([lo, hi])
    }

    /// A SoundFont 2 file from presets (program, zones) and instruments (zones), whose
    /// sample 0 is a looped 440 Hz sine at key 69 and sample 1 the same an octave down.
    fn build(presets: &[(u16, Vec<Zone>)], instruments: &[Vec<Zone>]) -> Vec<u8> {
        let words = |w: &[u16]| -> Vec<u8> { w.iter().flat_map(|v| v.to_le_bytes()).collect() };
        let name = |s: &str| {
            let mut n = vec![0u8; 20];
            n[..s.len()].copy_from_slice(s.as_bytes());
            n
        };
        let level = |entries: Vec<(Vec<u8>, &[Zone])>, bag_at: usize, len: usize| {
            let (mut headers, mut bags, mut mods, mut gens) = (vec![], vec![], vec![], vec![]);
            let (mut nz, mut nm, mut ng) = (0u16, 0u16, 0u16);
            for (mut header, zones) in entries.into_iter().chain([(name("EO"), &[][..])]) {
                header.resize(len, 0);
                header[bag_at..bag_at + 2].copy_from_slice(&nz.to_le_bytes());
                headers.extend(header);
                for z in zones {
                    bags.extend(words(&[ng, nm]));
                    for &(id, v) in &z.gens {
                        gens.extend(words(&[id, v as u16]));
                    }
                    for x in &z.mods {
                        let w = [
                            x.source,
                            x.dest,
                            x.amount as u16,
                            x.amount_source,
                            x.transform,
                        ];
                        mods.extend(words(&w));
                    }
                    (nz, nm, ng) = (nz + 1, nm + z.mods.len() as u16, ng + z.gens.len() as u16);
                }
            }
            bags.extend(words(&[ng, nm]));
            mods.extend([0u8; MOD_LEN]);
            gens.extend([0u8; GEN_LEN]);
            (headers, bags, mods, gens)
        };
        let (phdr, pbag, pmod, pgen) = level(
            presets
                .iter()
                .map(|(program, zones)| {
                    let mut h = name("preset");
                    h.extend(words(&[*program, 0]));
                    (h, &zones[..])
                })
                .collect(),
            24,
            PHDR_LEN,
        );
        let (inst, ibag, imod, igen) = level(
            instruments
                .iter()
                .map(|z| (name("instrument"), &z[..]))
                .collect(),
            20,
            INST_LEN,
        );
        let period = RATE as f32 / 440.0;
        let sine: Vec<i16> = (0..4000)
            .map(|i| (12000.0 * (std::f32::consts::TAU * i as f32 / period).sin()) as i16)
            .collect();
        let mut smpl = Vec::new();
        let mut shdr = Vec::new();
        for (i, key) in [69u8, 57].into_iter().enumerate() {
            let at = (i * (sine.len() + GUARD)) as u32;
            let mut r = name("sine");
            // loop over whole periods near the end
            let loop_len = (period * 20.0).round() as u32;
            for w in [at, at + 4000, at + 3900 - loop_len, at + 3900, RATE as u32] {
                r.extend(w.to_le_bytes());
            }
            r.extend([key, 0, 0, 0, 1, 0]);
            shdr.extend(r);
            smpl.extend(sine.iter().flat_map(|s| s.to_le_bytes()));
            smpl.extend([0u8; 2 * GUARD]);
        }
        shdr.extend(terminal_record(b"EOS", SHDR_LEN));
        let mut pdta = b"pdta".to_vec();
        for (id, body) in [
            (b"phdr", phdr),
            (b"pbag", pbag),
            (b"pmod", pmod),
            (b"pgen", pgen),
            (b"inst", inst),
            (b"ibag", ibag),
            (b"imod", imod),
            (b"igen", igen),
            (b"shdr", shdr),
        ] {
            push_chunk(&mut pdta, id, &body);
        }
        let mut info = b"INFO".to_vec();
        push_chunk(&mut info, b"ifil", &words(&[2, 1]));
        push_chunk(&mut info, b"INAM", b"test\0\0");
        let mut sdta = b"sdta".to_vec();
        push_chunk(&mut sdta, b"smpl", &smpl);
        let mut body = b"sfbk".to_vec();
        for list in [info, sdta, pdta] {
            push_chunk(&mut body, b"LIST", &list);
        }
        let mut file = Vec::new();
        push_chunk(&mut file, b"RIFF", &body);
        file
    }

    fn parse(bytes: &[u8]) -> rustysynth::SoundFont {
        rustysynth::SoundFont::new(&mut &bytes[..]).unwrap()
    }

    fn play(bytes: &[u8], program: i32, key: i32, velocity: i32) -> Vec<f32> {
        let sf = std::sync::Arc::new(parse(bytes));
        let mut settings = rustysynth::SynthesizerSettings::new(RATE);
        settings.enable_reverb_and_chorus = false;
        let mut synth = rustysynth::Synthesizer::new(&sf, &settings).unwrap();
        synth.process_midi_message(0, 0xC0, program, 0);
        synth.note_on(0, key, velocity);
        let (mut l, mut r) = (vec![0f32; 3000], vec![0f32; 3000]);
        synth.render(&mut l, &mut r);
        synth.note_off(0, key);
        let (mut l2, mut r2) = (vec![0f32; 2000], vec![0f32; 2000]);
        synth.render(&mut l2, &mut r2);
        l.into_iter()
            .chain(l2)
            .zip(r.into_iter().chain(r2))
            .map(|(a, b)| a + b)
            .collect()
    }

    /// Instrument region `i` of a cut-down note's file: (filter cutoff in cents,
    /// attenuation in cB, start offset).
    fn instrument_values(file: &[u8], i: usize) -> (f32, f32, i32) {
        let sf = parse(file);
        let r = &sf.get_instruments()[i].get_regions()[0];
        let cents = 1200.0 * (r.get_initial_filter_cutoff_frequency() / 8.176).log2();
        (
            cents,
            10.0 * r.get_initial_attenuation(),
            r.get_start_address_offset(),
        )
    }

    /// Two presets (programs 0 and 5) over two instruments, in layers and key splits: a
    /// SoundFont without modulators.
    pub(in crate::audio) fn plain() -> Vec<u8> {
        let split = vec![
            zone(
                &[
                    (gen_id::KEY_RANGE, range(0, 63)),
                    (54, 1),
                    (8, 7000),
                    (53, 1),
                ],
                &[],
            ),
            zone(
                &[
                    (gen_id::KEY_RANGE, range(64, 127)),
                    (54, 1),
                    (48, 60),
                    (53, 0),
                ],
                &[],
            ),
        ];
        let layer = vec![
            zone(&[(34, (-3000i16) as u16), (38, 2000)], &[]),
            zone(
                &[
                    (gen_id::VELOCITY_RANGE, range(0, 80)),
                    (54, 1),
                    (51, 12),
                    (53, 0),
                ],
                &[],
            ),
            zone(&[(54, 1), (52, 20), (53, 1)], &[]),
        ];
        build(
            &[
                (0, vec![zone(&[(41, 0)], &[])]),
                (
                    5,
                    vec![
                        zone(&[(8, (-1200i16) as u16)], &[]),
                        zone(&[(41, 1)], &[]),
                        zone(
                            &[(gen_id::KEY_RANGE, range(60, 70)), (48, 30), (41, 0)],
                            &[],
                        ),
                    ],
                ),
            ],
            &[split, layer],
        )
    }

    /// Moves preset `index` of a built file to `bank`.
    fn set_bank(file: &mut [u8], index: usize, bank: u16) {
        let phdr = file.windows(4).position(|w| w == b"phdr").unwrap() + 8;
        let at = phdr + index * PHDR_LEN + 22;
        file[at..at + 2].copy_from_slice(&bank.to_le_bytes());
    }

    /// `tests/fixtures/no_general_midi.sf2` is [`plain`] with its two presets moved to banks
    /// 128 and 1 (`tests/bad_input.rs` has the program refuse it)
    #[test]
    fn the_fixture_without_general_midi_is_the_plain_soundfont_moved_out_of_bank_0() {
        let mut moved = plain();
        set_bank(&mut moved, 0, 128);
        set_bank(&mut moved, 1, 1);
        let fixture = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/no_general_midi.sf2"
        );
        assert!(std::fs::read(fixture).unwrap() == moved);
    }

    #[test]
    fn a_soundfont_is_asked_for_the_general_midi_programs_it_plays() {
        let whole = plain();
        let font = Font::parse(whole.clone()).unwrap();
        assert_eq!(font.general_midi(&[]).unwrap(), None);
        assert_eq!(font.general_midi(&[(0, "Piano"), (5, "EP")]).unwrap(), None);
        let lacking = font
            .general_midi(&[(0, "Piano"), (19, "Church Organ"), (56, "Trumpet")])
            .unwrap()
            .unwrap();
        assert!(
            lacking.contains("no preset for Church Organ (0:19), Trumpet (0:56)")
                && lacking.contains("plays them with its preset 0:0 'preset'"),
            "{lacking}"
        );
        // a drum kit and a variation, nothing in bank 0: refused, whatever is asked for
        let mut other = whole;
        set_bank(&mut other, 0, 128);
        set_bank(&mut other, 1, 8);
        let font = Font::parse(other).unwrap();
        let refused = font.general_midi(&[(0, "Piano")]).unwrap_err().to_string();
        assert!(
            refused.contains("not a General MIDI SoundFont")
                && refused.contains("none of its 2 presets is in bank 0")
                && refused.contains("its banks: 8, 128"),
            "{refused}"
        );
        assert_eq!(font.general_midi(&[]).unwrap(), None);
    }

    #[test]
    fn without_modulators_a_cut_down_note_sounds_as_the_whole_file() {
        let whole = plain();
        let font = Font::parse(whole.clone()).unwrap();
        // from velocity 64 up the standard modulators the synthesiser lacks add nothing
        for (program, key, velocity) in [
            (0, 50, 100),
            (0, 90, 64),
            (5, 65, 70),
            (5, 65, 100),
            (5, 40, 127),
            (3, 70, 90),
        ] {
            let cut = font.note(program, key, velocity).unwrap();
            assert!(cut.len() < whole.len());
            let (a, b) = (
                play(&whole, program, key, velocity),
                play(&cut, 0, key, velocity),
            );
            assert!(a.iter().any(|x| x.abs() > 0.01));
            let differ = a.iter().zip(&b).filter(|(x, y)| x != y).count();
            assert_eq!(
                differ, 0,
                "program {program}, key {key}, velocity {velocity}"
            );
        }
        assert_eq!(font.unapplied(), 0);
    }

    #[test]
    fn velocity_and_key_move_the_generators_they_aim_at() {
        let low_filter = [
            (gen_id::KEY_RANGE, range(40, 100)),
            (54, 1),
            (8, 5000),
            (53, 0),
        ];
        let font = |imods: &[Modulator], local: &[Modulator], pmods: &[Modulator]| {
            let bytes = build(
                &[(0, vec![zone(&[], pmods), zone(&[(41, 0)], &[])])],
                &[vec![zone(&[], imods), zone(&low_filter, local)]],
            );
            Font::parse(bytes).unwrap()
        };
        let velocity_to_filter = m(0x0002, 8, 2400, 0);
        let f = font(&[velocity_to_filter], &[], &[]);
        let (cents, ..) = instrument_values(&f.note(0, 60, 100).unwrap(), 0);
        assert!(
            (cents - (5000.0 + 2400.0 * 100.0 / 127.0)).abs() < 1.5,
            "{cents}"
        );
        // the same at no amount in the zone itself cancels the global zone's
        let f = font(&[velocity_to_filter], &[m(0x0002, 8, 0, 0)], &[]);
        let (cents, ..) = instrument_values(&f.note(0, 60, 100).unwrap(), 0);
        assert!((cents - 5000.0).abs() < 1.5, "{cents}");
        // key, bipolar: -1200 cents at key 0 to +1200 at 127, times velocity as amount source
        let f = font(&[m(0x0203, 8, 1200, 0x0002)], &[], &[]);
        for (key, velocity) in [(40, 127), (100, 127), (100, 80)] {
            let (cents, ..) = instrument_values(&f.note(0, key, velocity).unwrap(), 0);
            let want = 5000.0 + 1200.0 * (2.0 * key as f32 / 127.0 - 1.0) * velocity as f32 / 127.0;
            assert!(
                (cents - want).abs() < 1.5,
                "key {key}: {cents} against {want}"
            );
        }
        // below velocity 64 the standard velocity-to-filter modulator closes the filter
        let f = font(&[], &[], &[]);
        let (cents, ..) = instrument_values(&f.note(0, 60, 40).unwrap(), 0);
        let want = 5000.0 - 2400.0 * (1.0 - 40.0 / 127.0);
        assert!((cents - want).abs() < 1.5, "{cents} against {want}");
        // a preset's modulator adds to its zone's offset
        let f = font(&[], &[], &[m(0x0003, 8, 1270, 0)]);
        let sf = parse(&f.note(0, 80, 100).unwrap());
        let factor = sf.get_presets()[0].get_regions()[0].get_initial_filter_cutoff_frequency();
        assert!((1200.0 * factor.log2() - 800.0).abs() < 1.5, "{factor}");
        // the velocity curve the synthesiser builds in is not applied twice, and a zone that
        // asks for less velocity sensitivity gets less
        let f = font(&[VELOCITY_TO_ATTENUATION], &[], &[]);
        assert_eq!(instrument_values(&f.note(0, 60, 64).unwrap(), 0).1, 0.0);
        let f = font(
            &[Modulator {
                amount: 480,
                ..VELOCITY_TO_ATTENUATION
            }],
            &[],
            &[],
        );
        let (_, atten, _) = instrument_values(&f.note(0, 60, 64).unwrap(), 0);
        let want = -480.0 * source_value(0x0502, 60, 64).unwrap();
        assert!((atten - want).abs() < 1.0, "{atten} against {want}");
        // a start offset moved below the sample's start stays at it
        let f = font(&[m(0x0003, gen_id::START_OFFSET, -3000, 0)], &[], &[]);
        assert_eq!(instrument_values(&f.note(0, 90, 100).unwrap(), 0).2, 0);
        // and one moved past its end (a 4000-point sample) stays before it, coarse or fine
        let f = font(&[m(0x0003, gen_id::START_COARSE_OFFSET, 2, 0)], &[], &[]);
        assert_eq!(instrument_values(&f.note(0, 90, 100).unwrap(), 0).2, 3999);
        // no zone at the key: nothing to play
        assert!(f.note(0, 20, 100).is_none());
    }

    /// A file whose sample data claims more than its list holds is refused by name: the
    /// synthesiser reads past the list, and the copies that carry each note's modulators
    /// cannot take their samples from it.
    #[test]
    fn sample_data_that_overruns_its_list_is_refused() {
        let mut file = plain();
        let at = file.windows(4).position(|w| w == b"smpl").unwrap();
        let size = u32::from_le_bytes(file[at + 4..at + 8].try_into().unwrap());
        file[at + 4..at + 8].copy_from_slice(&(size + 21).to_le_bytes());
        let err = Font::parse(file.clone()).err().expect("refused");
        assert!(format!("{err:#}").contains("no sample data"), "{err:#}");
        let programs = [(0, "Acoustic Grand Piano")];
        let path = std::path::Path::new("overrun.sf2");
        let err = crate::audio::soundfont::NoteRenderer::from_bytes(file, path, &programs)
            .err()
            .expect("refused");
        assert!(
            format!("{err:#}").contains("overrun.sf2: not a valid SoundFont"),
            "{err:#}"
        );
    }

    #[test]
    fn a_modulator_opens_the_filter_of_the_sound() {
        // a filter at 100 Hz mutes the 440 Hz sine; velocity opens it as far as 8 kHz
        let gens = [(54, 1), (8, 4400), (53, 0)];
        let opened = build(
            &[(0, vec![zone(&[(41, 0)], &[])])],
            &[vec![zone(&gens, &[m(0x0002, 8, 7000, 0)])]],
        );
        let font = Font::parse(opened.clone()).unwrap();
        let rms = |x: &[f32]| (x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32).sqrt();
        let whole = rms(&play(&opened, 0, 69, 127)[500..2500]);
        let cut = rms(&play(&font.note(0, 69, 127).unwrap(), 0, 69, 127)[500..2500]);
        let soft = rms(&play(&font.note(0, 69, 20).unwrap(), 0, 69, 20)[500..2500]);
        assert!(
            cut > 10.0 * whole,
            "{cut} against {whole} without the modulator"
        );
        assert!(cut > 5.0 * soft, "{cut} loud against {soft} soft");
    }

    #[test]
    fn sources_follow_their_curves() {
        let close = |a: Option<f32>, b: f32| (a.unwrap() - b).abs() < 1e-4;
        // velocity, linear: positive and negative, unipolar and bipolar
        assert!(close(source_value(0x0002, 60, 127), 1.0));
        assert!(close(source_value(0x0102, 60, 127), 0.0));
        assert!(close(source_value(0x0202, 60, 0), -1.0));
        assert!(close(source_value(0x0302, 60, 0), 1.0));
        // concave and convex: 0 and 1 at the ends, below and above the line between
        let concave = -(5.0 / 12.0) * (1.0f32 - 64.0 / 127.0).log10();
        assert!(close(source_value(0x0402, 60, 64), concave));
        assert!(close(source_value(0x0402, 60, 127), 1.0));
        assert!(close(source_value(0x0802, 60, 0), 0.0));
        assert!(source_value(0x0802, 60, 64).unwrap() > 0.5);
        // the synthesiser's own velocity curve: 40 log10(v / 127) dB at 960 cB
        let v = 100.0f32;
        assert!(close(
            source_value(0x0502, 60, 100).map(|x| 96.0 * x),
            -40.0 * (v / 127.0).log10()
        ));
        // switch, and a key as source
        assert!(close(source_value(0x0C03, 64, 100), 1.0));
        assert!(close(source_value(0x0C03, 63, 100), 0.0));
        assert!(close(source_value(0x0E03, 63, 100), -1.0));
        // controllers at rest: volume at 100, the breath controller at 0
        assert!(close(source_value(0x0087, 60, 100), 100.0 / 127.0));
        assert!(close(source_value(0x0182, 60, 100), 1.0));
        // the pitch wheel moves while notes sound; a link is not a source
        assert!(source_value(0x020E, 60, 100).is_none());
        assert!(source_value(0x007F, 60, 100).is_none());
    }

    #[test]
    fn counts_what_it_cannot_apply() {
        let wheel = m(0x020E, 8, 300, 0);
        let bytes = build(
            &[(0, vec![zone(&[(41, 0)], &[wheel, m(0x0002, 8, 100, 0)])])],
            &[vec![zone(
                &[(54, 1), (53, 0)],
                &[wheel, wheel, m(0x0081, 6, 50, 0)],
            )]],
        );
        // the modulation wheel's vibrato is the synthesiser's own
        let font = Font::parse(bytes).unwrap();
        assert_eq!(font.unapplied(), 3);
        assert!(font.warning(std::path::Path::new("x.sf2")).is_none());
        let many = vec![wheel; 17];
        let bytes = build(
            &[(0, vec![zone(&[(41, 0)], &many)])],
            &[vec![zone(&[(54, 1), (53, 0)], &[])]],
        );
        let w = Font::parse(bytes)
            .unwrap()
            .warning(std::path::Path::new("x.sf2"));
        assert!(w.unwrap().starts_with("x.sf2: 17 of its modulators"));
    }

    #[test]
    fn bad_bytes_are_errors() {
        assert!(Font::parse(Vec::new()).is_err());
        assert!(Font::parse(b"RIFF\x04\0\0\0sfbk".to_vec()).is_err());
        let mut bytes = plain();
        // the first preset's bag index past the bags
        let at = bytes.windows(4).position(|w| w == b"phdr").unwrap() + 8 + 24;
        bytes[at..at + 2].copy_from_slice(&900u16.to_le_bytes());
        assert!(Font::parse(bytes).is_err());
    }
}
