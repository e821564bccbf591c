"""1 process vs N processes (torchrun, DDP) on the same data, fold and seed: UAR and wall time.

Runs ``emovox train`` one configuration after another (never two at once),
each into its own folder, and prints one table row per run: best validation
UAR (held-out training speakers), test UAR on the fold's speakers, training
time (sum of the epochs' ``time_s``), wall time of the whole command (start-up
and audio decoding included), and the load average beside it (the machine is
shared). Times are also given as a ratio to the first row, measured in the
same run, and the CPU seconds used by all the run's processes (less
sensitive to the load than wall time: on an idle machine with N free cores,
N processes finish in about their CPU time / N). Extra seeds of the 1-process run show the seed-to-seed spread that
"within noise" is judged against.

Example (what docs/distributed.md reports)::

    OMP_NUM_THREADS=1 .venv/bin/python bench/ddp_parity.py --recipe flagship --corpus emodb \\
        --folds 5 --fold 0 --epochs 20 --out /tmp/ddp-bench
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path


def run(name: str, args: list[str], out: Path) -> dict:
    load_before = os.getloadavg()[0]
    cpu_before = _children_cpu_s()
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "emovox.cli.main", "train", *args, "--out", str(out), "--no-progress"],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    wall_s = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"{name} failed:\n{proc.stderr[-2000:]}")
    row = read(name, out, wall_s=wall_s, load=f"{load_before:.1f} -> {os.getloadavg()[0]:.1f}")
    row["cpu_s"] = _children_cpu_s() - cpu_before
    return row


def _children_cpu_s() -> float:
    """User + system CPU seconds of every finished descendant (torchrun's workers included)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def read(name: str, out: Path, *, wall_s: float, load: str) -> dict:
    summary = json.loads((out / "summary.json").read_text())
    log = json.loads((out / "log.json").read_text())
    return {
        "run": name,
        "val_uar": summary["metrics"]["validation"]["val_uar"],
        "best_epoch": summary["metrics"]["best_epoch"],
        "test_uar": (summary["metrics"].get("test") or {}).get("uar"),
        "train_s": sum(r["time_s"] for r in log),
        "wall_s": wall_s,
        "cpu_s": float("nan"),
        "load": load,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", default="flagship")
    parser.add_argument("--corpus", default="emodb")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--fold", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--extra-seeds", default="1", help="comma-separated seeds of extra 1-process runs")
    parser.add_argument("--nproc", type=int, default=2)
    parser.add_argument(
        "--no-two-threads", action="store_true", help="skip the 1-process 2-thread run (slow when the cores are busy)"
    )
    parser.add_argument("--start", type=int, default=0, help="first run of the plan (re-uses earlier run folders)")
    parser.add_argument("--out", required=True, help="folder for the runs (must not hold them yet)")
    args = parser.parse_args()
    root = Path(args.out)
    common = [
        "--recipe",
        args.recipe,
        "--corpus",
        args.corpus,
        "--folds",
        str(args.folds),
        "--fold",
        str(args.fold),
        "--epochs",
        str(args.epochs),
    ]
    plan = [(f"1 process, 1 thread, seed {args.seed}", ["--threads", "1", "--seed", str(args.seed)])]
    if not args.no_two_threads:
        plan.append((f"1 process, 2 threads, seed {args.seed}", ["--threads", "2", "--seed", str(args.seed)]))
    seeds = [args.seed] + [int(s) for s in args.extra_seeds.split(",") if s.strip()]
    for seed in seeds:
        plan.append(
            (
                f"{args.nproc} processes x 1 thread, seed {seed}",
                ["--threads", str(args.nproc), "--nproc", str(args.nproc), "--seed", str(seed)],
            )
        )
        if seed != args.seed:
            plan.append((f"1 process, 1 thread, seed {seed}", ["--threads", "1", "--seed", str(seed)]))
    rows = []
    for i, (name, extra) in enumerate(plan):
        if i < args.start:  # finished earlier: read its folder (wall time unknown)
            rows.append(read(name, root / f"run{i}", wall_s=float("nan"), load="-"))
            continue
        rows.append(run(name, common + extra, root / f"run{i}"))
        print(f"done: {name}", file=sys.stderr, flush=True)
    ref = rows[0]
    print(
        f"# {args.recipe} on {args.corpus}, fold {args.fold}/{args.folds}, {args.epochs} epochs, {os.cpu_count()} cores"
    )
    print(
        "| run | val UAR (best epoch) | test UAR | training s (x ref) | wall s (x ref) | CPU s, all processes "
        "(x ref) | load avg |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        test = "-" if r["test_uar"] is None else f"{r['test_uar']:.3f}"
        print(
            f"| {r['run']} | {r['val_uar']:.3f} ({r['best_epoch']}) | {test} | {r['train_s']:.0f} "
            f"({r['train_s'] / ref['train_s']:.2f}) | {r['wall_s']:.0f} ({r['wall_s'] / ref['wall_s']:.2f}) "
            f"| {r['cpu_s']:.0f} ({r['cpu_s'] / ref['cpu_s']:.2f}) | {r['load']} |"
        )


if __name__ == "__main__":
    main()
