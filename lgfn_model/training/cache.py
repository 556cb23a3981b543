"""On-disk cache of decoded audio and lyric line embeddings, so a second run starts fast.

Layout under the cache root (``--cache DIR``, default ``$XDG_CACHE_HOME/beets-lgfn/features``,
i.e. ``~/.cache/beets-lgfn/features``)::

    audio-<rate>/<k[:2]>/<k>.npy     mono samples at <rate> Hz, float16 (1/2 the size of float32)
    lyrics-<encoder>/<k[:2]>/<k>.npz embeddings (N, dim) float16, starts (N,) float32 (NaN: untimed)

Audio and lyric keys hash the file's bytes (plus the sample rate, or the parser/encoder
version), not its path or modification time: a replaced file is decoded again, while a copied,
moved or merely touched data set (a fresh checkout, a restored backup) still finds its entries.
Files are written to a temporary name and renamed, so an interrupted run never leaves half a
file, and several processes may fill one cache. Audio is decoded by a pool of ``workers``
processes, each writing its own files (no big arrays travel between processes).
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

CACHE_VERSION = "2"
"""Bump when what is stored changes meaning; old entries are then simply not found."""


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "beets-lgfn" / "features"


def _digest(*parts: object) -> str:
    h = hashlib.sha1()
    for part in parts:
        h.update(str(part).encode("utf-8", "surrogatepass"))
        h.update(b"\0")
    return h.hexdigest()


_content_digests: dict[tuple[Path, int, int], str] = {}


def content_digest(path: Path) -> str:
    """SHA-1 of the file's bytes, remembered per (path, size, mtime) for this process.

    Why bytes and not mtime: data folders get copied and touched (a new checkout, a restore), and
    an mtime-keyed cache would then decode everything again for nothing.
    """
    stat = path.stat()
    memo_key = (path, stat.st_size, stat.st_mtime_ns)
    digest = _content_digests.get(memo_key)
    if digest is None:
        h = hashlib.sha1()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                h.update(block)
        digest = h.hexdigest()
        _content_digests[memo_key] = digest
    return digest


def _atomic_write(target: Path, write: Callable[[Path], None], suffix: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=suffix)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _to_float16(samples: np.ndarray) -> np.ndarray:
    # Decoded audio may exceed [-1, 1] a little (lossy codecs); float16 holds up to 65504.
    return np.asarray(samples, dtype=np.float16)


def _decode_job(
    source: str, target: str, sample_rate: int, max_seconds: float | None
) -> str | None:
    """Decode one file into the cache (runs in a worker process). Returns an error or None."""
    from lgfn_model.data.audio import decode_audio

    try:
        decoded = decode_audio(source, sample_rate, max_seconds=max_seconds)
    except Exception as exc:  # one bad file never stops a run
        return f"{type(exc).__name__}: {exc}"
    samples = _to_float16(decoded.samples)
    _atomic_write(Path(target), lambda p: np.save(p, samples, allow_pickle=False), ".npy")
    return None


@dataclass(frozen=True)
class LyricFeatures:
    """Line embeddings of one lyrics file and each line's start in seconds (NaN: untimed)."""

    embeddings: np.ndarray  # (N, dim) float32
    starts: np.ndarray  # (N,) float32
    song: np.ndarray | None = None  # (dim,) the whole text's vector, for a song_text model

    def __len__(self) -> int:
        return int(self.embeddings.shape[0])

    @property
    def synced(self) -> bool:
        return len(self) > 0 and not np.isnan(self.starts).any()


