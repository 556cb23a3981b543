"""Which items a ``beet emotion`` command works on: the query, as tracks or (``-a``) albums.

One place for every mode of the command (analysis, ``--explain``, ``--playlist``), so that
they always agree on what a query matches.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optparse

    from beets.library import Album, Item, Library


@dataclass
class Selection:
    items: list[Item] = field(default_factory=list)
    """The matching tracks (with ``-a``: every track of the matching albums), in order."""
    albums: list[Album] = field(default_factory=list)
    """With ``-a``: the matching albums (aggregated after their tracks); else empty."""

    def title(self, args: list[str]) -> str:
        """A heading for what was selected: the album's name, or the query."""
        if len(self.albums) == 1:
            album = self.albums[0]
            if album.albumartist:
                return f"{album.albumartist} \u2014 {album.album}"
            if album.album:
                return str(album.album)
        if args:
            return f'{len(self.items)} tracks matching "{" ".join(args)}"'
        return ""


def select_items(lib: Library, opts: optparse.Values, args: list[str]) -> Selection:
    """The items (and with ``-a/--album`` the albums) that ``args`` (a beets query) match."""
    if getattr(opts, "album", False):
        albums = list(lib.albums(args))
        return Selection([item for album in albums for item in album.items()], albums)
    return Selection(list(lib.items(args)))


def albums_of(lib: Library, items: list[Item]) -> list[Any]:
    """The albums ``items`` belong to, each once (singletons have none)."""
    ids = sorted({item.album_id for item in items if item.album_id})
    return [album for album in (lib.get_album(album_id) for album_id in ids) if album]


def no_match(args: list[str], opts: optparse.Values) -> str:
    """What to say when the query matched nothing: the query, and the likely slip when its
    only word came right after ``--playlist`` (a folder that does not exist yet)."""
    what = "albums" if getattr(opts, "album", False) else "tracks"
    if not args:
        return f"emotion: the library has no {what}"
    query = " ".join(args)
    line = f'emotion: no {what} match the query "{query}"'
    if getattr(opts, "playlist", None) == "" and len(args) == 1 and ":" not in args[0]:
        line += (
            f"; for playlists in a new folder {args[0]!r}, write --playlist={args[0]} "
            f"or --playlist ./{args[0]}"
        )
    return line
