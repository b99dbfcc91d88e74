"""multi_gpu_train.json merges onto train.json and wires DDP the MONAI way (parsed here; run in test_distributed.py)."""

from __future__ import annotations

import json

import pytest
from bundle_helpers import BUNDLES
from monai.bundle import ConfigParser


@pytest.mark.parametrize("bundle", ["spcxr_gmml_pretrain", "spcxr_cxr_classification", "spcxr_lung_segmentation"])
def test_multi_gpu_config_overrides_device_network_and_samplers(bundle):
    configs = BUNDLES / bundle / "configs"
    parser = ConfigParser()
    parser.read_config([str(configs / "train.json"), str(configs / "multi_gpu_train.json")])
    assert parser["network"]["_target_"] == "torch.nn.parallel.DistributedDataParallel"
    assert parser["train"]["dataloader"]["sampler"] == "@train#sampler"
    # MONAI's DistributedSampler, or none for a dataset that shards itself (the device-fed store)
    assert parser["train"]["sampler"]["_target_"] == "spcxr_monai.distributed.distributed_sampler"
    assert parser["train"]["dataloader"]["shuffle"] == "$@train#sampler is None"
    assert parser["train"]["trainer"]["train_handlers"].endswith("+ [@random_states]")  # every rank's streams saved
    assert parser["validate"]["dataloader"]["sampler"] == "@validate#sampler"
    assert parser["network"]["module"] == "@network_init"  # the same initialised network, wrapped
    assert parser["initialize"] == [
        {
            "_target_": "spcxr_monai.workflows.initialize_run",
            "seed": "@seed",
            "num_threads": "@num_threads",
            "distributed": True,
        }
    ]
    assert parser["finalize"][0]["_target_"] == "spcxr_monai.workflows.close_run"  # leaves the process group
    # the training run of train.json (checkpointing on rank 0, resume), plus the sampler's epochs, then whatever
    # else train.json runs after it (the classifier's calibration)
    single = ConfigParser()
    single.read_config(str(configs / "train.json"))
    assert parser["training"] == [{**single["training"][0], "sampler": "@train#sampler"}, *single["training"][1:]]
    # every id the override refers to exists in train.json
    for ref in (
        "network_init",
        "train#handlers",
        "train#log_handlers",
        "validate#handlers",
        "validate#log_handlers",
        "tb_writer",
        "seed",
        "device",
    ):
        assert ref in single, ref
    # rank 0's writers chosen by name, never by slicing a list
    assert "on_main_process(@train#log_handlers)" in parser["train"]["trainer"]["train_handlers"]
    assert "[:" not in json.dumps(parser.config)
