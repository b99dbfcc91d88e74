"""Finding the checkpoint to resume from."""

from __future__ import annotations

import glob
import os
import re

__all__ = ["latest_checkpoint"]


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
