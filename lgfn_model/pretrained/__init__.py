"""Pretrained audio models ported to PyTorch, with their weights shipped in the package."""

from lgfn_model.pretrained.jamendo import (
    JAMENDO_TAGS,
    JamendoCRNN,
    JamendoFCN,
    JamendoMusicnn,
    load_jamendo_tagger,
)
from lgfn_model.pretrained.musicnn import (
    MSD_TAGS,
    MusicnnMSD,
    load_musicnn_msd,
    musicnn_log_mel,
    musicnn_patches,
)

__all__ = [
    "JAMENDO_TAGS",
    "MSD_TAGS",
    "JamendoCRNN",
    "JamendoFCN",
    "JamendoMusicnn",
    "MusicnnMSD",
    "load_jamendo_tagger",
    "load_musicnn_msd",
    "musicnn_log_mel",
    "musicnn_patches",
]
