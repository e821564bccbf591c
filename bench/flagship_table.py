"""Reproduce the flagship table: speaker-independent UAR on RAVDESS, EMO-DB, EMOVO.

For each corpus this trains a model on every fold of the protocol and prints
UAR and accuracy (mean ± std over folds), the random 80/20 split figure beside
it (speakers leak: comparison only), and the training time per fold. Models:

- ``--model cnn`` (default): the from-scratch CNN recipe
  (:mod:`emovox.recipes.flagship`), 50 epochs per fold;
- ``--model whisper --backbone DIR``: the frozen Whisper encoder with a
  logistic-regression head (:mod:`emovox.models.whisper_classifier`; layer set
  and ``C`` chosen per fold by inner speaker CV on the training speakers).

Protocols (as in ``docs/flagship_experiments.md``):

- RAVDESS speech, 8 classes: 6 speaker-disjoint folds of 4 actors (2 f + 2 m),
  ``emovox.evaluation.speaker_kfold(k=6, strata=gender, seed=0)``;
- EMO-DB (2 s excerpt), 7 classes: leave one speaker out (10 speakers);
- EMOVO, 7 classes: leave one speaker out (6 speakers).

Audio goes through the product path: ``emovox.corpora.load_corpus`` ->
``emovox.audio.load_audio(trim_silence=True)`` -> the model's own front end
(cached under ``/tmp/emovox-flagship/bench``). Nothing is tuned here: the
recipe's settings were fixed on a RAVDESS development split inside fold-0
training speakers (see the report).

Usage::

    .venv/bin/python bench/flagship_table.py                 # CNN, full table (~1.5-3 h on 2 cores)
    .venv/bin/python bench/flagship_table.py --quick         # smoke check, ~1-2 min
    .venv/bin/python bench/flagship_table.py --corpora ravdess --no-random
    OMP_NUM_THREADS=1 .venv/bin/python bench/flagship_table.py --model whisper --backbone /tmp/emovox-whisper/base  # ~15 min
    OMP_NUM_THREADS=1 .venv/bin/python bench/flagship_table.py --model whisper --backbone /tmp/emovox-whisper/base \
        --corpora emovo --extra ravdess,emodb   # multi-corpus training sets
    # the fixed recipe of docs/accurate_model.md (linear head, all states, C 0.001), other corpora added:
    OMP_NUM_THREADS=1 .venv/bin/python bench/flagship_table.py --model whisper --backbone /tmp/emovox-whisper/base \
        --cache /tmp/emovox-whisper/cache --layers 0,1,2,3,4,5,6 --cs 0.001 --extra ravdess,emodb,emovo,turev
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

CACHE = Path("/tmp/emovox-flagship/bench")
PROTOCOLS = {
    "ravdess": ("ravdess8", "6 speaker folds"),
    "emodb": ("native", "LOSO"),
    "emovo": ("native", "LOSO"),
}
CLASSES = {
    "ravdess": ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"),
    "emodb": ("neutral", "happy", "sad", "angry", "fearful", "disgust", "boredom"),
    "emovo": ("neutral", "happy", "sad", "angry", "fearful", "disgust", "surprised"),
}


def _logmels(corpus: str, records, frontend) -> list[np.ndarray]:
    """Log-mel of every record, decoded with the product loader and cached on disk."""
    from emovox.audio import load_audio

    key = hashlib.sha1(json.dumps([str(r.path) for r in records]).encode()).hexdigest()[:10]
    path = CACHE / f"{corpus}-{key}.npz"
    if path.exists():
        z = np.load(path)
        return [z[f"x{i}"].astype(np.float32) for i in range(len(records))]
    CACHE.mkdir(parents=True, exist_ok=True)
    out = []
    with torch.no_grad():
        for r in records:
            y = load_audio(r.path, sample_rate_hz=16000, trim_silence=True)
            out.append(frontend(torch.from_numpy(y)[None])[0].numpy())
    np.savez(path, **{f"x{i}": x.astype(np.float16) for i, x in enumerate(out)})
    return out


def _splits(corpus: str, records, labels):
    """RAVDESS: fold k tests actors 4k+1..4k+4 (2 female + 2 male); otherwise leave one speaker out."""
    from emovox.evaluation import leave_one_speaker_out, random_stratified

    if corpus == "ravdess":
        groups = [f"actors{4 * k + 1:02d}-{4 * k + 4:02d}" for k in ((int(r.speaker) - 1) // 4 for r in records)]
    else:
        groups = [r.speaker_key for r in records]
    return leave_one_speaker_out(groups), random_stratified(labels, test_fraction=0.2, seed=0)[0]


def _augments():
    from emovox.augment import GaussianNoise, PitchShift

    return [GaussianNoise(snr_db=(10.0, 30.0)), PitchShift(semitones=(-2.0, 2.0))]


AUGMENTS = _augments()


def _extra_rows(corpus: str, args):
    """Clips of the ``--extra`` corpora whose emotion is one of ``corpus``'s classes (others dropped)."""
    from emovox.corpora import load_corpus
    from emovox.recipes.whisper import pooled_features

    names = [c for c in args.extra.split(",") if c and c != corpus]
    if not names:
        return None
    classes = CLASSES[corpus]
    records = [r for name in names for r in load_corpus(name) if r.emotion in classes]
    pooled = pooled_features(records, args.backbone, cache_dir=args.cache)
    print(f"  {corpus}: + {len(records)} training clips from {', '.join(names)} in every fold", flush=True)
    return pooled, np.array([classes.index(r.emotion) for r in records]), np.array([r.speaker_key for r in records])


