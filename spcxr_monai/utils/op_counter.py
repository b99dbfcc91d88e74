"""Counting the ATen operations a piece of code dispatches (GPU launches), for benchmarks and tests."""

from __future__ import annotations

from torch.utils._python_dispatch import TorchDispatchMode

__all__ = ["OpCounter"]


class OpCounter(TorchDispatchMode):
    """Counts the ATen operations dispatched while it is active (views included): the launches a GPU would
    see, for benchmarks and tests of per-step host work. ``with OpCounter() as ops: ...; ops.count``."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.count += 1
        return func(*args, **(kwargs or {}))
