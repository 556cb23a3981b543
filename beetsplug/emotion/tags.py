"""The plugin's fields in audio files: MOOD plus custom EMOTION_* tags, for every format.

The fields are registered with mediafile (so ``item.write()`` can carry them and
``beet info`` shows them) but deliberately *not* with beets' ``Item._media_fields``: beets
reads those back on ``beet update`` and would wipe the fields of every file written without
them (``-W``, or before the first analysis). Instead the plugin adds its values to each write
through the ``write`` event, and writes only its own tags when it writes a file itself.

Layouts (key case as written):

==============  =================================  ===============================
format          mood                               others (e.g. emotion_sad)
==============  =================================  ===============================
ID3 (MP3, WAV,  ``TMOO`` (ID3v2.4) or              ``TXXX:EMOTION_SAD``
AIFF)           ``TXXX:MOOD`` (ID3v2.3), see below
Vorbis, FLAC,   ``MOOD``                           ``EMOTION_SAD``
Opus, APE
MP4 / M4A       ``----:com.apple.iTunes:MOOD``     ``----:com.apple.iTunes:EMOTION_SAD``
ASF / WMA       ``WM/Mood``                        ``EMOTION_SAD``
==============  =================================  ===============================

ID3 has two homes for the mood: ``TMOO`` (a standard frame, ID3v2.4 only) and ``TXXX:MOOD``
(what ID3v2.3 taggers use). TagLib, which Navidrome, Kodi and most Linux players read tags
with, maps both to ``MOOD``: a file holding both reads as two moods. So one frame is written
per ID3 version, as Picard does (``TMOO`` in v2.4, ``TXXX:MOOD`` in v2.3), and the other is
deleted, which also cleans files written by earlier versions of the plugin. The option
``id3_mood_frame`` (``auto``, ``tmoo``, ``txxx``, ``both``) chooses otherwise, for players
that read only one of them; v2.3 has no ``TMOO``, so there every choice is ``TXXX:MOOD``.
Reading takes either frame. The choice lives in the mood's mediafile descriptor
(``_MoodField``), so beets' own writes (``beet write``, ``modify``, the importer) follow it
too: ``write_tags`` passes it for its own writes, the plugin sets it for beets' writes
(``set_mood_frame``, from its ``write`` listener).
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any

import mediafile
from mediafile import MediaField, MediaFile

from . import fields
from .safe_save import save_media
from .settings import ID3_MOOD_FRAMES

FILE_FIELDS: tuple[str, ...] = fields.TRACK_FIELDS
"""Every field that goes into files (the lyrics negative cache stays in the database)."""


class TagError(Exception):
    """A file whose tags cannot be read or written; the message is one line, ``PATH: REASON``.

    ``path`` and ``reason`` are kept apart too, so a summary can list the failure without
    parsing the message back apart.
    """

    def __init__(self, path: str | bytes, reason: str) -> None:
        self.path = os.fsdecode(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


def _float_styles(key: str) -> list[mediafile.StorageStyle]:
    places = fields.DIGITS
    return [
        mediafile.MP3DescStorageStyle(key, float_places=places),
        mediafile.MP4StorageStyle(f"----:com.apple.iTunes:{key}", float_places=places),
        mediafile.StorageStyle(key, float_places=places),
        mediafile.ASFStorageStyle(key, float_places=places),
    ]


def _string_styles(key: str) -> list[mediafile.StorageStyle]:
    return [
        mediafile.MP3DescStorageStyle(key),
        mediafile.MP4StorageStyle(f"----:com.apple.iTunes:{key}"),
        mediafile.StorageStyle(key),
        mediafile.ASFStorageStyle(key),
    ]


TMOO = "TMOO"
TXXX_MOOD = "TXXX:MOOD"

_mood_frame_default = "auto"
_mood_frame_now: ContextVar[str | None] = ContextVar("emotion_mood_frame", default=None)
"""The choice of ``write_tags`` while it runs; otherwise the default (beets' own writes)."""


def set_mood_frame(choice: str) -> None:
    """The ``id3_mood_frame`` choice for writes that do not name one (beets' own)."""
    global _mood_frame_default
    _mood_frame_default = _checked_mood_frame(choice)


def _checked_mood_frame(choice: str) -> str:
    if choice not in ID3_MOOD_FRAMES:
        raise ValueError(f"id3_mood_frame is {choice!r}; use one of {', '.join(ID3_MOOD_FRAMES)}")
    return choice


def mood_frames(choice: str, id3v23: bool) -> tuple[str, ...]:
    """The ID3 frames the mood goes into for ``choice``, in a v2.3 or a v2.4 tag."""
    if id3v23:
        return (TXXX_MOOD,)  # v2.3 has no TMOO (mutagen drops it on saving)
    return {
        "auto": (TMOO,),
        "tmoo": (TMOO,),
        "txxx": (TXXX_MOOD,),
        "both": (TMOO, TXXX_MOOD),
    }[_checked_mood_frame(choice)]


def _saved_as_v23(media: MediaFile) -> bool:
    """True when ``media`` saves an ID3v2.3 tag: MP3 with ``id3v23`` (mediafile writes WAV
    and AIFF tags as v2.4 whatever the option says)."""
    return bool(getattr(media, "id3v23", False))


class _MoodField(MediaField):
    """The mood: as any field, except that ID3 gets one of its two frames (see the module
    docstring), and the other one is deleted."""

    def __init__(self) -> None:
        self._tmoo = mediafile.MP3StorageStyle(TMOO)
        self._txxx = mediafile.MP3DescStorageStyle("MOOD")
        super().__init__(
            self._tmoo,
            self._txxx,
            mediafile.MP4StorageStyle("----:com.apple.iTunes:MOOD"),
            mediafile.StorageStyle("MOOD"),
            mediafile.ASFStorageStyle("WM/Mood"),
        )

    def __set__(self, media: MediaFile, value: Any) -> None:
        if value is None:
            value = self._none_value()
        choice = _mood_frame_now.get() or _mood_frame_default
        wanted = mood_frames(choice, _saved_as_v23(media))
        for style in self.styles(media.mgfile):
            if style is self._tmoo or style is self._txxx:
                key = TMOO if style is self._tmoo else TXXX_MOOD
                if key not in wanted:
                    style.delete(media.mgfile)
                    continue
            style.set(media.mgfile, value)


def _id3_mood_frames(media: MediaFile) -> set[str]:
    """The mood frames an ID3 tag holds now (an empty set for other formats)."""
    tags = media.mgfile.tags
    if tags is None or not hasattr(tags, "getall"):
        return set()
    found = {TMOO} if tags.getall(TMOO) else set()
    if any(frame.desc.lower() == "mood" for frame in tags.getall("TXXX")):
        found.add(TXXX_MOOD)
    return found


def _descriptors() -> dict[str, MediaField]:
    found: dict[str, MediaField] = {fields.MOOD: _MoodField()}
    for name in fields.FLOAT_FIELDS:
        found[name] = MediaField(*_float_styles(name.upper()), out_type=float)
    for name in (fields.LYRICS_SOURCE, fields.MODEL):
        found[name] = MediaField(*_string_styles(name.upper()))
    return found


def register_media_fields() -> None:
    """Teach mediafile our fields, once per process (a second registration raises)."""
    known = set(MediaFile.fields())
    for name, descriptor in _descriptors().items():
        if name not in known:
            MediaFile.add_field(name, descriptor)


def values_to_write(item: Mapping[str, Any]) -> dict[str, Any]:
    """The item's plugin fields that have a value; empty ones are never written (nor erased)."""
    values: dict[str, Any] = {}
    for name in FILE_FIELDS:
        value = fields.own_value(item, name)
        if value is not None and value != "":
            values[name] = value
    return values


def _open(path: str | bytes, id3v23: bool = False) -> MediaFile:
    register_media_fields()
    try:
        return MediaFile(os.fsdecode(path), id3v23=id3v23)
    except mediafile.UnreadableFileError as error:
        raise TagError(path, f"cannot read tags ({_reason(error, path)})") from None
    except OSError as error:
        raise TagError(path, f"cannot read tags ({error.strerror})") from None


def read_tags(path: str | bytes) -> dict[str, Any]:
    """The plugin's fields found in a file (absent tags are left out)."""
    return _read(_open(path))


def _read(media: MediaFile) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name in FILE_FIELDS:
        value = getattr(media, name)
        if value is None or value == "":
            continue
        if name in fields.FLOAT_FIELDS and not _has_raw_value(media, name):
            continue  # mediafile reads a missing float as 0.0
        found[name] = value
    return found


def _has_raw_value(media: MediaFile, name: str) -> bool:
    descriptor: MediaField = inspect.getattr_static(type(media), name)
    styles = descriptor.styles(media.mgfile)
    return any(style.get(media.mgfile) not in (None, "") for style in styles)


def write_tags(
    path: str | bytes, values: Mapping[str, Any], id3v23: bool = False, mood_frame: str = "auto"
) -> None:
    """Write only ``values`` (plugin fields) into the file; every other tag is kept.

    ``mood_frame`` is the ``id3_mood_frame`` choice: which ID3 frame(s) get the mood.
    A write that fails (full disk, file size limit, I/O error, permissions) leaves the file
    byte for byte as it was; see ``_save`` for how.
    """
    token = _mood_frame_now.set(_checked_mood_frame(mood_frame))
    try:
        media = _open(path, id3v23=id3v23)
        wanted = {k: v for k, v in values.items() if k in FILE_FIELDS}
        media.update(wanted)
        try:
            save_media(os.fsdecode(path), media, wanted, id3v23)
        except (mediafile.UnreadableFileError, OSError) as error:
            reason = _reason(error, path)
            raise TagError(path, f"cannot write tags ({reason})") from None
    finally:
        _mood_frame_now.reset(token)


def tags_differ(
    path: str | bytes, values: Mapping[str, Any], id3v23: bool = False, mood_frame: str = "auto"
) -> bool:
    """True when the file lacks one of ``values`` or holds another value, or keeps the mood
    in other ID3 frames than ``mood_frame`` chooses (both frames, from an older version)."""
    media = _open(path, id3v23=id3v23)
    if values.get(fields.MOOD) not in (None, ""):
        frames = _id3_mood_frames(media)
        if frames and frames != set(mood_frames(mood_frame, _saved_as_v23(media))):
            return True
    current = _read(media)
    for name, value in values.items():
        if name not in FILE_FIELDS:
            continue
        have = current.get(name)
        if name in fields.FLOAT_FIELDS:
            if have is None or abs(float(have) - float(value)) > 10**-fields.DIGITS:
                return True
        elif have != value:
            return True
    return False


def _reason(error: BaseException, path: str | bytes = b"") -> str:
    # mediafile wraps mutagen's error, which wraps the OSError: "permission denied" reads
    # better than "[Errno 13] Permission denied: '/the/same/path'" after the path.
    cause: BaseException | None = error
    for _ in range(5):
        if cause is None:
            break
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror.lower()
        cause = cause.__cause__ or cause.__context__
    text = " ".join(str(error).split())
    name = os.fsdecode(path)
    if name:  # mediafile and mutagen both name the file; the message already starts with it
        text = text.replace(f"{name}: ", "").replace(f"'{name}' ", "").replace(name, "the file")
    return text or type(error).__name__
