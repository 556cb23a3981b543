"""`lgfn example`: the README's demo song is real audio with synced lyrics."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lgfn_model.cli import main
from lgfn_model.data.audio import decode_audio
from lgfn_model.data.lyrics import read_lyrics_file


def test_example_song_decodes_and_its_lyrics_are_synced(tmp_path: Path, capsys) -> None:
    assert main(["example", str(tmp_path / "demo")]) == 0
    audio, lyrics = (Path(p) for p in capsys.readouterr().out.split())
    decoded = decode_audio(audio)
    assert 23.5 < decoded.duration < 24.5 and decoded.source_channels == 2
    assert np.abs(decoded.samples).max() > 0.1  # not silence
    parsed = read_lyrics_file(str(lyrics))
    assert parsed.synced and len(parsed.lines) == 6
    assert parsed.metadata["ar"] == "beets-lgfn"


def test_shipped_model_predicts_the_example(tmp_path: Path, capsys) -> None:
    import json

    from lgfn_model.runtime.checkpoint_files import checkpoint_version

    assert main(["example", str(tmp_path)]) == 0
    capsys.readouterr()
    song, lyrics = tmp_path / "example.flac", tmp_path / "example.lrc"
    assert main(["predict", str(song), "--lyrics", str(lyrics), "--workers", "0"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["model"] == checkpoint_version()
    assert record["mood"] in {"happy", "angry", "sad", "relaxed"}
    assert abs(sum(record["p"].values()) - 1) < 1e-3
    assert record["lyrics_synced"] and record["lyrics_lines"] == 6
    assert abs(record["gate_audio"] + record["gate_lyrics"] - 1) < 1e-3
