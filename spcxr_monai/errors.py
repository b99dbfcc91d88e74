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
import time
from types import TracebackType

__all__ = ["ConfigurationError", "SpcxrError", "find_spcxr_error", "report_errors_briefly"]

TRACEBACK_ENV = "SPCXR_TRACEBACK"
RANK0_FIRST_S = 10.0  # how long a rank > 0 waits before exiting on a ConfigurationError rank 0 reports


class SpcxrError(Exception):
    """Base of the toolkit's errors: the message names the file (or setting) and the problem."""


class ConfigurationError(SpcxrError, ValueError):
    """A setting, or a combination of configs, that cannot work; the message names it. The same on every
    rank of a distributed run, so only rank 0 reports it."""


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
    Python's full traceback. Called in the bundles' ``initialize``.

    Under ``torchrun`` / ``srun`` a :class:`ConfigurationError` is printed by rank 0 only (every rank meets
    the same one); other errors (e.g. a corrupt file in one rank's shard) by the rank that met them."""
    previous = sys.excepthook

    def hook(kind: type[BaseException], error: BaseException, tb: TracebackType | None) -> None:
        own = find_spcxr_error(error)
        if own is None or os.environ.get(TRACEBACK_ENV, "") not in ("", "0"):
            previous(kind, error, tb)
            return
        if not (isinstance(own, ConfigurationError) and _launched_rank() > 0):
            # to the process's own stderr: torch.distributed's hook hands this one a buffer it prints afterwards,
            # which an exit from here would lose
            print(f"error: {own}\n(set {TRACEBACK_ENV}=1 for the full traceback)", file=sys.__stderr__ or sys.stderr)
        else:
            # another rank's exit makes the launcher stop rank 0, maybe before it printed the message this rank
            # keeps quiet about (seen under load): rank 0 goes first, and the launcher then stops this one
            time.sleep(RANK0_FIRST_S)
        # Exit now, status 1: a decoder's native threads (GDCM/ITK after a failed decode) may still be
        # winding down, and a normal interpreter shutdown racing them aborted 1 run in 6 (status 134).
        logging.shutdown()
        for stream in (sys.stdout, sys.stderr, sys.__stderr__):
            if stream is not None:
                stream.flush()
        os._exit(1)

    sys.excepthook = hook


def _launched_rank() -> int:
    """This process's rank as the launcher set it (torchrun's ``RANK``, SLURM's ``SLURM_PROCID``), else 0."""
    return int(os.environ.get("RANK", os.environ.get("SLURM_PROCID", "0")) or 0)
