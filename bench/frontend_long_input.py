"""Front-end cost per audio second for short and long inputs: frame blocks vs one pass.

:class:`emovox.features.MfccFrontend` (FFT path) transforms long inputs
``FRAME_BLOCK`` frames at a time, so the windowed frames and their spectrum
stay in the CPU caches. This prints, for noise clips of 3.3 s, 30 s and 300 s
(one torch thread, best of ``--repeats`` in each of two alternating rounds), the time per call and per audio
second with the blocks (the product) and in one pass (``FRAME_BLOCK`` set
huge, the reference, same run) and the ratio.

    OMP_NUM_THREADS=1 .venv/bin/python bench/frontend_long_input.py
"""

from __future__ import annotations

import argparse
import time


def best_ms(fn, calls: int, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter() - t0) / calls)
    return best * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    import torch

    import emovox.features.frontend as frontend

    torch.set_num_threads(1)
    fe = frontend.MfccFrontend(16000)
    blocked_size = frontend.FRAME_BLOCK
    print(
        f"MfccFrontend(16000), n_fft 512, hop 160, 64 mels, 40 MFCC; FRAME_BLOCK={blocked_size}; "
        f"torch {torch.__version__}, 1 thread; best of {args.repeats}"
    )
    print(f"{'clip':>8} {'blocks ms':>10} {'one pass ms':>12} {'ms/audio s (blocks)':>20} {'one pass / blocks':>18}")
    generator = torch.Generator().manual_seed(0)
    with torch.inference_mode():
        for seconds in (3.3, 30.0, 300.0):
            y = 0.1 * torch.randn(1, int(16000 * seconds), generator=generator)
            calls = max(1, int(30 / seconds))
            timings = {"blocks": float("inf"), "one pass": float("inf")}
            for _ in range(2):  # alternate, best of both rounds: shared-machine noise hits both alike
                for name, block in (("blocks", blocked_size), ("one pass", 10**9)):
                    frontend.FRAME_BLOCK = block
                    fe(y)  # warm-up
                    timings[name] = min(timings[name], best_ms(lambda: fe(y), calls, args.repeats))  # noqa: B023 - called at once, inside the loop
            frontend.FRAME_BLOCK = blocked_size
            print(
                f"{seconds:7.1f}s {timings['blocks']:10.2f} {timings['one pass']:12.2f} "
                f"{timings['blocks'] / seconds:20.3f} {timings['one pass'] / timings['blocks']:17.2f}x"
            )


if __name__ == "__main__":
    main()
