"""Seed replicas: exact Keras-comparable parameter counts, input pipelines, recipes."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from emovox.errors import ConfigError
from emovox.labels import get_scheme
from emovox.models.registry import build_model
from emovox.models.seeds import (
    S0MfccCNN,
    S1Conv1D,
    S2MelCNN,
    S3Conv1D,
    S4TwoChannelCNN,
    SamePool1d,
    keras_param_count,
)
from emovox.recipes import SeedTrainDataset, seed_recipe, seed_recipe_names
from emovox.recipes.seeds import frame_features, normalize_array, resize_array, two_channel

torch.set_num_threads(1)


# ----------------------------------------------------------------------------- parameter counts
@pytest.mark.parametrize(
    "model, total, trainable, non_trainable",
    [
        (S0MfccCNN(8), 87_944, 87_944, 0),
        (S1Conv1D(7), 12_600_039, 12_598_823, 1_216),
        (S3Conv1D(8), 7_193_736, 7_189_384, 4_352),
    ],
    ids=["S0", "S1", "S3"],
)
def test_keras_comparable_parameter_counts_match_the_seed_summaries(model, total, trainable, non_trainable):
    assert keras_param_count(model) == {"total": total, "trainable": trainable, "non_trainable": non_trainable}


def test_s0_layer_counts_match_keras_summary():
    m = S0MfccCNN(8)
    convs = [sum(p.numel() for p in c.parameters()) for c in m.features if isinstance(c, torch.nn.Conv1d)]
    assert convs == [768, 82_048]
    assert sum(p.numel() for p in m.classifier.parameters()) == 5_128


def test_s1_dense_layer_sees_1512_by_32_inputs():
    m = S1Conv1D(7)
    assert m.classifier[0].in_features == 48_384
    assert sum(p.numel() for p in m.classifier[0].parameters()) == 12_386_560


def test_s3_keras_same_shapes():
    m = S3Conv1D(8).eval()
    assert m.classifier[0].in_features == 75 * 128
    shapes = []
    h = torch.zeros(1, 1, 2376)
    for layer in m.features:
        h = layer(h)
        if isinstance(layer, SamePool1d):
            shapes.append(h.shape[-1])
    assert shapes == [1188, 594, 297, 149, 75]


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 300), k=st.integers(1, 7), s=st.integers(1, 4))
def test_same_pooling_matches_tensorflow_semantics(n, k, s):
    x = torch.randn(2, 3, n)
    mx = SamePool1d(k, s, mode="max")(x)
    av = SamePool1d(k, s, mode="avg")(x)
    out = math.ceil(n / s)
    assert mx.shape[-1] == av.shape[-1] == out
    pad_total = max((out - 1) * s + k - n, 0)
    left = pad_total // 2
    for j in range(out):  # reference: window over real samples only
        lo, hi = max(j * s - left, 0), min(j * s - left + k, n)
        torch.testing.assert_close(mx[..., j], x[..., lo:hi].max(dim=-1).values)
        torch.testing.assert_close(av[..., j], x[..., lo:hi].mean(dim=-1))


@pytest.mark.parametrize("name, n_classes", [("s0", 8), ("s1", 7), ("s2", 6), ("s3", 8), ("s4", 6)])
def test_every_replica_builds_from_the_registry_and_runs(name, n_classes):
    recipe = seed_recipe(name)
    labels = get_scheme(recipe.label_scheme).classes
    assert len(labels) == n_classes
    model = recipe.build_model(labels).eval()
    x = torch.randn(3, *recipe.input.dims)
    assert model(x).shape == (3, n_classes)
    # Started the Keras way: Glorot-uniform kernels (bounded by sqrt(6 / (fan_in + fan_out))), zero biases.
    for layer in model.modules():
        if isinstance(layer, (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Linear)):
            fan_in = layer.weight[0].numel()
            fan_out = layer.weight.shape[0] * (layer.weight[0, 0].numel() if layer.weight.ndim > 2 else 1)
            assert float(layer.weight.detach().abs().max()) <= math.sqrt(6 / (fan_in + fan_out)) + 1e-6
            assert layer.bias is None or not layer.bias.any()
        if isinstance(layer, torch.nn.modules.batchnorm._BatchNorm):
            assert (layer.momentum, layer.eps) == (0.01, 1e-3)
    with pytest.raises(ConfigError, match="expects input"):
        model(torch.randn(3, 7))


def test_s2_and_s4_have_their_described_layers():
    s4 = S4TwoChannelCNN(6)
    convs = [m.out_channels for m in s4.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs == [32, 64, 128]
    drops = [m.p for m in s4.modules() if isinstance(m, torch.nn.Dropout)]
    assert drops == [0.3, 0.4, 0.5]
    assert keras_param_count(S2MelCNN(6))["total"] == 412_038


# ----------------------------------------------------------------------------- input pipelines
def _noise(seconds: float, sr: int, seed: int = 0) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal(int(round(seconds * sr)))).astype(np.float32)


@pytest.mark.parametrize("n_mfcc, expected", [(20, 2376), (40, 4536)])
def test_frame_features_of_2_5_s_give_the_seed_lengths_without_padding(n_mfcc, expected):
    y = _noise(2.5, 22050)
    assert frame_features(y, sample_rate_hz=22050, n_mfcc=n_mfcc).shape == (expected,)


def test_short_clips_are_zero_padded_at_the_end_like_the_seeds():
    y = _noise(1.0, 22050)
    x = frame_features(y, sample_rate_hz=22050, n_mfcc=20, n_values=2376)
    natural = frame_features(y, sample_rate_hz=22050, n_mfcc=20)
    assert x.shape == (2376,) and natural.size < 2376
    np.testing.assert_array_equal(x[: natural.size], natural)
    assert not x[natural.size :].any()


@pytest.mark.parametrize("name", ["s0", "s1", "s2", "s3", "s4"])
def test_recipe_pipelines_produce_their_declared_dims(name):
    inp = seed_recipe(name).input
    y = inp.window(_noise(4.0, inp.sample_rate_hz))
    x = inp.extract(y)
    assert x.shape == inp.dims and x.dtype == np.float32 and np.isfinite(x).all()


def test_windows_follow_the_seeds():
    s3 = seed_recipe("s3").input
    y = np.arange(22050 * 4, dtype=np.float32)
    w = s3.window(y)
    assert w.size == 55125 and w[0] == round(0.6 * 22050)
    assert seed_recipe("s2").input.window(y).size == 66150
    assert seed_recipe("s4").input.window(np.ones(16000, dtype=np.float32)).size == 48000


def test_two_channel_is_normalised_per_array():
    x = two_channel(_noise(3.0, 16000), sample_rate_hz=16000)
    assert x.shape == (2, 32, 94)
    np.testing.assert_allclose(x.reshape(2, -1).mean(axis=1), 0, atol=1e-4)
    np.testing.assert_allclose(x.reshape(2, -1).std(axis=1), 1, atol=1e-3)


def test_resize_and_normalize_helpers():
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    assert resize_array(a, (3, 4)).tolist() == a.tolist()
    r = resize_array(a, (5, 7))
    assert r.shape == (5, 7) and r[0, 0] == 0 and r[-1, -1] == 11
    assert not normalize_array(np.ones((2, 2))).any()


# ----------------------------------------------------------------------------- recipes
def test_recipes_are_registered_for_the_cli():
    from emovox.features.registry import get_feature_set
    from emovox.training.recipes import get_recipe, recipe_names

    assert {"s0", "s1", "s2", "s3", "s4"} <= set(recipe_names())
    for name in seed_recipe_names():
        r = get_recipe(name)
        assert r.arch == seed_recipe(name).architecture and r.input_kind == "features"
        assert get_feature_set(f"seed-{name}").name == f"seed-{name}"


@pytest.mark.parametrize(
    "name, scheme",
    [
        ("s0", "ravdess8"),
        ("s1", "seven"),
        ("s2", "six-calm-merged"),
        ("s3", "ravdess8"),
        ("s4", "six-no-sad-surprised"),
    ],
)
def test_label_schemes_and_serialisation(name, scheme):
    r = seed_recipe(name)
    assert r.label_scheme == scheme
    data = json.loads(json.dumps(r.to_dict()))
    assert data["name"] == name and data["train"]["lr"] == 1e-3
    if r.augmentation is not None:
        from emovox.augment import transform_from_dict

        assert transform_from_dict(data["augmentation"]) == r.augmentation


def test_training_configs_follow_seed_systems():
    s3 = seed_recipe("s3").train
    assert (s3.batch_size, s3.early_stop_patience, s3.plateau_factor, s3.monitor) == (64, 5, 0.5, "val_loss")
    s4 = seed_recipe("s4").train
    assert (s4.early_stop_patience, s4.monitor, s4.class_weights) == (10, "val_accuracy", "balanced")
    assert seed_recipe("s2").train.early_stop_patience == 6
    assert seed_recipe("s1").train.early_stop_patience is None
    with pytest.raises(ConfigError, match="unknown seed recipe 's9'"):
        seed_recipe("s9")


def test_s1_on_the_fly_draws_reproduce_the_four_copies_and_replay():
    recipe = seed_recipe("s1")
    waves = [recipe.input.window(_noise(3.2, 22050, seed=i)) for i in range(2)]
    feats = np.stack([recipe.input.extract(w) for w in waves])
    ds = SeedTrainDataset(recipe, waves, [0, 1], features=feats, seed=3)
    # steps fire with p=.5 each: over many draws the four variants appear about equally
    fired = []
    for i in range(400):
        rng = np.random.default_rng([3, 0, i])
        fired.append(tuple(rng.random() < p for _, p in recipe.augmentation.steps))
    shares = {v: fired.count(v) / len(fired) for v in set(fired)}
    assert len(shares) == 4 and all(0.18 < s < 0.32 for s in shares.values())
    a, b = ds[0], ds[0]
    np.testing.assert_array_equal(a[0], b[0])
    ds.set_epoch(1)
    assert ds[0][0].shape == (4536,)


def test_s4_dataset_balances_to_the_median_each_epoch():
    recipe = seed_recipe("s4")
    labels = [0] * 6 + [1] * 3 + [2] * 1
    waves = [recipe.input.window(_noise(0.5, 16000, seed=i)) for i in range(len(labels))]
    feats = np.zeros((len(labels), 2, 32, 94), dtype=np.float32)
    ds = SeedTrainDataset(recipe, waves, labels, features=feats, seed=0)
    assert len(ds) == 10 + 2 and np.bincount(ds.labels).tolist() == [6, 3, 3]
    assert not ds[0][0].any()  # an original: clean (zeros here), not augmented
    x, y = ds[10]
    assert y == 2 and x.shape == (2, 32, 94) and x.any()  # an extra: recomputed + augmented
    np.testing.assert_array_equal(ds[10][0], x)


def test_a_replica_trains_with_the_engine(tmp_path):
    from emovox.training.data import ArrayDataset
    from emovox.training.engine import train_model

    recipe = seed_recipe("s0")
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(2), 24)
    x = rng.standard_normal((48, 40)).astype(np.float32) + labels[:, None] * 2.0
    model = S0MfccCNN(2)
    cfg = recipe.train.replace(epochs=3, threads=1)
    result = train_model(
        model, ArrayDataset(x, labels), ArrayDataset(x, labels), cfg, out_dir=tmp_path, n_classes=2, plot=False
    )
    assert len(result.history) == 3 and result.best_record["val_accuracy"] > 0.8


@pytest.mark.corpora
def test_real_ravdess_clip_through_the_s3_pipeline():
    from emovox.corpora import default_corpora_root, load_corpus

    if not (default_corpora_root() / "ravdess").is_dir():
        pytest.skip("shared corpora not available")
    record = load_corpus("ravdess")[0]
    inp = seed_recipe("s3").input
    y = inp.load(record.path)
    assert y.shape == (55125,)
    x = inp.extract(y)
    assert x.shape == (2376,) and x[-20:].any()  # a full 2.5 s window: no zero padding


@pytest.mark.parametrize("name", ["s2", "s4"])
def test_image_replicas_accept_the_flattened_feature_set_vectors(name):
    from emovox.features.registry import extract_features
    from emovox.models.spec import TaskSpec

    recipe = seed_recipe(name)
    inp = recipe.input
    v = extract_features(f"seed-{name}", _noise(3.5, inp.sample_rate_hz), sample_rate_hz=inp.sample_rate_hz)
    assert v.shape == (math.prod(inp.dims),)
    labels = get_scheme(recipe.label_scheme).classes
    spec = TaskSpec(
        labels=labels,
        sample_rate_hz=inp.sample_rate_hz,
        input_kind="features",
        feature=f"seed-{name}",
        feature_dims=v.shape,
    )
    model = build_model(recipe.architecture, spec).eval()
    assert model(torch.from_numpy(np.stack([v, v]))).shape == (2, len(labels))


def test_importing_emovox_recipes_also_registers_the_flagship():
    import importlib.util

    from emovox.training.recipes import recipe_names

    if importlib.util.find_spec("emovox.recipes.flagship") is None:
        pytest.skip("flagship recipe module not present")
    assert "flagship" in recipe_names()


@pytest.mark.parametrize("name", ["s0", "s1", "s2", "s3", "s4"])
def test_make_datasets_scales_like_the_seed_and_matches_the_artifact_pipeline(name):
    """The hook ``emovox train`` and the bench share: the seed's own scaling (standard only for S1/S3),
    and validation inputs identical to what ``prepare_inputs`` makes from the artifact's preprocessing."""
    from emovox.training.pipeline import prepare_inputs
    from emovox.training.recipes import get_recipe

    recipe = seed_recipe(name)
    sr = recipe.input.sample_rate_hz
    waves = [_noise(1.5 + 0.5 * i, sr, seed=i) for i in range(6)]
    train, val, pre = get_recipe(name).make_datasets(waves[:4], [0, 1, 0, 1], waves[4:], [0, 1], seed=0)
    assert isinstance(train, SeedTrainDataset) and train.seed == 0
    flat = math.prod(recipe.input.dims)
    assert train[0][0].shape == val[0][0].shape == (flat,)
    assert pre["scaling"] == recipe.scaling
    if recipe.scaling == "standard":
        clean = recipe.features(waves[:4]).reshape(4, -1)
        np.testing.assert_allclose(pre["normalization"]["mean"], clean.mean(axis=0), rtol=1e-6, atol=1e-6)
    else:  # S0, S2: none; S4: per-array, inside the feature computation
        assert pre["normalization"] is None
    task = recipe.task_spec(get_scheme(recipe.label_scheme).classes).to_dict()
    x = prepare_inputs(waves[4:], task, pre)
    np.testing.assert_array_equal(x, np.stack([val[i][0] for i in range(len(val))]))
