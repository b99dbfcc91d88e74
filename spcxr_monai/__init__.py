"""spcxr_monai: SPCXR (GMML self-supervised pretraining of ViTs on chest X-rays) on MONAI.

Subpackages are imported here so bundle configs can use ``$import spcxr_monai`` and then
``spcxr_monai.data...`` / ``spcxr_monai.handlers...`` in expressions.
"""

__version__ = "0.1.0"

from spcxr_monai import (
    data,
    distributed,
    engines,
    errors,
    export,
    gate,
    handlers,
    metrics,
    networks,
    pretrained,
    transforms,
    utils,
    visualize,
    workflows,
)

__all__ = [
    "__version__",
    "data",
    "distributed",
    "engines",
    "errors",
    "export",
    "gate",
    "handlers",
    "metrics",
    "networks",
    "pretrained",
    "transforms",
    "utils",
    "visualize",
    "workflows",
]
