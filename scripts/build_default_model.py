"""Build the small CNN that ships inside the package as ``cnn`` (the default model until issue 10).

One command does everything (about 17 min on 2 idle cores at the default 50
epochs: the three fold models ~7 min each, two at a time, then the final
model ~9 min)::

    .venv/bin/python scripts/build_models.py cnn     # runs: scripts/build_default_model.py all

Training goes through the one training loop: :func:`emovox.recipes.flagship.train_flagship`
runs :func:`emovox.training.engine.train_model` on the cached log-mel.

Steps (each also runnable on its own):

1. ``prepare``  decode every clip of RAVDESS speech, EMO-DB, EMOVO and
   TurEV-DB at 16 kHz, apply the product preprocessing (silence trim exactly
   as :class:`emovox.inference.Predictor` does it), compute the un-normalised
   log-mel of the flagship front end, and cache it in ``--workdir``.
2. ``fold K``   train the flagship recipe on the training speakers of fold K
   of a 3-fold speaker-disjoint split over *all* corpora (speakers stratified
   by corpus) and store the held-out logits. ``final`` trains on everyone.
3. ``assemble`` per-corpus speaker-independent figures from the out-of-fold
   logits; temperature and rejection threshold fitted on the same held-out
   logits; the final model saved as an artifact with its model card into
   ``src/emovox/pretrained/cnn`` and exported to ONNX beside it (the accurate
   default model is built by ``scripts/build_models.py default``).

Label set: :data:`emovox.labels.EMOVOX7` (calm -> neutral, boredom dropped).
Corpora are read from ``../shared/corpora`` and never copied.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from emovox.recipes.shipped_default import CORPORA, LANGUAGES, N_FOLDS, SCHEME

REPO = Path(__file__).resolve().parents[1]


def _records():
    from emovox.corpora import load_corpus
    from emovox.labels import apply_scheme

    records = [r for name in CORPORA for r in load_corpus(name)]
    return apply_scheme(records, SCHEME)


def _new_model(n_classes: int):
    from emovox.models.flagship import build_flagship

    return build_flagship(n_classes)


def prepare(workdir: Path) -> None:
    """Decode, trim and log-mel every clip; write ``data.npz`` + ``meta.json``."""
    import torch

    from emovox.audio import load_audio, trim_for_model

    torch.set_num_threads(2)
    kept, labels = _records()
    model = _new_model(7)
    arrays = {}
    t0 = time.time()
    for i, record in enumerate(kept):
        y = trim_for_model(load_audio(record.path, sample_rate_hz=16000), sample_rate_hz=16000)
        with torch.no_grad():
            arrays[f"x{i}"] = model.frontend(torch.from_numpy(y)[None])[0].numpy().astype(np.float16)
        if i % 500 == 0:
            print(f"prepare {i}/{len(kept)} {time.time() - t0:.0f}s", flush=True)
    meta = [
        {"path": r.path, "corpus": r.corpus, "speaker": r.speaker_key, "emotion": r.emotion, "gender": r.gender}
        for r in kept
    ]
    np.savez(workdir / "data.npz", labels=labels, **arrays)
    (workdir / "meta.json").write_text(json.dumps(meta))
    print(f"prepared {len(kept)} clips in {time.time() - t0:.0f}s")


def _load(workdir: Path):
    z = np.load(workdir / "data.npz")
    meta = json.loads((workdir / "meta.json").read_text())
    feats = [z[f"x{i}"].astype(np.float32) for i in range(len(meta))]
    return meta, feats, z["labels"]


def _splits(meta):
    from emovox.evaluation import speaker_kfold

    speakers = [m["speaker"] for m in meta]
    return speaker_kfold(
        speakers, k=N_FOLDS, seed=0, labels=[m["emotion"] for m in meta], strata=[m["corpus"] for m in meta]
    )


def train(workdir: Path, fold: str, epochs: int) -> None:
    """Train fold ``fold`` (an index) or ``"final"`` (everyone); save weights and held-out logits."""
    import torch
    from safetensors.torch import save_file

    from emovox.recipes.flagship import FlagshipRecipe, predict_logits, train_flagship

    torch.set_num_threads(1)
    meta, feats, labels = _load(workdir)
    if fold == "final":
        train_idx, test_idx = np.arange(len(meta)), np.array([], dtype=int)
    else:
        split = _splits(meta)[int(fold)]
        train_idx, test_idx = split.train_idx, split.test_idx
    recipe = FlagshipRecipe(epochs=epochs, seed=0)
    t0 = time.time()
    model = train_flagship(
        [feats[i] for i in train_idx],
        labels[train_idx],
        7,
        recipe,
        balanced=True,  # draws with probability 1 / class count, as the shipped cnn was trained
        log=lambda line: print(f"[{fold}] {line}", flush=True),
    )
    seconds = time.time() - t0
    save_file(model.state_dict(), str(workdir / f"model_{fold}.safetensors"))
    if len(test_idx):
        logits = predict_logits(model, [feats[i] for i in test_idx])
        np.savez(workdir / f"oof_{fold}.npz", idx=test_idx, logits=logits)
    (workdir / f"train_{fold}.json").write_text(
        json.dumps({"fold": fold, "seconds": seconds, "n_train": int(len(train_idx)), "recipe": recipe.to_dict()})
    )
    print(f"[{fold}] done in {seconds:.0f}s")


def _per_corpus_metrics(meta, labels, logits, classes):
    """UAR/accuracy per corpus: over all 7 outputs, and restricted to the corpus's own classes.

    The restricted figure (argmax over the classes the corpus has) is the one
    comparable with single-corpus experiments; the 7-way one is what a user sees.
    """
    from emovox.evaluation import compute_metrics

    out = {}
    corpus = np.array([m["corpus"] for m in meta])
    pred = logits.argmax(axis=1)
    for name in CORPORA + ("all",):
        mask = np.ones(len(meta), bool) if name == "all" else corpus == name
        m = compute_metrics(labels[mask], pred[mask], classes=classes)
        present = np.unique(labels[mask])
        restricted = present[logits[mask][:, present].argmax(axis=1)]
        r = compute_metrics(labels[mask], restricted, classes=classes)
        out[name] = {
            "uar": round(float(m["uar"]), 4),
            "accuracy": round(float(m["accuracy"]), 4),
            "uar_own_classes": round(float(r["uar"]), 4),
            "accuracy_own_classes": round(float(r["accuracy"]), 4),
            "classes": int(len(present)),
            "n": int(mask.sum()),
        }
    return out


def assemble(workdir: Path, out_dir: Path) -> None:
    """Figures from out-of-fold logits, calibration, artifact + ONNX + model card."""
    from safetensors.torch import load_file

    from emovox.export.onnx import export_onnx
    from emovox.inference.calibration import calibrate
    from emovox.labels import get_scheme
    from emovox.models.artifact import make_config, save_artifact
    from emovox.models.spec import TaskSpec

    meta, _, labels = _load(workdir)
    classes = get_scheme(SCHEME).classes
    logits = np.zeros((len(meta), len(classes)), np.float32)
    for k in range(N_FOLDS):
        z = np.load(workdir / f"oof_{k}.npz")
        logits[z["idx"]] = z["logits"]
    metrics = _per_corpus_metrics(meta, labels, logits, classes)
    cal = calibrate(logits, labels)
    train_info = [json.loads((workdir / f"train_{f}.json").read_text()) for f in [*map(str, range(N_FOLDS)), "final"]]

    model = _new_model(len(classes))
    model.load_state_dict(load_file(str(workdir / "model_final.safetensors")))
    model.eval()
    counts = {}
    for m in meta:
        counts.setdefault(m["corpus"], {"clips": 0, "speakers": set()})
        counts[m["corpus"]]["clips"] += 1
        counts[m["corpus"]]["speakers"].add(m["speaker"])
    from emovox.corpora import get_corpus_info

    data_card = {
        name: {
            "clips": c["clips"],
            "speakers": len(c["speakers"]),
            "language": LANGUAGES[name],
            "licence": get_corpus_info(name).licence_note,  # the corpus module's LICENCE and CITATION
        }
        for name, c in counts.items()
    }
    spec = TaskSpec(labels=tuple(classes), sample_rate_hz=16000, clip_s=3.0, input_kind="waveform")
    arch_params = {k: v for k, v in model.config.to_dict().items() if k not in ("n_classes", "sample_rate_hz")}
    config = make_config(
        spec,
        "flagship",
        arch_params,
        preprocessing={"trim_silence": True, "crop": "none", "normalize": None},
        training={
            "recipe": "flagship",
            "label_scheme": get_scheme(SCHEME).to_dict(),
            "data_card": data_card,
            "data": {"speakers": sorted({m["speaker"] for m in meta})},
            "protocol": f"{N_FOLDS}-fold speaker-disjoint over all corpora (stratified by corpus); "
            "the shipped model is then trained on every speaker",
            "runs": train_info,
        },
        metrics={"speaker_independent": metrics, "protocol": f"{N_FOLDS}-fold speaker-disjoint, out-of-fold"},
        **cal.to_config(),
    )
    epochs = train_info[-1]["recipe"]["epochs"]
    config["model_card"] = model_card(metrics, cal, data_card, classes, epochs)
    save_artifact(out_dir, model, config)
    export_onnx(out_dir, out_dir)
    (REPO / "docs" / "model_card_cnn.md").write_text(config["model_card"])
    print(json.dumps({"metrics": metrics, "calibration": cal.to_config()}, indent=2))


def model_card(metrics, cal, data_card, classes, epochs: int) -> str:
    rows = "\n".join(
        f"| {name} | {LANGUAGES.get(name, 'all')} | {m['n']} | {m['classes']} | {m['uar']:.3f} | "
        f"{m['accuracy']:.3f} | {m['uar_own_classes']:.3f} | {m['accuracy_own_classes']:.3f} |"
        for name, m in metrics.items()
    )
    data = "\n".join(
        f"| {n} | {d['language']} | {d['clips']} | {d['speakers']} | {d['licence']} |" for n, d in data_card.items()
    )
    return f"""# emovox small CNN (`cnn`, `emovox predict --fast`)

