"""`--pair-lyrics CHANCE`: clips without words borrow the lyrics of a lyrics-only example of
the same mood, untimed, with the whole-text vector."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from lgfn_model.testing import tiny_config
from lgfn_model.training.batches import LoadedExample, training_batch
from lgfn_model.training.cache import LyricFeatures
from lgfn_model.training.datasets import Example
from lgfn_model.training.lyric_pairing import LyricDonors, lyric_donors

DIM = 384  # the config's text_dim


def _clip(name: str, mood: int | None, rng: np.random.Generator) -> LoadedExample:
    samples = (rng.standard_normal(3 * 16000) * 0.1).astype(np.float16)
    return LoadedExample(Example(name, "4q", Path(name), None, mood, None, None), samples, None)


def _lyrics(name: str, mood: int | None, marker: float, lines: int = 3) -> LoadedExample:
    """A lyrics-only example whose line vectors all equal ``marker`` and whose lines are
    timed, as an NJU file's are; its whole-text vector is ``-marker``."""
    embeddings = np.full((lines, DIM), marker, dtype=np.float32)
    starts = np.arange(lines, dtype=np.float32) * 4.0
    song = np.full(DIM, -marker, dtype=np.float32)
    example = Example(name, "nju", None, Path(name), mood, None, None)
    return LoadedExample(example, None, LyricFeatures(embeddings, starts, song))


def _pool(rng: np.random.Generator) -> list[LoadedExample]:
    # Moods 0 and 2 have donors (markers 1.0 and 3.0); mood 1 has none.
    return [
        _clip("happy-clip", 0, rng),
        _clip("angry-clip", 1, rng),
        _clip("sad-clip", 2, rng),
        _clip("unlabelled-clip", None, rng),
        _lyrics("happy-words", 0, 1.0),
        _lyrics("sad-words", 2, 3.0),
        _lyrics("unlabelled-words", None, 9.0),
    ]


def test_the_pool_holds_the_lyrics_only_examples_by_mood_untimed() -> None:
    items = _pool(np.random.default_rng(0))
    donors = LyricDonors.from_items(items)
    assert donors.counts() == {0: 1, 2: 1} and len(donors) == 2
    borrowed = donors.draw(2, np.random.default_rng(0))
    assert float(borrowed.embeddings[0, 0]) == 3.0 and float(borrowed.song[0]) == -3.0
    assert np.isnan(borrowed.starts).all() and not borrowed.synced
    # only clips with a mood that donors share and no words of their own take lyrics
    assert [i.example.id for i in items if donors.wants(i)] == ["happy-clip", "sad-clip"]


def test_a_paired_clip_reads_words_of_its_own_mood() -> None:
    rng = np.random.default_rng(1)
    items = _pool(rng)
    clips = items[:4]
    donors = LyricDonors.from_items(items)
    config = tiny_config(song_text=True).validate()
    with_words: dict[str, int] = {}
    for seed in range(20):
        batch = training_batch(
            clips,
            config,
            np.random.default_rng(seed),
            drop_lyrics=0.3,
            pair_lyrics=1.0,
            donors=donors,
        )
        if batch.lyrics is None:  # both drew the drop
            continue
        for row, item in enumerate(clips):
            if not bool(batch.lyrics.mask[row].any()):
                continue
            with_words[item.example.id] = with_words.get(item.example.id, 0) + 1
            lines = batch.lyrics.embeddings[row][batch.lyrics.mask[row]]
            expected = {"happy-clip": 1.0, "sad-clip": 3.0}[item.example.id]
            assert torch.all(lines == expected)
            assert float(batch.lyrics.song[row, 0]) == -expected
    # the words are borrowed every time, and then dropped 30 % of the time as a song's own
    assert set(with_words) == {"happy-clip", "sad-clip"}
    assert all(8 <= count < 20 for count in with_words.values())


def test_off_it_draws_nothing_and_the_batches_are_as_before() -> None:
    rng = np.random.default_rng(2)
    items = _pool(rng)
    donors = LyricDonors.from_items(items)
    config = tiny_config().validate()
    a = training_batch(items, config, np.random.default_rng(3), noise_snr_db=(0.0, 30.0))
    b = training_batch(
        items, config, np.random.default_rng(3), noise_snr_db=(0.0, 30.0), donors=donors
    )
    assert torch.equal(a.waveforms, b.waveforms) and torch.equal(a.starts, b.starts)
    assert torch.equal(a.lyrics.mask, b.lyrics.mask)
    assert not bool(a.lyrics.mask[:4].any())  # the clips stay without words


def test_a_recipe_without_donors_or_with_a_bad_chance_is_refused() -> None:
    clips = [_clip("clip", 0, np.random.default_rng(4))]
    assert lyric_donors(clips, 0.0) is None
    with pytest.raises(ValueError, match=r"--pair-lyrics 0.5: no lyrics-only training example"):
        lyric_donors(clips, 0.5)
    with pytest.raises(ValueError, match=r"--pair-lyrics 1.5: a chance must be between 0 and 1"):
        lyric_donors(clips, 1.5)


def test_the_cli_carries_it_and_crossval_keeps_old_fingerprints(tmp_path: Path) -> None:
    from lgfn_model.cli import build_parser
    from lgfn_model.cli.train import recipe_settings
    from lgfn_model.training.crossval import recipe_dict

    base = ["crossval", "--data", "d", "--leave-out", "mirex"]
    paired = recipe_settings(
        build_parser().parse_args([*base, "--pair-lyrics", "0.5"]), Path("d"), tmp_path
    )
    assert paired.pair_lyrics == 0.5 and recipe_dict(paired)["pair_lyrics"] == 0.5
    plain = recipe_settings(build_parser().parse_args(base), Path("d"), tmp_path)
    assert "pair_lyrics" not in recipe_dict(plain)  # fold results stored before it stay valid
