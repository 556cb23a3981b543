"""Labelled examples for training and evaluation, read from a data root or a manifest CSV.

One record type, :class:`Example`, covers every source. A data root holds any of:

``4q/labels.csv``
    4Q audio emotion dataset: ``song, quadrant (Q1..Q4), artist, title, ..., path``.
    Mood and both signs come from the quadrant. Audio only.
``mirex/labels.csv``
    MIREX-like set: ``id, cluster (1..5), mood, artist, title, album, year, audio, lyrics``.
    Clusters 1, 3, 5 are Q1, Q3, Q2 (mood and both signs); clusters 2 and 4 give positive
    valence only (no mood, no arousal). Audio, plain lyrics when the ``lyrics`` cell is set.
``nju/labels.csv``
    NJU-MusicMood: ``file, mood, split (train/test), title, artist``; LRC lyrics, no audio.
    Its own ``split`` column is kept in :attr:`Example.fixed_split`.
``moodylyrics/labels.csv``
    MoodyLyrics4Q: ``id, mood (angry/happy/relaxed/sad), artist, title, lyrics`` (path to a
    plain-text file, one sung line per line); no audio, no timestamps, no split of its own.
    Lyrics-only examples, exactly like NJU's (audio None). Not part of :data:`DATASETS`, the
    data the held-out recipe trains on; :data:`DEVELOPMENT_DATASETS` (cross-validation) has it.

A generic manifest (``--data my.csv``, or a root holding ``manifest.csv``) has the columns
``audio`` (path), and optionally ``lyrics`` (path to .lrc/.txt), ``mood``
(happy/angry/sad/relaxed or Q1..Q4), ``valence`` and ``arousal`` (numbers in [-1, 1] or
labels such as ``+``/``-``, ``positive``/``negative``, ``high``/``low``), ``id``, ``artist``,
``title`` and ``split`` (train/test). Relative paths are relative to the manifest's folder.
A mood without valence/arousal implies their signs; explicit values win.

Torch-free: reading labels never loads the model.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from lgfn_model.model.config import MOODS

#: Valence and arousal signs of each mood (Russell's quadrants Q1..Q4).
MOOD_SIGNS: dict[str, tuple[float, float]] = {
    "happy": (1.0, 1.0),
    "angry": (-1.0, 1.0),
    "sad": (-1.0, -1.0),
    "relaxed": (1.0, -1.0),
}
QUADRANT_MOODS: dict[str, str] = {"Q1": "happy", "Q2": "angry", "Q3": "sad", "Q4": "relaxed"}
#: MIREX cluster -> quadrant; clusters missing here (2, 4) give positive valence only.
MIREX_QUADRANTS: dict[int, str] = {1: "Q1", 3: "Q3", 5: "Q2"}
MIREX_VALENCE_ONLY: dict[int, float] = {2: 1.0, 4: 1.0}

#: What ``lgfn train`` / ``lgfn evaluate`` read from a data root: the held-out split and every
#: figure in docs/model-card.md were made on these three, so adding a set here would change the
#: shipped recipe's training data (and its figures) behind its back.
DATASETS = ("4q", "mirex", "nju")
#: All development data, for cross-validation (docs/cross-validation.md).
DEVELOPMENT_DATASETS = (*DATASETS, "moodylyrics")
MANIFEST_NAME = "manifest.csv"

_POSITIVE = {"+", "pos", "positive", "high", "hi", "h", "1", "+1", "yes", "true"}
_NEGATIVE = {"-", "neg", "negative", "low", "lo", "l", "-1", "no", "false"}


class DataError(ValueError):
    """A labels file or manifest that cannot be read as documented."""


@dataclass(frozen=True)
class Example:
    """One labelled clip or lyric.

    ``mood`` indexes :data:`lgfn_model.model.config.MOODS`; ``valence``/``arousal`` are in [-1, 1]
    (+1/-1 where only the sign is known); any of them may be None (not labelled). ``audio`` or
    ``lyrics`` is None when that modality is missing. ``label`` is the source's own label
    (``Q1``, ``cluster2``, ``happy``), used to stratify splits. ``fixed_split`` is a split the
    source prescribes (NJU's ``train``/``test``), or None.
    """

    id: str
    dataset: str
    audio: Path | None
    lyrics: Path | None
    mood: int | None
    valence: float | None
    arousal: float | None
    artist: str = ""
    title: str = ""
    label: str = ""
    fixed_split: str | None = None

    @property
    def has_audio(self) -> bool:
        return self.audio is not None

    @property
    def has_lyrics(self) -> bool:
        return self.lyrics is not None

    @property
    def mood_name(self) -> str | None:
        return None if self.mood is None else MOODS[self.mood]

    @property
    def labelled(self) -> bool:
        return self.mood is not None or self.valence is not None or self.arousal is not None

    def without_labels(self) -> Example:
        return replace(self, mood=None, valence=None, arousal=None)


# ---------------------------------------------------------------------------------------------
# Label parsing


def mood_index(name: str) -> int:
    """Index into MOODS of a mood name or quadrant (``happy``, ``Q1``, ``q1``)."""
    key = name.strip()
    key = QUADRANT_MOODS.get(key.upper(), key).lower()
    try:
        return MOODS.index(key)
    except ValueError:
        raise DataError(f"unknown mood {name!r}; expected one of {MOODS} or Q1..Q4") from None


def parse_signed(value: str | float | None, what: str = "value") -> float | None:
    """A valence/arousal cell: a number in [-1, 1] or a sign label; blank gives None."""
    if value is None:
        return None
    if isinstance(value, int | float):
        number = float(value)
    else:
        text = value.strip().lower()
        if not text or text in {"na", "nan", "none", "?", "unknown", "unclear"}:
            return None
        if text in _POSITIVE:
            return 1.0
        if text in _NEGATIVE:
            return -1.0
        try:
            number = float(text)
        except ValueError:
            raise DataError(f"{what}: cannot read {value!r} (number in [-1, 1] or +/-)") from None
    if math.isnan(number):
        return None
    if not -1.0 <= number <= 1.0:
        raise DataError(f"{what}: {number} is outside [-1, 1]")
    return number


def _read_csv(path: Path) -> list[dict[str, str]]:
    # NJU's labels hold a few undecodable bytes (mojibake in artist names): replace, never fail.
    with open(path, newline="", encoding="utf-8-sig", errors="replace") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None:
            raise DataError(f"{path}: empty file")
        rows = []
        for row in reader:
            rows.append({(k or "").strip().lower(): (v or "").strip() for k, v in row.items()})
        return rows


def _require(rows: list[dict[str, str]], path: Path, columns: Iterable[str]) -> None:
    if not rows:
        return
    missing = [c for c in columns if c not in rows[0]]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}")


def _existing(base: Path, relative: str) -> Path | None:
    if not relative:
        return None
    path = (base / relative) if not Path(relative).is_absolute() else Path(relative)
    return path if path.is_file() else None


# ---------------------------------------------------------------------------------------------
# The three research sets


def read_4q(folder: Path, *, require_files: bool = True) -> list[Example]:
    path = folder / "labels.csv"
    rows = _read_csv(path)
    _require(rows, path, ("song", "quadrant", "path"))
    out = []
    for row in rows:
        quadrant = row["quadrant"].upper()
        if quadrant not in QUADRANT_MOODS:
            raise DataError(f"{path}: song {row['song']}: unknown quadrant {row['quadrant']!r}")
        audio = _existing(folder, row["path"])
        if audio is None and require_files:
            continue
        mood = QUADRANT_MOODS[quadrant]
        valence, arousal = MOOD_SIGNS[mood]
        out.append(
            Example(
                id=f"4q:{row['song']}",
                dataset="4q",
                audio=audio,
                lyrics=None,
                mood=MOODS.index(mood),
                valence=valence,
                arousal=arousal,
                artist=row.get("artist", ""),
                title=row.get("title", ""),
                label=quadrant,
            )
        )
    return out


def read_mirex(folder: Path, *, require_files: bool = True) -> list[Example]:
    path = folder / "labels.csv"
    rows = _read_csv(path)
    _require(rows, path, ("id", "cluster", "audio", "lyrics"))
    out = []
    for row in rows:
        try:
            cluster = int(row["cluster"])
        except ValueError:
            raise DataError(f"{path}: id {row['id']}: bad cluster {row['cluster']!r}") from None
        if cluster in MIREX_QUADRANTS:
            mood_name = QUADRANT_MOODS[MIREX_QUADRANTS[cluster]]
            mood: int | None = MOODS.index(mood_name)
            valence, arousal = MOOD_SIGNS[mood_name]
        elif cluster in MIREX_VALENCE_ONLY:
            mood, valence, arousal = None, MIREX_VALENCE_ONLY[cluster], None
        else:
            raise DataError(f"{path}: id {row['id']}: cluster {cluster} not in 1..5")
        audio = _existing(folder, row["audio"])
        if audio is None and require_files:
            continue
        out.append(
            Example(
                id=f"mirex:{row['id']}",
                dataset="mirex",
                audio=audio,
                lyrics=_existing(folder, row["lyrics"]),
                mood=mood,
                valence=valence,
                arousal=arousal,
                artist=row.get("artist", ""),
                title=row.get("title", ""),
                label=f"cluster{cluster}",
            )
        )
    return out


def read_nju(folder: Path, *, require_files: bool = True) -> list[Example]:
    path = folder / "labels.csv"
    rows = _read_csv(path)
    _require(rows, path, ("file", "mood"))
    out = []
    for row in rows:
        mood = mood_index(row["mood"])
        lyrics = _existing(folder, row["file"])
        if lyrics is None and require_files:
            continue
        split = row.get("split", "").lower() or None
        if split not in (None, "train", "test"):
            raise DataError(f"{path}: {row['file']}: split must be train or test, not {split!r}")
        valence, arousal = MOOD_SIGNS[MOODS[mood]]
        stem = Path(row["file"]).with_suffix("").as_posix().removeprefix("lyrics/")
        out.append(
            Example(
                id=f"nju:{stem}",
                dataset="nju",
                audio=None,
                lyrics=lyrics,
                mood=mood,
                valence=valence,
                arousal=arousal,
                artist=row.get("artist", ""),
                title=row.get("title", ""),
                label=MOODS[mood],
                fixed_split=split,
            )
        )
    return out


def read_moodylyrics(folder: Path, *, require_files: bool = True) -> list[Example]:
    """MoodyLyrics4Q: lyrics-only examples with a mood (and so both signs), no fixed split."""
    path = folder / "labels.csv"
    rows = _read_csv(path)
    _require(rows, path, ("id", "mood", "lyrics"))
    out = []
    for row in rows:
        try:
            mood = mood_index(row["mood"])
        except DataError as error:
            raise DataError(f"{path}: id {row['id']}: {error}") from None
        lyrics = _existing(folder, row["lyrics"])
        if lyrics is None and require_files:
            continue
        valence, arousal = MOOD_SIGNS[MOODS[mood]]
        out.append(
            Example(
                id=f"moodylyrics:{row['id']}",
                dataset="moodylyrics",
                audio=None,
                lyrics=lyrics,
                mood=mood,
                valence=valence,
                arousal=arousal,
                artist=row.get("artist", ""),
                title=row.get("title", ""),
                label=MOODS[mood],
            )
        )
    return out


READERS = {"4q": read_4q, "mirex": read_mirex, "nju": read_nju, "moodylyrics": read_moodylyrics}


# ---------------------------------------------------------------------------------------------
# Generic manifest


def read_manifest(
    path: Path, *, dataset: str | None = None, require_files: bool = True
) -> list[Example]:
    """Read a manifest CSV (see the module docstring)."""
    path = Path(path)
    rows = _read_csv(path)
    if rows and "audio" not in rows[0] and "lyrics" not in rows[0]:
        raise DataError(f"{path}: needs an 'audio' and/or a 'lyrics' column")
    base = path.parent
    name = dataset or path.stem
    out = []
    seen: set[str] = set()
    for number, row in enumerate(rows, start=2):
        where = f"{path}:{number}"
        audio_cell, lyrics_cell = row.get("audio", ""), row.get("lyrics", "")
        audio, lyrics = _existing(base, audio_cell), _existing(base, lyrics_cell)
        if require_files and ((audio_cell and audio is None) or (lyrics_cell and lyrics is None)):
            raise DataError(
                f"{where}: file not found: {audio_cell if audio is None else lyrics_cell}"
            )
        if not audio_cell and not lyrics_cell:
            raise DataError(f"{where}: neither audio nor lyrics")
        mood = mood_index(row["mood"]) if row.get("mood") else None
        valence = parse_signed(row.get("valence"), f"{where}: valence")
        arousal = parse_signed(row.get("arousal"), f"{where}: arousal")
        if mood is not None:
            implied_v, implied_a = MOOD_SIGNS[MOODS[mood]]
            valence = implied_v if valence is None else valence
            arousal = implied_a if arousal is None else arousal
        split = row.get("split", "").lower() or None
        if split not in (None, "train", "test"):
            raise DataError(f"{where}: split must be train or test, not {split!r}")
        local = row.get("id") or Path(audio_cell or lyrics_cell).with_suffix("").as_posix()
        ident = f"{name}:{local}"
        if ident in seen:
            raise DataError(f"{where}: duplicate id {ident!r}")
        seen.add(ident)
        out.append(
            Example(
                id=ident,
                dataset=name,
                audio=audio,
                lyrics=lyrics,
                mood=mood,
                valence=valence,
                arousal=arousal,
                artist=row.get("artist", ""),
                title=row.get("title", ""),
                label=_manifest_label(mood, valence, arousal),
                fixed_split=split,
            )
        )
    return out


def _manifest_label(mood: int | None, valence: float | None, arousal: float | None) -> str:
    if mood is not None:
        return MOODS[mood]

    def sign(value: float | None, pos: str, neg: str) -> str:
        if value is None or value == 0:
            return "?"
        return pos if value > 0 else neg

    return f"v{sign(valence, '+', '-')}a{sign(arousal, '+', '-')}"


# ---------------------------------------------------------------------------------------------
# Entry point


def load_examples(
    data: str | Path, datasets: Sequence[str] | None = None, *, manifest: bool | None = None
) -> list[Example]:
    """Every example under a data root (any of 4q/, mirex/, nju/, manifest.csv) or a manifest.

    ``datasets`` chooses which of the research sets are read (default :data:`DATASETS`; pass
    :data:`DEVELOPMENT_DATASETS` for MoodyLyrics4Q too). A root's ``manifest.csv`` is read when
    ``manifest`` is true, or by default when ``datasets`` is not given. Examples whose file is
    missing are skipped (research sets) or rejected (manifests). Raises DataError when nothing
    is found.
    """
    data = Path(data)
    if data.is_file():
        return read_manifest(data)
    if not data.is_dir():
        raise DataError(f"{data}: no such folder or manifest")
    examples: list[Example] = []
    wanted = tuple(datasets) if datasets is not None else DATASETS
    for name in wanted:
        if name not in READERS:
            raise DataError(f"unknown dataset {name!r}; choose from {tuple(READERS)}")
        labels = data / name / "labels.csv"
        if labels.is_file():
            examples.extend(READERS[name](data / name))
    with_manifest = datasets is None if manifest is None else manifest
    if with_manifest and (data / MANIFEST_NAME).is_file():
        examples.extend(read_manifest(data / MANIFEST_NAME))
    if not examples:
        raise DataError(
            f"{data}: no labelled data found (expected {', '.join(f'{n}/' for n in wanted)} "
            "with labels.csv, "
            f"or {MANIFEST_NAME})"
        )
    return examples
