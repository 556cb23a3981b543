"""The MTG-Jamendo taggers of Won et al. 2020 (musicnn, FCN-5, CRNN; MIT licence) in PyTorch.

Ported from "Evaluation of CNN-based automatic music tagging models" (Won, Ferraro, Bogdanov,
Serra, SMC 2020; code and weights by the Music Technology Group, Universitat Pompeu Fabra). The
weights were converted once, offline, by :mod:`tools.port_sota_taggers` and ship as safetensors
in ``lgfn_model/weights/jamendo_musicnn/``, ``jamendo_fcn/`` and ``jamendo_crnn/`` with their
licence; this module is the project's own code and never unpickles anything.

All three take 16 kHz mono waveforms ``(batch, samples)`` and share upstream's front end
(:class:`MelFrontEnd`): power STFT (n_fft 512, hop 256, periodic Hann, centred, reflect-padded),
96 mel bands through the filterbank *saved with the weights*, ``10 * log10(max(x, 1e-10))``, a
one-channel batch norm (:mod:`.jamendo_input`). The shipped weights of all three have 96 bands
(the FCN's and CRNN's saved filterbanks are 257 x 96, upstream's default, though the porting
notes said 128).

- :class:`JamendoMusicnn` (Pons et al.'s musicnn as upstream rewrote it, 64-channel back end):
  trained on 3 s crops (48,000 samples); any length of at least a few frames works, since the
  back end pools over time. ``embedding``: the 200-d hidden layer (dense -> batch norm -> ReLU).
- :class:`JamendoFCN` (Choi et al.'s FCN-5): trained on 29 s crops (464,000 samples); its five
  poolings must shrink the input to one time step, which holds from about 20.5 s to 40.9 s.
  ``embedding``: the 64 values left after the last convolution block.
- :class:`JamendoCRNN` (Choi et al.'s CRNN): four conv blocks, then a 2-layer GRU over time;
  trained on 29 s crops, works on any length of about 1.5 s or more. ``embedding``: the GRU's
  32-d output at the last time step.

All return the 50 tag probabilities in :data:`JAMENDO_TAGS` order (upstream
``training/eval.py``). Upstream tags a whole track by averaging its outputs over 16 evenly
spaced crops; :func:`crops` cuts them.
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from lgfn_model.pretrained.jamendo_input import (
    HOP_LENGTH,
    N_FFT,
    N_MELS,
    SAMPLE_RATE,
    MelFrontEnd,
    crops,
)

__all__ = [
    "CRNN_INPUT_LENGTH",
    "FCN_INPUT_LENGTH",
    "HOP_LENGTH",
    "JAMENDO_TAGS",
    "MUSICNN_INPUT_LENGTH",
    "N_FFT",
    "SAMPLE_RATE",
    "JamendoCRNN",
    "JamendoFCN",
    "JamendoMusicnn",
    "MelFrontEnd",
    "crops",
    "jamendo_weights_dir",
    "load_jamendo_tagger",
]

MUSICNN_INPUT_LENGTH = 3 * SAMPLE_RATE  # upstream's 48,000-sample crops
FCN_INPUT_LENGTH = 29 * SAMPLE_RATE  # upstream's 464,000-sample crops
CRNN_INPUT_LENGTH = 29 * SAMPLE_RATE

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
MODELS = ("musicnn", "fcn", "crnn")

# The 50 outputs of the Jamendo models, in order (upstream training/eval.py, MTG-Jamendo top 50).
JAMENDO_TAGS: tuple[str, ...] = (
    "genre---downtempo", "genre---ambient", "genre---rock", "instrument---synthesizer",
    "genre---atmospheric", "genre---indie", "instrument---electricpiano", "genre---newage",
    "instrument---strings", "instrument---drums", "instrument---drummachine", "genre---techno",
    "instrument---guitar", "genre---alternative", "genre---easylistening",
    "genre---instrumentalpop", "genre---chillout", "genre---metal", "mood/theme---happy",
    "genre---lounge", "genre---reggae", "genre---popfolk", "genre---orchestral",
    "instrument---acousticguitar", "genre---poprock", "instrument---piano", "genre---trance",
    "genre---dance", "instrument---electricguitar", "genre---soundtrack", "genre---house",
    "genre---hiphop", "genre---classical", "mood/theme---energetic", "genre---electronic",
    "genre---world", "genre---experimental", "instrument---violin", "genre---folk",
    "mood/theme---emotional", "instrument---voice", "instrument---keyboard", "genre---pop",
    "instrument---bass", "instrument---computer", "mood/theme---film", "genre---triphop",
    "genre---jazz", "genre---funk", "mood/theme---relaxing",
)  # fmt: skip


def _as_batch(waveform: torch.Tensor) -> torch.Tensor:
    return waveform.unsqueeze(0) if waveform.dim() == 1 else waveform


class _Tagger(nn.Module):
    """What the taggers share: the front end, the tag read-out and the convenience calls."""

    embedding_dim: int
    input_length: int

    def __init__(self, n_tags: int, n_mels: int):
        super().__init__()
        self.n_tags = n_tags
        self.front = MelFrontEnd(n_mels)

    def features(self, mel: torch.Tensor) -> torch.Tensor:
        """``(B, 1, n_mels, frames)`` -> ``(B, embedding_dim)``; defined by each model."""
        raise NotImplementedError

    def forward(self, waveform_16k: torch.Tensor) -> dict[str, torch.Tensor]:
        """``(B, samples)`` or ``(samples,)`` -> ``tags`` and ``logits`` ``(B, 50)`` and
        ``embedding`` ``(B, embedding_dim)``, from one pass."""
        embedding = self.features(self.front(_as_batch(waveform_16k)))
        logits = self.classifier(self.dropout(embedding))
        return {"tags": torch.sigmoid(logits), "logits": logits, "embedding": embedding}

    def tags(self, waveform_16k: torch.Tensor) -> torch.Tensor:
        """``(B, 50)`` sigmoid probabilities in :data:`JAMENDO_TAGS` order."""
        return self(waveform_16k)["tags"]

    def embedding(self, waveform_16k: torch.Tensor) -> torch.Tensor:
        """The layer before the last dense layer, ``(B, embedding_dim)``: a frozen feature."""
        return self(waveform_16k)["embedding"]


# --------------------------------------------------------------------------- musicnn


class _Timbral(nn.Module):
    """A vertical filter (``height`` bands x 7 frames) -> BN -> ReLU -> max over the bands:
    timbre-like shapes at any pitch. ``(B, 1, F, T) -> (B, C, T)``."""

    def __init__(self, filters: int, height: int):
        super().__init__()
        self.conv = nn.Conv2d(1, filters, (height, 7), padding=(0, 3))
        self.bn = nn.BatchNorm2d(filters)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x))).amax(dim=2)


class _Temporal(nn.Module):
    """Mean over the bands, then a long 1-D filter over time -> BN -> ReLU: rhythm and tempo
    patterns of the whole spectrum. ``(B, 1, F, T) -> (B, C, T)``."""

    def __init__(self, filters: int, length: int):
        super().__init__()
        self.conv = nn.Conv1d(1, filters, length, padding=length // 2)
        self.bn = nn.BatchNorm1d(filters)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x.mean(dim=2))))


class _Conv1dBlock(nn.Module):
    """conv over time (kernel 7, 'same') -> BN -> ReLU; ``(B, C, T)``. Note the order: upstream
    normalises before the ReLU, unlike the TF musicnn (:mod:`lgfn_model.pretrained.musicnn`)."""

    def __init__(self, in_channels: int, channels: int):
        super().__init__()
        self.conv = nn.Conv1d(in_channels, channels, 7, padding=3)
        self.bn = nn.BatchNorm1d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


class JamendoMusicnn(_Tagger):
    """musicnn as Won et al. rewrote it, ``dataset='jamendo'`` (64-channel back end).

    front end: timbral filters 67x7 and 38x7 (204 each; 0.7 and 0.4 of 96 bands), temporal
    filters 129, 65, 33 frames long (51 each) -> ``(B, 561, T)``; mid end: three 1-D conv
    blocks of 64, the 2nd and 3rd residual, all four outputs concatenated ``(B, 753, T)``;
    back end: max and mean over time (all maxima, then all means: 1506), dense 200 -> BN ->
    ReLU (= ``embedding``), dropout 0.5, dense 50, sigmoid.
    """

    input_length = MUSICNN_INPUT_LENGTH

    def __init__(self, n_tags: int = 50, n_mels: int = N_MELS, backend_channels: int = 64):
        super().__init__(n_tags, n_mels)
        self.timbral = nn.ModuleList(_Timbral(204, int(share * n_mels)) for share in (0.7, 0.4))
        self.temporal = nn.ModuleList(_Temporal(51, length) for length in (129, 65, 33))
        front_channels = 2 * 204 + 3 * 51
        self.midend = nn.ModuleList(
            [
                _Conv1dBlock(front_channels, backend_channels),
                _Conv1dBlock(backend_channels, backend_channels),
                _Conv1dBlock(backend_channels, backend_channels),
            ]
        )
        pooled = 2 * (front_channels + 3 * backend_channels)
        self.embedding_dim = 200
        self.dense = nn.Linear(pooled, self.embedding_dim)
        self.dense_bn = nn.BatchNorm1d(self.embedding_dim)
        self.dropout = nn.Dropout(0.5)
        self.classifier = nn.Linear(self.embedding_dim, n_tags)

    def features(self, mel: torch.Tensor) -> torch.Tensor:
        front = torch.cat([block(mel) for block in [*self.timbral, *self.temporal]], dim=1)
        res1 = self.midend[0](front)
        res2 = self.midend[1](res1) + res1
        res3 = self.midend[2](res2) + res2
        out = torch.cat([front, res1, res2, res3], dim=1)  # (B, 753, T)
        pooled = torch.cat([out.amax(dim=2), out.mean(dim=2)], dim=1)
        return F.relu(self.dense_bn(self.dense(pooled)))


# --------------------------------------------------------------------------- FCN


class _Conv2dBlock(nn.Module):
    """3x3 conv ('same') -> BN -> ReLU -> max pooling; ``(B, C, F, T)``."""

    def __init__(self, in_channels: int, channels: int, pooling: tuple[int, int]):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, channels, 3, padding=1)
        self.bn = nn.BatchNorm2d(channels)
        self.pooling = pooling

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool2d(F.relu(self.bn(self.conv(x))), self.pooling)


# (out channels, (frequency, time) pooling) of FCN-5: 96 bands and 29 s down to 1 x 1.
FCN_BLOCKS: tuple[tuple[int, tuple[int, int]], ...] = (
    (64, (2, 4)),
    (128, (2, 4)),
    (128, (2, 4)),
    (128, (3, 5)),
    (64, (4, 4)),
)


class JamendoFCN(_Tagger):
    """FCN-5 (Choi et al. 2016): five conv blocks pool the mel image to ``(B, 64, 1, 1)``, which
    is the ``embedding``; dropout 0.5, dense 50, sigmoid."""

    input_length = FCN_INPUT_LENGTH

    def __init__(self, n_tags: int = 50, n_mels: int = N_MELS):
        super().__init__(n_tags, n_mels)
        blocks, channels = [], 1
        for out, pooling in FCN_BLOCKS:
            blocks.append(_Conv2dBlock(channels, out, pooling))
            channels = out
        self.blocks = nn.Sequential(*blocks)
        self.embedding_dim = channels
        self.dropout = nn.Dropout(0.5)
        self.classifier = nn.Linear(channels, n_tags)

    def features(self, mel: torch.Tensor) -> torch.Tensor:
        pooled = list(mel.shape[2:])
        for _, pooling in FCN_BLOCKS:
            pooled = [size // pool for size, pool in zip(pooled, pooling, strict=True)]
        if pooled != [1, 1]:
            # Upstream flattens whatever is left, which only fits the dense layer at 1 x 1.
            raise ValueError(
                f"FCN input pools to {tuple(pooled)}, not (1, 1): give it about 20.5-40.9 s"
                f" ({self.input_length} samples, 29 s, is what it was trained on)"
            )
        return self.blocks(mel).flatten(1)


# --------------------------------------------------------------------------- CRNN

# (out channels, (frequency, time) pooling) of the CRNN's convolutions: 96 bands down to 1.
CRNN_BLOCKS: tuple[tuple[int, tuple[int, int]], ...] = (
    (64, (2, 2)),
    (128, (3, 3)),
    (128, (4, 4)),
    (128, (4, 4)),
)


class JamendoCRNN(_Tagger):
    """CRNN (Choi et al. 2017): four conv blocks take the bands to one row ``(B, 128, 1, T')``
    (T' = 18 for 29 s), a 2-layer GRU (32 units) summarises time, and its output at the last
    step is the ``embedding``; dropout 0.5, dense 50, sigmoid."""

    input_length = CRNN_INPUT_LENGTH

    def __init__(self, n_tags: int = 50, n_mels: int = N_MELS):
        super().__init__(n_tags, n_mels)
        blocks, channels = [], 1
        for out, pooling in CRNN_BLOCKS:
            blocks.append(_Conv2dBlock(channels, out, pooling))
            channels = out
        self.blocks = nn.Sequential(*blocks)
        self.gru = nn.GRU(channels, 32, num_layers=2, batch_first=True)
        self.embedding_dim = 32
        self.dropout = nn.Dropout(0.5)
        self.classifier = nn.Linear(self.embedding_dim, n_tags)

    def features(self, mel: torch.Tensor) -> torch.Tensor:
        bands, frames = mel.shape[2:]
        for _, (pool_f, pool_t) in CRNN_BLOCKS:
            bands, frames = bands // pool_f, frames // pool_t
        if bands != 1 or frames < 1:
            raise ValueError(
                f"CRNN input pools to ({bands}, {frames}) bands x frames, not (1, >= 1):"
                " it needs 96 bands and at least 96 frames (about 1.5 s)"
            )
        out = self.blocks(mel).squeeze(2).transpose(1, 2)  # (B, T', 128)
        return self.gru(out)[0][:, -1]


# --------------------------------------------------------------------------- use


def jamendo_weights_dir(model: str) -> Path:
    """The folder with a tagger's ``model.safetensors``, ``config.json`` and MIT licence."""
    if model not in MODELS:
        raise ValueError(f"unknown Jamendo tagger {model!r}: one of {MODELS}")
    return Path(str(resources.files("lgfn_model") / "weights" / f"jamendo_{model}"))


def load_jamendo_tagger(
    model: str,
    device: str | torch.device | None = None,
    path: str | Path | None = None,
    check: bool = True,
) -> JamendoMusicnn | JamendoFCN | JamendoCRNN:
    """``model`` (``"musicnn"``, ``"fcn"``, ``"crnn"``) with its shipped weights, in eval mode.

    ``path``: a folder holding ``model.safetensors`` and ``config.json`` (default: the
    package's own). ``check`` verifies the weights' sha256 against the config. Never unpickles.
    """
    from safetensors.torch import load_file

    folder = Path(path) if path is not None else jamendo_weights_dir(model)
    config = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
    if config.get("architecture", {}).get("kind") != model:
        raise ValueError(f"{folder}: config is for {config.get('architecture')}, not {model!r}")
    weights = folder / WEIGHTS_FILE
    expected = config.get("weights_sha256")
    if check and expected:
        digest = hashlib.sha256(weights.read_bytes()).hexdigest()
        if digest != expected:
            raise ValueError(f"{weights}: sha256 {digest} does not match config {expected}")
    n_tags, n_mels = len(config["tags"]), config["architecture"]["n_mels"]
    kinds = {"musicnn": JamendoMusicnn, "fcn": JamendoFCN, "crnn": JamendoCRNN}
    tagger = kinds[model](n_tags, n_mels)
    tagger.load_state_dict(load_file(str(weights)), strict=True)
    tagger.eval()
    if device is not None:
        tagger.to(device)
    return tagger
