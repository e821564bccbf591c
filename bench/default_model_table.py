"""The default model's recipe, 7-way (``emovox7``) over all four shared corpora, with held-out speakers.

RAVDESS, EMO-DB, EMOVO and TurEV-DB with the ``emovox7`` labels (calm counted
as neutral, boredom dropped), 6 speaker-disjoint folds over all corpora
(``speaker_kfold(k=6, strata=corpus, seed=0)``: each fold tests one EMOVO and
one TurEV-DB speaker, four RAVDESS actors and one or two EMO-DB speakers). The
head is fitted on the training speakers' pooled Whisper features and scored on
the held-out speakers: UAR mean ± std over folds (ddof=1), accuracy beside it,
and the UAR of each corpus's clips pooled over the folds.

Defaults are the fixed recipe of ``docs/accurate_model.md`` (linear head on
all hidden states, C = 0.001). ``--adapt K`` is the speaker-adaptive option,
printed as such (never the headline).

Usage::

    OMP_NUM_THREADS=1 .venv/bin/python bench/default_model_table.py --backbone /tmp/emovox-whisper/base
    OMP_NUM_THREADS=1 .venv/bin/python bench/default_model_table.py --layers 0,1,2,3,4   # a truncated encoder
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cross_corpus_table import CORPORA, add_head_arguments, describe, features, fit_predict  # noqa: E402


def main(argv=None) -> int:
    from emovox.corpora import load_corpus
    from emovox.evaluation import compute_metrics, speaker_kfold
    from emovox.evaluation.experiment import prepare_labels

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpora", default=CORPORA)
    ap.add_argument("--folds", type=int, default=6)
    add_head_arguments(ap)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    records, y, classes = prepare_labels([r for c in args.corpora.split(",") for r in load_corpus(c)], "emovox7")
    classes = list(classes)
    corpora = np.array([r.corpus for r in records])
    speakers = np.array([r.speaker_key for r in records])
    print(f"emovox7: {', '.join(classes)} ({len(records)} clips, {len(set(speakers))} speakers)", flush=True)
    pooled, copies = features(records, args)
    splits = speaker_kfold(list(speakers), k=args.folds, seed=0, labels=y, strata=list(corpora))
    pred = np.full(len(y), -1)
    rows = []
    for split in splits:
        t0 = time.time()
        pred[split.test_idx] = fit_predict(
            args, pooled, copies, y, speakers, split.train_idx, split.test_idx, len(classes)
        )
        m = compute_metrics(y[split.test_idx], pred[split.test_idx], classes=classes)
        rows.append((m["uar"], m["accuracy"]))
        print(
            f"  {split.name} ({len(set(speakers[split.test_idx]))} speakers): UAR {m['uar']:.3f} "
            f"acc {m['accuracy']:.3f} ({time.time() - t0:.0f} s)",
            flush=True,
        )
    u, a = np.array(rows).T
    print()
    print(f"default recipe, emovox7 over {args.corpora}, {args.folds} speaker-disjoint folds; {describe(args)}")
    print("| scope | clips | UAR | accuracy |")
    print("|---|---|---|---|")
    print(
        f"| **all corpora (mean ± std over folds)** | {len(y)} | **{u.mean():.3f} ± {u.std(ddof=1):.3f}** | "
        f"{a.mean():.3f} ± {a.std(ddof=1):.3f} |"
    )
    for c in args.corpora.split(","):
        mask = corpora == c
        present = [k for k in classes if np.any(y[mask] == classes.index(k))]
        m = compute_metrics(y[mask], pred[mask], classes=classes)
        recall = [np.mean(pred[mask][y[mask] == classes.index(k)] == classes.index(k)) for k in present]
        print(
            f"| {c} (its {len(present)} classes, pooled over folds) | {int(mask.sum())} | {np.mean(recall):.3f} | "
            f"{m['accuracy']:.3f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
