"""Package a GMML pretraining run as the released encoder of ``spcxr_monai/pretrained``.

    python experiments/release/export_encoder.py experiments/runs/gmml_release [experiments/runs/gmml_continue]
        [--checkpoint model_probe.pt | model.pt] [--name gmml-vit-tiny16-cxr128]

Each positional argument is one stage of pretraining, in order (a later stage continues from an earlier
one's weights); the last stage's checkpoint is released as the released encoder ``--name``: the one its
frozen-feature probe picked (``models/model_probe.pt``: best k-NN accuracy) or the one with the lowest
validation masked L1 (``models/model.pt``). Stores the GMML ViT state dict (encoder + reconstruction
head) in fp16, atomically, and writes beside it a JSON record: sha256, size, the probe and validation
masked-L1 curves of all stages on one epoch axis, the chosen epoch and the command. Copies the
reconstruction figure of the chosen epoch (as a 256-colour PNG). Never touches a run's own files.

A stage may also be given as its committed record (``experiments/release/stages/stageN.json``, written by
``stage_state.py save`` with the run's curves in it), so a release can be made on a machine that no longer has
the run folders: then ``--weights`` names the restored weights (``stage_state.py restore``) and ``--figure`` their
reconstruction figure (the GMML bundle's ``evaluating``; without it the release has none).

The study's rows for a release are measured after it is exported: they go in
``experiments/release/measured/<file stem>.md`` (or ``--measured``), which the card includes, so exporting again
rewrites the card without losing them. Rows added to that file later reach the card without the weights:

    python experiments/release/export_encoder.py --card-only --name gmml-vit-tiny16-cxr128-v8

rewrites only the card, from the release's committed record and its measured rows (weights and record untouched).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from itertools import groupby
from pathlib import Path

import torch

from spcxr_monai.pretrained import DEFAULT, HERE, RELEASED
from spcxr_monai.utils import save_atomic, save_palette_png

MEASURED = Path(__file__).parent / "measured"  # each release's study rows, written after it, kept across re-exports


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


def wall_hours(figures: Path, epochs: int) -> float | None:
    """A stage's wall time from its per-epoch reconstruction figures' times (every epoch's, or a subset: a run
    that travelled back from a lent machine keeps a few), scaled to ``epochs``; None below two figures."""
    times = sorted(
        (int(p.stem.rsplit("epoch", 1)[1]), p.stat().st_mtime) for p in figures.glob("reconstruction_epoch*.png")
    )
    if len(times) < 2:
        return None
    return (times[-1][1] - times[0][1]) / (times[-1][0] - times[0][0]) * epochs / 3600


def stage_log(run: Path) -> dict:
    """What a release's record needs of one pretraining run (a bundle_root): its k-NN probe record, its
    validation masked-L1 curve and its wall time; a few KB where the run folder holds tens of MB. A stage record
    written by ``stage_state.py save`` (a ``.json`` file) gives the log stored in it."""
    if run.suffix == ".json":
        record = json.loads(run.read_text())
        if "log" not in record:
            raise ValueError(f"{run}: a stage record without the run's log (saved before logs were kept)")
        return record["log"]
    curve = scalar_curve(run / "logs" / "tensorboard", "val_masked_l1")
    if not curve:
        raise ValueError(f"{run}: no val_masked_l1 curve in logs/tensorboard")
    return {
        "run": str(run),
        "probe": json.loads((run / "models" / "feature_probe.json").read_text()),
        "val_masked_l1": curve,
        "hours": wall_hours(run / "logs" / "figures", curve[-1][0]),
    }


def stage_curves(runs: list[Path], numbers: list[int] | None = None, offset: int = 0) -> tuple[dict, list, list[dict]]:
    """The probe record, validation masked-L1 curve and per-stage extent of ``runs`` (run folders or stage
    records) on one epoch axis: stage ``i``'s epochs follow the last epoch of stage ``i - 1`` (the first follows
    ``offset``: the epochs of the release it continues). ``numbers``: the stages' numbers in the pretraining
    script (default 1, 2, ...). ``best_epoch`` is the last stage's."""
    history, l1, stages = [], [], []
    for index, run in zip(numbers or range(1, len(runs) + 1), runs):
        log = stage_log(run)
        probe, curve = log["probe"], [tuple(point) for point in log["val_masked_l1"]]
        history += [{**h, "epoch": h["epoch"] + offset} for h in probe["history"]]
        l1 += [(epoch + offset, value) for epoch, value in curve]
        stages.append(
            {
                "stage": index,
                "run": log["run"],
                "first_epoch": offset + 1,
                "last_epoch": offset + curve[-1][0],
                "hours": log["hours"],
                "local_best_epoch": probe["best_epoch"],
                "local_best_l1_epoch": min(curve, key=lambda c: c[1])[0],
                "probe_block": probe.get("block"),  # None: the final tokens
            }
        )
        offset += curve[-1][0]
    merged = {**probe, "best_epoch": probe["best_epoch"] + offset - curve[-1][0], "history": history}
    return merged, l1, stages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "runs", type=Path, nargs="*", help="bundle_root (or stage record .json) of each pretraining stage, in order"
    )
    parser.add_argument(
        "--checkpoint",
        default="model_probe.pt",
        choices=["model_probe.pt", "model.pt"],
        help="of <last run>/models: best k-NN probe accuracy, or lowest validation masked L1",
    )
    parser.add_argument("--name", default=DEFAULT)
    parser.add_argument(
        "--stage-numbers",
        type=int,
        nargs="+",
        default=None,
        help="the runs' stage numbers in pretrain_released_encoder.sh (default 1, 2, ...)",
    )
    parser.add_argument(
        "--epoch-offset",
        type=int,
        default=0,
        help="epochs of the release the first run continues (e.g. 120 for a restart from e120)",
    )
    parser.add_argument(
        "--weights",
        type=Path,
        default=None,
        help="the weights to release, when the last stage is given as its record (stage_state.py restore)",
    )
    parser.add_argument(
        "--figure",
        type=Path,
        default=None,
        help="the release's reconstruction figure, when the last stage is given as its record: the GMML bundle's "
        "`evaluating` of --weights (eval/reconstruction.png; bundles/spcxr_gmml_pretrain/docs/README.md)",
    )
    parser.add_argument(
        "--measured",
        type=Path,
        default=None,
        help="the study's rows for this release, a markdown paragraph for its card's 'What it does downstream' "
        "(default experiments/release/measured/<file stem>.md where it exists)",
    )
    parser.add_argument(
        "--card-only",
        action="store_true",
        help="rewrite only --name's card from its committed record and measured rows (no runs, no weights)",
    )
    args = parser.parse_args()

    entry = RELEASED[args.name]
    if args.measured and not args.measured.is_file():
        parser.error(f"--measured {args.measured}: no such file")  # before anything is written
    if args.card_only:
        if args.runs or args.weights or args.figure:
            parser.error("--card-only rewrites the card from the committed record: no runs, --weights or --figure")
        rewrite_card(args.name, args.measured)
        return
    if not args.runs:
        parser.error("name the pretraining runs (or stage records) to release, or pass --card-only")
    last = args.runs[-1]
    if args.weights is None and last.suffix == ".json":
        parser.error(f"{last} is a stage record: --weights must name its restored weights")
    if args.figure and not args.figure.is_file():
        parser.error(f"--figure {args.figure}: no such file")
    weights = args.weights or last / "models" / args.checkpoint
    state = torch.load(weights, map_location="cpu", weights_only=True)
    state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    target = HERE / entry["file"]
    save_atomic(state, target)
    digest = hashlib.sha256(target.read_bytes()).hexdigest()

    probe, l1, stages = stage_curves(args.runs, args.stage_numbers, args.epoch_offset)
    local = stages[-1]["local_best_epoch" if args.checkpoint == "model_probe.pt" else "local_best_l1_epoch"]
    chosen = stages[-1]["first_epoch"] - 1 + local
    if args.checkpoint == "model_probe.pt":
        chosen_by = (
            f"best k-NN probe accuracy of the frozen encoder in the last stage "
            f"({next(h for h in probe['history'] if h['epoch'] == chosen)['probe_accuracy']:.3f})"
        )
    else:
        chosen_by = f"lowest validation masked L1 of the last stage ({dict(l1)[chosen]:.4f})"
    options = (
        ""
        if args.checkpoint == "model_probe.pt" and args.name == DEFAULT
        else f" --checkpoint {args.checkpoint} --name {args.name}"
    )
    if args.stage_numbers:
        options += f" --stage-numbers {' '.join(map(str, args.stage_numbers))} --epoch-offset {args.epoch_offset}"
    stages_cmd = " && ".join(stage_command(s, previous) for s, previous in zip(stages, [None, *stages]))
    record = {
        "name": args.name,
        "file": entry["file"],
        "sha256": digest,
        "bytes": target.stat().st_size,
        "parameters": int(sum(v.numel() for v in state.values())),
        "architecture": {k: entry[k] for k in ("model_size", "patch_size", "image_size")},
        "chosen_checkpoint": args.checkpoint,
        "chosen_epoch": chosen,
        "chosen_by": chosen_by,
        "probe_fraction": 0.3,
        "probe": probe,
        "val_masked_l1": l1,
        "stages": stages,
        "command": f"{stages_cmd} && python experiments/release/export_encoder.py {' '.join(map(str, args.runs))}{options}",
    }
    if args.weights:
        record["command"] += f" --weights {args.weights}"
    if args.figure:
        record["command"] += f" --figure {args.figure}"
    if args.measured:
        record["command"] += f" --measured {args.measured}"
    (HERE / (Path(entry["file"]).stem + ".json")).write_text(json.dumps(record, indent=1) + "\n")
    figure = args.figure or last / "logs" / "figures" / f"reconstruction_epoch{local:03d}.png"
    if figure.is_file():
        save_palette_png(figure, HERE / (Path(entry["file"]).stem + "_reconstruction.png"))
    else:
        print(f"no reconstruction figure {figure}: the release has none (--figure names one)", file=sys.stderr)
    write_model_card(record, measured_rows(args.name, args.measured))
    print(json.dumps({k: record[k] for k in ("file", "sha256", "bytes", "parameters", "chosen_epoch")}))