class FeatureCache:
    """Decoded audio and lyric embeddings on disk (see the module docstring)."""

    def __init__(
        self,
        root: str | os.PathLike[str] | None = None,
        sample_rate: int = 16000,
        max_seconds: float | None = None,
    ) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()
        self.sample_rate = int(sample_rate)
        self.max_seconds = max_seconds

    # ----------------------------------------------------------------------------- audio

    def audio_file(self, source: str | os.PathLike[str]) -> Path:
        key = _digest(
            CACHE_VERSION,
            content_digest(Path(source).resolve()),
            self.sample_rate,
            self.max_seconds,
        )
        return self.root / f"audio-{self.sample_rate}" / key[:2] / f"{key}.npy"

    def has_audio(self, source: str | os.PathLike[str]) -> bool:
        return self.audio_file(source).is_file()

    def load_audio(
        self, source: str | os.PathLike[str], *, decode_missing: bool = True
    ) -> np.ndarray:
        """Mono float32 samples of ``source`` at ``sample_rate`` (decoded now if not cached)."""
        target = self.audio_file(source)
        if not target.is_file():
            if not decode_missing:
                raise FileNotFoundError(f"{source}: not in the cache {self.root}")
            error = _decode_job(str(source), str(target), self.sample_rate, self.max_seconds)
            if error:
                raise RuntimeError(f"{source}: {error}")
        return np.load(target, mmap_mode="r", allow_pickle=False).astype(np.float32)

    def ensure_audio(
        self,
        sources: Iterable[str | os.PathLike[str]],
        workers: int = 2,
        progress: Callable[[int, int], None] | None = None,
    ) -> dict[Path, str]:
        """Decode every source not yet cached; returns {source: error} for files that failed."""
        todo: list[tuple[str, str]] = []
        for source in dict.fromkeys(Path(s) for s in sources):
            target = self.audio_file(source)
            if not target.is_file():
                todo.append((str(source), str(target)))
        errors: dict[Path, str] = {}
        if not todo:
            return errors
        log.info("decoding %d audio files into %s (%d workers)", len(todo), self.root, workers)
        if workers <= 1:
            results: Iterable[str | None] = (
                _decode_job(s, t, self.sample_rate, self.max_seconds) for s, t in todo
            )
            self._collect(todo, results, errors, progress)
        else:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                results = pool.map(
                    _decode_job,
                    [s for s, _ in todo],
                    [t for _, t in todo],
                    [self.sample_rate] * len(todo),
                    [self.max_seconds] * len(todo),
                    chunksize=4,
                )
                self._collect(todo, results, errors, progress)
        for source, error in errors.items():
            log.warning("cannot decode %s: %s", source, error)
        return errors

    @staticmethod
    def _collect(todo, results, errors, progress) -> None:
        for done, ((source, _), error) in enumerate(zip(todo, results, strict=True), start=1):
            if error:
                errors[Path(source)] = error
            if progress:
                progress(done, len(todo))

    # ----------------------------------------------------------------------------- lyrics

    def lyrics_file(self, source: str | os.PathLike[str], encoder_name: str) -> Path:
        from lgfn_model.data import lyrics as lyrics_module

        key = _digest(
            CACHE_VERSION,
            encoder_name,
            content_digest(Path(source)),
            lyrics_module.MAX_LINE_CHARS,
        )
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in encoder_name)
        return self.root / f"lyrics-{safe}" / key[:2] / f"{key}.npz"

    def load_lyrics(self, source: str | os.PathLike[str], encoder_name: str) -> LyricFeatures:
        target = self.lyrics_file(source, encoder_name)
        with np.load(target, allow_pickle=False) as data:
            song = data["song"].astype(np.float32) if "song" in data.files else None
            return LyricFeatures(
                data["embeddings"].astype(np.float32), data["starts"].astype(np.float32), song
            )

    def lyrics_to_embed(
        self, sources: Iterable[str | os.PathLike[str]], encoder_name: str
    ) -> tuple[list[tuple[Path, Path, list[str], np.ndarray]], dict[Path, str]]:
        """The lyrics files of ``sources`` not yet cached under ``encoder_name``, read: (source,
        cache entry, line texts, line starts with NaN for untimed) each; and {source: error}
        for those that cannot be read."""
        from lgfn_model.data.lyrics import read_lyrics_file

        errors: dict[Path, str] = {}
        pending: list[tuple[Path, Path, list[str], np.ndarray]] = []
        for source in dict.fromkeys(Path(s) for s in sources):
            try:
                target = self.lyrics_file(source, encoder_name)
                if target.is_file():
                    continue
                parsed = read_lyrics_file(str(source))
            except OSError as exc:
                errors[source] = f"{type(exc).__name__}: {exc}"
                continue
            starts = np.array(
                [np.nan if line.start is None else line.start for line in parsed.lines],
                dtype=np.float32,
            )
            pending.append((source, target, parsed.texts, starts))
        return pending, errors

    def ensure_lyrics(
        self,
        sources: Iterable[str | os.PathLike[str]],
        encoder_name: str,
        encode: Callable[[Sequence[str]], np.ndarray] | None = None,
        batch_lines: int = 256,
        device: str = "cpu",
        progress: Callable[[int, int], None] | None = None,
    ) -> dict[Path, str]:
        """Embed the lines of every lyrics file not yet cached; returns {source: error}.

        ``encode`` maps a list of lines to an (N, dim) array; by default the project's text
        encoder named ``encoder_name`` is loaded (only when something is missing). Identical
        lines (choruses) are encoded once.
        """
        pending, errors = self.lyrics_to_embed(sources, encoder_name)
        if not pending:
            return errors
        if encode is None:
            encode = load_encoder(encoder_name, device)
        unique = list(dict.fromkeys(text for _, _, texts, _ in pending for text in texts))
        log.info("embedding %d distinct lines of %d lyrics files", len(unique), len(pending))
        vectors: dict[str, np.ndarray] = {}
        for begin in range(0, len(unique), batch_lines):
            chunk = unique[begin : begin + batch_lines]
            out = np.asarray(encode(chunk), dtype=np.float32)
            if out.shape[0] != len(chunk):
                raise RuntimeError(
                    f"encoder returned {out.shape[0]} vectors for {len(chunk)} lines"
                )
            vectors.update(zip(chunk, out, strict=True))
            if progress:
                progress(min(begin + batch_lines, len(unique)), len(unique))
        dim = next(iter(vectors.values())).shape[0] if vectors else 0
        for _source, target, texts, starts in pending:
            embeddings = (
                np.stack([vectors[t] for t in texts]).astype(np.float16)
                if texts
                else np.zeros((0, dim), dtype=np.float16)
            )
            _atomic_write(
                target,
                lambda p, e=embeddings, s=starts: _save_npz(p, e, s),
                ".npz",
            )
        return errors


def _save_npz(
    path: Path, embeddings: np.ndarray, starts: np.ndarray, song: np.ndarray | None = None
) -> None:
    arrays = {"embeddings": embeddings, "starts": starts}
    if song is not None:  # lines read in context keep the same pass's whole-text vector
        arrays["song"] = song
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)


def load_encoder(name: str, device: str = "cpu") -> Callable[[Sequence[str]], np.ndarray]:
    """The project's text encoder ``name`` as a lines -> (N, dim) float32 function."""
    from lgfn_model.text import load_text_encoder

    # bf16 on a GPU is the encoder's fast path; float32 on the CPU.
    encoder = load_text_encoder(
        name, device=device, dtype="bf16" if device.startswith("cuda") else None
    )

    def encode(lines: Sequence[str]) -> np.ndarray:
        out = encoder.encode(list(lines))
        if hasattr(out, "detach"):
            out = out.detach().cpu().float().numpy()
        return np.asarray(out, dtype=np.float32)

    return encode
