"""The benchmark scripts still run against the library, at a tiny size (their figures come from full runs:
``benchmarks/results``). A script nobody runs falls behind a changed signature unseen: ``experiments/drift_study.py``
did. Figures are checked for sense (finite, non-negative), never for speed."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from spcxr_monai.data import sample_dir

REPO = Path(__file__).resolve().parents[2]


def run_script(script: str, *args: str) -> str:
    """stdout of ``python script args`` from the repository root, on one thread; fails with its stderr."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, script, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, f"{script} failed:\n{proc.stderr[-3000:]}"
    return proc.stdout


def table_row(output: str, prefix: str) -> list[float]:
    """The numbers of the Markdown table row starting with ``prefix``, each checked finite and non-negative."""
    row = next((line for line in output.splitlines() if line.startswith(prefix)), None)
    assert row is not None, f"no row {prefix!r} in:\n{output}"
    cells = [c.strip().replace(",", "").rstrip("x%") for c in row[len(prefix) :].strip("|").split("|")]
    numbers = [float(c) for c in cells if re.fullmatch(r"[0-9.]+", c)]
    assert numbers and all(math.isfinite(n) and n >= 0 for n in numbers), row
    return numbers


@pytest.mark.slow
def test_pretrain_step_times_both_recipes():
    out = run_script(
        "benchmarks/pretrain_step.py",
        *("--steps", "1", "--batch-size", "2", "--image-size", "32", "--modes", "fp32", "--threads", "1"),
    )
    assert table_row(out, "| vit | fp32 |")[0] > 0 and table_row(out, "| gmml | fp32 |")[0] > 0
    ratio = float(re.search(r"GMML step / bare ViT, fp32: ([0-9.]+)x", out).group(1))
    assert 0 < ratio < 5


@pytest.mark.slow
def test_unetr_feature_size_writes_its_table(tmp_path):
    out_md = tmp_path / "unetr.md"
    args = ("--feature-sizes", "16", "--image-size", "64", "--batch-size", "2", "--steps", "1", "--out", str(out_md))
    out = run_script("benchmarks/unetr_feature_size.py", *args)
    assert table_row(out, "| 16 |")[0] > 0
    assert "| 16 |" in out_md.read_text()


@pytest.mark.slow
def test_mask_cost_and_profile_step_run():
    assert len(table_row(run_script("benchmarks/mask_cost.py", "--repeats", "1"), "| 32 | 224 |")) >= 5
    out = run_script(
        "benchmarks/profile_step.py",
        *("--model-size", "tiny", "--image-size", "32", "--batch-size", "2", "--steps", "1", "--rows", "3"),
    )
    assert out.count("Self CPU time total") == 2  # one profile per recipe (vit, gmml)


@pytest.mark.slow
def test_pretrain_data_path_runs_both_paths():
    args = ("--dataset_dir", sample_dir(), "--epochs", "1", "--batch_size", "4", "--image_counts", "16", "--steps", "2")
    out = run_script("benchmarks/pretrain_data_path.py", *args)
    assert table_row(out, "| 16 | host |")[0] > 0 and table_row(out, "| 16 | device |")[0] > 0


@pytest.mark.slow
def test_benchmarks_on_the_real_data_run(shared_data):
    data = ("--data", str(shared_data))
    out = run_script(
        "benchmarks/bf16_vs_fp32_pretrain.py", *data, "--images", "8", "--epochs", "1", "--image-size", "32"
    )
    fp32, bf16 = map(float, re.search(r"fp32 ([0-9.]+) .*bf16 ([0-9.]+) ", out).groups())
    assert 0 < fp32 < 2 and 0 < bf16 < 2  # masked L1 of z-scored images
    table_row(run_script("benchmarks/loader_and_mask.py", *data, "--repeats", "1"), "| group_mask_batch align=16")
    out = run_script("benchmarks/prepare_throughput.py", *data, "--copies", "1", "--pngs", "4", "--size", "64")
    table_row(out, "| COVID-QU-Ex PNGs")
