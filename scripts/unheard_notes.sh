#!/usr/bin/env bash
# Sound that no shipped pitch model heard in training, for `latent-lab eval --data`:
#   - two General MIDI SoundFonts other than FluidR3 (TimGM6mb and the Csound GM bank), and
#   - a folder of WAV notes from another synthesiser (TiMidity++ playing the freepats
#     patches), one sub-folder per instrument, one file per MIDI pitch (`60.wav`).
# Installs timidity, freepats and the two SoundFonts when missing (Debian/Ubuntu).
# Usage: scripts/unheard_notes.sh [OUT_DIR]   (default: target/unheard)
# Then, for example:
#   latent-lab eval models/sps_music.safetensors --data soundfont:/usr/share/sounds/sf2/TimGM6mb.sf2
#   latent-lab eval models/sps_music.safetensors --data wav-dir:target/unheard/timidity
set -euo pipefail

out=${1:-target/unheard}
need=()
command -v timidity >/dev/null 2>&1 || need+=(timidity)
[ -d /usr/share/midi/freepats ] || need+=(freepats)
[ -f /usr/share/sounds/sf2/TimGM6mb.sf2 ] || need+=(timgm6mb-soundfont)
[ -f /usr/share/sounds/sf2/sf_GMbank.sf2 ] || need+=(csound-soundfont)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -q
  $sudo apt-get install -y -q --no-install-recommends "${need[@]}"
fi

mkdir -p "$out/timidity"
python3 - "$out/timidity" <<'EOF'
import os, struct, subprocess, sys, tempfile

def vlq(n):
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    return bytes(reversed(out))

def one_note(program, pitch):
    """A type-0 MIDI file: one note of one General MIDI program, held half a second at
    480 ticks per beat and 120 bpm, then a quarter second of release."""
    events = (vlq(0) + bytes([0xC0, program]) + vlq(0) + bytes([0x90, pitch, 100])
              + vlq(480) + bytes([0x80, pitch, 0]) + vlq(240) + b"\xff\x2f\x00")
    track = b"MTrk" + struct.pack(">I", len(events)) + events
    return b"MThd" + struct.pack(">IHHH", 6, 0, 1, 480) + track

programs = {"piano": 0, "organ": 19, "nylon_guitar": 24, "violin": 40, "trumpet": 56,
            "oboe": 68, "clarinet": 71, "flute": 73}
root = sys.argv[1]
with tempfile.TemporaryDirectory() as tmp:
    mid = os.path.join(tmp, "note.mid")
    for name, program in programs.items():
        os.makedirs(os.path.join(root, name), exist_ok=True)
        for pitch in range(45, 92):
            with open(mid, "wb") as f:
                f.write(one_note(program, pitch))
            wav = os.path.join(root, name, f"{pitch}.wav")
            subprocess.run(["timidity", "-Ow", "-s", "16000", "--output-mono", "-o", wav, mid],
                           check=True, capture_output=True)
print(f"{root}: {len(programs)} instruments, MIDI pitches 45-91")
EOF
