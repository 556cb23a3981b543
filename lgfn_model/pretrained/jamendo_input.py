"""The front end and the cropping shared by the MTG-Jamendo taggers (:mod:`.jamendo`).

Apart so that the models' module stays short; what it computes is described on
:class:`MelFrontEnd`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["HOP_LENGTH", "N_FFT", "N_MELS", "SAMPLE_RATE", "MelFrontEnd", "crops"]

SAMPLE_RATE = 16_000
N_FFT = 512
HOP_LENGTH = 256  # torchaudio's default, win_length // 2
N_MELS = 96


# --------------------------------------------------------------------------- front end


class MelFrontEnd(nn.Module):
    """``(B, samples)`` 16 kHz -> ``(B, 1, n_mels, frames)`` batch-normed dB mel power.

    Computes what upstream's torchaudio ``MelSpectrogram -> AmplitudeToDB -> BatchNorm2d(1)``
    computed, without torchaudio's modules: the filterbank is a buffer loaded from the shipped
    weights (``mel_fb``), because that is the one the models were trained with; a freshly
    computed torchaudio filterbank differs from it by up to ~1.3e-5 (tools/port_sota_taggers
    measures it). ``AmplitudeToDB`` with its defaults (power, ref 1, no ``top_db``) is a plain
    ``10 * log10(max(x, 1e-10))``, so nothing depends on the rest of the batch.
    """

    def __init__(self, n_mels: int = N_MELS, n_fft: int = N_FFT, hop_length: int = HOP_LENGTH):
        super().__init__()
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.register_buffer("mel_fb", torch.zeros(n_fft // 2 + 1, n_mels))
        # Not saved: torch.hann_window is exactly the window upstream saved (the port checks).
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        self.bn = nn.BatchNorm2d(1)

    @property
    def n_mels(self) -> int:
        return self.mel_fb.shape[1]

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        if waveform.dim() != 2:
            raise ValueError(f"expected (batch, samples), got {tuple(waveform.shape)}")
        # STFT in float32 even under autocast: half-precision FFTs lose the quiet bands.
        with torch.autocast(device_type=waveform.device.type, enabled=False):
            stft = torch.stft(
                waveform.float(),
                n_fft=self.n_fft,
                hop_length=self.hop_length,
                window=self.window,
                center=True,
                pad_mode="reflect",
                return_complex=True,
            )
            # |X|^2 as re^2 + im^2: torchaudio's abs-then-square rounds the same to ~1e-7 and
            # costs a square root per bin.
            power = stft.real.square() + stft.imag.square()  # (B, freqs, frames)
            mel = torch.matmul(power.transpose(1, 2), self.mel_fb).transpose(1, 2)
            db = 10.0 * torch.log10(mel.clamp(min=1e-10))
        return self.bn(db.unsqueeze(1))


# --------------------------------------------------------------------------- cropping


def crops(waveform_16k: torch.Tensor, length: int, count: int = 16) -> torch.Tensor:
    """``count`` evenly spaced crops of ``length`` samples from a 1-D track, ``(count, length)``,
    as upstream's evaluation tags a track (then averages the outputs). A track shorter than
    one crop is zero-padded at the end (upstream never met one)."""
    if waveform_16k.dim() != 1:
        raise ValueError(f"expected one mono track (samples,), got {tuple(waveform_16k.shape)}")
    if waveform_16k.shape[0] < length:
        return F.pad(waveform_16k, (0, length - waveform_16k.shape[0]))[None]
    hop = (waveform_16k.shape[0] - length) // count
    return torch.stack([waveform_16k[i * hop : i * hop + length] for i in range(count)])
