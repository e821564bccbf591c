"""eGeMAPSv02 functionals (88) of the trimmed cached waveforms, for late fusion.

Writes /tmp/emovox-flagship/egemaps_<corpus>.npy (n, 88).
.venv/bin/python experiments/flagship/egemaps_cache.py ravdess emodb emovo
"""

from __future__ import annotations

import json
import sys

import numpy as np
import opensmile
from common import CACHE


def main(corpora) -> None:
    smile = opensmile.Smile(
        feature_set=opensmile.FeatureSet.eGeMAPSv02, feature_level=opensmile.FeatureLevel.Functionals
    )
    for c in corpora:
        out = CACHE / f"egemaps_{c}.npy"
        if out.exists():
            continue
        z = np.load(CACHE / f"{c}.npz")
        meta = json.loads(str(z["meta"]))
        X = []
        for i, r in enumerate(meta):
            y = z[f"wave_{i}"]
            a, b = r["trim"]
            X.append(smile.process_signal(y[a:b], 16000).values[0])
        np.save(out, np.array(X, dtype=np.float32))
        print(c, len(X), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
