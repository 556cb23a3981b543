"""The beets fields this plugin owns: names, types, and how a prediction becomes field values.

Torch-free and beets-light, so ``beet ls`` pays nothing for it.
"""

from __future__ import annotations

import base64
import math
import struct
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from beets.dbcore import types

MOODS: tuple[str, ...] = ("happy", "angry", "sad", "relaxed")
"""Russell's quadrants Q1..Q4, the same labels as ``lgfn_model.model.config.MOODS``."""

MOOD = "mood"
PROBABILITY_FIELDS: dict[str, str] = {mood: f"emotion_{mood}" for mood in MOODS}
VALENCE = "emotion_valence"
AROUSAL = "emotion_arousal"
GATE_AUDIO = "emotion_gate_audio"
GATE_LYRICS = "emotion_gate_lyrics"
LYRICS_SOURCE = "emotion_lyrics"
MODEL = "emotion_model"
EMBEDDING = "emotion_embedding"
"""The track embedding (docs/adaptation.md): kept in the database only, never in the files,
so the moods can later be recomputed for a listener's own head without decoding again."""
EMBEDDING_PREFIX = "f16:"
MOOD_BY_HAND = "emotion_mood_by_hand"
"""True on an item whose ``mood`` is the listener's: set when a run keeps a hand-set mood, and
by the listener to confirm a mood the plugin set (a hand-set mood equal to the plugin's own
cannot be told apart otherwise). Database only; ``--learn`` learns from these moods."""
LYRICS_MISSES = "emotion_lyrics_miss"
"""Network lyrics sources that answered "not found" (comma separated): not asked again."""

FLOAT_FIELDS: tuple[str, ...] = (
    *PROBABILITY_FIELDS.values(),
    VALENCE,
    AROUSAL,
    GATE_AUDIO,
    GATE_LYRICS,
)
STRING_FIELDS: tuple[str, ...] = (MOOD, LYRICS_SOURCE, MODEL)
TRACK_FIELDS: tuple[str, ...] = (MOOD, *FLOAT_FIELDS, LYRICS_SOURCE, MODEL)

ALBUM_MOOD = "album_mood"
ALBUM_FLOAT_FIELDS: dict[str, str] = {
    **{f"album_emotion_{mood}": f"emotion_{mood}" for mood in MOODS},
    "album_emotion_valence": VALENCE,
    "album_emotion_arousal": AROUSAL,
}
ALBUM_MODEL = "album_emotion_model"
ALBUM_FIELDS: tuple[str, ...] = (ALBUM_MOOD, *ALBUM_FLOAT_FIELDS, ALBUM_MODEL)

DIGITS = 4
"""Stored and written precision of the float fields."""

# One type object per field kind, shared by every plugin instance: beets compares the type
# objects of plugins that declare the same field, and the plain string type is the one other
# plugins would use for ``mood`` too.
FLOAT = types.NullFloat(digits=2)
STRING = types.STRING

ITEM_TYPES: dict[str, types.Type] = {
    MOOD: STRING,
    **dict.fromkeys(FLOAT_FIELDS, FLOAT),
    LYRICS_SOURCE: STRING,
    MODEL: STRING,
    EMBEDDING: STRING,
    MOOD_BY_HAND: types.BOOLEAN,
}
ALBUM_TYPES: dict[str, types.Type] = {
    ALBUM_MOOD: STRING,
    **dict.fromkeys(ALBUM_FLOAT_FIELDS, FLOAT),
    ALBUM_MODEL: STRING,
}


class NonFinitePrediction(ValueError):
    """The model gave NaN or infinity for a track: nothing of that result may be stored.

    A NaN stored reads back as NULL, is written into the file as ``nan``, makes the mood the
    first label (every comparison with NaN is false) and marks the item current, so it would
    never be analysed again. The message is one line, without the path.
    """


def prediction_fields(prediction: Any, lyrics_source: str, version: str) -> dict[str, Any]:
    """Field values for one track from a ``TrackPrediction`` (duck-typed: no model import).

    Raises NonFinitePrediction when any value is NaN or infinite: the one place where
    predictions become fields and tags, so none of them ever holds one.
    """
    raw: dict[str, float] = {
        mood: float(prediction.probabilities.get(mood, 0.0)) for mood in PROBABILITY_FIELDS
    }
    raw.update(
        valence=float(prediction.valence),
        arousal=float(prediction.arousal),
        gate_audio=float(prediction.gate_audio),
        gate_lyrics=float(prediction.gate_lyrics),
    )
    bad = [f"{name} {value}" for name, value in raw.items() if not math.isfinite(value)]
    if bad:
        raise NonFinitePrediction(f"the model gave a non-finite result ({', '.join(bad)})")
    values: dict[str, Any] = {MOOD: prediction.mood}
    for mood, field in PROBABILITY_FIELDS.items():
        values[field] = round(raw[mood], DIGITS)
    values[VALENCE] = round(raw["valence"], DIGITS)
    values[AROUSAL] = round(raw["arousal"], DIGITS)
    values[GATE_AUDIO] = round(raw["gate_audio"], DIGITS)
    values[GATE_LYRICS] = round(raw["gate_lyrics"], DIGITS)
    values[LYRICS_SOURCE] = lyrics_source
    values[MODEL] = version
    embedding = getattr(prediction, "embedding", None)
    if embedding:
        if not all(math.isfinite(v) for v in embedding):
            raise NonFinitePrediction("the model gave a non-finite result (embedding)")
        values[EMBEDDING] = encode_embedding(embedding)
    return values


