"""The one check every decoded image passes before it can reach a model."""

from __future__ import annotations

import numpy as np

from spcxr_monai.data.errors import CXRInputError

__all__ = ["check_sound"]


def check_sound(array: np.ndarray, path: str, context: str = "") -> None:
    """Refuse a decoded image no model should see: values that are not finite, or one constant value.

    Args:
        array: the decoded pixel values, any shape.
        path: the source file, named in the error.
        context: what the message adds in brackets (the format, or the header values that made them).

    Raises:
        CXRInputError: naming the file and the problem.
    """
    finite = np.isfinite(array)
    if not finite.all():
        raise CXRInputError(path, f"{int((~finite).sum())} non-finite pixel values ({context})")
    if array.size and np.ptp(array) == 0:
        raise CXRInputError(
            path, f"decoded image is constant ({float(array.flat[0]):g} everywhere; {context}): blank or undecodable"
        )
