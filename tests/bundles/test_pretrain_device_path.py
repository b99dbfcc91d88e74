"""The pretraining bundle's device-fed path (configs/data_on_device.json: uint8 store, batched augmentation
and masks on the device) and its --max_minutes time box, run end to end on the embedded sample."""

from __future__ import annotations

import re

import pytest
import torch
from bundle_helpers import run_bundle
from ignite.engine import Events
from monai.bundle import ConfigWorkflow
from test_pretrain_bundle import BUNDLE, TINY

pytestmark = pytest.mark.slow  # trains the bundle

CONFIGS = "['configs/train.json','configs/data_on_device.json']"


def _final_weights(root, epochs: int, stop_after: int | None = None) -> dict:
    wf = ConfigWorkflow(
        config_file=[str(BUNDLE / "configs" / "train.json"), str(BUNDLE / "configs" / "data_on_device.json")],
        workflow_type="train",
        run_id="training",
        bundle_root=str(root),
        epochs=epochs,
        model_size="tiny",
        image_size=32,
        batch_size=8,
    )
    wf.initialize()
    trainer = wf.parser.get_parsed_content("train#trainer")
    if stop_after:
        trainer.add_event_handler(Events.EPOCH_COMPLETED(once=stop_after), lambda e: e.terminate())
    wf.run()
    wf.finalize()
    assert type(trainer.data_loader).__name__ == "DeviceBatchLoader"
    return {k: v.clone() for k, v in wf.parser.get_parsed_content("network").state_dict().items()}


def test_device_path_resumed_run_ends_as_the_uninterrupted_one(tmp_path):
    expected = _final_weights(tmp_path / "straight", epochs=3)
    _final_weights(tmp_path / "resumed", epochs=3, stop_after=1)
    resumed = _final_weights(tmp_path / "resumed", epochs=3)
    for name, value in expected.items():  # same order, same augmentation, same masks after the restart
        assert torch.equal(resumed[name], value), name


def test_max_minutes_ends_a_device_fed_run_cleanly_within_its_budget(tmp_path):
    root = tmp_path / "timed"
    proc = run_bundle(
        "spcxr_gmml_pretrain",
        "training",
        "--config_file",
        CONFIGS,
        "--logging_file",
        "configs/logging.conf",
        "--bundle_root",
        str(root),
        "--epochs",
        "500",
        "--max_minutes",
        "0.15",
        *TINY,
    )
    log = proc.stdout + proc.stderr
    epochs = len(re.findall(r"Metrics -- val_masked_l1", log))
    assert 2 <= epochs < 500
    assert re.search(r"time budget \(measured per \w+\): the run ends at iteration \d+ \(epoch \d+\) instead of", log)
    models = root / "models"
    state = torch.load(models / f"checkpoint_checkpoint_epoch={epochs}.pt", map_location="cpu", weights_only=True)
    assert state["trainer"]["max_epochs"] == epochs  # the last epoch, validated and checkpointed, ended the run
    assert state["lr_scheduler"]["t_total"] == state["trainer"]["iteration"]  # the schedule ended with the run
    assert (models / "model_final.pt").is_file() and (models / "model.pt").is_file()
    assert (root / "logs" / "figures" / f"reconstruction_epoch{epochs:03d}.png").is_file()
