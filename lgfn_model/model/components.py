"""LGFN building blocks: log-mel front end, mel ResNet, waveform CNN, AAL and DGFM.

Shapes in the docstrings use: W windows, S samples per window, M mel bands, F mel frames,
T audio frames per window after pooling, N lyric lines, D model width, E text width.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torchaudio
from torch import Tensor, nn
from torch.nn import functional as F  # noqa: N812

from lgfn_model.model.config import AudioConfig

if TYPE_CHECKING:
    from lgfn_model.pretrained.student import StudentConfig


class LogMel(nn.Module):
    """(W, S) waveform -> (W, 1, M, F) log-mel, computed on whatever device the model is on."""

    def __init__(self, audio: AudioConfig) -> None:
        super().__init__()
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=audio.sample_rate,
            n_fft=audio.n_fft,
            hop_length=audio.hop_length,
            n_mels=audio.n_mels,
            f_min=audio.f_min,
            f_max=audio.f_max,
            power=2.0,
        )

    def _power_mel(self, waveforms: Tensor) -> Tensor:
        """The MelSpectrogram's own result, with |X|^2 taken as re^2 + im^2: torchaudio's
        abs-then-square costs a square root per bin (a third of log-mel's time on the CPU)."""
        spec = self.mel.spectrogram
        stft = torch.stft(
            waveforms,
            n_fft=spec.n_fft,
            hop_length=spec.hop_length,
            win_length=spec.win_length,
            window=spec.window,
            center=spec.center,
            pad_mode=spec.pad_mode,
            normalized=False,
            onesided=True,
            return_complex=True,
        )
        return self.mel.mel_scale(stft.real.square() + stft.imag.square())

    def forward(self, waveforms: Tensor) -> Tensor:
        # STFT in float32 even under autocast: half-precision FFTs lose the quiet bands.
        with torch.autocast(device_type=waveforms.device.type, enabled=False):
            power = self._power_mel(waveforms.float())
        # Per-window normalisation of the dB scale makes the model indifferent to loudness
        # (files come at any gain) while keeping the spectral shape.
        log_mel = torch.log10(power + 1e-6)
        log_mel = log_mel - log_mel.mean(dim=(-2, -1), keepdim=True)
        return log_mel.unsqueeze(1)


class BasicBlock(nn.Module):
    """The ResNet-18 basic block: two 3x3 convs and a (projected) shortcut."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class MelResNet(nn.Module):
    """(W, 1, M, F) log-mel -> (W, T, D) audio frames.

    A compact ResNet (one basic block per stage): the stem and every later stage halve both
    axes; frequency is then averaged away and time is pooled to T frames.
    """

    def __init__(self, channels: tuple[int, ...], d_model: int, frames: int) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(1, channels[0], 3, 2, 1, bias=False),
            nn.BatchNorm2d(channels[0]),
            nn.ReLU(inplace=True),
        )
        stages = []
        in_channels = channels[0]
        for index, out_channels in enumerate(channels):
            stages.append(BasicBlock(in_channels, out_channels, 1 if index == 0 else 2))
            in_channels = out_channels
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool1d(frames)
        self.project = nn.Linear(in_channels, d_model)

    def forward(self, log_mel: Tensor) -> Tensor:
        x = self.stages(self.stem(log_mel))  # (W, C, M', F')
        x = x.mean(dim=2)  # (W, C, F')
        x = self.pool(x).transpose(1, 2)  # (W, T, C)
        return self.project(x)


class WaveformCNN(nn.Module):
    """(W, S) raw waveform -> (W, T, D): strided 1-D convs catch onsets and rhythm directly.

    Four strided layers bring 16 kHz down to about 16 frames per second before pooling to T.
    """

    def __init__(self, channels: tuple[int, ...], d_model: int, frames: int) -> None:
        super().__init__()
        kernels_strides = ((64, 16), (8, 4), (8, 4), (4, 4))
        layers: list[nn.Module] = []
        in_channels = 1
        for out_channels, (kernel, stride) in zip(channels, kernels_strides, strict=False):
            layers += [
                nn.Conv1d(
                    in_channels, out_channels, kernel, stride, padding=kernel // 2, bias=False
                ),
                nn.BatchNorm1d(out_channels),
                nn.ReLU(inplace=True),
            ]
            in_channels = out_channels
        self.layers = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool1d(frames)
        self.project = nn.Linear(in_channels, d_model)

    def forward(self, waveforms: Tensor) -> Tensor:
        # Loudness normalisation per window, for the same reason as in LogMel.
        x = waveforms.float()
        x = x / (x.pow(2).mean(dim=-1, keepdim=True).sqrt() + 1e-4)
        x = self.layers(x.unsqueeze(1))  # (W, C, S')
        return self.project(self.pool(x).transpose(1, 2))


class AttentionalAlignment(nn.Module):
    """AAL: each audio frame attends over the lyric lines.

    Scores are scaled dot products plus, for lines with timestamps, a learned Gaussian time
    prior on the distance between the frame's time and the time the line is sung, so frames
    prefer the lines sung near them; untimed lines are aligned by content alone.

    Inputs: audio (W, T, D), frame_times (W, T) s, lines (W, N, D), mask (W, N),
    starts/ends (W, N) s (NaN = untimed). Returns aligned text (W, T, D), attention (W, T, N)
    and the per-frame distance (s) to the nearest timed line (W, T), NaN-free (0 when untimed).
    """

    def __init__(self, d_model: int, sigma_seconds: float) -> None:
        super().__init__()
        self.query = nn.Linear(d_model, d_model)
        self.key = nn.Linear(d_model, d_model)
        self.value = nn.Linear(d_model, d_model)
        self.scale = 1.0 / math.sqrt(d_model)
        # Parametrised in log space so sigma stays positive; the strength starts at 1.
        self.log_sigma = nn.Parameter(torch.tensor(math.log(sigma_seconds)))
        self.log_strength = nn.Parameter(torch.tensor(0.0))

    def distances(self, frame_times: Tensor, starts: Tensor, ends: Tensor) -> Tensor:
        """(W, T, N) seconds between each frame and each line's sung interval; 0 inside it."""
        t = frame_times.unsqueeze(-1)
        before = (starts.unsqueeze(1) - t).clamp(min=0)
        after = (t - ends.unsqueeze(1)).clamp(min=0)
        return torch.nan_to_num(before + after, nan=0.0)

    def forward(
        self,
        audio: Tensor,
        frame_times: Tensor,
        lines: Tensor,
        mask: Tensor,
        starts: Tensor,
        ends: Tensor,
        use_content: bool = True,
    ) -> tuple[Tensor, Tensor, Tensor]:
        timed = ~torch.isnan(starts) & mask  # (W, N)
        if use_content:
            scores = torch.einsum("wtd,wnd->wtn", self.query(audio), self.key(lines)) * self.scale
        else:
            scores = audio.new_zeros(audio.shape[0], audio.shape[1], lines.shape[1])
        distance = self.distances(frame_times, starts, ends)
        sigma = self.log_sigma.exp()
        prior = -0.5 * (distance / sigma).pow(2) * self.log_strength.exp()
        scores = scores + torch.where(timed.unsqueeze(1), prior, torch.zeros_like(prior))
        scores = scores.masked_fill(~mask.unsqueeze(1), float("-inf"))
        # Windows without any line get all -inf rows; softmax would give NaN, so zero them.
        has_lines = mask.any(dim=-1)  # (W,)
        scores = torch.where(has_lines[:, None, None], scores, torch.zeros_like(scores))
        attention = torch.softmax(scores.float(), dim=-1).to(audio.dtype)
        attention = attention * has_lines[:, None, None].to(attention.dtype)
        aligned = torch.einsum("wtn,wnd->wtd", attention, self.value(lines))
        big = torch.finfo(distance.dtype).max
        nearest = torch.where(timed.unsqueeze(1), distance, torch.full_like(distance, big)).amin(-1)
        nearest = torch.where(timed.any(-1, keepdim=True), nearest, torch.zeros_like(nearest))
        return aligned, attention, nearest


def freeze(module: nn.Module) -> nn.Module:
    """No gradients for ``module``: a frozen pretrained network inside a trained model."""
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    return module


def spread_patches(projected: Tensor, frames: int) -> Tensor:
    """(W, P, D) one vector per 3 s patch -> (W, frames, D), each patch over its own frames."""
    return F.interpolate(projected.transpose(1, 2), size=frames, mode="nearest").transpose(1, 2)


class PretrainedTagger(nn.Module):
    """(W, S) waveform -> (W, T, D) from musicnn's MSD tagger (frozen), one vector per 3 s.

    The one audio-pretrained start that installs offline (see docs/musicnn.md). Each window
    is cut into ``S // PATCH_SAMPLES`` non-overlapping 3 s patches; each patch is scaled to a
    fixed RMS (musicnn's log-mel depends on gain, user files come at any loudness), and its
    200-d penultimate layer plus 50 tag logits are projected to D and spread over the patch's
    frames. The tagger stays frozen and in eval mode; only the projection trains. Features can
    also be passed in precomputed (training caches them per 3 s patch).
    """

    PATCH_SAMPLES = 187 * 256  # musicnn's 187 log-mel frames, hop 256: 2.992 s at 16 kHz
    FEATURES = 250
    TARGET_RMS = 0.1
    # One window's patches at a time: the front end's activations (~9 MB per patch in float32)
    # then stay in the CPU's caches, which on few threads beats larger chunks
    # (docs/performance.md, "Where the time goes").
    PATCHES_PER_CHUNK = 3

    def __init__(self, d_model: int, frames: int) -> None:
        super().__init__()
        self.tagger = freeze(self._new_tagger())
        self.frames = frames
        self.project = nn.Sequential(nn.LayerNorm(self.FEATURES), nn.Linear(self.FEATURES, d_model))

    def _new_tagger(self) -> nn.Module:
        """The tagger at its initial weights (the shipped ones come from
        :meth:`load_shipped_tagger`, or a checkpoint brings its own copy)."""
        from lgfn_model.pretrained.musicnn import MusicnnMSD

        return MusicnnMSD()

    def set_compute_dtype(self, dtype: torch.dtype) -> None:
        """Inference in float32 or bfloat16: musicnn's own bf16 front end (network.py)."""
        self.tagger.set_compute_dtype(dtype)

    def load_shipped_tagger(self) -> PretrainedTagger:
        """musicnn's shipped MSD weights into the (frozen) tagger."""
        from lgfn_model.pretrained.musicnn import load_musicnn_msd

        # Reading builds a throwaway network first: on a forked random state, so what is drawn
        # next (training's initialisation, shuffling) is what a build without reading draws.
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            self.tagger.load_state_dict(load_musicnn_msd("cpu").state_dict())
        return self

    def train(self, mode: bool = True) -> PretrainedTagger:
        super().train(mode)
        self.tagger.eval()  # frozen: its batch norms and dropouts never switch to training
        return self

    def _patches(self, waveforms: Tensor) -> tuple[Tensor, int]:
        """(W, S) -> (W * P, PATCH_SAMPLES) patches at ``TARGET_RMS``, and P."""
        n_windows = waveforms.shape[0]
        patches = max(1, waveforms.shape[1] // self.PATCH_SAMPLES)
        x = waveforms[:, : patches * self.PATCH_SAMPLES].float()
        x = x.reshape(n_windows * patches, -1)
        rms = x.pow(2).mean(dim=-1, keepdim=True).sqrt()
        return x * (self.TARGET_RMS / rms.clamp_min(1e-4)), patches

    @torch.no_grad()
    def features(self, waveforms: Tensor) -> Tensor:
        """(W, S) -> (W, P, 250): penultimate + tag logits of each 3 s patch."""
        from lgfn_model.pretrained.musicnn import N_FRAMES, musicnn_log_mel

        n_windows = waveforms.shape[0]
        x, patches = self._patches(waveforms)
        parts = []
        with torch.autocast(device_type=x.device.type, enabled=False):
            # In chunks: a batch of 32 windows (96 patches) at once would need ~2.5 GB.
            for chunk in x.split(self.PATCHES_PER_CHUNK):
                out = self.tagger(musicnn_log_mel(chunk)[:, :N_FRAMES])
                parts.append(torch.cat([out["penultimate"], out["logits"]], dim=-1))
        return torch.cat(parts).reshape(n_windows, patches, self.FEATURES)

    def forward(self, waveforms: Tensor, features: Tensor | None = None) -> Tensor:
        if features is None:
            features = self.features(waveforms)
        return spread_patches(self.project(features.float()), self.frames)


class JamendoTagger(PretrainedTagger):
    """(W, S) waveform -> (W, T, D) from the MTG-Jamendo musicnn (frozen), one vector per 3 s.

    ``pretrained_audio: "musicnn-jamendo"``: :class:`PretrainedTagger` with another tagger
    (``lgfn_model/pretrained/jamendo.py``, Won et al. 2020, trained on MTG-Jamendo's top-50
    tags, five of them moods/themes). The same 3 s patch grid and per-patch RMS as musicnn's
    MSD tagger (its input is dB mel power, which depends on gain as musicnn's does), so the
    cache and the window crops are the same; the features are the tagger's 200-d embedding
    (dense -> batch norm -> ReLU before its tag layer). Frozen and in eval mode; only the
    projection trains. bfloat16 inference is a plain bf16 autocast around the tagger, whose
    STFT and dB stay float32 (``MelFrontEnd``).
    """

    FEATURES = 200

    def __init__(self, d_model: int, frames: int) -> None:
        super().__init__(d_model, frames)
        self.compute_dtype = torch.float32

    def _new_tagger(self) -> nn.Module:
        from lgfn_model.pretrained.jamendo import JamendoMusicnn

        return JamendoMusicnn()

    def set_compute_dtype(self, dtype: torch.dtype) -> None:
        if dtype not in (torch.float32, torch.bfloat16):
            raise ValueError(f"the Jamendo musicnn computes in float32 or bfloat16, not {dtype}")
        self.compute_dtype = dtype

    def load_shipped_tagger(self) -> JamendoTagger:
        """The shipped MTG-Jamendo musicnn weights (sha256-checked) into the frozen tagger."""
        from lgfn_model.pretrained.jamendo import load_jamendo_tagger

        with torch.random.fork_rng(devices=[]), torch.no_grad():  # as PretrainedTagger's
            self.tagger.load_state_dict(load_jamendo_tagger("musicnn", "cpu").state_dict())
        return self

    @torch.no_grad()
    def features(self, waveforms: Tensor) -> Tensor:
        """(W, S) -> (W, P, 200): the embedding of each 3 s patch."""
        n_windows = waveforms.shape[0]
        x, patches = self._patches(waveforms)
        bf16 = self.compute_dtype == torch.bfloat16 and not self.training
        parts = []
        with torch.autocast(device_type=x.device.type, dtype=torch.bfloat16, enabled=bf16):
            for chunk in x.split(self.PATCHES_PER_CHUNK):
                parts.append(self.tagger(chunk)["embedding"].float())
        return torch.cat(parts).reshape(n_windows, patches, self.FEATURES)


class DistilledTagger(nn.Module):
    """(W, 1, M, F) log-mel -> (W, T, D) from the frozen musicnn student, one vector per 3 s.

    The fast stand-in for ``PretrainedTagger`` (see ``pretrained/student.py``): it reads the
    log-mel the model computes anyway, so it adds ~0.13 GMAC per window instead of ~3.6. The
    student stays frozen and in eval mode; only the projection trains.
    """

    FEATURES = 250

    def __init__(
        self,
        d_model: int,
        frames: int,
        architecture: StudentConfig | None = None,
        trainable: bool = False,
    ) -> None:
        """``architecture``: the student's (default: the original student's); its weights
        come from :meth:`load_student_weights` or from a checkpoint."""
        super().__init__()
        from lgfn_model.pretrained.student import MusicnnStudent, StudentConfig

        self.architecture = architecture or StudentConfig()
        student = MusicnnStudent(self.architecture)
        self.student = student if trainable else freeze(student)
        self.trainable = trainable
        self.frames = frames
        self.project = nn.Sequential(nn.LayerNorm(self.FEATURES), nn.Linear(self.FEATURES, d_model))

    def load_student_weights(self, weights: str | Path | None = None) -> None:
        """The distilled weights in ``weights`` (default: the shipped student), which must be
        of this tagger's architecture."""
        from lgfn_model.pretrained.student import load_student

        with torch.random.fork_rng(devices=[]):  # as in PretrainedTagger.load_shipped_tagger
            student = load_student(weights)
        if student.config != self.architecture:
            source = weights or "the shipped student"
            raise ValueError(
                f"{source} is a {student.config} but the model config asks for "
                f"{self.architecture}: set student_channels / student_hidden to match"
            )
        with torch.no_grad():
            self.student.load_state_dict(student.state_dict())

    def train(self, mode: bool = True) -> DistilledTagger:
        super().train(mode)
        self.student.eval()  # its batch norms keep the distilled statistics, even when tuned
        return self

    def forward(self, log_mel: Tensor) -> Tensor:
        with torch.set_grad_enabled(self.trainable and torch.is_grad_enabled()):
            features = self.student(log_mel)  # (W, P, 250)
        return spread_patches(self.project(features), self.frames)
