"""Feature-extraction throughput: per-file librosa pipeline vs the batched front end.

Measures, in one run on the same files:

(a) the seed systems' per-file librosa pipeline: ``librosa.load`` each file at
    16 kHz, then MFCC (40) + ZCR + RMS + chroma + spectral contrast with
    librosa's defaults, averaged over frames (what the seed scripts did), one
    core; the ``librosa.load`` part and the feature part are timed apart;
(b) the batched torch front end (:class:`emovox.features.MfccFrontend`:
    log-mel + DCT), one clip per call by default (``--batch-size``: length-sorted,
    zero-padded batches), one torch thread, for both STFT implementations
    (conv1d DFT basis, the FFT path); decoding
    (``soundfile`` + downmix + soxr resampling where needed) timed apart;
(c) the product path :class:`emovox.features.batched.FrontendPool`
    (``stft="fft"``): files in, features out, in the calling process (the
    front end on the calling thread, decoding read ahead on a second thread:
    up to two cores) and with 2 worker processes that each decode and
    transform tasks of several batches (two cores). The pool is started and warmed up once, before the
    timed segments (its start-up, an interpreter importing torch per worker,
    is printed apart); (c') the same over all files in one call, after the
    interleaved part (what a batch job sees; not interleaved, so compare it
    with (a) only on a quiet machine).

and prints clips/second and the ratios, apples to apples:

(i)  decoding included on both sides: (a) load + features vs (b) decode + front
     end (one core each), and vs (c) in process and with 2 workers (the
     whole 2-core machine against the seed pipeline, which uses one core);
(ii) decoding excluded on both sides: (a) features on the in-memory arrays vs
     (b) the front end on in-memory batches (one core each).

The pipelines run interleaved, segment by segment (``--segment`` batches), so
that load from other users of a shared machine hits them alike; the load
average is printed at start and end.

Usage::

    OMP_NUM_THREADS=1 .venv/bin/python bench/feature_throughput.py            # all 1440 RAVDESS clips
    .venv/bin/python bench/feature_throughput.py --limit 200 --threads 2
"""

from __future__ import annotations

import argparse
import glob
import os
import platform
import time
import warnings
from pathlib import Path

import numpy as np

CORPORA = Path(os.environ.get("EMOVOX_CORPORA", Path(__file__).resolve().parents[1] / ".." / "shared" / "corpora"))
DEFAULT_DIR = CORPORA / "ravdess" / "Audio_Speech_Actors_01-24"


def find_files(root: Path, limit: int | None) -> list[str]:
    files = sorted(f for ext in ("flac", "wav") for f in glob.glob(str(root / "**" / f"*.{ext}"), recursive=True))
    if not files:
        raise SystemExit(f"no .flac/.wav files under {root}; pass --corpus-dir")
    return files[:limit] if limit else files


def librosa_pipeline(path: str, sr: int) -> np.ndarray:
    """One file the way the seed systems did it (librosa defaults, means over frames)."""
    import librosa

    y, sr = librosa.load(path, sr=sr)
    return librosa_features(y, sr)


def librosa_features(y: np.ndarray, sr: int) -> np.ndarray:
    """The seed systems' features of one in-memory clip."""
    import librosa

    mfcc = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=40)
    zcr = librosa.feature.zero_crossing_rate(y)
    rms = librosa.feature.rms(y=y)
    chroma = librosa.feature.chroma_stft(y=y, sr=sr)
    contrast = librosa.feature.spectral_contrast(y=y, sr=sr)
    return np.hstack([m.mean(axis=1) for m in (mfcc, zcr, rms, chroma, contrast)])


def decode(path: str, sr: int) -> np.ndarray:
    import soundfile as sf
    import soxr

    y, file_sr = sf.read(path, dtype="float32", always_2d=True)
    y = y.mean(axis=1)
    if file_sr != sr:
        y = soxr.resample(y, file_sr, sr, quality="HQ").astype(np.float32)
    return y


