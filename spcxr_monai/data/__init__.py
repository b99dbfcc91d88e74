"""Data: CXR reading (DICOM-aware), datalists from folder trees or CSVs, patient splits, de-duplication."""

from spcxr_monai.data.cxr_reader import CXRReader
from spcxr_monai.data.datalist import (
    eval_datalist,
    find_images,
    inference_files,
    make_datalist,
    make_unlabelled_datalist,
    maybe_make_datalist,
)
from spcxr_monai.data.dedup import drop_near_duplicates
from spcxr_monai.data.device_store import DeviceBatchLoader, UInt8ImageStore, normalize_batch
from spcxr_monai.data.dicom import read_dicom_cxr
from spcxr_monai.data.errors import CXRInputError
from spcxr_monai.data.formats import IMAGE_SUFFIXES
from spcxr_monai.data.memory import auto_cache_rate, available_memory
from spcxr_monai.data.sample import sample_dicom, sample_dir, shared_data_root
from spcxr_monai.data.scan import patient_id_from_name, read_csv_datalist, scan_class_folders
from spcxr_monai.data.split import class_weights, split_by_patient, split_items, subsample_stratified
from spcxr_monai.data.tasks import CLASSIFICATION_TASKS, task_classes

__all__ = [
    "CLASSIFICATION_TASKS",
    "CXRInputError",
    "CXRReader",
    "DeviceBatchLoader",
    "IMAGE_SUFFIXES",
    "UInt8ImageStore",
    "auto_cache_rate",
    "available_memory",
    "class_weights",
    "drop_near_duplicates",
    "eval_datalist",
    "make_datalist",
    "find_images",
    "inference_files",
    "make_unlabelled_datalist",
    "maybe_make_datalist",
    "normalize_batch",
    "patient_id_from_name",
    "read_csv_datalist",
    "read_dicom_cxr",
    "sample_dicom",
    "sample_dir",
    "scan_class_folders",
    "shared_data_root",
    "split_by_patient",
    "split_items",
    "subsample_stratified",
    "task_classes",
]
