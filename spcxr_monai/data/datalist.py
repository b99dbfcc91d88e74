"""MONAI datalists (``{"training": [...], "validation": [...]}``) from CXR folder trees or CSVs.

Two folder layouts are understood, both as ``root/<class>/...``:

* COVID-QU-Ex style: ``root/<class>/images/*.png`` with the masks under the same file names in
  ``root/<class>/lung_masks/`` (or ``masks/``);
* flat: ``root/<class>/*.png`` (e.g. the pediatric set), with the patient read off the file name.

Items carry ``image``, ``label`` (int), ``class_name``, ``patient`` and, when the layout has masks,
``mask``. Splits are made per patient (no patient in two splits), stratified by class and seeded.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from spcxr_monai.data.errors import CXRInputError

logger = logging.getLogger(__name__)

__all__ = [
    "IMAGE_SUFFIXES",
    "patient_id_from_name",
    "scan_class_folders",
    "read_csv_datalist",
    "split_by_patient",
    "make_datalist",
    "make_unlabelled_datalist",
    "CLASSIFICATION_TASKS",
    "task_classes",
    "subsample_stratified",
    "class_weights",
]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".dcm", ".dicom", ".nii", ".nii.gz", ".mha", ".nrrd")
MASK_DIRS = ("lung_masks", "masks")
_PEDIATRIC_PNEUMONIA = ("pneumonia_bacterial", "pneumonia_viral")
# task -> (classes in label order, folder -> class map); folders of both shared layouts are mapped
CLASSIFICATION_TASKS: dict[str, tuple[list[str], dict[str, str]]] = {
    "3class": (["covid", "pneumonia", "normal"], {f: "pneumonia" for f in _PEDIATRIC_PNEUMONIA}),
    "screening": (
        ["normal", "abnormal"],
        {f: "abnormal" for f in ("covid", "pneumonia", *_PEDIATRIC_PNEUMONIA)},
    ),
}
# Kermany pediatric names: person<N>_bacteria_<k>, person<N>_virus_<k>, IM-<N>-<k>, NORMAL2-IM-<N>-<k>
PATIENT_PATTERNS = (re.compile(r"^(person\d+)_"), re.compile(r"^((?:NORMAL2-)?IM-\d+)-\d+"))


def _is_image(path: Path) -> bool:
    name = path.name.lower()
    return path.is_file() and not name.startswith(".") and name.endswith(IMAGE_SUFFIXES)


def patient_id_from_name(file_name: str) -> str:
    """The patient a file belongs to, read from its name; the file's stem when the name has none.

    Args:
        file_name: e.g. ``person1003_bacteria_2934.png`` -> ``person1003``,
            ``IM-0115-0001.png`` -> ``IM-0115``, ``covid_12.png`` -> ``covid_12``.
    """
    stem = Path(file_name).name.split(".")[0]
    for pattern in PATIENT_PATTERNS:
        match = pattern.match(stem)
        if match:
            return match.group(1)
    return stem


def _check_readable(path: Path) -> None:
    """Decode a PNG / JPEG / TIFF (or read a DICOM header) so a truncated or mislabelled file is caught early."""
    if path.stat().st_size == 0:
        raise CXRInputError(path, "file is empty")
    suffix = path.name.lower()
    try:
        if suffix.endswith((".dcm", ".dicom")):
            import pydicom

            pydicom.dcmread(path, stop_before_pixels=True)
        elif suffix.endswith((".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")):
            from PIL import Image

            with Image.open(path) as image:
                image.load()  # decodes the pixels: a truncated stream fails here, not in training
    except Exception as e:
        raise CXRInputError(path, f"unreadable image file ({type(e).__name__}: {e})") from e


def scan_class_folders(
    root: str | os.PathLike,
    classes: Sequence[str] | None = None,
    class_map: Mapping[str, str] | None = None,
    verify: bool = True,
) -> tuple[list[dict], list[str]]:
    """List the images of a ``root/<class>/...`` tree (see the module docstring for the layouts).

    Args:
        root: the folder holding one sub-folder per class.
        classes: label order after ``class_map``; default: sorted mapped folder names.
        class_map: rename folders to classes, e.g. ``{"pneumonia_viral": "pneumonia"}`` (merges allowed).
        verify: open every image header and report unreadable files.

    Returns:
        ``(items, classes)``: items with absolute paths, and the class names in label order.

    Raises:
        CXRInputError: the root is missing or holds no class folder, a class folder holds no image,
            an image has no mask in a layout with masks, or a file is unreadable.
    """
    root = Path(root)
    if not root.is_dir():
        raise CXRInputError(root, "data folder not found")
    class_map = dict(class_map or {})
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise CXRInputError(root, "empty folder: expected one sub-folder per class")
    names = sorted({class_map.get(f.name, f.name) for f in folders})
    classes = list(classes) if classes is not None else names
    unknown = sorted(set(names) - set(classes))
    if unknown:
        raise CXRInputError(root, f"class folders {unknown} are not among classes {classes}")

    items: list[dict] = []
    for folder in folders:
        class_name = class_map.get(folder.name, folder.name)
        image_dir = folder / "images" if (folder / "images").is_dir() else folder
        mask_dir = next((folder / m for m in MASK_DIRS if (folder / m).is_dir()), None)
        images = sorted(p for p in image_dir.iterdir() if _is_image(p))
        if not images:
            raise CXRInputError(image_dir, "empty folder: no image files (" + ", ".join(IMAGE_SUFFIXES) + ")")
        for image in images:
            item = {
                "image": str(image.resolve()),
                "label": classes.index(class_name),
                "class_name": class_name,
                "patient": patient_id_from_name(image.name),
            }
            if mask_dir is not None:
                mask = mask_dir / image.name
                if not mask.is_file():
                    raise CXRInputError(image, f"missing mask: expected {mask}")
                item["mask"] = str(mask.resolve())
            if verify:
                _check_readable(image)
            items.append(item)
    return items, classes


def read_csv_datalist(
    csv_path: str | os.PathLike, classes: Sequence[str] | None = None, verify: bool = True
) -> tuple[list[dict], list[str]]:
    """Read a CSV with columns ``image``, ``label`` (class name or index), optional ``mask``, ``patient``.

    Relative paths are taken from the CSV's folder. Returns ``(items, classes)`` like
    :func:`scan_class_folders`.

    Raises:
        CXRInputError: missing columns or files, an empty CSV, or an unreadable image.
    """
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise CXRInputError(csv_path, "CSV file not found")
    with open(csv_path, newline="", encoding="utf-8-sig") as f:  # -sig: a byte-order mark is not a column name
        reader = csv.DictReader(f)
        rows = list(reader)
        columns = [c.strip() for c in reader.fieldnames or []]
    if not rows:
        raise CXRInputError(csv_path, "CSV has no rows")
    missing = {"image", "label"} - set(columns)
    if missing:
        raise CXRInputError(csv_path, f"CSV lacks the column(s) {sorted(missing)} (has {columns})")
    rows = [{(k or "").strip(): v for k, v in row.items()} for row in rows]
    for line, row in enumerate(rows, start=2):
        for column in ("image", "label"):
            if not (row.get(column) or "").strip():
                raise CXRInputError(csv_path, f"line {line}: empty {column!r} cell")
    names = [r["label"].strip() for r in rows]
    if classes is None:
        classes = sorted(set(names), key=lambda n: (not n.isdigit(), int(n) if n.isdigit() else n))
    classes = [str(c) for c in classes]
    items, seen = [], {}
    for line, (row, name) in enumerate(zip(rows, names), start=2):
        image = (csv_path.parent / row["image"].strip()).resolve()
        if image in seen:
            first_line, first_label = seen[image]
            if first_label != name:
                raise CXRInputError(
                    csv_path, f"line {line}: {image} is labelled {name!r} here and {first_label!r} on line {first_line}"
                )
            logger.warning("%s: line %d repeats line %d (%s); kept once", csv_path, line, first_line, image)
            continue
        seen[image] = (line, name)
        if not image.is_file():
            raise CXRInputError(image, f"image listed in {csv_path} line {line} not found")
        if name not in classes:
            raise CXRInputError(csv_path, f"line {line}: label {name!r} is not among classes {classes}")
        item = {
            "image": str(image),
            "label": classes.index(name),
            "class_name": name,
            "patient": (row.get("patient") or "").strip() or patient_id_from_name(image.name),
        }
        if (row.get("mask") or "").strip():
            mask = (csv_path.parent / row["mask"].strip()).resolve()
            if not mask.is_file():
                raise CXRInputError(image, f"missing mask: expected {mask} (CSV line {line})")
            item["mask"] = str(mask)
        if verify:
            _check_readable(image)
        items.append(item)
    return items, classes


def split_by_patient(
    items: Sequence[dict], fractions: Mapping[str, float], seed: int = 0
) -> dict[str, list[dict]]:
    """Split items by patient, stratified by each patient's (first) label, reproducibly.

    Args:
        items: datalist items with ``patient`` and ``label``.
        fractions: split name -> fraction of each class's patients, e.g. ``{"validation": 0.2}``;
            the rest goes to ``"training"``.
        seed: seed of the patient shuffle.

    Returns:
        split name -> items; every patient's images land in exactly one split.
    """
    if sum(fractions.values()) >= 1.0 or any(f < 0 for f in fractions.values()):
        raise ValueError(f"split fractions must be >= 0 and sum to < 1 (the rest trains), got {dict(fractions)}")
    by_patient: dict[str, list[dict]] = defaultdict(list)
    for item in items:
        by_patient[item["patient"]].append(item)
    by_class: dict[int, list[str]] = defaultdict(list)
    for patient, patient_items in sorted(by_patient.items()):
        by_class[patient_items[0]["label"]].append(patient)
    rng = np.random.RandomState(seed)
    splits: dict[str, list[dict]] = {"training": [], **{name: [] for name in fractions}}
    for label in sorted(by_class):
        patients = by_class[label]
        order = rng.permutation(len(patients))
        start = 0
        for name, fraction in fractions.items():
            count = int(round(fraction * len(patients)))
            for i in order[start : start + count]:
                splits[name].extend(by_patient[patients[i]])
            start += count
        for i in order[start:]:
            splits["training"].extend(by_patient[patients[i]])
    for name, fraction in fractions.items():
        if fraction > 0 and not splits[name]:
            logger.warning("split %r is empty: %d patients are too few for a fraction of %g", name, len(by_patient),
                           fraction)
    return splits


def _relative_to(path: str, base: Path) -> str:
    return os.path.relpath(path, base)


def make_datalist(
    source: str | os.PathLike,
    output: str | os.PathLike | None = None,
    val_fraction: float = 0.2,
    test_fraction: float = 0.0,
    seed: int = 0,
    classes: Sequence[str] | None = None,
    class_map: Mapping[str, str] | None = None,
    verify: bool = True,
) -> dict:
    """Build a MONAI datalist from a class-folder tree or a CSV, split by patient.

    Args:
        source: a ``root/<class>/...`` folder or a CSV file.
        output: where to write the JSON; paths inside are then relative to its folder, as
            ``monai.data.load_decathlon_datalist`` expects. None: return it only (absolute paths).
        val_fraction: fraction of each class's patients for ``validation`` (0 for none).
        test_fraction: fraction for ``test`` (0 for none).
        seed: split seed.
        classes: label order; default sorted class names.
        class_map: folder name -> class name (folders only).
        verify: open every image header.

    Returns:
        ``{"training": [...], "validation": [...], ["test": [...]], "labels": {name: index}, ...}``.
    """
    source = Path(source)
    if output is not None and Path(output).is_dir():
        raise CXRInputError(output, "is a folder: give the datalist a file name, e.g. datalist.json")
    if source.is_file() and source.suffix.lower() == ".csv":
        items, classes = read_csv_datalist(source, classes, verify)
    else:
        items, classes = scan_class_folders(source, classes, class_map, verify)
    fractions = {name: f for name, f in (("validation", val_fraction), ("test", test_fraction)) if f > 0}
    datalist: dict = split_by_patient(items, fractions, seed)
    if output is not None:
        base = Path(output).resolve().parent
        for split in list(datalist):
            datalist[split] = [
                {k: _relative_to(v, base) if k in ("image", "mask") else v for k, v in item.items()}
                for item in datalist[split]
            ]
    datalist.update(
        {
            "labels": {name: i for i, name in enumerate(classes)},
            "source": str(source.resolve()),
            "seed": seed,
            "counts": {s: len(v) for s, v in datalist.items() if isinstance(v, list)},
        }
    )
    if output is not None:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        with open(output, "w", encoding="utf-8") as f:
            json.dump(datalist, f, indent=1)
    return datalist


def _check_decodable(path: Path) -> None:
    """Header check for every file; DICOM pixel data is decoded too (corrupt streams hide behind good headers)."""
    _check_readable(path)
    if path.name.lower().endswith((".dcm", ".dicom")):
        from spcxr_monai.data.dicom import read_dicom_cxr

        read_dicom_cxr(path)


def make_unlabelled_datalist(
    root: str | os.PathLike,
    val_fraction: float = 0.05,
    seed: int = 0,
    exclude_dirs: Sequence[str] = MASK_DIRS,
    skip_unreadable: bool = False,
) -> dict[str, list[dict]]:
    """Every image under ``root`` (recursively, mask folders excluded) as an unlabelled datalist.

    Args:
        root: folder to search.
        val_fraction: fraction of patients held out as ``validation`` (reconstruction error).
        seed: split seed.
        exclude_dirs: folder names whose files are not images to learn from (masks).
        skip_unreadable: log and leave out files that cannot be read or decoded instead of raising.

    Returns:
        ``{"training": [{"image": path, "patient": id}, ...], "validation": [...], "skipped": [...]}``.

    Raises:
        CXRInputError: no image under ``root``, or an unreadable file when ``skip_unreadable`` is False.
    """
    import logging

    root = Path(root)
    if not root.is_dir():
        raise CXRInputError(root, "data folder not found")
    paths = sorted(
        p for p in root.rglob("*") if _is_image(p) and not set(p.relative_to(root).parts[:-1]) & set(exclude_dirs)
    )
    items, skipped = [], []
    for path in paths:
        try:
            _check_decodable(path)
        except CXRInputError as e:
            if not skip_unreadable:
                raise
            logging.getLogger(__name__).warning("skipping %s", e)
            skipped.append(str(e))
            continue
        items.append({"image": str(path.resolve()), "label": 0, "patient": patient_id_from_name(path.name)})
    if not items:
        raise CXRInputError(root, "empty folder: no readable image files (" + ", ".join(IMAGE_SUFFIXES) + ")")
    splits = split_by_patient(items, {"validation": val_fraction} if val_fraction > 0 else {}, seed)
    return {**splits, "skipped": skipped}


def task_classes(task: str) -> tuple[list[str], dict[str, str]]:
    """``(classes, class_map)`` of a classification task: ``3class`` (covid, pneumonia, normal) or
    ``screening`` (normal vs abnormal)."""
    if task not in CLASSIFICATION_TASKS:
        raise ValueError(f"unknown task {task!r}; choose one of {sorted(CLASSIFICATION_TASKS)}")
    classes, class_map = CLASSIFICATION_TASKS[task]
    return list(classes), dict(class_map)


def subsample_stratified(items: Sequence[dict], fraction: float, seed: int = 0) -> list[dict]:
    """Keep ``fraction`` of each class's patients (at least one patient per class), seeded.

    Used for label-efficiency experiments (1%, 10%, 100% of the labels).
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    if fraction == 1:
        return list(items)
    by_class: dict[int, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for item in items:
        by_class[item["label"]][item["patient"]].append(item)
    rng = np.random.RandomState(seed)
    kept: list[dict] = []
    for label in sorted(by_class):
        patients = sorted(by_class[label])
        count = max(1, int(round(fraction * len(patients))))
        for i in sorted(rng.choice(len(patients), count, replace=False)):
            kept.extend(by_class[label][patients[i]])
    return kept


def class_weights(items: Sequence[dict], num_classes: int):
    """Inverse-frequency class weights (mean 1) for ``CrossEntropyLoss(weight=...)``; absent classes get 0."""
    import torch

    counts = np.bincount([int(i["label"]) for i in items], minlength=num_classes).astype(np.float64)
    weights = np.where(counts > 0, counts.sum() / np.maximum(counts, 1) / max((counts > 0).sum(), 1), 0.0)
    return torch.as_tensor(weights, dtype=torch.float32)
