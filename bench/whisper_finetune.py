"""Frozen probe vs fine-tuned top Whisper blocks, on the default model's folds, with the CPU cost of each run.

    OMP_NUM_THREADS=1 .venv/bin/python bench/whisper_finetune.py --encoder /tmp/emovox-ft/encoder-full \\
        [--protocol speaker|loco|both] [--folds 0 ...] [--top 1 2] [--epochs 8] [--max-clips N] [--copies N]

Data: the four shared corpora under ``emovox7`` labels
(:func:`emovox.recipes.shipped_default.records`, 4,217 clips). Protocols:

- ``speaker``: the model card's 3 speaker-disjoint folds stratified by corpus
  (:func:`emovox.recipes.shipped_default.splits`);
- ``loco``: leave one corpus out (train on three corpora, test on the fourth;
  :func:`emovox.evaluation.leave_one_corpus_out`).

Per fold, on the same training clips:

- **probe**: the shipped default model's head, frozen Whisper base: standardised
  mean+std of hidden states 0..4, balanced logistic regression with ``C`` in
  {0.001, 0.01} chosen by a 4-fold speaker CV inside the training speakers
  (:func:`emovox.training.whisper_fit.fit_linear_head`, as ``bench/default_model_depth.py``);
  ``--probe-C C`` fixes ``C`` instead (no inner CV);
- **top-N** for each ``--top N``: recipe ``whisper-finetune``
  (:mod:`emovox.recipes.whisper_finetune`, default options unless given here):
  blocks ``1..4-N`` frozen and cached once, blocks ``5-N..4`` and the head
  (initialised as the probe on states ``4-N..4``) trained on random 3 s crops
  through the one training loop.

Printed and written to ``--out`` (JSON): UAR (7-way, unweighted average
recall over the held-out clips) per fold, their mean, the mean fold difference
against the probe and its standard error (``std(d, ddof=1) / sqrt(k)`` of the
per-fold differences), the cache build's seconds (wall and CPU), seconds per
epoch and the training's CPU seconds per fold.

``--max-clips N`` keeps a seeded random N of each fold's training clips and
N/2 of its test clips (a quick cost estimate: costs scale linearly with clips).
``--copies N`` adds N degraded copies of every training clip (the robust
recipe's telephone / degradation / noisy-place chains, synthetic rooms and
music, no babble), each one more cached encoder pass; the measured figures use none.
Each run keeps its engine folder under ``--workdir``: a killed bench resumes.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def _folds(protocol: str, kept, y):
    from emovox.evaluation.cross_corpus import leave_one_corpus_out
    from emovox.recipes import shipped_default

    if protocol == "speaker":
        return [(f"speaker{k}", s.train_idx, s.test_idx) for k, s in enumerate(shipped_default.splits(kept, y))]
    return [(s.name, s.train_idx, s.test_idx) for s in leave_one_corpus_out([r.corpus for r in kept])]


def _subsample(idx, n: int | None, seed: int) -> np.ndarray:
    idx = np.asarray(idx)
    if n is None or n >= len(idx):
        return idx
    return np.sort(np.random.default_rng(seed).choice(idx, size=n, replace=False))


def _uar(y, logits, classes) -> float:
    from emovox.evaluation import compute_metrics

    return float(compute_metrics(y, logits.argmax(axis=1), classes=list(classes))["uar"])


def _probe(pooled, y, speakers, n_classes: int, depth: int, C: float | None) -> tuple[Callable, dict]:
    """The frozen probe's fit on (pooled, y): a function of pooled test rows -> logits, and what it chose."""
    from emovox.models.softmax_regression import fit_softmax_regression
    from emovox.recipes.build_default import LINEAR_CS
    from emovox.training.whisper_fit import fit_linear_head

    layers = tuple(range(depth + 1))
    if C is not None:
        x = pooled[:, list(layers)].reshape(len(pooled), -1)
        fit = fit_softmax_regression(x, y, C=C, n_classes=n_classes)
        return (lambda p: fit.logits(p[:, list(layers)].reshape(len(p), -1))), {"C": C, "inner_cv": False}
    head = fit_linear_head(pooled, y, speakers, n_classes=n_classes, layer_sets=[layers], Cs=LINEAR_CS)
    return head.logits, {"C": head.C, "inner_cv_uar": head.inner_uar}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--encoder", default="/tmp/emovox-ft/encoder-full", help="Whisper base encoder folder")
    ap.add_argument("--protocol", choices=("speaker", "loco", "both"), default="speaker")
    ap.add_argument("--folds", type=int, nargs="*", help="fold numbers to run (default: all)")
    ap.add_argument("--top", type=int, nargs="*", default=[1, 2], help="blocks fine-tuned (one run each)")
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--lora-rank", type=int, default=0)
    ap.add_argument(
        "--set",
        dest="settings",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any FinetuneOptions field (VALUE as JSON), e.g. --set val_fraction=0.15 --set lr=3e-4",
    )
    ap.add_argument("--tag", default="run", help="name of this run in --out (other runs there are kept)")
    ap.add_argument("--copies", type=int, default=0)
    ap.add_argument("--max-clips", type=int, default=None, help="training clips per fold (test: half)")
    ap.add_argument("--probe-C", type=float, default=None, help="fix the probe's C (default: inner CV as shipped)")
    ap.add_argument("--no-probe", action="store_true")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--cache-dir", default="/tmp/emovox-ft/cache")
    ap.add_argument("--workdir", default="/tmp/emovox-ft/runs")
    ap.add_argument("--out", default="bench/results/whisper_finetune.json")
    args = ap.parse_args()

    import torch

    from emovox.recipes import shipped_default
    from emovox.recipes.whisper_finetune import (
        FinetuneOptions,
        build_model,
        encode_clips,
        finetune,
        predict_states,
    )
    from emovox.recipes.whisper_finetune_data import copy_transform

    torch.set_num_threads(args.threads)
    kept, y, classes = shipped_default.records()
    speakers = [r.speaker_key for r in kept]
    paths = [r.path for r in kept]
    base = FinetuneOptions(threads=args.threads)
    changes = {"epochs": args.epochs} if args.epochs else {}
    if args.lora_rank:
        changes["lora_rank"] = args.lora_rank
    for item in args.settings:
        key, _, value = item.partition("=")
        try:
            changes[key] = json.loads(value)
        except json.JSONDecodeError:
            changes[key] = value
    protocols = ["speaker", "loco"] if args.protocol == "both" else [args.protocol]
    report: dict = {
        "command": "bench/whisper_finetune.py "
        + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()),
        "machine": "shared 2-core CPU VM, 1 torch thread per run (OMP_NUM_THREADS=1)",
        "encoder": str(args.encoder),
        "n_clips": len(kept),
        "classes": list(classes),
        "options": {**base.to_dict(), **changes},
        "protocols": {},
    }
    for protocol in protocols:
        folds = _folds(protocol, kept, y)
        chosen = [folds[k] for k in (args.folds if args.folds is not None else range(len(folds)))]
        rows = []
        for name, train_idx, test_idx in chosen:
            train_idx = _subsample(train_idx, args.max_clips, 0)
            test_idx = _subsample(test_idx, None if args.max_clips is None else args.max_clips // 2, 1)
            row: dict = {"fold": name, "n_train": int(len(train_idx)), "n_test": int(len(test_idx))}
            probe_idx, val_idx = train_idx, np.zeros(0, dtype=int)
            fraction = float(changes.get("val_fraction", 0.0))
            if fraction > 0:  # whole training speakers held out to choose the epoch (the probe keeps all)
                from emovox.evaluation import speaker_validation_split

                inner = speaker_validation_split(speakers, train_idx, fraction=fraction, seed=0, labels=y)
                train_idx, val_idx = np.asarray(inner.train_idx), np.asarray(inner.test_idx)
                row["n_val"] = int(len(val_idx))
            needed = np.concatenate([train_idx, val_idx, test_idx])
            at = {int(j): k for k, j in enumerate(needed)}
            tr, te = [at[int(i)] for i in train_idx], [at[int(i)] for i in test_idx]
            va, pr = [at[int(i)] for i in val_idx], [at[int(i)] for i in probe_idx]
            for top in args.top:
                options = FinetuneOptions(**{**base.to_dict(), **changes, "top_blocks": top})
                model, _ = build_model(args.encoder, len(classes), options)
                wall, cpu = time.perf_counter(), time.process_time()
                log(f"{name}: caching block {model.split} states of {len(needed)} clips")
                enc = encode_clips(
                    [paths[i] for i in needed],
                    args.encoder,
                    split=model.split,
                    depth=model.depth,
                    lower_layers=model.lower_layers,
                    cache_dir=args.cache_dir,
                )
                states = [enc.states[k] for k in tr]
                pooled_tr, labels = [enc.pooled[tr]], [y[train_idx]]
                banks: dict = {}
                for c in range(1, args.copies + 1):
                    copy = encode_clips(
                        [paths[i] for i in train_idx],
                        args.encoder,
                        split=model.split,
                        depth=model.depth,
                        lower_layers=model.lower_layers,
                        cache_dir=args.cache_dir,
                        augment=copy_transform(c, banks),
                        copy=c,
                        seed=options.seed,
                    )
                    states += copy.states
                    pooled_tr.append(copy.pooled)
                    labels.append(y[train_idx])
                cache = {
                    "wall_s": round(time.perf_counter() - wall, 1),
                    "cpu_s": round(time.process_time() - cpu, 1),
                    "clips_encoded": enc.n_computed,
                    "clips": len(needed) + args.copies * len(train_idx),
                }
                log(f"{name}: cache {cache}")
                if not args.no_probe and "probe" not in row:
                    t = time.process_time()
                    logits_of, chosen_probe = _probe(
                        enc.pooled[pr],
                        y[probe_idx],
                        [speakers[i] for i in probe_idx],
                        len(classes),
                        model.depth,
                        args.probe_C,
                    )
                    row["probe"] = {
                        "uar": round(_uar(y[test_idx], logits_of(enc.pooled[te]), classes), 4),
                        "cpu_s": round(time.process_time() - t, 1),
                        **chosen_probe,
                    }
                    log(f"{name}: probe UAR {row['probe']['uar']:.4f} ({row['probe']})")
                tag = f"{protocol}-{name.replace('>', '')}-top{top}-e{options.epochs}-n{len(train_idx)}-c{args.copies}"
                wall, cpu = time.perf_counter(), time.process_time()
                result = finetune(
                    model,
                    (states, np.concatenate(labels), np.concatenate(pooled_tr)),
                    len(classes),
                    options,
                    out_dir=Path(args.workdir) / tag,
                    val=([enc.states[k] for k in va], y[val_idx]) if len(va) else None,
                    plot=False,
                    callbacks=[_lines(f"{name} top-{top}")],
                )
                train_wall, train_cpu = time.perf_counter() - wall, time.process_time() - cpu
                logits = predict_states(model, [enc.states[k] for k in te])
                epoch_s = [float(r["time_s"]) for r in result.history]
                row[f"top{top}"] = {
                    "uar": round(_uar(y[test_idx], logits, classes), 4),
                    "cache": cache,
                    "epochs": len(result.history),
                    "epoch_s": epoch_s,
                    "mean_epoch_s": round(float(np.mean(epoch_s)), 1),
                    "train_wall_s": round(train_wall, 1),
                    "train_cpu_s": round(train_cpu, 1),
                    "train_loss": [round(float(r["train_loss"]), 4) for r in result.history],
                    "n_train_examples": len(states),
                    "best_epoch": result.best_epoch,
                    "val_uar": [r["val_uar"] for r in result.history],
                }
                log(f"{name}: top-{top} UAR {row[f'top{top}']['uar']:.4f}, {row[f'top{top}']['mean_epoch_s']} s/epoch")
            rows.append(row)
            report["protocols"][protocol] = {"folds": rows, "summary": _summary(rows, args.top)}
            _write(args.out, args.tag, report)
        for line in _table(rows, args.top):
            print(line)
    _write(args.out, args.tag, report)


def _lines(tag: str):
    """Engine callback: one line per epoch."""
    from emovox.training.callbacks import Callback

    class Lines(Callback):
        epochs = 0

        def on_train_start(self, *, start_epoch: int, epochs: int) -> None:
            self.epochs = epochs

        def on_epoch_end(self, epoch: int, record: dict) -> None:
            log(
                f"{tag}: epoch {epoch + 1}/{self.epochs} loss {record['train_loss']:.4f} "
                f"acc {record['train_accuracy']:.3f} {record['time_s']:.0f}s"
            )

    return Lines()


def _summary(rows: list[dict], tops) -> dict:
    out: dict = {}
    probe = [r["probe"]["uar"] for r in rows if "probe" in r]
    if probe:
        out["probe_mean_uar"] = round(float(np.mean(probe)), 4)
    for top in tops:
        got = [r for r in rows if f"top{top}" in r]
        if not got:
            continue
        uar = [r[f"top{top}"]["uar"] for r in got]
        entry: dict = {
            "mean_uar": round(float(np.mean(uar)), 4),
            "mean_cpu_s_per_fold": round(
                float(np.mean([r[f"top{top}"]["train_cpu_s"] + r[f"top{top}"]["cache"]["cpu_s"] for r in got])), 1
            ),
        }
        diffs = [r[f"top{top}"]["uar"] - r["probe"]["uar"] for r in got if "probe" in r]
        if diffs:
            entry["mean_diff_vs_probe"] = round(float(np.mean(diffs)), 4)
            entry["diff_se"] = (
                round(float(np.std(diffs, ddof=1) / math.sqrt(len(diffs))), 4) if len(diffs) > 1 else None
            )
        out[f"top{top}"] = entry
    return out


def _table(rows: list[dict], tops) -> list[str]:
    head = f"{'fold':<28}{'probe':>8}" + "".join(f"{'top-' + str(t):>8}{'cpu s':>9}" for t in tops)
    lines = [head]
    for r in rows:
        line = f"{r['fold']:<28}{r.get('probe', {}).get('uar', float('nan')):>8.4f}"
        for t in tops:
            e = r.get(f"top{t}")
            line += f"{e['uar']:>8.4f}{e['train_cpu_s'] + e['cache']['cpu_s']:>9.0f}" if e else f"{'':>17}"
        lines.append(line)
    return lines


def _write(path: str, tag: str, report: dict) -> None:
    """Store ``report`` as run ``tag`` of the JSON file at ``path``, keeping its other runs."""
    target = Path(path)
    data = json.loads(target.read_text()) if target.is_file() else {}
    runs = data.get("runs", {}) if isinstance(data, dict) else {}
    runs[tag] = report
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps({**data, "runs": runs}, indent=2) + "\n")


if __name__ == "__main__":
    main()
