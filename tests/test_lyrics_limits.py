"""Hostile lyrics, model side (issue 22, items 3, 4, 9): what the parser accepts is bounded.

Extreme ``[offset:]`` tags and absurd times are ignored or clamped; files over
``MAX_LYRICS_BYTES`` are refused before they are read; text that is not text (random bytes
decoded, replacement characters, private use, no letters) is no lyrics, while real lyrics in
every script pass; ``lgfn predict`` never prints NaN.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from audio_factory import make_audio_file
from hypothesis import given
from hypothesis import strategies as st

from lgfn_model.data import lyrics as lyrics_module
from lgfn_model.data.lyrics import (
    MAX_LYRICS_BYTES,
    MAX_START_SECONDS,
    LyricLine,
    LyricsTooLarge,
    human_size,
    looks_like_text,
    parse_lrc,
    read_lyrics_bytes,
    read_lyrics_file,
    repair_mojibake,
    usable_text,
)

# -- item 3: offsets and times --------------------------------------------------------------


@pytest.mark.parametrize(
    "offset",
    ["-99999999999999999999999999999", "+99999999999999999999999999999", "-86400001", "9" * 5000],
)
def test_an_offset_beyond_a_day_is_ignored(offset: str) -> None:
    lyrics = parse_lrc(f"[offset:{offset}]\n[00:01.00]hello there\n[00:02.50]my friend\n")
    assert [line.start for line in lyrics.lines] == [1.0, 2.5]
    assert lyrics.texts == ["hello there", "my friend"]


def test_offsets_within_a_day_still_apply() -> None:
    assert parse_lrc("[offset:-86400000]\n[00:01.00]a").lines[0].start == MAX_START_SECONDS
    assert parse_lrc("[offset:-60000]\n[00:01.00]a").lines[0].start == 61.0
    assert parse_lrc("[offset:+1500]\n[00:01.00]a\n[00:03.00]b").lines[1].start == 1.5


@pytest.mark.parametrize(
    ("given_start", "kept"),
    [
        (float("nan"), None),
        (float("inf"), None),
        (float("-inf"), None),
        (-5.0, 0.0),
        (1e30, MAX_START_SECONDS),
        (12.25, 12.25),
        (3, 3.0),
        (None, None),
    ],
)
def test_every_line_start_is_finite_and_bounded(given_start: Any, kept: float | None) -> None:
    assert LyricLine("la", given_start).start == kept


def test_absurd_lrc_times_are_clamped_to_a_day() -> None:
    lyrics = parse_lrc("[9999:59.99]the end of time\n[00:01.00]start")
    assert [line.start for line in lyrics.lines] == [1.0, MAX_START_SECONDS]


# -- item 4: size caps ----------------------------------------------------------------------


def test_human_size() -> None:
    assert human_size(16 * 2**30) == "16 GB"
    assert human_size(16 * 2**30, whole=False) == "16.0 GB"
    assert human_size(MAX_LYRICS_BYTES) == "4 MB"
    assert human_size(5 * 2**20 + 1) == "5 MB"
    assert human_size(5.5 * 2**20) == "5.5 MB"
    assert human_size(2**50 * 3) == "3072 TB"
    assert human_size(812) == "812 bytes"


def test_a_5_mb_lyrics_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "song.lrc"
    path.write_bytes(b"[00:01.00]la la la\n" * (5 * 2**20 // 19 + 1))
    with pytest.raises(LyricsTooLarge) as caught:
        read_lyrics_file(path)
    assert str(caught.value) == "lyrics file too large (5.0 MB, limit 4 MB)"


def _sparse(path: Path, size: int) -> Path:
    with open(path, "wb") as handle:
        handle.truncate(size)
    if os.stat(path).st_blocks * 512 > 2**20:
        path.unlink()
        pytest.skip(f"{path.parent} does not keep files sparse")
    return path


def test_a_16_gb_sparse_lyrics_file_is_refused_unread(tmp_path: Path) -> None:
    try:
        path = _sparse(tmp_path / "song.lrc", 16 * 2**30)
    except OSError as error:  # a filesystem with a smaller file size limit
        pytest.skip(f"no 16 GB sparse file here: {error}")
    with pytest.raises(LyricsTooLarge, match=r"lyrics file too large \(16\.0 GB, limit 4 MB\)"):
        read_lyrics_file(path)


def test_a_file_of_unknown_size_is_read_only_up_to_the_limit() -> None:
    """``/dev/zero`` says 0 bytes and never ends: at most the limit (+1 byte) is read."""
    if not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero")
    with pytest.raises(LyricsTooLarge, match=r"over 4\.0 MB, limit 4 MB"):
        read_lyrics_bytes("/dev/zero")


def test_the_limit_is_inclusive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lyrics_module, "MAX_LYRICS_BYTES", 1000)
    path = tmp_path / "song.lrc"
    path.write_bytes(b"a" * 999 + b"\n")
    assert len(read_lyrics_bytes(path)) == 1000
    path.write_bytes(b"a" * 1001)
    with pytest.raises(LyricsTooLarge):
        read_lyrics_bytes(path)


def test_texts_over_the_limit_are_refused() -> None:
    with pytest.raises(LyricsTooLarge, match="characters, limit"):
        usable_text("la " * (MAX_LYRICS_BYTES // 3 + 1))


# -- item 9: text that is not text ----------------------------------------------------------

REAL_LYRICS: dict[str, str] = {
    "English": "[00:12.00]Oh, baby, baby, how was I supposed to know?\n[00:15.50]That something",
    "English, plain": "Hey Jude, don't make it bad.\nTake a sad song and make it better.",
    "Spanish": "¡Ay, ay, ay! ¿Qué será, será? Lo que será, será.",
    "French": "Non, rien de rien, non, je ne regrette rien. À bientôt, ça va ?",
    "German": "Neunundneunzig Luftballons auf ihrem Weg zum Horizont, Größe, Übermut",
    "Portuguese": "Olha que coisa mais linda, mais cheia de graça, é ela, menina",
    "Vietnamese": "Em ơi Hà Nội phố, ta còn em mùi hoàng lan",
    "Polish": "Jeszcze Polska nie zginęła, kiedy my żyjemy. Źdźbło, łąka",
    "Russian": "[00:01.00]Миллион, миллион, миллион алых роз\n[00:04.00]Из окна, из окна видишь ты",
    "Ukrainian": "Ой у лузі червона калина похилилася, чогось наша славна Україна",
    "Greek": "Τα παιδιά του Πειραιά, σαν κι αυτά δεν έχει!",
    "Japanese": "[00:05.00]上を向いて歩こう　涙がこぼれないように\n[00:10.00]思い出す春の日",
    "Chinese": "月亮代表我的心。你问我爱你有多深，我爱你有几分？",
    "Korean": "아리랑, 아리랑, 아라리요… 아리랑 고개로 넘어간다",
    "Arabic": "أَنَا لَكَ عَلَى طُولْ، خَلِّيكَ لِيَّا\nيا حبيبي تعال",
    "Hebrew": "\u200fהבה נגילה, הבה נגילה ונשמחה!",
    "Persian (ZWNJ)": "می\u200cخواهم برگردم به روزهای کودکی",
    "Hindi": "तुझे देखा तो ये जाना सनम, प्यार होता है दीवाना सनम",
    "Thai": "ขอใจเธอแลกเบอร์โทร ขอเบอร์โทรแลกใจ",
    "Amharic": "ትዝታ ትዝታ ትዝታ የልቤ",
    "emoji": "Love you 💕 forever ❤️‍🔥 and ever 🎶",
    "short": "Oh!",
    "one word": "Yeah",
    "numbers": "1, 2, 3, 4, 5, 6, 7, 8... 99 Luftballons",
    "chant": "(Na-na-na-na, na-na-na-na, hey-hey-hey) [x4]",
    "LRC, many tags": "[ar:Band]\n[00:01.00][01:30.50][02:10.00]chorus\n[00:20.00]verse one",
    "word stamps": "[00:01.00]<00:01.00>hel <00:01.50>lo <00:02.00>world",
    "one stray U+FFFD": "Caf\ufffd de Flore, on se retrouve au coin de la rue",
}


@pytest.mark.parametrize("name", list(REAL_LYRICS))
def test_real_lyrics_in_every_script_are_text(name: str) -> None:
    text = REAL_LYRICS[name]
    assert looks_like_text(text), name
    assert usable_text(text) == text  # nothing "repaired" either


def _random_bytes(n: int, seed: int = 0) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


NOT_TEXT: dict[str, str] = {
    "random bytes as Latin-1": _random_bytes(3000).decode("latin-1"),
    "random bytes as Latin-1, NULs out": _random_bytes(3000).replace(b"\0", b"").decode("latin-1"),
    "random bytes as UTF-8 (replaced)": _random_bytes(3000).decode("utf-8", errors="replace"),
    "random bytes as UTF-16": _random_bytes(3000).decode("utf-16-le", errors="replace"),
    "random bytes as cp1252": _random_bytes(3000).decode("cp1252", errors="replace"),
    "short random bytes": _random_bytes(40, seed=3).decode("latin-1"),
    "replacement characters": "\ufffd\ufffd\ufffd\ufffd la \ufffd\ufffd\ufffd\ufffd",
    "private use": "\ue000\ue001\ue002\ue003\ue004 hello \uf8ff\ue123\ue124",
    "control characters": "\x01\x02\x03\x04\x05\x06 hi \x07\x08\x0e\x0f",
    "no letters": "!!! ??? ... --- *** ### @@@ 123 456",
    "only digits": "0123456789 0123456789",
    "only LRC tags": "[00:01.00]\n[00:02.00]\n[ar:Someone]",
    "empty": "",
    "whitespace": " \n\t \n",
}


@pytest.mark.parametrize("name", list(NOT_TEXT))
def test_data_decoded_as_text_is_not_text(name: str) -> None:
    assert not looks_like_text(NOT_TEXT[name]), name
    assert usable_text(NOT_TEXT[name]) is None


@pytest.mark.parametrize("seed", range(20))
def test_random_bytes_are_never_text(seed: int) -> None:
    data = _random_bytes(500, seed)
    for text in (
        data.decode("latin-1"),
        data.decode("utf-8", errors="replace"),
        data.decode("utf-16-le", errors="replace"),
    ):
        assert not looks_like_text(text)


# Words of any script (letters and combining marks), separated as lyrics are.
word = st.text(alphabet=st.characters(categories=("L",)), min_size=2, max_size=12)
separator = st.sampled_from([" ", ", ", "! ", "? ", "\n", " - ", "… ", "\u3000", "、", " 42 "])


@given(st.lists(st.tuples(word, separator), min_size=1, max_size=40))
def test_any_script_with_punctuation_is_text(parts: list[tuple[str, str]]) -> None:
    text = "".join(w + s for w, s in parts)
    assert looks_like_text(text)


def _sloppy_cp1252(data: bytes) -> str:
    """Bytes read as Windows reads "ANSI": cp1252, undefined bytes kept as U+0081 and so on."""
    return "".join(
        bytes([b]).decode("cp1252", errors="ignore") or chr(b) if b >= 0x80 else chr(b)
        for b in data
    )


MEANT = ["Café à bientôt, señor", "Привет, мир", "日本語の歌", "Ærø – “quoted” €5"]


@pytest.mark.parametrize("meant", MEANT)
@pytest.mark.parametrize("read_as", ["latin-1", "cp1252", "sloppy cp1252", "twice"])
def test_utf8_read_as_latin1_or_cp1252_is_repaired(meant: str, read_as: str) -> None:
    data = meant.encode("utf-8")
    if read_as == "latin-1":
        garbled = data.decode("latin-1")
    elif read_as == "cp1252":
        try:
            garbled = data.decode("cp1252")
        except UnicodeDecodeError:
            pytest.skip("not representable in strict cp1252")
    elif read_as == "sloppy cp1252":
        garbled = _sloppy_cp1252(data)
    else:
        garbled = _sloppy_cp1252(_sloppy_cp1252(data).encode("utf-8"))
    assert garbled != meant
    assert repair_mojibake(garbled) == meant
    assert usable_text(garbled) == meant


@pytest.mark.parametrize(
    "text", ["café, señor, Ærø", "naïve façade", "plain ASCII", "Ça m'énerve, ô combien", "日本語"]
)
def test_real_latin1_text_is_left_alone(text: str) -> None:
    assert repair_mojibake(text) == text


def test_windows_1252_read_as_latin1_is_repaired(tmp_path: Path) -> None:
    # A lyrics file saved from cp1252 text that was read as Latin-1: its quotes are C1
    # controls (U+0092), which looks_like_text refuses when there are many of them.
    meant = (
        "I can\u2019t undo what I have done\n"
        "\u2018Cause I don\u2019t \u201cwalk\u201d away \u2013 no\n"
    )
    garbled = meant.encode("cp1252").decode("latin-1")
    assert not looks_like_text(garbled * 3)
    assert repair_mojibake(garbled) == meant
    path = tmp_path / "song.txt"
    path.write_text(garbled * 3, encoding="utf-8")
    assert read_lyrics_file(path).texts[0] == "I can\u2019t undo what I have done"


def test_c1_bytes_undefined_in_windows_1252_stay_controls() -> None:
    # 0x81, 0x8D, 0x8F, 0x90, 0x9D have no cp1252 sign: nothing to map them to.
    assert repair_mojibake("a\x81b\x9dc") == "a\x81b\x9dc"


def test_a_lyrics_file_of_non_text_gives_no_lines(tmp_path: Path) -> None:
    path = tmp_path / "song.lrc"
    path.write_bytes(b"\xff\xfe" + _random_bytes(4000))  # a UTF-16 BOM, then noise
    assert not read_lyrics_file(path)
    path.write_text("[00:01.00]real words here\n", encoding="utf-8")
    assert read_lyrics_file(path).texts == ["real words here"]


def test_checking_megabytes_of_text_is_fast() -> None:
    import time

    text = REAL_LYRICS["Japanese"] * (MAX_LYRICS_BYTES // len(REAL_LYRICS["Japanese"]) // 2)
    started = time.perf_counter()
    assert looks_like_text(text)
    assert time.perf_counter() - started < 2.0


# -- item 3: lgfn predict never prints NaN --------------------------------------------------


def _strict(text: str) -> Any:
    def refuse(constant: str) -> Any:
        raise ValueError(f"non-standard JSON constant {constant}")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture(scope="module")
def song(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_audio_file(tmp_path_factory.mktemp("song") / "song.flac", seconds=3.0)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from lgfn_model.testing import write_tiny_checkpoint

    return write_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny")


def _predict(checkpoint: Path, *args: str) -> int:
    from lgfn_model.cli import main

    return main(["predict", *args, "--checkpoint", str(checkpoint), "--workers", "0"])


def test_predict_with_an_extreme_offset_prints_finite_json(
    song: Path, checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lrc = tmp_path / "song.lrc"
    lrc.write_text("[offset:-99999999999999999999999999999]\n[00:01.00]hello\n[00:02.00]you\n")
    assert _predict(checkpoint, str(song), "--lyrics", str(lrc)) == 0
    record = _strict(capsys.readouterr().out)
    values = [*record["p"].values(), record["valence"], record["arousal"], record["gate_audio"]]
    assert all(math.isfinite(v) for v in values)
    assert record["lyrics_synced"] is True and record["lyrics_lines"] == 2


@pytest.fixture
def nan_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """The model's result for every track has NaN valence (how a poisoned input showed)."""
    from lgfn_model.runtime.predictor import Predictor

    real = Predictor._finish

    def poisoned(self: Predictor, track: Any) -> Any:
        prediction = real(self, track)
        prediction.valence = float("nan")
        prediction.probabilities = {k: float("nan") for k in prediction.probabilities}
        return prediction

    monkeypatch.setattr(Predictor, "_finish", poisoned)


