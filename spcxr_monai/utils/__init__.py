"""Low-level helpers with one job each, used by every other layer: threads, precision, atomic writes,
device-side random streams, terminals, output paths, an operation counter and palette PNGs."""

from spcxr_monai.utils.atomic import TMP_PREFIX, TMP_SUFFIX, atomic_write, remove_partial_writes, save_atomic
from spcxr_monai.utils.generators import DeviceGenerator
from spcxr_monai.utils.op_counter import OpCounter
from spcxr_monai.utils.palette import save_palette_png
from spcxr_monai.utils.paths import common_parent
from spcxr_monai.utils.precision import AmpMode, autocast, cpu_has_fast_bf16, resolve_amp_dtype
from spcxr_monai.utils.terminal import on_terminal
from spcxr_monai.utils.threads import available_cpus, configure_threads

__all__ = [
    "TMP_PREFIX",
    "TMP_SUFFIX",
    "AmpMode",
    "DeviceGenerator",
    "OpCounter",
    "atomic_write",
    "autocast",
    "available_cpus",
    "common_parent",
    "configure_threads",
    "cpu_has_fast_bf16",
    "on_terminal",
    "remove_partial_writes",
    "resolve_amp_dtype",
    "save_atomic",
    "save_palette_png",
]
