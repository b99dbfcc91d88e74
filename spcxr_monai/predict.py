"""Class probabilities for image files from a trained classification bundle (``spcxr predict``)."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import sys
import tempfile
from collections.abc import Mapping, Sequence
from typing import Any

from monai.bundle import ConfigWorkflow
from tqdm import tqdm

from spcxr_monai.data.errors import CXRInputError
from spcxr_monai.errors import find_spcxr_error
from spcxr_monai.transforms.io import LoadCXR
from spcxr_monai.utils.terminal import on_terminal

__all__ = ["predict_files"]

ANNOTATIONS = ("gate", "screening")  # what an answer carries besides its class probabilities


def _decode_problem(path: str, load: LoadCXR) -> str | None:
    """None when ``path`` decodes to a sound image, else the loader's one-line reason."""
    try:
        load(path)
    except CXRInputError as e:
        return e.problem
    return None


def _run_inference(bundle: str, files: Sequence[str], overrides: Mapping[str, Any]) -> dict[str, dict]:
    """Run the bundle's ``inference.json`` on ``files``; its ``predictions.json`` as a dict."""
    with tempfile.TemporaryDirectory() as tmp:
        listing = os.path.join(tmp, "inputs.json")  # paths go in a listing: the config parser rewrites '#'
        with open(listing, "w", encoding="utf-8") as f:
            json.dump(list(files), f)
        # MONAI's bundle logger writes to the stdout captured at import; keep stdout for the caller's answer
        # (and ConfigWorkflow, not create_workflow, which prints its input summary there)
        logging.getLogger("monai.bundle.workflows").setLevel(logging.WARNING)
        with contextlib.redirect_stdout(sys.stderr):
            workflow = ConfigWorkflow(
                config_file=os.path.join(bundle, "configs", "inference.json"),
                meta_file=os.path.join(bundle, "configs", "metadata.json"),
                workflow_type="infer",
                run_id="inference",
                **{"bundle_root": bundle, "input_list": listing, "output_dir": tmp, **overrides},
            )
            workflow.initialize()
            try:
                workflow.run()
            except Exception as e:  # the bundle wraps a bad file's error: surface it as the cause
                own = find_spcxr_error(e)
                if own is None:
                    raise
                raise own from e
            workflow.finalize()
        with open(os.path.join(tmp, "predictions.json"), encoding="utf-8") as f:
            return json.load(f)


def predict_files(
    bundle: str | os.PathLike,
    files: Sequence[str | os.PathLike],
    gate: bool = True,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, dict]:
    """``{file: {class: probability, ..., "gate": verdict}}`` or ``{file: {"error": reason}}`` for each file.

    Every file is decoded and checked first; a bad one gets its reason and the others are still
    answered. Each answer carries the input gate's verdict under ``"gate"`` (``{"ok", "reasons",
    "scores"}`` of :class:`~spcxr_monai.gate.InputGate`, from the bundle's ``InputGateWriter``) unless
    ``gate`` is False; a flagged image still gets its answer, marked as such. Probabilities are
    temperature-scaled where the model was calibrated, and then ``"screening"`` holds the normal-vs-abnormal
    verdict at the model's threshold with its provenance. Probabilities that are not finite become an error.

    Args:
        bundle: a trained classification bundle folder (``configs/inference.json``, ``models/model.pt``).
        files: image files (DICOM, PNG, ...).
        gate: run the input gate.
        overrides: inference config overrides (e.g. ``ckpt_dir``).

    Raises:
        CXRInputError: not a classification bundle, or no trained model in it.
    """
    bundle = os.path.abspath(bundle)
    config = os.path.join(bundle, "configs", "inference.json")
    if not os.path.isfile(config):
        raise CXRInputError(config, "not a classification bundle (configs/inference.json missing)")
    overrides = {"gate": gate, **(overrides or {})}
    model = os.path.join(overrides.get("ckpt_dir", os.path.join(bundle, "models")), "model.pt")
    if not os.path.isfile(model):
        raise CXRInputError(model, "trained model not found: train the bundle first (or --set ckpt_dir=...)")
    paths = [os.path.abspath(f) for f in files]
    results: dict[str, dict] = {}
    load = LoadCXR()
    for f in tqdm(paths, desc="checking", unit="file", disable=not on_terminal() or len(paths) < 2):
        problem = _decode_problem(f, load)
        if problem:
            results[f] = {"error": problem}
    good = [f for f in paths if f not in results]
    for f, answer in (_run_inference(bundle, good, overrides) if good else {}).items():
        probs = [v for k, v in answer.items() if k not in ANNOTATIONS]
        if all(isinstance(p, (int, float)) and math.isfinite(p) for p in probs):
            results[f] = answer
        else:
            results[f] = {"error": "the model returned non-finite probabilities"}
    return {f: results[f] for f in paths if f in results}
