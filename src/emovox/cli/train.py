"""``emovox train``: train a neural model from a recipe and save an artifact.

Examples::

    emovox train --recipe tiny --corpus ravdess --out runs/tiny
    emovox train --recipe s3 --corpus ravdess --corpus ravdess-song --folds 6 --fold 0 --out runs/s3-f0
    emovox train --config train.json            # same keys as the long options
    emovox train --config train.json --resume   # continue after a crash / kill -9
    emovox train --recipe default --corpus csv:mine.csv --out runs/mine   # the bundled encoder, your labels
    emovox train --recipe default --corpus emodb --copies 2 --out runs/emodb
    emovox train --recipe whisper-linear --backbone ~/whisper-base --corpus ravdess --out runs/wl
    emovox train --recipe tiny --corpus emodb --out runs/t2 --nproc 2      # 2 processes (torchrun, DDP)
    torchrun --standalone --nproc_per_node=2 -m emovox.cli.main train --recipe tiny --corpus emodb --out runs/t2
    emovox train --recipe shipped-cnn --corpus ravdess --corpus emodb --corpus emovo --corpus turev --out build/cnn

``--config`` takes a JSON object whose keys are the long option names
(``recipe``, ``corpus`` (string or list), ``corpora_root``, ``arch``,
``arch_params`` (object), ``scheme``, ``epochs``, ``batch_size``, ``lr``,
``folds``, ``fold``, ``out``, ``seed``, ``threads``, ``clip_s``, ``limit``,
``settings`` (an object of a recipe's settings, as ``--set``)) plus ``train`` (an object of :class:`~emovox.training.config.TrainConfig`
options). Options given on the command line win over the file.

``--nproc N`` (N > 1) starts ``torchrun --standalone --nproc_per_node=N`` on
this same command (see ``docs/distributed.md``); under torchrun only rank 0
prints and writes.

Closed-form recipes (``default``, ``whisper-linear``: a head fitted in one go
on a frozen encoder, :attr:`emovox.training.recipes.Recipe.fit`) take their
own settings (``--copies``, ``--folds``, ``--backbone``, ``--seed``,
``--threads``) and no epoch options; ``default`` writes ``OUT/model``,
``OUT/report.md`` and ``OUT/summary.json`` (``docs/your_own_data.md``).
The shipped models are built by such recipes too, ``shipped-default`` and
``shipped-cnn`` (``scripts/build_models.py`` runs them and installs the
result); ``--set KEY=VALUE`` sets any of a recipe's settings.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from emovox.errors import ConfigError

#: Keys a --config file may hold (besides "train").
CONFIG_KEYS = (
    "recipe",
    "corpus",
    "corpora_root",
    "arch",
    "arch_params",
    "scheme",
    "epochs",
    "batch_size",
    "lr",
    "folds",
    "fold",
    "out",
    "seed",
    "threads",
    "clip_s",
    "limit",
    "progress",
    "backbone",
    "copies",
    "nproc",
    "settings",
)
#: Options of the engine's gradient training; a closed-form recipe refuses those it does not declare as settings.
ENGINE_OPTIONS = ("arch", "arch_params", "epochs", "batch_size", "lr", "clip_s", "folds", "fold")
#: Options that only some closed-form recipes take (refused for the others, naming those that do).
RECIPE_OPTIONS = ("backbone", "copies")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a model from a recipe; writes an artifact, logs and curves",
        description="Train a model (recipe = input pipeline + architecture + training config) "
        "and save a model artifact, per-epoch logs and curves. Validation uses training "
        "speakers only; --folds/--fold hold out test speakers. Closed-form recipes fit a head "
        "on a frozen encoder instead: --recipe default fits the bundled model's head to your "
        "labelled clips (--corpus csv:mine.csv) with held-out-speaker figures and calibration.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", metavar="FILE.json", help="JSON file of options (flags win over it)")
    parser.add_argument("--recipe", help="recipe name (default: tiny); see --list-recipes")
    parser.add_argument("--list-recipes", action="store_true", help="print recipe names and exit")
    parser.add_argument(
        "--corpus",
        action="append",
        metavar="NAME",
        help="corpus to train on (repeatable): NAME, or LAYOUT:PATH as in emovox evaluate "
        "(ravdess:/data/RAVDESS, csv:/data/mine.csv, folder:/data/mine); NAME=DIR also works",
    )
    parser.add_argument("--corpora-root", metavar="DIR", help="folder holding the corpora ($EMOVOX_CORPORA)")
    parser.add_argument("--scheme", help="label scheme (default: the recipe's)")
    parser.add_argument("--arch", help="override the recipe's architecture")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--lr", type=float)
    parser.add_argument("--clip-s", type=float, help="input length in seconds")
    parser.add_argument(
        "--folds",
        type=int,
        help="speaker k-fold: number of folds (default recipe: the held-out "
        "folds of its figures; default leave-one-speaker-out up to 12 speakers, else 5)",
    )
    parser.add_argument("--fold", type=int, help="speaker k-fold: which fold to hold out (0-based)")
    parser.add_argument("--limit", type=int, metavar="N", help="use at most N clips (seeded pick; smoke tests)")
    parser.add_argument(
        "--backbone",
        metavar="DIR",
        help="whisper-linear, shipped-default: Whisper encoder folder from scripts/import_whisper_ct2.py; "
        "hf-linear: a Hugging Face model folder (or a name already in the local Hugging Face cache)",
    )
    parser.add_argument(
        "--copies",
        type=int,
        metavar="N",
        help="default: N degraded copies of each clip in training (telephone, noise, rooms; default 0)",
    )
    parser.add_argument(
        "--set",
        dest="settings",
        action="append",
        metavar="KEY=VALUE",
        help="a setting of a recipe with settings (repeatable; VALUE read as JSON, else text), "
        "e.g. --recipe shipped-cnn --set parallel=1",
    )
    parser.add_argument("--out", metavar="DIR", help="output folder (artifact in DIR/model)")
    parser.add_argument("--resume", action="store_true", help="continue the interrupted run in --out")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--threads", type=int, help="torch threads (default 2); with --nproc, shared by the processes")
    parser.add_argument(
        "--nproc",
        type=int,
        metavar="N",
        help="train on N processes on this machine (starts torchrun; DistributedDataParallel, "
        "gloo); --batch-size stays the global batch and must be a multiple of N",
    )
    parser.add_argument("--no-progress", dest="progress", action="store_false", default=None, help="no progress bars")
    parser.set_defaults(func=handler)
    global _PARSER
    _PARSER = parser


_PARSER: argparse.ArgumentParser | None = None


def _options(args: argparse.Namespace) -> tuple[dict, dict]:
    options: dict = {}
    train_overrides: dict = {}
    if args.config:
        try:
            data = json.loads(Path(args.config).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file {args.config!r} does not exist") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ConfigError(f"config file {args.config!r} is not valid JSON ({error})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"config file {args.config!r} must hold a JSON object")
        unknown = sorted(set(data) - set(CONFIG_KEYS) - {"train"})
        if unknown:
            raise ConfigError(
                f"config file {args.config!r} has unknown keys {unknown}: "
                f"expected some of {sorted(CONFIG_KEYS + ('train',))}"
            )
        train_overrides = dict(data.pop("train", None) or {})
        options.update(data)
    for key in CONFIG_KEYS:
        value = getattr(args, key, None)
        if value is not None:
            options[key] = value
    if isinstance(options.get("corpus"), str):
        options["corpus"] = [options["corpus"]]
    return options, train_overrides


def _load_records(corpora: list[str], *, corpora_root: str | None) -> list:
    """Records of every ``--corpus`` entry: ``NAME``, ``LAYOUT:PATH`` (as ``emovox evaluate``) or ``NAME=DIR``."""
    from emovox.evaluation.experiment import load_corpus_entry

    records = []
    for item in corpora:
        name, sep, folder = item.partition("=")
        records.extend(load_corpus_entry(f"{name}:{folder}" if sep else item, corpora_root))
    return records


def _limit(records: list, n: int, seed: int) -> list:
    import numpy as np

    if n <= 0:
        raise ConfigError(f"--limit {n} must be positive")
    if n >= len(records):
        return records
    keep = np.sort(np.random.default_rng(seed).choice(len(records), size=n, replace=False))
    return [records[i] for i in keep]


def handler(args: argparse.Namespace) -> int:
    from emovox.training.recipes import get_recipe, recipe_names

    if args.list_recipes:
        for name in recipe_names():
            print(f"{name}\t{get_recipe(name).description}")
        return 0
    options, train_overrides = _options(args)
    if not options.get("out"):
        raise ConfigError("no output folder: pass --out DIR (or 'out' in --config)")
    if not options.get("corpus"):
        raise ConfigError("no training data: pass --corpus NAME (repeatable) or 'corpus' in --config")

    nproc = _nproc(options.get("nproc"))
    recipe = get_recipe(options.get("recipe", "tiny"))
    for key in RECIPE_OPTIONS:
        if options.get(key) is not None and key not in recipe.settings:
            owners = [name for name in recipe_names() if key in get_recipe(name).settings]
            raise ConfigError(f"--{key} is only used by --recipe {' or '.join(owners) or '(none)'}")
    if options.get("settings") and not recipe.closed_form:
        raise ConfigError(
            f"--set is for recipes with settings (e.g. shipped-cnn); {recipe.name!r} is trained by the engine: "
            "use its options (--epochs, --lr, ...)"
        )
    if recipe.closed_form:
        return _train_closed_form(recipe, options, train_overrides, args, nproc=nproc)
    for key in ("epochs", "batch_size", "lr", "seed", "threads", "progress"):
        if key in options:
            train_overrides[key] = options[key]
    train = recipe.train.replace(**train_overrides) if train_overrides else recipe.train
    changes: dict = {"train": train}
    if "arch" in options:
        changes["arch"] = options["arch"]
        changes["arch_params"] = {}
    if "arch_params" in options:
        if not isinstance(options["arch_params"], dict):
            raise ConfigError("arch_params must be a JSON object of architecture hyper-parameters")
        changes["arch_params"] = dict(options["arch_params"])
    if "clip_s" in options:
        changes["clip_s"] = float(options["clip_s"])
    recipe = recipe.with_changes(**changes)

    folds = options.get("folds")
    fold = options.get("fold", 0 if folds else None)
    if fold is not None and not folds:
        raise ConfigError("--fold needs --folds K (the number of speaker folds)")

    records = _load_records(list(options["corpus"]), corpora_root=options.get("corpora_root"))
    if options.get("limit") is not None:
        records = _limit(records, int(options["limit"]), train.seed)

    if nproc > 1 and "WORLD_SIZE" not in os.environ:
        return _launch_torchrun(args, nproc=nproc, batch_size=train.batch_size, out=options["out"])

    from emovox.training.run import run_recipe

    summary = run_recipe(
        recipe,
        records,
        out_dir=options["out"],
        scheme=options.get("scheme"),
        folds=folds,
        fold=fold or 0,
        resume=args.resume,
    )
    if summary.get("writer") is False:  # another torchrun process: rank 0 reports
        return 0
    val = summary["metrics"]["validation"]
    line = (
        f"trained {summary['recipe']} ({summary['arch']}) on {summary['n_train']} clips; best epoch "
        f"{summary['metrics']['best_epoch']}: val UAR {val['val_uar']:.3f}, val acc {val['val_accuracy']:.3f}"
    )
    test = summary["metrics"].get("test")
    if test:
        line += f"; test UAR {test['uar']:.3f}, test acc {test['accuracy']:.3f}"
    print(line)
    print(f"artifact: {summary['artifact']}")
    sys.stdout.flush()
    return 0


def _parse_settings(items) -> dict:
    """``--set KEY=VALUE`` items (or a ``settings`` object in --config) as a dict; VALUE as JSON, else text."""
    if isinstance(items, dict):
        return dict(items)
    out: dict = {}
    for item in items:
        key, sep, value = str(item).partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r} must be KEY=VALUE (e.g. --set parallel=1)")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


def _nproc(value) -> int:
    """``--nproc`` as an int (1 when absent); under torchrun it must match ``WORLD_SIZE``."""
    if value is None:
        return 1
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"--nproc {value!r} must be a positive integer (processes on this machine)")
    world = os.environ.get("WORLD_SIZE")
    if world is not None and int(world) != value:
        raise ConfigError(f"--nproc {value} but torchrun started {world} processes: drop --nproc under torchrun")
    return value


def _launch_torchrun(args: argparse.Namespace, *, nproc: int, batch_size: int, out: str) -> int:
    """Run this same command on ``nproc`` processes via ``torch.distributed.run``; its exit code."""
    from emovox.training.distributed import DistContext, per_rank_batch_size
    from emovox.training.engine import CHECKPOINT_NAME

    # Checks a worker would fail on, made here so they stay one line (not torchrun's failure report).
    per_rank_batch_size(batch_size, DistContext(world_size=nproc))
    if not args.resume and (Path(out) / CHECKPOINT_NAME).exists():
        raise ConfigError(f"{out!r} already holds a run: pass --resume to continue it, or choose another --out")
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={nproc}",
        "-m",
        "emovox.cli.main",
        *_argv_without_nproc(args),
    ]
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")  # each worker sets its own torch threads (TrainConfig.threads / N)
    try:
        return subprocess.call(command, env=env)
    except KeyboardInterrupt:  # torchrun forwards the signal to its workers
        return 130


def _argv_without_nproc(args: argparse.Namespace) -> list[str]:
    """The ``emovox train`` arguments that produced ``args``, minus ``--nproc``."""
    argv = ["train"]
    assert _PARSER is not None  # set by register(), which builds the parser that dispatched here
    for action in _PARSER._actions:
        if not action.option_strings or action.dest in ("help", "nproc", "list_recipes"):
            continue
        value = getattr(args, action.dest, None)
        flag = action.option_strings[-1]
        if action.nargs == 0:  # store_true / store_false
            if value is not None and value != action.default:
                argv.append(flag)
        elif isinstance(value, list):
            for item in value:
                argv += [flag, str(item)]
        elif value is not None:
            argv += [flag, str(value)]
    return argv


def _train_closed_form(recipe, options: dict, train_overrides: dict, args: argparse.Namespace, *, nproc: int) -> int:
    """A recipe with its own ``fit`` and settings (closed-form heads such as ``default``; the ``shipped-*`` builds;
    ``whisper-finetune``, which runs the engine itself and continues when re-run): its settings, its fit, its lines."""
    if nproc > 1:
        raise ConfigError(
            f"--recipe {recipe.name} runs its own steps on one process: drop --nproc "
            "(for distributed training start torchrun yourself, see docs/distributed.md)"
        )
    unused = [k for k in ENGINE_OPTIONS if options.get(k) is not None and k not in recipe.settings]
    unused = ["--" + k.replace("_", "-") for k in unused + (["resume"] if args.resume else [])]
    unused += ["'train' in --config"] if train_overrides else []
    if unused:
        raise ConfigError(
            f"--recipe {recipe.name} takes its own settings (emovox train --list-recipes), not these options; "
            f"drop {', '.join(unused)}"
        )
    settings = {k: options[k] for k in recipe.settings if options.get(k) is not None}
    settings.update(_parse_settings(options.get("settings") or []))
    records = _load_records(list(options["corpus"]), corpora_root=options.get("corpora_root"))
    if options.get("limit") is not None:
        records = _limit(records, int(options["limit"]), int(settings.get("seed") or 0))

    from emovox.training.run import run_recipe

    summary = run_recipe(recipe, records, out_dir=options["out"], scheme=options.get("scheme"), settings=settings)
    for line in summary["lines"]:
        print(line)
    print(f"artifact: {summary['artifact']}")
    sys.stdout.flush()
    return 0
