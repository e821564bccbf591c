"""Speaker-independent emotion recognition on pooled frozen-Whisper features.

Protocols are the flagship's (``experiments/flagship/run.py``): RAVDESS,
8 classes (``ravdess8``), 6 folds of 4 consecutive actors (fold k tests actors
4k+1..4k+4); EMO-DB and EMOVO, their 7 native classes, leave one speaker out.
A random stratified 80/20 split (same speakers on both sides) is run beside,
for comparison only.

Classifier, fixed before looking at any test fold: the features of a set of
layers (per layer the mean and std over frames, concatenated), standardised on
the training rows, then multinomial logistic regression with balanced class
weights. The layer set (each single hidden state, or all of them) and ``C``
(1e-3 .. 1) are chosen by an inner 4-fold speaker k-fold on the TRAINING
speakers of each outer fold (mean inner UAR); ``--layers`` fixes the layer set
instead (for the layer comparison; ``C`` is still chosen inside).
``--extra ravdess,emodb`` adds every clip of other corpora whose emotion is
one of the target classes (calm, boredom dropped) to each training set, inner
training sets included; validation and test rows stay target-corpus speakers.

Needs the features of ``experiments/whisper/extract.py``. Appends one JSON line
per fold and one summary line per run to ``/tmp/emovox-whisper/results.jsonl``.

Usage
-----
OMP_NUM_THREADS=1 .venv/bin/python experiments/whisper/evaluate.py --corpus emodb
OMP_NUM_THREADS=1 .venv/bin/python experiments/whisper/evaluate.py --corpus emodb --layers last
OMP_NUM_THREADS=1 .venv/bin/python experiments/whisper/evaluate.py --table   # summaries so far
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import Counter
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # the machine is shared: one thread

import numpy as np  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402

from emovox.corpora import load_corpus  # noqa: E402
from emovox.evaluation import (  # noqa: E402
    Split,
    compute_metrics,
    leave_one_speaker_out,
    random_stratified,
    speaker_kfold,
    summarize_folds,
)
from emovox.evaluation.experiment import prepare_labels  # noqa: E402
from emovox.features.scaling import StandardScaler  # noqa: E402

ROOT = Path("/tmp/emovox-whisper")
RESULTS = ROOT / "results.jsonl"
SCHEMES = {"ravdess": "ravdess8", "emodb": "native", "emovo": "native"}
C_GRID = (1e-3, 1e-2, 1e-1, 1.0)
INNER_FOLDS = 4


def load_features(
    corpus: str, model: str, *, trim: bool, pad_30s: bool = False
) -> tuple[np.ndarray, list, np.ndarray, tuple]:
    """Pooled features ``(n, n_states, 2, d)``, the emovox records, class ids and class names."""
    stem = ROOT / "features" / f"{model}_{corpus}_{'trim' if trim else 'full'}{'_pad30' if pad_30s else ''}"
    x = np.load(f"{stem}.npy")
    paths = [r["path"] for r in json.loads(Path(f"{stem}.json").read_text())["records"]]
    records = load_corpus(corpus)
    if [r.path for r in records] != paths:
        raise SystemExit(f"{stem}.json lists other clips than load_corpus({corpus!r}): re-run extract.py")
    kept, y, classes = prepare_labels(records, SCHEMES[corpus])
    if len(kept) != len(records):
        raise SystemExit(f"scheme {SCHEMES[corpus]!r} drops clips of {corpus}; this script expects it to keep all")
    return x, records, y, classes


def outer_splits(corpus: str, records: list) -> list[Split]:
    """The flagship's folds: RAVDESS 6 x 4 consecutive actors, otherwise leave one speaker out."""
    if corpus == "ravdess":
        groups = [f"actors{4 * k + 1:02d}-{4 * k + 4:02d}" for k in ((int(r.speaker) - 1) // 4 for r in records)]
        return leave_one_speaker_out(groups)
    return leave_one_speaker_out([r.speaker_key for r in records])


def layer_sets(n_states: int, spec: str) -> dict[str, list[int]]:
    """Candidate layer sets: ``auto`` = each hidden state alone + all; or ``all``, ``last``, ``mid`` or an index."""
    named = {"all": list(range(n_states)), "last": [n_states - 1], "mid": [(n_states - 1) // 2]}
    if spec == "auto":
        return {**{f"L{i}": [i] for i in range(n_states)}, "all": named["all"]}
    if spec in named:
        return {spec: named[spec]}
    return {f"L{int(spec)}": [int(spec)]}


def speaker_normalise(x: np.ndarray, speakers: list) -> np.ndarray:
    """Standardise each speaker's rows by that speaker's own mean and std (no labels).

    Transductive: a test speaker is normalised with statistics of all of their
    clips, so a deployment would need a batch of the user's speech first. A
    separate, clearly labelled protocol, never the headline figure.
    """
    out = np.empty_like(x)
    speakers = np.asarray(speakers)
    for s in set(speakers):
        rows = speakers == s
        out[rows] = (x[rows] - x[rows].mean(0)) / (x[rows].std(0) + 1e-6)
    return out


def flat(x: np.ndarray, layers: list[int]) -> np.ndarray:
    """``(n, n_states, 2, d)`` -> ``(n, len(layers) * 2 * d)``: mean and std of the chosen layers side by side."""
    return x[:, layers].reshape(len(x), len(layers) * int(np.prod(x.shape[2:])))


def fit_predict(x_tr: np.ndarray, y_tr: np.ndarray, x_te: np.ndarray, c: float) -> np.ndarray:
    """Standardise on the training rows, fit balanced logistic regression, predict class ids."""
    scaler = StandardScaler().fit(x_tr)
    clf = LogisticRegression(C=c, class_weight="balanced", max_iter=2000)
    clf.fit(scaler.transform(x_tr), y_tr)
    return clf.predict(scaler.transform(x_te))


def extra_training_rows(corpora: list[str], model: str, classes: tuple, *, trim: bool) -> tuple[np.ndarray, np.ndarray]:
    """Features and class ids of the clips of other corpora whose emotion is one of ``classes``."""
    xs, ys = [], []
    for corpus in corpora:
        x, records, _, _ = load_features(corpus, model, trim=trim)
        keep = [i for i, r in enumerate(records) if r.emotion in classes]
        xs.append(x[keep])
        ys.append(np.array([classes.index(records[i].emotion) for i in keep], dtype=np.int64))
    return np.concatenate(xs), np.concatenate(ys)


def select(
    x: np.ndarray, y: np.ndarray, speakers: list, candidates: dict, classes: tuple, extra: tuple[np.ndarray, np.ndarray]
) -> tuple[str, float, float]:
    """Best (layer set, C) by mean UAR over an inner speaker k-fold of these (training) rows."""
    inner = speaker_kfold(speakers, k=min(INNER_FOLDS, len(set(speakers))), seed=0, labels=y)
    best = ("", 0.0, -1.0)
    for name, layers in candidates.items():
        xs, xe = flat(x, layers), flat(extra[0], layers)
        for c in C_GRID:
            uar = np.mean(
                [
                    compute_metrics(
                        y[s.test_idx],
                        fit_predict(
                            np.concatenate([xs[s.train_idx], xe]),
                            np.concatenate([y[s.train_idx], extra[1]]),
                            xs[s.test_idx],
                            c,
                        ),
                        classes=classes,
                    )["uar"]
                    for s in inner
                ]
            )
            if uar > best[2]:
                best = (name, c, float(uar))
    return best


def run_split(split: Split, x, y, records, candidates, classes, extra) -> tuple[dict, dict]:
    """Select (inside the training rows), refit, test: a JSON row and the full :func:`compute_metrics` dict.

    ``extra``: ``(features, class ids)`` added to every training set (may be empty).
    """
    t0 = time.perf_counter()
    tr, te = split.train_idx, split.test_idx
    name, c, inner_uar = select(x[tr], y[tr], [records[i].speaker_key for i in tr], candidates, classes, extra)
    layers = candidates[name]
    pred = fit_predict(
        np.concatenate([flat(x[tr], layers), flat(extra[0], layers)]),
        np.concatenate([y[tr], extra[1]]),
        flat(x[te], layers),
        c,
    )
    m = compute_metrics(y[te], pred, classes=classes)
    row = {
        "fold": split.name,
        "uar": m["uar"],
        "accuracy": m["accuracy"],
        "macro_f1": m["macro_f1"],
        "layers": name,
        "C": c,
        "inner_uar": inner_uar,
        "train_s": round(time.perf_counter() - t0, 2),
        "n_train": int(len(tr) + len(extra[1])),
        "n_test": int(len(te)),
    }
    return row, m


def append(record: dict) -> None:
    ROOT.mkdir(parents=True, exist_ok=True)
    with open(RESULTS, "a") as fh:
        fh.write(json.dumps(record) + "\n")


def print_table(rows: list[dict]) -> None:
    """One line per summary: configuration, UAR mean ± std (ddof=1), accuracy, random split, per-fold UAR."""
    print(
        f"{'model':11} {'corpus':8} {'+train':13} {'layers':6} {'trim':5} {'spkN':5} {'folds':>5}  "
        f"{'UAR mean±std':12}  {'acc':5}  {'random UAR/acc':14}  {'s/fold':>6}  per-fold UAR | chosen layers:C"
    )
    for r in rows:
        rnd = f"{r['random']['uar']:.3f}/{r['random']['accuracy']:.3f}" if r.get("random") else "-"
        extra = ",".join(r.get("extra", [])) or "-"
        print(
            f"{r['model']:11} {r['corpus']:8} {extra:13} {r['layer_spec']:6} {str(r['trim']):5} "
            f"{str(r.get('speaker_norm', False)):5} {r['n_folds']:>5}  {r['uar_mean']:.3f}±{r['uar_std']:.3f}  "
            f"{r['acc_mean']:.3f}  {rnd:14}  {r['train_s_per_fold']:>6.1f}  "
            f"{' '.join(f'{u:.2f}' for u in r['per_fold_uar'])} | {r['chosen']}"
        )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", choices=sorted(SCHEMES))
    ap.add_argument("--model", default="base", help="feature file prefix (model folder name)")
    ap.add_argument("--layers", default="auto", help="auto (inner CV) | all | last | mid | <index>")
    ap.add_argument("--no-trim", action="store_true", help="use the untrimmed features")
    ap.add_argument("--no-random", action="store_true", help="skip the random-split comparison")
    ap.add_argument("--pad30", action="store_true", help="use the features extracted with --pad-30s")
    ap.add_argument("--extra", default="", help="comma list of corpora added to every training set")
    ap.add_argument(
        "--speaker-norm",
        action="store_true",
        help="per-speaker standardisation, test speakers included (transductive; supplementary)",
    )
    ap.add_argument("--table", action="store_true", help="print the latest summary per configuration and exit")
    args = ap.parse_args(argv)
    if args.table:
        rows = [json.loads(line) for line in RESULTS.read_text().splitlines()] if RESULTS.exists() else []
        latest = {
            (
                r["model"],
                r["corpus"],
                r["layer_spec"],
                r["trim"],
                r.get("speaker_norm", False),
                tuple(r.get("extra", ())),
            ): r
            for r in rows
            if r["kind"] == "summary"
        }
        print_table(list(latest.values()))
        return 0
    if args.corpus is None:
        ap.error("--corpus is required unless --table")
    trim = not args.no_trim
    x, records, y, classes = load_features(args.corpus, args.model, trim=trim, pad_30s=args.pad30)
    if args.speaker_norm:
        x = speaker_normalise(x, [r.speaker_key for r in records])
    candidates = layer_sets(x.shape[1], args.layers)
    extra_corpora = [c for c in args.extra.split(",") if c]
    if extra_corpora and (args.speaker_norm or args.pad30):
        ap.error("--extra does not combine with --speaker-norm or --pad30")
    extra = (
        extra_training_rows(extra_corpora, args.model, classes, trim=trim)
        if extra_corpora
        else (np.zeros((0, *x.shape[1:]), x.dtype), np.zeros(0, np.int64))
    )
    tag = {
        "model": args.model + ("+pad30" if args.pad30 else ""),
        "corpus": args.corpus,
        "layer_spec": args.layers,
        "trim": trim,
        "speaker_norm": args.speaker_norm,
        "extra": extra_corpora,
    }
    print(
        f"{args.model} {args.corpus}: {x.shape} classes {classes}; candidates {list(candidates)} x C {C_GRID}",
        flush=True,
    )
    folds, fold_metrics = [], []
    for split in outer_splits(args.corpus, records):
        row, m = run_split(split, x, y, records, candidates, classes, extra)
        folds.append(row)
        fold_metrics.append(m)
        append({"kind": "fold", **tag, **folds[-1], "time": time.strftime("%H:%M:%S")})
        print("  " + json.dumps(folds[-1]), flush=True)
    random = None
    if not args.no_random:
        random, _ = run_split(
            random_stratified(y, test_fraction=0.2, seed=0)[0], x, y, records, candidates, classes, extra
        )
        print("  random: " + json.dumps(random), flush=True)
    summary = summarize_folds(fold_metrics)  # std with ddof=1
    row = {
        "kind": "summary",
        **tag,
        "n_folds": len(folds),
        "uar_mean": summary["uar"]["mean"],
        "uar_std": summary["uar"]["std"],
        "acc_mean": summary["accuracy"]["mean"],
        "acc_std": summary["accuracy"]["std"],
        "per_fold_uar": [round(f["uar"], 4) for f in folds],
        "chosen": dict(Counter(f"{f['layers']}:{f['C']:g}" for f in folds)),
        "train_s_per_fold": float(np.mean([f["train_s"] for f in folds])),
        "random": random,
        "time": time.strftime("%H:%M:%S"),
    }
    append(row)
    print_table([row])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
