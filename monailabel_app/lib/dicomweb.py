"""A DICOMweb datastore for radiographs: studies from a PACS (e.g. Orthanc), masks back as DICOM SEG.

MONAI Label's :class:`DICOMWebDatastore` is made for CT / MR series. Three things differ for chest
X-rays:

- the images are the series of modality CR and DX (one QIDO-RS query per modality), not ``CT``;
- a series is one radiograph, served to the bundle as its DICOM file (so the bundle's DICOM checks,
  MONOCHROME1 and VOI LUT handling apply), not converted to NIfTI;
- a ``final`` label is written as a DICOM SEG with highdicom (:class:`SaveDicomSeg`, as the bundle's
  own writer) and stored back over STOW-RS. MONAI Label's writer calls dcmqi's ``itkimage2segimage``,
  which it downloads from GitHub at start-up: a server with no internet access cannot start.
"""

from __future__ import annotations

import logging
import os
import pathlib
import tempfile
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
from cachetools import TTLCache, cached
from dicomweb_client import DICOMwebClient
from monailabel.config import settings
from monailabel.datastore.dicom import DICOMWebDatastore
from monailabel.datastore.local import LocalDatastore
from monailabel.datastore.utils.dicom import dicom_web_upload_dcm
from monailabel.interfaces.datastore import DefaultLabelTag
from monailabel.utils.others.generic import md5_digest
from PIL import Image
from pydicom.dataset import Dataset

from lib import audit
from lib.identity import current_reader
from spcxr_monai.transforms.dicom_seg import SaveDicomSeg

logger = logging.getLogger(__name__)

RADIOGRAPH_MODALITIES = ("CR", "DX")
MASK_SUFFIXES = (".png", ".tif", ".tiff", ".bmp")


def read_mask(path: str) -> np.ndarray:
    """A 2D label image (rows, cols) as the app's segmentation task writes it (PNG of label indices).

    Raises:
        ValueError: not a 2D image format this reads, or not one channel.
    """
    if not path.lower().endswith(MASK_SUFFIXES):
        raise ValueError(
            f"{path}: a DICOM SEG is made from a 2D mask image ({', '.join(MASK_SUFFIXES)}) in the radiograph's "
            "rows and columns, as /infer/lung_segmentation returns it"
        )
    with Image.open(path) as image:
        mask = np.asarray(image)
    if mask.ndim != 2:
        raise ValueError(f"{path}: mask must have one channel, got shape {mask.shape}")
    return mask


