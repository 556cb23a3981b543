"""Pretrained audio models ported to PyTorch, with their weights shipped in the package."""

from lgfn_model.pretrained.musicnn import (
    MSD_TAGS,
    MusicnnMSD,
    load_musicnn_msd,
    musicnn_log_mel,
    musicnn_patches,
)

__all__ = ["MSD_TAGS", "MusicnnMSD", "load_musicnn_msd", "musicnn_log_mel", "musicnn_patches"]