**Labels** ({len(classes)}): {", ".join(classes)}. Calm (RAVDESS, TurEV-DB) is merged
into neutral; EMO-DB's boredom is left out (no other corpus has it). Predictions
whose calibrated confidence is under the threshold are answered `unknown`.

**Architecture**: the emovox flagship — log-mel front end inside the model,
per-utterance normalisation, residual 2-D CNN, attentive statistics pooling
(about 0.36 M parameters). Input: 16 kHz mono waveform, silence-trimmed.

**Training**: the flagship recipe, {epochs} epochs, class-balanced sample
weights, seed 0 — the same for the fold models below and the shipped model
(rebuilt with one command, `OMP_NUM_THREADS=1 .venv/bin/python scripts/build_models.py cnn`:
`scripts/build_default_model.py all`, about 17 min on 2 idle cores; `--dry-run`
lists the steps).

## Training data (all non-commercial or research-only: so is this model)

| corpus | language | clips | speakers | licence |
|---|---|---|---|---|
{data}

All acted speech. The model inherits the most restrictive terms above: use it
for research and non-commercial purposes only (RAVDESS CC BY-NC-SA 4.0,
TurEV-DB CC BY-NC-ND 4.0, EMO-DB and EMOVO research use).

## Speaker-independent figures (same recipe, held-out speakers)

