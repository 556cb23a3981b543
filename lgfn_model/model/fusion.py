"""How the audio frames and the aligned lyrics become one sequence: the fusion step, one small
module per choice, built from the config by :func:`build_fusion` (as torchaudio's model
builders pick a module per option, instead of string dispatch inside ``LGFN.forward``).

Every fusion takes the audio frames A (W, T, D), the lyrics aligned to them X (W, T, D) and
an :class:`AlignmentView` (what the alignment saw), and returns the fused frames (W, T, D)
and the audio's share of the decision per frame (W, T), which the product stores as
``emotion_gate_audio``.

- ``dgfm`` (:class:`DynamicGate`, the shipped models): a learned gate per frame.
- ``concat``: a linear layer over [A; X]; there is no gate, the share reported is 0.5 where
  lyrics exist (1 without them, 0 without audio).
- ``audio_only`` / ``lyrics_only``: ablations; A or X alone (share 1 or 0). ``audio_only``
  also tells the model not to read the lyrics at all (:attr:`Fusion.reads_lyrics`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from lgfn_model.model.config import LGFNConfig


@dataclass(frozen=True)
class AlignmentView:
    """What the alignment saw and produced, for fusions that weigh its reliability."""

    attention: Tensor  # (W, T, N)
    mask: Tensor  # (W, N) real lines
    starts: Tensor  # (W, N) line start times, NaN when plain
    nearest: Tensor  # (W, T) seconds to the nearest sung line
    lyrics_present: Tensor  # (W,) bool
    audio_present: Tensor  # (W,) bool


class Fusion(nn.Module):
    """(A, X, view) -> (fused frames, audio share per frame)."""

    reads_lyrics = True

    def forward(  # pragma: no cover - each fusion defines it
        self, audio: Tensor, aligned: Tensor, view: AlignmentView
    ) -> tuple[Tensor, Tensor]:
        raise NotImplementedError


class DynamicGate(Fusion):
    """DGFM: per frame, g = sigmoid(W [A; X; cues]); fused = g*A + (1-g)*X.

    Cues of reliability, per frame: lyrics present, lyrics synced, attention entropy
    (normalised), the largest attention weight, log line count, distance to the nearest sung
    line. Frames of tracks without lyrics get g = 1 exactly; frames without audio g = 0.
    """

    N_CUES = 6

    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.gate = nn.Sequential(
            nn.Linear(2 * d_model + self.N_CUES, d_model),
            nn.GELU(),
            nn.Linear(d_model, 1),
        )

    @staticmethod
    def cues(attention: Tensor, mask: Tensor, starts: Tensor, nearest: Tensor) -> Tensor:
        n_lines = mask.sum(-1).float()  # (W,)
        has_lyrics = (n_lines > 0).float()
        synced = (~torch.isnan(starts) & mask).any(-1).float()
        p = attention.float().clamp_min(1e-9)
        entropy = -(p * p.log()).sum(-1) / torch.log(n_lines.clamp_min(2)).unsqueeze(-1)
        frames = attention.shape[1]
        per_window = torch.stack([has_lyrics, synced, torch.log1p(n_lines) / 5], dim=-1)
        per_frame = torch.stack(
            [entropy * has_lyrics[:, None], attention.float().amax(-1), torch.tanh(nearest / 10)],
            dim=-1,
        )
        return torch.cat([per_window.unsqueeze(1).expand(-1, frames, -1), per_frame], dim=-1)

    def forward(self, audio: Tensor, aligned: Tensor, view: AlignmentView) -> tuple[Tensor, Tensor]:
        cues = self.cues(view.attention, view.mask, view.starts, view.nearest)
        return self.mix(audio, aligned, cues, view.lyrics_present, view.audio_present)

    def mix(
        self,
        audio: Tensor,
        text: Tensor,
        cues: Tensor,
        lyrics_present: Tensor,
        audio_present: Tensor,
    ) -> tuple[Tensor, Tensor]:
        """fused = g*A + (1-g)*X with g from the MLP over [A; X; cues], fixed where a modality
        is missing."""
        logits = self.gate(torch.cat([audio, text, cues.to(audio.dtype)], dim=-1)).squeeze(-1)
        gate = torch.sigmoid(logits.float())
        # Missing modalities are decided exactly, not learned: the product promises g = 1
        # for instrumentals and tracks whose lyrics were not found.
        gate = torch.where(lyrics_present[:, None], gate, torch.ones_like(gate))
        gate = torch.where(audio_present[:, None], gate, torch.zeros_like(gate))
        g = gate.unsqueeze(-1).to(audio.dtype)
        return g * audio + (1 - g) * text, gate


class ConcatFusion(Fusion):
    """A linear layer over [A; X]: the plain bimodal baseline of the ablations."""

    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.project = nn.Linear(2 * d_model, d_model)

    def forward(self, audio: Tensor, aligned: Tensor, view: AlignmentView) -> tuple[Tensor, Tensor]:
        fused = self.project(torch.cat([audio, aligned], dim=-1))
        # No gate exists here; report the share each modality could have had.
        share = torch.where(view.lyrics_present, 0.5, 1.0).to(audio.dtype)
        share = torch.where(view.audio_present, share, torch.zeros_like(share))
        return fused, share[:, None].expand(-1, audio.shape[1]).float()


class AudioOnlyFusion(Fusion):
    """The audio frames alone; the lyrics are not even read (the audio-only ablation)."""

    reads_lyrics = False

    def forward(self, audio: Tensor, aligned: Tensor, view: AlignmentView) -> tuple[Tensor, Tensor]:
        return audio, torch.ones(audio.shape[:2], device=audio.device)


class LyricsOnlyFusion(Fusion):
    """The aligned lyrics alone (the lyrics-only ablation)."""

    def forward(self, audio: Tensor, aligned: Tensor, view: AlignmentView) -> tuple[Tensor, Tensor]:
        return aligned, torch.zeros(audio.shape[:2], device=audio.device)


FUSIONS: dict[str, type[Fusion]] = {
    "dgfm": DynamicGate,
    "concat": ConcatFusion,
    "audio_only": AudioOnlyFusion,
    "lyrics_only": LyricsOnlyFusion,
}


def build_fusion(config: LGFNConfig) -> Fusion:
    """The fusion module ``config.fusion`` names."""
    try:
        kind = FUSIONS[config.fusion]
    except KeyError:
        raise ValueError(
            f"unknown fusion {config.fusion!r}; use one of {', '.join(FUSIONS)}"
        ) from None
    if kind in (DynamicGate, ConcatFusion):
        return kind(config.d_model)
    return kind()


def migrate_state_names(names: dict[str, object], fusion: str) -> dict[str, object]:
    """Checkpoints written before the fusion became its own module kept the gate under
    ``gate.`` (built, unused, for every fusion) and the concat layer under ``concat_fusion.``;
    today both live under ``fusion.``. Renames those entries, drops the unused gate, and
    leaves a checkpoint already in today's names as it is."""
    if any(name.startswith("fusion.") for name in names):
        return names
    migrated: dict[str, object] = {}
    for name, value in names.items():
        if name.startswith("gate."):
            if fusion == "dgfm":
                migrated["fusion." + name.removeprefix("gate.")] = value
            continue
        if name.startswith("concat_fusion."):
            migrated["fusion.project." + name.removeprefix("concat_fusion.")] = value
            continue
        migrated[name] = value
    return migrated
