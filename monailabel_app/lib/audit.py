"""The reading room's audit log: who ran which model on which study, who saved which label, and how it went.

One JSON object a line (``time`` in UTC ISO 8601, ``user``, ``action``, ``model``, ``study``, ``series``,
``result``), appended and flushed to disk line by line, at the path in ``$SPCXR_AUDIT_LOG`` (the reading room
command puts it in its log folder). Without that variable nothing is written.
"""

from __future__ import annotations

import datetime
import json
import os
import threading
from typing import Any

from lib.identity import current_reader

__all__ = ["AUDIT_ENV", "record"]

AUDIT_ENV = "SPCXR_AUDIT_LOG"
_lock = threading.Lock()


def record(action: str, result: str, model: str = "", study: str = "", series: str = "", **extra: Any) -> None:
    """Append one line for ``action`` by the request's signed-in reader (``-`` where there is none)."""
    path = os.environ.get(AUDIT_ENV)
    if not path:
        return
    line = {
        "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds"),
        "user": current_reader.get() or "-",
        "action": action,
        "model": model,
        "study": study,
        "series": series,
        "result": result,
        **extra,
    }
    text = json.dumps(line, sort_keys=False) + "\n"
    with _lock:  # inferences run in worker threads: one whole line at a time
        with open(path, "a", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