def stage_command(stage: dict, previous: dict | None) -> str:
    """The pretraining command of one stage: stages 1-4 by number; from stage 5 on, the script's stage 5 run as
    a warm restart from the previous stage's weights into its own run folder (docs/releases.md)."""
    epochs = stage["last_epoch"] - stage["first_epoch"] + 1
    if stage["stage"] < 5:
        return f"bash experiments/release/pretrain_released_encoder.sh {stage['stage']} {epochs}"
    init = f"STAGE_INIT={previous['run']}/models/model.pt " if previous and previous["stage"] >= 5 else ""
    return f"{init}STAGE_RUN={stage['run']} bash experiments/release/pretrain_released_encoder.sh 5 {epochs}"


DATA_E120 = """- Pretrained without labels on the **3,728 images of COVID-QU-Ex's train split** as kept in
  `shared/data/covid-qu-ex/train` (the "Infection Segmentation Data" subset of COVID-QU-Ex, Tahir et al.,
  Qatar University; 1,864 covid-19 / 932 non-covid pneumonia / 932 normal; 8-bit PNG, 256x256), of which
  the bundle held out 10% of the patients to measure the masked L1. Its images come from several public
  sources (adult and some pediatric). **Never seen**: COVID-QU-Ex's val split and the pediatric (Kermany)
  set, on which the study evaluates."""
