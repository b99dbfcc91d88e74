"""Fixtures of the experiment scripts' tests."""

from __future__ import annotations

import importlib.util

import pytest
from pretraining_runs import EXPERIMENTS


@pytest.fixture(scope="session")
def load_script():
    """Import a script of ``experiments/`` by its path (scripts, not a package), e.g. ``release/export_encoder.py``."""

    def load(relative: str):
        path = EXPERIMENTS / relative
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load
