"""Finding the checkpoint to resume from, and writing one without ever leaving a half-written file."""

from __future__ import annotations

import glob
import os
import re
import tempfile
from typing import Any

import torch

__all__ = ["latest_checkpoint", "save_atomic"]


def save_atomic(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` to a temporary file in the same folder, fsync, then rename over ``path``.

    A crash or kill at any moment leaves either the previous file or the new one, never a truncated one.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp_", suffix=".pt", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private; a checkpoint is an ordinary file
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def latest_checkpoint(ckpt_dir: str, prefix: str = "checkpoint") -> str | None:
    """The newest ``<prefix>_epoch=N.pt`` (or ``<prefix>_iteration=N.pt``) written by MONAI's
    ``CheckpointSaver`` in ``ckpt_dir``, by N; None when there is none.
    """
    best, best_n = None, -1
    for path in glob.glob(os.path.join(ckpt_dir, f"{prefix}_*.pt")):
        match = re.search(r"_(?:epoch|iteration)=(\d+)\.pt$", path)
        if match and int(match.group(1)) > best_n:
            best, best_n = path, int(match.group(1))
    return best
