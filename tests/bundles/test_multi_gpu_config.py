"""multi_gpu_train.json merges onto train.json and wires DDP the MONAI way (parsed, not run: no GPU here)."""

from __future__ import annotations

from monai.bundle import ConfigParser

from bundle_helpers import BUNDLES


def test_multi_gpu_config_overrides_device_network_and_samplers():
    configs = BUNDLES / "spcxr_gmml_pretrain" / "configs"
    parser = ConfigParser()
    parser.read_config([str(configs / "train.json"), str(configs / "multi_gpu_train.json")])
    assert parser["network"]["_target_"] == "torch.nn.parallel.DistributedDataParallel"
    assert parser["train"]["dataloader"]["sampler"] == "@train#sampler"
    assert parser["train"]["sampler"]["_target_"] == "DistributedSampler"
    assert parser["validate"]["dataloader"]["sampler"] == "@validate#sampler"
    assert any("init_process_group" in step for step in parser["initialize"])
    assert any("destroy_process_group" in step for step in parser["finalize"])
    # the training steps of train.json are kept (checkpointing and resume), plus the sampler epochs
    single = ConfigParser()
    single.read_config(str(configs / "train.json"))
    assert all(step in parser["training"] for step in single["training"])
