"""multi_gpu_train.json merges onto train.json and wires DDP the MONAI way (parsed here; run in test_distributed.py)."""

from __future__ import annotations

import json

import pytest
from monai.bundle import ConfigParser

from bundle_helpers import BUNDLES


@pytest.mark.parametrize("bundle", ["spcxr_gmml_pretrain", "spcxr_cxr_classification", "spcxr_lung_segmentation"])
def test_multi_gpu_config_overrides_device_network_and_samplers(bundle):
    configs = BUNDLES / bundle / "configs"
    parser = ConfigParser()
    parser.read_config([str(configs / "train.json"), str(configs / "multi_gpu_train.json")])
    assert parser["network"]["_target_"] == "torch.nn.parallel.DistributedDataParallel"
    assert parser["train"]["dataloader"]["sampler"] == "@train#sampler"
    assert parser["train"]["sampler"]["_target_"] == "DistributedSampler"
    assert parser["validate"]["dataloader"]["sampler"] == "@validate#sampler"
    assert any("init_distributed" in step for step in parser["initialize"])
    assert any("destroy_process_group" in step for step in parser["finalize"])
    # the training steps of train.json are kept (checkpointing on rank 0, resume), plus the sampler epochs
    single = ConfigParser()
    single.read_config(str(configs / "train.json"))
    assert all(any(step in multi for multi in parser["training"]) for step in single["training"])
    # every id the override refers to exists in train.json
    for ref in ("network_def", "train#handlers", "train#log_handlers", "validate#handlers", "validate#log_handlers",
                "tb_writer", "seed"):
        assert ref in single, ref
    # rank 0's writers chosen by name, never by slicing a list
    assert "on_main_process(@train#log_handlers)" in parser["train"]["trainer"]["train_handlers"]
    assert "[:" not in json.dumps(parser.config)
