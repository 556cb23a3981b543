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
ID3 (MP3, WAV,  ``TMOO`` (ID3v2.4 only) and        ``TXXX:EMOTION_SAD``
AIFF)           ``TXXX:MOOD``
Vorbis, FLAC,   ``MOOD``                           ``EMOTION_SAD``
Opus, APE
MP4 / M4A       ``----:com.apple.iTunes:MOOD``     ``----:com.apple.iTunes:EMOTION_SAD``
ASF / WMA       ``WM/Mood``                        ``EMOTION_SAD``
==============  =================================  ===============================
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Mapping
from typing import Any

import mediafile
from mediafile import MediaField, MediaFile

from . import fields

FILE_FIELDS: tuple[str, ...] = fields.TRACK_FIELDS
"""Every field that goes into files (the lyrics negative cache stays in the database)."""


class TagError(Exception):
    """A file whose tags cannot be read or written; the message is one line."""


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


def _descriptors() -> dict[str, MediaField]:
    found: dict[str, MediaField] = {
        fields.MOOD: MediaField(
            mediafile.MP3StorageStyle("TMOO"),
            mediafile.MP3DescStorageStyle("MOOD"),
            mediafile.MP4StorageStyle("----:com.apple.iTunes:MOOD"),
            mediafile.StorageStyle("MOOD"),
            mediafile.ASFStorageStyle("WM/Mood"),
        )
    }
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
        raise TagError(f"{os.fsdecode(path)}: cannot read tags ({_reason(error, path)})") from None
    except OSError as error:
        raise TagError(f"{os.fsdecode(path)}: cannot read tags ({error.strerror})") from None


def read_tags(path: str | bytes) -> dict[str, Any]:
    """The plugin's fields found in a file (absent tags are left out)."""
    media = _open(path)
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


def write_tags(path: str | bytes, values: Mapping[str, Any], id3v23: bool = False) -> None:
    """Write only ``values`` (plugin fields) into the file; every other tag is kept."""
    media = _open(path, id3v23=id3v23)
    media.update({k: v for k, v in values.items() if k in FILE_FIELDS})
    try:
        media.save()
    except (mediafile.UnreadableFileError, OSError) as error:
        raise TagError(f"{os.fsdecode(path)}: cannot write tags ({_reason(error, path)})") from None


def tags_differ(path: str | bytes, values: Mapping[str, Any]) -> bool:
    """True when the file lacks one of ``values`` or holds another value."""
    current = read_tags(path)
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
