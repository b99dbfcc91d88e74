"""Writing a file so that a crash or ``kill -9`` at any moment leaves the old file or the new one, never half."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from typing import IO, Any

import torch

__all__ = ["TMP_PREFIX", "TMP_SUFFIX", "atomic_write", "remove_partial_writes", "save_atomic"]

TMP_PREFIX = ".tmp_"  # what a killed write leaves behind; never a complete file, safe to delete
TMP_SUFFIX = ".tmp"  # never the real extension: a glob for "*.png" or "*.pt" does not find a partial file


def _fsync_dir(folder: str) -> None:
    """Make the rename itself durable (a power cut after ``os.replace`` could otherwise undo it)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. Windows: folders cannot be opened
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb", **open_kwargs: Any) -> Iterator[IO]:
    """Open a temporary file beside ``path`` for writing; on a clean exit fsync it and rename it over ``path``.

    ``with atomic_write(p, "w", newline="") as f: ...``. The folder is created; on an exception the
    temporary file is removed and ``path`` is untouched. The file gets ordinary permissions (``mkstemp``
    makes it private).

    Args:
        path: the file to (re)write.
        mode: ``"wb"`` or ``"w"`` (text; ``encoding`` defaults to UTF-8).
        open_kwargs: passed to :func:`open` (``newline``, ``encoding``).
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, suffix=TMP_SUFFIX, dir=folder)
    if "b" not in mode:
        open_kwargs.setdefault("encoding", "utf-8")
    try:
        with os.fdopen(fd, mode, **open_kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
        _fsync_dir(folder)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def remove_partial_writes(folder: str | os.PathLike) -> int:
    """Delete what killed :func:`atomic_write` calls left below ``folder``; how many files went."""
    removed = 0
    for root, _, names in os.walk(os.fspath(folder)):
        for name in names:
            if name.startswith(TMP_PREFIX) and name.endswith(TMP_SUFFIX):
                os.remove(os.path.join(root, name))
                removed += 1
    return removed


def save_atomic(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` through :func:`atomic_write`."""
    with atomic_write(path) as f:
        torch.save(obj, f)
