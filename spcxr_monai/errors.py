"""The toolkit's own errors, and reporting them in one line when a bundle run stops on one.

Every error this toolkit raises on bad input or a bad run derives from :class:`SpcxrError` (and from
the built-in class it always was, e.g. ``ValueError``). MONAI's config parser and transforms wrap
such an error in several layers (``Failed to evaluate ConfigExpression``, ``applying transform``);
:func:`report_errors_briefly` makes an uncaught one print as its own message, not a long traceback.
"""

from __future__ import annotations

import logging
import os
import sys
from types import TracebackType

__all__ = ["SpcxrError", "find_spcxr_error", "report_errors_briefly"]

TRACEBACK_ENV = "SPCXR_TRACEBACK"


class SpcxrError(Exception):
    """Base of the toolkit's errors: the message names the file (or setting) and the problem."""


def find_spcxr_error(error: BaseException | None) -> SpcxrError | None:
    """The first :class:`SpcxrError` in ``error``'s chain of causes and contexts, or None."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, SpcxrError):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def report_errors_briefly() -> None:
    """Print an uncaught :class:`SpcxrError` as ``error: <message>`` and exit with status 1 instead of the
    traceback MONAI's wrappers make of it; other exceptions, and any when ``$SPCXR_TRACEBACK=1``, keep
    Python's full traceback. Called in the bundles' ``initialize``."""
    previous = sys.excepthook

    def hook(kind: type[BaseException], error: BaseException, tb: TracebackType | None) -> None:
        own = find_spcxr_error(error)
        if own is None or os.environ.get(TRACEBACK_ENV, "") not in ("", "0"):
            previous(kind, error, tb)
            return
        print(f"error: {own}\n(set {TRACEBACK_ENV}=1 for the full traceback)", file=sys.stderr)
        # Exit now, status 1: a decoder's native threads (GDCM/ITK after a failed decode) may still be
        # winding down, and a normal interpreter shutdown racing them aborted 1 run in 6 (status 134).
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)

    sys.excepthook = hook
