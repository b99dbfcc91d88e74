"""Carry a pretraining stage's weights from one session to the next, small enough to commit.

    python experiments/release/stage_state.py save runs/gmml_stage5/models/model_final.pt \
        experiments/release/stages/stage5 [--base gmml-vit-tiny16-cxr128-v2]
    python experiments/release/stage_state.py restore experiments/release/stages/stage5 runs/stage5_init.pt

A stage continues from the released encoder, so what it adds is its difference from that release. ``save``
stores that difference quantised to int8 with one scale per output row (per tensor for vectors), xz-compressed
(``<out>.pt.xz``, about 5 MB for ViT-Ti + GMML head), and a JSON record beside it: the base release and its
sha256, the largest reconstruction error (below fp16's own rounding of these weights), and the source file.
``restore`` rebuilds the float32 state dict (encoder and head) that ``STAGE_INIT`` of
``pretrain_released_encoder.sh`` starts the next stage from.

The record also keeps the run's log (its validation masked-L1 curve, k-NN probe record and wall time, read
from the bundle_root the source sits in), so a release spanning several stages can be exported on a machine
without their run folders (``export_encoder.py experiments/release/stages/stage5.json ...``). Every stage's
record stays in the tree; only the latest stage's weights do. ``log`` adds the log to a record saved without it:

    python experiments/release/stage_state.py log runs/gmml_stage5 experiments/release/stages/stage5
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import lzma
from pathlib import Path

import torch
from export_encoder import stage_log  # this script's folder, first on sys.path when it runs

from spcxr_monai.networks.transfer import checkpoint_state
from spcxr_monai.pretrained import DEFAULT, released_encoder
from spcxr_monai.utils import atomic_write


def _quantise(delta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """int8 values and float32 scales (one per row of a matrix or conv kernel, one for a vector)."""
    rows = delta.reshape(delta.shape[0], -1) if delta.ndim >= 2 else delta.reshape(1, -1)
    scale = rows.abs().amax(1, keepdim=True).clamp_min(1e-12) / 127.0
    return torch.round(rows / scale).to(torch.int8), scale.squeeze(1)


def _dequantise(q: torch.Tensor, scale: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    return (q.float() * scale[:, None]).reshape(shape)


def save(source: str, out: str, base: str) -> dict:
    state = {k: v.float() for k, v in checkpoint_state(source).items()}
    base_file = released_encoder(base)
    base_state = {k: v.float() for k, v in torch.load(base_file, map_location="cpu", weights_only=True).items()}
    if set(state) != set(base_state):
        raise ValueError(f"{source}: its keys differ from {base}'s: not a stage of that release")
    packed = {k: (*_quantise(state[k] - base_state[k]), tuple(state[k].shape)) for k in sorted(state)}
    error = max(
        float((base_state[k] + _dequantise(q, s, torch.Size(shape)) - state[k]).abs().max())
        for k, (q, s, shape) in packed.items()
    )
    buffer = io.BytesIO()
    torch.save({"base": base, "packed": packed}, buffer)
    with atomic_write(f"{out}.pt.xz") as f:
        f.write(lzma.compress(buffer.getvalue(), preset=9))
    record = {
        "source": source,
        "base": base,
        "base_sha256": hashlib.sha256(Path(base_file).read_bytes()).hexdigest(),
        "max_abs_error": error,
        "bytes": Path(f"{out}.pt.xz").stat().st_size,
        "restore": f"python experiments/release/stage_state.py restore {out} OUT.pt",
    }
    run = Path(source).resolve().parent.parent  # <bundle_root>/models/<checkpoint>
    if (run / "logs" / "tensorboard").is_dir():
        record["log"] = stage_log(run)
    _write_record(record, out)
    return record


def add_log(run: str, stage: str) -> dict:
    """Store ``run``'s log in the record of ``stage`` (a stem given to ``save``)."""
    record = json.loads(Path(f"{stage}.json").read_text())
    record["log"] = stage_log(Path(run))
    _write_record(record, stage)
    return record


def _write_record(record: dict, stem: str) -> None:
    with atomic_write(f"{stem}.json", "w") as f:
        json.dump(record, f, indent=1)


def restore(stage: str, out: str) -> None:
    record = json.loads(Path(f"{stage}.json").read_text())
    base_file = released_encoder(record["base"])
    if hashlib.sha256(Path(base_file).read_bytes()).hexdigest() != record["base_sha256"]:
        raise ValueError(f"{base_file}: not the release this stage was saved against")
    blob = torch.load(io.BytesIO(lzma.decompress(Path(f"{stage}.pt.xz").read_bytes())), weights_only=True)
    base_state = torch.load(base_file, map_location="cpu", weights_only=True)
    state = {
        k: base_state[k].float() + _dequantise(q, s, torch.Size(shape)) for k, (q, s, shape) in blob["packed"].items()
    }
    torch.save(state, out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("save")
    p.add_argument("source", help="the stage's weights (a GMML checkpoint: model.pt / model_final.pt)")
    p.add_argument("out", help="output stem: <out>.pt.xz and <out>.json")
    p.add_argument("--base", default=DEFAULT, help="the release the stage continued from")
    p = sub.add_parser("restore")
    p.add_argument("stage", help="the stem given to save")
    p.add_argument("out", help="float32 state dict to write")
    p = sub.add_parser("log")
    p.add_argument("run", help="the stage's bundle_root (logs/tensorboard, models/feature_probe.json)")
    p.add_argument("stage", help="the stem given to save")
    args = parser.parse_args()
    if args.command == "save":
        record = save(args.source, args.out, args.base)
        print(json.dumps({k: v for k, v in record.items() if k != "log"}, indent=1))
    elif args.command == "log":
        print(json.dumps(add_log(args.run, args.stage)["log"]["val_masked_l1"][-1]))
    else:
        restore(args.stage, args.out)


if __name__ == "__main__":
    main()
