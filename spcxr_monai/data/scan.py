"""Items from CXR folder trees or CSVs: one item per image with its class, patient and mask.

Two folder layouts are understood, both as ``root/<class>/...``:

* COVID-QU-Ex style: ``root/<class>/images/*.png`` with the masks under the same file names in
  ``root/<class>/lung_masks/`` (or ``masks/``);
* flat: ``root/<class>/*.png`` (e.g. the pediatric set), with the patient read off the file name.

Items carry ``image``, ``label`` (int), ``class_name``, ``patient`` and, when the layout has masks,
``mask``.
"""

from __future__ import annotations

import csv
import logging
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import pydicom
from PIL import Image

from spcxr_monai.data.errors import CXRInputError
from spcxr_monai.data.formats import IMAGE_SUFFIXES, image_format, is_image_file

logger = logging.getLogger(__name__)

__all__ = ["MASK_DIRS", "check_readable", "patient_id_from_name", "read_csv_datalist", "scan_class_folders"]

MASK_DIRS = ("lung_masks", "masks")


# Kermany pediatric names: person<N>_bacteria_<k>, person<N>_virus_<k>, IM-<N>-<k>, NORMAL2-IM-<N>-<k>
PATIENT_PATTERNS = (re.compile(r"^(person\d+)_"), re.compile(r"^((?:NORMAL2-)?IM-\d+)-\d+"))


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


def check_readable(path: Path) -> None:
    """Decode a PNG / JPEG / TIFF (or read a DICOM header) so a truncated or mislabelled file is caught early."""
    if path.stat().st_size == 0:
        raise CXRInputError(path, "file is empty")
    fmt = image_format(path)
    try:
        if fmt == "dicom":
            pydicom.dcmread(path, stop_before_pixels=True)
        elif fmt == "pil":
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
        images = sorted(p for p in image_dir.iterdir() if is_image_file(p))
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
                check_readable(image)
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
    items: list[dict] = []
    seen: dict[Path, tuple[int, str]] = {}
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
            check_readable(image)
        items.append(item)
    return items, classes
