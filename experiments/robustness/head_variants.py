"""Design variants of the channel-robust head, on the embeddings ``bench/robustness.py`` caches.

Run ``bench/robustness.py`` first (it computes and caches the embeddings of
the clips, their 7 training copies and the 10 evaluation conditions, for the
full-band and the telephone-band model). Then, with nothing recomputed::

    OMP_NUM_THREADS=2 .venv/bin/python experiments/robustness/head_variants.py --cache CACHE_DIR

prints held-out-speaker UAR and the share of predicted classes that change
against the clean clip, per condition, for:

- the copies: none, 1 (telephone), 1-5, 1-7 (full band);
- the inverse L2 strength C in {3e-4, 1e-3, 3e-3};
- hidden states read: 0-4 (shipped), 2-4, 3-4;
- nuisance attribute projection (NAP): the top r directions of the
  differences between a copy and its clean clip removed before the head;
- a narrowband head selected by the bandwidth flag (telephone-band head for
  the narrowband conditions, full-band head for the rest);
- mixed-band training (full-band and telephone-band sets in one head);
- the telephone-band model (shipped).

Results are recorded in ``docs/robustness.md`` ("Designs measured"); the
figures of a run go to ``--out`` (default ``CACHE_DIR/head_variants.json``).
Folds: :func:`emovox.evaluation.robustness.speaker_groups` (the model card's
3 folds, :func:`emovox.evaluation.folds_all_corpora.all_corpora_folds`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))
from robustness import wideband_copy  # noqa: E402  (bench/robustness.py: the cache this script reads)

from emovox.evaluation.metrics import compute_metrics  # noqa: E402
from emovox.evaluation.robustness import (  # noqa: E402
    CONDITIONS,
    EVAL_SEED,
    corpus_clips,
    embed_condition,
    speaker_groups,
)
from emovox.fileio import atomic_write_text  # noqa: E402
from emovox.models.softmax_regression import fit_softmax_regression  # noqa: E402
from emovox.recipes.robust import training_embeddings  # noqa: E402

NARROWBAND = ("telephone", "amr_nb", "g723_1")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", required=True, help="the --cache folder bench/robustness.py wrote")
    ap.add_argument("--out", default=None, help="JSON file of the figures (default CACHE/head_variants.json)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)

    records, y, classes = corpus_clips()
    groups = speaker_groups(records, y)
    paths = [r.path for r in records]
    quiet = {"log": lambda _: None}

    def embedded(model):
        train = training_embeddings(paths, groups, cache_dir=args.cache, model=model, **quiet)
        conds = {
            c: embed_condition(
                paths,
                groups,
                tag=c,
                factory="emovox.evaluation.robustness.eval_factory",
                seed=EVAL_SEED,
                cache_dir=args.cache,
                model=model,
                extra={"condition": c},
                **quiet,
            ).embeddings
            for c in CONDITIONS
        }
        return train, conds

    wide_train, wide = embedded(wideband_copy("default", os.path.join(args.cache, "wideband-model")))
    narrow_train, narrow = embedded("default")

    def fold_scorers(sets, transform=lambda x, rows: x, C=1e-3):
        scorers = []
        for g in range(3):
            rows = groups != g
            x = np.concatenate([transform(s[rows], rows) for s in sets])
            fit = fit_softmax_regression(x, np.concatenate([y[rows]] * len(sets)), C=C, n_classes=len(classes))
            scorers.append(lambda e, fit=fit, g=g: fit.logits(transform(e, groups == g)))
        return scorers

    def oof(scorers, e):
        z = np.zeros((len(y), len(classes)))
        for g, score in enumerate(scorers):
            z[groups == g] = score(e[groups == g])
        return z.argmax(axis=1)

    def report(name, predictions):
        clean = predictions["clean"]
        cells = {
            c: (compute_metrics(y, p, classes=list(classes))["uar"], float(np.mean(p != clean)))
            for c, p in predictions.items()
        }
        print(f"{name:34s} " + " ".join(f"{c}={u:.3f}/{ch:.2f}" for c, (u, ch) in cells.items()), flush=True)
        return cells

    results = {}

    def run(name, sets, conds, **options):
        scorers = fold_scorers(sets, **options)
        results[name] = report(name, {c: oof(scorers, e) for c, e in conds.items()})
        return scorers

    run("full band, no copies", wide_train[:1], wide)
    run("full band, copy 1 (telephone)", wide_train[:2], wide)
    run("full band, copies 1-5", wide_train[:6], wide)
    full = run("full band, copies 1-7", wide_train, wide)
    for C in (3e-4, 3e-3):
        run(f"full band, copies 1-7, C={C:g}", wide_train, wide, C=C)
    for layers in ((2, 3, 4), (3, 4)):
        cols = np.concatenate([np.arange(k * 1024, (k + 1) * 1024) for k in layers])
        run(f"full band, states {layers}", wide_train, wide, transform=lambda x, rows, cols=cols: x[:, cols])
    for r in (20, 60):
        run(f"full band, NAP r={r}", wide_train, wide, transform=nap(wide_train, groups, r))
    narrow_head = fold_scorers(narrow_train)
    flagged = {
        c: oof(narrow_head if c in NARROWBAND else full, (narrow if c in NARROWBAND else wide)[c]) for c in CONDITIONS
    }
    results["narrowband head by flag"] = report("narrowband head by flag", flagged)
    run("mixed band (full + telephone sets)", wide_train + narrow_train, wide)
    run("telephone band (shipped)", narrow_train, narrow)
    out = Path(args.out) if args.out else Path(args.cache) / "head_variants.json"
    atomic_write_text(
        out,
        json.dumps(
            {
                k: {c: {"uar": round(u, 4), "class_changed": round(ch, 4)} for c, (u, ch) in v.items()}
                for k, v in results.items()
            },
            indent=1,
        ),
    )
    print(f"figures: {out}")
    return 0


def nap(train_sets, groups, r: int):
    """A transform projecting out, per fold, the top ``r`` directions of copy-minus-clean differences."""
    import torch

    bases = {}

    def transform(x, rows):
        g = int(
            np.flatnonzero([np.array_equal(rows, groups != k) or np.array_equal(rows, groups == k) for k in range(3)])[
                0
            ]
        )
        if g not in bases:
            train = groups != g
            mean = np.concatenate([s[train] for s in train_sets]).mean(axis=0)
            scale = np.concatenate([s[train] for s in train_sets]).std(axis=0) + 1e-8
            diffs = np.concatenate([(s[train] - train_sets[0][train]) / scale for s in train_sets[1:]])
            pick = np.random.default_rng(0).choice(len(diffs), min(len(diffs), 20000), replace=False)
            _, _, v = torch.svd_lowrank(torch.from_numpy(diffs[pick].astype(np.float32)), q=r + 10, niter=3)
            bases[g] = (mean, scale, v[:, :r].numpy().astype(np.float64))
        mean, scale, u = bases[g]
        z = (x - mean) / scale
        return z - (z @ u) @ u.T

    return transform


if __name__ == "__main__":
    sys.exit(main())
