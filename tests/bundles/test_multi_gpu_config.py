"""multi_gpu_train.json merges onto train.json and wires DDP the MONAI way (parsed, not run: no GPU here)."""

from __future__ import annotations

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
    assert any("init_process_group" in step for step in parser["initialize"])
    assert any("destroy_process_group" in step for step in parser["finalize"])
    # the training steps of train.json are kept (checkpointing, resume), plus the sampler epochs
    single = ConfigParser()
    single.read_config(str(configs / "train.json"))
    assert all(step in parser["training"] for step in single["training"])
    # every id the override refers to exists in train.json
    for ref in ("network_def", "train#handlers", "validate#handlers", "tb_writer", "seed"):
        assert ref in single, ref
