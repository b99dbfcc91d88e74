"""A seeded random generator that lives on whatever device the batches are on, and survives checkpoints."""

from __future__ import annotations

import warnings

import torch

__all__ = ["DeviceGenerator"]


class DeviceGenerator:
    """A ``torch.Generator`` created lazily on the device of the first batch, from ``seed`` or a saved state.

    Device-side augmentation draws its numbers where the batch is (no host round trip per step); the
    device is only known when the first batch arrives, and a checkpoint may be restored before that.
    ``get(device)`` returns the generator (re-created from the seed if the device changes);
    ``state_dict`` / ``load_state_dict`` carry its stream through checkpoints, so a resumed run draws
    what the uninterrupted one would have.

    Args:
        seed: the seed of a fresh stream.
    """

    def __init__(self, seed: int = 0) -> None:
        self.seed = int(seed)
        self._generator: torch.Generator | None = None
        self._pending_state: torch.Tensor | None = None

    def reset(self, seed: int | None = None) -> None:
        """Forget the stream (and any state waiting to be restored); the next draw starts from ``seed``."""
        if seed is not None:
            self.seed = int(seed)
        self._generator = None
        self._pending_state = None

    def get(self, device: torch.device | str) -> torch.Generator:
        """The generator on ``device``: from the saved state if one waits, else from ``seed``."""
        device = torch.device(device)
        if self._generator is None or self._generator.device != device:
            self._generator = torch.Generator(device=device).manual_seed(self.seed)
            if self._pending_state is not None:
                try:
                    self._generator.set_state(self._pending_state)
                except RuntimeError:  # saved on another kind of device: its stream cannot continue here
                    warnings.warn(
                        "generator state saved on another device; the stream restarts from the seed", stacklevel=2
                    )
                self._pending_state = None
        return self._generator

    def set(self, generator: torch.Generator) -> None:
        """Use ``generator`` from now on (e.g. one seeded per DataLoader worker)."""
        self._generator = generator
        self._pending_state = None

    def state_dict(self) -> dict:
        return {"generator": None if self._generator is None else self._generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self._generator = None
        self._pending_state = state.get("generator")  # applied once the batch's device is known
