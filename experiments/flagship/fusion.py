"""Late fusion of the flagship with eGeMAPS functionals + logistic regression.

For each fold of the protocol: a logistic regression (C=1, standardised with
training-speaker statistics) on eGeMAPSv02 functionals of the training
speakers; its class probabilities are averaged with the flagship's softmax
(weight 0.5 each, fixed a priori) on the test speakers.

.venv/bin/python experiments/flagship/fusion.py --tag v2 --corpus ravdess
"""

from __future__ import annotations

import argparse

import numpy as np
from common import CACHE, CLASSES, folds, load_cached, metrics
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler


def softmax(z):
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tag", default="v2")
    ap.add_argument("--corpus", default="ravdess")
    ap.add_argument("--weight", type=float, default=0.5, help="weight of the flagship probabilities")
    ap.add_argument(
        "--ensemble-with",
        default="",
        help="another tag whose softmax is averaged in first (an ensemble of two flagships, equal weights)",
    )
    args = ap.parse_args()
    meta, _ = load_cached(args.corpus)
    X = np.load(CACHE / f"egemaps_{args.corpus}.npy")
    y = np.array([CLASSES[args.corpus].index(r["emotion"]) for r in meta])
    res = {"flagship": [], "egemaps-lr": [], "fusion": []}
    for name, tr, te in folds(args.corpus, meta):
        f = CACHE / "logits" / f"{args.tag}_{args.corpus}_{name}.npy"
        if not f.exists():
            continue
        p_cnn = softmax(np.load(f))
        if args.ensemble_with:
            f2 = CACHE / "logits" / f"{args.ensemble_with}_{args.corpus}_{name}.npy"
            if not f2.exists():
                continue
            p_cnn = 0.5 * p_cnn + 0.5 * softmax(np.load(f2))
        sc = StandardScaler().fit(X[tr])
        lr = LogisticRegression(C=1.0, max_iter=2000).fit(sc.transform(X[tr]), y[tr])
        p_lr = lr.predict_proba(sc.transform(X[te]))
        p_f = args.weight * p_cnn + (1 - args.weight) * p_lr
        for k, p in (("flagship", p_cnn), ("egemaps-lr", p_lr), ("fusion", p_f)):
            res[k].append(metrics(y[te], p.argmax(1)))
    for k, rs in res.items():
        u = np.array([r["uar"] for r in rs])
        a = np.array([r["acc"] for r in rs])
        print(
            f"{args.tag}{'+' + args.ensemble_with if args.ensemble_with else ''} {args.corpus} {k:11s} folds={len(rs)} UAR {u.mean():.4f}±{u.std():.4f} acc {a.mean():.4f}±{a.std():.4f}"
        )


if __name__ == "__main__":
    main()
