"""spcxr_monai: SPCXR (GMML self-supervised pretraining of ViTs on chest X-rays) on MONAI.

Subpackages are imported here so bundle configs can use ``$import spcxr_monai`` and then
``spcxr_monai.data...`` / ``spcxr_monai.engines...`` in expressions.
"""

__version__ = "0.1.0"

from spcxr_monai import data, distributed, engines, errors, export, metrics, networks, pretrained, transforms, utils, workflows  # noqa: E402

__all__ = ["data", "distributed", "engines", "errors", "export", "metrics", "networks", "pretrained", "transforms", "utils", "workflows", "__version__"]
