"""The GMML pretraining bundle: metadata and network checks, a real short run, resume after interruption."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import torch
from ignite.engine import Events
from monai.bundle import ConfigWorkflow, verify_metadata, verify_net_in_out

from spcxr_monai.networks import create_unetr, create_vit_classifier, load_encoder_weights

from bundle_helpers import BUNDLES, SCHEMA, run_bundle

BUNDLE = BUNDLES / "spcxr_gmml_pretrain"
TINY = ["--model_size", "tiny", "--image_size", "32", "--batch_size", "8"]


def test_metadata_is_valid_against_the_local_schema(tmp_path):
    verify_metadata(meta_file=str(BUNDLE / "configs" / "metadata.json"), filepath=str(SCHEMA))
    broken = json.loads((BUNDLE / "configs" / "metadata.json").read_text())
    del broken["network_data_format"]["outputs"]["pred"]["num_channels"]
    (tmp_path / "metadata.json").write_text(json.dumps(broken))
    with pytest.raises(ValueError, match="num_channels"):
        verify_metadata(meta_file=str(tmp_path / "metadata.json"), filepath=str(SCHEMA))


def test_network_matches_its_declared_input_and_output():
    verify_net_in_out(
        net_id="network_def",
        meta_file=str(BUNDLE / "configs" / "metadata.json"),
        config_file=str(BUNDLE / "configs" / "train.json"),
        device="cpu",
        **{"model_size": "tiny"},
    )


def _val_losses(log: str) -> list[float]:
    return [float(v) for v in re.findall(r"Metrics -- val_masked_l1: ([0-9.]+)", log)]


def test_training_from_the_bundle_folder_writes_models_figures_and_logs(tmp_path):
    root = tmp_path / "run"
    proc = run_bundle(
        "spcxr_gmml_pretrain", "training", "--config_file", "configs/train.json",
        "--logging_file", "configs/logging.conf", "--bundle_root", str(root), "--epochs", "3",
        "--base_lr", "0.01", *TINY,
    )
    log = proc.stdout + proc.stderr
    losses = _val_losses(log)
    assert len(losses) == 3 and all(0 < v < 2 for v in losses)
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


def _workflow(root: Path, epochs: int) -> ConfigWorkflow:
    wf = ConfigWorkflow(
        config_file=str(BUNDLE / "configs" / "train.json"),
        workflow_type="train",
        run_id="training",
        bundle_root=str(root),
        epochs=epochs,
        model_size="tiny",
        image_size=32,
        batch_size=8,
    )
    wf.initialize()
    return wf


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
    trainer2.add_event_handler(
        Events.EPOCH_STARTED, lambda e: seen.setdefault("first_epoch", e.state.epoch)
    )
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
