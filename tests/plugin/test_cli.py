"""``beet emotion`` end to end: real library, real files, the real model (tiny checkpoint)."""

from __future__ import annotations

import os
from pathlib import Path

import mutagen
import pytest
from beets import ui

from beetsplug.emotion import fields

from .conftest import TEST_MODEL_VERSION, BeetsEnv, file_bytes

FORMATS = ("a.flac", "b.mp3", "c.ogg", "d.opus", "e.m4a", "f.wav", "g.aiff")
LRC = "[00:00.50]the sun is shining\n[00:01.50]we dance all night\n[00:02.50]happy days\n"


def _mood_tag(path: Path) -> str | None:
    """MOOD as any player would read it, per format."""
    media = mutagen.File(os.fsdecode(path))
    tags = media.tags
    if tags is None:
        return None
    if hasattr(tags, "getall"):  # ID3: TMOO (v2.4) or TXXX:MOOD (v2.3), never both
        frames = tags.getall("TMOO") + tags.getall("TXXX:MOOD")
        assert len(frames) <= 1, frames  # TagLib would read two moods
        return str(frames[0].text[0]) if frames else None
    for key in ("MOOD", "----:com.apple.iTunes:MOOD"):
        if key in tags:
            value = tags[key][0]
            return value.decode() if isinstance(value, bytes) else str(value)
    return None


