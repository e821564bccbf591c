"""Which training-data augmentations raise held-out-speaker UAR of the pooled linear probe?

Measures, for the shipped recipe (Whisper base hidden states 0..4, mean+std over
frames, standardised, logistic regression C=1e-3 through
:func:`emovox.recipes.whisper.fit_head`, no inner CV, nothing chosen per fold),
the effect of ONE augmented copy of every training clip per augmentation, on

- ``all7``: ``emovox7`` over the four corpora, ``speaker_kfold(k=6, strata=corpus, seed=0)``
  (the folds of ``experiments/whisper/heads.py --protocol all7``);
- ``loco``: leave one corpus out on the 4 shared classes (``heads.py --protocol loco``),

always beside the baseline (no copies) and the old noise + pitch copies on the same folds.
Augmented copies join a training set exactly when their clip does (test rows are never augmented).

Augmentations written here (new; :mod:`emovox.augment` has noise, pitch shift,
time stretch/shift, gain, spectral masks):

- ``speed``: Kaldi speed perturbation, factor 0.9 or 1.1 (resample; tempo and pitch
  change together; the length changes, no crop/pad). NB the old ``pitch`` copy
  (``PitchShift(method="resample")``) is already a speed perturbation by 0.89-1.12,
  cropped / zero-padded back to the original length.
- ``formant``: vocal-tract-length change with the pitch kept: every STFT frame's
  cepstrally smoothed spectral envelope is warped by ``a`` in [0.85, 1.15]
  (formants x a), the harmonic fine structure and the phase are kept.
- ``vtlp``: the whole spectrum scaled by ``a`` in [0.85, 1.15] at constant duration
  (pitch and formants together: ``librosa.effects.pitch_shift``; what VTLP does
  to a filterbank).
- ``reverb``: convolution with a synthetic room impulse response (direct path +
  exponentially decaying Gaussian noise tail, RT60 0.2-0.8 s, direct-to-reverberant
  ratio 0-10 dB), RMS kept.
- ``phone``: telephone channel: 300-3400 Hz band-pass (4th-order Butterworth),
  8 kHz sampling, 8-bit mu-law, back to 16 kHz.
- ``codec``: MP3 at 16-32 kbit/s through ffmpeg (libmp3lame), decoded back.

Features: the product path of :func:`emovox.recipes.whisper.pooled_features`
(load_audio -> trim_for_model -> augment -> log-mel -> encoder), with the encoder
truncated to 4 blocks (states 0..4 equal the full encoder's), one copy per clip
(seed 0 and the file's bytes), stored in ``/tmp/emovox-research/augment/pooled_<variant>.npz``
in the row order of ``experiments/whisper/pooled_data.py``.

Usage (from /work/main)::

    OMP_NUM_THREADS=1 .venv/bin/python experiments/whisper/augment_variants.py extract formant
    OMP_NUM_THREADS=1 .venv/bin/python experiments/whisper/augment_variants.py eval --protocol all7 \
        --variants "none;noise,pitch;formant;reverb"
    .venv/bin/python experiments/whisper/augment_variants.py table

``--variants``: ``;``-separated sets of copies (``none`` (or ``-`` after ``--variants=``) = baseline, no copies);
``noise`` / ``pitch`` are the cached old copies (``pooled_data.load``). Each
variant appends one JSON line to ``/tmp/emovox-research/augment/results.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import pooled_data  # noqa: E402

OUT = pooled_data.OUT / "augment"
RESULTS = OUT / "results.jsonl"
ENCODER4 = OUT / "encoder4"
LAYERS = (0, 1, 2, 3, 4)
C = 1e-3
OLD = ("noise", "pitch")


# ----------------------------------------------------------------------------------------------- transforms
@dataclass(frozen=True)
class _Aug:
    """Base: ``aug(y, sample_rate_hz=, rng=) -> y``; ``to_dict`` for cache keys."""

    def to_dict(self) -> dict:
        return {"type": type(self).__name__, **self.__dict__}


def _rms(y):
    return float(np.sqrt(np.mean(np.square(y, dtype=np.float64)) + 1e-12))


@dataclass(frozen=True)
class Speed(_Aug):
    factors: tuple = (0.9, 1.1)

    def __call__(self, y, *, sample_rate_hz, rng, **_):
        import soxr

        f = float(rng.choice(self.factors))
        return np.asarray(soxr.resample(y, sample_rate_hz * f, sample_rate_hz, quality="HQ"), np.float32)


@dataclass(frozen=True)
class Formant(_Aug):
    """Warp each frame's spectral envelope (cepstral lifter) by ``a``; fine structure and phase kept."""

    factor: tuple = (0.85, 1.15)
    n_fft: int = 1024
    hop: int = 256
    n_ceps: int = 30

    def __call__(self, y, *, sample_rate_hz, rng, **_):
        a = float(rng.uniform(*self.factor))
        if len(y) < self.n_fft:
            return y.copy()
        yt = torch.from_numpy(np.asarray(y, np.float32)).double()
        win = torch.hann_window(self.n_fft, dtype=torch.float64)
        spec = torch.stft(yt, self.n_fft, self.hop, window=win, return_complex=True)  # (bins, frames)
        mag = spec.abs().clamp_min(1e-9)
        logmag = mag.log()
        ceps = torch.fft.irfft(logmag, n=self.n_fft, dim=0)
        ceps[self.n_ceps : self.n_fft - self.n_ceps + 1] = 0.0
        env = torch.fft.rfft(ceps, n=self.n_fft, dim=0).real  # log envelope (bins, frames)
        bins = env.shape[0]
        src = torch.arange(bins, dtype=torch.float64) / a  # new envelope at f = old envelope at f / a
        lo = src.floor().clamp(0, bins - 1).long()
        hi = (lo + 1).clamp(max=bins - 1)
        w = (src - lo).clamp(0, 1)[:, None]
        warped = env[lo] * (1 - w) + env[hi] * w
        warped[src > bins - 1] = env[-1].min()  # beyond the old Nyquist: the floor
        gain = (warped - env).exp()
        out = torch.istft(spec * gain, self.n_fft, self.hop, window=win, length=len(y)).float().numpy()
        return (out * (_rms(y) / _rms(out))).astype(np.float32)


