"""Convert an archive of radiographs once into a pretraining set: 8-bit grey PNGs and a manifest.

Large CXR projects decode their DICOM archive once and train from the converted copy (MIMIC-CXR-JPG,
CheXpert-small): decoding a compressed 2-3k radiograph costs 0.2-0.6 s, so a 200k-image archive is
10-30 core-hours per pass. :func:`prepare_dataset` (``spcxr prepare SRC OUT``) walks SRC, decodes every file
with the toolkit's reader and its checks (:func:`~spcxr_monai.data.read_dicom_cxr`, ``CXRReader``), and writes

- ``OUT/images/<path under SRC>.png``: 8-bit grey, air dark, the displayed window (VOI LUT or the first
  window of the header, else the data's range) stretched to 0-255; the longer side resized to ``size``
  (area averaging) with the aspect ratio kept, never enlarged, never padded (the bundles resize to their
  square input themselves);
- ``OUT/manifest.csv``: one row per source file (:data:`MANIFEST_FIELDS`), ``ok`` or ``rejected`` with the
  reason, and what the DICOM header gives (empty where it gives nothing).

Folders named ``lung_masks`` or ``masks`` are not walked. It never stops for one file: unreadable,
empty, truncated or non-image files, other modalities (CT, MR) and lateral views are rejected with their
reason. It is resumable and safe to kill at any moment: each image is written to a temporary file (synced)
and renamed, its manifest row is appended to ``OUT/manifest.jsonl`` only after (flushed at once, synced to
disk every second), and ``manifest.csv`` is rewritten atomically from that journal; a rerun skips the
sources the journal already holds (same size and modification time) and picks up new ones. The output is
deterministic, so an interrupted and resumed run ends with the same rows and image bytes
as an uninterrupted one.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import re
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pydicom
from PIL import Image
from pydicom.multival import MultiValue
from tqdm import tqdm

from spcxr_monai.data.cxr_reader import CXRReader
from spcxr_monai.data.dedup import thumbnails
from spcxr_monai.data.dicom import is_dicom_file, read_dicom_cxr
from spcxr_monai.data.errors import CXRInputError
from spcxr_monai.data.formats import image_format
from spcxr_monai.data.scan import MASK_DIRS, patient_id_from_name
from spcxr_monai.utils.atomic import atomic_write, remove_partial_writes

__all__ = ["MANIFEST_FIELDS", "FRONTAL_VIEWS", "prepare_dataset", "read_manifest"]

logger = logging.getLogger(__name__)

MANIFEST_FIELDS = (
    "source",
    "output",
    "status",
    "reason",
    "patient_id",
    "study_uid",
    "series_uid",
    "sop_uid",
    "modality",
    "view_position",
    "body_part",
    "rows",
    "columns",
    "pixel_spacing",
    "photometric_interpretation",
    "bits_stored",
    "window",
    "manufacturer",
)
FRONTAL_VIEWS = ("PA", "AP")
JOURNAL = "manifest.jsonl"
MANIFEST = "manifest.csv"
IMAGES = "images"
MAX_REASON = 400


def _header_fields(ds) -> dict[str, str]:
    """The manifest's DICOM fields, empty where the header gives nothing."""

    def text(keyword: str) -> str:
        value = ds.get(keyword, "")
        return "" if value is None else str(value).strip()

    spacing = ds.get("PixelSpacing") or ds.get("ImagerPixelSpacing")
    return {
        "patient_id": text("PatientID"),
        "study_uid": text("StudyInstanceUID"),
        "series_uid": text("SeriesInstanceUID"),
        "sop_uid": text("SOPInstanceUID"),
        "modality": text("Modality").upper(),
        "view_position": text("ViewPosition").upper(),
        "body_part": text("BodyPartExamined").upper(),
        "rows": text("Rows"),
        "columns": text("Columns"),
        "pixel_spacing": "" if not spacing else "\\".join(f"{float(s):g}" for s in spacing),
        "photometric_interpretation": text("PhotometricInterpretation").upper(),
        "bits_stored": text("BitsStored"),
        "manufacturer": text("Manufacturer"),
    }


