"""The ``default`` recipe: the shipped model's encoder with a head fitted on your own labelled clips.

::

    emovox train --recipe default --corpus csv:mine.csv --out runs/mine     # path,label,speaker
    emovox train --recipe default --corpus emodb --copies 2 --out runs/emodb

The shipped default model (``emovox/pretrained/default``) is a frozen Whisper
base encoder (first 4 blocks, float16) whose pooled hidden states -- the
ONNX graph's ``embedding`` output -- feed a linear head. This recipe keeps
that encoder and fits a new head on the user's clips and labels, the way the
shipped head was fitted (:mod:`emovox.recipes.robust`). Nothing is downloaded.

1. **Embeddings** (:func:`~emovox.recipes.default_embeddings.clip_embeddings`): every clip through the product
   path, :meth:`emovox.inference.Predictor.clip_embedding` of the base model
   (decoding, silence trim, its telephone band limit, 30 s windows: what
   ``emovox predict`` computes), and with ``copies=N`` N degraded copies of it
   (:func:`emovox.recipes.robust.copy_chain`: a telephone call, then the full
   degradation chain, then noisy places). The copies' noise and rooms are
   synthetic (:func:`~emovox.recipes.robust.synthetic_banks`): no other
   speaker's voice is mixed in as babble, so a copy never carries a held-out
   speaker across a split. Cached per clip under ``OUT/cache``, keyed by the
   encoder (:func:`emovox.evaluation.robustness.embedding_id`), the file's
   bytes, the copy, the seed and the emovox version: a rerun is quick.
2. **Held-out figures** (:func:`heldout_protocol`, :func:`heldout_logits`):
   leave-one-speaker-out up to :data:`LOSO_MAX_SPEAKERS` speakers, else
   :data:`SPEAKER_FOLDS` speaker-disjoint folds (or ``folds``); each clip is
   scored by a head fitted without its speaker, and a clip's copies are always
   on its side of a split. Data without speakers (one speaker, or a
   ``folder:`` corpus without a speaker pattern) gets label-stratified folds
   over clips, reported as **not** speaker-independent. The folds run through
   :func:`emovox.evaluation.experiment.run_experiment`, so ``OUT/report.md``,
   ``result.json`` and the plots are those of ``emovox evaluate``.
3. **Calibration** on the out-of-fold logits (clips and copies):
   temperature and the ``unknown`` threshold
   (:func:`emovox.inference.calibration.calibrate`).
4. **The artifact** (:func:`~emovox.recipes.default_artifact.write_artifact`): the head fitted on every clip
   and copy (:func:`emovox.recipes.robust.fit_robust_head`, the shipped
   head's ``C``) on a copy of the base model's encoder, in ``OUT/model``:
   ``model.safetensors`` (float16 encoder), ``config.json``, ``model.onnx``
   (reads its weights from ``model.safetensors``) and ``LICENSE-whisper.txt``.
   It loads wherever a model does: ``emovox predict --model``,
   ``emovox.load_model(DIR)``, ``emovox serve --model``, streaming, batch.

The artifact copies the encoder (about 30 MB) rather than referring to the
installed package's: a model must keep working, with the same answers, when
emovox is upgraded and ships another encoder, and must travel as one folder
(to a service, a batch cluster). ``config["training"]["base_model"]`` records
which model it was built on (the SHA-256 of its ``config.json`` and of its
encoder), and the encoder description is kept, so the artifact's
:func:`~emovox.evaluation.robustness.embedding_id` equals the base model's and
cached embeddings stay valid when it is itself the base of another run.

The pieces are public so that a build script can fit the shipped head with
them (:func:`clip_embeddings`, :func:`heldout_logits`, :func:`write_artifact`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emovox.errors import ConfigError
from emovox.recipes.default_artifact import base_model_identity, model_card_text, write_artifact
from emovox.recipes.default_embeddings import BASE_MODEL, MAX_COPIES, ClipEmbeddings, clip_embeddings, clip_progress

__all__ = [
    "BASE_MODEL",
    "LOSO_MAX_SPEAKERS",
    "SPEAKER_FOLDS",
    "CLIP_FOLDS",
    "MAX_COPIES",
    "ClipEmbeddings",
    "HeldOutProtocol",
    "HeldOut",
    "base_model_identity",
    "clip_embeddings",
    "heldout_protocol",
    "heldout_logits",
    "write_artifact",
    "train_default",
    "fit_recipe",
    "build_recipe",
]

#: Up to this many speakers, the held-out figures are leave-one-speaker-out.
LOSO_MAX_SPEAKERS = 12
#: Speaker-disjoint folds beyond :data:`LOSO_MAX_SPEAKERS` speakers.
SPEAKER_FOLDS = 5
#: Folds over clips when the data has no speakers.
CLIP_FOLDS = 5
#: Fewer clips of a label than this: the output says the figures are rough.
FEW_CLIPS = 20
CACHE_SUBDIR = "cache"
ARTIFACT_SUBDIR = "model"


# ---------------------------------------------------------------------- held-out figures
@dataclass(frozen=True)
class HeldOutProtocol:
    """How clips are held out: the splits, whether they are speaker-independent, and a sentence saying so."""

    name: str
    splits: tuple
    speaker_independent: bool
    description: str


def heldout_protocol(
    speakers: Sequence[str], y: np.ndarray, *, folds: int | None = None, seed: int = 0
) -> HeldOutProtocol:
    """Leave-one-speaker-out, speaker-disjoint folds, or (no speakers) folds over clips.

    Parameters
    ----------
    speakers : sequence of str [shape=(n,)]
        Speaker keys (``Record.speaker_key``).
    y : np.ndarray [shape=(n,)]
        Class ids (for stratification).
    folds : int, optional
        Number of folds; default leave-one-speaker-out up to
        :data:`LOSO_MAX_SPEAKERS` speakers, else :data:`SPEAKER_FOLDS`
        (:data:`CLIP_FOLDS` over clips without speakers).
    """
    from emovox.evaluation.protocols import leave_one_speaker_out, speaker_kfold, stratified_kfold

    unique = sorted(set(map(str, speakers)))
    if folds is not None and (isinstance(folds, bool) or not isinstance(folds, (int, np.integer)) or folds < 2):
        raise ConfigError(f"--folds {folds!r}: give 2 or more folds")
    if len(unique) >= 2:
        if folds is not None and folds > len(unique):
            raise ConfigError(
                f"--folds {folds}: the data has only {len(unique)} speakers; "
                f"give at most {len(unique)} (or leave --folds out)"
            )
        if (folds is None and len(unique) <= LOSO_MAX_SPEAKERS) or folds == len(unique):
            return HeldOutProtocol(
                "loso",
                tuple(leave_one_speaker_out(speakers)),
                True,
                f"leave-one-speaker-out over {len(unique)} speakers (each clip scored by a head fitted "
                "without its speaker)",
            )
        k = int(folds or SPEAKER_FOLDS)
        return HeldOutProtocol(
            "speaker-kfold",
            tuple(speaker_kfold(list(speakers), k=k, seed=seed, labels=list(y))),
            True,
            f"{k} speaker-disjoint folds over {len(unique)} speakers (each clip scored by a head fitted "
            "without its speaker)",
        )
    k = int(folds or min(CLIP_FOLDS, len(y)))
    if k > len(y):
        raise ConfigError(f"--folds {k}: the data has only {len(y)} clips")
    only = unique[0] if unique else "?"
    why = (
        "the data names no speakers (a folder: corpus has none; a csv: manifest's speaker column gives them)"
        if only.rsplit("/", 1)[-1] in ("unknown", "")
        else f"every clip is of one speaker ({only!r})"
    )
    return HeldOutProtocol(
        "clip-kfold",
        tuple(stratified_kfold(list(y), k=k, seed=seed)),
        False,
        f"{k} folds over clips, NOT speaker-independent: {why}, so the same voice is on both sides of every "
        "split; expect lower accuracy on speakers the model has not heard",
    )


@dataclass(frozen=True)
class HeldOut:
    """Out-of-fold results: logits ``(n, 1 + copies, k)`` of every clip and copy, and the evaluation result."""

    logits: np.ndarray
    result: dict


def heldout_logits(
    x: np.ndarray,
    y: np.ndarray,
    protocol: HeldOutProtocol,
    *,
    classes: Sequence[str],
    speakers: Sequence[str],
    records: Sequence | None = None,
    C: float | None = None,
    config: dict | None = None,
) -> HeldOut:
    """Fit one head per split on the training clips and their copies; score the test clips and copies.

    Parameters
    ----------
    x : np.ndarray [shape=(n, 1 + copies, d)]
        :attr:`ClipEmbeddings.x`. A clip's copies join a training set exactly
        when the clip does, and are scored with it.
    y : np.ndarray [shape=(n,)]
        Class ids into ``classes``.
    C : float, optional
        Inverse L2 strength (default: the shipped head's, :data:`emovox.recipes.robust.C`).

    Returns
    -------
    HeldOut
        ``result`` is :func:`emovox.evaluation.experiment.run_experiment`'s
        (on the clips as recorded; metrics of the arg-max, scores without
        calibration); ``logits`` the out-of-fold logits of every row.
    """
    from emovox.evaluation.experiment import FoldOutput, run_experiment
    from emovox.recipes.robust import C as ROBUST_C
    from emovox.recipes.robust import fit_robust_head

    x, y = np.asarray(x), np.asarray(y, np.int64)
    if x.ndim != 3 or len(x) != len(y):
        raise ConfigError(f"embeddings {x.shape} and labels {y.shape} must be (n, 1 + copies, d) and (n,)")
    C = ROBUST_C if C is None else float(C)
    n_classes = len(classes)
    captured: list[np.ndarray] = []

    def fit_predict(train, test):
        head = fit_robust_head([train.X[:, j] for j in range(x.shape[1])], train.y, C=C, n_classes=n_classes)
        logits = np.stack([head.logits(test.X[:, j]) for j in range(x.shape[1])], axis=1)
        captured.append(logits)
        return FoldOutput(logits[:, 0].argmax(axis=1), info={"C": C, "rows": int(len(train.y) * x.shape[1])})

    result = run_experiment(
        list(protocol.splits),
        fit_predict,
        y=y,
        classes=classes,
        speakers=speakers,
        X=x,
        records=records,
        protocol=protocol.name,
        config=config,
    )
    logits = np.zeros((len(y), x.shape[1], n_classes))
    for split, block in zip(protocol.splits, captured):
        logits[split.test_idx] = block
    return HeldOut(logits, result)


# ---------------------------------------------------------------------- the whole recipe
def train_default(
    records: Sequence,
    out_dir: str | os.PathLike,
    *,
    scheme: str = "native",
    copies: int = 0,
    folds: int | None = None,
    seed: int = 0,
    C: float | None = None,
    base: str | os.PathLike = BASE_MODEL,
    cache_dir: str | os.PathLike | None = None,
    num_threads: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Embed, evaluate on held-out speakers, calibrate, fit and write the model; returns the summary.

    Parameters
    ----------
    records : sequence of emovox.corpora.Record
        Labelled clips (``emovox.corpora.load_corpus``, a ``--corpus`` entry).
    out_dir : path-like
        Run folder: ``model/`` (the artifact), ``summary.json``, ``report.md``,
        ``result.json``, ``confusion.png``, ``per_class_recall.png``, ``cache/``.
    scheme : str
        Label scheme (default ``native``: the emotions present in the data).
    copies, folds, seed, C, base
        See :func:`clip_embeddings`, :func:`heldout_protocol`, :func:`heldout_logits`.
    cache_dir : path-like, optional
        Embedding cache (default ``out_dir/cache``).
    progress : callable, optional
        ``progress(done, total)`` in clips while embedding.

    Returns
    -------
    dict
        JSON-able: ``artifact``, ``classes``, ``n_clips``, ``n_speakers``,
        ``copies``, ``protocol``, ``speaker_independent``, ``heldout``
        (``uar``, ``accuracy``, per class recall, fold mean and std),
        ``calibration``, ``threshold``, ``timings`` and ``lines`` (what
        ``emovox train`` prints). Also written to ``out_dir/summary.json``.
    """
    from emovox.evaluation.experiment import prepare_labels
    from emovox.evaluation.report import to_json, write_report
    from emovox.fileio import atomic_write_text
    from emovox.inference.calibration import calibrate, softmax
    from emovox.recipes.robust import C as ROBUST_C
    from emovox.recipes.robust import fit_robust_head
    from emovox.training.pipeline import data_card

    out_dir = Path(out_dir)
    C = ROBUST_C if C is None else float(C)
    kept, y, classes = prepare_labels(list(records), scheme)
    counts = np.bincount(y, minlength=len(classes))
    if len(classes) < 2:
        raise ConfigError(
            f"the data has one label ({classes[0]!r}) after scheme {scheme!r}: a model needs at least 2 labels"
        )
    if counts.min() < 2:
        few = ", ".join(f"{c!r} ({n})" for c, n in zip(classes, counts) if n < 2)
        raise ConfigError(
            f"label {few} has fewer than 2 clips: give at least 2 clips of each label "
            "(about 20 or more for useful figures)"
        )
    speakers = [r.speaker_key for r in kept]
    protocol = heldout_protocol(speakers, y, folds=folds, seed=seed)
    t0 = time.perf_counter()
    embedded = clip_embeddings(
        [r.path for r in kept],
        model=base,
        copies=copies,
        seed=seed,
        cache_dir=out_dir / CACHE_SUBDIR if cache_dir is None else cache_dir,
        num_threads=num_threads,
        progress=progress,
    )
    t1 = time.perf_counter()
    settings = {
        "recipe": "default",
        "base_model": os.fspath(base),
        "scheme": scheme,
        "copies": int(copies),
        "C": C,
        "seed": int(seed),
        "protocol": protocol.description,
    }
    held = heldout_logits(
        embedded.x,
        y,
        protocol,
        classes=classes,
        speakers=speakers,
        records=kept,
        C=C,
        config={
            "model": "default recipe (shipped encoder + softmax regression)",
            "corpora": sorted({r.corpus for r in kept}),
            **settings,
        },
    )
    rows = held.logits.reshape(-1, len(classes))
    calibration = calibrate(rows, np.repeat(y, embedded.x.shape[1]))
    t = calibration.temperature
    clean = softmax(held.logits[:, 0], temperature=t)
    answered = clean.max(axis=1) >= calibration.threshold
    correct = clean.argmax(axis=1) == y
    final = fit_robust_head([embedded.x[:, j] for j in range(embedded.x.shape[1])], y, C=C, n_classes=len(classes))
    t2 = time.perf_counter()

    result = held.result
    pooled, fold_summary = result["pooled"], result["summary"]
    _calibrated_scores(result, protocol, clean, classes)
    heldout = {
        "protocol": protocol.description,
        "speaker_independent": protocol.speaker_independent,
        "uar": pooled["uar"],
        "accuracy": pooled["accuracy"],
        "n": int(len(y)),
        "speakers": len(set(speakers)),
        "classes": len(classes),
        "fold_uar_mean": fold_summary["uar"]["mean"],
        "fold_uar_std": fold_summary["uar"]["std"],
        "n_folds": len(protocol.splits),
        "recall": {c: pooled["per_class"][c]["recall"] for c in classes},
        "class_counts": {c: int(n) for c, n in zip(classes, counts)},
        "answered_share": float(answered.mean()),
        "accuracy_answered": float(correct[answered].mean()) if answered.any() else None,
    }
    if embedded.copies:
        copies_pred = held.logits[:, 1:].argmax(axis=2)
        from emovox.evaluation.metrics import compute_metrics

        degraded = compute_metrics(np.repeat(y, embedded.copies), copies_pred.reshape(-1), classes=classes)
        heldout["degraded_copies"] = {"uar": degraded["uar"], "accuracy": degraded["accuracy"], "n": degraded["n"]}
    figures_key = "speaker_independent" if protocol.speaker_independent else "same_speakers"
    metrics = {
        "protocol": protocol.description,
        figures_key: {"all": {k: heldout[k] for k in ("uar", "accuracy", "n", "speakers", "classes")}},
        "heldout": heldout,
    }
    training = {
        "recipe": "default",
        "module": __name__,
        "scheme": scheme,
        "seed": int(seed),
        "head": {
            "kind": "balanced softmax regression on the standardised embedding",
            "solver": "emovox.models.softmax_regression.fit_softmax_regression",
            "C": C,
            "copies": int(copies),
            "rows": int(embedded.x.shape[0] * embedded.x.shape[1]),
        },
        "data": data_card(kept, classes=classes, labels=y),
    }
    calibration_config = calibration.to_config()
    calibration_config["calibration"]["fitted_on"] = (
        "out-of-fold logits, "
        + protocol.description
        + (f", on the clips as recorded and {embedded.copies} degraded copies" if embedded.copies else "")
    )
    artifact = write_artifact(
        out_dir / ARTIFACT_SUBDIR,
        final,
        classes=classes,
        calibration=calibration,
        base=base,
        training=training,
        metrics=metrics,
        model_card=model_card_text(classes, training, heldout, calibration),
        calibration_note=calibration_config["calibration"]["fitted_on"],
    )
    t3 = time.perf_counter()

    result["config"]["artifact"] = str(artifact)
    write_report(result, out_dir)
    summary = {
        "artifact": str(artifact),
        "recipe": "default",
        "classes": list(classes),
        "n_clips": int(len(y)),
        "n_speakers": len(set(speakers)),
        "copies": int(embedded.copies),
        "protocol": protocol.name,
        "speaker_independent": protocol.speaker_independent,
        "heldout": heldout,
        "calibration": calibration_config["calibration"],
        "threshold": calibration_config["threshold"],
        "embeddings": {"cached": embedded.n_cached, "computed": embedded.n_computed},
        "timings": {"embed_s": round(t1 - t0, 2), "fit_s": round(t2 - t1, 2), "write_s": round(t3 - t2, 2)},
        "report": str(out_dir / "report.md"),
    }
    summary["lines"] = _lines(summary, protocol, embedded, calibration)
    atomic_write_text(out_dir / "summary.json", to_json(summary))
    return summary


def _calibrated_scores(result: dict, protocol: HeldOutProtocol, probs: np.ndarray, classes: Sequence[str]) -> None:
    """Put each held-out clip's calibrated scores into ``result["predictions"]`` (in the runner's order)."""
    order = [i for split in protocol.splits for i in split.test_idx]
    for entry, i in zip(result["predictions"], order):
        entry["scores"] = {c: round(float(p), 6) for c, p in zip(classes, probs[i])}


def _lines(summary: dict, protocol: HeldOutProtocol, embedded: ClipEmbeddings, calibration) -> list[str]:
    h = summary["heldout"]
    copies = f" + {embedded.copies} degraded copies each" if embedded.copies else ""
    lines = [
        f"trained default (the shipped encoder + a new head) on {summary['n_clips']} clips{copies}, "
        f"{len(summary['classes'])} labels ({', '.join(summary['classes'])}), {summary['n_speakers']} speaker(s); "
        f"embeddings: {embedded.n_computed} computed, {embedded.n_cached} from the cache",
        f"held out: {protocol.description}",
        f"  UAR {h['uar']:.3f}, accuracy {h['accuracy']:.3f} on {h['n']} clips (fold UAR {h['fold_uar_mean']:.3f} "
        f"± {h['fold_uar_std']:.3f} over {h['n_folds']} folds)",
        "  recall: " + ", ".join(f"{c} {r:.2f}" for c, r in h["recall"].items() if r is not None),
    ]
    if not protocol.speaker_independent:
        lines.append(
            "  (not speaker-independent: give each clip its speaker, e.g. a 'speaker' column, for an honest figure)"
        )
    if "degraded_copies" in h:
        d = h["degraded_copies"]
        lines.append(f"  degraded copies of the held-out clips: UAR {d['uar']:.3f}, accuracy {d['accuracy']:.3f}")
    share = h["answered_share"]
    acc = h["accuracy_answered"]
    lines.append(
        f"calibration on the out-of-fold predictions: temperature {calibration.temperature:.3f} (ECE "
        f"{calibration.ece_before:.3f} -> {calibration.ece_after:.3f}); 'unknown' under confidence "
        f"{calibration.threshold:.3f}: {share:.0%} of held-out clips answered"
        + (f", accuracy {acc:.3f} on those" if acc is not None else "")
    )
    fewest = min(summary["heldout"]["class_counts"].values())
    if fewest < FEW_CLIPS:
        lines.append(
            f"note: a label has only {fewest} clips; figures, calibration and the threshold are rough "
            f"below about {FEW_CLIPS} clips per label"
        )
    lines.append(f"report: {summary['report']}")
    return lines


# ---------------------------------------------------------------------- the registered recipe
def _setting(settings: dict, key: str, kind: type[int] | type[float], *, minimum: int | None = None):
    value = settings.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, kind):
        raise ConfigError(f"--{key} {value!r} must be {'an integer' if kind is int else kind.__name__}")
    if minimum is not None and value < minimum:
        raise ConfigError(f"--{key} {value!r} must be at least {minimum}")
    return value


