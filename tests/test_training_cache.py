"""Feature cache (decoded audio, lyric embeddings) and the classic spectral baseline."""

from __future__ import annotations

import os

import numpy as np
import pytest
from audio_factory import make_audio_file

from lgfn_model.data.audio import decode_audio
from lgfn_model.training.cache import FeatureCache, default_cache_dir


@pytest.fixture
def clips(tmp_path):
    return [
        make_audio_file(tmp_path / "music" / "a.wav", seconds=1.0, kind="tone"),
        make_audio_file(
            tmp_path / "music" / "b.flac", seconds=1.5, kind="chord", sample_rate=22050
        ),
        make_audio_file(tmp_path / "music" / "c.opus", seconds=0.5, kind="noise", channels=1),
    ]


@pytest.mark.parametrize("workers", [1, 2])
def test_audio_cache_round_trip(tmp_path, clips, workers) -> None:
    cache = FeatureCache(tmp_path / "cache", sample_rate=16000)
    assert cache.ensure_audio(clips, workers=workers) == {}
    for clip in clips:
        assert cache.has_audio(clip)
        cached = cache.load_audio(clip, decode_missing=False)
        direct = decode_audio(clip, 16000).samples
        assert cached.dtype == np.float32 and cached.shape == direct.shape
        np.testing.assert_allclose(cached, direct, atol=2e-3)
    stored = sorted(p for p in (tmp_path / "cache").rglob("*") if p.is_file())
    assert len(stored) == 3 and all(p.suffix == ".npy" for p in stored)
    # a second run finds everything and decodes nothing
    progress = []
    assert (
        cache.ensure_audio(clips, workers=workers, progress=lambda d, n: progress.append(d)) == {}
    )
    assert progress == []


