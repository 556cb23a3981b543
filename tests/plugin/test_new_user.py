"""What a new beets user runs into: playlists never blanked by an empty match, a query that
matches nothing said as such, ``--help`` naming ``[DIR]``, counts in good English."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from .conftest import BeetsEnv
from .test_subprocess import BEET, _config


def test_playlist_word_read_as_a_query_keeps_the_playlists(
    env: BeetsEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    env.add(env.make_track("one.flac", folder=env.music))
    env.run("emotion", "-W", "--playlist")  # ./happy.m3u etc. in the current folder
    before = {p.name: p.read_text(encoding="utf-8") for p in Path(".").glob("*.m3u")}
    assert sum("one.flac" in text for text in before.values()) == 1
    # ``mylists`` does not exist yet: it is read as a query, which matches nothing.
    out = env.run("emotion", "-W", "--playlist", "mylists")
    assert (
        'emotion: no tracks match the query "mylists"; for playlists in a new folder '
        "'mylists', write --playlist=mylists or --playlist ./mylists" in out
    )
    assert "left as they were (no tracks matched)" in out
    assert "wrote" not in out
    after = {p.name: p.read_text(encoding="utf-8") for p in Path(".").glob("*.m3u")}
    assert after == before
    # Written as the hint says, the folder is created and filled.
    out = env.run("emotion", "-W", "--playlist=mylists")
    assert "(1 track)" in out and "(1 tracks)" not in out
    assert sum("one.flac" in p.read_text() for p in Path("mylists").glob("*.m3u")) == 1


def test_a_query_matching_nothing_is_said(env: BeetsEnv) -> None:
    env.add(env.make_track("one.flac", folder=env.music))
    out = env.run("emotion", "artist:nobody")
    assert 'emotion: no tracks match the query "artist:nobody"' in out
    assert "for playlists" not in out
    out = env.run("emotion", "-a", "album:nothing")
    assert 'emotion: no albums match the query "album:nothing"' in out


def test_help_names_the_playlist_folder(tmp_path: Path, tiny_checkpoint: Path) -> None:
    environ = _config(tmp_path, tiny_checkpoint)
    shown = subprocess.run(
        [str(BEET), "emotion", "--help"], env=environ, capture_output=True, text=True, timeout=60
    )
    assert shown.returncode == 0
    assert "--playlist [DIR]" in shown.stdout
    assert "--wait" in shown.stdout


def test_beet_ls_imports_no_network_code_nor_torch(tmp_path: Path, tiny_checkpoint: Path) -> None:
    """Loading the plugin stays cheap: requests (about 100 ms) and torch wait for a command
    that analyses. (numpy is not checked: beets' own importer pulls it in through lap.)"""
    import sys
    import textwrap

    environ = _config(tmp_path, tiny_checkpoint)
    probe = textwrap.dedent(
        """\
        import sys
        from beets import ui
        for args in (["ls"], ["ls", "mood:sad"], ["ls", "emotion_sad:0.5.."], ["emotion", "-h"]):
            try:
                ui.main(args)
            except SystemExit as done:
                assert not done.code, done.code
        heavy = ("requests", "urllib3", "torch", "lgfn_model.data.lyrics")
        heavy = [m for m in heavy if m in sys.modules]
        print("HEAVY:", ",".join(heavy) or "none")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], env=environ, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "HEAVY: none"


def test_album_values_follow_their_tracks_without_a(env: BeetsEnv, other_checkpoint: Path) -> None:
    """After a model change a plain ``beet emotion`` re-analyses the tracks, and their album's
    aggregate follows (it used to keep the old model's values until ``-a``)."""
    tracks = [
        env.make_track(f"t{n}.flac", title=f"T{n}", track=n + 1, folder=env.music) for n in range(2)
    ]
    env.add(*tracks, album=True)
    env.run("emotion", "-a", "-W")
    album = env.lib.albums()[0]
    assert album.get("album_emotion_model") == "lgfn-test-tiny"

    env.run("emotion", "-W")  # all current: the album is left as it is
    assert env.lib.albums()[0].get("album_emotion_model") == "lgfn-test-tiny"

    env.restart(checkpoint=str(other_checkpoint))
    out = env.run("emotion", "-W", "title:T0")  # one track of the album, no -a
    assert "tagged 1" in out and "albums 1" in out
    album = env.lib.albums()[0]
    # One track by each model now: the album says so, and its mood is recomputed.
    assert album.get("album_emotion_model") == "lgfn-test-tiny,lgfn-test-v2"
    env.run("emotion", "-W")
    album = env.lib.albums()[0]
    assert album.get("album_emotion_model") == "lgfn-test-v2"
    sad = [item.get("emotion_sad") for item in album.items()]
    assert album.get("album_emotion_sad") == pytest.approx(sum(sad) / 2, abs=0.02)


def test_an_import_shows_progress_and_ends_with_the_summary(
    tmp_path: Path, tiny_checkpoint: Path
) -> None:
    from audio_factory import make_audio_file
    from mediafile import MediaFile

    environ = _config(tmp_path, tiny_checkpoint, lyrics_sources="[beets, lrc, embedded]")
    incoming = tmp_path / "incoming"
    for n, mood in enumerate(("", "melancholic")):
        path = make_audio_file(incoming / f"s{n}.flac", seconds=3.0)
        media = MediaFile(str(path))
        media.update({"title": f"S{n}", "artist": "A", "album": "B", "track": n + 1})
        media.save()
        if mood:
            from mutagen.flac import FLAC

            flac = FLAC(str(path))
            flac["MOOD"] = mood  # set by another tool: kept as a mood set by hand
            flac.save()
    shown = subprocess.run(
        [str(BEET), "import", "-A", str(incoming)],
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert shown.returncode == 0, shown.stderr
    assert "emotion: 2/2 tracks" in shown.stderr  # progress
    summary = [line for line in shown.stdout.splitlines() if line.startswith("emotion:")]
    assert summary == ["emotion: tagged 2, skipped 0, failed 0; albums 1"], shown.stdout
    assert "kept 1 mood(s) set by hand (use --force to replace)" in shown.stdout

    (tmp_path / "library.db").unlink()
    quiet = subprocess.run(
        [str(BEET), "import", "-A", "-q", str(tmp_path / "music")],
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert quiet.returncode == 0, quiet.stderr
    assert "tracks/s" not in quiet.stderr and "/2 tracks" not in quiet.stderr
    # Re-imported files carry this model's tags: adopted, not analysed again.
    assert "emotion: tagged 0, skipped 2 (already analysed by lgfn-test-tiny)" in quiet.stdout


def test_lyrics_beets_copied_from_the_file_are_reported_as_embedded(env: BeetsEnv) -> None:
    from mutagen.id3 import ID3, USLT

    path = env.make_track("song.mp3", title="Song")
    tags = ID3(str(path))
    tags.add(USLT(encoding=3, lang="eng", desc="", text="Sing it loud\nSing it clear"))
    tags.save(str(path))
    env.run("import", str(env.incoming))  # beets copies the USLT frame into `lyrics`
    item = env.items()[0]
    assert "Sing it loud" in item.get("lyrics")
    env.run("emotion", "-f")
    assert env.items()[0].get("emotion_lyrics") == "embedded"

    env.run("modify", "-y", "-W", "lyrics=Other words, typed by hand")  # not into the file
    env.run("emotion", "-f")
    assert env.items()[0].get("emotion_lyrics") == "beets"  # the user's own text
