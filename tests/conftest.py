"""Shared fixtures: the real data folder (``$SPCXR_DATA`` or ``../shared/data``) and the embedded sample."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from spcxr_monai.data import sample_dir, shared_data_root


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real data folder; tests that need it are skipped where it is absent (CI has it)."""
    root = Path(shared_data_root())
    if not (root / "covid-qu-ex").is_dir():
        pytest.skip(f"real data folder not found at {root} (set SPCXR_DATA)")
    return root


@pytest.fixture(scope="session")
def dicom_dir(shared_data: Path) -> Path:
    return shared_data / "dicom"


@pytest.fixture(scope="session")
def sample() -> Path:
    return Path(sample_dir())


@pytest.fixture(scope="session")
def real_png(sample: Path) -> Path:
    return sample / "covid" / "images" / sorted(os.listdir(sample / "covid" / "images"))[0]
