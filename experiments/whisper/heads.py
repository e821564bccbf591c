"""Head experiments on cached pooled Whisper-base features, under held-out speakers.

Protocols (fixed before any run; the outer test fold is never used for a choice):

- ``ravdess``: 8 classes, 6 folds of 4 consecutive actors (the flagship's folds);
- ``emodb``: its 7 classes, leave one speaker out;
- ``emovo``: its 7 classes, leave one speaker out;
- ``all7``: ``emovox7`` over RAVDESS + EMO-DB + EMOVO + TurEV-DB, 6 speaker-disjoint
  folds (``speaker_kfold(k=6, strata=corpus, seed=0)``: every fold tests one EMOVO
  and one TurEV speaker, 4 RAVDESS actors and 1-2 EMO-DB speakers);
- ``loco``: leave one corpus out on the 4 classes all corpora share (angry, happy,
  sad, neutral; calm counted as neutral): train on three corpora, test on the fourth.

Heads: ``linear`` (:func:`fit_linear_head`: layer set and C by inner CV),
``weighted`` / ``mlp`` (:func:`fit_pooled_head`: epochs by inner CV). Options:
``--extra`` (other corpora's clips of the target's classes in every training
set), ``--augment noise,pitch`` (augmented copies of the training rows),
``--adapt K`` (speaker-centred rows; each test speaker centred with K random
unlabelled clips of their own). Each run appends one JSON line to
``/tmp/emovox-research/results.jsonl``.

Usage::

    OMP_NUM_THREADS=1 .venv/bin/python experiments/whisper/heads.py --protocol emodb --head weighted
    .venv/bin/python experiments/whisper/heads.py --table
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
import pooled_data  # noqa: E402

RESULTS = pooled_data.OUT / "results.jsonl"
NATIVE = {
    "ravdess": ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"),
    "emodb": ("neutral", "happy", "sad", "angry", "fearful", "disgust", "boredom"),
    "emovo": ("neutral", "happy", "sad", "angry", "fearful", "disgust", "surprised"),
}
SHARED4 = ("neutral", "happy", "sad", "angry")


def protocol_rows(name: str, data: pooled_data.PooledData):
    """(target row mask, label ids, classes, splits over target rows, extra-candidate mask, class map)."""
    from emovox.evaluation import leave_one_speaker_out, speaker_kfold
    from emovox.labels import get_scheme

    if name in NATIVE:
        classes = NATIVE[name]
        mask = (data.corpus == name) & np.isin(data.emotion, classes)
        mapping = {e: e for e in classes}
        sub = data.subset(mask)
        if name == "ravdess":
            groups = [f"actors{4 * k + 1:02d}-{4 * k + 4:02d}" for k in ((sub.actor.astype(int) - 1) // 4)]
        else:
            groups = list(sub.speaker)
        splits = leave_one_speaker_out(groups)
    elif name == "all7":
        scheme = get_scheme("emovox7")
        classes = tuple(scheme.classes)
        mapping = {e: scheme.class_of(e) for e in set(data.emotion) if scheme.class_of(e)}
        mask = np.isin(data.emotion, list(mapping))
        sub = data.subset(mask)
        y = np.array([classes.index(mapping[e]) for e in sub.emotion])
        splits = speaker_kfold(list(sub.speaker), k=6, seed=0, labels=y, strata=list(sub.corpus))
    elif name == "loco":
        classes = SHARED4
        mapping = {"neutral": "neutral", "calm": "neutral", "happy": "happy", "sad": "sad", "angry": "angry"}
        mask = np.isin(data.emotion, list(mapping))
        sub = data.subset(mask)
        from emovox.evaluation import cross_corpus

        splits = [
            cross_corpus(list(sub.corpus), train=[c for c in pooled_data.CORPORA if c != held], test=held)[0]
            for held in pooled_data.CORPORA
        ]
    else:
        raise SystemExit(f"unknown protocol {name}")
    y = np.array([classes.index(mapping[e]) for e in data.subset(mask).emotion])
    return mask, y, classes, splits, mapping


def fit_head(args, x, y, speakers, n_classes, extra, augmented, seed):
    """The library's :func:`emovox.recipes.whisper.fit_head`; one linear candidate is fitted without inner CV."""
    from emovox.recipes.whisper import fit_head as library_fit

    if args.head == "linear":
        options = {"Cs": tuple(args.cs)}
    else:
        options = {
            "hidden": args.hidden,
            "dropout": args.dropout,
            "n_members": args.members,
            "epoch_grid": tuple(args.epochs),
        }
    return library_fit(
        x,
        y,
        speakers,
        n_classes=n_classes,
        head=args.head,
        layers=args.layers,
        head_options=options,
        augmented=augmented,
        extra=extra,
        inner_cv=False,
        seed=seed,
    )


