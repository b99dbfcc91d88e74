"""Know when not to answer: a per-image input gate in front of the models.

A model answers for anything it can decode. :class:`InputGate` says, for each file, whether it looks like the
frontal chest radiographs the models were trained on, and why not:

1. **the reader's checks** (:class:`~spcxr_monai.transforms.LoadCXR`: decodable, finite, not constant, the
   header's size, air dark after the DICOM photometric handling); a DICOM whose ``Modality`` is not a
   radiograph (CR, DX, DR) is flagged too;
2. **photometric and layout sanity**: the correlation of the image's 32x32 thumbnail (z-scored) with the mean
   thumbnail of the pretraining CXRs. A chest radiograph correlates strongly (dark lungs either side of a
   bright mediastinum); an inverted one (air bright: a header that lies about its photometric
   interpretation) correlates negatively and is reported as such; a rotated image or another picture
   correlates weakly; and an upright one correlates better with the template than with the template turned by
   90, 180 or 270 degrees (a rotated one does not);
3. **the pretrained encoder's view**: the Mahalanobis distance of the image's mean-pooled encoder features
   to those of the pretraining CXRs (Ledoit-Wolf covariance): far means unlike anything it learnt from.

Both thresholds are calibrated on CXRs not used to fit the template or the feature statistics, at a chosen
false-alarm rate; the calibration (template, feature mean and precision, thresholds, the measured false-alarm
rates) is a ``.npz`` file beside the released encoder, made by ``experiments/calibrate_gate.py``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import torch

from spcxr_monai.data.dedup import THUMBNAIL_SIZE, thumbnail
from spcxr_monai.data.dicom import is_dicom_file
from spcxr_monai.data.errors import CXRInputError
from spcxr_monai.networks.features import image_features, load_feature_encoder
from spcxr_monai.transforms.io import LoadCXR

__all__ = ["GateCalibration", "InputGate", "default_calibration"]

RADIOGRAPH_MODALITIES = ("CR", "DX", "DR", "RG")


@dataclass
class GateCalibration:
    """What :class:`InputGate` compares with (see :func:`fit_gate` in ``experiments/calibrate_gate.py``).

    Attributes:
        template: (1024,) unit-norm mean thumbnail of the fitting CXRs.
        feature_mean: (D,) mean encoder feature.
        feature_precision: (D, D) inverse of the Ledoit-Wolf covariance.
        min_correlation: below it an image is flagged (its calibration quantile).
        max_distance: above it an image is flagged.
        min_orientation_margin: an image whose correlation with the upright template exceeds that with the
            template turned by 90, 180 or 270 degrees by less than this is flagged as rotated.
        checkpoint: the encoder the features come from.
        image_size: the encoder's input side.
        info: how it was fitted and the measured false-alarm rates (JSON).
    """

    template: np.ndarray
    feature_mean: np.ndarray
    feature_precision: np.ndarray
    min_correlation: float
    max_distance: float
    min_orientation_margin: float
    checkpoint: str
    image_size: int
    info: dict

    def save(self, path: str | os.PathLike) -> None:
        np.savez_compressed(
            path,
            template=self.template.astype(np.float32),
            feature_mean=self.feature_mean.astype(np.float32),
            feature_precision=self.feature_precision.astype(np.float32),
            scalars=np.array(
                [self.min_correlation, self.max_distance, self.image_size, self.min_orientation_margin], np.float64
            ),
            checkpoint=np.array(self.checkpoint),
            info=np.array(json.dumps(self.info)),
        )

    @classmethod
    def load(cls, path: str | os.PathLike) -> GateCalibration:
        with np.load(path) as f:
            low, high, size, margin = f["scalars"]
            return cls(
                f["template"],
                f["feature_mean"],
                f["feature_precision"],
                float(low),
                float(high),
                float(margin),
                str(f["checkpoint"]),
                int(size),
                json.loads(str(f["info"])),
            )


def default_calibration() -> Path:
    """The calibration shipped with the package (it names the release whose features it was fitted on)."""
    return Path(__file__).resolve().parent / "pretrained" / "gate_calibration.npz"


class InputGate:
    """Check images before a model answers for them.

    Args:
        calibration: a :class:`GateCalibration` or its ``.npz`` (default: the shipped one).
        device: where the encoder runs.
        batch_size: images per encoder batch.

    ``check(files)`` returns ``{path: {"ok": bool, "reasons": [...], "scores": {...}}}``; a file that cannot
    be read is ``"ok": false`` with the reader's reason, never an exception.
    """

    def __init__(
        self, calibration: GateCalibration | str | os.PathLike | None = None, device: str = "cpu", batch_size: int = 64
    ) -> None:
        if not isinstance(calibration, GateCalibration):
            calibration = GateCalibration.load(calibration or default_calibration())
        self.calibration = calibration
        self.device = device
        self.batch_size = batch_size
        self.encoder = load_feature_encoder(calibration.checkpoint, calibration.image_size).to(device)
        self._load = LoadCXR()

    def _decode(self, path: str) -> tuple[torch.Tensor | None, list[str]]:
        """The decoded image (1, rows, cols), or None and the reason; plus the header's reasons to flag."""
        reasons = []
        try:
            if is_dicom_file(path):
                modality = str(pydicom.dcmread(path, stop_before_pixels=True).get("Modality", "")).upper()
                if modality and modality not in RADIOGRAPH_MODALITIES:
                    reasons.append(f"DICOM modality {modality} is not a radiograph")
            return self._load(path), reasons
        except CXRInputError as e:
            return None, [e.problem]
        except Exception as e:
            return None, [f"cannot be read: {type(e).__name__}: {e}"]

    def features(self, images: Sequence[torch.Tensor]) -> np.ndarray:
        """(N, D) encoder features of decoded (1, rows, cols) images, preprocessed as the bundles do
        (:func:`~spcxr_monai.networks.image_features`)."""
        return image_features(list(images), self.encoder, self.calibration.image_size, self.batch_size, self.device)

    def scores(self, images: Sequence[torch.Tensor]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(template correlation, orientation margin, Mahalanobis feature distance) of each decoded
        (1, rows, cols) image.

        The orientation margin is the correlation with the upright template less the best correlation with
        the template turned by 90, 180 or 270 degrees."""
        cal = self.calibration
        square = cal.template.reshape(THUMBNAIL_SIZE, THUMBNAIL_SIZE)
        turned = np.stack([np.rot90(square, k).ravel() for k in (1, 2, 3)])
        thumbs = np.stack([thumbnail(np.asarray(a)[0]) for a in images])
        correlation = thumbs @ cal.template
        margin = correlation - (thumbs @ turned.T).max(1)
        centred = self.features(images) - cal.feature_mean
        distance = np.sqrt(np.einsum("nd,de,ne->n", centred, cal.feature_precision, centred))
        return correlation, margin, distance

    def check(self, files: Sequence[str | os.PathLike]) -> dict[str, dict]:
        """``{path: {"ok", "reasons", "scores"}}`` for each file (see the class docstring)."""
        cal = self.calibration
        results: dict[str, dict[str, Any]] = {}
        decoded: dict[str, torch.Tensor] = {}
        for f in map(str, files):
            image, reasons = self._decode(f)
            results[f] = {"ok": not reasons, "reasons": reasons, "scores": {}}
            if image is not None:
                decoded[f] = image
        if decoded:
            correlation, margin, distance = self.scores(list(decoded.values()))
            for f, r, m, d in zip(decoded, correlation, margin, distance):
                result = results[f]
                result["scores"] = {
                    "template_correlation": round(float(r), 4),
                    "orientation_margin": round(float(m), 4),
                    "feature_distance": round(float(d), 3),
                }
                turned = r - m  # the best correlation with the template turned by 90, 180 or 270 degrees
                if r <= -cal.min_correlation:
                    result["reasons"].append(f"inverted (air bright): template correlation {r:.2f}")
                elif m < cal.min_orientation_margin and turned >= cal.min_correlation:
                    result["reasons"].append(
                        f"rotated or upside down: the template fits better turned (correlation "
                        f"{turned:.2f} turned, {r:.2f} upright)"
                    )
                elif r < cal.min_correlation:
                    result["reasons"].append(
                        f"does not look like a frontal chest radiograph: template correlation "
                        f"{r:.2f} < {cal.min_correlation:.2f}"
                    )
                elif m < cal.min_orientation_margin:
                    result["reasons"].append(
                        f"rotated or upside down: the template fits as well turned "
                        f"(orientation margin {m:.2f} < {cal.min_orientation_margin:.2f})"
                    )
                if d > cal.max_distance:
                    result["reasons"].append(
                        f"unlike the pretraining radiographs: feature distance {d:.1f} > {cal.max_distance:.1f}"
                    )
                result["ok"] = not result["reasons"]
        return results
