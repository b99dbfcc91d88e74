"""Reading an engine's decollated outputs together with their source files."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from ignite.engine import Engine
from monai.utils import CommonKeys

__all__ = ["outputs_with_files"]


def outputs_with_files(engine: Engine) -> Iterator[tuple[Any, str]]:
    """The decollated outputs of the engine's last iteration, each with its image's source file ("" if unknown)."""
    output: Any = engine.state.output  # a MONAI engine's output: a dict, or a list of them when decollated
    for item in output if isinstance(output, Sequence) else [output]:
        meta = getattr(item.get(CommonKeys.IMAGE), "meta", {}) or {}
        yield item, str(meta.get("filename_or_obj", "") or "")
