"""Where outputs go relative to their inputs."""

from __future__ import annotations

import os

__all__ = ["common_parent"]


def common_parent(files: list[str] | tuple[str, ...]) -> str:
    """The deepest folder holding all ``files`` ("" for none): outputs written relative to it keep the
    inputs' sub-folders, so ``p1/IM-0001.png`` and ``p2/IM-0001.png`` give two results, not one."""
    if not files:
        return ""
    return os.path.commonpath([os.path.dirname(os.path.abspath(os.fspath(f))) for f in files])
