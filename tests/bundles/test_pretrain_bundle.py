"""The GMML pretraining bundle: metadata and network checks, a real short run, resume after interruption."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from bundle_helpers import BUNDLES, run_bundle
from ignite.engine import Events
from monai.bundle import ConfigWorkflow

from spcxr_monai.data import sample_dir
from spcxr_monai.networks import create_unetr, create_vit_classifier, load_encoder_weights

pytestmark = pytest.mark.slow  # trains the bundle

BUNDLE = BUNDLES / "spcxr_gmml_pretrain"
TINY = ["--model_size", "tiny", "--image_size", "32", "--batch_size", "8"]


def _val_losses(log: str) -> list[float]:
    return [float(v) for v in re.findall(r"Metrics -- val_masked_l1: ([0-9.]+)", log)]


def test_training_from_the_bundle_folder_writes_models_figures_and_logs(tmp_path):
    root = tmp_path / "run"
    proc = run_bundle(
        "spcxr_gmml_pretrain",
        "training",
        "--config_file",
        "configs/train.json",
        "--logging_file",
        "configs/logging.conf",
        "--bundle_root",
        str(root),
        "--epochs",
        "3",
        "--base_lr",
        "0.01",
        "--probe_dir",
        sample_dir(),
        "--probe_fraction",
        "1",
        "--probe_interval",
        "1",
        *TINY,
    )
    log = proc.stdout + proc.stderr
    losses = _val_losses(log)
    assert len(losses) == 3 and all(0 < v < 2 for v in losses)
    # the frozen-feature monitor reads block 8's tokens each epoch, and keeps its best weights
    probe = json.loads((root / "models" / "feature_probe.json").read_text())
    assert probe["block"] == 8 and [h["epoch"] for h in probe["history"]] == [1, 2, 3]
    assert all(0 <= h["probe_accuracy"] <= 1 for h in probe["history"])
    assert (root / "models" / "model_probe.pt").is_file()
    models = root / "models"
    assert (models / "model.pt").is_file() and (models / "model_final.pt").is_file()
    assert (models / "checkpoint_checkpoint_epoch=3.pt").is_file()
    figures = sorted((root / "logs" / "figures").glob("reconstruction_epoch*.png"))
    assert [f.name for f in figures] == [f"reconstruction_epoch00{i}.png" for i in (1, 2, 3)]
    assert figures[0].stat().st_size > 10_000
    assert list((root / "logs" / "tensorboard").glob("events.out.tfevents.*"))
    # the best checkpoint is a GMML state dict whose encoder moves into the fine-tuning networks
    state = torch.load(models / "model.pt", map_location="cpu", weights_only=True)
    assert any(k.startswith("head.") for k in state)
    clf = load_encoder_weights(create_vit_classifier("tiny", img_size=32), str(models / "model.pt"))
    torch.testing.assert_close(clf.vit.norm.weight, state["vit.norm.weight"])
    load_encoder_weights(create_unetr("tiny", img_size=32), str(models / "model.pt"))
    # evaluating scores model.pt on the validation split with validation's own masks: its best epoch's L1
    run_bundle(
        "spcxr_gmml_pretrain",
        "evaluating",
        "--config_file",
        "['configs/train.json','configs/evaluate.json']",
        "--bundle_root",
        str(root),
        *TINY,
    )
    metrics = dict(line.split(",") for line in (root / "eval" / "metrics.csv").read_text().splitlines())
    assert float(metrics["val_masked_l1"]) == pytest.approx(min(losses), abs=2e-4)
    assert (root / "eval" / "reconstruction.png").stat().st_size > 10_000


def _workflow(root: Path, epochs: int, **overrides) -> ConfigWorkflow:
    wf = ConfigWorkflow(
        config_file=str(BUNDLE / "configs" / "train.json"),
        workflow_type="train",
        run_id="training",
        bundle_root=str(root),
        epochs=epochs,
        model_size="tiny",
        image_size=32,
        batch_size=8,
        **overrides,
    )
    wf.initialize()
    return wf


def _epoch_losses(root: Path, **overrides) -> tuple[list[float], float]:
    """Training losses of one epoch and the validation masked L1 after it."""
    wf = _workflow(root, epochs=1, **overrides)
    trainer = wf.parser.get_parsed_content("train#trainer")
    losses: list[float] = []
    trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda e: losses.append(float(e.state.output[0]["loss"])))
    wf.run()
    wf.finalize()
    return losses, wf.parser.get_parsed_content("validate#evaluator").state.metrics["val_masked_l1"]


def test_masks_drawn_in_the_loader_train_as_masks_drawn_in_the_step(tmp_path):
    in_step = _epoch_losses(tmp_path / "step")
    in_loader = _epoch_losses(tmp_path / "loader", mask_in_loader=True)
    assert len(in_step[0]) >= 5
    # one generator, one stream: the same run
    assert [*in_loader[0], in_loader[1]] == pytest.approx([*in_step[0], in_step[1]], rel=1e-5)
    losses, val_l1 = _epoch_losses(tmp_path / "workers", mask_in_loader=True, num_workers=2)
    assert len(losses) == len(in_step[0]) and all(0 < v < 3 for v in losses) and 0 < val_l1 < 3


def test_interrupted_training_resumes_from_the_last_checkpoint(tmp_path):
    root = tmp_path / "resume"
    first = _workflow(root, epochs=3)
    trainer = first.parser.get_parsed_content("train#trainer")
    trainer.add_event_handler(Events.EPOCH_COMPLETED(once=2), lambda engine: engine.terminate())
    first.run()
    first.finalize()
    assert trainer.state.epoch == 2
    saved = root / "models" / "checkpoint_checkpoint_epoch=2.pt"
    assert saved.is_file()
    saved_weights = torch.load(saved, map_location="cpu", weights_only=True)["network"]

    second = _workflow(root, epochs=3)
    trainer2 = second.parser.get_parsed_content("train#trainer")
    network2 = second.parser.get_parsed_content("network")
    seen = {}
    trainer2.add_event_handler(Events.EPOCH_STARTED, lambda e: seen.setdefault("first_epoch", e.state.epoch))
    trainer2.add_event_handler(
        Events.EPOCH_STARTED(once=3),
        lambda e: seen.setdefault("weights", {k: v.clone() for k, v in network2.state_dict().items()}),
    )
    second.run()
    second.finalize()
    assert seen["first_epoch"] == 3  # continued with the third epoch, not from scratch
    torch.testing.assert_close(seen["weights"]["vit.norm.weight"], saved_weights["vit.norm.weight"])
    assert trainer2.state.epoch == 3
    assert trainer2.state.iteration == 3 * trainer2.state.epoch_length
    assert (root / "models" / "checkpoint_checkpoint_epoch=3.pt").is_file()


KILL_DURING_SAVE = Path(__file__).resolve().parents[1] / "kill_during_save.py"


def _run_killed_at(root: Path, kill_at: int) -> subprocess.CompletedProcess:
    """Two epochs of the bundle in a subprocess, SIGKILLed halfway through its ``kill_at``-th checkpoint write."""
    overrides = {
        "bundle_root": str(root),
        "epochs": 2,
        "model_size": "tiny",
        "image_size": 32,
        "batch_size": 8,
        "base_lr": 0.01,
    }
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [
            sys.executable,
            str(KILL_DURING_SAVE),
            str(kill_at),
            str(BUNDLE / "configs" / "train.json"),
            json.dumps(overrides),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )


def _load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def _logged_losses(root: Path) -> list[tuple[int, float]]:
    """(step, value) of every ``train_loss`` TensorBoard shows for the run (purged steps hidden)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(root / "logs" / "tensorboard"))
    acc.Reload()
    return [(e.step, round(e.value, 6)) for e in acc.Scalars("train_loss")]