def _whisper_fold_trainer(corpus: str, records, args):
    """Pooled encoder features of every clip (cached), and a train/predict function over index arrays."""
    from emovox.inference.adaptation import speaker_centred
    from emovox.recipes.whisper import fit_head, pooled_features

    t0 = time.time()
    pooled = pooled_features(records, args.backbone, cache_dir=args.cache)
    print(
        f"  {corpus}: encoder features of {len(records)} clips in {time.time() - t0:.0f} s (cached after the "
        "first run)",
        flush=True,
    )
    speakers = np.array([r.speaker_key for r in records])
    extra = _extra_rows(corpus, args)
    copies = [
        pooled_features(records, args.backbone, cache_dir=args.cache, augment=t) for t in AUGMENTS[: args.augment]
    ]
    if copies:
        print(
            f"  {corpus}: {len(copies)} augmented copies of every training clip ({time.time() - t0:.0f} s so far)",
            flush=True,
        )

    def train_predict(train_idx, test_idx, labels, n_classes):
        x_train, aug, x_test, ext = pooled[train_idx], [c[train_idx] for c in copies], pooled[test_idx], extra
        if args.adapt is not None:  # speaker-adaptive normalisation: a separate, labelled figure
            x_train = speaker_centred(x_train, speakers[train_idx])
            aug = [speaker_centred(a, speakers[train_idx]) for a in aug]
            x_test = speaker_centred(x_test, speakers[test_idx], k=args.adapt or None, seed=0)
            if ext is not None:
                ext = (speaker_centred(ext[0], ext[2]), ext[1])
        options = {"Cs": tuple(args.cs)} if args.cs and args.head == "linear" else {}
        fit = fit_head(
            x_train,
            labels[train_idx],
            list(speakers[train_idx]),
            n_classes=n_classes,
            head=args.head,
            layers=args.layers,
            head_options=options,
            augmented=aug,
            extra=None if ext is None else ext[:2],
            inner_cv=False,
        )
        return fit.logits(x_test).argmax(1)

    return train_predict


