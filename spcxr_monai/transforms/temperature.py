"""Temperature scaling of a classifier's logits (Guo et al. 2017): calibrated probabilities, same answers."""

from __future__ import annotations

from collections.abc import Hashable, Mapping

from monai.config import KeysCollection
from monai.config.type_definitions import NdarrayOrTensor
from monai.transforms import MapTransform, Transform
from monai.utils import TransformBackends

__all__ = ["TemperatureScale", "TemperatureScaleD", "TemperatureScaleDict", "TemperatureScaled"]


class TemperatureScale(Transform):
    """Divide logits by a temperature fitted on a validation split, before the softmax.

    Args:
        temperature: > 0; 1 leaves the logits as they are (a model without a fitted temperature).
        calibration: a model's calibration record (``spcxr_monai.metrics.load_calibration``): its
            ``temperature`` is used instead.

    Raises:
        ValueError: a temperature that is not positive and finite.
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(self, temperature: float = 1.0, calibration: Mapping | None = None) -> None:
        temperature = float(calibration["temperature"] if calibration is not None else temperature)
        if not 0 < temperature < float("inf"):
            raise ValueError(f"temperature must be positive and finite, got {temperature}")
        self.temperature = temperature

    def __call__(self, logits: NdarrayOrTensor) -> NdarrayOrTensor:
        """(C,) or (B, C) logits -> the same shape divided by the temperature."""
        return logits / self.temperature if self.temperature != 1.0 else logits


class TemperatureScaled(MapTransform):
    """Dictionary version of :class:`TemperatureScale`.

    Args:
        keys: keys of the logits (``pred``).
        temperature, calibration: as :class:`TemperatureScale`.
        allow_missing_keys: don't raise when a key is absent.
    """

    backend = TemperatureScale.backend

    def __init__(
        self,
        keys: KeysCollection,
        temperature: float = 1.0,
        calibration: Mapping | None = None,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.scaler = TemperatureScale(temperature, calibration)

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.scaler(d[key])
        return d


TemperatureScaleD = TemperatureScaleDict = TemperatureScaled