def test_analyses_every_format_and_queries_work(env: BeetsEnv) -> None:
    paths = [env.make_track(name, track=i + 1) for i, name in enumerate(FORMATS)]
    env.add(*paths)

    out = env.run("emotion")

    assert f"tagged {len(FORMATS)}, skipped 0" in out
    assert "failed 0" in out
    items = env.items()
    for item in items:
        assert item.mood in fields.MOODS
        assert item.emotion_model == TEST_MODEL_VERSION
        assert item.emotion_lyrics == "none"
        probabilities = [item[f"emotion_{m}"] for m in fields.MOODS]
        assert sum(probabilities) == pytest.approx(1.0, abs=1e-3)
        assert item.mood == max(fields.MOODS, key=lambda m: item[f"emotion_{m}"])
        assert -1.0 <= item.emotion_valence <= 1.0 and -1.0 <= item.emotion_arousal <= 1.0
        assert item.emotion_gate_audio == 1.0  # no lyrics: audio alone decides
        assert item.emotion_gate_lyrics == 0.0
        assert _mood_tag(item.path) == item.mood  # import.write defaults to yes here

    # mood:, numeric ranges and sorting go through beets' own query parser.
    for mood in fields.MOODS:
        listed = env.run("ls", "-f", "$path", f"mood:{mood}").split()
        assert sorted(listed) == sorted(os.fsdecode(i.path) for i in items if i.mood == mood)
    threshold = sorted(i.emotion_sad for i in items)[len(items) // 2]
    listed = env.run("ls", "-f", "$path", f"emotion_sad:{threshold}..").split()
    assert len(listed) == sum(1 for i in items if i.emotion_sad >= threshold)
    ordered = [
        float(v) for v in env.run("ls", "-f", "$emotion_arousal", "emotion_arousal-").split()
    ]
    assert ordered == sorted(ordered, reverse=True)
    assert env.run("ls", "-f", "$emotion_sad", "title:a").strip() == f"{items[0].emotion_sad:.2f}"


def test_skip_force_and_new_model(env: BeetsEnv, other_checkpoint: Path) -> None:
    env.add(env.make_track("one.flac"))
    env.run("emotion")
    first = dict(env.items()[0])

    out = env.run("emotion")
    assert "tagged 0, skipped 1 (already analysed by lgfn-test-tiny)" in out

    out = env.run("emotion", "-f")
    assert "tagged 1, skipped 0" in out
    again = env.items()[0]
    assert again.emotion_sad == pytest.approx(first["emotion_sad"], abs=1e-4)  # deterministic

    env.restart(checkpoint=str(other_checkpoint))
    out = env.run("emotion")
    assert "tagged 1, skipped 0" in out
    assert env.items()[0].emotion_model == "lgfn-test-v2"


def test_pretend_changes_nothing(env: BeetsEnv) -> None:
    path = env.make_track("one.mp3", title="Pretend Song")
    env.add(path)
    before_file = file_bytes(path)
    before_item = dict(env.items()[0])

    out = env.run("emotion", "-p")

    assert "Pretend Song: mood " in out
    assert "would tag 1" in out
    assert file_bytes(path) == before_file
    after = dict(env.items()[0])
    assert after == before_item
    assert "emotion_model" not in after


def test_nowrite_then_write_syncs_files(env: BeetsEnv) -> None:
    path = env.make_track("one.flac")
    env.add(path)
    before = file_bytes(path)

    env.run("emotion", "-W")
    assert file_bytes(path) == before
    assert env.items()[0].mood in fields.MOODS

    out = env.run("emotion", "-w")  # already analysed: skipped, but the file gets its tags
    assert "skipped 1" in out and "tags written to 1 file" in out
    assert _mood_tag(path) == env.items()[0].mood


def test_write_and_read_back_with_mutagen(env: BeetsEnv) -> None:
    mp3 = env.make_track("one.mp3", lrc=LRC)
    flac = env.make_track("two.flac")
    m4a = env.make_track("three.m4a")
    env.add(mp3, flac, m4a)
    env.run("emotion", "-w")
    by_name = {Path(os.fsdecode(i.path)).name: i for i in env.items()}

    id3 = mutagen.File(mp3).tags
    item = by_name["one.mp3"]
    assert str(id3["TMOO"].text[0]) == item.mood  # ID3v2.4 standard frame
    assert not id3.getall("TXXX:MOOD")  # one frame per ID3 version (id3_mood_frame: auto)
    assert float(str(id3["TXXX:EMOTION_SAD"].text[0])) == pytest.approx(item.emotion_sad, abs=1e-4)
    assert str(id3["TXXX:EMOTION_LYRICS"].text[0]) == "lrc"
    assert str(id3["TXXX:EMOTION_MODEL"].text[0]) == TEST_MODEL_VERSION
    assert 0.0 < item.emotion_gate_audio < 1.0  # lyrics took part
    assert item.emotion_gate_audio + item.emotion_gate_lyrics == pytest.approx(1.0, abs=1e-3)

    vorbis = mutagen.File(flac).tags
    item = by_name["two.flac"]
    assert vorbis["MOOD"] == [item.mood]
    for name in fields.FLOAT_FIELDS:
        assert float(vorbis[name.upper()][0]) == pytest.approx(item[name], abs=1e-4)

    mp4 = mutagen.File(m4a).tags
    item = by_name["three.m4a"]
    assert bytes(mp4["----:com.apple.iTunes:MOOD"][0]).decode() == item.mood
    valence = bytes(mp4["----:com.apple.iTunes:EMOTION_VALENCE"][0]).decode()
    assert float(valence) == pytest.approx(item.emotion_valence, abs=1e-4)


def test_id3v23_keeps_mood_in_txxx(env: BeetsEnv) -> None:
    import beets

    beets.config["id3v23"] = True
    path = env.make_track("one.mp3")
    env.add(path)
    env.run("emotion", "-w")
    tags = mutagen.File(path).tags
    assert tags.version[:2] == (2, 3)
    assert "TMOO" not in tags  # ID3v2.3 has no TMOO frame
    assert str(tags["TXXX:MOOD"].text[0]) == env.items()[0].mood


def test_update_and_write_keep_the_fields(env: BeetsEnv) -> None:
    written = env.make_track("written.flac", title="Written")
    unwritten = env.make_track("unwritten.mp3", title="Unwritten")
    env.add(written, unwritten)
    env.run("emotion", "-w", "title:Written")
    env.run("emotion", "-W", "title:Unwritten")
    stored = {i.title: {f: i[f] for f in fields.TRACK_FIELDS} for i in env.items()}

    # Another program changes the files: beet update re-reads them.
    for path in (written, unwritten):
        os.utime(path, (1, 1))
    env.run("update")
    for item in env.items():
        assert {f: item[f] for f in fields.TRACK_FIELDS} == stored[item.title]

    # beet write -f writes everything beets knows, our fields included, unmangled.
    env.run("write", "-f")
    assert _mood_tag(unwritten) == stored["Unwritten"]["mood"]
    sad = str(mutagen.File(unwritten).tags["TXXX:EMOTION_SAD"].text[0])
    assert sad == f"{stored['Unwritten']['emotion_sad']:.4f}"

    # Editing an unrelated field and writing keeps the tags too.
    env.run("modify", "-y", "-w", "title:Written", "genre=Jazz")
    assert _mood_tag(written) == stored["Written"]["mood"]
    env.run("update")
    assert {f: env.items("title:Written")[0][f] for f in fields.TRACK_FIELDS} == stored["Written"]


def test_mood_set_by_hand_is_kept_unless_forced(env: BeetsEnv) -> None:
    env.add(env.make_track("one.flac"))
    env.run("modify", "-y", "-W", "mood=melancholic")

    out = env.run("emotion")
    item = env.items()[0]
    assert item.mood == "melancholic"
    assert item.emotion_model == TEST_MODEL_VERSION
    assert "kept 1 mood(s) set by hand" in out

    env.run("emotion", "-f")
    item = env.items()[0]
    assert item.mood == max(fields.MOODS, key=lambda m: item[f"emotion_{m}"])


def test_overwrite_mood_option(env: BeetsEnv, other_checkpoint: Path) -> None:
    env.add(env.make_track("one.flac"))
    env.run("modify", "-y", "-W", "mood=melancholic")
    env.restart(overwrite_mood=True)
    env.run("emotion")
    assert env.items()[0].mood in fields.MOODS


def test_album_mode_aggregates_without_touching_tracks(env: BeetsEnv) -> None:
    tracks = [
        env.make_track("1.flac", track=1, kind="tone", seconds=3.0),
        env.make_track("2.flac", track=2, kind="noise", seconds=4.0),
        env.make_track("3.flac", track=3, kind="chord", seconds=3.0),
    ]
    env.add(*tracks, album=True)
    env.add(env.make_track("single.flac", album="Other"))

    out = env.run("emotion", "-a", "album:Test Album")

    assert "tagged 3" in out and "albums 1" in out
    album = list(env.lib.albums())[0]
    items = list(album.items())
    assert album.album_mood in fields.MOODS
    lengths = [i.length for i in items]
    expected = sum(i.emotion_valence * w for i, w in zip(items, lengths, strict=True)) / sum(
        lengths
    )
    assert album.album_emotion_valence == pytest.approx(expected, abs=1e-3)
    for item in items:  # Album.store(inherit=False): the tracks keep their own values
        assert item.mood == max(fields.MOODS, key=lambda m: item[f"emotion_{m}"])
        assert item.get("album_mood", with_album=False) is None
    assert env.items("title:single")[0].get("emotion_model", with_album=False) is None

    listed = env.run("ls", "-a", f"album_mood:{album.album_mood}")
    assert "Test Album" in listed
    assert env.run("ls", "-a", "album_emotion_valence:-1..1").count("Test Album") == 1

    out = env.run("emotion", "-a", "-p")  # everything current: the aggregate is still shown
    assert "skipped 3" in out


def test_bad_files_are_reported_and_the_run_goes_on(env: BeetsEnv) -> None:
    good = env.make_track("good.flac", title="Good")
    broken = env.make_track("broken.mp3", title="Broken")
    gone = env.make_track("gone.ogg", title="Gone")
    env.add(good, broken, gone)
    broken.write_bytes(b"\x00garbage" * 500)
    gone.unlink()

    out = env.run_failing("emotion")

    assert "tagged 1, skipped 0, failed 2" in out
    failures = [line for line in out.splitlines() if line.strip().startswith("failed:")]
    assert len(failures) == 2
    assert any(f"failed: {broken}: not an audio file" in line for line in failures)
    assert any(f"failed: {gone}: file not found" in line for line in failures)
    assert all("Traceback" not in line for line in failures)
    assert env.items("title:Good")[0].mood in fields.MOODS
    assert env.items("title:Broken")[0].get("mood", with_album=False) is None


def test_playlists_per_mood_ordered_by_probability(env: BeetsEnv, tmp_path: Path) -> None:
    paths = [
        env.make_track(f"{i}.flac", track=i, kind=kind, seconds=2.0 + i)
        for i, kind in enumerate(("tone", "noise", "chord", "silence", "tone", "noise"), 1)
    ]
    env.add(*paths)
    target = tmp_path / "lists"

    out = env.run("emotion", "--playlist", str(target))

    assert "tagged 6" in out
    items = env.items()
    for mood in fields.MOODS:
        playlist = target / f"{mood}.m3u"
        assert f"wrote {playlist}" in out
        lines = playlist.read_text(encoding="utf-8").splitlines()
        assert lines[0] == "#EXTM3U"
        listed = [line for line in lines if not line.startswith("#")]
        members = [i for i in items if i.mood == mood]
        assert sorted(listed) == sorted(os.fsdecode(i.path) for i in members)
        by_path = {os.fsdecode(i.path): i for i in members}
        p = [by_path[path][f"emotion_{mood}"] for path in listed]
        assert p == sorted(p, reverse=True)

    pretend_dir = tmp_path / "pretend"
    out = env.run("emotion", f"--playlist={pretend_dir}", "-p", "track:1")
    assert "would write" in out and not pretend_dir.exists()


def test_progress_and_summary(env: BeetsEnv, capsys: pytest.CaptureFixture[str]) -> None:
    env.add(env.make_track("one.flac", lrc=LRC), env.make_track("two.flac"))
    out = env.run("emotion")
    err = capsys.readouterr().err
    assert "emotion: 2/2 tracks" in err and "tracks/s" in err
    assert "lyrics by source: lrc 1, none 1" in out

    env.run("emotion", "-f", "-q")
    assert "tracks/s" not in capsys.readouterr().err


def test_missing_model_is_one_clear_error(env: BeetsEnv, tmp_path: Path) -> None:
    env.add(env.make_track("one.flac"))
    env.restart(checkpoint=str(tmp_path / "nowhere"))
    with pytest.raises(ui.UserError) as caught:
        env.run("emotion")
    message = str(caught.value)
    assert "\n" not in message and "nowhere" in message and "checkpoint" in message
    assert env.items()[0].get("mood", with_album=False) is None


def test_precision_option(env: BeetsEnv) -> None:
    env.add(env.make_track("one.flac"))
    env.restart(precision="fp16")
    with pytest.raises(ui.UserError) as caught:
        env.run("emotion")
    assert str(caught.value) == "emotion: option precision is 'fp16'; use one of auto, fp32, bf16"
    env.restart(precision="fp32")
    assert "tagged 1, skipped 0, failed 0" in env.run("emotion", "-W")
    predictor = env.emotion.analyzer().model.predictor()
    assert str(predictor.dtype) == "torch.float32"


def test_shipped_models_by_name(env: BeetsEnv) -> None:
    """``checkpoint: musicnn`` picks the previous default inside the package (the real one);
    ``fast``, the default's name before it became the default, still tags with its version."""
    from lgfn_model.runtime.checkpoint_files import checkpoint_version

    env.add(env.make_track("one.flac", seconds=4.0))
    env.restart(checkpoint="musicnn")
    assert "tagged 1, skipped 0, failed 0" in env.run("emotion", "-W")
    item = env.items()[0]
    assert item.emotion_model == checkpoint_version("musicnn") != TEST_MODEL_VERSION
    assert item.mood in fields.MOODS
    env.restart(checkpoint="fast")
    assert "tagged 1, skipped 0, failed 0" in env.run("emotion", "-W")
    assert env.items()[0].emotion_model == checkpoint_version("default")
    # The same model under its old name: nothing to re-analyse.
    env.restart(checkpoint="default")
    expected = f"skipped 1 (already analysed by {checkpoint_version('default')})"
    assert expected in env.run("emotion", "-W")


def test_interrupt_keeps_what_was_stored(env: BeetsEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    from beetsplug.emotion.analysis import Analyzer

    env.add(*(env.make_track(f"{n}.flac", track=n, title=f"T{n}") for n in (1, 2, 3)))
    original = Analyzer._apply
    calls: list[int] = []

    def interrupt_second(self: Analyzer, *args: object, **kwargs: object) -> object:
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Analyzer, "_apply", interrupt_second)
    with pytest.raises(KeyboardInterrupt):
        env.run("emotion")
    assert "tagged 1, skipped 0, failed 0 (interrupted)" in env.last_output
    analysed = [i for i in env.items() if i.get("emotion_model", with_album=False)]
    assert [i.title for i in analysed] == ["T1"]

    monkeypatch.setattr(Analyzer, "_apply", original)
    assert "tagged 2, skipped 1" in env.run("emotion")  # the next run picks up the rest


def test_the_track_embedding_is_in_the_library_not_in_the_files(
    env: BeetsEnv, tiny_checkpoint: Path
) -> None:
    mp3 = env.make_track("one.mp3", lrc=LRC)
    flac = env.make_track("two.flac")
    env.add(mp3, flac)
    env.run("emotion", "-w")
    for written in (mp3, flac):
        names = list(mutagen.File(written).tags.keys())  # FLAC's tags iterate as pairs
        assert names and not [name for name in names if "EMBEDDING" in name.upper()]
    # The model's mood head of the stored embedding gives the stored probabilities, so a
    # listener's own head can re-tag from it without decoding (float16 keeps 3 digits).
    from lgfn_model.runtime.checkpoint import load_checkpoint
    from lgfn_model.training.adaptation import Head

    model = load_checkpoint(tiny_checkpoint)
    head = model.mood_head
    shipped = Head(head.weight.detach().double().numpy(), head.bias.detach().double().numpy())
    for item in env.items():
        embedding = fields.decode_embedding(item.get(fields.EMBEDDING))
        assert embedding is not None and len(embedding) == model.config.d_model
        probabilities = shipped.probabilities([embedding])[0]
        for label, p in zip(model.config.labels, probabilities, strict=True):
            assert p == pytest.approx(item[fields.PROBABILITY_FIELDS[label]], abs=0.01)
