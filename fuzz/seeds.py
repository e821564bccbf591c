"""Write the seed corpora of the fuzz harnesses to ``fuzz/seeds/<harness>/``.

Seeds are small, valid inputs from which libFuzzer mutates: 50-100 ms clips
in every container emovox decodes, real corpus file names and manifests,
label schemes, a real tiny-cnn artifact (with hand-made hostile variants),
and stream start messages. Deterministic; run again to regenerate::

    .venv/bin/python fuzz/seeds.py
"""

from __future__ import annotations

import io
import json
import struct
from pathlib import Path

import numpy as np
import soundfile as sf

HERE = Path(__file__).resolve().parent
SEEDS = HERE / "seeds"
SEPARATOR = b"\n--emovox-weights--\n"


def _write(folder: Path, name: str, data: bytes) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)


def audio_seeds(out: Path) -> None:
    from emovox.testing import ALL_FORMATS, encode_audio, speech_like

    y = speech_like(0.08, sample_rate_hz=16000, seed=1)
    for fmt in ALL_FORMATS:
        _write(out, f"{fmt}.bin", encode_audio(y, sample_rate_hz=16000, format=fmt))
    stereo = np.stack([y, -y])
    _write(out, "wav-stereo.bin", encode_audio(stereo, sample_rate_hz=8000, format="wav-pcm16"))
    buf = io.BytesIO()
    sf.write(buf, np.zeros((40, 6), np.float32), 48000, format="WAV", subtype="FLOAT")
    _write(out, "wav-6ch-float.bin", buf.getvalue())
    flac = bytearray(encode_audio(y, sample_rate_hz=16000, format="flac"))
    flac[22:26] = bytes([flac[22] & 0xF0, 0, 0, 0])  # STREAMINFO total samples (36 bits) = 0: unknown length
    _write(out, "flac-unknown-length.bin", bytes(flac))
    for fmt in ("aiff", "caf"):
        buf = io.BytesIO()
        sf.write(buf, y[:400], 16000, format=fmt.upper(), subtype="PCM_16")
        _write(out, f"{fmt}.bin", buf.getvalue())


NAMES = [
    "Actor_01|03-01-05-02-01-01-01.wav",
    "03-02-06-01-02-02-12.flac",
    "AudioWAV|1001_DFA_ANG_XX.wav",
    "1091_WSI_SAD_LO.flac",
    "OAF_angry|OAF_back_angry.wav",
    "YAF_pleasant_surprised|YAF_bite_ps.wav",
    "DC|a01.wav",
    "JE|sa15.flac",
    "wav|03a01Fa.wav",
    "16b10Wb.flac",
    "f1|dis-f1-b1.wav",
    "m3|neu-m3-l4.flac",
    "Angry|1234_angry_xx.wav",
]

MANIFESTS = [
    "path,label,speaker\na.wav,angry,s1\nb.flac,neutral,s2\n",
    "path,label,speaker,emotion,gender,language,intensity,sentence,corpus\n"
    "a.wav,joy,s1,happy,f,en,high,hello,mine\nb.flac,other,s2,,m,de,,,\n",
    "label;path;speaker\nanger;a.wav;1\n",
    '\ufeffpath,label,speaker\n"a.wav","fear","x"\n',
]


def name_seeds(out: Path) -> None:
    for i, name in enumerate(NAMES):
        _write(out, f"name-{i:02d}.bin", b"\x00" + name.encode())
    for i, text in enumerate(MANIFESTS):
        _write(out, f"csv-{i:02d}.bin", bytes([1 + 2 * (i % 2)]) + text.encode())


LABEL_SPECS = [
    "seven",
    "four",
    "neutral=neutral,calm=neutral,happy=happy,sad=-",
    "angry=negative,sad=negative,happy=positive,neutral=neutral",
    "anger=angry,fear=-",
]
LABEL_JSON = [
    {"classes": ["neg", "pos"], "mapping": {"angry": "neg", "happy": "pos", "sad": None}},
    {"angry": "angry", "sad": "sad", "neutral": None},
    {"classes": [], "mapping": {}},
]


def label_seeds(out: Path) -> None:
    for i, spec in enumerate(LABEL_SPECS):
        _write(out, f"spec-{i:02d}.bin", b"\x00" + spec.encode())
    for i, doc in enumerate(LABEL_JSON):
        _write(out, f"json-{i:02d}.bin", b"\x01" + json.dumps(doc).encode())


def _safetensors(header: dict, data: bytes) -> bytes:
    raw = json.dumps(header, separators=(",", ":")).encode()
    return struct.pack("<Q", len(raw)) + raw + data


