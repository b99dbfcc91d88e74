"""Errors raised on bad input; each names the offending file or folder."""

from __future__ import annotations

import os

from spcxr_monai.errors import SpcxrError


class CXRInputError(SpcxrError, ValueError):
    """Raised when an input file or folder cannot be used; the message starts with its path."""

    def __init__(self, path: str | os.PathLike, problem: str) -> None:
        self.path = os.fspath(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")
