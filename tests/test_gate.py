"""The input gate (`spcxr check`) with the calibration shipped beside the released encoder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import skimage
from PIL import Image

from spcxr_monai.cli import main as spcxr
from spcxr_monai.gate import GateCalibration, InputGate, default_calibration
from spcxr_monai.transforms import LoadCXR


@pytest.fixture(scope="module")
def gate() -> InputGate:
    return InputGate()


@pytest.fixture(scope="module")
def cases(tmp_path_factory, sample) -> dict[str, list[Path]]:
    """Real CXRs of the sample, the same inverted and rotated, a few photographs, a broken file."""
    root = tmp_path_factory.mktemp("gate")
    cxrs = sorted(sample.rglob("images/*.png"))[:12]
    out = {"cxr": cxrs, "inverted": [], "rotated": [], "other": [], "broken": [root / "broken.png"]}
    for i, path in enumerate(cxrs):
        grey = np.asarray(Image.open(path).convert("L"))
        Image.fromarray(255 - grey).save(root / f"inv_{path.name}")
        Image.fromarray(np.ascontiguousarray(np.rot90(grey, 1 if i % 2 else -1))).save(root / f"rot_{path.name}")
        out["inverted"].append(root / f"inv_{path.name}")
        out["rotated"].append(root / f"rot_{path.name}")
    for name in ("astronaut.png", "camera.png", "coffee.png", "chelsea.png", "page.png", "phantom.png"):
        out["other"].append(Path(skimage.__file__).parent / "data" / name)
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 100)
    return out


def test_the_calibration_ships_with_its_measured_rates():
    cal = GateCalibration.load(default_calibration())
    assert cal.template.shape == (1024,) and cal.feature_precision.shape == (192, 192)
    assert 0 < cal.min_correlation < 1 and cal.max_distance > 0
    assert cal.info["flagged"]["COVID-QU-Ex val (CXRs)"] <= 0.02  # the false-alarm rate it was shipped with


def test_chest_radiographs_pass_and_the_rest_is_flagged_with_a_reason(gate, cases, dicom_dir):
    results = gate.check([p for group in cases.values() for p in group])
    verdict = {group: [results[str(p)]["ok"] for p in files] for group, files in cases.items()}
    assert sum(verdict["cxr"]) >= 11  # at most one false alarm in 12
    assert not any(verdict["inverted"]) and not any(verdict["rotated"]) and not any(verdict["other"])
    assert all(results[str(p)]["reasons"][0].startswith("inverted (air bright)") for p in cases["inverted"])
    assert sum("rotated" in " ".join(results[str(p)]["reasons"]) for p in cases["rotated"]) >= 10
    broken = results[str(cases["broken"][0])]
    assert broken["ok"] is False and broken["scores"] == {} and broken["reasons"]
    # the scores say how far: a CXR correlates with the template, its inverse the opposite way
    cxr, inverted = (results[str(cases[g][0])]["scores"]["template_correlation"] for g in ("cxr", "inverted"))
    assert cxr > 0.5 and inverted == pytest.approx(-cxr, abs=0.05)
    dicoms = gate.check(sorted(p for p in dicom_dir.glob("*.dcm") if "broken" not in p.name))
    assert all(r["ok"] for r in dicoms.values()), dicoms  # the shared CR and DX chests pass


def test_a_ct_dicom_is_flagged_by_its_modality(gate):
    import pydicom

    ct = Path(pydicom.__file__).parent / "data" / "test_files" / "CT_small.dcm"
    result = gate.check([ct])[str(ct)]
    assert not result["ok"] and "DICOM modality CT is not a radiograph" in result["reasons"]


def test_spcxr_check_prints_json_and_exits_1_when_something_is_flagged(cases, capsys):
    files = [str(cases["cxr"][0]), str(cases["inverted"][0])]
    assert spcxr(["check", *files, "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert set(out) == set(files) and out[files[0]]["ok"] and not out[files[1]]["ok"]
    assert set(out[files[0]]["scores"]) == {"template_correlation", "orientation_margin", "feature_distance"}
    assert spcxr(["check", files[0]]) == 0


def test_the_gate_reads_images_as_the_models_do(gate, cases):
    image = LoadCXR()(cases["cxr"][0])  # (1, rows, cols), as the gate decodes it
    features = gate.features([image, image])
    assert features.shape == (2, 192) and np.allclose(features[0], features[1])
