"""Where and in what precision a text encoder's network runs: a device and a dtype, or int8
Linear layers on the CPU (:mod:`lgfn_model.text.int8`)."""

from __future__ import annotations

import torch

_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "float16": torch.float16,
    "fp16": torch.float16,
    "half": torch.float16,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
}


def _resolve_dtype(dtype: torch.dtype | str | None) -> torch.dtype | None:
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    try:
        return _DTYPES[str(dtype).lower().removeprefix("torch.")]
    except KeyError:
        raise ValueError(f"unknown dtype {dtype!r}; use one of {sorted(_DTYPES)}") from None


def placed(
    model: torch.nn.Module, device: str | torch.device, dtype: torch.dtype | str | None, int8: bool
) -> torch.nn.Module:
    """``model`` on ``device`` in ``dtype``, or with int8 Linear layers (CPU, float32 only)."""
    if not int8:
        return model.to(device=torch.device(device), dtype=_resolve_dtype(dtype))
    check_int8(device, dtype)
    from lgfn_model.text.int8 import quantize_linear_int8

    return quantize_linear_int8(model)


def check_int8(device: str | torch.device, dtype: torch.dtype | str | None) -> None:
    if torch.device(device).type != "cpu":
        raise ValueError("the int8 text encoder runs on the CPU only")
    if _resolve_dtype(dtype) not in (None, torch.float32):
        raise ValueError(f"int8 replaces the dtype; got dtype={dtype!r} as well")
