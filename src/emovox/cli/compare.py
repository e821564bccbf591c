"""``emovox compare``: is run B really better than run A on the same clips?

Examples::

    emovox compare runs/emodb-svm runs/emodb-mlp
    emovox compare runs/a/result.json runs/b/result.json --metric accuracy --json
    emovox compare runs/a runs/b --intersect --plot runs/a-vs-b.png

Each RUN is a folder written by ``emovox evaluate --out`` (holding
``result.json``) or that JSON file. The clips both runs tested are matched by
path; the difference B - A gets a paired speaker-level bootstrap interval and a
p-value from a speaker-level paired permutation test (two-sided).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from emovox.errors import ConfigError
from emovox.evaluation.result_io import interval_text


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "compare",
        help="paired comparison of two evaluation runs on the same clips (interval, p-value)",
        description="Compare two runs of emovox evaluate on the clips both tested: each run's UAR\n"
        "(or accuracy) with a 95 % speaker-bootstrap interval, the paired difference B - A\n"
        "with its interval, and a p-value from a speaker-level permutation test.",
        epilog="examples:\n" + __doc__.split("Examples::\n\n")[1].split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run_a", metavar="RUN_A", help="run folder (with result.json) or result JSON file")
    parser.add_argument("run_b", metavar="RUN_B", help="the run compared with RUN_A (difference = B - A)")
    parser.add_argument("--metric", default="uar", metavar="NAME", help="uar (default) or accuracy")
    parser.add_argument(
        "--n-boot", type=int, default=2000, metavar="N", help="bootstrap resamples and permutations (default 2000)"
    )
    parser.add_argument("--level", type=float, default=0.95, metavar="L", help="interval coverage (default 0.95)")
    parser.add_argument("--seed", type=int, default=0, help="seed of resampling and permutations (default 0)")
    parser.add_argument(
        "--intersect", action="store_true", help="when the runs tested different clips, compare on the shared ones"
    )
    parser.add_argument("--json", action="store_true", help="print the answer as JSON")
    parser.add_argument("--plot", metavar="PATH", help="write a forest plot (PNG) of both runs' intervals")
    parser.set_defaults(func=handler)


def load_run(run: str | Path) -> tuple[dict, Path]:
    """The result dict of a run folder or result JSON file, and the file it came from."""
    path = Path(run)
    if path.is_dir():
        path = path / "result.json"
        if not path.is_file():
            raise ConfigError(
                f"no result.json in {str(run)!r}: give a folder written by emovox evaluate --out or its result.json"
            )
    elif not path.is_file():
        raise ConfigError(
            f"run {str(run)!r} not found: give a folder written by emovox evaluate --out or its result.json"
        )
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        reason = getattr(error, "strerror", None) or type(error).__name__
        raise ConfigError(
            f"{str(path)!r} is not a readable JSON result ({reason}): give the result.json written by emovox evaluate"
        ) from None
    if not isinstance(result, dict) or "predictions" not in result:
        raise ConfigError(
            f"{str(path)!r} is not an evaluation result (no 'predictions'): give the result.json "
            "written by emovox evaluate"
        )
    return result, path


def _label(result: dict, path: Path) -> str:
    config = result.get("config") or {}
    name = path.parent.name if path.name == "result.json" else path.stem
    what = config.get("model")
    if what and config.get("tune"):
        what += " tuned"
    return f"{name} ({what}, {result.get('protocol', '?')})" if what else name


def _text(answer: dict) -> str:
    from emovox.evaluation.uncertainty import FEW_SPEAKERS

    name = {"uar": "UAR", "accuracy": "accuracy"}.get(answer["metric"], answer["metric"])
    diff = answer["difference"]
    level = f"{100 * diff['level']:g} %"
    lines = [
        f"A  {name} {answer['a']['estimate']:.3f} {interval_text(answer['a'])}  {answer['run_a']}",
        f"B  {name} {answer['b']['estimate']:.3f} {interval_text(answer['b'])}  {answer['run_b']}",
        f"B - A  {diff['estimate']:+.3f} {interval_text(diff)} {level} CI (paired speaker bootstrap, {diff['n_boot']} "
        f"resamples); p = {diff['p_value']:.4g} (two-sided, {'exact ' if diff['exact'] else ''}speaker-level "
        f"permutation test, {diff['n_permutations']} permutations)",
        f"{answer['n_clips']} clips, {answer['n_speakers']} speakers; {level} CI, speaker bootstrap",
    ]
    if answer["n_speakers"] < FEW_SPEAKERS:
        lines.append(f"only {answer['n_speakers']} speakers: intervals and p-value are rough")
    if answer["matched_by"] == "position":
        lines.append("clips matched by position: neither run records clip paths")
    if answer["only_a"] or answer["only_b"]:
        lines.append(
            f"--intersect: compared on the {answer['n_clips']} shared clips; left out "
            f"{answer['only_a']} only in A, {answer['only_b']} only in B"
        )
    return "\n".join(lines)


def handler(args: argparse.Namespace) -> int:
    from emovox.evaluation.report import to_json
    from emovox.evaluation.uncertainty import compare_results

    if args.n_boot < 1:
        raise ConfigError(f"--n-boot must be at least 1, got {args.n_boot}")
    if not (0.0 < args.level < 1.0) or math.isnan(args.level):
        raise ConfigError(f"--level must be between 0 and 1 (e.g. 0.95), got {args.level}")
    result_a, path_a = load_run(args.run_a)
    result_b, path_b = load_run(args.run_b)
    answer = compare_results(
        result_a,
        result_b,
        metric=args.metric,
        n_boot=args.n_boot,
        level=args.level,
        seed=args.seed,
        intersect=args.intersect,
    )
    answer = {"run_a": str(path_a), "run_b": str(path_b), **answer}
    if args.plot:
        from emovox.evaluation.plots import plot_metric_intervals

        diff = answer["difference"]
        rows = [
            (f"A: {_label(result_a, path_a)}", answer["a"]["estimate"], answer["a"]["low"], answer["a"]["high"]),
            (f"B: {_label(result_b, path_b)}", answer["b"]["estimate"], answer["b"]["low"], answer["b"]["high"]),
        ]
        title = f"B - A = {diff['estimate']:+.3f} {interval_text(diff)}, p = {diff['p_value']:.3g} ({answer['n_clips']} clips)"
        answer["plot"] = str(plot_metric_intervals(rows, args.plot, metric=args.metric, title=title, level=args.level))
    if args.json:
        print(to_json(answer), end="")
    else:
        print(_text(answer))
        if args.plot:
            print(f"plot: {answer['plot']}")
    return 0
