"""PNG overlays of predicted and true lung outlines during a segmentation evaluation."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from ignite.engine import Engine, Events
from monai.utils import CommonKeys
from monai.visualize import blend_images
from PIL import Image
from skimage.segmentation import find_boundaries

__all__ = ["SegmentationOverlayWriter"]


class SegmentationOverlayWriter:
    """Save PNG overlays (image, ground truth outline green, prediction outline red) during an evaluation.

    Outlines by scikit-image's ``find_boundaries``, drawn over the image by MONAI's ``blend_images``;
    the PNG has the image's size and orientation.

    Expects decollated outputs with ``image`` (1, H, W), ``pred`` and ``label`` one-hot (2, H, W) or
    index maps (1, H, W).

    Args:
        output_dir: folder for ``<image stem>_overlay.png``.
        max_images: stop after this many (0: all).
    """

    def __init__(self, output_dir: str, max_images: int = 0) -> None:
        self.output_dir = output_dir
        self.max_images = max_images
        self.written: list[str] = []

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_STARTED, lambda _: self.written.clear())
        engine.add_event_handler(Events.ITERATION_COMPLETED, self)

    @staticmethod
    def _foreground(x: torch.Tensor) -> np.ndarray:
        x = torch.as_tensor(x).detach().cpu()
        return (x.argmax(0) if x.shape[0] > 1 else x[0]).numpy() > 0

    @classmethod
    def overlay(cls, image: torch.Tensor, label: torch.Tensor, pred: torch.Tensor) -> np.ndarray:
        """(H, W, 3) uint8: the image in grey, the label's outline green, the prediction's red (on top)."""
        grey = torch.as_tensor(image).detach().cpu().float()[:1].numpy()
        grey = (grey - grey.min()) / max(float(grey.max() - grey.min()), 1e-8)
        # colours of the "brg" colour map: 0.5 red, 1.0 green; 0 stays transparent
        outlines = np.where(
            find_boundaries(cls._foreground(pred)), 0.5, np.where(find_boundaries(cls._foreground(label)), 1.0, 0.0)
        )
        rgb = blend_images(grey, outlines[None].astype(np.float32), alpha=1.0, cmap="brg", rescale_arrays=False)
        return (np.clip(np.asarray(rgb), 0, 1).transpose(1, 2, 0) * 255).round().astype(np.uint8)

    def __call__(self, engine: Engine) -> None:
        output: Any = engine.state.output  # a MONAI engine's output: a dict, or a list of them when decollated
        os.makedirs(self.output_dir, exist_ok=True)
        for item in output if isinstance(output, Sequence) else [output]:
            if self.max_images and len(self.written) >= self.max_images:
                return
            image = item[CommonKeys.IMAGE]
            meta = getattr(image, "meta", {}) or {}
            stem = os.path.basename(str(meta.get("filename_or_obj", len(self.written)))).split(".")[0]
            path = os.path.join(self.output_dir, f"{stem}_overlay.png")
            Image.fromarray(self.overlay(image, item[CommonKeys.LABEL], item[CommonKeys.PRED])).save(path)
            self.written.append(path)
