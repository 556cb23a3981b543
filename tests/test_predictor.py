"""Predictor and `lgfn predict`: real decoding, the real (tiny, random) model, real lyrics."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from audio_factory import make_audio_file

from lgfn_model.data.lyrics import parse_lrc, parse_plain
from lgfn_model.data.windows import cut_windows
from lgfn_model.model.config import AudioConfig
from lgfn_model.runtime import device as device_module
from lgfn_model.runtime import predictor as predictor_module
from lgfn_model.runtime.device import DeviceError, resolve_device, resolve_precision
from lgfn_model.runtime.predictor import Predictor, TrackInput
from lgfn_model.testing import write_tiny_checkpoint

LRC = "[00:00.50]sunshine on my face\n[00:02.00]dancing all night long\n[00:04.00]we sing together"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny")


@pytest.fixture(scope="module")
def songs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("songs")
    return {
        "short": make_audio_file(folder / "short.flac", seconds=1.0, kind="chord"),
        "mp3": make_audio_file(folder / "song.mp3", seconds=5.0, kind="tone"),
        "m4a": make_audio_file(folder / "song.m4a", seconds=3.0, kind="noise", channels=1),
        "silent": make_audio_file(folder / "silent.wav", seconds=2.5, kind="silence"),
    }


@pytest.fixture(scope="module")
def predictor(checkpoint: Path) -> Predictor:
    return Predictor.load(checkpoint, device="cpu", batch_size=64, workers=0)


def test_cut_windows_covers_the_track_and_ends_at_its_end() -> None:
    audio = AudioConfig(sample_rate=10, window_seconds=1.0)
    windows, starts = cut_windows(np.arange(25, dtype=np.float32), audio)
    assert starts.tolist() == [0.0, 1.0, 1.5]
    assert windows[-1].tolist() == list(range(15, 25))
    short, short_starts = cut_windows(np.ones(4, dtype=np.float32), audio)
    assert short.shape == (1, 10) and short[0, 4:].sum() == 0 and short_starts.tolist() == [0.0]


def test_single_track_prediction(predictor: Predictor, songs: dict[str, Path]) -> None:
    prediction = predictor.predict(songs["mp3"])
    assert prediction.mood in prediction.probabilities
    assert sum(prediction.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    assert prediction.gate_audio == 1.0 and prediction.gate_lyrics == 0.0
    assert prediction.duration == pytest.approx(5.0, abs=0.1)
    assert [w.start for w in prediction.windows] == pytest.approx([0.0, 2.0, 3.0], abs=0.05)
    assert prediction.model_version == "lgfn-test-tiny"


def test_lyrics_move_the_gate_and_gates_sum_to_one(predictor: Predictor, songs) -> None:
    synced = predictor.predict(songs["mp3"], parse_lrc(LRC))
    plain = predictor.predict(songs["mp3"], parse_plain(LRC.replace("[00:0", "x")))
    for prediction in (synced, plain):
        assert 0 < prediction.gate_audio < 1
        assert prediction.gate_audio + prediction.gate_lyrics == pytest.approx(1.0)
        assert len(prediction.windows[0].attention[0]) == 3
    assert synced.lyrics_synced and not plain.lyrics_synced
    assert synced.probabilities != plain.probabilities


def test_batch_results_equal_one_at_a_time(checkpoint: Path, songs: dict[str, Path]) -> None:
    lyrics = [None, parse_lrc(LRC), None, parse_plain("la la la\nhey")]
    paths = [songs["mp3"], songs["m4a"], songs["short"], songs["silent"]]
    inputs = [TrackInput(p, ly, key=i) for i, (p, ly) in enumerate(zip(paths, lyrics, strict=True))]
    one = Predictor.load(checkpoint, device="cpu", batch_size=1, workers=0)
    one.overlap_text = False  # lyrics encoded in line, against the text thread of `many`
    # Two threads asked for: `auto` on a busy machine gives one, and then no text thread.
    many = Predictor.load(checkpoint, device="cpu", batch_size=64, workers=1, threads=2)
    assert many.overlap_text
    alone = list(one.predict_many(inputs))
    together = list(many.predict_many(inputs))
    assert [r.input.key for r in together] == [0, 1, 2, 3]
    for a, b in zip(alone, together, strict=True):
        assert a.prediction is not None and b.prediction is not None
        for mood in a.prediction.probabilities:
            assert a.prediction.probabilities[mood] == pytest.approx(
                b.prediction.probabilities[mood], abs=1e-5
            )
        assert a.prediction.gate_audio == pytest.approx(b.prediction.gate_audio, abs=1e-5)


def test_bad_files_fail_alone_and_in_order(predictor: Predictor, songs, tmp_path: Path) -> None:
    text = tmp_path / "notes.mp3"
    text.write_text("this is not audio\n" * 20)
    empty = tmp_path / "empty.flac"
    empty.touch()
    inputs = [
        TrackInput(songs["mp3"]),
        TrackInput(tmp_path / "gone.mp3"),
        TrackInput(text),
        TrackInput(empty),
        TrackInput(songs["short"]),
    ]
    results = list(predictor.predict_many(inputs))
    assert [r.ok for r in results] == [True, False, False, False, True]
    for result in results[1:4]:
        assert result.error is not None and "\n" not in result.error
        assert result.input.audio.name in result.error


class _FailingEncoder:
    """Wraps the real encoder; fails on lyrics containing "boom", like a broken encoder would."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.threads: list[str] = []

    def encode(self, lines: list[str]):
        import threading

        self.threads.append(threading.current_thread().name)
        if any("boom" in line for line in lines):
            raise ValueError("lyrics encoder failed")
        return self.inner.encode(lines)


