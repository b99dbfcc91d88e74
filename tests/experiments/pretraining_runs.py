"""A pretraining run folder as the bundle leaves it, for the release scripts' tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.tensorboard import SummaryWriter

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"


def fake_run(root: Path, l1: list[float], probe: dict[int, float], best: int, weights: dict | None = None) -> Path:
    """A pretraining bundle_root as the bundle leaves it: tensorboard curve, probe record, figures, weights."""
    (root / "models").mkdir(parents=True)
    (root / "logs" / "figures").mkdir(parents=True)
    with SummaryWriter(str(root / "logs" / "tensorboard")) as writer:
        for epoch, value in enumerate(l1, start=1):
            writer.add_scalar("val_masked_l1", value, epoch)
    history = [
        {"epoch": e, "probe_accuracy": a, "probe_accuracy_balanced_accuracy": a - 0.05} for e, a in probe.items()
    ]
    (root / "models" / "feature_probe.json").write_text(
        json.dumps({"probe": "knn", "k": 20, "best_epoch": best, "history": history})
    )
    for epoch in range(1, len(l1) + 1):
        write_figure(root / "logs" / "figures" / f"reconstruction_epoch{epoch:03d}.png", f"{root.name} {epoch}")
    if weights is not None:
        torch.save(weights, root / "models" / "model_probe.pt")
    return root


def write_figure(path: Path, label: str) -> None:
    """A PNG whose grey pixels spell ``label``, so that a copied figure can be told apart from the others."""
    Image.fromarray(np.frombuffer(label.encode(), dtype=np.uint8)[None]).save(path)


def read_figure(path: Path) -> str:
    """The label :func:`write_figure` put in a figure (after a palette conversion too)."""
    with Image.open(path) as image:
        return np.asarray(image.convert("L")).tobytes().decode()