class RadiographDICOMwebDatastore(DICOMWebDatastore):
    """DICOMweb datastore of CR / DX radiographs whose ``final`` labels go back to the PACS as DICOM SEG.

    Args:
        client: the DICOMweb client of the PACS.
        modalities: series modalities listed as images.
        cache_path: local cache folder; default ``~/.cache/monailabel/dicom/<hash of the URL>``.
        segment_label: the SEG segment's label.
    """

    def __init__(
        self,
        client: DICOMwebClient,
        modalities: Sequence[str] = RADIOGRAPH_MODALITIES,
        cache_path: str | None = None,
        segment_label: str = "Lungs",
    ) -> None:
        self._client = client
        self._modalities = tuple(modalities)
        self._search_filter: dict[str, Any] = {}
        self._fetch_by_frame = False  # whole instances, as stored (frames would need the PACS to decode)
        self._convert_to_nifti = False
        self._segment_label = segment_label
        self._download_lock = threading.Lock()
        folder = md5_digest(client.base_url)
        path = (
            os.path.join(cache_path, folder)
            if cache_path
            else os.path.join(pathlib.Path.home(), ".cache", "monailabel", "dicom", folder)
        )
        logger.info(f"DICOMweb radiographs ({', '.join(self._modalities)}) from {client.base_url}; cache {path}")
        # LocalDatastore directly: the cache holds .dcm files (DICOMWebDatastore's would hold NIfTI)
        LocalDatastore.__init__(self, datastore_path=path, extensions=("*.dcm",), auto_reload=True)

    def _to_id(self, file: str) -> tuple[str, str]:
        # series UIDs are full of dots: only the known suffix is the extension
        return (file[: -len(".dcm")], ".dcm") if file.endswith(".dcm") else super()._to_id(file)

    @cached(cache=TTLCache(maxsize=16, ttl=settings.MONAI_LABEL_DICOMWEB_CACHE_EXPIRY))
    def list_images(self) -> list[str]:
        series = set()
        for modality in self._modalities:
            for found in self._client.search_for_series(search_filters={"Modality": modality}):
                series.add(str(Dataset.from_json(found)["SeriesInstanceUID"].value))
        return sorted(series)

    def get_image_uri(self, image_id: str) -> str:
        """The series' radiograph as a local DICOM file (downloaded once over WADO-RS)."""
        cached_file = LocalDatastore.get_image_uri(self, image_id)
        if cached_file and os.path.isfile(cached_file):
            return cached_file
        with self._download_lock:  # inferences run in threads: one download, one datastore update at a time
            cached_file = LocalDatastore.get_image_uri(self, image_id)
            if cached_file and os.path.isfile(cached_file):
                return cached_file
            return self._download(image_id)

    def _download(self, image_id: str) -> str:
        """Fetch the series' one instance over WADO-RS into the cache; its local path."""
        found = self._client.search_for_series(search_filters={"SeriesInstanceUID": image_id})
        if not found:
            raise ValueError(f"series {image_id}: not in the PACS")
        study = str(Dataset.from_json(found[0])["StudyInstanceUID"].value)
        # as stored ("*"): a PACS that cannot transcode (Orthanc without a JPEG 2000 plugin) refuses the
        # default request for explicit little endian, and the bundle decodes JPEG 2000 / JPEG-LS itself
        instances = self._client.retrieve_series(study, image_id, media_types=(("application/dicom", "*"),))
        if len(instances) != 1:
            raise ValueError(f"series {image_id}: a radiograph series has one image, this one has {len(instances)}")
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, f"{image_id}.dcm")
            instances[0].save_as(path)
            LocalDatastore.add_image(self, image_id, path, self._dicom_info(image_id))
        return LocalDatastore.get_image_uri(self, image_id)

    def save_label(
        self, image_id: str, label_filename: str, label_tag: str, label_info: dict[str, Any], label_id: str = ""
    ) -> str:
        """Keep the label in the cache; a ``final`` one also goes to the PACS as a DICOM SEG of the image, signed
        by the reader who saved it (``ContentCreatorName``, the series description). Audited either way."""
        reader = current_reader.get()
        study = ""
        try:
            if label_tag == DefaultLabelTag.FINAL:
                source = self.get_image_uri(image_id)
                with tempfile.TemporaryDirectory() as folder:
                    saver = SaveDicomSeg(folder, segment_label=self._segment_label, content_creator=reader)
                    seg = saver(read_mask(label_filename) > 0, source)
                    series_uid = dicom_web_upload_dcm(str(seg), self._client)
                if not series_uid:
                    raise RuntimeError(f"the PACS did not confirm storing the DICOM SEG of series {image_id}")
                logger.info(f"DICOM SEG of {image_id} by {reader or 'an unnamed reader'} stored as series {series_uid}")
                DICOMWebDatastore.get_labeled_images.cache_clear()  # else "completed" lags for the cache's 2 hours
                image_info = self.get_image_info(image_id)
                study = str(image_info.get("StudyInstanceUID") or "")
                label_info = {
                    **label_info,
                    "SeriesInstanceUID": series_uid,
                    "Modality": "SEG",
                    "ContentCreatorName": reader or "",
                    **{k: image_info.get(k) for k in ("PatientID", "StudyInstanceUID")},
                }
            saved = LocalDatastore.save_label(self, image_id, label_filename, label_tag, label_info)
        except Exception as e:
            audit.record("save_label", f"failed: {e}", label_tag, study=study, series=image_id)
            raise
        seg_series = label_info.get("SeriesInstanceUID", "") if label_tag == DefaultLabelTag.FINAL else ""
        audit.record("save_label", f"stored as SEG {seg_series}" if seg_series else "kept", label_tag, study, image_id)
        return saved
