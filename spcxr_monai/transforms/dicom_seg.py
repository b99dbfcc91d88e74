"""Write a predicted mask as a DICOM Segmentation (SEG) object of its source radiograph (highdicom).

A SEG references its source image (study, series and SOP instance UIDs, patient) so a PACS or viewer
shows it over the radiograph. It needs ``highdicom`` (``pip install highdicom``, in
``requirements.txt``), imported through MONAI's ``optional_import``: a missing package fails when a SEG is written, not on import.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform, Transform
from monai.utils import optional_import
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.valuerep import DA, DT, TM

from spcxr_monai.data.dicom import is_dicom_file, pixel_spacing
from spcxr_monai.data.errors import CXRInputError
from spcxr_monai.utils.atomic import atomic_write

hd, _ = optional_import("highdicom")  # only writing a SEG needs it (the "dicom-seg" extra)

__all__ = ["SaveDicomSeg", "SaveDicomSegd", "SaveDicomSegD", "SaveDicomSegDict"]

logger = logging.getLogger(__name__)

# what OHIF (and Cornerstone's DICOM image loader) take for an image without Image Orientation (Patient)
VIEWER_DEFAULT_ORIENTATION = [0, 1, 0, 0, 0, -1]
# the pixel spacing the same viewers assume for an image without a valid one (in pixels, not mm)
VIEWER_DEFAULT_SPACING = (1.0, 1.0)
# the segment's display colour, sRGB (221, 84, 84) as DICOM scaled CIELab (L*, a*, b* to 0..65535); without
# one OHIF warns on every SEG it opens and picks a colour itself
SEGMENT_CIELAB = [35654, 46650, 40241]


class SaveDicomSeg(Transform):
    """Save a binary mask of one single-frame DICOM radiograph as a DICOM SEG file next to its name.

    Args:
        output_dir: folder for ``<source stem>_<output_postfix>.dcm``.
        output_postfix: added to the source file's stem.
        data_root_dir: when set, the SEG goes to ``output_dir/<source folder relative to it>/`` so that
            sources with the same name in different folders never overwrite each other.
        segment_label: the segment's label, e.g. ``"Lungs"``.
        segmented_property_category: a SNOMED CT name of ``pydicom.sr.codedict.codes.SCT``, e.g.
            ``"Organ"``.
        segmented_property_type: a SNOMED CT name of ``codes.SCT``, e.g. ``"Lung"``.
        algorithm_name: written in the segment's algorithm identification.
        algorithm_version: idem.
        series_number: the SEG series' number.
        content_creator: who drew or accepted the mask (the signed-in reader): written as the SEG's
            ``ContentCreatorName`` and named in its series description; None for an unreviewed mask.

    The mask is written with the source's ``PixelSpacing`` / ``ImagerPixelSpacing`` when the source
    has a valid one; where it has only invalid ones (zero, negative: the shared ``RG1_J2KI.dcm`` carries
    0.000 \\ 0.000, which highdicom would copy), with the grid viewers assume for such an image (1 \\ 1, pixels,
    not a measurement): DICOM needs a positive value there and OHIF a value to place the SEG. The source's study and
    patient values the SEG inherits are copied as they are, except those invalid for their VR (e.g. a
    56-character Accession Number, an SH of at most 16): those are left empty, all of them type 2, and
    named in a warning, so the SEG stays valid (``dciodvfy``) and a truncated identifier never points at
    another study. The file is written under a temporary name and renamed, so a reader never sees half a
    file.
    """

    def __init__(
        self,
        output_dir: str | os.PathLike,
        output_postfix: str = "seg",
        segment_label: str = "Lungs",
        segmented_property_category: str = "Organ",
        segmented_property_type: str = "Lung",
        algorithm_name: str = "spcxr-monai UNETR",
        algorithm_version: str = "0.1.0",
        series_number: int = 100,
        data_root_dir: str | os.PathLike = "",
        content_creator: str | None = None,
    ) -> None:
        self.output_dir = Path(output_dir)
        self.data_root_dir = data_root_dir
        self.output_postfix = output_postfix
        self.segment_label = segment_label
        self.segmented_property_category = segmented_property_category
        self.segmented_property_type = segmented_property_type
        self.algorithm_name = algorithm_name
        self.algorithm_version = algorithm_version
        self.series_number = series_number
        self.content_creator = content_creator

    def __call__(  # type: ignore[override]  # a SEG needs its source file as well as the mask
        self, mask: np.ndarray | torch.Tensor, source_file: str | os.PathLike
    ) -> Path:
        """Write the SEG and return its path.

        Args:
            mask: (rows, cols) or (1, rows, cols) in the source's display order (as :class:`LoadCXR`
                gives it), non-zero inside the segment; same rows and columns as the source.
            source_file: the single-frame DICOM the mask was predicted from.

        Raises:
            CXRInputError: the source is not DICOM, or the mask's size differs from the source's.
        """
        source_file = os.fspath(source_file)
        if not is_dicom_file(source_file):
            raise CXRInputError(source_file, "a DICOM SEG needs a DICOM source image")
        array = mask.detach().cpu().numpy() if isinstance(mask, torch.Tensor) else np.asarray(mask)
        array = np.squeeze(array, axis=0) if array.ndim == 3 and array.shape[0] == 1 else array
        source = pydicom.dcmread(source_file, stop_before_pixels=True)  # the header suffices
        source = _name_lossy_compression_method(_blank_unparseable_dates(source))
        _blank_values_too_long(source, source_file)
        if array.shape != (source.Rows, source.Columns):
            raise CXRInputError(
                source_file, f"mask of shape {array.shape} does not match the image ({source.Rows}, {source.Columns})"
            )
        description = hd.seg.SegmentDescription(
            segment_number=1,
            segment_label=self.segment_label,
            segmented_property_category=getattr(codes.SCT, self.segmented_property_category),
            segmented_property_type=getattr(codes.SCT, self.segmented_property_type),
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=hd.AlgorithmIdentificationSequence(
                name=self.algorithm_name,
                version=self.algorithm_version,
                family=codes.cid7162.ArtificialIntelligence,
            ),
        )
        description.RecommendedDisplayCIELabValue = SEGMENT_CIELAB
        spacing, spacing_attr = pixel_spacing(source)
        if spacing_attr == "unknown":  # only invalid values there: highdicom would copy them into the SEG
            for attr in ("PixelSpacing", "ImagerPixelSpacing"):
                source.pop(attr, None)
        reader = f"; reader {self.content_creator}" if self.content_creator else ""
        seg = hd.seg.Segmentation(
            source_images=[source],
            pixel_array=array > 0,
            segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
            segment_descriptions=[description],
            series_instance_uid=hd.UID(),
            series_number=self.series_number,
            sop_instance_uid=hd.UID(),
            instance_number=1,
            manufacturer="spcxr-monai",
            manufacturer_model_name=self.algorithm_name,
            software_versions=self.algorithm_version,
            device_serial_number="0",
            series_description=f"{self.segment_label} ({self.algorithm_name}{reader})"[:64],  # LO
            # a source without a valid spacing: the pixel grid viewers assume for it (Cornerstone: 1 \\ 1), as the
            # orientation below; OHIF cannot place a SEG without one, and a copied 0 \\ 0 is invalid DICOM
            pixel_measures=hd.PixelMeasuresSequence(
                pixel_spacing=list(spacing) if spacing_attr != "unknown" else list(VIEWER_DEFAULT_SPACING),
                slice_thickness=None,
            ),
        )
        _add_plane_orientation_of_projection(seg, source)
        if self.content_creator:
            seg.ContentCreatorName = self.content_creator
        folder = self.output_dir
        if self.data_root_dir:  # keep the source's folder below data_root_dir, as MONAI's SaveImage does
            folder = folder / Path(
                os.path.relpath(Path(source_file).resolve().parent, Path(self.data_root_dir).resolve())
            )
        path = folder / f"{Path(source_file).stem}_{self.output_postfix}.dcm"
        with atomic_write(path) as f:
            seg.save_as(f)
        return path


def _add_plane_orientation_of_projection(seg: Any, source: Any) -> None:
    """Give the SEG of a projection radiograph (CR / DX: no Image Orientation (Patient)) the orientation that
    OHIF and Cornerstone's image loader assume for an image without one, [0, 1, 0, 0, 0, -1]. OHIF's SEG
    loader reads the orientation from the SEG's functional groups: without one it fails ("Cannot read
    properties of undefined (reading 'ImageOrientationPatient')"), with another it refuses the SEG as
    orthogonal to its source. highdicom writes none when the source has none. Frames still reference their
    source image by SOP instance UID."""
    if "ImageOrientationPatient" in source or "PlaneOrientationSequence" in seg.SharedFunctionalGroupsSequence[0]:
        return
    orientation = Dataset()
    orientation.ImageOrientationPatient = VIEWER_DEFAULT_ORIENTATION
    seg.SharedFunctionalGroupsSequence[0].PlaneOrientationSequence = [orientation]


def _blank_unparseable_dates(ds: Any) -> Any:
    """Empty the top-level DA / TM / DT values that are not dates or times.

    Anonymisers sometimes put hashes there (the shared ``966_fixed.dcm`` has one as its StudyDate);
    highdicom copies these attributes into the SEG and refuses such values. They are type 2 in the
    study and patient modules, so empty is allowed.
    """
    parsers = {"DA": DA, "TM": TM, "DT": DT}
    for element in ds:
        if element.VR in parsers and element.value not in (None, ""):
            try:
                parsers[element.VR](element.value)
            except ValueError:
                element.value = ""
    return ds


# the longest value of a string VR (DICOM PS3.5 table 6.2-1) among those a SEG inherits from its source
MAX_LENGTH = {"AE": 16, "CS": 16, "DS": 16, "IS": 12, "LO": 64, "SH": 16}


def _blank_values_too_long(ds: Any, source_file: str) -> None:
    """Empty the top-level string values longer than their VR allows (the shared ``966_fixed.dcm`` has a
    56-character Accession Number): a SEG copying them would be invalid, and cutting an identifier short
    could name another study. Each one is logged."""
    for element in ds:
        limit = MAX_LENGTH.get(element.VR)
        values = (
            element.value if isinstance(element.value, (list, tuple, pydicom.multival.MultiValue)) else [element.value]
        )
        if limit and any(len(str(v)) > limit for v in values if v is not None):
            logger.warning(
                "%s: %s is longer than its VR %s allows (%d characters): left empty in the SEG",
                source_file,
                element.keyword or element.tag,
                element.VR,
                limit,
            )
            element.value = ""


# transfer syntax UID -> LossyImageCompressionMethod (DICOM PS3.3 C.7.6.1.1.5.1)
LOSSY_METHODS = {
    "1.2.840.10008.1.2.4.50": "ISO_10918_1",  # JPEG baseline
    "1.2.840.10008.1.2.4.51": "ISO_10918_1",  # JPEG extended
    "1.2.840.10008.1.2.4.81": "ISO_14495_1",  # JPEG-LS near-lossless
    "1.2.840.10008.1.2.4.91": "ISO_15444_1",  # JPEG 2000
    "1.2.840.10008.1.2.4.203": "ISO_15444_15",  # HTJ2K
}


def _name_lossy_compression_method(ds: Any) -> Any:
    """Fill a missing ``LossyImageCompressionMethod`` of a lossy source from its transfer syntax.

    It is type 1C (required when ``LossyImageCompression`` is 01) but real files omit it (the shared
    ``RG1_J2KI.dcm``); highdicom 0.22, the version beside pydicom 2 in MONAI Label's environment, reads
    it unguarded and fails.
    """
    syntax = str(getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", ""))
    if ds.get("LossyImageCompression") == "01" and "LossyImageCompressionMethod" not in ds and syntax in LOSSY_METHODS:
        ds.LossyImageCompressionMethod = LOSSY_METHODS[syntax]
    return ds


class SaveDicomSegd(MapTransform):
    """Dictionary version of :class:`SaveDicomSeg`: for items whose source image is a DICOM file.

    Items loaded from PNG, NIfTI and other non-DICOM files pass through unchanged, so one inference
    config serves every input format.

    Args:
        keys: keys of the masks, (1, rows, cols) in the source's display order.
        source_key: key of the loaded source image; its meta ``filename_or_obj`` names the file.
        output_dir: see :class:`SaveDicomSeg`.
        enabled: False turns the transform off (a config switch).
        allow_missing_keys: don't raise when a key is absent.
        kwargs: passed on to :class:`SaveDicomSeg`.
    """

    def __init__(
        self,
        keys: KeysCollection,
        source_key: str,
        output_dir: str | os.PathLike,
        enabled: bool = True,
        allow_missing_keys: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.source_key = source_key
        self.enabled = enabled
        self.saver = SaveDicomSeg(output_dir=output_dir, **kwargs)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        source = d.get(self.source_key)
        source_file = getattr(source, "meta", {}).get("filename_or_obj") if source is not None else None
        if not self.enabled or not source_file or not is_dicom_file(source_file):
            return d
        for key in self.key_iterator(d):
            self.saver(d[key], source_file)
        return d


SaveDicomSegD = SaveDicomSegDict = SaveDicomSegd