def frontend_batch(frontend, clips: list[np.ndarray]) -> None:
    """MFCC of one batch of clips, zero-padded to the longest (as the product's batch helpers do)."""
    import torch

    from emovox.features.batched import pad_batch

    with torch.inference_mode():
        frontend(torch.from_numpy(pad_batch(clips)))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--corpus-dir", type=Path, default=DEFAULT_DIR)
    p.add_argument("--limit", type=int, default=None, help="use only the first N files (sorted by name)")
    p.add_argument("--batch-size", type=int, default=1, help="clips per front-end batch (1-2 fit the CPU caches best)")
    p.add_argument("--segment", type=int, default=40, help="batches per interleaving segment")
    p.add_argument("--threads", type=int, default=1, help="torch threads (librosa runs single-threaded)")
    p.add_argument("--sample-rate-hz", type=int, default=16000)
    p.add_argument("--n-fft", type=int, default=512)
    p.add_argument("--hop-length", type=int, default=160)
    p.add_argument("--n-mels", type=int, default=64)
    p.add_argument("--n-mfcc", type=int, default=40)
    args = p.parse_args(argv)

    import librosa
    import soundfile as sf
    import torch

    from emovox.features.frontend import MfccFrontend

    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore", UserWarning)
    sr = args.sample_rate_hz
    files = find_files(args.corpus_dir, args.limit)
    # Length-sorted batches keep zero padding small; every pipeline sees the same batches.
    files.sort(key=lambda f: sf.info(f).frames / sf.info(f).samplerate)
    batches = [files[i : i + args.batch_size] for i in range(0, len(files), args.batch_size)]
    print(f"files: {len(files)} from {args.corpus_dir.resolve()}")
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.1f} at start; torch {torch.__version__} threads={args.threads}; librosa {librosa.__version__}"
    )
    frontends = {
        stft: MfccFrontend(
            sr, n_mfcc=args.n_mfcc, n_fft=args.n_fft, hop_length=args.hop_length, n_mels=args.n_mels, stft=stft
        )
        for stft in ("fft", "conv")
    }

    # Warm-up (numba JIT in librosa, torch kernels), not timed.
    librosa_pipeline(files[0], sr)
    warm = [decode(f, sr) for f in batches[0]]
    for fe in frontends.values():
        frontend_batch(fe, warm)

    from emovox.features.batched import FrontendPool

    fast = frontends["fft"]
    t0 = time.perf_counter()
    pools = {workers: FrontendPool(fast, batch_size=args.batch_size, workers=workers) for workers in (1, 2)}
    for pool in pools.values():
        pool.warm_up()
        list(pool.features(batches[0]))
    startup_s = time.perf_counter() - t0

    # Interleave the pipelines segment by segment, so that load from other
    # users of a shared machine hits all of them alike. Inside a segment each
    # pipeline runs alone over all its batches: interleaving batch by batch
    # would make every pipeline start each batch with caches and allocator
    # pools cold from the other one (measured: the front end then runs 2x
    # slower than on its own, which no real feature extraction run sees).
    t_load = t_feat = t_decode = 0.0
    t_api = {1: 0.0, 2: 0.0}
    t_front = dict.fromkeys(frontends, 0.0)
    audio_s = 0.0
    for k in range(0, len(batches), args.segment):
        segment = batches[k : k + args.segment]
        for batch in segment:
            t0 = time.perf_counter()
            ys = [librosa.load(f, sr=sr)[0] for f in batch]
            t1 = time.perf_counter()
            for y in ys:
                librosa_features(y, sr)
            t_load += t1 - t0
            t_feat += time.perf_counter() - t1
        t0 = time.perf_counter()
        decoded = [[decode(f, sr) for f in batch] for batch in segment]
        t_decode += time.perf_counter() - t0
        audio_s += sum(len(c) for clips in decoded for c in clips) / sr
        for stft, fe in frontends.items():
            t0 = time.perf_counter()
            for clips in decoded:
                frontend_batch(fe, clips)
            t_front[stft] += time.perf_counter() - t0
        # (c) the product path over the same segment, 1 and 2 workers.
        segment_files = [f for batch in segment for f in batch]
        for workers, pool in pools.items():
            t0 = time.perf_counter()
            for _ in pool.features(segment_files):
                pass
            t_api[workers] += time.perf_counter() - t0
    # (c') the product path as a batch job uses it: the whole file list in one call, not interleaved.
    t_whole = {}
    for workers, pool in pools.items():
        t0 = time.perf_counter()
        for _ in pool.features(files):
            pass
        t_whole[workers] = time.perf_counter() - t0
    for pool in pools.values():
        pool.close()

    n = len(files)
    t_a = t_load + t_feat
    rate_a, rate_af = n / t_a, n / t_feat
    print(
        f"audio: {audio_s:.0f} s in {n} clips (mean {audio_s / n:.2f} s); load average "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} at end"
    )
    print(
        f"front end: MfccFrontend n_fft={args.n_fft} hop={args.hop_length} n_mels={args.n_mels} "
        f"n_mfcc={args.n_mfcc} batch={args.batch_size}; segment {args.segment} batches"
    )
    print()
    w = 58
    print(f"{'pipeline':<{w}} {'seconds':>8} {'clips/s':>9} {'x (a)':>7}")
    print("(i) decoding included on both sides")
    print(f"{'  (a) librosa per file: load + features, 1 core':<{w}} {t_a:8.2f} {rate_a:9.1f} {1.0:7.1f}")
    for stft, t in t_front.items():
        secs = t + t_decode
        print(
            f"{f'  (b) decode + front end stft={stft}, 1 core':<{w}} {secs:8.2f} {n / secs:9.1f} {(n / secs) / rate_a:7.1f}"
        )
    for workers, t in t_api.items():
        label = (
            f"  (c) FrontendPool, {workers} worker processes, 2 cores"
            if workers > 1
            else "  (c) FrontendPool, in process + decoding thread, 2 cores"
        )
        print(f"{label:<{w}} {t:8.2f} {n / t:9.1f} {(n / t) / rate_a:7.1f}")
    print(f"      (c) pool start-up (not in the figures above): {startup_s:.1f} s")
    for workers, t in t_whole.items():
        label = (
            f"  (c') all files in one call, {'2 worker processes' if workers > 1 else 'in process'} (not interleaved)"
        )
        print(f"{label:<{w}} {t:8.2f} {n / t:9.1f} {(n / t) / rate_a:7.1f}")
    print("(ii) decoding excluded on both sides (clips in memory)")
    print(f"{'  (a) librosa features on in-memory arrays, 1 core':<{w}} {t_feat:8.2f} {rate_af:9.1f} {1.0:7.1f}")
    for stft, t in t_front.items():
        print(
            f"{f'  (b) front end stft={stft} on in-memory batches, 1 core':<{w}} {t:8.2f} {n / t:9.1f} {(n / t) / rate_af:7.1f}"
        )
    print("decoding alone")
    print(f"{'  librosa.load (part of (a))':<{w}} {t_load:8.2f} {n / t_load:9.1f}")
    print(f"{'  soundfile decode (part of (b))':<{w}} {t_decode:8.2f} {n / t_decode:9.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
