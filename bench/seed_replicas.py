"""Train the seed replicas and compare with the figures the seeds reported.

For each recipe (``s0`` ... ``s4``) the replica is trained and tested twice:

- ``random``: the seed's own kind of split (one random stratified split with
  the seed's test share; speakers on both sides);
- ``speaker``: speaker-independent folds (``speaker_kfold``; no test speaker
  is seen in training or validation).

Validation for early stopping always comes from the training part (random
for ``random``, speaker-disjoint for ``speaker``). Augmentation is on the fly,
training draws only, and each fold is scaled as the seed did (none, standard
on the fold's training rows, or per array): both through
``SeedRecipe.make_datasets``, the hook ``emovox train --recipe sN`` also uses.
Corpora: RAVDESS speech for all five (plus EMO-DB for S0);
the others the seeds used (TESS, SAVEE, CREMA-D, full RAVDESS song) are not on
this machine, so S1 and S2 run on RAVDESS alone.

Usage::

    .venv/bin/python bench/seed_replicas.py --quick --recipes s0 s3   # 1 fold, few epochs
    .venv/bin/python bench/seed_replicas.py                          # all folds, full epochs (hours)

Not part of CI. Results go to ``--out`` (JSON per run + a Markdown table).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from emovox.corpora import load_corpus
from emovox.evaluation.protocols import random_stratified, speaker_kfold, speaker_validation_split
from emovox.labels import LabelScheme, get_scheme
from emovox.recipes import seed_recipe, seed_recipe_names
from emovox.training.engine import predict_logits, seed_everything, train_model, uar_accuracy
from emovox.training.pipeline import apply_normalization, load_waveforms

#: Epochs in --quick mode (early stopping still applies).
QUICK_EPOCHS = {"s0": 200, "s1": 6, "s2": 10, "s3": 6, "s4": 20}
#: Corpora per recipe that exist here (the seeds' others are not available).
CORPORA = {"s0": ("ravdess", "emodb"), "s1": ("ravdess",), "s2": ("ravdess",), "s3": ("ravdess",), "s4": ("ravdess",)}
SPEAKER_FOLDS = {"ravdess": 6, "emodb": 5}


def _scheme_for(recipe, corpus: str, records) -> LabelScheme:
    if corpus == "emodb":  # EMO-DB's own 7 emotions (S0 ran "RAVDESS or EMO-DB")
        present = sorted({r.emotion for r in records})
        return LabelScheme.from_mapping("emodb7", {e: e for e in present})
    return get_scheme(recipe.label_scheme)


def _features(recipe, corpus, records, cache_dir: Path | None):
    """Whole clips at the recipe's rate (as ``emovox train`` loads them) and their clean features (cached)."""
    key = hashlib.sha1(json.dumps([recipe.input.to_dict(), [r.path for r in records]]).encode()).hexdigest()[:12]
    path = None if cache_dir is None else cache_dir / f"{recipe.name}-{corpus}-{key}.npz"
    waves = load_waveforms(records, sample_rate_hz=recipe.input.sample_rate_hz)
    if path is not None and path.exists():
        return waves, np.load(path)["x"]
    clean = recipe.features(waves)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, x=clean)
    return waves, clean


def run_split(recipe, split, *, waves, clean, labels, speakers, classes, protocol, epochs, seed, threads):
    """Train and test one split with the recipe's own pipeline (``SeedRecipe.make_datasets``,
    the same hook ``emovox train --recipe sN`` uses); test inputs as ``prepare_inputs`` makes them."""
    tr, te = split.train_idx, split.test_idx
    if protocol == "random":
        inner = random_stratified(labels[tr], test_fraction=recipe.val_fraction, seed=seed)[0]
        fit_idx, val_idx = tr[inner.train_idx], tr[inner.test_idx]
    else:
        inner = speaker_validation_split(speakers, tr, fraction=recipe.val_fraction, seed=seed, labels=labels)
        fit_idx, val_idx = inner.train_idx, inner.test_idx
    train_ds, val_ds, preprocessing = recipe.make_datasets(
        [waves[i] for i in fit_idx],
        labels[fit_idx],
        [waves[i] for i in val_idx],
        labels[val_idx],
        seed=seed,
        train_features=clean[fit_idx],
        val_features=clean[val_idx],
    )
    x_test = apply_normalization(clean[te].reshape(len(te), -1), preprocessing["normalization"])
    config = recipe.train.replace(epochs=epochs, seed=seed, threads=threads, progress=False)
    seed_everything(seed, threads=threads)
    model = recipe.build_model(classes)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f"emovox-{recipe.name}-") as tmp:
        result = train_model(model, train_ds, val_ds, config, out_dir=tmp, n_classes=len(classes), plot=False)
    logits = predict_logits(model, x_test, batch_size=64)
    uar, acc = uar_accuracy(labels[te], logits.argmax(axis=1))
    return {
        "split": split.name,
        "n_train": int(len(fit_idx)),
        "n_val": int(len(val_idx)),
        "n_test": int(len(te)),
        "accuracy": acc,
        "uar": uar,
        "epochs_run": len(result.history),
        "best_epoch": result.best_epoch,
        "train_s": round(time.perf_counter() - started, 1),
    }


