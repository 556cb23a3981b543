"""LGFN: the composition of the blocks in ``components`` into one model.

A batch is a set of analysis windows (of one or many tracks); track-level results are the
mean of their windows' outputs (``pool_windows``).
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from lgfn_model.data.lyrics import line_end_times
from lgfn_model.model.components import (
    AttentionalAlignment,
    DistilledTagger,
    JamendoTagger,
    LogMel,
    MelResNet,
    PretrainedTagger,
    WaveformCNN,
)
from lgfn_model.model.config import LGFNConfig
from lgfn_model.model.fusion import AlignmentView, build_fusion
from lgfn_model.model.lyrics_readout import LyricsReadout


@dataclass
class LyricsBatch:
    """Lyric lines per window: embeddings (W, N, E), mask (W, N) (True = a real line),
    starts / ends (W, N) in seconds from the track start, NaN for untimed lines; song (W, E)
    and song_mask (W,): the whole text's vector per window, when the tracks have one."""

    embeddings: Tensor
    mask: Tensor
    starts: Tensor
    ends: Tensor
    song: Tensor | None = None
    song_mask: Tensor | None = None

    def to(self, device: torch.device | str) -> LyricsBatch:
        def moved(t: Tensor | None) -> Tensor | None:
            return None if t is None else t.to(device, non_blocking=True)

        return LyricsBatch(
            self.embeddings.to(device, non_blocking=True),
            self.mask.to(device, non_blocking=True),
            self.starts.to(device, non_blocking=True),
            self.ends.to(device, non_blocking=True),
            moved(self.song),
            moved(self.song_mask),
        )

    def with_song_line(self) -> LyricsBatch:
        """The whole text as one more, untimed line after the lines (a model with
        ``song_text`` reads it so: aligned by content alone); self when there is none."""
        if self.song is None or self.song_mask is None:
            return self
        untimed = self.starts.new_full((self.starts.shape[0], 1), float("nan"))
        return LyricsBatch(
            torch.cat([self.embeddings, self.song.to(self.embeddings.dtype)[:, None]], dim=1),
            torch.cat([self.mask, self.song_mask[:, None] & self.mask.any(-1, keepdim=True)], 1),
            torch.cat([self.starts, untimed], dim=1),
            torch.cat([self.ends, untimed], dim=1),
        )


@dataclass
class TrackLines:
    """One track's lyric lines: embeddings (N, E); starts / ends (N,) seconds, NaN if untimed;
    song (E,): the whole text's vector, for a model with ``song_text``."""

    embeddings: Tensor
    starts: Tensor
    ends: Tensor
    song: Tensor | None = None

    @classmethod
    def timed(
        cls, embeddings: Tensor, starts: list[float | None], duration: float | None
    ) -> TrackLines:
        """Ends follow the starts (the next line, at most 8 s later); one untimed line makes
        the whole track untimed (NaN), as plain lyrics."""
        count = len(starts)
        if count and all(s is not None and s == s for s in starts):
            begin = [float(s) for s in starts]  # type: ignore[arg-type]
            start_t = torch.tensor(begin, dtype=torch.float32)
            end_t = torch.tensor(line_end_times(begin, duration), dtype=torch.float32)
        else:
            start_t = end_t = torch.full((count,), float("nan"))
        return cls(embeddings.float(), start_t, end_t)


def stack_lines(parts: list[tuple[TrackLines | None, int]], text_dim: int) -> LyricsBatch | None:
    """Each track's lines repeated for its ``count`` windows, padded to the longest; None when
    no track has lines. Shared by the predictor and training so both feed the model alike."""
    present = [lines for lines, _ in parts if lines is not None and len(lines.starts) > 0]
    if not present:
        return None
    width = max(len(lines.starts) for lines in present)
    total = sum(count for _, count in parts)
    embeddings = torch.zeros(total, width, text_dim)
    mask = torch.zeros(total, width, dtype=torch.bool)
    starts = torch.full((total, width), float("nan"))
    ends = torch.full((total, width), float("nan"))
    with_song = any(lines.song is not None for lines in present)
    song = torch.zeros(total, text_dim) if with_song else None
    song_mask = torch.zeros(total, dtype=torch.bool) if with_song else None
    row = 0
    for lines, count in parts:
        n = 0 if lines is None else len(lines.starts)
        if n:
            embeddings[row : row + count, :n] = lines.embeddings
            mask[row : row + count, :n] = True
            starts[row : row + count, :n] = lines.starts
            ends[row : row + count, :n] = lines.ends
            if song is not None and song_mask is not None and lines.song is not None:
                song[row : row + count] = lines.song
                song_mask[row : row + count] = True
        row += count
    return LyricsBatch(embeddings, mask, starts, ends, song, song_mask)


