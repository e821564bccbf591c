"""Run the fuzz harnesses at length (or briefly, as CI does) and summarise.

Each harness runs under libFuzzer (atheris) over a working corpus that starts
from its seeds in ``fuzz/seeds/<harness>/`` and grows across runs. A crash
stops libFuzzer; this script records it (the input is saved under
``<workdir>/<harness>/crashes/``) and restarts the harness on the grown
corpus until its time is spent. At most ``--jobs`` harnesses run at once
(the default 2 suits a 2-core machine).

    .venv/bin/python fuzz/run.py                     # every harness, 10 minutes each, 2 at a time
    .venv/bin/python fuzz/run.py --seconds 5 audio   # a short pass of one harness
    .venv/bin/python fuzz/run.py --replay            # run each corpus and crash input once, no fuzzing

The summary (executions, coverage ``cov``/``ft`` as libFuzzer counts them,
corpus size, crashes with their first exception line) is printed and written
as JSON to ``--summary``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
HARNESSES = ("audio", "artifact", "corpus_names", "labels", "stream_protocol")
_STATS = re.compile(r"^#(\d+)\s+(?:INITED|NEW|REDUCE|pulse|DONE|RELOAD)\s+cov: (\d+) ft: (\d+) corp: (\d+)/")
_DONE = re.compile(r"^Done (\d+) runs in (\d+) second")


def _available(name: str) -> bool:
    if name != "stream_protocol":
        return True
    try:
        import importlib.util

        return importlib.util.find_spec("emovox.service.stream_protocol") is not None
    except ImportError:
        return False


def run_harness(name: str, *, seconds: float, workdir: Path, rss_limit_mb: int, timeout_s: int, python: str) -> dict:
    """Fuzz one harness for ``seconds`` (restarting after crashes); returns its figures."""
    base = workdir / name
    corpus, crashes = base / "corpus", base / "crashes"
    corpus.mkdir(parents=True, exist_ok=True)
    crashes.mkdir(parents=True, exist_ok=True)
    log_path = base / "fuzz.log"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    execs, cov, ft, corp, found, restarts = 0, 0, 0, 0, [], 0
    deadline = time.monotonic() + seconds
    with open(log_path, "a", encoding="utf-8") as log:
        while (left := deadline - time.monotonic()) > 1:
            before = set(crashes.iterdir())
            cmd = [
                python,
                str(HERE / f"fuzz_{name}.py"),
                str(corpus),
                str(HERE / "seeds" / name),
                f"-max_total_time={max(1, int(left))}",
                f"-rss_limit_mb={rss_limit_mb}",
                f"-timeout={timeout_s}",
                f"-artifact_prefix={crashes}/",
                "-print_final_stats=1",
            ]
            log.write(f"$ {' '.join(cmd)}\n")
            log.flush()
            proc = subprocess.run(
                cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace", cwd=HERE
            )
            log.write(proc.stdout)
            run_execs, lines = 0, proc.stdout.splitlines()
            for line in lines:
                if m := _STATS.match(line):
                    run_execs = max(run_execs, int(m.group(1)))
                    cov, ft, corp = max(cov, int(m.group(2))), max(ft, int(m.group(3))), int(m.group(4))
                elif (m := _DONE.match(line)) or (m := re.match(r"^stat::number_of_executed_units: (\d+)", line)):
                    run_execs = max(run_execs, int(m.group(1)))
            execs += run_execs
            new = sorted(set(crashes.iterdir()) - before)
            if proc.returncode == 0:
                break
            error = next(
                (
                    line
                    for line in lines
                    if re.match(r"^\w*(Error|Exception|Timeout)\b", line) or "ERROR: libFuzzer" in line
                ),
                f"exit {proc.returncode}",
            )
            found.append({"input": [str(p) for p in new], "error": error.strip()[:300]})
            restarts += 1
            if restarts > 50:
                break
    return {
        "harness": name,
        "seconds": round(seconds),
        "executions": execs,
        "cov": cov,
        "ft": ft,
        "corpus": corp,
        "crashes": found,
        "log": str(log_path),
    }


def replay(name: str, *, workdir: Path, python: str) -> dict:
    """Run every corpus and crash input of a harness once (regression check, no mutation)."""
    inputs = [HERE / "seeds" / name, HERE / "crashes"]
    inputs += [d for d in (workdir / name / "corpus", workdir / name / "crashes") if d.is_dir()]
    files = [
        str(p)
        for d in inputs
        if d.is_dir()
        for p in sorted(d.iterdir())
        if p.is_file() and (d != HERE / "crashes" or p.name.startswith(name + "-"))
    ]
    proc = subprocess.run(
        [python, str(HERE / f"fuzz_{name}.py"), "-runs=0", *files],
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        cwd=HERE,
    )
    return {
        "harness": name,
        "inputs": len(files),
        "ok": proc.returncode == 0,
        "output": proc.stdout[-2000:] if proc.returncode else "",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("harnesses", nargs="*", default=[], help=f"any of {', '.join(HARNESSES)} (default: all)")
    parser.add_argument("--seconds", type=float, default=600.0, help="fuzzing time per harness (default 600)")
    parser.add_argument("--jobs", type=int, default=2, help="harnesses at once (default 2)")
    parser.add_argument("--workdir", default="/tmp/emovox-fuzz", help="corpora, crashes and logs")
    parser.add_argument("--rss-limit-mb", type=int, default=2048, help="memory per input run (libFuzzer)")
    parser.add_argument("--timeout-s", type=int, default=30, help="slowest input allowed (libFuzzer)")
    parser.add_argument("--summary", default=None, help="JSON summary path (default WORKDIR/summary.json)")
    parser.add_argument("--replay", action="store_true", help="run seeds, crash inputs and corpora once")
    args = parser.parse_args(argv)
    names = args.harnesses or [h for h in HARNESSES if _available(h)]
    unknown = sorted(set(names) - set(HARNESSES))
    if unknown:
        parser.error(f"unknown harness(es) {unknown}: expected {', '.join(HARNESSES)}")
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    python = sys.executable
    if args.replay:
        results = [replay(n, workdir=workdir, python=python) for n in names]
        for r in results:
            print(f"{r['harness']:16} {r['inputs']:6d} inputs  {'ok' if r['ok'] else 'FAILED'}\n{r['output']}")
        return 0 if all(r["ok"] for r in results) else 1
    started = time.time()
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        results = list(
            pool.map(
                lambda n: run_harness(
                    n,
                    seconds=args.seconds,
                    workdir=workdir,
                    rss_limit_mb=args.rss_limit_mb,
                    timeout_s=args.timeout_s,
                    python=python,
                ),
                names,
            )
        )
    summary = {
        "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "wall_s": round(time.time() - started),
        "results": results,
    }
    out = Path(args.summary) if args.summary else workdir / "summary.json"
    out.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(f"{'harness':16} {'seconds':>7} {'executions':>11} {'cov':>5} {'ft':>6} {'corpus':>6}  crashes")
    for r in results:
        print(
            f"{r['harness']:16} {r['seconds']:7d} {r['executions']:11d} {r['cov']:5d} {r['ft']:6d} "
            f"{r['corpus']:6d}  {len(r['crashes'])}"
        )
        kinds: dict[str, list[str]] = {}
        for c in r["crashes"]:
            kinds.setdefault(re.sub(r"'.*'", "'...'", c["error"]), []).extend(c["input"])
        for error, inputs in kinds.items():
            print(f"    {len(inputs)} x {error}  e.g. {inputs[0] if inputs else ''}")
    print(f"summary: {out}")
    return 1 if any(r["crashes"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