@dataclass(frozen=True)
class Vtlp(_Aug):
    factor: tuple = (0.85, 1.15)

    def __call__(self, y, *, sample_rate_hz, rng, **_):
        import librosa

        from emovox.augment.waveform import _fix_length, _n_fft_for

        a = float(rng.uniform(*self.factor))
        out = librosa.effects.pitch_shift(
            y, sr=sample_rate_hz, n_steps=12 * np.log2(a), n_fft=_n_fft_for(len(y)), res_type="soxr_hq"
        )
        return _fix_length(np.asarray(out, np.float32), len(y))


@dataclass(frozen=True)
class Reverb(_Aug):
    rt60_s: tuple = (0.2, 0.8)
    drr_db: tuple = (0.0, 10.0)

    def __call__(self, y, *, sample_rate_hz, rng, **_):
        from scipy.signal import fftconvolve

        rt60 = float(rng.uniform(*self.rt60_s))
        drr = float(rng.uniform(*self.drr_db))
        n = int(rt60 * sample_rate_hz)
        t = np.arange(n) / sample_rate_hz
        tail = rng.standard_normal(n) * np.exp(-6.9078 * t / rt60)  # -60 dB at rt60
        tail[0] = 0.0
        tail *= 10 ** (-drr / 20) / np.sqrt(np.sum(tail**2))  # tail energy relative to the direct path (1)
        rir = tail
        rir[0] = 1.0
        out = fftconvolve(y.astype(np.float64), rir)[: len(y)]
        return (out * (_rms(y) / _rms(out))).astype(np.float32)


@dataclass(frozen=True)
class Phone(_Aug):
    band_hz: tuple = (300.0, 3400.0)

    def __call__(self, y, *, sample_rate_hz, rng, **_):
        import soxr
        from scipy.signal import butter, sosfilt

        sos = butter(4, self.band_hz, btype="bandpass", fs=sample_rate_hz, output="sos")
        z = sosfilt(sos, y.astype(np.float64))
        z = soxr.resample(z, sample_rate_hz, 8000, quality="HQ")
        peak = np.max(np.abs(z)) + 1e-12
        z = z / peak * 0.9  # telephone level control, then 8-bit mu-law
        mu = 255.0
        q = np.sign(z) * np.log1p(mu * np.abs(z)) / np.log1p(mu)
        q = np.round((q + 1) / 2 * mu) / mu * 2 - 1
        z = np.sign(q) * ((1 + mu) ** np.abs(q) - 1) / mu
        out = soxr.resample(z, 8000, sample_rate_hz, quality="HQ")[: len(y)]
        out = np.pad(out, (0, len(y) - len(out)))
        return (out * (_rms(y) / _rms(out))).astype(np.float32)


