"""An inferer that runs the network under ``torch.autocast`` on any device (MONAI's ``amp`` is CUDA-only)."""

from __future__ import annotations

from typing import Any

import torch
from monai.inferers import SimpleInferer

from spcxr_monai.utils.precision import autocast, resolve_amp_dtype

__all__ = ["AutocastInferer"]


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
        amp: ``none``, ``auto``, ``bf16`` or ``fp16`` (see :func:`~spcxr_monai.utils.resolve_amp_dtype`).
    """

    def __init__(self, device: torch.device | str = "cpu", amp: str | None = "none") -> None:
        super().__init__()
        self.device = torch.device(device)
        self.dtype = resolve_amp_dtype(amp, device)

    def __call__(self, inputs: torch.Tensor, network: Any, *args: Any, **kwargs: Any) -> Any:
        if self.dtype is None:
            return super().__call__(inputs, network, *args, **kwargs)
        with autocast(self.device, self.dtype):
            output = super().__call__(inputs, network, *args, **kwargs)
        return _to_float32(output)
