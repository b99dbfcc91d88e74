"""Fuzzing the DICOM path: seeded mutants of the shared real DICOMs must each give a sound image or
the toolkit's own error naming the file, never a wrong image in silence and never a foreign exception.

Mutants: tag edits (Rows, Columns, Bits*, PixelRepresentation, PhotometricInterpretation, Rescale*,
Window*, VOI LUT, spacing, frames, samples), truncation at random offsets, byte flips in the header
and in the pixel stream. Most are made from small uncompressed copies of the real files (same
headers, stored values subsampled) so that a few hundred decode in seconds; the rest from the real
JPEG 2000 file itself. A sound image is finite, not constant, has the shape the header declares,
and keeps air dark: it correlates with the unmutated file's image (unless the mutant changed the
photometric interpretation, which legitimately inverts it).
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import FileMetaDataset
from pydicom.tag import Tag
from pydicom.uid import ExplicitVRLittleEndian

from spcxr_monai.data.errors import CXRInputError
from spcxr_monai.transforms import LoadCXR

SEED = 20261125
TIME_LIMIT_S = 10.0  # per mutant: a hostile header must not make decoding hang

TAG_EDITS = {
    "Rows": [0, 1, 2, 63, 65, 10**5, "swap"],
    "Columns": [0, 1, 61, 200, "swap"],
    "BitsAllocated": [0, 1, 8, 12, 32, 64],
    "BitsStored": [0, 1, 7, 8, 16, 17, 40],
    "HighBit": [0, 3, 15, 31],
    "PixelRepresentation": [1, 2],
    "PhotometricInterpretation": ["MONOCHROME2", "MONOCHROME1", "RGB", "PALETTE COLOR", "YBR_FULL", "", "X"],
    "RescaleSlope": ["0", "-1", "1e30", "1e-30", "nan", "inf", "abc", "2"],
    "RescaleIntercept": ["-1024", "1e38", "nan", "-inf", "x", "100"],
    "WindowCenter": ["0", "-1e9", "1e9", "nan", "abc", ["100", "200"], "16000"],
    "WindowWidth": ["0", "1", "-5", "1e-9", "inf", "x", "60000"],
    "VOILUTFunction": ["SIGMOID", "LINEAR_EXACT", "BOGUS"],
    "PixelSpacing": [
        ["0", "0"],
        ["inf", "1"],
        ["nan", "0.2"],
        ["-1", "0.2"],
        ["0.1"],
        ["0.1", "0.2", "0.3"],
        ["a", "b"],
    ],
    "NumberOfFrames": ["0", "2", "x", "-1"],
    "SamplesPerPixel": [0, 3, 4],
    "PlanarConfiguration": [1],
}


def _small_copy(src: Path, dst: Path, step: int) -> None:
    """The real file's header with its stored values subsampled by ``step``, uncompressed."""
    ds = pydicom.dcmread(src)
    stored = ds.pixel_array[::step, ::step].astype(np.uint16)
    ds.file_meta = FileMetaDataset(ds.file_meta)
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.Rows, ds.Columns = stored.shape
    ds.PixelData = stored.tobytes()
    ds["PixelData"].VR = "OW"
    ds.save_as(dst, enforce_file_format=True)


def _set(ds: pydicom.Dataset, keyword: str, value) -> None:
    if value == "swap":
        ds.Rows, ds.Columns = ds.Columns, ds.Rows
        return
    if keyword == "VOILUTFunction" or keyword in ("PhotometricInterpretation",):
        ds.add(DataElement(pydicom.datadict.tag_for_keyword(keyword), "CS", value))
        return
    vr = pydicom.datadict.dictionary_VR(keyword)
    if vr in ("US", "SS") and isinstance(value, int):
        ds.add(DataElement(pydicom.datadict.tag_for_keyword(keyword), vr, value & 0xFFFF))
    else:  # DS / IS as raw bytes, valid or not, as a damaged file carries them (written unparsed)
        raw = ("\\".join(value) if isinstance(value, list) else str(value)).encode()
        raw += b" " * (len(raw) % 2)
        tag = pydicom.datadict.tag_for_keyword(keyword)
        ds[tag] = RawDataElement(Tag(tag), vr, len(raw), raw, 0, False, True)


