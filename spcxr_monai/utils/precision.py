"""Which reduced precision to compute in, on which device, and running code under it."""

from __future__ import annotations

import contextlib
from enum import Enum

import torch

from spcxr_monai.utils.options import choose

__all__ = ["AmpMode", "autocast", "cpu_has_fast_bf16", "resolve_amp_dtype"]


class AmpMode(str, Enum):
    """The ``amp`` options of the bundles, the inferer and the feature extractors."""

    NONE = "none"
    AUTO = "auto"
    BF16 = "bf16"
    FP16 = "fp16"


# spellings accepted for each mode (the bundles' flags and torch's dtype names)
_ALIASES = {"false": "none", "fp32": "none", "off": "none", "bfloat16": "bf16", "float16": "fp16"}
_DTYPES = {AmpMode.BF16: torch.bfloat16, AmpMode.FP16: torch.float16}


def cpu_has_fast_bf16() -> bool:
    """Whether this CPU computes bf16 matrix products natively (AVX512-BF16 or AMX tiles).

    Without either, oneDNN emulates bf16 and autocast is slower than fp32; with AVX512-BF16 alone a
    ViT training step ran 1.4x (ViT-Ti, 128 px) to 1.6x (ViT-S, 224 px) faster in bf16 than in fp32
    (``benchmarks/pretrain_step.py``, ``benchmarks/README.md``).
    """
    cpu = getattr(torch, "cpu", None)
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(cpu, name, lambda: False)()) for name in checks)


def resolve_amp_dtype(amp: str | None, device: torch.device | str) -> torch.dtype | None:
    """The autocast dtype to use for ``amp`` on ``device``, or None for full precision.

    ``"auto"`` is bf16 on a GPU that supports it, else fp16 on GPU; on a CPU it is bf16 where
    :func:`cpu_has_fast_bf16` says the CPU has native bf16 units, else none. fp16 on the CPU falls
    back to none (CPU fp16 autocast is slow and gains nothing).

    Raises:
        ValueError: ``amp`` is not one of :class:`AmpMode` (or an alias such as ``fp32``, ``bfloat16``).
    """
    device = torch.device(device)
    name = (amp or "none").lower()
    mode = choose("amp", _ALIASES.get(name, name), AmpMode)
    if mode == AmpMode.NONE:
        return None
    if mode == AmpMode.AUTO:
        if device.type == "cpu":
            return torch.bfloat16 if cpu_has_fast_bf16() else None
        if device.type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    dtype = _DTYPES[mode]
    if device.type == "cpu" and dtype == torch.float16:
        return None
    return dtype


def autocast(device: torch.device | str, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """``torch.autocast`` on ``device``'s type in ``dtype``; a no-op context when ``dtype`` is None."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=dtype)
