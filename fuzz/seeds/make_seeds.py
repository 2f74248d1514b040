#!/usr/bin/env python3
"""Write the seed corpus for the fuzz targets into fuzz/seeds/<target>/.

Run from anywhere: python3 fuzz/seeds/make_seeds.py
Only the standard library is used; the files are tiny and deterministic.
"""

import json
import math
import struct
import wave
from pathlib import Path

HERE = Path(__file__).resolve().parent


def safetensors(tensors, metadata):
    """tensors: list of (name, dtype, shape, raw bytes). Returns the file bytes:
    8-byte little-endian header length, the JSON header, then the data."""
    header = {"__metadata__": metadata}
    data = b""
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the format allows space padding; keeps the data aligned
    return struct.pack("<Q", len(text)) + text + data


def f32(values):
    return struct.pack(f"<{len(values)}f", *values)


META = {
    "family": "test",
    "preset": "tiny",
    "config": json.dumps({"latent_dim": 2, "hidden": [4]}),
    "data": "none",
    "steps": "3",
    "seed": "7",
    "metrics": json.dumps({"r2": 0.5}),
    "version": "0",
}


def write_checkpoints(out):
    out.mkdir(parents=True, exist_ok=True)
    (out / "valid_2x3.safetensors").write_bytes(
        safetensors([("w", "F32", [2, 3], f32([0, 1, 2, 3, 4, 5]))], META))
    (out / "scalar_vector_bias.safetensors").write_bytes(safetensors(
        [("s", "F32", [], f32([1.5])),
         ("enc.bias", "F32", [4], f32([0.1, -0.2, 0.3, -0.4])),
         ("enc.weight", "F32", [4, 1], f32([1, 2, 3, 4]))],
        {"family": "test", "config": "{}"}))
    # metadata only, and a non-F32 tensor the loader must refuse
    (out / "no_tensors.safetensors").write_bytes(safetensors([], {"family": "x", "config": "null"}))
    (out / "f16_tensor.safetensors").write_bytes(
        safetensors([("h", "F16", [2], b"\x00\x3c\x00\xc0")], META))
    # regression: an empty tensor whose other dims overflow usize when multiplied; safetensors
    # accepts it (0 * ... = 0) but candle's stride computation overflowed (a panic with debug
    # assertions) until load_bytes refused such shapes
    (out / "empty_huge_dims.safetensors").write_bytes(
        safetensors([("e", "F32", [0, 2**32, 2**32], b"")], {"family": "x", "config": "{}"}))


def write_wavs(out):
    out.mkdir(parents=True, exist_ok=True)
    # 16-bit mono, 8 kHz, 32 samples of a sine
    with wave.open(str(out / "pcm16_mono.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"".join(struct.pack("<h", int(12000 * math.sin(i / 3))) for i in range(32)))
    # 8-bit (unsigned) stereo, 11025 Hz, 16 frames
    with wave.open(str(out / "pcm8_stereo.wav"), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(1)
        w.setframerate(11025)
        w.writeframes(bytes((128 + 5 * i) % 256 for i in range(32)))
    # 24-bit mono, 16 frames
    with wave.open(str(out / "pcm24_mono.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(3)
        w.setframerate(16000)
        w.writeframes(b"".join(struct.pack("<i", i * 300000)[:3] for i in range(-8, 8)))
    # 32-bit IEEE float mono (format tag 3): `wave` writes PCM only, so by hand
    samples = [math.sin(i / 2) for i in range(16)] + [1.5, -2.0]  # out-of-range values get clamped
    data = f32(samples)
    fmt = struct.pack("<HHIIHH", 3, 1, 8000, 8000 * 4, 4, 32)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    (out / "float32_mono.wav").write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)


def write_idx(out: Path) -> None:
    """MNIST IDX files: images (magic 0x00000803) and labels (0x00000801), big-endian sizes."""
    out.mkdir(parents=True, exist_ok=True)
    pixels = bytes((7 * i) % 256 for i in range(2 * 4 * 3))
    (out / "images_2x4x3.idx3").write_bytes(struct.pack(">IIII", 0x803, 2, 4, 3) + pixels)
    (out / "labels_3.idx1").write_bytes(struct.pack(">II", 0x801, 3) + bytes([0, 9, 4]))
    # faults the reader must name: truncated data, a size larger than the file, a bad label
    (out / "truncated.idx3").write_bytes(struct.pack(">IIII", 0x803, 2, 4, 3) + pixels[:5])
    (out / "huge_dims.idx3").write_bytes(struct.pack(">IIII", 0x803, 0xFFFFFFFF, 0xFFFFFFFF, 2))
    (out / "label_12.idx1").write_bytes(struct.pack(">II", 0x801, 2) + bytes([1, 12]))


if __name__ == "__main__":
    write_checkpoints(HERE / "checkpoint")
    write_wavs(HERE / "wav")
    write_idx(HERE / "idx")
    for p in sorted(HERE.glob("*/*")):
        print(f"{p.relative_to(HERE)}  {p.stat().st_size} bytes")