def _window(ds, voi_applied: bool) -> str:
    """The window that made the 8-bit image: the header's (centre/width or its VOI LUT), or the data's range."""
    if not voi_applied:
        return "data range"
    if "VOILUTSequence" in ds:
        return "VOI LUT"
    centre, width = (ds.get(k) for k in ("WindowCenter", "WindowWidth"))
    centre, width = (v[0] if isinstance(v, (MultiValue, list, tuple)) else v for v in (centre, width))
    return f"{float(centre):g}/{float(width):g}"


def _to_uint8(array: np.ndarray, size: int) -> np.ndarray:
    """Longer side to ``size`` by area averaging (never enlarged), then the range stretched to 0-255."""
    rows, cols = array.shape
    scale = min(1.0, size / max(rows, cols))
    if scale < 1.0:
        new = (max(1, round(cols * scale)), max(1, round(rows * scale)))
        array = np.asarray(Image.fromarray(array.astype(np.float32), mode="F").resize(new, Image.Resampling.BOX))
    low, high = float(array.min()), float(array.max())
    if not high > low:
        raise CXRInputError("(resized)", "image is constant after resizing")
    return np.rint((array - low) / (high - low) * 255.0).astype(np.uint8)


def _prepare_one(source: str, output: str, size: int, modalities: tuple[str, ...], frontal_only: bool) -> dict:
    """Decode, filter, convert and write one file; its manifest row (never raises for a bad file)."""
    row = dict.fromkeys(MANIFEST_FIELDS, "")
    row.update(source=source, status="rejected")
    path = Path(source)
    try:
        if path.stat().st_size == 0:
            raise CXRInputError(path, "file is empty")
        if is_dicom_file(path) or image_format(path) == "dicom":
            try:
                header = pydicom.dcmread(path, stop_before_pixels=True)
            except Exception as e:
                raise CXRInputError(path, f"not a readable DICOM file ({e})") from e
            row.update(_header_fields(header))
            if modalities and row["modality"] not in modalities:
                raise CXRInputError(
                    path, f"modality {row['modality'] or '(none)'} is not one of {', '.join(modalities)}"
                )
            if frontal_only and row["view_position"] and row["view_position"] not in FRONTAL_VIEWS:
                raise CXRInputError(path, f"view position {row['view_position']} is not frontal (PA / AP)")
            array, meta = read_dicom_cxr(path)
            row["window"] = _window(header, meta["voi_applied"])
        elif image_format(path) in ("pil", "itk", "nifti"):
            array, _ = CXRReader().read(str(path))  # (rows, cols), checked as every loader does
            row.update(
                patient_id=patient_id_from_name(path.name),
                rows=str(array.shape[0]),
                columns=str(array.shape[1]),
                window="data range",
            )
        else:
            raise CXRInputError(path, "not an image file (DICOM, PNG, JPEG, TIFF, NIfTI, MHA / NRRD)")
        with atomic_write(output) as f:
            Image.fromarray(_to_uint8(array, size), mode="L").save(f, format="PNG")
        row.update(output=output, status="ok")
        if frontal_only and not row["view_position"] and row["modality"]:
            row["reason"] = "no ViewPosition in the header: kept"
    except CXRInputError as e:
        row["reason"] = e.problem
    except Exception as e:
        row["reason"] = f"{type(e).__name__}: {e}"
    row["reason"] = " ".join(row["reason"].split())[:MAX_REASON]  # one line in the CSV, whatever a decoder said
    return row


def _walk(src: Path, skip: Path) -> list[Path]:
    """Every visible file under ``src``, sorted; the output folder and mask folders (``lung_masks``,
    ``masks``: not radiographs) left out."""
    files = []
    for folder, dirs, names in os.walk(src):
        dirs[:] = sorted(
            d for d in dirs if not d.startswith(".") and d not in MASK_DIRS and Path(folder, d).resolve() != skip
        )
        files += [Path(folder, n) for n in names if not n.startswith(".")]
    return sorted(files)