DATA_V2 = """- Pretrained without labels on **12,127 CXRs**: the 3,728 images of COVID-QU-Ex's train split as kept in
  `shared/data/covid-qu-ex/train` (the "Infection Segmentation Data" subset of COVID-QU-Ex, Tahir et al.,
  Qatar University; 8-bit PNG, 256x256) in the stages up to e120, and from stage 4 on those plus the **8,399 images
  of `shared/data/covid-radiography-pool`** (the COVID-19 Radiography Database, Chowdhury et al. 2020 and
  Rahman et al. 2021, COVID and Normal classes, its Normal images from RSNA and from Kermany's pediatric set;
  128-px JPEG; every near-duplicate of COVID-QU-Ex train and val, of the pediatric set and of a further
  held-out test set removed), of which the bundle held out 10% of the patients to measure the masked L1.
  **Never seen**: COVID-QU-Ex's val split and the pediatric (Kermany) set, on which the study evaluates."""


def rewrite_card(name: str, measured: Path | None = None) -> None:
    """Rewrite release ``name``'s card from its committed record (``<file stem>.json`` beside the weights) and its
    measured rows (``measured`` or ``MEASURED/<file stem>.md``), as a full re-export would, without its weights."""
    stem = Path(RELEASED[name]["file"]).stem
    record_path = HERE / f"{stem}.json"
    if not record_path.is_file():
        raise SystemExit(f"{record_path}: no record of release {name!r} to rewrite its card from")
    write_model_card(json.loads(record_path.read_text()), measured_rows(name, measured))


def measured_rows(name: str, measured: Path | None = None) -> str | None:
    """The study's rows for release ``name``: ``measured``, else ``MEASURED/<file stem>.md`` where it exists."""
    measured = measured or MEASURED / f"{Path(RELEASED[name]['file']).stem}.md"
    return measured.read_text() if measured.is_file() else None


