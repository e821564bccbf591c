"""Cheap classifier / feature variants on the cached pooled Whisper features, under held-out speakers.

What it measures: for each variant, the speaker-independent UAR (mean +- std over
the outer folds, ddof=1), accuracy, per-fold UARs and per-corpus UAR (the
corpus's clips pooled over folds), with the shipped linear probe (states
standardised, logistic regression C=1e-3, class-balanced, exactly
``emovox.models.whisper_classifier._fit``) on the SAME folds. Folds come from
``experiments/whisper/heads.py``'s ``protocol_rows`` (identical to the benches).

Every variant is fixed up front or picks its hyper-parameter by an inner
speaker-disjoint CV on the outer training speakers (``speaker_kfold(k=4,
seed=0, labels=y, strata=corpus)``); the outer test fold is never looked at.

Variants (``--variants`` comma list; see ``VARIANTS``):

- ``base``: the shipped probe (library ``_fit``).
- ``w_corpus`` / ``w_speaker`` / ``w_cell``: sample weights so that each training
  corpus / speaker weighs equally (times the class balance), or each
  (corpus, class) cell weighs equally.
- ``pcc`` / ``pcs`` / ``pcc_lb``: training rows centred (``pcs``: standardised)
  per corpus (``_lb``: corpus mean = mean of its class means); test rows use the
  global training statistics (no corpus information at test time).
- ``logstd`` / ``ssqrt`` / ``l2`` / ``l2ssqrt``: per-dimension transforms before
  the standardiser (log of the std statistics; signed square root; each state's
  mean and std vectors L2-normalised).
- ``perlayer``: one LR per hidden state, logits averaged (still one linear map).
- ``lda``: shrinkage LDA (Ledoit-Wolf), uniform priors.
- ``ridge``: ridge classifier (class-balanced), alpha by inner CV.
- ``svm``: linear SVM (class-balanced), C by inner CV.
- ``pca``: PCA-whitened k components + LR, (k, C) by inner CV.
- ``lr_cv``: LR with C by inner CV over a finer grid.
- ``lr_ens``: LR logits averaged over C in {1e-4, 1e-3, 1e-2}.
- ``logstd_wspk``: ``logstd`` features with ``w_speaker`` weights.
- ``rbf``: RBF SVM (not linear; reference only), C by inner CV.

Usage (from /work/main)::

    OMP_NUM_THREADS=1 .venv/bin/python experiments/whisper/pooled_variants.py --protocol all7 --layers 0-4 \
        --variants base,w_corpus,pcc
    .venv/bin/python experiments/whisper/pooled_variants.py --table

Each run appends one JSON line per variant to ``/tmp/emovox-research/pooled/results.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import pooled_data  # noqa: E402
from heads import protocol_rows  # noqa: E402

OUT = pooled_data.OUT / "pooled"
RESULTS = OUT / "results.jsonl"
warnings.filterwarnings("ignore")


# ----------------------------------------------------------------------------------------------- helpers
def uar(y, pred, n_classes):
    rec = [np.mean(pred[y == k] == k) for k in range(n_classes) if np.any(y == k)]
    return float(np.mean(rec))


def flat(x):
    return x.reshape(len(x), -1).astype(np.float64)


def standardiser(x, w=None):
    mean = x.mean(0) if w is None else np.average(x, axis=0, weights=w)
    scale = x.std(0)
    scale[scale < 1e-8] = 1.0
    return mean, scale


def balanced_weights(y, groups=None):
    """Class-balanced weights (sklearn 'balanced'), optionally times 'each group weighs equally'."""
    n = len(y)
    classes, counts = np.unique(y, return_counts=True)
    w = np.ones(n)
    cw = n / (len(classes) * counts)
    w *= cw[np.searchsorted(classes, y)]
    if groups is not None:
        g, gi, gc = np.unique(groups, return_inverse=True, return_counts=True)
        w *= (n / (len(g) * gc))[gi]
    return w * n / w.sum()


def lr_fit(x, y, C, n_classes, sample_weight=None, class_weight="balanced"):
    """Standardised multinomial LR; returns (mean, scale, coef (K, d), intercept (K,))."""
    from sklearn.linear_model import LogisticRegression

    mean, scale = standardiser(x)
    clf = LogisticRegression(C=C, class_weight=class_weight, max_iter=2000)
    clf.fit((x - mean) / scale, y, sample_weight=sample_weight)
    coef = np.zeros((n_classes, x.shape[1]))
    intercept = np.full(n_classes, -1e4)
    coef[clf.classes_], intercept[clf.classes_] = clf.coef_, clf.intercept_
    return mean, scale, coef, intercept


class Linear:
    """logits = ((T(x) - mean) / scale) @ coef.T + intercept, T a fixed feature transform."""

    def __init__(self, transform, mean, scale, coef, intercept):
        self.transform, self.mean, self.scale, self.coef, self.intercept = transform, mean, scale, coef, intercept

    def logits(self, x4):
        return (self.transform(x4) - self.mean) / self.scale @ self.coef.T + self.intercept


class Fn:
    def __init__(self, f):
        self.logits = f


# ----------------------------------------------------------------------------------------------- transforms
def t_plain(x4):
    return flat(x4)


def t_logstd(x4):
    x = x4.astype(np.float64).copy()
    x[:, :, 1] = np.log(x[:, :, 1] + 1e-4)
    return flat(x)


def t_ssqrt(x4):
    x = x4.astype(np.float64)
    return flat(np.sign(x) * np.sqrt(np.abs(x)))


def t_l2(x4):
    x = x4.astype(np.float64)
    return flat(x / (np.linalg.norm(x, axis=-1, keepdims=True) + 1e-8))


def t_l2ssqrt(x4):
    x = x4.astype(np.float64)
    x = np.sign(x) * np.sqrt(np.abs(x))
    return flat(x / (np.linalg.norm(x, axis=-1, keepdims=True) + 1e-8))


# ----------------------------------------------------------------------------------------------- variants
# each: fit(x4 (n, L, 2, 512), y, meta dict with 'speaker', 'corpus', n_classes, ctx) -> object with .logits(x4)
C0 = 1e-3


def v_base(x4, y, meta, K, ctx):
    from emovox.models.whisper_classifier import _fit

    mean, scale, coef, intercept = _fit(flat(x4), y, C0, K)
    return Linear(t_plain, mean, scale, coef, intercept)


def make_transform_variant(transform, C=C0):
    def fit(x4, y, meta, K, ctx):
        return Linear(transform, *lr_fit(transform(x4), y, C, K))

    return fit


def make_weight_variant(kind, transform=t_plain):
    def fit(x4, y, meta, K, ctx):
        if kind == "corpus":
            w = balanced_weights(y, meta["corpus"])
        elif kind == "speaker":
            w = balanced_weights(y, meta["speaker"])
        else:  # each (corpus, class) cell equally
            cell = np.array([f"{c}|{k}" for c, k in zip(meta["corpus"], y)])
            w = balanced_weights(np.zeros(len(y), int), cell)
        return Linear(transform, *lr_fit(transform(x4), y, C0, K, sample_weight=w, class_weight=None))

    return fit


def make_pc_variant(scale_too=False, label_balanced=False, groups="corpus"):
    """Train rows normalised per corpus (or speaker); test rows by the global training statistics."""

    def fit(x4, y, meta, K, ctx):
        x = flat(x4)
        g_mean, g_scale = standardiser(x)
        z = np.empty_like(x)
        for c in np.unique(meta[groups]):
            m = meta[groups] == c
            if label_balanced:
                mu = np.mean([x[m & (y == k)].mean(0) for k in np.unique(y[m])], axis=0)
            else:
                mu = x[m].mean(0)
            if scale_too:
                sd = x[m].std(0)
                sd[sd < 1e-8] = 1.0
                z[m] = (x[m] - mu) / sd
            else:
                z[m] = (x[m] - mu) / g_scale
        # z is (approximately) standardised already; fit LR directly on z
        from sklearn.linear_model import LogisticRegression

        clf = LogisticRegression(C=C0, class_weight="balanced", max_iter=2000).fit(z, y)
        coef = np.zeros((K, x.shape[1]))
        intercept = np.full(K, -1e4)
        coef[clf.classes_], intercept[clf.classes_] = clf.coef_, clf.intercept_
        return Linear(t_plain, g_mean, g_scale, coef, intercept)

    return fit


def v_perlayer(x4, y, meta, K, ctx, C=C0):
    fits = [lr_fit(flat(x4[:, [i]]), y, C, K) for i in range(x4.shape[1])]
    L = len(fits)
    mean = np.concatenate([f[0] for f in fits])
    scale = np.concatenate([f[1] for f in fits])
    coef = np.concatenate([f[2] for f in fits], axis=1) / L
    intercept = np.mean([f[3] for f in fits], axis=0)
    return Linear(t_plain, mean, scale, coef, intercept)


def v_perlayer_c1e2(x4, y, meta, K, ctx):
    return v_perlayer(x4, y, meta, K, ctx, C=1e-2)


def v_lda(x4, y, meta, K, ctx):
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    x = flat(x4)
    mean, scale = standardiser(x)
    present = np.unique(y)
    lda = LinearDiscriminantAnalysis(
        solver="lsqr", shrinkage="auto", priors=np.full(len(present), 1 / len(present))
    ).fit((x - mean) / scale, y)
    coef = np.zeros((K, x.shape[1]))
    intercept = np.full(K, -1e4)
    coef[lda.classes_], intercept[lda.classes_] = lda.coef_, lda.intercept_
    return Linear(t_plain, mean, scale, coef, intercept)


def inner_splits(y, meta):
    from emovox.evaluation import speaker_kfold

    return speaker_kfold(list(meta["speaker"]), k=4, seed=0, labels=y, strata=list(meta["corpus"]))


def inner_choose(fit_fn, grid, x4, y, meta, K, ctx):
    """Pick the grid value with the best mean inner speaker-CV UAR, refit on all rows."""
    splits = inner_splits(y, meta)
    scores = []
    for g in grid:
        u = []
        for s in splits:
            tr, te = s.train_idx, s.test_idx
            m = {k: v[tr] for k, v in meta.items()}
            model = fit_fn(g, x4[tr], y[tr], m, K)
            u.append(uar(y[te], model.logits(x4[te]).argmax(1), K))
        scores.append(float(np.mean(u)))
    best = grid[int(np.argmax(scores))]
    ctx.setdefault("choices", []).append({"grid": list(map(str, grid)), "inner": scores, "chosen": str(best)})
    return fit_fn(best, x4, y, meta, K)


def _ridge(alpha, x4, y, meta, K):
    from sklearn.linear_model import RidgeClassifier

    x = flat(x4)
    mean, scale = standardiser(x)
    clf = RidgeClassifier(alpha=alpha, class_weight="balanced").fit((x - mean) / scale, y)
    coef = np.zeros((K, x.shape[1]))
    intercept = np.full(K, -1e4)
    coef[clf.classes_], intercept[clf.classes_] = clf.coef_, clf.intercept_
    return Linear(t_plain, mean, scale, coef, intercept)


def v_ridge(x4, y, meta, K, ctx):
    return inner_choose(_ridge, [1e3, 1e4, 3e4, 1e5, 3e5], x4, y, meta, K, ctx)


def _svm(C, x4, y, meta, K):
    from sklearn.svm import LinearSVC

    x = flat(x4)
    mean, scale = standardiser(x)
    clf = LinearSVC(C=C, class_weight="balanced", max_iter=5000).fit((x - mean) / scale, y)
    coef = np.zeros((K, x.shape[1]))
    intercept = np.full(K, -1e4)
    coef[clf.classes_], intercept[clf.classes_] = clf.coef_, clf.intercept_
    return Linear(t_plain, mean, scale, coef, intercept)


def v_svm(x4, y, meta, K, ctx):
    return inner_choose(_svm, [1e-5, 1e-4, 1e-3], x4, y, meta, K, ctx)


def _lr(C, x4, y, meta, K):
    return Linear(t_plain, *lr_fit(flat(x4), y, C, K))


def v_lr_cv(x4, y, meta, K, ctx):
    return inner_choose(_lr, [3e-4, 1e-3, 3e-3, 1e-2], x4, y, meta, K, ctx)


def v_lr_ens(x4, y, meta, K, ctx):
    fits = [lr_fit(flat(x4), y, C, K) for C in (1e-4, 1e-3, 1e-2)]
    return Linear(t_plain, fits[0][0], fits[0][1], np.mean([f[2] for f in fits], 0), np.mean([f[3] for f in fits], 0))


def _pca(kc, x4, y, meta, K):
    k, C = kc
    x = flat(x4)
    mean, scale = standardiser(x)
    z = (x - mean) / scale
    u, s, vt = np.linalg.svd(z, full_matrices=False)
    proj = vt[:k].T / (s[:k] / np.sqrt(len(z)))  # whitening projection (d, k)
    zc = z @ proj
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(C=C, class_weight="balanced", max_iter=2000).fit(zc, y)
    coef = np.zeros((K, k))
    intercept = np.full(K, -1e4)
    coef[clf.classes_], intercept[clf.classes_] = clf.coef_, clf.intercept_
    return Linear(t_plain, mean, scale, coef @ proj.T, intercept)


def v_pca(x4, y, meta, K, ctx):
    return inner_choose(_pca, [(128, 1e-2), (256, 1e-2), (512, 1e-2), (256, 1e-3)], x4, y, meta, K, ctx)


def _rbf(C, x4, y, meta, K):
    from sklearn.svm import SVC

    x = flat(x4)
    mean, scale = standardiser(x)
    clf = SVC(C=C, kernel="rbf", gamma="scale", class_weight="balanced", decision_function_shape="ovr").fit(
        (x - mean) / scale, y
    )

    def logits(xt):
        d = clf.decision_function((flat(xt) - mean) / scale)
        out = np.full((len(xt), K), -1e4)
        out[:, clf.classes_] = d
        return out

    return Fn(logits)


def v_rbf(x4, y, meta, K, ctx):
    return inner_choose(_rbf, [1.0, 10.0], x4, y, meta, K, ctx)


VARIANTS = {
    "base": v_base,
    "w_corpus": make_weight_variant("corpus"),
    "w_speaker": make_weight_variant("speaker"),
    "w_cell": make_weight_variant("cell"),
    "pcc": make_pc_variant(),
    "pcs": make_pc_variant(scale_too=True),
    "pcc_lb": make_pc_variant(label_balanced=True),
    "psc": make_pc_variant(groups="speaker"),
    "logstd": make_transform_variant(t_logstd),
    "ssqrt": make_transform_variant(t_ssqrt),
    "l2": make_transform_variant(t_l2),
    "l2ssqrt": make_transform_variant(t_l2ssqrt),
    "perlayer": v_perlayer,
    "perlayer_c1e2": v_perlayer_c1e2,
    "lda": v_lda,
    "ridge": v_ridge,
    "svm": v_svm,
    "pca": v_pca,
    "lr_cv": v_lr_cv,
    "lr_ens": v_lr_ens,
    "rbf": v_rbf,
}
VARIANTS["logstd_wspk"] = make_weight_variant("speaker", t_logstd)


# ----------------------------------------------------------------------------------------------- running
def run(protocol, layers, variant, data):
    mask, y, classes, splits, mapping = protocol_rows(protocol, data)
    sub = data.subset(mask)
    x = sub.x[:, list(layers)]
    K = len(classes)
    pred = np.full(len(y), -1)
    rows, ctx = [], {}
    t_all = time.process_time()
    for split in splits:
        t0 = time.process_time()
        tr, te = split.train_idx, split.test_idx
        meta = {"speaker": sub.speaker[tr], "corpus": sub.corpus[tr]}
        model = VARIANTS[variant](x[tr], y[tr], meta, K, ctx)
        p = model.logits(x[te]).argmax(1)
        pred[te] = p
        rows.append(
            {
                "fold": split.name,
                "uar": uar(y[te], p, K),
                "acc": float(np.mean(p == y[te])),
                "cpu_s": time.process_time() - t0,
            }
        )
        print(
            f"  {protocol} L{''.join(map(str, layers))} {variant} {split.name}: UAR {rows[-1]['uar']:.3f} "
            f"({rows[-1]['cpu_s']:.0f} s)",
            flush=True,
        )
    u = np.array([r["uar"] for r in rows])
    a = np.array([r["acc"] for r in rows])
    per_corpus = {c: uar(y[sub.corpus == c], pred[sub.corpus == c], K) for c in sorted(set(sub.corpus))}
    res = {
        "protocol": protocol,
        "layers": list(layers),
        "variant": variant,
        "uar": float(u.mean()),
        "uar_std": float(u.std(ddof=1)),
        "acc": float(a.mean()),
        "folds": rows,
        "per_corpus": per_corpus,
        "choices": ctx.get("choices", []),
        "cpu_s": time.process_time() - t_all,
        "when": time.strftime("%H:%M"),
    }
    OUT.mkdir(parents=True, exist_ok=True)
    with open(RESULTS, "a") as fh:
        fh.write(json.dumps(res) + "\n")
    np.save(OUT / f"pred_{protocol}_L{''.join(map(str, layers))}_{variant}.npy", pred)
    return res


def table(path=RESULTS):
    print("| protocol | states | variant | UAR mean ± std | acc | per fold | per corpus | CPU s |")
    print("|---|---|---|---|---|---|---|---|")
    for line in Path(path).read_text().splitlines():
        r = json.loads(line)
        pf = " ".join(f"{f['uar']:.3f}" for f in r["folds"])
        pc = (
            " ".join(f"{c[:4]} {v:.3f}" for c, v in r["per_corpus"].items())
            if r["protocol"] in ("all7", "loco")
            else ""
        )
        ch = " ".join(c["chosen"] for c in r["choices"])
        print(
            f"| {r['protocol']} | {min(r['layers'])}..{max(r['layers'])} | {r['variant']}{' [' + ch + ']' if ch else ''}"
            f" | {r['uar']:.3f} ± {r['uar_std']:.3f} | {r['acc']:.3f} | {pf} | {pc} | {r['cpu_s']:.0f} |"
        )


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--protocol", default="all7")
    ap.add_argument("--layers", default="0-4", help="'0-4' or '0,1,2'")
    ap.add_argument("--variants", default="base")
    ap.add_argument("--table", action="store_true")
    args = ap.parse_args(argv)
    if args.table:
        table()
        return 0
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    if "-" in args.layers:
        a, b = map(int, args.layers.split("-"))
        layers = list(range(a, b + 1))
    else:
        layers = [int(i) for i in args.layers.split(",")]
    data = pooled_data.load()
    for v in args.variants.split(","):
        r = run(args.protocol, layers, v, data)
        print(
            f"{r['protocol']} L{min(layers)}..{max(layers)} {v}: UAR {r['uar']:.3f} ± {r['uar_std']:.3f} "
            f"acc {r['acc']:.3f} {json.dumps({k: round(v, 3) for k, v in r['per_corpus'].items()})} "
            f"{r['cpu_s']:.0f} s",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
