#!/usr/bin/env bash
# Time to bar: trains each lab's default preset as its model card does (seed 0, the given
# threads), timestamps every line the training prints, and reports the first in-training
# evaluation at which every bar that evaluation measures is met, with the wall time since
# the command started (data generation included), then the bars of the saved model as
# `latent-lab eval` measures them.
# Usage: scripts/time_to_bar.sh [THREADS] [FAMILY ...]   (default: 2 threads, every lab)
#   LATENT_LAB=path/to/latent-lab overrides target/release/latent-lab.
# Run it on a quiet machine: other work on the cores lengthens every figure.
set -euo pipefail
threads=${1:-2}
shift || true
families=("$@")
[ ${#families[@]} -eq 0 ] && families=(sps-music sps-vision v3-notes v3-digits ievae vae-relevance)
bin=${LATENT_LAB:-target/release/latent-lab}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

echo "| lab (default preset, seed 0) | steps | first evaluation at the bars | whole run | saved model against the bars |"
echo "|---|---|---|---|---|"
for fam in "${families[@]}"; do
  args=(train "$fam" --seed 0 --threads "$threads" --out "$dir/m.safetensors")
  # the relevance lab's model card trains on e+e- -> mu+mu-
  [ "$fam" = vae-relevance ] && args+=(--data ee-mumu)
  start=$(date +%s%N)
  "$bin" "${args[@]}" 2>&1 | while IFS= read -r line; do
    printf '%s %s\n' "$(( ($(date +%s%N) - start) / 1000000 ))" "$line"
  done > "$dir/log"
  "$bin" eval "$dir/m.safetensors" --json > "$dir/eval.json"
  python3 - "$fam" "$dir/log" "$dir/eval.json" <<'EOF'
import json, re, sys

fam, log, final = sys.argv[1], sys.argv[2], json.load(open(sys.argv[3]))
v3 = {"codebook_purity": (0.95, 1), "codebook_one_to_one": (0.90, 1), "content_knn_auc": (0.9, 1),
      "style_knn_auc": (0.9, 1), "content_on_style_knn_auc": (0.3, -1)}
# (bar, 1 for at least / -1 for at most); the first keys must be in an evaluation for it to count
bars = {
    "sps-music": {"r2_embedding": (0.99, 1), "r2_embedding_unseen": (0.95, 1), "r2_synthesis": (0.98, 1)},
    "sps-vision": {"r2_min": (0.95, 1)},
    "v3-notes": v3,
    "v3-digits": v3,
    "ievae": {"accuracy": (0.98, 1), "swap_accuracy": (0.90, 1), "class_from_pose_probe": (0.25, -1)},
    "vae-relevance": {"relevant_dims": (final.get("intrinsic_dim"), 0)},
}[fam]
required = {"sps-music": 2, "sps-vision": 1, "v3-notes": 5, "v3-digits": 5, "ievae": 2,
            "vae-relevance": 1}[fam]

def unmet(values):
    out = []
    for key, (bar, sense) in bars.items():
        if key not in values or bar is None:
            continue
        v = values[key]
        if (sense == 1 and v < bar) or (sense == -1 and v > bar) or (sense == 0 and v != bar):
            out.append(f"{key} {v:.3f}")
    return out

first, steps, total = None, "?", None
for line in open(log):
    t, _, text = line.partition(" ")
    if m := re.match(r"step (\d+): (.*)", text):
        values = dict((k, float(v)) for k, v in re.findall(r"(\w+) (-?[\d.]+(?:e-?\d+)?)", m[2]))
        if first is None and sum(k in values for k in list(bars)[:required]) == required \
                and not unmet(values):
            first = (int(m[1]), float(t) / 1000)
    if m := re.match(r"finished after (\d+) steps", text):
        steps, total = m[1], float(t) / 1000
left = unmet(final)
print(f"| {fam} | {steps} | "
      + (f"step {first[0]}, {first[1]:.0f} s" if first else "not reached")
      + f" | {total:.0f} s | " + ("all met" if not left else "unmet: " + ", ".join(left)) + " |")
EOF
done
