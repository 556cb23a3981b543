"""How one result becomes an item's values: the fields it gets, what stays, how it is shown.

Split from analysis.py (the run itself): these take an item and values and touch nothing else.
"""

from __future__ import annotations

import os
from typing import Any

from . import fields
from .lyrics_sources import LyricsOutcome
from .personal import Scorer
from .progress import Summary


def personal_values(prediction: Any, personal: Scorer, version: str) -> dict[str, Any]:
    """The mood fields of a fresh prediction through the listener's head."""
    embedding = list(getattr(prediction, "embedding", None) or [])
    if len(embedding) != personal.dim:
        raise fields.NonFinitePrediction(
            f"the model gave no track embedding of {personal.dim} values for your learned moods"
        )
    return fields.mood_fields(personal.probabilities(embedding), version)


def stored_values(item: Any) -> dict[str, Any]:
    return {name: fields.own_value(item, name) for name in fields.TRACK_FIELDS}


def update_item(
    item: Any, values: dict[str, Any], outcome: LyricsOutcome | None, options: Any
) -> str | None:
    """Put a result in ``item`` (not stored yet), with what the lyrics lookup left to keep;
    returns LRC text to write beside the file now, if any. ``options``: the run's
    ``analysis.RunOptions`` (not imported: analysis imports this module)."""
    item.update(values)
    if fields.MOOD in values and fields.own_value(item, fields.MOOD_BY_HAND) is not None:
        del item[fields.MOOD_BY_HAND]  # the plugin's mood now: no longer the listener's
    if outcome is None:
        return None
    deferred = options.deferred
    if deferred is not None and outcome.origin is not None:
        deferred.origins[item.id] = outcome.origin
    if outcome.misses:
        item[fields.LYRICS_MISSES] = fields.format_misses(outcome.misses)
    elif fields.LYRICS_MISSES in item:
        del item[fields.LYRICS_MISSES]
    fetched = outcome.fetched
    if fetched is None or not fetched.synced:
        return None
    if options.store_lyrics == "field":
        if not (fields.own_value(item, "lyrics") or "").strip():
            item["lyrics"] = fetched.text
    elif options.store_lyrics == "lrc":
        if deferred is None:
            return fetched.text
        deferred.sidecars[item.id] = fetched.text
    return None


def check_length(item: Any, prediction: Any, summary: Summary) -> None:
    """A file that decodes to much less than its length is damaged or cut off: the result
    covers only what could be decoded, and the summary says so."""
    length = fields.own_value(item, "length")
    try:
        length = float(length or 0.0)
    except (TypeError, ValueError):
        return
    decoded = float(prediction.duration)
    if length > 0 and decoded < 0.9 * length - 1.0:
        summary.warnings.append(
            f"{os.fsdecode(item.path)}: only {decoded:.0f} s of {length:.0f} s could be decoded "
            "(damaged or truncated file?); analysed what was there"
        )


def label(model: Any) -> str:
    """How an item or album is named in messages: beets' format, or its path when untitled."""
    title = fields.own_value(model, "title" if hasattr(model, "title") else "album")
    if title:
        return str(model)
    path = getattr(model, "path", None)
    if path is None and hasattr(model, "item_dir"):
        path = model.item_dir()
    return os.fsdecode(path) if path else str(model)


def describe(item: Any, values: dict[str, Any], current_mood: str | None) -> str:
    mood = values.get(fields.MOOD)
    mood_text = mood if mood is not None else f"{current_mood} (kept: set by hand)"
    probabilities = " ".join(
        f"{name} {values[column]:.2f}" for name, column in fields.PROBABILITY_FIELDS.items()
    )
    return (
        f"{label(item)}: mood {mood_text} [{probabilities}] "
        f"valence {values[fields.VALENCE]:+.2f} arousal {values[fields.AROUSAL]:+.2f} "
        f"gate audio {values[fields.GATE_AUDIO]:.2f} lyrics {values[fields.GATE_LYRICS]:.2f} "
        f"(lyrics: {values[fields.LYRICS_SOURCE]})"
    )
