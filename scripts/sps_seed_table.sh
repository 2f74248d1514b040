#!/usr/bin/env bash
# The SPS seed tables in models/README.md: for each of the presets fast, no-symmetry and
# beta-vae (with BODY=generic: generic, generic-no-symmetry and generic-beta-vae),
# `latent-lab train FAMILY --preset P --seed S --threads 1` for every seed, then
# `eval`; prints the median and range over the seeds of each metric. For sps-music the
# models are also measured on sound no model heard in training: four other General MIDI
# SoundFonts (TimGM6mb, the Csound bank, the OPL3 FM bank and MuseScore General), TiMidity++'s
# notes and FluidSynth's notes of MuseScore General (made by scripts/unheard_notes.sh, run
# first).
# Usage: scripts/sps_seed_table.sh sps-music|sps-vision [SEED ...]   (default seeds 0-5)
#   LATENT_LAB=path/to/latent-lab overrides target/release/latent-lab;
#   JOBS=N trainings at a time (default 2, one thread each);
#   OUT=DIR keeps every checkpoint, training log and evaluation there; a checkpoint
#   already in DIR is evaluated without training again (to resume a table);
#   SET="KEY=VALUE ..." adds these settings to every training (`--set KEY=VALUE`).
set -euo pipefail
family=$1
shift
seeds=("$@")
[ ${#seeds[@]} -eq 0 ] && seeds=(0 1 2 3 4 5)
bin=${LATENT_LAB:-target/release/latent-lab}
jobs=${JOBS:-2}
case ${BODY:-fast} in
  fast) presets=(fast no-symmetry beta-vae) ;;
  *) presets=("$BODY" "$BODY-no-symmetry" "$BODY-beta-vae") ;;
esac
unheard=${UNHEARD:-target/unheard}
musescore=/usr/share/sounds/sf2/MuseScore_General_Full.sf2
[ -f "$musescore" ] || musescore=/usr/share/sounds/sf3/MuseScore_General_Lite.sf3
if [ -n "${OUT:-}" ]; then
  dir=$OUT
  mkdir -p "$dir"
else
  dir=$(mktemp -d)
  trap 'rm -rf "$dir"' EXIT
fi

one() {
  local preset=$1 seed=$2 f="$dir/$1_$2" set=()
  for kv in ${SET:-}; do set+=(--set "$kv"); done
  [ -e "$f.safetensors" ] ||
    "$bin" train "$family" --preset "$preset" --seed "$seed" --threads 1 "${set[@]}" \
      --out "$f.safetensors" 2> "$f.log"
  {
    echo '{"default":'
    "$bin" eval "$f.safetensors" --json
    if [ "$family" = sps-music ]; then
      echo ',"TimGM6mb":'
      "$bin" eval "$f.safetensors" --data soundfont:/usr/share/sounds/sf2/TimGM6mb.sf2 --json
      echo ',"Csound GM":'
      "$bin" eval "$f.safetensors" --data soundfont:/usr/share/sounds/sf2/sf_GMbank.sf2 --json
      echo ',"OPL3 FM":'
      "$bin" eval "$f.safetensors" --data soundfont:/usr/share/sounds/sf2/OPL-3_FM_128M.sf2 --json
      echo ',"MuseScore General":'
      "$bin" eval "$f.safetensors" --data "soundfont:$musescore" --json
      echo ',"TiMidity":'
      "$bin" eval "$f.safetensors" --data "wav-dir:$unheard/timidity" --json
      echo ',"MuseScore":'
      "$bin" eval "$f.safetensors" --data "wav-dir:$unheard/musescore" --json
    fi
    echo '}'
  } > "$f.json"
}
export -f one
export family bin dir unheard musescore
for seed in "${seeds[@]}"; do
  for preset in "${presets[@]}"; do echo "$preset $seed"; done
done | xargs -P "$jobs" -L 1 bash -c 'one "$0" "$1"'

python3 - "$family" "$dir" "${presets[@]}" <<'EOF'
import glob, json, os, statistics, sys

family, d, presets = sys.argv[1], sys.argv[2], sys.argv[3:]
if family == "sps-music":
    cols = [("default", "r2_embedding", "held-out scales"),
            ("default", "r2_embedding_unseen", "unseen instruments"),
            ("default", "r2_within_instrument", "within-instrument"),
            ("default", "r2_synthesis", "synthesis"),
            ("default", "octave_off_share", "octave off"),
            ("TimGM6mb", "r2_embedding", "TimGM6mb"),
            ("Csound GM", "r2_embedding", "Csound GM"),
            ("OPL3 FM", "r2_embedding", "OPL3 FM"),
            ("MuseScore General", "r2_embedding", "MuseScore General"),
            ("TiMidity", "r2_embedding", "TiMidity notes"),
            ("MuseScore", "r2_embedding", "MuseScore (FluidSynth)")]
else:
    cols = [("default", k, k) for k in ("r2_x", "r2_y", "r2_z", "r2_min")]
    # how much of height a bent latent holds (eval's cubic fit)
    cols.append(("default", "r2_cubic_y", "height, cubic fit"))
    # the centroid distance is undefined (-) when no decoded frame holds a ball to find
    cols.append(("default", "equivariance_centroid_px", "equivariance (px)"))
    cols.append(("default", "equivariance_ball_found", "ball found"))
    cols.append(("default", "equivariance_mse", "equivariance (MSE)"))
print("| preset | " + " | ".join(c[2] for c in cols) + " |")
print("|---" * (len(cols) + 1) + "|")
for preset in presets:
    runs = [json.load(open(f)) for f in sorted(glob.glob(f"{d}/{preset}_[0-9]*.json"))]
    cells = []
    for src, key, _ in cols:
        vals = [r[src][key] for r in runs if isinstance(r[src].get(key), (int, float))]
        f = ".4f" if "mse" in key else ".3f"
        cells.append(f"{statistics.median(vals):{f}} ({min(vals):{f}}-{max(vals):{f}})"
                     if vals else "-")
    print(f"| `{preset}` | " + " | ".join(cells) + " |")
for preset in presets:
    by_seed = sorted(glob.glob(f"{d}/{preset}_[0-9]*.json"),
                     key=lambda f: int(f.rsplit("_", 1)[1].split(".")[0]))
    key = "r2_embedding" if family == "sps-music" else "r2_min"
    print(f"{key} by seed, `{preset}`: " +
          " / ".join(f"{json.load(open(f))['default'][key]:.3f}" for f in by_seed))
sets = "".join(f" --set {kv}" for kv in os.environ.get("SET", "").split())
print(f"\nmedian (min-max) over seeds of `latent-lab train {family} --preset P --seed S --threads 1{sets}`")
EOF