def test_killed_during_any_checkpoint_write_the_resumed_run_ends_as_if_never_interrupted(tmp_path):
    reference = _run_killed_at(tmp_path / "reference", 0)
    assert reference.returncode == 0, reference.stderr[-3000:]
    writes = int(re.search(r"writes=(\d+)", reference.stdout).group(1))
    assert writes >= 3  # each epoch's interval checkpoint, model.pt at the first validation, model_final.pt
    ref_models = tmp_path / "reference" / "models"
    expected_final = _load(ref_models / "model_final.pt")["network"]
    expected_best = _load(ref_models / "model.pt")
    expected_losses = _logged_losses(tmp_path / "reference")
    for kill_at in range(1, writes + 1):
        root = tmp_path / f"killed_at_{kill_at}"
        killed = _run_killed_at(root, kill_at)
        assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
        resumed = _run_killed_at(root, 0)
        assert resumed.returncode == 0, f"kill at write {kill_at}: {resumed.stderr[-3000:]}"
        models = root / "models"
        assert sorted(p.name for p in models.iterdir()) == [
            "checkpoint_checkpoint_epoch=2.pt",
            "model.pt",
            "model_final.pt",
        ], f"kill at write {kill_at}"
        final = _load(models / "model_final.pt")["network"]
        best = _load(models / "model.pt")
        for name in expected_final:  # the same weights as the run that was never killed: same masks, same order
            assert torch.equal(final[name], expected_final[name]), f"kill at write {kill_at}: {name}"
            assert torch.equal(best[name], expected_best[name]), f"kill at write {kill_at}: {name} (model.pt)"
        # each step once, with the uninterrupted run's loss: the killed run's steps past the checkpoint are purged
        assert _logged_losses(root) == expected_losses, f"kill at write {kill_at}"


