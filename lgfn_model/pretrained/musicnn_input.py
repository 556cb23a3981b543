"""musicnn's input pipeline in torch: 16 kHz mono, power STFT, 96 Slaney mel bands rounded to
float16 as musicnn does, ``log10(10000 * mel + 1)``, cut into 3-second patches of 187 frames
(see :mod:`lgfn_model.pretrained.musicnn` for the network)."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

SAMPLE_RATE = 16000
N_FFT = 512
HOP_LENGTH = 256
N_MELS = 96
N_FRAMES = 187  # 3 s: librosa.time_to_frames(3, sr=16000, hop_length=256) + 1


def _hz_to_mel_slaney(hz: np.ndarray) -> np.ndarray:
    f_sp = 200.0 / 3
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = math.log(6.4) / 27.0
    hz = np.asarray(hz, dtype=np.float64)
    mel = hz / f_sp
    log_part = hz >= min_log_hz
    mel[log_part] = min_log_mel + np.log(hz[log_part] / min_log_hz) / logstep
    return mel


def _mel_to_hz_slaney(mel: np.ndarray) -> np.ndarray:
    f_sp = 200.0 / 3
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = math.log(6.4) / 27.0
    mel = np.asarray(mel, dtype=np.float64)
    hz = f_sp * mel
    log_part = mel >= min_log_mel
    hz[log_part] = min_log_hz * np.exp(logstep * (mel[log_part] - min_log_mel))
    return hz


def mel_filterbank(
    sample_rate: int = SAMPLE_RATE, n_fft: int = N_FFT, n_mels: int = N_MELS
) -> np.ndarray:
    """``librosa.filters.mel`` with its defaults (Slaney scale and norm, 0 Hz to Nyquist).

    Computed in float64 and returned as float32, as librosa does: shape ``(n_mels, n_fft//2+1)``.
    """
    fft_freqs = np.linspace(0, sample_rate / 2, 1 + n_fft // 2)
    mel_edges = np.linspace(
        _hz_to_mel_slaney(np.array([0.0]))[0],
        _hz_to_mel_slaney(np.array([sample_rate / 2]))[0],
        n_mels + 2,
    )
    hz_edges = _mel_to_hz_slaney(mel_edges)
    fdiff = np.diff(hz_edges)
    ramps = hz_edges[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (hz_edges[2 : n_mels + 2] - hz_edges[:n_mels]))[:, None]
    return weights.astype(np.float32)


_FILTERBANKS: dict[tuple[torch.device, torch.dtype], torch.Tensor] = {}


def _filterbank(device: torch.device) -> torch.Tensor:
    key = (device, torch.float32)
    if key not in _FILTERBANKS:
        _FILTERBANKS[key] = torch.from_numpy(mel_filterbank()).to(device)
    return _FILTERBANKS[key]


def musicnn_log_mel(waveform: torch.Tensor | np.ndarray, fp16_round: bool = True) -> torch.Tensor:
    """musicnn's input: ``log10(10000 * mel + 1)`` of 16 kHz mono audio.

    ``waveform``: ``(n,)`` or ``(batch, n)`` float samples at 16 kHz (resample first).
    Returns float32 ``(frames, 96)`` or ``(batch, frames, 96)``, frames = ``1 + n // 256``.
    ``fp16_round`` rounds the mel power to float16 before the log, as musicnn's extractor does
    (``audio_rep.astype(np.float16)``); it changes values by at most ~0.0005.
    """
    x = torch.as_tensor(waveform, dtype=torch.float32)
    squeeze = x.dim() == 1
    if squeeze:
        x = x.unsqueeze(0)
    if x.dim() != 2:
        raise ValueError(f"waveform must be (n,) or (batch, n), got {tuple(x.shape)}")
    if x.shape[-1] <= N_FFT // 2:
        # reflect padding needs more samples than half a window
        x = F.pad(x, (0, N_FFT // 2 + 1 - x.shape[-1]))
    window = torch.hann_window(N_FFT, periodic=True, device=x.device, dtype=x.dtype)
    spec = torch.stft(
        x,
        n_fft=N_FFT,
        hop_length=HOP_LENGTH,
        window=window,
        center=True,
        pad_mode="reflect",
        return_complex=True,
    )
    power = spec.real.square() + spec.imag.square()  # (batch, 257, frames)
    mel = torch.matmul(_filterbank(x.device), power).transpose(-1, -2)  # (batch, frames, 96)
    if fp16_round:
        mel = mel.to(torch.float16).to(torch.float32)
    log_mel = torch.log10(10000.0 * mel + 1.0)
    return log_mel[0] if squeeze else log_mel


def musicnn_patches(
    log_mel: torch.Tensor, n_frames: int = N_FRAMES, hop: int | None = None
) -> torch.Tensor:
    """Cut ``(frames, 96)`` into ``(patches, n_frames, 96)`` like musicnn's ``batch_data``.

    Patches start every ``hop`` frames (default ``n_frames``: no overlap) and the remainder
    shorter than a patch is dropped, as musicnn does. A clip shorter than one patch is
    repeat-padded to one patch (musicnn's training ``pad_short: repeat-pad``).
    """
    if log_mel.dim() != 2:
        raise ValueError(f"log_mel must be (frames, bands), got {tuple(log_mel.shape)}")
    hop = n_frames if hop is None else hop
    if hop <= 0:
        raise ValueError("hop must be positive")
    frames = log_mel.shape[0]
    if frames == 0:
        raise ValueError("empty log-mel")
    if frames < n_frames:
        reps = -(-n_frames // frames)
        return log_mel.repeat(reps, 1)[:n_frames].unsqueeze(0)
    return log_mel.unfold(0, n_frames, hop).transpose(1, 2).contiguous()
