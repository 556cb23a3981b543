"""musicnn's MSD tagger ported to PyTorch: shipped weights, shapes, reference values, TF reader.

Expected values marked "TF" were computed by the original musicnn 0.1.0 graph (TensorFlow
2.15.1, tf.compat.v1) and librosa 0.11 (see docs/musicnn.md); no TensorFlow or musicnn is
needed here.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import struct

import numpy as np
import pytest
import torch

from lgfn_model.pretrained.musicnn import (
    MSD_TAGS,
    N_FRAMES,
    MusicnnMSD,
    load_musicnn_msd,
    mel_filterbank,
    musicnn_log_mel,
    musicnn_patches,
    weights_dir,
)
from tools import tf_bundle


@pytest.fixture(scope="module")
def model() -> MusicnnMSD:
    torch.set_num_threads(1)
    return load_musicnn_msd()


def synthetic_patch() -> torch.Tensor:
    t = torch.arange(187, dtype=torch.float64)[:, None]
    f = torch.arange(96, dtype=torch.float64)[None, :]
    x = 2.0 + 1.5 * torch.sin(0.11 * t + 0.37 * f) * torch.cos(0.05 * f)
    return x.to(torch.float32)[None]


def synthetic_wave() -> torch.Tensor:
    """3 s at 16 kHz: a 440 Hz tone plus a 3 kHz tone gated on and off every 0.25 s."""
    t = torch.arange(3 * 16000, dtype=torch.float64) / 16000
    gate = (torch.remainder(t, 0.5) < 0.25).to(torch.float64)
    w = 0.5 * torch.sin(2 * math.pi * 440 * t) + 0.1 * torch.sin(2 * math.pi * 3000 * t) * gate
    return w.to(torch.float32)


# --------------------------------------------------------------------------- shipped weights


def test_shipped_files_and_config():
    folder = weights_dir()
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    assert tuple(config["tags"]) == MSD_TAGS and len(MSD_TAGS) == 50
    assert {"happy", "sad", "Mellow", "chill", "party"} <= set(MSD_TAGS)
    weights = (folder / "model.safetensors").read_bytes()
    assert hashlib.sha256(weights).hexdigest() == config["weights_sha256"]
    assert len(weights) < 4_000_000
    assert config["license"] == "ISC" and "Permission to use" in config["license_text"]
    assert "Jordi Pons" in (folder / "LICENSE.md").read_text(encoding="utf-8")
    assert config["parameters"] == 792_079  # 787,159 learnt + batch-norm running statistics


def test_loads_in_eval_mode(model):
    assert not model.training
    assert sum(p.numel() for p in model.parameters()) == 787_159
    assert model.embedding_dim == 200


def test_corrupt_weights_are_refused(tmp_path):
    for name in ("config.json", "model.safetensors"):
        (tmp_path / name).write_bytes((weights_dir() / name).read_bytes())
    data = bytearray((tmp_path / "model.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (tmp_path / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="sha256"):
        load_musicnn_msd(path=tmp_path)


# --------------------------------------------------------------------------- the network


def test_output_shapes(model):
    with torch.no_grad():
        out = model(torch.rand(3, N_FRAMES, 96) * 4)
    expected = {
        "tags": (3, 50),
        "logits": (3, 50),
        "penultimate": (3, 200),
        "max_pool": (3, 753),
        "mean_pool": (3, 753),
        "timbral": (3, 187, 408),
        "temporal": (3, 187, 153),
        "cnn1": (3, 187, 64),
        "cnn2": (3, 187, 64),
        "cnn3": (3, 187, 64),
    }
    assert {k: tuple(v.shape) for k, v in out.items()} == expected
    assert torch.all((out["tags"] > 0) & (out["tags"] < 1))
    with torch.no_grad():  # other patch lengths work, as in musicnn
        assert model(torch.rand(1, 400, 96))["tags"].shape == (1, 50)
    with pytest.raises(ValueError):
        model(torch.rand(1, 187, 64))


def test_deterministic_and_batch_independent(model):
    x = torch.rand(4, N_FRAMES, 96) * 4
    with torch.no_grad():
        a = model(x)["tags"]
        b = model(x)["tags"]
        c = model(x[2:3])["tags"]
    assert torch.equal(a, b)
    torch.testing.assert_close(a[2:3], c, atol=1e-6, rtol=0)


def test_tags_match_tensorflow_on_synthetic_patch(model):
    with torch.no_grad():
        out = model(synthetic_patch())
    tags = out["tags"][0]
    # TF: top-5 tag indices and probabilities, first 4 penultimate values
    top = [11, 30, 4, 24, 42]  # metal, experimental, electronic, punk, heavy metal
    expected = [0.82679284, 0.09083650, 0.01665588, 0.01510578, 0.01407306]
    assert tags.topk(5).indices.tolist() == top
    torch.testing.assert_close(tags[top], torch.tensor(expected), atol=2e-5, rtol=0)
    torch.testing.assert_close(
        out["penultimate"][0, :4],
        torch.tensor([-0.17717555, 5.2116003, -0.28482637, -0.27512094]),
        atol=2e-4,
        rtol=0,
    )


# --------------------------------------------------------------------------- input pipeline


def test_mel_filterbank_is_librosa_slaney():
    fb = mel_filterbank()
    assert fb.shape == (96, 257) and fb.dtype == np.float32
    assert np.all(fb >= 0) and np.all(fb.sum(axis=1) > 0)
    # an independent implementation of the same (librosa default) filterbank
    torchaudio = pytest.importorskip("torchaudio")
    other = torchaudio.functional.melscale_fbanks(
        257, 0.0, 8000.0, 96, 16000, norm="slaney", mel_scale="slaney"
    )
    np.testing.assert_allclose(fb, other.T.numpy(), atol=1e-6, rtol=0)


def test_log_mel_matches_librosa_on_synthetic_tones():
    log_mel = musicnn_log_mel(synthetic_wave())
    assert log_mel.shape == (188, 96) and log_mel.dtype == torch.float32
    # librosa 0.11 melspectrogram(pad_mode="reflect"), float16 rounding, log10(10000 x + 1)
    bands = [0, 10, 20, 40, 60, 95]
    expected_means = [0.06325917, 1.13349783, 0.09728038, 0.04828526, 0.10113523, 0.01010827]
    torch.testing.assert_close(
        log_mel.mean(0)[bands], torch.tensor(expected_means), atol=2e-4, rtol=0
    )
    torch.testing.assert_close(
        log_mel[100, 10:14],
        torch.tensor([1.09662426, 2.21434402, 5.37879705, 6.09078789]),
        atol=1e-3,
        rtol=0,
    )


def test_end_to_end_synthetic_tones(model):
    out = model.embed_waveform(synthetic_wave().numpy())
    assert out["tags"].shape == (1, 50)  # 188 frames: one 187-frame patch
    top = [4, 28, 30, 18, 3]  # electronic, ambient, experimental, electronica, indie
    expected = [0.53159958, 0.19521527, 0.15255561, 0.14609985, 0.13992022]  # TF
    assert out["tags"][0].topk(5).indices.tolist() == top
    torch.testing.assert_close(out["tags"][0, top], torch.tensor(expected), atol=5e-4, rtol=0)


def test_log_mel_batched_and_short_input():
    wave = synthetic_wave()
    batched = musicnn_log_mel(torch.stack([wave, wave * 0.5]))
    assert batched.shape == (2, 188, 96)
    torch.testing.assert_close(batched[0], musicnn_log_mel(wave))
    assert musicnn_log_mel(torch.zeros(100)).shape == (2, 96)
    assert torch.all(musicnn_log_mel(torch.zeros(16000)) == 0)


def test_patches():
    x = torch.arange(500 * 96, dtype=torch.float32).reshape(500, 96)
    p = musicnn_patches(x)
    assert p.shape == (2, 187, 96)  # remainder dropped, as musicnn does
    torch.testing.assert_close(p[1], x[187:374])
    assert musicnn_patches(x, hop=100).shape == (4, 187, 96)
    short = musicnn_patches(x[:50])
    assert short.shape == (1, 187, 96)  # repeat-padded
    torch.testing.assert_close(short[0, 50:100], x[:50])


# --------------------------------------------------------------------------- TF checkpoint reader


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, wire: int, payload: bytes) -> bytes:
    return _varint(number << 3 | wire) + payload


def _mask(crc: int) -> int:
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def _write_bundle(prefix: str, tensors: dict[str, np.ndarray]) -> None:
    """A minimal TensorBundle: one SSTable data block (prefix-compressed keys), one shard."""
    data = bytearray()
    entries = {b"": _field(1, 0, _varint(1)) + _field(3, 2, _varint(2) + b"\x08\x01")}
    for name, array in sorted(tensors.items()):
        raw = np.ascontiguousarray(array, dtype="<f4").tobytes()
        dims = [_field(1, 0, _varint(size)) for size in array.shape]
        shape = b"".join(_field(2, 2, _varint(len(dim)) + dim) for dim in dims)
        entry = (
            _field(1, 0, _varint(1))
            + _field(2, 2, _varint(len(shape)) + shape)
            + _field(4, 0, _varint(len(data)))
            + _field(5, 0, _varint(len(raw)))
            + _field(6, 5, struct.pack("<I", _mask(tf_bundle.crc32c(raw))))
        )
        entries[name.encode()] = entry
        data += raw

    def block(items: dict[bytes, bytes]) -> bytes:
        body = bytearray()
        previous = b""
        for key, value in sorted(items.items()):
            shared = len(os.path.commonprefix([previous, key]))
            body += _varint(shared) + _varint(len(key) - shared) + _varint(len(value))
            body += key[shared:] + value
            previous = key
        return bytes(body + struct.pack("<II", 0, 1))

    table = bytearray()

    def append(contents: bytes) -> bytes:
        handle = _varint(len(table)) + _varint(len(contents))
        crc = _mask(tf_bundle.crc32c(contents + b"\x00"))
        table.extend(contents + b"\x00" + struct.pack("<I", crc))
        return handle

    data_handle = append(block(entries))
    meta_handle = append(block({}))
    index_handle = append(block({max(entries) + b"\xff": data_handle}))
    footer = (meta_handle + index_handle).ljust(40, b"\x00")
    table += footer + struct.pack("<Q", tf_bundle.SSTABLE_MAGIC)
    with open(prefix + ".index", "wb") as fh:
        fh.write(table)
    with open(prefix + ".data-00000-of-00001", "wb") as fh:
        fh.write(data)


def test_crc32c_and_snappy():
    assert tf_bundle.crc32c(b"123456789") == 0xE3069283
    assert tf_bundle.unmask_crc(_mask(0x12345678)) == 0x12345678
    # varint length 12; literal "abcd"; copy (1-byte offset) of 8 bytes from 4 back
    stream = bytes([12, (4 - 1) << 2]) + b"abcd" + bytes([((8 - 4) << 2) | 1, 4])
    assert tf_bundle.snappy_decompress(stream) == b"abcdabcdabcd"


def test_reads_a_handmade_bundle(tmp_path):
    tensors = {
        "conv/kernel": np.arange(24, dtype=np.float32).reshape(2, 3, 1, 4),
        "conv/bias": np.array([0.5, -1.5], dtype=np.float32),
        "scalar": np.array(3.25, dtype=np.float32),
    }
    prefix = str(tmp_path / "model")
    _write_bundle(prefix, tensors)
    reader = tf_bundle.TFCheckpointReader(prefix)
    assert reader.names() == sorted(tensors)
    for name, array in tensors.items():
        assert reader.shape(name) == array.shape
        np.testing.assert_array_equal(reader.tensor(name), array)
    # a flipped data byte is caught by the tensor checksum
    path = tmp_path / "model.data-00000-of-00001"
    data = bytearray(path.read_bytes())
    data[0] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="checksum"):
        tf_bundle.TFCheckpointReader(prefix).tensor("conv/bias")  # stored first


def test_port_reproduces_shipped_weights(tmp_path):
    pytest.importorskip("musicnn", reason="the original checkpoint ships with musicnn")
    from tools.port_musicnn import default_checkpoint, port

    weights = port(default_checkpoint(), tmp_path)
    from safetensors.torch import load_file

    ours = load_file(str(weights_dir() / "model.safetensors"))
    fresh = load_file(str(weights))
    assert ours.keys() == fresh.keys()
    for key in ours:
        assert torch.equal(ours[key], fresh[key]), key


# --------------------------------------------------------------------------- fast inference path


def _literal_front_end(block, x: torch.Tensor) -> torch.Tensor:
    """The front-end block exactly as musicnn orders it: conv, ReLU, batch norm, max."""
    padded = torch.nn.functional.pad(x, (0, 0, *block.time_pad))
    z = block.bn(torch.relu(block.conv(padded)))
    return z.amax(dim=3).transpose(1, 2)


def test_eval_front_end_reduces_first_and_matches_the_literal_order(model):
    # The eval path takes the max over the bands before ReLU and batch norm; that is exact
    # only if negative batch-norm scales turn the max into a min. Force some to be negative.
    block = type(model.timbral[0])(16, (7, 38), (3, 3)).eval()
    with torch.no_grad():
        block.conv.weight.normal_()
        block.bn.weight.copy_(torch.linspace(-1.5, 1.5, 16))
        block.bn.running_mean.uniform_(-1, 1)
        block.bn.running_var.uniform_(0.5, 2)
    x = torch.randn(2, 1, N_FRAMES, 96)
    with torch.no_grad():
        fast = block(x)
        reference = _literal_front_end(block, x)
    torch.testing.assert_close(fast, reference, atol=1e-4, rtol=1e-5)
    for shipped in [*model.timbral, *model.temporal]:
        with torch.no_grad():
            torch.testing.assert_close(
                shipped(x), _literal_front_end(shipped, x), atol=1e-4, rtol=1e-5
            )


def test_fused_temporal_blocks_equal_the_three_blocks():
    torch.manual_seed(0)
    net = MusicnnMSD().eval()
    with torch.no_grad():
        for block in net.temporal:  # negative scales too: the max becomes a min there
            block.bn.weight.uniform_(-1.5, 1.5)
            block.bn.running_mean.uniform_(-1, 1)
    x = torch.randn(2, 1, N_FRAMES, 96)
    with torch.no_grad():
        fused = net._temporal_reduced(x)
        for block, part in zip(net.temporal, fused, strict=True):
            torch.testing.assert_close(part, _literal_front_end(block, x), atol=1e-4, rtol=1e-5)


def test_training_mode_keeps_the_literal_order():
    block = type(MusicnnMSD().timbral[0])(8, (7, 38), (3, 3)).train()
    x = torch.randn(3, 1, 40, 96, requires_grad=True)
    out = block(x)
    out.sum().backward()  # batch statistics and gradients: the literal path
    assert x.grad is not None and out.shape == (3, 40, 8)


def test_bf16_front_end_stays_close_to_float32(model):
    patches = musicnn_patches(musicnn_log_mel(synthetic_wave()))
    with torch.inference_mode():
        full = model(patches)
        half = model.set_compute_dtype(torch.bfloat16)(patches)
    model.set_compute_dtype(torch.float32)
    for name in ("penultimate", "logits"):
        assert half[name].dtype == torch.float32
        scale = full[name].abs().max()
        assert (half[name] - full[name]).abs().max() < 0.02 * scale, name
    assert (half["tags"] - full["tags"]).abs().max() < 0.01
    with torch.inference_mode():
        torch.testing.assert_close(model(patches)["tags"], full["tags"])  # back to float32


def test_compute_dtype_is_float32_or_bfloat16(model):
    with pytest.raises(ValueError, match="float32 or bfloat16"):
        model.set_compute_dtype(torch.float16)


def test_speed_tool_compares_the_three_paths(tmp_path, capsys):
    import soundfile

    from tools import musicnn_speed

    path = tmp_path / "tone.wav"
    soundfile.write(str(path), torch.cat([synthetic_wave(), synthetic_wave()]).numpy(), 16000)
    assert musicnn_speed.main([str(path), "--chunk", "1"]) == 0
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert record["patches"] == 2
    assert record["fp32_max_abs_diff_tags"] < 1e-5  # the eval path reorders exactly
    assert 0 < record["bf16_max_abs_diff_tags"] < 0.01
