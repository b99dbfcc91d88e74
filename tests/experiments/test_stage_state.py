"""Carrying a pretraining stage between sessions: the int8 delta restores the weights within fp16's rounding, the
record keeps the run's log, and a release spanning stages is exported from the records alone, as from the runs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from pretraining_runs import EXPERIMENTS, fake_run, read_figure, write_figure

from spcxr_monai.pretrained import DEFAULT, RELEASED, released_encoder

STEM = Path(RELEASED[DEFAULT]["file"]).stem  # the default release stands in for the one a stage continues


@pytest.fixture(scope="module")
def scripts(load_script):
    sys.path.insert(0, str(EXPERIMENTS / "release"))  # stage_state imports export_encoder, as when run
    try:
        yield load_script("release/stage_state.py"), load_script("release/export_encoder.py")
    finally:
        sys.path.remove(str(EXPERIMENTS / "release"))


def stage_weights(seed: int) -> dict[str, torch.Tensor]:
    """The default release moved a little, as a stage of pretraining moves it."""
    base = torch.load(released_encoder(), map_location="cpu", weights_only=True)
    generator = torch.Generator().manual_seed(seed)
    return {k: v.float() + 0.01 * torch.randn(v.shape, generator=generator) for k, v in base.items()}


def test_a_stage_saved_and_restored_keeps_its_weights_and_its_log(scripts, tmp_path):
    stage_state, _ = scripts
    weights = stage_weights(0)
    run = fake_run(tmp_path / "gmml_stage5", [0.23, 0.22, 0.215], {2: 0.74}, best=2)
    torch.save(weights, run / "models" / "model.pt")
    record = stage_state.save(str(run / "models" / "model.pt"), str(tmp_path / "stage5"), DEFAULT)
    assert record["max_abs_error"] < 1e-3 and (tmp_path / "stage5.pt.xz").stat().st_size < 8e6
    stage_state.restore(str(tmp_path / "stage5"), str(tmp_path / "restored.pt"))
    restored = torch.load(tmp_path / "restored.pt", weights_only=True)
    assert set(restored) == set(weights)
    assert max(float((restored[k] - weights[k]).abs().max()) for k in weights) == pytest.approx(record["max_abs_error"])
    saved = json.loads((tmp_path / "stage5.json").read_text())
    epochs, l1 = zip(*saved["log"]["val_masked_l1"])
    assert epochs == (1, 2, 3) and l1 == pytest.approx((0.23, 0.22, 0.215))
    assert saved["log"]["probe"]["best_epoch"] == 2 and saved["log"]["run"] == str(run)

    # a record saved before logs were kept gets its run's log afterwards; an unknown run is an error
    del saved["log"]
    (tmp_path / "stage5.json").write_text(json.dumps(saved))
    assert stage_state.add_log(str(run), str(tmp_path / "stage5"))["log"]["val_masked_l1"][-1][0] == 3
    with pytest.raises(ValueError, match="no val_masked_l1 curve"):
        stage_state.add_log(str(tmp_path / "elsewhere"), str(tmp_path / "stage5"))


def test_a_release_from_stage_records_equals_one_from_the_run_folders(scripts, tmp_path, monkeypatch):
    stage_state, export = scripts
    runs, stems = [], []
    for number, l1 in ((5, [0.23, 0.22]), (6, [0.225, 0.21, 0.212])):
        run = fake_run(tmp_path / f"gmml_stage{number}", l1, {2: 0.7 + number / 100}, best=2)
        torch.save(stage_weights(number), run / "models" / "model.pt")
        stage_state.save(str(run / "models" / "model.pt"), str(tmp_path / f"stage{number}"), DEFAULT)
        runs.append(run)
        stems.append(tmp_path / f"stage{number}")
    stage_state.restore(str(stems[-1]), str(tmp_path / "stage6_restored.pt"))
    evaluated = tmp_path / "eval" / "reconstruction.png"  # the bundle's `evaluating` of the restored weights
    evaluated.parent.mkdir()
    write_figure(evaluated, "the restored weights")

    records = {}
    for name, sources, extra in (
        ("runs", runs, []),
        (
            "records",
            [Path(f"{s}.json") for s in stems],
            ["--weights", str(tmp_path / "stage6_restored.pt"), "--figure", str(evaluated)],
        ),
    ):
        out = tmp_path / name
        out.mkdir()
        monkeypatch.setattr(export, "HERE", out)
        argv = [*map(str, sources), "--checkpoint", "model.pt", "--name", DEFAULT]
        monkeypatch.setattr(
            sys, "argv", ["export_encoder.py", *argv, "--stage-numbers", "5", "6", "--epoch-offset", "153", *extra]
        )
        export.main()
        records[name] = json.loads((out / f"{STEM}.json").read_text())
        records[name]["card"] = (out / RELEASED[DEFAULT]["card"]).read_text()
        records[name]["figure"] = read_figure(out / f"{STEM}_reconstruction.png")
    by_runs, by_records = records["runs"], records["records"]
    for key in ("val_masked_l1", "probe", "stages", "chosen_epoch", "chosen_by", "parameters"):
        assert by_runs[key] == by_records[key], key
    assert by_runs["chosen_epoch"] == 157  # stage 6's own epoch 2 (lowest L1), after the 153 given and stage 5's 2
    # the weights differ only by the int8 delta's rounding, about fp16's own
    released = torch.load(tmp_path / "records" / RELEASED[DEFAULT]["file"], weights_only=True)
    assert all(v.dtype == torch.float16 for v in released.values() if v.is_floating_point())
    torch.testing.assert_close({k: v.float() for k, v in released.items()}, stage_weights(6), atol=2e-3, rtol=0)
    # later stages name their warm restart; the card counts the epochs on each set of images
    assert f"STAGE_INIT={runs[0]}/models/model.pt STAGE_RUN={runs[1]} bash" in by_records["command"]
    assert "--weights" in by_records["command"] and "--weights" not in by_runs["command"]
    assert f"--figure {evaluated}" in by_records["command"]
    # each release's figure: the chosen epoch's from its run, the evaluated one from the records
    assert by_runs["figure"] == "gmml_stage6 2" and by_records["figure"] == "the restored weights"
    assert "120 epochs on 3.7k images, then 38 on 12.1k" in by_records["card"]
    assert by_records["card"] == by_runs["card"].replace(by_runs["sha256"], by_records["sha256"]).replace(
        by_runs["command"], by_records["command"]
    )
