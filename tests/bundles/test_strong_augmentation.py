"""The classification bundle's stronger augmentation (configs/strong_augmentation.json, the anchors' recipe):
RandAugment-like, two of six intensity operations per image after a small affine, and the image stays a chest
X-ray of the same side: no flips, finite, its anatomy where it was."""

from __future__ import annotations

import numpy as np
from bundle_helpers import BUNDLES
from monai.bundle import ConfigParser
from monai.transforms import Compose, SomeOf

from spcxr_monai.handlers import RandomStates

CONFIGS = BUNDLES / "spcxr_cxr_classification" / "configs"


def _pipeline(*configs: str, seed: int = 0):
    parser = ConfigParser()
    parser.read_config([str(CONFIGS / c) for c in configs])
    parser["dataset_dir"] = "unused"
    preprocessing = parser.get_parsed_content("train#preprocessing", instantiate=True)
    preprocessing.set_random_state(seed)
    return preprocessing


def _draws(pipeline, path, n: int) -> np.ndarray:
    return np.stack([np.asarray(pipeline({"image": str(path)})["image"])[0] for _ in range(n)])


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def _unaugmented(path) -> np.ndarray:
    parser = ConfigParser()
    parser.read_config(str(CONFIGS / "train.json"))
    return np.asarray(Compose(parser.get_parsed_content("load_transforms"))({"image": str(path)})["image"])[0]


def test_strong_augmentation_varies_intensity_more_and_keeps_the_anatomy_on_its_side(real_png):
    light = _draws(_pipeline("train.json"), real_png, 16)
    strong = _draws(_pipeline("train.json", "strong_augmentation.json"), real_png, 16)
    assert strong.shape == (16, 128, 128) and np.isfinite(strong).all()
    # every draw differs from the next (the intensity operations are not skipped)
    assert min(np.abs(strong[i] - strong[i + 1]).mean() for i in range(15)) > 0.01
    # intensity varies more than under the light default: the spread of the draws' standard deviations
    assert np.std([d.std() for d in strong]) > 1.5 * np.std([d.std() for d in light])
    # still this radiograph, on its own side (no flips): each draw correlates with the un-augmented image, and
    # clearly more than with its mirror image
    base = _unaugmented(real_png)
    for draw in strong:
        same, mirrored = _corr(draw, base), _corr(draw, base[:, ::-1])
        assert same > 0.5 and same > mirrored + 0.05


def test_strong_augmentation_is_seeded_and_its_states_are_kept_for_resume(real_png):
    first = _draws(_pipeline("train.json", "strong_augmentation.json", seed=3), real_png, 4)
    again = _draws(_pipeline("train.json", "strong_augmentation.json", seed=3), real_png, 4)
    other = _draws(_pipeline("train.json", "strong_augmentation.json", seed=4), real_png, 4)
    np.testing.assert_array_equal(first, again)
    assert np.abs(first - other).mean() > 0.01

    pipeline = _pipeline("train.json", "strong_augmentation.json")
    states = RandomStates(pipeline)
    some_of = [t for t in pipeline.transforms if isinstance(t, SomeOf)]
    assert len(some_of) == 1 and len(some_of[0].transforms) == 6
    # the choice of two and each of the six operations: saved at each epoch's end and restored on resume
    saved = {id(t) for t in states.transforms}
    assert all(id(t) in saved for t in [some_of[0], *some_of[0].transforms])
