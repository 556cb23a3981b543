"""A listener's own mood head: stored beside their library, applied to stored embeddings.

A track's mood is ``softmax(W e + b)`` of its embedding ``e`` (``TrackPrediction.embedding``,
the mean of the vectors the mood head reads), so a head fitted to a listener's hand-set moods
(``lgfn_model.training.adaptation``) re-tags a track from its stored embedding without
decoding its audio again. This module holds that head: reading the shipped one out of a
checkpoint, saving and loading a listener's one (safetensors + JSON), and its version string.

numpy and safetensors only: no torch, so re-tagging a library costs no model load.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lgfn_model.runtime.checkpoint_files import WEIGHTS_FILE, CheckpointError, resolve_checkpoint

HEAD_WEIGHTS = "personal-head.safetensors"
HEAD_INFO = "personal-head.json"
FORMAT = "lgfn-personal-head"
FORMAT_VERSION = 1
MARK = "+you-"
"""Between the base model's version and the head's tag: ``lgfn-20261123c+you-3f9c``."""
MAX_INFO_BYTES = 1 << 20


class PersonalHeadError(Exception):
    """A stored head that cannot be used; the message is one line naming the file."""


@dataclass(frozen=True)
class Head:
    """A mood head: logits = embeddings @ weight.T + bias."""

    weight: np.ndarray  # (K, D)
    bias: np.ndarray  # (K,)

    @property
    def dim(self) -> int:
        return int(self.weight.shape[1])

    def probabilities(self, embeddings: Any) -> np.ndarray:
        logits = np.asarray(embeddings, dtype=np.float64) @ self.weight.T + self.bias
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=1, keepdims=True)

    def predict(self, embeddings: Any) -> np.ndarray:
        return self.probabilities(embeddings).argmax(axis=1)


def read_mood_head(checkpoint: str | Path | None) -> Head:
    """The mood head of a checkpoint (a folder, a shipped model's name, None: the default),
    read from its weights file without building the model: the head of the track embedding.
    A model with a lyrics read-out keeps its weighted mood votes at the embedding's end
    (``LGFNConfig.embedding_dim``), which this head adds to the mood head's logits as they
    are (an identity block), so it gives the model's own probabilities."""
    from safetensors import SafetensorError, safe_open

    path = resolve_checkpoint(checkpoint) / WEIGHTS_FILE
    try:
        with safe_open(str(path), framework="np") as weights:
            weight = weights.get_tensor("mood_head.weight")
            bias = weights.get_tensor("mood_head.bias")
            names = list(weights.keys())  # a safe_open handle has keys(), no __contains__
            voting = "lyrics_readout.mood_bias" in names
    except (OSError, SafetensorError, KeyError) as error:
        reason = " ".join(str(error).split()) or type(error).__name__
        raise CheckpointError(f"{path}: cannot read the mood head ({reason})") from None
    weight = weight.astype(np.float64)
    if voting:
        weight = np.concatenate([weight, np.eye(weight.shape[0])], axis=1)
    return Head(weight, bias.astype(np.float64))


def base_version(version: str) -> str:
    """The model a (possibly personal) version string was built on."""
    return version.split(MARK, 1)[0]


@dataclass(frozen=True)
class PersonalHead:
    """A head fitted to one listener's moods, on the embeddings of the model ``base``."""

    base: str
    """The version of the model whose embeddings it reads (``emotion_model`` before it)."""
    labels: tuple[str, ...]
    head: Head
    info: Mapping[str, Any] = field(default_factory=dict)
    """What the fit found (labels used, strength, cross-validated estimate): shown, not used."""

    @property
    def tag(self) -> str:
        """Four hex digits of the weights' hash: a new fit gets a new version."""
        digest = hashlib.sha256()
        digest.update(self.base.encode())
        digest.update(np.ascontiguousarray(self.head.weight, dtype="<f4").tobytes())
        digest.update(np.ascontiguousarray(self.head.bias, dtype="<f4").tobytes())
        return digest.hexdigest()[:4]

    @property
    def version(self) -> str:
        return f"{self.base}{MARK}{self.tag}"

    def probabilities(self, embedding: Sequence[float]) -> dict[str, float]:
        values = self.head.probabilities([list(embedding)])[0]
        return {label: float(p) for label, p in zip(self.labels, values, strict=True)}


def save_personal_head(folder: str | Path, personal: PersonalHead) -> None:
    """Write the head into ``folder`` (made if missing): weights first, then the JSON that
    names their hash, each by a rename, so a crash leaves the old head or the new one."""
    from safetensors.numpy import save

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    weights = save(
        {
            "weight": np.ascontiguousarray(personal.head.weight, dtype=np.float32),
            "bias": np.ascontiguousarray(personal.head.bias, dtype=np.float32),
        }
    )
    document = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "base": personal.base,
        "labels": list(personal.labels),
        "weights_sha256": hashlib.sha256(weights).hexdigest(),
        "info": dict(personal.info),
    }
    _replace(folder / HEAD_WEIGHTS, weights)
    _replace(folder / HEAD_INFO, (json.dumps(document, indent=2) + "\n").encode())


