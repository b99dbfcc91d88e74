"""An inferer that runs the network under ``torch.autocast`` on any device (MONAI's ``amp`` is CUDA-only)."""

from __future__ import annotations

from typing import Any

import torch
from monai.inferers import SimpleInferer

__all__ = ["AutocastInferer", "resolve_amp_dtype"]

DTYPES = {"bf16": torch.bfloat16, "bfloat16": torch.bfloat16, "fp16": torch.float16, "float16": torch.float16}


def resolve_amp_dtype(amp: str | None, device: torch.device | str) -> torch.dtype | None:
    """The autocast dtype to use for ``amp`` on ``device``, or None for full precision.

    ``"auto"`` is bf16 on a GPU that supports it, else fp16 on GPU, else none (bf16 on a CPU pays off
    only on CPUs with AMX: ask for it explicitly). fp16 on the CPU falls back to none.
    """
    device = torch.device(device)
    amp = (amp or "none").lower()
    if amp in ("none", "false", "fp32", "off"):
        return None
    if amp == "auto":
        if device.type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if amp not in DTYPES:
        raise ValueError(f"amp must be one of none, auto, bf16, fp16; got {amp!r}")
    dtype = DTYPES[amp]
    if device.type == "cpu" and dtype == torch.float16:
        return None
    return dtype


class AutocastInferer(SimpleInferer):
    """``SimpleInferer`` under ``torch.autocast(device_type, dtype)``; a no-op when ``dtype`` is None.

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
            return super().__call__(inputs, network, *args, **kwargs)