def _run(corpus: str, args) -> dict:
    from emovox.corpora import load_corpus
    from emovox.models.flagship import FlagshipConfig, make_frontend
    from emovox.recipes.flagship import FlagshipRecipe, predict_logits, train_flagship

    classes = CLASSES[corpus]
    records = [r for r in load_corpus(corpus) if r.emotion in classes]
    labels = np.array([classes.index(r.emotion) for r in records])
    recipe = FlagshipRecipe()
    if args.quick:  # a few clips per class, 2 epochs, one fold
        rng = np.random.default_rng(0)
        keep = np.sort(
            np.concatenate([rng.choice(np.flatnonzero(labels == c), 12, replace=False) for c in range(len(classes))])
        )
        records = [records[i] for i in keep]
        labels = labels[keep]
        recipe = FlagshipRecipe(epochs=2, batch_size=16)
    if args.model == "whisper":
        train_predict = _whisper_fold_trainer(corpus, records, args)
    else:
        feats = _logmels(corpus, records, make_frontend(FlagshipConfig()))

        def train_predict(train_idx, test_idx, labels, n_classes):
            model = train_flagship([feats[i] for i in train_idx], labels[train_idx], n_classes, recipe)
            return predict_logits(model, [feats[i] for i in test_idx]).argmax(1)

    folds, rand = _splits(corpus, records, labels)
    if args.quick:
        folds = folds[:1]
    rows = []
    todo = [(s, False) for s in folds] + ([] if args.no_random or args.quick else [(rand, True)])
    for split, is_random in todo:
        t0 = time.time()
        pred = train_predict(split.train_idx, split.test_idx, labels, len(classes))
        train_s = time.time() - t0
        y = labels[split.test_idx]
        recall = [np.mean(pred[y == c] == c) for c in range(len(classes)) if np.any(y == c)]
        row = {
            "split": split.name,
            "random": is_random,
            "uar": float(np.mean(recall)),
            "acc": float(np.mean(pred == y)),
            "train_s": train_s,
        }
        rows.append(row)
        print(f"  {corpus} {split.name}: UAR {row['uar']:.3f} acc {row['acc']:.3f} train {train_s:.0f} s", flush=True)
    fold_rows = [r for r in rows if not r["random"]]
    u = np.array([r["uar"] for r in fold_rows])
    a = np.array([r["acc"] for r in fold_rows])
    rand_row = next((r for r in rows if r["random"]), None)
    return {
        "corpus": corpus,
        "protocol": PROTOCOLS[corpus][1],
        "n_classes": len(classes),
        "uar": (u.mean(), u.std()),
        "acc": (a.mean(), a.std()),
        "n_folds": len(fold_rows),
        "random_uar": None if rand_row is None else rand_row["uar"],
        "train_s": float(np.mean([r["train_s"] for r in fold_rows])),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smoke check: 12 clips/class, 2 epochs, 1 fold")
    ap.add_argument("--corpora", default="ravdess,emodb,emovo")
    ap.add_argument("--no-random", action="store_true", help="skip the random-split comparison run")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--model", choices=("cnn", "whisper"), default="cnn")
    ap.add_argument("--backbone", type=Path, help="whisper: encoder folder from scripts/import_whisper_ct2.py")
    ap.add_argument(
        "--augment",
        type=int,
        default=0,
        choices=(0, 1, 2),
        help="whisper: add 1 (noise 10-30 dB SNR) or 2 (+ pitch +-2 semitones) augmented copies of each training clip",
    )
    ap.add_argument(
        "--head",
        choices=("linear", "weighted", "mlp"),
        default="linear",
        help="whisper: head (see emovox.recipes.whisper.fit_head)",
    )
    ap.add_argument(
        "--layers",
        type=lambda t: [int(i) for i in t.split(",")],
        default=None,
        help="whisper: hidden states the head reads (default: the linear head chooses by inner CV "
        "among each state alone and all)",
    )
    ap.add_argument(
        "--cs",
        type=lambda t: [float(i) for i in t.split(",")],
        default=None,
        help="whisper linear head: C candidates (default 0.001,0.01,0.1,1; one C with --layers: no inner CV)",
    )
    ap.add_argument(
        "--adapt",
        type=int,
        default=None,
        metavar="K",
        help="whisper: speaker-adaptive normalisation, each test speaker centred on K random "
        "unlabelled clips of their own (0 = all); a separate figure, never the headline",
    )
    ap.add_argument("--cache", type=Path, default=CACHE / "whisper", help="whisper: pooled-feature cache")
    ap.add_argument(
        "--extra",
        default="",
        metavar="C1,C2",
        help="whisper: corpora added to every training set (clips of the target's classes; "
        "validation and test stay on the target corpus)",
    )
    args = ap.parse_args(argv)
    if args.model == "whisper" and not args.backbone:
        ap.error("--model whisper needs --backbone DIR")
    torch.set_num_threads(args.threads)
    results = [_run(c, args) for c in args.corpora.split(",")]
    print()
    print(
        f"model: {args.model}"
        + (f" ({args.backbone})" if args.model == "whisper" else "")
        + (f", training sets + {args.extra}" if args.extra else "")
        + (f", {args.augment} augmented copies per training clip" if args.augment else "")
        + (
            f", head {args.head}"
            + (f" on states {args.layers}" if args.layers else "")
            + (f", C {args.cs}" if args.cs else "")
            if args.model == "whisper"
            else ""
        )
        + (f", SPEAKER-ADAPTIVE (--adapt {args.adapt or 'all'})" if args.adapt is not None else "")
    )
    print("| corpus | classes | protocol | UAR (mean ± std) | accuracy | random split UAR | train s/fold |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        rnd = "—" if r["random_uar"] is None else f"{r['random_uar']:.3f}"
        print(
            f"| {r['corpus']} | {r['n_classes']} | {r['protocol']} ({r['n_folds']} folds) | "
            f"{r['uar'][0]:.3f} ± {r['uar'][1]:.3f} | {r['acc'][0]:.3f} ± {r['acc'][1]:.3f} | {rnd} | "
            f"{r['train_s']:.0f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
