"""Whether output goes to a person (a terminal) or to a log file."""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["on_terminal"]


def on_terminal(stream: Any = None) -> bool:
    """True when ``stream`` (stderr by default) is an interactive terminal: progress bars show there and
    stay out of log files and CI output."""
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or replaced streams
        return False