@dataclass(frozen=True)
class Codec(_Aug):
    kbps: tuple = (16, 24, 32)

    def __call__(self, y, *, sample_rate_hz, rng, **_):
        import soundfile as sf

        rate = int(rng.choice(self.kbps))
        with tempfile.TemporaryDirectory() as tmp:
            src, mp3, dst = (os.path.join(tmp, n) for n in ("a.wav", "a.mp3", "b.wav"))
            sf.write(src, y, sample_rate_hz, subtype="FLOAT")
            q = ["ffmpeg", "-nostdin", "-loglevel", "error", "-threads", "1", "-y"]
            subprocess.run(q + ["-i", src, "-c:a", "libmp3lame", "-b:a", f"{rate}k", mp3], check=True)
            subprocess.run(q + ["-i", mp3, "-ar", str(sample_rate_hz), "-ac", "1", dst], check=True)
            out, _ = sf.read(dst, dtype="float32")
        # mp3 adds encoder delay (~1105 samples at 16 kHz incl. decoder): align by cross-correlation over 3000 lags
        lag = _best_lag(y, out, 3000)
        out = out[lag : lag + len(y)]
        return np.pad(out, (0, len(y) - len(out))).astype(np.float32)


def _best_lag(y, out, max_lag):
    n = min(len(y), len(out) - max_lag, 16000)
    if n <= 0:
        return 0
    scores = [float(np.dot(y[:n], out[k : k + n])) for k in range(0, max_lag, 1)]
    return int(np.argmax(scores))


TRANSFORMS = {"speed": Speed, "formant": Formant, "vtlp": Vtlp, "reverb": Reverb, "phone": Phone, "codec": Codec}


# ----------------------------------------------------------------------------------------------- features
def encoder4() -> Path:
    """The base encoder's first 4 blocks, saved once (float16, as the base is stored)."""
    from emovox.models.whisper_encoder import load_whisper_encoder, save_whisper_encoder, truncate_encoder

    if not (ENCODER4 / "config.json").exists():
        enc = truncate_encoder(load_whisper_encoder(pooled_data.ENCODER), 4)
        save_whisper_encoder(
            ENCODER4, enc.state_dict(), enc.config, metadata={"truncated_from": str(pooled_data.ENCODER)}
        )
    return ENCODER4


def records():
    from emovox.corpora import load_corpus

    return [r for c in pooled_data.CORPORA for r in load_corpus(c)]


def extract(variant: str, limit: int | None = None) -> np.ndarray:
    from emovox.recipes.whisper import pooled_features

    recs = records()[:limit] if limit else records()
    t0, t_cpu = time.time(), time.process_time()

    def progress(i, n):
        if i % 500 == 0 or i == n:
            print(f"  {variant} {i}/{n} {time.time() - t0:.0f} s", flush=True)

    aug = None if variant == "plain4" else TRANSFORMS[variant]()
    x = pooled_features(recs, encoder4(), cache_dir=None, augment=aug, seed=0, progress=progress)
    plain = pooled_data.load()
    assert list(plain.speaker[: len(recs)]) == [r.speaker_key for r in recs], "row order differs from pooled_data"
    if not limit:
        np.savez(OUT / f"pooled_{variant}.npz", x=x, speaker=plain.speaker)
    print(f"{variant}: {x.shape} wall {time.time() - t0:.0f} s cpu {time.process_time() - t_cpu:.0f} s", flush=True)
    return x


def load_copy(variant: str) -> np.ndarray:
    if variant in OLD:
        return pooled_data.load(variant).x[:, : len(LAYERS)]
    return np.load(OUT / f"pooled_{variant}.npz")["x"][:, : len(LAYERS)]


