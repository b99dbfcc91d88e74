"""Random affine augmentation of a whole batch on its device: one ``affine_grid`` + ``grid_sample`` call.

MONAI's ``RandAffine`` resamples one image per call on the host; a device-fed pretraining loop
(:class:`~spcxr_monai.data.DeviceBatchLoader`) draws a batch of parameters on the device instead and
resamples the batch at once, so the host work per step does not grow with the batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from monai.utils import ensure_tuple_rep

from spcxr_monai.utils.generators import DeviceGenerator

__all__ = ["RandAffineBatch"]


class RandAffineBatch:
    """Rotate, scale and translate each image of a (B, C, H, W) batch with probability ``prob``.

    The ranges follow MONAI's ``RandAffine``: the angle is uniform in ``[-rotate_range, rotate_range]``
    (radians), each axis' scale factor is ``1 + U[-scale_range, scale_range]``, the shift is uniform in
    ``[-translate_range, translate_range]`` pixels (rows, cols); pixels that come from outside the image
    take the nearest border value (``padding_mode="border"``), bilinear interpolation. Images that are
    not augmented pass through unchanged (an identity grid samples the pixel centres exactly).

    Parameters are drawn from a torch generator on the batch's device (no host round trip per step);
    ``set_random_state`` seeds it, ``state_dict`` / ``load_state_dict`` carry it through checkpoints.

    Args:
        prob: probability that an image is transformed.
        rotate_range: largest rotation in radians.
        scale_range: largest relative change of scale, one value or (rows, cols).
        translate_range: largest shift in pixels, one value or (rows, cols).
        padding_mode: ``grid_sample``'s padding mode.
    """

    def __init__(
        self,
        prob: float = 0.5,
        rotate_range: float = 0.0,
        scale_range: float | Sequence[float] = 0.0,
        translate_range: float | Sequence[float] = 0.0,
        padding_mode: str = "border",
    ) -> None:
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f"prob must be in [0, 1], got {prob}.")
        self.prob = prob
        self.rotate_range = float(rotate_range)
        self.scale_range = tuple(float(s) for s in ensure_tuple_rep(scale_range, 2))
        self.translate_range = tuple(float(t) for t in ensure_tuple_rep(translate_range, 2))
        self.padding_mode = padding_mode
        self.generator = DeviceGenerator(0)

    def set_random_state(self, seed: int | None = None) -> RandAffineBatch:
        """Seed the parameter generator (created on the first batch's device)."""
        self.generator.reset(0 if seed is None else seed)
        return self

    def state_dict(self) -> dict:
        return self.generator.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.generator.load_state_dict(state)

    def theta(self, batch: int, height: int, width: int, device: torch.device) -> torch.Tensor:
        """(B, 2, 3) matrices for ``affine_grid``: output pixel -> input pixel, in normalised coordinates."""
        g = self.generator.get(device)
        u = torch.rand((5, batch), generator=g, device=device) * 2 - 1  # U[-1, 1]
        apply = (torch.rand(batch, generator=g, device=device) < self.prob).float()
        angle = u[0] * self.rotate_range * apply
        scale_r = 1 + u[1] * self.scale_range[0] * apply
        scale_c = 1 + u[2] * self.scale_range[1] * apply
        shift_r = u[3] * self.translate_range[0] * apply
        shift_c = u[4] * self.translate_range[1] * apply
        cos, sin = torch.cos(angle), torch.sin(angle)
        # rotation and scale in pixels, then to normalised coordinates (x: cols over width, y: rows over height)
        a = torch.stack([cos * scale_c, -sin * scale_r * (height / width), 2 * shift_c / width], -1)
        b = torch.stack([sin * scale_c * (width / height), cos * scale_r, 2 * shift_r / height], -1)
        return torch.stack([a, b], 1)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """
        Args:
            images: (B, C, H, W) float tensor on any device.

        Returns:
            the augmented batch, same shape, dtype and device.
        """
        if images.ndim != 4:
            raise ValueError(f"RandAffineBatch expects a (B, C, H, W) batch, got shape {tuple(images.shape)}.")
        b, _, h, w = images.shape
        theta = self.theta(b, h, w, images.device).to(images.dtype)
        grid = F.affine_grid(theta, list(images.shape), align_corners=False)
        return F.grid_sample(images, grid, mode="bilinear", padding_mode=self.padding_mode, align_corners=False)
