"""musicnn's MSD tagger (``MSD_musicnn``, Pons & Serra 2019, ISC licence) in PyTorch.

A port of ``musicnn==0.1.0`` (``musicnn/models.py::build_musicnn`` and ``extractor.py``); the
weights were converted from its TF1 checkpoint by :mod:`tools.port_musicnn` and ship
in ``lgfn_model/weights/musicnn_msd/`` (see docs/musicnn.md for the port and its verification).

Input pipeline (:func:`musicnn_log_mel`, :func:`musicnn_patches`): 16 kHz mono, power STFT
(n_fft 512, hop 256, periodic Hann, centred with reflect padding), 96 mel bands (librosa
defaults: Slaney mel scale and Slaney area norm, 0-8 kHz), rounded to float16 as musicnn does,
``log10(10000 * mel + 1)``, cut into patches of 187 frames (3 s).

Network (one patch ``(T=187, 96)``, time first as in the original):

- front end: batch norm of the input, then "musically motivated" convolutions, each
  conv -> ReLU -> batch norm -> max over all mel bands:
  timbral (vertical) filters 7x38 and 7x67 (204 each; time padded 3+3, frequency 'valid'),
  temporal (horizontal) filters 128x1, 64x1, 32x1 (51 each; 'same' in time).
  Concatenated: ``(T, 561)``.
- mid end: three 1-D convolutions over time (kernel 7, padded 3+3, 64 filters; conv -> ReLU ->
  batch norm), the second and third with residual connections; the front-end output and the
  three mid-end outputs are concatenated ("dense" connection): ``(T, 753)``.
- back end: max and mean over time (``max_pool``, ``mean_pool``: 753 each), interleaved into
  1506 values (max, mean per feature, as TF flattens ``(753, 2)``), batch norm, dropout 0.5,
  dense 200 + ReLU, batch norm (= ``penultimate``), dropout 0.5, dense 50 (``logits``),
  sigmoid (``tags``).

Every batch norm uses TF's default epsilon 1e-3. The model is built for inference (``eval()``);
fine-tuning works like any ``nn.Module`` (the dropouts and batch norms follow ``train()``).
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lgfn_model.pretrained.musicnn_input import (
    HOP_LENGTH,
    N_FFT,
    N_FRAMES,
    N_MELS,
    SAMPLE_RATE,
    mel_filterbank,
    musicnn_log_mel,
    musicnn_patches,
)

__all__ = [
    "BN_EPS",
    "HOP_LENGTH",
    "MSD_TAGS",
    "N_FFT",
    "N_FRAMES",
    "N_MELS",
    "SAMPLE_RATE",
    "MusicnnMSD",
    "load_musicnn_msd",
    "mel_filterbank",
    "musicnn_log_mel",
    "musicnn_patches",
    "weights_dir",
]

BN_EPS = 1e-3  # tf.compat.v1.layers.batch_normalization's default

# musicnn/configuration.py::MSD_LABELS, in output order.
MSD_TAGS: tuple[str, ...] = (
    "rock", "pop", "alternative", "indie", "electronic", "female vocalists", "dance", "00s",
    "alternative rock", "jazz", "beautiful", "metal", "chillout", "male vocalists",
    "classic rock", "soul", "indie rock", "Mellow", "electronica", "80s", "folk", "90s", "chill",
    "instrumental", "punk", "oldies", "blues", "hard rock", "ambient", "acoustic", "experimental",
    "female vocalist", "guitar", "Hip-Hop", "70s", "party", "country", "easy listening", "sexy",
    "catchy", "funk", "electro", "heavy metal", "Progressive rock", "60s", "rnb", "indie pop",
    "sad", "House", "happy",
)  # fmt: skip

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"


# --------------------------------------------------------------------------- the network


class _FrontEndBlock(nn.Module):
    """conv2d -> ReLU -> batch norm -> max over all mel bands; ``(B, 1, T, F) -> (B, T, C)``.

    In eval mode the same function is computed in a cheaper order (:meth:`_reduced`): the
    batch norm is then a fixed per-channel ``scale * v + shift`` and ReLU is monotonic, so the
    max over the bands can be taken of the raw convolution first (of its negation for channels
    whose scale is negative, where the max becomes a min), and ReLU and batch norm run on a
    tensor ``F'`` times smaller. The convolution itself runs channels-last with the bands a
    filter spans unfolded into input channels, the layout oneDNN is fast at (the original
    single-input-channel conv2d is not). ``compute_dtype`` bfloat16 runs that convolution in
    bf16 (AMX on recent Intel CPUs, tensor cores on GPUs) and everything after it in float32.
    """

    def __init__(self, filters: int, kernel: tuple[int, int], time_pad: tuple[int, int]):
        super().__init__()
        self.time_pad = time_pad
        self.conv = nn.Conv2d(1, filters, kernel_size=kernel)
        self.bn = nn.BatchNorm2d(filters, eps=BN_EPS)
        self.compute_dtype = torch.float32
        self.band_chunk = 16  # output bands per convolution in eval mode (see _reduced_front_end)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, (0, 0, *self.time_pad))
        if not self.training and not torch.is_grad_enabled():
            return self._reduced(x)
        x = self.bn(F.relu(self.conv(x)))  # (B, C, T, F')
        return x.amax(dim=3).transpose(1, 2)

    def _reduced(self, x: torch.Tensor) -> torch.Tensor:
        """The eval-mode forward on ``x`` ``(B, 1, T + pad, F)`` (already padded in time)."""
        scale, shift = _frozen_affine(self.bn)
        return _reduced_front_end(
            x,
            self.conv.weight[:, 0],
            self.conv.bias,
            scale,
            shift,
            self.compute_dtype,
            self.band_chunk,
        )


def _frozen_affine(bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch norm with frozen statistics as ``scale * v + shift`` per channel."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return scale, bn.bias - bn.running_mean * scale


def _reduced_front_end(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    scale: torch.Tensor,
    shift: torch.Tensor,
    dtype: torch.dtype,
    band_chunk: int,
) -> torch.Tensor:
    """conv (``weight`` (C, kt, kf)) -> ReLU -> frozen batch norm (``scale * v + shift``) ->
    max over the bands, in the cheap order of :class:`_FrontEndBlock`, on ``x``
    (B, 1, T + pad, F) -> (B, T, C).

    The output bands are convolved ``band_chunk`` at a time and folded into a running max:
    the convolution's output of one chunk (~1 MB per patch) stays in the CPU's caches while
    it is reduced, where the whole (B, F', T, C) tensor would not (measured 10-20 % faster
    per block on this project's CPU)."""
    kernel_t, kernel_f = weight.shape[1:]
    sign = torch.where(scale < 0, -1.0, 1.0).to(scale)
    weight = weight * sign[:, None, None]  # (C, kt, kf)
    batch, _, padded_t, bands = x.shape
    out_t, out_f = padded_t - kernel_t + 1, bands - kernel_f + 1
    filters = weight.permute(0, 2, 1).unsqueeze(2).to(dtype)  # (C, kf, 1, kt)
    filters = filters.contiguous(memory_format=torch.channels_last)
    # (B, F', kf, T + pad): each output band's input bands as channels.
    unfolded = x[:, 0].to(dtype).unfold(2, kernel_f, 1).permute(0, 2, 3, 1)
    best: torch.Tensor | None = None
    for first in range(0, out_f, band_chunk):
        part = unfolded[:, first : first + band_chunk]
        n = part.shape[1]
        columns = part.reshape(batch * n, kernel_f, 1, padded_t)
        columns = columns.contiguous(memory_format=torch.channels_last)
        z = F.conv2d(columns, filters)  # (B * n, C, 1, T), stored as (B * n, T, C)
        z = z.permute(0, 2, 3, 1).reshape(batch, n, out_t, -1).amax(dim=1)
        best = z if best is None else torch.maximum(best, z, out=best)
    assert best is not None
    z = best.float() * sign + bias
    return F.relu(z) * scale + shift  # (B, T, C)


class _MidEndBlock(nn.Module):
    """1-D conv over time (kernel 7, padded 3+3) -> ReLU -> batch norm; ``(B, C, T)``."""

    def __init__(self, in_channels: int, filters: int):
        super().__init__()
        self.conv = nn.Conv1d(in_channels, filters, kernel_size=7, padding=3)
        self.bn = nn.BatchNorm1d(filters, eps=BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(F.relu(self.conv(x)))


def _same_pad(kernel: int) -> tuple[int, int]:
    """TF's 'same' padding for stride 1: the odd extra row goes after."""
    total = kernel - 1
    return total // 2, total - total // 2


class MusicnnMSD(nn.Module):
    """``MSD_musicnn``: the 50-tag Million Song Dataset tagger of musicnn.

    ``forward(log_mel_patches)`` takes ``(B, T, 96)`` (T = 187 for the trained 3 s patches; other
    lengths work, as in musicnn) and returns a dict of tensors:

    - ``tags`` ``(B, 50)``: tag probabilities (sigmoid), in :data:`MSD_TAGS` order
    - ``logits`` ``(B, 50)``
    - ``penultimate`` ``(B, 200)``: the last hidden layer (after ReLU and batch norm)
    - ``max_pool``, ``mean_pool`` ``(B, 753)``: temporal max / mean of the mid-end features
    - ``timbral`` ``(B, T, 408)``, ``temporal`` ``(B, T, 153)``: front-end features
    - ``cnn1``, ``cnn2``, ``cnn3`` ``(B, T, 64)``: mid-end features (after the residual sums)

    Names and values are those of musicnn's ``extractor(..., extract_features=True)``.
    """

    def __init__(
        self,
        n_tags: int = 50,
        n_mels: int = N_MELS,
        frontend_scale: float = 1.6,
        midend_filters: int = 64,
        backend_units: int = 200,
    ):
        super().__init__()
        timbral_filters = int(frontend_scale * 128)
        temporal_filters = int(frontend_scale * 32)
        self.n_mels = n_mels
        self.input_bn = nn.BatchNorm2d(1, eps=BN_EPS)
        self.timbral = nn.ModuleList(
            _FrontEndBlock(timbral_filters, (7, int(share * n_mels)), (3, 3))
            for share in (0.4, 0.7)
        )
        self.temporal = nn.ModuleList(
            _FrontEndBlock(temporal_filters, (length, 1), _same_pad(length))
            for length in (128, 64, 32)
        )
        frontend_channels = 2 * timbral_filters + 3 * temporal_filters
        self.midend = nn.ModuleList(
            [
                _MidEndBlock(frontend_channels, midend_filters),
                _MidEndBlock(midend_filters, midend_filters),
                _MidEndBlock(midend_filters, midend_filters),
            ]
        )
        self.pooled_features = frontend_channels + 3 * midend_filters
        self.pool_bn = nn.BatchNorm1d(2 * self.pooled_features, eps=BN_EPS)
        self.dense = nn.Linear(2 * self.pooled_features, backend_units)
        self.dense_bn = nn.BatchNorm1d(backend_units, eps=BN_EPS)
        self.classifier = nn.Linear(backend_units, n_tags)
        self.dropout = nn.Dropout(0.5)

    def set_compute_dtype(self, dtype: torch.dtype) -> MusicnnMSD:
        """The dtype of the front end's convolutions in eval mode (float32 or bfloat16).

        The front end is nearly all of musicnn's cost; bfloat16 runs it on AMX units (recent
        Intel CPUs) or GPU tensor cores, several times faster, with features that differ from
        float32 by about 1 % (docs/performance.md measures what that does to predictions).
        """
        if dtype not in (torch.float32, torch.bfloat16):
            raise ValueError(f"musicnn computes in float32 or bfloat16, not {dtype}")
        for block in [*self.timbral, *self.temporal]:
            block.compute_dtype = dtype
        return self

    def _temporal_reduced(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The three temporal blocks (kernels 128, 64, 32 over time, one band wide) as one
        eval-mode convolution: the shorter kernels are zero-padded to the longest, aligned so
        each keeps its own 'same' padding. One pass over the input and one max over the bands
        instead of three (measured ~35 % faster than the three blocks; the zeros add no
        rounding, so it is exact)."""
        blocks = list(self.temporal)
        longest = max(block.conv.kernel_size[0] for block in blocks)
        pad_before = _same_pad(longest)[0]
        weight = x.new_zeros(sum(b.conv.out_channels for b in blocks), longest, 1)
        first = 0
        for block in blocks:
            length, filters = block.conv.kernel_size[0], block.conv.out_channels
            offset = pad_before - block.time_pad[0]
            weight[first : first + filters, offset : offset + length] = block.conv.weight[:, 0]
            first += filters
        affine = [_frozen_affine(b.bn) for b in blocks]
        scale, shift = (torch.cat(parts) for parts in zip(*affine, strict=True))
        bias = torch.cat([b.conv.bias for b in blocks])
        padded = F.pad(x, (0, 0, *_same_pad(longest)))
        out = _reduced_front_end(
            padded, weight, bias, scale, shift, blocks[0].compute_dtype, band_chunk=32
        )
        return list(out.split([b.conv.out_channels for b in blocks], dim=2))

    @property
    def embedding_dim(self) -> int:
        """Size of ``penultimate``."""
        return self.dense.out_features

    def forward(self, log_mel_patches: torch.Tensor) -> dict[str, torch.Tensor]:
        x = log_mel_patches
        if x.dim() != 3 or x.shape[-1] != self.n_mels:
            raise ValueError(f"expected (batch, frames, {self.n_mels}), got {tuple(x.shape)}")
        x = self.input_bn(x.unsqueeze(1))  # (B, 1, T, F): time is the conv "height"
        timbral = [block(x) for block in self.timbral]
        if not self.training and not torch.is_grad_enabled():
            temporal = self._temporal_reduced(x)
        else:
            temporal = [block(x) for block in self.temporal]
        front = torch.cat(timbral + temporal, dim=2)  # (B, T, 561)

        h = front.transpose(1, 2)  # (B, 561, T)
        cnn1 = self.midend[0](h)
        cnn2 = self.midend[1](cnn1) + cnn1
        cnn3 = self.midend[2](cnn2) + cnn2
        features = torch.cat([h, cnn1, cnn2, cnn3], dim=1)  # (B, 753, T)

        max_pool = features.amax(dim=2)
        mean_pool = features.mean(dim=2)
        pooled = torch.stack([max_pool, mean_pool], dim=2).flatten(1)  # max0, mean0, max1, ...
        pooled = self.dropout(self.pool_bn(pooled))
        penultimate = self.dense_bn(F.relu(self.dense(pooled)))
        logits = self.classifier(self.dropout(penultimate))
        return {
            "tags": torch.sigmoid(logits),
            "logits": logits,
            "penultimate": penultimate,
            "max_pool": max_pool,
            "mean_pool": mean_pool,
            "timbral": torch.cat(timbral, dim=2),
            "temporal": torch.cat(temporal, dim=2),
            "cnn1": cnn1.transpose(1, 2),
            "cnn2": cnn2.transpose(1, 2),
            "cnn3": cnn3.transpose(1, 2),
        }

    @torch.no_grad()
    def embed_waveform(
        self, waveform_16k: torch.Tensor | np.ndarray, hop: int | None = None
    ) -> dict[str, torch.Tensor]:
        """Run a whole 16 kHz mono clip as musicnn does: one output row per 187-frame patch."""
        device = next(self.parameters()).device
        log_mel = musicnn_log_mel(torch.as_tensor(waveform_16k, device=device))
        return self(musicnn_patches(log_mel, hop=hop))


# --------------------------------------------------------------------------- weights


def weights_dir() -> Path:
    """The folder with ``model.safetensors``, ``config.json`` and the ISC licence."""
    return Path(str(resources.files("lgfn_model") / "weights" / "musicnn_msd"))


def load_musicnn_msd(
    device: str | torch.device | None = None, path: str | Path | None = None, check: bool = True
) -> MusicnnMSD:
    """The ported MSD tagger with its shipped weights, in ``eval()`` mode.

    ``path``: a folder holding ``model.safetensors`` and ``config.json`` (default: the package's
    own). ``check`` verifies the weights' sha256 against the config. Never unpickles.
    """
    from safetensors.torch import load_file

    folder = Path(path) if path is not None else weights_dir()
    config = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
    weights = folder / WEIGHTS_FILE
    expected = config.get("weights_sha256")
    if check and expected:
        digest = hashlib.sha256(weights.read_bytes()).hexdigest()
        if digest != expected:
            raise ValueError(f"{weights}: sha256 {digest} does not match config {expected}")
    arch = config.get("architecture", {})
    model = MusicnnMSD(
        n_tags=len(config.get("tags", MSD_TAGS)),
        n_mels=arch.get("n_mels", N_MELS),
        frontend_scale=arch.get("frontend_scale", 1.6),
        midend_filters=arch.get("midend_filters", 64),
        backend_units=arch.get("backend_units", 200),
    )
    model.load_state_dict(load_file(str(weights)), strict=True)
    model.eval()
    if device is not None:
        model.to(device)
    return model