@dataclass
class LGFNOutput:
    """Per window: mood_logits (W, 4); valence, arousal (W,) in [-1, 1]; gate (W, T) = audio
    share per frame; attention (W, T, N) over lyric lines; embedding (W, D): the vector the
    heads read (the mood head is linear: the mean of a track's window embeddings through it
    gives the track's mean mood logits, which is how a listener's own head is fitted); with a
    lyrics read-out (``config.lyrics_readout``) its weighted mood votes follow the D values,
    (W, D + 4), and the mood logits are the head's of the first D plus those votes."""

    mood_logits: Tensor
    valence: Tensor
    arousal: Tensor
    gate: Tensor
    attention: Tensor
    embedding: Tensor | None = None


def pool_windows(values: Tensor, track_index: Tensor, n_tracks: int) -> Tensor:
    """Mean of ``values`` (W, ...) over each track's windows -> (n_tracks, ...)."""
    shape = (n_tracks, *values.shape[1:])
    total = values.new_zeros(shape).index_add_(0, track_index, values)
    count = torch.bincount(track_index, minlength=n_tracks).clamp_min(1).to(values.dtype)
    return total / count.view(-1, *([1] * (values.dim() - 1)))


class LGFN(nn.Module):
    def __init__(
        self,
        config: LGFNConfig,
    ) -> None:
        """The network ``config`` describes, every weight at its initial value: nothing is read
        from disk here (:func:`build_lgfn` starts the pretrained branch from its shipped
        weights; a checkpoint brings its own copy)."""
        super().__init__()
        self.config = config
        d, frames = config.d_model, config.frames_per_window
        self.log_mel = LogMel(config.audio)
        self.mel_resnet = MelResNet(config.resnet_channels, d, frames)
        self.waveform_cnn = (
            WaveformCNN(config.wave_channels, d, frames) if config.use_waveform_branch else None
        )
        self.pretrained: PretrainedTagger | None = None
        self.distilled: DistilledTagger | None = None
        if config.pretrained_audio == "musicnn-msd":
            self.pretrained = PretrainedTagger(d, frames)
        elif config.pretrained_audio == "musicnn-jamendo":
            self.pretrained = JamendoTagger(d, frames)
        elif config.pretrained_audio == "musicnn-student":
            from lgfn_model.pretrained.student import StudentConfig

            self.distilled = DistilledTagger(
                d,
                frames,
                StudentConfig(channels=config.student_channels, hidden=config.student_hidden),
                trainable=config.student_lr_scale > 0,
            )
        elif config.pretrained_audio is not None:
            raise ValueError(f"unknown pretrained audio branch {config.pretrained_audio!r}")
        self.audio_norm = nn.LayerNorm(d)
        self.text_project = nn.Sequential(nn.Linear(config.text_dim, d), nn.LayerNorm(d))
        self.alignment = AttentionalAlignment(d, config.time_prior_sigma)
        self.fusion = build_fusion(config)
        self.dropout = nn.Dropout(config.dropout)
        self.mood_head = nn.Linear(d, len(config.labels))
        self.affect_head = nn.Linear(d, 2)
        self.lyrics_readout = (
            LyricsReadout(len(config.labels), config.text_dim) if config.lyrics_readout else None
        )
        # set_compute_dtype: bf16 at inference on GPUs and CPUs with hardware bf16.
        self.compute_dtype = torch.float32

    def set_compute_dtype(self, dtype: torch.dtype) -> LGFN:
        """The dtype of the audio branches' convolutions at inference: float32 or bfloat16.

        In bfloat16, musicnn's front end (nearly all of the default model's cost) runs its own
        bf16 path (the Jamendo musicnn, "musicnn-jamendo", runs under bf16 autocast), and the
        mel ResNet, the waveform CNN and the distilled student run under
        bf16 autocast. Log-mel, alignment, gate and heads stay float32; training always
        computes in float32. In both dtypes the 2-D branches run channels-last at inference:
        oneDNN's kernels are fastest so (fp32 on an AVX2 EPYC: the mel ResNet and the student
        ~25% faster, docs/performance.md).
        """
        if dtype not in (torch.float32, torch.bfloat16):
            raise ValueError(f"LGFN computes in float32 or bfloat16, not {dtype}")
        self.compute_dtype = dtype
        if self.pretrained is not None:
            self.pretrained.set_compute_dtype(dtype)
        self.mel_resnet.to(memory_format=torch.channels_last)
        if self.distilled is not None:
            self.distilled.student.to(memory_format=torch.channels_last)
        return self

    @property
    def _bf16_inference(self) -> bool:
        return self.compute_dtype == torch.bfloat16 and not self.training

    def _branches_autocast(self, device_type: str) -> AbstractContextManager[Any]:
        """bf16 autocast for the convolutional branches, at inference in bf16 only."""
        if not self._bf16_inference:
            return nullcontext()
        return torch.autocast(device_type, dtype=torch.bfloat16)

    def frame_times(self, window_starts: Tensor) -> Tensor:
        """(W,) window starts -> (W, T) centre time of each audio frame, in seconds."""
        frames = self.config.frames_per_window
        step = self.config.audio.window_seconds / frames
        offsets = (torch.arange(frames, device=window_starts.device) + 0.5) * step
        return window_starts.unsqueeze(-1).float() + offsets

    def encode_audio(
        self,
        waveforms: Tensor,
        pretrained_features: Tensor | None = None,
        pretrained_waveforms: Tensor | None = None,
    ) -> Tensor:
        log_mel = self.log_mel(waveforms)
        with self._branches_autocast(waveforms.device.type):
            if not self.training:
                log_mel = log_mel.contiguous(memory_format=torch.channels_last)
            audio = self.mel_resnet(log_mel).float()
            if self.waveform_cnn is not None:
                audio = audio + self.waveform_cnn(waveforms).float()
            distilled = None
            if self.distilled is not None:
                student_mel = (
                    log_mel if pretrained_waveforms is None else self.log_mel(pretrained_waveforms)
                )
                distilled = self.distilled(student_mel).float()
        if self.pretrained is not None or self.distilled is not None:
            if self.training and self.config.branch_dropout > 0:
                keep = torch.rand(audio.shape[0], 1, 1, device=audio.device)
                audio = audio * (keep >= self.config.branch_dropout).to(audio.dtype)
            if self.pretrained is not None:
                source = waveforms if pretrained_waveforms is None else pretrained_waveforms
                audio = audio + self.pretrained(source, pretrained_features).to(audio.dtype)
            else:
                assert distilled is not None
                audio = audio + distilled
        return self.audio_norm(audio)

    def forward(
        self,
        waveforms: Tensor,
        window_starts: Tensor,
        lyrics: LyricsBatch | None = None,
        audio_present: Tensor | None = None,
        pretrained_features: Tensor | None = None,
        pretrained_waveforms: Tensor | None = None,
    ) -> LGFNOutput:
        """waveforms (W, S) at ``config.audio.sample_rate``; window_starts (W,) seconds;
        lyrics per window or None; audio_present (W,) bool, default all True;
        pretrained_features (W, P, F): the pretrained branch's inputs, if precomputed (F:
        ``config.pretrained_features``, 250 for "musicnn-msd", 200 for "musicnn-jamendo");
        pretrained_waveforms (W, S): what the pretrained or distilled branch reads instead of
        ``waveforms`` (training: the windows before noise, as cached musicnn features are)."""
        n_windows, frames = waveforms.shape[0], self.config.frames_per_window
        device = waveforms.device
        if audio_present is None:
            audio_present = torch.ones(n_windows, dtype=torch.bool, device=device)
        if bool(audio_present.all()):
            audio = self.encode_audio(waveforms, pretrained_features, pretrained_waveforms)
        else:
            # Windows without audio (lyrics-only training data) skip the audio branches: their
            # frames are zeros and their gate is 0, so computing them would be wasted work.
            audio = waveforms.new_zeros(n_windows, frames, self.config.d_model)
            if bool(audio_present.any()):
                features = (
                    None if pretrained_features is None else pretrained_features[audio_present]
                )
                clean = (
                    None if pretrained_waveforms is None else pretrained_waveforms[audio_present]
                )
                encoded = self.encode_audio(waveforms[audio_present], features, clean)
                audio = audio.to(encoded.dtype).index_put((audio_present.nonzero()[:, 0],), encoded)

        votes = self._lyrics_votes(lyrics, n_windows)
        if lyrics is None or not self.fusion.reads_lyrics:
            lyrics = LyricsBatch(
                audio.new_zeros(n_windows, 1, self.config.text_dim),
                torch.zeros(n_windows, 1, dtype=torch.bool, device=device),
                torch.full((n_windows, 1), float("nan"), device=device),
                torch.full((n_windows, 1), float("nan"), device=device),
            )
        n_lines = lyrics.mask.shape[1]
        if self.config.song_text:
            lyrics = lyrics.with_song_line()
        lines = self.text_project(lyrics.embeddings.to(audio.dtype))
        aligned, attention, nearest = self.alignment(
            audio,
            self.frame_times(window_starts),
            lines,
            lyrics.mask,
            lyrics.starts,
            lyrics.ends,
            use_content=self.config.use_aal,
        )
        if not self.config.use_aal:
            # Ablation "no AAL": every frame sees the plain mean of the lines.
            weights = lyrics.mask.to(audio.dtype)
            weights = weights / weights.sum(-1, keepdim=True).clamp_min(1)
            attention = weights.unsqueeze(1).expand(-1, frames, -1)
            aligned = torch.einsum("wtn,wnd->wtd", attention, self.alignment.value(lines))

        view = AlignmentView(
            attention, lyrics.mask, lyrics.starts, nearest, lyrics.mask.any(-1), audio_present
        )
        fused, gate = self.fusion(audio, aligned, view)
        pooled = self.dropout(fused.mean(dim=1))
        mood_logits = self.mood_head(pooled).float()
        affect = self.affect_head(pooled).float()
        embedding = pooled.float()
        if votes is not None:
            mood_votes, affect_votes = votes
            mood_logits = mood_logits + mood_votes
            affect = affect + affect_votes
            # The votes ride along, so one linear head of the embedding is still the mood.
            embedding = torch.cat([embedding, mood_votes], dim=-1)
        affect = torch.tanh(affect)
        return LGFNOutput(
            mood_logits=mood_logits,
            valence=affect[:, 0],
            arousal=affect[:, 1],
            gate=gate,
            # The lines' share only: the whole text's column (song_text) is no line to show.
            attention=attention[..., :n_lines].float(),
            embedding=embedding,
        )

    def _lyrics_votes(
        self, lyrics: LyricsBatch | None, windows: int
    ) -> tuple[Tensor, Tensor] | None:
        """The lyrics read-out's weighted votes per window (None: the model has none)."""
        if self.lyrics_readout is None:
            return None
        if lyrics is None or lyrics.song is None or lyrics.song_mask is None:
            return self.lyrics_readout(None, None, windows)
        # As the whole text's line: a track with a vector but no lines has no text to read.
        present = lyrics.song_mask & lyrics.mask.any(-1)
        return self.lyrics_readout(lyrics.song, present, windows)

    def load_pretrained_weights(self, student_weights: str | Path | None = None) -> LGFN:
        """Start the pretrained branch from its weights on disk: musicnn's shipped tagger (MSD
        or MTG-Jamendo), or the distilled student (``student_weights``: a student's folder,
        default the shipped one). Training starts so; a checkpoint instead brings its own copy
        of them."""
        if self.pretrained is not None:
            self.pretrained.load_shipped_tagger()
        if self.distilled is not None:
            self.distilled.load_student_weights(student_weights)
        return self


def build_lgfn(
    config: LGFNConfig, pretrained: bool = True, student_weights: str | Path | None = None
) -> LGFN:
    """A new LGFN for training: built from ``config`` and, with ``pretrained``, its pretrained
    branch started from its weights on disk (see :meth:`LGFN.load_pretrained_weights`)."""
    model = LGFN(config)
    return model.load_pretrained_weights(student_weights) if pretrained else model


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