@pytest.mark.parametrize("overlap", [True, False])
def test_lyrics_that_fail_to_encode_fail_their_track_alone(
    checkpoint: Path, songs, overlap: bool
) -> None:
    import torch

    predictor = Predictor.load(checkpoint, device="cpu", batch_size=4, workers=0)
    predictor.overlap_text = overlap
    encoder = _FailingEncoder(predictor.text_encoder)
    predictor._text_encoder = encoder
    threads = torch.get_num_threads()
    inputs = [
        TrackInput(songs["mp3"], parse_lrc(LRC), key=0),
        TrackInput(songs["m4a"], parse_plain("boom boom\nla la"), key=1),
        TrackInput(songs["short"], parse_plain("hey there"), key=2),
        TrackInput(songs["silent"], None, key=3),
    ]
    results = list(predictor.predict_many(inputs))
    assert [r.input.key for r in results] == [0, 1, 2, 3]
    assert [r.ok for r in results] == [True, False, True, True]
    assert results[1].error == f"{songs['m4a']}: lyrics encoder failed"
    assert predictor.stats.failed == 1
    assert torch.get_num_threads() == threads  # the text thread's split is undone
    in_thread = [name.startswith("lgfn-text") for name in encoder.threads]
    assert in_thread == [overlap] * 3


def test_explicit_cuda_without_gpu_is_a_clear_error() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(DeviceError, match="no CUDA GPU"):
        resolve_device("cuda")
    assert resolve_device("auto").type == "cpu"


def _lgfn(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "lgfn_model.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def test_cli_refuses_to_run_without_a_trained_model(songs, tmp_path: Path, monkeypatch) -> None:
    from lgfn_model.runtime import checkpoint as checkpoint_module

    if (checkpoint_module.default_checkpoint_dir() / "config.json").exists():
        pytest.skip("a trained model is installed")
    result = _lgfn("predict", str(songs["mp3"]))
    assert result.returncode == 2
    assert "no trained LGFN model is installed" in result.stderr


def test_cli_single_file_and_manifest(checkpoint: Path, songs, tmp_path: Path) -> None:
    lrc = tmp_path / "song.lrc"
    lrc.write_text(LRC, encoding="utf-8")
    result = _lgfn(
        "predict", str(songs["mp3"]), "--lyrics", str(lrc), "--checkpoint", str(checkpoint)
    )
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert set(record["p"]) == {"happy", "angry", "sad", "relaxed"}
    assert record["lyrics_synced"] is True and record["lyrics_lines"] == 3

    manifest = tmp_path / "tracks.csv"
    manifest.write_text(
        "id,audio,lyrics\n"
        f"a,{songs['mp3']},song.lrc\n"
        "b,missing.ogg,\n"
        f"c,{songs['short']},no-such.lrc\n"
        f"d,{songs['m4a']},\n"
    )
    out = tmp_path / "out.jsonl"
    result = _lgfn(
        "predict",
        "--manifest",
        str(manifest),
        "--out",
        str(out),
        "--checkpoint",
        str(checkpoint),
        "--workers",
        "1",
    )
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["a", "b", "c", "d"]
    # The same fields as a single prediction (the manifest names the row by its id too).
    assert set(rows[0]) == {"id", *record}
    assert "missing.ogg" in rows[1]["error"]
    assert "no-such.lrc" in rows[2]["error"]
    assert rows[3]["gate_audio"] == 1.0
    assert "4 rows, 2 predicted, 2 failed" in result.stderr


def test_bench_reports_stages_and_the_decode_floor(checkpoint: Path, songs, capsys) -> None:
    from lgfn_model.cli import main

    code = main(
        [
            "bench",
            str(songs["mp3"]),
            str(songs["m4a"]),
            "--checkpoint",
            str(checkpoint),
            "--workers",
            "0",
            "--device",
            "cpu",
        ]
    )
    assert code == 0
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert record["tracks"] == 2 and record["failed"] == 0
    assert record["decode_floor_s_per_track"] > 0 and record["s_per_track"] > 0
    # workers 0: decoding runs inline, so all CPU time is this process's
    assert record["cpu_s_per_track"] > 0 and record["cpu_s_per_track_workers"] == 0
    assert set(record["stage_s"]) == {
        "decode_in_workers",
        "features_logmel",
        "text",
        "model_incl_features",
    }
    assert record["peak_rss_mib"] > 0


def test_precision_auto_is_bf16_on_gpus_and_hardware_bf16_cpus_only(monkeypatch) -> None:
    import torch

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert resolve_precision("fp32", cuda) == torch.float32
    assert resolve_precision("bf16", cpu) == torch.bfloat16
    assert resolve_precision("auto", cuda) == torch.bfloat16
    monkeypatch.setattr(device_module, "has_hardware_bf16", lambda: False)
    assert resolve_precision("auto", cpu) == torch.float32
    monkeypatch.setattr(device_module, "has_hardware_bf16", lambda: True)
    assert resolve_precision("auto", cpu) == torch.bfloat16
    with pytest.raises(ValueError, match="unknown precision 'fp16'"):
        resolve_precision("fp16", cpu)


def test_lyrics_encoder_precision_follows_the_model(checkpoint: Path, monkeypatch) -> None:
    import torch

    monkeypatch.setattr(device_module, "has_hardware_bf16", lambda: False)
    auto = Predictor.load(checkpoint, device="cpu", workers=0)
    assert auto.text_precision == "int8"  # the CPU fast path where bf16 is emulated
    dynamic = torch.ao.nn.quantized.dynamic.Linear
    layer = auto.text_encoder.model.encoder.layer[0]
    assert isinstance(layer.intermediate.dense, dynamic)
    assert Predictor.load(checkpoint, device="cpu", precision="fp32").text_precision == "float32"
    assert Predictor.load(checkpoint, device="cpu", precision="bf16").text_precision == "bfloat16"
    monkeypatch.setattr(device_module, "has_hardware_bf16", lambda: True)
    assert Predictor.load(checkpoint, device="cpu").text_precision == "bfloat16"
    monkeypatch.setattr(predictor_module, "int8_available", lambda: False)
    monkeypatch.setattr(device_module, "has_hardware_bf16", lambda: False)
    assert Predictor.load(checkpoint, device="cpu").text_precision == "float32"


def test_hardware_bf16_is_either_probe(monkeypatch) -> None:
    import torch

    for amx, avx512_bf16, expected in [
        (False, False, False),
        (True, False, True),
        (False, True, True),
    ]:
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda v=amx: v, raising=False)
        monkeypatch.setattr(
            torch.cpu, "_is_avx512_bf16_supported", lambda v=avx512_bf16: v, raising=False
        )
        assert device_module.has_hardware_bf16() is expected


