//! How the `wav-dir` cutter labels unnamed recordings whose notes are known: each take holds
//! a chromatic run of notes of equal length, the first at MIDI `FIRST` (as
//! `scripts/unheard_notes.sh` writes them). The truth of a cut note is the note under its
//! start, past the hop within which its onset was found. Per take: how many notes were cut,
//! the share labelled at their pitch, an octave off and otherwise, then how many notes
//! `wav-dir` keeps (of several with one label, the longest) and how many of those are
//! mislabelled.
//!
//! ```text
//! cargo run --release --example take_labels -- FIRST NOTE_SECONDS TAKE.wav...
//! cargo run --release --example take_labels -- 45 0.75 target/unheard/*_takes/*/take.wav
//! ```

use anyhow::{Context, Result};
use latent_lab::audio::dsp::{SAMPLE_RATE, resample_linear};
use latent_lab::audio::wav::read_mono;
use latent_lab::sps_music::data::segment_and_label_at;

/// Where a cut note's truth is read, in samples from its start: an onset is found to within
/// a hop (256 samples), up to a hop before the note's own start, so four hops in lies within
/// the note itself.
const PAST_ONSET: usize = 1024;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    anyhow::ensure!(
        args.len() >= 3,
        "usage: take_labels FIRST NOTE_SECONDS TAKE.wav..."
    );
    let first: i32 = args[0].parse().context("FIRST: a MIDI pitch")?;
    let seconds: f64 = args[1]
        .parse()
        .context("NOTE_SECONDS: a length in seconds")?;
    let note_len = (seconds * f64::from(SAMPLE_RATE)).round() as usize;
    let (mut all, mut all_right, mut all_octave) = (0, 0, 0);
    println!(
        "take  notes cut  at pitch  an octave off  other  kept  kept mislabelled  \
         (truth -> label; ? not an octave)"
    );
    for path in &args[2..] {
        let (samples, rate) = read_mono(path.as_ref()).with_context(|| path.clone())?;
        let samples = if rate == SAMPLE_RATE {
            samples
        } else {
            resample_linear(&samples, rate, SAMPLE_RATE)
        };
        // (label, truth, length) of every cut note
        let mut notes: Vec<(i32, i32, usize)> = segment_and_label_at(&samples)
            .into_iter()
            .map(|(label, start, note)| {
                let truth = first + ((start + PAST_ONSET) / note_len) as i32;
                (label as i32, truth, note.len())
            })
            .collect();
        let (mut right, mut octave, mut wrong) = (0, 0, Vec::new());
        for &(label, truth, _) in &notes {
            match (label - truth).abs() {
                0 => right += 1,
                12 => {
                    octave += 1;
                    wrong.push(format!("{truth}->{label}"));
                }
                _ => wrong.push(format!("{truth}->{label}?")),
            }
        }
        let cut = notes.len();
        // what `wav-dir` keeps: of several notes with one label, the longest
        notes.sort_by(|a, b| a.0.cmp(&b.0).then(b.2.cmp(&a.2)));
        notes.dedup_by(|later, first| later.0 == first.0);
        let kept_wrong = notes.iter().filter(|n| n.0 != n.1).count();
        let n = cut.max(1) as f64;
        println!(
            "{path}  {cut}  {:.3}  {:.3}  {:.3}  {}  {kept_wrong}  {}",
            right as f64 / n,
            octave as f64 / n,
            (cut - right - octave) as f64 / n,
            notes.len(),
            wrong.join(" ")
        );
        all += cut;
        all_right += right;
        all_octave += octave;
    }
    let n = all.max(1) as f64;
    println!(
        "all  {all}  {:.3}  {:.3}  {:.3}",
        all_right as f64 / n,
        all_octave as f64 / n,
        (all - all_right - all_octave) as f64 / n
    );
    Ok(())
}