def remove_personal_head(folder: str | Path) -> bool:
    """Delete a stored head (the JSON first: without it the weights are never read); True
    when there was one."""
    found = False
    for name in (HEAD_INFO, HEAD_WEIGHTS):
        try:
            (Path(folder) / name).unlink()
            found = True
        except FileNotFoundError:
            pass
    return found


def load_personal_head(folder: str | Path) -> PersonalHead | None:
    """The head stored in ``folder``; None when there is none. Raises PersonalHeadError for
    one that cannot be used (damaged, or written by another format)."""
    info_path = Path(folder) / HEAD_INFO
    weights_path = Path(folder) / HEAD_WEIGHTS
    try:
        if info_path.stat().st_size > MAX_INFO_BYTES:
            raise PersonalHeadError(f"{info_path}: too large to be a head's description")
        document = json.loads(info_path.read_text(encoding="utf-8"))
        weights = weights_path.read_bytes()
    except FileNotFoundError as error:
        if Path(error.filename or "") == info_path:
            return None
        raise PersonalHeadError(f"{weights_path}: missing (run --learn again)") from None
    except (OSError, UnicodeDecodeError, ValueError) as error:
        reason = " ".join(str(error).split()) or type(error).__name__
        raise PersonalHeadError(f"{info_path}: cannot read ({reason})") from None
    return _parse(document, weights, info_path, weights_path)


def _parse(document: Any, weights: bytes, info_path: Path, weights_path: Path) -> PersonalHead:
    from safetensors import SafetensorError
    from safetensors.numpy import load

    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise PersonalHeadError(f"{info_path}: not a personal mood head")
    if document.get("format_version") != FORMAT_VERSION:
        raise PersonalHeadError(
            f"{info_path}: format version {document.get('format_version')!r}; this release "
            f"reads {FORMAT_VERSION} (run --learn again)"
        )
    if hashlib.sha256(weights).hexdigest() != document.get("weights_sha256"):
        raise PersonalHeadError(f"{weights_path}: does not match {info_path.name} (run --learn)")
    try:
        tensors = load(weights)
        weight = np.asarray(tensors["weight"], dtype=np.float64)
        bias = np.asarray(tensors["bias"], dtype=np.float64)
    except (SafetensorError, KeyError, ValueError) as error:
        raise PersonalHeadError(f"{weights_path}: cannot read ({error})") from None
    labels = document.get("labels")
    base = document.get("base")
    if (
        not isinstance(base, str)
        or not base
        or not isinstance(labels, list)
        or not all(isinstance(label, str) for label in labels)
        or weight.ndim != 2
        or weight.shape[0] != len(labels)
        or bias.shape != (len(labels),)
        or not np.isfinite(weight).all()
        or not np.isfinite(bias).all()
    ):
        raise PersonalHeadError(f"{info_path}: inconsistent head (run --learn again)")
    info = document.get("info")
    return PersonalHead(
        base, tuple(labels), Head(weight, bias), info if isinstance(info, dict) else {}
    )


def _replace(path: Path, data: bytes) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        with suppress(OSError):
            os.unlink(temporary)
        raise
