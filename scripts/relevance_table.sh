#!/usr/bin/env bash
# The relevance lab's table in models/README.md: for each generated data set and seeds 0-2,
# `latent-lab train vae-relevance` with the defaults (latent 8, the default beta), then `eval`.
# Usage: scripts/relevance_table.sh [path/to/latent-lab]   (default target/release/latent-lab)
set -euo pipefail
bin=${1:-target/release/latent-lab}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
echo "| data | intrinsic | relevant_dims, seeds 0 / 1 / 2 | relevance of the dims in use (seed 0) | seconds per training |"
echo "|---|---|---|---|---|"
for data in circle sphere ee-mumu pp-mumu; do
  dims=() secs=()
  for seed in 0 1 2; do
    start=$(date +%s%N)
    "$bin" train vae-relevance --data "$data" --seed "$seed" --out "$dir/m.safetensors" 2>/dev/null
    end=$(date +%s%N)
    secs+=("$(( (end - start + 500000000) / 1000000000 ))")
    json=$("$bin" eval "$dir/m.safetensors" --json)
    dims+=("$(echo "$json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["relevant_dims"])')")
    if [ "$seed" = 0 ]; then
      rel=$(echo "$json" | python3 -c 'import json,sys; r=json.load(sys.stdin)["relevance"]; print(" ".join(f"{v:.2f}" for v in sorted(r, reverse=True)[:5]))')
      intrinsic=$(echo "$json" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("intrinsic_dim","-"))')
    fi
  done
  echo "| $data | $intrinsic | ${dims[0]} / ${dims[1]} / ${dims[2]} | $rel ... | ${secs[0]} / ${secs[1]} / ${secs[2]} |"
done
