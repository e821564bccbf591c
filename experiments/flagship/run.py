"""Train/evaluate one flagship configuration on a corpus protocol.

Examples
--------
.venv/bin/python experiments/flagship/run.py --corpus ravdess --folds dev --tag base
.venv/bin/python experiments/flagship/run.py --corpus ravdess --folds all --tag base
.venv/bin/python experiments/flagship/run.py --corpus ravdess --folds dev --set '{"mixup_alpha": 0}'

Appends one JSON line per fold to /tmp/emovox-flagship/results.jsonl and
saves test logits to /tmp/emovox-flagship/logits/.
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
from common import CACHE, CLASSES, UNION, dev_split, folds, load_cached, metrics, random_split  # noqa: E402

from emovox.recipes.flagship import FlagshipRecipe, predict_logits, train_flagship  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", default="ravdess")
    ap.add_argument("--folds", default="dev", help="dev | all | random | comma list of fold numbers")
    ap.add_argument("--tag", default="base")
    ap.add_argument("--set", default="{}", help="JSON recipe overrides")
    ap.add_argument("--no-trim", action="store_true")
    ap.add_argument("--multi", default="", help="comma list of extra corpora trained on (all speakers)")
    ap.add_argument(
        "--extra-weight", type=float, default=1.0, help="sampling weight of extra-corpus clips relative to target clips"
    )
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    overrides = json.loads(args.set)
    if "stretch" in overrides:
        overrides["stretch"] = tuple(overrides["stretch"])
    if "snr_db" in overrides:
        overrides["snr_db"] = tuple(overrides["snr_db"])
    recipe = FlagshipRecipe(**overrides)
    trim = not args.no_trim
    meta, feats = load_cached(args.corpus, trim=trim)
    extra = [c for c in args.multi.split(",") if c]
    classes = UNION if extra else CLASSES[args.corpus]
    y = np.array([classes.index(r["emotion"]) for r in meta])
    target_cols = np.array([classes.index(c) for c in CLASSES[args.corpus]])
    y_target = np.array([CLASSES[args.corpus].index(r["emotion"]) for r in meta])
    ex_feats, ex_y = [], []
    for c in extra:
        m2, f2 = load_cached(c, trim=trim)
        ex_feats += f2
        ex_y += [UNION.index(r["emotion"]) for r in m2]
    if args.folds == "dev":
        todo = [dev_split(meta)]
    elif args.folds == "random":
        todo = [random_split(y_target)]
    else:
        allf = folds(args.corpus, meta)
        todo = allf if args.folds == "all" else [allf[int(k)] for k in args.folds.split(",")]
    (CACHE / "logits").mkdir(exist_ok=True)
    results = []
    for name, tr, te in todo:
        t0 = time.time()
        tr_feats = [feats[i] for i in tr] + ex_feats
        tr_y = np.concatenate([y[tr], np.array(ex_y, dtype=int)]) if extra else y[tr]
        w = None
        if extra:
            w = np.concatenate([np.ones(len(tr)), np.full(len(ex_y), args.extra_weight)])
        model, raw = train_flagship(
            tr_feats,
            tr_y,
            len(classes),
            recipe,
            sample_weights=w,
            return_raw=True,
            log=lambda s: (
                print(f"  [{name}] {s}", flush=True)  # noqa: B023 - called at once, inside the loop
                if s.startswith("epoch") and int(s.split()[1].split("/")[0]) % 5 == 0
                else None
            ),
        )
        train_s = time.time() - t0
        logits = predict_logits(model, [feats[i] for i in te])[:, target_cols]
        np.save(CACHE / "logits" / f"{args.tag}_{args.corpus}_{name}.npy", logits)
        m = metrics(y_target[te], logits.argmax(1))
        # ablations that cost no training: last weights instead of the EMA; a centred
        # crop of recipe.crop_frames at test time instead of the full utterance
        m["uar_raw"] = metrics(y_target[te], predict_logits(raw, [feats[i] for i in te])[:, target_cols].argmax(1))[
            "uar"
        ]
        n = recipe.crop_frames
        crops = [
            feats[i][:, max(0, (feats[i].shape[1] - n) // 2) : max(0, (feats[i].shape[1] - n) // 2) + n] for i in te
        ]
        m["uar_crop"] = metrics(y_target[te], predict_logits(model, crops)[:, target_cols].argmax(1))["uar"]
        rec = {
            "tag": args.tag,
            "corpus": args.corpus,
            "fold": name,
            **m,
            "train_s": round(train_s, 1),
            "n_train": len(tr_y),
            "trim": trim,
            "multi": extra,
            "extra_weight": args.extra_weight,
            "recipe": overrides,
            "time": time.strftime("%H:%M:%S"),
        }
        print(json.dumps(rec), flush=True)
        with open(CACHE / "results.jsonl", "a") as fh:
            fh.write(json.dumps(rec) + "\n")
        results.append(rec)
    u = np.array([r["uar"] for r in results])
    a = np.array([r["acc"] for r in results])
    print(
        f"SUMMARY {args.tag} {args.corpus} folds={len(results)} UAR {u.mean():.4f}±{u.std():.4f} "
        f"acc {a.mean():.4f}±{a.std():.4f} train_s/fold {np.mean([r['train_s'] for r in results]):.0f}",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
