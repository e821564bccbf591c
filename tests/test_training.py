"""The training engine, its config, data helpers, checkpoints and registries (synthetic data)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from emovox.errors import ConfigError, ModelError
from emovox.models.registry import architecture_names, build_model, register_architecture
from emovox.models.spec import TaskSpec
from emovox.training import (
    ArrayDataset,
    BalancedSampler,
    Callback,
    TrainConfig,
    fix_length,
    get_recipe,
    recipe_names,
    register_recipe,
    seed_everything,
    train_model,
)
from emovox.training.checkpoint import (
    atomic_write_bytes,
    load_checkpoint,
    save_checkpoint,
    tree_from_json,
    tree_to_json,
)
from emovox.training.engine import cosine_factor, uar_accuracy

SR = 16000


def tones(n_per_class: int, *, classes: int = 3, seed: int = 0, min_s: float = 0.4, max_s: float = 0.7):
    """Class c = a noisy tone at 300 * (c + 1) Hz, random lengths (a learnable toy task)."""
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for i in range(n_per_class * classes):
        c = i % classes
        t = np.arange(int(SR * rng.uniform(min_s, max_s))) / SR
        y = 0.5 * np.sin(2 * np.pi * 300 * (c + 1) * t + rng.uniform(0, 6.28)) + 0.05 * rng.standard_normal(len(t))
        xs.append(y.astype(np.float32))
        ys.append(c)
    return xs, np.array(ys)


SPEC = TaskSpec(labels=("low", "mid", "high"), sample_rate_hz=SR, clip_s=0.5)


def datasets(seed: int = 0, n_train: int = 8, n_val: int = 4):
    xs, ys = tones(n_train, seed=seed)
    xv, yv = tones(n_val, seed=seed + 100)
    train = ArrayDataset(xs, ys, length=SPEC.n_samples, crop="random")
    val = ArrayDataset(xv, yv, length=SPEC.n_samples, crop="center")
    return train, val


def quick_config(**changes) -> TrainConfig:
    base = {"epochs": 3, "batch_size": 8, "lr": 3e-3, "progress": False, "early_stop_patience": None, "threads": 2}
    base.update(changes)
    return TrainConfig(**base)


def tiny_model(seed: int = 0):
    seed_everything(seed, threads=2)
    return build_model("tiny-cnn", SPEC, channels=4, n_mels=16)


# --------------------------------------------------------------------------- config
def test_config_round_trips_through_json(tmp_path):
    config = TrainConfig(
        epochs=5,
        optimizer="adamw",
        scheduler="cosine",
        warmup_epochs=2,
        class_weights=[1.0, 2.0, 0.5],
        mixup_alpha=0.2,
        early_stop_patience=None,
    )
    path = tmp_path / "train.json"
    config.to_json(path)
    assert TrainConfig.from_json(path) == config
    assert json.loads(path.read_text())["optimizer"] == "adamw"


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"epochs": 0}, "epochs=0 must be a positive integer"),
        ({"optimizer": "sgd"}, "optimizer='sgd' is not valid"),
        ({"scheduler": "step"}, "scheduler='step'"),
        ({"monitor": "train_loss"}, "monitor='train_loss'"),
        ({"label_smoothing": 1.0}, r"label_smoothing=1.0 must be in \[0, 1\)"),
        ({"class_weights": "inverse"}, "class_weights='inverse'"),
        ({"class_weights": [1.0, -1.0]}, "must be positive numbers"),
        ({"lr": float("nan")}, "lr=nan must be a positive number"),
        ({"scheduler": "cosine", "epochs": 3, "warmup_epochs": 3}, "warmup_epochs=3 must be smaller"),
        ({"seed": -1}, "seed=-1"),
        ({"ema_decay": 1.0}, r"ema_decay=1.0 must be in \[0, 1\)"),
        ({"ema_decay": True}, "ema_decay=True"),
    ],
)
def test_config_rejects_bad_values(changes, match):
    with pytest.raises(ConfigError, match=match):
        TrainConfig(**changes)


def test_config_rejects_unknown_keys_and_bad_json(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown training option\(s\) \['epoch'\]"):
        TrainConfig.from_dict({"epoch": 3})
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="is not valid JSON"):
        TrainConfig.from_json(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        TrainConfig.from_json(tmp_path / "missing.json")


def test_cosine_schedule_warms_up_then_decays_to_min_lr():
    config = TrainConfig(epochs=10, lr=1e-2, min_lr=1e-4, scheduler="cosine", warmup_epochs=2)
    factors = [cosine_factor(config)(e) for e in range(10)]
    assert factors[0] < factors[1] < factors[2] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(factors[2:], factors[3:]))
    assert cosine_factor(config)(10) == pytest.approx(1e-4 / 1e-2)


# --------------------------------------------------------------------------- data
@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 300),
    length=st.integers(1, 200),
    crop=st.sampled_from(["center", "start", "random"]),
    seed=st.integers(0, 2**31),
)
def test_fix_length_always_gives_the_length_and_keeps_a_contiguous_piece(n, length, crop, seed):
    x = np.arange(1, n + 1, dtype=np.float32)[None, :].repeat(2, axis=0)
    y = fix_length(x, length, crop=crop, rng=np.random.default_rng(seed))
    assert y.shape == (2, length) and y.dtype == np.float32
    kept = y[0][y[0] != 0]
    assert len(kept) == min(n, length)
    assert np.all(np.diff(kept) == 1)  # a contiguous run of the input, in order


def test_random_crops_replay_per_epoch_and_change_between_epochs():
    ds = ArrayDataset([np.arange(1000, dtype=np.float32)], [0], length=100, crop="random", seed=3)
    first = ds[0][0].copy()
    assert np.array_equal(ds[0][0], first)
    ds.set_epoch(1)
    assert not np.array_equal(ds[0][0], first)
    ds.set_epoch(0)
    assert np.array_equal(ds[0][0], first)


def test_dataset_rejects_mismatched_input():
    with pytest.raises(ConfigError, match="3 inputs but 2 labels"):
        ArrayDataset([np.zeros(4)] * 3, [0, 1])
    with pytest.raises(ConfigError, match="different shapes: pass length="):
        ArrayDataset([np.zeros(4), np.zeros(5)], [0, 1])


@settings(max_examples=40, deadline=None)
@given(counts=st.lists(st.integers(1, 30), min_size=2, max_size=6), seed=st.integers(0, 1000))
def test_balanced_sampler_tops_classes_up_to_the_median(counts, seed):
    labels = np.repeat(np.arange(len(counts)), counts)
    sampler = BalancedSampler(labels, generator=torch.Generator().manual_seed(seed))
    drawn = list(sampler)
    assert len(drawn) == len(sampler)
    assert set(range(len(labels))) <= set(drawn)  # every example at least once
    per_class = np.bincount(labels[drawn], minlength=len(counts))
    median = int(np.median(counts))
    assert np.all(per_class == np.maximum(counts, median))
    again = list(BalancedSampler(labels, generator=torch.Generator().manual_seed(seed)))
    assert again == drawn


# --------------------------------------------------------------------------- checkpoints
def test_optimizer_state_round_trips_without_pickle(tmp_path):
    model = torch.nn.Linear(4, 3)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.01)
    model(torch.randn(5, 4)).sum().backward()
    optimizer.step()
    tensors: dict = {}
    tree = tree_to_json(optimizer.state_dict(), tensors, "optimizer")
    save_checkpoint(tmp_path / "c.safetensors", tensors, {"optimizer": tree, "inf": math.inf})
    loaded_tensors, meta = load_checkpoint(tmp_path / "c.safetensors")
    restored = tree_from_json(meta["optimizer"], loaded_tensors)
    original = optimizer.state_dict()
    assert restored["param_groups"][0]["betas"] == original["param_groups"][0]["betas"]
    assert set(restored["state"]) == set(original["state"]) == {0, 1}
    for pid, state in original["state"].items():
        for key, value in state.items():
            assert torch.equal(restored["state"][pid][key], value)
    assert meta["inf"] == math.inf
    fresh = torch.optim.AdamW(model.parameters(), lr=0.5)
    fresh.load_state_dict(restored)
    assert fresh.param_groups[0]["lr"] == 0.01


def test_checkpoint_errors_are_model_errors(tmp_path):
    with pytest.raises(ModelError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "none.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 20)
    with pytest.raises(ModelError, match="unreadable"):
        load_checkpoint(tmp_path / "junk.safetensors")
    with pytest.raises(ModelError, match="cannot store a set"):
        tree_to_json({"a": {1, 2}}, {}, "x")


def test_atomic_write_leaves_no_temporary_files(tmp_path):
    atomic_write_bytes(tmp_path / "a.bin", b"one")
    atomic_write_bytes(tmp_path / "a.bin", b"two")
    assert (tmp_path / "a.bin").read_bytes() == b"two"
    assert [p.name for p in tmp_path.iterdir()] == ["a.bin"]
    from emovox.fileio import atomic_output

    with pytest.raises(RuntimeError, match="writer failed"):
        with atomic_output(tmp_path / "a.bin") as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("writer failed")
    assert (tmp_path / "a.bin").read_bytes() == b"two"  # the old file stays, the temporary is gone
    assert [p.name for p in tmp_path.iterdir()] == ["a.bin"]


# --------------------------------------------------------------------------- engine
def test_engine_learns_a_separable_task_and_writes_logs_and_curves(tmp_path):
    train, val = datasets()
    model = tiny_model()
    events = []

    class Recorder(Callback):
        def on_epoch_end(self, epoch, record):
            events.append(("epoch", epoch))

        def on_checkpoint(self, epoch, path):
            events.append(("checkpoint", epoch))

    result = train_model(model, train, val, quick_config(epochs=6), out_dir=tmp_path, callbacks=[Recorder()])
    assert [e for e in events if e[0] == "checkpoint"] == [("checkpoint", i) for i in range(6)]
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert result.best_metric == max(r["val_uar"] for r in result.history) > 0.6
    assert result.history[result.best_epoch - 1]["best"]
    for name in ("log.json", "log.csv", "curves.png", "checkpoint.safetensors"):
        assert (tmp_path / name).stat().st_size > 0
    assert json.loads((tmp_path / "log.json").read_text())[0]["epoch"] == 1
    assert (tmp_path / "log.csv").read_text().splitlines()[0].startswith("epoch,train_loss")
    # the model holds the best weights at the end
    best = dict(result.best_state.items())
    assert all(torch.equal(v, best[k]) for k, v in model.state_dict().items())


def test_early_stopping_and_val_loss_monitor(tmp_path):
    train, val = datasets()
    # lr so small nothing improves after the first epoch -> stops after `patience` bad epochs
    config = quick_config(epochs=20, lr=1e-7, monitor="val_uar", early_stop_patience=2, scheduler="none")
    result = train_model(tiny_model(), train, val, config, out_dir=tmp_path / "a", plot=False)
    assert result.stopped_early and len(result.history) < 20
    config = quick_config(epochs=3, monitor="val_loss", scheduler="plateau")
    result = train_model(tiny_model(), train, val, config, out_dir=tmp_path / "b", plot=False)
    assert result.best_metric == min(r["val_loss"] for r in result.history)


def test_augmentation_hooks_see_training_batches_only(tmp_path):
    train, val = datasets(n_train=4, n_val=2)
    seen = {"wave": 0, "spec": 0}

    def wave(x, rng):
        assert isinstance(rng, np.random.Generator) and x.shape[1] == SPEC.n_samples
        seen["wave"] += len(x)
        return x + 0.01 * rng.standard_normal(x.shape).astype(np.float32)

    def spec(f, rng):
        assert f.ndim == 3  # (batch, n_mels, frames)
        seen["spec"] += len(f)
        return f

    config = quick_config(epochs=2, mixup_alpha=0.4, balanced_sampling=True, label_smoothing=0.1)
    train_model(tiny_model(), train, val, config, out_dir=tmp_path, wave_augment=wave, spec_augment=spec, plot=False)
    assert seen["wave"] == seen["spec"] == 2 * len(train)


def test_engine_errors(tmp_path):
    train, val = datasets(n_train=2, n_val=1)
    with pytest.raises(ConfigError, match="spec_augment needs a model with features"):
        train_model(
            torch.nn.Sequential(torch.nn.Linear(SPEC.n_samples, 3)),
            train,
            val,
            quick_config(),
            out_dir=tmp_path / "x",
            spec_augment=lambda f, g: f,
        )
    with pytest.raises(ConfigError, match="wave_augment returned shape"):
        train_model(
            tiny_model(),
            train,
            val,
            quick_config(epochs=1),
            out_dir=tmp_path / "y",
            wave_augment=lambda x, g: x[:, :10],
        )
    train_model(tiny_model(), train, val, quick_config(epochs=1), out_dir=tmp_path / "z", plot=False)
    with pytest.raises(ConfigError, match="already holds a run: pass resume=True"):
        train_model(tiny_model(), train, val, quick_config(epochs=1), out_dir=tmp_path / "z")
    with pytest.raises(ConfigError, match=r"training options \['lr'\] differ"):
        train_model(tiny_model(), train, val, quick_config(epochs=1, lr=0.1), out_dir=tmp_path / "z", resume=True)


class _StopAfter(Callback):
    def __init__(self, epochs: int) -> None:
        self.epochs = epochs

    def on_checkpoint(self, epoch, path):
        if epoch + 1 == self.epochs:
            raise KeyboardInterrupt


def test_resume_in_process_is_bit_identical(tmp_path):
    """Interrupt after epoch 2 of 4 (all features on), resume, compare with a straight run."""
    config = quick_config(
        epochs=4,
        scheduler="cosine",
        warmup_epochs=1,
        mixup_alpha=0.3,
        balanced_sampling=True,
        optimizer="adamw",
        weight_decay=0.01,
        label_smoothing=0.1,
        ema_decay=0.9,
    )

    def wave(x, rng):
        return x * rng.uniform(0.5, 1.5, size=(len(x), 1)).astype(np.float32)

    def run(out, callbacks=(), resume=False):
        train, val = datasets()
        model = tiny_model()
        return model, train_model(
            model, train, val, config, out_dir=out, wave_augment=wave, callbacks=callbacks, resume=resume, plot=False
        )

    straight_model, straight = run(tmp_path / "straight")
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "resumed", callbacks=[_StopAfter(2)])
    resumed_model, resumed = run(tmp_path / "resumed", resume=True)
    for key, value in straight_model.state_dict().items():
        assert torch.equal(value, resumed_model.state_dict()[key]), key

    def strip(history):
        return [{k: v for k, v in r.items() if k != "time_s"} for r in history]

    assert strip(straight.history) == strip(resumed.history)
    assert resumed.best_epoch == straight.best_epoch
    # resuming a finished run trains nothing and returns the same best weights
    again_model, again = run(tmp_path / "resumed", resume=True)
    assert strip(again.history) == strip(straight.history)
    for key, value in straight_model.state_dict().items():
        assert torch.equal(value, again_model.state_dict()[key]), key


def test_weight_average_follows_the_documented_rule():
    from emovox.training.ema import WeightAverage

    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
    start = [p.detach().clone() for p in model.parameters()]
    ema = WeightAverage(model, 0.99)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
        model[1].running_mean.fill_(3.0)
    ema.update(model)
    d = min(0.99, 2 / 11)  # step 1: the warm-up term wins
    for avg, old, new in zip(ema.model.parameters(), start, model.parameters()):
        torch.testing.assert_close(avg, d * old + (1 - d) * new)
        assert not avg.requires_grad
    assert torch.equal(ema.model[1].running_mean, model[1].running_mean)  # buffers copied
    with pytest.raises(ConfigError, match="ema_decay=1.5 must be in"):
        WeightAverage(model, 1.5)


def test_engine_with_ema_validates_keeps_and_returns_the_averaged_weights(tmp_path):
    train, val = datasets()
    model = tiny_model()
    result = train_model(model, train, val, quick_config(epochs=3, ema_decay=0.9), out_dir=tmp_path, plot=False)
    tensors, meta = load_checkpoint(tmp_path / "checkpoint.safetensors")
    assert meta["ema_steps"] == 3 * math.ceil(len(train) / 8)  # one update per optimiser step
    last_ema = {k[len("ema.") :]: v for k, v in tensors.items() if k.startswith("ema.")}
    raw = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    assert set(last_ema) == set(raw) == set(model.state_dict())
    assert any(not torch.equal(last_ema[k], raw[k]) for k in raw)  # the average is not the last step
    for key, value in model.state_dict().items():  # the returned model holds the best averaged weights
        assert torch.equal(value, result.best_state[key]), key
    if result.best_epoch == 3:
        assert all(torch.equal(model.state_dict()[k], last_ema[k]) for k in last_ema)
    # the logged validation figure of the best epoch is the returned (averaged) model's
    from emovox.training.engine import predict_logits

    uar, _ = uar_accuracy(np.asarray(val.labels), predict_logits(model, val).argmax(axis=1))
    assert uar == pytest.approx(result.best_metric)


def test_uar_ignores_class_sizes():
    uar, acc = uar_accuracy(np.array([0, 0, 0, 1]), np.array([0, 0, 0, 0]))
    assert (uar, acc) == (0.5, 0.75)


# --------------------------------------------------------------------------- registries and spec
def test_architecture_registry(monkeypatch):
    from emovox.models import registry

    registry.architecture_names()  # import the known architectures before isolating the registry
    monkeypatch.setattr(registry, "_ARCHITECTURES", dict(registry._ARCHITECTURES))
    assert {"tiny-cnn", "tiny-mlp"} <= set(architecture_names())
    with pytest.raises(ModelError, match="unknown architecture 'nope': expected one of"):
        build_model("nope", SPEC)
    with pytest.raises(ModelError, match="rejected parameters \\['width'\\]"):
        build_model("tiny-cnn", SPEC, width=3)
    with pytest.raises(ConfigError, match="already registered"):
        register_architecture("tiny-cnn", lambda spec: None)
    logits = build_model("tiny-cnn", SPEC)(torch.zeros(2, SPEC.n_samples))
    assert logits.shape == (2, 3)
    feats = TaskSpec(labels=("a", "b"), input_kind="features", feature="f", feature_dims=(7,))
    assert build_model("tiny-mlp", feats)(torch.zeros(5, 7)).shape == (5, 2)


def test_recipe_registry(monkeypatch):
    from emovox.training import recipes

    assert "tiny" in recipe_names()
    recipe = get_recipe("tiny")
    assert recipe.arch == "tiny-cnn" and recipe.train.epochs >= 1
    json.dumps(recipe.to_dict())
    with pytest.raises(ConfigError, match="unknown recipe 'nope': expected one of .*tiny"):
        get_recipe("nope")
    monkeypatch.setattr(recipes, "_RECIPES", dict(recipes._RECIPES))  # keep the registry clean
    register_recipe("test-bad-recipe", lambda: "not a recipe")
    with pytest.raises(ConfigError, match="returned str, not a Recipe"):
        get_recipe("test-bad-recipe")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"labels": ("a",)}, "at least two distinct"),
        ({"labels": ("a", "a")}, "at least two distinct"),
        ({"labels": ("a", "b"), "sample_rate_hz": 0}, "sample_rate_hz=0"),
        ({"labels": ("a", "b"), "clip_s": -1}, "clip_s=-1"),
        ({"labels": ("a", "b"), "input_kind": "video"}, "input_kind='video'"),
        ({"labels": ("a", "b"), "input_kind": "features"}, "needs feature"),
    ],
)
def test_task_spec_validation(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        TaskSpec(**kwargs)


def test_task_spec_round_trip_and_mismatch():
    spec = TaskSpec(
        labels=("a", "b"),
        sample_rate_hz=8000,
        clip_s=2,
        input_kind="features",
        feature="mfcc-functionals",
        feature_dims=[40],
    )
    assert TaskSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    assert spec.input_shape == (40,) and SPEC.input_shape == (8000,)
    with pytest.raises(ModelError, match="labels: \\('a', 'b'\\) != \\('b', 'a'\\)"):
        spec.check_compatible(TaskSpec.from_dict({**spec.to_dict(), "labels": ["b", "a"]}))
    with pytest.raises(ModelError, match="unknown keys \\['colour'\\]"):
        TaskSpec.from_dict({"labels": ["a", "b"], "colour": 1})
