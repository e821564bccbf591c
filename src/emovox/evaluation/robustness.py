"""Robustness protocol: held-out speakers under channel, noise and room conditions.

The corpus clips (the default model's four corpora, ``emovox7`` labels) are
split into the 3 speaker-disjoint folds of the model card; every clip is
*group* ``g``: the fold in which it is a test clip. A condition is a
degradation applied to the raw clip before the product preprocessing:

======================  ==========================================================
``clean``               as recorded
``telephone``           300-3400 Hz band, G.711 mu-law at 8 kHz
``amr_nb``              telephone band, AMR-NB at 5.9 kbit/s (a mobile call)
``g723_1``              telephone band, G.723.1 at 6.3 kbit/s (never used in training)
``babble_{20,10,5}db``  babble of 3-7 talkers of the clip's own test group
``traffic_10db``        synthetic road noise (a kind never used in training)
``reverb_0.3``/``0.8``  simulated rooms whose measured RT60 is within 10 % of 0.3 / 0.8 s
======================  ==========================================================

Noise and rooms for evaluation come from banks built with seeds that
training never uses (:data:`EVAL_SEED`); babble is made of the test group's
speakers, who are not in that fold's training data even as background.
Training copies (:mod:`emovox.recipes.robust`) use training banks:
babble of the clip's own group (training speakers of every fold that trains
on the clip), other seeds, other room draws.

:func:`embed_condition` runs the condition through the product path
(:meth:`emovox.inference.Predictor.clip_embedding`) and Silero VAD on two
processes, caching each chunk of clips on disk so a killed run resumes.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from emovox.errors import ConfigError

if TYPE_CHECKING:
    from emovox.augment.base import Transform
    from emovox.corpora.records import Record
    from emovox.evaluation.protocols import Split

__all__ = [
    "CONDITIONS",
    "EVAL_SEED",
    "TRAIN_SEED",
    "CORPORA",
    "SCHEME",
    "corpus_clips",
    "speaker_groups",
    "condition_transform",
    "embed_condition",
    "embedding_id",
    "Embedded",
    "load_embedded",
]

CORPORA = ("ravdess", "emodb", "emovo", "turev")
SCHEME = "emovox7"
N_FOLDS = 3
SAMPLE_RATE_HZ = 16000
#: Seeds of evaluation banks and draws, and of training ones: never equal.
EVAL_SEED = 7_770_001
TRAIN_SEED = 1_234_567

CONDITIONS: dict[str, str] = {
    "clean": "as recorded",
    "telephone": "telephone band 300-3400 Hz, G.711 mu-law at 8 kHz",
    "amr_nb": "telephone band, AMR-NB 5.9 kbit/s (mobile call)",
    "g723_1": "telephone band, G.723.1 6.3 kbit/s (a codec never used in training)",
    "babble_20db": "babble of 3-7 test-group talkers at 20 dB SNR",
    "babble_10db": "babble of 3-7 test-group talkers at 10 dB SNR",
    "babble_5db": "babble of 3-7 test-group talkers at 5 dB SNR",
    "traffic_10db": "synthetic road noise at 10 dB SNR (a noise kind never used in training)",
    "reverb_0.3": "simulated rooms, measured RT60 0.27-0.33 s",
    "reverb_0.8": "simulated rooms, measured RT60 0.72-0.88 s",
}


def corpus_clips(
    corpora: Sequence[str] = CORPORA, scheme: str = SCHEME
) -> tuple[list[Record], np.ndarray, tuple[str, ...]]:
    """``(records, y, classes)``: every clip of ``corpora`` the scheme keeps, class ids and class names."""
    from emovox.corpora import load_corpus
    from emovox.evaluation.data import prepare_labels

    return prepare_labels([r for name in corpora for r in load_corpus(name)], scheme)


def speaker_folds(records: Sequence[Record], y: np.ndarray) -> list[Split]:
    """The model card's 3 speaker-disjoint folds (:func:`emovox.evaluation.folds_all_corpora.all_corpora_folds`)."""
    from emovox.evaluation.folds_all_corpora import all_corpora_folds

    return all_corpora_folds(records, y, k=N_FOLDS)


