"""String options checked once, the MONAI way (``look_up_option`` over an enum), with the option named."""

from __future__ import annotations

from enum import Enum
from typing import TypeVar

from monai.utils import look_up_option

__all__ = ["choose"]

E = TypeVar("E", bound=Enum)


def choose(name: str, value: str | E, options: type[E]) -> E:
    """The member of ``options`` whose value is ``value`` (MONAI's ``look_up_option``: it suggests the
    closest spelling).

    Raises:
        ValueError: ``value`` is none of them; the message starts with ``name``.
    """
    try:
        return options(look_up_option(value.value if isinstance(value, Enum) else value, [o.value for o in options]))
    except ValueError as e:
        raise ValueError(f"{name}: {e}".rstrip()) from None
