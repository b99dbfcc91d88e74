"""Export a trained bundle's network to TorchScript and ONNX (MONAI's ``ckpt_export`` / ``onnx_export``),
with what inference needs written into the files: input shape, preprocessing, class or label names.

    spcxr export bundles/spcxr_cxr_classification [--formats torchscript onnx] [-o out/] [--checkpoint model.pt]

The network's sizes are read off the exported checkpoint (``trained_sizes`` in the inference config).

The exported network takes the *preprocessed* image, (B, 1, S, S) float32: the bundle's
``LoadCXR`` (one grey plane, air dark, row 0 at the top) -> ``Resize`` to S x S (area) ->
``NormalizeIntensity`` (per-image zero mean, unit variance); it returns logits (classifier: (B, C);
segmenter: (B, 2, S, S), channel 1 = lungs). ``spcxr_metadata`` (JSON) in the TorchScript extra files
and in the ONNX ``metadata_props`` says so, with the class names and the checkpoint's sha256.
"""

from __future__ import annotations

import hashlib
import json
import os
from enum import Enum
from typing import Any

from monai.bundle import ConfigParser, ckpt_export, onnx_export
from monai.utils import optional_import

from spcxr_monai.data.errors import CXRInputError
from spcxr_monai.metrics.calibration import load_calibration
from spcxr_monai.utils.options import choose

onnx, _ = optional_import("onnx")  # the "export" extra: only ONNX export needs it

__all__ = ["FORMATS", "ExportFormat", "export_bundle", "export_metadata"]


class ExportFormat(str, Enum):
    """The files :func:`export_bundle` writes."""

    TORCHSCRIPT = "torchscript"
    ONNX = "onnx"


FORMATS = tuple(f.value for f in ExportFormat)
METADATA_KEY = "spcxr_metadata"


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def export_metadata(bundle_dir: str, overrides: dict[str, Any], ckpt_file: str) -> dict[str, Any]:
    """What an inference runtime needs besides the weights, read from the bundle's ``inference.json``."""
    parser = ConfigParser()
    parser.read_config(os.path.join(bundle_dir, "configs", "inference.json"))
    parser.update(overrides)
    size = int(parser.get_parsed_content("image_size"))
    meta: dict[str, Any] = {
        "bundle": os.path.basename(os.path.normpath(bundle_dir)),
        "input": {"shape": ["B", 1, size, size], "dtype": "float32"},
        "preprocessing": [
            "LoadCXR: one grey plane, air dark (MONOCHROME1 inverted), row 0 at the top of the displayed image",
            f"Resize to {size} x {size}, mode area",
            "NormalizeIntensity: per-image zero mean, unit variance",
        ],
        "model_size": parser.get_parsed_content("model_size"),
        "checkpoint_sha256": _sha256(ckpt_file),
    }
    if "classes" in parser:
        classes = list(parser.get_parsed_content("classes"))
        meta["output"] = {
            "shape": ["B", len(classes)],
            "meaning": "logits; softmax(logits / temperature) gives the calibrated class probabilities",
            "classes": classes,
        }
        calibration = load_calibration(ckpt_file)
        meta["calibration"] = {
            "temperature": calibration["temperature"],
            "screening_threshold": calibration["threshold"],
            "screening_rule": "abnormal when 1 - p(normal) >= screening_threshold (calibrated probabilities)",
            "fitted_on": calibration.get("fitted_on", "not fitted (temperature 1, no threshold)"),
            "target_sensitivity": calibration.get("screening", {}).get("target_sensitivity"),
        }
    else:
        meta["output"] = {
            "shape": ["B", 2, size, size],
            "meaning": "logits; argmax over channels, 1 = lungs",
            "labels": {"0": "background", "1": "lungs"},
        }
    return meta


def export_bundle(
    bundle_dir: str,
    formats: tuple[str, ...] = FORMATS,
    output_dir: str | None = None,
    ckpt_file: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> dict[str, str]:
    """Export ``bundle_dir``'s trained network; returns ``{format: file}``.

    Args:
        bundle_dir: a classification or segmentation bundle with ``configs/inference.json``.
        formats: any of ``torchscript`` (``models/model.ts``, traced) and ``onnx`` (``models/model.onnx``).
        output_dir: where to write (default: the bundle's ``models/``).
        ckpt_file: the weights (default: ``models/model.pt``, the best validation model).
        overrides: inference config values; the network's sizes are read off ``ckpt_file`` (a value given
            here, e.g. ``image_size``, wins).

    Raises:
        CXRInputError: no inference config or no trained weights, named.
    """
    bundle_dir = os.path.abspath(bundle_dir)
    config = os.path.join(bundle_dir, "configs", "inference.json")
    if not os.path.isfile(config):
        raise CXRInputError(config, "not an exportable bundle (configs/inference.json missing)")
    ckpt_file = ckpt_file or os.path.join(bundle_dir, "models", "model.pt")
    if not os.path.isfile(ckpt_file):
        raise CXRInputError(ckpt_file, "trained weights not found: train the bundle first")
    formats = tuple(choose("formats", f, ExportFormat).value for f in formats)
    # the sizes come from the weights being exported (the inference config reads them off its checkpoint)
    overrides = {"bundle_root": bundle_dir, "checkpoint": ckpt_file, **(overrides or {})}
    output_dir = os.path.abspath(output_dir or os.path.join(bundle_dir, "models"))
    os.makedirs(output_dir, exist_ok=True)
    meta = export_metadata(bundle_dir, overrides, ckpt_file)
    common = {
        "net_id": "network_def",
        "ckpt_file": ckpt_file,
        "config_file": config,
        "use_trace": True,
        "input_shape": [1, *meta["input"]["shape"][1:]],
        **overrides,
    }
    written = {}
    if "torchscript" in formats:
        path = os.path.join(output_dir, "model.ts")
        # MONAI writes the bundle's metadata.json into the file's extra files: ours rides along in it
        ckpt_export(
            filepath=path,
            meta_file=os.path.join(bundle_dir, "configs", "metadata.json"),
            **{f"_meta_#{METADATA_KEY}": meta},  # type: ignore[arg-type]  # a config override, not a kwarg
            **common,
        )
        written["torchscript"] = path
    if "onnx" in formats:
        path = os.path.join(output_dir, "model.onnx")
        # a dynamic batch axis; torch's default opset
        onnx_export(
            filepath=path,
            converter_kwargs={
                "input_names": ["image"],
                "output_names": ["logits"],
                "dynamic_axes": {"image": {0: "batch"}, "logits": {0: "batch"}},
            },
            **common,
        )
        model = onnx.load(path)
        entry = model.metadata_props.add()
        entry.key, entry.value = METADATA_KEY, json.dumps(meta)
        onnx.save(model, path)
        written["onnx"] = path
    return written
