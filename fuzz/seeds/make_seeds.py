#!/usr/bin/env python3
"""Write the seed corpus for the fuzz targets into fuzz/seeds/<target>/.

Run from anywhere: python3 fuzz/seeds/make_seeds.py
Only the standard library is used; the files are tiny and deterministic.
"""

import collections
import io
import json
import math
import pickle
import shutil
import struct
import sys
import types
import wave
import zipfile
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


def npy(descr, shape, raw, keys=("descr", "fortran_order", "shape"), quote=True):
    """An .npy file, version 1.0: magic, header length, the header dict padded to 64, data."""
    q = "'" if quote else ""
    values = {"descr": f"'{descr}'", "fortran_order": "False", "shape": repr(tuple(shape))}
    header = "{" + ", ".join(f"{q}{k}{q}: {values[k]}" for k in keys) + ", }"
    header += " " * (-(len(header) + 11) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + raw


def write_npy(out):
    out.mkdir(parents=True, exist_ok=True)
    (out / "f32_2x3.npy").write_bytes(npy("<f4", (2, 3), f32([0, 0.5, 1, 0.25, 0.75, 1])))
    (out / "f64_4.npy").write_bytes(npy("<f8", (4,), struct.pack("<4d", 0, 0.1, 0.2, 1)))
    (out / "f16_2.npy").write_bytes(npy("<f2", (2,), struct.pack("<2e", 0.5, 1)))
    # what numpy never writes but the reader accepts: unquoted keys, another key order
    (out / "unquoted_keys.npy").write_bytes(
        npy("<f4", (1, 2), f32([1, 2]), keys=("shape", "descr", "fortran_order"), quote=False))


def write_pytorch(out):
    """Two small float tensors as torch.save writes a state_dict (a zip holding data.pkl, one
    file per storage and version), pickled without torch by stand-ins with torch's names."""
    out.mkdir(parents=True, exist_ok=True)
    utils = types.ModuleType("torch._utils")
    torch = types.ModuleType("torch")

    def _rebuild_tensor_v2(*args):
        raise NotImplementedError

    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    FloatStorage = type("FloatStorage", (), {"__module__": "torch"})
    torch.FloatStorage = FloatStorage
    torch._utils = utils
    sys.modules.update({"torch": torch, "torch._utils": utils})

    class Storage:
        def __init__(self, key, n):
            self.key, self.n = key, n

    class Tensor:
        def __init__(self, storage, shape):
            self.storage, self.shape = storage, shape

        def __reduce__(self):
            stride = tuple(math.prod(self.shape[i + 1:]) for i in range(len(self.shape)))
            return (_rebuild_tensor_v2,
                    (self.storage, 0, self.shape, stride, False, collections.OrderedDict()))

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, Storage):
                return ("storage", FloatStorage, obj.key, "cpu", obj.n)
            return None

    state = collections.OrderedDict(
        [("fc.weight", Tensor(Storage("0", 6), (2, 3))), ("fc.bias", Tensor(Storage("1", 2), (2,)))])
    pkl = io.BytesIO()
    Pickler(pkl, protocol=2).dump(state)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for name, data in [
            ("archive/data.pkl", pkl.getvalue()),
            ("archive/data/0", f32([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])),
            ("archive/data/1", f32([1, -1])),
            ("archive/version", b"3\n"),
        ]:
            # a fixed date, so that the file is the same on every run
            z.writestr(zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0)), data)
    (out / "two_tensors.pt").write_bytes(buf.getvalue())


def write_soundfont(out):
    """The test fixture SoundFont: one preset, one sample, no General MIDI names."""
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy(HERE.parent.parent / "tests" / "fixtures" / "no_general_midi.sf2", out)


def write_take(out):
    """Scores for the `take` target, four bytes a note: pitch (MIDI 24 + byte % 84), length
    ((byte + 1) * 128 samples at 16 kHz), loudness (/255) and kind (low two bits: sine, saw,
    square, noise; 0x4: a sub-octave beside it; 0x10 in bits 4-5: a gap of silence before it)."""
    out.mkdir(parents=True, exist_ok=True)

    def score(notes):
        return bytes(b for note in notes for b in note)

    major = [0, 2, 4, 5, 7, 9, 11, 12]
    (out / "scale_with_gaps.bin").write_bytes(score((36 + k, 31, 200, 0x11) for k in major))
    (out / "legato_sines.bin").write_bytes(score((36 + k, 31, 160, 0x00) for k in major))
    (out / "organ_sub_octave.bin").write_bytes(score((48 + k, 47, 220, 0x15) for k in major[:4]))
    (out / "octave_leaps_and_noise.bin").write_bytes(
        score([(45, 31, 200, 0x10), (57, 15, 200, 0x00), (45, 31, 200, 0x00), (45, 15, 90, 0x13)]))


if __name__ == "__main__":
    write_checkpoints(HERE / "checkpoint")
    write_wavs(HERE / "wav")
    write_idx(HERE / "idx")
    write_npy(HERE / "npy")
    write_pytorch(HERE / "pytorch")
    write_soundfont(HERE / "soundfont")
    write_take(HERE / "take")
    for p in sorted(HERE.glob("*/*")):
        print(f"{p.relative_to(HERE)}  {p.stat().st_size} bytes")
