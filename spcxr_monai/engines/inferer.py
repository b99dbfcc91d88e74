"""An inferer that runs the network under ``torch.autocast`` on any device (MONAI's ``amp`` is CUDA-only)."""

from __future__ import annotations

from typing import Any

import torch
from monai.inferers import SimpleInferer

__all__ = ["AutocastInferer", "cpu_has_fast_bf16", "resolve_amp_dtype"]

DTYPES = {"bf16": torch.bfloat16, "bfloat16": torch.bfloat16, "fp16": torch.float16, "float16": torch.float16}


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
    """
    device = torch.device(device)
    amp = (amp or "none").lower()
    if amp in ("none", "false", "fp32", "off"):
        return None
    if amp == "auto":
        if device.type == "cpu":
            return torch.bfloat16 if cpu_has_fast_bf16() else None
        if device.type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if amp not in DTYPES:
        raise ValueError(f"amp must be one of none, auto, bf16, fp16; got {amp!r}")
    dtype = DTYPES[amp]
    if device.type == "cpu" and dtype == torch.float16:
        return None
    return dtype


def _to_float32(output: Any) -> Any:
    """Half-precision floating tensors in ``output`` (tensor, sequence or mapping) back to float32."""
    if isinstance(output, torch.Tensor):
        return output.float() if output.dtype in (torch.bfloat16, torch.float16) else output
    if isinstance(output, (list, tuple)):
        return type(output)(_to_float32(o) for o in output)
    if isinstance(output, dict):
        return {k: _to_float32(v) for k, v in output.items()}
    return output


class AutocastInferer(SimpleInferer):
    """``SimpleInferer`` under ``torch.autocast(device_type, dtype)``; a no-op when ``dtype`` is None.

    The network runs in reduced precision; its outputs come back as float32, so losses (class-weighted
    cross-entropy, Dice), metrics and writers see full precision, as the AMP recipes compute them.

    Args:
        device: where the network runs (its type picks the autocast backend).
        amp: ``none``, ``auto``, ``bf16`` or ``fp16`` (see :func:`resolve_amp_dtype`).
    """

    def __init__(self, device: torch.device | str = "cpu", amp: str | None = "none") -> None:
        super().__init__()
        self.device_type = torch.device(device).type
        self.dtype = resolve_amp_dtype(amp, device)

    def __call__(self, inputs: torch.Tensor, network: Any, *args: Any, **kwargs: Any) -> Any:
        if self.dtype is None:
            return super().__call__(inputs, network, *args, **kwargs)
        with torch.autocast(self.device_type, dtype=self.dtype):
            output = super().__call__(inputs, network, *args, **kwargs)
        return _to_float32(output)