def write_model_card(record: dict, measured: str | None = None) -> None:
    """The release's model card beside the weights, from the template and the record (every figure from the runs),
    with ``measured``, the study's rows for this release (written after them: a file, so a re-export keeps them)."""
    probe = record["probe"]
    by_epoch = {h["epoch"]: h for h in probe["history"]}
    l1 = dict(record["val_masked_l1"])
    starts = {s["first_epoch"]: s["stage"] for s in record["stages"]}
    rows = []
    for epoch in sorted(set(l1) | set(by_epoch)):
        h = by_epoch.get(epoch)
        acc = f"{h['probe_accuracy']:.3f}" if h else ""
        bacc = f"{h['probe_accuracy_balanced_accuracy']:.3f}" if h else ""
        mark = " (chosen)" if epoch == record["chosen_epoch"] else ""
        stage = f" (stage {starts[epoch]})" if epoch in starts and len(starts) > 1 else ""
        rows.append(f"| {epoch}{stage}{mark} | {l1.get(epoch, float('nan')):.4f} | {acc} | {bacc} |")
    stage_lines = [
        f"- stage {s['stage']} (`{Path(s['run']).name}`): epochs {s['first_epoch']}-{s['last_epoch']}"
        + (f", {_duration(s['hours'])} of wall time" if s["hours"] else "")
        for s in record["stages"]
    ]
    template = (Path(__file__).parent / "MODEL_CARD.template.md").read_text()
    card = template.format(
        name=record["name"],
        file=record["file"],
        file_stem=Path(record["file"]).stem,
        megabytes=record["bytes"] / 2**20,
        parameters=record["parameters"],
        sha256=record["sha256"],
        chosen_epoch=record["chosen_epoch"],
        epochs=max(l1),
        chosen_by=record["chosen_by"],
        probe_fraction=record["probe_fraction"],
        command=record["command"],
        stage_lines="\n".join(stage_lines),
        k=probe["k"],
        probe_tokens=_probe_tokens(record["stages"]),
        curve_table="\n".join(rows),
        default_note=_default_note(record["name"]),
        data=DATA_V2 if any(s["stage"] >= 4 for s in record["stages"]) else DATA_E120,
        training_summary=_training_summary(record["stages"], max(l1)),
        measured=f"\n{measured.strip()}\n" if measured else "",
    )
    (HERE / RELEASED[record["name"]].get("card", "MODEL_CARD.md")).write_text(card)  # the first release's has no "card"


def _default_note(name: str) -> str:
    """The card's word on whether ``name`` is the default; a superseded release names the one after it (the
    registry lists them oldest first) and, where its weights left the package, where they are."""
    if name == DEFAULT:
        return "the default, also `released`"
    names = list(RELEASED)
    successor = names[names.index(name) + 1].rsplit("-", 1)[-1]
    note = f"the default until {successor}; `released` is `{DEFAULT}`"
    if "restore" in RELEASED[name]:
        note += "; its weights are in the git history, `restore_command`"
    return note


E120_EPOCHS = 120  # the epochs on COVID-QU-Ex train alone: stage 4 (v2) and every later stage continue e120


def _training_summary(stages: list[dict], epochs: int) -> str:
    """ "120 epochs on 3.7k images, then 33 on 12.1k" for stage 4 or later, else "N epochs on 3.7k images"."""
    if not any(s["stage"] >= 4 for s in stages):
        return f"{epochs} epochs on 3.7k images"
    return f"{E120_EPOCHS} epochs on 3.7k images, then {epochs - E120_EPOCHS} on 12.1k"


def _probe_tokens(stages: list[dict]) -> str:
    """ "final tokens", or which stages' monitor read which tokens when that changed between stages."""
    runs = [
        (name, [s["stage"] for s in group])
        for name, group in groupby(
            stages, lambda s: f"block {s['probe_block']}'s tokens" if s.get("probe_block") else "final tokens"
        )
    ]
    if len(runs) == 1:
        return runs[0][0]
    return ", ".join(
        f"{name} (stage {numbers[0]})" if len(numbers) == 1 else f"{name} (stages {numbers[0]}-{numbers[-1]})"
        for name, numbers in runs
    )


def _duration(hours: float) -> str:
    return f"{hours:.1f} h" if hours >= 1 else f"{hours * 60:.0f} min"


if __name__ == "__main__":
    main()
