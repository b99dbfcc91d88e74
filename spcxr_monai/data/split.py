"""Patient-level splits and label subsets of datalist items, seeded; class weights for the loss."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from sklearn.utils.class_weight import compute_class_weight

logger = logging.getLogger(__name__)

__all__ = ["class_weights", "split_by_patient", "split_items", "subsample_stratified"]


def split_by_patient(items: Sequence[dict], fractions: Mapping[str, float], seed: int = 0) -> dict[str, list[dict]]:
    """Split items by patient, stratified by each patient's (first) label, reproducibly.

    Args:
        items: datalist items with ``patient`` and ``label``.
        fractions: split name -> fraction of each class's patients, e.g. ``{"validation": 0.2}``;
            the rest goes to ``"training"``.
        seed: seed of the patient shuffle.

    Returns:
        split name -> items; every patient's images land in exactly one split.

    (MONAI's ``partition_dataset_classes`` has no patient groups; scikit-learn's ``StratifiedGroupKFold``
    gives k folds, not fractions; and either would change every split behind the committed studies.)
    """
    if sum(fractions.values()) >= 1.0 or any(f < 0 for f in fractions.values()):
        raise ValueError(f"split fractions must be >= 0 and sum to < 1 (the rest trains), got {dict(fractions)}")
    by_patient: dict[str, list[dict]] = defaultdict(list)
    for item in items:
        by_patient[item["patient"]].append(item)
    by_class: dict[int, list[str]] = defaultdict(list)
    for patient, patient_items in sorted(by_patient.items()):
        by_class[patient_items[0]["label"]].append(patient)
    rng = np.random.RandomState(seed)
    splits: dict[str, list[dict]] = {"training": [], **{name: [] for name in fractions}}
    for label in sorted(by_class):
        patients = by_class[label]
        order = rng.permutation(len(patients))
        start = 0
        for name, fraction in fractions.items():
            count = int(round(fraction * len(patients)))
            for i in order[start : start + count]:
                splits[name].extend(by_patient[patients[i]])
            start += count
        for i in order[start:]:
            splits["training"].extend(by_patient[patients[i]])
    for name, fraction in fractions.items():
        if fraction > 0 and not splits[name]:
            logger.warning(
                "split %r is empty: %d patients are too few for a fraction of %g", name, len(by_patient), fraction
            )
    return splits


def subsample_stratified(items: Sequence[dict], fraction: float, seed: int = 0) -> list[dict]:
    """Keep ``fraction`` of each class's patients (at least one patient per class), seeded.

    Used for label-efficiency experiments (1%, 10%, 100% of the labels).
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    if fraction == 1:
        return list(items)
    by_class: dict[int, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for item in items:
        by_class[item["label"]][item["patient"]].append(item)
    rng = np.random.RandomState(seed)
    kept: list[dict] = []
    for label in sorted(by_class):
        patients = sorted(by_class[label])
        count = max(1, int(round(fraction * len(patients))))
        for i in sorted(rng.choice(len(patients), count, replace=False)):
            kept.extend(by_class[label][patients[i]])
    return kept


def class_weights(items: Sequence[dict], num_classes: int, device=None):
    """Inverse-frequency class weights (mean 1 over the classes present) for ``CrossEntropyLoss(weight=...)``:
    scikit-learn's "balanced" weights; absent classes get 0."""
    labels = np.array([int(i["label"]) for i in items])
    present = np.unique(labels)
    weights = np.zeros(num_classes)
    if present.size:
        weights[present] = compute_class_weight("balanced", classes=present, y=labels)
    return torch.as_tensor(weights, dtype=torch.float32, device=device)


def split_items(
    datalist: Mapping[str, Sequence[dict]],
    split: str = "training",
    fraction: float = 1.0,
    seed: int = 0,
    label_key: str | None = None,
) -> list[dict]:
    """One split of a datalist, as a dataset's data.

    Args:
        datalist: ``{"training": [...], "validation": [...], ...}``; a missing split gives ``[]``.
        split: which split.
        fraction: keep this fraction of each class's patients (:func:`subsample_stratified`).
        seed: seed of that subset.
        label_key: make each item ``{"image", "label": item[label_key]}`` (``"mask"`` for segmentation).
    """
    items = subsample_stratified(datalist.get(split, []), fraction, seed)
    if label_key:
        items = [{"image": item["image"], "label": item[label_key]} for item in items]
    return items