def speaker_groups(records: Sequence[Record], y: np.ndarray) -> np.ndarray:
    """Group of each clip ``(n,)`` int: the fold in which its speaker is held out."""
    groups = np.full(len(records), -1, np.int64)
    for k, split in enumerate(speaker_folds(records, y)):
        groups[split.test_idx] = k
    return groups


def load_clip(path: str) -> np.ndarray:
    """A corpus clip as decoded for prediction (16 kHz mono float32, untrimmed).

    A ``nonspeech:`` key (:func:`emovox.evaluation.nonspeech.item_key`) renders that synthetic clip.
    """
    if path.startswith("nonspeech:"):
        from emovox.evaluation.nonspeech import load_item

        return load_item(path)
    from emovox.audio import load_audio

    return load_audio(path, sample_rate_hz=SAMPLE_RATE_HZ)


# ---------------------------------------------------------------------- banks and conditions
@dataclass
class Banks:
    """Noise and room banks of one seed: babble per group, rooms per RT60, extra noises."""

    babble: dict[int, list[np.ndarray]]
    rooms: dict[str, list[np.ndarray]]
    sounds: dict[str, list[np.ndarray]]


def _seeded(seed: int, name: str) -> np.random.Generator:
    return np.random.default_rng([seed, int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little")])


def build_banks(
    records: Sequence[Record],
    groups: np.ndarray,
    *,
    seed: int,
    babble: bool = False,
    rooms: dict[str, tuple] | None = None,
    sounds: dict[str, Sequence[str]] | None = None,
    clips_per_group: int = 120,
    n_babble: int = 48,
    n_rooms: int = 32,
) -> Banks:
    """Babble per group from ``clips_per_group`` random clips of that group's speakers; rooms; synthetic sounds.

    ``rooms`` maps a name to ``(rt60 range, tolerance)`` (:func:`~emovox.augment.degrade.rir_bank`);
    ``sounds`` a name to synth kinds. Each bank has its own generator, seeded by
    ``seed`` and its name, so a bank is the same whichever others are built.
    """
    from emovox.augment.degrade import babble_bank, rir_bank, sound_bank

    babble_banks: dict[int, list[np.ndarray]] = {}
    if babble:
        for g in sorted({int(v) for v in groups}):
            rng = _seeded(seed, f"babble-{g}")
            members = np.flatnonzero(groups == g)
            chosen = rng.choice(members, size=min(clips_per_group, members.size), replace=False)
            babble_banks[g] = babble_bank([load_clip(records[i].path) for i in chosen], n_items=n_babble, rng=rng)
    room_banks = {
        name: rir_bank(rt60, n_items=n_rooms, rng=_seeded(seed, name), tolerance=tol)
        for name, (rt60, tol) in (rooms or {}).items()
    }
    sound_banks = {
        name: sound_bank(kinds, n_items=32, rng=_seeded(seed, name)) for name, kinds in (sounds or {}).items()
    }
    return Banks(babble_banks, room_banks, sound_banks)


#: The evaluation rooms: name -> (RT60 range, tolerance of the measured RT60).
EVAL_ROOMS = {"reverb_0.3": ((0.3, 0.3), 0.1), "reverb_0.8": ((0.8, 0.8), 0.1)}


def eval_banks(records: Sequence[Record], groups: np.ndarray, condition: str | None = None) -> Banks:
    """The evaluation banks (:data:`EVAL_SEED`) ``condition`` needs (all of them for ``None``).

    Test-group babble, RT60 0.3 / 0.8 rooms, road noise.
    """
    every = condition is None
    return build_banks(
        records,
        groups,
        seed=EVAL_SEED,
        babble=condition is None or condition.startswith("babble_"),  # `every`, spelt out for the type checker
        rooms={k: v for k, v in EVAL_ROOMS.items() if every or k == condition},
        sounds={"traffic": ("traffic",)} if every or condition == "traffic_10db" else None,
    )


def condition_transform(name: str, banks: Banks | None, group: int) -> Transform | None:
    """The transform of condition ``name`` for a clip of ``group`` (``None`` for ``clean``)."""
    from emovox.augment import BackgroundNoise, Compose
    from emovox.augment.channel import Channel
    from emovox.augment.room import RoomReverb

    if name not in CONDITIONS:
        raise ConfigError(f"condition {name!r} is unknown: expected one of {', '.join(CONDITIONS)}")
    if name == "clean":
        return None
    if name == "telephone":
        return Channel(codecs=("mulaw",))
    if name == "amr_nb":
        return Channel(codecs=("amr_nb",), bitrate_bps=(5900, 5900))
    if name == "g723_1":
        return Channel(codecs=("g723_1",), bitrate_bps=(6300, 6300))
    if banks is None:
        raise ConfigError(f"condition {name!r} needs noise/room banks")
    if name.startswith("babble_"):
        snr = float(name.split("_")[1].removesuffix("db"))
        return BackgroundNoise(snr_db=(snr, snr), noises=tuple(banks.babble[group]))
    if name == "traffic_10db":
        return BackgroundNoise(snr_db=(10.0, 10.0), noises=tuple(banks.sounds["traffic"]))
    return Compose(((RoomReverb(rirs=tuple(banks.rooms[name])), 1.0),))


def clip_rng(seed: int, tag: str, path: str) -> np.random.Generator:
    """The generator of one clip under one condition: fixed by ``(seed, tag, path)``."""
    digest = hashlib.sha256(f"{tag}\0{os.path.basename(path)}\0{path.count('/')}".encode()).digest()
    return np.random.default_rng([seed, int.from_bytes(digest[:8], "little")])


# ---------------------------------------------------------------------- embeddings
@dataclass(frozen=True)
class Embedded:
    """Embeddings ``(n, d)`` float32, VAD speech probabilities per clip (ragged), durations ``(n,)`` s."""

    embeddings: np.ndarray
    vad: list[np.ndarray]
    duration_s: np.ndarray


_WORKER: dict = {}


def _init_worker(model: str, spec: dict) -> None:
    os.environ["OMP_NUM_THREADS"] = "1"
    from emovox.audio.vad import SileroVAD
    from emovox.inference import load_model

    _WORKER["model"] = load_model(model, backend="onnx", num_threads=1)
    _WORKER["vad"] = SileroVAD()
    _WORKER["spec"] = spec
    _WORKER["make"] = _resolve(spec["factory"])
    _WORKER["state"] = None


def _resolve(qualified: str) -> Callable:
    module, _, name = qualified.rpartition(".")
    import importlib

    return getattr(importlib.import_module(module), name)


def _run_chunk(task: tuple[int, list[tuple[int, str, int]], str]) -> str:
    chunk_id, items, out_path = task
    if os.path.exists(out_path):
        return out_path
    spec = _WORKER["spec"]
    if _WORKER["state"] is None:  # the factory's shared state (banks), built once per worker
        _WORKER["state"] = _WORKER["make"](spec, None)
    predictor, vad = _WORKER["model"], _WORKER["vad"]
    rows, probs, durations = [], [], []
    for _index, path, group in items:
        y = load_clip(path)
        transform = _WORKER["make"](spec, (_WORKER["state"], group))
        if transform is not None:
            y = np.asarray(
                transform(y, sample_rate_hz=SAMPLE_RATE_HZ, rng=clip_rng(spec["seed"], spec["tag"], path)), np.float32
            )
        rows.append(predictor.clip_embedding(y, sample_rate=SAMPLE_RATE_HZ))
        vad.reset()
        probs.append(vad.probabilities(y, final=True).astype(np.float16))
        durations.append(y.size / SAMPLE_RATE_HZ)
    offsets = np.cumsum([0] + [p.size for p in probs])
    from emovox.fileio import atomic_output

    with atomic_output(out_path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(
                handle,
                embeddings=np.stack(rows).astype(np.float32),
                vad=np.concatenate(probs),
                offsets=offsets,
                duration_s=np.asarray(durations, np.float32),
            )
    return out_path


def embed_condition(
    paths: Sequence[str],
    groups: Sequence[int],
    *,
    tag: str,
    factory: str,
    seed: int,
    cache_dir: str | os.PathLike,
    model: str = "default",
    workers: int = 2,
    chunk: int = 150,
    extra: dict | None = None,
    log: Callable[[str], None] = print,
) -> Embedded:
    """Embeddings and VAD probabilities of every clip of ``paths`` under one degradation, cached per chunk.

    Parameters
    ----------
    paths, groups : sequences of length n
        Clips and their speaker group (:func:`speaker_groups`).
    tag : str
        Name of the degradation (cache folder and per-clip seeds).
    factory : str
        ``"module.function"``: ``function(spec, None)`` builds shared state
        (banks) once per worker; ``function(spec, (state, group))`` returns the
        transform for a clip of ``group`` (or ``None``).
    seed : int
        Seed of the per-clip draws (:func:`clip_rng`).
    model : str
        Model whose ``embedding`` output is computed (ONNX backend).
    extra : dict, optional
        More JSON settings passed to the factory in ``spec``.
    """
    import multiprocessing as mp

    folder = Path(cache_dir) / tag
    folder.mkdir(parents=True, exist_ok=True)
    spec = {"tag": tag, "factory": factory, "seed": int(seed), "model": str(model), **(extra or {})}
    identity = {**spec, "model": embedding_id(model), "paths": list(map(str, paths))}
    key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
    items = [(i, str(p), int(g)) for i, (p, g) in enumerate(zip(paths, groups))]
    tasks = [
        (c, items[s : s + chunk], str(folder / f"{key}-{c:04d}.npz")) for c, s in enumerate(range(0, len(items), chunk))
    ]
    todo = [t for t in tasks if not os.path.exists(t[2])]
    t0 = time.time()
    if todo:
        log(f"{tag}: {len(todo)} of {len(tasks)} chunks to embed on {workers} processes")
        context = mp.get_context("spawn")
        with context.Pool(workers, initializer=_init_worker, initargs=(str(model), spec)) as pool:
            for done, _ in enumerate(pool.imap_unordered(_run_chunk, todo), start=1):
                if done % 5 == 0 or done == len(todo):
                    log(f"{tag}: {done}/{len(todo)} chunks, {time.time() - t0:.0f} s")
    return load_embedded([t[2] for t in tasks])


def embedding_id(model: str) -> str:
    """What a model's embeddings depend on: its encoder's weights and the hidden states pooled.

    A new head on the same encoder (``scripts/add_robust_head.py``) keeps the
    id, so cached embeddings stay valid; another encoder or layer set does not.
    """
    from emovox.inference.backends import read_config
    from emovox.inference.predictor import resolve_model_dir

    config = read_config(resolve_model_dir(model))
    encoder = (config.get("training") or {}).get("encoder") or {}
    params = (config.get("architecture") or {}).get("params") or {}
    pre = {k: v for k, v in (config.get("preprocessing") or {}).items() if v not in (None, False)}
    identity = {
        "encoder": encoder.get("sha256"),
        "layers": params.get("layers"),
        "arch": (config.get("architecture") or {}).get("name"),
    }
    if pre.get("band_limit_hz"):  # a preprocessing that changes the embeddings
        identity["band_limit_hz"] = pre["band_limit_hz"]
    return json.dumps(identity, sort_keys=True)


def load_embedded(files: Sequence[str]) -> Embedded:
    """Concatenate chunk files written by :func:`embed_condition`."""
    emb, vad, dur = [], [], []
    for f in files:
        with np.load(f) as z:
            emb.append(z["embeddings"])
            offsets = z["offsets"]
            flat = z["vad"].astype(np.float32)
            vad += [flat[a:b] for a, b in zip(offsets[:-1], offsets[1:])]
            dur.append(z["duration_s"])
    return Embedded(np.concatenate(emb), vad, np.concatenate(dur))


def eval_factory(spec: dict, arg: tuple[Banks | None, int] | None) -> Banks | Transform | None:
    """:func:`embed_condition` factory of the evaluation conditions (``spec["condition"]``)."""
    if arg is None:
        if spec["condition"] in ("clean", "telephone", "amr_nb", "g723_1") or spec.get("no_banks"):
            return None
        records, y, _ = corpus_clips()
        return eval_banks(records, speaker_groups(records, y), spec["condition"])
    banks, group = arg
    return condition_transform(spec["condition"], banks, group)
