"""How many CPU threads torch uses: the bundles set it once at start-up."""

from __future__ import annotations

import logging
import os

import torch

__all__ = ["available_cpus", "configure_threads"]

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
