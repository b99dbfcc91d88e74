"""Run one of the repository's bundles in-process, as ``python -m monai.bundle run`` would."""

from __future__ import annotations

from pathlib import Path
from typing import Any

BUNDLES = Path(__file__).resolve().parents[1] / "bundles"


def run_workflow(bundle: str, configs: list[str], run_id: str, **override: Any):
    """Initialise, run and finalise ``bundles/<bundle>`` with ``configs`` (file names in its
    ``configs/``) and the given config overrides; returns the finished ``ConfigWorkflow``."""
    from monai.bundle import create_workflow

    configs_dir = BUNDLES / bundle / "configs"
    wf = create_workflow(  # MONAI's ConfigWorkflow, initialised
        config_file=[str(configs_dir / c) for c in configs],
        meta_file=str(configs_dir / "metadata.json"),
        workflow_type="train" if run_id == "training" else "infer",
        run_id=run_id,
        **override,
    )
    wf.run()
    wf.finalize()
    return wf
