"""``lgfn predict`` and ``beet emotion`` read the same lyrics for the same file: a given file
wins, then the ``.lrc`` beside the audio, then the embedded lyrics; both say the same."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mutagen.id3 import ID3, USLT

from lgfn_model import cli

from .conftest import BeetsEnv

LRC = "[00:00.50]Walking down the empty road\n[00:01.50]Nobody waits for me tonight\n"
WORDS = "Dancing in the summer sun\nEverybody sing along with me"


def _predict(capsys: pytest.CaptureFixture[str], *args: str) -> list[dict]:
    code = cli.main(["predict", *args])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return [json.loads(line) for line in captured.out.splitlines() if line.strip()]


def test_predict_finds_the_sidecar_as_the_plugin_does(
    env: BeetsEnv, tiny_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    audio = env.make_track("song.m4a", folder=env.music, lrc=LRC)
    env.add(audio)
    env.run("emotion", "-W")
    capsys.readouterr()
    item = env.items()[0]
    assert item.get("emotion_lyrics") == "lrc"

    checkpoint = ["--checkpoint", str(tiny_checkpoint), "--workers", "0"]
    single = _predict(capsys, str(audio), *checkpoint)[0]
    assert single["lyrics_source"] == "lrc" and single["lyrics_synced"] is True
    assert single["lyrics_lines"] == 2 and single["model"] == item.get("emotion_model")
    # The plugin's stored values are the same prediction (4 decimals).
    assert single["mood"] == item.get("mood", with_album=False)
    assert single["p"]["sad"] == pytest.approx(item.get("emotion_sad"), abs=1e-4)
    assert single["gate_lyrics"] == pytest.approx(item.get("emotion_gate_lyrics"), abs=1e-4)

    manifest = tmp_path / "tracks.csv"
    manifest.write_text(f"id,audio,lyrics\nx,{audio},\n", encoding="utf-8")
    row = _predict(capsys, "--manifest", str(manifest), *checkpoint)[0]
    assert row["id"] == "x" and row["audio"] == str(audio)
    assert {k: v for k, v in row.items() if k not in ("id",)} == single


def test_embedded_lyrics_then_none(
    tiny_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from audio_factory import make_audio_file

    audio = make_audio_file(tmp_path / "song.mp3", seconds=3.0)
    tags = ID3()
    tags.add(USLT(encoding=3, lang="eng", desc="", text=WORDS))
    tags.save(str(audio))
    checkpoint = ["--checkpoint", str(tiny_checkpoint), "--workers", "0"]
    found = _predict(capsys, str(audio), *checkpoint)[0]
    assert found["lyrics_source"] == "embedded" and found["lyrics_lines"] == 2
    assert found["lyrics_synced"] is False and found["gate_lyrics"] > 0

    # A sidecar comes before the embedded lyrics; a given file before both.
    audio.with_suffix(".lrc").write_text(LRC, encoding="utf-8")
    assert _predict(capsys, str(audio), *checkpoint)[0]["lyrics_source"] == "lrc"
    given = tmp_path / "other.txt"
    given.write_text("One line only, sung softly", encoding="utf-8")
    chosen = _predict(capsys, str(audio), "--lyrics", str(given), *checkpoint)[0]
    assert chosen["lyrics_source"] == "file" and chosen["lyrics_lines"] == 1

    alone = _predict(capsys, str(audio), "--no-find-lyrics", *checkpoint)[0]
    assert alone["lyrics_source"] == "none" and alone["gate_audio"] == 1.0


def test_an_unreadable_sidecar_is_a_warning_and_the_embedded_lyrics_are_used(
    tiny_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from audio_factory import make_audio_file

    audio = make_audio_file(tmp_path / "song.mp3", seconds=3.0)
    tags = ID3()
    tags.add(USLT(encoding=3, lang="eng", desc="", text=WORDS))
    tags.save(str(audio))
    sidecar = audio.with_suffix(".lrc")
    with open(sidecar, "wb") as handle:
        handle.truncate(5 * 2**20)  # over the 4 MiB cap
    code = cli.main(["predict", str(audio), "--checkpoint", str(tiny_checkpoint)])
    captured = capsys.readouterr()
    assert code == 0
    assert json.loads(captured.out)["lyrics_source"] == "embedded"
    assert f"lgfn: warning: {sidecar}: lyrics file too large" in captured.err