def test_musicnn_model_in_bf16_agrees_with_float32(songs: dict[str, Path], tmp_path: Path) -> None:
    # A tiny model with the real (shipped, frozen) musicnn branch: bf16 changes its features
    # by about 1 %, so the predictions move by far less than a mood boundary's width.
    window = {"window_seconds": 2.992}  # one musicnn patch at 16 kHz
    checkpoint = write_tiny_checkpoint(
        tmp_path / "musicnn",
        pretrained_audio="musicnn-msd",
        audio=AudioConfig(sample_rate=16000, n_mels=32, n_fft=512, hop_length=256, **window),
    )
    full = Predictor.load(checkpoint, device="cpu", workers=0, precision="fp32")
    half = Predictor.load(checkpoint, device="cpu", workers=0, precision="bf16")
    assert (str(full.dtype), str(half.dtype)) == ("torch.float32", "torch.bfloat16")
    a, b = full.predict(songs["mp3"]), half.predict(songs["mp3"])
    for mood, p in a.probabilities.items():
        assert abs(p - b.probabilities[mood]) < 0.02
    assert abs(a.valence - b.valence) < 0.02 and abs(a.arousal - b.arousal) < 0.02


def test_bench_names_the_cpu_model(tmp_path: Path) -> None:
    from lgfn_model.runtime.device import cpu_description, cpu_model_name

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 9454\n")
    assert cpu_model_name(cpuinfo) == "AMD EPYC 9454"
    cpuinfo.write_text("processor\t: 0\n")
    assert cpu_model_name(cpuinfo) is None
    assert cpu_model_name(tmp_path / "missing") is None
    assert cpu_description().endswith(("cores", "cores, hardware bf16"))


def test_each_stream_gets_its_own_warnings(checkpoint: Path, songs, monkeypatch) -> None:
    predictor = Predictor.load(checkpoint, device="cpu", workers=0)
    shared: list[str] = []
    predictor.warn = shared.append
    run = predictor._oom.run

    def warning_run(part, forward, stats, warn) -> None:  # as a GPU out of memory would warn
        warn("split a batch")
        run(part, forward, stats, warn)

    monkeypatch.setattr(predictor._oom, "run", warning_run)
    mine: list[str] = []
    results = list(predictor.predict_many([TrackInput(songs["mp3"])], warn=mine.append))
    assert results[0].ok and mine and set(mine) == {"split a batch"} and shared == []
    list(predictor.predict_many([TrackInput(songs["mp3"])]))  # no warn given: the attribute
    assert shared and set(shared) == {"split a batch"}
