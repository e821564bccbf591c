"""Open-set experiment: does the rejection threshold turn unseen emotions into "unknown"?

S4's scheme ``six-no-sad-surprised`` on RAVDESS speech, speaker-independent:

- train the flagship (``emovox.recipes.flagship.train_flagship``) on actors
  01-14, classes neutral, calm, happy, angry, fearful, disgust (sad and
  surprised never seen);
- calibrate on actors 15-18 (held out from training): temperature scaling
  (``emovox.inference.calibration.calibrate``) and the emovox threshold rule
  (largest threshold keeping >= 90 % of the correct known-class predictions);
  S4's rule (95th percentile of the calibrated confidence of the held-out
  sad/surprised clips + 0.05, clipped to [0.60, 0.85]) is computed beside it;
- save the artifact (calibration and threshold in config.json), export ONNX,
  and score actors 19-24 through the product path (``load_model(...).predict_batch``):
  fraction of sad/surprised clips rejected, fraction of known-class clips kept
  (and accuracy on the kept ones), at both thresholds and as a curve PNG.

    .venv/bin/python bench/open_set.py [--epochs 25] [--out /tmp/emovox-open-set]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

TRAIN = {f"{i:02d}" for i in range(1, 15)}
CALIB = {f"{i:02d}" for i in range(15, 19)}
TEST = {f"{i:02d}" for i in range(19, 25)}
UNSEEN = ("sad", "surprised")


def s4_threshold(unknown_conf: np.ndarray) -> float:
    return float(np.clip(np.percentile(unknown_conf, 95) + 0.05, 0.60, 0.85))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=25)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="/tmp/emovox-open-set")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    from emovox.audio import load_audio
    from emovox.corpora import load_corpus
    from emovox.export import export_onnx
    from emovox.inference import load_model
    from emovox.inference.calibration import calibrate, softmax, write_calibration
    from emovox.labels import get_scheme
    from emovox.models.artifact import make_config, save_artifact
    from emovox.models.flagship import FlagshipConfig, FlagshipNet
    from emovox.models.spec import TaskSpec
    from emovox.recipes.flagship import FlagshipRecipe, logmel_of, predict_logits, train_flagship

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    scheme = get_scheme("six-no-sad-surprised")
    classes = scheme.classes
    records = load_corpus("ravdess")
    t0 = time.time()
    waves = {r.path: load_audio(r.path, sample_rate_hz=16000, trim_silence=True) for r in records}
    print(f"loaded {len(records)} RAVDESS clips in {time.time() - t0:.0f} s", flush=True)
    frontend = FlagshipNet(FlagshipConfig(n_classes=len(classes)))

    def subset(speakers, known: bool):
        return [r for r in records if r.speaker in speakers and (scheme.keeps(r.emotion) == known)]

    train = subset(TRAIN, True)
    recipe = FlagshipRecipe(epochs=args.epochs)
    t0 = time.time()
    model = train_flagship(
        logmel_of(frontend, [waves[r.path] for r in train]),
        np.array([scheme.index_of(r.emotion) for r in train]),
        len(classes),
        recipe,
        log=lambda s: print("  " + s, flush=True),
    )
    print(f"trained on {len(train)} clips of actors 01-14 in {time.time() - t0:.0f} s", flush=True)

    # calibration on held-out speakers 15-18
    cal_known, cal_unknown = subset(CALIB, True), subset(CALIB, False)
    z_known = predict_logits(model, logmel_of(model, [waves[r.path] for r in cal_known]))
    y_known = np.array([scheme.index_of(r.emotion) for r in cal_known])
    result = calibrate(z_known, y_known, keep_fraction=0.90)
    z_unknown = predict_logits(model, logmel_of(model, [waves[r.path] for r in cal_unknown]))
    t_s4 = s4_threshold(softmax(z_unknown, temperature=result.temperature).max(axis=1))
    print(
        f"calibration (actors 15-18, {len(cal_known)} known clips): T = {result.temperature:.3f}, "
        f"ECE {result.ece_before:.3f} -> {result.ece_after:.3f}, accuracy {result.accuracy:.3f}; "
        f"threshold (emovox rule) {result.threshold:.3f}; S4 rule {t_s4:.3f}",
        flush=True,
    )

    spec = TaskSpec(labels=classes, sample_rate_hz=16000, clip_s=recipe.crop_frames / 100.0)
    config = make_config(
        spec,
        "flagship",
        {},
        preprocessing={"sample_rate_hz": 16000, "crop": "none", "trim_silence": True, "normalize": None},
        training={
            "recipe": recipe.to_dict(),
            "scheme": scheme.name,
            "speakers": {"train": sorted(TRAIN), "calibration": sorted(CALIB), "test": sorted(TEST)},
        },
    )
    art = save_artifact(out / "model", model, config)
    write_calibration(art, result)
    export_onnx(art, art)

    # test speakers 19-24 through the product path
    predictor = load_model(art, backend="onnx", min_confidence=0.0)
    test_known, test_unknown = subset(TEST, True), subset(TEST, False)
    pk = predictor.predict_batch([r.path for r in test_known])
    pu = predictor.predict_batch([r.path for r in test_unknown])
    ck = np.array([p.confidence for p in pk])
    cu = np.array([p.confidence for p in pu])
    correct = np.array([p.top_class == scheme.class_of(r.emotion) for p, r in zip(pk, test_known)])
    report = {
        "classes": list(classes),
        "unseen": list(UNSEEN),
        "epochs": args.epochs,
        "n_train": len(train),
        "n_test_known": len(pk),
        "n_test_unknown": len(pu),
        "test_accuracy_known": float(correct.mean()),
        "calibration": result.to_config()["calibration"],
        "thresholds": {},
    }
    print(
        f"test actors 19-24: {len(pk)} known-class clips (accuracy {correct.mean():.3f}), "
        f"{len(pu)} sad/surprised clips",
        flush=True,
    )
    for name, t in (("emovox rule (keep 90% correct)", result.threshold), ("S4 rule", t_s4)):
        kept = ck >= t
        row = {
            "threshold": t,
            "unknown_rejected": float(np.mean(cu < t)),
            "known_kept": float(kept.mean()),
            "accuracy_on_kept": float(correct[kept].mean()) if kept.any() else None,
            "correct_known_kept": float(np.mean(ck[correct] >= t)) if correct.any() else None,
        }
        report["thresholds"][name] = row
        print(
            f"  {name:31s} t={t:.3f}: sad/surprised rejected {row['unknown_rejected']:.1%}, "
            f"known kept {row['known_kept']:.1%} (accuracy on kept "
            f"{row['accuracy_on_kept'] if row['accuracy_on_kept'] is None else round(row['accuracy_on_kept'], 3)}), "
            f"correct known kept {row['correct_known_kept']:.1%}"
        )

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = np.linspace(0, 1, 201)
    fig, ax = plt.subplots(figsize=(6.5, 4))
    ax.plot(grid, [np.mean(ck >= t) for t in grid], label="known-class clips kept")
    ax.plot(grid, [np.mean(ck[correct] >= t) for t in grid], ls=":", label="correct known clips kept")
    ax.plot(grid, [np.mean(cu < t) for t in grid], label="sad/surprised rejected")
    for name, row in report["thresholds"].items():
        ax.axvline(row["threshold"], color="grey", ls="--", lw=0.8)
        ax.text(row["threshold"], 0.02, " " + name.split(" ")[0], rotation=90, fontsize=7, va="bottom")
    ax.set_xlabel("threshold on calibrated confidence")
    ax.set_ylabel("fraction of test clips (actors 19-24)")
    ax.set_title("open set: RAVDESS, trained without sad and surprised", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "open_set_curve.png", dpi=120)
    (out / "open_set.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out / 'open_set_curve.png'}, {out / 'open_set.json'}, artifact {art}")


if __name__ == "__main__":
    sys.exit(main())