def _sources(src: Path, out: Path) -> list[tuple[Path, str]]:
    """(source file, its output path relative to OUT) for a folder tree or a CSV list (column ``path``)."""
    if src.is_file() and src.suffix.lower() == ".csv":
        with open(src, newline="") as f:
            paths = [Path(r["path"]) if os.path.isabs(r["path"]) else src.parent / r["path"] for r in csv.DictReader(f)]
        base = Path(os.path.commonpath([p.resolve().parent for p in paths])) if paths else src.parent
        files = sorted(p.resolve() for p in paths)
    elif src.is_dir():
        base, files = src.resolve(), _walk(src.resolve(), out.resolve())
    else:
        raise CXRInputError(src, "source must be a folder or a CSV file with a 'path' column")
    return [(p, str(Path(IMAGES) / p.relative_to(base).with_suffix(".png"))) for p in files]


def _stamp(path: Path) -> str:
    st = path.stat()
    return f"{st.st_size}:{st.st_mtime_ns}"


def _read_journal(out: Path) -> dict[str, dict]:
    """The rows already written, by source; a half-written last line (a kill mid-append) is dropped."""
    rows = {}
    journal = out / JOURNAL
    if journal.is_file():
        for line in journal.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            rows[row["source"]] = row
    return rows


def _write_manifest(out: Path, rows: Iterable[dict]) -> None:
    with atomic_write(out / MANIFEST, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=MANIFEST_FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(sorted(rows, key=lambda r: r["source"]))


def _mark_near_duplicates(out: Path, rows: dict[str, dict], threshold: float) -> None:
    """Reject (and delete) every ok image whose thumbnail correlates above ``threshold`` with an earlier one."""
    kept = sorted((r for r in rows.values() if r["status"] == "ok"), key=lambda r: r["source"])
    if len(kept) < 2:
        return
    thumbs = thumbnails([out / r["output"] for r in kept])
    corr = thumbs @ thumbs.T
    np.fill_diagonal(corr, -1.0)
    with open(out / JOURNAL, "a") as journal:
        for i, row in enumerate(kept):
            earlier = [j for j in np.flatnonzero(corr[i, :i] > threshold) if kept[j]["status"] == "ok"]
            if earlier:
                row.update(
                    status="rejected",
                    output="",
                    reason=f"near-duplicate of {kept[earlier[0]]['source']} "
                    f"(thumbnail correlation {corr[i, earlier[0]]:.3f})",
                )
                journal.write(json.dumps(row) + "\n")  # recorded before its image goes (see prepare_dataset)
        journal.flush()
        os.fsync(journal.fileno())


def _kind(reason: str) -> str:
    """A reason without its particulars, for the summary: "file is truncated: ..." -> "file is truncated"."""
    return re.split(r" \(|: ", reason, maxsplit=1)[0]


def prepare_dataset(
    src: str | os.PathLike,
    out: str | os.PathLike,
    size: int = 512,
    workers: int = 1,
    modalities: Sequence[str] = ("CR", "DX"),
    frontal_only: bool = True,
    dedup_threshold: float | None = None,
    progress: bool = False,
) -> dict:
    """Convert every file under ``src`` once into ``out`` (see the module docstring); resumable.

    Args:
        src: a folder tree of DICOM / PNG / JPEG files, or a CSV file with a ``path`` column.
        out: the prepared folder: ``images/``, ``manifest.csv``, ``manifest.jsonl`` (the journal).
        size: the longer side of the written images in pixels (smaller images are not enlarged).
        workers: decoding processes (1: this process).
        modalities: DICOM modalities kept (empty: all); other files are ``rejected``.
        frontal_only: reject DICOMs whose ``ViewPosition`` is neither PA nor AP (kept and marked when
            the tag is absent).
        dedup_threshold: also reject near-duplicates (32x32 thumbnail correlation above it, e.g. 0.95).
        progress: a progress bar (tqdm) on the terminal.

    Returns:
        the summary: ``{"files", "done_before", "processed", "status": {...}, "reasons": {...}}``.
    """
    src, out = Path(src), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    remove_partial_writes(out)  # a killed run's half-written images and manifest
    sources = _sources(src, out)
    done = _read_journal(out)
    todo = _pending(sources, done, out)
    jobs = [(s, str(out / rel), size, tuple(m.upper() for m in modalities), frontal_only) for s, rel, _ in todo]
    _convert(jobs, {s: stamp for s, _, stamp in todo}, out, done, workers, progress)
    current = {str(p) for p, _ in sources}
    rows = {s: r for s, r in done.items() if s in current}  # files since removed from SRC leave the manifest
    if dedup_threshold:
        _mark_near_duplicates(out, rows, dedup_threshold)
    # the manifest first, then the images of rejected rows (near-duplicates, files that turned bad) go:
    # a kill in between leaves an image without a row, never a row without its image
    _write_manifest(out, rows.values())
    outputs = {str(p): rel for p, rel in sources}
    for source, row in rows.items():
        if row["status"] != "ok":
            (out / outputs[source]).unlink(missing_ok=True)
    return {
        "files": len(sources),
        "done_before": len(sources) - len(todo),
        "processed": len(todo),
        "status": dict(Counter(r["status"] for r in rows.values())),
        "reasons": dict(Counter(_kind(r["reason"]) for r in rows.values() if r["status"] == "rejected")),
    }


def _pending(sources: list[tuple[Path, str]], done: dict[str, dict], out: Path) -> list[tuple[str, str, str]]:
    """(source, output relative to OUT, stamp) of the files the journal does not hold as they are now."""
    todo = []
    for path, rel in sources:
        row = done.get(str(path))
        stamp = _stamp(path)
        if row and row.get("stamp") == stamp and (row["status"] != "ok" or (out / row["output"]).is_file()):
            continue
        todo.append((str(path), rel, stamp))
    return todo


def _convert(
    jobs: list[tuple], stamps: dict[str, str], out: Path, done: dict[str, dict], workers: int, progress: bool
) -> None:
    """Run :func:`_prepare_one` on each job (in ``workers`` processes), journalling each row as it comes."""
    bar = tqdm(total=len(jobs), unit="file", desc="prepare") if progress else None
    synced = time.monotonic()
    with open(out / JOURNAL, "a") as journal:
        if workers > 1:
            executor = ProcessPoolExecutor(max_workers=workers)
            # one file at a time: a radiograph takes 0.2-0.6 s to decode, so larger chunks leave a worker idle
            results = executor.map(_prepare_one, *zip(*jobs), chunksize=1) if jobs else iter(())
        else:
            executor, results = None, (_prepare_one(*job) for job in jobs)
        try:
            for row in results:
                row["output"] = os.path.relpath(row["output"], out) if row["output"] else ""
                row["stamp"] = stamps[row["source"]]
                journal.write(json.dumps(row) + "\n")
                journal.flush()  # in the OS's hands: a killed process loses nothing written so far
                if time.monotonic() - synced > 1.0:  # on disk once a second (a power cut costs a rerun of those)
                    os.fsync(journal.fileno())
                    synced = time.monotonic()
                done[row["source"]] = row
                if bar is not None:
                    bar.update()
        finally:
            os.fsync(journal.fileno())
            if executor is not None:
                executor.shutdown(cancel_futures=True)
            if bar is not None:
                bar.close()


def read_manifest(folder: str | os.PathLike) -> list[dict]:
    """The ``ok`` rows of a prepared folder's ``manifest.csv``, with ``output`` made absolute.

    Raises:
        CXRInputError: no manifest, or no ``ok`` row in it.
    """
    folder = Path(folder).resolve()
    manifest = folder / MANIFEST
    if not manifest.is_file():
        raise CXRInputError(manifest, "not a prepared folder: manifest.csv not found (run `spcxr prepare` first)")
    with open(manifest, newline="") as f:
        rows = [dict(r, output=str(folder / r["output"])) for r in csv.DictReader(f) if r["status"] == "ok"]
    if not rows:
        raise CXRInputError(manifest, "no image with status 'ok' in the manifest")
    return rows
