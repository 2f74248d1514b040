#!/usr/bin/env bash
# Side by side, in one run on this machine: a training step of latent-lab and of a PyTorch
# reference of the same step (scripts/pytorch/), with the same threads, and their ratio.
#   scripts/bench_pytorch.sh [THREADS]
# Sets up its own Python environment (target/pytorch-venv, torch from PyPI) on first use.
# Not part of `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
threads="${1:-2}"
venv=target/pytorch-venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip
  "$venv/bin/pip" install -q "torch==2.15.*" numpy
fi
cargo build --release -q
bin=target/release/latent-lab

ratio() { # latent-lab JSON, PyTorch JSON
  python3 - "$1" "$2" <<'PY'
import json, sys
ours, theirs = (json.loads(a)["ms_per_step_median"] for a in sys.argv[1:3])
print(f"latent-lab {ours:.1f} ms, PyTorch {theirs:.1f} ms: ratio {ours / theirs:.2f}")
PY
}

echo "sps-music, paper preset (32 sequences of 15 notes, K = 4), $threads threads"
ours=$(RAYON_NUM_THREADS=$threads $bin bench sps-music --what train-step --preset paper --json)
theirs=$("$venv/bin/python" scripts/pytorch/sps_music_paper_step.py --threads "$threads")
echo "  latent-lab: $ours"
echo "  PyTorch:    $theirs"
echo "  $(ratio "$ours" "$theirs")"

echo "vae-relevance, fast preset (batch 256), $threads threads"
ours=$(RAYON_NUM_THREADS=$threads $bin bench vae-relevance --what train-step --json)
theirs=$("$venv/bin/python" scripts/pytorch/relevance_fast_step.py --threads "$threads")
echo "  latent-lab: $ours"
echo "  PyTorch:    $theirs"
echo "  $(ratio "$ours" "$theirs")"