@pytest.mark.usefixtures("nan_model")
def test_predict_never_prints_nan(
    song: Path, checkpoint: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _predict(checkpoint, str(song)) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.strip().splitlines() == [
        f"lgfn: {song}: the model gave a non-finite result "
        "(happy nan, angry nan, sad nan, relaxed nan, valence nan)"
    ]


@pytest.mark.usefixtures("nan_model")
def test_manifest_rows_with_nan_are_error_records(
    song: Path, checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = tmp_path / "tracks.csv"
    manifest.write_text(f"id,audio,lyrics\na,{song},\n")
    out = tmp_path / "out.jsonl"
    assert _predict(checkpoint, "--manifest", str(manifest), "--out", str(out)) == 0
    rows = [_strict(line) for line in out.read_text().splitlines()]
    assert rows == [{"id": "a", "error": rows[0]["error"]}]
    assert "the model gave a non-finite result (happy nan" in rows[0]["error"]
    assert "1 rows, 0 predicted, 1 failed" in capsys.readouterr().err


def test_predict_with_a_too_large_lyrics_file_is_one_line(
    song: Path, checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lrc = tmp_path / "big.lrc"
    lrc.write_bytes(b"la la\n" * (MAX_LYRICS_BYTES // 6 + 1))
    assert _predict(checkpoint, str(song), "--lyrics", str(lrc)) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.strip() == (
        f"lgfn: {lrc}: lyrics file too large (4,194,306 bytes, limit 4,194,304 bytes); not used"
    )
