"""Recipe ``shipped-cnn``: build the small CNN that ships as ``cnn`` (``emovox predict --fast``).

One command rebuilds it (about 17 min on 2 idle cores at 50 epochs)::

    emovox train --recipe shipped-cnn --corpus ravdess --corpus emodb --corpus emovo \\
        --corpus turev --out build/cnn

``scripts/build_models.py cnn`` runs exactly that and installs ``build/cnn/model``
into ``src/emovox/pretrained/cnn`` and the card into ``docs/model_card_cnn.md``.
Any labelled corpora work (``--corpus csv:mine.csv``); the shipped model is
built from the four shared corpora.

Steps (each finished step is reused from ``OUT/work`` when the command is re-run):

1. **prepare**: decode every clip at 16 kHz, trim silence exactly as
   :class:`emovox.inference.Predictor` does, and cache the un-normalised
   log-mel of the flagship front end (``work/data.npz``, ``work/meta.json``).
2. **folds**: the flagship recipe (:func:`emovox.recipes.flagship.train_flagship`,
   which runs the one training loop, :func:`emovox.training.engine.train_model`)
   on the training speakers of each of ``folds`` speaker-disjoint folds
   (speakers stratified by corpus, seed 0), then on everyone; ``parallel``
   trainings at a time, each on one thread. Held-out logits per fold.
3. **assemble**: per-corpus speaker-independent figures from the out-of-fold
   logits, temperature and rejection threshold fitted on them, the final model
   saved as ``OUT/model`` with its ONNX graph and model card
   (``OUT/model_card.md``).

Settings (``--epochs``, ``--folds``, ``--seed``; ``--set parallel=N``): ``epochs`` 50,
``folds`` 3, ``seed`` 0, ``parallel`` 2.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from emovox.errors import ConfigError
from emovox.recipes.shipped_default import LANGUAGES, licence_note, log, training_data_section

__all__ = ["SETTINGS", "assemble", "build_recipe", "fit_recipe", "prepare", "train_fold"]

#: The recipe's settings and their defaults (what ships).
SETTINGS = {"epochs": 50, "folds": 3, "seed": 0, "parallel": 2}
WORK = "work"


def _new_model(n_classes: int):
    from emovox.models.flagship import build_flagship

    return build_flagship(n_classes)


def prepare(records: Sequence, scheme: str, workdir: Path) -> None:
    """Decode, trim and log-mel every clip the scheme keeps; write ``data.npz`` + ``meta.json`` in ``workdir``.

    A work folder that already holds the same clips is reused; one that holds
    other clips is refused (a :class:`ConfigError`), never silently mixed.
    """
    import torch

    from emovox.audio import load_audio, trim_for_model
    from emovox.evaluation.data import prepare_labels
    from emovox.fileio import atomic_write_text

    kept, labels, classes = prepare_labels(records, scheme)
    meta = {
        "classes": list(classes),
        "clips": [
            {"path": r.path, "corpus": r.corpus, "speaker": r.speaker_key, "emotion": r.emotion, "label": int(y)}
            for r, y in zip(kept, labels)
        ],
    }
    if (workdir / "meta.json").is_file():
        if json.loads((workdir / "meta.json").read_text()) != meta:
            raise ConfigError(f"{workdir} holds another build's clips: choose another --out, or delete {workdir}")
        return
    workdir.mkdir(parents=True, exist_ok=True)
    model = _new_model(len(classes))
    arrays = {}
    started = time.time()
    for i, record in enumerate(kept):
        y = trim_for_model(load_audio(record.path, sample_rate_hz=16000), sample_rate_hz=16000)
        with torch.no_grad():
            arrays[f"x{i}"] = model.frontend(torch.from_numpy(y)[None])[0].numpy().astype(np.float16)
        if i % 500 == 0:
            log(f"prepare {i}/{len(kept)} {time.time() - started:.0f}s")
    np.savez(workdir / "data.npz", **arrays)
    atomic_write_text(workdir / "meta.json", json.dumps(meta))  # written last: marks the cache complete
    log(f"prepared {len(kept)} clips in {time.time() - started:.0f}s")


def _load(workdir: Path) -> tuple[dict, list[np.ndarray], np.ndarray]:
    meta = json.loads((workdir / "meta.json").read_text())
    z = np.load(workdir / "data.npz")
    feats = [z[f"x{i}"].astype(np.float32) for i in range(len(meta["clips"]))]
    return meta, feats, np.array([m["label"] for m in meta["clips"]], dtype=np.int64)


def _splits(meta: dict, folds: int, seed: int):
    from emovox.evaluation.protocols import speaker_kfold

    clips = meta["clips"]
    return speaker_kfold(
        [m["speaker"] for m in clips],
        k=folds,
        seed=seed,
        labels=[m["label"] for m in clips],
        strata=[m["corpus"] for m in clips],
    )


def train_fold(workdir: str, fold: str, epochs: int, folds: int, seed: int) -> str:
    """Train fold ``fold`` (an index) or ``"final"`` (everyone); save weights and held-out logits in ``workdir``.

    Runs in a worker process (one torch thread). Returns ``fold``.
    """
    import torch
    from safetensors.torch import save_file

    from emovox.recipes.flagship import FlagshipRecipe, predict_logits, train_flagship

    torch.set_num_threads(1)
    work = Path(workdir)
    meta, feats, labels = _load(work)
    if fold == "final":
        train_idx, test_idx = np.arange(len(labels)), np.array([], dtype=int)
    else:
        split = _splits(meta, folds, seed)[int(fold)]
        train_idx, test_idx = np.asarray(split.train_idx), np.asarray(split.test_idx)
    recipe = FlagshipRecipe(epochs=epochs, seed=seed)
    started = time.time()
    model = train_flagship(
        [feats[i] for i in train_idx],
        labels[train_idx],
        len(meta["classes"]),
        recipe,
        balanced=True,  # draws with probability 1 / class count, as the shipped cnn was trained
        log=lambda line: log(f"[{fold}] {line}"),
    )
    seconds = time.time() - started
    assert not isinstance(model, tuple)  # return_raw=False
    if len(test_idx):
        np.savez(work / f"oof_{fold}.npz", idx=test_idx, logits=predict_logits(model, [feats[i] for i in test_idx]))
    (work / f"train_{fold}.json").write_text(
        json.dumps({"fold": fold, "seconds": seconds, "n_train": int(len(train_idx)), "recipe": recipe.to_dict()})
    )
    save_file(model.state_dict(), str(work / f"model_{fold}.safetensors"))  # last: marks the fold done
    log(f"[{fold}] done in {seconds:.0f}s")
    return fold


def train_all(workdir: Path, *, epochs: int, folds: int, seed: int, parallel: int) -> None:
    """Every fold model and the final one not yet in ``workdir``, ``parallel`` at a time (fresh processes)."""
    jobs = [str(k) for k in range(folds)] + ["final"]
    pending = [j for j in jobs if not (workdir / f"model_{j}.safetensors").exists()]
    if not pending:
        return
    if parallel <= 1:
        for job in pending:
            train_fold(str(workdir), job, epochs, folds, seed)
        return
    context = multiprocessing.get_context("spawn")  # no forked torch state
    with ProcessPoolExecutor(max_workers=parallel, mp_context=context) as pool:
        futures = [pool.submit(train_fold, str(workdir), job, epochs, folds, seed) for job in pending]
        for future in futures:
            log(f"fold {future.result()} finished")


def per_corpus_metrics(meta: dict, labels: np.ndarray, logits: np.ndarray) -> dict:
    """UAR/accuracy per corpus and over all: over every output, and restricted to the corpus's own classes.

    The restricted figure (arg-max over the classes the corpus has) is the one
    comparable with single-corpus experiments; the full one is what a user sees.
    """
    from emovox.evaluation.metrics import compute_metrics

    classes = meta["classes"]
    corpus = np.array([m["corpus"] for m in meta["clips"]])
    pred = logits.argmax(axis=1)
    out = {}
    for name in [*dict.fromkeys(corpus.tolist()), "all"]:
        mask = np.ones(len(labels), bool) if name == "all" else corpus == name
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


def assemble(workdir: Path, artifact_dir: Path, *, scheme: str, folds: int) -> dict:
    """Figures from the out-of-fold logits, calibration, the artifact + ONNX + model card in ``artifact_dir``."""
    from safetensors.torch import load_file

    from emovox.export.onnx import export_onnx
    from emovox.fileio import atomic_folder
    from emovox.inference.calibration import calibrate
    from emovox.labels import get_scheme
    from emovox.models.artifact import make_config, save_artifact
    from emovox.models.spec import TaskSpec

    meta, _, labels = _load(workdir)
    classes = meta["classes"]
    logits = np.zeros((len(labels), len(classes)), np.float32)
    for k in range(folds):
        z = np.load(workdir / f"oof_{k}.npz")
        logits[z["idx"]] = z["logits"]
    metrics = per_corpus_metrics(meta, labels, logits)
    cal = calibrate(logits, labels)
    runs = [json.loads((workdir / f"train_{f}.json").read_text()) for f in [*map(str, range(folds)), "final"]]

    model = _new_model(len(classes))
    model.load_state_dict(load_file(str(workdir / "model_final.safetensors")))
    model.eval()
    corpora: dict[str, dict] = {}
    for m in meta["clips"]:
        entry = corpora.setdefault(m["corpus"], {"clips": 0, "speakers": set()})
        entry["clips"] += 1
        entry["speakers"].add(m["speaker"])
    data_card = {
        name: {
            "clips": c["clips"],
            "speakers": len(c["speakers"]),
            "language": LANGUAGES.get(name, "not recorded"),
            "licence": licence_note(name),
        }
        for name, c in corpora.items()
    }
    spec = TaskSpec(labels=tuple(classes), sample_rate_hz=16000, clip_s=3.0, input_kind="waveform")
    arch_params = {k: v for k, v in model.config.to_dict().items() if k not in ("n_classes", "sample_rate_hz")}
    protocol = f"{folds}-fold speaker-disjoint over all corpora (stratified by corpus)"
    config = make_config(
        spec,
        "flagship",
        arch_params,
        preprocessing={"trim_silence": True, "crop": "none", "normalize": None},
        training={
            "recipe": "flagship",
            "build": "emovox train --recipe shipped-cnn",
            "label_scheme": get_scheme(scheme).to_dict(),
            "data_card": data_card,
            "data": {"speakers": sorted({m["speaker"] for m in meta["clips"]})},
            "protocol": f"{protocol}; the shipped model is then trained on every speaker",
            "runs": runs,
        },
        metrics={"speaker_independent": metrics, "protocol": f"{protocol}, out-of-fold"},
        **cal.to_config(),
    )
    config["model_card"] = model_card(metrics, cal, data_card, classes, runs[-1]["recipe"]["epochs"], folds)
    with atomic_folder(artifact_dir) as staging:  # a finished artifact or none: never half of one
        save_artifact(staging, model, config)
        export_onnx(staging, staging)
    return {"metrics": metrics, "calibration": cal.to_config(), "model_card": config["model_card"]}


def model_card(metrics: dict, cal, data_card: dict, classes: Sequence[str], epochs: int, folds: int) -> str:
    """The model card (Markdown) of a ``shipped-cnn`` build."""
    rows = "\n".join(
        f"| {name} | {LANGUAGES.get(name, 'all' if name == 'all' else '-')} | {m['n']} | {m['classes']} | "
        f"{m['uar']:.3f} | {m['accuracy']:.3f} | {m['uar_own_classes']:.3f} | {m['accuracy_own_classes']:.3f} |"
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
(rebuilt with one command, `OMP_NUM_THREADS=1 .venv/bin/python scripts/build_models.py cnn`,
which runs `emovox train --recipe shipped-cnn`: about 17 min on 2 idle cores;
`--dry-run` prints the command).

{training_data_section(data)}
## Speaker-independent figures (same recipe, held-out speakers)

{folds}-fold speaker-disjoint cross-validation over all four corpora
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


def _check_same_build(workdir: Path, build: dict) -> None:
    """Record the build's settings in ``workdir``; refuse to reuse fold models trained with other ones."""
    from emovox.fileio import atomic_write_text

    path = workdir / "build.json"
    if (workdir / "meta.json").is_file() and not path.is_file():
        raise ConfigError(f"{workdir} holds a build of unknown settings: choose another --out, or delete {workdir}")
    if path.is_file() and json.loads(path.read_text()) != build:
        raise ConfigError(
            f"{workdir} holds fold models built with {path.read_text().strip()}, not {json.dumps(build)}: "
            f"choose another --out, or delete {workdir}"
        )
    workdir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(build))


