"""CXR loading: DICOM decoding and LUTs, other formats, orientation, and clear errors."""

from __future__ import annotations

import shutil
from io import BytesIO
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
import torch
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    RLELossless,
    SecondaryCaptureImageStorage,
    generate_uid,
)

from spcxr_monai.data import CXRInputError, sample_dicom
from spcxr_monai.transforms import LoadCXR, LoadCXRd


@pytest.fixture(scope="module")
def load() -> LoadCXR:
    return LoadCXR()


def _corr(a, b) -> float:
    return float(np.corrcoef(np.asarray(a).ravel(), np.asarray(b).ravel())[0, 1])


def _spine_and_lung_means(img: torch.Tensor) -> tuple[float, float]:
    """Mean of a central vertical strip (spine, mediastinum) and of the right lung field (image left)."""
    x = img[0].numpy()
    h, w = x.shape
    rows = slice(h // 4, 3 * h // 4)
    return float(x[rows, 45 * w // 100 : 55 * w // 100].mean()), float(x[rows, 20 * w // 100 : 35 * w // 100].mean())


def _dicom(tmp_path: Path, pixels: np.ndarray, name: str = "synthetic.dcm", **attrs) -> Path:
    """Write a minimal uncompressed grey DICOM holding ``pixels`` (uint16, rows x cols or frames x rows x cols)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "DX"
    ds.Rows, ds.Columns = pixels.shape[-2:]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 12, 11
    ds.PixelRepresentation = 0
    for key, value in attrs.items():
        setattr(ds, key, value)
    ds.PixelData = pixels.astype(np.uint16).tobytes()
    path = tmp_path / name
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.fixture()
def png_pixels(real_png: Path) -> np.ndarray:
    return np.asarray(Image.open(real_png))


# ----------------------------------------------------------------------------- real DICOMs


def test_j2k_and_jpegls_decode_to_the_same_image(load, dicom_dir):
    j2k = load(dicom_dir / "RG1_J2KI.dcm")
    jls = load(dicom_dir / "RG1_JLSN.dcm")
    assert j2k.shape == jls.shape == (1, 1955, 1841)
    assert j2k.dtype == torch.float32
    assert _corr(j2k, jls) > 0.99


@pytest.mark.parametrize("name", ["RG1_J2KI.dcm", "RG1_JLSN.dcm", "966_fixed.dcm"])
def test_monochrome1_comes_out_with_air_dark(load, dicom_dir, name):
    img = load(dicom_dir / name)
    assert img.meta["photometric_interpretation"] == "MONOCHROME1"
    spine, lung = _spine_and_lung_means(img)
    assert spine > lung * 1.1, f"lungs ({lung:.0f}) should be darker than the spine ({spine:.0f})"
    # and the same file read without the inversion would show the opposite
    raw = pydicom.dcmread(dicom_dir / name).pixel_array.astype(np.float32)[None]
    raw_spine, raw_lung = _spine_and_lung_means(torch.from_numpy(raw))
    assert raw_spine < raw_lung


def test_dicom_meta_carries_spacing_and_size(load, dicom_dir):
    img = load(dicom_dir / "966_fixed.dcm")
    assert img.meta["spacing"] == pytest.approx((0.16, 0.16))
    assert tuple(img.meta["original_size"]) == (2128, 2000)
    assert img.meta["filename_or_obj"].endswith("966_fixed.dcm")
    assert img.meta["voi_applied"]
    # RG1 stores PixelSpacing 0\0: unknown, reported as such
    rg1 = load(dicom_dir / "RG1_J2KI.dcm")
    assert rg1.meta["spacing_source"] == "unknown" and np.isnan(rg1.meta["spacing"]).all()
    assert np.allclose(np.asarray(rg1.affine)[:2, :2], np.eye(2))  # the affine counts pixels


def test_broken_stream_names_the_file_and_the_problem(load, dicom_dir):
    path = dicom_dir / "966_broken_stream.dcm"
    with pytest.raises(CXRInputError) as err:
        load(path)
    assert str(path) in str(err.value)
    assert "pixel data could not be decoded" in str(err.value)


def test_embedded_dicom_sample_loads(load):
    img = load(sample_dicom())
    assert img.shape == (1, 1955, 1841)


# ------------------------------------------------------------------------ synthetic DICOMs


def test_modality_lut_voi_window_and_monochrome1(tmp_path, load):
    stored = np.tile(np.arange(0, 4000, 4000 // 64, dtype=np.uint16)[:64], (8, 1))
    slope, intercept = 2.0, -100.0
    path = _dicom(tmp_path, stored, RescaleSlope=slope, RescaleIntercept=intercept, WindowCenter=3000, WindowWidth=2000)
    img = load(path)[0].numpy()
    value = stored * slope + intercept
    # linear window: below 2000 -> min, above 4000 -> max, monotone in between
    assert np.all(np.diff(img[0]) >= 0)
    assert np.all(img[0][value[0] <= 2000] == img.min())
    assert np.all(img[0][value[0] >= 4000] == img.max())
    inverted = load(_dicom(tmp_path, stored, "m1.dcm", PhotometricInterpretation="MONOCHROME1"))[0].numpy()
    plain = LoadCXR(apply_voi=False)(_dicom(tmp_path, stored, "m2.dcm"))[0].numpy()
    np.testing.assert_allclose(inverted, plain.max() + plain.min() - plain)


def test_multiframe_is_refused(tmp_path, load):
    path = _dicom(tmp_path, np.zeros((2, 8, 8)), NumberOfFrames=2)
    with pytest.raises(CXRInputError, match="multi-frame"):
        load(path)


@pytest.mark.parametrize("syntax", [RLELossless, JPEG2000Lossless])
def test_lossless_transfer_syntaxes_round_trip(tmp_path, load, png_pixels, syntax):
    pixels = png_pixels.astype(np.uint16) * 16  # 12-bit range
    path = _dicom(tmp_path, pixels)
    ds = pydicom.dcmread(path)
    ds.compress(syntax, encoding_plugin="pylibjpeg" if syntax == JPEG2000Lossless else "")
    ds.save_as(path)
    np.testing.assert_array_equal(load(path)[0].numpy(), pixels.astype(np.float32))


def test_jpeg_baseline_decodes(tmp_path, load, png_pixels):
    buf = BytesIO()
    Image.fromarray(png_pixels).save(buf, format="JPEG", quality=95)
    path = _dicom(tmp_path, png_pixels)
    ds = pydicom.dcmread(path)
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    ds.PixelData = encapsulate([buf.getvalue()])
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.save_as(path)
    assert _corr(load(path), png_pixels) > 0.99


# --------------------------------------------------------------------------- other formats


def test_png_is_grey_display_order_float(load, real_png, png_pixels):
    img = load(real_png)
    assert img.shape == (1, *png_pixels.shape)
    np.testing.assert_array_equal(img[0].numpy(), png_pixels.astype(np.float32))


def test_16bit_rgb_rgba_pngs_become_one_grey_channel(tmp_path, load, png_pixels):
    Image.fromarray(png_pixels.astype(np.uint16) * 257).save(tmp_path / "g16.png")
    np.testing.assert_array_equal(load(tmp_path / "g16.png")[0].numpy(), png_pixels * 257.0)
    rgb = np.stack([png_pixels] * 3, -1)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    Image.fromarray(np.concatenate([rgb, np.full_like(png_pixels, 255)[..., None]], -1)).save(tmp_path / "rgba.png")
    Image.fromarray(rgb).save(tmp_path / "rgb.jpg", quality=98)
    for name in ("rgb.png", "rgba.png"):
        img = load(tmp_path / name)
        assert img.shape == (1, *png_pixels.shape)
        np.testing.assert_allclose(img[0].numpy(), png_pixels, atol=0.01)
    assert _corr(load(tmp_path / "rgb.jpg"), png_pixels) > 0.99


def test_nifti_and_mha_match_the_png_orientation(tmp_path, load, png_pixels):
    # NIfTI / ITK index (x, y): the array they store is the transpose of the displayed rows x cols
    nib.save(nib.Nifti1Image(png_pixels.T.astype(np.float32), np.diag([0.2, 0.3, 1.0, 1.0])), tmp_path / "a.nii.gz")
    itk_image = sitk.GetImageFromArray(png_pixels.astype(np.float32))  # sitk arrays are (rows, cols)
    itk_image.SetSpacing((0.2, 0.3))
    sitk.WriteImage(itk_image, str(tmp_path / "a.mha"))
    for name in ("a.nii.gz", "a.mha"):
        img = load(tmp_path / name)
        np.testing.assert_array_equal(img[0].numpy(), png_pixels.astype(np.float32))
        assert img.meta["spacing"] == pytest.approx((0.3, 0.2))  # (row, col) mm


def test_without_itk_only_mha_and_nrrd_fail_and_say_why(tmp_path, monkeypatch, png_pixels):
    Image.fromarray(png_pixels).save(tmp_path / "a.png")
    sitk.WriteImage(sitk.GetImageFromArray(png_pixels.astype(np.float32)), str(tmp_path / "a.mha"))
    monkeypatch.setitem(__import__("sys").modules, "itk", None)  # as on a machine without the itk package
    load = LoadCXR()
    np.testing.assert_allclose(load(tmp_path / "a.png")[0].numpy(), png_pixels, atol=0.01)
    with pytest.raises(CXRInputError, match=r"a\.mha.*itk"):
        load(tmp_path / "a.mha")


def test_dictionary_version_keeps_meta(real_png):
    out = LoadCXRd(keys="image")({"image": str(real_png), "label": 1})
    assert out["label"] == 1 and out["image"].shape[0] == 1
    assert out["image"].meta["filename_or_obj"] == str(real_png)


# ------------------------------------------------------------------------------ bad input


def test_missing_empty_and_not_dicom_files_give_clear_errors(tmp_path, load):
    cases = {
        tmp_path / "missing.png": "file not found",
        tmp_path / "empty.dcm": "file is empty",
        tmp_path / "text.dcm": "not a readable DICOM",
        tmp_path / "notes.txt": "unknown image format",
        tmp_path / "fake.png": "could not be read as an image",
    }
    (tmp_path / "empty.dcm").write_bytes(b"")
    (tmp_path / "text.dcm").write_text("this is not a DICOM file")
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "fake.png").write_text("not a png")
    for path, problem in cases.items():
        with pytest.raises(CXRInputError) as err:
            load(path)
        assert str(path) in str(err.value) and problem in str(err.value)


def test_wrong_channels_and_volumes_are_refused(tmp_path, load):
    nib.save(nib.Nifti1Image(np.zeros((16, 16, 3), np.float32), np.eye(4)), tmp_path / "vol.nii.gz")
    with pytest.raises(CXRInputError, match="single 2D image"):
        load(tmp_path / "vol.nii.gz")
    ink = np.zeros((8, 8, 4), np.uint8)
    ink[..., 3] = np.linspace(0, 255, 8, dtype=np.uint8)[None, :]  # black ink rising left to right
    Image.fromarray(ink, "CMYK").save(tmp_path / "cmyk.jpg", quality=100)
    img = load(tmp_path / "cmyk.jpg")  # grey = what the ink shows: white on the left, black on the right
    assert img.shape == (1, 8, 8)
    row = np.asarray(img[0, 4])
    assert row[0] > 240 and row[-1] < 15 and np.all(np.diff(row) < 3)


def test_dicom_without_suffix_is_recognised(tmp_path, load, dicom_dir):
    shutil.copy(dicom_dir / "RG1_J2KI.dcm", tmp_path / "IM0001")
    assert load(tmp_path / "IM0001").shape == (1, 1955, 1841)


# ----------------------------------------------------------------------------- unsound DICOMs


def _ramp() -> np.ndarray:
    return np.tile(np.arange(0, 4000, 4000 // 64, dtype=np.uint16)[:64], (8, 1))


@pytest.mark.parametrize(
    "attrs, problem",
    [
        ({"RescaleSlope": "NaN", "RescaleIntercept": 0}, "non-finite pixel values"),
        ({"RescaleSlope": 0, "RescaleIntercept": 0}, "constant"),
    ],
)
def test_nan_or_constant_pixel_values_are_the_loaders_error(tmp_path, load, attrs, problem):
    path = _dicom(tmp_path, _ramp(), **attrs)
    with pytest.raises(CXRInputError, match=problem) as err:
        load(path)
    assert str(path) in str(err.value)


def test_a_window_that_misses_the_data_falls_back_to_its_range(tmp_path, load, caplog):
    path = _dicom(tmp_path, _ramp(), WindowCenter=60000, WindowWidth=100)
    img = load(path)[0].numpy()
    assert np.ptp(img) > 0 and np.all(np.diff(img[0]) >= 0)  # the ramp, not a blank
    assert "misses the pixel values" in caplog.text


def test_empty_pixel_data_is_refused_not_filled_by_a_fallback(tmp_path, load):
    path = _dicom(tmp_path, _ramp())
    ds = pydicom.dcmread(path)
    ds.PixelData = b""
    ds.save_as(path)
    with pytest.raises(CXRInputError, match="pixel data is empty"):
        load(path)


def test_infinite_spacing_is_unknown(tmp_path):
    from spcxr_monai.data import read_dicom_cxr

    _, meta = read_dicom_cxr(_dicom(tmp_path, _ramp(), PixelSpacing=["inf", "0.2"]))
    assert meta["spacing_source"] == "unknown" and np.isnan(meta["spacing"]).all()
    _, meta = read_dicom_cxr(_dicom(tmp_path, _ramp(), PixelSpacing=["0.2", "0.3"]))
    assert meta["spacing_source"] == "PixelSpacing" and meta["spacing"] == (0.2, 0.3)


def test_png_spacing_is_unknown_and_a_constant_png_is_refused(tmp_path, load):
    from PIL import Image

    ramp = np.tile(np.arange(64, dtype=np.uint8), (48, 1))
    Image.fromarray(ramp).save(tmp_path / "ramp.png")
    img = load(tmp_path / "ramp.png")
    assert img.meta["spacing_source"] == "unknown" and np.isnan(img.meta["spacing"]).all()
    Image.fromarray(np.full((48, 64), 7, np.uint8)).save(tmp_path / "blank.png")
    with pytest.raises(CXRInputError, match=r"blank\.png: decoded image is constant \(7 everywhere"):
        load(tmp_path / "blank.png")


@pytest.mark.parametrize("fraction", [0.3, 0.99])
def test_a_truncated_dicom_is_called_truncated(tmp_path, dicom_dir, fraction):
    from spcxr_monai.data import read_dicom_cxr

    data = (dicom_dir / "RG1_J2KI.dcm").read_bytes()
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(
        CXRInputError, match=r"cut\.dcm: file is truncated: its pixel data start at byte \d+ but the file ends"
    ):
        read_dicom_cxr(cut)


def test_gdcm_fallback_gives_air_dark_like_pydicom(monkeypatch, dicom_dir):
    from spcxr_monai.data import read_dicom_cxr

    path = dicom_dir / "RG1_JLSN.dcm"
    direct, meta = read_dicom_cxr(path)
    assert meta["decoder"] == "pydicom"

    def fail(self):
        raise RuntimeError("no decoder plug-in")

    monkeypatch.setattr(pydicom.dataset.Dataset, "pixel_array", property(fail))
    fallback, meta = read_dicom_cxr(path)
    assert meta["decoder"] == "gdcm"
    assert _corr(direct[::7, ::7], fallback[::7, ::7]) > 0.99  # not inverted twice


@pytest.mark.parametrize("mode", ["P", "CMYK", "LA", "1"])
def test_palette_cmyk_and_other_pil_modes_decode_to_grey(tmp_path, load, png_pixels, mode):
    grey = Image.fromarray(png_pixels)
    suffix = ".jpg" if mode == "CMYK" else ".png"
    path = tmp_path / f"converted_{mode}{suffix}"
    grey.convert(mode).save(path, **({"quality": 95} if suffix == ".jpg" else {}))
    img = load(path)[0].numpy()
    assert img.shape == png_pixels.shape
    if mode == "1":  # bilevel (dithered): black and white, the layout survives
        assert set(np.unique(img)) == {0.0, 255.0} and _corr(img, png_pixels) > 0.3
    else:
        assert _corr(img, png_pixels) > 0.98 and abs(float(img.mean()) - float(png_pixels.mean())) < 8
