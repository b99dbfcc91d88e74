"""The bundles' multi_gpu_train.json run for real under torchrun: two CPU processes (gloo), a tiny ViT and
the embedded sample. One set of checkpoints (rank 0), validation metrics over both ranks' shards equal to
one process's on the same weights, training metrics close to the one-process run's, resume, and a
two-node launch on one machine."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from bundle_helpers import BUNDLES

pytestmark = pytest.mark.slow  # trains bundles under torchrun

TINY = ["--model_size", "tiny", "--image_size", "32", "--num_threads", "1"]
METRIC = {
    "spcxr_gmml_pretrain": "val_masked_l1",
    "spcxr_cxr_classification": "val_auc",
    "spcxr_lung_segmentation": "val_mean_dice",
}
# 2 epochs on the sample, batch 2 x 8 against 16: other images per step (and other GMML masks), so the
# metric is close to, not equal to, the one-process run's (measured here: 0.725 vs 0.706 masked L1,
# 0.760 vs 0.688 AUC on 12 validation images, 0.585 vs 0.586 Dice). With the vectorised mask draw (another
# random stream) and the uint8 cache the masked L1 read 0.751 vs 0.669; one process alone reads 0.669 / 0.766 /
# 0.696 with seeds 0 / 1 / 2 at this size, so the pretraining bound is that spread
TOLERANCE = {"spcxr_gmml_pretrain": 0.1, "spcxr_cxr_classification": 0.15, "spcxr_lung_segmentation": 0.05}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(tmpdir: Path | None = None) -> dict:
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    return {**env, "TMPDIR": str(tmpdir)} if tmpdir else env


def _configs(*names: str) -> str:
    return "[" + ",".join(f"'configs/{n}'" for n in names) + "]"


def _torchrun(
    bundle: str,
    args: list[str],
    nproc: int = 2,
    extra: list[str] | None = None,
    check: bool = True,
    tmpdir: Path | None = None,
) -> subprocess.CompletedProcess:
    launcher = extra or ["--standalone", f"--nproc_per_node={nproc}"]
    for _ in range(2):
        proc = subprocess.run(
            [sys.executable, "-m", "torch.distributed.run", *launcher, "-m", "monai.bundle", "run", *args],
            cwd=BUNDLES / bundle,
            capture_output=True,
            text=True,
            timeout=900,
            env=_env(tmpdir),
        )
        # gloo's loopback transport now and then drops a pair mid-epoch with no worker error (seen on the 2-core
        # CI machine); such a run wrote no checkpoint (they are atomic, per epoch), so it is run once more
        if proc.returncode == 0 or "Connection closed by peer" not in proc.stdout + proc.stderr:
            break
    if check and proc.returncode != 0:
        pytest.fail(f"torchrun failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc


def _single(bundle: str, args: list[str]) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "monai.bundle", "run", *args],
        cwd=BUNDLES / bundle,
        capture_output=True,
        text=True,
        timeout=900,
        env=_env(),
    )
    if proc.returncode != 0:
        pytest.fail(f"bundle run failed ({proc.returncode}):\n{proc.stderr[-5000:]}")
    return proc


def _metrics(log: str, name: str) -> list[float]:
    return [float(v) for v in re.findall(rf"Epoch\[\d+\] Metrics -- .*?{name}: ([0-9.]+)", log)]


@pytest.mark.parametrize("bundle", list(METRIC))
def test_two_processes_train_write_one_set_of_checkpoints_and_match_one_process(tmp_path, bundle):
    common = ["--epochs", "2", *TINY]
    ddp = _torchrun(
        bundle,
        [
            "training",
            "--config_file",
            _configs("train.json", "multi_gpu_train.json"),
            "--bundle_root",
            str(tmp_path / "ddp"),
            "--batch_size",
            "8",
            *common,
        ],
    )
    one = _single(
        bundle,
        [
            "training",
            "--config_file",
            _configs("train.json"),
            "--bundle_root",
            str(tmp_path / "one"),
            "--batch_size",
            "16",
            *common,
        ],
    )
    models = sorted(p.name for p in (tmp_path / "ddp" / "models").iterdir())
    calibrated = ["calibration.json"] if bundle == "spcxr_cxr_classification" else []  # fitted once, on rank 0
    assert models == sorted([*calibrated, "checkpoint_checkpoint_epoch=2.pt", "model.pt", "model_final.pt"])
    assert sorted(p.name for p in (tmp_path / "ddp" / "logs").iterdir()) == sorted(
        p.name for p in (tmp_path / "one" / "logs").iterdir()
    )  # the same outputs, written once
    ddp_metric = _metrics(ddp.stdout + ddp.stderr, METRIC[bundle])
    one_metric = _metrics(one.stdout + one.stderr, METRIC[bundle])
    assert len(ddp_metric) == 2 and len(one_metric) == 2  # rank 0 logs; one line per epoch
    print(f"{bundle}: {METRIC[bundle]} two processes {ddp_metric[-1]:.4f}, one process {one_metric[-1]:.4f}")
    assert abs(ddp_metric[-1] - one_metric[-1]) <= TOLERANCE[bundle], (ddp_metric, one_metric)


def test_sharded_validation_equals_one_process_on_the_same_weights(tmp_path):
    bundle = "spcxr_cxr_classification"
    root = tmp_path / "run"
    _single(
        bundle,
        [
            "training",
            "--config_file",
            _configs("train.json"),
            "--bundle_root",
            str(root),
            "--epochs",
            "1",
            "--batch_size",
            "8",
            *TINY,
        ],
    )
    evaluate = ["evaluating", "--bundle_root", str(root), "--batch_size", "4", *TINY]
    _single(
        bundle,
        [
            *evaluate,
            "--config_file",
            _configs("train.json", "evaluate.json"),
            "--validate#report_dir",
            str(tmp_path / "one"),
        ],
    )
    _torchrun(
        bundle,
        [
            *evaluate,
            "--config_file",
            _configs("train.json", "evaluate.json", "multi_gpu_train.json"),
            "--validate#report_dir",
            str(tmp_path / "two"),
        ],
    )
    one = json.loads((tmp_path / "one" / "metrics.json").read_text())
    two = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert two["n"] == one["n"] > 20  # every image once, from both shards
    for key in ("accuracy", "macro_auc", "balanced_accuracy"):
        assert two[key] == pytest.approx(one[key], abs=1e-6), key


def test_resume_under_torchrun(tmp_path):
    bundle = "spcxr_gmml_pretrain"
    args = [
        "training",
        "--config_file",
        _configs("train.json", "multi_gpu_train.json"),
        "--bundle_root",
        str(tmp_path / "run"),
        "--batch_size",
        "8",
        *TINY,
    ]
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    _torchrun(bundle, [*args, "--epochs", "1"], tmpdir=tmpdir)
    second = _torchrun(bundle, [*args, "--epochs", "2"], tmpdir=tmpdir)
    assert not list(tmpdir.glob("spcxr_rank*"))  # rank 1's throwaway TensorBoard folder went with it
    log = second.stdout + second.stderr
    assert "Resumed from" in log and "checkpoint_checkpoint_epoch=1.pt at epoch 1" in log
    assert len(_metrics(log, METRIC[bundle])) == 1  # only epoch 2 was trained
    assert sorted(p.name for p in (tmp_path / "run" / "models").iterdir()) == [
        "checkpoint_checkpoint_epoch=2.pt",
        "model.pt",
        "model_final.pt",
    ]


def test_two_nodes_on_one_machine(tmp_path):
    """Two torchrun launches, one process each, meeting at 127.0.0.1 as two nodes would."""
    bundle = "spcxr_gmml_pretrain"
    port = _free_port()
    args = [
        "training",
        "--config_file",
        _configs("train.json", "multi_gpu_train.json"),
        "--bundle_root",
        str(tmp_path),
        "--epochs",
        "1",
        "--batch_size",
        "8",
        *TINY,
    ]
    nodes = []
    for rank in (0, 1):
        launcher = [
            "--nnodes=2",
            "--nproc_per_node=1",
            f"--node_rank={rank}",
            "--master_addr=127.0.0.1",
            f"--master_port={port}",
        ]
        nodes.append(
            subprocess.Popen(
                [sys.executable, "-m", "torch.distributed.run", *launcher, "-m", "monai.bundle", "run", *args],
                cwd=BUNDLES / bundle,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                env=_env(),
            )
        )
    logs = [node.communicate(timeout=900)[0] for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], logs[0][-3000:] + logs[1][-3000:]
    assert len(_metrics(logs[0], METRIC[bundle])) == 1 and _metrics(logs[1], METRIC[bundle]) == []
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == [
        "checkpoint_checkpoint_epoch=1.pt",
        "model.pt",
        "model_final.pt",
    ]


# the device-fed path (issue #31): the three configs merged as a user with several GPUs merges them
DEVICE_FED = _configs("train.json", "data_on_device.json", "multi_gpu_train.json")
DEVICE_FED_SPREAD = 0.03  # the one-process seed spread of the device-fed path at this size (0.019), rounded up


def _device_fed(root: Path, *extra: str) -> list[str]:
    return ["training", "--config_file", DEVICE_FED, "--bundle_root", str(root), "--batch_size", "8", *TINY, *extra]


def test_device_fed_pretraining_under_torchrun_shards_the_store_and_steps_together(tmp_path):
    bundle = "spcxr_gmml_pretrain"
    # from random weights: the released encoder, resized to 32 px, would make the figures depend on which release
    # is the default
    scratch = ["--pretrained_checkpoint", "''"]
    ddp = _torchrun(bundle, [*_device_fed(tmp_path / "ddp"), "--epochs", "2", *scratch])
    log = ddp.stdout + ddp.stderr
    holds = re.findall(r"rank (\d) of 2 holds (\d+) of (\d+) images", log)
    training = [(int(r), int(n)) for r, n, total in holds if int(total) > 20]  # the validation split is 6 images
    total = next(int(t) for _, _, t in holds if int(t) > 20)
    assert sorted(r for r, _ in training) == [0, 1]
    sizes = [n for _, n in training]
    assert sum(sizes) == total and max(sizes) - min(sizes) <= 1  # disjoint shards of the whole split
    steps = {int(r): int(s) for r, s in re.findall(r"rank (\d) of 2: (\d+) steps of 8 per epoch", log)}
    assert steps == {0: min(sizes) // 8, 1: min(sizes) // 8}
    one = _single(
        bundle,
        [
            "training",
            "--config_file",
            _configs("train.json", "data_on_device.json"),
            "--bundle_root",
            str(tmp_path / "one"),
            "--batch_size",
            "16",
            "--epochs",
            "2",
            *TINY,
            *scratch,
        ],
    )
    ddp_metric = _metrics(log, METRIC[bundle])
    one_metric = _metrics(one.stdout + one.stderr, METRIC[bundle])
    print(f"device-fed masked L1: two processes {ddp_metric[-1]:.4f}, one process {one_metric[-1]:.4f}")
    # measured here from random weights: two processes 0.864, one process 0.846; one process alone reads 0.846 /
    # 0.827 / 0.833 with seeds 0 / 1 / 2 at this size (a spread of 0.019): the two-process run ends within that spread
    assert len(ddp_metric) == 2 and abs(ddp_metric[-1] - one_metric[-1]) <= DEVICE_FED_SPREAD


def test_device_fed_run_killed_and_resumed_under_torchrun_ends_with_the_uninterrupted_weights(tmp_path):
    bundle = "spcxr_gmml_pretrain"
    _torchrun(bundle, [*_device_fed(tmp_path / "straight"), "--epochs", "4"])
    killed = tmp_path / "killed"
    launcher = ["--standalone", "--nproc_per_node=2"]
    run = subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", *launcher, "-m", "monai.bundle", "run"]
        + [*_device_fed(killed), "--epochs", "4"],
        cwd=BUNDLES / bundle,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=_env(),
        start_new_session=True,  # torchrun and its two workers in one process group, killed together
    )
    first = killed / "models" / "checkpoint_checkpoint_epoch=1.pt"
    deadline = time.monotonic() + 600
    while not first.exists() and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()
    assert first.exists() and not (killed / "models" / "model_final.pt").exists()  # killed mid-run
    resumed = _torchrun(bundle, [*_device_fed(killed), "--epochs", "4"])
    assert "Resumed from" in resumed.stdout + resumed.stderr
    expected = torch.load(tmp_path / "straight" / "models" / "model_final.pt", weights_only=True)["network"]
    got = torch.load(killed / "models" / "model_final.pt", weights_only=True)["network"]
    for name, value in expected.items():  # each rank's order, augmentation and masks continued as they were
        assert torch.equal(got[name], value), name


@pytest.mark.parametrize(
    "configs, extra, message",
    [
        (
            DEVICE_FED,
            ["--train#dataloader#sampler", "$torch.utils.data.SequentialSampler(range(4))"],
            "takes no sampler",
        ),
        (_configs("train.json", "data_on_device.json"), [], "launched as 2 processes"),
        (DEVICE_FED, ["--store_memory_fraction", "1e-12"], "data_on_device: the store's"),
    ],
    ids=["sampler-given-to-the-sharded-loader", "one-process-configs-on-two", "store-does-not-fit"],
)
def test_misuse_under_torchrun_ends_in_one_line_naming_it(tmp_path, configs, extra, message):
    proc = _torchrun(
        "spcxr_gmml_pretrain",
        ["training", "--config_file", configs, "--bundle_root", str(tmp_path), "--epochs", "1", *TINY, *extra],
        check=False,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    errors = [line for line in out.splitlines() if re.match(r"(\[rank\d\]:)?error: ", line)]
    assert len(errors) == 1 and message in errors[0], out[-4000:]  # once, not once per rank
    # no traceback from the workers (torchrun's own agent still reports that a worker failed)
    assert not re.search(r"^\[rank\d\]:\s*Traceback", out, re.M)
    assert out.count("Traceback (most recent call last)") <= 1, out[-4000:]
