#!/usr/bin/env bash
# Sound that no shipped pitch model heard in training, for `latent-lab eval --data`:
#   - three General MIDI SoundFonts other than FluidR3 that the program's own synthesiser
#     plays as their authors meant: TimGM6mb, the Csound GM bank and the OPL3 FM bank;
#   - two folders of WAV notes from other synthesisers, one sub-folder per instrument, one
#     file per MIDI pitch (`60.wav`): TiMidity++ playing the freepats patches (`timidity`),
#     and FluidSynth playing MuseScore General (`musescore`): another synthesiser's filters,
#     envelopes and interpolation. (MuseScore General itself also works as
#     `--data soundfont:PATH`: the program's synthesiser applies its modulators.)
#   - the same notes as one unnamed recording per instrument (`timidity_takes`,
#     `musescore_takes`), for the program to cut at onsets and label by YIN.
# Installs timidity, freepats, fluidsynth and the SoundFonts when missing (Debian/Ubuntu).
# Usage: scripts/unheard_notes.sh [OUT_DIR]   (default: target/unheard)
# Then, for example:
#   latent-lab eval models/sps_music.safetensors --data soundfont:/usr/share/sounds/sf2/TimGM6mb.sf2
#   latent-lab eval models/sps_music.safetensors --data wav-dir:target/unheard/timidity
set -euo pipefail

out=${1:-target/unheard}
musescore=/usr/share/sounds/sf2/MuseScore_General_Full.sf2
[ -f "$musescore" ] || musescore=/usr/share/sounds/sf3/MuseScore_General_Lite.sf3
need=()
command -v timidity >/dev/null 2>&1 || need+=(timidity)
command -v fluidsynth >/dev/null 2>&1 || need+=(fluidsynth)
[ -d /usr/share/midi/freepats ] || need+=(freepats)
[ -f /usr/share/sounds/sf2/TimGM6mb.sf2 ] || need+=(timgm6mb-soundfont)
[ -f /usr/share/sounds/sf2/sf_GMbank.sf2 ] || need+=(csound-soundfont)
[ -f /usr/share/sounds/sf2/OPL-3_FM_128M.sf2 ] || need+=(opl3-soundfont)
[ -f "$musescore" ] || need+=(musescore-general-soundfont-small)
"$(dirname "$0")/apt_install.sh" ${need[@]+"${need[@]}"}

python3 - "$out" "$musescore" <<'PY'
import os, struct, subprocess, sys, tempfile, wave

RATE = 16000
FIRST, LAST = 45, 91
# each note is held HOLD seconds in a slot of SLOT seconds (long enough for the last one's
# release and reverb to die away); the file keeps HOLD + RELEASE
HOLD, RELEASE, SLOT = 0.5, 0.25, 2.0

def vlq(n):
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    return bytes(reversed(out))

def scale_file(program):
    """A type-0 MIDI file at 480 ticks per beat and 120 bpm (960 ticks a second): every
    pitch FIRST..LAST of one General MIDI program at velocity 100, one per SLOT. One file
    per instrument rather than per note: a synthesiser loads a large SoundFont once."""
    hold, rest = int(960 * HOLD), int(960 * (SLOT - HOLD))
    events = vlq(0) + bytes([0xC0, program])
    for i, pitch in enumerate(range(FIRST, LAST + 1)):
        events += vlq(0 if i == 0 else rest) + bytes([0x90, pitch, 100])
        events += vlq(hold) + bytes([0x80, pitch, 0])
    events += vlq(rest) + b"\xff\x2f\x00"
    track = b"MTrk" + struct.pack(">I", len(events)) + events
    return b"MThd" + struct.pack(">IHHH", 6, 0, 1, 480) + track

def read_mono(path):
    with wave.open(path) as w:
        assert w.getsampwidth() == 2 and w.getframerate() == RATE, path
        ch = w.getnchannels()
        raw = w.readframes(w.getnframes())
    n = len(raw) // 2
    samples = struct.unpack(f"<{n}h", raw)
    return [sum(samples[i:i + ch]) // ch for i in range(0, n, ch)]

def write_mono(path, samples):
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(struct.pack(f"<{len(samples)}h", *samples))

synths = {
    "timidity": lambda mid, wav: ["timidity", "-Ow", "-s", str(RATE), "--output-mono",
                                  "-o", wav, mid],
    # reverb and chorus off, as the program's own synthesiser plays
    "musescore": lambda mid, wav: ["fluidsynth", "-ni", "-R", "0", "-C", "0", "-g", "0.5",
                                   "-r", str(RATE), "-T", "wav", "-O", "s16", "-F", wav,
                                   sys.argv[2], mid],
}
programs = {"piano": 0, "organ": 19, "nylon_guitar": 24, "violin": 40, "trumpet": 56,
            "oboe": 68, "clarinet": 71, "flute": 73}
root = sys.argv[1]
with tempfile.TemporaryDirectory() as tmp:
    mid, wav = os.path.join(tmp, "scale.mid"), os.path.join(tmp, "scale.wav")
    for synth, command in synths.items():
        for name, program in programs.items():
            with open(mid, "wb") as f:
                f.write(scale_file(program))
            subprocess.run(command(mid, wav), check=True, capture_output=True)
            audio = read_mono(wav)
            os.makedirs(os.path.join(root, synth, name), exist_ok=True)
            take = []
            for i, pitch in enumerate(range(FIRST, LAST + 1)):
                start = int(RATE * SLOT * i)
                note = audio[start:start + int(RATE * (HOLD + RELEASE))]
                write_mono(os.path.join(root, synth, name, f"{pitch}.wav"), note)
                take += note
            # the same notes as one recording without names: the program has to find where
            # each note starts and which it is
            os.makedirs(os.path.join(root, f"{synth}_takes", name), exist_ok=True)
            write_mono(os.path.join(root, f"{synth}_takes", name, "take.wav"), take)
        print(f"{root}/{synth}: {len(programs)} instruments, MIDI pitches {FIRST}-{LAST}")
        print(f"{root}/{synth}_takes: the same notes, one unnamed take per instrument")
PY
