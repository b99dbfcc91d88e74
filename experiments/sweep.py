"""What the studies share: the labels-fraction x seed x arm sweep with its step budget, their ``runs.csv``
files, and the mean ± std plots against the fraction of training labels."""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from spcxr_monai.data import subsample_stratified
from spcxr_monai.utils import atomic_write, save_palette_png


@dataclass
class SweepRun:
    """One run of a sweep: its labels fraction, seed and arm (recipe or initialisation), and its budget."""

    fraction: float
    seed: int
    arm: str
    n_train: int
    epochs: int
    val_interval: int


def sweep(
    full_train: Sequence[dict],
    fractions: Sequence[float],
    seeds: Sequence[int],
    arms: Sequence[str],
    batch_size: int,
    epochs: int,
    min_steps: int,
    val_evals: int,
) -> Iterator[SweepRun]:
    """Every (fraction, seed, arm), arms innermost: the same labelled subset (``subsample_stratified`` with the
    seed) for every arm, ``epochs`` at 100% and at least ``min_steps`` optimiser steps on a smaller subset, and
    ``val_evals`` validations per run (the model selection)."""
    for fraction in fractions:
        for seed in seeds:
            n_train = len(subsample_stratified(list(full_train), fraction, seed))
            run_epochs = max(epochs, math.ceil(min_steps / math.ceil(n_train / batch_size)))
            for arm in arms:
                yield SweepRun(fraction, seed, arm, n_train, run_epochs, max(1, run_epochs // val_evals))


def write_runs(rows: list[dict], out: Path) -> None:
    """``out/runs.csv``, one row per run (rewritten after each run: a killed study keeps what it finished)."""
    with atomic_write(out / "runs.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def read_runs(paths: Sequence[Path], text_columns: Sequence[str]) -> list[dict]:
    """The rows of several ``runs.csv`` files, numbers parsed (to summarise runs made by several invocations)."""
    rows = []
    for path in paths:
        with open(path) as f:
            for row in csv.DictReader(f):
                rows.append({k: (v if k in text_columns else float(v)) for k, v in row.items()})
    return rows


def plot_against_fraction(
    rows: list[dict], arm_key: str, metrics: Sequence[str], titles: Sequence[str], xlabel: str, path: Path
) -> None:
    """One panel per metric: its mean ± std over seeds against the fraction (log scale), a line per arm."""
    fig = Figure(figsize=(4 * len(metrics), 3.6))
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    arms = list(dict.fromkeys(r[arm_key] for r in rows))
    for ax, metric, title in zip(axes, metrics, titles):
        for arm in arms:
            fractions = sorted({r["fraction"] for r in rows if r[arm_key] == arm})
            values = [[r[metric] for r in rows if r[arm_key] == arm and r["fraction"] == f] for f in fractions]
            ax.errorbar(
                [100 * f for f in fractions],
                [np.mean(v) for v in values],
                yerr=[np.std(v) for v in values],
                marker="o",
                capsize=3,
                label=arm,
            )
        ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    save_palette_png(path, path)  # a third of the bytes: every study folder keeps its plot in the repository
