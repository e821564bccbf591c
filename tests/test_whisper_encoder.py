"""Frozen Whisper encoder: CT2 import, loading, numerics against a NumPy reference, front end, errors.

The fast tests build a tiny random Whisper encoder (2 layers, d_model 64),
write it in the CTranslate2 binary format and import it with
``scripts/import_whisper_ct2.py``. One test compares the real Whisper base
encoder with the NumPy reference on a RAVDESS clip; it runs only when an
imported model exists ($EMOVOX_WHISPER_DIR or /tmp/emovox-whisper/base).
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import struct
from pathlib import Path

import librosa
import numpy as np
import pytest
import torch

from emovox.errors import FeatureError, ModelError
from emovox.models.whisper_encoder import WhisperLogMel, load_whisper_encoder, sinusoids

REPO = Path(__file__).resolve().parents[1]
SPEC = importlib.util.spec_from_file_location("import_whisper_ct2", REPO / "scripts" / "import_whisper_ct2.py")
importer = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(importer)

TINY = {"n_mels": 16, "d_model": 64, "n_heads": 4, "n_layers": 2, "n_ctx": 40}


# -- a tiny random Whisper encoder, HF names, float16-representable -----------------------------
def tiny_weights(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    m, d, L = TINY["n_mels"], TINY["d_model"], TINY["n_layers"]

    def r(*shape, scale=0.2):
        return (rng.standard_normal(shape) * scale).astype(np.float16).astype(np.float32)

    w = {
        "conv1.weight": r(d, m, 3),
        "conv1.bias": r(d),
        "conv2.weight": r(d, d, 3, scale=0.05),
        "conv2.bias": r(d),
        "embed_positions": sinusoids(TINY["n_ctx"], d).numpy().astype(np.float16).astype(np.float32),
        "layer_norm.weight": 1 + r(d),
        "layer_norm.bias": r(d),
    }
    for i in range(L):
        p = f"layers.{i}."
        for ln in ("self_attn_layer_norm", "final_layer_norm"):
            w[p + ln + ".weight"], w[p + ln + ".bias"] = 1 + r(d), r(d)
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            w[p + f"self_attn.{proj}.weight"] = r(d, d, scale=0.15)
            if proj != "k_proj":
                w[p + f"self_attn.{proj}.bias"] = r(d)
        w[p + "fc1.weight"], w[p + "fc1.bias"] = r(4 * d, d, scale=0.1), r(4 * d)
        w[p + "fc2.weight"], w[p + "fc2.bias"] = r(d, 4 * d, scale=0.05), r(d)
    return {k: v.astype(np.float16).astype(np.float32) for k, v in w.items()}  # exact in the float16 file


def to_ct2_variables(w: dict[str, np.ndarray], *, key_bias: np.ndarray) -> dict[str, np.ndarray]:
    """HF names -> CT2 names (fused qkv; ``key_bias`` in the k slot), float16, plus a decoder variable."""
    v = {
        "encoder/conv1/weight": w["conv1.weight"],
        "encoder/conv1/bias": w["conv1.bias"],
        "encoder/conv2/weight": w["conv2.weight"],
        "encoder/conv2/bias": w["conv2.bias"],
        "encoder/position_encodings/encodings": w["embed_positions"],
        "encoder/layer_norm/gamma": w["layer_norm.weight"],
        "encoder/layer_norm/beta": w["layer_norm.bias"],
    }
    for i in range(TINY["n_layers"]):
        p, c = f"layers.{i}.", f"encoder/layer_{i}/"
        a = p + "self_attn."
        v[c + "self_attention/linear_0/weight"] = np.concatenate([w[a + f"{x}_proj.weight"] for x in "qkv"])
        v[c + "self_attention/linear_0/bias"] = np.concatenate([w[a + "q_proj.bias"], key_bias, w[a + "v_proj.bias"]])
        v[c + "self_attention/linear_1/weight"], v[c + "self_attention/linear_1/bias"] = (
            w[a + "out_proj.weight"],
            w[a + "out_proj.bias"],
        )
        v[c + "self_attention/layer_norm/gamma"] = w[p + "self_attn_layer_norm.weight"]
        v[c + "self_attention/layer_norm/beta"] = w[p + "self_attn_layer_norm.bias"]
        v[c + "ffn/layer_norm/gamma"], v[c + "ffn/layer_norm/beta"] = (
            w[p + "final_layer_norm.weight"],
            w[p + "final_layer_norm.bias"],
        )
        for j, fc in ((0, "fc1"), (1, "fc2")):
            v[c + f"ffn/linear_{j}/weight"], v[c + f"ffn/linear_{j}/bias"] = w[p + fc + ".weight"], w[p + fc + ".bias"]
    v = {k: a.astype(np.float16) for k, a in v.items()}
    v["encoder/num_heads"] = np.array(TINY["n_heads"], dtype=np.int16)
    v["decoder/embeddings/weight"] = np.ones((5, TINY["d_model"]), dtype=np.float16)
    return v


def write_ct2(path: Path, variables: dict[str, np.ndarray]) -> None:
    """CTranslate2 binary format 6: header, variables (name, rank, shape, dtype id, bytes), no aliases."""
    ids = {np.dtype(np.float32): 0, np.dtype(np.int8): 1, np.dtype(np.int16): 2, np.dtype(np.float16): 4}

    def s(text):
        raw = text.encode() + b"\0"
        return struct.pack("<H", len(raw)) + raw

    out = [struct.pack("<I", 6), s("WhisperSpec"), struct.pack("<II", 3, len(variables))]
    for name, a in variables.items():
        out += [
            s(name),
            struct.pack("<B", a.ndim),
            struct.pack(f"<{a.ndim}I", *a.shape),
            struct.pack("<BI", ids[a.dtype], a.nbytes),
            a.tobytes(),
        ]
    out.append(struct.pack("<I", 0))
    path.write_bytes(b"".join(out))


# -- an independent NumPy Whisper encoder over HF-named float32 weights ------------------------
def np_encoder(w: dict[str, np.ndarray], mel: np.ndarray, n_heads: int) -> list[np.ndarray]:
    """``mel`` ``(n_mels, T)`` -> hidden states ``(ceil(T / 2), d)``, as WhisperEncoder (loops, float64)."""
    w = {k: v.astype(np.float64) for k, v in w.items()}
    erf = np.vectorize(math.erf)
    gelu = lambda x: 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))  # noqa: E731

    def conv(x, weight, bias, stride):  # x (C, T), padding 1
        xp = np.pad(x, ((0, 0), (1, 1)))
        n_out = (xp.shape[1] - 3) // stride + 1
        return (
            np.stack([np.einsum("ck,ock->o", xp[:, t * stride : t * stride + 3], weight) for t in range(n_out)], 1)
            + bias[:, None]
        )

    def ln(x, g, b):
        mu, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + 1e-5) * g + b

    x = gelu(
        conv(
            gelu(conv(mel.astype(np.float64), w["conv1.weight"], w["conv1.bias"], 1)),
            w["conv2.weight"],
            w["conv2.bias"],
            2,
        )
    ).T
    x = x + w["embed_positions"][: len(x)]
    states, d = [x], x.shape[1]
    hd = d // n_heads
    n_layers = len({k.split(".")[1] for k in w if k.startswith("layers.")})
    for i in range(n_layers):
        p = f"layers.{i}."
        h = ln(x, w[p + "self_attn_layer_norm.weight"], w[p + "self_attn_layer_norm.bias"])
        q = h @ w[p + "self_attn.q_proj.weight"].T + w[p + "self_attn.q_proj.bias"]
        k = h @ w[p + "self_attn.k_proj.weight"].T + w.get(p + "self_attn.k_proj.bias", 0.0)
        v = h @ w[p + "self_attn.v_proj.weight"].T + w[p + "self_attn.v_proj.bias"]
        heads = []
        for j in range(n_heads):
            sl = slice(j * hd, (j + 1) * hd)
            s = q[:, sl] @ k[:, sl].T / math.sqrt(hd)
            s = np.exp(s - s.max(1, keepdims=True))
            heads.append((s / s.sum(1, keepdims=True)) @ v[:, sl])
        x = x + np.concatenate(heads, 1) @ w[p + "self_attn.out_proj.weight"].T + w[p + "self_attn.out_proj.bias"]
        h = ln(x, w[p + "final_layer_norm.weight"], w[p + "final_layer_norm.bias"])
        x = x + gelu(h @ w[p + "fc1.weight"].T + w[p + "fc1.bias"]) @ w[p + "fc2.weight"].T + w[p + "fc2.bias"]
        states.append(x)
    states[-1] = ln(x, w["layer_norm.weight"], w["layer_norm.bias"])
    return states


def np_whisper_log_mel(y: np.ndarray, n_mels: int = 80) -> np.ndarray:
    """Whisper's formula with librosa/NumPy: ``(n_mels, len(y) // 160)``."""
    stft = librosa.stft(y.astype(np.float64), n_fft=400, hop_length=160, window="hann", center=True, pad_mode="reflect")
    power = np.abs(stft[:, :-1]) ** 2
    mel = librosa.filters.mel(sr=16000, n_fft=400, n_mels=n_mels, dtype=np.float64) @ power
    x = np.log10(np.maximum(mel, 1e-10))
    x = np.maximum(x, x.max() - 8.0)
    return (x + 4.0) / 4.0


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(weights, CT2 folder, imported folder) of the tiny random model; the k bias is random (and dropped)."""
    root = tmp_path_factory.mktemp("whisper")
    w = tiny_weights()
    key_bias = np.random.default_rng(1).standard_normal(TINY["d_model"]).astype(np.float32)
    (root / "ct2").mkdir()
    write_ct2(root / "ct2" / "model.bin", to_ct2_variables(w, key_bias=key_bias))
    assert importer.main([str(root / "ct2"), str(root / "imported")]) == 0
    return w, root / "ct2", root / "imported"


# -- tests ---------------------------------------------------------------------------------------
def test_import_round_trip(tiny):
    w, _, folder = tiny
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    config = json.loads((folder / "config.json").read_text())
    assert {k: config[k] for k in TINY} == TINY
    assert config["weights_dtype"] == "float16" and len(config["source"]["model_bin_sha256"]) == 64
    enc = load_whisper_encoder(folder)
    assert not enc.training and not any(p.requires_grad for p in enc.parameters())
    state = enc.state_dict()
    assert set(state) == set(w)
    for k, v in w.items():
        assert state[k].dtype == torch.float32
        np.testing.assert_array_equal(state[k].numpy(), v, err_msg=k)


@pytest.mark.parametrize("frames", [1, 2, 7, 80])
def test_hidden_state_count_and_shapes(tiny, frames):
    enc = load_whisper_encoder(tiny[2])
    states = enc(torch.zeros(3, TINY["n_mels"], frames))
    assert len(states) == TINY["n_layers"] + 1
    assert all(s.shape == (3, math.ceil(frames / 2), TINY["d_model"]) for s in states)


def test_matches_numpy_reference(tiny):
    """All hidden states equal the NumPy reference, which uses the (random) key bias the import dropped."""
    w, ct2, folder = tiny
    d, ct2_vars = TINY["d_model"], importer.read_ct2(ct2 / "model.bin")[2]
    key_bias = [ct2_vars[f"encoder/layer_{i}/self_attention/linear_0/bias"][d : 2 * d] for i in range(2)]
    assert min(np.abs(b).max() for b in key_bias) > 0.5  # the bias the import dropped was not zero
    with_bias = dict(w, **{f"layers.{i}.self_attn.k_proj.bias": key_bias[i] for i in range(2)})
    mel = np.random.default_rng(2).uniform(-1.0, 1.5, (TINY["n_mels"], 37)).astype(np.float32)
    enc = load_whisper_encoder(folder)
    with torch.no_grad():
        ours = [s[0].numpy() for s in enc(torch.from_numpy(mel)[None])]
    for a, b in zip(ours, np_encoder(with_bias, mel, TINY["n_heads"]), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_positional_table_is_whispers_sinusoids():
    table = sinusoids(1500, 512).numpy()
    assert table.shape == (1500, 512)
    np.testing.assert_allclose(
        table[:, :256], np.sin(np.arange(1500)[:, None] * np.exp(-np.log(10000) / 255 * np.arange(256))), atol=1e-5
    )
    np.testing.assert_allclose(table[0, 256:], 1.0)


def test_log_mel_matches_whisper_formula():
    rng = np.random.default_rng(3)
    t = np.arange(int(1.234 * 16000)) / 16000
    y = (0.3 * np.sin(2 * np.pi * (200 + 900 * t) * t) + 0.01 * rng.standard_normal(t.size)).astype(np.float32)
    y[6000:9000] = 0.0  # digital silence: exercises the max - 8 floor
    fe = WhisperLogMel()
    ours = fe(torch.from_numpy(np.stack([y, 0.5 * y])))
    assert ours.shape == (2, 80, len(y) // 160)
    ref = np_whisper_log_mel(y)
    assert ref.min() == pytest.approx(ref.max() - 2.0)  # the floor is active
    np.testing.assert_allclose(ours[0].numpy(), ref, atol=2e-4)
    np.testing.assert_allclose(ours[1].numpy(), np_whisper_log_mel(0.5 * y), atol=2e-4)
    assert fe(torch.from_numpy(y)).shape == (80, len(y) // 160)


def test_load_errors(tiny, tmp_path):
    with pytest.raises(ModelError, match="does not exist.*import_whisper_ct2"):
        load_whisper_encoder(tmp_path / "nowhere")
    with pytest.raises(ModelError, match="config.json' is missing"):
        load_whisper_encoder(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"n_mels": 16}))
    with pytest.raises(ModelError, match=r"lacks \['d_model'"):
        load_whisper_encoder(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps(TINY))
    with pytest.raises(ModelError, match="model.safetensors' is missing.*import_whisper_ct2"):
        load_whisper_encoder(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(ModelError, match="not readable safetensors"):
        load_whisper_encoder(tmp_path)
    (tmp_path / "model.safetensors").write_bytes((tiny[2] / "model.safetensors").read_bytes())
    (tmp_path / "config.json").write_text(json.dumps({**TINY, "d_model": 32, "n_heads": 2}))
    with pytest.raises(ModelError, match=r"safetensors': tensor 'embed_positions' has shape \(40, 64\) but config"):
        load_whisper_encoder(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({**TINY, "n_layers": 3}))
    with pytest.raises(ModelError, match=r"does not match config.json: missing \['layers.2"):
        load_whisper_encoder(tmp_path)


def test_input_and_import_errors(tiny, tmp_path):
    enc = load_whisper_encoder(tiny[2])
    with pytest.raises(FeatureError, match=r"expected a log-mel tensor \(batch, 16, frames\), got \(16, 10\)"):
        enc(torch.zeros(16, 10))
    with pytest.raises(FeatureError, match="81 frames, the encoder takes 1..80"):
        enc(torch.zeros(1, 16, 81))
    with pytest.raises(ModelError, match="expected one folder with model.bin, or folders holding model.bin.part1"):
        importer.convert(tmp_path, tmp_path / "out")
    write_ct2(tmp_path / "model.bin", {"decoder/x": np.zeros(2, np.float16)})
    with pytest.raises(ModelError, match="no Whisper encoder"):
        importer.convert(tmp_path, tmp_path / "out")
    write_ct2(tmp_path / "model.bin", {"encoder/layer_0/ffn/linear_0/weight_scale": np.ones(2, np.float32)})
    with pytest.raises(ModelError, match="int8-quantised"):
        importer.convert(tmp_path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_import_from_pieces_in_several_folders_equals_the_whole_file(tiny, tmp_path):
    """PyPI packages split model.bin into model.bin.part1, part2, ... across wheels."""
    _, ct2, whole = tiny
    data = (ct2 / "model.bin").read_bytes()
    cuts = [0, len(data) // 3, 2 * len(data) // 3, len(data)]
    for k in range(3):
        folder = tmp_path / f"wheel{k + 1}"
        folder.mkdir()
        (folder / f"model.bin.part{k + 1}").write_bytes(data[cuts[k] : cuts[k + 1]])
    out = importer.convert([tmp_path / "wheel3", tmp_path / "wheel1", tmp_path / "wheel2"], tmp_path / "out")
    assert (out / "model.safetensors").read_bytes() == (whole / "model.safetensors").read_bytes()
    assert (
        json.loads((out / "config.json").read_text())["source"]["model_bin_sha256"]
        == json.loads((whole / "config.json").read_text())["source"]["model_bin_sha256"]
    )


def _real_model_dir() -> Path | None:
    for candidate in (os.environ.get("EMOVOX_WHISPER_DIR"), "/tmp/emovox-whisper/base"):
        if candidate and (Path(candidate) / "model.safetensors").is_file():
            return Path(candidate)
    return None


@pytest.mark.corpora
@pytest.mark.skipif(
    _real_model_dir() is None, reason="no imported Whisper model in $EMOVOX_WHISPER_DIR or /tmp/emovox-whisper/base"
)
def test_real_encoder_on_ravdess_clip():
    from safetensors.numpy import load_file

    from emovox.audio import load_audio
    from emovox.corpora import default_corpora_root

    clip = default_corpora_root() / "ravdess/Audio_Speech_Actors_01-24/Actor_01/03-01-05-02-01-01-01.flac"
    if not clip.is_file():
        pytest.skip(f"{clip} not found")
    folder = _real_model_dir()
    config = json.loads((folder / "config.json").read_text())
    y = load_audio(clip, sample_rate_hz=16000)
    torch.set_num_threads(1)
    with torch.no_grad():
        ours = load_whisper_encoder(folder)(WhisperLogMel(config["n_mels"])(torch.from_numpy(y))[None])[-1][0].numpy()
    weights = {k: v.astype(np.float32) for k, v in load_file(str(folder / "model.safetensors")).items()}
    ref = np_encoder(weights, np_whisper_log_mel(y, config["n_mels"]), config["n_heads"])[-1]
    assert ours.shape == ref.shape == (math.ceil(len(y) // 160 / 2), config["d_model"])
    cos = (ours * ref).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(ref, axis=1)
    assert cos.min() > 0.99999 and np.abs(ours - ref).max() < 1e-3 * np.abs(ref).max()
