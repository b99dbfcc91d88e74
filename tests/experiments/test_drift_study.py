"""experiments/drift_study.py against the library it calls (it once fell behind a change of ``image_features``)."""

from __future__ import annotations

import sys
from pathlib import Path

from pretraining_runs import EXPERIMENTS

from spcxr_monai.pretrained import DEFAULT


def test_drift_study_writes_its_table_from_the_released_encoders_features(load_script, sample, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(EXPERIMENTS))  # the script imports its sibling held_out
    drift_study = load_script("drift_study.py")
    (tmp_path / "covid-qu-ex").mkdir()
    (tmp_path / "covid-qu-ex" / "train").symlink_to(sample)
    files = sorted(str(p) for p in Path(sample).glob("*/images/*.png"))
    # held-out sets drawn from the sample itself: every step runs on real decodes through the released encoder
    monkeypatch.setattr(drift_study, "held_out_images", lambda data: {"val": files[:12], "pediatric": files[12:24]})
    out = tmp_path / "drift.md"
    argv = ["drift_study.py", "--data", str(tmp_path), "--sizes", "6", "10", "--draws", "3", "--out", str(out)]
    monkeypatch.setattr(sys, "argv", argv)
    drift_study.main()
    lines = out.read_text().splitlines()
    assert f"(encoder `released`: `{DEFAULT}`)" in lines[2] and f"COVID-QU-Ex train ({len(files)})" in lines[2]
    rows = [line.strip("|").split("|") for line in lines if line.startswith(("| 6 |", "| 10 |"))]
    assert len(rows) == 2
    for row in rows:
        assert row[1].strip().endswith("/ 3") and row[3].strip().endswith("/ 3")
        assert all(0.0 < float(row[i]) <= 1.0 for i in (2, 4))  # median permutation p-values
