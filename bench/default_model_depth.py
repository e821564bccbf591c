"""Which encoder depth does the shipped default model need? Linear head on hidden states 0..K, same folds as its card.

    OMP_NUM_THREADS=1 .venv/bin/python bench/default_model_depth.py 3 4 6 [--cache-dir /tmp/emovox-whisper/cache]

For each K: the 3-fold speaker-disjoint split over the four corpora that
``emovox train --recipe shipped-default`` (and the CNN's card) use, the linear head
of that build (standardised mean+std of hidden states ``0..K``, balanced
logistic regression, ``C`` in {0.001, 0.01} by a 4-fold speaker CV inside the
training speakers), scored on the held-out speakers' clips with the
``emovox7`` labels: 7-way UAR and accuracy over all clips, UAR per corpus. The
pooled Whisper base features come from the feature cache (the encoder folder
is ``--encoder``, default ``/tmp/emovox-whisper/base``); K = 6 is the whole
encoder. About 5-15 minutes per K on a shared 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("depths", nargs="+", type=int)
    ap.add_argument("--encoder", default="/tmp/emovox-whisper/base")
    ap.add_argument("--cache-dir", default="/tmp/emovox-whisper/cache")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    from emovox.evaluation import compute_metrics
    from emovox.recipes import build_default
    from emovox.recipes import shipped_default as build
    from emovox.recipes.whisper import pooled_features
    from emovox.training.whisper_fit import fit_linear_head

    kept, y, classes = build.records()
    x = pooled_features(kept, args.encoder, cache_dir=args.cache_dir)
    speakers = [r.speaker_key for r in kept]
    corpus = np.array([r.corpus for r in kept])
    for k in args.depths:
        t0 = time.time()
        oof = np.zeros((len(y), len(classes)))
        for split in build.splits(kept, y):
            tr = split.train_idx
            fit = fit_linear_head(
                x[tr],
                y[tr],
                [speakers[i] for i in tr],
                n_classes=len(classes),
                layer_sets=[tuple(range(k + 1))],
                Cs=build_default.LINEAR_CS,
            )
            oof[split.test_idx] = fit.logits(x[split.test_idx])
        m = compute_metrics(y, oof.argmax(1), classes=list(classes))
        per = {
            c: round(compute_metrics(y[corpus == c], oof[corpus == c].argmax(1), classes=list(classes))["uar"], 3)
            for c in build.CORPORA
        }
        print(
            json.dumps(
                {
                    "states": f"0..{k}",
                    "blocks": k,
                    "uar": round(m["uar"], 4),
                    "accuracy": round(m["accuracy"], 4),
                    **per,
                    "seconds": round(time.time() - t0),
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
