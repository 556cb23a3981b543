"""Where and in what precision the model runs: the device and dtype policy that prediction,
training and evaluation share, and the CPU's name for the records that benchmarks write."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch

from lgfn_model.model.config import PRECISIONS


class DeviceError(Exception):
    """The requested device cannot be used."""


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """'auto' -> cuda when available, else cpu; an explicit 'cuda' without a GPU is an error."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"device {device!r} requested but no CUDA GPU is available")
    return resolved


# CPU features with bf16 dot products in hardware, as torch.cpu names their probes: Intel AMX
# and AVX512-BF16 (AMD Zen 4 and later, Intel Cooper Lake), where bf16 is clearly faster than
# float32 (docs/performance.md#precision). Elsewhere CPU bf16 is emulated and slower.
_HARDWARE_BF16_PROBES = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")


def has_hardware_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (AMX or AVX512-BF16)."""
    for name in _HARDWARE_BF16_PROBES:
        probe = getattr(torch.cpu, name, None)
        try:
            if probe is not None and probe():
                return True
        except RuntimeError:
            continue
    return False


def resolve_precision(precision: str, device: torch.device) -> torch.dtype:
    """'auto' -> bfloat16 on CUDA and on CPUs with hardware bf16, float32 elsewhere; 'fp32' or
    'bf16' as asked. bf16 moves predictions by less than the model's own noise
    (docs/performance.md)."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}")
    if precision == "fp32":
        return torch.float32
    if precision == "bf16" or device.type == "cuda" or has_hardware_bf16():
        return torch.bfloat16
    return torch.float32


def cpu_description() -> str:
    """The CPU by name where Linux tells it (figures differ a lot between CPU models), its core
    count, and whether it has the bf16 hardware that `precision: auto` keys on."""
    # Not platform.processor(): it forks ``uname`` only to learn less than /proc/cpuinfo says.
    name = cpu_model_name() or platform.machine()
    bf16 = ", hardware bf16" if has_hardware_bf16() else ""
    return f"{name}, {os.cpu_count()} cores{bf16}"


def cpu_model_name(cpuinfo: Path = Path("/proc/cpuinfo")) -> str | None:
    try:
        lines = cpuinfo.read_text(errors="replace").splitlines()
    except OSError:
        return None
    for line in lines:
        key, _, value = line.partition(":")
        if key.strip() == "model name" and value.strip():
            return value.strip()
    return None
