"""Dataset readers, label mapping, duplicate grouping and the fixed splits, on fake data roots."""

from __future__ import annotations

import csv
import random
from collections import Counter
from pathlib import Path

import pytest

from lgfn_model.model.config import MOODS
from lgfn_model.training.datasets import (
    DataError,
    load_examples,
    parse_signed,
    read_manifest,
)
from lgfn_model.training.duplicates import artist_tokens, duplicate_groups, normalise_title
from lgfn_model.training.splits import cross_dataset_split, heldout_split, low_label

HAPPY, ANGRY, SAD, RELAXED = (MOODS.index(m) for m in ("happy", "angry", "sad", "relaxed"))


def _write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def _touch(path: Path, text: str = "x") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def make_root(
    tmp_path: Path, n_4q: int = 10, n_mirex: int = 10, n_nju: int = 5, shuffle: int | None = None
) -> Path:
    """A fake data root: n_4q clips per quadrant, n_mirex per cluster, n_nju per mood and split.

    Audio/lyrics files hold placeholder bytes (the readers only check that they exist).
    Two songs are shared: "Shared Song" (4Q Q1 + MIREX 1 + NJU happy test) and
    "Other Song" (4Q Q2 + MIREX 5).
    """
    root = tmp_path / "data"
    rows_4q = []
    for q in range(1, 5):
        for i in range(n_4q):
            song = f"MT{q}{i:04d}"
            rel = f"audio/Q{q}/{song}.opus"
            _touch(root / "4q" / rel)
            rows_4q.append(
                [song, f"Q{q}", f"Artist {q}-{i}", f"Song {q}-{i}", "Moody", "Rock", rel]
            )
    rows_4q[0][2:4] = ["The Band Foo", "Shared Song"]
    rows_4q[n_4q][2:4] = ["Bar", "Other Song (Live)"]
    rows_mirex = []
    for c in range(1, 6):
        for i in range(n_mirex):
            ident = f"{c}{i:02d}"
            audio = f"audio/{ident}.opus"
            _touch(root / "mirex" / audio)
            lyrics = ""
            if i % 2 == 0:
                lyrics = f"lyrics/{ident}.txt"
                _touch(root / "mirex" / lyrics, "la la la\nsecond line\n")
            rows_mirex.append(
                [
                    ident,
                    str(c),
                    "Mood",
                    f"Mx, Artist{c}{i}",
                    f"Tune {c}-{i}",
                    "Album",
                    "2000",
                    audio,
                    lyrics,
                ]
            )
    rows_mirex[0][3:5] = ["Foo, Band", "Shared Song"]
    rows_mirex[4 * n_mirex][3:5] = ["Bar [1]", "Other Song"]
    rows_nju = []
    for mood in ("angry", "happy", "relaxed", "sad"):
        for split in ("train", "test"):
            for i in range(n_nju):
                rel = f"lyrics/{mood}/{split}/{mood}_{i}.lrc"
                _touch(root / "nju" / rel, "[00:01.00]hello\n[00:03.50]world\n")
                rows_nju.append([rel, mood, split, f"Lyric {mood}{split}{i}", f"Singer {i}"])
    shared = next(r for r in rows_nju if r[1] == "happy" and r[2] == "test")
    shared[3:5] = ["Shared Song", "Band Foo"]
    if shuffle is not None:
        for rows in (rows_4q, rows_mirex, rows_nju):
            random.Random(shuffle).shuffle(rows)
    _write_csv(
        root / "4q/labels.csv",
        ["song", "quadrant", "artist", "title", "moods", "genres", "path"],
        rows_4q,
    )
    _write_csv(
        root / "mirex/labels.csv",
        ["id", "cluster", "mood", "artist", "title", "album", "year", "audio", "lyrics"],
        rows_mirex,
    )
    _write_csv(root / "nju/labels.csv", ["file", "mood", "split", "title", "artist"], rows_nju)
    return root


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return make_root(tmp_path)


def by_id(examples):
    return {e.id: e for e in examples}


# --------------------------------------------------------------------------------- readers


def test_reads_all_three_sets(root: Path) -> None:
    examples = load_examples(root)
    counts = Counter(e.dataset for e in examples)
    assert counts == {"4q": 40, "mirex": 50, "nju": 40}
    assert len({e.id for e in examples}) == len(examples)


def test_quadrant_mapping(root: Path) -> None:
    ex = by_id(load_examples(root, ["4q"]))
    expected = {1: (HAPPY, 1, 1), 2: (ANGRY, -1, 1), 3: (SAD, -1, -1), 4: (RELAXED, 1, -1)}
    for q, (mood, valence, arousal) in expected.items():
        e = ex[f"4q:MT{q}0001"]
        assert (e.mood, e.valence, e.arousal, e.label) == (mood, valence, arousal, f"Q{q}")
        assert e.has_audio and not e.has_lyrics and e.audio.is_file()


