"""Has a set of images drifted from a reference set? A kernel two-sample test on the encoder's features.

The maximum mean discrepancy (MMD, Gretton et al. 2012) between two samples of feature vectors, with a
Gaussian kernel whose width is the median distance of the pooled sample, and a permutation p-value: the
share of random relabellings of the pooled sample whose MMD is at least the observed one. The witness
function (mean kernel similarity to the new sample minus that to the reference) ranks the new images by how
much they carry the difference: the most shifted images.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field

import numpy as np
from matplotlib.figure import Figure  # the object API leaves pyplot's backend alone

from spcxr_monai.data.datalist import find_images
from spcxr_monai.data.dedup import drop_near_duplicates
from spcxr_monai.data.errors import CXRInputError
from spcxr_monai.networks.features import image_features, load_feature_encoder

__all__ = ["DriftResult", "drift_report", "mmd_permutation_test", "plot_drift"]


@dataclass
class DriftResult:
    """The outcome of :func:`mmd_permutation_test`.

    Attributes:
        p_value: permutation p-value of "both samples come from one distribution".
        mmd2: the unbiased squared MMD of the two samples.
        effect_size: ``mmd2`` in standard deviations of its permutation distribution (0: no difference).
        bandwidth: the Gaussian kernel's width (the pooled sample's median distance).
        witness: (N_new,) each new sample's witness value (higher: more unlike the reference).
        null: the permutation distribution of ``mmd2``.
    """

    p_value: float
    mmd2: float
    effect_size: float
    bandwidth: float
    witness: np.ndarray = field(repr=False)
    null: np.ndarray = field(repr=False)


def _mmd2(kernel: np.ndarray, in_x: np.ndarray) -> np.ndarray:
    """Unbiased MMD^2 for each row of ``in_x`` ((P, N) bool: which pooled samples are the first sample)."""
    in_x = in_x.astype(np.float64)
    in_y = 1.0 - in_x
    n, m = in_x.sum(1), in_y.sum(1)
    diag = np.diag(kernel)
    kx = np.einsum("pi,ij,pj->p", in_x, kernel, in_x) - in_x @ diag
    ky = np.einsum("pi,ij,pj->p", in_y, kernel, in_y) - in_y @ diag
    kxy = np.einsum("pi,ij,pj->p", in_x, kernel, in_y)
    return kx / (n * (n - 1)) + ky / (m * (m - 1)) - 2 * kxy / (n * m)


def mmd_permutation_test(
    reference: np.ndarray, new: np.ndarray, permutations: int = 1000, seed: int = 0
) -> DriftResult:
    """Two-sample MMD test with a Gaussian kernel (median-distance width) and a permutation p-value.

    Args:
        reference: (N, D) features of the reference sample.
        new: (M, D) features of the sample to test.
        permutations: random relabellings of the pooled sample.
        seed: seed of the relabellings.

    Raises:
        ValueError: fewer than 2 samples on a side, or different feature sizes.
    """
    reference, new = np.asarray(reference, np.float64), np.asarray(new, np.float64)
    if reference.ndim != 2 or new.ndim != 2 or reference.shape[1] != new.shape[1]:
        raise ValueError(f"features must be (N, D) and (M, D), got {reference.shape} and {new.shape}.")
    if len(reference) < 2 or len(new) < 2:
        raise ValueError(f"each sample needs at least 2 items, got {len(reference)} and {len(new)}.")
    pooled = np.concatenate([reference, new])
    sq = np.sum(pooled**2, 1)
    dist2 = np.maximum(sq[:, None] + sq[None, :] - 2 * pooled @ pooled.T, 0.0)
    off_diagonal = dist2[np.triu_indices(len(pooled), 1)]
    bandwidth = float(np.sqrt(np.median(off_diagonal[off_diagonal > 0]))) if np.any(off_diagonal > 0) else 1.0
    kernel = np.exp(-dist2 / (2 * bandwidth**2))
    n = len(reference)
    observed_split = np.zeros((1, len(pooled)), bool)
    observed_split[0, :n] = True
    observed = float(_mmd2(kernel, observed_split)[0])
    rng = np.random.default_rng(seed)
    splits = np.zeros((permutations, len(pooled)), bool)
    for row in splits:
        row[rng.permutation(len(pooled))[:n]] = True
    null = np.concatenate([_mmd2(kernel, chunk) for chunk in np.array_split(splits, max(1, permutations // 200))])
    p_value = float((1 + np.sum(null >= observed)) / (1 + permutations))
    effect = float((observed - null.mean()) / (null.std() + 1e-12))
    witness = kernel[n:, n:].mean(1) - kernel[n:, :n].mean(1)
    return DriftResult(p_value, observed, effect, bandwidth, witness, null)


def drift_report(
    reference_dir: str | os.PathLike,
    new_dir: str | os.PathLike,
    n: int | None = None,
    permutations: int = 1000,
    seed: int = 0,
    checkpoint: str = "released",
    image_size: int = 128,
    keep_duplicates: bool = False,
    top: int = 10,
    plot: str | os.PathLike | None = None,
) -> dict:
    """Has the images of ``new_dir`` drifted from those of ``reference_dir``? (``spcxr drift``)

    New images with a near-duplicate in the reference are dropped first (a copy is no evidence of
    sameness); at most ``n`` images per side are drawn (seeded); the pretrained encoder's features of both
    go through :func:`mmd_permutation_test`.

    Args:
        reference_dir, new_dir: folders of images (searched recursively).
        n: at most this many images per side (None: all).
        permutations, seed: of the test (and of the draw).
        checkpoint: the encoder: ``released``, a release's name or a checkpoint file.
        image_size: the encoder's input side.
        keep_duplicates: keep new images that have a near-duplicate in the reference.
        top: how many of the most shifted new images to list.
        plot: a PNG to write (:func:`plot_drift`), or None.

    Returns:
        ``{"p_value", "mmd2", "effect_size", "n_reference", "n_new", "near_duplicates_dropped",
        "most_shifted": [{"image", "witness"}], "plot"?}``.

    Raises:
        CXRInputError: a folder with fewer than 2 images.
    """
    reference, new = (find_images(folder) for folder in (reference_dir, new_dir))
    for folder, files in ((reference_dir, reference), (new_dir, new)):
        if len(files) < 2:
            raise CXRInputError(folder, f"needs at least 2 images, found {len(files)}")
    dropped = 0
    if not keep_duplicates:
        kept, gone = drop_near_duplicates([{"image": str(f)} for f in new], [{"image": str(f)} for f in reference])
        new, dropped = [i["image"] for i in kept], len(gone)
    rng = random.Random(seed)
    reference, new = (sorted(rng.sample(list(f), min(n, len(f)))) if n else f for f in (reference, new))
    network = load_feature_encoder(checkpoint, image_size)
    features = image_features([*reference, *new], network, image_size=image_size)
    ref_f, new_f = features[: len(reference)], features[len(reference) :]
    result = mmd_permutation_test(ref_f, new_f, permutations=permutations, seed=seed)
    order = np.argsort(-result.witness)[:top]
    report = {
        "p_value": result.p_value,
        "mmd2": result.mmd2,
        "effect_size": result.effect_size,
        "n_reference": len(reference),
        "n_new": len(new),
        "near_duplicates_dropped": dropped,
        "most_shifted": [{"image": str(new[i]), "witness": float(result.witness[i])} for i in order],
    }
    if plot:
        plot_drift(result, ref_f, new_f, plot)
        report["plot"] = os.fspath(plot)
    return report


def plot_drift(result: DriftResult, reference: np.ndarray, new: np.ndarray, path: str | os.PathLike) -> None:
    """The permutation distribution with the observed MMD², and the two samples' features on their first
    two principal components (the new sample coloured by its witness value)."""
    pooled = np.concatenate([reference, new])
    centred = pooled - pooled.mean(0)
    _, _, components = np.linalg.svd(centred, full_matrices=False)
    xy = centred @ components[:2].T
    fig = Figure(figsize=(10, 4))
    ax_null, ax_pca = fig.subplots(1, 2)
    ax_null.hist(result.null, bins=40, color="0.7", label="permutations")
    ax_null.axvline(result.mmd2, color="crimson", label=f"observed (p = {result.p_value:.3g})")
    ax_null.set(xlabel="MMD²", ylabel="count", title="two-sample test")
    ax_null.legend()
    ax_pca.scatter(*xy[: len(reference)].T, s=10, c="0.6", label="reference")
    points = ax_pca.scatter(*xy[len(reference) :].T, s=14, c=result.witness, cmap="magma", label="new")
    fig.colorbar(points, ax=ax_pca, label="witness (new: higher = more shifted)")
    ax_pca.set(xlabel="PC 1", ylabel="PC 2", title="encoder features")
    ax_pca.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
