"""Decode the four corpora once to 16 kHz float32 and cache waveforms + log-mel.

Writes /tmp/emovox-flagship/<corpus>.npz with:
  meta: JSON list of {path, corpus, speaker, emotion, n}
  wave_<i>: float32 waveform (untrimmed), logmel_<i>, logmel_trim_<i>
Usage: .venv/bin/python experiments/flagship/cache.py
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

ROOT = Path(os.environ.get("EMOVOX_CORPORA", "/work/shared/corpora"))
OUT = Path("/tmp/emovox-flagship")

RAV = {
    "01": "neutral",
    "02": "calm",
    "03": "happy",
    "04": "sad",
    "05": "angry",
    "06": "fearful",
    "07": "disgust",
    "08": "surprised",
}
EMODB = {"W": "angry", "L": "boredom", "E": "disgust", "A": "fearful", "F": "happy", "T": "sad", "N": "neutral"}
EMOVO = {
    "dis": "disgust",
    "gio": "happy",
    "pau": "fearful",
    "rab": "angry",
    "sor": "surprised",
    "tri": "sad",
    "neu": "neutral",
}
TUREV = {"Angry": "angry", "Calm": "calm", "Happy": "happy", "Sad": "sad"}


def list_corpus(name: str) -> list[dict]:
    recs = []
    if name == "ravdess":
        for p in sorted((ROOT / "ravdess/Audio_Speech_Actors_01-24").glob("Actor_*/*.flac")):
            f = p.stem.split("-")
            recs.append({"path": str(p), "speaker": f[6], "emotion": RAV[f[2]], "intensity": f[3]})
    elif name == "emodb":
        for p in sorted((ROOT / "emodb/wav").glob("*.flac")):
            recs.append({"path": str(p), "speaker": p.stem[:2], "emotion": EMODB[p.stem[5]]})
    elif name == "emovo":
        for p in sorted((ROOT / "emovo").glob("*/*.flac")):
            e, s, _ = p.stem.split("-")
            recs.append({"path": str(p), "speaker": s, "emotion": EMOVO[e]})
    elif name == "turev":
        for p in sorted((ROOT / "turev-db/Sound Source").glob("*/*.flac")):
            recs.append({"path": str(p), "speaker": p.stem.split("_")[0], "emotion": TUREV[p.parent.name]})
    for r in recs:
        r["corpus"] = name
    return recs


def load(path: str) -> np.ndarray:
    y, sr = sf.read(path, dtype="float32", always_2d=True)
    y = y.mean(axis=1)
    if sr != 16000:
        import soxr

        y = soxr.resample(y, sr, 16000).astype(np.float32)
    return y


def main() -> None:
    import librosa

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))
    from emovox.models.flagship import FlagshipConfig, make_frontend

    torch.set_num_threads(2)
    fe = make_frontend(FlagshipConfig())
    OUT.mkdir(parents=True, exist_ok=True)
    for name in ["ravdess", "emodb", "emovo", "turev"]:
        out = OUT / f"{name}.npz"
        if out.exists():
            continue
        recs = list_corpus(name)
        arrays = {}
        for i, r in enumerate(recs):
            y = load(r["path"])
            _, (a, b) = librosa.effects.trim(y, top_db=35, frame_length=400, hop_length=160)
            if b - a < 4000:  # keep at least 0.25 s
                a, b = 0, len(y)
            r["n"] = len(y)
            r["trim"] = [int(a), int(b)]
            with torch.no_grad():
                lm = fe(torch.from_numpy(y)[None])[0].numpy()
                lmt = fe(torch.from_numpy(y[a:b].copy())[None])[0].numpy()
            arrays[f"wave_{i}"] = y
            arrays[f"logmel_{i}"] = lm.astype(np.float16)
            arrays[f"logmel_trim_{i}"] = lmt.astype(np.float16)
        np.savez(out, meta=np.array(json.dumps(recs)), **arrays)
        durs = np.array([r["n"] / 16000 for r in recs])
        tr = np.array([(r["trim"][1] - r["trim"][0]) / 16000 for r in recs])
        print(name, len(recs), "dur", durs.mean().round(2), "trimmed", tr.mean().round(2), flush=True)


if __name__ == "__main__":
    main()
