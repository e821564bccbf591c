"""Fuzz the audio gate and decoders: ``decode_audio`` / ``load_audio`` / ``audio_duration_s`` on bytes.

Seeds are small real files in every supported container (see ``fuzz/seeds.py``);
libFuzzer mutates them (cut, flip, splice, patch header fields). Contract per
input: an :class:`~emovox.errors.AudioError` (one line, no library exception),
or finite float32 samples of the documented shape; never a hang or a
multi-GB allocation (run with ``-timeout`` and ``-rss_limit_mb``).

    python fuzz/fuzz_audio.py CORPUS_DIR SEEDS_DIR -max_total_time=600 -rss_limit_mb=2048 -timeout=20
"""

from __future__ import annotations

import atheris
import common  # noqa: F401  (sets OMP_NUM_THREADS before numpy loads)

with atheris.instrument_imports(include=["emovox"]):
    import numpy as np

    from emovox.audio import audio_duration_s, decode_audio, load_audio
    from emovox.errors import AudioError

#: Largest decoded length accepted per input byte before calling it an allocation bug.
MAX_SAMPLES_PER_BYTE = 4096


def test_one_input(data: bytes) -> None:
    try:
        y, rate = decode_audio(data)
    except AudioError:
        y = None
    if y is not None:
        assert y.dtype == np.float32 and y.ndim == 2 and y.shape[1] > 0, (y.dtype, y.shape)
        assert 1 <= y.shape[0] <= 64, y.shape
        assert rate > 0, rate
        assert np.isfinite(y).all()
        assert y.size <= MAX_SAMPLES_PER_BYTE * len(data) + (1 << 20), (y.shape, len(data))
    try:
        d = audio_duration_s(data)
        assert d >= 0.0 and d == d, d
    except AudioError:
        pass
    if y is not None and y.shape[1] / rate < 30.0:
        try:
            m = load_audio(data, sample_rate_hz=16000, min_duration_s=0.0)
            assert m.dtype == np.float32 and m.ndim == 1 and np.isfinite(m).all()
        except AudioError:
            pass


if __name__ == "__main__":
    common.start(test_one_input)
