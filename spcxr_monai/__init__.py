"""spcxr_monai: SPCXR (GMML self-supervised pretraining of ViTs on chest X-rays) on MONAI."""

__version__ = "0.1.0"
