"""The channel-robust head of the shipped default model (issue 16), as build steps.

Step 5 of the default model's build (recipe ``shipped-default``,
:mod:`emovox.recipes.build_default`; ``scripts/build_models.py default``):

0. ``preprocessing.band_limit_hz = 8000``: every input reaches the encoder
   through a telephone band (the design ``docs/robustness.md`` chose).
1. The embedding of every clip of the four corpora (``emovox7``) as recorded
   and of :data:`emovox.recipes.robust.N_COPIES` degraded copies of it
   (telephone calls, the full degradation chain, noisy places), through the
   artifact's ONNX ``embedding`` output and the product preprocessing.
2. :func:`emovox.recipes.robust.fold_heads` on the build's 3 speaker-disjoint
   folds: out-of-fold logits of every clip and every copy (held-out speakers).
3. Temperature and rejection threshold fitted on those out-of-fold logits,
   clean and degraded together (the audio the product meets); the card's
   per-corpus figures from the clean ones.
4. The head fitted on every clip and copy replaces the artifact's linear head
   (the encoder and its float16 weights are unchanged; a speaker-adaptation
   head is refitted afterwards on the band-limited embeddings,
   :mod:`emovox.recipes.shipped_adaptation`); the ONNX graph is re-exported reading its weights from
   ``model.safetensors`` and checked against torch on corpus clips.
5. ``config["robustness"]``: what the model was measured on (the warnings of
   :func:`emovox.inference.gate.quality_warnings` use it) and, when
   ``bench/results/robustness.json`` and ``bench/results/nonspeech.json``
   exist, their figures; for the shipped model, the card's sections.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from emovox.fileio import atomic_folder
from emovox.recipes import shipped_adaptation as adaptation
from emovox.recipes import shipped_default as build

#: What the robustness benchmark measures; the answer warns outside it.
MEASURED = {
    "narrowband": True,
    "min_snr_db": 5.0,
    "max_rt60_s": 0.8,
    "clipping": False,
    "codecs": ["G.711 mu-law", "AMR-NB 5.9 kbit/s", "G.723.1 6.3 kbit/s"],
}

#: The input band of the shipped design (``docs/robustness.md``: why telephone band for every input).
BAND_LIMIT_HZ = 8000

CARD_HEADING = "## Real-world audio: speech gate, quality flags, channels and noise"


def set_band_limit(artifact: Path) -> None:
    """Step 0: the telephone-band design: ``preprocessing.band_limit_hz`` (every input through an 8 kHz channel).

    Set before the embeddings are computed, since it changes them (the
    embedding cache is keyed by it).
    """
    from emovox.fileio import atomic_write_text

    config = json.loads((artifact / "config.json").read_text())
    if config["preprocessing"].get("band_limit_hz") != BAND_LIMIT_HZ:
        config["preprocessing"]["band_limit_hz"] = BAND_LIMIT_HZ
        atomic_write_text(artifact / "config.json", json.dumps(config, indent=2, sort_keys=True) + "\n")


def fit(artifact: Path, cache: Path, workers: int) -> tuple[dict, object, dict]:
    """Steps 1-3: the final head, its calibration and the clean out-of-fold figures."""
    from emovox.evaluation.robustness import corpus_clips, speaker_groups
    from emovox.inference.calibration import calibrate
    from emovox.recipes.robust import N_COPIES, C, fit_robust_head, fold_heads, fold_logits, training_embeddings

    records, y, classes = corpus_clips()
    groups = speaker_groups(records, y)
    sets = training_embeddings(
        [r.path for r in records],
        groups,  # type: ignore[arg-type]  # an int array, indexed as training_embeddings does
        cache_dir=cache,
        model=str(artifact),
        workers=workers,
        log=build.log,
    )
    heads = fold_heads(sets, y, groups, n_classes=len(classes))
    oof = [fold_logits(heads, groups, e) for e in sets]
    calibration = calibrate(np.concatenate(oof), np.concatenate([y] * len(oof)))
    figures = build.per_corpus(records, y, oof[0], classes)
    build.log(
        f"out-of-fold clean UAR {figures['all']['uar']:.3f}; calibration on clean + {N_COPIES} copies: "
        f"T {calibration.temperature:.3f}, threshold {calibration.threshold:.3f}"
    )
    final = fit_robust_head(sets, y, n_classes=len(classes))
    recipe = {
        "recipe": "robust",
        "module": "emovox.recipes.robust",
        "C": C,
        "copies": N_COPIES,
        "rows": int(len(y) * len(sets)),
        "copy_chains": {"1": "telephone_chain", "2-5": "degradation_chain", "6-7": "noise_chain"},
    }
    return {"figures": figures, "recipe": recipe, "calibration": calibration}, final, {"n": len(y)}


def install(artifact: Path, result: dict, final) -> None:
    """Step 4: the new head into the artifact (safetensors + shared-weight ONNX), checked against torch."""
    from emovox.export.onnx import export_onnx, share_weights
    from emovox.inference import load_model
    from emovox.models.artifact import load_artifact, save_artifact
    from emovox.models.whisper_classifier import HeadFit
    from emovox.models.whisper_encoder import half_encoders

    loaded, config = load_artifact(artifact)
    model: Any = loaded  # a WhisperEmotionClassifier (set_head), for the artifacts this step takes
    layers = tuple(config["architecture"]["params"]["layers"])
    model.set_head(
        HeadFit(
            layers=layers,
            C=final.C,
            mean=final.mean.astype(np.float32),
            scale=final.scale.astype(np.float32),
            coef=final.coef.astype(np.float32),
            intercept=final.intercept.astype(np.float32),
            inner_uar=float("nan"),
        )
    )
    calibration = result["calibration"]
    config["calibration"] = {
        **calibration.to_config()["calibration"],
        "fitted_on": "out-of-fold logits of the 3 fold models (held-out speakers), on the "
        "clips as recorded and their degraded copies",
    }
    config["threshold"] = calibration.to_config()["threshold"]
    config["metrics"]["speaker_independent"] = result["figures"]
    for stale in ("speaker_independent_onnx_int8", "int8_vs_float32", "inner_cv"):
        config["metrics"].pop(stale, None)
    config["training"]["head_recipe"] = result["recipe"]
    half_encoders(model)
    with atomic_folder(artifact) as staging:  # swapped in whole once checked, the old one restored on failure
        save_artifact(staging, model, config)
        export_onnx(staging, staging, half_weights=True)
        build.log(f"model.onnx shares {share_weights(staging) / 1e6:.1f} MB of weights with model.safetensors")
        for extra in ("adapt.safetensors", "LICENSE-whisper.txt"):
            if (artifact / extra).is_file():
                shutil.copy2(artifact / extra, staging / extra)
        records = build.records()[0]
        sample = [records[i].path for i in np.linspace(0, len(records) - 1, 24).astype(int)]
        a = load_model(staging, backend="torch", num_threads=1).probabilities([build.clip(p) for p in sample])
        b = load_model(staging, backend="onnx", num_threads=1).probabilities([build.clip(p) for p in sample])
        if float(np.abs(a - b).max()) > 1e-4:
            raise SystemExit(f"the ONNX graph disagrees with torch by {np.abs(a - b).max():.2e}")
        config = json.loads((staging / "config.json").read_text())
        logits = [
            load_model(staging, backend=kind, num_threads=1).logits([build.clip(p) for p in sample])
            for kind in ("torch", "onnx")
        ]
        config["metrics"]["shipped_onnx_vs_torch"] = {
            **build.agreement(*logits, temperature=calibration.temperature, threshold=calibration.threshold),
            "max_prob_diff": round(float(np.abs(a - b).max()), 6),
        }
        config["files"] = {p.name: {"bytes": p.stat().st_size} for p in staging.iterdir() if p.name != "config.json"}
        (staging / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        for p in staging.iterdir():
            os.chmod(p, 0o644)


def robustness_section(artifact: Path, *, bench_results: Path | None = None, card: Path | None = None) -> dict:
    """Step 5: ``config["robustness"]`` from the benchmarks' JSON (when present); the card's sections.

    ``bench_results``: the folder of ``robustness.json`` and ``nonspeech.json``
    (``bench/results``); ``card``: the model card to rewrite (the shipped model's, ``docs/model_card.md``).
    """
    robustness_json = None if bench_results is None else bench_results / "robustness.json"
    nonspeech_json = None if bench_results is None else bench_results / "nonspeech.json"
    from emovox.fileio import atomic_write_text
    from emovox.inference.gate import MIN_EMOTION_S, NO_SPEECH_S, SPEECH_PROBABILITY

    config = json.loads((artifact / "config.json").read_text())
    section = {
        "measured": MEASURED,
        "gate": {"speech_probability": SPEECH_PROBABILITY, "no_speech_s": NO_SPEECH_S, "min_emotion_s": MIN_EMOTION_S},
    }
    if robustness_json is not None and robustness_json.is_file():
        bench = json.loads(robustness_json.read_text())
        designs = bench["designs"]
        section["conditions"] = {c: {**designs["shipped"][c], **bench["gate"][c]} for c in bench["conditions"]}
        section["loco"] = designs["shipped"]["loco"]
        section["other_designs"] = {
            name: {c: designs[name][c]["uar"] for c in bench["conditions"]} for name in designs if name != "shipped"
        }
    if nonspeech_json is not None and nonspeech_json.is_file():
        section["nonspeech"] = json.loads(nonspeech_json.read_text())["models"].get("default")
    config["robustness"] = section
    atomic_write_text(artifact / "config.json", json.dumps(config, indent=2, sort_keys=True) + "\n")
    if card is not None:
        text = build.model_card(
            config, config["task"]["labels"], config["architecture"]["params"]["encoder"]["n_layers"]
        )
        atomic_write_text(card, text)
        if "adaptation" in config:
            adaptation.write_card_section(
                card, adaptation.card_section(config["adaptation"], config["metrics"]["speaker_independent"])
            )
        write_card_section(card, card_text(config))
    return section


def card_text(config: dict) -> str:
    """The model card's section on real-world audio."""
    section = config["robustness"]
    gate = section["gate"]
    rows = ""
    if "conditions" in section:
        others = section.get("other_designs", {})
        rows = "\n".join(
            f"| {c} | " + "".join(f"{others[n][c]:.3f} | " for n in others) + f"**{v['uar']:.3f}** | "
            f"{v['class_changed']:.1%} | {v['no_speech']:.2%} |"
            for c, v in section["conditions"].items()
        )
        rows = (
            "| condition | " + "".join(f"UAR, {n} | " for n in others) + "UAR, this model | classes changed "
            "vs clean | refused as no speech |\n|---|" + "---|" * len(others) + "---|---|---|\n" + rows + "\n"
        )
        loco = section["loco"]
        rows += (
            f"\nUnseen corpus (leave one corpus out, 4 shared classes, mean of 4): clean "
            f"{loco['clean']['mean']:.3f}, telephone {loco['telephone']['mean']:.3f}.\n"
        )
    ns = section.get("nonspeech")
    ns_text = (
        f"On an evaluation set of synthetic non-speech (19 kinds, 5 never used for tuning) "
        f"{ns['non_speech_given_an_emotion']:.1%} of clips get an emotion; of the 4,217 corpus clips "
        f"{ns['speech_refused_as_no_speech']:.2%} are refused as no speech "
        f"(`bench/nonspeech.py`).\n"
        if ns
        else ""
    )
    return f"""{CARD_HEADING}

The model hears every input through a telephone band (resampled to 8 kHz
and back: nothing above 4 kHz reaches the encoder), so a call and a studio
recording of the same words reach it alike. Its head is trained on every clip
as recorded and on {config["training"]["head_recipe"]["copies"]} degraded copies of it (`emovox.recipes.robust`:
telephone calls through G.711, G.726 and AMR-NB; Opus and MP3 at low bit
rates; babble of other training speakers, coloured noise and music at 0-25 dB
SNR; simulated rooms with RT60 0.2-1.0 s; gain and clipping). "before" is the
model before this work (full band, head trained on the clips as recorded);
"robust, full band" the same recipe without the telephone band. Every input first passes a speech gate (Silero VAD,
frames with speech probability >= {gate["speech_probability"]}): under {gate["no_speech_s"]} s of speech the answer
is `no_speech`, under {gate["min_emotion_s"]} s `unknown` (too little speech). Every answer
carries its speech seconds and quality flags (narrowband, clipping, low
SNR, low level) and says when the input lies outside what was measured
below (noisier than 5 dB SNR, clipped, very quiet).

Held-out speakers, same 3 folds, 7-way UAR over all 4,217 clips; noise and
rooms from banks and seeds never used in training (`bench/robustness.py`,
`docs/robustness.md`):

{rows}
{ns_text}
"""


def write_card_section(card: Path, text: str) -> None:
    """Insert or replace this step's section of the model card ``card``."""
    build.replace_card_section(card, CARD_HEADING, text)
