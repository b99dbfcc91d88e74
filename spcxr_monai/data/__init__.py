"""Datalists, readers and the embedded sample."""

from __future__ import annotations

import os
from pathlib import Path

from spcxr_monai.data.cxr_reader import CXRReader
from spcxr_monai.data.datalist import (
    CLASSIFICATION_TASKS,
    class_weights,
    make_datalist,
    make_unlabelled_datalist,
    patient_id_from_name,
    read_csv_datalist,
    scan_class_folders,
    split_by_patient,
    subsample_stratified,
    task_classes,
)
from spcxr_monai.data.dedup import drop_near_duplicates
from spcxr_monai.data.dicom import read_dicom_cxr
from spcxr_monai.data.errors import CXRInputError

SAMPLE_ROOT = Path(__file__).parent / "sample"


def sample_dir() -> str:
    """Folder of the embedded sample: ``<class>/images`` and ``<class>/lung_masks`` for 3 classes."""
    return str(SAMPLE_ROOT / "cxr")


def sample_dicom() -> str:
    """One embedded real DICOM (CR, MONOCHROME1, JPEG 2000)."""
    return str(SAMPLE_ROOT / "dicom" / "RG1_J2KI.dcm")


def eval_datalist(
    eval_dir: str,
    classes: list[str],
    class_map: dict[str, str] | None = None,
    dedup_against: str | None = None,
    threshold: float = 0.98,
) -> list[dict]:
    """All images of a class-folder tree for evaluation, minus near-duplicates of ``dedup_against``
    (the training folder), so a held-out or drift score is not inflated by copies of training images.
    The number dropped is logged."""
    import logging

    items = make_datalist(eval_dir, None, val_fraction=0, classes=classes, class_map=class_map)["training"]
    if not dedup_against:
        return items
    reference = make_datalist(dedup_against, None, val_fraction=0, verify=False)["training"]
    kept, dropped = drop_near_duplicates(items, reference, threshold)
    logging.getLogger(__name__).info(
        "%s: dropped %d of %d images with a near-duplicate (thumbnail correlation > %.2f) in %s",
        eval_dir, len(dropped), len(items), threshold, dedup_against,
    )
    return kept


def shared_data_root() -> str:
    """The shared real-data folder: ``$SPCXR_DATA``, else ``../shared/data`` from the working directory."""
    return os.environ.get("SPCXR_DATA", os.path.join("..", "shared", "data"))


__all__ = [
    "CLASSIFICATION_TASKS",
    "class_weights",
    "drop_near_duplicates",
    "eval_datalist",
    "subsample_stratified",
    "task_classes",
    "CXRReader",
    "CXRInputError",
    "make_datalist",
    "make_unlabelled_datalist",
    "patient_id_from_name",
    "read_csv_datalist",
    "read_dicom_cxr",
    "sample_dir",
    "sample_dicom",
    "scan_class_folders",
    "shared_data_root",
    "split_by_patient",
]
