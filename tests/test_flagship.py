"""The flagship model: shapes, size, ONNX export parity, one training step."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from emovox.errors import ConfigError
from emovox.models.flagship import FlagshipConfig, FlagshipNet, UtteranceNorm, build_flagship
from emovox.recipes.flagship import FlagshipRecipe, augment_batch, predict_logits, train_flagship


@pytest.fixture(autouse=True)
def _threads():
    old = torch.get_num_threads()
    torch.set_num_threads(1)  # a shared two-core machine: more threads only contend
    yield
    torch.set_num_threads(old)


def _waves(batch: int, n: int, seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 16000
    f0 = rng.uniform(100, 300, size=(batch, 1))
    y = 0.3 * np.sin(2 * np.pi * f0 * t) + 0.01 * rng.standard_normal((batch, n))
    return torch.from_numpy(y.astype(np.float32))


@pytest.mark.parametrize("n", [800, 16000, 48000])
def test_waveform_in_logits_out(n):
    model = build_flagship(8).eval()
    with torch.no_grad():
        out = model(_waves(3, n))
    assert out.shape == (3, 8)
    assert torch.isfinite(out).all()


def test_frontend_is_first_submodule_and_gain_invariant():
    model = build_flagship(7).eval()
    assert next(iter(model.named_children()))[0] == "frontend"
    x = _waves(2, 16000)
    with torch.no_grad():
        a, b = model(x), model(4.0 * x)
    torch.testing.assert_close(a, b, atol=1e-3, rtol=1e-3)


def test_size_is_small():
    model = build_flagship(8)
    n_params = sum(p.numel() for p in model.parameters())
    assert 100_000 < n_params < 1_500_000  # a few MB at most in float32


def test_utterance_norm_zero_mean_unit_var():
    x = torch.randn(2, 64, 50) * 3 + 5
    y = UtteranceNorm()(x)
    torch.testing.assert_close(y.mean(-1), torch.zeros(2, 64), atol=1e-4, rtol=0)
    torch.testing.assert_close(y.std(-1, unbiased=False), torch.ones(2, 64), atol=1e-3, rtol=0)


def test_bad_config_is_rejected():
    with pytest.raises(ConfigError, match="n_classes"):
        FlagshipConfig(n_classes=1)
    with pytest.raises(ConfigError, match="n_mels"):
        FlagshipConfig(n_mels=40)


def test_registered_in_registry():
    from emovox.models.registry import build_model
    from emovox.models.spec import TaskSpec

    spec = TaskSpec(labels=("a", "b", "c"))
    model = build_model("flagship", spec)
    assert isinstance(model, FlagshipNet)
    assert model(_waves(1, 8000)).shape == (1, 3)


def test_onnx_export_dynamic_batch_and_length_matches_torch(tmp_path):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    model = build_flagship(8).eval()
    path = tmp_path / "flagship.onnx"
    torch.onnx.export(
        model,
        (_waves(2, 32000),),
        str(path),
        input_names=["waveform"],
        output_names=["logits"],
        dynamic_axes={"waveform": {0: "batch", 1: "samples"}, "logits": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    onnx.checker.check_model(onnx.load(str(path)))
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for batch, n in [(1, 48000), (3, 20000)]:
        x = _waves(batch, n, seed=batch)
        with torch.no_grad():
            ref = model(x).numpy()
        got = sess.run(None, {"waveform": x.numpy()})[0]
        assert got.shape == (batch, 8)
        np.testing.assert_allclose(got, ref, atol=1e-4, rtol=1e-4)


def test_augment_batch_shape_and_determinism():
    rng = np.random.default_rng(0)
    logmels = [rng.standard_normal((64, t)).astype(np.float32) for t in (30, 250, 400)]
    recipe = FlagshipRecipe(crop_frames=100, noise_p=1.0)
    a = augment_batch(logmels, recipe, np.random.default_rng(1))
    b = augment_batch(logmels, recipe, np.random.default_rng(1))
    assert a.shape == (3, 64, 100)
    torch.testing.assert_close(a, b)


def test_one_training_step_decreases_loss():
    torch.manual_seed(0)
    model = build_flagship(3, dropout=0.0).train()  # BatchNorm uses batch statistics both times
    x = _waves(6, 8000)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loss0 = torch.nn.functional.cross_entropy(model(x), y)
    opt.zero_grad()
    loss0.backward()
    opt.step()
    loss1 = torch.nn.functional.cross_entropy(model(x), y)
    assert loss1.item() < loss0.item()


def test_train_flagship_learns_a_separable_task():
    """A few epochs on two separable classes: the loss falls and the training data is classified well
    above chance (an untrained model of the same initialisation is at chance)."""
    rng = np.random.default_rng(0)
    # two separable classes: a temporal modulation in the upper bands, or none (survives UtteranceNorm)
    logmels, labels = [], []
    for i in range(32):
        x = rng.standard_normal((64, 60)).astype(np.float32)
        if i % 2:
            x[32:] += 3 * np.sin(np.arange(60, dtype=np.float32) / 3)
        logmels.append(x)
        labels.append(i % 2)
    y = np.array(labels)
    small = {"channels": (8, 16, 16, 16), "stem_channels": 8, "embed_dim": 16}
    recipe = FlagshipRecipe(epochs=12, batch_size=8, crop_frames=40, mixup_alpha=0.0, lr=1e-2, model=small)
    torch.manual_seed(0)
    untrained = FlagshipNet(FlagshipConfig(n_classes=2, **small)).eval()
    epoch_losses: list[float] = []
    model = train_flagship(
        logmels,
        y,
        2,
        recipe,
        init_state=untrained.state_dict(),
        log=lambda line: epoch_losses.append(float(line.split()[3])),  # "epoch E/N loss L Ts"
    )
    logits = predict_logits(model, logmels)
    assert logits.shape == (32, 2) and np.isfinite(logits).all()

    def cross_entropy(m) -> float:
        return float(
            torch.nn.functional.cross_entropy(torch.from_numpy(predict_logits(m, logmels)), torch.from_numpy(y))
        )

    assert len(epoch_losses) == 12 and np.mean(epoch_losses[-3:]) < np.mean(epoch_losses[:3]) - 0.1
    assert cross_entropy(model) < 0.5 * cross_entropy(untrained)
    assert np.mean(predict_logits(untrained, logmels).argmax(1) == y) <= 0.6  # chance: 0.5
    assert np.mean(logits.argmax(1) == y) >= 0.9


def test_engine_recipe_and_hooks():
    from emovox.recipes.flagship import flagship_engine_recipe
    from emovox.training.recipes import get_recipe

    recipe = flagship_engine_recipe()
    assert recipe.arch == "flagship" and recipe.input_kind == "waveform"
    assert get_recipe("flagship").name == "flagship"
    rng = np.random.default_rng(0)
    x = _waves(3, 16000).numpy()
    assert recipe.wave_augment(x, rng).shape == x.shape
    f = np.zeros((3, 64, 101), np.float32)
    assert recipe.spec_augment(f, rng).shape == f.shape


def test_train_flagship_starts_from_init_state():
    rng = np.random.default_rng(0)
    logmels = [rng.standard_normal((64, 40)).astype(np.float32) for _ in range(8)]
    small = {"channels": (8, 8, 8, 8), "stem_channels": 8, "embed_dim": 8}
    recipe = FlagshipRecipe(epochs=1, batch_size=4, crop_frames=32, model=small, ema_decay=0.0, lr=1e-12)
    base = FlagshipNet(FlagshipConfig(n_classes=2, **small)).state_dict()
    model = train_flagship(logmels, np.arange(8) % 2, 2, recipe, init_state=base)
    # with a vanishing learning rate the weights stay at the given initialisation
    torch.testing.assert_close(model.head.weight, base["head.weight"], atol=1e-6, rtol=0)
