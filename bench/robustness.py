"""Robustness benchmark: held-out speakers x channel, noise and room conditions, one command.

For the four corpora of the default model (4,217 clips, 46 speakers, 7-way
``emovox7``), the 3 speaker-disjoint folds of the model card: every clip is
scored by a head that never heard its speaker, under each condition of
:data:`emovox.evaluation.robustness.CONDITIONS` (clean; telephone G.711;
AMR-NB 5.9 kbit/s; G.723.1, a codec never trained on; babble of test-fold
talkers at 20/10/5 dB; road noise at 10 dB; rooms of RT60 0.3 and 0.8 s --
all noise and rooms from banks and seeds training never uses). Per condition:
UAR (unweighted average recall, the headline), accuracy, the share of
predicted classes that change against the clean version of the same clip,
the same for the product's labels (``unknown`` included) and the share of
clips the speech gate refuses (``no_speech``) or answers ``unknown`` for too
little speech. Then leave-one-corpus-out (4 shared classes, train on three
corpora, test on the fourth) clean and under the telephone channel.

Three designs are compared in the same run (``--designs shipped`` runs the last only):

- ``before``: the head trained on the clips as recorded, full band (the
  default model before issue 16);
- ``robust, full band``: :mod:`emovox.recipes.robust` (clips plus degraded
  copies) on full-band input;
- ``shipped``: the same recipe behind the shipped model's telephone-band
  input (``preprocessing.band_limit_hz = 8000``: every input, wideband or
  not, reaches the encoder through an 8 kHz channel).

Embeddings come from the model's ONNX ``embedding`` output through the
product preprocessing (the full-band designs use a copy of the shipped
artifact without its band limit) and are cached in ``--cache``: the first
run takes about two hours on 2 cores, later runs a few minutes.

    OMP_NUM_THREADS=1 .venv/bin/python bench/robustness.py [--designs all|shipped] [--cache DIR] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def labels_with_unknown(logits: np.ndarray, temperature: float, threshold: float) -> np.ndarray:
    """Class ids, ``-1`` where the calibrated confidence is under the threshold."""
    from emovox.inference.calibration import softmax

    p = softmax(logits, temperature=temperature)
    return np.where(p.max(axis=1) >= threshold, p.argmax(axis=1), -1)


def gate_outcomes(vad_probs) -> tuple[float, float]:
    """Shares of clips the speech gate answers ``no_speech`` and ``too_little_speech``."""
    from emovox.inference.gate import gate_verdict, speech_seconds

    verdicts = [gate_verdict(speech_seconds(p)) for p in vad_probs]
    return (
        float(np.mean([v == "no_speech" for v in verdicts])),
        float(np.mean([v == "too_little_speech" for v in verdicts])),
    )


def score_conditions(name: str, heads, groups, y, conditions: dict, classes) -> dict:
    """UAR, accuracy and changes against clean for every condition, with one head per fold."""
    from emovox.evaluation import compute_metrics
    from emovox.inference.calibration import calibrate
    from emovox.recipes.robust import fold_logits

    logits = {c: fold_logits(heads, groups, e.embeddings) for c, e in conditions.items()}
    calibration = calibrate(logits["clean"], y)
    clean_class = logits["clean"].argmax(axis=1)
    clean_label = labels_with_unknown(logits["clean"], calibration.temperature, calibration.threshold)
    out = {}
    for c, z in logits.items():
        m = compute_metrics(y, z.argmax(axis=1), classes=list(classes))
        label = labels_with_unknown(z, calibration.temperature, calibration.threshold)
        out[c] = {
            "uar": round(float(m["uar"]), 4),
            "accuracy": round(float(m["accuracy"]), 4),
            "class_changed": round(float(np.mean(z.argmax(axis=1) != clean_class)), 4),
            "label_changed": round(float(np.mean(label != clean_label)), 4),
            "unknown": round(float(np.mean(label == -1)), 4),
        }
        log(f"{name}: {c}: {out[c]}")
    return out


def leave_one_corpus_out(embeddings, y, classes, records, conditions, *, robust: bool) -> dict:
    """4 shared classes; train on three corpora (clips, plus copies when ``robust``), test on the fourth."""
    from emovox.evaluation import compute_metrics
    from emovox.evaluation.cross_corpus import shared_classes
    from emovox.recipes.robust import fit_robust_head

    corpus = np.array([r.corpus for r in records])
    shared = shared_classes(corpus.tolist(), [r.emotion for r in records])
    keep = np.isin(np.array(classes)[y], shared)
    ids = np.array([classes.index(k) for k in shared])
    out = {}
    for held in sorted(set(corpus)):
        train = keep & (corpus != held)
        head = fit_robust_head(embeddings if robust else embeddings[:1], y, train, n_classes=len(classes))
        test = keep & (corpus == held)
        for c in ("clean", "telephone"):
            z = head.logits(conditions[c].embeddings[test])[:, ids]
            m = compute_metrics(y[test], ids[z.argmax(axis=1)], classes=list(classes))
            out.setdefault(c, {})[held] = round(float(m["uar"]), 4)
    for c in list(out):
        out[c]["mean"] = round(float(np.mean(list(out[c].values()))), 4)
    return {"classes": list(shared), **out}


def wideband_copy(model: str, folder: str) -> str:
    """``model`` itself if it takes full-band input, else a copy of it in ``folder`` without the band limit."""
    import shutil
    from pathlib import Path

    from emovox.inference.predictor import resolve_model_dir

    source = resolve_model_dir(model)
    config = json.loads((source / "config.json").read_text())
    if not (config.get("preprocessing") or {}).get("band_limit_hz"):
        return model
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    for name in ("model.onnx", "model.safetensors"):
        if not (target / name).is_file() or (target / name).stat().st_size != (source / name).stat().st_size:
            shutil.copy2(source / name, target / name)
    config["preprocessing"]["band_limit_hz"] = None
    (target / "config.json").write_text(json.dumps(config, indent=2))
    return str(target)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", default="/tmp/emovox-robustness", help="embedding cache folder")
    ap.add_argument("--workers", type=int, default=2, help="processes computing embeddings")
    ap.add_argument("--model", default="default", help="the shipped model (its encoder embeds the clips)")
    ap.add_argument("--designs", choices=("all", "shipped"), default="all")
    ap.add_argument("--json", default="bench/results/robustness.json", help="write the figures here")
    ap.add_argument("--threads", type=int, default=2, help="torch threads fitting the heads")
    ap.add_argument(
        "--copies", type=int, default=None, help="degraded copies per training clip (default: the recipe's N_COPIES)"
    )
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(args.threads)
    from emovox.evaluation.robustness import CONDITIONS, EVAL_SEED, corpus_clips, embed_condition, speaker_groups
    from emovox.recipes.robust import N_COPIES, fold_heads, training_embeddings

    t0 = time.time()
    records, y, classes = corpus_clips()
    groups = speaker_groups(records, y)
    paths = [r.path for r in records]
    log(f"{len(records)} clips, {len({r.speaker_key for r in records})} speakers, classes {classes}")
    wide = wideband_copy(args.model, os.path.join(args.cache, "wideband-model"))
    designs = {"shipped": (args.model, True)}
    if args.designs == "all":
        designs = {"before": (wide, False), "robust, full band": (wide, True), **designs}
    results: dict = {
        "protocol": "3 speaker-disjoint folds over ravdess, emodb, emovo, turev (the model card's); "
        "7-way UAR over all 4,217 held-out clips",
        "copies": args.copies or N_COPIES,
        "conditions": CONDITIONS,
        "designs": {},
    }
    embedded: dict = {}
    for name, (model, robust) in designs.items():
        if model not in embedded:
            train_sets = training_embeddings(
                paths,
                groups,
                cache_dir=args.cache,
                model=model,
                workers=args.workers,
                copies=args.copies or N_COPIES,
                log=log,
            )
            conditions = {
                c: embed_condition(
                    paths,
                    groups,
                    tag=c,
                    factory="emovox.evaluation.robustness.eval_factory",
                    seed=EVAL_SEED,
                    cache_dir=args.cache,
                    model=model,
                    workers=args.workers,
                    extra={"condition": c},
                    log=log,
                )
                for c in CONDITIONS
            }
            embedded[model] = (train_sets, conditions)
        train_sets, conditions = embedded[model]
        sets = train_sets if robust else train_sets[:1]
        log(f"{name}: fitting 3 fold heads on {len(sets)} set(s) of embeddings")
        heads = fold_heads(sets, y, groups, n_classes=len(classes))
        entry = score_conditions(name, heads, groups, y, conditions, classes)
        entry["loco"] = leave_one_corpus_out(sets, y, classes, records, conditions, robust=robust)
        results["designs"][name] = entry
    conditions = embedded[args.model][1]
    results["gate"] = {
        c: dict(zip(("no_speech", "too_little_speech"), (round(v, 4) for v in gate_outcomes(e.vad))))
        for c, e in conditions.items()
    }
    results["elapsed_s"] = round(time.time() - t0, 1)
    print_table(results)
    if args.json:
        from emovox.fileio import atomic_write_text

        os.makedirs(os.path.dirname(args.json) or ".", exist_ok=True)
        atomic_write_text(args.json, json.dumps(results, indent=1) + "\n")
        print(f"\nfigures: {args.json}")
    return 0


def print_table(results: dict) -> None:
    designs = results["designs"]
    shipped = designs["shipped"]
    names = list(designs)
    print(
        "\n| condition | " + " | ".join(f"UAR, {n}" for n in names) + " | accuracy | classes changed vs clean | "
        "labels changed (with unknown) | refused as no speech | too little speech |"
    )
    print("|---|" + "---|" * len(names) + "---|---|---|---|---|")
    for c in results["conditions"]:
        s, g = shipped[c], results["gate"][c]
        changed = " / ".join(f"{designs[n][c]['class_changed']:.1%}" for n in names)
        print(
            f"| {c} | "
            + " | ".join(f"{designs[n][c]['uar']:.3f}" for n in names)
            + f" | {s['accuracy']:.3f} | {changed} | {s['label_changed']:.1%} | {g['no_speech']:.2%} | "
            f"{g['too_little_speech']:.2%} |"
        )
    print("(classes changed: " + " / ".join(names) + ")")
    print("\nleave one corpus out (4 shared classes, UAR):")
    print("| design | condition | " + " | ".join(k for k in shipped["loco"]["clean"]) + " |")
    print("|---|---|" + "---|" * len(shipped["loco"]["clean"]))
    for name, entry in designs.items():
        for c in ("clean", "telephone"):
            row = entry["loco"][c]
            print(f"| {name} | {c} | " + " | ".join(f"{v:.3f}" for v in row.values()) + " |")


if __name__ == "__main__":
    sys.exit(main())
