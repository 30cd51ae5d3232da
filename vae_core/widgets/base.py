"""What the explorers share on the Python side: clear errors for bad settings, checked by traitlets.

Every check is a traitlets ``@validate``, so it runs when the explorer is made and again whenever
a trait is set later from Python. A failed check raises :class:`SettingError`, which is both a
``traitlets.TraitError`` (what traitlets raises) and a ``ValueError``.
"""
from __future__ import annotations

import math

import anywidget
import traitlets

__all__ = ["SettingError", "validates", "ImageExplorer", "plain", "image_shape_pair", "default_scale"]


class SettingError(traitlets.TraitError, ValueError):
    """An explorer setting that cannot work; the message says what was expected."""


def plain(value):
    """``value`` as plain Python (arrays, tensors and numpy scalars through ``tolist()``), for a trait."""
    return value.tolist() if hasattr(value, "tolist") else value


def validates(*names: str):
    """Turn ``check(self, name, value) -> value`` into the traitlets validator of the traits ``names``."""
    def wrap(check):
        @traitlets.validate(*names)
        def _validate(self, proposal):
            return check(self, proposal["trait"].name, proposal["value"])
        return _validate
    return wrap


def positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SettingError(f"{name} must be a positive int, got {value!r}.")
    return value


def index_in(name: str, value, n: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < n:
        raise SettingError(f"{name} must be an int in [0, {n}), got {value!r}.")
    return value


def finite_range(name: str, value, need: str = "low < high") -> list:
    """``[low, high]`` of finite numbers with ``low < high`` (``need`` may ask for more, e.g. 'low < 0 < high')."""
    ok = len(value) == 2 and all(math.isfinite(v) for v in value) and value[0] < value[1]
    if ok and need == "low < 0 < high":
        ok = value[0] < 0 < value[1]
    if not ok:
        raise SettingError(f"{name} must be (low, high) with {need}, got {tuple(value)!r}.")
    return list(value)


def image_shape_pair(value) -> list:
    """``value`` as a ``[height, width]`` list of positive ints, or a :class:`SettingError`."""
    value = plain(value)
    if (not isinstance(value, (list, tuple)) or len(value) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value)):
        raise SettingError(f"image_shape must be a (height, width) pair of positive ints, got {value!r}.")
    return list(value)


def default_scale(image_shape, width: int) -> int:
    """Screen pixels per image pixel that draw the image about ``width`` screen pixels wide."""
    return max(1, round(width / max(image_shape)))


class ImageExplorer(anywidget.AnyWidget):
    """Base of the explorers that draw images: a title, ``image_shape`` and ``scale``, checked.

    Subclasses may add a pixel-count check by overriding :meth:`_pixels_expected`.
    """

    title = traitlets.Unicode("").tag(sync=True)
    image_shape = traitlets.List(traitlets.Int(), default_value=[28, 28]).tag(sync=True)
    scale = traitlets.Int(4).tag(sync=True)

    def _pixels_expected(self) -> tuple[int, str] | None:
        """``(pixels, what has that many)`` that ``image_shape`` must hold, or None for any number."""
        return None

    @validates("image_shape")
    def _check_image_shape(self, name, value):
        image_shape_pair(value)
        expected = self._pixels_expected()
        if expected is not None and value[0] * value[1] != expected[0]:
            raise SettingError(f"image_shape {tuple(value)} has {value[0] * value[1]} pixels but {expected[1]} "
                               f"{expected[0]} values: pass image_shape=(height, width) with height * width = {expected[0]}.")
        return value

    @validates("scale")
    def _check_scale(self, name, value):
        return positive_int(name, value)
