"""Package a GMML pretraining run as the released encoder of ``spcxr_monai/pretrained``.

    python experiments/release/export_encoder.py experiments/runs/gmml_release [--checkpoint model_probe.pt]

Takes the checkpoint the frozen-feature probe picked (``models/model_probe.pt``: best k-NN accuracy),
stores the GMML ViT state dict (encoder + reconstruction head) in fp16, atomically, and writes beside
it a JSON record: sha256, size, the probe and validation masked-L1 curves of the run, the chosen epoch
and the command. Copies the reconstruction figure of the chosen epoch. Never touches a run's own files.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
from pathlib import Path

import torch

from spcxr_monai.engines import save_atomic
from spcxr_monai.pretrained import DEFAULT, HERE, RELEASED


def scalar_curve(tb_dir: Path, tag: str) -> list[tuple[int, float]]:
    """(step, value) of a TensorBoard scalar across all event files of ``tb_dir``, last write wins."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    values: dict[int, float] = {}
    for events in sorted(tb_dir.glob("events.out.tfevents.*")):
        acc = EventAccumulator(str(events), size_guidance={"scalars": 0})
        acc.Reload()
        if tag in acc.Tags()["scalars"]:
            values.update({e.step: e.value for e in acc.Scalars(tag)})
    return sorted(values.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="bundle_root of the pretraining run")
    parser.add_argument("--checkpoint", default="model_probe.pt", help="file in <run>/models to release")
    parser.add_argument("--name", default=DEFAULT)
    args = parser.parse_args()

    entry = RELEASED[args.name]
    state = torch.load(args.run / "models" / args.checkpoint, map_location="cpu", weights_only=True)
    state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    target = HERE / entry["file"]
    save_atomic(state, target)
    digest = hashlib.sha256(target.read_bytes()).hexdigest()

    probe = json.loads((args.run / "models" / "feature_probe.json").read_text())
    epoch = probe["best_epoch"] if args.checkpoint == "model_probe.pt" else None
    record = {
        "name": args.name,
        "file": entry["file"],
        "sha256": digest,
        "bytes": target.stat().st_size,
        "parameters": int(sum(v.numel() for v in state.values())),
        "architecture": {k: entry[k] for k in ("model_size", "patch_size", "image_size")},
        "chosen_checkpoint": args.checkpoint,
        "chosen_epoch": epoch,
        "probe_fraction": 0.3,
        "probe": probe,
        "val_masked_l1": scalar_curve(args.run / "logs" / "tensorboard", "val_masked_l1"),
        "command": "bash experiments/release/pretrain_released_encoder.sh 60 && "
                   f"python experiments/release/export_encoder.py {args.run}",
    }
    (HERE / (Path(entry["file"]).stem + ".json")).write_text(json.dumps(record, indent=1) + "\n")
    if epoch is not None:
        figure = args.run / "logs" / "figures" / f"reconstruction_epoch{epoch:03d}.png"
        if figure.is_file():
            shutil.copyfile(figure, HERE / (Path(entry["file"]).stem + "_reconstruction.png"))
    write_model_card(record, args.run)
    print(json.dumps({k: record[k] for k in ("file", "sha256", "bytes", "parameters", "chosen_epoch")}))


def write_model_card(record: dict, run: Path) -> None:
    """``MODEL_CARD.md`` beside the weights, from the template and the record (every figure from the run)."""
    probe = record["probe"]
    by_epoch = {h["epoch"]: h for h in probe["history"]}
    l1 = dict(record["val_masked_l1"])
    rows = []
    for epoch in sorted(set(l1) | set(by_epoch)):
        h = by_epoch.get(epoch)
        acc = f"{h['probe_accuracy']:.3f}" if h else ""
        bacc = f"{h['probe_accuracy_balanced_accuracy']:.3f}" if h else ""
        mark = " (chosen)" if epoch == record["chosen_epoch"] else ""
        rows.append(f"| {epoch}{mark} | {l1.get(epoch, float('nan')):.4f} | {acc} | {bacc} |")
    hours = float("nan")  # from the figures' write times: one per epoch
    times = sorted(p.stat().st_mtime for p in (run / "logs" / "figures").glob("*.png"))
    if len(times) > 1:
        hours = (times[-1] - times[0]) / 3600 * len(times) / (len(times) - 1)
    template = (Path(__file__).parent / "MODEL_CARD.template.md").read_text()
    card = template.format(
        name=record["name"], file=record["file"], file_stem=Path(record["file"]).stem,
        megabytes=record["bytes"] / 2**20, parameters=record["parameters"], sha256=record["sha256"],
        chosen_epoch=record["chosen_epoch"], epochs=max(l1) if l1 else "?",
        best_probe=max(h["probe_accuracy"] for h in probe["history"]), probe_fraction=record["probe_fraction"],
        command=record["command"], hours=hours, k=probe["k"], curve_table="\n".join(rows),
    )
    (HERE / "MODEL_CARD.md").write_text(card)


if __name__ == "__main__":
    main()
