"""Non-speech benchmark: how often does emovox give an emotion to audio without speech, and refuse real speech?

Through the product path (``emovox.load_model(...).predict``, ONNX, one thread):

- the **evaluation non-speech set** (:func:`emovox.evaluation.nonspeech.nonspeech_set`,
  ``"eval"``: 19 kinds -- tones, chords, melodies, drums, music, coloured noise,
  hum, clicks, sweeps, DTMF, ring-back, fan, traffic, applause, typing,
  chirps, beeps -- 0.05-8 s, -45 to -10 dBFS, a quarter through a telephone
  codec; 5 of the kinds never appear in the tuning set the gate thresholds
  were chosen on): the share of clips **given an emotion**, per kind;
- **every clip of the four corpora** (4,217 clips the default model's label
  set keeps): the share **refused as no speech**, and the share answered
  ``unknown`` for too little speech.

Each model is run with its speech gate (the product) and without it
(``gate=False``: the behaviour before issue 16), in the same run.

    OMP_NUM_THREADS=1 .venv/bin/python bench/nonspeech.py [--models default,cnn] [--per-kind 60] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter, defaultdict

import numpy as np

SR = 16000


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="default,cnn", help="comma-separated model names or folders")
    ap.add_argument("--per-kind", type=int, default=60, help="evaluation clips per non-speech kind")
    ap.add_argument("--no-corpora", action="store_true", help="skip the corpus clips (non-speech only)")
    ap.add_argument("--json", default="bench/results/nonspeech.json", help="write the figures here")
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from emovox.evaluation.nonspeech import HELD_OUT_KINDS, nonspeech_set
    from emovox.evaluation.robustness import corpus_clips, load_clip
    from emovox.inference import load_model
    from emovox.inference.gate import MIN_EMOTION_S, NO_SPEECH_S

    t0 = time.time()
    clips = nonspeech_set("eval", per_kind=args.per_kind)
    records = [] if args.no_corpora else corpus_clips()[0]
    print(
        f"{len(clips)} non-speech clips ({len({c.kind for c in clips})} kinds, "
        f"{sum(c.telephone for c in clips)} through a telephone codec), {len(records)} corpus clips; "
        f"gate: no_speech under {NO_SPEECH_S} s of speech, unknown under {MIN_EMOTION_S} s",
        flush=True,
    )
    results: dict = {
        "non_speech_clips": len(clips),
        "corpus_clips": len(records),
        "no_speech_s": NO_SPEECH_S,
        "min_emotion_s": MIN_EMOTION_S,
        "models": {},
    }
    for name in args.models.split(","):
        for gated in (True, False):
            model = load_model(name, backend="onnx", num_threads=1, gate=gated)
            tag = f"{name}{'' if gated else ' (no gate)'}"
            by_kind: dict[str, list[bool]] = defaultdict(list)
            for clip in clips:
                p = model.predict(clip.y, sample_rate=SR)
                by_kind[clip.kind].append(p.is_emotion)
            emotion = [v for vs in by_kind.values() for v in vs]
            entry = {
                "non_speech_given_an_emotion": round(float(np.mean(emotion)), 4),
                "held_out_kinds_given_an_emotion": round(
                    float(np.mean([v for k in HELD_OUT_KINDS for v in by_kind[k]])), 4
                ),
                "by_kind": {k: round(float(np.mean(v)), 3) for k, v in by_kind.items()},
            }
            if records and gated:
                answers: Counter = Counter()
                by_corpus: dict[str, Counter] = defaultdict(Counter)
                for r in records:
                    p = model.predict(load_clip(r.path), sample_rate=SR)
                    outcome = p.reason if p.reason in ("no_speech", "too_little_speech") else "answered"
                    answers[outcome] += 1
                    by_corpus[r.corpus][outcome] += 1
                n = len(records)
                entry["speech_refused_as_no_speech"] = round(answers["no_speech"] / n, 4)
                entry["speech_too_little_speech"] = round(answers["too_little_speech"] / n, 4)
                entry["speech_by_corpus"] = {
                    c: {k: round(v / sum(cnt.values()), 4) for k, v in cnt.items()} for c, cnt in by_corpus.items()
                }
            results["models"][tag] = entry
            line = (
                f"{tag:22s} non-speech given an emotion {entry['non_speech_given_an_emotion']:6.1%} "
                f"(held-out kinds {entry['held_out_kinds_given_an_emotion']:.1%})"
            )
            if "speech_refused_as_no_speech" in entry:
                line += (
                    f"; speech refused as no speech {entry['speech_refused_as_no_speech']:.2%}, "
                    f"unknown for too little speech {entry['speech_too_little_speech']:.2%}"
                )
            print(line, flush=True)
    print("\nby kind (share given an emotion, gated default model first):")
    tags = list(results["models"])
    print(f"{'kind':10s} " + " ".join(f"{t[:18]:>18s}" for t in tags))
    for kind in results["models"][tags[0]]["by_kind"]:
        mark = "*" if kind in HELD_OUT_KINDS else " "
        print(f"{kind:9s}{mark} " + " ".join(f"{results['models'][t]['by_kind'][kind]:18.2f}" for t in tags))
    print("(* kinds absent from the tuning set)")
    results["elapsed_s"] = round(time.time() - t0, 1)
    if args.json:
        from emovox.fileio import atomic_write_text

        os.makedirs(os.path.dirname(args.json) or ".", exist_ok=True)
        atomic_write_text(args.json, json.dumps(results, indent=1) + "\n")
        print(f"figures: {args.json} ({results['elapsed_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
