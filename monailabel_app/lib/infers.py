"""MONAI Label inference tasks over the spcxr-monai bundles.

MONAI Label's :class:`BundleInferTask` reads a bundle's ``inference.json`` and runs its
``preprocessing`` / ``inferer`` / ``postprocessing``. Three things differ here:

- the bundle's own file writers (``SaveImaged``, the DICOM SEG writer) are dropped: MONAI Label writes
  the result itself;
- the segmentation bundle already restores the mask to the input's size (``ResizeToSourced``) and transposes
  it to MONAI's (x, y) order, so MONAI Label's ``Restored`` (which resizes to the meta's
  ``spatial_shape``) is not added, the label value is the class index (1), and the channel is
  squeezed so the written PNG is (rows, cols) and overlays the input;
- the task type comes from the bundle's metadata (output ``format``), not from its folder name;
- a classification answer's probabilities are the bundle's calibrated ones (its ``inference.json`` applies the
  temperature fitted after training) and the result JSON carries ``screening``: the normal-vs-abnormal verdict at
  the model's calibrated threshold, with its provenance (``models/calibration.json``);
- the result JSON carries the input gate's verdict on the image (``gate``: ``{"ok", "reasons", "scores"}`` of
  :class:`spcxr_monai.gate.InputGate`), as the bundle's own inference writes it to ``gate.json``; a flagged
  image still gets its answer. The bundle config's ``gate`` (``--conf bundle_overrides '{"gate": false}'``)
  turns it off.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from typing import Any, Callable

from monai.transforms import SaveImaged, SqueezeDimd
from monailabel.interfaces.tasks.infer_v2 import InferType
from monailabel.tasks.infer.bundle import BundleInferTask

from spcxr_monai.metrics import load_calibration, screening_verdict
from spcxr_monai.transforms import SaveDicomSegd

logger = logging.getLogger(__name__)

# Bundle writers that must not run inside the server: MONAI Label returns the result itself, and a
# final label reaches a PACS as DICOM SEG through the datastore (lib/dicomweb.py).
BUNDLE_WRITERS = [SaveImaged, SaveDicomSegd]


def parse_overrides(text: str | None) -> dict[str, Any]:
    """The ``bundle_overrides`` conf value: a JSON object of config ids -> values, or empty."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"--conf bundle_overrides must be a JSON object, got {text!r}: {e}") from e
    if not isinstance(value, dict):
        raise ValueError(f"--conf bundle_overrides must be a JSON object, got {text!r}")
    return value


def bundle_task_type(path: str) -> str:
    """``segmentation`` or ``classification``, from the output ``format`` in the bundle's metadata."""
    with open(os.path.join(path, "configs", "metadata.json")) as f:
        outputs = json.load(f)["network_data_format"]["outputs"]
    formats = {o.get("format") for o in outputs.values()}
    return InferType.SEGMENTATION if "segmentation" in formats else InferType.CLASSIFICATION


class SPCXRBundleInferTask(BundleInferTask):
    """A :class:`BundleInferTask` for an spcxr-monai bundle.

    Args:
        path: the bundle folder (``configs/inference.json``, ``configs/metadata.json``,
            ``models/model.pt``).
        conf: the app's ``--conf`` values.
        overrides: bundle config values to set before anything is built (the network's sizes need none:
            the inference config reads them off the bundle's ``models/model.pt``); ids the bundle does
            not define are ignored.
        type: ``segmentation`` or ``classification``; read off the bundle's metadata when empty.
        kwargs: passed on to :class:`BundleInferTask`.
    """

    def __init__(
        self,
        path: str,
        conf: dict[str, str],
        overrides: dict[str, Any] | None = None,
        type: str = "",
        **kwargs: Any,
    ) -> None:
        self.overrides = overrides or {}
        self._gate = None  # the input gate, built at the first request that needs it
        self._calibration: dict | None = None  # the classifier's calibration record, read at its first answer
        kwargs.setdefault("post_filter", BUNDLE_WRITERS)
        kwargs.setdefault("add_post_restore", False)
        super().__init__(path, conf, type=type or bundle_task_type(path), **kwargs)

    def _load_bundle_config(self, path, config):
        parser = super()._load_bundle_config(path, config)
        for key, value in self.overrides.items():
            if key in parser.config:  # type: ignore[operator]
                parser.config[key] = value  # type: ignore[index]
        if "mask_value" in parser.config:  # type: ignore[operator]
            parser.config["mask_value"] = 1  # type: ignore[index]  # the label index, as MONAI Label expects
        return parser

    def post_transforms(self, data=None) -> Sequence[Callable]:
        post = list(super().post_transforms(data))
        if self.type == InferType.SEGMENTATION:
            post.append(SqueezeDimd(keys=self.key_pred, dim=0))
        return post

    def writer(self, data: dict[str, Any], extension=None, dtype=None):
        if self.type == InferType.SEGMENTATION:
            # The 2D mask as a PNG (rows, cols) of label indices, whatever the input's format, unless
            # the request asks for another ``result_extension``.
            ext = data.get("result_extension") or extension or ".png"
            result = super().writer(data, extension=ext, dtype=data.get("result_dtype") or dtype or "uint8")
        else:
            result_file, result_json = super().writer(data, extension=extension, dtype=dtype)
            result = result_file, self._with_screening(result_json)
        return self._with_gate(data, *result)

    def _with_screening(self, result_json: Any) -> Any:
        """Add the screening verdict at the model's calibrated threshold to a classification answer."""
        if self._calibration is None:
            self._calibration = load_calibration(os.path.join(self.bundle_path, "models", "model.pt"))
        scores = {p["label"]: p["score"] for p in (result_json or {}).get("prediction", [])}
        verdict = screening_verdict(scores, self._calibration)
        return {**(result_json or {}), "screening": verdict} if verdict else result_json

    def _with_gate(self, data: dict[str, Any], result_file: Any, result_json: Any):
        """Add the input gate's verdict on the request's image to the result JSON."""
        image = data.get("image_path")
        if not isinstance(image, str) or not os.path.isfile(image) or not self.bundle_config.get("gate", True):
            return result_file, result_json
        if self._gate is None:
            from spcxr_monai.gate import InputGate

            self._gate = InputGate()
        verdict = self._gate.check([image])[image]
        if not verdict["ok"]:
            logger.warning("%s: answered, but flagged by the input gate: %s", image, "; ".join(verdict["reasons"]))
        return result_file, {**(result_json or {}), "gate": verdict}
