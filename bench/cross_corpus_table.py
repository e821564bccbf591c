"""Leave one corpus out on the shared emotions: train on three corpora, test on the fourth.

The classes are those every corpus has (:func:`emovox.evaluation.cross_corpus.shared_classes`;
for RAVDESS, EMO-DB, EMOVO and TurEV-DB: neutral (calm counted as neutral),
happy, sad, angry). For each held-out corpus the head is fitted on the pooled
Whisper features of the other corpora's clips and scored on every clip of the
held-out one (its speakers, language and recording conditions all unseen):
UAR first, accuracy beside it, then the mean over held-out corpora. With
``--in-corpus`` the same classes are also scored inside each corpus with
held-out speakers (speaker k-fold, k = min(6, speakers)), for comparison.

Audio goes through the product path (``load_corpus`` -> ``load_audio`` ->
``trim_for_model`` -> Whisper encoder), pooled features cached per clip.
Defaults are the fixed protocol of ``docs/accurate_model.md`` (linear head on
all hidden states, C = 0.001; nothing is chosen on the held-out corpus).

Usage::

    OMP_NUM_THREADS=1 .venv/bin/python bench/cross_corpus_table.py --backbone /tmp/emovox-whisper/base
    OMP_NUM_THREADS=1 .venv/bin/python bench/cross_corpus_table.py --adapt 20   # speaker-adaptive (labelled)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

CORPORA = "ravdess,emodb,emovo,turev"


def _ints(text: str) -> list[int]:
    return [int(i) for i in text.split(",") if i]


def _floats(text: str) -> list[float]:
    return [float(i) for i in text.split(",") if i]


def add_head_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument(
        "--backbone",
        type=Path,
        default=Path("/tmp/emovox-whisper/base"),
        help="Whisper encoder folder from scripts/import_whisper_ct2.py",
    )
    ap.add_argument("--cache", type=Path, default=Path("/tmp/emovox-whisper/cache"), help="pooled-feature cache")
    ap.add_argument("--head", choices=("linear", "weighted", "mlp"), default="linear")
    ap.add_argument("--layers", type=_ints, default=[0, 1, 2, 3, 4, 5, 6], help="hidden states the head reads")
    ap.add_argument("--cs", type=_floats, default=[1e-3], help="linear: C candidates (several: inner speaker CV)")
    ap.add_argument(
        "--augment",
        type=int,
        default=0,
        choices=(0, 1, 2),
        help="augmented copies of each training clip (1 noise, 2 + pitch)",
    )
    ap.add_argument(
        "--adapt",
        type=int,
        default=None,
        metavar="K",
        help="speaker-adaptive normalisation: each test speaker centred on K random unlabelled clips "
        "of their own (0 = all); reported separately, never the headline",
    )
    ap.add_argument("--seed", type=int, default=0)


def head_options(args) -> dict:
    return {"Cs": tuple(args.cs)} if args.head == "linear" else {}


def features(records, args):
    """Pooled features of ``records`` and their augmented copies (cached per clip)."""
    from emovox.recipes.whisper import augment_transforms, pooled_features

    t0 = time.time()
    pooled = pooled_features(records, args.backbone, cache_dir=args.cache)
    copies = [
        pooled_features(records, args.backbone, cache_dir=args.cache, augment=t, seed=args.seed)
        for t in augment_transforms(args.augment)
    ]
    print(
        f"  features of {len(records)} clips (+{len(copies)} augmented copies) in {time.time() - t0:.0f} s", flush=True
    )
    return pooled, copies


def fit_predict(args, pooled, copies, y, speakers, train_idx, test_idx, n_classes, *, draw: int = 0):
    """Fit the head on ``train_idx`` (speaker-centred with ``--adapt``) and return test predictions."""
    from emovox.inference.adaptation import speaker_centred
    from emovox.recipes.whisper import fit_head

    x_train, aug = pooled[train_idx], [c[train_idx] for c in copies]
    x_test = pooled[test_idx]
    if args.adapt is not None:
        x_train = speaker_centred(x_train, speakers[train_idx])
        aug = [speaker_centred(a, speakers[train_idx]) for a in aug]
        x_test = speaker_centred(x_test, speakers[test_idx], k=args.adapt or None, seed=draw)
    fit = fit_head(
        x_train,
        y[train_idx],
        list(speakers[train_idx]),
        n_classes=n_classes,
        head=args.head,
        layers=args.layers,
        head_options=head_options(args),
        augmented=aug,
        inner_cv=False,
        seed=args.seed,
    )
    return fit.logits(x_test).argmax(1)


def describe(args) -> str:
    text = f"{args.head} head on hidden states {','.join(map(str, args.layers))}"
    if args.head == "linear":
        text += f", C {'/'.join(f'{c:g}' for c in args.cs)}"
    if args.augment:
        text += f", {args.augment} augmented copies"
    if args.adapt is not None:
        text += f", SPEAKER-ADAPTIVE (--adapt {args.adapt or 'all'} unlabelled clips per test speaker)"
    return text


def main(argv=None) -> int:
    from emovox.corpora import load_corpus
    from emovox.evaluation import compute_metrics, speaker_kfold
    from emovox.evaluation.cross_corpus import leave_one_corpus_out, shared_scheme

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpora", default=CORPORA)
    ap.add_argument("--in-corpus", action="store_true", help="also score the classes inside each corpus")
    add_head_arguments(ap)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    records = [r for c in args.corpora.split(",") for r in load_corpus(c)]
    scheme = shared_scheme([r.corpus for r in records], [r.emotion for r in records])
    records = [r for r in records if scheme.keeps(r.emotion)]
    classes = list(scheme.classes)
    y = np.array([scheme.index_of(r.emotion) for r in records])
    corpora = np.array([r.corpus for r in records])
    speakers = np.array([r.speaker_key for r in records])
    print(f"shared classes: {', '.join(classes)} ({len(records)} clips)", flush=True)
    pooled, copies = features(records, args)
    rows = []
    for split in leave_one_corpus_out(corpora):
        t0 = time.time()
        pred = fit_predict(args, pooled, copies, y, speakers, split.train_idx, split.test_idx, len(classes))
        m = compute_metrics(y[split.test_idx], pred, classes=classes)
        held = corpora[split.test_idx[0]]
        row = {"held": held, "uar": m["uar"], "acc": m["accuracy"], "n": len(split.test_idx), "s": time.time() - t0}
        if args.in_corpus:
            inside = np.flatnonzero(corpora == held)
            folds = speaker_kfold(
                list(speakers[inside]), k=min(6, len(set(speakers[inside]))), seed=0, labels=y[inside]
            )
            uars = []
            for fold in folds:
                p = fit_predict(
                    args, pooled, copies, y, speakers, inside[fold.train_idx], inside[fold.test_idx], len(classes)
                )
                uars.append(compute_metrics(y[inside[fold.test_idx]], p, classes=classes)["uar"])
            row["in_corpus"] = float(np.mean(uars))
        rows.append(row)
        print(f"  {split.name}: UAR {m['uar']:.3f} acc {m['accuracy']:.3f} ({row['s']:.0f} s)", flush=True)
    print()
    print(f"leave one corpus out, {len(classes)} shared classes ({', '.join(classes)}); {describe(args)}")
    print(
        "| held-out corpus | clips | UAR | accuracy |"
        + (" in-corpus UAR (held-out speakers) |" if args.in_corpus else "")
    )
    print("|---|---|---|---|" + ("---|" if args.in_corpus else ""))
    for r in rows:
        print(
            f"| {r['held']} | {r['n']} | {r['uar']:.3f} | {r['acc']:.3f} |"
            + (f" {r['in_corpus']:.3f} |" if args.in_corpus else "")
        )
    u, a = np.array([r["uar"] for r in rows]), np.array([r["acc"] for r in rows])
    print(
        f"| **mean** | | **{u.mean():.3f} ± {u.std(ddof=1):.3f}** | {a.mean():.3f} |"
        + (f" {np.mean([r['in_corpus'] for r in rows]):.3f} |" if args.in_corpus else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