def artifact_seeds(out: Path) -> bytes:
    import tempfile

    import torch

    from emovox.models.artifact import make_config, save_artifact
    from emovox.models.registry import build_model
    from emovox.models.spec import TaskSpec

    torch.manual_seed(0)
    spec = TaskSpec(labels=("neutral", "happy", "angry"), sample_rate_hz=16000, clip_s=0.5)
    model = build_model("tiny-cnn", spec, channels=2, n_mels=8)
    config = make_config(
        spec,
        "tiny-cnn",
        {"channels": 2, "n_mels": 8},
        preprocessing={"normalize": "peak", "crop": "center"},
        calibration={"temperature": 1.5},
        threshold=0.2,
    )
    with tempfile.TemporaryDirectory() as tmp:
        folder = save_artifact(Path(tmp) / "a", model, config)
        cfg = (folder / "config.json").read_bytes()
        weights = (folder / "model.safetensors").read_bytes()
    doc = json.loads(cfg)
    cfg = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()  # compact: fewer bytes to mutate
    _write(out, "artifact.bin", cfg + SEPARATOR + weights)
    _write(out, "config-only.bin", cfg)
    (length,) = struct.unpack("<Q", weights[:8])
    header = json.loads(weights[8 : 8 + length])
    body = weights[8 + length :]
    key = next(k for k in header if k != "__metadata__")
    variants = {
        "huge-shape": {key: {**header[key], "shape": [1 << 40, 1 << 20]}},
        "bad-dtype": {key: {**header[key], "dtype": "Q17"}},
        "past-end": {key: {**header[key], "data_offsets": [0, 1 << 50]}},
        "negative": {key: {**header[key], "shape": [-1]}},
    }
    for name, patch in variants.items():
        _write(out, f"weights-{name}.bin", cfg + SEPARATOR + _safetensors({**header, **patch}, body))
    _write(out, "weights-huge-header-len.bin", cfg + SEPARATOR + struct.pack("<Q", 1 << 60) + weights[8:])
    for name, change in {
        "huge-channels": lambda d: d["architecture"]["params"].update(channels=1 << 30),
        "huge-clip": lambda d: d["task"].update(clip_s=1e12),
        "string-rate": lambda d: d["task"].update(sample_rate_hz="16k"),
        "list-calibration": lambda d: d.update(calibration=[1.5]),
        "nan-threshold": lambda d: d.update(threshold="nan"),
        "path-fields": lambda d: d.update(onnx="../../etc/passwd", weights="/etc/passwd"),
    }.items():
        bad = json.loads(cfg)
        change(bad)
        _write(out, f"config-{name}.bin", json.dumps(bad, sort_keys=True).encode() + SEPARATOR + weights)
    return weights


STREAM = [
    {"format": "pcm16", "sample_rate_hz": 16000},
    {"type": "start", "format": "f32", "sample_rate_hz": 48000, "window_s": 2.0, "hop_s": 1.0},
    {"format": "webm"},
    {"format": "ogg", "window_s": 3},
    {"type": "end"},
]


def stream_seeds(out: Path) -> None:
    try:
        from emovox.service.stream_protocol import FORMATS
    except ImportError:
        FORMATS = ()
    docs = STREAM + [{"format": f, "sample_rate_hz": 16000} for f in FORMATS]
    for i, doc in enumerate(docs):
        _write(
            out, f"start-{i:02d}.bin", b"\x01" + json.dumps(doc).encode() + b"\n\x00\x00\x01\x00\x02\x00\x00\x80\x3f"
        )
    from emovox.testing import encode_audio, speech_like

    y = speech_like(0.3, sample_rate_hz=16000, seed=2)
    for fmt, key in (("webm", "webm-opus"), ("ogg", "ogg-opus")):
        _write(
            out,
            f"container-{fmt}.bin",
            b"\x01"
            + json.dumps({"format": fmt}).encode()
            + b"\n\x00"
            + encode_audio(y, sample_rate_hz=16000, format=key),
        )


def main() -> None:
    audio_seeds(SEEDS / "audio")
    name_seeds(SEEDS / "corpus_names")
    label_seeds(SEEDS / "labels")
    weights = artifact_seeds(SEEDS / "artifact")
    (HERE / "seed_weights.safetensors").write_bytes(weights)
    stream_seeds(SEEDS / "stream_protocol")
    total = sum(p.stat().st_size for p in SEEDS.rglob("*") if p.is_file())
    print(f"wrote {sum(1 for p in SEEDS.rglob('*') if p.is_file())} seeds ({total} bytes) under {SEEDS}")


if __name__ == "__main__":
    main()