def test_mirex_clusters_and_partial_labels(root: Path) -> None:
    ex = by_id(load_examples(root, ["mirex"]))
    assert (ex["mirex:101"].mood, ex["mirex:101"].valence, ex["mirex:101"].arousal) == (HAPPY, 1, 1)
    assert (ex["mirex:301"].mood, ex["mirex:301"].valence, ex["mirex:301"].arousal) == (SAD, -1, -1)
    assert (ex["mirex:501"].mood, ex["mirex:501"].valence, ex["mirex:501"].arousal) == (
        ANGRY,
        -1,
        1,
    )
    for cluster in (2, 4):
        e = ex[f"mirex:{cluster}01"]
        assert (e.mood, e.valence, e.arousal) == (None, 1.0, None)
        assert e.labelled
    assert ex["mirex:100"].has_lyrics and not ex["mirex:101"].has_lyrics
    assert all(e.has_audio for e in ex.values())


def test_nju_lyrics_only_with_given_split(root: Path) -> None:
    ex = load_examples(root, ["nju"])
    assert all(e.audio is None and e.lyrics.suffix == ".lrc" for e in ex)
    assert Counter(e.fixed_split for e in ex) == {"train": 20, "test": 20}
    sad = next(e for e in ex if e.label == "sad")
    assert (sad.mood, sad.valence, sad.arousal) == (SAD, -1, -1)


def test_missing_files_are_skipped(root: Path) -> None:
    (root / "4q/audio/Q1/MT10001.opus").unlink()
    ids = {e.id for e in load_examples(root, ["4q"])}
    assert "4q:MT10001" not in ids and len(ids) == 39


def test_only_present_sets_are_read(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    import shutil

    shutil.rmtree(root / "nju")
    assert {e.dataset for e in load_examples(root)} == {"4q", "mirex"}
    with pytest.raises(DataError):
        load_examples(tmp_path / "nothing-here")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError):
        load_examples(tmp_path / "empty")


def test_bad_labels_are_reported(tmp_path: Path) -> None:
    root = make_root(tmp_path, n_4q=1)
    text = (root / "4q/labels.csv").read_text().replace(",Q2,", ",Q7,")
    (root / "4q/labels.csv").write_text(text)
    with pytest.raises(DataError, match="Q7"):
        load_examples(root, ["4q"])


# -------------------------------------------------------------------------------- manifest


def test_manifest(tmp_path: Path) -> None:
    for name in ("a.wav", "b.flac", "c.mp3", "d.ogg"):
        _touch(tmp_path / "music" / name)
    _touch(tmp_path / "music" / "b.lrc", "[00:01.00]hi\n")
    _write_csv(
        tmp_path / "my.csv",
        ["audio", "lyrics", "mood", "valence", "arousal", "split"],
        [
            ["music/a.wav", "", "sad", "", "", ""],
            ["music/b.flac", "music/b.lrc", "", "0.4", "low", "test"],
            ["music/c.mp3", "", "Q2", "0.2", "", "train"],
            [str(tmp_path / "music" / "d.ogg"), "", "", "", "", ""],
        ],
    )
    ex = read_manifest(tmp_path / "my.csv")
    a, b, c, d = ex
    assert (a.mood, a.valence, a.arousal, a.label) == (SAD, -1, -1, "sad")
    assert (b.mood, b.valence, b.arousal, b.fixed_split) == (None, 0.4, -1.0, "test")
    assert b.lyrics == tmp_path / "music" / "b.lrc"
    # explicit values win over the signs a mood implies
    assert (c.mood, c.valence, c.arousal) == (ANGRY, 0.2, 1.0)
    assert not d.labelled
    assert load_examples(tmp_path / "my.csv") == ex
    # a data root may hold a manifest.csv beside (or instead of) the research sets
    (tmp_path / "my.csv").rename(tmp_path / "manifest.csv")
    assert len(load_examples(tmp_path)) == 4


@pytest.mark.parametrize(
    "row, message",
    [
        (["music/missing.wav", "", "sad", "", ""], "not found"),
        (["music/a.wav", "", "joyful", "", ""], "unknown mood"),
        (["music/a.wav", "", "", "1.5", ""], "outside"),
        (["music/a.wav", "", "", "very", ""], "cannot read"),
    ],
)
def test_manifest_errors(tmp_path: Path, row: list[str], message: str) -> None:
    _touch(tmp_path / "music" / "a.wav")
    _write_csv(tmp_path / "m.csv", ["audio", "lyrics", "mood", "valence", "arousal"], [row])
    with pytest.raises(DataError, match=message):
        read_manifest(tmp_path / "m.csv")


def test_parse_signed() -> None:
    assert (
        parse_signed("+") == 1.0
        and parse_signed("negative") == -1.0
        and parse_signed("High") == 1.0
    )
    assert parse_signed("") is None and parse_signed("nan") is None and parse_signed(None) is None
    assert parse_signed("-0.25") == -0.25


# ------------------------------------------------------------------------------ duplicates


