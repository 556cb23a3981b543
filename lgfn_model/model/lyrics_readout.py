"""The lyrics read-out: a linear vote of the whole text's vector, added to the heads' logits.

A model with ``song_text`` reads the e5 vector of a track's whole lyrics as one more line
beside the audio frames. The read-out reads the same vector a second, simpler way: one
logistic regression per label (the four moods, the sign of valence, the sign of arousal),
fitted after training on the training examples' vectors (``training.lyrics_readout_fit``,
`lgfn readout`), and adds its log-odds to the network's, each scaled by a fusion weight:

    mood logits    = mood_head(e) + w_mood * (A_mood s + b_mood)
    valence        = tanh(affect_head(e)[0] + w_valence / 2 * (a_valence . s + b_valence))

(``tanh(z)`` is ``2 sigmoid(2z) - 1``, so ``w / 2`` inside the tanh is ``w`` times the vote in
the log-odds of P(valence > 0); arousal likewise.) That is late fusion of a lyrics-only model
with the network, as cross-validation measured it (docs/cross-validation.md): the network
trained with the words does not read them the way a strongly regularised linear model of
the same vector does, and the two together are ahead of either.

A track without a whole text gets no vote. Before it is fitted every weight is zero, so a
model built with ``lyrics_readout`` trains exactly as one without it.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class LyricsReadout(nn.Module):
    """Buffers (not parameters: training never moves them), all float32:

    - ``mood_weight`` (K, E), ``mood_bias`` (K,): the mood vote's logits of a raw vector (the
      standardisation it was fitted with folded in);
    - ``affect_weight`` (2, E), ``affect_bias`` (2,): the log-odds of valence > 0, arousal > 0;
    - ``fusion`` (3,): how much each vote weighs (mood, valence, arousal).
    """

    def __init__(self, labels: int, text_dim: int) -> None:
        super().__init__()
        self.register_buffer("mood_weight", torch.zeros(labels, text_dim))
        self.register_buffer("mood_bias", torch.zeros(labels))
        self.register_buffer("affect_weight", torch.zeros(2, text_dim))
        self.register_buffer("affect_bias", torch.zeros(2))
        self.register_buffer("fusion", torch.zeros(3))

    def forward(
        self, song: Tensor | None, present: Tensor | None, windows: int
    ) -> tuple[Tensor, Tensor]:
        """(mood votes (W, K), affect votes (W, 2)) in float32, already weighted: what to add
        to the mood logits and to the affect head before its tanh. Zero for windows whose
        track has no whole text (``present`` False, or no ``song`` at all)."""
        device = self.mood_bias.device
        if song is None or present is None:
            return (
                torch.zeros(windows, self.mood_bias.shape[0], device=device),
                torch.zeros(windows, 2, device=device),
            )
        # Float32 whatever the autocast: the votes are a few dot products, and bf16 would
        # round their log-odds by up to a percent.
        with torch.autocast(device_type=song.device.type, enabled=False):
            vector = song.float()
            mood = vector @ self.mood_weight.T + self.mood_bias
            affect = vector @ self.affect_weight.T + self.affect_bias
            keep = present.to(vector.dtype)[:, None]
            mood = mood * self.fusion[0] * keep
            affect = affect * (self.fusion[1:] / 2) * keep
        return mood, affect
