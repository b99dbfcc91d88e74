"""Process-wide settings the bundles apply at start-up; an operation counter for benchmarks and tests."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

__all__ = ["OpCounter", "available_cpus", "common_parent", "configure_threads"]

logger = logging.getLogger(__name__)


def available_cpus() -> int:
    """CPUs this process may run on: its affinity mask, capped by a cgroup CPU quota where one is set."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        with open("/sys/fs/cgroup/cpu.max", encoding="utf-8") as f:
            quota, period = f.read().split()[:2]
        if quota != "max":
            cpus = min(cpus, max(1, int(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cpus)


def configure_threads(num_threads: int | None = None) -> int:
    """Set torch's intra-op threads: ``num_threads``, else ``$OMP_NUM_THREADS``, else :func:`available_cpus`.

    One process per machine should own all cores: two torch processes with 2 threads each on 2 cores
    ran a pretraining step 7-14x slower (OpenMP oversubscription), so jobs sharing a machine should
    each get ``OMP_NUM_THREADS=1`` (or a share of the cores).

    Returns:
        the thread count now in force.
    """
    if num_threads is None:
        env = os.environ.get("OMP_NUM_THREADS", "").strip()
        num_threads = int(env) if env.isdigit() and int(env) > 0 else available_cpus()
    if num_threads < 1:
        raise ValueError(f"num_threads must be >= 1, got {num_threads}.")
    torch.set_num_threads(num_threads)
    logger.info("torch uses %d CPU threads", num_threads)
    return num_threads


def common_parent(files: list[str] | tuple[str, ...]) -> str:
    """The deepest folder holding all ``files`` ("" for none): outputs written relative to it keep the
    inputs' sub-folders, so ``p1/IM-0001.png`` and ``p2/IM-0001.png`` give two results, not one."""
    if not files:
        return ""
    return os.path.commonpath([os.path.dirname(os.path.abspath(os.fspath(f))) for f in files])


def on_terminal(stream: Any = None) -> bool:
    """True when ``stream`` (stderr by default) is an interactive terminal: progress bars show there and
    stay out of log files and CI output."""
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or replaced streams
        return False


class OpCounter(TorchDispatchMode):
    """Counts the ATen operations dispatched while it is active (views included): the launches a GPU would
    see, for benchmarks and tests of per-step host work. ``with OpCounter() as ops: ...; ops.count``."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.count += 1
        return func(*args, **(kwargs or {}))
