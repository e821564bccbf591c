"""Training under torchrun (DDP, gloo, CPU): real 2-process runs of the engine and of ``emovox train``.

What is checked:

- sharding: per epoch the ranks' shards cover the single-process order exactly
  once (padded repeats marked), in the same global batches;
- exactness: on a model without batch statistics or per-process randomness,
  2 processes train to the same weights as 1 process (the loss is the global
  class-weighted mean; the sampler is the single-process one, sharded);
- the CLI under torchrun: one artifact and one log, written by rank 0 only
  (rank 1 runs with an audit hook that fails on any write into the run or
  the corpus);
- kill -9 of torchrun after the first checkpoint: the workers die with it, and
  ``emovox train --nproc 2 --resume`` ends bit-identical to an uninterrupted
  2-process run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.numpy import load_file
from test_training_cli import make_ravdess
from torch.utils.data import DataLoader, RandomSampler

from emovox.cli.main import main
from emovox.errors import ConfigError
from emovox.training import BalancedSampler, TrainConfig
from emovox.training.data import collate
from emovox.training.distributed import (
    DistContext,
    ShardedBatchSampler,
    context_from_env,
    per_rank_batch_size,
    split_key,
    threads_per_process,
)

# Runs a command under torchrun. Mode "cli": emovox's CLI; every rank but 0 gets an audit hook
# that fails the run on any write under the folders given in EMOVOX_TEST_GUARD.
# Mode "parity": the engine on a synthetic feature task (see parity_task below).
DRIVER = r"""
import os, sys
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
guarded = [os.path.realpath(p) for p in os.environ.get("EMOVOX_TEST_GUARD", "").split(os.pathsep) if p]

def inside(path):
    try:
        path = os.path.realpath(os.fsdecode(path))
    except TypeError:
        return False
    return any(path == g or path.startswith(g + os.sep) for g in guarded)

def guard(event, args):
    if event == "open":
        path, mode, flags = args
        writes = (any(c in mode for c in "wxa+") if isinstance(mode, str)
                  else isinstance(flags, int) and bool(flags & WRITE_FLAGS))
        if writes and inside(path):
            sys.stderr.write(f"WRITE BY RANK {os.environ['RANK']}: {path}\n")
            os._exit(97)
    elif event in ("os.rename", "os.mkdir", "os.remove", "os.rmdir", "os.truncate", "os.chmod", "os.utime"):
        if any(inside(a) for a in args[:2] if isinstance(a, (str, bytes, os.PathLike))):
            sys.stderr.write(f"WRITE BY RANK {os.environ['RANK']}: {event} {args[:2]}\n")
            os._exit(97)

if os.environ.get("RANK", "0") != "0":
    sys.addaudithook(guard)
mode = sys.argv[1]
if mode == "cli":
    from emovox.cli.main import main
    sys.exit(main(sys.argv[2:]))
