"""Classification tasks over the shared folder layouts: classes in label order and folder -> class maps."""

from __future__ import annotations

from monai.utils import look_up_option

__all__ = ["CLASSIFICATION_TASKS", "task_classes"]

_PEDIATRIC_PNEUMONIA = ("pneumonia_bacterial", "pneumonia_viral")


# task -> (classes in label order, folder -> class map); folders of both shared layouts are mapped
CLASSIFICATION_TASKS: dict[str, tuple[list[str], dict[str, str]]] = {
    "3class": (["covid", "pneumonia", "normal"], dict.fromkeys(_PEDIATRIC_PNEUMONIA, "pneumonia")),
    "screening": (
        ["normal", "abnormal"],
        dict.fromkeys(("covid", "pneumonia", *_PEDIATRIC_PNEUMONIA), "abnormal"),
    ),
}


def task_classes(task: str) -> tuple[list[str], dict[str, str]]:
    """``(classes, class_map)`` of a classification task: ``3class`` (covid, pneumonia, normal) or
    ``screening`` (normal vs abnormal)."""
    try:
        classes, class_map = look_up_option(task, CLASSIFICATION_TASKS)
    except ValueError as e:
        raise ValueError(f"task: {e}".rstrip()) from None
    return list(classes), dict(class_map)
