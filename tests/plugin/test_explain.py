"""``beet emotion --explain``: pictures for library tracks, nothing stored."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
import torch
from beets import ui

from .conftest import BeetsEnv, file_bytes

LRC = "[00:00.50]the sun is shining\n[00:01.50]we dance all night\n[00:02.50]happy days\n"
PLAIN = "the sun is shining\nwe dance all night\nhappy days"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class HashEncoder:
    """A stand-in lyrics encoder (a pseudo-random unit vector per line): no 100 MB load."""

    def encode(self, lines: list[str]) -> torch.Tensor:
        rows = []
        for line in lines:
            seed = int.from_bytes(hashlib.sha256(line.encode()).digest()[:4], "little")
            row = torch.randn(384, generator=torch.Generator().manual_seed(seed))
            rows.append(row / row.norm())
        return torch.stack(rows)


@pytest.fixture
def explain_env(env: BeetsEnv, monkeypatch: pytest.MonkeyPatch) -> BeetsEnv:
    torch.set_num_threads(1)
    predictor = env.emotion.analyzer().model.predictor()
    monkeypatch.setattr(predictor, "_text_encoder", HashEncoder())
    monkeypatch.setenv("DISPLAY", ":0")  # files only, unless a test says otherwise
    return env


def _library_state(env: BeetsEnv) -> list[dict]:
    return [dict(item) for item in env.items()]


def _tracks(env: BeetsEnv) -> list[Path]:
    synced = env.make_track("synced.flac", title="Sunny <Day>", track=1, lrc=LRC)
    plain = env.make_track("plain.mp3", title="Plain Song", track=2)
    none = env.make_track("none.ogg", title="Instrumental", track=3, kind="noise")
    items = env.add(synced, plain, none, album=True)
    items[1]["lyrics"] = PLAIN  # plain lyrics in beets' own field
    items[1].store()
    return [synced, plain, none]


def test_explain_writes_pictures_and_stores_nothing(explain_env: BeetsEnv) -> None:
    env = explain_env
    paths = _tracks(env)
    before_db = _library_state(env)
    before_files = [file_bytes(path) for path in paths]

    out = env.run("emotion", "--explain", "--out", "pics")

    pics = env.root / "pics"
    names = sorted(p.name for p in pics.iterdir())
    assert names == [
        "Test_Artist_-_Instrumental.html",
        "Test_Artist_-_Instrumental.png",
        "Test_Artist_-_Plain_Song.html",
        "Test_Artist_-_Plain_Song.png",
        "Test_Artist_-_Sunny_Day.html",
        "Test_Artist_-_Sunny_Day.png",
        "overview.html",
        "overview.png",
    ]
    for png in pics.glob("*.png"):
        assert png.read_bytes().startswith(PNG_SIGNATURE)
    synced = (pics / "Test_Artist_-_Sunny_Day.html").read_text(encoding="utf-8")
    assert "Sunny &lt;Day&gt; \u2014 Test Artist" in synced and "<Day>" not in synced
    assert "lrc (synced, 3 lines)" in synced and "we dance all night" in synced
    assert synced.count('<td class="share"') == 3
    plain = (pics / "Test_Artist_-_Plain_Song.html").read_text(encoding="utf-8")
    assert "beets (plain, not timed, 3 lines)" in plain
    none = (pics / "Test_Artist_-_Instrumental.html").read_text(encoding="utf-8")
    assert "none (the audio alone decided)" in none
    overview = (pics / "overview.html").read_text(encoding="utf-8")
    for page in ("Test_Artist_-_Sunny_Day.html", "Test_Artist_-_Instrumental.html"):
        assert f'href="{page}"' in overview
    assert "explained 3, failed 0" in out
    assert "lyric lines by attention" not in out  # a display: no text report

    assert _library_state(env) == before_db  # nothing stored in the database ...
    assert [file_bytes(path) for path in paths] == before_files  # ... nor in the files
    lrc_files = sorted(p.name for p in env.incoming.glob("*.lrc"))
    assert lrc_files == ["synced.lrc"]  # no lyrics cached beside the audio


def test_explain_shows_the_stored_lyrics_source_and_mood(explain_env: BeetsEnv) -> None:
    env = explain_env
    env.add(env.make_track("song.flac", title="Song", lrc=LRC))
    env.run("emotion", "-W")
    [item] = env.items()
    assert item.emotion_lyrics == "lrc"

    env.run("emotion", "--explain", "--out", "pics")

    page = (env.root / "pics" / "Test_Artist_-_Song.html").read_text(encoding="utf-8")
    assert f"{item.mood} (model lgfn-test-tiny)" in page  # the stored result, for comparison
    assert "lrc (synced, 3 lines)" in page
    assert not (env.root / "pics" / "overview.png").exists()  # one track: no overview


def test_explain_text_report(explain_env: BeetsEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    env = explain_env
    env.add(env.make_track("song.flac", title="Song", lrc=LRC))

    out = env.run("emotion", "--explain", "--text", "title:Song")
    assert "Song \u2014 Test Artist" in out
    assert "decided by the audio" in out and "mood per minute:" in out
    assert "lyric lines by attention:" in out and "happy days" in out
    assert not list(env.root.glob("*.png"))  # --text alone writes no files

    monkeypatch.delenv("DISPLAY")
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    out = env.run("emotion", "--explain")  # no display: files and the text report
    assert "mood per minute:" in out
    assert (env.root / "Test_Artist_-_Song.png").is_file()


def test_explain_album_overview(explain_env: BeetsEnv) -> None:
    env = explain_env
    paths = [
        env.make_track(f"{n}.flac", title=f"Track {n}", album="Blue", track=n, albumartist="Band")
        for n in (1, 2)
    ]
    env.add(*paths, album=True)

    env.run("emotion", "--explain", "-a", "album:Blue", "--out", "pics")

    overview = (env.root / "pics" / "overview.html").read_text(encoding="utf-8")
    assert "<h1>Band \u2014 Blue</h1>" in overview
    assert overview.count("<tr><td>") == 2


def test_explain_option_errors(explain_env: BeetsEnv) -> None:
    env = explain_env
    env.add(env.make_track("song.flac"))
    with pytest.raises(ui.UserError, match="go with --explain"):
        env.run("emotion", "--out", "pics")
    with pytest.raises(ui.UserError, match="drop -w/--write, --playlist"):
        env.run("emotion", "--explain", "-w", "--playlist", "lists")
    out = env.run("emotion", "--explain", "title:nothing-like-this")
    assert "no tracks match" in out
    blocker = env.root / "blocker"
    blocker.write_text("a file where the folder should go")
    with pytest.raises(ui.UserError, match="cannot write the pictures"):
        env.run("emotion", "--explain", "--out", os.fsdecode(blocker / "sub"))
