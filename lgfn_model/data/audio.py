"""Audio front end: decode any music file to mono float32 at the model's rate, cut it in windows.

numpy only (no torch), so processes that only decode stay light.

Decoding goes through libsndfile (``soundfile``: MP3, FLAC, Ogg Vorbis, Opus, WAV, AIFF; the
fastest path here) and falls back to FFmpeg (PyAV) for the rest (M4A with AAC or ALAC, WMA, ...)
and for files libsndfile gives up on half way.  Audio is read in blocks; each block is
downmixed to mono and fed to a streaming soxr resampler, so memory holds the output plus one
block, never the whole track at its source rate.

Damaged files: whatever can be decoded is returned (FFmpeg skips undecodable packets, so a
truncated MP3 or FLAC yields its first part); a file with nothing decodable raises
:class:`AudioDecodeError`.
"""

from __future__ import annotations

import errno
import math
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["AudioDecodeError", "DecodedAudio", "decode_audio", "decode_or_error"]

BLOCK_FRAMES = 1 << 16
"""Source frames read and resampled at a time (~1.5 s at 44.1 kHz)."""

# Leading bytes of containers we know; used only to word errors ("damaged" vs "not audio").
_MAGIC = (b"ID3", b"fLaC", b"OggS", b"RIFF", b"FORM", b"RF64", b"caff", b"wvpk", b"MAC ")


class AudioDecodeError(Exception):
    """A file could not be decoded.  ``str()`` is one line: ``"<file name>: <reason>"``."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        self.path = Path(path)
        self.reason = " ".join(str(reason).split())  # always one line
        super().__init__(f"{self.path.name}: {self.reason}")

    def __reduce__(self):  # picklable, so worker processes can hand it back
        return type(self), (self.path, self.reason)


@dataclass(frozen=True)
class DecodedAudio:
    """Mono audio as the model reads it."""

    samples: np.ndarray
    """float32, shape ``(n,)``, loudness untouched (not normalised, not clipped)."""
    sample_rate: int
    source_sample_rate: int
    source_channels: int
    duration: float
    """Seconds of ``samples`` (``n / sample_rate``)."""


def decode_audio(
    path: str | os.PathLike[str],
    sample_rate: int = 16000,
    max_seconds: float | None = None,
) -> DecodedAudio:
    """Decode ``path`` to mono float32 at ``sample_rate``, at most ``max_seconds`` from the start.

    Raises :class:`AudioDecodeError` (one-line message naming the file) when the file is
    missing, unreadable, empty, not audio, or holds no decodable samples.
    """
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    if max_seconds is not None and max_seconds <= 0:
        raise ValueError(f"max_seconds must be positive, got {max_seconds}")
    path = Path(path)
    head = _check_file(path)

    failure: Exception | None = None
    try:
        result = _decode_soundfile(path, sample_rate, max_seconds)
    except _Unsupported:
        result = None
    except Exception as exc:  # libsndfile gave up half way: let FFmpeg try, it skips bad data
        result, failure = None, exc
    if result is None:
        result = _decode_pyav(path, sample_rate, max_seconds, head, failure)
    if result.samples.size == 0:
        raise AudioDecodeError(path, "no audio samples decoded")
    return result


# --------------------------------------------------------------------------- checks


def _check_file(path: Path) -> bytes:
    """Fail early with a clear reason; return the file's first bytes."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise AudioDecodeError(path, "file not found") from None
    except OSError as exc:
        raise AudioDecodeError(path, f"cannot read file: {_os_reason(exc)}") from None
    if path.is_dir():
        raise AudioDecodeError(path, "is a directory, not a file")
    if st.st_size == 0:
        raise AudioDecodeError(path, "file is empty (0 bytes)")
    try:
        with open(path, "rb") as handle:
            return handle.read(16)
    except OSError as exc:
        raise AudioDecodeError(path, f"cannot read file: {_os_reason(exc)}") from None


def _os_reason(exc: OSError) -> str:
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    return (exc.strerror or str(exc)).lower()


def _looks_like_audio(head: bytes) -> bool:
    if head.startswith(_MAGIC) or head[4:8] == b"ftyp":
        return True
    return len(head) >= 2 and head[0] == 0xFF and (head[1] & 0xE0) == 0xE0  # MPEG/ADTS sync


# --------------------------------------------------------------------------- block pipeline


class _Unsupported(Exception):
    """libsndfile cannot open this file: try FFmpeg."""


