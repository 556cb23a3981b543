"""Which of a model's parameters a training updates, and at what learning rate.

A tuned distilled student learns at its own, smaller rate (``student_lr_scale``);
``--train-only`` freezes everything outside the named modules, their batch norms included.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from lgfn_model.model.network import LGFN

log = logging.getLogger(__name__)


def parameter_groups(model: LGFN, learning_rate: float) -> list[dict[str, Any]]:
    """Trainable parameters; a tuned distilled student learns at its own, smaller rate."""
    student = model.distilled.student if model.distilled is not None else None
    tuned = {id(p) for p in student.parameters()} if student is not None else set()
    rest = [p for p in model.parameters() if p.requires_grad and id(p) not in tuned]
    groups: list[dict[str, Any]] = [{"params": rest, "lr": learning_rate}]
    if student is not None and model.config.student_lr_scale > 0:
        scaled = learning_rate * model.config.student_lr_scale
        groups.append(
            {"params": [p for p in student.parameters() if p.requires_grad], "lr": scaled}
        )
    return [group for group in groups if group["params"]]


def freeze_all_but(model: LGFN, prefixes: tuple[str, ...]) -> None:
    """Freeze every parameter outside the modules named by ``prefixes`` and keep the batch
    norms of the frozen parts in eval mode, so those parts compute exactly as they started."""
    if not prefixes:
        return
    names = {name for name, _ in model.named_modules()}
    unknown = [p for p in prefixes if p not in names]
    if unknown:
        raise ValueError(f"--train-only {unknown[0]}: the model has no such module")
    trained = 0
    for name, parameter in model.named_parameters():
        keep = any(name == p or name.startswith(p + ".") for p in prefixes)
        if keep and parameter.requires_grad:
            trained += parameter.numel()
        parameter.requires_grad_(keep and parameter.requires_grad)
    if trained == 0:
        raise ValueError(f"--train-only {', '.join(prefixes)}: nothing trainable there")
    for name, module in model.named_modules():
        inside = any(name == p or name.startswith(p + ".") for p in prefixes)
        if not inside and isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.eval()
    log.info("training only %s (%d parameters)", ", ".join(prefixes), trained)
