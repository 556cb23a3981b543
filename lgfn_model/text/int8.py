"""int8 lyrics encoder for CPUs without hardware bf16: dynamically quantised Linear layers.

The BERT encoder's cost is almost all its Linear layers (78% of its CPU time in addmm, on
lines of ~15 tokens). torch's dynamic quantisation runs them as int8 x int8 products (fbgemm)
with per-output-channel weight scales and one activation scale per batch. All of them but the
feed-forward down-projections are quantised: the GELU output those read has outlier channels
that one scale per batch cannot hold (with them int8 too, line vectors fell to cosine 0.94 at
worst; without, 0.988 at worst and 0.996 on average, for 1.4x instead of 1.6x the speed on
an AVX2 CPU). docs/text-encoder.md has the figures and the held-out check.
"""

from __future__ import annotations

import copy
import warnings

import torch


def int8_available() -> bool:
    """Whether this torch build has the CPU int8 kernels (fbgemm on x86, qnnpack on ARM)."""
    engines = torch.backends.quantized.supported_engines
    return any(engine in engines for engine in ("x86", "fbgemm", "qnnpack"))


def quantize_linear_int8(model: torch.nn.Module) -> torch.nn.Module:
    """A float32 CPU copy of the BERT ``model``, its Linear layers dynamically int8 except the
    feed-forward down-projections (``BertOutput.dense``)."""
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    if not int8_available():
        raise RuntimeError("this torch build has no CPU int8 kernels (fbgemm or qnnpack)")
    model = copy.deepcopy(model).float().cpu()
    kept_float = {
        f"{name}.dense"
        for name, module in model.named_modules()
        if type(module).__name__ == "BertOutput"
    }
    chosen = {
        name: per_channel_dynamic_qconfig
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and name not in kept_float
    }
    with warnings.catch_warnings():
        # torch 2.10+ points eager quantisation users to torchao; the API still works, and
        # pulling in torchao for one call is not worth a dependency.
        warnings.simplefilter("ignore")
        return quantize_dynamic(model, chosen, dtype=torch.qint8)
