"""Helpers for running the bundles in tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BUNDLES = Path(__file__).resolve().parents[1] / "bundles"
SCHEMA = BUNDLES / "schema" / "meta_schema.json"


def run_bundle(bundle: str, *args: str, timeout: int = 900, check: bool = True) -> subprocess.CompletedProcess:
    """``python -m monai.bundle run ARGS`` from the bundle's own folder, as a user would; with ``check``,
    a non-zero exit fails the test."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(
        [sys.executable, "-m", "monai.bundle", "run", *args],
        cwd=BUNDLES / bundle,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    if check and proc.returncode != 0:
        pytest.fail(f"bundle run failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc
