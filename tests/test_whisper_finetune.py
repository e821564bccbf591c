"""Fine-tuning the top Whisper blocks inside the training engine (recipe ``whisper-finetune``).

A tiny random encoder (3 blocks, d_model 32) stands in for Whisper base; a
small labelled corpus of speech-like clips ('sad' low and soft, 'angry' high
and loud) is the easy task.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from emovox.corpora import load_corpus
from emovox.errors import ConfigError, ModelError
from emovox.models.whisper_encoder import WhisperEncoderConfig, WhisperLogMel, load_whisper_encoder
from emovox.models.whisper_finetune import WhisperFinetuneClassifier, finetune_params
from emovox.models.whisper_pooling import pool_hidden_states
from emovox.recipes.whisper_finetune import (
    CachedStates,
    FinetuneOptions,
    build_model,
    encode_clips,
    train_whisper_finetune,
)
from emovox.recipes.whisper_finetune_data import load_clip
from emovox.testing import speech_like, write_audio, write_tiny_whisper_encoder, write_two_emotion_corpus
from emovox.training.callbacks import Callback
from emovox.training.config import TrainConfig
from emovox.training.optim import make_optimizer

torch.set_num_threads(1)
TINY = WhisperEncoderConfig(n_mels=80, d_model=32, n_heads=2, n_layers=3, n_ctx=1500)
FAST = {"epochs": 4, "batch_size": 8, "crop_s": 0.4, "lr": 1e-2, "encoder_lr_scale": 0.5, "dropout": 0.0}


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory):
    return write_tiny_whisper_encoder(tmp_path_factory.mktemp("tiny-whisper"), TINY)


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    """4 speakers x 2 emotions x 3 clips: 'angry' loud and high, 'sad' soft and low (CSV layout)."""
    return load_corpus("csv", write_two_emotion_corpus(tmp_path_factory.mktemp("own-data")))


def _model(encoder_dir, **options):
    model, _ = build_model(encoder_dir, 2, FinetuneOptions(**options))
    return model.eval()


@pytest.mark.parametrize(
    "depth, top_blocks, lora_rank, layers", [(3, 1, 0, None), (2, 2, 0, None), (3, 2, 4, (2, 3)), (3, 1, 0, (0, 3))]
)
def test_cached_state_path_equals_the_waveform_path_and_the_frozen_encoder(
    encoder_dir, tmp_path, depth, top_blocks, lora_rank, layers
):
    model = _model(encoder_dir, depth=depth, top_blocks=top_blocks, lora_rank=lora_rank, layers=layers)
    split, layers = depth - top_blocks, list(model.layers)
    assert model.lower_layers == tuple(i for i in layers if i < split)
    path = str(write_audio(tmp_path / "clip.wav", speech_like(0.9, seed=3), sample_rate_hz=16000))
    y = torch.from_numpy(load_clip(path))  # decoded and trimmed as the cache and the Predictor do
    full = load_whisper_encoder(encoder_dir)
    with torch.inference_mode():
        hidden = full(WhisperLogMel(80)(y[None]))
        logits = model(y[None])
        x = torch.cat([hidden[i] for i in (*model.lower_layers, split)], dim=-1)  # from the whole encoder
        cached = model.forward_states(x)
        top = model.top.hidden_states(x)
    torch.testing.assert_close(cached, logits, atol=1e-5, rtol=0)
    # an untrained top part (copied blocks, zero LoRA update) computes the encoder's own states
    torch.testing.assert_close(
        pool_hidden_states([top[i] for i in layers]),
        pool_hidden_states([hidden[i] for i in layers]),
        atol=1e-5,
        rtol=1e-5,
    )
    # the cache holds the same input in float16, and the frozen encoder's pooled states 0..K
    enc = encode_clips([path], encoder_dir, split=split, depth=depth, lower_layers=model.lower_layers)
    assert enc.states[0].dtype == np.float16 and enc.pooled.shape == (1, depth + 1, 2, 32)
    np.testing.assert_allclose(enc.states[0].astype(np.float32), x[0].numpy(), atol=2e-3, rtol=2e-3)
    np.testing.assert_allclose(enc.pooled[0], pool_hidden_states(hidden[: depth + 1])[0].numpy(), atol=1e-5, rtol=1e-5)


def test_optimizer_groups_decay_the_learning_rate_per_block(encoder_dir):
    model = _model(encoder_dir, depth=3, top_blocks=2)
    opt = make_optimizer(
        TrainConfig(lr=1e-3, encoder_lr_scale=0.1, layer_decay=0.5, scheduler="cosine_steps"), model.top
    )
    lrs = {g["name"]: g["lr"] for g in opt.param_groups}
    assert lrs == pytest.approx({"head": 1e-3, "block3": 1e-4, "block2": 5e-5})
    block3 = next(g for g in opt.param_groups if g["name"] == "block3")
    assert any(p is model.top.layer_norm.weight for p in block3["params"])  # the final norm goes with block K
    assert sum(len(g["params"]) for g in opt.param_groups) == sum(1 for p in model.top.parameters() if p.requires_grad)
    from emovox.training.schedules import make_scheduler

    config = TrainConfig(scheduler="onecycle", encoder_lr_scale=0.1, epochs=1)
    optimizer = make_optimizer(config, model.top)
    peaks = [g["lr"] for g in optimizer.param_groups]
    scheduler = make_scheduler(config, optimizer, steps_per_epoch=100)
    assert [g["max_lr"] for g in optimizer.param_groups] == peaks  # one-cycle keeps each group's own peak
    assert scheduler is not None and len(set(peaks)) > 1
    # a model without optimizer_groups keeps one group at lr
    plain = make_optimizer(TrainConfig(lr=2e-3), torch.nn.Linear(3, 2))
    assert len(plain.param_groups) == 1 and plain.param_groups[0]["lr"] == 2e-3

    class Broken(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)

        def optimizer_groups(self, lr, *, encoder_lr_scale, layer_decay):
            return [{"params": list(self.a.parameters()), "lr": lr}]

    with pytest.raises(ModelError, match="exactly once"):
        make_optimizer(TrainConfig(), Broken())


def test_lora_trains_only_adapters_and_head(encoder_dir):
    model = _model(encoder_dir, depth=3, top_blocks=1, lora_rank=4)
    trainable = sorted(n for n, p in model.named_parameters() if p.requires_grad)
    assert trainable == [
        "top.blocks.0.self_attn.q_proj.lora_a",
        "top.blocks.0.self_attn.q_proj.lora_b",
        "top.blocks.0.self_attn.v_proj.lora_a",
        "top.blocks.0.self_attn.v_proj.lora_b",
        "top.head.bias",
        "top.head.weight",
    ]


def test_gradient_checkpointing_gives_the_same_gradients(encoder_dir):
    grads = []
    for checkpointing in (False, True):
        model = _model(encoder_dir, depth=3, top_blocks=2, checkpointing=checkpointing).train()
        h = torch.randn(2, 20, 2 * 32, generator=torch.Generator().manual_seed(0))  # states 0 and 1
        model.forward_states(h).pow(2).sum().backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.top.parameters() if p.grad is not None]))
    torch.testing.assert_close(grads[0], grads[1], atol=1e-6, rtol=1e-5)


def test_cached_states_crops_are_seeded_tiled_and_whole_for_validation():
    states = [np.arange(10 * 2, dtype=np.float16).reshape(10, 2), np.ones((3, 2), np.float16)]
    ds = CachedStates(states, [0, 1], crop_frames=4, seed=7)
    a = ds[0][0]
    assert a.shape == (4, 2) and a.dtype == np.float32
    np.testing.assert_array_equal(a, CachedStates(states, [0, 1], crop_frames=4, seed=7)[0][0])
    assert any(not np.array_equal(a, (ds.set_epoch(e), ds[0][0])[1]) for e in range(1, 6))
    assert ds[1][0].shape == (4, 2)  # 3 frames tiled
    whole = CachedStates(states, [0, 1], crop_frames=None)
    assert whole[0][0].shape == (10, 2)
    centre = CachedStates(states, [0, 1], crop_frames=4, crop="center")
    np.testing.assert_array_equal(centre[0][0][:, 0], [6, 8, 10, 12])


def test_finetune_learns_keeps_the_lower_blocks_and_saves_a_loadable_artifact(encoder_dir, records, tmp_path):
    from emovox.inference import load_model

    out = tmp_path / "ft"
    summary = train_whisper_finetune(
        records,
        encoder_dir,
        out,
        options=FinetuneOptions(depth=3, top_blocks=1, head_init="random", val_fraction=0.25, **FAST),
        cache_dir=tmp_path / "cache",
        plot=False,
    )
    history = json.loads((out / "train" / "log.json").read_text())
    history = history if isinstance(history, list) else history["history"]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert history[-1]["train_accuracy"] > 0.6  # chance: 0.5
    assert summary["n_val"] > 0 and summary["metrics"]["validation"]["uar"] is not None
    config = json.loads((out / "model" / "config.json").read_text())
    assert config["architecture"]["name"] == "whisper-finetune" and config["architecture"]["params"]["top_blocks"] == 1
    assert config["calibration"]["temperature"] > 0  # calibrated on the validation speakers
    saved = load_file(str(out / "model" / "model.safetensors"))
    original = load_whisper_encoder(encoder_dir).state_dict()
    for k in ("layers.0.fc1.weight", "layers.1.self_attn.q_proj.weight", "conv1.weight"):  # frozen blocks 1..2
        assert saved[f"encoder.{k}"].dtype == torch.float16
        torch.testing.assert_close(saved[f"encoder.{k}"].float(), original[k], atol=0, rtol=0)
    moved = (saved["top.blocks.0.fc1.weight"] - original["layers.2.fc1.weight"]).abs().max()
    assert moved > 0  # block 3 was trained
    predictor = load_model(out / "model", backend="torch", gate=False, min_confidence=0.0)
    assert predictor.predict(records[0].path).label in ("sad", "angry")
    # the Predictor's logits are the model's on the decoded, trimmed clip
    model = WhisperFinetuneClassifier(2, **config["architecture"]["params"])
    model.load_state_dict(saved)
    with torch.inference_mode():
        expect = model(torch.from_numpy(load_clip(records[0].path))[None])[0].numpy()
    np.testing.assert_allclose(predictor.clip_logits(records[0].path), expect, atol=1e-4, rtol=1e-4)


def test_kill_and_resume_ends_with_the_weights_of_an_uninterrupted_run(encoder_dir, records, tmp_path):
    options = FinetuneOptions(depth=3, top_blocks=2, **{**FAST, "epochs": 2})

    class Interrupt(Callback):
        def on_checkpoint(self, epoch, path):
            raise KeyboardInterrupt

    common = {"options": options, "cache_dir": tmp_path / "cache", "folds": 2, "fold": 1, "plot": False}
    straight = train_whisper_finetune(records, encoder_dir, tmp_path / "straight", **common)
    with pytest.raises(KeyboardInterrupt):
        train_whisper_finetune(records, encoder_dir, tmp_path / "killed", callbacks=[Interrupt()], **common)
    assert not (tmp_path / "killed" / "model").exists()
    resumed = train_whisper_finetune(records, encoder_dir, tmp_path / "killed", **common)
    a = load_file(str(tmp_path / "straight" / "model" / "model.safetensors"))
    b = load_file(str(tmp_path / "killed" / "model" / "model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert straight["metrics"]["test"] == resumed["metrics"]["test"] and straight["n_test"] > 0
    # other settings in the same folder are refused, not mixed
    with pytest.raises(ConfigError, match="other settings"):
        train_whisper_finetune(
            records, encoder_dir, tmp_path / "killed", **{**common, "options": FinetuneOptions(depth=3, top_blocks=1)}
        )


def test_lora_run_changes_only_adapters_and_head(encoder_dir, records, tmp_path):
    train_whisper_finetune(
        records,
        encoder_dir,
        tmp_path / "lora",
        options=FinetuneOptions(depth=3, top_blocks=1, lora_rank=2, **{**FAST, "epochs": 2}),
        cache_dir=tmp_path / "cache",
        plot=False,
    )
    saved = load_file(str(tmp_path / "lora" / "model" / "model.safetensors"))
    original = load_whisper_encoder(encoder_dir).state_dict()
    torch.testing.assert_close(
        saved["top.blocks.0.self_attn.q_proj.base.weight"], original["layers.2.self_attn.q_proj.weight"]
    )
    torch.testing.assert_close(saved["top.blocks.0.fc1.weight"], original["layers.2.fc1.weight"])
    assert saved["top.blocks.0.self_attn.v_proj.lora_b"].abs().max() > 0


def test_cli_trains_the_recipe(encoder_dir, records, tmp_path, capsys):
    from emovox.cli.main import main

    csv = records[0].path.rsplit("/", 1)[0] + "/mine.csv"
    args = ["train", "--recipe", "whisper-finetune", "--corpus", f"csv:{csv}", "--out", str(tmp_path / "cli")]
    assert main(args + ["--no-progress"]) != 0  # without --backbone: refused with a one-line error
    assert "--backbone" in capsys.readouterr().err
    code = main(
        args
        + ["--backbone", str(encoder_dir), "--epochs", "1", "--batch-size", "8", "--clip-s", "0.4", "--folds", "2"]
        + ["--set", "depth=3", "--set", f"cache_dir={tmp_path / 'cache'}", "--no-progress"]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "trained whisper-finetune (top 1 of 3 blocks)" in out and "test UAR" in out
    assert (tmp_path / "cli" / "model" / "config.json").is_file()


def test_finetune_params_and_bad_settings(encoder_dir):
    params = finetune_params(TINY.to_dict(), depth=3, top_blocks=2)
    assert params["layers"] == [0, 1, 2, 3] and params["lora_rank"] == 0
    with pytest.raises(ConfigError, match="top_blocks"):
        WhisperFinetuneClassifier(2, encoder=TINY.to_dict(), depth=2, top_blocks=3)
    with pytest.raises(ConfigError, match="layers"):
        WhisperFinetuneClassifier(2, encoder=TINY.to_dict(), depth=2, top_blocks=1, layers=[0, 3])
    with pytest.raises(ConfigError, match="head_init"):
        FinetuneOptions(head_init="zeros")


def test_a_clip_tiled_whole_times_gives_the_same_logits(encoder_dir):
    """Why short clips are tiled up to the crop: repeated frames leave attention and pooling unchanged."""
    model = _model(encoder_dir, depth=3, top_blocks=2)
    x = torch.randn(1, 13, 2 * 32, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        torch.testing.assert_close(model.forward_states(x.repeat(1, 3, 1)), model.forward_states(x), atol=1e-5, rtol=0)


def test_two_torchrun_processes_train_the_weights_of_one(encoder_dir, records, tmp_path):
    """DDP: the recipe's dataset crops by (seed, epoch, clip) and has no batch hook, so 2 processes = 1 process."""
    import os
    import subprocess
    import sys

    from emovox.cli.main import main

    csv = records[0].path.rsplit("/", 1)[0] + "/mine.csv"
    args = ["train", "--recipe", "whisper-finetune", "--corpus", f"csv:{csv}", "--backbone", str(encoder_dir)]
    args += ["--epochs", "2", "--batch-size", "8", "--clip-s", "0.4", "--no-progress", "--set", "depth=3"]
    args += ["--set", "dropout=0", "--set", f"cache_dir={tmp_path / 'cache'}"]
    assert main([*args, "--out", str(tmp_path / "one")]) == 0
    driver = tmp_path / "driver.py"  # the recipe registered in every process, however emovox.recipes lists it
    driver.write_text(
        "import sys\nimport emovox.recipes.whisper_finetune\nfrom emovox.cli.main import main\nsys.exit(main(sys.argv[1:]))\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    done = subprocess.run(
        [*command, str(driver), *args, "--out", str(tmp_path / "two")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    one = load_file(str(tmp_path / "one" / "model" / "model.safetensors"))
    two = load_file(str(tmp_path / "two" / "model" / "model.safetensors"))
    for k in one:
        torch.testing.assert_close(one[k], two[k], atol=1e-5, rtol=1e-4, msg=k)
