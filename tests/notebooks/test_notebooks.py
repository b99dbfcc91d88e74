"""The research notebook runs end to end (small settings) and produces its figures."""

from __future__ import annotations

import pytest

from pathlib import Path

import nbformat
from nbclient import NotebookClient

pytestmark = pytest.mark.slow  # executes the walkthrough (pretrains and fine-tunes)

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def test_walkthrough_notebook_executes(monkeypatch, tmp_path):
    monkeypatch.setenv("SPCXR_NOTEBOOK_SMALL", "1")
    # its runs go to pytest's folder, cleaned with it, not to a new /tmp folder per test run
    monkeypatch.setenv("SPCXR_NOTEBOOK_WORK", str(tmp_path))
    monkeypatch.setenv("PYTHONWARNINGS", "ignore")
    nb = nbformat.read(NOTEBOOKS / "spcxr_walkthrough.ipynb", as_version=4)
    NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if o.output_type == "display_data" and "image/png" in o.get("data", {})]
    assert len(images) >= 5  # images + DICOM, group masks, reconstruction, confusion matrices, rollout
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "macro AUC" in text and "{'covid': 0, 'normal': 1, 'pneumonia': 2}" in text
    assert (tmp_path / "pretrain" / "models" / "model.pt").is_file()