{N_FOLDS}-fold speaker-disjoint cross-validation over all four corpora
(speakers stratified by corpus); each clip predicted by the fold model that
never heard its speaker. Scored on the 7-class label set above (a corpus
without a class simply has no clips of it; UAR averages over the classes
present in that corpus). "Own classes" restricts the answer to the classes
that corpus has (the figure comparable with single-corpus experiments); the
7-way figure is what a user of the model gets.

| corpus | language | clips | classes | UAR (7-way) | accuracy (7-way) | UAR (own classes) | accuracy (own classes) |
|---|---|---|---|---|---|---|---|
{rows}

## Calibration and rejection

Temperature scaling fitted on the same out-of-fold logits: T = {cal.temperature:.3f},
expected calibration error (15 bins) {cal.ece_before:.3f} before → {cal.ece_after:.3f} after.
Both ECE figures are measured on the logits the temperature was fitted on (one
parameter, {cal.n_heldout} clips, so little room to overfit, but the "after" is
optimistic), and the shipped model, trained on every speaker, is a little more
confident than the fold models the temperature was fitted to.
Rejection threshold {cal.threshold:.3f}: the confidence that keeps
{cal.keep_fraction:.0%} of the correct held-out predictions (predictions below it
become `unknown`).

## Intended use and known limits

- Intended: research, prototyping, and analysis of recordings where a coarse
  emotion estimate with an honest confidence is useful.
- Acted, studio-quality speech in English, German, Italian and Turkish only;
  spontaneous speech, other languages, telephone audio, children and noisy
  rooms are out of distribution and will score lower.
- Not for decisions about people (hiring, health, policing, credit).
- Emotion categories are culture- and speaker-dependent; figures above are for
  held-out speakers of the same corpora, not for new recording conditions.
"""


def run_all(workdir: Path, out_dir: Path, epochs: int, parallel: int) -> None:
    if not (workdir / "data.npz").exists():
        prepare(workdir)
    jobs = [str(k) for k in range(N_FOLDS)] + ["final"]
    pending = [j for j in jobs if not (workdir / f"model_{j}.safetensors").exists()]
    running: list[subprocess.Popen] = []
    while pending or running:
        while pending and len(running) < parallel:
            job = pending.pop(0)
            log = open(workdir / f"train_{job}.log", "w")  # noqa: SIM115 - closed when the job ends
            running.append(
                subprocess.Popen(
                    [sys.executable, __file__, "train", job, "--workdir", str(workdir), "--epochs", str(epochs)],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        time.sleep(5)
        for p in list(running):
            if p.poll() is not None:
                running.remove(p)
                if p.returncode != 0:
                    raise SystemExit(f"training job failed ({p.args}); see {workdir}/train_*.log")
    assemble(workdir, out_dir)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("step", choices=["prepare", "train", "assemble", "all"])
    parser.add_argument("fold", nargs="?", help="fold index or 'final' (for the train step)")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/emovox-default"))
    parser.add_argument("--out", type=Path, default=REPO / "src" / "emovox" / "pretrained" / "cnn")
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--parallel", type=int, default=2)
    args = parser.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if args.step == "prepare":
        prepare(args.workdir)
    elif args.step == "train":
        train(args.workdir, args.fold, args.epochs)
    elif args.step == "assemble":
        assemble(args.workdir, args.out)
    else:
        run_all(args.workdir, args.out, args.epochs, args.parallel)
    return 0


if __name__ == "__main__":
    sys.exit(main())
