"""Impossible model configs are one clear error, found before anything is allocated.

Each bad config.json is a ``CheckpointError`` whose one line names the file and the field
(``CONFIG: d_model is 30000; allowed 8..4096``); the memory-eating ones are loaded in a child
process under a tight address-space limit, so a config that did allocate fails the test
instead of the machine. Real models (shipped, tiny, training's) still load.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lgfn_model.model.config import (
    MOODS,
    TEXT_ENCODER_DIMS,
    AudioConfig,
    ConfigError,
    LGFNConfig,
    check_config_dict,
)
from lgfn_model.runtime.checkpoint import MAX_PARAMETERS, CheckpointError, load_checkpoint
from lgfn_model.runtime.checkpoint_files import (
    SHIPPED_MODELS,
    checkpoint_version,
    shipped_checkpoint_dir,
)
from lgfn_model.testing import tiny_config, write_tiny_checkpoint

Tamper = Callable[[dict[str, Any]], None]


def _set(key: str, value: Any) -> Tamper:
    """Set ``key`` (``audio.x`` for the audio part) of a config dict to ``value``."""

    def tamper(config: dict[str, Any]) -> None:
        target = config
        *parents, last = key.split(".")
        for parent in parents:
            target = target[parent]
        target[last] = value

    return tamper


def _delete(key: str) -> Tamper:
    def tamper(config: dict[str, Any]) -> None:
        target = config
        *parents, last = key.split(".")
        for parent in parents:
            target = target[parent]
        del target[last]

    return tamper


# (tamper, what the message starts with): the message is "<field> is <value>; ..."
IMPOSSIBLE: dict[str, tuple[Tamper, str]] = {
    "d_model 30000": (_set("d_model", 30000), "d_model is 30000; allowed 8..4096"),
    "d_model 0": (_set("d_model", 0), "d_model is 0; allowed 8..4096"),
    "window_seconds 1e6": (
        _set("audio.window_seconds", 1e6),
        "audio.window_seconds is 1000000.0; allowed 0.25..60",
    ),
    "hop_length 0": (_set("audio.hop_length", 0), "audio.hop_length is 0; allowed 1.."),
    "hop_length > n_fft": (_set("audio.hop_length", 4096), "audio.hop_length is 4096"),
    "hop_length 1 (too many frames)": (
        _set("audio.hop_length", 1),
        "audio.hop_length is 1: 32001 frames per window",
    ),
    "sample_rate 0": (_set("audio.sample_rate", 0), "audio.sample_rate is 0; allowed 8000..96000"),
    "n_fft tiny": (_set("audio.n_fft", 8), "audio.n_fft is 8; allowed 64..8192"),
    "n_mels beyond the bins": (_set("audio.n_mels", 400), "audio.n_mels is 400; allowed 8..257"),
    "f_max above Nyquist": (_set("audio.f_max", 12000.0), "audio.f_max is 12000; allowed up to"),
    "f_min above f_max": (_set("audio.f_min", 9000.0), "audio.f_min is 9000; must be below"),
    "negative f_min": (_set("audio.f_min", -5.0), "audio.f_min is -5.0; allowed 0..48000"),
    "window shorter than n_fft": (
        lambda c: (_set("audio.window_seconds", 0.25)(c), _set("audio.n_fft", 8192)(c)),
        "audio.window_seconds is 0.25: 4000 samples, fewer than n_fft (8192)",
    ),
    "negative channels": (_set("resnet_channels", [8, -16]), "resnet_channels[1] is -16"),
    "empty channels": (_set("resnet_channels", []), "resnet_channels has 0 entries"),
    "too many waveform layers": (_set("wave_channels", [8] * 6), "wave_channels has 6 entries"),
    "channels not a list": (_set("student_channels", 16), "student_channels is 16 (a number)"),
    "channel a float": (_set("wave_channels", [8, 16.5]), "wave_channels[1] is 16.5"),
    "unknown pretrained_audio": (
        _set("pretrained_audio", "vggish"),
        "pretrained_audio is 'vggish'",
    ),
    "path in pretrained_audio": (
        _set("pretrained_audio", "../../../tmp/evil"),
        "pretrained_audio is '../../../tmp/evil'",
    ),
    "path in text_encoder": (_set("text_encoder", "/etc/passwd"), "text_encoder is '/etc/passwd'"),
    "relative path in text_encoder": (
        _set("text_encoder", "models/../e5"),
        "text_encoder is 'models/../e5'",
    ),
    "text_dim of another encoder": (
        _set("text_dim", 768),
        "text_dim is 768; multilingual-e5-small",
    ),
    "control characters in version": (_set("version", "lgfn\x1b[2J"), "version is 'lgfn\\x1b[2J'"),
    "newline in version": (_set("version", "lgfn\nfake line"), "version is 'lgfn\\nfake line'"),
    "bidi override in version": (_set("version", "lgfn\u202e"), "version is 'lgfn\\u202e'"),
    "empty version": (_set("version", ""), "version is ''"),
    "long version": (_set("version", "v" * 1000), "version has 1000 characters"),
    "string d_model": (_set("d_model", "128"), "d_model is '128' (a string); must be an integer"),
    "float d_model": (_set("d_model", 128.5), "d_model is 128.5; must be an integer"),
    "boolean d_model": (_set("d_model", True), "d_model is True (true/false)"),
    "list where a number goes": (_set("max_lines", [1, 2]), "max_lines is [1, 2] (a list)"),
    "object where a number goes": (_set("audio.n_mels", {"a": 1}), "audio.n_mels is {...}"),
    "NaN": (_set("time_prior_sigma", float("nan")), "time_prior_sigma is nan; must be a finite"),
    "infinity": (_set("dropout", float("inf")), "dropout is inf; must be a finite"),
    "dropout above 1": (_set("dropout", 1.5), "dropout is 1.5; allowed 0..1"),
    "sigma 0": (_set("time_prior_sigma", 0), "time_prior_sigma is 0; allowed 0.01..600"),
    "labels of another task": (_set("labels", ["pos", "neg"]), "labels is ['pos', 'neg']"),
    "labels reordered": (_set("labels", list(reversed(MOODS))), "labels is ['relaxed'"),
    "unknown fusion": (_set("fusion", "sum"), "fusion is 'sum'; allowed: 'dgfm'"),
    "string boolean": (_set("use_aal", "yes"), "use_aal is 'yes' (a string); must be true"),
    "musicnn at 22 kHz": (
        lambda c: (_set("pretrained_audio", "musicnn-msd")(c), _set("audio.sample_rate", 22050)(c)),
        "audio.sample_rate is 22050; pretrained_audio 'musicnn-msd' reads 16000 Hz",
    ),
    "missing d_model": (_delete("d_model"), "d_model is missing"),
    "missing version": (_delete("version"), "version is missing"),
    "missing audio field": (_delete("audio.hop_length"), "audio.hop_length is missing"),
    "audio not an object": (_set("audio", [1, 2]), "audio is [1, 2] (a list)"),
    "unknown audio key": (_set("audio.center", False), "audio: unknown keys ['center']"),
}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_checkpoint(tmp_path_factory.mktemp("bounds") / "tiny")


def _tampered(base: Path, directory: Path, tamper: Tamper) -> Path:
    shutil.copytree(base, directory)
    path = directory / "config.json"
    document = json.loads(path.read_text())
    tamper(document["config"])
    path.write_text(json.dumps(document))
    return directory


@pytest.mark.parametrize("case", sorted(IMPOSSIBLE))
def test_impossible_config_is_one_line_naming_the_field(
    case: str, tiny: Path, tmp_path: Path
) -> None:
    tamper, expected = IMPOSSIBLE[case]
    directory = _tampered(tiny, tmp_path / "bad", tamper)
    started = time.perf_counter()
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(directory)
    assert time.perf_counter() - started < 1.0
    message = str(caught.value)
    assert message.startswith(f"{directory / 'config.json'}: {expected}"), message
    assert "\n" not in message and "\x1b" not in message and len(message) < 400


def test_the_checker_alone_says_the_same(tiny: Path) -> None:
    config = json.loads((tiny / "config.json").read_text())["config"]
    check_config_dict(config)
    _set("d_model", 30000)(config)
    with pytest.raises(ConfigError, match=r"^d_model is 30000; allowed 8\.\.4096$"):
        LGFNConfig.from_dict(config)
    with pytest.raises(ConfigError, match="the config is"):
        check_config_dict(["not", "an", "object"])


# The ones that ate memory (or would): loaded in a child process whose address space may grow
# by only LIMIT_MB once torch is imported and a good checkpoint has loaded. Without the checks
# each of these allocates hundreds of MB to gigabytes (d_model 30000: 7.7 GB) and runs out of
# memory instead of raising a CheckpointError.
LIMIT_MB = 200
MEMORY_EATERS: dict[str, Tamper] = {
    "d_model 30000": _set("d_model", 30000),
    "window_seconds 1e6": _set("audio.window_seconds", 1e6),
    # Within every field's bounds but 248 M parameters: the parameter cap, from a meta build.
    "every channel at its maximum": lambda c: (
        _set("d_model", 4096)(c),
        _set("resnet_channels", [1024] * 8)(c),
    ),
    # In bounds and under the cap (82 M parameters, 330 MB), but not what the weights hold:
    # the header's shapes are compared with a meta build before LGFN(config) allocates.
    "d_model 4000 against d_model 32 weights": _set("d_model", 4000),
}

_CHILD = textwrap.dedent(
    """
    import json, resource, sys, time
    from lgfn_model.runtime.checkpoint import CheckpointError, load_checkpoint

    good, limit_mb, *bad = sys.argv[1:]
    load_checkpoint(good)  # everything a load needs is imported and warm
    size = next(int(line.split()[1]) for line in open("/proc/self/status")
                if line.startswith("VmSize")) * 1024
    limit = size + int(limit_mb) * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    results = []
    for directory in bad:
        started = time.perf_counter()
        try:
            load_checkpoint(directory)
            outcome = "loaded"
        except CheckpointError as error:
            outcome = "CheckpointError: " + str(error)
        except Exception as error:  # MemoryError, or torch's RuntimeError "can't allocate"
            outcome = f"{type(error).__name__}: {error}"
        results.append([outcome, time.perf_counter() - started])
    print(json.dumps(results))
    """
)


def test_memory_eaters_fail_before_allocating(tiny: Path, tmp_path: Path) -> None:
    directories = [
        str(_tampered(tiny, tmp_path / f"bad{n}", tamper))
        for n, tamper in enumerate(MEMORY_EATERS.values())
    ]
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(tiny), str(LIMIT_MB), *directories],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])
    expected = [
        "config.json: d_model is 30000; allowed 8..4096",
        "config.json: audio.window_seconds is 1000000.0; allowed 0.25..60",
        f"config.json: the config builds a model of 248,215,161 parameters; allowed at most "
        f"{MAX_PARAMETERS:,}",
        "model.safetensors: affect_head.weight has shape (2, 32), the config needs (2, 4000)",
    ]
    for (outcome, seconds), directory, want in zip(results, directories, expected, strict=True):
        assert outcome == f"CheckpointError: {directory}/{want}", outcome
        assert seconds < 1.0


def test_the_memory_limit_would_catch_an_allocation(tiny: Path, tmp_path: Path) -> None:
    """The limit is tight: building a model of d_model 4000 for real does not fit in it."""
    child = _CHILD.replace(
        "load_checkpoint(directory)\n",
        "from lgfn_model.model.network import LGFN; from lgfn_model.testing import tiny_config; "
        "LGFN(tiny_config(d_model=4000))\n",
        1,
    )
    assert child != _CHILD
    done = subprocess.run(
        [sys.executable, "-c", child, str(tiny), str(LIMIT_MB), str(tiny)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    outcome = json.loads(done.stdout.strip().splitlines()[-1])[0][0]
    assert outcome.startswith(("MemoryError", "RuntimeError")) and "allocate" in outcome, outcome


def test_version_with_control_characters_is_refused_without_loading(
    tiny: Path, tmp_path: Path
) -> None:
    directory = _tampered(tiny, tmp_path / "bad", _set("version", "lgfn\x1b]0;owned\x07"))
    with pytest.raises(CheckpointError, match=r"config\.json: version is .*control character"):
        checkpoint_version(directory)
    assert checkpoint_version(tiny) == "lgfn-test-tiny"


def test_config_json_too_deep_or_too_big_is_one_line(tiny: Path, tmp_path: Path) -> None:
    deep = tmp_path / "deep"
    shutil.copytree(tiny, deep)
    (deep / "config.json").write_text("[" * 100_000)
    with pytest.raises(CheckpointError, match="unreadable checkpoint config .nested too deeply"):
        load_checkpoint(deep)
    big = tmp_path / "big"
    shutil.copytree(tiny, big)
    with open(big / "config.json", "ab") as handle:
        handle.truncate(17 << 20)
    with pytest.raises(CheckpointError, match="bytes; a config.json has at most"):
        load_checkpoint(big)


# --------------------------------------------------------------------------- real models


@pytest.mark.parametrize("name", sorted(SHIPPED_MODELS))
def test_shipped_models_pass_and_load(name: str) -> None:
    document = json.loads((shipped_checkpoint_dir(name) / "config.json").read_text())
    check_config_dict(document["config"])
    model = load_checkpoint(name)
    assert model.config.version == checkpoint_version(name)


def test_the_tiny_test_checkpoint_loads(tiny: Path) -> None:
    assert load_checkpoint(tiny).config == tiny_config()


def test_the_configs_of_training_and_tests_pass() -> None:
    from lgfn_model.training.train import ABLATIONS, TrainSettings, build_config

    for ablation in ABLATIONS:
        settings = TrainSettings(data=Path("data"), out=Path("out"), ablation=ablation)
        build_config(settings).validate()
    student = TrainSettings(
        data=Path("data"), out=Path("out"), config_overrides={"pretrained_audio": "musicnn-student"}
    )
    build_config(student).validate()
    LGFNConfig().validate()
    tiny_config().validate()
    for window in (2.0, 2.992, 8.976):  # tests/test_warm_start.py, test_training_loop.py
        audio = AudioConfig(window_seconds=window, n_mels=32, n_fft=512, hop_length=256)
        tiny_config(audio=audio, pretrained_audio="musicnn-msd", frames_per_window=9).validate()
    tiny_config(audio=AudioConfig(), pretrained_audio="musicnn-student").validate()
    tiny_config(
        audio=AudioConfig(),
        pretrained_audio="musicnn-student",
        student_channels=(8, 16, 16, 32, 48),
        student_hidden=40,
    ).validate()
    for fusion in ("dgfm", "concat", "audio_only", "lyrics_only"):
        tiny_config(fusion=fusion, use_aal=False, use_waveform_branch=False).validate()


def test_known_text_encoders_match_the_encoders_module() -> None:
    from lgfn_model.text import TEXT_ENCODERS

    assert set(TEXT_ENCODER_DIMS) == set(TEXT_ENCODERS)


# --------------------------------------------------------------------------- the plugin


def test_model_handle_turns_any_loading_failure_into_one_line(
    monkeypatch: pytest.MonkeyPatch, tiny: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from beetsplug.emotion.model import ModelHandle, ModelUnavailable, forget_loaded_models
    from lgfn_model.runtime.predictor import Predictor

    def broken(cls: type, *args: Any, **kwargs: Any) -> Any:
        raise ZeroDivisionError("division by zero\nsecond line")

    monkeypatch.setattr(Predictor, "load", classmethod(broken))
    forget_loaded_models()
    with (
        caplog.at_level("DEBUG", logger="beets.emotion"),
        pytest.raises(ModelUnavailable) as caught,
    ):
        ModelHandle(str(tiny), device="cpu").predictor()
    assert str(caught.value) == (
        f"{tiny}: unexpected ZeroDivisionError while loading (division by zero second line)"
    )
    assert "Traceback" in caplog.text and "ZeroDivisionError" in caplog.text  # for beet -vv
    forget_loaded_models()


def test_beet_emotion_with_an_impossible_config(tmp_path: Path) -> None:
    """The real ``beet emotion`` in its own process, on a real library: one line, no
    traceback, exit status 1, the item untouched, and no memory eaten."""
    from tools.fault_catalogue import Scratch, synth

    base = write_tiny_checkpoint(tmp_path / "good", version="lgfn-bounds")
    bad = _tampered(base, tmp_path / "bad", _set("d_model", 30000))
    scratch = Scratch(tmp_path / "library", bad, workers=0)
    scratch.add("a.flac", synth(scratch.music / "a.flac", seconds=3))
    scratch.snapshot()
    peak: list[float] = []
    result = scratch.beet("emotion", on_start=lambda process: _watch_peak(process.pid, peak))
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 1, result.output
    assert errors == [
        f"error: emotion: cannot load the model: {bad}/config.json: d_model is 30000; "
        "allowed 8..4096"
    ], result.output
    assert "Traceback" not in result.output
    assert scratch.state("a.flac", None) == "untouched"
    assert peak and peak[0] < 1500  # the child imports torch; 30000-wide would be 7.7 GB


def _watch_peak(pid: int, peak: list[float]) -> None:
    """Keep ``peak`` at the process's own VmHWM until it exits (ru_maxrss, which the catalogue
    reports, would also count this process's RSS at the fork: 1.8 GB under a long pytest)."""

    def poll() -> None:
        while True:
            try:
                lines = Path(f"/proc/{pid}/status").read_text().splitlines()
            except OSError:
                return
            line = next((ln for ln in lines if ln.startswith("VmHWM:")), None)
            if line is None:
                return
            peak[:] = [int(line.split()[1]) / 1024]
            time.sleep(0.02)

    threading.Thread(target=poll, daemon=True).start()