sys.path.insert(0, os.environ["EMOVOX_TEST_DIR"])
from test_distributed import parity_task
parity_task(sys.argv[2])
"""


def parity_task(out_dir: str):
    """Train a dropout-free MLP on Gaussian clusters (45 examples, classes 20/15/10); returns the model.

    45 examples and balanced sampling make the epoch length odd: under 2 processes
    the last global batch carries one padded repeat with zero weight.
    """
    from emovox.models.registry import build_model
    from emovox.models.spec import TaskSpec
    from emovox.training import ArrayDataset, seed_everything, train_model

    rng = np.random.default_rng(7)
    labels = np.repeat([0, 1, 2], [20, 15, 10])
    centres = rng.normal(size=(3, 8)).astype(np.float32)
    x = centres[labels] + 0.9 * rng.normal(size=(len(labels), 8)).astype(np.float32)
    val_labels = np.repeat([0, 1, 2], 5)
    xv = centres[val_labels] + 0.9 * rng.normal(size=(15, 8)).astype(np.float32)
    spec = TaskSpec(labels=("a", "b", "c"), input_kind="features", feature="toy", feature_dims=(8,))
    config = TrainConfig(
        epochs=4,
        batch_size=8,
        lr=1e-2,
        class_weights="balanced",
        label_smoothing=0.1,
        balanced_sampling=True,
        scheduler="none",
        early_stop_patience=None,
        threads=2,
        progress=False,
        seed=5,
    )
    seed_everything(config.seed, threads=1)
    model = build_model("tiny-mlp", spec, hidden=16, dropout=0.0)
    train_model(model, ArrayDataset(x, labels), ArrayDataset(xv, val_labels), config, out_dir=out_dir, plot=False)
    return model


def torchrun(args: list[str], *, nproc: int = 2, guard: tuple[Path, ...] = (), **popen) -> subprocess.Popen:
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONHASHSEED": "0",
        "EMOVOX_TEST_GUARD": os.pathsep.join(str(p) for p in guard),
        "EMOVOX_TEST_DIR": str(Path(__file__).parent),
    }
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc_per_node={nproc}",
            str(_driver()),
            *args,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **popen,
    )


_DRIVER_PATH: list[Path] = []


def _driver() -> Path:
    if not _DRIVER_PATH:
        import tempfile

        folder = Path(tempfile.mkdtemp(prefix="emovox-ddp-"))
        (folder / "driver.py").write_text(DRIVER)
        _DRIVER_PATH.append(folder / "driver.py")
    return _DRIVER_PATH[0]


def finish(proc: subprocess.Popen, timeout: float = 180) -> str:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err.decode()[-3000:]
    return out.decode()


def strip(history):
    return [{k: v for k, v in r.items() if k != "time_s"} for r in history]


EPOCHS = "20"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """A synthetic RAVDESS, plus (in its parent folder) the training options of the CLI runs."""
    root = make_ravdess(tmp_path_factory.mktemp("ravdess") / "corpus")
    # every per-process random stream and every synced buffer in play: dropout, BatchNorm,
    # mixup, EMA, balanced sampling (odd epoch length: padding), label smoothing
    (root.parent / "train.json").write_text(
        json.dumps(
            {"train": {"mixup_alpha": 0.2, "ema_decay": 0.9, "balanced_sampling": True, "label_smoothing": 0.05}}
        )
    )
    return root


def cli_args(corpus: Path, out: Path, *extra: str) -> list[str]:
    return [
        "train",
        "--config",
        str(corpus.parent / "train.json"),
        "--recipe",
        "tiny",
        "--corpus",
        f"ravdess={corpus}",
        "--out",
        str(out),
        "--no-progress",
        "--threads",
        "1",
        "--epochs",
        EPOCHS,
        "--folds",
        "3",
        "--fold",
        "1",
        *extra,
    ]


@pytest.fixture(scope="module")
def two_process_run(corpus, tmp_path_factory) -> tuple[Path, str]:
    """An uninterrupted 2-process CLI run; rank 1 may not write into the run or the corpus."""
    out = tmp_path_factory.mktemp("ddp") / "run"
    printed = finish(torchrun(["cli", *cli_args(corpus, out)], guard=(out, corpus)))
    return out, printed


# --------------------------------------------------------------------------- sampling
def single_process_batches(labels, *, batch_size, seed, balanced, epochs):
    gen = torch.Generator().manual_seed(seed)
    sampler = BalancedSampler(labels, generator=gen) if balanced else RandomSampler(range(len(labels)), generator=gen)
    data = [(np.zeros(1, np.float32), int(i)) for i in range(len(labels))]  # the label slot carries the index
    loader = DataLoader(data, batch_size=batch_size, sampler=sampler, collate_fn=collate, generator=gen)
    return [[[int(i) for i in y] for _, y in loader] for _ in range(epochs)]


class _Keys(torch.utils.data.Dataset):
    """Returns the shard key it is indexed with."""

    def __getitem__(self, key: int) -> int:
        return key


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 60),
    world=st.integers(1, 4),
    per_rank=st.integers(1, 6),
    balanced=st.booleans(),
    seed=st.integers(0, 1000),
)
def test_shards_cover_the_single_process_batches_exactly_once_per_epoch(n, world, per_rank, balanced, seed):
    labels = np.random.default_rng(seed).integers(0, 3, size=n)
    batch = world * per_rank
    expected = single_process_batches(labels, batch_size=batch, seed=seed, balanced=balanced, epochs=3)
    per_rank_epochs = []
    for rank in range(world):  # each rank its own generator, seeded alike, as in the engine
        gen = torch.Generator().manual_seed(seed)
        sampler = BalancedSampler(labels, generator=gen) if balanced else RandomSampler(range(n), generator=gen)
        shards = ShardedBatchSampler(sampler, batch_size=batch, rank=rank, world_size=world)
        loader = DataLoader(_Keys(), batch_sampler=shards, collate_fn=list, generator=gen)
        per_rank_epochs.append([list(loader) for _ in range(3)])
        assert all(len(epoch) == len(shards) for epoch in per_rank_epochs[-1])
    for epoch in range(3):
        steps = list(zip(*(r[epoch] for r in per_rank_epochs)))  # one tuple of shards per global step
        assert len(steps) == len(expected[epoch])
        padded = 0
        for shards, want in zip(steps, expected[epoch]):
            assert len({len(s) for s in shards}) == 1 and len(shards[0]) >= 1  # equal, non-empty shards
            keys = [split_key(k) for s in shards for k in s]
            assert [i for i, real in keys if real] == want  # the same global batch, in order
            padded += sum(not real for _, real in keys)
        assert padded == -len(sum(expected[epoch], [])) % world  # fewer than one repeat per process
    if n > 7:  # the order changes with the epoch (three equal shuffles of 8+ items: p < 1e-9)
        assert not expected[0] == expected[1] == expected[2]


def test_helpers_and_their_errors():
    assert context_from_env({}) == DistContext()
    ctx = context_from_env(
        {
            "WORLD_SIZE": "2",
            "RANK": "1",
            "LOCAL_RANK": "1",
            "LOCAL_WORLD_SIZE": "2",
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": "29500",
        }
    )
    assert ctx.enabled and not ctx.is_writer and (ctx.rank, ctx.world_size) == (1, 2)
    with pytest.raises(ConfigError, match="MASTER_ADDR, MASTER_PORT unset: start distributed training with torchrun"):
        context_from_env({"WORLD_SIZE": "2", "RANK": "0"})
    with pytest.raises(ConfigError, match="are inconsistent"):
        context_from_env({"WORLD_SIZE": "2", "RANK": "2", "MASTER_ADDR": "x", "MASTER_PORT": "1"})
    assert threads_per_process(2, ctx) == 1 and threads_per_process(5, ctx) == 2
    assert threads_per_process(1, ctx) == 1 and threads_per_process(2, DistContext()) == 2
    assert per_rank_batch_size(16, ctx) == 8
    with pytest.raises(ConfigError, match="batch_size=15 is not a multiple of the 2 training processes"):
        per_rank_batch_size(15, ctx)


# --------------------------------------------------------------------------- exactness
@pytest.mark.parametrize("weighted, smoothing, mixup", [(False, 0.0, False), (True, 0.1, False), (True, 0.1, True)])
def test_global_batch_loss_is_the_weighted_mean_and_padding_weighs_nothing(weighted, smoothing, mixup):
    """A batch plus a padded repeat gives F.cross_entropy's (weighted, smoothed, mixed) mean of the batch.

    (Slices over several processes are checked by the 2-process parity test below.)
    """
    import torch.nn.functional as F

    from emovox.training.distributed import global_batch_loss

    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(7, 4, generator=gen)
    y = torch.tensor([0, 1, 1, 2, 3, 3, 3])
    weights = torch.tensor([2.0, 1.0, 0.5, 0.25]) if weighted else None
    perm = torch.randperm(7, generator=gen) if mixup else None
    lam = 0.7
    want = F.cross_entropy(logits, y, weight=weights, label_smoothing=smoothing)
    if mixup:
        want = lam * want + (1 - lam) * F.cross_entropy(logits, y[perm], weight=weights, label_smoothing=smoothing)
    # one process holding the whole batch plus a padded repeat of example 0 (zero weight)
    padded_logits = torch.cat([logits, logits[:1]])
    padded_y = torch.cat([y, y[:1]])
    real = torch.tensor([True] * 7 + [False])
    padded_perm = None if perm is None else torch.cat([perm, torch.tensor([7])])
    loss, share, n_real = global_batch_loss(
        padded_logits,
        padded_y,
        real,
        ctx=DistContext(),
        weights=weights,
        label_smoothing=smoothing,
        perm=padded_perm,
        lam=lam,
    )
    assert float(loss) == pytest.approx(float(want), rel=1e-6) and share == pytest.approx(float(want), rel=1e-6)
    assert n_real == 7


def test_two_processes_train_the_same_weights_as_one_without_batch_statistics(tmp_path):
    single = parity_task(str(tmp_path / "one"))
    finish(torchrun(["parity", str(tmp_path / "two")], guard=(tmp_path / "two",)))
    two = load_file(str(tmp_path / "two" / "checkpoint.safetensors"))
    one = load_file(str(tmp_path / "one" / "checkpoint.safetensors"))
    for key, value in single.state_dict().items():
        np.testing.assert_allclose(two[f"best.{key}"], value.numpy(), rtol=0, atol=2e-5, err_msg=key)
        np.testing.assert_allclose(two[f"model.{key}"], one[f"model.{key}"], rtol=0, atol=2e-5, err_msg=key)
    log_one = json.loads((tmp_path / "one" / "log.json").read_text())
    log_two = json.loads((tmp_path / "two" / "log.json").read_text())
    for a, b in zip(log_one, log_two, strict=True):
        assert a["val_uar"] == b["val_uar"] and a["train_accuracy"] == b["train_accuracy"]
        assert a["train_loss"] == pytest.approx(b["train_loss"], abs=1e-5)
        assert a["val_loss"] == pytest.approx(b["val_loss"], abs=1e-5)


# --------------------------------------------------------------------------- the CLI under torchrun
def test_two_processes_write_one_artifact_and_log_from_rank_0(two_process_run):
    out, printed = two_process_run
    assert printed.count("artifact:") == 1 and "val UAR" in printed  # rank 0 prints, rank 1 does not
    names = sorted(str(p.relative_to(out)) for p in out.rglob("*"))
    assert names == [
        "checkpoint.safetensors",
        "curves.png",
        "log.csv",
        "log.json",
        "model",
        "model/config.json",
        "model/model.safetensors",
        "summary.json",
    ]
    log = json.loads((out / "log.json").read_text())
    assert [r["epoch"] for r in log] == list(range(1, int(EPOCHS) + 1))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["processes"] == 2
    config = json.loads((out / "model" / "config.json").read_text())
    assert config["training"]["processes"] == 2 and config["training"]["config"]["batch_size"] == 16
    assert summary["metrics"]["validation"]["val_uar"] >= 0.6  # it learned the pitch-separable task


def test_kill_9_of_torchrun_then_resume_on_two_processes_is_bit_identical(two_process_run, corpus, tmp_path, capsys):
    straight, _ = two_process_run
    out = tmp_path / "killed"
    victim = torchrun(["cli", *cli_args(corpus, out)], guard=(out, corpus))
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 120
        while not (out / "checkpoint.safetensors").exists() and victim.poll() is None:
            assert time.monotonic() < deadline, "no checkpoint within 120 s"
            time.sleep(0.005)
        children = Path(f"/proc/{victim.pid}/task/{victim.pid}/children")
        workers = [int(p) for p in children.read_text().split()] if children.exists() else []
        assert victim.poll() is None, "the run ended before it could be killed: make it longer"
        os.kill(victim.pid, signal.SIGKILL)
        victim.communicate()
        assert len(workers) == 2
        deadline = time.monotonic() + 10  # the workers die with torchrun (PR_SET_PDEATHSIG)
        while any(Path(f"/proc/{pid}").exists() and "Z" not in _state(pid) for pid in workers):
            assert time.monotonic() < deadline, "workers survived the kill of torchrun"
            time.sleep(0.02)
    finally:
        for pid in workers:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    interrupted_at = len(json.loads((out / "log.json").read_text()))
    assert 1 <= interrupted_at < int(EPOCHS) and not (out / "model").exists()

    # one process cannot continue a 2-process checkpoint: one clear line
    assert main(cli_args(corpus, out, "--resume")) == 2
    assert "written by a run on 2 process(es), this one has 1" in capsys.readouterr().err

    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
    resumed = subprocess.run(
        [sys.executable, "-m", "emovox.cli.main", *cli_args(corpus, out, "--resume", "--nproc", "2")],
        capture_output=True,
        env=env,
        timeout=180,
    )
    assert resumed.returncode == 0, resumed.stderr.decode()[-3000:]
    assert resumed.stdout.decode().count("artifact:") == 1
    assert strip(json.loads((out / "log.json").read_text())) == strip(json.loads((straight / "log.json").read_text()))
    a = load_file(str(straight / "model" / "model.safetensors"))
    b = load_file(str(out / "model" / "model.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        assert np.array_equal(a[key], b[key]), key
    assert (
        json.loads((out / "summary.json").read_text())["metrics"]
        == json.loads((straight / "summary.json").read_text())["metrics"]
    )


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return "Z"


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--nproc", "2", "--batch-size", "15"], "batch_size=15 is not a multiple of the 2 training processes"),
        (["--nproc", "0"], "--nproc 0 must be a positive integer"),
    ],
)
def test_nproc_errors_are_one_line(corpus, tmp_path, capsys, extra, message):
    assert main(cli_args(corpus, tmp_path / "x", *extra)) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "x").exists()
