"""Fixtures shared by the MONAI Label tests: the bundles are trained once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest
from label_server import train_bundles


@pytest.fixture(scope="session")
def trained(tmp_path_factory, shared_data) -> tuple[Path, dict[str, Path]]:
    """Both bundles trained briefly on real images; (work dir, {bundle name: bundle folder})."""
    work = tmp_path_factory.mktemp("monailabel")
    return work, train_bundles(work, shared_data)
