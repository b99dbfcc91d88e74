"""Every bundle: metadata valid against the schema, the network's declared input and output, configs in strict
JSON (no key twice: the JSON parser would keep the last one silently), and the values a config repeats from the
library are the library's."""

from __future__ import annotations

import json

import pytest
from bundle_helpers import BUNDLES, SCHEMA
from monai.bundle import verify_metadata, verify_net_in_out

from spcxr_monai.transforms.group_mask import GMML_CORRUPTIONS, GMML_MAX_BLOCK_FRAC, GMML_MAX_RATIO

CONFIGS = sorted(BUNDLES.glob("*/configs/*.json"))


# the sizes each bundle's network is built with for the I/O check (small and fast)
NETWORK_CHECK = {
    "spcxr_gmml_pretrain": {"model_size": "tiny"},
    "spcxr_cxr_classification": {"model_size": "tiny"},
    "spcxr_lung_segmentation": {"model_size": "tiny", "feature_size": 8},
}


@pytest.mark.parametrize("bundle", sorted(NETWORK_CHECK))
def test_metadata_is_valid_and_the_network_matches_its_declared_input_and_output(bundle):
    meta = BUNDLES / bundle / "configs" / "metadata.json"
    verify_metadata(meta_file=str(meta), filepath=str(SCHEMA))
    verify_net_in_out(
        net_id="network_def",
        meta_file=str(meta),
        config_file=str(BUNDLES / bundle / "configs" / "train.json"),
        device="cpu",
        **NETWORK_CHECK[bundle],
    )


def test_metadata_missing_a_required_field_is_refused(tmp_path):
    broken = json.loads((BUNDLES / "spcxr_gmml_pretrain" / "configs" / "metadata.json").read_text())
    del broken["network_data_format"]["outputs"]["pred"]["num_channels"]
    (tmp_path / "metadata.json").write_text(json.dumps(broken))
    with pytest.raises(ValueError, match="num_channels"):
        verify_metadata(meta_file=str(tmp_path / "metadata.json"), filepath=str(SCHEMA))


def _refuse_duplicates(pairs):
    keys = [k for k, _ in pairs]
    repeated = sorted({k for k in keys if keys.count(k) > 1})
    if repeated:
        raise ValueError(f"keys given twice: {repeated}")
    return dict(pairs)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_config_has_no_duplicate_keys(path):
    json.loads(path.read_text(), object_pairs_hook=_refuse_duplicates)


def test_every_bundle_has_its_configs():
    assert len(CONFIGS) >= 13


def test_pretraining_bundle_uses_the_libraries_gmml_defaults():
    config = json.loads((BUNDLES / "spcxr_gmml_pretrain" / "configs" / "train.json").read_text())
    assert config["max_ratio"] == GMML_MAX_RATIO
    assert config["max_block_frac"] == GMML_MAX_BLOCK_FRAC
    assert tuple(config["corruptions"]) == GMML_CORRUPTIONS


def _strings(node):
    if isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)
    elif isinstance(node, str):
        yield node


@pytest.mark.parametrize(
    "path", sorted(BUNDLES.glob("*/configs/*.json")), ids=lambda p: f"{p.parent.parent.name}/{p.name}"
)
def test_configs_wire_components_rather_than_python(path):
    """Model-zoo style: components by ``_target_``; Python expressions few and short (imports aside)."""
    expressions = [
        s for s in _strings(json.loads(path.read_text())) if s.startswith("$") and not s.startswith("$import")
    ]
    assert len(expressions) <= 16, expressions
    assert not [s for s in expressions if len(s) > 100]


@pytest.mark.parametrize("bundle", ["spcxr_cxr_classification", "spcxr_lung_segmentation"])
def test_fine_tuning_bundles_pass_drop_path_to_the_encoder(bundle):
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(BUNDLES / bundle / "configs" / "train.json")
    assert parser["drop_path"] == 0.0  # off by default: level at 10% labels (classification_e120_drop_path)
    parser.update({"drop_path": 0.1, "image_size": 32})
    blocks = parser.get_parsed_content("network_def").vit.blocks
    assert blocks[-1].drop_path.drop_prob == pytest.approx(0.1)
