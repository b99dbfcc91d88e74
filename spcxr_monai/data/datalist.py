"""MONAI datalists (``{"training": [...], "validation": [...]}``) from CXR folder trees or CSVs, split by
patient (no patient in two splits), stratified by class and seeded."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from spcxr_monai.data.dedup import drop_near_duplicates
from spcxr_monai.data.dicom import read_dicom_cxr
from spcxr_monai.data.errors import CXRInputError
from spcxr_monai.data.formats import IMAGE_SUFFIXES, image_format, is_image_file
from spcxr_monai.data.prepare import read_manifest
from spcxr_monai.data.scan import MASK_DIRS, check_readable, patient_id_from_name, read_csv_datalist, scan_class_folders
from spcxr_monai.data.split import split_by_patient

logger = logging.getLogger(__name__)

__all__ = [
    "eval_datalist",
    "find_images",
    "inference_files",
    "make_datalist",
    "make_unlabelled_datalist",
    "maybe_make_datalist",
]


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
    check_readable(path)
    if image_format(path) == "dicom":
        read_dicom_cxr(path)


def inference_files(files: Sequence[str] = (), listing: str | os.PathLike | None = None) -> list[str]:
    """The files an inference run answers for: ``files``, then those of ``listing`` (a JSON list of paths).

    A listing hands paths to a bundle untouched: MONAI's config parser rewrites a ``#`` inside any string
    of the config (its old reference separator), so a path like ``case#2.dcm`` cannot go in as an override.

    Raises:
        CXRInputError: the listing cannot be read or is not a JSON list of strings.
    """
    out = [os.fspath(f) for f in files]
    if listing:
        try:
            with open(listing, encoding="utf-8") as f:
                listed = json.load(f)
        except (OSError, json.JSONDecodeError) as e:
            raise CXRInputError(listing, f"cannot read the list of input files ({e})") from e
        if not isinstance(listed, list) or not all(isinstance(x, str) for x in listed):
            raise CXRInputError(listing, "expected a JSON list of file paths")
        out += listed
    return out


def find_images(root: str | os.PathLike, exclude_dirs: Sequence[str] = MASK_DIRS) -> list[Path]:
    """Every image file under ``root`` (recursively, by extension), sorted, leaving out those inside a folder
    named in ``exclude_dirs`` (masks)."""
    root = Path(root)
    return sorted(
        p for p in root.rglob("*") if is_image_file(p) and not set(p.relative_to(root).parts[:-1]) & set(exclude_dirs)
    )


def make_unlabelled_datalist(
    root: str | os.PathLike | Sequence[str | os.PathLike],
    val_fraction: float = 0.05,
    seed: int = 0,
    exclude_dirs: Sequence[str] = MASK_DIRS,
    skip_unreadable: bool = False,
) -> dict[str, list[dict]]:
    """Every image under ``root`` (recursively, mask folders excluded) as an unlabelled datalist.

    A folder prepared by ``spcxr prepare`` (it holds ``manifest.csv``) gives the manifest's ``ok`` images,
    with its patient ids (the source file's name where the header had none), without decoding them again.

    Args:
        root: folder to search, or several folders whose images are pooled (e.g. a labelled set's train
            split and an unlabelled pool: ``["covid-qu-ex/train", "covid-radiography-pool"]``).
        val_fraction: fraction of patients held out as ``validation`` (reconstruction error).
        seed: split seed.
        exclude_dirs: folder names whose files are not images to learn from (masks).
        skip_unreadable: log and leave out files that cannot be read or decoded instead of raising.

    Returns:
        ``{"training": [{"image": path, "patient": id}, ...], "validation": [...], "skipped": [...]}``.

    Raises:
        CXRInputError: no image under ``root``, or an unreadable file when ``skip_unreadable`` is False.
    """
    roots = [Path(r) for r in ([root] if isinstance(root, (str, os.PathLike)) else root)]
    if not roots:
        raise CXRInputError(Path("."), "no data folder given")
    for folder in roots:
        if not folder.is_dir():
            raise CXRInputError(folder, "data folder not found")
    items, skipped = [], []
    for folder in (r for r in roots if (r / "manifest.csv").is_file()):  # prepared by `spcxr prepare`: checked there
        items += [
            {
                "image": row["output"],
                "label": 0,
                "patient": row["patient_id"] or patient_id_from_name(Path(row["source"]).name),
            }
            for row in read_manifest(folder)
        ]
    for path in (
        p for folder in roots if not (folder / "manifest.csv").is_file() for p in find_images(folder, exclude_dirs)
    ):
        try:
            _check_decodable(path)
        except CXRInputError as e:
            if not skip_unreadable:
                raise
            logger.warning("skipping %s", e)
            skipped.append(str(e))
            continue
        items.append({"image": str(path.resolve()), "label": 0, "patient": patient_id_from_name(path.name)})
    if not items:
        where = roots[0] if len(roots) == 1 else Path(", ".join(map(str, roots)))
        raise CXRInputError(where, "empty folder: no readable image files (" + ", ".join(IMAGE_SUFFIXES) + ")")
    splits = split_by_patient(items, {"validation": val_fraction} if val_fraction > 0 else {}, seed)
    return {**splits, "skipped": skipped}  # type: ignore[dict-item]  # the skipped files' reasons beside the splits


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
    items = make_datalist(eval_dir, None, val_fraction=0, classes=classes, class_map=class_map)["training"]
    if not dedup_against:
        return items
    reference = make_datalist(dedup_against, None, val_fraction=0, verify=False)["training"]
    kept, dropped = drop_near_duplicates(items, reference, threshold)
    logger.info(
        "%s: dropped %d of %d images with a near-duplicate (thumbnail correlation > %.2f) in %s",
        eval_dir,
        len(dropped),
        len(items),
        threshold,
        dedup_against,
    )
    return kept


def maybe_make_datalist(source: str | os.PathLike | None, **kwargs) -> dict:
    """:func:`make_datalist` of ``source`` (no JSON written), or ``{}`` when ``source`` is empty: an
    optional data set (e.g. the pretraining bundle's feature probe) switched by one config value."""
    return make_datalist(source, None, **kwargs) if source else {}