class _Sink:
    """Downmix blocks to mono, resample them as a stream, collect them in one growing buffer."""

    def __init__(self, rate_in: int, rate_out: int, expected_in: int, limit_out: int | None):
        self.rate_in, self.rate_out = rate_in, rate_out
        self.limit = limit_out
        guess = math.ceil(max(expected_in, 0) * rate_out / rate_in) + 64
        if limit_out is not None:
            guess = min(guess, limit_out)
        self.buffer = np.empty(max(guess, 1024), dtype=np.float32)
        self.size = 0
        self.stream = None
        if rate_in != rate_out:
            import soxr

            self.stream = soxr.ResampleStream(rate_in, rate_out, 1, dtype="float32")

    @property
    def full(self) -> bool:
        return self.limit is not None and self.size >= self.limit

    def add(self, mono: np.ndarray, last: bool = False) -> None:
        """``mono``: float32 ``(n,)``; non-finite samples become 0 (in place)."""
        np.nan_to_num(mono, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
        if self.stream is not None:
            mono = self.stream.resample_chunk(mono, last=last)
        self._append(mono)

    def finish(self) -> np.ndarray:
        if self.stream is not None:
            self._append(self.stream.resample_chunk(np.zeros(0, dtype=np.float32), last=True))
        size = self.size if self.limit is None else min(self.size, self.limit)
        if self.buffer.size > size + size // 8 + 4096:
            return self.buffer[:size].copy()  # release a badly over-estimated buffer
        return self.buffer[:size]

    def _append(self, mono: np.ndarray) -> None:
        n = mono.shape[0]
        if self.limit is not None:
            n = min(n, self.limit - self.size)
        if n <= 0:
            return
        end = self.size + n
        if end > self.buffer.size:
            grown = np.empty(max(end, int(self.buffer.size * 1.5)), dtype=np.float32)
            grown[: self.size] = self.buffer[: self.size]
            self.buffer = grown
        self.buffer[self.size : end] = mono[:n]
        self.size = end


def _downmix_columns(block: np.ndarray) -> np.ndarray:
    """``(n, channels)`` -> ``(n,)``: the channel mean, summed column by column (fast)."""
    channels = block.shape[1]
    if channels == 1:
        return block[:, 0]
    mono = block[:, 0] + block[:, 1]
    for c in range(2, channels):
        mono += block[:, c]
    mono *= np.float32(1.0 / channels)
    return mono


def _downmix_rows(block: np.ndarray) -> np.ndarray:
    """``(channels, n)`` -> ``(n,)``."""
    if block.shape[0] == 1:
        return block[0]
    mono = block[0] + block[1]
    for c in range(2, block.shape[0]):
        mono += block[c]
    mono *= np.float32(1.0 / block.shape[0])
    return mono


def _limit_frames(rate: int, max_seconds: float | None) -> int | None:
    return None if max_seconds is None else int(math.ceil(max_seconds * rate))


def _result(samples: np.ndarray, rate: int, src_rate: int, src_channels: int) -> DecodedAudio:
    return DecodedAudio(samples, rate, src_rate, src_channels, samples.shape[0] / rate)


# --------------------------------------------------------------------------- libsndfile


# mpg123, inside libsndfile, prints notes such as "Warning: Xing stream size off by more than
# 1%, fuzzy seeking may be even more fuzzy than by design!" straight to file descriptor 2,
# past Python: they break the progress line and tell the user nothing they can act on (a file
# that decodes short gets its own warning from the plugin). Only MPEG audio goes through it.
_MPEG_SUFFIXES = (".mp3", ".mp2", ".mp1", ".mpga")
_MPG123_NOTES = (
    "Warning: Xing stream size off",
    "Note: Illegal Audio-MPEG-Header",
    "Note: Trying to resync",
)


def _is_mpg123_note(line: str) -> bool:
    return line.startswith(_MPG123_NOTES) or "libmpg123" in line


@contextmanager
def _mpg123_notes_hidden(path: Path) -> Iterator[None]:
    """Drop mpg123's notes from file descriptor 2 while ``path`` is decoded.

    Anything else written to it meanwhile (by another thread, say) is passed on afterwards,
    only delayed.
    """
    if path.suffix.lower() not in _MPEG_SUFFIXES:
        yield
        return
    try:
        sys.stderr.flush()
        capture = tempfile.TemporaryFile()  # noqa: SIM115 (closed below, after fd 2 is back)
    except (OSError, ValueError):  # no stderr, or no room for the file: decode unfiltered
        yield
        return
    saved = os.dup(2)
    try:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            capture.seek(0)
            text = capture.read(1 << 20).decode("utf-8", errors="replace")
            kept = [line for line in text.splitlines(keepends=True) if not _is_mpg123_note(line)]
            if kept:
                with suppress(OSError):
                    os.write(2, "".join(kept).encode("utf-8", errors="replace"))
    finally:
        os.close(saved)
        capture.close()


def _decode_soundfile(path: Path, rate: int, max_seconds: float | None) -> DecodedAudio:
    with _mpg123_notes_hidden(path):
        return _read_soundfile(path, rate, max_seconds)


def _read_soundfile(path: Path, rate: int, max_seconds: float | None) -> DecodedAudio:
    import soundfile

    try:
        handle = soundfile.SoundFile(path)
    except Exception as exc:
        raise _Unsupported(str(exc)) from exc
    with handle:
        src_rate, channels = handle.samplerate, handle.channels
        frames = handle.frames if handle.frames > 0 else 0
        in_limit = _limit_frames(src_rate, max_seconds)
        if in_limit is not None:
            frames = min(frames, in_limit)
        sink = _Sink(src_rate, rate, frames, _limit_frames(rate, max_seconds))
        block = np.empty((BLOCK_FRAMES, channels), dtype=np.float32)
        read = 0
        while not sink.full:
            want = BLOCK_FRAMES if in_limit is None else min(BLOCK_FRAMES, in_limit - read)
            if want <= 0:
                break
            got = handle.read(want, dtype="float32", always_2d=True, out=block[:want])
            n = got.shape[0]
            if n == 0:
                break
            read += n
            sink.add(_downmix_columns(got))
            if n < want:
                break
        return _result(sink.finish(), rate, src_rate, channels)


# --------------------------------------------------------------------------- FFmpeg


_SCALE = {"u8": 1 / 128, "s16": 1 / 32768, "s32": 1 / 2147483648, "s64": 1 / 9223372036854775808}


def _frame_to_float(frame) -> np.ndarray:
    """An ``av.AudioFrame`` as float32 ``(channels, n)``."""
    fmt = frame.format
    data = frame.to_ndarray()
    if not fmt.is_planar:
        data = data.reshape(-1, len(frame.layout.channels)).T
    name = fmt.name.rstrip("p")
    if name in ("flt", "dbl"):
        return data.astype(np.float32, copy=False)
    out = data.astype(np.float32)
    if name == "u8":
        out -= 128.0
    out *= np.float32(_SCALE[name])
    return out


def _decode_pyav(
    path: Path, rate: int, max_seconds: float | None, head: bytes, earlier: Exception | None
) -> DecodedAudio:
    import av

    damaged = earlier is not None or _looks_like_audio(head)
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except PermissionError:
        raise AudioDecodeError(path, "cannot read file: permission denied") from None
    except FileNotFoundError:
        raise AudioDecodeError(path, "file not found") from None
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        if damaged:
            why = getattr(exc, "strerror", None) or exc
            raise AudioDecodeError(path, f"damaged or truncated audio file ({why})") from None
        raise AudioDecodeError(path, "not an audio file (unrecognised format)") from None
    with container:
        if not container.streams.audio:
            raise AudioDecodeError(path, "no audio stream")
        stream = container.streams.audio[0]
        src_rate = stream.codec_context.sample_rate or stream.rate
        channels = stream.codec_context.channels
        if not src_rate:
            raise AudioDecodeError(path, "no audio stream (unknown sample rate)")
        expected = 0
        if stream.duration and stream.time_base:
            expected = int(stream.duration * stream.time_base * src_rate)
        elif container.duration:
            expected = int(container.duration / 1_000_000 * src_rate)
        in_limit = _limit_frames(src_rate, max_seconds)
        if expected and "mp4" in container.format.name:
            # MP4 durations are exact (edit list): cut the encoder's end padding (AAC).
            in_limit = expected if in_limit is None else min(in_limit, expected)
        if in_limit is not None:
            expected = min(expected, in_limit) if expected else in_limit
        sink = _Sink(src_rate, rate, expected, _limit_frames(rate, max_seconds))
        pending: list[np.ndarray] = []  # (channels, n) frames, all with the same channels
        pending_n = 0
        read = 0

        def flush() -> None:
            block = pending[0] if len(pending) == 1 else np.concatenate(pending, axis=1)
            if in_limit is not None and read > in_limit:
                block = block[:, : block.shape[1] - (read - in_limit)]
            sink.add(_downmix_rows(block))
            pending.clear()

        for frame in _frames(container, stream):
            if pending and frame.shape[0] != pending[0].shape[0]:  # layout changed mid-stream
                flush()
                pending_n = 0
            pending.append(frame)
            pending_n += frame.shape[1]
            read += frame.shape[1]
            done = sink.full or (in_limit is not None and read >= in_limit)
            if pending_n >= BLOCK_FRAMES or done:
                flush()
                pending_n = 0
            if done:
                break
        if pending:
            flush()
        return _result(sink.finish(), rate, src_rate, channels or 1)


def _frames(container, stream) -> Iterator[np.ndarray]:
    """Decoded frames as float32 ``(channels, n)``, skipping packets FFmpeg cannot decode."""
    import av

    for packet in container.demux(stream):
        try:
            frames = packet.decode()
        except av.error.FFmpegError:
            continue
        for frame in frames:
            if frame.samples:
                yield _frame_to_float(frame)


def decode_or_error(
    path: str | os.PathLike[str], sample_rate: int
) -> tuple[DecodedAudio | None, str | None, float]:
    """For worker processes: (audio, None, seconds) or (None, one-line error, seconds).

    Lives here, torch-free, so that a spawned decoding worker imports numpy and the decoders
    only, not the model.
    """
    started = time.perf_counter()
    try:
        audio = decode_audio(path, sample_rate)
    except AudioDecodeError as error:
        return None, str(error), time.perf_counter() - started
    except Exception as error:  # a decoder bug must cost one track, not the run
        message = f"{Path(path).name}: {type(error).__name__}: {error}"
        return None, message, time.perf_counter() - started
    return audio, None, time.perf_counter() - started
