"""Start training from a trained model's weights instead of a random initialisation.

The use it was built for: a fast model ("musicnn-student") started from the default model
("musicnn-msd"). Everything but the pretrained branch is the same network, and the student
was distilled to reproduce musicnn's 250 features, so musicnn's projection (250 -> D) is
copied onto the student's projection: the warm-started fast model already predicts what the
default model predicts, as far as the student reproduces musicnn, before its first step.

The MTG-Jamendo musicnn ("musicnn-jamendo") has other features (200 of them, another network's):
between it and either of those two, the projection is not copied but starts fresh, while the
rest of the network is copied as usual.
"""

from __future__ import annotations

import logging

import torch

from lgfn_model.model.network import LGFN

log = logging.getLogger("lgfn_model.training")

# The projection of the 250 pretrained features onto the model width has one role in both
# kinds of pretrained branch, under two names.
_PROJECTIONS = ("pretrained.project.", "distilled.project.")
# The frozen musicnn tagger always comes from its own shipped weights.
_NEVER_COPIED = ("pretrained.tagger.",)
# Branches whose features mean the same (the student predicts the MSD tagger's): a projection
# is copied only between two branches of one family.
_FEATURE_FAMILIES = ({"musicnn-msd", "musicnn-student"}, {"musicnn-jamendo"})


def _same_features(a: str | None, b: str | None) -> bool:
    return a == b or any(a in family and b in family for family in _FEATURE_FAMILIES)


def _renamed(name: str, target: set[str]) -> str:
    """``name`` in the source -> the target's name for the same tensor."""
    for ours, theirs in (_PROJECTIONS, _PROJECTIONS[::-1]):
        if name.startswith(ours):
            other = theirs + name[len(ours) :]
            if name not in target and other in target:
                return other
    return name


def warm_start(model: LGFN, source: LGFN, source_name: str) -> dict[str, int]:
    """Copy ``source``'s weights into ``model`` wherever name and shape fit.

    A distilled student's weights are copied only from a source that has one (otherwise the
    model keeps the student it was built with). Raises ValueError when a tensor both have
    differs in shape (a different width or label set: not a warm start but another model),
    or when nothing outside the pretrained branch fits. Returns counts for the log."""
    state = model.state_dict()
    names = set(state)
    copied: list[str] = []
    skipped = _NEVER_COPIED
    if not _same_features(source.config.pretrained_audio, model.config.pretrained_audio):
        skipped = (*_NEVER_COPIED, *_PROJECTIONS)
    for name, tensor in source.state_dict().items():
        if name.startswith(skipped):
            continue
        target = _renamed(name, names)
        if target not in state:
            continue
        if state[target].shape != tensor.shape:
            raise ValueError(
                f"--init {source_name}: {name} has shape {tuple(tensor.shape)}, this model "
                f"needs {tuple(state[target].shape)} (train with the same config as it)"
            )
        state[target] = tensor.detach().to(state[target].device, state[target].dtype)
        copied.append(target)
    branch = ("pretrained.", "distilled.")
    own = [n for n in names if not n.startswith(branch)]
    fresh = sorted(set(own) - set(copied))
    if len(fresh) == len(own):
        raise ValueError(f"--init {source_name}: none of its weights fit this model")
    with torch.no_grad():
        model.load_state_dict(state)
    counts = {"copied": len(copied), "fresh": len(fresh)}
    log.info(
        "warm start from %s: %d tensors copied, %d left at their initial values%s",
        source_name,
        counts["copied"],
        counts["fresh"],
        f" ({', '.join(fresh[:4])}{', ...' if len(fresh) > 4 else ''})" if fresh else "",
    )
    return counts