def test_audio_cache_key_follows_the_bytes_not_the_mtime(tmp_path, clips) -> None:
    cache = FeatureCache(tmp_path / "cache")
    before = cache.audio_file(clips[0])
    assert before == cache.audio_file(clips[0])
    # Touched or copied elsewhere (a fresh checkout of the data): same entry.
    stat = clips[0].stat()
    os.utime(clips[0], ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert cache.audio_file(clips[0]) == before
    copy = tmp_path / "elsewhere" / clips[0].name
    copy.parent.mkdir()
    copy.write_bytes(clips[0].read_bytes())
    assert cache.audio_file(copy) == before
    # Replaced by other audio: a new entry.
    copy.write_bytes(clips[1].read_bytes())
    assert cache.audio_file(copy) != before
    assert FeatureCache(tmp_path / "cache", sample_rate=8000).audio_file(
        clips[0]
    ) != cache.audio_file(clips[0])


def test_bad_audio_is_reported_not_raised(tmp_path, clips) -> None:
    bad = tmp_path / "music" / "broken.mp3"
    bad.write_bytes(b"not audio at all" * 10)
    cache = FeatureCache(tmp_path / "cache")
    errors = cache.ensure_audio([*clips, bad], workers=1)
    assert list(errors) == [bad]
    assert all(cache.has_audio(c) for c in clips)
    with pytest.raises(RuntimeError, match="broken.mp3"):
        cache.load_audio(bad)
    assert not list((tmp_path / "cache").rglob(".tmp-*"))


def test_lyrics_cache(tmp_path) -> None:
    lrc = tmp_path / "a.lrc"
    lrc.write_text(
        "[00:01.00]hello there\n[00:04.50]chorus line\n[00:09.00]chorus line\n", encoding="utf-8"
    )
    txt = tmp_path / "b.txt"
    txt.write_text("chorus line\nsomething else\n", encoding="utf-8")
    empty = tmp_path / "c.txt"
    empty.write_text("\n\n", encoding="utf-8")
    calls: list[list[str]] = []

    def encode(lines):
        calls.append(list(lines))
        return np.array([[len(line), line.count("o"), 1.0] for line in lines], dtype=np.float32)

    cache = FeatureCache(tmp_path / "cache")
    assert cache.ensure_lyrics([lrc, txt, empty], "fake", encode=encode) == {}
    assert sorted(line for call in calls for line in call) == [
        "chorus line",
        "hello there",
        "something else",
    ]
    a = cache.load_lyrics(lrc, "fake")
    assert len(a) == 3 and a.synced
    np.testing.assert_allclose(a.starts, [1.0, 4.5, 9.0])
    np.testing.assert_allclose(a.embeddings[1], [11, 1, 1])
    np.testing.assert_array_equal(a.embeddings[1], a.embeddings[2])
    b = cache.load_lyrics(txt, "fake")
    assert len(b) == 2 and not b.synced and np.isnan(b.starts).all()
    c = cache.load_lyrics(empty, "fake")
    assert len(c) == 0 and c.embeddings.shape == (0, 3)
    # cached: a second pass encodes nothing; another encoder name is another cache entry
    calls.clear()
    cache.ensure_lyrics([lrc, txt, empty], "fake", encode=encode)
    assert calls == []
    assert cache.lyrics_file(lrc, "fake") != cache.lyrics_file(lrc, "other")
    # changed text, new entry
    lrc.write_text("[00:01.00]new words\n", encoding="utf-8")
    cache.ensure_lyrics([lrc], "fake", encode=encode)
    assert calls == [["new words"]]


def test_missing_lyrics_file_is_reported(tmp_path) -> None:
    cache = FeatureCache(tmp_path / "cache")
    errors = cache.ensure_lyrics(
        [tmp_path / "nope.lrc"], "fake", encode=lambda lines: np.zeros((len(lines), 3))
    )
    assert list(errors) == [tmp_path / "nope.lrc"]


def test_default_cache_dir(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "beets-lgfn" / "features"


# ------------------------------------------------------------------------------------ baseline


def test_spectral_features_are_fixed_length_and_informative() -> None:
    from audio_factory import synth

    from lgfn_model.evaluation.baseline import spectral_features

    tone = synth(3.0, 16000, 1, "tone")[:, 0]
    chord = synth(3.0, 16000, 1, "chord")[:, 0]
    noise = synth(3.0, 16000, 1, "noise")[:, 0]
    short = synth(0.01, 16000, 1, "tone")[:, 0]
    silence = np.zeros(16000, dtype=np.float32)
    vectors = [spectral_features(x) for x in (tone, chord, noise, short, silence)]
    assert len({v.shape for v in vectors}) == 1 and vectors[0].ndim == 1 and vectors[0].size > 100
    assert all(np.isfinite(v).all() for v in vectors)
    assert not np.allclose(vectors[0], vectors[2])
    assert not np.allclose(vectors[0], vectors[1])


def test_spectral_baseline_learns_separable_data() -> None:
    from lgfn_model.evaluation.baseline import SpectralBaseline
    from lgfn_model.model.config import MOODS
    from lgfn_model.training.datasets import MOOD_SIGNS, Example

    rng = np.random.default_rng(0)
    examples, rows = [], []
    for i in range(80):
        mood = i % 4
        valence, arousal = MOOD_SIGNS[MOODS[mood]]
        partial = i % 10 == 0  # some valence-only examples, like MIREX clusters 2 and 4
        examples.append(
            Example(
                f"t:{i}",
                "t",
                None,
                None,
                None if partial else mood,
                valence,
                None if partial else arousal,
            )
        )
        rows.append(np.r_[np.eye(4)[mood] * 3.0, rng.normal(size=6)])
    x = np.array(rows)
    model = SpectralBaseline(c_grid=(0.1, 1.0)).fit(x, examples)
    mood, pv, pa = model.predict(x)
    assert mood.shape == (80, 4) and np.allclose(mood.sum(axis=1), 1.0)
    truth = np.arange(80) % 4
    assert (mood.argmax(axis=1) == truth).mean() > 0.9
    signs = np.array([MOOD_SIGNS[MOODS[m]] for m in truth])
    assert ((pv > 0.5) == (signs[:, 0] > 0)).mean() > 0.9
    assert ((pa > 0.5) == (signs[:, 1] > 0)).mean() > 0.9


def test_lyrics_probe_features(tmp_path) -> None:
    from lgfn_model.evaluation.baseline import lyrics_matrix
    from lgfn_model.training.datasets import Example

    files = []
    for name, text in (("a.txt", "one\ntwo\n"), ("b.txt", "\n")):
        (tmp_path / name).write_text(text, encoding="utf-8")
        files.append(tmp_path / name)
    cache = FeatureCache(tmp_path / "cache")

    def encode(lines):
        return np.array([[1.0, len(line)] for line in lines])

    cache.ensure_lyrics(files, "fake", encode=encode)
    examples = [Example(f"t:{i}", "t", None, f, 0, 1.0, 1.0) for i, f in enumerate(files)]
    x = lyrics_matrix(examples, cache, "fake")
    np.testing.assert_allclose(x, [[1.0, 3.0, 1.0, 3.0], [0, 0, 0, 0]])
