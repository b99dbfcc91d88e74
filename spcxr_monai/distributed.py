"""torch.distributed for the bundles' ``multi_gpu_train.json`` (launched by ``torchrun`` or SLURM ``srun``).

The backend and the device follow from what the process has: NCCL on ``cuda:LOCAL_RANK`` where CUDA
is available, gloo on the CPU otherwise (CI runs two CPU processes that way). Handlers that write
(logs, TensorBoard, checkpoints, figures, reports) run on the main process only, chosen by name in
the configs (``on_main_process(@train#log_handlers)``), never by slicing a list.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from monai.data import DistributedSampler

from spcxr_monai.errors import ConfigurationError

__all__ = [
    "all_gather_lists",
    "check_single_process_launch",
    "ddp_device_ids",
    "distributed_device",
    "distributed_sampler",
    "init_distributed",
    "is_main_process",
    "main_process_dir",
    "on_main_process",
    "rank_and_world_size",
]


def _slurm_to_torchrun_env() -> None:
    """Under ``srun`` (no torchrun), derive torch's env:// variables from SLURM's."""
    if "RANK" in os.environ or "SLURM_PROCID" not in os.environ:
        return
    os.environ["RANK"] = os.environ["SLURM_PROCID"]
    os.environ["WORLD_SIZE"] = os.environ["SLURM_NTASKS"]
    os.environ["LOCAL_RANK"] = os.environ.get("SLURM_LOCALID", "0")
    os.environ.setdefault("MASTER_PORT", "29500")
    if "MASTER_ADDR" not in os.environ:
        raise ConfigurationError(
            "under srun, export MASTER_ADDR (the first node's host name) before the run; "
            "see the README's multi-node section"
        )


def init_distributed(timeout_minutes: int = 30) -> None:
    """Join the process group once: NCCL with CUDA, gloo without; the CUDA device is ``LOCAL_RANK``."""
    if dist.is_initialized():
        return
    _slurm_to_torchrun_env()
    if "RANK" not in os.environ:
        raise ConfigurationError(
            "multi_gpu_train.json runs under torchrun (or srun): RANK / WORLD_SIZE are not set; "
            "use configs/train.json for a single process"
        )
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    dist.init_process_group(backend="nccl" if cuda else "gloo", timeout=timedelta(minutes=timeout_minutes))


def check_single_process_launch() -> None:
    """A one-process config launched as many processes (``torchrun --nproc_per_node=2`` or ``srun -n 2``
    without ``multi_gpu_train.json``) would train N independent runs into one folder: refuse it."""
    world = int(os.environ.get("WORLD_SIZE", os.environ.get("SLURM_NTASKS", "1")) or 1)
    if world > 1:
        raise ConfigurationError(
            f"launched as {world} processes, but the configs do not include multi_gpu_train.json: each process "
            "would train alone and write the same files; add configs/multi_gpu_train.json to --config_file "
            "(last), or launch one process"
        )


def rank_and_world_size() -> tuple[int, int]:
    """``(rank, world size)`` of the process group, ``(0, 1)`` when not distributed."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def distributed_sampler(dataset: Any, shuffle: bool = True, even_divisible: bool = True) -> DistributedSampler | None:
    """MONAI's ``DistributedSampler`` over ``dataset``, or None for a dataset that holds only this rank's
    shard already (``shards_itself``, e.g. the pretraining bundle's ``UInt8ImageStore``): one
    ``multi_gpu_train.json`` for the host path and the device-fed path."""
    if getattr(dataset, "shards_itself", False):
        return None
    return DistributedSampler(dataset, even_divisible=even_divisible, shuffle=shuffle)


def distributed_device() -> torch.device:
    """``cuda:LOCAL_RANK`` where CUDA is available, else the CPU."""
    if torch.cuda.is_available():
        return torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}")
    return torch.device("cpu")


def ddp_device_ids(device: torch.device) -> list[int] | None:
    """``DistributedDataParallel(device_ids=...)``: the GPU index on CUDA, None on the CPU."""
    return [device.index or 0] if device.type == "cuda" else None


def is_main_process() -> bool:
    """True on rank 0, or when not distributed."""
    return not dist.is_initialized() or dist.get_rank() == 0


def on_main_process(items: Sequence[Any]) -> list[Any]:
    """``items`` on the main process, ``[]`` on the others (for handler lists that write)."""
    return list(items) if is_main_process() else []


def all_gather_lists(values: list[Any]) -> list[Any]:
    """Concatenate every rank's list, in rank order (the list itself when not distributed)."""
    if not dist.is_initialized() or dist.get_world_size() == 1:
        return list(values)
    gathered: list[list[Any]] = [[] for _ in range(dist.get_world_size())]
    dist.all_gather_object(gathered, list(values))
    return [v for part in gathered for v in part]


def main_process_dir(path: str) -> str:
    """``path`` on the main process; a throwaway temporary folder on the others (for writers such as
    TensorBoard's that every rank constructs but only the main process should fill)."""
    if is_main_process():
        return path
    folder = tempfile.mkdtemp(prefix=f"spcxr_rank{dist.get_rank()}_")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)  # nothing of it is kept
    return folder
