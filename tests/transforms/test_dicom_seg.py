"""DICOM SEG writing: the mask round-trips and the SEG references its real source radiograph."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest
import torch

from spcxr_monai.data import sample_dicom, sample_dir
from spcxr_monai.data.errors import CXRInputError
from spcxr_monai.transforms import LoadCXRd, SaveDicomSeg, SaveDicomSegd


def _rectangle(rows: int, cols: int) -> np.ndarray:
    mask = np.zeros((1, rows, cols), np.uint8)
    mask[0, rows // 4 : rows // 2, cols // 5 : cols // 2] = 1  # off-centre: a transpose would show
    return mask


@pytest.mark.parametrize("name", ["966_fixed.dcm", "RG1_J2KI.dcm"])
def test_mask_round_trips_and_references_the_source(tmp_path, dicom_dir, name):
    source = pydicom.dcmread(dicom_dir / name, stop_before_pixels=True)
    mask = _rectangle(source.Rows, source.Columns)
    path = SaveDicomSeg(tmp_path)(torch.as_tensor(mask), dicom_dir / name)

    assert path == tmp_path / f"{name[:-4]}_seg.dcm" and not list(tmp_path.glob(".tmp_*"))
    seg = pydicom.dcmread(path)
    assert seg.Modality == "SEG" and seg.SOPClassUID == "1.2.840.10008.5.1.4.1.1.66.4"
    assert (seg.Rows, seg.Columns) == (source.Rows, source.Columns)
    assert seg.StudyInstanceUID == source.StudyInstanceUID and seg.PatientID == source.PatientID
    ref = seg.ReferencedSeriesSequence[0]
    assert ref.SeriesInstanceUID == source.SeriesInstanceUID
    assert ref.ReferencedInstanceSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID
    assert seg.SegmentSequence[0].SegmentLabel == "Lungs"
    np.testing.assert_array_equal(seg.pixel_array.astype(bool), mask[0] > 0)
    spacing = seg.SharedFunctionalGroupsSequence[0].get("PixelMeasuresSequence")
    if name == "966_fixed.dcm":  # real ImagerPixelSpacing 0.16 mm is carried; RG1 has only 0/0
        assert [float(v) for v in spacing[0].PixelSpacing] == pytest.approx([0.16, 0.16])
    # what OHIF needs to draw it over a projection radiograph (its browser test: tests/monailabel)
    assert "ImageOrientationPatient" not in source
    orientation = seg.SharedFunctionalGroupsSequence[0].PlaneOrientationSequence[0].ImageOrientationPatient
    assert [float(v) for v in orientation] == [0, 1, 0, 0, 0, -1]
    assert list(seg.SegmentSequence[0].RecommendedDisplayCIELabValue) == [35654, 46650, 40241]


def test_dict_version_writes_for_dicom_and_skips_png(tmp_path):
    loader = LoadCXRd(keys="image")
    writer = SaveDicomSegd(keys="pred", source_key="image", output_dir=tmp_path, output_postfix="lungs_seg")
    dicom_item = loader({"image": sample_dicom()})
    dicom_item["pred"] = torch.as_tensor(_rectangle(*dicom_item["image"].shape[1:]))
    writer(dicom_item)
    png = next((Path(sample_dir()) / "normal" / "images").glob("*.png"))
    png_item = loader({"image": str(png)})
    png_item["pred"] = torch.as_tensor(_rectangle(*png_item["image"].shape[1:]))
    writer(png_item)
    assert [p.name for p in tmp_path.iterdir()] == ["RG1_J2KI_lungs_seg.dcm"]


def test_wrong_size_or_non_dicom_source_is_refused(tmp_path, dicom_dir):
    with pytest.raises(CXRInputError, match=r"966_fixed\.dcm.*does not match the image \(2128, 2000\)"):
        SaveDicomSeg(tmp_path)(np.zeros((1, 64, 64)), dicom_dir / "966_fixed.dcm")
    png = next((Path(sample_dir()) / "normal" / "images").glob("*.png"))
    with pytest.raises(CXRInputError, match="needs a DICOM source"):
        SaveDicomSeg(tmp_path)(np.zeros((1, 256, 256)), png)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("name", ["966_fixed.dcm", "966_broken_stream.dcm", "RG1_J2KI.dcm", "RG1_JLSN.dcm"])
def test_every_seg_is_valid_to_dciodvfy_and_names_its_reader(tmp_path, dicom_dir, name):
    """dciodvfy (Debian's dicom3tools, David Clunie's validator) reports no error in the SEG of each shared
    radiograph: not the source's zero Pixel Spacing (RG1_*), not its 56-character Accession Number (966_*)."""
    if not shutil.which("dciodvfy"):
        pytest.skip("dciodvfy is not installed (Debian: apt-get install dicom3tools; .ci/run installs it)")
    source = pydicom.dcmread(dicom_dir / name, stop_before_pixels=True)
    path = SaveDicomSeg(tmp_path, content_creator="reader_one")(
        _rectangle(source.Rows, source.Columns), dicom_dir / name
    )
    report = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True)
    errors = [line for line in (report.stdout + report.stderr).splitlines() if line.startswith("Error")]
    assert errors == []
    seg = pydicom.dcmread(path, stop_before_pixels=True)
    assert str(seg.ContentCreatorName) == "reader_one" and "reader reader_one" in seg.SeriesDescription
    assert seg.StudyInstanceUID == source.StudyInstanceUID  # the links a viewer needs are never blanked
    if len(str(source.get("AccessionNumber", ""))) > 16:
        assert seg.AccessionNumber == ""  # invalid inherited value left empty, not cut to another number
    spacing = seg.SharedFunctionalGroupsSequence[0].get("PixelMeasuresSequence")
    if name.startswith("RG1"):  # only 0 \ 0 in the source: the viewers' grid (pixels), not an invalid copy
        assert [float(v) for v in spacing[0].PixelSpacing] == [1.0, 1.0]
