"""The MTG-Jamendo taggers (Won et al. 2020) ported to PyTorch: shipped weights, reference values.

The reference values in tests/fixtures/jamendo_reference.json were computed by upstream's own
classes (torchaudio front end) by ``python -m tools.port_sota_taggers``; neither upstream's
code nor its pickled weights are needed here.
"""

from __future__ import annotations

import ast
import hashlib
import json
from pathlib import Path

import pytest
import torch

from lgfn_model.pretrained.jamendo import (
    FCN_INPUT_LENGTH,
    JAMENDO_TAGS,
    MUSICNN_INPUT_LENGTH,
    JamendoCRNN,
    JamendoFCN,
    JamendoMusicnn,
    crops,
    jamendo_weights_dir,
    load_jamendo_tagger,
)
from tools.port_sota_taggers import synthetic_input

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = Path(__file__).parent / "fixtures" / "jamendo_reference.json"
# name -> embedding size
MODELS = {"musicnn": 200, "fcn": 64, "crnn": 32}


@pytest.fixture(scope="module")
def reference() -> dict:
    return json.loads(FIXTURE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module", params=sorted(MODELS))
def tagger(request) -> tuple[str, JamendoMusicnn | JamendoFCN]:
    torch.set_num_threads(1)
    return request.param, load_jamendo_tagger(request.param)


def test_matches_upstream_reference(tagger, reference):
    name, model = tagger
    case = reference[name]
    assert case["input"]["samples"] == model.input_length
    wave = torch.from_numpy(
        synthetic_input(case["input"]["samples"], case["input"]["batch"], case["input"]["seed"])
    )
    with torch.no_grad():
        out = model(wave)
    for key in ("tags", "embedding"):
        expected = torch.tensor(case[key], dtype=torch.float32)
        assert out[key].shape == expected.shape == (2, 50 if key == "tags" else MODELS[name])
        torch.testing.assert_close(out[key], expected, atol=1e-4, rtol=0)
    # The convenience calls are the same pass.
    with torch.no_grad():
        torch.testing.assert_close(model.tags(wave), out["tags"], atol=0, rtol=0)
        first = model.embedding(wave[:1])
        torch.testing.assert_close(first, out["embedding"][:1], atol=1e-5, rtol=0)


def test_shipped_files_and_config(tagger):
    name, model = tagger
    folder = jamendo_weights_dir(name)
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    assert tuple(config["tags"]) == JAMENDO_TAGS and len(set(JAMENDO_TAGS)) == 50
    assert config["architecture"]["kind"] == name
    assert config["input"]["sample_rate"] == 16_000
    assert config["input"]["input_length"] == model.input_length
    assert config["embedding_dim"] == model.embedding_dim
    weights = (folder / "model.safetensors").read_bytes()
    assert hashlib.sha256(weights).hexdigest() == config["weights_sha256"]
    assert len(weights) < 4_000_000
    assert config["license"] == "MIT" and "Permission is hereby granted" in config["license_text"]
    licence = (folder / "LICENSE.md").read_text(encoding="utf-8")
    assert "Won" in licence and "Universitat Pompeu Fabra" in licence and "MIT License" in licence
    assert not model.training


def test_tag_order_is_upstreams():
    assert JAMENDO_TAGS[:3] == ("genre---downtempo", "genre---ambient", "genre---rock")
    assert JAMENDO_TAGS[18] == "mood/theme---happy"
    assert JAMENDO_TAGS[-1] == "mood/theme---relaxing"


def test_corrupt_weights_are_refused(tmp_path):
    for name in ("config.json", "model.safetensors"):
        (tmp_path / name).write_bytes((jamendo_weights_dir("fcn") / name).read_bytes())
    data = bytearray((tmp_path / "model.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (tmp_path / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="sha256"):
        load_jamendo_tagger("fcn", path=tmp_path)
    with pytest.raises(ValueError, match="not 'musicnn'"):
        load_jamendo_tagger("musicnn", path=tmp_path)
    with pytest.raises(ValueError, match="unknown"):
        jamendo_weights_dir("samplecnn")


def test_batch_independent_and_lengths():
    torch.set_num_threads(1)
    model = load_jamendo_tagger("musicnn")
    wave = torch.from_numpy(synthetic_input(MUSICNN_INPUT_LENGTH, batch=3, seed=7))
    with torch.no_grad():
        batch = model.tags(wave)
        one = model.tags(wave[1])  # a 1-D waveform is a batch of one
        longer = model.tags(torch.cat([wave[0], wave[0]]))  # musicnn pools over any length
    torch.testing.assert_close(batch[1:2], one, atol=1e-6, rtol=0)
    assert longer.shape == (1, 50) and torch.all((longer > 0) & (longer < 1))
    fcn = JamendoFCN().eval()
    with pytest.raises(ValueError, match="pools to"), torch.no_grad():
        fcn(torch.zeros(1, MUSICNN_INPUT_LENGTH))  # 3 s is too short for the FCN
    crnn = JamendoCRNN().eval()
    with torch.no_grad():
        assert crnn.tags(torch.zeros(2, MUSICNN_INPUT_LENGTH)).shape == (2, 50)  # any length
    with pytest.raises(ValueError, match="pools to"), torch.no_grad():
        crnn(torch.zeros(1, 16_000))  # but not under ~1.5 s


def test_crops_are_upstreams_evaluation_windows():
    track = torch.arange(FCN_INPUT_LENGTH + 1600, dtype=torch.float32)
    windows = crops(track, FCN_INPUT_LENGTH)
    assert windows.shape == (16, FCN_INPUT_LENGTH)
    assert windows[1, 0] == 100 and windows[-1, 0] == 1500  # hop (1600 // 16)
    short = crops(torch.ones(1000), MUSICNN_INPUT_LENGTH)
    assert short.shape == (1, MUSICNN_INPUT_LENGTH) and short.sum() == 1000


def test_package_never_unpickles():
    """Weights ship as safetensors; nothing in lgfn_model may run torch.load, import pickle or
    let numpy unpickle (``allow_pickle`` is only ever False)."""
    offenders = []
    for path in sorted((ROOT / "lgfn_model").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                if any(n.split(".")[0] in ("pickle", "cPickle", "dill", "joblib") for n in names):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} imports pickle")
            elif (
                isinstance(node, ast.Attribute)
                and node.attr == "load"
                and isinstance(node.value, ast.Name)
                and node.value.id == "torch"
            ):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} torch.load")
            elif (
                isinstance(node, ast.keyword)
                and node.arg == "allow_pickle"
                and not (isinstance(node.value, ast.Constant) and node.value.value is False)
            ):
                offenders.append(f"{path.relative_to(ROOT)}: allow_pickle not False")
    assert not offenders, offenders


SOURCE = ROOT.parent / "shared" / "pretrained" / "sota-music-tagging"


@pytest.mark.skipif(not (SOURCE / "models").is_dir(), reason="upstream weights not here")
def test_port_reproduces_shipped_files(tmp_path):
    from tools.port_sota_taggers import port

    torch.set_num_threads(1)
    port(SOURCE, tmp_path, tmp_path / "reference.json")
    for name in MODELS:
        ported, shipped = tmp_path / f"jamendo_{name}", jamendo_weights_dir(name)
        # The conversion itself does no arithmetic: weights and licence are byte for byte.
        for file in ("model.safetensors", "LICENSE.md"):
            assert (ported / file).read_bytes() == (shipped / file).read_bytes(), file
        # config.json records measurements (upstream's tags with a recomputed filterbank), and
        # reference.json upstream's outputs: float sums whose last bits follow the CPU's SIMD
        # path (3.3e-7 on one CI machine, 1.5e-7 on a Zen 3), so those are compared as numbers.
        _assert_json_close(
            json.loads((ported / "config.json").read_text(encoding="utf-8")),
            json.loads((shipped / "config.json").read_text(encoding="utf-8")),
            path=f"jamendo_{name}/config.json",
        )
    _assert_json_close(
        json.loads((tmp_path / "reference.json").read_text(encoding="utf-8")),
        json.loads(FIXTURE.read_text(encoding="utf-8")),
        path="reference.json",
    )


# Machine-dependent fields of the port's config: how far they may move between CPUs.
_MEASURED_TOLERANCE = 1e-5


def _assert_json_close(got, want, path: str) -> None:
    """Equal JSON, except that floats may differ by float32 rounding noise and the torchaudio
    version the measurement was made with may differ."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and got.keys() == want.keys(), path
        for key in want:
            if key == "fresh_torchaudio_version":
                continue  # whichever torchaudio the port ran beside; the numbers are checked
            _assert_json_close(got[key], want[key], f"{path}.{key}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), path
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            _assert_json_close(g, w, f"{path}[{i}]")
    elif isinstance(want, float) and not isinstance(want, bool):
        assert got == pytest.approx(want, rel=1e-4, abs=_MEASURED_TOLERANCE), path
    else:
        assert got == want, path