def run(args) -> dict:
    from emovox.evaluation import compute_metrics
    from emovox.models.whisper_heads import speaker_centred

    data = pooled_data.load()
    copies = [pooled_data.load(v).x for v in args.augment]
    mask, y, classes, splits, mapping = protocol_rows(args.protocol, data)
    sub = data.subset(mask)
    x = sub.x
    aug = [c[mask] for c in copies]
    extra_mask = np.zeros(len(data.x), bool)
    if args.extra:
        extra_mask = (~mask) & np.isin(data.corpus, args.extra) & np.isin(data.emotion, list(mapping))
    ex = data.subset(extra_mask)
    ey = np.array([classes.index(mapping[e]) for e in ex.emotion], dtype=np.int64)
    ex_x = ex.x
    if args.adapt is not None:  # training rows: own speaker's mean over all clips; extra rows likewise
        x_train_view = speaker_centred(x, sub.speaker)
        aug = [speaker_centred(a, sub.speaker) for a in aug]
        ex_x = speaker_centred(ex_x, ex.speaker) if len(ex_x) else ex_x
    rows = []
    for _f, split in enumerate(splits):
        t0 = time.time()
        tr, te = split.train_idx, split.test_idx
        xtr = x_train_view[tr] if args.adapt is not None else x[tr]
        fit = fit_head(
            args,
            xtr,
            y[tr],
            list(sub.speaker[tr]),
            len(classes),
            (ex_x, ey) if len(ey) else None,
            [a[tr] for a in aug],
            args.seed,
        )
        uars = []
        for draw in range(args.draws if args.adapt else 1):
            xte = (
                x[te]
                if args.adapt is None
                else speaker_centred(x[te], sub.speaker[te], k=args.adapt or None, seed=draw)
            )
            pred = fit.logits(xte).argmax(1)
            m = compute_metrics(y[te], pred, classes=list(classes))
            uars.append((m["uar"], m["accuracy"]))
        uar, acc = np.mean(uars, axis=0)
        per_corpus = {}
        for c in sorted(set(sub.corpus[te])):
            cm = sub.corpus[te] == c
            per_corpus[c] = compute_metrics(y[te][cm], pred[cm], classes=list(classes))["uar"]
        row = {
            "fold": split.name,
            "uar": float(uar),
            "acc": float(acc),
            "inner_uar": float(fit.inner_uar),
            "choice": {"layers": list(fit.layers), **({"C": fit.C} if hasattr(fit, "C") else {"epochs": fit.epochs})},
            "per_corpus": per_corpus,
            "n_train": int(len(tr) * (1 + len(aug)) + len(ey)),
            "s": time.time() - t0,
        }
        rows.append(row)
        print(
            f"  {args.protocol} {split.name}: UAR {uar:.3f} acc {acc:.3f} inner {fit.inner_uar:.3f} "
            f"{row['choice']} {row['s']:.0f} s",
            flush=True,
        )
    u = np.array([r["uar"] for r in rows])
    a = np.array([r["acc"] for r in rows])
    result = {
        "protocol": args.protocol,
        "head": args.head,
        "layers": args.layers,
        "cs": args.cs,
        "hidden": args.hidden,
        "dropout": args.dropout,
        "members": args.members,
        "extra": args.extra,
        "augment": args.augment,
        "adapt": args.adapt,
        "seed": args.seed,
        "n_classes": len(classes),
        "uar": float(u.mean()),
        "uar_std": float(u.std(ddof=1)),
        "acc": float(a.mean()),
        "acc_std": float(a.std(ddof=1)),
        "inner_uar": float(np.mean([r["inner_uar"] for r in rows])),
        "folds": rows,
        "tag": args.tag,
        "when": time.strftime("%H:%M"),
    }
    with open(RESULTS, "a") as handle:
        handle.write(json.dumps(result) + "\n")
    return result


def describe(r: dict) -> str:
    bits = [r["head"]]
    if r["head"] != "linear":
        bits.append(f"h{r['hidden']} d{r['dropout']} x{r['members']}")
    if r.get("layers") is not None:
        bits.append("L" + "".join(str(i) for i in r["layers"]))
    if r["extra"]:
        bits.append("+" + "+".join(r["extra"]))
    if r["augment"]:
        bits.append("aug " + "+".join(r["augment"]))
    if r["adapt"] is not None:
        bits.append(f"ADAPT k={r['adapt'] or 'all'}")
    return " ".join(bits)


def table() -> None:
    print("| protocol | head / options | UAR mean ± std (folds) | accuracy | inner UAR | per fold |")
    print("|---|---|---|---|---|---|")
    for line in RESULTS.read_text().splitlines():
        r = json.loads(line)
        per_fold = " ".join(f"{f['uar']:.2f}" for f in r["folds"])
        print(
            f"| {r['protocol']} | {describe(r)} | {r['uar']:.3f} ± {r['uar_std']:.3f} | {r['acc']:.3f} | "
            f"{r['inner_uar']:.3f} | {per_fold} |"
        )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--protocol", choices=(*NATIVE, "all7", "loco"))
    ap.add_argument("--head", choices=("linear", "weighted", "mlp"), default="weighted")
    ap.add_argument("--layers", type=lambda s: [int(i) for i in s.split(",")], default=None)
    ap.add_argument(
        "--cs",
        type=lambda s: [float(i) for i in s.split(",")],
        default=[1e-3, 1e-2, 1e-1, 1.0],
        help="linear: candidate C values",
    )
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--dropout", type=float, default=0.3)
    ap.add_argument("--members", type=int, default=1)
    ap.add_argument("--epochs", type=lambda s: [int(i) for i in s.split(",")], default=[10, 20, 40, 80])
    ap.add_argument("--extra", type=lambda s: [c for c in s.split(",") if c], default=[])
    ap.add_argument("--augment", type=lambda s: [c for c in s.split(",") if c], default=[])
    ap.add_argument("--adapt", type=int, default=None, help="K unlabelled clips per test speaker (0 = all)")
    ap.add_argument("--draws", type=int, default=3, help="--adapt: random draws of the K clips")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tag", default="")
    ap.add_argument("--table", action="store_true")
    args = ap.parse_args(argv)
    if args.table:
        table()
        return 0
    torch.set_num_threads(1)
    r = run(args)
    print(
        f"{r['protocol']} {describe(r)}: UAR {r['uar']:.3f} ± {r['uar_std']:.3f} acc {r['acc']:.3f} "
        f"inner {r['inner_uar']:.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