def test_resume_refuses_a_checkpoint_of_another_run_in_one_line(tmp_path):
    root = tmp_path / "run"
    run_bundle(
        "spcxr_gmml_pretrain",
        "training",
        "--config_file",
        "configs/train.json",
        "--bundle_root",
        str(root),
        "--epochs",
        "1",
        *TINY,
    )
    checkpoint = root / "models" / "checkpoint_checkpoint_epoch=1.pt"
    bigger = [*TINY[:-4], "--image_size", "48", "--batch_size", "8"]
    proc = run_bundle(
        "spcxr_gmml_pretrain",
        "training",
        "--config_file",
        "configs/train.json",
        "--bundle_root",
        str(root),
        "--epochs",
        "2",
        *bigger,
        check=False,
    )
    assert proc.returncode == 1
    assert "size mismatch" not in proc.stderr  # no state-dict dump: the record is compared first
    error = proc.stderr.splitlines()[-2:]  # the last word is the toolkit's, in one line
    assert error[0].startswith("error: ") and "SPCXR_TRACEBACK=1" in error[1]
    assert f"{checkpoint}: belongs to another run (image_size: checkpoint 32, this run 48)" in error[0]
    assert "--resume false" in error[0]

    # the finished run pointed at other data: refused, not "0 iterations, exit 0, old weights rewritten"
    other = tmp_path / "other_images"
    other.mkdir()
    from spcxr_monai.data import sample_dir

    for path in sorted(Path(sample_dir()).rglob("*.png"))[:12]:
        shutil.copy(path, other / path.name)
    final_before = (root / "models" / "model_final.pt").read_bytes()
    proc = run_bundle(
        "spcxr_gmml_pretrain",
        "training",
        "--config_file",
        "configs/train.json",
        "--bundle_root",
        str(root),
        "--epochs",
        "1",
        "--dataset_dir",
        str(other),
        *TINY,
        check=False,
    )
    assert proc.returncode == 1
    assert "training_data: checkpoint {'count':" in proc.stderr.splitlines()[-2]
    assert (root / "models" / "model_final.pt").read_bytes() == final_before
    assert (
        run_bundle(
            "spcxr_gmml_pretrain",
            "training",
            "--config_file",
            "configs/train.json",
            "--bundle_root",
            str(root),
            "--epochs",
            "1",
            "--dataset_dir",
            str(other),
            "--resume",
            "false",
            *TINY,
        ).returncode
        == 0
    )  # the way out the message names