def fit_recipe(records: Sequence, *, out_dir: str | os.PathLike, scheme: str, settings: dict) -> dict:
    """The ``fit`` of recipe ``shipped-cnn``: steps 1-3 above into ``out_dir`` (``model/``, ``model_card.md``)."""
    from emovox.fileio import atomic_write_text

    out = Path(out_dir)
    epochs, folds, seed = int(settings["epochs"]), int(settings["folds"] or 3), int(settings["seed"])
    parallel = int(settings["parallel"])
    if epochs < 1 or folds < 2 or parallel < 1:
        raise ConfigError(
            f"shipped-cnn needs epochs >= 1, folds >= 2 and parallel >= 1 (got {epochs}, {folds}, {parallel})"
        )
    workdir = out / WORK
    _check_same_build(workdir, {"epochs": epochs, "folds": folds, "seed": seed, "scheme": scheme})
    prepare(records, scheme, workdir)
    train_all(workdir, epochs=epochs, folds=folds, seed=seed, parallel=parallel)
    built = assemble(workdir, out / "model", scheme=scheme, folds=folds)
    atomic_write_text(out / "model_card.md", built["model_card"])
    figures = built["metrics"]["all"]
    cal = built["calibration"]["calibration"]
    return {
        "artifact": str(out / "model"),
        "model_card": str(out / "model_card.md"),
        "metrics": built["metrics"],
        "calibration": built["calibration"],
        "lines": [
            f"shipped-cnn: {folds}-fold held-out speakers UAR {figures['uar']:.3f}, accuracy {figures['accuracy']:.3f} "
            f"on {figures['n']} clips; T {cal['temperature']:.3f}, threshold {built['calibration']['threshold']:.3f}",
        ],
    }


def build_recipe():
    from emovox.training.recipes import Recipe

    return Recipe(
        name="shipped-cnn",
        arch="flagship",
        label_scheme="emovox7",
        trim_silence=True,
        fit=fit_recipe,
        settings=dict(SETTINGS),
        description="build the shipped small CNN (cnn): flagship on speaker folds + everyone, calibration, "
        "ONNX, model card (scripts/build_models.py cnn)",
    )


def _register() -> None:
    from emovox.training.recipes import register_recipe

    register_recipe("shipped-cnn", build_recipe)


_register()
