#!/usr/bin/env bash
# An SPS lab's body with and without the symmetry: the presets `generic` and
# `generic-no-symmetry` (with BODY=fast: `fast` and `no-symmetry`) trained from the same
# seed, side by side on one thread each. Prints how the lab's R² grow with training steps
# and wall time (every `every`-th in-training evaluation), then the final `eval` of each
# model.
# Usage: scripts/sps_curve.sh sps-music|sps-vision [STEPS] [SEED] [EVERY] [TRAIN ARGS...]
#   (default steps: the preset's; seed 0; every 8th evaluation; the TRAIN ARGS, such as
#   `--set model.log_input=true`, go to both trainings)
#   LATENT_LAB=path/to/latent-lab overrides target/release/latent-lab; OUT=DIR keeps the
#   checkpoints and logs there; TWIN=0 trains the SPS model alone.
set -euo pipefail
family=$1
steps=${2:-}
seed=${3:-0}
every=${4:-8}
shift $(($# < 4 ? $# : 4))
bin=${LATENT_LAB:-target/release/latent-lab}
dir=${OUT:-$(mktemp -d)}
mkdir -p "$dir"
common=(--seed "$seed" --threads 1 "$@")
[ -n "$steps" ] && common+=(--steps "$steps")

run() {
  local name=$1
  shift
  local start
  start=$(date +%s)
  "$bin" train "$family" "${common[@]}" "$@" --out "$dir/$name.safetensors" 2>&1 |
    while IFS= read -r line; do printf '%s %s\n' "$(($(date +%s) - start))" "$line"; done \
      > "$dir/$name.log"
  "$bin" eval "$dir/$name.safetensors" --json > "$dir/$name.json"
}
body=${BODY:-generic}
case $body in
  fast) presets=(fast no-symmetry) ;;
  *) presets=("$body" "$body-no-symmetry") ;;
esac
run sps --preset "${presets[0]}" &
[ "${TWIN:-1}" = 0 ] || run no_symmetry --preset "${presets[1]}" &
wait

python3 - "$family" "$dir" "$every" <<'EOF'
import json, os, re, sys

family, d, every = sys.argv[1], sys.argv[2], int(sys.argv[3])
keys = (["r2_embedding", "r2_embedding_unseen"] if family == "sps-music"
        else ["r2_x", "r2_y", "r2_z", "r2_min"])
curves = {}
names = [n for n in ("sps", "no_symmetry") if os.path.exists(f"{d}/{n}.json")]
for name in names:
    rows = {}
    for line in open(f"{d}/{name}.log"):
        t, _, text = line.partition(" ")
        if m := re.match(r"step (\d+): (.*)", text):
            values = dict(re.findall(r"(\w+) ([-\d.]+)", m[2]))
            if all(k in values for k in keys):
                # the final evaluation repeats the last step's
                rows[int(m[1])] = (int(m[1]), int(t), [float(values[k]) for k in keys])
    curves[name] = sorted(rows.values())
print("| step | seconds | " + " | ".join(f"SPS {k}" for k in keys) + " | "
      + " | ".join(f"no-symmetry {k}" for k in keys) + " |")
print("|---" * (2 + 2 * len(keys)) + "|")
for i, (s, t, v) in enumerate(curves["sps"]):
    if (i + 1) % every and i + 1 != len(curves["sps"]):
        continue
    other = next((v2 for s2, _, v2 in curves.get("no_symmetry", []) if s2 == s), None)
    o = " | ".join(f"{x:.3f}" for x in other) if other else " | ".join("-" for _ in keys)
    print(f"| {s} | {t} | " + " | ".join(f"{x:.3f}" for x in v) + f" | {o} |")
for name in names:
    j = json.load(open(f"{d}/{name}.json"))
    walls = curves[name][-1][1] if curves[name] else 0
    extra = (["r2_within_instrument", "octave_off_share"] if family == "sps-music"
             else ["equivariance_centroid_px", "r2_by_throw_median"])
    shown = ", ".join(f"{k} {j[k]:.3f}" for k in keys + extra
                      if isinstance(j.get(k), (int, float)))
    print(f"\n{name}: eval {shown}; trained in {walls} s")
EOF
