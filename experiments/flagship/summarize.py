"""Summarise /tmp/emovox-flagship/results.jsonl: mean ± std UAR/accuracy per (tag, corpus, protocol).

.venv/bin/python experiments/flagship/summarize.py
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np

rows = [
    json.loads(line) for line in Path("/tmp/emovox-flagship/results.jsonl").read_text().splitlines() if line.strip()
]
groups = defaultdict(list)
for r in rows:
    kind = "dev" if r["fold"].startswith("dev") else ("random" if r["fold"].startswith("random") else "folds")
    groups[(r["tag"], r["corpus"], kind)].append(r)
print(
    "| tag | corpus | split | n | UAR mean ± std | acc mean ± std | UAR last weights (no EMA) | UAR 2 s centre crop | train s/fold |"
)
print("|---|---|---|---|---|---|---|---|---|")
for (tag, corpus, kind), rs in groups.items():
    u = np.array([r["uar"] for r in rs])
    a = np.array([r["acc"] for r in rs])
    t = np.mean([r["train_s"] for r in rs])
    ur = [r["uar_raw"] for r in rs if "uar_raw" in r]
    uc = [r["uar_crop"] for r in rs if "uar_crop" in r]
    fr = f"{np.mean(ur):.3f}" if ur else "—"
    fc = f"{np.mean(uc):.3f}" if uc else "—"
    print(
        f"| {tag} | {corpus} | {kind} | {len(rs)} | {u.mean():.3f} ± {u.std():.3f} | {a.mean():.3f} ± {a.std():.3f} | {fr} | {fc} | {t:.0f} |"
    )