def test_the_plugin_precheck_needs_no_torch(tiny: Path, tmp_path: Path) -> None:
    """``check_checkpoint_config`` (run by the plugin before loading) refuses a bad config
    without importing torch, and passes a good or missing checkpoint on to loading."""
    bad = _tampered(tiny, tmp_path / "bad", _set("audio.sample_rate", 0))
    code = textwrap.dedent(
        f"""
        import sys
        from lgfn_model.runtime.checkpoint_files import CheckpointError, check_checkpoint_config
        check_checkpoint_config({str(tiny)!r})
        check_checkpoint_config({str(tmp_path / "nothing here")!r})
        try:
            check_checkpoint_config({str(bad)!r})
        except CheckpointError as error:
            print(error)
        assert "torch" not in sys.modules, "torch imported"
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == (
        f"{bad}/config.json: audio.sample_rate is 0; allowed 8000..96000"
    )


def test_training_refuses_a_bad_override_before_it_trains() -> None:
    """``lgfn train --set d_model=30000`` would train, then write a checkpoint no loader takes."""
    from lgfn_model.training.train import TrainSettings, build_config

    settings = TrainSettings(data=Path("data"), out=Path("out"), config_overrides={"d_model": 0})
    with pytest.raises(ValueError, match=r"^d_model is 0; allowed 8\.\.4096$"):
        build_config(settings)
