#!/usr/bin/env bash
# The pitch lab's generic body, with and without the symmetry: the official convolutions and
# MLP at a quarter of their width (no log-frequency shift, no harmonic start, no octave
# judge), trained from the same seed with K = 4 symmetric copies and with K = 0 (the presets
# `generic` and `generic-no-symmetry`). Prints how
# r2_embedding and r2_embedding_unseen grow with training steps and wall time (every
# `every`-th in-training evaluation), then the final `eval` of each model.
# Usage: scripts/generic_pitch_curve.sh [STEPS] [SEED] [EVERY]   (default 16000 0 8)
#   LATENT_LAB=path/to/latent-lab overrides target/release/latent-lab; OUT=DIR keeps the
#   checkpoints and logs there. The two trainings run side by side, one thread each.
set -euo pipefail
steps=${1:-16000}
seed=${2:-0}
every=${3:-8}
bin=${LATENT_LAB:-target/release/latent-lab}
dir=${OUT:-$(mktemp -d)}
mkdir -p "$dir"
common=(--steps "$steps" --seed "$seed" --threads 1)

run() {
  local name=$1
  shift
  local start
  start=$(date +%s)
  "$bin" train sps-music "${common[@]}" "$@" --out "$dir/$name.safetensors" 2>&1 |
    while IFS= read -r line; do printf '%s %s\n' "$(($(date +%s) - start))" "$line"; done \
      > "$dir/$name.log"
  "$bin" eval "$dir/$name.safetensors" --json > "$dir/$name.json"
}
run sps --preset generic &
run no_symmetry --preset generic-no-symmetry &
wait

python3 - "$dir" "$every" <<'EOF'
import json, re, sys

d, every = sys.argv[1], int(sys.argv[2])
curves = {}
for name in ("sps", "no_symmetry"):
    rows = {}
    for line in open(f"{d}/{name}.log"):
        t, _, text = line.partition(" ")
        if m := re.match(r"step (\d+): r2_embedding ([-\d.]+), r2_embedding_unseen ([-\d.]+)", text):
            # the final evaluation repeats the last step's
            rows[int(m[1])] = (int(m[1]), int(t), float(m[2]), float(m[3]))
    curves[name] = sorted(rows.values())
print("| step | SPS r2_embedding | SPS unseen | no-symmetry r2_embedding | no-symmetry unseen |")
print("|---|---|---|---|---|")
for i, (s, t, r, u) in enumerate(curves["sps"]):
    if (i + 1) % every and i + 1 != len(curves["sps"]):
        continue
    other = next(((r2, u2) for s2, _, r2, u2 in curves["no_symmetry"] if s2 == s), None)
    o = f"{other[0]:.3f} | {other[1]:.3f}" if other else "- | -"
    print(f"| {s} | {r:.3f} | {u:.3f} | {o} |")
for name in ("sps", "no_symmetry"):
    j = json.load(open(f"{d}/{name}.json"))
    walls = curves[name][-1][1] if curves[name] else 0
    print(f"\n{name}: eval r2_embedding {j['r2_embedding']:.3f}, unseen "
          f"{j['r2_embedding_unseen']:.3f}, within instrument {j['r2_within_instrument']:.3f}, "
          f"octave off {j['octave_off_share']:.3f}; trained in {walls} s")
EOF
