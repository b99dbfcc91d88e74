"""The study's held-out images: COVID-QU-Ex val and the pediatric set, each without its near-duplicates of
COVID-QU-Ex train (the data README's rule for any held-out or drift evaluation)."""

from __future__ import annotations

from pathlib import Path

from spcxr_monai.data import eval_datalist, task_classes


def held_out_images(data: Path) -> dict[str, list[str]]:
    """``{"val": [...], "pediatric": [...]}``: image paths under ``data`` (the shared data root)."""
    train = str(data / "covid-qu-ex" / "train")
    out = {}
    for name, folder, task in (
        ("val", data / "covid-qu-ex" / "val", "3class"),
        ("pediatric", data / "pediatric" / "train", "screening"),
    ):
        classes, class_map = task_classes(task)
        out[name] = [i["image"] for i in eval_datalist(str(folder), classes, class_map, dedup_against=train)]
    return out
