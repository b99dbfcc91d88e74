"""Datalists from the two real folder layouts and from CSV; patient-level seeded splits; bad input."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest
from monai.data import load_decathlon_datalist

from spcxr_monai.cli import main as spcxr
from spcxr_monai.data import CXRInputError, make_datalist, patient_id_from_name

PEDIATRIC_MAP = {"pneumonia_bacterial": "pneumonia", "pneumonia_viral": "pneumonia"}


def _patients(items):
    return {i["patient"] for i in items}


def test_patient_ids_from_file_names():
    assert patient_id_from_name("person1003_bacteria_2934.png") == "person1003"
    assert patient_id_from_name("person10_virus_35.png") == "person10"
    assert patient_id_from_name("IM-0115-0001.png") == "IM-0115"
    assert patient_id_from_name("NORMAL2-IM-1427-0001.jpeg") == "NORMAL2-IM-1427"
    assert patient_id_from_name("covid_12.png") == "covid_12"


def test_covid_qu_ex_layout_with_masks(shared_data, tmp_path):
    out = tmp_path / "dl.json"
    dl = make_datalist(shared_data / "covid-qu-ex" / "train", out, val_fraction=0.2, seed=0)
    assert dl["labels"] == {"covid": 0, "normal": 1, "pneumonia": 2}
    per_class = {
        c: len(list((shared_data / "covid-qu-ex" / "train" / c / "images").glob("*.png")))
        for c in ("covid", "normal", "pneumonia")
    }
    assert dl["counts"]["training"] + dl["counts"]["validation"] == sum(per_class.values())
    # stratified: 20% of each class's patients (one image per patient in this set), rounded
    val = Counter(i["class_name"] for i in dl["validation"])
    assert all(abs(val[c] - 0.2 * n) <= 1 for c, n in per_class.items()), (val, per_class)
    # MONAI reads it back, with relative paths resolved against the JSON's folder
    items = load_decathlon_datalist(out, is_segmentation=False, data_list_key="validation")
    assert Path(items[0]["image"]).is_file() and Path(items[0]["mask"]).is_file()
    assert Path(items[0]["image"]).name == Path(items[0]["mask"]).name
    assert "images" in items[0]["image"] and "lung_masks" in items[0]["mask"]


def test_pediatric_split_keeps_each_patient_in_one_split(shared_data):
    dl = make_datalist(shared_data / "pediatric" / "train", None, val_fraction=0.25, seed=1, class_map=PEDIATRIC_MAP)
    assert dl["labels"] == {"normal": 0, "pneumonia": 1}
    train, val = dl["training"], dl["validation"]
    assert len(train) + len(val) == 720
    assert not _patients(train) & _patients(val)
    # several patients have more than one image, so the patient split matters here
    per_patient = Counter(i["patient"] for i in train + val)
    assert max(per_patient.values()) > 1
    # ~25% of each class's patients in validation
    for label in (0, 1):
        n_val = len({i["patient"] for i in val if i["label"] == label})
        n_all = len({i["patient"] for i in train + val if i["label"] == label})
        assert abs(n_val / n_all - 0.25) < 0.02


def test_split_is_seeded(sample):
    a = make_datalist(sample, None, seed=3)
    b = make_datalist(sample, None, seed=3)
    c = make_datalist(sample, None, seed=4)
    assert a["validation"] == b["validation"]
    assert a["validation"] != c["validation"]


def test_csv_datalist(tmp_path, sample):
    images = sorted((sample / "normal" / "images").iterdir())[:4]
    rows = ["image,label,patient"] + [f"{p},normal,p{i // 2}" for i, p in enumerate(images)]
    (tmp_path / "list.csv").write_text("\n".join(rows) + "\n")
    dl = make_datalist(tmp_path / "list.csv", None, val_fraction=0.5, seed=0)
    assert dl["labels"] == {"normal": 0}
    assert len(dl["training"]) == len(dl["validation"]) == 2
    assert not _patients(dl["training"]) & _patients(dl["validation"])


def _copy_sample(sample: Path, tmp_path: Path) -> Path:
    root = tmp_path / "data"
    shutil.copytree(sample, root)
    for p in root.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    return root


def test_empty_folder_is_reported(tmp_path, sample):
    with pytest.raises(CXRInputError, match="empty folder") as err:
        make_datalist(tmp_path, None)
    assert str(tmp_path) in str(err.value)
    root = _copy_sample(sample, tmp_path)
    for p in (root / "normal" / "images").iterdir():
        p.unlink()
    with pytest.raises(CXRInputError, match="empty folder") as err:
        make_datalist(root, None)
    assert str(root / "normal" / "images") in str(err.value)


def test_image_without_mask_is_reported(tmp_path, sample):
    root = _copy_sample(sample, tmp_path)
    victim = sorted((root / "covid" / "lung_masks").iterdir())[3]
    victim.unlink()
    with pytest.raises(CXRInputError, match="missing mask") as err:
        make_datalist(root, None)
    assert str(root / "covid" / "images" / victim.name) in str(err.value)


def test_unreadable_file_is_reported(tmp_path, sample):
    root = _copy_sample(sample, tmp_path)
    victim = sorted((root / "pneumonia" / "images").iterdir())[5]
    victim.write_bytes(victim.read_bytes()[:100])  # truncated PNG
    with pytest.raises(CXRInputError, match="unreadable image") as err:
        make_datalist(root, None)
    assert str(victim) in str(err.value)


def test_cli_writes_the_datalist_and_reports_errors(tmp_path, sample, capsys):
    out = tmp_path / "sample.json"
    assert spcxr(["datalist", str(sample), "-o", str(out), "--val-fraction", "0.25", "--seed", "0"]) == 0
    dl = json.loads(out.read_text())
    assert dl["counts"] == {"training": 45, "validation": 15}
    assert all("mask" in i for i in dl["training"])
    assert spcxr(["datalist", str(tmp_path / "nope"), "-o", str(out)]) == 2
    assert "data folder not found" in capsys.readouterr().err


def _csv(tmp_path: Path, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / "list.csv"
    path.write_text(text, encoding=encoding)
    return path


def test_csv_problems_are_one_line_errors_naming_the_row(tmp_path, sample):
    a, b = sorted((sample / "normal" / "images").iterdir())[:2]
    # a byte-order mark (Excel's UTF-8 CSV) is not part of the first column's name
    dl = make_datalist(_csv(tmp_path, f"image,label\n{a},normal\n{b},normal\n", "utf-8-sig"), None, val_fraction=0)
    assert len(dl["training"]) == 2
    with pytest.raises(CXRInputError, match="line 3: empty 'label' cell"):
        make_datalist(_csv(tmp_path, f"image,label\n{a},normal\n{b}\n"), None)
    with pytest.raises(CXRInputError, match="line 2: empty 'label' cell"):
        make_datalist(_csv(tmp_path, f"image,label\n{a}, \n"), None)
    with pytest.raises(CXRInputError, match=r"line 3: .* labelled 'covid' here and 'normal' on line 2"):
        make_datalist(_csv(tmp_path, f"image,label\n{a},normal\n{a},covid\n"), None)


def test_repeated_csv_rows_are_kept_once_with_a_warning(tmp_path, sample, caplog):
    a, b = sorted((sample / "normal" / "images").iterdir())[:2]
    dl = make_datalist(_csv(tmp_path, f"image,label\n{a},normal\n{b},normal\n{a},normal\n"), None, val_fraction=0)
    assert len(dl["training"]) == 2
    assert "line 4 repeats line 2" in caplog.text


def test_too_few_patients_for_validation_warn_and_bad_fractions_are_one_line(tmp_path, sample, caplog, capsys):
    a, b = sorted((sample / "normal" / "images").iterdir())[:2]
    dl = make_datalist(_csv(tmp_path, f"image,label\n{a},normal\n{b},normal\n"), None, val_fraction=0.1)
    assert dl["counts"]["validation"] == 0 and "split 'validation' is empty" in caplog.text
    assert spcxr(["datalist", str(sample), "-o", str(tmp_path / "x.json"), "--val-fraction", "1.0"]) == 2
    assert "sum to < 1" in capsys.readouterr().err
    assert spcxr(["datalist", str(sample), "-o", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err


def test_class_weights_are_balanced_over_present_classes_and_zero_for_absent():
    from spcxr_monai.data import class_weights

    items = [{"label": 0}] * 6 + [{"label": 1}] * 2  # class 2 absent
    weights = class_weights(items, num_classes=3)
    # n / (n_present * count): 8 / (2 * 6), 8 / (2 * 2); mean 1 over the present classes
    assert weights.tolist() == pytest.approx([8 / 12, 2.0, 0.0])