def mood_fields(probabilities: Mapping[str, float], version: str) -> dict[str, Any]:
    """The fields a mood head decides (probabilities, mood, model version), for a track whose
    probabilities come from a listener's head or from re-tagging a stored embedding; valence,
    arousal and the gates are the model's and stay as they are."""
    values: dict[str, Any] = {
        field: round(float(probabilities[mood]), DIGITS)
        for mood, field in PROBABILITY_FIELDS.items()
    }
    values[MOOD] = max(PROBABILITY_FIELDS, key=lambda mood: float(probabilities[mood]))
    values[MODEL] = version
    return values


def encode_embedding(values: Sequence[float]) -> str:
    """``f16:`` and the values as little-endian float16, base64: 344 characters for 128
    values (float16 keeps 3 significant digits, far finer than a mood head needs)."""
    packed = struct.pack(f"<{len(values)}e", *(float(v) for v in values))
    return EMBEDDING_PREFIX + base64.b64encode(packed).decode("ascii")


def decode_embedding(text: object) -> list[float] | None:
    """The values of :func:`encode_embedding`; None for anything else (a field set by hand,
    or by another version of this plugin)."""
    if not isinstance(text, str) or not text.startswith(EMBEDDING_PREFIX):
        return None
    try:
        packed = base64.b64decode(text[len(EMBEDDING_PREFIX) :], validate=True)
    except ValueError:
        return None
    if not packed or len(packed) % 2:
        return None
    return list(struct.unpack(f"<{len(packed) // 2}e", packed))


def stored_mood(values: Mapping[str, Any]) -> str | None:
    """The mood the stored probabilities point to (what this plugin would have set)."""
    probabilities = {mood: values.get(field) for mood, field in PROBABILITY_FIELDS.items()}
    known = {mood: float(p) for mood, p in probabilities.items() if p is not None}
    if not known:
        return None
    return max(known, key=known.__getitem__)


def has_user_mood(item: Mapping[str, Any]) -> bool:
    """True when the item's ``mood`` was set by someone else than this plugin.

    The plugin's own mood is always the arg-max of the stored probabilities, so a mood that
    differs from it (or one on an item this plugin never analysed) came from the user, a file
    tag or another tool. Once a run has kept such a mood it marks the item (``MOOD_BY_HAND``):
    the mood stays the user's even when a later model agrees with it.
    """
    mood = own_value(item, MOOD)
    if not mood:
        return False
    if own_value(item, MOOD_BY_HAND):
        return True
    return mood != stored_mood({f: own_value(item, f) for f in PROBABILITY_FIELDS.values()})


def is_current(item: Mapping[str, Any], version: str) -> bool:
    """True when the item was analysed by this model version already."""
    return own_value(item, MODEL) == version


def lyrics_misses(item: Mapping[str, Any]) -> set[str]:
    raw = own_value(item, LYRICS_MISSES) or ""
    return {part.strip() for part in str(raw).split(",") if part.strip()}


def format_misses(misses: Iterable[str]) -> str:
    return ",".join(sorted(set(misses)))


def aggregate_album(tracks: Iterable[Mapping[str, Any]]) -> dict[str, Any] | None:
    """Album values from its analysed tracks: length-weighted means; mood = arg-max.

    Tracks without stored probabilities are left out; None when no track is analysed.
    """
    weights: list[float] = []
    rows: list[Mapping[str, Any]] = []
    versions: set[str] = set()
    for track in tracks:
        if any(own_value(track, field) is None for field in ALBUM_FLOAT_FIELDS.values()):
            continue
        length = own_value(track, "length")
        weights.append(float(length) if length and float(length) > 0 else 1.0)
        rows.append(track)
        version = own_value(track, MODEL)
        if version:
            versions.add(str(version))
    if not rows:
        return None
    total = sum(weights)
    values: dict[str, Any] = {}
    for album_field, track_field in ALBUM_FLOAT_FIELDS.items():
        mean = (
            sum(w * float(own_value(r, track_field)) for w, r in zip(weights, rows, strict=True))
            / total
        )
        values[album_field] = round(mean, DIGITS)
    values[ALBUM_MOOD] = max(MOODS, key=lambda mood: values[f"album_emotion_{mood}"])
    values[ALBUM_MODEL] = ",".join(sorted(versions))
    return values


def own_value(item: Mapping[str, Any], key: str) -> Any:
    """``item.get(key)`` that never falls back to album fields (beets items do by default)."""
    getter = getattr(item, "get", None)
    if getter is None:
        return None
    try:
        return getter(key, with_album=False)
    except TypeError:  # a plain mapping
        return getter(key)
