"""A progress bar for terminals only."""

from __future__ import annotations

from typing import Any

from ignite.engine import Engine
from ignite.handlers import ProgressBar

from spcxr_monai.utils.terminal import on_terminal

__all__ = ["TerminalProgressBar"]


class TerminalProgressBar(ProgressBar):
    """Ignite's ``ProgressBar``, attached only when stderr is a terminal: log files and CI output get no
    bar redraws (the logging handlers report there)."""

    def attach(self, engine: Engine, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        if on_terminal():
            super().attach(engine, *args, **kwargs)