def run_recipe(name, *, quick, protocols, folds, epochs, seed, threads, cache_dir, log, limit=None):
    recipe = seed_recipe(name)
    rows = []
    for corpus in CORPORA[name]:
        records = load_corpus(corpus)
        scheme = _scheme_for(recipe, corpus, records)
        records = [r for r in records if scheme.keeps(r.emotion)]
        if limit and limit < len(records):  # seeded pick, for smoke runs only
            keep = np.sort(np.random.default_rng(seed).choice(len(records), size=limit, replace=False))
            records = [records[i] for i in keep]
        classes = list(scheme.classes)
        labels = np.array([scheme.index_of(r.emotion) for r in records], dtype=np.int64)
        speakers = np.array([r.speaker_key for r in records])
        genders = [r.gender or "?" for r in records]
        t0 = time.perf_counter()
        waves, clean = _features(recipe, corpus, records, cache_dir)
        log(
            f"[{name}/{corpus}] {len(records)} clips, {len(classes)} classes, features {clean.shape[1:]} "
            f"in {time.perf_counter() - t0:.0f} s"
        )
        n_epochs = epochs or (QUICK_EPOCHS[name] if quick else recipe.train.epochs)
        for protocol in protocols:
            if protocol == "random":
                splits = random_stratified(labels, test_fraction=recipe.test_fraction, seed=seed)
            else:
                k = SPEAKER_FOLDS.get(corpus, 5)
                splits = speaker_kfold(speakers, k=k, seed=seed, labels=labels, strata=genders)
            splits = splits[: (1 if quick else folds or len(splits))]
            results = []
            for split in splits:
                res = run_split(
                    recipe,
                    split,
                    waves=waves,
                    clean=clean,
                    labels=labels,
                    speakers=speakers,
                    classes=classes,
                    protocol=protocol,
                    epochs=n_epochs,
                    seed=seed,
                    threads=threads,
                )
                log(
                    f"[{name}/{corpus}/{protocol}/{split.name}] acc {res['accuracy']:.3f} uar {res['uar']:.3f} "
                    f"({res['epochs_run']} epochs, best {res['best_epoch']}, {res['train_s']} s)"
                )
                results.append(res)
            rows.append(
                {
                    "recipe": name,
                    "corpus": corpus,
                    "protocol": protocol,
                    "classes": classes,
                    "folds": results,
                    "accuracy": float(np.mean([r["accuracy"] for r in results])),
                    "uar": float(np.mean([r["uar"] for r in results])),
                    "epochs": n_epochs,
                    "reported": dict(recipe.reported),
                }
            )
    return rows


def table(rows) -> str:
    lines = [
        "| recipe | corpus | protocol | folds | max epochs | accuracy | UAR | seed reported |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        rep = r["reported"]
        lines.append(
            f"| {r['recipe']} | {r['corpus']} | {r['protocol']} | {len(r['folds'])} | {r['epochs']} | "
            f"{r['accuracy']:.3f} | {r['uar']:.3f} | {rep.get('value', float('nan')):.3f} "
            f"{rep.get('metric', '')} ({rep.get('split', '')}; {rep.get('n_classes', '?')} classes) |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one fold per protocol, few epochs")
    parser.add_argument("--recipes", nargs="+", default=seed_recipe_names(), choices=seed_recipe_names())
    parser.add_argument("--protocols", nargs="+", default=["random", "speaker"], choices=["random", "speaker"])
    parser.add_argument("--folds", type=int, default=None, help="speaker folds to run (default: all)")
    parser.add_argument("--epochs", type=int, default=None, help="override the epoch budget")
    parser.add_argument("--limit", type=int, default=None, help="use N clips per corpus (smoke runs only)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("bench/results/seed_replicas"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    def log(msg: str) -> None:
        print(msg, flush=True)

    all_rows = []
    for name in args.recipes:
        rows = run_recipe(
            name,
            quick=args.quick,
            protocols=args.protocols,
            folds=args.folds,
            epochs=args.epochs,
            seed=args.seed,
            threads=args.threads,
            cache_dir=args.out / "cache",
            log=log,
            limit=args.limit,
        )
        all_rows += rows
        mode = "quick" if args.quick else "full"
        (args.out / f"{name}-{mode}.json").write_text(json.dumps(rows, indent=2) + "\n")
    md = table(all_rows)
    print("\n" + md)
    (args.out / ("table-quick.md" if args.quick else "table.md")).write_text(md + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