def _mutants(base: Path, out: Path, rng: np.random.Generator, n_random: int, prefix: str) -> list[tuple[Path, str]]:
    """Every tag edit once, a bogus VOI LUT sequence, then ``n_random`` truncations / byte flips."""
    made = []
    for keyword, values in TAG_EDITS.items():
        for i, value in enumerate(values):
            ds = pydicom.dcmread(base)
            _set(ds, keyword, value)
            path = out / f"{prefix}_{keyword}_{i}.dcm"
            try:
                ds.save_as(path, enforce_file_format=True)
            except Exception:  # pydicom refuses to write it: write it the way a broken writer would
                ds.save_as(path)
            made.append((path, keyword))
    ds = pydicom.dcmread(base)
    item = pydicom.Dataset()
    item.add_new(0x00283002, "US", [4, 0, 16])  # LUTDescriptor: 4 entries from 0, 16 bits
    item.add_new(0x00283006, "US", [0, 65535, 0, 65535])  # LUTData: a zigzag no viewer would make
    ds.VOILUTSequence = [item]
    ds.save_as(out / f"{prefix}_voilut.dcm")
    made.append((out / f"{prefix}_voilut.dcm", "VOILUTSequence"))
    raw = base.read_bytes()
    pixel_at = raw.rfind(b"\xe0\x7f\x10\x00")
    for i in range(n_random):
        data = bytearray(raw)
        kind = ("truncate", "flip_header", "flip_pixels")[i % 3]
        if kind == "truncate":
            data = data[: int(rng.integers(1, len(data)))]
        else:
            lo, hi = (132, pixel_at) if kind == "flip_header" else (pixel_at + 12, len(data))
            for at in rng.integers(lo, hi, size=int(rng.integers(1, 9))):
                data[at] ^= int(rng.integers(1, 256))
        path = out / f"{prefix}_{kind}_{i}.dcm"
        path.write_bytes(bytes(data))
        made.append((path, kind))
    return made


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    return float(np.corrcoef(a, b)[0, 1])


def test_every_dicom_mutant_gives_a_sound_image_or_a_named_error(tmp_path, dicom_dir):
    rng = np.random.default_rng(SEED)
    load = LoadCXR()
    cases = []
    for name, step in (("966_fixed.dcm", 16), ("RG1_J2KI.dcm", 16)):
        small = tmp_path / f"small_{name}"
        _small_copy(dicom_dir / name, small, step)
        cases += [(small, m) for m in _mutants(small, tmp_path, rng, n_random=90, prefix=f"s_{Path(name).stem}")]
    real = dicom_dir / "RG1_J2KI.dcm"
    cases += [(real, m) for m in _mutants(real, tmp_path, rng, n_random=24, prefix="j2k")[-24:]]
    assert len(cases) >= 300

    references = {}
    outcomes = {"image": 0, "error": 0}
    failures = []
    for base, (path, kind) in cases:
        if base not in references:
            references[base] = np.asarray(load(base))[0]
        reference = references[base]
        started = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                image = np.asarray(load(path))[0]
        except CXRInputError as e:
            outcomes["error"] += 1
            if not str(e).startswith(str(path)):
                failures.append(f"{path.name}: error does not start with the file: {e}")
            continue
        except Exception as e:  # any other exception is a crash the user cannot act on
            failures.append(f"{path.name} ({kind}): {type(e).__name__}: {str(e)[:200]}")
            continue
        finally:
            if time.perf_counter() - started > TIME_LIMIT_S:
                failures.append(f"{path.name}: {time.perf_counter() - started:.1f} s")
        outcomes["image"] += 1
        problems = []
        if not np.isfinite(image).all():
            problems.append("non-finite values")
        elif np.ptp(image) == 0:
            problems.append("constant")
        try:
            header = pydicom.dcmread(path, stop_before_pixels=True)
            declared = (int(header.Rows), int(header.Columns))
        except Exception:
            declared = None
        if declared is not None and image.shape != declared:
            problems.append(f"shape {image.shape}, header {declared}")
        if not problems and image.shape == reference.shape:
            corr = _correlation(image, reference)
            inverted_ok = kind == "PhotometricInterpretation"
            if (abs(corr) if inverted_ok else corr) < 0.5:
                problems.append(f"correlation with the unmutated image {corr:.2f} (air no longer dark?)")
        elif not problems and base == real:
            problems.append(f"shape {image.shape} differs from the codestream's {reference.shape}")
        if problems:
            failures.append(f"{path.name} ({kind}): " + "; ".join(problems))
    assert not failures, f"{len(failures)} of {len(cases)} mutants ({outcomes}):\n" + "\n".join(failures[:40])
    assert outcomes["image"] > 50 and outcomes["error"] > 50  # the mutants exercise both outcomes
