"""Atomic checkpoints, safe resume and the non-finite loss guard, piece by piece."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from ignite.engine import Events
from monai.engines import SupervisedTrainer
from monai.transforms import Compose, RandFlipd, RandGaussianNoised

from spcxr_monai.engines import GMMLPrepareBatch
from spcxr_monai.handlers import (
    AtomicCheckpointSaver,
    AtomicDiskSaver,
    CheckpointMismatchError,
    NonFiniteLossError,
    NonFiniteWeightsError,
    RandomStates,
    ResumeLoader,
    RunRecord,
    StopOnNonFiniteLoss,
    data_fingerprint,
)


def test_disk_saver_removes_the_previous_file_only_after_the_next_is_written(tmp_path):
    saver = AtomicDiskSaver(tmp_path)
    saver({"w": torch.ones(2)}, "ckpt_epoch=1.pt")
    saver.remove("ckpt_epoch=1.pt")  # Ignite asks for this before saving the next one
    assert (tmp_path / "ckpt_epoch=1.pt").is_file()
    saver({"w": torch.full((2,), 2.0)}, "ckpt_epoch=2.pt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt_epoch=2.pt"]
    fixed = AtomicDiskSaver(tmp_path, filename="model.pt")
    fixed({"w": torch.ones(1)}, "ignored_name.pt")
    fixed.remove("ignored_name.pt")
    fixed({"w": torch.zeros(1)}, "ignored_name.pt")  # same fixed file: replaced, not deleted
    assert torch.load(tmp_path / "model.pt", weights_only=True)["w"].item() == 0.0


def test_disk_saver_refuses_non_finite_weights_and_keeps_the_previous_file(tmp_path):
    saver = AtomicDiskSaver(tmp_path, filename="model.pt")
    saver({"network": {"w": torch.ones(3)}}, "x")
    saver.remove("x")
    with pytest.raises(NonFiniteWeightsError, match=r"model\.pt: not written, 2 values are NaN or infinite"):
        saver({"network": {"w": torch.tensor([1.0, float("nan"), float("inf")])}}, "x")
    assert torch.equal(torch.load(tmp_path / "model.pt", weights_only=True)["network"]["w"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]


def test_run_record_names_every_difference():
    saved = RunRecord(model_size="tiny", image_size=128, data={"count": 10, "sha1": "a"}).state_dict()
    RunRecord(model_size="tiny", image_size=128, data={"count": 10, "sha1": "a"}).load_state_dict(saved)
    with pytest.raises(CheckpointMismatchError) as err:
        RunRecord(model_size="small", image_size=128, data={"count": 12, "sha1": "b"}).load_state_dict(saved)
    assert "model_size: checkpoint 'tiny', this run 'small'" in str(err.value)
    assert "'count': 12" in str(err.value) and "image_size" not in str(err.value)


def test_data_fingerprint_ignores_order_but_not_content():
    items = [{"image": f"/d/{i}.png"} for i in range(5)]
    assert data_fingerprint(items) == data_fingerprint(items[::-1])
    assert data_fingerprint(items)["count"] == 5
    assert data_fingerprint(items) != data_fingerprint(items[:4] + [{"image": "/d/other.png"}])


def test_random_states_continue_every_stream_where_it_was():
    transforms = Compose([RandFlipd("image", prob=0.5), RandGaussianNoised("image", prob=0.5)])
    transforms.set_random_state(seed=3)
    masks = GMMLPrepareBatch(seed=5)
    images = {"image": torch.rand(2, 1, 32, 32)}
    masks(images)  # the mask generator exists and has moved on
    states = RandomStates(transforms, stateful=[masks])
    saved = states.state_dict()

    def draws():
        return (torch.rand(3), np.random.rand(3), transforms.transforms[1].R.rand(3), masks(images)[1])

    expected = draws()
    np.random.rand(7), torch.rand(7), transforms.transforms[1].R.rand(7)  # the stream moves on
    buffer = __import__("io").BytesIO()
    torch.save(saved, buffer)
    buffer.seek(0)
    states.load_state_dict(torch.load(buffer, weights_only=True))  # what a checkpoint holds
    for a, b in zip(draws(), expected):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_random_states_of_every_rank_are_saved_by_rank_0_and_each_rank_restores_its_own(monkeypatch):
    import spcxr_monai.handlers.resume as resume

    masks = GMMLPrepareBatch(seed=5)
    images = {"image": torch.rand(2, 1, 32, 32)}
    masks(images)
    states = RandomStates(stateful=[masks])
    own = states.state_dict()  # one process: its own states, as ever
    assert set(own) == {"torch", "numpy", "python", "transforms", "stateful"}
    other = GMMLPrepareBatch(seed=6)  # rank 1's mask stream
    other(images)
    rank_1 = RandomStates(stateful=[other]).state_dict()
    monkeypatch.setattr(resume, "all_gather_lists", lambda values: [own, rank_1])
    states._gather()  # what the epoch's end does on every rank under torchrun
    saved = states.state_dict()
    assert len(saved["ranks"]) == 2
    expected = other(images)[1]  # rank 1's next mask
    monkeypatch.setattr(resume, "rank_and_world_size", lambda: (1, 2))
    states.load_state_dict(saved)
    torch.testing.assert_close(masks(images)[1], expected)  # rank 1 continues rank 1's stream, not rank 0's
    monkeypatch.setattr(resume, "rank_and_world_size", lambda: (0, 3))
    with pytest.raises(CheckpointMismatchError, match="2 processes in the checkpoint, 3 in this run"):
        states.load_state_dict(saved)


def _tiny_trainer(tmp_path, loss_fn, batches, max_epochs=1):
    net = torch.nn.Linear(4, 1)
    trainer = SupervisedTrainer(
        device=torch.device("cpu"),
        max_epochs=max_epochs,
        train_data_loader=batches,
        network=net,
        optimizer=torch.optim.SGD(net.parameters(), lr=0.1),
        loss_function=loss_fn,
    )
    return net, trainer


def test_a_non_finite_loss_stops_training_naming_the_files_before_the_weights_change(tmp_path):
    batches = [
        {"image": torch.rand(2, 4), "label": torch.rand(2, 1), "image_file": [f"/data/{i}a.png", f"/data/{i}b.png"]}
        for i in range(3)
    ]
    calls = []

    def loss_fn(pred, label):
        calls.append(1)
        loss = torch.nn.functional.mse_loss(pred, label)
        return loss * float("nan") if len(calls) == 2 else loss

    net, trainer = _tiny_trainer(tmp_path, loss_fn, batches)
    StopOnNonFiniteLoss().attach(trainer)
    AtomicCheckpointSaver(str(tmp_path), {"network": net}, save_final=True, final_filename="model_final.pt").attach(
        trainer
    )
    before = {}
    trainer.add_event_handler(Events.ITERATION_STARTED(once=2), lambda e: before.update(w=net.weight.detach().clone()))
    with pytest.raises(
        NonFiniteLossError,
        match=r"loss is nan at epoch 1, iteration 2; the batch's files: "
        r"/data/1a\.png, /data/1b\.png",
    ):
        trainer.run()
    assert torch.equal(net.weight.detach(), before["w"])  # no step with the NaN loss
    saved = torch.load(tmp_path / "model_final.pt", weights_only=True)  # the last good state
    assert torch.isfinite(saved["weight"]).all()


def test_a_diverged_model_is_never_written_on_the_way_out(tmp_path):
    batches = [{"image": torch.rand(2, 4), "label": torch.rand(2, 1)} for _ in range(2)]
    net, trainer = _tiny_trainer(tmp_path, torch.nn.functional.mse_loss, batches)
    AtomicCheckpointSaver(str(tmp_path), {"network": net}, save_final=True, final_filename="model_final.pt").attach(
        trainer
    )
    torch.save({"weight": torch.zeros(1, 4), "bias": torch.zeros(1)}, tmp_path / "model_final.pt")

    def poison(engine):
        with torch.no_grad():
            net.weight.fill_(float("nan"))
        raise RuntimeError("boom")

    trainer.add_event_handler(Events.ITERATION_COMPLETED(once=1), poison)
    with pytest.raises(RuntimeError, match="boom"):
        trainer.run()
    assert torch.equal(torch.load(tmp_path / "model_final.pt", weights_only=True)["weight"], torch.zeros(1, 4))


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 not a zip"])
def test_a_damaged_checkpoint_is_one_clear_error(tmp_path, content):
    (tmp_path / "checkpoint_checkpoint_epoch=2.pt").write_bytes(content)
    net, trainer = _tiny_trainer(tmp_path, torch.nn.functional.mse_loss, [])
    loader = ResumeLoader(str(tmp_path), {"network": net})
    with pytest.raises(CheckpointMismatchError) as err:
        loader(trainer)
    message = str(err.value)
    assert "checkpoint_checkpoint_epoch=2.pt: cannot be read as a checkpoint" in message
    assert "delete it" in message and "--resume false" in message and "\n" not in message


def test_interval_rotation_continues_over_the_files_already_there(tmp_path):
    for epoch in (1, 2):
        torch.save({"network": {}}, tmp_path / f"checkpoint_checkpoint_epoch={epoch}.pt")
    (tmp_path / ".tmp_killed.pt").write_bytes(b"half")
    batches = [{"image": torch.rand(2, 4), "label": torch.rand(2, 1)}]
    net, trainer = _tiny_trainer(tmp_path, torch.nn.functional.mse_loss, batches, max_epochs=3)
    AtomicCheckpointSaver(
        str(tmp_path), {"network": net, "trainer": trainer}, file_prefix="checkpoint", save_interval=1, n_saved=1
    ).attach(trainer)
    trainer.add_event_handler(Events.STARTED, lambda e: setattr(e.state, "epoch", 2))  # as a resume would
    trainer.run()
    assert sorted(os.listdir(tmp_path)) == ["checkpoint_checkpoint_epoch=3.pt"]