# ----------------------------------------------------------------------------------------------- evaluation
def evaluate(protocol: str, variant_sets: list[list[str]], tag: str = "") -> list[dict]:
    import heads

    from emovox.evaluation import compute_metrics
    from emovox.recipes.whisper import fit_head

    data = pooled_data.load()
    mask, y, classes, splits, _ = heads.protocol_rows(protocol, data)
    sub = data.subset(mask)
    x = np.ascontiguousarray(sub.x[:, : len(LAYERS)])
    copies = {v: load_copy(v)[mask] for vs in variant_sets for v in vs}
    out = []
    for vs in variant_sets:
        rows = []
        t_cpu = time.process_time()
        for split in splits:
            t0 = time.time()
            tr, te = split.train_idx, split.test_idx
            fit = fit_head(
                x[tr],
                y[tr],
                list(sub.speaker[tr]),
                n_classes=len(classes),
                layers=LAYERS,
                head_options={"Cs": (C,)},
                augmented=[copies[v][tr] for v in vs],
                inner_cv=False,
            )
            pred = fit.logits(x[te]).argmax(1)
            m = compute_metrics(y[te], pred, classes=list(classes))
            per_corpus = {
                c: compute_metrics(y[te][sub.corpus[te] == c], pred[sub.corpus[te] == c], classes=list(classes))["uar"]
                for c in sorted(set(sub.corpus[te]))
            }
            rows.append(
                {
                    "fold": split.name,
                    "uar": float(m["uar"]),
                    "acc": float(m["accuracy"]),
                    "per_corpus": per_corpus,
                    "pred": pred.tolist(),
                    "test_idx": te.tolist(),
                    "n_train": int(len(tr) * (1 + len(vs))),
                    "s": time.time() - t0,
                }
            )
            print(
                f"  {protocol} {'+'.join(vs) or 'baseline'} {split.name}: UAR {m['uar']:.3f} "
                f"acc {m['accuracy']:.3f} {rows[-1]['s']:.0f} s",
                flush=True,
            )
        # per-corpus UAR over the corpus's clips pooled over folds
        pooled = {}
        for c in sorted(set(sub.corpus)):
            idx = np.concatenate([np.array(r["test_idx"]) for r in rows])
            pr = np.concatenate([np.array(r["pred"]) for r in rows])
            cm = sub.corpus[idx] == c
            pooled[c] = float(compute_metrics(y[idx][cm], pr[cm], classes=list(classes))["uar"])
        u = np.array([r["uar"] for r in rows])
        a = np.array([r["acc"] for r in rows])
        for r in rows:
            del r["pred"], r["test_idx"]
        res = {
            "protocol": protocol,
            "copies": vs,
            "layers": list(LAYERS),
            "C": C,
            "uar": float(u.mean()),
            "uar_std": float(u.std(ddof=1)),
            "acc": float(a.mean()),
            "per_corpus_pooled": pooled,
            "folds": rows,
            "cpu_s": time.process_time() - t_cpu,
            "tag": tag,
            "when": time.strftime("%H:%M"),
        }
        with open(RESULTS, "a") as handle:
            handle.write(json.dumps(res) + "\n")
        print(
            f"{protocol} {'+'.join(vs) or 'baseline'}: UAR {res['uar']:.3f} ± {res['uar_std']:.3f} "
            f"acc {res['acc']:.3f} per corpus {json.dumps({k: round(v, 3) for k, v in pooled.items()})}",
            flush=True,
        )
        out.append(res)
    return out


def table() -> None:
    print("| protocol | copies | UAR mean ± std | acc | per corpus (pooled over folds) | per fold | fit CPU s |")
    print("|---|---|---|---|---|---|---|")
    for line in RESULTS.read_text().splitlines():
        r = json.loads(line)
        pc = " ".join(f"{k[:3]} {v:.3f}" for k, v in r["per_corpus_pooled"].items())
        pf = " ".join(f"{f['uar']:.3f}" for f in r["folds"])
        print(
            f"| {r['protocol']} | {'+'.join(r['copies']) or 'none'} | {r['uar']:.3f} ± {r['uar_std']:.3f} | "
            f"{r['acc']:.3f} | {pc} | {pf} | {r['cpu_s']:.0f} |"
        )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sp = ap.add_subparsers(dest="cmd", required=True)
    e = sp.add_parser("extract")
    e.add_argument("variant", choices=(*TRANSFORMS, "plain4"))
    e.add_argument("--limit", type=int, default=None)
    v = sp.add_parser("eval")
    v.add_argument("--protocol", choices=("all7", "loco"), required=True)
    v.add_argument("--variants", required=True)
    v.add_argument("--tag", default="")
    sp.add_parser("table")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    OUT.mkdir(parents=True, exist_ok=True)
    if args.cmd == "extract":
        extract(args.variant, args.limit)
    elif args.cmd == "eval":
        sets = [[c for c in s.split(",") if c and c not in ("-", "none")] for s in args.variants.split(";")]
        evaluate(args.protocol, sets, args.tag)
    else:
        table()
    return 0


if __name__ == "__main__":
    sys.exit(main())
