"""Cross-corpus pre-training, then per-fold fine-tuning on the target corpus.

1. Pre-train the flagship on *all* clips of the other corpora (never the
   target corpus, so no target speaker is seen) with the harmonised 9-emotion
   label space (``common.UNION``); cached in /tmp/emovox-flagship/pre_<target>.pt.
2. For each speaker-independent fold of the target: fine-tune the pre-trained
   model on the training speakers (union labels, same augmentation), test on
   the held-out speakers with the logits restricted to the target's classes.
Also logs the pre-trained model alone on each fold (zero-shot cross-corpus).

.venv/bin/python experiments/flagship/pretrain_ft.py --target emovo --tag pt-ft
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import CACHE, CLASSES, UNION, folds, load_cached, metrics  # noqa: E402

from emovox.recipes.flagship import FlagshipRecipe, predict_logits, train_flagship  # noqa: E402

ALL = ("ravdess", "emodb", "emovo", "turev")


def _log(rec: dict) -> None:
    print(json.dumps(rec), flush=True)
    with open(CACHE / "results.jsonl", "a") as fh:
        fh.write(json.dumps(rec) + "\n")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", required=True)
    ap.add_argument("--tag", default="pt-ft")
    ap.add_argument("--pre-epochs", type=int, default=8)
    ap.add_argument("--ft-epochs", type=int, default=10)
    ap.add_argument("--ft-lr", type=float, default=1e-3)
    ap.add_argument("--folds", default="all")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.time()
    pre_path = CACHE / f"pre_{args.target}.pt"
    others = [c for c in ALL if c != args.target]
    if pre_path.exists():
        state = torch.load(pre_path, weights_only=True)
        pre_s = None
    else:
        feats, ys = [], []
        for c in others:
            m, f = load_cached(c)
            feats += f
            ys += [UNION.index(r["emotion"]) for r in m]
        model = train_flagship(
            feats,
            np.array(ys),
            len(UNION),
            FlagshipRecipe(epochs=args.pre_epochs),
            log=lambda s: print("  [pre]", s, flush=True),
        )
        state = model.state_dict()
        torch.save(state, pre_path)
        pre_s = time.time() - t0
        print(f"pretrained on {others} ({len(ys)} clips) in {pre_s:.0f} s", flush=True)
    meta, feats = load_cached(args.target)
    y_union = np.array([UNION.index(r["emotion"]) for r in meta])
    y_t = np.array([CLASSES[args.target].index(r["emotion"]) for r in meta])
    cols = np.array([UNION.index(c) for c in CLASSES[args.target]])
    allf = folds(args.target, meta)
    todo = allf if args.folds == "all" else [allf[int(k)] for k in args.folds.split(",")]
    ft = FlagshipRecipe(epochs=args.ft_epochs, lr=args.ft_lr)
    from emovox.models.flagship import FlagshipConfig, FlagshipNet

    pre_model = FlagshipNet(FlagshipConfig(n_classes=len(UNION)))
    pre_model.load_state_dict(state)
    pre_model.eval()
    res = []
    for name, tr, te in todo:
        zs = metrics(y_t[te], predict_logits(pre_model, [feats[i] for i in te])[:, cols].argmax(1))
        t1 = time.time()
        model = train_flagship(
            [feats[i] for i in tr], y_union[tr], len(UNION), ft, init_state={k: v.clone() for k, v in state.items()}
        )
        train_s = time.time() - t1
        logits = predict_logits(model, [feats[i] for i in te])[:, cols]
        np.save(CACHE / "logits" / f"{args.tag}_{args.target}_{name}.npy", logits)
        m = metrics(y_t[te], logits.argmax(1))
        rec = {
            "tag": args.tag,
            "corpus": args.target,
            "fold": name,
            **m,
            "uar_zero_shot": zs["uar"],
            "train_s": round(train_s, 1),
            "pretrain_s": pre_s,
            "pretrained_on": others,
            "ft_epochs": args.ft_epochs,
            "ft_lr": args.ft_lr,
            "pre_epochs": args.pre_epochs,
            "time": time.strftime("%H:%M:%S"),
        }
        _log(rec)
        res.append(rec)
    u = np.array([r["uar"] for r in res])
    z = np.array([r["uar_zero_shot"] for r in res])
    print(
        f"SUMMARY {args.tag} {args.target} folds={len(res)} UAR {u.mean():.4f}±{u.std():.4f} "
        f"zero-shot {z.mean():.4f} ft s/fold {np.mean([r['train_s'] for r in res]):.0f}",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