def fit_recipe(records: Sequence, *, out_dir: str | os.PathLike, scheme: str, settings: dict) -> dict:
    """:attr:`emovox.training.recipes.Recipe.fit` of ``default``: :func:`train_default` with the CLI's settings."""
    import torch

    copies = _setting(settings, "copies", int, minimum=0) or 0
    if copies > MAX_COPIES:
        raise ConfigError(f"--copies {copies}: give at most {MAX_COPIES} degraded copies per clip")
    folds = _setting(settings, "folds", int, minimum=2)
    seed = _setting(settings, "seed", int, minimum=0) or 0
    threads = _setting(settings, "threads", int, minimum=1) or 2
    torch.set_num_threads(threads)
    with clip_progress(len(records), enabled=bool(settings.get("progress", True)), desc="embedding clips") as progress:
        return train_default(
            records,
            out_dir,
            scheme=scheme,
            copies=copies,
            folds=folds,
            seed=seed,
            num_threads=threads,
            progress=progress,
        )


def build_recipe():
    """The registered ``default`` recipe (closed form: :func:`fit_recipe`)."""
    from emovox.training.recipes import Recipe

    return Recipe(
        name="default",
        arch="whisper-linear",
        label_scheme="native",
        trim_silence=True,
        fit=fit_recipe,
        settings={"copies": 0, "folds": None, "seed": 0, "threads": 2, "progress": True},
        description="the bundled model's encoder (no download) + a head fitted on your clips; held-out speaker "
        "figures, calibration, 'unknown' threshold (--copies N degraded copies, --folds K)",
    )


def _register() -> None:
    from emovox.training.recipes import register_recipe

    register_recipe("default", build_recipe)


_register()
