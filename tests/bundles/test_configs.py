"""Every bundle config is strict JSON: no key twice (the JSON parser would keep the last one silently)."""

from __future__ import annotations

import json

import pytest

from bundle_helpers import BUNDLES

CONFIGS = sorted(BUNDLES.glob("*/configs/*.json"))


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
