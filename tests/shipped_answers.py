"""The shipped models' answers on a fixed sample of real corpus clips, recomputed and compared.

``shipped_answers.json`` holds, for each shipped model, the calibrated scores it
gave on 20 real clips (14 RAVDESS: actors 3 and 12, the seven emotions at strong
intensity (neutral: normal); 6 EMO-DB: speaker 03, one per emotion) when the models were last
built on purpose. The tests predict the clips again: the answers must be the
same to 1e-5 (a change of preprocessing, windowing, calibration or backend that
moves them is caught), and the labels are scored against the corpora's own
labels, so the accuracy figure is computed from predictions, not read back.

Regenerate (only after rebuilding a model on purpose, and say so in the change):
``python tests/shipped_answers.py``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from emovox.corpora import default_corpora_root

ANSWERS = Path(__file__).with_name("shipped_answers.json")
RAVDESS_EMOTIONS = {"01": "neutral", "03": "happy", "04": "sad", "05": "angry", "06": "fearful", "07": "disgust"}
RAVDESS_EMOTIONS["08"] = "surprised"
EMODB_EMOTIONS = {"N": "neutral", "F": "happy", "T": "sad", "W": "angry", "A": "fearful", "E": "disgust"}


def sample_clips() -> dict[str, str]:
    """``{path relative to the corpora root: true emotion}`` of the sample (20 clips)."""
    clips = {}
    for actor in (3, 12):
        for code, emotion in RAVDESS_EMOTIONS.items():
            intensity = "01" if emotion == "neutral" else "02"  # neutral has no strong intensity
            name = f"03-01-{code}-{intensity}-01-01-{actor:02d}.flac"
            clips[f"ravdess/Audio_Speech_Actors_01-24/Actor_{actor:02d}/{name}"] = emotion
    root = default_corpora_root() / "emodb" / "wav"
    for code, emotion in EMODB_EMOTIONS.items():
        first = sorted(p.name for p in root.glob(f"03*{code}?.flac"))[:1]
        clips.update({f"emodb/wav/{name}": emotion for name in first})
    return clips


def missing_clips() -> list[str]:
    root = default_corpora_root()
    return [c for c in json.loads(ANSWERS.read_text())["clips"] if not (root / c).is_file()]


def answers(predictor, clips) -> np.ndarray:
    """Calibrated scores ``(clips, classes)`` of ``predictor`` on ``clips`` (paths under the corpora root)."""
    root = default_corpora_root()
    return np.array([[predictor.predict(str(root / c)).scores[k] for k in predictor.labels] for c in clips])


def uar(truth: list[str], predicted: list[str], labels) -> float:
    """Unweighted average recall over the classes present in ``truth``."""
    t, p = np.array(truth), np.array(predicted)
    return float(np.mean([np.mean(p[t == c] == c) for c in labels if (t == c).any()]))


def _regenerate() -> None:
    from emovox.inference import load_model

    clips = sample_clips()
    stored = {"clips": clips, "models": {}}
    for name in ("default", "cnn"):
        predictor = load_model(name, backend="onnx", num_threads=1)
        stored["models"][name] = {
            "labels": list(predictor.labels),
            "scores": [[round(float(v), 7) for v in row] for row in answers(predictor, clips)],
        }
    ANSWERS.write_text(json.dumps(stored, indent=1) + "\n")
    print(f"wrote {ANSWERS}", file=sys.stderr)


if __name__ == "__main__":
    _regenerate()