def test_title_and_artist_normalisation() -> None:
    assert normalise_title("White Lines (Don't Don't Do It)") == normalise_title("White Lines")
    assert normalise_title("’Till I Collapse") == normalise_title("'Till I Collapse")
    assert artist_tokens("Gillespie, Dizzy And His Sextets") & artist_tokens("Dizzy Gillespie")
    assert artist_tokens("Aqua [1]") == artist_tokens("Aqua")
    assert not artist_tokens("The Jordanaires") & artist_tokens("Thornton, Big Mama")


def test_duplicates_grouped_across_sets(root: Path) -> None:
    examples = load_examples(root)
    groups = duplicate_groups(examples)
    shared = {e.id for e in examples if e.title.startswith("Shared")}
    assert len(shared) == 3 and len({groups[i] for i in shared}) == 1
    other = {e.id for e in examples if e.title.startswith("Other")}
    assert len(other) == 2 and len({groups[i] for i in other}) == 1
    assert sum(1 for e in examples if groups[e.id] == e.id) == len(examples) - 3


def test_same_title_different_artist_not_grouped() -> None:
    from lgfn_model.training.datasets import Example

    a = Example("x:1", "x", None, None, 0, 1.0, 1.0, artist="Glen Campbell", title="Sunflower")
    b = Example("x:2", "x", None, None, 0, 1.0, 1.0, artist="Weller, Paul", title="Sunflower")
    c = Example("x:3", "x", None, None, 0, 1.0, 1.0, artist="", title="")
    d = Example("x:4", "x", None, None, 0, 1.0, 1.0, artist="", title="")
    assert len(set(duplicate_groups([a, b, c, d]).values())) == 4


# ---------------------------------------------------------------------------------- splits


def test_heldout_split_is_stratified_and_leak_free(tmp_path: Path) -> None:
    examples = load_examples(make_root(tmp_path, n_4q=20, n_mirex=15, n_nju=6))
    split = heldout_split(examples)
    train_ids = {e.id for e in split.train}
    test_ids = {e.id for e in split.test}
    assert not train_ids & test_ids and len(train_ids | test_ids) == len(examples)
    # NJU keeps its own split
    for e in examples:
        if e.dataset == "nju" and not e.title.startswith("Shared"):
            assert (e.id in test_ids) == (e.fixed_split == "test")
    # the shared song follows its NJU test member to the held-out side, in every set
    assert all(e.id in test_ids for e in examples if e.title.startswith("Shared"))
    groups = duplicate_groups(examples)
    assert not {groups[i] for i in train_ids} & {groups[i] for i in test_ids}
    # 20 % per stratum (within one example of the target: grouped songs may add one)
    total = Counter((e.dataset, e.label) for e in examples if e.dataset != "nju")
    held = Counter((e.dataset, e.label) for e in split.test if e.dataset != "nju")
    for stratum, n in total.items():
        assert abs(held[stratum] - round(0.2 * n)) <= 1, stratum
    assert "heldout" in split.summary()


def test_heldout_split_ignores_file_order(tmp_path: Path) -> None:
    first = heldout_split(load_examples(make_root(tmp_path / "a", shuffle=None)))
    second = heldout_split(load_examples(make_root(tmp_path / "b", shuffle=7)))
    assert [e.id for e in first.test] == [e.id for e in second.test]
    assert [e.id for e in first.train] == [e.id for e in second.train]


def test_heldout_split_stable_when_a_set_is_missing(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    everything = heldout_split(load_examples(root))
    only_4q = heldout_split(load_examples(root, ["4q"]))
    test_4q = {
        e.id for e in everything.test if e.dataset == "4q" and not e.title.startswith("Shared")
    }
    assert test_4q <= {e.id for e in only_4q.test}


def test_cross_dataset_split(root: Path) -> None:
    examples = load_examples(root)
    split = cross_dataset_split(examples)
    assert {e.dataset for e in split.test} == {"mirex"} and len(split.test) == 50
    assert {e.dataset for e in split.train} == {"4q", "nju"}
    excluded = {e.title for e in split.excluded}
    assert excluded == {"Shared Song", "Other Song (Live)"}
    assert not {e.title for e in split.train} & {"Shared Song", "Other Song (Live)"}


def test_low_label(root: Path) -> None:
    train = heldout_split(load_examples(root)).train
    reduced = low_label(train, 0.3, seed=1)
    assert [e.id for e in reduced] == [e.id for e in train]
    kept = [e for e in reduced if e.labelled]
    assert 0.25 * len(train) <= len(kept) <= 0.4 * len(train)
    assert {(e.dataset, e.label) for e in kept} == {(e.dataset, e.label) for e in train}
    assert low_label(train, 0.3, seed=1) == reduced
    assert low_label(train, 0.3, seed=2) != reduced
    assert all(
        e.audio == f.audio and e.lyrics == f.lyrics for e, f in zip(train, reduced, strict=True)
    )
