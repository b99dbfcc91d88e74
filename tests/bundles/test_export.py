"""``spcxr export``: TorchScript and ONNX of the trained classifier and segmenter, equal to the PyTorch
network on real images (preprocessed as the bundles do), run by ONNX Runtime, carrying their metadata."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from bundle_helpers import BUNDLES, run_bundle
from monai.transforms import Compose, NormalizeIntensity, Resize

from spcxr_monai.cli import main as spcxr
from spcxr_monai.networks import create_unetr, create_vit_classifier
from spcxr_monai.transforms import LoadCXR

pytestmark = pytest.mark.slow  # trains and exports bundles

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

SIZE = 64
# fp32 throughout: TorchScript is the same graph (0 difference measured); ONNX Runtime reorders sums
# (measured: ~5e-7 on classifier logits)
ATOL = 1e-4


@pytest.fixture(scope="module")
def images(shared_data):
    files = sorted((shared_data / "covid-qu-ex" / "val").glob("*/images/*.png"))[::300][:4]
    files.append(shared_data / "dicom" / "RG1_J2KI.dcm")
    preprocess = Compose([LoadCXR(), Resize((SIZE, SIZE), mode="area"), NormalizeIntensity()])
    return torch.stack([preprocess(str(f)).as_tensor() for f in files])


@pytest.mark.parametrize("bundle", ["spcxr_cxr_classification", "spcxr_lung_segmentation"])
def test_exported_models_match_pytorch_on_real_images(tmp_path, capsys, images, bundle):
    root = tmp_path / "run"
    run_bundle(
        bundle,
        "training",
        "--config_file",
        "configs/train.json",
        "--bundle_root",
        str(root),
        "--epochs",
        "1",
        "--model_size",
        "tiny",
        "--image_size",
        str(SIZE),
        "--batch_size",
        "8",
    )
    (root / "configs").mkdir()
    for name in ("inference.json", "metadata.json"):
        (root / "configs" / name).write_text((BUNDLES / bundle / "configs" / name).read_text())
    assert (
        spcxr(["export", str(root), "-o", str(tmp_path / "out"), "--set", f"image_size={SIZE}", "model_size=tiny"]) == 0
    )
    written = json.loads(capsys.readouterr().out)
    assert set(written) == {"torchscript", "onnx"}

    if bundle == "spcxr_cxr_classification":
        net = create_vit_classifier("tiny", img_size=SIZE, num_classes=3)
    else:
        feature_size = json.loads((BUNDLES / bundle / "configs" / "train.json").read_text())["feature_size"]
        net = create_unetr("tiny", img_size=SIZE, feature_size=feature_size)  # the bundle's default width
    net.load_state_dict(torch.load(root / "models" / "model.pt", map_location="cpu", weights_only=True))
    net.eval()
    with torch.no_grad():
        reference = net(images).numpy()

    extra = {"metadata.json": ""}
    scripted = torch.jit.load(written["torchscript"], _extra_files=extra)
    with torch.no_grad():
        from_ts = scripted(images).numpy()
    session = ort.InferenceSession(written["onnx"], providers=["CPUExecutionProvider"])
    from_onnx = session.run(None, {"image": images.numpy()})[0]  # 5 images: the batch axis is dynamic
    assert from_ts.shape == from_onnx.shape == reference.shape
    ts_diff, onnx_diff = np.abs(from_ts - reference).max(), np.abs(from_onnx - reference).max()
    print(f"{bundle}: max |TorchScript - PyTorch| {ts_diff:.2e}, max |ONNX Runtime - PyTorch| {onnx_diff:.2e}")
    assert ts_diff <= ATOL and onnx_diff <= ATOL
    assert (from_onnx.argmax(1) == reference.argmax(1)).all()

    # what inference needs travels in both files
    in_ts = json.loads(extra["metadata.json"])["spcxr_metadata"]
    in_onnx = json.loads({p.key: p.value for p in onnx.load(written["onnx"]).metadata_props}["spcxr_metadata"])
    assert in_ts == in_onnx
    assert in_onnx["input"]["shape"] == ["B", 1, SIZE, SIZE]
    assert any("NormalizeIntensity" in step for step in in_onnx["preprocessing"])
    if bundle == "spcxr_cxr_classification":
        assert in_onnx["output"]["classes"] == ["covid", "pneumonia", "normal"]
    else:
        assert in_onnx["output"]["labels"]["1"] == "lungs"


def test_export_without_trained_weights_is_one_clear_error(tmp_path, capsys):
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "inference.json").write_text(
        (BUNDLES / "spcxr_cxr_classification" / "configs" / "inference.json").read_text()
    )
    assert spcxr(["export", str(tmp_path)]) == 2
    assert f"{tmp_path / 'models' / 'model.pt'}: trained weights not found" in capsys.readouterr().err
